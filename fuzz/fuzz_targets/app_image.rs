//! The `0xE9` image parser at offset 0, with the header kind detected and forced both ways. A
//! parsed image must lie inside the data, and its checksum helpers must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use thinger_patch_core::format::app_image::{AppImage, HeaderKind};

fuzz_target!(|data: &[u8]| {
    for header in [
        None,
        Some(HeaderKind::Esp8266V1),
        Some(HeaderKind::Extended),
    ] {
        let Ok(img) = AppImage::parse(data, 0, header) else {
            continue;
        };
        assert!(img.segments.len() <= 16);
        for s in &img.segments {
            assert!(s.data_range().end <= data.len());
            assert!(s.header_offset + 8 == s.data_offset);
        }
        assert!(img.checksum_offset < data.len() && img.end <= data.len());
        if let Some(d) = img.digest_offset {
            assert!(d + 32 == img.end);
        }
        let _ = img.stored_checksum(data);
        let _ = img.computed_checksum(data, None);
        let _ = img.computed_checksum(data, Some(0x10..0x18));
        let _ = (img.chip(), img.is_esp8266_v3(), img.has_app_desc(data));
        assert!(img.hashed_range().end <= data.len());
    }
});
