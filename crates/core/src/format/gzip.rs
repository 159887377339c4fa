//! `.bin.gz` OTA images (Arduino ESP8266 core 2.7+): decompress with a cap,
//! compress again after patching.

use crate::error::{Error, Result};
use std::io::Read;

/// The first two bytes of a gzip stream.
pub const MAGIC: [u8; 2] = [0x1F, 0x8B];
/// Default cap on the decompressed size: larger than any ESP flash (16 MiB).
pub const DEFAULT_LIMIT: usize = 32 << 20;

/// Whether `data` starts like a gzip stream.
pub fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&MAGIC)
}

/// Decompresses `data`, failing past `limit` bytes (a gzip bomb stops there).
///
/// The file must be exactly one gzip member: the ESP8266 updater inflates one
/// stream and ignores what follows, so a second member or trailing bytes would
/// mean the device gets other bytes than the ones verified here. Both are
/// refused, naming the offset where they start.
pub fn decompress(data: &[u8], limit: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    // Saturating: `ParseOptions { max_decompressed: usize::MAX }` means "no cap"
    // and must not overflow (a panic in debug builds).
    // `bufread` consumes exactly the member from the slice, so what is left of
    // it afterwards is what follows the member.
    let mut decoder = flate2::bufread::GzDecoder::new(data).take((limit as u64).saturating_add(1));
    decoder.read_to_end(&mut out).map_err(|e| Error::Gzip {
        reason: format!("{e}; the download may be incomplete"),
    })?;
    if out.len() > limit {
        return Err(Error::DecompressedTooLarge { limit });
    }
    let rest = decoder.into_inner().into_inner();
    let offset = data.len() - rest.len();
    if is_gzip(rest) {
        return Err(Error::GzipMembers { offset });
    }
    if !rest.is_empty() {
        return Err(Error::GzipTrailing {
            offset,
            len: rest.len(),
        });
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_member_round_trips_and_anything_after_it_is_refused() {
        let data = b"thinger-patch gzip test data ".repeat(64);
        let gz = compress(&data);
        assert_eq!(decompress(&gz, DEFAULT_LIMIT).unwrap(), data);
        let two = [gz.clone(), compress(b"second")].concat();
        assert_eq!(
            decompress(&two, DEFAULT_LIMIT),
            Err(Error::GzipMembers { offset: gz.len() })
        );
        let junk = [gz.clone(), b"junk".to_vec()].concat();
        assert_eq!(
            decompress(&junk, DEFAULT_LIMIT),
            Err(Error::GzipTrailing {
                offset: gz.len(),
                len: 4
            })
        );
        // A single trailing byte equal to the first magic byte is not a member.
        let one = [gz.clone(), vec![0x1F]].concat();
        assert!(matches!(
            decompress(&one, DEFAULT_LIMIT),
            Err(Error::GzipTrailing { len: 1, .. })
        ));
    }
}
