//! `.bin.gz` OTA images (Arduino ESP8266 core 2.7+): decompress with a cap,
//! compress again after patching.

use crate::error::{Error, Result};
use std::io::Read;

pub const MAGIC: [u8; 2] = [0x1F, 0x8B];
/// Default cap on the decompressed size: larger than any ESP flash (16 MiB).
pub const DEFAULT_LIMIT: usize = 32 << 20;

pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// Decompresses `data`, failing past `limit` bytes (a gzip bomb stops there).
pub fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    // Saturating: `ParseOptions { max_decompressed: usize::MAX }` means "no cap"
    // and must not overflow (a panic in debug builds).
    let mut decoder = flate2::read::GzDecoder::new(data).take((limit as u64).saturating_add(1));
    decoder.read_to_end(&mut out).map_err(|e| Error::Gzip {
        reason: format!("{e}; the download may be incomplete"),
    })?;
    if out.len() > limit {
        return Err(Error::DecompressedTooLarge { limit });
    }
    Ok(out)
}

/// Compresses deterministically (no name, mtime 0, best compression).
pub fn compress(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("writing to a Vec cannot fail");
    enc.finish().expect("writing to a Vec cannot fail")
}
