//! The `0xE9` application image: ESP32-family apps and bootloaders (extended
//! header, optional SHA-256), ESP8266 v1 images (8-byte header) and ESP8266 v3
//! (ESP8266_RTOS_SDK 3.x, the ESP32 layout).

use super::read::{Reader, u32_at};
use crate::checksum;
use crate::chip::Chip;
use crate::error::{Error, Result};

/// The first byte of every ESP image (and of the RAM part of a v2 image).
pub const MAGIC: u8 = 0xE9;
/// ESP-IDF's limit (`ESP_IMAGE_MAX_SEGMENTS`); esptool enforces the same.
pub const MAX_SEGMENTS: usize = 16;
/// `ESP_APP_DESC_MAGIC_WORD`, the first word of `esp_app_desc_t`.
pub const APP_DESC_MAGIC: u32 = 0xABCD_5432;
/// Size of `esp_app_desc_t`, the first data of segment 0 of an ESP-IDF app.
pub const APP_DESC_LEN: usize = 256;

/// Which header an image has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderKind {
    /// ESP8266 ROM format: 8-byte header, no SHA-256.
    Esp8266V1,
    /// 24-byte header with `chip_id` and `hash_appended`: ESP32 family, ESP8266 v3.
    Extended,
}

/// One segment: a header `{u32 load_addr, u32 len}` and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// File offset of its 8-byte header.
    pub header_offset: usize,
    /// Load address.
    pub addr: u32,
    /// File offset of its data.
    pub data_offset: usize,
    /// Length of its data.
    pub len: usize,
    /// Whether the image's XOR checksum covers it (not the ESP8266 v2 irom segment).
    pub in_checksum: bool,
}

impl Segment {
    /// File offsets of its data.
    pub fn data_range(&self) -> std::ops::Range<usize> {
        self.data_offset..self.data_offset + self.len
    }
}

/// A parsed `0xE9` image: offsets into the file it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppImage {
    /// File offset of the magic byte.
    pub offset: usize,
    /// ESP8266 8-byte header or ESP32 extended header.
    pub header: HeaderKind,
    /// SPI flash mode.
    pub flash_mode: u8,
    /// Flash size (high nibble) and frequency (low nibble).
    pub flash_size_freq: u8,
    /// Entry address.
    pub entry: u32,
    /// `chip_id` of the extended header.
    pub chip_id: Option<u16>,
    /// Minimum chip revision of the extended header.
    pub min_chip_rev: Option<u16>,
    /// Raw `hash_appended` byte (extended header only).
    pub hash_appended: Option<u8>,
    /// Its segments, in file order.
    pub segments: Vec<Segment>,
    /// File offset of the checksum byte.
    pub checksum_offset: usize,
    /// File offset of the appended SHA-256, when `hash_appended == 1`.
    pub digest_offset: Option<usize>,
    /// File offset just past the image (after the digest, if any).
    pub end: usize,
}

impl AppImage {
    /// Parses the image at `offset`. `header` forces a header kind; `None` detects it.
    pub fn parse(data: &[u8], offset: usize, header: Option<HeaderKind>) -> Result<AppImage> {
        let r = Reader::new(data);
        let magic = r.u8(offset, "image header")?;
        if magic != MAGIC {
            return Err(Error::BadMagic {
                what: "an ESP image",
                offset,
                found: magic,
                expected: MAGIC,
            });
        }
        r.need(offset, 8, "image header")?;
        let count = data[offset + 1] as usize;
        let header = match header {
            Some(h) => h,
            None => detect_header(data, offset),
        };
        let mut image = AppImage {
            offset,
            header,
            flash_mode: data[offset + 2],
            flash_size_freq: data[offset + 3],
            entry: u32_at(data, offset + 4),
            chip_id: None,
            min_chip_rev: None,
            hash_appended: None,
            segments: Vec::new(),
            checksum_offset: 0,
            digest_offset: None,
            end: 0,
        };
        let mut pos = offset + 8;
        if header == HeaderKind::Extended {
            r.need(offset, 24, "extended image header")?;
            image.chip_id = Some(u16::from_le_bytes([data[offset + 12], data[offset + 13]]));
            image.min_chip_rev = Some(data[offset + 14] as u16);
            image.hash_appended = Some(data[offset + 23]);
            pos = offset + 24;
        }
        if count > MAX_SEGMENTS {
            return Err(Error::TooManySegments { offset, count });
        }
        image.segments = parse_segments(data, offset, pos, count, true)?;
        pos = image.segments.last().map_or(pos, |s| s.data_offset + s.len);
        image.finish_layout(data, pos)?;
        Ok(image)
    }

