//! Errors. Every message names the ledger file or the input, what is wrong and
//! the fix; none contains a secret value.

use crate::device::State;
use std::fmt;
use std::path::PathBuf;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One thing wrong with the input of a job, found before anything is reserved.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The CSV row as a spreadsheet numbers it (the header is row 1), when the
    /// problem is in one row.
    pub row: Option<usize>,
    /// The column (slot key) concerned, if any.
    pub column: Option<String>,
    /// What is wrong and how to fix it; never a secret value.
    pub message: String,
}

impl Problem {
    /// A problem of the whole input.
    pub fn general(message: impl Into<String>) -> Self {
        Problem {
            row: None,
            column: None,
            message: message.into(),
        }
    }

    /// A problem in one CSV row, optionally in one column.
    pub fn at(row: usize, column: Option<&str>, message: impl Into<String>) -> Self {
        Problem {
            row: Some(row),
            column: column.map(str::to_string),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.row, &self.column) {
            (Some(r), Some(c)) => write!(f, "row {r}, column {c}: {}", self.message),
            (Some(r), None) => write!(f, "row {r}: {}", self.message),
            (None, Some(c)) => write!(f, "column {c}: {}", self.message),
            (None, None) => f.write_str(&self.message),
        }
    }
}

/// Every problem of a job's input, listed at once.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problems {
    /// What was checked: the CSV's name, or `generated identities`.
    pub source: String,
    /// The problems, in input order.
    pub problems: Vec<Problem>,
}

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "{n} problem{} in {}; nothing was reserved or written:",
            if n == 1 { "" } else { "s" },
            self.source
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong with a ledger.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// SQLite reported an error.
    #[error("ledger {}: {source}", path.display())]
    Database {
        /// The ledger file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// Another process held the ledger for longer than the busy timeout.
    #[error(
        "ledger {}: locked by another process for more than {seconds} s; wait for it to finish or stop it",
        path.display()
    )]
    Busy {
        /// The ledger file.
        path: PathBuf,
        /// The busy timeout.
        seconds: u64,
    },
    /// `open` of a file that does not exist.
    #[error("no ledger at {}; check the path, or create one with a key (a batch run creates it)", path.display())]
    NotFound {
        /// The path given.
        path: PathBuf,
    },
    /// The file is an empty database: a run stopped before it finished creating the ledger
    /// (creation is one transaction, so nothing else can be half there).
    #[error("{} holds no ledger yet (it is empty: a run stopped before creating it); a batch run with the key creates it", path.display())]
    Uninitialised {
        /// The file.
        path: PathBuf,
    },
    /// The file is not a thinger-patch ledger.
    #[error("{} is not a thinger-patch ledger ({reason}); give another path", path.display())]
    NotALedger {
        /// The file.
        path: PathBuf,
        /// Why not.
        reason: String,
    },
    /// The ledger was written by a newer thinger-patch.
    #[error(
        "ledger {} has schema version {found}; this thinger-patch understands up to {supported}: upgrade thinger-patch",
        path.display()
    )]
    NewerSchema {
        /// The file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this crate knows.
        supported: i64,
    },
    /// An operation needs the ledger key and none was given.
    #[error(
        "ledger {}: {action} needs the ledger key; set THINGER_PATCH_LEDGER_KEY, give the passphrase, or use the keyring",
        path.display()
    )]
    KeyRequired {
        /// The file.
        path: PathBuf,
        /// What needed it.
        action: &'static str,
    },
    /// The key does not match the ledger's key check value.
    #[error(
        "ledger {}: wrong key (it does not open the ledger's key check); nothing was read or written. Use the key the ledger was created with",
        path.display()
    )]
    WrongKey {
        /// The file.
        path: PathBuf,
    },
    /// An empty key or passphrase.
    #[error("the ledger key is empty; give a non-empty THINGER_PATCH_LEDGER_KEY or passphrase")]
    EmptyKey,
    /// The system keyring failed.
    #[error("system keyring ({entry}): {reason}")]
    Keyring {
        /// `service/account`.
        entry: String,
        /// The keyring's error.
        reason: String,
    },
    /// A stored secret does not decrypt with the right key: the file was altered.
    #[error(
        "ledger {}: the stored secret {slot} of device {device} does not decrypt (the file was altered or damaged); restore it from a backup",
        path.display()
    )]
    Tampered {
        /// The file.
        path: PathBuf,
        /// The device id.
        device: String,
        /// The slot key.
        slot: String,
    },
    /// The job's input has problems (all of them listed).
    #[error("{0}")]
    Invalid(Problems),
    /// A job of that name exists with other input.
    #[error(
        "ledger {}: job {job} already exists with {what}; re-run it with the same input, or give the new run another job name",
        path.display()
    )]
    JobMismatch {
        /// The file.
        path: PathBuf,
        /// The job name.
        job: String,
        /// What differs.
        what: String,
    },
    /// No such job.
    #[error("ledger {}: no job named {job}", path.display())]
    UnknownJob {
        /// The file.
        path: PathBuf,
        /// The name.
        job: String,
    },
    /// Every identity of the job is issued.
    #[error(
        "job {job}: all {issued} identities are issued; plan more (more CSV rows, a larger count) or start another job"
    )]
    Exhausted {
        /// The job name.
        job: String,
        /// How many identities it has issued.
        issued: usize,
    },
    /// No such device.
    #[error("ledger {}: no device {device}; `ledger list` shows the devices", path.display())]
    UnknownDevice {
        /// The file.
        path: PathBuf,
        /// The device id asked for.
        device: String,
    },
    /// The device is not in a state that allows the operation.
    #[error("device {device} is {state}; {action} needs it {expected}")]
    WrongState {
        /// The device id.
        device: String,
        /// Its state.
        state: State,
        /// What was tried.
        action: &'static str,
        /// The state(s) it needs.
        expected: &'static str,
    },
    /// A reservation that is no longer held (released or forgotten meanwhile).
    #[error(
        "device {device} is no longer reserved for board {board} (it was released, forgotten or re-issued by another run); nothing was recorded"
    )]
    Stale {
        /// The device id.
        device: String,
        /// The board.
        board: String,
    },
    /// A generated device id is already taken.
    #[error(
        "device id {device} (generated for board {board}) is already in the ledger for {other}; change the device-id template"
    )]
    DuplicateDevice {
        /// The device id.
        device: String,
        /// The board it was generated for.
        board: String,
        /// Who holds it.
        other: String,
    },
    /// An argument the caller passed is malformed.
    #[error("{0}")]
    Usage(String),
    /// Random numbers were unavailable.
    #[error("the system's random number generator failed: {0}")]
    Random(String),
}

impl Error {
    /// Wraps a SQLite error with the ledger's path; a busy database gets its own error.
    pub(crate) fn db(path: &std::path::Path, source: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(e, _) = &source
            && matches!(
                e.code,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked
            )
        {
            return Error::Busy {
                path: path.to_path_buf(),
                seconds: crate::ledger::BUSY_TIMEOUT.as_secs(),
            };
        }
        if let rusqlite::Error::SqliteFailure(e, _) = &source
            && e.code == rusqlite::ErrorCode::NotADatabase
        {
            return Error::NotALedger {
                path: path.to_path_buf(),
                reason: "not an SQLite database".into(),
            };
        }
        Error::Database {
            path: path.to_path_buf(),
            source,
        }
    }
}
