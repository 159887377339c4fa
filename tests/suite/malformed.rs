//! Malformed input: a corpus of crafted files, each cut or corrupted at one structural boundary
//! of a valid seed, must fail with the specific [`Error`] variant (or, for a wrong checksum, CRC,
//! digest or table MD5, verify as invalid and refuse to be patched), with a message that names
//! the offset; the CLI must exit 1 naming the file and the offset, write nothing and leave the
//! input unchanged. A property test then cuts and corrupts every seed and every real fixture at
//! many positions: parsing, verifying, mapping and patching must never panic.
//!
//! The seeds are built in code (`tests/suite/malformed/seeds.rs`); nothing here is a committed binary.
//! Real fixtures come from `../shared/fixtures/third-party` (skipped when absent, a failure under
//! `CI=true`).

use crate::common;
#[path = "malformed/seeds.rs"]
mod seeds;

use seeds::{APP, ARDUINO_APP, SHDR_LEN, TABLE};
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use thinger_patch_core::targets::placeholder::Placeholder;
use thinger_patch_core::values::{Assignment, Origin};
use thinger_patch_core::{Error, Firmware, ParseOptions, Request, personalize};

// =============================================================================================
// The crafted corpus
// =============================================================================================

/// What a crafted file must do.
enum Expect {
    /// Parsing fails with an error matching `pattern` whose message names `offset`.
    Error {
        pattern: &'static str,
        check: Box<dyn Fn(&Error) -> bool>,
        offset: usize,
    },
    /// Parsing succeeds, `verify` reports the image invalid with a problem `code` at `offset`
    /// (`table_md5`: the partition table's MD5 entry at `offset`), and `patch` refuses with
    /// [`Error::InvalidBeforePatch`]. `shown` is the offset the messages name (`None` where they
    /// do not name one yet).
    Invalid {
        code: &'static str,
        offset: usize,
        shown: Option<usize>,
    },
}

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
    options: ParseOptions,
    expect: Expect,
}

/// `err!(offset, Pattern { .. } if guard)`: an [`Expect::Error`].
macro_rules! err {
    ($offset:expr, $($pat:tt)+) => {
        Expect::Error {
            pattern: stringify!($($pat)+),
            check: Box::new(move |e: &Error| matches!(e, $($pat)+)),
            offset: $offset,
        }
    };
}

fn invalid(code: &'static str, offset: usize) -> Expect {
    Expect::Invalid {
        code,
        offset,
        shown: Some(offset),
    }
}

fn cut(b: &[u8], len: usize) -> Vec<u8> {
    assert!(
        len <= b.len(),
        "cut at {len:#x} past the end {:#x}",
        b.len()
    );
    b[..len].to_vec()
}

fn edit(b: &[u8], f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut v = b.to_vec();
    f(&mut v);
    v
}

fn put_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

/// A real x86-64 ELF: `/bin/true` when there is one, else this test binary.
fn x86_64_elf() -> Vec<u8> {
    let candidates = [PathBuf::from("/bin/true"), PathBuf::from("/usr/bin/true")];
    candidates
        .iter()
        .filter_map(|p| fs::read(p).ok())
        .find(|b| b.starts_with(b"\x7fELF") && b.get(0x12) == Some(&62))
        .unwrap_or_else(|| fs::read(std::env::current_exe().unwrap()).unwrap())
}

