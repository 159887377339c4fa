//! Writing firmware over a chip's serial bootloader: espflash's library for the
//! ESP32 family ([`esp32`]: flasher stub, compressed transfer, MD5 check; the
//! device's partition table decides where an app image goes), esptool for the
//! ESP8266 ([`esp8266`], [`esptool`]), and which port ([`port`]). Where the
//! bytes go is [`thinger_patch_core::placement`]'s decision; this module only
//! carries it out.

pub mod esp32;
pub mod esp8266;
pub mod esptool;
pub mod port;

use crate::error::{Error, Result};
use crate::progress::Progress;
use std::time::Duration;
use thinger_patch_core::Firmware;
use thinger_patch_core::chip::Chip;
use thinger_patch_core::placement::{self, Plan, Route};

/// How to enter the serial bootloader.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Before {
    /// Pulse DTR/RTS (boards with auto-reset).
    #[default]
    DefaultReset,
    /// The chip is already in its bootloader.
    NoReset,
}

/// What to do after writing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum After {
    /// Reset the chip through RTS so it runs the new firmware.
    #[default]
    HardReset,
    /// Stay in the bootloader.
    NoReset,
}

/// How to flash.
#[derive(Debug, Clone)]
pub struct FlashOptions {
    /// Baud rate of the transfer (the connection starts at 115200).
    pub baud: u32,
    /// Check what was written (MD5; esptool always does).
    pub verify: bool,
    /// Upload the flasher stub (faster, compressed) instead of talking to the ROM loader.
    pub stub: bool,
    /// How to enter the bootloader.
    pub before: Before,
    /// What to do afterwards.
    pub after: After,
    /// Where the device's partition table is (read for app images).
    pub partition_table_offset: u32,
    /// ESP8266: how long esptool may take in all (`None`: derived from size and baud rate).
    pub esptool_deadline: Option<Duration>,
    /// ESP8266: how long esptool may print nothing.
    pub esptool_stall: Duration,
}

impl Default for FlashOptions {
    fn default() -> Self {
        FlashOptions {
            baud: 460_800,
            verify: true,
            stub: true,
            before: Before::DefaultReset,
            after: After::HardReset,
            partition_table_offset: 0x8000,
            esptool_deadline: None,
            esptool_stall: Duration::from_secs(60),
        }
    }
}

/// What a flashing did.
#[derive(Debug, Clone)]
pub struct Flashed {
    /// What was written and erased where.
    pub plan: Plan,
    /// The connected chip.
    pub chip: Chip,
    /// Its MAC address, when read (`aa:bb:cc:dd:ee:ff`).
    pub mac: Option<String>,
    /// Whether what was written was read back and checked.
    pub verified: bool,
    /// The tool and how it talked (`espflash 4.7 (stub)`, `esptool v5.6.0 (...)`).
    pub tool: String,
    /// Time spent writing (for the effective rate).
    pub transfer: Duration,
}

/// Writes `fw` (personalised bytes, parsed) to the device on `port`. The ESP8266 needs an
/// esptool (see [`esptool::find`]); find it before choosing a port, so a missing tool is
/// reported before anyone is asked to plug anything in.
pub fn flash(
    fw: &Firmware<'_>,
    port: &str,
    options: &FlashOptions,
    esptool: Option<&esptool::Esptool>,
    progress: &mut dyn Progress,
) -> Result<Flashed> {
    match route(fw)? {
        Route::Esp32 { chip, .. } => esp32::flash(fw, chip, port, options, progress),
        Route::Esp8266 => {
            let tool = esptool.ok_or_else(|| {
                Error::local(esptool::not_found_message())
                    .with_help("install esptool (pipx install esptool)")
            })?;
            esp8266::flash(fw, port, options, tool, progress)
        }
    }
}

/// Which loader reaches the chip this firmware is for.
pub fn route(fw: &Firmware<'_>) -> Result<Route> {
    placement::route(fw).map_err(|e| Error::refused(e.to_string()))
}
