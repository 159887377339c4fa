//! Exit codes (documented in the README) and the error type that carries one.

use std::fmt;
use std::path::Path;

pub const OK: i32 = 0;
/// Invalid input or a refused operation.
pub const INVALID: i32 = 1;
/// Usage error (clap exits with 2 itself).
pub const USAGE: i32 = 2;
/// File or other local I/O error.
pub const IO: i32 = 3;
/// Device or network error.
pub const DEVICE: i32 = 4;
/// Internal error: a bug (a panic), reported without its message.
pub const INTERNAL: i32 = 70;
/// Interrupted by the user (Ctrl-C in the guided mode): 128 + SIGINT, as a shell reports it.
pub const INTERRUPTED: i32 = 130;

/// An error on its way to the user: a message (already naming the file) and an
/// exit code.
#[derive(Debug)]
pub struct CliError {
    pub code: i32,
    pub message: String,
}

impl CliError {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        CliError {
            code,
            message: message.into(),
        }
    }

    /// An engine error about `path`.
    pub fn engine(path: &Path, e: &thinger_patch_core::Error) -> Self {
        CliError::new(
            INVALID,
            format!("{}: {}", path.display(), crate::messages::error(e)),
        )
    }

    /// An I/O error while `doing` something with `path`.
    pub fn io(path: &Path, doing: &str, e: &std::io::Error) -> Self {
        CliError::new(IO, format!("{}: cannot {doing}: {e}", path.display()))
    }

    /// The same error with what else the user must know (what was left done or undone).
    pub fn with_note(mut self, note: &str) -> Self {
        self.message = format!("{}\n  note: {note}", self.message);
        self
    }

    /// Prints the error and returns its exit code.
    pub fn report(&self) -> i32 {
        eprintln!("error: {}", self.message);
        self.code
    }
}

impl From<thinger_patch_delivery::Error> for CliError {
    /// A delivery failure: its message and help, with the exit code of its kind.
    fn from(e: thinger_patch_delivery::Error) -> Self {
        use thinger_patch_delivery::Kind;
        let code = match e.kind() {
            Kind::Refused => INVALID,
            Kind::Local => IO,
            Kind::Usage => USAGE,
            _ => DEVICE,
        };
        // Advice that names this tool's flags, where the library's help cannot.
        let flag = match e.code() {
            "esptool_stall" => {
                Some("--esptool-stall-timeout S sets how long esptool may be silent")
            }
            "esptool_deadline" => Some("--esptool-timeout S sets another limit"),
            _ => None,
        };
        CliError::new(
            code,
            match flag {
                Some(f) => format!("{e} ({f})"),
                None => e.to_string(),
            },
        )
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}
