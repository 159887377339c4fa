//! Where firmware goes on a device's flash: the pure placement decision behind
//! `thinger-patch flash` (and any other front end that writes to a device).
//!
//! No I/O here. A front end parses the (personalised) image, asks [`route`]
//! which loader speaks to the chip and whether the device's partition table is
//! needed, reads that table from the device if so, and then asks [`plan`] for
//! the exact writes and erases:
//!
//! - an ESP32-family **app image** goes to the app partition the device boots
//!   with a blank `otadata`: `factory`, or else `ota_0`; `otadata` is erased so
//!   that an older OTA slot does not keep booting;
//! - a **merged image** (file offset = flash address) goes to the base derived
//!   from where its bootloader sits in the file and where the chip's ROM loads
//!   the bootloader from (0x0, 0x1000 or 0x2000); anything ambiguous is refused;
//!   an `otadata` partition of its table that the file does not cover is erased;
//! - an **Arduino ESP8266 image** (eboot + app) and an ESP8266 v1 image go to 0x0;
//!   an ESP8266 v2 image (SDK `user1.bin`) to 0x1000, where it is linked to run.

use crate::Firmware;
use crate::chip::Chip;
use crate::format::partition_table::{self, Partition, PartitionTable};
use crate::format::{Layout, MergedImage};
use serde::Serialize;
use std::fmt;

/// Flash sector size: the unit of every erase.
pub const SECTOR: u32 = 0x1000;
/// Partition type `data`, subtype `ota` (the `otadata` partition).
const DATA_TYPE: u8 = 0x01;
const OTADATA_SUBTYPE: u8 = 0x00;

/// Parses a flash offset as people write it (`0x8000`, `32768`); it must be sector aligned.
/// One parser for every front end (`flash --partition-table-offset`, `cargo thinger-patch`).
pub fn parse_offset(text: &str) -> std::result::Result<u32, String> {
    let t = text.trim();
    let v = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => t.parse(),
    }
    .map_err(|_| format!("{text:?} is not a flash offset (write 0x8000 or 32768)"))?;
    if !v.is_multiple_of(SECTOR) {
        return Err(format!(
            "{v:#x} is not a flash offset aligned to 0x1000 (4 KiB)"
        ));
    }
    Ok(v)
}

/// Which loader protocol and tool reach the chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Route {
    /// ESP32 family: the ROM loader / stub protocol (espflash). `needs_table`:
    /// the device's partition table must be read first (app images).
    Esp32 {
        /// The chip.
        chip: Chip,
        /// An app image: the device's partition table decides where it goes.
        needs_table: bool,
    },
    /// ESP8266 (esptool).
    Esp8266,
}

impl Route {
    /// The chip.
    pub fn chip(self) -> Chip {
        match self {
            Route::Esp32 { chip, .. } => chip,
            Route::Esp8266 => Chip::Esp8266,
        }
    }

    /// Whether [`plan`] needs the device's partition table first.
    pub fn needs_table(self) -> bool {
        matches!(
            self,
            Route::Esp32 {
                needs_table: true,
                ..
            }
        )
    }
}

/// One contiguous write: `len` bytes of the image from `start`, at flash `offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Write {
    /// Flash offset.
    pub offset: u32,
    /// Offset in the (decompressed) image bytes.
    pub start: usize,
    /// Bytes.
    pub len: usize,
    /// What lands there, e.g. `factory partition` or `merged image`.
    pub what: String,
}

/// A region set to the erased state (all 0xFF), sector aligned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Erase {
    /// Flash offset.
    pub offset: u32,
    /// Bytes.
    pub size: u32,
    /// What it is (`otadata partition`).
    pub what: String,
}

/// Everything to do on the device, in order: writes first, then erases (so a
/// failed write leaves `otadata`, and with it the previously booting app, alone).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Which loader reaches the chip.
    pub route: Route,
    /// Writes, in order.
    pub writes: Vec<Write>,
    /// Erases, after every write.
    pub erases: Vec<Erase>,
    /// Facts the user should know (never values).
    pub warnings: Vec<String>,
}

impl Plan {
    /// Total bytes written (image bytes plus erased bytes).
    pub fn total_bytes(&self) -> u64 {
        self.writes.iter().map(|w| w.len as u64).sum::<u64>()
            + self.erases.iter().map(|e| u64::from(e.size)).sum::<u64>()
    }
}

