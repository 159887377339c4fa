//! The ESP-IDF partition table: 32-byte entries, an optional MD5 entry, an
//! all-0xFF end marker.

use super::read::{u16_at, u32_at};
use crate::checksum;
use crate::error::{Error, Result};
use serde::Serialize;

/// Bytes of one entry.
pub const ENTRY_LEN: usize = 32;
/// Entry magic `0x50AA` (bytes `AA 50`).
pub const ENTRY_MAGIC: u16 = 0x50AA;
/// MD5 entry magic (bytes `EB EB`).
pub const MD5_MAGIC: u16 = 0xEBEB;
/// The table occupies one flash sector at most (`ESP_PARTITION_TABLE_MAX_LEN`).
pub const MAX_LEN: usize = 0xC00;
/// ESP-IDF's default table offset.
pub const DEFAULT_OFFSET: usize = 0x8000;

/// One partition table entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Partition {
    /// Its label (up to 16 bytes).
    pub label: String,
    /// Type: 0 app, 1 data.
    #[serde(rename = "type")]
    pub kind: u8,
    /// Subtype (app: 0x00 factory, 0x10+N ota_N, 0x20 test; data: 0x00 otadata, ...).
    pub subtype: u8,
    /// Flash offset.
    pub offset: u32,
    /// Size in bytes.
    pub size: u32,
    /// Flags (bit 0 encrypted).
    pub flags: u32,
}

impl Partition {
    /// Whether it is an app partition.
    pub fn is_app(&self) -> bool {
        self.kind == 0
    }

    /// `factory`, `ota_3`, `test`, or the subtype number.
    pub fn app_role(&self) -> String {
        match self.subtype {
            0x00 => "factory".into(),
            0x10..=0x1F => format!("ota_{}", self.subtype - 0x10),
            0x20 => "test".into(),
            s => format!("app subtype {s:#04x}"),
        }
    }

    /// Where it ends on the flash (wide: a bad entry may pass 4 GiB).
    pub fn end(&self) -> u64 {
        self.offset as u64 + self.size as u64
    }
}

/// The MD5 entry and whether it matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TableMd5 {
    /// File offset of the MD5 entry.
    pub offset: usize,
    /// The MD5 stored, in hex.
    pub stored: String,
    /// The MD5 of the entries before it, in hex.
    pub computed: String,
    /// Whether they match.
    pub valid: bool,
}

/// A parsed partition table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PartitionTable {
    /// File offset of the table.
    pub offset: usize,
    /// Its entries, in order.
    pub partitions: Vec<Partition>,
    /// Its MD5 entry, when it has one.
    pub md5: Option<TableMd5>,
}

impl PartitionTable {
    /// Whether a table starts at `offset` (first entry magic).
    pub fn is_at(data: &[u8], offset: usize) -> bool {
        data.len() >= offset + ENTRY_LEN && u16_at(data, offset) == ENTRY_MAGIC
    }

    /// Parses the table at `offset`. Structure errors (entries past the end,
    /// overlapping partitions) fail; a wrong MD5 is reported in [`PartitionTable::md5`].
    pub fn parse(data: &[u8], offset: usize) -> Result<PartitionTable> {
        let mut partitions = Vec::new();
        let mut md5 = None;
        let mut pos = offset;
        loop {
            let index = (pos - offset) / ENTRY_LEN;
            if pos + ENTRY_LEN > data.len() || pos - offset >= MAX_LEN {
                return Err(Error::PartitionTable {
                    table: offset,
                    index,
                    label: "-".into(),
                    offset: pos,
                    reason: "no end marker (an all-0xFF entry) before the end of the table".into(),
                });
            }
            let e = &data[pos..pos + ENTRY_LEN];
            match u16_at(e, 0) {
                ENTRY_MAGIC => {
                    let label_bytes = &e[12..28];
                    let end = label_bytes.iter().position(|&b| b == 0).unwrap_or(16);
                    partitions.push(Partition {
                        label: String::from_utf8_lossy(&label_bytes[..end]).into_owned(),
                        kind: e[2],
                        subtype: e[3],
                        offset: u32_at(e, 4),
                        size: u32_at(e, 8),
                        flags: u32_at(e, 28),
                    });
                }
                MD5_MAGIC => {
                    let stored = &e[16..32];
                    let computed = checksum::md5(&data[offset..pos]);
                    md5 = Some(TableMd5 {
                        offset: pos,
                        stored: checksum::hex(stored),
                        computed: checksum::hex(&computed),
                        valid: stored == computed,
                    });
                }
                0xFFFF if e.iter().all(|&b| b == 0xFF) => break,
                _ => {
                    return Err(Error::PartitionTable {
                        table: offset,
                        index,
                        label: "-".into(),
                        offset: pos,
                        reason: format!(
                            "unknown entry magic {:02x} {:02x} (expected AA 50, EB EB or an all-0xFF end marker)",
                            e[0], e[1]
                        ),
                    });
                }
            }
            pos += ENTRY_LEN;
        }
        let table = PartitionTable {
            offset,
            partitions,
            md5,
        };
        table.check_overlaps()?;
        Ok(table)
    }

    fn check_overlaps(&self) -> Result<()> {
        let mut sorted: Vec<&Partition> = self.partitions.iter().collect();
        sorted.sort_by_key(|p| p.offset);
        for w in sorted.windows(2) {
            if w[0].end() > w[1].offset as u64 {
                return Err(Error::PartitionOverlap {
                    table: self.offset,
                    a: w[0].label.clone(),
                    b: w[1].label.clone(),
                    a_start: w[0].offset,
                    a_end: w[0].end().min(u32::MAX as u64) as u32,
                    b_start: w[1].offset,
                    b_end: w[1].end().min(u32::MAX as u64) as u32,
                });
            }
        }
        Ok(())
    }

    /// File offset of the entry of `partitions[index]` (entries are contiguous,
    /// except around the MD5 entry).
    pub fn entry_offset(&self, index: usize) -> usize {
        let at = self.offset + index * ENTRY_LEN;
        match &self.md5 {
            Some(m) if m.offset <= at => at + ENTRY_LEN,
            _ => at,
        }
    }

    /// Its app partitions, in order.
    pub fn apps(&self) -> impl Iterator<Item = &Partition> {
        self.partitions.iter().filter(|p| p.is_app())
    }

    /// The app the bootloader starts when `otadata` is blank, as ESP-IDF's bootloader picks it:
    /// `factory`, else the lowest-numbered OTA slot present. The one rule that `flash` (where an
    /// app image goes), `ota` (which app of a merged image is sent) and `verify` (which app of a
    /// merged image must be in the file) all use.
    pub fn boot_app(&self) -> Option<&Partition> {
        self.apps().find(|p| p.subtype == 0).or_else(|| {
            self.apps()
                .filter(|p| (0x10..0x20).contains(&p.subtype))
                .min_by_key(|p| p.subtype)
        })
    }
}
