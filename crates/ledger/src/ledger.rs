//! The ledger: opening (schema, key), planning jobs and reserving identities.

use crate::board::{Board, Location};
use crate::crypto::{Cipher, KdfParams, KeySource, SALT_LEN, value_aad};
use crate::device::{DeviceRecord, Event, Filter, State};
use crate::engine::Value;
use crate::error::{Error, Result};
use crate::identity::JobSpec;
use crate::plan;
use crate::reservation::{Reservation, ReservationKind};
use crate::schema::{self, Found, NOW};
use crate::template::Template;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

/// How long a transaction waits for another process holding the ledger.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);
/// The `meta.format` value.
const FORMAT: &str = "thinger-patch-ledger";

/// How to open a ledger.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// Create the file when it does not exist (needs a key).
    pub create: bool,
    /// Argon2id parameters for a new ledger (an existing one keeps its own).
    pub kdf: KdfParams,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            create: true,
            kdf: KdfParams::default(),
        }
    }
}

/// Options of [`Ledger::reserve`].
#[derive(Debug, Clone, Copy, Default)]
pub struct ReserveOptions {
    /// Give a board that already has an identity a new one: a verified old
    /// identity is retired (never issued again), an unverified one goes back
    /// to the pool.
    pub new_identity: bool,
}

/// A planned job, ready to reserve identities from.
#[derive(Debug, Clone)]
pub struct Job {
    pub(crate) id: i64,
    pub(crate) spec: JobSpec,
    pub(crate) template: Option<Template>,
}

impl Job {
    /// The job's name.
    pub fn name(&self) -> &str {
        &self.spec.name
    }
}

/// How far a job is: identities by state.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct JobStatus {
    /// Identities recorded for the job, by state.
    pub by_state: BTreeMap<String, usize>,
    /// Identities the job can still issue (free or failed in the pool, plus
    /// those a generator has not made yet).
    pub remaining: usize,
}

/// A provisioning ledger (one SQLite file). Share it between threads by
/// reference; processes share the file (SQLite locks it).
pub struct Ledger {
    pub(crate) path: PathBuf,
    conn: Mutex<Connection>,
    pub(crate) cipher: Option<Cipher>,
    /// Whether the connection is in `synchronous = FULL` (changed under the lock).
    sync_full: AtomicBool,
}

impl std::fmt::Debug for Ledger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ledger")
            .field("path", &self.path)
            .field("key", &self.cipher.is_some())
            .finish()
    }
}

impl Ledger {
    /// Opens the ledger at `path`, creating it (with `key`) when missing.
    /// A wrong key is refused here, before anything is read or written.
    pub fn open(path: impl AsRef<Path>, key: KeySource) -> Result<Ledger> {
        Self::open_with(path, Some(key), &OpenOptions::default())
    }

    /// Opens an existing ledger without its key: listing and exporting with
    /// secrets masked work; anything that reads or writes a secret is refused.
    pub fn open_locked(path: impl AsRef<Path>) -> Result<Ledger> {
        Self::open_with(
            path,
            None,
            &OpenOptions {
                create: false,
                ..OpenOptions::default()
            },
        )
    }

