//! Address spaces: the patchable bytes of one image, addressed by load
//! address. Converters split data into several segments (and put headers
//! between them), so one address range may map to several file ranges.

use crate::error::{Error, Result};

/// A run of patchable file bytes loaded at `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    /// Load address of the first byte.
    pub addr: u32,
    /// File offset of the first byte.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// Whether the image's XOR checksum covers these bytes.
    pub checksummed: bool,
}

/// Bytes that have a load address but must never be patched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtectedRange {
    /// Load address of the first byte.
    pub addr: u32,
    /// Length in bytes.
    pub len: usize,
    /// What it is, for messages (`the ESP32 app descriptor (esp_app_desc_t)`).
    pub field: &'static str,
}

/// Which image of the file a space belongs to (for re-sealing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ImageKey {
    /// The ELF file's allocated sections.
    Elf,
    /// A standalone `0xE9` image.
    App,
    /// An ESP8266 v2 image.
    Esp8266V2,
    /// The app of an Arduino ESP8266 image.
    Arduino,
    /// The app in this position of a merged image's app list.
    MergedApp(usize),
}

/// The patchable data of one image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressSpace {
    /// Human name: `app`, `elf`, `factory (factory)`, ...
    pub label: String,
    /// Which image it is.
    pub key: ImageKey,
    /// Sorted by address.
    pub regions: Vec<Region>,
    /// Ranges that must never be patched.
    pub protected: Vec<ProtectedRange>,
}

/// A piece of a mapped range: `len` file bytes at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    /// File offset.
    pub offset: usize,
    /// Length in bytes.
    pub len: usize,
    /// Whether the image's XOR checksum covers these bytes.
    pub checksummed: bool,
}

/// A maximal run of contiguous addresses, possibly spanning several regions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Load address of the first byte.
    pub addr: u32,
    /// Length in bytes.
    pub len: usize,
    /// The regions it spans, in address order.
    pub regions: Vec<Region>,
}

impl AddressSpace {
    /// A space of `regions` (sorted here), with nothing protected yet.
    pub fn new(label: String, key: ImageKey, mut regions: Vec<Region>) -> Self {
        // Malformed input can place a segment across the top of the 32-bit address
        // space (e.g. load address 0xFFFFFF00, 0x200 bytes). Clip it there, so that
        // `addr + len <= 2^32` holds for every region and chunk and address
        // arithmetic (`chunk.addr + i as u32`) can never overflow or wrap.
        for r in &mut regions {
            r.len = r.len.min(((1u64 << 32) - r.addr as u64) as usize);
        }
        regions.retain(|r| r.len > 0);
        regions.sort_by_key(|r| r.addr);
        // Segments of malformed input can overlap in address space. `map` resolves an
        // address to the first region holding it; trim later regions to start where
        // the earlier ones end, so that `chunks` (what scans read) and `map` (what
        // patches write) always agree on the bytes at an address.
        let mut end = 0u64;
        regions.retain_mut(|r| {
            let start = r.addr as u64;
            if start < end {
                let skip = (end - start) as usize;
                if skip >= r.len {
                    return false;
                }
                r.addr = end as u32;
                r.offset += skip;
                r.len -= skip;
            }
            end = end.max(r.addr as u64 + r.len as u64);
            true
        });
        AddressSpace {
            label,
            key,
            regions,
            protected: Vec::new(),
        }
    }