fn cases() -> Vec<Case> {
    let app = seeds::esp32c3_app();
    let a = &app.bytes;
    let (h0, h1, h2) = (app.seg_headers[0], app.seg_headers[1], app.seg_headers[2]);
    let (cks, digest) = (app.checksum, app.digest.unwrap());
    let a_len = a.len();

    let v1 = seeds::esp8266_v1();
    let v1b = &v1.bytes;
    let v1_cks = v1.checksum;
    let v1_h1 = v1.seg_headers[1];

    let v2 = seeds::esp8266_v2();
    let v2b = &v2.bytes;
    let (second, v2_cks, crc) = (v2.second, v2.checksum, v2.crc);

    let ard = seeds::arduino_core3();
    let ab = &ard.bytes;
    let ard_h1 = ARDUINO_APP + ard.app.seg_headers[1];
    let trailer = ard.trailer;

    let merged = seeds::merged_esp32c3();
    let mb = &merged.bytes;

    let elf = seeds::riscv_elf();
    let eb = &elf.bytes;
    let shoff = elf.shoff;

    let gz = seeds::gzip(v1b);
    let gz_len = gz.len();
    let no_alloc_elf = seeds::elf32(
        seeds::EM_RISCV,
        &[
            seeds::ElfSec {
                name: ".bss",
                kind: 8,
                flags: 3,
                addr: 0x3FC8_8000,
                data: vec![0; 0x40],
            },
            seeds::ElfSec {
                name: ".debug_info",
                kind: 1,
                flags: 0,
                addr: 0,
                data: seeds::filler(0x40, 4),
            },
        ],
    );

    let d = ParseOptions::default;
    let mut c = vec![
        // --- ESP32-C3 app: extended header, 3 segments, checksum, SHA-256 ---------------------
        Case {
            name: "app-cut-in-common-header",
            bytes: cut(a, 5),
            options: d(),
            expect: err!(
                0,
                Error::Truncated {
                    what: "image header",
                    offset: 0,
                    needed: 8,
                    available: 5
                }
            ),
        },
        Case {
            name: "app-cut-in-extended-header",
            bytes: cut(a, 16),
            options: d(),
            expect: err!(
                0,
                Error::Truncated {
                    what: "extended image header",
                    offset: 0,
                    needed: 24,
                    available: 16
                }
            ),
        },
        Case {
            name: "app-cut-in-segment-header",
            bytes: cut(a, h0 + 4),
            options: d(),
            expect: err!(h0, Error::Truncated { what: "segment header", offset, needed: 8, available: 4 } if *offset == h0),
        },
        Case {
            name: "app-cut-in-segment-data",
            bytes: cut(a, h1 + 8 + 10),
            options: d(),
            expect: err!(h1, Error::SegmentPastEnd { image: 0, index: 1, offset, len: 0x40, file_len } if *offset == h1 && *file_len == h1 + 18),
        },
        Case {
            name: "app-cut-in-last-segment-data",
            bytes: cut(a, h2 + 8 + 4),
            options: d(),
            expect: err!(h2, Error::SegmentPastEnd { image: 0, index: 2, offset, .. } if *offset == h2),
        },
        Case {
            name: "app-cut-before-checksum",
            bytes: cut(a, cks),
            options: d(),
            expect: err!(cks, Error::Truncated { what: "image checksum", offset, needed: 1, available: 0 } if *offset == cks),
        },
        Case {
            name: "app-cut-in-sha256",
            bytes: cut(a, digest + 16),
            options: d(),
            expect: err!(digest, Error::Truncated { what: "appended SHA-256", offset, needed: 32, available: 16 } if *offset == digest),
        },
        Case {
            name: "app-17-segments",
            bytes: edit(a, |b| b[1] = 17),
            options: d(),
            expect: err!(
                0,
                Error::TooManySegments {
                    offset: 0,
                    count: 17
                }
            ),
        },
        Case {
            name: "app-255-segments",
            bytes: edit(a, |b| b[1] = 255),
            options: d(),
            expect: err!(
                0,
                Error::TooManySegments {
                    offset: 0,
                    count: 255
                }
            ),
        },
        Case {
            name: "app-segment-length-past-eof",
            bytes: edit(a, |b| put_u32(b, h2 + 4, 0x1000)),
            options: d(),
            expect: err!(h2, Error::SegmentPastEnd { image: 0, index: 2, offset, len: 0x1000, file_len } if *offset == h2 && *file_len == a_len),
        },
        Case {
            name: "app-segment-length-0xffffffff",
            bytes: edit(a, |b| put_u32(b, h0 + 4, u32::MAX)),
            options: d(),
            expect: err!(h0, Error::SegmentPastEnd { image: 0, index: 0, offset, len: u32::MAX, .. } if *offset == h0),
        },
        Case {
            name: "app-wrong-magic",
            bytes: edit(a, |b| b[0] = 0xE8),
            options: d(),
            expect: err!(0, Error::UnknownFormat { offset: 0, head } if head.starts_with("e8 03")),
        },
        Case {
            name: "app-zero-segments",
            // 0 segments, then what looks like a Secure Boot v1 block: not an image, not signed.
            bytes: seeds::zero_segment_image().bytes,
            options: d(),
            expect: invalid("no_segments", 1),
        },
        Case {
            name: "app-bad-checksum",
            // A changed data byte with the SHA-256 recomputed: only the checksum is wrong.
            bytes: edit(a, |b| {
                b[h1 + 8] ^= 0x55;
                let sha = thinger_patch_core::checksum::sha256(&b[..=cks]);
                b[digest..digest + 32].copy_from_slice(&sha);
            }),
            options: d(),
            expect: invalid("checksum", cks),
        },
        Case {
            name: "app-bad-sha256",
            bytes: edit(a, |b| b[digest + 7] ^= 0x01),
            options: d(),
            expect: invalid("sha256", digest),
        },
        Case {
            name: "app-hash-appended-2",
            bytes: edit(a, |b| b[23] = 2),
            options: d(),
            // The problem's offset is right (0x17), but its message names no offset yet.
            expect: Expect::Invalid {
                code: "hash_appended",
                offset: 23,
                shown: None,
            },
        },
        // --- ESP8266 v1 ----------------------------------------------------------------------
        Case {
            name: "v1-cut-in-segment-header",
            bytes: cut(v1b, 12),
            options: d(),
            expect: err!(
                8,
                Error::Truncated {
                    what: "segment header",
                    offset: 8,
                    needed: 8,
                    available: 4
                }
            ),
        },
        Case {
            name: "v1-cut-in-segment-data",
            bytes: cut(v1b, v1_h1 + 8 + 4),
            options: d(),
            expect: err!(v1_h1, Error::SegmentPastEnd { image: 0, index: 1, offset, .. } if *offset == v1_h1),
        },
        Case {
            name: "v1-cut-before-checksum",
            bytes: cut(v1b, v1_cks),
            options: d(),
            expect: err!(v1_cks, Error::Truncated { what: "image checksum", offset, .. } if *offset == v1_cks),
        },
        Case {
            name: "v1-17-segments",
            bytes: edit(v1b, |b| b[1] = 17),
            options: d(),
            expect: err!(
                0,
                Error::TooManySegments {
                    offset: 0,
                    count: 17
                }
            ),
        },
        // --- ESP8266 v2 (0xEA) ---------------------------------------------------------------
        Case {
            name: "v2-cut-in-first-header",
            bytes: cut(v2b, 6),
            options: d(),
            expect: err!(
                0,
                Error::Truncated {
                    what: "ESP8266 v2 header",
                    offset: 0,
                    needed: 8,
                    available: 6
                }
            ),
        },
        Case {
            name: "v2-cut-in-irom-segment",
            bytes: cut(v2b, v2.irom_header + 8 + 0x20),
            options: d(),
            expect: err!(
                v2.irom_header,
                Error::SegmentPastEnd {
                    image: 0,
                    index: 0,
                    offset: 8,
                    len: 0x80,
                    ..
                }
            ),
        },
        Case {
            name: "v2-second-header-wrong-magic",
            bytes: edit(v2b, |b| b[second] = 0xE8),
            options: d(),
            expect: err!(second, Error::BadMagic { offset, found: 0xE8, expected: 0xE9, .. } if *offset == second),
        },
        Case {
            name: "v2-cut-in-second-header",
            bytes: cut(v2b, second + 5),
            options: d(),
            expect: err!(second, Error::Truncated { what: "ESP8266 v2 second header", offset, needed: 8, available: 5 } if *offset == second),
        },
        Case {
            name: "v2-second-header-17-segments",
            bytes: edit(v2b, |b| b[second + 1] = 17),
            options: d(),
            expect: err!(second, Error::TooManySegments { offset, count: 17 } if *offset == second),
        },
        Case {
            name: "v2-cut-before-checksum",
            bytes: cut(v2b, v2_cks),
            options: d(),
            expect: err!(v2_cks, Error::Truncated { what: "image checksum", offset, .. } if *offset == v2_cks),
        },
        Case {
            name: "v2-cut-in-crc",
            bytes: cut(v2b, crc + 2),
            options: d(),
            expect: err!(crc, Error::Truncated { what: "ESP8266 v2 CRC-32", offset, needed: 4, available: 2 } if *offset == crc),
        },
        Case {
            name: "v2-bad-crc",
            bytes: edit(v2b, |b| b[crc + 1] ^= 0x10),
            options: d(),
            expect: invalid("crc", crc),
        },
        // --- Arduino ESP8266: eboot + app + core 3.x CRC trailer ------------------------------
        // A damaged app parses as an Arduino image whose app is missing (eboot is fine, and it is
        // all esptool checks): invalid, with the reason, and nothing to patch.
        Case {
            name: "arduino-cut-in-app-header",
            bytes: cut(ab, ARDUINO_APP + 4),
            options: d(),
            // "truncated image header at offset 0x1000: it needs 8 bytes but only 4 remain"
            expect: invalid("app_missing", ARDUINO_APP),
        },
        Case {
            name: "arduino-cut-in-app-segment",
            bytes: cut(ab, ard_h1 + 8 + 4),
            options: d(),
            // The reason names the segment header that runs past the end.
            expect: Expect::Invalid {
                code: "app_missing",
                offset: ARDUINO_APP,
                shown: Some(ard_h1),
            },
        },
        Case {
            name: "arduino-app-erased",
            bytes: edit(ab, |b| b[ARDUINO_APP..].fill(0xFF)),
            options: d(),
            expect: invalid("app_missing", ARDUINO_APP),
        },
        Case {
            name: "arduino-app-overwritten",
            bytes: edit(ab, |b| {
                let n = b.len() - ARDUINO_APP;
                b[ARDUINO_APP..].copy_from_slice(&seeds::Rng::new(11).bytes(n));
                b[ARDUINO_APP] = 0x5A;
            }),
            options: d(),
            expect: invalid("app_missing", ARDUINO_APP),
        },
        Case {
            name: "arduino-lone-eboot",
            // eboot and its 0xAA padding, nothing after: a 4 KiB file.
            bytes: cut(ab, ARDUINO_APP),
            options: d(),
            expect: invalid("app_missing", ARDUINO_APP),
        },
        Case {
            name: "arduino-cut-in-eboot-padding",
            bytes: cut(ab, ard.eboot.bytes.len() + 0x20),
            options: d(),
            expect: invalid("app_missing", ARDUINO_APP),
        },
        Case {
            name: "arduino-bad-crc-trailer",
            bytes: edit(ab, |b| b[trailer + 5] ^= 0x01),
            options: d(),
            expect: invalid("crc", trailer),
        },
        // --- Merged flash image: bootloader, partition table, app ------------------------------
        Case {
            name: "merged-overlapping-partitions",
            bytes: edit(mb, |b| {
                // phy_init moved into nvs (0x9000..0xF000), MD5 recomputed: only the overlap is wrong.
                put_u32(b, TABLE + 0x20 + 4, 0xE000);
                let md5 = seeds::md5_entry(&b[TABLE..TABLE + 0x60]);
                b[TABLE + 0x60..TABLE + 0x80].copy_from_slice(&md5);
            }),
            options: d(),
            expect: err!(TABLE, Error::PartitionOverlap { table: 0x8000, a, b, a_start: 0x9000, a_end: 0xF000, b_start: 0xE000, b_end: 0xF000 } if a == "nvs" && b == "phy_init"),
        },
        Case {
            name: "merged-table-cut-before-end-marker",
            bytes: cut(mb, TABLE + 0x80),
            options: d(),
            expect: err!(TABLE + 0x80, Error::PartitionTable { table: 0x8000, index: 4, offset: 0x8080, reason, .. } if reason.contains("no end marker")),
        },
        Case {
            name: "merged-table-without-end-marker",
            bytes: edit(mb, |b| {
                // 96 valid entries fill the whole 0xC00-byte table: no room for an end marker.
                for i in 0..96u32 {
                    let e = seeds::partition_entry(
                        1,
                        0x81,
                        0x20_0000 + i * 0x1000,
                        0x1000,
                        &format!("p{i}"),
                    );
                    let at = TABLE + i as usize * 32;
                    b[at..at + 32].copy_from_slice(&e);
                }
            }),
            options: d(),
            expect: err!(TABLE + 0xC00, Error::PartitionTable { table: 0x8000, index: 96, offset: 0x8C00, reason, .. } if reason.contains("no end marker")),
        },
        Case {
            name: "merged-table-unknown-entry-magic",
            bytes: edit(mb, |b| {
                b[TABLE + 0x20..TABLE + 0x22].copy_from_slice(&[0x12, 0x34])
            }),
            options: d(),
            expect: err!(TABLE + 0x20, Error::PartitionTable { table: 0x8000, index: 1, offset: 0x8020, reason, .. } if reason.contains("12 34")),
        },
        Case {
            name: "merged-bad-table-md5",
            bytes: edit(mb, |b| b[TABLE + 0x60 + 20] ^= 0x01),
            options: d(),
            // The messages name the table (0x8000); the report names the MD5 entry (0x8060).
            expect: Expect::Invalid {
                code: "table_md5",
                offset: TABLE + 0x60,
                shown: Some(TABLE),
            },
        },
        Case {
            name: "merged-app-cut-in-segment",
            bytes: cut(mb, APP + 0x40),
            options: d(),
            expect: err!(
                APP + 24,
                Error::SegmentPastEnd {
                    image: 0x10000,
                    index: 0,
                    offset: 0x10018,
                    file_len: 0x10040,
                    ..
                }
            ),
        },
        Case {
            name: "merged-app-17-segments",
            bytes: edit(mb, |b| b[APP + 1] = 17),
            options: d(),
            expect: err!(
                APP,
                Error::TooManySegments {
                    offset: 0x10000,
                    count: 17
                }
            ),
        },
        Case {
            name: "merged-boot-app-past-the-end",
            // factory moved to 0x200000, past the end of the file (MD5 recomputed); the data at
            // 0x10000 (now outside every partition) corrupted: the file holds no bootable app.
            bytes: edit(mb, |b| {
                put_u32(b, TABLE + 0x40 + 4, 0x20_0000);
                let md5 = seeds::md5_entry(&b[TABLE..TABLE + 0x60]);
                b[TABLE + 0x60..TABLE + 0x80].copy_from_slice(&md5);
                b[APP + 0x40] ^= 0x55;
            }),
            options: d(),
            expect: invalid("boot_app_missing", TABLE + 0x40),
        },
        Case {
            name: "merged-partition-past-4gib",
            // factory at 0xfff00000, size 0xffffffff (MD5 recomputed).
            bytes: edit(mb, |b| {
                put_u32(b, TABLE + 0x40 + 4, 0xFFF0_0000);
                put_u32(b, TABLE + 0x40 + 8, 0xFFFF_FFFF);
                let md5 = seeds::md5_entry(&b[TABLE..TABLE + 0x60]);
                b[TABLE + 0x60..TABLE + 0x80].copy_from_slice(&md5);
            }),
            options: d(),
            expect: invalid("partition_range", TABLE + 0x40),
        },
        Case {
            name: "merged-partition-past-256mib",
            // phy_init at 0x0FFFF000, 8 KiB: ends past the largest ESP flash. The app is fine.
            bytes: edit(mb, |b| {
                put_u32(b, TABLE + 0x20 + 4, 0x0FFF_F000);
                put_u32(b, TABLE + 0x20 + 8, 0x2000);
                let md5 = seeds::md5_entry(&b[TABLE..TABLE + 0x60]);
                b[TABLE + 0x60..TABLE + 0x80].copy_from_slice(&md5);
            }),
            options: d(),
            expect: invalid("partition_range", TABLE + 0x20),
        },
        // --- ELF --------------------------------------------------------------------------------
        Case {
            name: "elf-x86-64",
            bytes: x86_64_elf(),
            options: d(),
            expect: err!(0x12, Error::NotEspElf { machine: 62 }),
        },
        Case {
            name: "elf-x86-32-header",
            bytes: seeds::elf32(seeds::EM_386, &[]).bytes,
            options: d(),
            expect: err!(0x12, Error::NotEspElf { machine: 3 }),
        },
        Case {
            name: "elf-big-endian",
            bytes: edit(eb, |b| b[5] = 2),
            options: d(),
            expect: err!(0x12, Error::NotEspElf { .. }),
        },
        Case {
            name: "elf-unknown-class",
            bytes: edit(eb, |b| b[4] = 0),
            options: d(),
            expect: err!(4, Error::Elf { offset: 4, .. }),
        },
        Case {
            name: "elf-cut-in-header",
            bytes: cut(eb, 40),
            options: d(),
            expect: err!(0, Error::Elf { offset: 0, .. }),
        },
        Case {
            name: "elf-section-past-eof",
            bytes: edit(eb, |b| {
                let len = b.len() as u32;
                put_u32(b, shoff + SHDR_LEN + 16, len - 0x10); // .text sh_offset
            }),
            options: d(),
            expect: err!(shoff + SHDR_LEN, Error::Elf { offset, reason } if *offset == shoff + SHDR_LEN && reason.contains(".text")),
        },
        Case {
            name: "elf-no-allocated-sections",
            // Only a debug section and a NOBITS .bss: nothing a device would load.
            bytes: no_alloc_elf.bytes.clone(),
            options: d(),
            expect: invalid("no_sections", no_alloc_elf.shoff),
        },
        Case {
            name: "elf-cut-in-section-headers",
            bytes: cut(eb, shoff + SHDR_LEN + 20),
            options: d(),
            expect: err!(shoff, Error::Elf { offset, .. } if *offset == shoff),
        },
        // --- Degenerate files -------------------------------------------------------------------
        Case {
            name: "zero-length",
            bytes: Vec::new(),
            options: d(),
            expect: err!(0, Error::Empty),
        },
        Case {
            name: "one-byte",
            bytes: vec![0x61],
            options: d(),
            expect: err!(0, Error::UnknownFormat { offset: 0, head } if head == "61"),
        },
        Case {
            name: "one-byte-e9",
            bytes: vec![0xE9],
            options: d(),
            expect: err!(
                0,
                Error::Truncated {
                    what: "image header",
                    offset: 0,
                    needed: 8,
                    available: 1
                }
            ),
        },
        Case {
            name: "one-byte-ea",
            bytes: vec![0xEA],
            options: d(),
            expect: err!(
                0,
                Error::Truncated {
                    what: "ESP8266 v2 header",
                    offset: 0,
                    needed: 8,
                    available: 1
                }
            ),
        },
        Case {
            name: "all-0xff-64k",
            bytes: vec![0xFF; 0x10000],
            options: d(),
            expect: err!(0, Error::UnknownFormat { offset: 0, head } if head.starts_with("ff ff")),
        },
        Case {
            name: "random-bytes",
            bytes: edit(&seeds::Rng::new(7).bytes(4096), |b| b[0] = 0x5A),
            options: d(),
            expect: err!(0, Error::Encrypted { offset: 0 }),
        },
        // --- gzip ------------------------------------------------------------------------------
        Case {
            name: "gzip-bomb-100mib",
            bytes: seeds::gzip_bomb(100 << 20),
            options: ParseOptions {
                max_decompressed: 32 << 20,
                ..ParseOptions::default()
            },
            expect: err!(0, Error::DecompressedTooLarge { limit: 0x200_0000 }),
        },
        Case {
            name: "gzip-corrupt-block-type",
            // BTYPE 11 (reserved) in the first deflate block header.
            bytes: edit(&gz, |b| b[10] |= 0x06),
            options: d(),
            expect: err!(0, Error::Gzip { .. }),
        },
        Case {
            name: "gzip-truncated-stream",
            bytes: cut(&gz, gz.len() / 2),
            options: d(),
            expect: err!(0, Error::Gzip { .. }),
        },
        Case {
            name: "gzip-truncated-trailer",
            bytes: cut(&gz, gz.len() - 3),
            options: d(),
            expect: err!(0, Error::Gzip { .. }),
        },
        Case {
            name: "gzip-bad-crc",
            bytes: edit(&gz, |b| {
                let n = b.len();
                b[n - 8] ^= 0x01;
            }),
            options: d(),
            expect: err!(0, Error::Gzip { .. }),
        },
        Case {
            name: "gzip-two-members",
            // The ESP8266 updater would inflate the first member only.
            bytes: [gz.clone(), seeds::gzip(b"a second member")].concat(),
            options: d(),
            expect: err!(gz_len, Error::GzipMembers { offset } if *offset == gz_len),
        },
        Case {
            name: "gzip-trailing-garbage",
            bytes: [gz.clone(), b"\0\0garbage".to_vec()].concat(),
            options: d(),
            expect: err!(gz_len, Error::GzipTrailing { offset, len: 9 } if *offset == gz_len),
        },
        Case {
            name: "gzip-inside-gzip",
            // Compressed twice: the inner stream is random-looking, but it is not encrypted.
            bytes: seeds::gzip(&gz),
            options: d(),
            expect: err!(0, Error::GzipNested),
        },
        Case {
            name: "gzip-of-truncated-image",
            // Offsets inside a .bin.gz are offsets of the decompressed data.
            bytes: seeds::gzip(&v1b[..v1_cks]),
            options: d(),
            expect: err!(v1_cks, Error::Truncated { what: "image checksum", offset, .. } if *offset == v1_cks),
        },
    ];
    c.sort_by_key(|c| c.name);
    c
}

