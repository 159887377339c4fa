//! thinger-patch: personalise compiled ESP8266 / ESP32-family firmware without
//! recompiling.
//!
//! The core (this library without the `cli` feature) works on bytes only: it
//! detects and parses every ESP firmware kind ([`format`]), maps load addresses
//! to file bytes ([`space`]), patches and re-seals images ([`Firmware`]) and
//! verifies them ([`report`]). It does no file, process or terminal I/O and
//! builds for `wasm32-unknown-unknown`.

pub mod build_settings;
pub mod checksum;
pub mod chip;
pub mod config;
pub mod delivery;
pub mod error;
pub mod firmware;
pub mod format;
pub mod ota_protocol;
pub mod personalize;
pub mod placeholder;
pub mod report;
pub mod slot;
pub mod space;
pub mod values;

pub use chip::Chip;
pub use error::{Error, Result};
pub use firmware::{Finished, Firmware, ParseOptions};
pub use personalize::{Personalized, Request, personalize};
pub use report::Report;

#[cfg(feature = "cli")]
pub mod cli;
