//! Where identities come from: the job's description as the caller gives it.

use crate::engine::Value;
use std::collections::BTreeMap;

/// A slot the firmware declares, as the caller read it from the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotSpec {
    /// The key (`thinger_device`, `wifi_password`, ...).
    pub key: String,
    /// The largest value in bytes.
    pub capacity: usize,
    /// The firmware flags it secret (stored encrypted, masked everywhere).
    pub secret: bool,
    /// The firmware flags it required (a value must come from somewhere).
    pub required: bool,
}

/// Characters a generated credential is drawn from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alphabet {
    /// `A-Z a-z 0-9` (about 5.95 bits per character).
    Alphanumeric,
    /// `0-9 a-f`.
    Hex,
    /// These characters (ASCII, at least 2, no duplicates).
    Chars(String),
}

impl Alphabet {
    pub(crate) fn chars(&self) -> Vec<u8> {
        match self {
            Alphabet::Alphanumeric => (b'A'..=b'Z')
                .chain(b'a'..=b'z')
                .chain(b'0'..=b'9')
                .collect(),
            Alphabet::Hex => (b'0'..=b'9').chain(b'a'..=b'f').collect(),
            Alphabet::Chars(s) => s.bytes().collect(),
        }
    }
}

/// A slot whose value is drawn per device from the system CSPRNG.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// The slot key (usually `thinger_credentials`).
    pub key: String,
    /// How many characters; `None` fills the slot's capacity.
    pub length: Option<usize>,
    /// The characters to draw from.
    pub alphabet: Alphabet,
}

impl Credential {
    /// A credential for `key` filling its slot with `A-Z a-z 0-9`.
    pub fn new(key: impl Into<String>) -> Self {
        Credential {
            key: key.into(),
            length: None,
            alphabet: Alphabet::Alphanumeric,
        }
    }
}

/// A CSV of identities: a header row of slot keys, then one device per row,
/// consumed in order. The caller reads the file; `name` appears in messages.
#[derive(Debug, Clone)]
pub struct CsvInput {
    /// The file name, for messages.
    pub name: String,
    /// The file's text.
    pub text: String,
}

/// Generated identities: device ids from a template (see [`crate::template`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generator {
    /// The device-id template, e.g. `bar-{n:04}` or `esp-{mac}`.
    pub template: String,
    /// Variables for `{NAME}` fields (never secrets).
    pub vars: BTreeMap<String, String>,
    /// The first `{n}` (usually 1).
    pub start: u64,
    /// How many identities the job issues at most.
    pub count: u64,
}

/// The identities of a job.
#[derive(Debug, Clone)]
pub enum IdentitySource {
    /// Planned in a CSV.
    Csv(CsvInput),
    /// Generated per board.
    Generate(Generator),
}

/// What a job writes to: boards identified by MAC, or numbered files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Boards on serial ports ([`crate::Board::Mac`]).
    Boards,
    /// Output files (`--out-dir`; [`crate::Board::Slot`]): no MAC, so `{mac}` is refused.
    Files,
}

/// The firmware a job writes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FirmwareInfo {
    /// Its name (project name from the app descriptor, or the file name).
    pub name: String,
    /// Its version string.
    pub version: String,
}

/// Everything [`crate::Ledger::plan`] needs to check and record a job.
#[derive(Debug, Clone)]
pub struct JobSpec {
    /// A stable name: the same command re-run gives the same name, so an
    /// interrupted job is completed rather than started again.
    pub name: String,
    /// The firmware's slots (key, capacity, secrecy; rules come from the engine).
    pub slots: Vec<SlotSpec>,
    /// The key whose value is the device id (default `thinger_device`). It need
    /// not be a slot: then the id is recorded but not written.
    pub device_key: String,
    /// CSV or generated.
    pub source: IdentitySource,
    /// Values for every device (from a profile), resolved by the caller.
    /// Per-device values win: CSV columns over generated credentials over these.
    pub profile: Vec<(String, Value)>,
    /// Slots filled per device from the CSPRNG (when the CSV has no such column).
    pub credentials: Vec<Credential>,
    /// The firmware written.
    pub firmware: FirmwareInfo,
    /// Boards or files.
    pub target: Target,
}

impl JobSpec {
    /// A job with the standard device key and nothing else set.
    pub fn new(name: impl Into<String>, slots: Vec<SlotSpec>, source: IdentitySource) -> Self {
        JobSpec {
            name: name.into(),
            slots,
            device_key: "thinger_device".into(),
            source,
            profile: Vec::new(),
            credentials: Vec::new(),
            firmware: FirmwareInfo::default(),
            target: Target::Boards,
        }
    }

    pub(crate) fn slot(&self, key: &str) -> Option<&SlotSpec> {
        self.slots.iter().find(|s| s.key == key)
    }

    /// Whether `key` is stored encrypted.
    pub(crate) fn is_secret(&self, key: &str) -> bool {
        self.slot(key)
            .map_or_else(|| crate::engine::looks_secret(key), |s| s.secret)
    }
}

/// Draws `len` characters uniformly from `alphabet` (rejection sampling, no modulo bias).
pub(crate) fn random_string(len: usize, alphabet: &[u8]) -> crate::Result<String> {
    let k = alphabet.len();
    debug_assert!((2..=256).contains(&k));
    let limit = 256 - (256 % k);
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        crate::crypto::random(&mut buf)?;
        for &b in &buf {
            if (b as usize) < limit && out.len() < len {
                out.push(alphabet[b as usize % k] as char);
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_strings() {
        let a = Alphabet::Alphanumeric.chars();
        let s = random_string(64, &a).unwrap();
        assert_eq!(s.len(), 64);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s, random_string(64, &a).unwrap());
        let h = random_string(1000, &Alphabet::Hex.chars()).unwrap();
        // Every hex digit shows up in 1000 draws (fails with probability < 1e-25).
        assert!(
            Alphabet::Hex
                .chars()
                .iter()
                .all(|c| h.as_bytes().contains(c))
        );
    }
}
