//! Choosing the chip and flash settings, and turning a (personalised) ELF into
//! an app image or a merged bootloader + partition table + app image with
//! espflash's library.

use crate::error::{Error, Result};
use espflash::flasher::{FlashData, FlashFrequency, FlashMode, FlashSettings, FlashSize};
use espflash::image_format::idf::IdfBootloaderFormat;
use std::path::PathBuf;
use std::str::FromStr;
use thinger_patch_core::Chip;
use thinger_patch_core::config::build::{FlashFreq, FlashMode as Mode, FlashSize as Size};

/// A setting and where it came from (for error messages).
#[derive(Debug, Clone)]
pub struct Sourced<T> {
    /// The setting.
    pub value: T,
    /// `--chip`, `[build] chip in thinger-patch.toml`, ...
    pub from: String,
}

/// Everything the converter needs besides the ELF.
#[derive(Debug, Clone, Default)]
pub struct ImageSettings {
    /// The chip, when given.
    pub chip: Option<Sourced<Chip>>,
    /// SPI flash mode (else the bootloader's).
    pub flash_mode: Option<Mode>,
    /// Flash size (else 4 MB).
    pub flash_size: Option<Size>,
    /// Flash frequency (else the chip's).
    pub flash_freq: Option<FlashFreq>,
    /// A partition table (CSV or binary) instead of espflash's default.
    pub partition_table: Option<Sourced<PathBuf>>,
    /// A bootloader instead of espflash's bundled one.
    pub bootloader: Option<Sourced<PathBuf>>,
    /// Where the partition table goes.
    pub partition_table_offset: Option<u32>,
    /// The app partition the image is for.
    pub target_app_partition: Option<String>,
    /// One merged file: bootloader, partition table and app at their offsets.
    pub merged: bool,
}

/// Every Rust target triple of an ESP32-family chip espflash knows.
pub fn chips_for_triple(triple: &str) -> Vec<Chip> {
    Chip::esp32_family()
        .filter(|c| espflash_chip(*c).is_some_and(|e| e.supports_build_target(triple)))
        .collect()
}

fn is_esp_triple(triple: &str) -> bool {
    !chips_for_triple(triple).is_empty()
}

fn espflash_chip(chip: Chip) -> Option<espflash::target::Chip> {
    espflash::target::Chip::from_str(chip.name()).ok()
}