/// Runs one case through the library; returns what is wrong (empty when all is right).
fn check_library(case: &Case) -> Vec<String> {
    let mut wrong = Vec::new();
    let parsed = Firmware::parse_with(&case.bytes, case.options);
    match (&case.expect, parsed) {
        (
            Expect::Error {
                pattern,
                check,
                offset,
            },
            Err(e),
        ) => {
            if !check(&e) {
                wrong.push(format!("error {e:?} does not match {pattern}"));
            }
            let msg = e.to_string();
            if !msg.contains(&format!("{offset:#x}")) {
                wrong.push(format!("message does not name offset {offset:#x}: {msg}"));
            }
        }
        (Expect::Error { pattern, .. }, Ok(fw)) => wrong.push(format!(
            "parsed as {} (valid: {}), expected an error matching {pattern}",
            fw.format_name(),
            fw.verify().valid
        )),
        (
            Expect::Invalid {
                code,
                offset,
                shown,
            },
            Ok(mut fw),
        ) => {
            let report = fw.verify();
            if report.valid {
                wrong.push("verify says valid".into());
            }
            if *code == "table_md5" {
                let md5 = report.partition_table.as_ref().and_then(|t| t.md5.as_ref());
                match md5 {
                    Some(m) if !m.valid && m.offset == *offset => {}
                    other => wrong.push(format!("table MD5 not flagged at {offset:#x}: {other:?}")),
                }
                if report.partition_table.as_ref().is_none_or(|t| t.valid) {
                    wrong.push("the partition table is not marked invalid".into());
                }
            } else if !report
                .problems()
                .iter()
                .any(|p| p.code == *code && p.offset == Some(*offset))
            {
                wrong.push(format!(
                    "no {code} problem at {offset:#x}: {:?}",
                    report.problems()
                ));
            }
            // Patching must refuse, whatever bytes are chosen.
            let spaces = fw.spaces();
            let chunk = spaces
                .first()
                .and_then(|s| s.chunks().into_iter().find(|c| c.len >= 4));
            // A damaged part may have no patchable bytes at all (a missing app): any address
            // must be refused as invalid then.
            let addr = chunk.map_or(0x3FFE_8000, |ch| ch.addr);
            let before = fw.data().to_vec();
            match fw.patch(addr, &[0x11, 0x22, 0x33, 0x44]) {
                Err(e @ Error::InvalidBeforePatch { .. }) => {
                    let msg = e.to_string();
                    if let Some(o) = shown
                        && !msg.contains(&format!("{o:#x}"))
                    {
                        wrong.push(format!("refusal does not name {o:#x}: {msg}"));
                    }
                }
                other => wrong.push(format!("patch did not refuse: {other:?}")),
            }
            if fw.data() != before {
                wrong.push("a refused patch changed the data".into());
            }
        }
        (Expect::Invalid { .. }, Err(e)) => wrong.push(format!("parse failed: {e}")),
    }
    wrong
}

