//! Tests of the shared test helpers in `tests/suite/common.rs`: the independent checkers must agree
//! with esptool's verdicts on real third-party images, call corrupted copies invalid, and the
//! image-info parser must read esptool 5.x output correctly.

use crate::common;

use common::*;
use std::fs;
use std::path::Path;

// =============================================================================================
// Pure algorithms (no fixtures needed)
// =============================================================================================

#[test]
fn crc_and_hash_reference_vectors() {
    // Standard check values ("123456789") from the CRC catalogue.
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b"abc"), 0x3524_41C2);
    assert_eq!(crc32(b""), 0);
    assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    assert_eq!(crc32_mpeg2(b""), 0xFFFF_FFFF);
    // esp8266_crc32: top bit set -> inverted; top bit clear -> plus one.
    assert_eq!(esp8266_crc32(b"123456789"), 0x340B_C6D9);
    assert_eq!(esp8266_crc32(b"abc"), 0x3524_41C3);
    assert_eq!(esp8266_crc32(b""), 1);
    assert_eq!(
        hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn xor_checksum_seed_and_fold() {
    assert_eq!(xor_checksum(&[]), 0xEF);
    assert_eq!(xor_checksum(&[&[0x01, 0x02], &[0x04]]), 0xEF ^ 0x07);
    assert_eq!(xor_checksum(&[&[0xEF]]), 0x00);
    assert_eq!(xor_fold(0x10, &[0x01, 0x01, 0x02]), 0x12);
}

/// A hand-built ESP32-C3 image: two segments, the second one with an unaligned length.
fn synthetic_esp32c3_image(hash: bool) -> Vec<u8> {
    let mut img = vec![0xE9, 2, 0x02, 0x20, 0x00, 0x00, 0x38, 0x40];
    let mut ext = [0u8; 16];
    ext[0] = 0xEE; // wp pin disabled
    ext[4] = 5; // chip id: ESP32-C3 (u16 at header offset 12)
    ext[15] = u8::from(hash);
    img.extend_from_slice(&ext);
    let seg0: Vec<u8> = (0u8..16).collect();
    let seg1 = [0xAAu8, 0xBB, 0xCC, 0xDD, 0x11];
    for (addr, data) in [(0x3FC8_0000u32, &seg0[..]), (0x4038_0000u32, &seg1[..])] {
        img.extend_from_slice(&addr.to_le_bytes());
        img.extend_from_slice(&(data.len() as u32).to_le_bytes());
        img.extend_from_slice(data);
    }
    while img.len() % 16 != 15 {
        img.push(0);
    }
    img.push(xor_checksum(&[&seg0, &seg1]));
    if hash {
        let digest = sha256(&img);
        img.extend_from_slice(&digest);
    }
    img
}

#[test]
fn walker_on_synthetic_image() {
    let img = synthetic_esp32c3_image(true);
    let w = walk_app_image(&img, false);
    assert_eq!(
        w.segments,
        vec![(0x3FC8_0000, 32, 16), (0x4038_0000, 56, 5)]
    );
    assert_eq!(w.checksum_offset, 63);
    assert_eq!(w.end, 96);
    assert_eq!(w.end, img.len());
    assert!(w.checksum_ok() && w.hash_ok() == Some(true) && w.is_valid());
    assert_eq!(w.v2_irom, None);

    let mut bad = img.clone();
    flip_byte(&mut bad, 58);
    let wb = walk_app_image(&bad, false);
    assert!(!wb.checksum_ok());
    assert_eq!(wb.computed_checksum, w.computed_checksum ^ 0x01);
    assert_eq!(wb.hash_ok(), Some(false));
    assert!(!wb.is_valid());

    let no_hash = synthetic_esp32c3_image(false);
    let wn = walk_app_image(&no_hash, false);
    assert_eq!(wn.hash, None);
    assert_eq!(wn.end, 64);

    let mut bad_flag = img.clone();
    bad_flag[23] = 2;
    assert!(try_walk_app_image(&bad_flag, false).is_err());
    assert!(try_walk_app_image(&img[..60], false).is_err());
    assert!(try_walk_app_image(&[], false).is_err());
    assert!(try_walk_app_image(&[0xAA; 64], false).is_err());
}

#[test]
fn esptool_agrees_on_synthetic_unaligned_image() {
    let Some(esptool) = esptool() else { return };
    let dir = temp_dir();
    let img = synthetic_esp32c3_image(true);
    let path = write_file(dir.path(), "synthetic.bin", &img);
    let info = esptool.image_info(&path, None);
    compare(&info, &walk_app_image(&img, false), 0, "synthetic image");
    assert!(info.is_valid(), "{}", info.describe());
    assert_eq!(info.detected_chip.as_deref(), Some("ESP32-C3"));
    assert_eq!(info.chip_id, Some(5));
    // esptool pads the unaligned 5-byte segment to 8.
    assert_eq!(info.segments[1].length, 8);
}

// =============================================================================================
// Locations and tools
// =============================================================================================

#[test]
fn repo_root_is_this_package() {
    let manifest = fs::read_to_string(repo_root().join("Cargo.toml")).unwrap();
    assert!(manifest.contains("name = \"thinger-patch\""));
    assert!(repo_root().join("scripts/requirements-test.txt").is_file());
}

#[test]
fn fixtures_match_manifest_sha256() {
    let Some(dir) = shared_fixtures() else { return };
    let manifest = fs::read_to_string(dir.join("MANIFEST.tsv")).unwrap();
    let mut checked = 0;
    for line in manifest.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (rel, want_sha, want_size) = (cols[0], cols[1], cols[2]);
        let bytes = read_fixture(rel).unwrap();
        assert_eq!(bytes.len().to_string(), want_size, "size of {rel}");
        assert_eq!(hex(&sha256(&bytes)), want_sha, "sha256 of {rel}");
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} fixtures listed");
}

