//! A reserved identity and its way to `verified` or `failed`.

use crate::board::Location;
use crate::device::State;
use crate::engine::Value;
use crate::error::{Error, Result};
use crate::ledger::{Ledger, event, location_parts};
use crate::schema::NOW;
use rusqlite::Connection;

/// Why the board got this identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReservationKind {
    /// A fresh identity from the pool or the generator.
    New,
    /// The board's identity from an interrupted run (it was reserved or
    /// flashed): write it again and verify.
    Resumed,
    /// The board was verified (or its re-flash failed) before: it gets its
    /// own identity back.
    Repeat,
}

/// What was written, recorded by [`Reservation::mark_flashed`] and [`Reservation::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// SHA-256 of the personalised image as written.
    pub sha256: [u8; 32],
    /// Where it was written.
    pub location: Location,
}

/// An identity reserved for one board. Dropping it without
/// [`mark_verified`](Self::mark_verified), [`commit`](Self::commit) or
/// [`fail`](Self::fail) leaves it reserved for that board: the next run resumes it.
#[derive(Debug)]
pub struct Reservation<'l> {
    pub(crate) ledger: &'l Ledger,
    pub(crate) row: i64,
    pub(crate) device: String,
    pub(crate) board: String,
    pub(crate) job: String,
    pub(crate) kind: ReservationKind,
    pub(crate) state: State,
    pub(crate) sha256: Option<String>,
    pub(crate) values: Vec<(String, Value)>,
}

impl Reservation<'_> {
    /// The device id.
    pub fn device(&self) -> &str {
        &self.device
    }

    /// The board key it is reserved for.
    pub fn board(&self) -> &str {
        &self.board
    }

    /// New, resumed or repeated.
    pub fn kind(&self) -> ReservationKind {
        self.kind
    }

    /// `reserved`, or `flashed` when a resumed board had been written
    /// completely before the interruption: [`sha256`](Self::sha256) says
    /// what, so the caller may read the board back and only verify.
    pub fn state(&self) -> State {
        self.state
    }

    /// The SHA-256 (hex) of the image written before an interruption, for a
    /// resumed `flashed` reservation.
    pub fn sha256(&self) -> Option<&str> {
        self.sha256.as_deref()
    }

    /// Every slot value to write (secrets in clear: hand them to the engine only).
    pub fn values(&self) -> &[(String, Value)] {
        &self.values
    }

    /// One value.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.values.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Moves the row from one of `from` to `to`; 0 rows means the reservation
    /// is gone or the state is wrong, which the error tells apart.
    fn transition(
        &self,
        tx: &Connection,
        from: &[State],
        action: &'static str,
        expected: &'static str,
        set: &str,
        extra: &[&dyn rusqlite::ToSql],
    ) -> Result<()> {
        let states = from
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "UPDATE devices SET {set}, updated_at = {NOW} WHERE id = ?1 AND board = ?2 AND state IN ({states})"
        );
        let mut p: Vec<&dyn rusqlite::ToSql> = vec![&self.row, &self.board];
        p.extend_from_slice(extra);
        let n = tx
            .prepare_cached(&sql)
            .and_then(|mut st| st.execute(p.as_slice()))
            .map_err(self.ledger.db())?;
        if n == 1 {
            return Ok(());
        }
        let now: Option<(String, Option<String>)> =
            rusqlite::OptionalExtension::optional(tx.query_row(
                "SELECT state, board FROM devices WHERE id = ?1",
                [self.row],
                |r| Ok((r.get(0)?, r.get(1)?)),
            ))
            .map_err(self.ledger.db())?;
        match now {
            Some((state, Some(b))) if b == self.board => Err(Error::WrongState {
                device: self.device.clone(),
                state: state.parse().map_err(Error::Usage)?,
                action,
                expected,
            }),
            _ => Err(Error::Stale {
                device: self.device.clone(),
                board: self.board.clone(),
            }),
        }
    }

    fn log(&self, tx: &Connection, kind: &str, detail: Option<&str>) -> Result<()> {
        event(
            tx,
            &self.ledger.path,
            Some(&self.device),
            Some(&self.board),
            Some(&self.job),
            kind,
            detail,
        )
    }

    /// The image is written (not yet verified): records its SHA-256 and where.
    /// May be called again when a resumed board is written again.
    pub fn mark_flashed(&mut self, written: &Written) -> Result<()> {
        let sha = crate::engine::hex(&written.sha256);
        let (kind, at) = location_parts(&written.location);
        self.ledger.write(|tx| {
            self.transition(
                tx,
                &[State::Reserved, State::Flashed],
                "mark_flashed",
                "reserved or flashed",
                &format!("state = 'flashed', sha256 = ?3, location_kind = ?4, location = ?5, flashed_at = {NOW}"),
                &[&sha, &kind, &at],
            )?;
            self.log(tx, "flashed", Some(&written.location.to_string()))
        })
    }

    /// The written image read back and matched: the identity is committed.
    pub fn mark_verified(self) -> Result<()> {
        self.ledger.write(|tx| {
            self.transition(
                tx,
                &[State::Flashed],
                "mark_verified",
                "flashed (call mark_flashed first)",
                &format!(
                    "state = 'verified', verified_at = {NOW}, first_verified_at = coalesce(first_verified_at, {NOW}),
                     current_firmware = firmware, current_version = version, current_sha256 = sha256,
                     pending_firmware = NULL, pending_version = NULL, pending_sha256 = NULL, pending_at = NULL"
                ),
                &[],
            )?;
            self.log(tx, "verified", None)
        })
    }

    /// Written and verified in one step (when verification is immediate, as
    /// for an output file read back): one transaction instead of two.
    pub fn commit(self, written: &Written) -> Result<()> {
        let sha = crate::engine::hex(&written.sha256);
        let (kind, at) = location_parts(&written.location);
        self.ledger.write(|tx| {
            self.transition(
                tx,
                &[State::Reserved, State::Flashed],
                "commit",
                "reserved or flashed",
                &format!(
                    "state = 'verified', sha256 = ?3, location_kind = ?4, location = ?5,
                     flashed_at = {NOW}, verified_at = {NOW}, first_verified_at = coalesce(first_verified_at, {NOW}),
                     current_firmware = firmware, current_version = version, current_sha256 = ?3,
                     pending_firmware = NULL, pending_version = NULL, pending_sha256 = NULL, pending_at = NULL"
                ),
                &[&sha, &kind, &at],
            )?;
            self.log(tx, "verified", Some(&written.location.to_string()))
        })
    }

    /// The write failed: records `reason` (never put a secret in it) and
    /// returns the identity to the pool, unless the board was verified with
    /// it before (a failed re-flash): then it stays the board's.
    pub fn fail(self, reason: &str) -> Result<()> {
        self.ledger.write(|tx| {
            self.transition(
                tx,
                &[State::Reserved, State::Flashed],
                "fail",
                "reserved or flashed",
                "state = 'failed', reason = ?3,
                 board = CASE WHEN first_verified_at IS NULL THEN NULL ELSE board END",
                &[&reason],
            )?;
            self.log(tx, "failed", Some(reason))
        })
    }

    /// Stops without a result (e.g. Ctrl-C): the identity stays reserved for
    /// this board and the reason is logged; the next run resumes it.
    pub fn abandon(self, reason: &str) -> Result<()> {
        self.ledger
            .write(|tx| self.log(tx, "abandoned", Some(reason)))
    }
}
