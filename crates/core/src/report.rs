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
    pub chip: Option<Chip>,
    /// Size of the (decompressed) data.
    pub size: usize,
    pub images: Vec<ImageReport>,
    pub partition_table: Option<TableReport>,
    pub notes: Vec<String>,
    /// True when every image and the table are valid.
    pub valid: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// `app`, `bootloader`, `eboot`, `factory (factory)`, `ota_0 (app0)`, `elf`.
    pub role: String,
    /// File offset of the image.
    pub offset: usize,
    /// `esp32-app`, `esp8266-v1`, `esp8266-v2`, `esp8266-v3`, `elf`, or `missing`
    /// for an Arduino app that is not there (its problem says why).
    pub kind: &'static str,
    pub chip: Option<Chip>,
    pub chip_id: Option<u16>,
    pub entry: u32,
    pub segments: Vec<SegmentReport>,
    pub checksum: Option<ChecksumReport>,
    pub sha256: Option<DigestReport>,
    pub crc: Option<CrcReport>,
    pub signature: Option<Signature>,
    pub problems: Vec<Problem>,
    pub valid: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SegmentReport {
    pub addr: u32,
    pub offset: usize,
    pub len: usize,
    /// Section name for ELFs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChecksumStatus {
    Valid,
    /// Valid as the Arduino ESP8266 core 3.x computes it (CRC trailer words
    /// counted as zero); esptool calls these invalid.
    ValidArduinoCore3,
    Invalid,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChecksumReport {
    pub offset: usize,
    pub stored: u8,
    pub computed: u8,
    pub status: ChecksumStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct DigestReport {
    pub offset: usize,
    pub stored: String,
    pub computed: String,
    pub valid: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CrcReport {
    /// `esp8266-v2` or `arduino-core-2.7` / `arduino-core-3`.
    pub kind: &'static str,
    pub offset: usize,
    pub stored: u32,
    pub computed: u32,
    pub valid: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableReport {
    pub offset: usize,
    pub partitions: Vec<Partition>,
    pub md5: Option<TableMd5>,
    pub problems: Vec<Problem>,
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
    pub offset: Option<usize>,
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
