//! ELF route equals image route: patching an ELF and then converting it gives the same image as
//! converting the ELF and then patching the image with the engine (same load addresses, same new
//! bytes).
//!
//! Converters: `esptool elf2image` on the project's own C demo firmware (ESP32-C3 and ESP8266,
//! built from `examples/c-firmware` with Debian's cross compilers into
//! `examples/c-firmware/prebuilt/`) and on two third-party ELFs; espflash's library
//! (`IdfBootloaderFormat`, what `espflash save-image` uses) on the esp-hal fixture ELFs.
//!
//! The one expected difference: a converter that finds a `.flash.appdesc` section writes the
//! SHA-256 of the ELF it was given into the app descriptor's `app_elf_sha256` (32 bytes at file
//! offset 0xB0 of an ESP-IDF app image; esptool `cmds.py` elf2image, espflash `idf.rs`). The ELF
//! route hands the converter the PATCHED ELF, so that field holds a different hash, and the XOR
//! checksum and the appended SHA-256 (which cover it) differ accordingly. The comparison is not
//! skipped there: everything else must be byte-identical, and the difference inside is checked to
//! be exactly that (each field holds the SHA-256 of the ELF that route converted; the checksums
//! differ by the XOR of the two hashes; each appended digest is the SHA-256 of its own image).
//! Where no `.flash.appdesc` exists (esp-hal's `.rodata_desc`, ESP8266) the images must be
//! byte-identical, full stop.
//!
//! Both routes' images must verify valid: the engine's `verify`, the independent checks of
//! `tests/suite/common.rs` and `esptool image-info`.

use crate::common;

use common::Esptool;
use std::fs;
use std::path::{Path, PathBuf};
use thinger_patch_core::Firmware;

/// Offset of `app_elf_sha256` in an ESP-IDF app image (app descriptor at 0x20, field at +0x90).
const APP_ELF_SHA256: std::ops::Range<usize> = 0xB0..0xD0;
const SLOT_MAGIC: &[u8; 8] = b"TPSLOT\xa5\x5a";

// =============================================================================================
// ELF reading (section headers via `object`, not through the engine)
// =============================================================================================

#[derive(Debug, Clone)]
struct Section {
    name: String,
    addr: u32,
    offset: usize,
    size: usize,
    alloc_progbits: bool,
}

fn sections(elf: &[u8]) -> Vec<Section> {
    use object::read::elf::{FileHeader as _, SectionHeader as _};
    let header = object::elf::FileHeader32::<object::LittleEndian>::parse(elf).expect("ELF32");
    let e = header.endian().expect("endian");
    let table = header.sections(e, elf).expect("sections");
    table
        .iter()
        .map(|sh| Section {
            name: String::from_utf8_lossy(table.section_name(e, sh).expect("name")).into_owned(),
            addr: sh.sh_addr(e),
            offset: sh.sh_offset(e) as usize,
            size: sh.sh_size(e) as usize,
            alloc_progbits: sh.sh_type(e) == object::elf::SHT_PROGBITS
                && sh.sh_flags(e).contains(object::elf::SHF_ALLOC),
        })
        .collect()
}

fn section<'a>(secs: &'a [Section], name: &str) -> &'a Section {
    secs.iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no section {name}"))
}

/// One patch: `new` at load address `addr` (the ELF file offset is only for the record).
#[derive(Debug, Clone)]
struct Patch {
    what: String,
    addr: u32,
    new: Vec<u8>,
}

/// Slot records (docs/slot-format.md) in allocated sections: `(key, record address, section)`.
fn slots(elf: &[u8], secs: &[Section]) -> Vec<(String, u32, usize, Section)> {
    let mut out = Vec::new();
    for s in secs.iter().filter(|s| s.alloc_progbits) {
        let data = &elf[s.offset..s.offset + s.size];
        for at in common::find_all(data, SLOT_MAGIC) {
            let key_len = data[at + 0x0E] as usize;
            let key = String::from_utf8_lossy(&data[at + 0x10..at + 0x10 + key_len]).into_owned();
            out.push((key, s.addr + at as u32, s.offset + at, s.clone()));
        }
    }
    out
}