/// Runs the `thinger-patch` binary in `dir` (no config file can be found there or in the user
/// config folder, which points into `dir` too).
fn run_in(dir: &Path, args: &[&str]) -> std::process::Output {
    let bin = common::cli_path();
    std::process::Command::new(&bin)
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir)
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

/// The placeholder every seed holds (in its `.rodata`), for `thinger-patch patch`.
const PATCH_ARGS: &[&str] = &[
    "--placeholder",
    "seed_text=Your SSID",
    "--set",
    "seed_text=Hello",
];

/// Runs `thinger-patch verify` and `thinger-patch patch -o OUT` on the case written to a fresh
/// folder: both exit 1 naming the file and the offset, nothing is written, the input is
/// unchanged. Returns what is wrong.
fn check_cli(case: &Case) -> Vec<String> {
    let mut wrong = Vec::new();
    let dir = common::temp_dir();
    let path = common::write_file(dir.path(), &format!("{}.bin", case.name), &case.bytes);
    let listing = || {
        let mut v: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        v.sort();
        v
    };
    let before = listing();
    let file = path.to_str().unwrap();
    // The output keeps the input's form: a gzip input is written as `.gz`.
    let gzip = case.bytes.starts_with(&[0x1F, 0x8B]);
    let out_file = dir.path().join(if gzip { "out.bin.gz" } else { "out.bin" });
    let mut patch = vec!["patch", file, "-o", out_file.to_str().unwrap()];
    patch.extend_from_slice(PATCH_ARGS);
    let prefix = format!("error: {}: ", path.display());
    for args in [vec!["verify", file], patch] {
        let cmd = args[0];
        let out = run_in(dir.path(), &args);
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        if out.status.code() != Some(1) {
            wrong.push(format!(
                "{cmd}: exit code {:?}, expected 1\n{}",
                out.status.code(),
                common::describe_output(&out)
            ));
        }
        if stderr.contains("panicked") {
            wrong.push(format!("{cmd}: the CLI panicked: {stderr}"));
        }
        // `verify` prints the report of a file that parses (on stdout), `patch` refuses on stderr.
        let (text, shown) = match (&case.expect, cmd) {
            (Expect::Error { offset, .. }, _) => (&stderr, Some(*offset)),
            (Expect::Invalid { shown, .. }, "verify") => {
                if !stdout.contains(&format!("{}: ", path.display())) || !stdout.contains("INVALID")
                {
                    wrong.push(format!(
                        "verify: stdout does not report the file INVALID: {stdout}"
                    ));
                }
                if !stderr.is_empty() {
                    wrong.push(format!("verify: unexpected stderr: {stderr}"));
                }
                (&stdout, *shown)
            }
            (Expect::Invalid { shown, .. }, _) => {
                if !stderr.contains("not valid before patching") {
                    wrong.push(format!("patch: not refused as invalid: {stderr}"));
                }
                (&stderr, *shown)
            }
        };
        if (matches!(case.expect, Expect::Error { .. }) || cmd == "patch")
            && !stderr.contains(&prefix)
        {
            wrong.push(format!(
                "{cmd}: stderr does not contain `{prefix}`: {stderr}"
            ));
        }
        if let Some(o) = shown
            && !text.contains(&format!("{o:#x}"))
        {
            wrong.push(format!("{cmd}: output does not name offset {o:#x}: {text}"));
        }
    }
    if listing() != before {
        wrong.push(format!(
            "the folder changed: {:?} -> {:?}",
            before,
            listing()
        ));
    }
    if fs::read(&path).unwrap() != case.bytes {
        wrong.push("the input file changed".into());
    }
    wrong
}