    /// Places the checksum (and digest) after the segment data ending at `pos`.
    pub(crate) fn finish_layout(&mut self, data: &[u8], pos: usize) -> Result<()> {
        // The checksum is the last byte of the 16-byte block holding `pos`,
        // counted from the image start.
        let rel = pos - self.offset;
        self.checksum_offset = self.offset + (rel | 0xF);
        Reader::new(data).need(self.checksum_offset, 1, "image checksum")?;
        self.end = self.checksum_offset + 1;
        if self.hash_appended == Some(1) {
            Reader::new(data).need(self.end, 32, "appended SHA-256")?;
            self.digest_offset = Some(self.end);
            self.end += 32;
        }
        Ok(())
    }

    /// The chip this image is for, from `chip_id` or, for ESP8266 layouts, by fact.
    pub fn chip(&self) -> Option<Chip> {
        match self.header {
            HeaderKind::Esp8266V1 => Some(Chip::Esp8266),
            HeaderKind::Extended if self.is_esp8266_v3() => Some(Chip::Esp8266),
            HeaderKind::Extended => self.chip_id.and_then(Chip::from_chip_id),
        }
    }

    /// ESP8266_RTOS_SDK 3.x images use the extended header with `chip_id` 0,
    /// like the ESP32; their load addresses give them away.
    pub fn is_esp8266_v3(&self) -> bool {
        self.header == HeaderKind::Extended
            && self.chip_id == Some(0)
            && self.segments.iter().any(|s| is_esp8266_only_addr(s.addr))
    }

    /// The checksum byte as stored in `data`.
    pub fn stored_checksum(&self, data: &[u8]) -> u8 {
        data[self.checksum_offset]
    }

    /// XOR checksum over the checksummed segments, with `zeroed` (a file range)
    /// counted as zero bytes (for the Arduino core 3.x convention).
    pub fn computed_checksum(&self, data: &[u8], zeroed: Option<std::ops::Range<usize>>) -> u8 {
        let mut c = checksum::XOR_SEED;
        for s in self.segments.iter().filter(|s| s.in_checksum) {
            c ^= checksum::xor(&data[s.data_range()]);
            if let Some(z) = &zeroed {
                let a = z.start.max(s.data_offset);
                let b = z.end.min(s.data_offset + s.len);
                if a < b {
                    c ^= checksum::xor(&data[a..b]);
                }
            }
        }
        c
    }

    /// The bytes the appended SHA-256 covers.
    pub fn hashed_range(&self) -> std::ops::Range<usize> {
        self.offset..self.checksum_offset + 1
    }

    /// Whether segment 0 starts with an `esp_app_desc_t`.
    pub fn has_app_desc(&self, data: &[u8]) -> bool {
        self.header == HeaderKind::Extended
            && self.segments.first().is_some_and(|s| {
                s.len >= APP_DESC_LEN && u32_at(data, s.data_offset) == APP_DESC_MAGIC
            })
    }

    /// Flash size in bytes from the header nibble, where the encoding is known.
    pub fn flash_size_code(&self) -> u8 {
        self.flash_size_freq >> 4
    }
}

/// Reads `count` segment headers and their data from `pos`.
pub(crate) fn parse_segments(
    data: &[u8],
    image: usize,
    mut pos: usize,
    count: usize,
    in_checksum: bool,
) -> Result<Vec<Segment>> {
    let r = Reader::new(data);
    let mut segments = Vec::with_capacity(count);
    for index in 0..count {
        r.need(pos, 8, "segment header")?;
        let addr = u32_at(data, pos);
        let len = u32_at(data, pos + 4);
        let data_offset = pos + 8;
        if (len as usize) > data.len() - data_offset {
            return Err(Error::SegmentPastEnd {
                image,
                index,
                offset: pos,
                len,
                file_len: data.len(),
            });
        }
        segments.push(Segment {
            header_offset: pos,
            addr,
            data_offset,
            len: len as usize,
            in_checksum,
        });
        pos = data_offset + len as usize;
    }
    Ok(segments)
}

/// The ESP8266 memory map's IRAM and flash-mapped ranges, which no ESP32-family
/// chip uses.
fn is_esp8266_only_addr(addr: u32) -> bool {
    (0x4010_0000..0x4011_0000).contains(&addr) || (0x4020_0000..0x4030_0000).contains(&addr)
}

/// An 8-byte ESP8266 header is followed directly by a segment header whose load
/// address is in the ESP8266 map; an extended header has `wp_pin` and drive
/// settings there instead (0xEE or 0x00 followed by small bytes), never an address.
fn detect_header(data: &[u8], offset: usize) -> HeaderKind {
    if data.len() < offset + 12 {
        return HeaderKind::Extended;
    }
    let word = u32_at(data, offset + 8);
    if (0x3FF0_0000..0x4030_0000).contains(&word) {
        HeaderKind::Esp8266V1
    } else {
        HeaderKind::Extended
    }
}