    /// Maps `len` bytes at `addr` to file pieces, or says why it cannot.
    pub fn map(&self, addr: u32, len: usize) -> Result<Vec<Piece>> {
        // Saturating: `len` comes from callers (e.g. `Firmware::read`) and may be huge.
        let end = (addr as u64).saturating_add(len as u64);
        if let Some(p) = self
            .protected
            .iter()
            .find(|p| (addr as u64) < p.addr as u64 + p.len as u64 && (p.addr as u64) < end)
        {
            return Err(Error::Protected {
                space: self.label.clone(),
                field: p.field,
                addr: p.addr.max(addr),
            });
        }
        let unmapped = || Error::Unmapped {
            space: self.label.clone(),
            addr,
            len,
        };
        let mut pieces = Vec::new();
        let mut cursor = addr as u64;
        while cursor < end {
            let r = self
                .regions
                .iter()
                .find(|r| (r.addr as u64) <= cursor && cursor < r.addr as u64 + r.len as u64)
                .ok_or_else(unmapped)?;
            let skip = (cursor - r.addr as u64) as usize;
            let take = (r.len - skip).min((end - cursor) as usize);
            pieces.push(Piece {
                offset: r.offset + skip,
                len: take,
                checksummed: r.checksummed,
            });
            cursor += take as u64;
        }
        if pieces.is_empty() {
            return Err(unmapped());
        }
        Ok(pieces)
    }

    /// Contiguous address runs, for scanning data that may straddle segments.
    /// Protected ranges are left out (they split a run).
    pub fn chunks(&self) -> Vec<Chunk> {
        let mut pieces: Vec<Region> = Vec::new();
        for r in &self.regions {
            let mut start = r.addr as u64;
            let end = r.addr as u64 + r.len as u64;
            let mut prot: Vec<&ProtectedRange> = self
                .protected
                .iter()
                .filter(|p| (p.addr as u64) < end && start < p.addr as u64 + p.len as u64)
                .collect();
            prot.sort_by_key(|p| p.addr);
            for p in prot {
                let (ps, pe) = (p.addr as u64, p.addr as u64 + p.len as u64);
                if ps > start {
                    pieces.push(sub_region(r, start, ps));
                }
                start = start.max(pe);
            }
            if start < end {
                pieces.push(sub_region(r, start, end));
            }
        }
        let mut chunks: Vec<Chunk> = Vec::new();
        for p in pieces {
            match chunks.last_mut() {
                Some(c) if c.addr as u64 + c.len as u64 == p.addr as u64 => {
                    c.len += p.len;
                    c.regions.push(p);
                }
                _ => chunks.push(Chunk {
                    addr: p.addr,
                    len: p.len,
                    regions: vec![p],
                }),
            }
        }
        chunks
    }
}

fn sub_region(r: &Region, start: u64, end: u64) -> Region {
    Region {
        addr: start as u32,
        offset: r.offset + (start - r.addr as u64) as usize,
        len: (end - start) as usize,
        checksummed: r.checksummed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn space() -> AddressSpace {
        let mut s = AddressSpace::new(
            "t".into(),
            ImageKey::App,
            vec![
                Region {
                    addr: 0x100,
                    offset: 0x10,
                    len: 0x10,
                    checksummed: true,
                },
                Region {
                    addr: 0x110,
                    offset: 0x28,
                    len: 0x10,
                    checksummed: true,
                },
                Region {
                    addr: 0x200,
                    offset: 0x40,
                    len: 0x10,
                    checksummed: false,
                },
            ],
        );
        s.protected.push(ProtectedRange {
            addr: 0x200,
            len: 4,
            field: "descriptor",
        });
        s
    }

    #[test]
    fn maps_across_a_segment_split() {
        let p = space().map(0x10E, 4).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].offset, p[0].len), (0x1E, 2));
        assert_eq!((p[1].offset, p[1].len), (0x28, 2));
    }

    #[test]
    fn refuses_gaps_and_protected_fields() {
        assert!(matches!(space().map(0x11E, 4), Err(Error::Unmapped { .. })));
        assert!(matches!(
            space().map(0x1FE, 4),
            Err(Error::Protected {
                field: "descriptor",
                ..
            })
        ));
        assert!(matches!(space().map(0x50, 1), Err(Error::Unmapped { .. })));
    }

    #[test]
    fn chunks_join_contiguous_regions_and_skip_protected() {
        let c = space().chunks();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].addr, c[0].len, c[0].regions.len()), (0x100, 0x20, 2));
        assert_eq!((c[1].addr, c[1].len), (0x204, 0xC));
    }
}
