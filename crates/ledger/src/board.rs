//! Boards (what an identity is bound to) and where an image was written.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address. Shown as `a4:cf:12:0b:3c:7e`; `{mac}` in a device-id
/// template is [`Mac::hex`], `a4cf120b3c7e`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac(pub [u8; 6]);

impl Mac {
    /// Twelve lowercase hex digits without separators.
    pub fn hex(&self) -> String {
        crate::engine::hex(&self.0)
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl FromStr for Mac {
    type Err = Error;

    /// Accepts `a4:cf:12:0b:3c:7e`, `A4-CF-12-0B-3C-7E` and `a4cf120b3c7e`.
    fn from_str(s: &str) -> Result<Self> {
        let digits: String = s.chars().filter(|c| !matches!(c, ':' | '-')).collect();
        let bad = || {
            Error::Usage(format!(
                "{s:?} is not a MAC address; write six hex bytes, e.g. a4:cf:12:0b:3c:7e"
            ))
        };
        if digits.len() != 12 || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut mac = [0u8; 6];
        for (i, m) in mac.iter_mut().enumerate() {
            *m = u8::from_str_radix(&digits[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
        }
        Ok(Mac(mac))
    }
}

/// What an identity is reserved for: a board seen on a serial port (by MAC),
/// or a numbered output slot of a run that writes files (`--out-dir`), which
/// has no MAC.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Board {
    /// A board identified on a port.
    Mac {
        /// Its factory MAC.
        mac: Mac,
        /// Its chip as detected (`esp32c3`, ...), if known.
        chip: Option<String>,
    },
    /// Output number `n` (from 1) of a file-writing run; `run` is a stable name
    /// of that run (the CLI uses the output folder's absolute path), so a
    /// re-run of the same command finds its slots again.
    Slot {
        /// The run's stable name.
        run: String,
        /// The slot number.
        n: u32,
    },
}

impl Board {
    /// A board by MAC, chip unknown.
    pub fn mac(mac: Mac) -> Self {
        Board::Mac { mac, chip: None }
    }

    /// The key stored in the ledger's `board` column: `mac:a4cf120b3c7e` or
    /// `slot:RUN#N`.
    pub fn key(&self) -> String {
        match self {
            Board::Mac { mac, .. } => format!("mac:{}", mac.hex()),
            Board::Slot { run, n } => format!("slot:{run}#{n}"),
        }
    }

    /// The MAC, for boards that have one.
    pub fn mac_address(&self) -> Option<Mac> {
        match self {
            Board::Mac { mac, .. } => Some(*mac),
            Board::Slot { .. } => None,
        }
    }

    /// The chip, if known.
    pub fn chip(&self) -> Option<&str> {
        match self {
            Board::Mac { chip, .. } => chip.as_deref(),
            Board::Slot { .. } => None,
        }
    }
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Board::Mac { mac, .. } => write!(f, "{mac}"),
            Board::Slot { run, n } => write!(f, "output {n} of {run}"),
        }
    }
}

/// Where an image was written.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", content = "at", rename_all = "snake_case")]
pub enum Location {
    /// A serial port (`/dev/ttyUSB0`, `COM3`).
    Port(String),
    /// A network address or mDNS name (OTA).
    Address(String),
    /// An output file.
    File(String),
    /// The Thinger.io cloud (OTA through the account).
    Cloud(String),
}

impl Location {
    /// `(kind, text)` as stored.
    pub fn parts(&self) -> (&'static str, &str) {
        match self {
            Location::Port(s) => ("port", s),
            Location::Address(s) => ("address", s),
            Location::File(s) => ("file", s),
            Location::Cloud(s) => ("cloud", s),
        }
    }

    /// Rebuilds a location from its stored parts.
    pub fn from_parts(kind: &str, text: String) -> Option<Self> {
        Some(match kind {
            "port" => Location::Port(text),
            "address" => Location::Address(text),
            "file" => Location::File(text),
            "cloud" => Location::Cloud(text),
            _ => return None,
        })
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (k, t) = self.parts();
        write!(f, "{k} {t}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_forms() {
        let m: Mac = "A4-CF-12-0B-3C-7E".parse().unwrap();
        assert_eq!(m.to_string(), "a4:cf:12:0b:3c:7e");
        assert_eq!(m.hex(), "a4cf120b3c7e");
        assert_eq!("a4cf120b3c7e".parse::<Mac>().unwrap(), m);
        assert!("a4:cf:12:0b:3c".parse::<Mac>().is_err());
        assert!("g4:cf:12:0b:3c:7e".parse::<Mac>().is_err());
        assert_eq!(Board::mac(m).key(), "mac:a4cf120b3c7e");
    }
}