/// The slot-format patch of record `key` to `value`: the value field (NUL-padded to its full
/// length) and the state byte (0x01 = patched), as two patches at their load addresses.
fn slot_patches(elf: &[u8], secs: &[Section], key: &str, value: &str) -> Vec<Patch> {
    let all = slots(elf, secs);
    let (_, addr, offset, sec) = all.iter().find(|(k, ..)| k == key).unwrap_or_else(|| {
        panic!(
            "no slot {key}; found {:?}",
            all.iter().map(|s| &s.0).collect::<Vec<_>>()
        )
    });
    let capacity = u16::from_le_bytes([elf[offset + 0x0C], elf[offset + 0x0D]]) as usize;
    let v_len = (capacity + 4) & !3;
    assert!(value.len() <= capacity);
    let mut new = value.as_bytes().to_vec();
    new.resize(v_len, 0);
    assert_ne!(
        new[..],
        elf[offset + 0x30..offset + 0x30 + v_len],
        "{key}: a real change"
    );
    vec![
        Patch {
            what: format!("slot {key} value ({} in {})", v_len, sec.name),
            addr: addr + 0x30,
            new,
        },
        Patch {
            what: format!("slot {key} state"),
            addr: addr + 9,
            new: vec![0x01],
        },
    ]
}

/// 16 bytes in the middle of `name`, every byte changed.
fn middle_of(elf: &[u8], secs: &[Section], name: &str) -> Patch {
    let s = section(secs, name);
    let at = (s.size / 2) & !3;
    let new = elf[s.offset + at..s.offset + at + 16]
        .iter()
        .map(|b| b ^ 0x5A)
        .collect();
    Patch {
        what: format!("16 bytes in the middle of {name}"),
        addr: s.addr + at as u32,
        new,
    }
}

/// Applies `patches` with the engine and returns the re-sealed bytes.
fn engine_patch(what: &str, bytes: &[u8], patches: &[Patch]) -> Vec<u8> {
    let mut fw = Firmware::parse(bytes).unwrap_or_else(|e| panic!("{what}: parse: {e}"));
    for p in patches {
        fw.patch(p.addr, &p.new)
            .unwrap_or_else(|e| panic!("{what}: patch {} at {:#x}: {e}", p.what, p.addr));
    }
    let done = fw
        .finish()
        .unwrap_or_else(|e| panic!("{what}: finish: {e}"));
    assert!(done.report.valid);
    done.bytes
}

// =============================================================================================
// Converters
// =============================================================================================

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Converter {
    /// `esptool --chip CHIP elf2image [args] -o OUT ELF`; one image file.
    Esptool {
        chip: &'static str,
        args: &'static [&'static str],
    },
    /// `esptool --chip esp8266 elf2image` default: a v1 RAM image `0x00000.bin` and an irom blob.
    /// Both files are compared; only the v1 image can be patched on the image route.
    EsptoolEsp8266V1,
    /// espflash's library: the app image of `IdfBootloaderFormat::ota_segments()`.
    Espflash { chip: &'static str },
}

/// The converted files: the image (first) and any other output (the ESP8266 irom blob).
fn convert(conv: Converter, elf: &[u8], esptool: &Esptool, tmp: &Path, tag: &str) -> Vec<Vec<u8>> {
    let elf_path = common::write_file(tmp, &format!("{tag}.elf"), elf);
    match conv {
        Converter::Esptool { chip, args } => {
            let out = tmp.join(format!("{tag}.bin"));
            esptool
                .elf2image(&elf_path, &out, chip, args)
                .unwrap_or_else(|e| panic!("{e}"));
            vec![fs::read(&out).expect("elf2image output")]
        }
        Converter::EsptoolEsp8266V1 => {
            let dir = tmp.join(format!("{tag}-v1"));
            fs::create_dir_all(&dir).expect("mkdir");
            let prefix = format!("{}/", dir.display());
            esptool
                .elf2image(&elf_path, &prefix, "esp8266", &[])
                .unwrap_or_else(|e| panic!("{e}"));
            let mut names: Vec<PathBuf> = fs::read_dir(&dir)
                .expect("outputs")
                .map(|e| e.expect("entry").path())
                .collect();
            names.sort();
            assert_eq!(
                names
                    .first()
                    .and_then(|p| p.file_name())
                    .map(|n| n.to_string_lossy().into_owned()),
                Some("0x00000.bin".into())
            );
            names.iter().map(|p| fs::read(p).expect("output")).collect()
        }
        Converter::Espflash { chip } => vec![common::espflash_app_image(elf, chip)],
    }
}

// =============================================================================================
// The comparison
// =============================================================================================