#[test]
fn crafted_corpus_has_enough_cases() {
    let cases = cases();
    assert!(cases.len() >= 25, "only {} crafted cases", cases.len());
    let mut names: Vec<_> = cases.iter().map(|c| c.name).collect();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
}

#[test]
fn crafted_files_fail_with_the_specific_error() {
    let mut failures = Vec::new();
    for case in cases() {
        let result = catch_unwind(AssertUnwindSafe(|| check_library(&case)));
        match result {
            Ok(w) if w.is_empty() => {}
            Ok(w) => failures.push(format!("{}: {}", case.name, w.join("; "))),
            Err(_) => failures.push(format!("{}: PANIC", case.name)),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn crafted_files_fail_in_the_cli_naming_file_and_offset() {
    let mut failures = Vec::new();
    for case in cases() {
        let w = check_cli(&case);
        if !w.is_empty() {
            failures.push(format!("{}: {}", case.name, w.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn gzip_bomb_is_a_valid_gzip_of_zeros() {
    // Small enough to inflate completely here; the same construction makes the 100 MiB bomb.
    let len = 3 << 20;
    let bomb = seeds::gzip_bomb(len);
    assert!(bomb.len() < len / 100, "a bomb compresses ~150:1");
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&bomb[..]), &mut out)
        .expect("the bomb is a valid gzip stream");
    assert_eq!(out.len(), len);
    assert!(out.iter().all(|&b| b == 0));
    for odd in [1, 2, 3, 258, 259, 260, 261, 517] {
        let mut out = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&seeds::gzip_bomb(odd)[..]),
            &mut out,
        )
        .unwrap_or_else(|e| panic!("bomb of {odd}: {e}"));
        assert_eq!(out, vec![0; odd]);
    }
    // Under the cap it is just a (non-firmware) file of zeros.
    assert!(matches!(
        Firmware::parse(&bomb),
        Err(Error::UnknownFormat { offset: 0, .. })
    ));
}

// =============================================================================================
// Seeds
// =============================================================================================

#[test]
fn seeds_are_valid_and_patchable() {
    for seed in seeds::all() {
        let fw = Firmware::parse(&seed.bytes)
            .unwrap_or_else(|e| panic!("seed {} does not parse: {e}", seed.name));
        let report = fw.verify();
        assert!(
            report.valid,
            "seed {} is not valid: {}",
            seed.name,
            report.summary_of_problems()
        );
        let expected = match seed.name {
            "esp32c3-app" | "esp32c3-bootloader" | "esp8266-v1" | "esp8266-v1.bin.gz"
            | "app-across-4gib" => "app-image",
            "esp8266-v2" => "esp8266-v2",
            "arduino-core3" => "arduino-esp8266",
            "merged-esp32c3" | "merged-esp32c3-ota" => "merged",
            "riscv-elf" => "elf",
            other => panic!("unknown seed {other}"),
        };
        assert_eq!(fw.format_name(), expected, "seed {}", seed.name);
        if let Some(out) = patch_round_trip(&fw) {
            let out = out.unwrap_or_else(|e| panic!("seed {}: patch failed: {e}", seed.name));
            assert_ne!(out, seed.bytes, "seed {}: nothing changed", seed.name);
        } else {
            panic!("seed {} has no patchable bytes", seed.name);
        }
    }
    // The merged seed's table has its MD5 and the app its descriptor.
    let m = seeds::merged_esp32c3();
    let report = Firmware::parse(&m.bytes).unwrap().verify();
    let table = report.partition_table.unwrap();
    assert!(table.md5.is_some_and(|m| m.valid) && table.partitions.len() == 3);
    assert_eq!(report.images.len(), 2);
}

/// Patches 4 bytes at the start of the first patchable run of the first space (each byte
/// inverted), finishes, and checks the output re-parses, verifies valid and holds the new bytes.
/// `None` when there is nothing to patch; `Some(Err)` when the engine refused (never a panic).
fn patch_round_trip(fw: &Firmware<'_>) -> Option<thinger_patch_core::Result<Vec<u8>>> {
    let spaces = fw.spaces();
    let first = spaces.first()?;
    let chunk = first.chunks().into_iter().find(|c| c.len >= 4)?;
    let old = fw.read(first, chunk.addr, 4).expect("a chunk is readable");
    let new: Vec<u8> = old.iter().map(|b| !b).collect();
    let mut patched = fw.clone();
    if let Err(e) = patched.patch(chunk.addr, &new) {
        return Some(Err(e));
    }
    let out = match patched.finish() {
        Ok(f) => {
            assert!(f.report.valid, "finish returned an invalid report");
            f.bytes
        }
        Err(e) => {
            assert!(
                matches!(e, Error::InvalidAfterPatch { .. }),
                "finish failed with {e:?}"
            );
            return Some(Err(e));
        }
    };
    let again = Firmware::parse_with(
        &out,
        ParseOptions {
            max_decompressed: 64 << 20,
            ..ParseOptions::default()
        },
    )
    .expect("finish returned bytes that do not parse");
    assert!(
        again.verify().valid,
        "finish returned an invalid image: {}",
        again.verify().summary_of_problems()
    );
    let space = &again.spaces()[0];
    assert_eq!(again.read(space, chunk.addr, 4).unwrap(), new);
    Some(Ok(out))
}

/// Address arithmetic at the top of the 32-bit address space and with huge lengths: a segment
/// crossing 4 GiB is patchable below the boundary only, slot and placeholder scans do not
/// overflow, `read` of `usize::MAX` bytes is refused, and a gzip cap of `usize::MAX` is no cap.
#[test]
fn address_and_size_arithmetic_never_overflows() {
    let img = seeds::app_across_4gib();
    let fw = Firmware::parse(&img.bytes).unwrap();
    assert!(fw.verify().valid);
    let space = &fw.spaces()[0];
    let chunks = space.chunks();
    assert_eq!(chunks.len(), 1);
    assert_eq!((chunks[0].addr, chunks[0].len), (0xFFFF_FF00, 0x100));
    assert_eq!(fw.read(space, 0xFFFF_FF00, 0x100).unwrap().len(), 0x100);
    assert!(fw.read(space, 0xFFFF_FFFF, 2).is_err());
    assert!(matches!(
        fw.read(space, 0xFFFF_FF00, usize::MAX),
        Err(Error::Unmapped { .. })
    ));
    let found = thinger_patch_core::targets::scan::scan(&fw);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].addr, 0xFFFF_FFF8);
    let occ = thinger_patch_core::targets::placeholder::occurrences(&fw, b"Your SSID");
    assert_eq!(occ.len(), 1);
    assert_eq!(occ[0].addr, 0xFFFF_FF80);
    exercise(&img.bytes);

    let gz = seeds::gzip(&seeds::esp8266_v1().bytes);
    let unlimited = ParseOptions {
        max_decompressed: usize::MAX,
        ..ParseOptions::default()
    };
    assert!(Firmware::parse_with(&gz, unlimited).unwrap().verify().valid);
    let zero = ParseOptions {
        max_decompressed: 0,
        ..ParseOptions::default()
    };
    assert!(matches!(
        Firmware::parse_with(&gz, zero),
        Err(Error::DecompressedTooLarge { limit: 0 })
    ));
}

/// Segments that overlap in address space (fuzzing found chunks and `read` disagreeing): the
/// bytes a scan sees at an address are the bytes a patch at that address writes, and a value is
/// never written over another segment's data.
#[test]
fn overlapping_segments_read_and_patch_the_same_bytes() {
    let seg0 = seeds::filler(0x40, 2);
    let mut seg1 = seeds::filler(0x40, 3);
    // Under segment 0 (address 0x3FC88024) and past its end (0x3FC88050).
    seg1[0x04..0x0D].copy_from_slice(b"Your SSID");
    seg1[0x30..0x39].copy_from_slice(b"Your SSID");
    let img = seeds::e9_image(
        0x4038_0080,
        [0x02, 0x20],
        Some(seeds::Ext {
            chip_id: 5,
            hash_appended: true,
        }),
        &[
            seeds::Seg {
                addr: 0x3FC8_8000,
                data: seg0.clone(),
            },
            seeds::Seg {
                addr: 0x3FC8_8020,
                data: seg1,
            },
        ],
    );
    let fw = Firmware::parse(&img.bytes).unwrap();
    assert!(fw.verify().valid);
    let space = &fw.spaces()[0];
    for c in space.chunks() {
        assert_eq!(
            fw.read(space, c.addr, c.len).unwrap(),
            fw.chunk_bytes(&c).as_ref()
        );
    }
    let occ = thinger_patch_core::targets::placeholder::occurrences(&fw, b"Your SSID");
    assert_eq!(occ.len(), 1, "{occ:x?}");
    assert_eq!(occ[0].addr, 0x3FC8_8050);
    assert_eq!(occ[0].offset, img.seg_data(1) + 0x30);
    let request = Request {
        values: vec![Assignment::new("seed_text", "Hello", Origin::CommandLine)],
        placeholders: vec![Placeholder::new("seed_text", "Your SSID")],
        ..Request::default()
    };
    let out = personalize(&img.bytes, &request).unwrap().bytes;
    let s0 = img.seg_data(0);
    assert_eq!(&out[s0..s0 + 0x40], &seg0[..], "segment 0 was written");
    let at = img.seg_data(1) + 0x30;
    assert_eq!(&out[at..at + 9], b"Hello\0\0\0\0");
}

// =============================================================================================
// Degenerate and damaged structure that used to pass as valid (issue 8)
// =============================================================================================

/// A header declaring 0 segments, followed by a zero word and 64 bytes, was reported as "signed:
/// Secure Boot v1": it is an invalid image, and no signature is detected after it.
#[test]
fn zero_segment_image_is_invalid_and_not_signed() {
    let img = seeds::zero_segment_image();
    let fw = Firmware::parse(&img.bytes).unwrap();
    let report = fw.verify();
    assert!(!report.valid);
    let app = &report.images[0];
    assert_eq!(app.signature, None, "a 0-segment image is not signed");
    let p = app
        .problems
        .iter()
        .find(|p| p.code == "no_segments")
        .unwrap();
    assert!(p.message.contains("0 segments"), "{}", p.message);
    // The same header with one segment of data is a signed image (the detection still works).
    let mut signed = seeds::e9_image(
        0x4038_0080,
        [0x02, 0x20],
        Some(seeds::Ext {
            chip_id: 5,
            hash_appended: true,
        }),
        &[seeds::Seg {
            addr: 0x3FC8_8000,
            data: seeds::filler(0x40, 1),
        }],
    )
    .bytes;
    let end = signed.len();
    signed.extend_from_slice(&img.bytes[img.bytes.len() - 68..]);
    let report = Firmware::parse(&signed).unwrap().verify();
    assert!(matches!(
        report.images[0].signature,
        Some(thinger_patch_core::format::signature::Signature::SecureBootV1 { offset }) if offset == end
    ));
}

/// An ELF whose `.rodata` is aliased by two more section headers (one at the same address, one
/// at another) and whose `.flash.appdesc` is aliased at another address: `inspect` listed every
/// slot twice. Each file byte now counts once: one slot, one placeholder occurrence, one copy of
/// the bytes in the report, a note naming the aliases, and the app descriptor's bytes cannot be
/// written through the alias address.
#[test]
fn aliased_elf_sections_count_once() {
    use thinger_patch_core::targets::record::{self, SlotState};
    let mut desc = vec![0u8; 256];
    desc[..4].copy_from_slice(&0xABCD_5432u32.to_le_bytes());
    desc[48..56].copy_from_slice(b"seed-app");
    let mut rodata = record::encode("wifi_ssid", 32, 0, SlotState::Default, "");
    rodata.extend_from_slice(b"Your SSID\0\0\0");
    rodata.resize(0xC0, 0);
    let sec = |name: &'static str, flags: u32, addr: u32, data: Vec<u8>| seeds::ElfSec {
        name,
        kind: 1,
        flags,
        addr,
        data,
    };
    let mut elf = seeds::elf32(
        seeds::EM_RISCV,
        &[
            sec(".flash.appdesc", 2, 0x3C00_0020, desc.clone()),
            sec(".rodata", 2, 0x3C00_0120, rodata.clone()),
            sec(".text", 6, 0x4200_0020, seeds::filler(0x80, 9)),
            sec(".rodata.alias", 2, 0x3C00_0120, rodata.clone()),
            sec(".rodata.shadow", 2, 0x3C10_0000, rodata.clone()),
            sec(".appdesc.shadow", 2, 0x3C20_0000, desc.clone()),
        ],
    );
    let sh_offset = |i: usize| elf.shoff + i * SHDR_LEN + 16;
    for (alias, of) in [(4, 2), (5, 2), (6, 1)] {
        let at = sh_offset(alias);
        let target = elf.data_offsets[of] as u32;
        put_u32(&mut elf.bytes, at, target);
    }
    let rodata_at = elf.data_offsets[2];
    let fw = Firmware::parse(&elf.bytes).unwrap();
    let report = fw.verify();
    assert!(report.valid, "{}", report.summary_of_problems());

    let slots = thinger_patch_core::targets::scan::scan(&fw);
    assert_eq!(slots.len(), 1, "{slots:x?}");
    assert_eq!((slots[0].addr, slots[0].offset), (0x3C00_0120, rodata_at));
    let occ = thinger_patch_core::targets::placeholder::occurrences(&fw, b"Your SSID");
    assert_eq!(occ.len(), 1, "{occ:x?}");

    // No file byte is listed twice.
    let mut ranges: Vec<(usize, usize)> = report.images[0]
        .segments
        .iter()
        .map(|s| (s.offset, s.offset + s.len))
        .collect();
    ranges.sort();
    assert!(
        ranges.windows(2).all(|w| w[0].1 <= w[1].0),
        "overlapping file ranges: {ranges:x?}"
    );
    let note = report
        .notes
        .iter()
        .find(|n| n.contains("aliased"))
        .expect("a note names the aliases");
    for name in [".rodata.alias", ".rodata.shadow", ".appdesc.shadow"] {
        assert!(note.contains(name), "{note}");
    }

    // The descriptor's bytes cannot be reached through the alias address (they stay with the
    // descriptor's own section, which is protected), nor .rodata through its shadow.
    let mut f = fw.clone();
    assert!(matches!(
        f.patch(0x3C20_0030, b"evil"),
        Err(Error::Unmapped { .. })
    ));
    assert!(matches!(
        f.patch(0x3C00_0030, b"evil"),
        Err(Error::Protected { .. })
    ));
    assert!(matches!(
        f.patch(0x3C10_0000, b"x"),
        Err(Error::Unmapped { .. })
    ));
    assert_eq!(f.data(), &elf.bytes[..]);

    // Personalising writes the one slot once; the result verifies and re-parses alike.
    let request = Request {
        values: vec![Assignment::new("wifi_ssid", "home", Origin::CommandLine)],
        ..Request::default()
    };
    let done = personalize(&elf.bytes, &request).unwrap();
    assert_eq!(done.slots.len(), 1);
    assert_eq!(done.slots[0].addresses, vec![0x3C00_0120]);
    let value_at = rodata_at + record::OFFSET_VALUE;
    assert_eq!(&done.bytes[value_at..value_at + 5], b"home\0");
    let changed: Vec<usize> = (0..elf.bytes.len())
        .filter(|&i| elf.bytes[i] != done.bytes[i])
        .collect();
    assert!(
        changed
            .iter()
            .all(|&i| (rodata_at..rodata_at + rodata.len()).contains(&i)),
        "bytes outside .rodata changed: {changed:x?}"
    );
}

/// The case of the issue: the table's factory partition at 0xfff00000 with size 0xffffffff, and
/// the real (corrupted) app at 0x10000 in no partition. Two table problems, and a note that names
/// the app-like data at 0x10000.
#[test]
fn merged_partition_past_4gib_and_orphan_app_data_are_named() {
    let mut b = seeds::merged_esp32c3().bytes;
    put_u32(&mut b, TABLE + 0x40 + 4, 0xFFF0_0000);
    put_u32(&mut b, TABLE + 0x40 + 8, 0xFFFF_FFFF);
    let md5 = seeds::md5_entry(&b[TABLE..TABLE + 0x60]);
    b[TABLE + 0x60..TABLE + 0x80].copy_from_slice(&md5);
    b[APP + 0x40] ^= 0x55;
    let fw = Firmware::parse(&b).unwrap();
    let report = fw.verify();
    assert!(!report.valid);
    let table = report.partition_table.as_ref().unwrap();
    assert!(!table.valid);
    let codes: Vec<(&str, Option<usize>)> =
        table.problems.iter().map(|p| (p.code, p.offset)).collect();
    assert_eq!(
        codes,
        [
            ("partition_range", Some(TABLE + 0x40)),
            ("boot_app_missing", Some(TABLE + 0x40))
        ]
    );
    assert!(table.problems[0].message.contains("overflows 32 bits"));
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("0x10000") && n.contains("outside every partition")),
        "{:?}",
        report.notes
    );
    // Only images inside partitions are apps: the corrupted data is not parsed as one.
    assert_eq!(report.images.len(), 1, "only the bootloader");
}