#[test]
fn esptool_is_the_pinned_version() {
    let Some(esptool) = esptool() else { return };
    let reqs = fs::read_to_string(repo_root().join("scripts/requirements-test.txt")).unwrap();
    let pin = reqs
        .lines()
        .find_map(|l| l.trim().strip_prefix("esptool=="))
        .expect("esptool pin in requirements-test.txt");
    assert_eq!(
        esptool.version,
        pin,
        "esptool at {}",
        esptool.program.display()
    );
}

#[test]
fn cli_binary_is_built() {
    assert!(cli_path().is_file(), "{}", cli_path().display());
    let out = run_cli(&["--help"]);
    assert!(out.status.code().is_some(), "{}", describe_output(&out));
}

#[test]
fn temp_dir_and_corrupted_copy() {
    let dir = temp_dir();
    assert!(dir.path().is_dir());
    let src = write_file(dir.path(), "a.bin", &[1, 2, 3, 4]);
    let bad = corrupted_copy(&src, dir.path(), "b.bin", 2);
    assert_eq!(fs::read(bad).unwrap(), vec![1, 2, 2, 4]);
    assert_eq!(find_all(b"abcabcab", b"cab"), vec![2, 5]);
    assert_eq!(find_all(b"aaa", b"aa"), vec![0, 1]);
    assert!(find_all(b"abc", b"").is_empty());
}

// =============================================================================================
// Comparing the independent walker with esptool
// =============================================================================================

