//! The partition table parser at offset 0. A parsed table has no overlapping partitions and its
//! MD5 entry lies inside the data.
#![no_main]

use libfuzzer_sys::fuzz_target;
use thinger_patch_core::format::partition_table::PartitionTable;

fuzz_target!(|data: &[u8]| {
    let _ = PartitionTable::is_at(data, 0);
    let Ok(table) = PartitionTable::parse(data, 0) else {
        return;
    };
    if let Some(m) = &table.md5 {
        assert!(m.offset + 32 <= data.len());
    }
    let mut parts: Vec<_> = table.partitions.iter().collect();
    parts.sort_by_key(|p| p.offset);
    for w in parts.windows(2) {
        assert!(
            w[0].end() <= w[1].offset as u64,
            "overlapping partitions accepted"
        );
    }
    for p in table.apps() {
        let _ = p.app_role();
    }
    let _ = table.boot_app();
});