/// A merged image whose boot app (ota_0) is in the file and whose ota_1 lies past its end (what
/// `esptool merge-bin` writes for an OTA table) stays valid, with a note about ota_1.
#[test]
fn merged_ota_1_past_the_end_is_a_note() {
    let m = seeds::merged_esp32c3_ota();
    let report = Firmware::parse(&m.bytes).unwrap().verify();
    assert!(report.valid, "{}", report.summary_of_problems());
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("app1") && n.contains("past the end of the file")),
        "{:?}",
        report.notes
    );
    assert!(
        !report
            .notes
            .iter()
            .any(|n| n.contains("outside every partition")),
        "{:?}",
        report.notes
    );
    let roles: Vec<&str> = report.images.iter().map(|i| i.role.as_str()).collect();
    assert_eq!(roles, ["bootloader", "ota_0 (app0)"]);
}

/// A bare eboot image without the 0xAA padding (what a converter writes for eboot alone) is what
/// it is: a valid image, with a note that it is eboot and holds no app.
#[test]
fn bare_eboot_image_is_reported_as_eboot() {
    let ard = seeds::arduino_core3();
    let bare = &ard.bytes[..ard.eboot.bytes.len()];
    let fw = Firmware::parse(bare).unwrap();
    assert_eq!(fw.format_name(), "app-image");
    let report = fw.verify();
    assert!(report.valid, "{}", report.summary_of_problems());
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("eboot") && n.contains("holds no app")),
        "{:?}",
        report.notes
    );
    // The ESP8266 v1 seed (an app at 0x40100000) gets no such note.
    let v1 = Firmware::parse(&seeds::esp8266_v1().bytes)
        .unwrap()
        .verify();
    assert!(
        !v1.notes.iter().any(|n| n.contains("eboot")),
        "{:?}",
        v1.notes
    );
}