fn names(chips: &[Chip]) -> String {
    chips
        .iter()
        .map(|c| c.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The chip: `--chip` or `[build] chip` if given (checked against the target
/// triple and the ELF), else the one the ELF's memory map names, else the one
/// the target triple allows.
pub fn resolve_chip(
    explicit: Option<&Sourced<Chip>>,
    triple: Option<&str>,
    from_elf: Option<Chip>,
    elf_label: &str,
) -> Result<Chip> {
    let by_triple = triple.map(chips_for_triple).unwrap_or_default();
    let bad = Error::refused;
    if let Some(e) = explicit {
        if let Some(t) = triple.filter(|t| is_esp_triple(t))
            && !by_triple.contains(&e.value)
        {
            return Err(bad(format!(
                "chip {} (from {}) does not match the target {t}, which is for {}; fix the chip or build for the chip's target",
                e.value,
                e.from,
                names(&by_triple)
            )));
        }
        if let Some(c) = from_elf
            && c != e.value
        {
            return Err(bad(format!(
                "chip {} (from {}) does not match {elf_label}, which is linked for {c}; fix the chip or the firmware's target/features",
                e.value, e.from
            )));
        }
        return Ok(e.value);
    }
    if let Some(c) = from_elf {
        if !by_triple.is_empty() && !by_triple.contains(&c) {
            return Err(bad(format!(
                "{elf_label} is linked for {c}, but its target {} is for {}; check the firmware's target and linker script",
                triple.unwrap_or_default(),
                names(&by_triple)
            )));
        }
        return Ok(c);
    }
    match by_triple.as_slice() {
        [one] => Ok(*one),
        [] => Err(bad(format!(
            "cannot tell which chip {elf_label} is for{}; set chip = \"esp32c3\" (for example) in the [build] table of thinger-patch.toml, or pass --chip",
            triple.map_or(String::new(), |t| format!(" (target {t})"))
        ))),
        many => Err(bad(format!(
            "cannot tell which chip {elf_label} is for: its target {} fits {}; set chip = \"...\" in the [build] table of thinger-patch.toml, or pass --chip",
            triple.unwrap_or_default(),
            names(many)
        ))),
    }
}

// Every value maps to one of espflash's: no default arm, so a new setting cannot silently
// become another.
fn flash_mode(m: Mode) -> FlashMode {
    match m {
        Mode::Qio => FlashMode::Qio,
        Mode::Qout => FlashMode::Qout,
        Mode::Dio => FlashMode::Dio,
        Mode::Dout => FlashMode::Dout,
    }
}

fn flash_size(s: Size) -> FlashSize {
    match s {
        Size::Mb1 => FlashSize::_1Mb,
        Size::Mb2 => FlashSize::_2Mb,
        Size::Mb4 => FlashSize::_4Mb,
        Size::Mb8 => FlashSize::_8Mb,
        Size::Mb16 => FlashSize::_16Mb,
        Size::Mb32 => FlashSize::_32Mb,
        Size::Mb64 => FlashSize::_64Mb,
        Size::Mb128 => FlashSize::_128Mb,
        Size::Mb256 => FlashSize::_256Mb,
    }
}

fn flash_freq(f: FlashFreq) -> FlashFrequency {
    match f {
        FlashFreq::Mhz12 => FlashFrequency::_12Mhz,
        FlashFreq::Mhz15 => FlashFrequency::_15Mhz,
        FlashFreq::Mhz16 => FlashFrequency::_16Mhz,
        FlashFreq::Mhz20 => FlashFrequency::_20Mhz,
        FlashFreq::Mhz24 => FlashFrequency::_24Mhz,
        FlashFreq::Mhz26 => FlashFrequency::_26Mhz,
        FlashFreq::Mhz30 => FlashFrequency::_30Mhz,
        FlashFreq::Mhz40 => FlashFrequency::_40Mhz,
        FlashFreq::Mhz48 => FlashFrequency::_48Mhz,
        FlashFreq::Mhz60 => FlashFrequency::_60Mhz,
        FlashFreq::Mhz80 => FlashFrequency::_80Mhz,
    }
}

/// Converts `elf` for `chip`: the app image, or with `merged` one file holding
/// the bootloader, the partition table and the app at their flash offsets
/// (gaps filled with 0xFF, as erased flash reads).
pub fn convert(elf: &[u8], chip: Chip, s: &ImageSettings, elf_label: &str) -> Result<Vec<u8>> {
    let Some(ef_chip) = espflash_chip(chip) else {
        return Err(Error::refused(format!(
            "{elf_label} is {chip} firmware; espflash makes images for the ESP32 family only"
        ))
        .with_help("personalise the ELF with `thinger-patch patch` and convert it with the ESP8266 core's own tools"));
    };
    let settings = FlashSettings::new(
        s.flash_mode.map(flash_mode),
        s.flash_size.map(flash_size),
        s.flash_freq.map(flash_freq),
    );
    let data = FlashData::new(settings, 0, None, ef_chip, ef_chip.default_xtal_frequency());
    let fail = |e: espflash::Error| {
        let mut m = format!("{elf_label}: cannot make a {chip} image: {e}");
        if let Some(p) = &s.partition_table {
            m.push_str(&format!(
                " (partition table {} from {})",
                p.value.display(),
                p.from
            ));
        }
        if let Some(b) = &s.bootloader {
            m.push_str(&format!(
                " (bootloader {} from {})",
                b.value.display(),
                b.from
            ));
        }
        Error::refused(m).with_source(e)
    };
    let format = IdfBootloaderFormat::new(
        elf,
        &data,
        s.partition_table.as_ref().map(|p| p.value.as_path()),
        s.bootloader.as_ref().map(|p| p.value.as_path()),
        s.partition_table_offset,
        s.target_app_partition.as_deref(),
    )
    .map_err(fail)?;
    if !s.merged {
        // One app segment is what espflash makes; none would be a converter bug, not a panic.
        return format
            .ota_segments()
            .next()
            .map(|seg| seg.data.into_owned())
            .ok_or_else(|| {
                Error::refused(format!(
                    "{elf_label}: espflash made no app image from it (is it firmware with a code segment?)"
                ))
            });
    }
    let segments: Vec<(u32, Vec<u8>)> = format
        .flash_segments()
        .map(|seg| (seg.addr, seg.data.into_owned()))
        .collect();
    merge(&segments).map_err(|m| Error::refused(format!("{elf_label}: {m}")))
}

/// Lays `(offset, bytes)` parts out in one flash image, 0xFF between them.
pub fn merge(parts: &[(u32, Vec<u8>)]) -> Result<Vec<u8>, String> {
    let mut sorted: Vec<_> = parts.iter().collect();
    sorted.sort_by_key(|(addr, _)| *addr);
    let mut out: Vec<u8> = Vec::new();
    for (addr, data) in sorted {
        let at = *addr as usize;
        if at < out.len() {
            return Err(format!(
                "the part at flash offset {addr:#x} overlaps the previous one (which ends at {:#x}); check the partition table offset and the partitions",
                out.len()
            ));
        }
        out.resize(at, 0xFF);
        out.extend_from_slice(data);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(chip: Chip) -> Sourced<Chip> {
        Sourced {
            value: chip,
            from: "--chip".into(),
        }
    }

    #[test]
    fn chip_inference() {
        let c3 = "riscv32imc-unknown-none-elf";
        let mut for_c3 = chips_for_triple(c3);
        for_c3.sort_by_key(|c| c.name());
        assert_eq!(for_c3, [Chip::Esp32c2, Chip::Esp32c3]);
        assert!(chips_for_triple("x86_64-unknown-linux-gnu").is_empty());
        // The ELF decides between the chips a triple allows.
        assert_eq!(
            resolve_chip(None, Some(c3), Some(Chip::Esp32c3), "fw").unwrap(),
            Chip::Esp32c3
        );
        // A triple for one chip only.
        assert_eq!(
            resolve_chip(None, Some("xtensa-esp32s3-none-elf"), None, "fw").unwrap(),
            Chip::Esp32s3
        );
        // Ambiguous: ask for the chip.
        let e = resolve_chip(None, Some(c3), None, "fw").unwrap_err();
        assert!(
            e.to_string().contains("[build]") && e.to_string().contains("esp32c3"),
            "{e}"
        );
        // Mismatches are errors naming both sides.
        let e = resolve_chip(Some(&from(Chip::Esp32s3)), Some(c3), None, "fw").unwrap_err();
        assert!(
            e.to_string().contains("esp32s3") && e.to_string().contains(c3),
            "{e}"
        );
        let e = resolve_chip(
            Some(&from(Chip::Esp32c2)),
            Some(c3),
            Some(Chip::Esp32c3),
            "fw",
        )
        .unwrap_err();
        assert!(e.to_string().contains("linked for esp32c3"), "{e}");
        // An unknown (custom) triple does not get in the way of an explicit chip.
        assert_eq!(
            resolve_chip(Some(&from(Chip::Esp32c6)), Some("my-custom"), None, "fw").unwrap(),
            Chip::Esp32c6
        );
    }

    #[test]
    fn merge_fills_gaps_and_refuses_overlaps() {
        let m = merge(&[(4, vec![1, 2]), (0, vec![9])]).unwrap();
        assert_eq!(m, [9, 0xFF, 0xFF, 0xFF, 1, 2]);
        assert!(merge(&[(0, vec![1, 2, 3]), (2, vec![4])]).is_err());
    }
}