/// Assert that esptool's parsed view of an image equals the walker's. `base` is the file offset
/// of the walked slice inside the file esptool read.
fn compare(info: &ImageInfo, w: &WalkedImage, base: usize, what: &str) {
    let ctx = || format!("{what}: walker {w:#x?}\nesptool:\n{}", info.describe());
    assert!(info.success, "{}", ctx());
    assert_eq!(info.segment_count, Some(info.segments.len()), "{}", ctx());

    let mut esp_segs = info.segments.iter();
    if let Some((data, len)) = w.v2_irom {
        let irom = esp_segs.next().expect("v2 irom segment");
        assert_eq!(irom.load_addr, 0, "{}", ctx());
        assert_eq!(irom.data_offset(), Some((base + data) as u32), "{}", ctx());
        assert_eq!(irom.length as usize, len, "{}", ctx());
    }
    let esp_segs: Vec<_> = esp_segs.collect();
    assert_eq!(esp_segs.len(), w.segments.len(), "segment count, {}", ctx());
    for (e, &(addr, data, len)) in esp_segs.iter().zip(&w.segments) {
        assert_eq!(e.load_addr, addr, "{}", ctx());
        assert_eq!(e.data_offset(), Some((base + data) as u32), "{}", ctx());
        // esptool pads segments with a non-zero load address to a multiple of 4 (with zeros,
        // which leaves the XOR checksum unchanged).
        let padded = if addr != 0 {
            len.next_multiple_of(4)
        } else {
            len
        };
        assert_eq!(e.length as usize, padded, "{}", ctx());
    }

    let c = info
        .checksum
        .unwrap_or_else(|| panic!("no checksum line, {}", ctx()));
    assert_eq!(c.stored, w.stored_checksum, "{}", ctx());
    assert_eq!(c.computed, w.computed_checksum, "{}", ctx());
    assert_eq!(c.valid, w.checksum_ok(), "{}", ctx());

    assert_eq!(info.hash_valid(), w.hash_ok(), "{}", ctx());
    if let Some((_, computed)) = w.hash {
        let esptool_hex = match &info.hash {
            HashStatus::Valid(h) | HashStatus::Invalid(h) => h.clone(),
            HashStatus::Absent => unreachable!(),
        };
        assert_eq!(esptool_hex, hex(&computed), "{}", ctx());
    }
    assert_eq!(info.is_valid(), w.is_valid(), "{}", ctx());
}

/// ESP32-family images (24-byte header) and whether they are valid.
const ESP32_FAMILY: &[(&str, bool)] = &[
    ("esptool/esp_idf_blink_esp32s2.bin", true),
    ("flipperhttp/esp32c3-app.bin", true),
    ("flipperhttp/esp32c3-bootloader.bin", true),
    ("esptool/bootloader_esp32.bin", true),
    ("esptool/bootloader_esp32_v5_2.bin", true),
    ("esptool/bootloader_esp32c3.bin", true),
    ("esptool/secure/hello-world-signed.bin", true),
    ("esptool/secure/bootloader_signed_v2_rsa.bin", true),
    ("esptool/esp32s3_header.bin", true),
    ("esptool/ram_helloworld/helloworld-esp32.bin", true),
    ("esptool/ram_helloworld/helloworld-esp32c2.bin", true),
    ("esptool/ram_helloworld/helloworld-esp32c3.bin", true),
    ("esptool/ram_helloworld/helloworld-esp32c5.bin", true),
    ("esptool/ram_helloworld/helloworld-esp32c6.bin", true),
    ("esptool/ram_helloworld/helloworld-esp32c61.bin", true),
    ("esptool/ram_helloworld/helloworld-esp32h2.bin", true),
    ("esptool/ram_helloworld/helloworld-esp32p4.bin", true),
    ("esptool/ram_helloworld/helloworld-esp32s3.bin", true),
    // esptool's own test data with an edited digest: checksum valid, SHA-256 invalid.
    ("esptool/ram_helloworld/helloworld-esp32_edit.bin", false),
];

#[test]
fn esp32_family_images_agree_with_esptool() {
    let Some(esptool) = esptool() else { return };
    for &(rel, valid) in ESP32_FAMILY {
        let Some(path) = fixture(rel) else { return };
        let bytes = fs::read(&path).unwrap();
        let info = esptool.image_info(&path, None);
        let w = walk_app_image(&bytes, false);
        compare(&info, &w, 0, rel);
        assert_eq!(w.is_valid(), valid, "{rel}: {w:#x?}");
        assert!(w.end <= bytes.len(), "{rel}");
        assert_eq!(info.image_size, Some(bytes.len() as u64), "{rel}");
    }
}

