//! thinger-patch-core: personalise compiled ESP8266 / ESP32-family firmware
//! without recompiling, on bytes only.
//!
//! It detects and parses every ESP firmware kind ([`format`](mod@format)), maps load
//! addresses to file bytes ([`space`]), finds the places values go (slots and
//! legacy placeholders), checks values against their rules, patches and
//! re-seals images ([`Firmware`], [`personalize()`]) and verifies them
//! ([`report`]). It does no file, process, network or terminal I/O and builds
//! for `wasm32-unknown-unknown`: the command-line tool, the cargo subcommand,
//! the PlatformIO script, the batch runner and the browser page all call it.
//!
//! ```
//! use thinger_patch_core::values::{Assignment, Origin};
//! use thinger_patch_core::{ListOptions, Request, personalize, slots};
//!
//! // The ESP32-C3 demo firmware of this repository: an app image declaring eight slots.
//! let firmware = include_bytes!("../../../examples/c-firmware/prebuilt/esp32c3-demo.bin");
//!
//! // What it takes: one entry per key, secrets masked.
//! let listing = slots(firmware, &ListOptions::default())?;
//! assert!(listing.report.valid);
//! assert!(listing.slots.iter().any(|s| s.key == "wifi_ssid" && s.required));
//!
//! // One device's values in, a re-sealed and re-verified image out.
//! let value = |key: &str, text: &str| Assignment::new(key, text, Origin::Form);
//! let request = Request {
//!     values: vec![
//!         value("wifi_ssid", "Kitchen"),
//!         value("thinger_user", "alice"),
//!         value("thinger_device", "kitchen_sensor"),
//!         value("thinger_credentials", "s3cret-credential"),
//!     ],
//!     ..Request::default()
//! };
//! let done = personalize(firmware, &request)?;
//! assert!(done.report.valid && done.holds_secrets());
//! assert_eq!(done.bytes.len(), firmware.len());
//! # Ok::<(), thinger_patch_core::Error>(())
//! ```

#![deny(missing_docs)]

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