    /// Opens with explicit options.
    pub fn open_with(
        path: impl AsRef<Path>,
        key: Option<KeySource>,
        options: &OpenOptions,
    ) -> Result<Ledger> {
        let path = path.as_ref().to_path_buf();
        if !options.create && !path.exists() {
            return Err(Error::NotFound { path });
        }
        let db = |e| Error::db(&path, e);
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if options.create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let mut conn = Connection::open_with_flags(&path, flags).map_err(db)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(db)?;
        // WAL: readers never block the writer; FULL: a commit is on disk before
        // the board is touched, so a power cut cannot un-reserve a written identity.
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .map_err(db)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::NotALedger {
                path,
                reason: format!(
                    "SQLite refused WAL mode (journal mode {mode}); put the ledger on a local file system"
                ),
            });
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(db)?;

        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db)?;
        let found = schema::prepare(&tx, &path)?;
        let cipher = if found == Found::Empty {
            if !options.create {
                return Err(Error::Uninitialised { path });
            }
            let Some(key) = &key else {
                return Err(Error::KeyRequired {
                    path,
                    action: "creating a ledger",
                });
            };
            let mut salt = [0u8; SALT_LEN];
            crate::crypto::random(&mut salt)?;
            let cipher = Cipher::derive(&key.secret(true)?, &salt, options.kdf)?;
            let check = cipher.key_check()?;
            let p = options.kdf;
            let rows: [(&str, rusqlite::types::Value); 7] = [
                ("format", FORMAT.to_string().into()),
                ("kdf", "argon2id-v19".to_string().into()),
                ("kdf_m_cost", i64::from(p.m_cost).into()),
                ("kdf_t_cost", i64::from(p.t_cost).into()),
                ("kdf_p_cost", i64::from(p.p_cost).into()),
                ("kdf_salt", salt.to_vec().into()),
                ("key_check", check.into()),
            ];
            for (k, v) in rows {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                    params![k, v],
                )
                .map_err(db)?;
            }
            tx.execute(
                &format!("INSERT INTO meta (key, value) VALUES ('created_at', {NOW})"),
                [],
            )
            .map_err(db)?;
            event(&tx, &path, None, None, None, "created", None)?;
            Some(cipher)
        } else {
            None
        };
        tx.commit().map_err(db)?;

        let cipher = match (cipher, key) {
            (Some(c), _) => Some(c),
            (None, None) => None,
            (None, Some(key)) => Some(unlock(&conn, &path, &key)?),
        };
        Ok(Ledger {
            path,
            conn: Mutex::new(conn),
            cipher,
            sync_full: AtomicBool::new(true),
        })
    }

    /// The ledger file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the ledger was opened with its key.
    pub fn unlocked(&self) -> bool {
        self.cipher.is_some()
    }

    pub(crate) fn cipher(&self, action: &'static str) -> Result<&Cipher> {
        self.cipher.as_ref().ok_or_else(|| Error::KeyRequired {
            path: self.path.clone(),
            action,
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic in another thread cannot leave a half-done transaction
        // (`Tx` rolls back on drop), so a poisoned lock is still usable.
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction, committed if `f`
    /// succeeds, without waiting for the disk (`synchronous = NORMAL`; see
    /// [`Ledger::write_durable`] for what may skip the fsync).
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.write_durable(false, f)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction. `durable`: the commit is
    /// fsynced before this returns (`synchronous = FULL`); needed where losing
    /// the commit in a power cut could hand an identity to a second board
    /// (planning, reserving). Other transitions may be lost by a power cut
    /// (never by a crash of the process): the identity then stays reserved for
    /// its board and the next run resumes it. In WAL mode commits stay in
    /// order, so the next durable commit makes every earlier one durable too.
    pub(crate) fn write_durable<T>(
        &self,
        durable: bool,
        f: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        let conn = self.lock();
        let db = |e| Error::db(&self.path, e);
        if self.sync_full.load(Ordering::Relaxed) != durable {
            let sql = if durable {
                "PRAGMA synchronous = FULL"
            } else {
                "PRAGMA synchronous = NORMAL"
            };
            exec(&conn, sql, []).map_err(db)?;
            self.sync_full.store(durable, Ordering::Relaxed);
        }
        let tx = Tx::begin(&conn, "BEGIN IMMEDIATE").map_err(db)?;
        let out = f(&conn)?;
        tx.commit().map_err(db)?;
        Ok(out)
    }

    /// Runs `f` in a read transaction (a consistent snapshot).
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.lock();
        let _tx = Tx::begin(&conn, "BEGIN DEFERRED").map_err(|e| Error::db(&self.path, e))?;
        f(&conn) // read only: ended by the rollback on drop
    }

    pub(crate) fn db(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        |e| Error::db(&self.path, e)
    }

    /// Reserves an identity for `board`, durably (fsynced) before anything
    /// is written to it: the board's own identity if it has one (a resumed or
    /// repeated write, unless [`ReserveOptions::new_identity`]), else the next
    /// one of the job's pool (CSV order; failed ones come back in their
    /// order), else a newly generated one. Never the identity of another board.
    pub fn reserve(
        &self,
        job: &Job,
        board: &Board,
        options: ReserveOptions,
    ) -> Result<Reservation<'_>> {
        self.cipher("reserving an identity")?;
        self.write_durable(true, |tx| self.reserve_in(tx, job, board, options))
    }

    /// Reserves identities for several boards in one transaction (one fsync):
    /// for runs that know their outputs in advance (`--out-dir`), each output
    /// still reserved before its file is written. All or nothing: an error
    /// (e.g. the pool runs out) reserves none.
    pub fn reserve_many(
        &self,
        job: &Job,
        boards: &[Board],
        options: ReserveOptions,
    ) -> Result<Vec<Reservation<'_>>> {
        self.cipher("reserving an identity")?;
        self.write_durable(true, |tx| {
            boards
                .iter()
                .map(|b| self.reserve_in(tx, job, b, options))
                .collect()
        })
    }

    /// One reservation inside `tx`.
    fn reserve_in(
        &self,
        tx: &Connection,
        job: &Job,
        board: &Board,
        options: ReserveOptions,
    ) -> Result<Reservation<'_>> {
        let cipher = self.cipher("reserving an identity")?;
        let db = self.db();
        let key = board.key();
        let mac = board.mac_address().map(|m| m.to_string());
        let spec = &job.spec;
        let own: Option<(i64, String, String, Option<String>)> = tx
            .prepare_cached(
                "SELECT id, device, state, first_verified_at FROM devices WHERE board = ?1",
            )
            .and_then(|mut st| {
                st.query_row([&key], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
                    .optional()
            })
            .map_err(&db)?;
        let mut exclude = None;
        let mut picked = None;
        if let Some((id, device, state, first_verified)) = own {
            if options.new_identity {
                let (to, kind) = if first_verified.is_some() {
                    ("retired", "retired")
                } else {
                    ("free", "released")
                };
                exec(
                    tx,
                    &format!(
                        "UPDATE devices SET state = ?2, board = NULL, last_board = ?3, updated_at = {NOW} WHERE id = ?1"
                    ),
                    params![id, to, key],
                )
                .map_err(&db)?;
                event(
                    tx,
                    &self.path,
                    Some(&device),
                    Some(&key),
                    Some(&spec.name),
                    kind,
                    Some("a new identity was asked for this board"),
                )?;
                exclude = Some(id);
            } else {
                let kind = match state.as_str() {
                    "reserved" | "flashed" => ReservationKind::Resumed,
                    _ => ReservationKind::Repeat,
                };
                picked = Some((id, device, kind));
            }
        }
        let (row, device, kind) = match picked {
            Some(p) => p,
            None => match next_in_pool(tx, &self.path, job.id, exclude)? {
                Some((id, device)) => (id, device, ReservationKind::New),
                None => {
                    let (id, device) = self.generate(tx, job, board)?;
                    (id, device, ReservationKind::New)
                }
            },
        };
        // A resumed board keeps `flashed`: its image was complete, the caller
        // may read it back against the recorded digest.
        exec(
            tx,
            &format!(
                "UPDATE devices SET state = CASE WHEN ?7 AND state = 'flashed' THEN 'flashed' ELSE 'reserved' END,
                 board = ?2, last_board = ?2, mac = coalesce(?3, mac),
                 chip = coalesce(?4, chip), firmware = ?5, version = ?6, reason = NULL,
                 reserved_at = {NOW}, updated_at = {NOW} WHERE id = ?1"
            ),
            params![
                row,
                key,
                mac,
                board.chip(),
                spec.firmware.name,
                spec.firmware.version,
                kind == ReservationKind::Resumed
            ],
        )
        .map_err(|e| match &e {
            rusqlite::Error::SqliteFailure(f, _)
                if f.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                Error::Stale {
                    device: device.clone(),
                    board: key.clone(),
                }
            }
            _ => Error::db(&self.path, e),
        })?;
        let what = match kind {
            ReservationKind::New => "reserved",
            ReservationKind::Resumed => "resumed",
            ReservationKind::Repeat => "reserved again",
        };
        event(
            tx,
            &self.path,
            Some(&device),
            Some(&key),
            Some(&spec.name),
            what,
            None,
        )?;
        let (state, sha256): (String, Option<String>) = tx
            .prepare_cached("SELECT state, sha256 FROM devices WHERE id = ?1")
            .and_then(|mut st| st.query_row([row], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(&db)?;
        let state: State = state.parse().map_err(Error::Usage)?;
        Ok(Reservation {
            ledger: self,
            row,
            values: load_values(tx, &self.path, cipher, row, &device)?,
            device,
            board: key,
            job: spec.name.clone(),
            kind,
            state,
            sha256: sha256.filter(|_| state == State::Flashed),
        })
    }

    /// Makes the next identity of a generated job, inside the reserve transaction.
    fn generate(&self, tx: &Connection, job: &Job, board: &Board) -> Result<(i64, String)> {
        let db = self.db();
        let exhausted = |tx: &Connection| -> Result<Error> {
            let issued: i64 = tx
                .query_row(
                    "SELECT count(*) FROM devices WHERE job_id = ?1",
                    [job.id],
                    |r| r.get(0),
                )
                .map_err(&db)?;
            Ok(Error::Exhausted {
                job: job.spec.name.clone(),
                issued: issued as usize,
            })
        };
        let Some(template) = &job.template else {
            return Err(exhausted(tx)?);
        };
        let (start, count, next): (i64, i64, i64) = cached_row(
            tx,
            "SELECT start_n, count, next_n FROM jobs WHERE id = ?1",
            [job.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(&db)?;
        if next >= start + count {
            return Err(exhausted(tx)?);
        }
        let device = template
            .render(next as u64, board.mac_address())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "device-id template {:?} needs the board's MAC; {board} has none",
                    template.source()
                ))
            })?;
        if let Some(h) = holder(tx, &self.path, &device)? {
            return Err(Error::DuplicateDevice {
                device,
                board: board.to_string(),
                other: h.describe(),
            });
        }
        let cipher = self.cipher("generating an identity")?;
        let values = plan::merge_values(&job.spec, &device, &BTreeMap::new())?;
        let id = insert_device(
            tx,
            &self.path,
            cipher,
            &job.spec,
            job.id,
            &device,
            next,
            Some(next),
            &values,
        )?;
        exec(
            tx,
            "UPDATE jobs SET next_n = ?2 WHERE id = ?1",
            params![job.id, next + 1],
        )
        .map_err(&db)?;
        Ok((id, device))
    }

    /// How far `job` is.
    pub fn job_status(&self, job: &Job) -> Result<JobStatus> {
        let db = self.db();
        self.read(|tx| {
            let mut status = JobStatus::default();
            let mut st = tx
                .prepare("SELECT state, count(*) FROM devices WHERE job_id = ?1 GROUP BY state")
                .map_err(&db)?;
            let rows = st
                .query_map([job.id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
                .map_err(&db)?;
            for r in rows {
                let (s, n) = r.map_err(&db)?;
                status.by_state.insert(s, n as usize);
            }
            let pool: i64 = tx
                .query_row(
                    "SELECT count(*) FROM devices WHERE job_id = ?1 AND board IS NULL AND state IN ('free', 'failed')",
                    [job.id],
                    |r| r.get(0),
                )
                .map_err(&db)?;
            let left: i64 = tx
                .query_row(
                    "SELECT coalesce(start_n + count - next_n, 0) FROM jobs WHERE id = ?1",
                    [job.id],
                    |r| r.get(0),
                )
                .map_err(&db)?;
            status.remaining = (pool + left.max(0)) as usize;
            Ok(status)
        })
    }

    /// The identity bound to `board`, if any (secrets masked).
    pub fn bound(&self, board: &Board) -> Result<Option<DeviceRecord>> {
        let id: Option<String> = self.read(|tx| {
            tx.query_row(
                "SELECT device FROM devices WHERE board = ?1",
                [board.key()],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.db())
        })?;
        id.map(|d| self.device(&d, false)).transpose()
    }

    /// The devices matching `filter`, in planning order; secrets masked
    /// unless `reveal` (which needs the key).
    pub fn devices(&self, filter: &Filter, reveal: bool) -> Result<Vec<DeviceRecord>> {
        let cipher = if reveal {
            Some(self.cipher("revealing secrets")?)
        } else {
            None
        };
        self.read(|tx| crate::query::devices(tx, &self.path, filter, cipher))
    }

    /// One device; secrets masked unless `reveal`.
    pub fn device(&self, device: &str, reveal: bool) -> Result<DeviceRecord> {
        let filter = Filter {
            device: Some(device.to_string()),
            ..Filter::default()
        };
        self.devices(&filter, reveal)?
            .pop()
            .ok_or_else(|| Error::UnknownDevice {
                path: self.path.clone(),
                device: device.to_string(),
            })
    }

    /// A device's slot values in clear, to personalise a new build with its
    /// identity (fleet updates). Needs the key.
    pub fn values(&self, device: &str) -> Result<Vec<(String, Value)>> {
        let cipher = self.cipher("reading a device's values")?;
        self.read(|tx| {
            let row = self.row_of(tx, device)?;
            load_values(tx, &self.path, cipher, row, device)
        })
    }

    pub(crate) fn row_of(&self, tx: &Connection, device: &str) -> Result<i64> {
        tx.query_row("SELECT id FROM devices WHERE device = ?1", [device], |r| {
            r.get(0)
        })
        .optional()
        .map_err(self.db())?
        .ok_or_else(|| Error::UnknownDevice {
            path: self.path.clone(),
            device: device.to_string(),
        })
    }

    /// Puts an identity that is reserved, flashed or failed back in the pool
    /// (e.g. its board was lost after an interruption). Refused for an
    /// identity that was ever verified: it lives on a board; forget it instead.
    pub fn release(&self, device: &str) -> Result<()> {
        self.write(|tx| {
            let row = self.row_of(tx, device)?;
            let (state, first_verified, board, job): (String, Option<String>, Option<String>, String) = tx
                .query_row(
                    "SELECT d.state, d.first_verified_at, d.board, j.name FROM devices d JOIN jobs j ON j.id = d.job_id WHERE d.id = ?1",
                    [row],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .map_err(self.db())?;
            let state: State = state.parse().map_err(Error::Usage)?;
            if first_verified.is_some() || !matches!(state, State::Reserved | State::Flashed | State::Failed) {
                return Err(Error::WrongState {
                    device: device.to_string(),
                    state,
                    action: "release",
                    expected: "reserved, flashed or failed and never verified (a verified identity lives on its board: forget it instead)",
                });
            }
            tx.execute(
                &format!("UPDATE devices SET state = 'free', board = NULL, updated_at = {NOW} WHERE id = ?1"),
                [row],
            )
            .map_err(self.db())?;
            event(tx, &self.path, Some(device), board.as_deref(), Some(&job), "released", Some(&format!("was {state}")))
        })
    }

    /// Removes a device and its values from the ledger (its events stay).
    /// Its id can then be planned again.
    pub fn forget(&self, device: &str) -> Result<()> {
        self.write(|tx| {
            let row = self.row_of(tx, device)?;
            let (state, board): (String, Option<String>) = tx
                .query_row(
                    "SELECT state, board FROM devices WHERE id = ?1",
                    [row],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(self.db())?;
            tx.execute("DELETE FROM devices WHERE id = ?1", [row])
                .map_err(self.db())?;
            event(
                tx,
                &self.path,
                Some(device),
                board.as_deref(),
                None,
                "forgotten",
                Some(&format!("was {state}")),
            )
        })
    }

    /// The event log, oldest first; only `device`'s events when given.
    pub fn events(&self, device: Option<&str>) -> Result<Vec<Event>> {
        let db = self.db();
        self.read(|tx| {
            let mut st = tx
                .prepare(
                    "SELECT id, at, device, board, job, kind, detail FROM events
                     WHERE ?1 IS NULL OR device = ?1 ORDER BY id",
                )
                .map_err(&db)?;
            st.query_map([device], |r| {
                Ok(Event {
                    id: r.get(0)?,
                    at: r.get(1)?,
                    device: r.get(2)?,
                    board: r.get(3)?,
                    job: r.get(4)?,
                    kind: r.get(5)?,
                    detail: r.get(6)?,
                })
            })
            .map_err(&db)?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(&db)
        })
    }

    /// Checks the file and the ledger's invariants; returns what is wrong
    /// (empty when consistent). With the key, every secret must decrypt.
    pub fn check(&self) -> Result<Vec<String>> {
        let db = self.db();
        self.read(|tx| {
            let mut issues = Vec::new();
            let integrity: String = tx
                .query_row("PRAGMA integrity_check", [], |r| r.get(0))
                .map_err(&db)?;
            if integrity != "ok" {
                issues.push(format!("SQLite integrity check: {integrity}"));
            }
            let fk: i64 = tx
                .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))
                .map_err(&db)?;
            if fk > 0 {
                issues.push(format!("{fk} rows break a foreign key"));
            }
            let unbound: i64 = tx
                .query_row(
                    "SELECT count(*) FROM devices WHERE (state IN ('reserved','flashed','verified') AND board IS NULL)
                        OR (state IN ('free','retired') AND board IS NOT NULL)",
                    [],
                    |r| r.get(0),
                )
                .map_err(&db)?;
            if unbound > 0 {
                issues.push(format!("{unbound} devices whose state and board disagree"));
            }
            let unverified_bound_failed: i64 = tx
                .query_row(
                    "SELECT count(*) FROM devices WHERE state = 'failed' AND first_verified_at IS NULL AND board IS NOT NULL",
                    [],
                    |r| r.get(0),
                )
                .map_err(&db)?;
            if unverified_bound_failed > 0 {
                issues.push(format!("{unverified_bound_failed} failed, never verified devices still bound to a board"));
            }
            if let Some(cipher) = &self.cipher {
                let mut st = tx
                    .prepare("SELECT d.device, v.key, v.sealed FROM device_values v JOIN devices d ON d.id = v.device_id WHERE v.secret = 1")
                    .map_err(&db)?;
                let rows = st
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?)))
                    .map_err(&db)?;
                for r in rows {
                    let (device, key, sealed) = r.map_err(&db)?;
                    if cipher.open(&value_aad(&device, &key), &sealed).is_none() {
                        issues.push(format!("secret {key} of device {device} does not decrypt"));
                    }
                }
            }
            Ok(issues)
        })
    }
}

