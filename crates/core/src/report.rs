//! What `verify` finds, per image: serialisable, stable field names (the CLI's
//! `--json` output is this structure).

use crate::chip::Chip;
use crate::format::partition_table::{Partition, TableMd5};
use crate::format::signature::Signature;
use serde::Serialize;

/// The verdict on a whole file.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `elf`, `app-image`, `esp8266-v2`, `arduino-esp8266`, `merged`.
    pub format: &'static str,
    /// `gzip` for `.bin.gz` files.
    pub compression: Option<&'static str>,
    /// The chip the file is for, when known.
    pub chip: Option<Chip>,
    /// Size of the (decompressed) data.
    pub size: usize,
    /// Every image in the file, bootloader first.
    pub images: Vec<ImageReport>,
    /// The partition table of a merged image.
    pub partition_table: Option<TableReport>,
    /// Facts that do not make the file invalid.
    pub notes: Vec<String>,
    /// True when every image and the table are valid.
    pub valid: bool,
}

/// The verdict on one image inside a file.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// `app`, `bootloader`, `eboot`, `factory (factory)`, `ota_0 (app0)`, `elf`.
    pub role: String,
    /// File offset of the image.
    pub offset: usize,
    /// `esp32-app`, `esp8266-v1`, `esp8266-v2`, `esp8266-v3`, `elf`, or `missing`
    /// for an Arduino app that is not there (its problem says why).
    pub kind: &'static str,
    /// The chip its header names.
    pub chip: Option<Chip>,
    /// The raw `chip_id` of an extended header.
    pub chip_id: Option<u16>,
    /// The entry address.
    pub entry: u32,
    /// Its segments (ELF: sections).
    pub segments: Vec<SegmentReport>,
    /// The XOR checksum.
    pub checksum: Option<ChecksumReport>,
    /// The appended SHA-256, when the header says there is one.
    pub sha256: Option<DigestReport>,
    /// The ESP8266 v2 or Arduino CRC.
    pub crc: Option<CrcReport>,
    /// A signature after the image.
    pub signature: Option<Signature>,
    /// Everything wrong with it.
    pub problems: Vec<Problem>,
    /// True when `problems` is empty.
    pub valid: bool,
}

/// One segment of an image.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentReport {
    /// Load address.
    pub addr: u32,
    /// File offset of its data.
    pub offset: usize,
    /// Length of its data.
    pub len: usize,
    /// Section name for ELFs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Whether a stored XOR checksum matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumStatus {
    /// It matches.
    Valid,
    /// Valid as the Arduino ESP8266 core 3.x computes it (CRC trailer words
    /// counted as zero); esptool calls these invalid.
    ValidArduinoCore3,
    /// It does not.
    Invalid,
}

/// An image's XOR checksum.
#[derive(Debug, Clone, Serialize)]
pub struct ChecksumReport {
    /// File offset of the checksum byte.
    pub offset: usize,
    /// The byte stored.
    pub stored: u8,
    /// The byte computed.
    pub computed: u8,
    /// Whether they match (and by which convention).
    pub status: ChecksumStatus,
}

/// An image's appended SHA-256.
#[derive(Debug, Clone, Serialize)]
pub struct DigestReport {
    /// File offset of the digest.
    pub offset: usize,
    /// The digest stored, in hex.
    pub stored: String,
    /// The digest computed, in hex.
    pub computed: String,
    /// Whether they match.
    pub valid: bool,
}

/// A CRC over an image (ESP8266 v2) or the whole file (Arduino).
#[derive(Debug, Clone, Serialize)]
pub struct CrcReport {
    /// `esp8266-v2` or `arduino-core-2.7` / `arduino-core-3`.
    pub kind: &'static str,
    /// File offset of the CRC word (Arduino: of the `{length, crc}` pair).
    pub offset: usize,
    /// The CRC stored.
    pub stored: u32,
    /// The CRC computed.
    pub computed: u32,
    /// Whether they match.
    pub valid: bool,
}

/// The partition table of a merged image.
#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    /// Its file offset.
    pub offset: usize,
    /// Its entries.
    pub partitions: Vec<Partition>,
    /// Its MD5 entry, when it has one.
    pub md5: Option<TableMd5>,
    /// Everything wrong with it.
    pub problems: Vec<Problem>,
    /// True when `problems` is empty.
    pub valid: bool,
}

/// One thing wrong with an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Stable identifier: `checksum`, `sha256`, `crc`, `chip_id`, `hash_appended`,
    /// `segment_alignment`, `table_md5`, `bootloader_offset`, `trailer_length`,
    /// `no_segments` (an image of 0 segments), `app_missing` (the app at 0x1000 of
    /// an Arduino image), `no_sections` (an ELF without allocated, file-backed
    /// sections), `partition_range` (a partition past 256 MiB or 4 GiB) and
    /// `boot_app_missing` (the app the bootloader starts is not in the file).
    pub code: &'static str,
    /// Where, when one place is to blame.
    pub offset: Option<usize>,
    /// What is wrong, for people.
    pub message: String,
}

impl Report {
    /// All problems of all images and the table.
    pub fn problems(&self) -> Vec<&Problem> {
        let table = self.partition_table.iter().flat_map(|t| t.problems.iter());
        self.images
            .iter()
            .flat_map(|i| i.problems.iter())
            .chain(table)
            .collect()
    }

    /// Every problem on one line, each prefixed with its image's role.
    pub fn summary_of_problems(&self) -> String {
        let mut parts: Vec<String> = self
            .images
            .iter()
            .flat_map(|i| {
                i.problems
                    .iter()
                    .map(move |p| format!("{}: {}", i.role, p.message))
            })
            .collect();
        if let Some(t) = &self.partition_table {
            parts.extend(t.problems.iter().map(|p| p.message.clone()));
        }
        parts.join("; ")
    }
}
