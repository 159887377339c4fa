//! `.bin.gz` input: the data after a gzip header (added unless the input already starts with
//! one) through `Firmware::parse` with its default 32 MiB cap, then verify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use thinger_patch_core::Firmware;

/// A minimal gzip header: magic, deflate, no flags, mtime 0, no extra flags, OS unknown.
const HEADER: [u8; 10] = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF];

fuzz_target!(|data: &[u8]| {
    let owned;
    let input = if data.starts_with(&HEADER[..2]) {
        data
    } else {
        owned = [&HEADER[..], data].concat();
        &owned
    };
    if let Ok(fw) = Firmware::parse(input) {
        assert!(fw.compression().is_some());
        let _ = fw.verify();
        let _ = fw.spaces();
    }
});
