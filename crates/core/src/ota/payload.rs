//! Which bytes to send for each kind of file: an app image as it is, the boot app of a
//! merged image, an Arduino ESP8266 image whole, a `.bin.gz` compressed.

use super::Core;
use crate::chip::Chip;
use crate::firmware::{Compression, Firmware};
use crate::format::Layout;
use crate::format::app_image::AppImage;
use crate::format::signature::Signature;
use std::ops::Range;

/// The bytes an over-the-air update sends, chosen from a (personalised) file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Range of the file's bytes to send (the whole file except for a merged image).
    pub range: Range<usize>,
    /// The Arduino core that receives it.
    pub core: Core,
    /// The chip the image is for.
    pub chip: Option<Chip>,
    /// What is sent, for people: `app image`, `app ota_0 of the merged image at 0x10000`, ...
    pub what: String,
    /// Sent gzip-compressed (ESP8266 only; its Updater decompresses).
    pub compressed: bool,
}

/// Chooses what to send from `file` (a personalised file, possibly `.bin.gz`):
///
/// - an ESP32-family app image: the whole file;
/// - a merged full-flash image: only the app the bootloader starts (`factory`, else the
///   lowest OTA slot), from its partition offset to the end of the image (and of its
///   signature, if it has one): the device's Updater writes an app into its other OTA slot;
/// - an Arduino ESP8266 image (eboot + app): the whole file, as `espota.py` does; the
///   ESP8266 Updater stages it and eboot copies it to flash 0x0;
/// - `.bin.gz` of an Arduino ESP8266 image: the compressed file (the ESP8266 Updater
///   accepts a gzip stream, `0x1F 0x8B`);
///
/// and refuses, with the reason, what no Arduino updater accepts: ELF files, ESP8266 v2
/// (`0xEA`) images and bare ESP8266 images (their Updater needs eboot + app), gzip for the
/// ESP32 family (its Updater does not decompress), a merged image without an app.
pub fn firmware_payload(file: &[u8]) -> Result<Payload, String> {
    let fw = Firmware::parse(file).map_err(|e| e.to_string())?;
    let compressed = fw.compression() == Some(Compression::Gzip);
    let whole = 0..file.len();
    let chip = fw.chip();
    let payload = |range: Range<usize>, core: Core, what: String| Payload {
        range,
        core,
        chip,
        what,
        compressed,
    };
    match fw.layout() {
        Layout::Elf(_) => Err("an ELF file cannot be sent over the air: send the image the build makes from it (the .bin), or convert it with esptool elf2image".into()),
        Layout::Esp8266V2(_) => Err("this is an ESP8266 v2 (0xEA) image, which the Arduino ESP8266 Updater refuses (it accepts an Arduino image starting with 0xE9, or its .bin.gz)".into()),
        Layout::Arduino(_) => Ok(payload(
            whole,
            Core::Esp8266,
            if compressed {
                "gzip-compressed Arduino ESP8266 image (eboot + app)".into()
            } else {
                "Arduino ESP8266 image (eboot + app)".into()
            },
        )),
        Layout::App(_) if chip == Some(Chip::Esp8266) || chip.is_none() => Err("this is a bare ESP8266 image without eboot: the Arduino ESP8266 Updater copies what it receives to flash 0x0, so it needs the full Arduino image (eboot + app) the Arduino core builds".into()),
        Layout::App(_) if compressed => Err("the ESP32 Updater does not decompress gzip: send the uncompressed .bin".into()),
        Layout::App(_) => Ok(payload(whole, Core::Esp32, "app image".into())),
        Layout::Merged(_) if compressed => Err("the ESP32 Updater does not decompress gzip: send the uncompressed .bin".into()),
        Layout::Merged(m) => {
            let boot = m
                .table
                .as_ref()
                .and_then(|t| t.boot_app())
                .and_then(|p| m.apps.iter().find(|a| a.partition.as_ref() == Some(p)))
                .or_else(|| m.apps.first())
                .ok_or("this merged image holds no app to send (only a bootloader and a partition table)")?;
            let end = signed_end(&boot.image, boot.signature.as_ref(), file.len());
            let name = boot
                .partition
                .as_ref()
                .map_or(String::new(), |p| format!(" {} ({})", p.label, p.app_role()));
            Ok(payload(
                boot.image.offset..end,
                Core::Esp32,
                format!(
                    "app{name} of the merged image, at {:#x}",
                    boot.image.offset
                ),
            ))
        }
    }
}

/// Where an app ends, including its signature block.
fn signed_end(img: &AppImage, sig: Option<&Signature>, len: usize) -> usize {
    let end = match sig {
        None => img.end,
        Some(Signature::SecureBootV1 { offset }) => offset + 68,
        Some(Signature::SecureBootV2 { offset, blocks, .. }) => offset + blocks * 1216,
        Some(Signature::ArduinoSignedOta { .. }) => len,
    };
    end.min(len)
}
