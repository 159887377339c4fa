//! What can go wrong getting firmware onto a device. One error type for the
//! crate: a [`Kind`] a front end maps to its exit codes, a message that says
//! what happened (naming the port or host), a separate [`Error::help`], and the
//! cause when there is one. No message ever holds a value or a password.

use std::fmt;

/// Which kind of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Refused before anything was written: the connected chip or the device's partition
    /// table does not fit the image, or the image cannot be sent this way.
    Refused,
    /// Something on this computer: a tool it lacks (esptool), a file it cannot create.
    Local,
    /// The device or the network: no answer, a dropped line, a rejected block, a timeout.
    Device,
    /// A usage mistake the library found (several ports and no choice).
    Usage,
}

/// A failure, with what to do about it.
#[derive(Debug)]
pub struct Error {
    kind: Kind,
    code: &'static str,
    message: String,
    help: Option<String>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error of `kind`.
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        Error {
            kind,
            code: "",
            message: message.into(),
            help: None,
            source: None,
        }
    }

    /// Refused before writing.
    pub fn refused(message: impl Into<String>) -> Self {
        Self::new(Kind::Refused, message)
    }

    /// A local problem.
    pub fn local(message: impl Into<String>) -> Self {
        Self::new(Kind::Local, message)
    }

    /// A device or network failure.
    pub fn device(message: impl Into<String>) -> Self {
        Self::new(Kind::Device, message)
    }

    /// Names the failure for programs (`esptool_stall`, `chip_mismatch`, ...), so a front end
    /// can add advice in its own words (a flag name).
    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    /// The failure's name, or `""` for failures without a specific one.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Adds what to do about it.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Keeps the cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// Which kind of failure.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// What to do about it.
    pub fn help(&self) -> Option<&str> {
        self.help.as_deref()
    }

    /// The message alone (without the help).
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.help {
            Some(h) => write!(f, "{} ({h})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
