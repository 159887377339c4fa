//! The thinger-patch provisioning ledger: which identity went to which board.
//!
//! One SQLite file records every device (chip, MAC, device id, every slot
//! value with secrets encrypted, firmware, image SHA-256, where it was
//! written, times, state) and an append-only event log. An identity is
//! reserved for a board before anything is written and committed only after
//! the write is verified; a kill at any moment leaves it either reserved for
//! that board (resumed by the next run) or free, never on two boards.
//!
//! ```no_run
//! use thinger_patch_ledger::*;
//! # fn main() -> Result<()> {
//! let ledger = Ledger::open("thinger-patch.db", KeySource::Env("key from the environment".into()))?;
//! let slots = vec![SlotSpec { key: "thinger_device".into(), capacity: 32, secret: false, required: true }];
//! let source = IdentitySource::Generate(Generator {
//!     template: "bar-{n:04}".into(), vars: Default::default(), start: 1, count: 8,
//! });
//! let job = ledger.plan(&JobSpec::new("bar run", slots, source))?;
//! let board = Board::mac("a4:cf:12:0b:3c:7e".parse()?);
//! let mut r = ledger.reserve(&job, &board, ReserveOptions::default())?;
//! // ... personalise with r.values(), write, then:
//! r.mark_flashed(&Written { sha256: [0; 32], location: Location::Port("/dev/ttyUSB0".into()) })?;
//! r.mark_verified()?;
//! # Ok(()) }
//! ```
//!
//! `docs/ledger.md` describes the schema, the state machine, the encryption,
//! the template language and the formats.
#![deny(missing_docs)]

pub mod board;
mod crypto;
pub mod device;
mod engine;
pub mod error;
mod export;
mod fleet;
pub mod identity;
mod job;
mod ledger;
mod plan;
mod query;
mod reservation;
pub mod schema;
pub mod template;

pub use board::{Board, Location, Mac};
pub use crypto::{KdfParams, KeySource};
pub use device::{Build, DeviceRecord, Event, Filter, ListedValue, State};
pub use engine::{MASK, Value};
pub use error::{Error, Problem, Problems, Result};
pub use export::{CSV_COLUMNS, ExportFormat};
pub use fleet::{Confirmation, Delivery, DeliveryRecord, Method, Outcome};
pub use identity::{
    Alphabet, Credential, CsvInput, FirmwareInfo, Generator, IdentitySource, JobSpec, SlotSpec,
    Target,
};
pub use ledger::{BUSY_TIMEOUT, Job, JobStatus, Ledger, OpenOptions, ReserveOptions};
pub use plan::MAX_GENERATED;
pub use reservation::{Reservation, ReservationKind, Written};
pub use template::Template;
