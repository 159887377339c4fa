//! Finding slot records in the patchable data of a firmware file, without its
//! source: scan every contiguous address run of the boot space for the magic.

use super::record::{self, Decoded, MAGIC};
use crate::Firmware;
use crate::space::AddressSpace;

/// A record found at a load address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundSlot {
    /// The address space's label.
    pub space: String,
    /// Load address of the record's first byte (its magic).
    pub addr: u32,
    /// File offset (in the decompressed data) of the record's first byte.
    pub offset: usize,
    /// What is there.
    pub decoded: Decoded,
}

/// Every record in the boot space (the app that starts; merged images keep
/// their other copies in step through [`Firmware::patch`]).
pub fn scan(fw: &Firmware) -> Vec<FoundSlot> {
    fw.spaces()
        .first()
        .map(|s| scan_space(fw, s))
        .unwrap_or_default()
}

/// Every record in one address space.
pub fn scan_space(fw: &Firmware, space: &AddressSpace) -> Vec<FoundSlot> {
    let mut found = Vec::new();
    for chunk in space.chunks() {
        let bytes = fw.chunk_bytes(&chunk);
        let mut i = 0;
        while let Some(pos) = find(&bytes[i..], &MAGIC) {
            let at = i + pos;
            let decoded = record::decode(&bytes[at..]);
            let addr = chunk.addr + at as u32;
            let offset = space.map(addr, 1).map_or(0, |p| p[0].offset);
            i = match &decoded {
                Decoded::Slot(s) => at + s.record_len(),
                _ => at + MAGIC.len(),
            };
            found.push(FoundSlot {
                space: space.label.clone(),
                addr,
                offset,
                decoded,
            });
        }
    }
    found
}

/// First occurrence of `needle` in `hay`.
pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, rest) = needle.split_first()?;
    let mut from = 0;
    while from + needle.len() <= hay.len() {
        let p = hay[from..=hay.len() - needle.len()]
            .iter()
            .position(|&b| b == first)?;
        let at = from + p;
        if &hay[at + 1..at + needle.len()] == rest {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn find_works_at_edges() {
        assert_eq!(find(b"abcabd", b"abd"), Some(3));
        assert_eq!(find(b"ab", b"abc"), None);
        assert_eq!(find(b"xxabc", b"abc"), Some(2));
        assert_eq!(find(b"", b"a"), None);
    }
}
