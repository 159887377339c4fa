//! Any bytes through format detection and every parser (4 MiB gzip cap), then everything a front
//! end does with a parsed file: verify (and serialise the report), list the address spaces, walk
//! their chunks and read them back by address. Must never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use thinger_patch_core::{Firmware, ParseOptions};

fuzz_target!(|data: &[u8]| {
    let options = ParseOptions {
        max_decompressed: 4 << 20,
        ..ParseOptions::default()
    };
    let Ok(fw) = Firmware::parse_with(data, options) else {
        return;
    };
    let report = fw.verify();
    serde_json::to_string(&report).expect("a report serialises");
    let _ = report.summary_of_problems();
    let _ = (fw.chip(), fw.format_name(), fw.layout());
    for space in fw.spaces() {
        for chunk in space.chunks() {
            let bytes = fw.chunk_bytes(&chunk);
            assert_eq!(bytes.len(), chunk.len);
            let read = fw
                .read(&space, chunk.addr, chunk.len)
                .expect("every chunk maps back to file bytes");
            assert_eq!(read, bytes.as_ref());
        }
    }
});
