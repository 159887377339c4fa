//! The ELF parser, for ESP firmware and (on request) host programs. Parsed sections lie inside
//! the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use thinger_patch_core::format::elf::ElfLayout;

fuzz_target!(|data: &[u8]| {
    for allow_host in [false, true] {
        let Ok(elf) = ElfLayout::parse_with(data, allow_host) else {
            continue;
        };
        for s in elf.sections.iter().chain(&elf.protected) {
            assert!(s.offset + s.len <= data.len());
        }
        let _ = (elf.chip(), elf.arch(), elf.is_host());
    }
});
