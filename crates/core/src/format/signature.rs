//! Signatures that can follow an image. Any changed byte breaks them, and
//! re-signing needs the owner's key, so a signed image is reported and refused.

use super::app_image::AppImage;
use super::read::u32_at;
use serde::Serialize;

/// A signature found after an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Signature {
    /// Secure Boot v1 / signed app: `u32 version = 0` and a 64-byte ECDSA P-256
    /// signature right after the image.
    SecureBootV1 {
        /// Where the signature starts.
        offset: usize,
    },
    /// Secure Boot v2: a 4 KiB-aligned sector of up to three 1216-byte blocks.
    SecureBootV2 {
        /// Where the signature sector starts.
        offset: usize,
        /// `RSA-3072` or `ECDSA`.
        scheme: &'static str,
        /// Signature blocks found.
        blocks: usize,
    },
    /// Arduino ESP8266 signed OTA: `image | signature | u32 len(signature)`.
    ArduinoSignedOta {
        /// Where the signature starts.
        offset: usize,
        /// Its length.
        len: usize,
    },
}

impl Signature {
    /// Its kind, for people (`Secure Boot v2 (RSA-3072), 1 signature block`).
    pub fn describe(&self) -> String {
        match self {
            Signature::SecureBootV1 { .. } => "Secure Boot v1 ECDSA signature".into(),
            Signature::SecureBootV2 { scheme, blocks, .. } => {
                format!("Secure Boot v2 {scheme} signature, {blocks} block(s)")
            }
            Signature::ArduinoSignedOta { len, .. } => {
                format!("Arduino ESP8266 signed OTA, {len}-byte RSA signature")
            }
        }
    }

    /// Where it starts in the file.
    pub fn offset(&self) -> usize {
        match self {
            Signature::SecureBootV1 { offset }
            | Signature::SecureBootV2 { offset, .. }
            | Signature::ArduinoSignedOta { offset, .. } => *offset,
        }
    }
}

const SBV2_BLOCK_LEN: usize = 1216;
const SBV2_MAGIC: u8 = 0xE7;

/// Looks for a signature in `data[image.end..limit]`, the bytes after `image`.
///
/// A degenerate image is never called signed: with no segment data (no
/// segments, or only empty ones) nothing it holds is worth a signature, and
/// what follows its short header is arbitrary data, where the Secure Boot v1
/// test (a zero word and 64 bytes) would match by chance. Otherwise the tests
/// err on the side of "signed": a missed signature would let a patch break it.
pub fn detect(data: &[u8], image: &AppImage, limit: usize, esp8266: bool) -> Option<Signature> {
    let end = image.end;
    let limit = limit.min(data.len());
    if end >= limit || image.segments.iter().all(|s| s.len == 0) {
        return None;
    }
    if esp8266 {
        // The length word is the file's last word; the signature sits just before it.
        if limit == data.len() && limit - end >= 4 {
            let len = u32_at(data, limit - 4) as usize;
            if (64..=1024).contains(&len) && limit - end >= len + 4 {
                return Some(Signature::ArduinoSignedOta {
                    offset: limit - 4 - len,
                    len,
                });
            }
        }
        return None;
    }
    let sector = end.next_multiple_of(4096);
    if sector + SBV2_BLOCK_LEN <= limit
        && data[sector] == SBV2_MAGIC
        && matches!(data[sector + 1], 0x02 | 0x03)
    {
        let blocks = (0..3)
            .take_while(|i| {
                let b = sector + i * SBV2_BLOCK_LEN;
                b + SBV2_BLOCK_LEN <= limit && data[b] == SBV2_MAGIC
            })
            .count();
        let scheme = if data[sector + 1] == 0x02 {
            "RSA-3072"
        } else {
            "ECDSA"
        };
        return Some(Signature::SecureBootV2 {
            offset: sector,
            scheme,
            blocks,
        });
    }
    if limit - end >= 68 && u32_at(data, end) == 0 {
        let sig = &data[end + 4..end + 68];
        if !sig.iter().all(|&b| b == 0) && !sig.iter().all(|&b| b == 0xFF) {
            return Some(Signature::SecureBootV1 { offset: end });
        }
    }
    None
}