/// A job row: id, source, template, start, next number.
pub(crate) type StoredJob = (i64, String, Option<String>, Option<i64>, Option<i64>);

/// Opens the key check value with `key`.
fn unlock(conn: &Connection, path: &Path, key: &KeySource) -> Result<Cipher> {
    let db = |e| Error::db(path, e);
    let meta = |k: &str| -> Result<rusqlite::types::Value> {
        conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
            .optional()
            .map_err(db)?
            .ok_or_else(|| Error::NotALedger {
                path: path.to_path_buf(),
                reason: format!("its meta table has no {k}"),
            })
    };
    let int = |k: &str| -> Result<u32> {
        match meta(k)? {
            rusqlite::types::Value::Integer(i) => u32::try_from(i).map_err(|_| Error::NotALedger {
                path: path.to_path_buf(),
                reason: format!("meta {k} is out of range"),
            }),
            _ => Err(Error::NotALedger {
                path: path.to_path_buf(),
                reason: format!("meta {k} is not a number"),
            }),
        }
    };
    let blob = |k: &str| -> Result<Vec<u8>> {
        match meta(k)? {
            rusqlite::types::Value::Blob(b) => Ok(b),
            _ => Err(Error::NotALedger {
                path: path.to_path_buf(),
                reason: format!("meta {k} is not a blob"),
            }),
        }
    };
    let params = KdfParams {
        m_cost: int("kdf_m_cost")?,
        t_cost: int("kdf_t_cost")?,
        p_cost: int("kdf_p_cost")?,
    };
    let cipher = Cipher::derive(&key.secret(false)?, &blob("kdf_salt")?, params)?;
    if !cipher.verify_check(&blob("key_check")?) {
        return Err(Error::WrongKey {
            path: path.to_path_buf(),
        });
    }
    Ok(cipher)
}