/// Why an image cannot be placed. Every message says what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryError {
    /// An ELF, or a layout a device cannot boot as such.
    NotFlashable(String),
    /// The image names no chip (or one no loader supports).
    UnknownChip(String),
    /// The placement cannot be decided without guessing.
    Ambiguous(String),
    /// The device's partition table does not allow it.
    Table(String),
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeliveryError::NotFlashable(m)
            | DeliveryError::UnknownChip(m)
            | DeliveryError::Ambiguous(m)
            | DeliveryError::Table(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for DeliveryError {}

type Result<T> = std::result::Result<T, DeliveryError>;

/// Which loader to use for `fw`, and whether [`plan`] needs the device's table.
pub fn route(fw: &Firmware<'_>) -> Result<Route> {
    match fw.layout() {
        Layout::Elf(_) => Err(DeliveryError::NotFlashable(
            "an ELF file is not a flash image: convert it first (espflash save-image, esptool elf2image or the Arduino/PlatformIO build's .bin), then flash the .bin".into(),
        )),
        Layout::Arduino(_) | Layout::Esp8266V2(_) => Ok(Route::Esp8266),
        Layout::App(top) => match top.image.chip() {
            Some(Chip::Esp8266) if top.image.is_esp8266_v3() => Err(DeliveryError::NotFlashable(
                "an ESP8266_RTOS_SDK 3.x app image goes into a partition of the device's table; flash it with idf.py or esptool write-flash at its partition's offset".into(),
            )),
            Some(Chip::Esp8266) => Ok(Route::Esp8266),
            Some(chip) => Ok(Route::Esp32 {
                chip,
                needs_table: true,
            }),
            None => Err(unknown_chip(top.image.chip_id)),
        },
        Layout::Merged(m) => match fw.chip() {
            Some(Chip::Esp8266) => Err(DeliveryError::NotFlashable(
                "a merged image for the ESP8266 is not supported; flash its parts with esptool".into(),
            )),
            Some(chip) if m.chip.is_some() => Ok(Route::Esp32 {
                chip,
                needs_table: false,
            }),
            _ => Err(DeliveryError::Ambiguous(
                "the merged image has no bootloader that names its chip, so where it starts on the flash cannot be derived; flash its app image instead (the device's partition table then decides where it goes)".into(),
            )),
        },
    }
}

fn unknown_chip(id: Option<u16>) -> DeliveryError {
    DeliveryError::UnknownChip(match id {
        Some(id) => format!(
            "the image header names chip_id {id}, which this thinger-patch does not know; nothing can check it against the connected chip"
        ),
        None => "the image names no chip".into(),
    })
}

/// The writes and erases for `fw` (its decompressed bytes, `fw.data()`).
/// `device_table` is the partition table read from the device; it is required
/// when [`route`] says so and ignored otherwise.
pub fn plan(fw: &Firmware<'_>, device_table: Option<&PartitionTable>) -> Result<Plan> {
    let route = route(fw)?;
    let data = fw.data();
    let len = data.len();
    match fw.layout() {
        Layout::Arduino(_) => Ok(whole(route, 0, len, "Arduino ESP8266 image (eboot + app)")),
        Layout::Esp8266V2(_) => {
            let mut p = whole(route, 0x1000, len, "ESP8266 v2 image (user1 slot)");
            p.warnings.push(
                "an ESP8266 v2 image runs from 0x1000 and needs the SDK boot loader (boot_v1.x.bin) at 0x0".into(),
            );
            Ok(p)
        }
        Layout::App(_) if route == Route::Esp8266 => Ok(whole(route, 0, len, "ESP8266 image")),
        Layout::App(_) => {
            let chip = route.chip();
            let table = device_table.ok_or_else(|| {
                DeliveryError::Table(format!(
                    "an {chip} app image goes into the device's app partition, and no partition table was read from the device"
                ))
            })?;
            let part = table.boot_app().ok_or_else(|| {
                DeliveryError::Table(format!(
                    "the device's partition table (at {:#x}) has no factory or OTA app partition: flash a merged image (bootloader, partition table and app) first",
                    table.offset
                ))
            })?;
            if len as u64 > u64::from(part.size) {
                return Err(DeliveryError::Table(format!(
                    "the image ({len} bytes) does not fit the {} partition {} ({} bytes at {:#x})",
                    part.app_role(),
                    part.label,
                    part.size,
                    part.offset
                )));
            }
            let mut p = Plan {
                route,
                writes: vec![Write {
                    offset: part.offset,
                    start: 0,
                    len,
                    what: partition_name(part),
                }],
                erases: Vec::new(),
                warnings: Vec::new(),
            };
            if let Some(ota) = otadata(table) {
                p.erases.push(Erase {
                    offset: ota.offset,
                    size: ota.size,
                    what: partition_name(ota),
                });
            }
            check_no_overlap(&p)?;
            Ok(p)
        }
        Layout::Merged(m) => plan_merged(route, m, len),
        Layout::Elf(_) => unreachable!("route() refuses ELF files"),
    }
}

/// `factory partition`, `ota_0 partition`, `otadata partition`, or with the label
/// when it differs: `factory partition (app)`.
pub fn partition_name(p: &Partition) -> String {
    let role = if p.is_app() {
        p.app_role()
    } else if p.kind == DATA_TYPE && p.subtype == OTADATA_SUBTYPE {
        "otadata".into()
    } else {
        format!("data subtype {:#04x}", p.subtype)
    };
    if role == p.label {
        format!("{role} partition")
    } else {
        format!("{role} partition ({})", p.label)
    }
}

/// The `otadata` partition (type data, subtype ota), if the table has one.
pub fn otadata(table: &PartitionTable) -> Option<&Partition> {
    table
        .partitions
        .iter()
        .find(|p| p.kind == DATA_TYPE && p.subtype == OTADATA_SUBTYPE)
}

fn whole(route: Route, offset: u32, len: usize, what: &str) -> Plan {
    Plan {
        route,
        writes: vec![Write {
            offset,
            start: 0,
            len,
            what: what.into(),
        }],
        erases: Vec::new(),
        warnings: Vec::new(),
    }
}

fn plan_merged(route: Route, m: &MergedImage, len: usize) -> Result<Plan> {
    let chip = route.chip();
    let boot = m.bootloader.as_ref().ok_or_else(|| {
        DeliveryError::Ambiguous(
            "the merged image has no bootloader, so its flash base cannot be derived".into(),
        )
    })?;
    let in_file = boot.offset as u64;
    let on_flash = u64::from(chip.bootloader_offset());
    if in_file > on_flash {
        return Err(DeliveryError::Ambiguous(format!(
            "the merged image holds its bootloader at file offset {in_file:#x}, but an {chip} loads the bootloader from flash {on_flash:#x}: the image does not start at a flash address; rebuild it with esptool merge-bin (no --target-offset) or espflash save-image --merge"
        )));
    }
    let base = on_flash - in_file;
    if !base.is_multiple_of(u64::from(SECTOR)) {
        return Err(DeliveryError::Ambiguous(format!(
            "the merged image would start at {base:#x}, which is not sector aligned"
        )));
    }
    let base = base as u32;
    let mut p = Plan {
        route,
        writes: vec![Write {
            offset: base,
            start: 0,
            len,
            what: "merged image".into(),
        }],
        erases: Vec::new(),
        warnings: Vec::new(),
    };
    if let Some(t) = &m.table {
        let at = u64::from(base) + t.offset as u64;
        if at != partition_table::DEFAULT_OFFSET as u64 {
            p.warnings.push(format!(
                "the image's partition table lands at {at:#x}, not at the usual {:#x}: the bootloader must be built for that offset",
                partition_table::DEFAULT_OFFSET
            ));
        }
        if let Some(ota) = otadata(t) {
            // Flash addresses in the table are absolute; the file covers base..base+len.
            let covered_to = u64::from(base) + len as u64;
            let start = u64::from(ota.offset);
            let end = ota.end();
            if covered_to < end {
                let from = start.max(covered_to.next_multiple_of(u64::from(SECTOR)));
                if from < end {
                    p.erases.push(Erase {
                        offset: from as u32,
                        size: (end - from) as u32,
                        what: partition_name(ota),
                    });
                }
                if covered_to > start && !covered_to.is_multiple_of(u64::from(SECTOR)) {
                    p.warnings.push(format!(
                        "the merged image ends inside the otadata partition {} ({:#x}); its last sector there is written, not erased",
                        ota.label, covered_to
                    ));
                }
            }
        }
    } else {
        p.warnings.push(
            "the merged image has no partition table: the device keeps the one it has".into(),
        );
    }
    check_no_overlap(&p)?;
    Ok(p)
}

fn check_no_overlap(p: &Plan) -> Result<()> {
    let mut spans: Vec<(u64, u64, &str)> = p
        .writes
        .iter()
        .map(|w| {
            (
                u64::from(w.offset),
                u64::from(w.offset) + w.len as u64,
                w.what.as_str(),
            )
        })
        .chain(p.erases.iter().map(|e| {
            (
                u64::from(e.offset),
                u64::from(e.offset) + u64::from(e.size),
                e.what.as_str(),
            )
        }))
        .collect();
    spans.sort();
    for w in spans.windows(2) {
        if w[0].1 > w[1].0 {
            return Err(DeliveryError::Table(format!(
                "{} ({:#x}..{:#x}) overlaps {} ({:#x}..{:#x}); check the device's partition table",
                w[0].2, w[0].0, w[0].1, w[1].2, w[1].0, w[1].1
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum;

    fn entry(label: &str, kind: u8, subtype: u8, offset: u32, size: u32) -> Vec<u8> {
        let mut e = vec![0xAA, 0x50, kind, subtype];
        e.extend_from_slice(&offset.to_le_bytes());
        e.extend_from_slice(&size.to_le_bytes());
        let mut name = [0u8; 16];
        name[..label.len()].copy_from_slice(label.as_bytes());
        e.extend_from_slice(&name);
        e.extend_from_slice(&0u32.to_le_bytes());
        e
    }

    /// A partition table binary (entries, MD5 entry, end marker) padded to 0xC00.
    fn table_bytes(entries: &[(&str, u8, u8, u32, u32)]) -> Vec<u8> {
        let mut t = Vec::new();
        for &(l, k, s, o, z) in entries {
            t.extend(entry(l, k, s, o, z));
        }
        let md5 = checksum::md5(&t);
        t.extend([0xEB, 0xEB]);
        t.extend([0xFF; 14]);
        t.extend(md5);
        t.resize(0xC00, 0xFF);
        t
    }

    fn table(entries: &[(&str, u8, u8, u32, u32)]) -> PartitionTable {
        PartitionTable::parse(&table_bytes(entries), 0).unwrap()
    }

    const STD: &[(&str, u8, u8, u32, u32)] = &[
        ("nvs", 1, 2, 0x9000, 0x4000),
        ("otadata", 1, 0, 0xd000, 0x2000),
        ("phy_init", 1, 1, 0xf000, 0x1000),
        ("factory", 0, 0, 0x10000, 0x100000),
        ("ota_0", 0, 0x10, 0x110000, 0x100000),
    ];

    fn prebuilt(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../examples/c-firmware/prebuilt/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn app_goes_to_factory_and_otadata_is_erased() {
        let bytes = prebuilt("esp32c3-demo.bin");
        let fw = Firmware::parse(&bytes).unwrap();
        assert_eq!(
            route(&fw).unwrap(),
            Route::Esp32 {
                chip: Chip::Esp32c3,
                needs_table: true
            }
        );
        let p = plan(&fw, Some(&table(STD))).unwrap();
        assert_eq!(p.writes.len(), 1);
        assert_eq!(p.writes[0].offset, 0x10000);
        assert_eq!(p.writes[0].len, bytes.len());
        assert_eq!(
            p.erases,
            vec![Erase {
                offset: 0xd000,
                size: 0x2000,
                what: "otadata partition".into()
            }]
        );
        assert_eq!(p.total_bytes(), bytes.len() as u64 + 0x2000);
    }

    #[test]
    fn app_goes_to_ota_0_without_factory() {
        let bytes = prebuilt("esp32c3-demo.bin");
        let fw = Firmware::parse(&bytes).unwrap();
        let t = table(&[
            ("nvs", 1, 2, 0x9000, 0x4000),
            ("otadata", 1, 0, 0xd000, 0x2000),
            ("ota_1", 0, 0x11, 0x10000, 0x100000),
            ("ota_0", 0, 0x10, 0x110000, 0x100000),
        ]);
        let p = plan(&fw, Some(&t)).unwrap();
        assert_eq!(p.writes[0].offset, 0x110000);
        assert!(p.writes[0].what.contains("ota_0"));
        assert_eq!(p.erases[0].offset, 0xd000);
    }

    #[test]
    fn app_goes_to_the_lowest_ota_slot_present() {
        // Only ota_1: the bootloader starts it (ESP-IDF), so an app image goes there.
        let bytes = prebuilt("esp32c3-demo.bin");
        let fw = Firmware::parse(&bytes).unwrap();
        let t = table(&[
            ("nvs", 1, 2, 0x9000, 0x4000),
            ("otadata", 1, 0, 0xd000, 0x2000),
            ("ota_1", 0, 0x11, 0x110000, 0x100000),
        ]);
        let p = plan(&fw, Some(&t)).unwrap();
        assert_eq!(p.writes[0].offset, 0x110000);
        assert!(p.writes[0].what.contains("ota_1"), "{:?}", p.writes[0]);
        assert_eq!(t.boot_app().map(|b| b.offset), Some(0x110000));
    }

    /// A merged image whose table has only `ota_1` (holding the demo app, at 0x10000):
    /// `verify`, `ota` and `flash` agree that it is the app the bootloader starts.
    #[test]
    fn only_ota_1_is_the_boot_app_for_verify_ota_and_flash() {
        let mut merged = prebuilt("esp32c3-bootloader.bin");
        merged.resize(0x8000, 0xFF);
        merged.extend(table_bytes(&[
            ("nvs", 1, 2, 0x9000, 0x4000),
            ("otadata", 1, 0, 0xd000, 0x2000),
            ("app1", 0, 0x11, 0x10000, 0x100000),
        ]));
        merged.resize(0x10000, 0xFF);
        let app = prebuilt("esp32c3-demo.bin");
        merged.extend(&app);
        let fw = Firmware::parse(&merged).unwrap();
        let report = fw.verify();
        assert!(report.valid, "{}", report.summary_of_problems());
        assert!(
            fw.spaces()[0].label.contains("ota_1"),
            "{}",
            fw.spaces()[0].label
        );
        let payload = crate::ota::firmware_payload(&merged).unwrap();
        assert_eq!(payload.range.start, 0x10000, "{}", payload.what);
        assert_eq!(payload.range.len(), app.len());
        let p = plan(&fw, None).unwrap();
        assert_eq!(p.writes[0].offset, 0);
        // The file covers otadata with 0xFF: blank, so the bootloader starts ota_1.
        assert!(p.erases.is_empty() && merged[0xd000..0xf000].iter().all(|&b| b == 0xFF));
    }

    #[test]
    fn app_needs_a_table_and_a_fitting_partition() {
        let bytes = prebuilt("esp32c3-demo.bin");
        let fw = Firmware::parse(&bytes).unwrap();
        assert!(matches!(plan(&fw, None), Err(DeliveryError::Table(_))));
        let only_test = table(&[("test", 0, 0x20, 0x10000, 0x100000)]);
        let e = plan(&fw, Some(&only_test)).unwrap_err().to_string();
        assert!(e.contains("no factory or OTA app partition"), "{e}");
        let small = table(&[("factory", 0, 0, 0x10000, 0x1000)]);
        let e = plan(&fw, Some(&small)).unwrap_err().to_string();
        assert!(e.contains("does not fit"), "{e}");
        // No otadata: nothing to erase.
        let no_ota = table(&[("factory", 0, 0, 0x10000, 0x100000)]);
        assert!(plan(&fw, Some(&no_ota)).unwrap().erases.is_empty());
    }

    #[test]
    fn merged_c3_goes_to_zero_and_erases_uncovered_otadata() {
        let bytes = prebuilt("esp32c3-demo-merged.bin");
        let fw = Firmware::parse(&bytes).unwrap();
        assert_eq!(
            route(&fw).unwrap(),
            Route::Esp32 {
                chip: Chip::Esp32c3,
                needs_table: false
            }
        );
        let p = plan(&fw, None).unwrap();
        assert_eq!(p.writes[0].offset, 0);
        assert_eq!(p.writes[0].len, bytes.len());
        // The file (0x20360 bytes) covers otadata at 0xd000: nothing left to erase.
        assert!(p.erases.is_empty(), "{p:?}");
        assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    }

    #[test]
    fn merged_short_file_erases_otadata() {
        // Bootloader + table only (the file ends at 0x9000, before otadata at 0xd000).
        let mut bytes = prebuilt("esp32c3-demo-merged.bin");
        bytes.truncate(0x9000);
        let fw = Firmware::parse(&bytes).unwrap();
        let p = plan(&fw, None).unwrap();
        assert_eq!(p.erases.len(), 1);
        assert_eq!((p.erases[0].offset, p.erases[0].size), (0xd000, 0x2000));
    }

    #[test]
    fn merged_with_bootloader_past_its_chip_offset_is_refused() {
        // A C3 merged image shifted by 0x1000: the bootloader sits at file 0x1000, but
        // the C3 ROM loads it from 0x0.
        let merged = prebuilt("esp32c3-demo-merged.bin");
        let mut bytes = vec![0xFF; 0x1000];
        bytes.extend_from_slice(&merged);
        let fw = Firmware::parse(&bytes).unwrap();
        let e = plan(&fw, None).unwrap_err();
        assert!(matches!(e, DeliveryError::Ambiguous(_)), "{e}");
        assert!(e.to_string().contains("0x1000"), "{e}");
    }

    #[test]
    fn merged_at_target_offset_gets_a_base() {
        // An ESP32 (bootloader offset 0x1000) image merged with --target-offset 0x1000:
        // the bootloader sits at file offset 0, so the file starts at flash 0x1000.
        let merged = prebuilt("esp32c3-demo-merged.bin");
        let mut bytes = merged.clone();
        // Re-label the bootloader and the apps as ESP32 (chip_id 0) images. The checksums
        // do not cover the header, the appended SHA-256 does: placement does not check it.
        for off in [0usize, 0x10000] {
            bytes[off + 12] = 0;
            bytes[off + 13] = 0;
        }
        let fw = Firmware::parse(&bytes).unwrap();
        assert_eq!(fw.chip(), Some(Chip::Esp32));
        let p = plan(&fw, None).unwrap();
        assert_eq!(p.writes[0].offset, 0x1000);
        // The table then lands at 0x9000: a warning, not a refusal.
        assert!(
            p.warnings.iter().any(|w| w.contains("0x9000")),
            "{:?}",
            p.warnings
        );
    }

    #[test]
    fn esp8266_images() {
        // v2 (SDK user1.bin): linked to run from 0x1000.
        let bytes = prebuilt("esp8266-demo.bin");
        let fw = Firmware::parse(&bytes).unwrap();
        assert_eq!(route(&fw).unwrap(), Route::Esp8266);
        let p = plan(&fw, None).unwrap();
        assert_eq!(p.writes[0].offset, 0x1000);
        assert!(p.erases.is_empty());
        assert!(p.warnings[0].contains("boot loader"), "{:?}", p.warnings);
        // v1 (the RAM part of esptool elf2image): at 0x0.
        let bytes = prebuilt("esp8266-demo-v1/0x00000.bin");
        let fw = Firmware::parse(&bytes).unwrap();
        assert_eq!(route(&fw).unwrap(), Route::Esp8266);
        assert_eq!(plan(&fw, None).unwrap().writes[0].offset, 0);
        // Arduino (eboot + app): at 0x0.
        let mut arduino = bytes.clone();
        arduino.resize(0x1000, 0xAA);
        arduino.extend_from_slice(&bytes);
        let fw = Firmware::parse(&arduino).unwrap();
        assert!(matches!(fw.layout(), Layout::Arduino(_)));
        let p = plan(&fw, None).unwrap();
        assert_eq!((p.writes[0].offset, p.writes[0].len), (0, arduino.len()));
    }

    #[test]
    fn elf_is_refused() {
        let bytes = prebuilt("esp32c3-demo.elf");
        let fw = Firmware::parse(&bytes).unwrap();
        let e = route(&fw).unwrap_err().to_string();
        assert!(e.contains("convert it first"), "{e}");
    }

    #[test]
    fn overlapping_erase_is_refused() {
        let bytes = prebuilt("esp32c3-demo.bin");
        let fw = Firmware::parse(&bytes).unwrap();
        // otadata inside the factory partition: the table itself rejects the overlap.
        let raw = table_bytes(&[
            ("factory", 0, 0, 0x10000, 0x100000),
            ("otadata", 1, 0, 0x12000, 0x2000),
        ]);
        assert!(PartitionTable::parse(&raw, 0).is_err());
        // A table whose otadata is just past a too-long image is caught by the size check;
        // build one where only the plan's own overlap check can see it.
        let t = PartitionTable {
            offset: 0x8000,
            partitions: vec![
                Partition {
                    label: "factory".into(),
                    kind: 0,
                    subtype: 0,
                    offset: 0x10000,
                    size: 0x100000,
                    flags: 0,
                },
                Partition {
                    label: "otadata".into(),
                    kind: 1,
                    subtype: 0,
                    offset: 0x11000,
                    size: 0x2000,
                    flags: 0,
                },
            ],
            md5: None,
        };
        let e = plan(&fw, Some(&t)).unwrap_err().to_string();
        assert!(e.contains("overlaps"), "{e}");
    }
}