/// The damaged Arduino image refuses `personalize` for what is wrong (the missing app), not with
/// "placeholder does not occur".
#[test]
fn damaged_arduino_app_is_refused_for_what_it_is() {
    let ard = seeds::arduino_core3();
    let erased = edit(&ard.bytes, |b| b[ARDUINO_APP..].fill(0xFF));
    let request = Request {
        values: vec![Assignment::new("seed_text", "Hello", Origin::CommandLine)],
        placeholders: vec![Placeholder::new("seed_text", "Your SSID")],
        ..Request::default()
    };
    // The intact seed personalises.
    personalize(&ard.bytes, &request).unwrap();
    match personalize(&erased, &request) {
        Err(e @ Error::InvalidBeforePatch { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("the app at 0x1000 is missing or damaged")
                    && msg.contains("no image magic at 0x1000 (found 0xff")
                    && !msg.contains("does not occur"),
                "{msg}"
            );
        }
        other => panic!("not refused as invalid: {other:?}"),
    }
}

/// The new cases, cut and corrupted everywhere in their first 4 KiB and at their structure:
/// parsing, verifying, mapping and patching never panic.
#[test]
fn property_issue8_cases_never_panic() {
    let names = [
        "arduino-app-erased",
        "arduino-app-overwritten",
        "arduino-lone-eboot",
        "arduino-cut-in-eboot-padding",
        "app-zero-segments",
        "merged-boot-app-past-the-end",
        "merged-partition-past-4gib",
        "merged-partition-past-256mib",
        "elf-no-allocated-sections",
        "gzip-two-members",
        "gzip-trailing-garbage",
        "gzip-inside-gzip",
    ];
    let all = cases();
    for name in names {
        let case = all.iter().find(|c| c.name == name).expect(name);
        let len = case.bytes.len();
        let hot = [
            0..0x100,
            TABLE..TABLE + 0xC0,
            APP..APP + 0x40,
            len.saturating_sub(0x40)..len,
        ];
        let flips = positions(len, &hot, 128);
        hammer(name, &case.bytes, &flips);
    }
}

// =============================================================================================
// Property test: cut and corrupt everything, never panic
// =============================================================================================

/// Everything a front end does with a file: personalise it (a placeholder), parse (4 MiB gzip
/// cap), verify, serialise the report, list spaces and chunks, read the chunks, patch 4 bytes
/// and finish.
fn exercise(bytes: &[u8]) {
    let options = ParseOptions {
        max_decompressed: 4 << 20,
        ..ParseOptions::default()
    };
    let request = Request {
        values: vec![Assignment::new("seed_text", "Hello", Origin::CommandLine)],
        placeholders: vec![Placeholder::new("seed_text", "Your SSID")],
        allow_missing: true,
        parse: Some(options),
        ..Request::default()
    };
    let personalized = personalize(bytes, &request);
    let fw = match Firmware::parse_with(bytes, options) {
        Ok(fw) => fw,
        Err(e) => {
            assert_eq!(
                personalized.err(),
                Some(e),
                "personalize and parse disagree"
            );
            return;
        }
    };
    if let Ok(p) = personalized {
        assert!(p.report.valid, "personalize returned an invalid image");
        Firmware::parse_with(&p.bytes, options)
            .expect("personalize returned bytes that do not parse");
    }
    let report = fw.verify();
    serde_json::to_string(&report).expect("a report serialises");
    let _ = report.summary_of_problems();
    let _ = (fw.chip(), fw.format_name(), fw.is_elf());
    for space in fw.spaces() {
        for chunk in space.chunks() {
            assert_eq!(fw.chunk_bytes(&chunk).len(), chunk.len);
        }
    }
    if let Some(Ok(_)) = patch_round_trip(&fw) {
        assert!(report.valid, "an invalid file was patched");
    }
}

/// Cuts `bytes` at every length up to 4096 and at 64 deterministic points beyond, then XORs a
/// deterministic non-zero mask into each byte at `flips` (one at a time).
fn hammer(name: &str, bytes: &[u8], flips: &[usize]) {
    let mut rng = seeds::Rng::new(bytes.len() as u64 ^ 0x5EED);
    let run = |what: &str, b: &[u8]| {
        if catch_unwind(AssertUnwindSafe(|| exercise(b))).is_err() {
            panic!("{name}: PANIC on {what} (len {:#x})", b.len());
        }
    };
    let len = bytes.len();
    for n in 0..=len.min(4096) {
        run(&format!("cut at {n:#x}"), &bytes[..n]);
    }
    if len > 4096 {
        for _ in 0..64 {
            let n = 4097 + rng.below(len - 4096);
            run(&format!("cut at {n:#x}"), &bytes[..n]);
        }
        run("the whole file", bytes);
    }
    let mut buf = bytes.to_vec();
    for &p in flips {
        let mask = (rng.next_u64() as u8).max(1);
        buf[p] ^= mask;
        run(&format!("byte {p:#x} ^= {mask:#04x}"), &buf);
        buf[p] ^= mask;
    }
}

