//! The integrity functions ESP images use. Each is the one documented in
//! `docs/image-engine.md`; CRC-32 (zlib) comes from `flate2`.

/// Seed of the ESP image XOR checksum.
pub const XOR_SEED: u8 = 0xEF;

/// XOR of every byte (without the seed): combine with [`XOR_SEED`] or fold into a
/// stored checksum incrementally.
pub fn xor(bytes: &[u8]) -> u8 {
    // Word-at-a-time: the XOR of the 8 bytes of a u64 folds the same way.
    let mut chunks = bytes.chunks_exact(8);
    let mut acc = 0u64;
    for c in &mut chunks {
        acc ^= u64::from_le_bytes(c.try_into().expect("8-byte chunk"));
    }
    let mut b = acc.to_le_bytes().iter().fold(0u8, |a, x| a ^ x);
    for x in chunks.remainder() {
        b ^= x;
    }
    b
}

/// zlib CRC-32.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = flate2::Crc::new();
    crc.update(bytes);
    crc.sum()
}

/// esptool's `esp8266_crc32`, appended to ESP8266 v2 images.
pub fn esp8266_crc32(bytes: &[u8]) -> u32 {
    let c = crc32(bytes);
    if c & 0x8000_0000 != 0 {
        c ^ 0xFFFF_FFFF
    } else {
        c.wrapping_add(1)
    }
}

/// CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, MSB first, no reflection, no
/// final XOR), the Arduino ESP8266 core's `ESP.checkFlashCRC()` CRC. Computed over
/// `bytes` with `zeroed` (a file range) counted as zero bytes.
pub fn crc32_mpeg2(bytes: &[u8], zeroed: std::ops::Range<usize>) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = (i as u32) << 24;
            for _ in 0..8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04C1_1DB7
                } else {
                    c << 1
                };
            }
            *e = c;
        }
        t
    });
    let step = |crc: u32, b: u8| (crc << 8) ^ table[(((crc >> 24) as u8) ^ b) as usize];
    let zs = zeroed.start.min(bytes.len());
    let ze = zeroed.end.clamp(zs, bytes.len());
    let mut crc = bytes[..zs].iter().fold(0xFFFF_FFFF, |c, &b| step(c, b));
    crc = (zs..ze).fold(crc, |c, _| step(c, 0));
    bytes[ze..].iter().fold(crc, |c, &b| step(c, b))
}

/// SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Below this many bytes after the split, [`sha256_pair`] hashes on one thread: a thread
/// costs more than it saves.
const PAIR_PARALLEL_MIN: usize = 64 * 1024;

/// SHA-256 of `range` in `a` and in `b`, two buffers equal before `split` (the input and its
/// patched copy): the common prefix is hashed once, and the two suffixes on two threads where
/// there are threads. Returns `(digest of a, digest of b)`.
pub fn sha256_pair(
    a: &[u8],
    b: &[u8],
    range: std::ops::Range<usize>,
    split: usize,
) -> ([u8; 32], [u8; 32]) {
    use sha2::Digest;
    let split = split.clamp(range.start, range.end);
    let mut prefix = sha2::Sha256::new();
    prefix.update(&a[range.start..split]);
    let tail = split..range.end;
    let finish = |mut h: sha2::Sha256, bytes: &[u8]| -> [u8; 32] {
        h.update(bytes);
        h.finalize().into()
    };
    #[cfg(not(target_family = "wasm"))]
    if tail.len() >= PAIR_PARALLEL_MIN {
        let prefix_b = prefix.clone();
        return std::thread::scope(|s| {
            let of_a = s.spawn(|| finish(prefix, &a[tail.clone()]));
            let of_b = finish(prefix_b, &b[tail.clone()]);
            // Hashing cannot panic; if the thread did anyway, let it propagate as it was.
            let of_a = of_a.join().unwrap_or_else(|e| std::panic::resume_unwind(e));
            (of_a, of_b)
        });
    }
    (
        finish(prefix.clone(), &a[tail.clone()]),
        finish(prefix, &b[tail]),
    )
}

/// MD5 of `bytes`.
pub fn md5(bytes: &[u8]) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(bytes).into()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The first `n` bytes as space-separated hex (`e9 06 02 2f`), for messages.
pub fn hex_head(bytes: &[u8], n: usize) -> String {
    bytes
        .iter()
        .take(n)
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        // Check values from the CRC catalogue ("123456789").
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32_mpeg2(b"123456789", 0..0), 0x0376_E6E7);
        assert_eq!(
            crc32_mpeg2(b"12\0\0\x3556789", 2..4),
            crc32_mpeg2(b"12\0\0\x3556789", 0..0)
        );
        assert_ne!(crc32_mpeg2(b"12345", 1..2), crc32_mpeg2(b"12345", 0..0));
        assert_eq!(xor(&[1, 2, 4, 8, 16, 32, 64, 128, 0xFF]), 0);
        assert_eq!(xor(b""), 0);
        assert_eq!(hex(&md5(b"")), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn sha256_pair_equals_two_hashes() {
        // Both the threaded (long tail) and the sequential (short tail) paths.
        for len in [100usize, 300_000] {
            let a: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
            let mut b = a.clone();
            let split = len / 3;
            b[split] ^= 0x5A;
            b[len - 2] ^= 1;
            let range = 3..len - 1;
            let (da, db) = sha256_pair(&a, &b, range.clone(), split);
            assert_eq!(da, sha256(&a[range.clone()]));
            assert_eq!(db, sha256(&b[range.clone()]));
            assert_ne!(da, db);
            // A split outside the range is clamped into it.
            assert_eq!(
                sha256_pair(&a, &a, range.clone(), 0).1,
                sha256(&a[range.clone()])
            );
            assert_eq!(
                sha256_pair(&a, &a, range.clone(), len * 2).0,
                sha256(&a[range])
            );
        }
    }
}