#[test]
fn app_image_header_fields_are_parsed() {
    let Some(esptool) = esptool() else { return };
    let Some(path) = fixture("esptool/esp_idf_blink_esp32s2.bin") else {
        return;
    };
    let info = esptool.image_info(&path, None);
    assert_eq!(info.exit_code, Some(0));
    assert_eq!(
        info.esptool_version.as_deref(),
        Some(esptool.version.as_str())
    );
    assert_eq!(info.detected_chip.as_deref(), Some("ESP32-S2"));
    assert_eq!(info.chip.as_deref(), Some("ESP32-S2"));
    assert_eq!(info.chip_id, Some(2));
    assert_eq!(info.image_version, Some(1));
    assert_eq!(info.entry_point, Some(0x4002_2f84));
    assert_eq!(info.segment_count, Some(6));
    assert_eq!(info.flash_size.as_deref(), Some("2MB"));
    assert_eq!(info.flash_mode.as_deref(), Some("DIO"));
    assert_eq!(info.flash_freq.as_deref(), Some("80m"));
    let s0 = &info.segments[0];
    assert_eq!(
        (s0.index, s0.length, s0.load_addr, s0.file_offset),
        (0, 0x8c18, 0x3f00_0020, Some(0x18))
    );
    assert_eq!(s0.memory_types, vec!["DROM".to_string()]);
    assert_eq!(
        info.segments[1].memory_types,
        vec!["BYTE_ACCESSIBLE", "MEM_INTERNAL", "DRAM"]
    );
    assert_eq!(
        info.checksum,
        Some(InfoChecksum {
            stored: 0x18,
            computed: 0x18,
            valid: true
        })
    );
    assert_eq!(info.field("Project name"), Some("blink"));
    assert_eq!(
        info.field("ELF file SHA256"),
        Some("3059e6b55a965865febd28fa9f6028ad5cd0dab311febb0a3ea79eaa223ac2b0")
    );
    assert!(
        info.warnings.is_empty() && info.error.is_none(),
        "{}",
        info.describe()
    );

    // With --chip, esptool does not print "Detected image type".
    let with_chip = esptool.image_info(&path, Some("esp32s2"));
    assert_eq!(with_chip.detected_chip, None);
    assert_eq!(with_chip.chip.as_deref(), Some("ESP32-S2"));
    assert!(with_chip.is_valid());
}

/// ESP8266 v1 images at file offset 0 (eboot of Arduino full images, SDK bootloaders, RAM images).
const ESP8266_V1_AT_ZERO: &[&str] = &[
    "esphome/esp8266-core3.bin",
    "esphome/esp8266-core27.bin",
    "esptool/esp8266_deepsleep.bin",
    "esptool/bootloader_esp8266.bin",
    "esptool/ram_helloworld/helloworld-esp8266.bin",
    "esptool/not_4_byte_aligned.bin",
    "nonos-sdk/boot_v1.7.bin",
];

#[test]
fn esp8266_v1_images_agree_with_esptool() {
    let Some(esptool) = esptool() else { return };
    for &rel in ESP8266_V1_AT_ZERO {
        let Some(path) = fixture(rel) else { return };
        let bytes = fs::read(&path).unwrap();
        // boot_v1.7.bin is mis-detected as an ESP32-family image without --chip.
        let info = esptool.image_info(&path, Some("esp8266"));
        assert_eq!(info.chip.as_deref(), Some("ESP8266"), "{rel}");
        let w = walk_app_image(&bytes, true);
        compare(&info, &w, 0, rel);
        assert!(w.is_valid(), "{rel}: {w:#x?}");
    }
}

/// Extract the Arduino app (file 0x1000..) to a temp file and run esptool on it.
fn arduino_app_info(esptool: &Esptool, file: &[u8], dir: &Path, name: &str) -> ImageInfo {
    let app = write_file(dir, name, &file[ARDUINO_APP_OFFSET..]);
    esptool.image_info(&app, Some("esp8266"))
}