struct RouteCase {
    name: String,
    elf: Vec<u8>,
    conv: Converter,
    /// esptool `--chip` for image-info.
    chip: &'static str,
    patches: Vec<Patch>,
    /// The converter writes the SHA-256 of the ELF into `app_elf_sha256` (the ELF has a
    /// `.flash.appdesc` section).
    records_elf_sha: bool,
}

/// Checks one image with every verifier: the engine, the independent walker (and CRC) and esptool.
fn assert_valid(what: &str, image: &[u8], chip: &str, esptool: &Esptool, tmp: &Path) {
    let report = Firmware::parse(image)
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .verify();
    assert!(report.valid, "{what}: {}", report.summary_of_problems());
    let walked = common::walk_app_image(image, chip == "esp8266");
    assert!(walked.is_valid(), "{what}: independent walker");
    if image[0] == 0xEA {
        assert!(common::v2_crc_ok(image), "{what}: v2 CRC");
    }
    let path = common::write_file(tmp, "check.bin", image);
    esptool.image_info(&path, Some(chip)).assert_valid(what);
}

/// Where `addr` lies in `image`, per the independent walker (None: not segment data).
fn file_offset(image: &[u8], v1: bool, addr: u32) -> Option<usize> {
    let w = common::walk_app_image(image, v1);
    let mut segs = w.segments.clone();
    if let Some((off, len)) = w.v2_irom {
        segs.push((0x4020_1010, off, len));
    }
    segs.iter()
        .find(|&&(a, _, len)| a <= addr && (addr - a) < len as u32)
        .map(|&(a, off, _)| off + (addr - a) as usize)
}

fn run(case: &RouteCase, esptool: &Esptool) {
    let tmp = common::temp_dir();
    let t = tmp.path();
    let name = &case.name;
    let v1_header = case.chip == "esp8266";

    // The ELF itself must be what we think: the converter's sha-recording rule.
    let secs = sections(&case.elf);
    assert_eq!(
        secs.iter().any(|s| s.name == ".flash.appdesc"),
        case.records_elf_sha,
        "{name}: .flash.appdesc present"
    );

    // Image route: convert, then patch the image with the engine.
    let converted = convert(case.conv, &case.elf, esptool, t, "original");
    let image_route = engine_patch(
        &format!("{name}, image route"),
        &converted[0],
        &case.patches,
    );

    // ELF route: patch the ELF with the engine, then convert.
    let patched_elf = engine_patch(&format!("{name}, ELF route"), &case.elf, &case.patches);
    let elf_outputs = convert(case.conv, &patched_elf, esptool, t, "patched");
    let elf_route = &elf_outputs[0];

    // The patch is in the image, at the same load address (independent mapping).
    for p in &case.patches {
        let at = file_offset(&image_route, v1_header, p.addr)
            .unwrap_or_else(|| panic!("{name}: {} ({:#x}) is not segment data", p.what, p.addr));
        assert_eq!(
            image_route[at..at + p.new.len()],
            p.new,
            "{name}: {} in the image route",
            p.what
        );
        assert_eq!(
            elf_route[at..at + p.new.len()],
            p.new,
            "{name}: {} in the ELF route",
            p.what
        );
    }
    assert_ne!(
        image_route, converted[0],
        "{name}: the patch changed the image"
    );

    // Other outputs (the ESP8266 irom blob of a v1 conversion): identical, byte for byte.
    assert_eq!(
        converted.len(),
        elf_outputs.len(),
        "{name}: number of output files"
    );
    // (Every patch is in the image, checked above, so the blob must not change.)
    for (i, (a, b)) in converted.iter().zip(&elf_outputs).enumerate().skip(1) {
        assert!(a == b, "{name}: output file {i} differs between the routes");
    }

    assert_eq!(elf_route.len(), image_route.len(), "{name}: image lengths");
    if case.records_elf_sha {
        // Everything outside app_elf_sha256, the checksum byte and the appended digest is equal.
        let w = common::walk_app_image(&image_route, false);
        let cks = w.checksum_offset;
        let digest = cks + 1..cks + 33;
        assert!(
            w.hash.is_some(),
            "{name}: an ESP-IDF app image has a digest"
        );
        let differing: Vec<usize> = (0..image_route.len())
            .filter(|&i| image_route[i] != elf_route[i])
            .collect();
        let outside: Vec<usize> = differing
            .iter()
            .copied()
            .filter(|i| !APP_ELF_SHA256.contains(i) && *i != cks && !digest.contains(i))
            .collect();
        assert!(
            outside.is_empty(),
            "{name}: the routes differ at {outside:x?}"
        );
        // Inside: exactly the expected difference.
        let original_sha = common::sha256(&case.elf);
        let patched_sha = common::sha256(&patched_elf);
        assert_ne!(original_sha, patched_sha);
        assert_eq!(
            image_route[APP_ELF_SHA256], original_sha,
            "{name}: the image route keeps the hash of the ELF that was converted"
        );
        assert_eq!(
            elf_route[APP_ELF_SHA256], patched_sha,
            "{name}: the ELF route records the hash of the patched ELF"
        );
        assert_eq!(
            elf_route[cks],
            image_route[cks]
                ^ common::xor_fold(0, &original_sha)
                ^ common::xor_fold(0, &patched_sha),
            "{name}: the checksums differ by exactly the two hashes"
        );
        for (route, img) in [("image", &image_route), ("ELF", elf_route)] {
            assert_eq!(
                img[digest.clone()],
                common::sha256(&img[..=cks]),
                "{name}: {route} route digest"
            );
        }
    } else {
        assert!(
            *elf_route == image_route,
            "{name}: ELF route and image route differ at {:x?}",
            (0..image_route.len())
                .filter(|&i| image_route[i] != elf_route[i])
                .take(16)
                .collect::<Vec<_>>()
        );
    }

    assert_valid(
        &format!("{name}, image route"),
        &image_route,
        case.chip,
        esptool,
        t,
    );
    assert_valid(
        &format!("{name}, ELF route"),
        elf_route,
        case.chip,
        esptool,
        t,
    );
    assert_valid(
        &format!("{name}, unpatched"),
        &converted[0],
        case.chip,
        esptool,
        t,
    );
    eprintln!(
        "{name}: ELF route == image route ({} patches, {} bytes{})",
        case.patches.len(),
        image_route.len(),
        if case.records_elf_sha {
            ", app_elf_sha256 differs as expected"
        } else {
            ", byte-identical"
        }
    );
}