/// Who holds a device id in the ledger.
pub(crate) struct Holder {
    pub row: i64,
    pub job_id: i64,
    pub job: String,
    pub state: String,
    pub board: Option<String>,
}

impl Holder {
    pub(crate) fn describe(&self) -> String {
        match &self.board {
            Some(b) => format!("job {}, {} for board {}", self.job, self.state, b),
            None => format!("job {}, {}", self.job, self.state),
        }
    }
}

pub(crate) fn holder(tx: &Connection, path: &Path, device: &str) -> Result<Option<Holder>> {
    cached_row(
        tx,
        "SELECT d.id, d.job_id, j.name, d.state, d.board FROM devices d JOIN jobs j ON j.id = d.job_id WHERE d.device = ?1",
        [device],
        |r| {
            Ok(Holder {
                row: r.get(0)?,
                job_id: r.get(1)?,
                job: r.get(2)?,
                state: r.get(3)?,
                board: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(|e| Error::db(path, e))
}

fn next_in_pool(
    tx: &Connection,
    path: &Path,
    job: i64,
    exclude: Option<i64>,
) -> Result<Option<(i64, String)>> {
    cached_row(
        tx,
        "SELECT id, device FROM devices WHERE job_id = ?1 AND board IS NULL AND state IN ('free', 'failed')
         AND id IS NOT ?2 ORDER BY pool_order, id LIMIT 1",
        params![job, exclude],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .optional()
    .map_err(|e| Error::db(path, e))
}

#[allow(clippy::too_many_arguments)] // one row's columns
pub(crate) fn insert_device(
    tx: &Connection,
    path: &Path,
    cipher: &Cipher,
    spec: &JobSpec,
    job_id: i64,
    device: &str,
    order: i64,
    n: Option<i64>,
    values: &[(String, Value)],
) -> Result<i64> {
    let db = |e| Error::db(path, e);
    exec(
        tx,
        &format!(
            "INSERT INTO devices (device, job_id, pool_order, n, state, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, 'free', {NOW}, {NOW})"
        ),
        params![device, job_id, order, n],
    )
    .map_err(db)?;
    let id = tx.last_insert_rowid();
    let mut st = tx
        .prepare_cached("INSERT INTO device_values (device_id, key, secret, value, sealed) VALUES (?1, ?2, ?3, ?4, ?5)")
        .map_err(db)?;
    for (key, value) in values {
        if spec.is_secret(key) {
            let sealed = cipher.seal(&value_aad(device, key), value.expose().as_bytes())?;
            st.execute(params![id, key, 1, None::<String>, sealed])
                .map_err(db)?;
        } else {
            st.execute(params![id, key, 0, value.expose(), None::<Vec<u8>>])
                .map_err(db)?;
        }
    }
    event(
        tx,
        path,
        Some(device),
        None,
        Some(&spec.name),
        "planned",
        None,
    )?;
    Ok(id)
}

/// A device's values, secrets decrypted.
pub(crate) fn load_values(
    tx: &Connection,
    path: &Path,
    cipher: &Cipher,
    row: i64,
    device: &str,
) -> Result<Vec<(String, Value)>> {
    let db = |e| Error::db(path, e);
    let mut st = tx
        .prepare_cached(
            "SELECT key, value, sealed FROM device_values WHERE device_id = ?1 ORDER BY rowid",
        )
        .map_err(db)?;
    let rows = st
        .query_map([row], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, Option<String>>(1)?,
                r.get::<_, Option<Vec<u8>>>(2)?,
            ))
        })
        .map_err(db)?;
    let mut out = Vec::new();
    for r in rows {
        let (key, plain, sealed) = r.map_err(db)?;
        let value = match (plain, sealed) {
            (Some(p), _) => p,
            (None, Some(s)) => {
                let open =
                    cipher
                        .open(&value_aad(device, &key), &s)
                        .ok_or_else(|| Error::Tampered {
                            path: path.to_path_buf(),
                            device: device.to_string(),
                            slot: key.clone(),
                        })?;
                String::from_utf8(open.to_vec()).map_err(|_| Error::Tampered {
                    path: path.to_path_buf(),
                    device: device.to_string(),
                    slot: key.clone(),
                })?
            }
            (None, None) => String::new(),
        };
        out.push((key, Value::new(value)));
    }
    Ok(out)
}

/// A transaction begun and ended through the statement cache (rusqlite's
/// `Transaction` parses `BEGIN` and `COMMIT` anew every time, which was a
/// visible part of the ledger's cost). Rolled back when dropped uncommitted:
/// on an error, or a panic inside the transaction.
struct Tx<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Tx<'c> {
    fn begin(conn: &'c Connection, begin: &str) -> rusqlite::Result<Self> {
        exec(conn, begin, [])?;
        Ok(Tx { conn, open: true })
    }

    fn commit(mut self) -> rusqlite::Result<()> {
        exec(self.conn, "COMMIT", [])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if self.open && !self.conn.is_autocommit() {
            // Nothing to report to: the caller already has the error that got here.
            let _ = exec(self.conn, "ROLLBACK", []);
        }
    }
}

/// One row (or none) through the connection's statement cache.
pub(crate) fn cached_row<T>(
    tx: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
    f: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    tx.prepare_cached(sql)?.query_row(p, f)
}

/// Runs one statement through the connection's statement cache.
pub(crate) fn exec(
    tx: &Connection,
    sql: &str,
    p: impl rusqlite::Params,
) -> rusqlite::Result<usize> {
    tx.prepare_cached(sql)?.execute(p)
}

/// Appends to the event log.
pub(crate) fn event(
    tx: &Connection,
    path: &Path,
    device: Option<&str>,
    board: Option<&str>,
    job: Option<&str>,
    kind: &str,
    detail: Option<&str>,
) -> Result<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO events (at, device, board, job, kind, detail) VALUES ({NOW}, ?1, ?2, ?3, ?4, ?5)"
    ))
    .and_then(|mut st| st.execute(params![device, board, job, kind, detail]))
    .map(|_| ())
    .map_err(|e| Error::db(path, e))
}

/// Stored location columns for `loc`.
pub(crate) fn location_parts(loc: &Location) -> (&'static str, &str) {
    loc.parts()
}