#[test]
fn arduino_apps_agree_with_esptool() {
    let Some(esptool) = esptool() else { return };
    let dir = temp_dir();
    // (fixture, esptool calls the app checksum valid, convention, CRC trailer offset)
    let cases: &[(&str, bool, ChecksumConvention, Option<usize>)] = &[
        (
            "esphome/esp8266-core3.bin",
            false,
            ChecksumConvention::TrailerZeroed,
            Some(0x1010),
        ),
        (
            "esphome/esp8266-core27.bin",
            true,
            ChecksumConvention::Plain,
            Some(0xFF8),
        ),
        (
            "esptool/esp8266_deepsleep.bin",
            true,
            ChecksumConvention::Plain,
            None,
        ),
    ];
    for &(rel, esptool_valid, convention, crc_at) in cases {
        let Some(file) = read_fixture(rel) else {
            return;
        };
        let info = arduino_app_info(&esptool, &file, dir.path(), "app.bin");
        let w = walk_app_image(&file[ARDUINO_APP_OFFSET..], true);
        compare(&info, &w, 0, rel);
        assert_eq!(
            info.checksum_valid(),
            Some(esptool_valid),
            "{rel}\n{}",
            info.describe()
        );
        assert_eq!(
            w.segments[0].0, 0x4020_1010,
            "{rel}: .irom0.text comes first"
        );
        assert_eq!(
            arduino_app_checksum_convention(&file),
            Some(convention),
            "{rel}"
        );
        assert_eq!(arduino_crc_offset(&file), crc_at, "{rel}");
        assert_eq!(arduino_crc_ok(&file), crc_at.map(|_| true), "{rel}");
        // esptool warns about the irom segment of an ESP8266 app but still succeeds.
        assert!(
            info.warnings
                .iter()
                .any(|w| w.starts_with("Suspicious segment 0x40201010")),
            "{rel}\n{}",
            info.describe()
        );
    }
}

#[test]
fn core3_checksum_is_computed_with_the_trailer_zeroed() {
    let Some(file) = read_fixture("esphome/esp8266-core3.bin") else {
        return;
    };
    let app = walk_app_image(&file[ARDUINO_APP_OFFSET..], true);
    assert!(!app.checksum_ok());
    // The trailer words are the first 8 bytes of .irom0.text (data at 0x1000 + 8 + 8).
    assert_eq!(ARDUINO_APP_OFFSET + app.segments[0].1, 0x1010);
    let trailer_xor = xor_fold(0, &file[0x1010..0x1018]);
    assert_eq!(app.computed_checksum ^ trailer_xor, app.stored_checksum);
    let mut zeroed = file.clone();
    zeroed[0x1010..0x1018].fill(0);
    assert!(walk_app_image(&zeroed[ARDUINO_APP_OFFSET..], true).checksum_ok());
    // Core 3.x images have unaligned segment lengths (esptool pads them in its report).
    assert!(
        app.segments.iter().any(|&(_, _, len)| len % 4 != 0),
        "{app:#x?}"
    );
}

#[test]
fn v2_image_agrees_with_esptool() {
    let Some(esptool) = esptool() else { return };
    let Some(path) = fixture("nonos-sdk/user1.2048.new.5.bin") else {
        return;
    };
    let bytes = fs::read(&path).unwrap();
    assert!(v2_crc_ok(&bytes));
    let info = esptool.image_info(&path, None);
    assert_eq!(info.detected_chip.as_deref(), Some("ESP8266"));
    assert_eq!(info.image_version, Some(2));
    let w = walk_app_image(&bytes, false);
    compare(&info, &w, 0, "v2 image");
    assert!(w.is_valid());
    assert_eq!(w.v2_irom, Some((16, 0x61f20)));
    assert_eq!(w.end + 4, bytes.len(), "the CRC follows the checksum byte");
    // The v2 headers disagree on flash size; esptool warns on stderr and exits 0.
    assert!(
        info.warnings
            .iter()
            .any(|w| w.contains("disagrees with second"))
    );
    // v2_crc_ok is false for anything that is not a v2 image.
    let Some(v1) = read_fixture("esptool/bootloader_esp8266.bin") else {
        return;
    };
    assert!(!v2_crc_ok(&v1));
}

