//! thinger-patch-delivery: getting personalised firmware onto a device.
//!
//! - [`serial`]: over a chip's serial bootloader — espflash's library for the
//!   ESP32 family, esptool for the ESP8266 — with the port chosen by
//!   [`serial::port`] and the placement decided by
//!   [`thinger_patch_core::placement`];
//! - [`ota`]: to a running device over the network — ArduinoOTA and the HTTP
//!   update servers of the Arduino cores;
//! - [`convert`]: an ELF into a flashable image with espflash's library.
//!
//! Every transfer reports through one [`Progress`] trait, so the command line,
//! a batch runner flashing several ports at once, and a test each show it their
//! own way. Every wait is bounded. Errors carry a [`Kind`] a front end maps to
//! its exit codes, and a separate help text.

#![deny(missing_docs)]

pub mod convert;
pub mod error;
pub mod ota;
pub mod progress;
pub mod serial;

pub use error::{Error, Kind, Result};
pub use progress::{Progress, Silent};