// =============================================================================================
// Tests
// =============================================================================================

/// `examples/c-firmware/prebuilt/` (committed with the project): skipped with a reason when
/// absent, a failure under CI.
fn prebuilt(name: &str) -> Option<Vec<u8>> {
    let path = common::repo_root()
        .join("examples/c-firmware/prebuilt")
        .join(name);
    match fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) => {
            assert!(
                !common::in_ci(),
                "{} is missing ({e}); CI=true makes this a failure (examples/c-firmware/build.sh builds it)",
                path.display()
            );
            common::skip(&format!("{} is missing ({e})", path.display()));
            None
        }
    }
}

#[test]
fn c_demo_esp32c3_esptool() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let Some(elf) = prebuilt("esp32c3-demo.elf") else {
        return;
    };
    let secs = sections(&elf);
    let mut patches = slot_patches(&elf, &secs, "wifi_ssid", "elf-route-ssid");
    patches.extend(slot_patches(
        &elf,
        &secs,
        "greeting",
        "hi from the ELF route",
    ));
    run(
        &RouteCase {
            name: "c-firmware esp32c3-demo.elf (esptool elf2image)".into(),
            elf,
            // The flags build.sh uses.
            conv: Converter::Esptool {
                chip: "esp32c3",
                args: &["--flash-mode", "dio", "--flash-size", "4MB"],
            },
            chip: "esp32c3",
            patches,
            records_elf_sha: true,
        },
        &esptool,
    );
}

/// espflash's library on the same ELF: it too records the ELF's SHA-256 (`.flash.appdesc`).
#[test]
fn c_demo_esp32c3_espflash() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let Some(elf) = prebuilt("esp32c3-demo.elf") else {
        return;
    };
    let secs = sections(&elf);
    let patches = slot_patches(&elf, &secs, "thinger_device", "device-42");
    run(
        &RouteCase {
            name: "c-firmware esp32c3-demo.elf (espflash library)".into(),
            elf,
            conv: Converter::Espflash { chip: "esp32c3" },
            chip: "esp32c3",
            patches,
            records_elf_sha: true,
        },
        &esptool,
    );
}

