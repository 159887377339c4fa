//! A synthetic ESP32-C3 app image holding slot records, built in code the way
//! the repository's `benches/common` builds one (extended header, XOR checksum,
//! appended SHA-256), so tests and the benchmark personalise a real image
//! format without fixtures.
#![allow(dead_code)] // each test uses part of this module

use thinger_patch_core::targets::record::{self, FLAG_REQUIRED, FLAG_SECRET, SlotState};

const CHIP_ID_ESP32C3: u16 = 5;
const DROM_ADDR: u32 = 0x3C00_0020;
const IROM_ADDR: u32 = 0x4200_0020;

/// The firmware's slots: `(key, capacity, flags)`.
pub const SLOTS: &[(&str, u16, u16)] = &[
    ("wifi_ssid", 32, FLAG_REQUIRED),
    ("wifi_password", 64, FLAG_SECRET | FLAG_REQUIRED),
    ("thinger_host", 64, 0),
    ("thinger_user", 32, FLAG_REQUIRED),
    ("thinger_device", 32, FLAG_REQUIRED),
    ("thinger_credentials", 64, FLAG_SECRET | FLAG_REQUIRED),
];

/// Deterministic incompressible filler (xorshift64*).
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn esp32_image(segments: &[(u32, Vec<u8>)]) -> Vec<u8> {
    let mut v = vec![0xE9, segments.len() as u8, 0x02, 0x2F];
    v.extend_from_slice(&0x4200_0020u32.to_le_bytes());
    v.extend_from_slice(&[0xEE, 0, 0, 0]);
    v.extend_from_slice(&CHIP_ID_ESP32C3.to_le_bytes());
    v.push(0);
    v.extend_from_slice(&0u16.to_le_bytes());
    v.extend_from_slice(&199u16.to_le_bytes());
    v.extend_from_slice(&[0; 4]);
    v.push(1); // hash appended
    let mut xor = 0xEFu8;
    for (addr, data) in segments {
        v.extend_from_slice(&addr.to_le_bytes());
        v.extend_from_slice(&(data.len() as u32).to_le_bytes());
        v.extend_from_slice(data);
        xor = data.iter().fold(xor, |a, b| a ^ b);
    }
    while v.len() % 16 != 15 {
        v.push(0);
    }
    v.push(xor);
    let digest = thinger_patch_core::checksum::sha256(&v);
    v.extend_from_slice(&digest);
    v
}

/// An app image of exactly `total_len` bytes (a multiple of 16, at least
/// 8 KiB) whose DROM segment starts with the [`SLOTS`] records.
pub fn app_with_slots(total_len: usize) -> Vec<u8> {
    let mut drom = Vec::new();
    for (key, cap, flags) in SLOTS {
        let default = if *key == "thinger_host" {
            "iot.thinger.io"
        } else {
            ""
        };
        drom.extend_from_slice(&record::encode(
            key,
            *cap,
            *flags,
            SlotState::Default,
            default,
        ));
    }
    drom.extend_from_slice(&filler(1024, 1));
    let fixed = 24 + 2 * 8 + drom.len();
    let irom_len = total_len - 48 - fixed;
    let img = esp32_image(&[(DROM_ADDR, drom), (IROM_ADDR, filler(irom_len, 2))]);
    assert_eq!(img.len(), total_len);
    img
}
