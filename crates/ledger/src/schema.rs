//! The database schema and its migrations. `PRAGMA user_version` is the schema
//! version; `PRAGMA application_id` marks the file as a ledger; the
//! `migrations` table records when each version was applied.

use crate::error::{Error, Result};
use rusqlite::Connection;
use std::path::Path;

/// `TPLG`: marks an SQLite file as a thinger-patch ledger.
pub const APPLICATION_ID: i64 = 0x5450_4C47;
/// The schema version this crate writes.
pub const SCHEMA_VERSION: i64 = 1;

/// SQLite's clock, as `2025-06-01T12:00:00.000Z` (UTC, milliseconds).
pub(crate) const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

/// `(version, description, SQL)`, applied in order inside one transaction.
const MIGRATIONS: &[(i64, &str, &str)] = &[(1, "initial schema", V1)];

const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value ANY NOT NULL
) STRICT;

CREATE TABLE migrations (
    version     INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at  TEXT NOT NULL
) STRICT;

CREATE TABLE jobs (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    source     TEXT NOT NULL CHECK (source IN ('csv', 'generated')),
    input      TEXT NOT NULL,
    template   TEXT,
    start_n    INTEGER,
    count      INTEGER,
    next_n     INTEGER,
    firmware   TEXT,
    version    TEXT,
    created_at TEXT NOT NULL
) STRICT;

CREATE TABLE devices (
    id                INTEGER PRIMARY KEY,
    device            TEXT NOT NULL UNIQUE,
    job_id            INTEGER NOT NULL REFERENCES jobs(id),
    pool_order        INTEGER NOT NULL,
    n                 INTEGER,
    state             TEXT NOT NULL
        CHECK (state IN ('free', 'reserved', 'flashed', 'verified', 'failed', 'retired')),
    board             TEXT,
    mac               TEXT,
    chip              TEXT,
    last_board        TEXT,
    firmware          TEXT,
    version           TEXT,
    sha256            TEXT,
    location_kind     TEXT CHECK (location_kind IN ('port', 'address', 'file', 'cloud')),
    location          TEXT,
    address           TEXT,
    reason            TEXT,
    created_at        TEXT NOT NULL,
    reserved_at       TEXT,
    flashed_at        TEXT,
    verified_at       TEXT,
    first_verified_at TEXT,
    updated_at        TEXT NOT NULL,
    current_firmware  TEXT,
    current_version   TEXT,
    current_sha256    TEXT,
    pending_firmware  TEXT,
    pending_version   TEXT,
    pending_sha256    TEXT,
    pending_at        TEXT,
    -- A reserved, flashed or verified identity always belongs to a board; a
    -- free or retired one never does.
    CHECK (state NOT IN ('reserved', 'flashed', 'verified') OR board IS NOT NULL),
    CHECK (state NOT IN ('free', 'retired') OR board IS NULL)
) STRICT;

-- One identity per board at a time: the database itself refuses a second.
CREATE UNIQUE INDEX devices_board ON devices(board) WHERE board IS NOT NULL;
CREATE INDEX devices_pool ON devices(job_id, pool_order) WHERE board IS NULL;

CREATE TABLE device_values (
    device_id INTEGER NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    secret    INTEGER NOT NULL CHECK (secret IN (0, 1)),
    value     TEXT,
    sealed    BLOB,
    PRIMARY KEY (device_id, key),
    -- Secrets only ever sealed, others only ever plain.
    CHECK ((secret = 1 AND sealed IS NOT NULL AND value IS NULL)
        OR (secret = 0 AND sealed IS NULL AND value IS NOT NULL))
) STRICT;

CREATE TABLE deliveries (
    id        INTEGER PRIMARY KEY,
    device_id INTEGER REFERENCES devices(id) ON DELETE SET NULL,
    device    TEXT NOT NULL,
    at        TEXT NOT NULL,
    firmware  TEXT,
    version   TEXT NOT NULL,
    sha256    TEXT,
    method    TEXT NOT NULL,
    address   TEXT,
    result    TEXT NOT NULL CHECK (result IN ('updated', 'already_current', 'offline', 'failed')),
    reason    TEXT
) STRICT;

CREATE TABLE events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     TEXT NOT NULL,
    device TEXT,
    board  TEXT,
    job    TEXT,
    kind   TEXT NOT NULL,
    detail TEXT
) STRICT;

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the events table is append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the events table is append-only'); END;
"#;

/// What the file held when it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// An empty database: a new ledger.
    Empty,
    /// A ledger (migrated to [`SCHEMA_VERSION`] if it was older).
    Ledger,
}

/// Checks what the file is and brings its schema up to date, inside `tx`
/// (an immediate transaction, so two processes cannot migrate at once).
pub(crate) fn prepare(tx: &Connection, path: &Path) -> Result<Found> {
    let db = |e| Error::db(path, e);
    let app: i64 = tx
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(db)?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(db)?;
    let tables: i64 = tx
        .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
        .map_err(db)?;
    let found = match (app, tables) {
        (0, 0) => Found::Empty,
        (APPLICATION_ID, _) => Found::Ledger,
        (0, _) => {
            return Err(Error::NotALedger {
                path: path.to_path_buf(),
                reason: "an SQLite database of another program".into(),
            });
        }
        (other, _) => {
            return Err(Error::NotALedger {
                path: path.to_path_buf(),
                reason: format!("an SQLite database with application id {other:#x}"),
            });
        }
    };
    if version > SCHEMA_VERSION {
        return Err(Error::NewerSchema {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    if found == Found::Empty {
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(db)?;
    }
    for &(v, description, sql) in MIGRATIONS.iter().filter(|m| m.0 > version) {
        tx.execute_batch(sql).map_err(db)?;
        tx.execute(
            &format!(
                "INSERT INTO migrations (version, description, applied_at) VALUES (?1, ?2, {NOW})"
            ),
            rusqlite::params![v, description],
        )
        .map_err(db)?;
        tx.pragma_update(None, "user_version", v).map_err(db)?;
    }
    Ok(found)
}
