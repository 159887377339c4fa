//! Parse, patch 4 bytes at an address of the first space's first region (each byte inverted),
//! finish, and re-parse the output: whenever `finish` returns bytes, they must parse, verify
//! valid and hold the new bytes. The same for `personalize` with a placeholder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use thinger_patch_core::placeholder::Placeholder;
use thinger_patch_core::values::{Assignment, Origin};
use thinger_patch_core::{Firmware, ParseOptions, Request, personalize};

fuzz_target!(|data: &[u8]| {
    let options = ParseOptions {
        max_decompressed: 4 << 20,
        ..ParseOptions::default()
    };
    let Ok(fw) = Firmware::parse_with(data, options) else {
        return;
    };
    let spaces = fw.spaces();
    let Some(space) = spaces.first() else {
        return;
    };
    // The first region, and (the region may start with a protected field) the first chunk.
    let mut addrs: Vec<u32> = space.regions.first().map(|r| r.addr).into_iter().collect();
    addrs.extend(space.chunks().iter().find(|c| c.len >= 4).map(|c| c.addr));
    for addr in addrs {
        let Ok(old) = fw.read(space, addr, 4) else {
            continue;
        };
        let new: Vec<u8> = old.iter().map(|b| !b).collect();
        let mut patched = fw.clone();
        if patched.patch(addr, &new).is_err() {
            continue;
        }
        let Ok(finished) = patched.finish() else {
            continue;
        };
        assert!(finished.report.valid);
        let again = Firmware::parse_with(&finished.bytes, options)
            .expect("finish returned bytes that do not parse");
        assert!(
            again.verify().valid,
            "finish returned an image that does not verify"
        );
        let first = again
            .spaces()
            .into_iter()
            .next()
            .expect("the space is still there");
        assert_eq!(again.read(&first, addr, 4).expect("still mapped"), new);
    }

    let request = Request {
        values: vec![Assignment::new("text", "Hi", Origin::CommandLine)],
        placeholders: vec![Placeholder {
            key: "text".into(),
            literal: "Your SSID".into(),
        }],
        parse: Some(options),
        ..Request::default()
    };
    if let Ok(p) = personalize(data, &request) {
        assert!(p.report.valid);
        let again = Firmware::parse_with(&p.bytes, options)
            .expect("personalize returned bytes that do not parse");
        assert!(again.verify().valid);
    }
});
