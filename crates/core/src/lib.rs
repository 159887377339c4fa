//! thinger-patch-core: personalise compiled ESP8266 / ESP32-family firmware
//! without recompiling, on bytes only.
//!
//! It detects and parses every ESP firmware kind ([`format`]), maps load
//! addresses to file bytes ([`space`]), finds the places values go (slots and
//! legacy placeholders), checks values against their rules, patches and
//! re-seals images ([`Firmware`], [`personalize`]) and verifies them
//! ([`report`]). It does no file, process, network or terminal I/O and builds
//! for `wasm32-unknown-unknown`: the command-line tool, the cargo subcommand,
//! the PlatformIO script, the batch runner and the browser page all call it.

#![warn(missing_docs)]

pub mod checksum;
pub mod chip;
pub mod config;
pub mod error;
pub mod firmware;
pub mod format;
pub mod listing;
pub mod ota;
pub mod personalize;
pub mod placement;
pub mod problem;
pub mod report;
pub mod space;
pub mod targets;
pub mod values;

pub use chip::Chip;
pub use error::{Error, Result};
pub use firmware::{Finished, Firmware, ParseOptions};
pub use listing::{ListOptions, Listing, SlotView, slots};
pub use personalize::{Checked, Personalized, Request, check, personalize};
pub use problem::{Problem, ProblemKind, Warning};
pub use report::Report;
pub use targets::{ConventionChoice, Placeholder, TargetKind};
