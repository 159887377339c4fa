//! Bounds-checked little-endian reads of borrowed bytes.

use crate::error::{Error, Result};

pub(crate) fn u32_at(data: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(data[offset..offset + 4].try_into().expect("4 bytes"))
}

pub(crate) fn u16_at(data: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes([data[offset], data[offset + 1]])
}

/// A view that turns out-of-bounds reads into [`Error::Truncated`].
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    data: &'a [u8],
}

impl<'a> Reader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Reader { data }
    }

    /// Fails unless `len` bytes are available at `offset`.
    pub fn need(&self, offset: usize, len: usize, what: &'static str) -> Result<()> {
        let available = self.data.len().saturating_sub(offset);
        if available < len {
            return Err(Error::Truncated {
                what,
                offset,
                needed: len,
                available,
            });
        }
        Ok(())
    }

    pub fn u8(&self, offset: usize, what: &'static str) -> Result<u8> {
        self.need(offset, 1, what)?;
        Ok(self.data[offset])
    }
}