// =============================================================================================
// Corrupted copies must be called invalid, by the checkers and by esptool
// =============================================================================================

#[test]
fn corrupted_esp32_image_is_invalid() {
    let Some(esptool) = esptool() else { return };
    let Some(path) = fixture("esptool/esp_idf_blink_esp32s2.bin") else {
        return;
    };
    let bytes = fs::read(&path).unwrap();
    let good = walk_app_image(&bytes, false);
    let dir = temp_dir();

    // One flipped bit in segment 1's data: checksum and SHA-256 both break.
    let at = good.segments[1].1 + 0x40;
    let bad_path = corrupted_copy(&path, dir.path(), "seg.bin", at);
    let bad = walk_app_image(&fs::read(&bad_path).unwrap(), false);
    assert!(!bad.checksum_ok());
    assert_eq!(bad.hash_ok(), Some(false));
    let info = esptool.image_info(&bad_path, None);
    compare(&info, &bad, 0, "corrupted segment");
    assert!(info.success, "esptool exits 0 even for an invalid image");
    assert_eq!(info.checksum_valid(), Some(false));
    assert_eq!(info.hash_valid(), Some(false));
    assert!(
        info.stdout.contains("(invalid - calculated 0x19)"),
        "{}",
        info.describe()
    );

    // One flipped bit in the stored SHA-256: checksum stays valid, hash breaks.
    let bad_path = corrupted_copy(&path, dir.path(), "hash.bin", good.end - 1);
    let bad = walk_app_image(&fs::read(&bad_path).unwrap(), false);
    assert!(bad.checksum_ok());
    assert_eq!(bad.hash_ok(), Some(false));
    let info = esptool.image_info(&bad_path, None);
    compare(&info, &bad, 0, "corrupted hash");
    assert_eq!(info.hash_valid(), Some(false));
    assert!(!info.is_valid());
}

#[test]
fn corrupted_v2_image_breaks_the_crc() {
    let Some(esptool) = esptool() else { return };
    let Some(path) = fixture("nonos-sdk/user1.2048.new.5.bin") else {
        return;
    };
    let bytes = fs::read(&path).unwrap();
    let good = walk_app_image(&bytes, false);
    let dir = temp_dir();

    // In the irom segment: outside the XOR checksum, so only the CRC notices.
    let (irom, _) = good.v2_irom.unwrap();
    let bad_path = corrupted_copy(&path, dir.path(), "irom.bin", irom + 0x100);
    let bad_bytes = fs::read(&bad_path).unwrap();
    assert!(!v2_crc_ok(&bad_bytes));
    let bad = walk_app_image(&bad_bytes, false);
    assert!(bad.checksum_ok());
    let info = esptool.image_info(&bad_path, None);
    compare(&info, &bad, 0, "v2 irom corrupted");
    assert_eq!(
        info.checksum_valid(),
        Some(true),
        "esptool does not check the v2 CRC"
    );

    // In a RAM segment: checksum and CRC both break.
    let at = good.segments[0].1 + 0x100;
    let bad_path = corrupted_copy(&path, dir.path(), "iram.bin", at);
    let bad_bytes = fs::read(&bad_path).unwrap();
    assert!(!v2_crc_ok(&bad_bytes));
    let bad = walk_app_image(&bad_bytes, false);
    assert!(!bad.checksum_ok());
    let info = esptool.image_info(&bad_path, None);
    compare(&info, &bad, 0, "v2 iram corrupted");
    assert_eq!(info.checksum_valid(), Some(false));
}

