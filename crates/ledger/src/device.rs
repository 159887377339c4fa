//! What the ledger knows about a device, as callers see it.

use crate::board::Location;
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The state of an identity (docs/ledger.md draws the machine).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// In the pool, never issued.
    Free,
    /// Reserved for a board; nothing or part of the image may be written.
    Reserved,
    /// Written to the board (or file), not yet verified.
    Flashed,
    /// Written and verified: committed to the board.
    Verified,
    /// The last write failed (see the reason). Back in the pool unless the
    /// board had been verified with it before (a failed re-flash keeps it).
    Failed,
    /// Taken out of use (a new identity was asked for its board); never issued again.
    Retired,
}

impl State {
    /// The stored and displayed name.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Free => "free",
            State::Reserved => "reserved",
            State::Flashed => "flashed",
            State::Verified => "verified",
            State::Failed => "failed",
            State::Retired => "retired",
        }
    }

    /// Every state.
    pub const ALL: [State; 6] = [
        State::Free,
        State::Reserved,
        State::Flashed,
        State::Verified,
        State::Failed,
        State::Retired,
    ];
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for State {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown state {s:?}; states: free, reserved, flashed, verified, failed, retired"
                )
            })
    }
}

/// One slot value of a device as listed: secrets are `********` unless revealed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListedValue {
    /// The slot key.
    pub key: String,
    /// Whether it is a secret (stored encrypted).
    pub secret: bool,
    /// The value, or the mask for a secret that was not revealed.
    pub value: String,
}

/// A firmware build: what is written or running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Build {
    /// Firmware name (project name).
    pub firmware: Option<String>,
    /// Version string.
    pub version: Option<String>,
    /// SHA-256 of the personalised image, lowercase hex.
    pub sha256: Option<String>,
}

/// A device as the ledger records it. Serialises as the JSON object of
/// `ledger list --json` and `ledger export --format json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceRecord {
    /// The device id.
    pub device: String,
    /// Its state.
    pub state: State,
    /// The board's MAC (`a4:cf:12:0b:3c:7e`), if bound to a board with one.
    pub mac: Option<String>,
    /// The chip detected on the board.
    pub chip: Option<String>,
    /// The board key it is bound to (`mac:...`, `slot:...`), `None` in the pool.
    pub board: Option<String>,
    /// The board it was last reserved for (kept after a failure).
    pub last_board: Option<String>,
    /// The job that planned it.
    pub job: String,
    /// Its number in a generated job (`{n}`).
    pub n: Option<u64>,
    /// What was last written: firmware, version, image SHA-256.
    #[serde(flatten)]
    pub written: Build,
    /// Where it was last written.
    pub location: Option<Location>,
    /// The network address or mDNS name for OTA updates, if known.
    pub address: Option<String>,
    /// Why the last write failed (state `failed`).
    pub reason: Option<String>,
    /// When the identity was planned.
    pub created_at: String,
    /// When it was last reserved.
    pub reserved_at: Option<String>,
    /// When it was last written.
    pub flashed_at: Option<String>,
    /// When it was last verified.
    pub verified_at: Option<String>,
    /// When it was first verified (committed).
    pub first_verified_at: Option<String>,
    /// When the row last changed.
    pub updated_at: String,
    /// What the device is known to run (confirmed).
    pub current: Build,
    /// A build delivered by a fleet update that the device has not confirmed yet.
    pub pending: Option<Build>,
    /// Every slot value, secrets masked unless revealed. Serialised as an
    /// object `{"key": "value", ...}`.
    #[serde(serialize_with = "values_as_map")]
    pub values: Vec<ListedValue>,
}

fn values_as_map<S: serde::Serializer>(values: &[ListedValue], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(Some(values.len()))?;
    for v in values {
        m.serialize_entry(&v.key, &v.value)?;
    }
    m.end()
}

/// Which devices to list; every field given must match.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this job.
    pub job: Option<String>,
    /// Only these states (any of them); empty means all.
    pub states: Vec<State>,
    /// Only this device id.
    pub device: Option<String>,
    /// Only this MAC.
    pub mac: Option<crate::board::Mac>,
    /// Only devices in service (verified at least once) whose confirmed
    /// version differs from this one: the devices a fleet update still has to reach.
    pub version_not: Option<String>,
}

/// One line of the append-only event log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Its sequence number.
    pub id: i64,
    /// When.
    pub at: String,
    /// The device id concerned.
    pub device: Option<String>,
    /// The board concerned.
    pub board: Option<String>,
    /// The job concerned.
    pub job: Option<String>,
    /// `planned`, `reserved`, `resumed`, `flashed`, `verified`, `failed`, ...
    pub kind: String,
    /// Free text (never a secret).
    pub detail: Option<String>,
}
