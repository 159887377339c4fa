//! Patch slots: the records firmware declares (see `docs/slot-format.md`),
//! finding them in any firmware, and the rules of the standard Thinger keys.

pub mod record;
pub mod scan;
pub mod standard;

pub use record::{Decoded, SlotRecord, SlotState};
pub use scan::{FoundSlot, scan};