#[test]
fn corrupted_arduino_images_break_crc_and_checksum() {
    let Some(esptool) = esptool() else { return };
    let dir = temp_dir();
    for rel in ["esphome/esp8266-core3.bin", "esphome/esp8266-core27.bin"] {
        let Some(file) = read_fixture(rel) else {
            return;
        };
        let app = walk_app_image(&file[ARDUINO_APP_OFFSET..], true);
        // Last byte of the last segment (.rodata, a RAM segment).
        let &(_, data, len) = app.segments.last().unwrap();
        let mut bad = file.clone();
        flip_byte(&mut bad, ARDUINO_APP_OFFSET + data + len - 1);

        assert_eq!(arduino_crc_ok(&bad), Some(false), "{rel}");
        assert_eq!(arduino_app_checksum_convention(&bad), None, "{rel}");
        let bad_app = walk_app_image(&bad[ARDUINO_APP_OFFSET..], true);
        assert_eq!(
            bad_app.computed_checksum,
            app.computed_checksum ^ 0x01,
            "{rel}"
        );
        let info = arduino_app_info(&esptool, &bad, dir.path(), "bad-app.bin");
        compare(&info, &bad_app, 0, rel);
        assert_eq!(info.checksum_valid(), Some(false), "{rel}");

        // esptool checks only eboot at 0x0 of the full file: it still calls it valid.
        let full = write_file(dir.path(), "bad-full.bin", &bad);
        assert!(
            esptool.image_info(&full, Some("esp8266")).is_valid(),
            "{rel}"
        );
    }
}

#[test]
fn unreadable_images_fail_in_esptool_and_walker() {
    let Some(esptool) = esptool() else { return };
    let dir = temp_dir();

    let Some(bytes) = read_fixture("esptool/esp_idf_blink_esp32s2.bin") else {
        return;
    };
    let truncated = write_file(dir.path(), "truncated.bin", &bytes[..100_000]);
    let info = esptool.image_info(&truncated, None);
    assert!(!info.success);
    assert_eq!(info.exit_code, Some(2));
    assert_eq!(
        info.error.as_deref(),
        Some("End of file reading segment 0x40080020, length 89320 (actual length 34432)")
    );
    assert_eq!(info.checksum, None);
    assert_eq!(info.hash, HashStatus::Absent);
    assert!(!info.is_valid());
    assert!(try_walk_app_image(&bytes[..100_000], false).is_err());

    let cases: &[(&str, &str)] = &[
        (
            "esptool/partitions_singleapp.bin",
            "This is not a valid image (invalid magic number: 0xaa).",
        ),
        ("esptool/zerolength.bin", "Image is empty."),
        (
            "esptool/secure/bootloader-encrypted.bin",
            "This is not a valid image (invalid magic number: 0x99).",
        ),
    ];
    for &(rel, msg) in cases {
        let Some(path) = fixture(rel) else { return };
        let info = esptool.image_info(&path, None);
        assert!(!info.success, "{rel}");
        assert_eq!(
            info.error.as_deref(),
            Some(msg),
            "{rel}\n{}",
            info.describe()
        );
        assert!(info.stderr.contains(msg), "{rel}: errors go to stderr");
        assert!(
            try_walk_app_image(&fs::read(&path).unwrap(), false).is_err(),
            "{rel}"
        );
    }
}

// =============================================================================================
// elf2image
// =============================================================================================

#[test]
fn elf2image_esp32_output_is_valid() {
    let Some(esptool) = esptool() else { return };
    let Some(elf) = fixture("esptool/esp32-app-template.elf") else {
        return;
    };
    let dir = temp_dir();
    let out = dir.path().join("app.bin");
    esptool.elf2image(&elf, &out, "esp32", &[]).unwrap();
    let bytes = fs::read(&out).unwrap();
    let info = esptool.image_info(&out, None);
    let w = walk_app_image(&bytes, false);
    compare(&info, &w, 0, "elf2image esp32");
    assert!(w.is_valid() && w.hash.is_some());
    assert_eq!(w.end, bytes.len());
}