#[test]
fn c_demo_esp8266_esptool_v2() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let Some(elf) = prebuilt("esp8266-demo.elf") else {
        return;
    };
    let secs = sections(&elf);
    // wifi_ssid is in .rodata (a RAM segment), greeting in .irom0.text (the v2 irom segment,
    // outside the XOR checksum): both v2 integrity paths.
    let mut patches = slot_patches(&elf, &secs, "wifi_ssid", "elf-route-ssid");
    patches.extend(slot_patches(
        &elf,
        &secs,
        "greeting",
        "hi from the ELF route",
    ));
    assert!(patches.iter().any(|p| p.what.contains(".irom0.text")));
    assert!(patches.iter().any(|p| p.what.contains(".rodata")));
    run(
        &RouteCase {
            name: "c-firmware esp8266-demo.elf (esptool elf2image --version 2)".into(),
            elf,
            conv: Converter::Esptool {
                chip: "esp8266",
                args: &["--version", "2"],
            },
            chip: "esp8266",
            patches,
            records_elf_sha: false,
        },
        &esptool,
    );
}

#[test]
fn c_demo_esp8266_esptool_v1() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let Some(elf) = prebuilt("esp8266-demo.elf") else {
        return;
    };
    let secs = sections(&elf);
    // The v1 conversion: RAM image 0x00000.bin (patched on both routes) + irom blob 0x01010.bin
    // (no header, so not an image: it must come out identical on both routes).
    let patches = slot_patches(&elf, &secs, "thinger_host", "example.com");
    run(
        &RouteCase {
            name: "c-firmware esp8266-demo.elf (esptool elf2image, v1 + irom blob)".into(),
            elf,
            conv: Converter::EsptoolEsp8266V1,
            chip: "esp8266",
            patches,
            records_elf_sha: false,
        },
        &esptool,
    );
}

/// The esp-hal fixture ELFs converted by espflash's library.
#[test]
fn esp_hal_fixtures_espflash() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let Some(dir) = common::shared_fixtures() else {
        return;
    };
    for chip in ["esp32", "esp32c3", "esp32c6", "esp32h2", "esp32s3"] {
        let elf = fs::read(dir.join(format!("espflash/{chip}.elf"))).expect("fixture");
        let secs = sections(&elf);
        let patches = vec![middle_of(&elf, &secs, ".rodata")];
        run(
            &RouteCase {
                name: format!("espflash/{chip}.elf (espflash library)"),
                elf,
                conv: Converter::Espflash { chip },
                chip,
                patches,
                // esp-hal names the descriptor's section .rodata_desc: espflash records the ELF
                // hash only for .flash.appdesc.
                records_elf_sha: false,
            },
            &esptool,
        );
    }
}

/// Two third-party ELFs through esptool: an ESP-IDF v4.0 app (whose descriptor sits at the start
/// of `.flash.rodata`, so esptool records no ELF hash) and the ESP8266 NONOS SDK example whose
/// `.rodata` holds the placeholder SSID.
#[test]
fn third_party_elfs_esptool() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let Some(dir) = common::shared_fixtures() else {
        return;
    };

    let elf = fs::read(dir.join("esptool/esp32-app-template.elf")).expect("fixture");
    let secs = sections(&elf);
    let patches = vec![middle_of(&elf, &secs, ".flash.rodata")];
    run(
        &RouteCase {
            name: "esptool/esp32-app-template.elf (esptool elf2image)".into(),
            elf,
            conv: Converter::Esptool {
                chip: "esp32",
                args: &[],
            },
            chip: "esp32",
            patches,
            records_elf_sha: false,
        },
        &esptool,
    );

    let elf = fs::read(dir.join("esptool/esp8266-nonossdkv12-example.elf")).expect("fixture");
    let secs = sections(&elf);
    let rodata = section(&secs, ".rodata");
    let at = common::find_all(
        &elf[rodata.offset..rodata.offset + rodata.size],
        b"Your SSID",
    );
    assert_eq!(at.len(), 1);
    let patches = vec![Patch {
        what: "the placeholder SSID in .rodata".into(),
        addr: rodata.addr + at[0] as u32,
        new: b"Mine SSID".to_vec(),
    }];
    run(
        &RouteCase {
            name: "esptool/esp8266-nonossdkv12-example.elf (esptool elf2image --version 2)".into(),
            elf,
            conv: Converter::Esptool {
                chip: "esp8266",
                args: &["--version", "2"],
            },
            chip: "esp8266",
            patches,
            records_elf_sha: false,
        },
        &esptool,
    );
}
