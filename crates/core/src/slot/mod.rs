//! Patch slots: the records firmware declares (see `docs/slot-format.md`),
//! finding them in any firmware, and the rules of the standard Thinger keys.

pub mod record;
pub mod scan;
pub mod standard;

pub use record::{Decoded, SlotRecord, SlotState};
pub use scan::{FoundSlot, scan};

/// The one secrecy rule for slots: a slot is secret when its record carries the SECRET flag or
/// its key is a standard secret key (`wifi_password`, `thinger_credentials`), whatever the flag
/// says: firmware compiled without the flag must not make credentials print.
pub fn is_secret(key: &str, flags: u16) -> bool {
    flags & record::FLAG_SECRET != 0 || standard::standard(key).is_some_and(|k| k.secret)
}
