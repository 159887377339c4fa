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
}