#[test]
fn elf2image_esp8266_outputs_are_valid() {
    let Some(esptool) = esptool() else { return };
    let Some(elf) = fixture("esptool/esp8266-nonossdkv12-example.elf") else {
        return;
    };
    let dir = temp_dir();

    let v2 = dir.path().join("v2.bin");
    esptool
        .elf2image(&elf, &v2, "esp8266", &["--version", "2"])
        .unwrap();
    let bytes = fs::read(&v2).unwrap();
    assert_eq!(bytes[0], 0xEA);
    assert!(v2_crc_ok(&bytes));
    let w = walk_app_image(&bytes, false);
    compare(&esptool.image_info(&v2, None), &w, 0, "elf2image v2");
    assert!(w.is_valid());
    assert!(!find_all(&bytes, b"Your SSID").is_empty());

    // Default (v1): OUT is a prefix; the RAM image is OUT0x00000.bin.
    let prefix = dir.path().join("v1-");
    esptool.elf2image(&elf, &prefix, "esp8266", &[]).unwrap();
    let ram = dir.path().join("v1-0x00000.bin");
    let bytes = fs::read(&ram).unwrap();
    let w = walk_app_image(&bytes, true);
    compare(
        &esptool.image_info(&ram, Some("esp8266")),
        &w,
        0,
        "elf2image v1",
    );
    assert!(w.is_valid());
    assert_eq!(w.end, bytes.len());

    let err = esptool
        .elf2image(
            dir.path().join("missing.elf"),
            dir.path().join("x.bin"),
            "esp32",
            &[],
        )
        .unwrap_err();
    assert!(err.contains("does not exist"), "{err}");
}

// =============================================================================================
// The image-info parser on canned output (colour codes, as with FORCE_COLOR)
// =============================================================================================

#[cfg(unix)]
#[test]
fn image_info_parser_strips_colours() {
    use std::os::unix::process::ExitStatusExt;
    let stdout = "esptool v5.6.0\nImage size: 96 bytes\nDetected image type: ESP32-C3\n\n\
        ESP32-C3 Image Header\n=====================\nImage version: 1\nEntry point: 0x40380000\n\
        Segments: 1\n\nESP32-C3 Extended Image Header\n==============================\n\
        Chip ID: 5 (ESP32-C3)\n\nSegments Information\n====================\n\
        Segment   Length   Load addr   File offs  Memory types\n\
        -------  -------  ----------  ----------  ------------\n\
        \x20     0  0x00010  0x3fc80000  0x00000018  DRAM, BYTE_ACCESSIBLE\n\n\
        ESP32-C3 Image Footer\n=====================\n\
        Checksum: 0x12 (invalid - calculated 0x34)\n\
        Validation hash: 00ff (invalid)\n";
    let stderr = "\x1b[1;33mWARNING:\x1b[0m Something odd\n";
    let out = std::process::Output {
        status: std::process::ExitStatus::from_raw(0),
        stdout: stdout.as_bytes().to_vec(),
        stderr: stderr.as_bytes().to_vec(),
    };
    let info = ImageInfo::from_output(&out);
    assert!(info.success);
    assert_eq!(info.chip.as_deref(), Some("ESP32-C3"));
    assert_eq!(info.image_size, Some(96));
    assert_eq!(info.entry_point, Some(0x4038_0000));
    assert_eq!(info.segments.len(), 1);
    assert_eq!(info.segments[0].data_offset(), Some(0x20));
    assert_eq!(
        info.segments[0].memory_types,
        vec!["DRAM", "BYTE_ACCESSIBLE"]
    );
    assert_eq!(
        info.checksum,
        Some(InfoChecksum {
            stored: 0x12,
            computed: 0x34,
            valid: false
        })
    );
    assert_eq!(info.hash, HashStatus::Invalid("00ff".into()));
    assert_eq!(info.warnings, vec!["Something odd".to_string()]);
    assert!(!info.is_valid());
}