/// Sorted, distinct positions: every byte of `ranges` (clipped to `len`) and `random` more.
fn positions(len: usize, ranges: &[std::ops::Range<usize>], random: usize) -> Vec<usize> {
    if len == 0 {
        return Vec::new();
    }
    let mut rng = seeds::Rng::new(len as u64);
    let mut p: Vec<usize> = ranges
        .iter()
        .flat_map(|r| r.start.min(len)..r.end.min(len))
        .chain((0..random).map(|_| rng.below(len)))
        .collect();
    p.sort_unstable();
    p.dedup();
    p
}

#[test]
fn property_seeds_never_panic() {
    for seed in seeds::all() {
        // Every structural byte, the first 512 and 256 more.
        let mut ranges = seed.hot.clone();
        ranges.push(0..512);
        let flips = positions(seed.bytes.len(), &ranges, 256);
        hammer(seed.name, &seed.bytes, &flips);
    }
    // Crafted cases too (they are small, except the bomb, which the 4 MiB cap stops early).
    for case in cases() {
        if case.bytes.len() <= 0x20000 {
            exercise(&case.bytes);
        }
    }
}

/// The real fixtures (every file of `../shared/fixtures/third-party`), split in two halves of
/// about equal size so that the test harness runs them in parallel.
fn fixture_files(half: usize) -> Option<Vec<(PathBuf, Vec<u8>)>> {
    let root = common::shared_fixtures()?;
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = fs::read(&p).unwrap();
                files.push((p, bytes));
            }
        }
    }
    assert!(
        files.len() > 20,
        "expected the fixture set, found {} files",
        files.len()
    );
    files.sort_by(|a, b| (a.1.len(), &a.0).cmp(&(b.1.len(), &b.0)));
    Some(
        files
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % 2 == half)
            .map(|(_, f)| f)
            .collect(),
    )
}

/// Every successful parse of a corrupted copy verifies the whole file (SHA-256, CRCs), which a
/// debug build does at ~12 MB/s: flips per file are budgeted by size (about 8 MiB of data per
/// file), always including the headers and the last bytes (CRC, digest, signature, ELF section
/// headers sit at the end).
fn hammer_fixtures(half: usize) {
    let Some(files) = fixture_files(half) else {
        return;
    };
    for (path, bytes) in files {
        let name = path.display().to_string();
        let len = bytes.len();
        let flips = if len <= 64 << 10 {
            positions(len, &[0..256, len.saturating_sub(128)..len], 96)
        } else {
            let budget = ((8usize << 20) / len).max(8);
            positions(len, &[0..24, len - 16..len], budget)
        };
        let t = std::time::Instant::now();
        hammer(&name, &bytes, &flips);
        eprintln!("{name}: {} flips, {:.2?}", flips.len(), t.elapsed());
    }
}

#[test]
fn property_fixtures_never_panic_a() {
    hammer_fixtures(0);
}

#[test]
fn property_fixtures_never_panic_b() {
    hammer_fixtures(1);
}

// =============================================================================================
// Fuzz seed corpus
// =============================================================================================

/// Writes the synthetic seeds into `$THINGER_PATCH_FUZZ_CORPUS/<target>/` for `cargo fuzz`
/// (see `fuzz/README.md`); does nothing when the variable is unset.
#[test]
fn write_fuzz_seed_corpus() {
    let Some(root) = std::env::var_os("THINGER_PATCH_FUZZ_CORPUS") else {
        return;
    };
    let root = Path::new(&root);
    let put = |target: &str, name: &str, bytes: &[u8]| {
        let dir = root.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(name), bytes).unwrap();
    };
    let all = seeds::all();
    for s in &all {
        put("parse_any", s.name, &s.bytes);
        put("patch_roundtrip", s.name, &s.bytes);
        put("gzip", &format!("{}.gz", s.name), &seeds::gzip(&s.bytes));
    }
    for case in cases() {
        if case.bytes.len() <= 0x20000 {
            put("parse_any", case.name, &case.bytes);
        }
    }
    for (name, img) in [
        ("esp32c3-app", seeds::esp32c3_app()),
        ("esp32c3-bootloader", seeds::esp32c3_bootloader()),
        ("esp8266-v1", seeds::esp8266_v1()),
    ] {
        put("app_image", name, &img.bytes);
    }
    put(
        "app_image",
        "arduino-app",
        &seeds::arduino_core3().bytes[ARDUINO_APP..],
    );
    put("partition_table", "table", &seeds::partition_table());
    put("elf", "riscv-elf", &seeds::riscv_elf().bytes);
    put(
        "elf",
        "x86-32-header",
        &seeds::elf32(seeds::EM_386, &[]).bytes,
    );
    put("gzip", "bomb-8mib.gz", &seeds::gzip_bomb(8 << 20));
}

/// `personalize` compares the input's SHA-256 digests while it seals (one pass for the old and
/// the new digest, `Firmware::check_valid_deferring_digests`). An input whose digest is wrong
/// must still be refused as invalid before patching, naming the digest, and nothing returned:
/// when the value is written (compared in the one pass), when a value is refused first (compared
/// before that error), and when the wrong digest is the bootloader's, which is not patched.
#[test]
fn personalize_refuses_a_wrong_input_digest_however_it_ends() {
    let request = |key: &str, value: &str| Request {
        values: vec![Assignment::new(key, value, Origin::CommandLine)],
        placeholders: vec![Placeholder::new("seed_text", "Your SSID")],
        ..Request::default()
    };
    let app = seeds::esp32c3_app();
    let merged = seeds::merged_esp32c3();
    let app_digest = app.digest.unwrap();
    let boot_digest = merged.bootloader.digest.unwrap();
    // The valid inputs personalise (so the refusals below are for the digest).
    for bytes in [&app.bytes, &merged.bytes] {
        let done = personalize(bytes, &request("seed_text", "Hello")).expect("valid input");
        assert!(done.report.valid);
    }
    let cases = [
        (
            "app, value written",
            edit(&app.bytes, |b| b[app_digest + 3] ^= 1),
            "seed_text",
            "Hello",
            app_digest,
        ),
        (
            "app, value refused",
            edit(&app.bytes, |b| b[app_digest + 3] ^= 1),
            "no_such_key",
            "x",
            app_digest,
        ),
        (
            "app, value too long",
            edit(&app.bytes, |b| b[app_digest] ^= 0x80),
            "seed_text",
            "far too long for nine",
            app_digest,
        ),
        (
            "merged, bootloader digest",
            edit(&merged.bytes, |b| b[boot_digest + 31] ^= 1),
            "seed_text",
            "Hello",
            boot_digest,
        ),
        (
            "merged, app digest",
            edit(&merged.bytes, |b| b[APP + app_digest] ^= 1),
            "seed_text",
            "Hello",
            APP + app_digest,
        ),
    ];
    for (what, bytes, key, value, at) in cases {
        match personalize(&bytes, &request(key, value)) {
            Err(e @ Error::InvalidBeforePatch { .. }) => {
                let msg = e.to_string();
                assert!(
                    msg.contains(&format!("{at:#x}")) && msg.contains("SHA-256"),
                    "{what}: {msg}"
                );
                // Exactly what a full check before patching says.
                let mut fw = Firmware::parse(&bytes).unwrap();
                assert_eq!(fw.check_valid().err(), Some(e), "{what}");
            }
            other => panic!("{what}: not refused as invalid: {other:?}"),
        }
    }
}
