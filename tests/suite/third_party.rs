//! Conformance on real third-party firmware (`../shared/fixtures/third-party`, read-only, never
//! copied into the repository): every image gets the same validity verdict from thinger-patch
//! (library `Firmware::parse` + `verify()`, and the CLI `verify --json`) as from
//! `esptool image-info`, which each test runs itself. Where esptool does not check something, the
//! test checks it with the independent implementations in `tests/suite/common.rs` instead:
//!
//! - On an Arduino ESP8266 full image, `esptool image-info` checks only the eboot image at 0x0, so
//!   the app is sliced out at 0x1000 and given to esptool separately, and the CRC trailer is
//!   checked with `common::arduino_crc_ok`.
//! - On an ESP8266 v2 image esptool ignores the trailing CRC: `common::v2_crc_ok` checks it.
//! - esptool cannot verify an ELF: every fixture ELF must verify valid with us, and converting it
//!   (`esptool elf2image`, or espflash's library for the esp-hal ELFs esptool refuses) must give an
//!   image that both esptool and we call valid.
//! - A merged flash image is built in the test (flipperhttp) and checked slice by slice.
//!
//! Skipped with a printed reason when the fixture folder or esptool is absent; a failure under
//! `CI=true` (see `tests/suite/common.rs`).

use crate::common;

use common::{ChecksumConvention, Esptool, ImageInfo};
use serde_json::Value;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use thinger_patch_core::report::{ChecksumStatus, Report};
use thinger_patch_core::{Error, Firmware};

// =============================================================================================
// The fixture table: what each file is, decided from MANIFEST.tsv, not by the engine
// =============================================================================================

/// Which Arduino ESP8266 CRC trailer a full image carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trailer {
    /// Core 3.x: `{len, crc}` at 0x1010 (first 8 bytes of `.irom0.text`); the stored app checksum
    /// is computed with those 8 bytes zeroed.
    Core3,
    /// Core 2.7.x: `{len, crc}` at 0xFF8 (end of eboot's padding).
    Core27,
    /// Older cores: no trailer.
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One `0xE9` image (app, bootloader, RAM image, header-only image). The chip is what we tell
    /// esptool (`--chip`): its auto-detection misreads ESP8266 images whose flash-mode byte is 0
    /// (it calls `nonos-sdk/boot_v1.7.bin` an "ESP32-S31" image with an invalid checksum).
    Image(&'static str),
    /// An ESP32 image followed by a signature: valid per esptool; we must report the signature and
    /// refuse to patch it with `Error::Signed`.
    Signed(&'static str),
    /// Arduino ESP8266 full image: eboot at 0x0, app at 0x1000.
    Arduino(Trailer),
    /// ESP8266 v2 image (magic 0xEA): irom segment, v1 RAM image, CRC-32.
    V2,
    /// Pre-encrypted flash data (`espsecure encrypt-flash-data`): esptool fails, we return
    /// `Error::Encrypted`.
    Encrypted,
    /// A Secure Boot v1 *digested* bootloader (random IV + digest, 0xFF, then the plain image at
    /// 0x1000): not an image esptool can read, and nothing we can patch.
    Digested,
    /// Not firmware at all (partition table alone, filler, random sector, one byte, empty file):
    /// esptool refuses it, we return an error.
    NotImage,
}

const FIXTURES: &[(&str, Kind)] = &[
    ("esphome/esp8266-core27.bin", Kind::Arduino(Trailer::Core27)),
    ("esphome/esp8266-core3.bin", Kind::Arduino(Trailer::Core3)),
    ("esptool/bootloader_esp32.bin", Kind::Image("esp32")),
    ("esptool/bootloader_esp32_v5_2.bin", Kind::Image("esp32")),
    ("esptool/bootloader_esp32c3.bin", Kind::Image("esp32c3")),
    ("esptool/bootloader_esp8266.bin", Kind::Image("esp8266")),
    ("esptool/esp32c3_header_min_rev.bin", Kind::Image("esp32c3")),
    ("esptool/esp32s3_header.bin", Kind::Image("esp32s3")),
    (
        "esptool/esp8266_deepsleep.bin",
        Kind::Arduino(Trailer::None),
    ),
    ("esptool/esp_idf_blink_esp32s2.bin", Kind::Image("esp32s2")),
    ("esptool/not_4_byte_aligned.bin", Kind::Image("esp8266")),
    ("esptool/one_kb_all_ef.bin", Kind::NotImage),
    ("esptool/onebyte.bin", Kind::NotImage),
    ("esptool/partitions_singleapp.bin", Kind::NotImage),
    (
        "esptool/ram_helloworld/helloworld-esp32.bin",
        Kind::Image("esp32"),
    ),
    // Same image with one byte edited: esptool calls its SHA-256 invalid.
    (
        "esptool/ram_helloworld/helloworld-esp32_edit.bin",
        Kind::Image("esp32"),
    ),
    (
        "esptool/ram_helloworld/helloworld-esp32c2.bin",
        Kind::Image("esp32c2"),
    ),
    (
        "esptool/ram_helloworld/helloworld-esp32c3.bin",
        Kind::Image("esp32c3"),
    ),
    (
        "esptool/ram_helloworld/helloworld-esp32c5.bin",
        Kind::Image("esp32c5"),
    ),
    (
        "esptool/ram_helloworld/helloworld-esp32c6.bin",
        Kind::Image("esp32c6"),
    ),
    (
        "esptool/ram_helloworld/helloworld-esp32c61.bin",
        Kind::Image("esp32c61"),
    ),
    (
        "esptool/ram_helloworld/helloworld-esp32h2.bin",
        Kind::Image("esp32h2"),
    ),
    (
        "esptool/ram_helloworld/helloworld-esp32h4.bin",
        Kind::Image("esp32h4"),
    ),
    (
        "esptool/ram_helloworld/helloworld-esp32p4.bin",
        Kind::Image("esp32p4"),
    ),
    (
        "esptool/ram_helloworld/helloworld-esp32s3.bin",
        Kind::Image("esp32s3"),
    ),
    (
        "esptool/ram_helloworld/helloworld-esp8266.bin",
        Kind::Image("esp8266"),
    ),
    ("esptool/sector.bin", Kind::NotImage),
    ("esptool/secure/bootloader-encrypted.bin", Kind::Encrypted),
    ("esptool/secure/bootloader_digested.bin", Kind::Digested),
    (
        "esptool/secure/bootloader_multi_signed_v2_rsa.bin",
        Kind::Signed("esp32"),
    ),
    (
        "esptool/secure/bootloader_signed.bin",
        Kind::Signed("esp32"),
    ),
    (
        "esptool/secure/bootloader_signed_v2_ecdsa256.bin",
        Kind::Signed("esp32"),
    ),
    (
        "esptool/secure/bootloader_signed_v2_ecdsa384.bin",
        Kind::Signed("esp32"),
    ),
    (
        "esptool/secure/bootloader_signed_v2_rsa.bin",
        Kind::Signed("esp32"),
    ),
    // The image of the bootloader_signed_v2_* files without any signature.
    (
        "esptool/secure/bootloader_unsigned_v2.bin",
        Kind::Image("esp32"),
    ),
    (
        "esptool/secure/hello-world-signed-encrypted.bin",
        Kind::Encrypted,
    ),
    (
        "esptool/secure/hello-world-signed.bin",
        Kind::Signed("esp32"),
    ),
    ("esptool/zerolength.bin", Kind::NotImage),
    ("flipperhttp/esp32c3-app.bin", Kind::Image("esp32c3")),
    ("flipperhttp/esp32c3-bootloader.bin", Kind::Image("esp32c3")),
    ("flipperhttp/esp32c3-partitions.bin", Kind::NotImage),
    ("nonos-sdk/boot_v1.7.bin", Kind::Image("esp8266")),
    ("nonos-sdk/user1.2048.new.5.bin", Kind::V2),
];

/// Every fixture ELF and the chip to convert it for.
const ELFS: &[(&str, &str)] = &[
    ("arduino-esp8266/eboot.elf", "esp8266"),
    ("espflash/esp32.elf", "esp32"),
    ("espflash/esp32c3.elf", "esp32c3"),
    ("espflash/esp32c6.elf", "esp32c6"),
    ("espflash/esp32h2.elf", "esp32h2"),
    ("espflash/esp32s3.elf", "esp32s3"),
    ("esptool/esp32-app-template.elf", "esp32"),
    ("esptool/esp32-zephyr.elf", "esp32"),
    ("esptool/esp32c6-appdesc.elf", "esp32c6"),
    ("esptool/esp8266-nonossdkv12-example.elf", "esp8266"),
    ("esptool/esp8266-nonossdkv20-at-v2.elf", "esp8266"),
    ("esptool/esp8266-openrtos-blink-v2.elf", "esp8266"),
];

/// Offset of the app in an Arduino ESP8266 full image.
const ARDUINO_APP: usize = common::ARDUINO_APP_OFFSET;

fn kind_of(rel: &str) -> Kind {
    FIXTURES
        .iter()
        .find(|(name, _)| *name == rel)
        .map(|(_, k)| *k)
        .unwrap_or_else(|| panic!("fixture {rel} is not in this test's FIXTURES table"))
}

/// Every file under `dir` whose name ends in `ext`, as paths relative to `dir`, sorted.
fn files_with_ext(dir: &Path, ext: &str) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, ext: &str, out: &mut Vec<String>) {
        for entry in fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()))
        {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, base, ext, out);
            } else if path.extension().is_some_and(|e| e == ext) {
                let rel = path.strip_prefix(base).expect("under base");
                out.push(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, ext, &mut out);
    out.sort();
    out
}

/// The fixture folder and esptool, or `None` (skip) when either is absent outside CI.
fn setup() -> Option<(PathBuf, Esptool)> {
    let dir = common::shared_fixtures()?;
    let esptool = common::esptool()?;
    Some((dir, esptool))
}

// =============================================================================================
// Verdict helpers
// =============================================================================================

/// The library's verdict on `bytes`.
fn ours(bytes: &[u8]) -> Result<Report, Error> {
    Firmware::parse(bytes).map(|fw| fw.verify())
}

fn ours_summary(r: &Result<Report, Error>) -> String {
    match r {
        Ok(r) => {
            let images: Vec<String> = r
                .images
                .iter()
                .map(|i| {
                    let mut s = format!("{}:{}", i.role, if i.valid { "ok" } else { "BAD" });
                    if let Some(c) = &i.checksum
                        && c.status == ChecksumStatus::ValidArduinoCore3
                    {
                        s.push_str("(core3 cks)");
                    }
                    if i.signature.is_some() {
                        s.push_str("(signed)");
                    }
                    s
                })
                .collect();
            format!(
                "{} {} [{}]",
                r.format,
                if r.valid { "valid" } else { "INVALID" },
                images.join(" ")
            )
        }
        Err(e) => format!("error: {}", error_kind(e)),
    }
}

fn error_kind(e: &Error) -> &'static str {
    match e {
        Error::Empty => "Empty",
        Error::Truncated { .. } => "Truncated",
        Error::UnknownFormat { .. } => "UnknownFormat",
        Error::Encrypted { .. } => "Encrypted",
        Error::BadMagic { .. } => "BadMagic",
        Error::SegmentPastEnd { .. } => "SegmentPastEnd",
        Error::Signed { .. } => "Signed",
        _ => "other",
    }
}

fn esptool_summary(info: &ImageInfo) -> String {
    if !info.success {
        return format!(
            "refused ({})",
            info.error.as_deref().unwrap_or("no message")
        );
    }
    let cks = match info.checksum {
        Some(c) if c.valid => "checksum ok".to_string(),
        Some(c) => format!("checksum BAD (calc {:#04x})", c.computed),
        None => "no checksum".to_string(),
    };
    let hash = match info.hash_valid() {
        None => String::new(),
        Some(true) => ", sha256 ok".into(),
        Some(false) => ", sha256 BAD".into(),
    };
    format!(
        "{}{cks}{hash}",
        if info.is_valid() {
            "valid: "
        } else {
            "INVALID: "
        }
    )
}

/// Runs `thinger-patch verify --json FILE` and checks it says exactly what the library says: the
/// same report (as JSON) or an error carrying the library's message, the same validity, and exit
/// code 0 for valid, 1 for invalid or refused. Returns a short verdict for the table.
fn cli_agrees(path: &Path, lib: &Result<Report, Error>) -> String {
    let out = common::run_cli(&["verify", "--json", path.to_str().expect("UTF-8 path")]);
    let code = out.status.code().expect("the CLI exited normally");
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify --json printed no JSON ({e}) for {}:\n{}",
            path.display(),
            common::describe_output(&out)
        )
    });
    let file = &doc["files"][0];
    assert_eq!(doc["files"].as_array().map(Vec::len), Some(1));
    match lib {
        Ok(report) => {
            let expected = serde_json::to_value(report).expect("report serialises");
            assert_eq!(
                file["report"],
                expected,
                "CLI report differs from the library's for {}",
                path.display()
            );
            assert_eq!(
                file["valid"],
                Value::Bool(report.valid),
                "{}",
                path.display()
            );
            assert_eq!(
                doc["valid"],
                Value::Bool(report.valid),
                "{}",
                path.display()
            );
            assert_eq!(
                code,
                if report.valid { 0 } else { 1 },
                "exit code for {}",
                path.display()
            );
        }
        Err(e) => {
            assert!(file["report"].is_null(), "{}", path.display());
            assert_eq!(file["valid"], Value::Bool(false), "{}", path.display());
            let msg = file["error"].as_str().unwrap_or_else(|| {
                panic!("no error message for {}: {file}", path.display());
            });
            assert!(
                msg.contains(&e.to_string()),
                "CLI error {msg:?} does not carry the library's {:?}",
                e.to_string()
            );
            assert_eq!(code, 1, "exit code for {}", path.display());
        }
    }
    format!("exit {code}")
}

/// One row of the printed verdict table.
struct Row {
    file: String,
    esptool: String,
    ours: String,
    cli: String,
    independent: String,
}

fn print_table(title: &str, rows: &[Row]) {
    let mut s = format!("\n{title}\n");
    let w = rows.iter().map(|r| r.file.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(
        s,
        "{:<w$} | esptool | ours (lib) | CLI | independent",
        "file"
    );
    for r in rows {
        let _ = writeln!(
            s,
            "{:<w$} | {} | {} | {} | {}",
            r.file, r.esptool, r.ours, r.cli, r.independent
        );
    }
    println!("{s}");
}

fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    common::write_file(dir, name, bytes)
}

/// The chip name the library reports, as its JSON spells it (`"esp32c3"`).
fn chip_name(r: &Report) -> Option<String> {
    serde_json::to_value(r.chip)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
}

/// The XOR of a byte slice (to convert esptool's plain checksum to the core 3.x convention).
fn xor_all(bytes: &[u8]) -> u8 {
    common::xor_fold(0, bytes)
}

// =============================================================================================
// Per-kind checks. Each returns the row for the table.
// =============================================================================================

fn check_image(
    rel: &str,
    path: &Path,
    bytes: &[u8],
    chip: &str,
    signed: bool,
    esptool: &Esptool,
) -> Row {
    let info = esptool.image_info(path, Some(chip));
    let lib = ours(bytes);
    let cli = cli_agrees(path, &lib);
    let report = lib
        .as_ref()
        .unwrap_or_else(|e| panic!("{rel}: we refuse an image esptool reads: {e}"));
    assert!(
        info.success,
        "{rel}: esptool could not read it:\n{}",
        info.describe()
    );
    assert_eq!(report.format, "app-image", "{rel}");
    assert_eq!(report.images.len(), 1, "{rel}");
    assert_eq!(
        chip_name(report).as_deref(),
        Some(chip),
        "{rel}: chip we report"
    );
    let img = &report.images[0];
    let walked = common::try_walk_app_image(bytes, chip == "esp8266")
        .unwrap_or_else(|e| panic!("{rel}: independent walker: {e}"));

    // The verdict: esptool, the independent walker and we agree.
    assert_eq!(
        report.valid,
        info.is_valid(),
        "{rel}: we say valid={}, esptool says:\n{}",
        report.valid,
        info.describe()
    );
    assert_eq!(report.valid, walked.is_valid(), "{rel}: independent walker");
    // And on the details: checksum stored/computed, hash presence and verdict.
    let ic = info.checksum.expect("esptool printed a checksum");
    let oc = img.checksum.as_ref().expect("we report a checksum");
    assert_eq!(
        (oc.stored, oc.computed),
        (ic.stored, ic.computed),
        "{rel}: checksum"
    );
    assert_eq!(
        (oc.stored, oc.computed),
        (walked.stored_checksum, walked.computed_checksum),
        "{rel}: checksum vs independent walker"
    );
    assert_eq!(
        img.sha256.as_ref().map(|h| h.valid),
        info.hash_valid(),
        "{rel}: SHA-256 verdict"
    );
    assert_eq!(
        img.sha256.as_ref().map(|h| h.valid),
        walked.hash_ok(),
        "{rel}"
    );
    if let Some(h) = &img.sha256 {
        assert_eq!(h.offset, walked.checksum_offset + 1, "{rel}: digest offset");
    }

    // Signatures: reported exactly on the signed files, and a signed image is never patched.
    assert_eq!(
        img.signature.is_some(),
        signed,
        "{rel}: signature {:?}",
        img.signature
    );
    if signed {
        assert!(
            info.is_valid(),
            "{rel}: esptool calls the signed image valid"
        );
        let mut fw = Firmware::parse(bytes).expect("parses");
        let (addr, old) = first_patchable_byte(&fw);
        match fw.patch(addr, &[!old]) {
            Err(Error::Signed { offset, kind }) => {
                assert!(offset >= walked.end, "{rel}: signature offset {offset:#x}");
                assert!(!kind.is_empty());
            }
            other => {
                panic!("{rel}: patching a signed image must fail with Error::Signed, got {other:?}")
            }
        }
    }

    Row {
        file: rel.into(),
        esptool: esptool_summary(&info),
        ours: ours_summary(&lib),
        cli,
        independent: format!(
            "checksum {}{}",
            if walked.checksum_ok() { "ok" } else { "BAD" },
            match walked.hash_ok() {
                None => "",
                Some(true) => ", sha256 ok",
                Some(false) => ", sha256 BAD",
            }
        ),
    }
}

/// The first patchable byte of the boot space (address and current value).
fn first_patchable_byte(fw: &Firmware<'_>) -> (u32, u8) {
    let spaces = fw.spaces();
    let space = spaces.first().expect("an address space");
    let chunk = space
        .chunks()
        .into_iter()
        .next()
        .expect("a patchable chunk");
    let old = fw.read(space, chunk.addr, 1).expect("readable")[0];
    (chunk.addr, old)
}

fn check_arduino(
    rel: &str,
    path: &Path,
    bytes: &[u8],
    trailer: Trailer,
    esptool: &Esptool,
    tmp: &Path,
) -> Row {
    let lib = ours(bytes);
    let cli = cli_agrees(path, &lib);
    let report = lib
        .as_ref()
        .unwrap_or_else(|e| panic!("{rel}: refused: {e}"));
    assert_eq!(report.format, "arduino-esp8266", "{rel}");
    let roles: Vec<&str> = report.images.iter().map(|i| i.role.as_str()).collect();
    assert_eq!(roles, ["eboot", "app"], "{rel}");
    let (eboot, app) = (&report.images[0], &report.images[1]);
    assert_eq!(app.offset, ARDUINO_APP, "{rel}");

    // esptool on the whole file checks only the eboot image at 0x0.
    let full = esptool.image_info(path, Some("esp8266"));
    assert!(full.success, "{rel}:\n{}", full.describe());
    assert_eq!(
        eboot.valid,
        full.is_valid(),
        "{rel}: eboot verdict vs esptool:\n{}",
        full.describe()
    );
    let eboot_walk = common::walk_app_image(bytes, true);
    assert_eq!(eboot.valid, eboot_walk.is_valid(), "{rel}: eboot vs walker");

    // The app, sliced out at 0x1000, checked by esptool separately.
    let slice = write_temp(
        tmp,
        &format!("{}-app.bin", rel.replace('/', "_")),
        &bytes[ARDUINO_APP..],
    );
    let app_info = esptool.image_info(&slice, Some("esp8266"));
    assert!(
        app_info.success,
        "{rel} app slice:\n{}",
        app_info.describe()
    );
    let ic = app_info.checksum.expect("esptool printed the app checksum");
    let oc = app.checksum.as_ref().expect("app checksum");
    assert_eq!(
        (oc.stored, oc.computed),
        (ic.stored, ic.computed),
        "{rel}: app checksum as esptool reads it"
    );
    let convention = common::arduino_app_checksum_convention(bytes);
    let esptool_app = match trailer {
        Trailer::Core3 => {
            // The core 3.x convention: the build computes the app checksum BEFORE it writes the
            // CRC trailer into .irom0.text, so esptool (which checksums the bytes as stored) calls
            // the app invalid, and we call it valid_arduino_core3. The independent checker
            // confirms the stored checksum matches the data with 0x1010..0x1018 zeroed, and so
            // does esptool's own calculation once the trailer bytes are XORed back out.
            assert!(
                !app_info.is_valid(),
                "{rel}: esptool was expected to call the core-3 app invalid:\n{}",
                app_info.describe()
            );
            assert_eq!(oc.status, ChecksumStatus::ValidArduinoCore3, "{rel}");
            assert!(
                app.valid,
                "{rel}: the app is valid under the core-3 convention"
            );
            assert_eq!(convention, Some(ChecksumConvention::TrailerZeroed), "{rel}");
            assert_eq!(
                ic.computed ^ xor_all(&bytes[0x1010..0x1018]),
                ic.stored,
                "{rel}: esptool's calculation with the trailer zeroed"
            );
            format!(
                "app slice: {} (core-3 convention ok)",
                esptool_summary(&app_info)
            )
        }
        Trailer::Core27 | Trailer::None => {
            assert_eq!(
                app.valid,
                app_info.is_valid(),
                "{rel}: app verdict vs esptool on the slice:\n{}",
                app_info.describe()
            );
            assert_eq!(
                oc.status == ChecksumStatus::Valid,
                app_info.is_valid(),
                "{rel}"
            );
            assert_eq!(
                convention.is_some_and(|c| c == ChecksumConvention::Plain),
                app_info.is_valid(),
                "{rel}: independent checksum"
            );
            format!("app slice: {}", esptool_summary(&app_info))
        }
    };

    // The CRC trailer: esptool never looks at it; the independent CRC-32/MPEG-2 does.
    let crc_ok = common::arduino_crc_ok(bytes);
    match trailer {
        Trailer::Core3 | Trailer::Core27 => {
            let at = if trailer == Trailer::Core3 {
                0x1010
            } else {
                0xFF8
            };
            assert_eq!(common::arduino_crc_offset(bytes), Some(at), "{rel}");
            let crc = app.crc.as_ref().expect("we report the CRC trailer");
            assert_eq!(crc.offset, at, "{rel}");
            assert_eq!(
                crc.kind,
                if trailer == Trailer::Core3 {
                    "arduino-core-3"
                } else {
                    "arduino-core-2.7"
                },
                "{rel}"
            );
            assert_eq!(Some(crc.valid), crc_ok, "{rel}: CRC vs independent");
        }
        Trailer::None => {
            assert_eq!(
                crc_ok, None,
                "{rel}: the independent checker finds a trailer"
            );
            assert!(
                app.crc.is_none(),
                "{rel}: we report a CRC that is not there"
            );
        }
    }
    let independent_valid = eboot_walk.is_valid() && convention.is_some() && crc_ok != Some(false);
    assert_eq!(report.valid, independent_valid, "{rel}: overall verdict");
    assert!(app.signature.is_none(), "{rel}");

    Row {
        file: rel.into(),
        esptool: format!("eboot: {}; {esptool_app}", esptool_summary(&full)),
        ours: ours_summary(&lib),
        cli,
        independent: format!(
            "eboot {}, app checksum {:?}, CRC {:?}",
            if eboot_walk.is_valid() { "ok" } else { "BAD" },
            convention,
            crc_ok
        ),
    }
}

fn check_v2(rel: &str, path: &Path, bytes: &[u8], esptool: &Esptool) -> Row {
    let lib = ours(bytes);
    let cli = cli_agrees(path, &lib);
    let report = lib
        .as_ref()
        .unwrap_or_else(|e| panic!("{rel}: refused: {e}"));
    assert_eq!(report.format, "esp8266-v2", "{rel}");
    assert_eq!(report.images.len(), 1);
    let img = &report.images[0];
    let info = esptool.image_info(path, Some("esp8266"));
    assert!(info.success, "{rel}:\n{}", info.describe());
    assert_eq!(
        info.image_version,
        Some(2),
        "{rel}: esptool sees a v2 image"
    );
    let walked = common::walk_app_image(bytes, true);
    assert!(walked.v2_irom.is_some());
    let oc = img.checksum.as_ref().expect("checksum");
    // esptool checks the XOR checksum of the RAM image only, never the CRC.
    assert_eq!(
        oc.status == ChecksumStatus::Valid,
        info.is_valid(),
        "{rel}: checksum verdict vs esptool:\n{}",
        info.describe()
    );
    assert_eq!(
        oc.status == ChecksumStatus::Valid,
        walked.checksum_ok(),
        "{rel}"
    );
    let crc_ok = common::v2_crc_ok(bytes);
    let crc = img.crc.as_ref().expect("we report the v2 CRC");
    assert_eq!(crc.kind, "esp8266-v2");
    assert_eq!(crc.offset, bytes.len() - 4, "{rel}");
    assert_eq!(crc.valid, crc_ok, "{rel}: CRC vs independent");
    assert_eq!(report.valid, info.is_valid() && crc_ok, "{rel}: overall");
    Row {
        file: rel.into(),
        esptool: format!("{} (CRC not checked)", esptool_summary(&info)),
        ours: ours_summary(&lib),
        cli,
        independent: format!(
            "checksum {}, CRC {}",
            if walked.checksum_ok() { "ok" } else { "BAD" },
            if crc_ok { "ok" } else { "BAD" }
        ),
    }
}

fn check_refused(rel: &str, path: &Path, bytes: &[u8], kind: Kind, esptool: &Esptool) -> Row {
    // No --chip: esptool refuses these whatever chip it is told (there is no image magic).
    let info = esptool.image_info(path, None);
    assert!(
        !info.success && info.error.is_some(),
        "{rel}: esptool was expected to refuse it:\n{}",
        info.describe()
    );
    let lib = ours(bytes);
    let cli = cli_agrees(path, &lib);
    let err = match &lib {
        Ok(r) => panic!(
            "{rel}: esptool refuses it but we call it a {} ({})",
            r.format, r.valid
        ),
        Err(e) => e,
    };
    match kind {
        Kind::Encrypted => assert!(
            matches!(err, Error::Encrypted { offset: 0 }),
            "{rel}: expected Error::Encrypted, got {err:?}"
        ),
        // The digested bootloader starts with 0x60 random bytes (IV and digest) and then 0xFF up
        // to the plain image at 0x1000, so it is neither an image nor random-looking data. Today
        // the engine calls it UnknownFormat, although `Error::Encrypted`'s message claims to
        // cover "a digested Secure Boot v1 bootloader"; either refusal is acceptable here.
        Kind::Digested => assert!(
            matches!(
                err,
                Error::Encrypted { .. } | Error::UnknownFormat { offset: 0, .. }
            ),
            "{rel}: expected a refusal as encrypted or unknown data, got {err:?}"
        ),
        Kind::NotImage => {
            // Any refusal, but never "encrypted" for a file with structure, and Empty for the
            // empty file. (sector.bin is 4 KiB of random data: "looks encrypted" is the honest
            // description of it.)
            if bytes.is_empty() {
                assert_eq!(err, &Error::Empty, "{rel}");
            } else if !rel.ends_with("sector.bin") {
                assert!(!matches!(err, Error::Encrypted { .. }), "{rel}: {err:?}");
            }
        }
        _ => unreachable!(),
    }
    Row {
        file: rel.into(),
        esptool: esptool_summary(&info),
        ours: ours_summary(&lib),
        cli,
        independent: "-".into(),
    }
}

// =============================================================================================
// Tests
// =============================================================================================

/// Every `.bin` fixture: esptool's verdict (on the slices esptool can check), the independent
/// checks, the library's verdict and the CLI's (`verify --json`, exit code) all agree.
#[test]
fn every_bin_fixture_gets_esptools_verdict() {
    let Some((dir, esptool)) = setup() else {
        return;
    };
    let found = files_with_ext(&dir, "bin");
    let listed: Vec<String> = {
        let mut v: Vec<String> = FIXTURES.iter().map(|(n, _)| n.to_string()).collect();
        v.sort();
        v
    };
    assert_eq!(
        found, listed,
        "the .bin fixtures on disk differ from this test's FIXTURES table: classify new ones"
    );
    let tmp = common::temp_dir();
    let mut rows = Vec::new();
    for rel in &found {
        let path = dir.join(rel);
        let bytes = fs::read(&path).expect("readable fixture");
        let row = match kind_of(rel) {
            Kind::Image(chip) => check_image(rel, &path, &bytes, chip, false, &esptool),
            Kind::Signed(chip) => check_image(rel, &path, &bytes, chip, true, &esptool),
            Kind::Arduino(t) => check_arduino(rel, &path, &bytes, t, &esptool, tmp.path()),
            Kind::V2 => check_v2(rel, &path, &bytes, &esptool),
            k @ (Kind::Encrypted | Kind::Digested | Kind::NotImage) => {
                check_refused(rel, &path, &bytes, k, &esptool)
            }
        };
        rows.push(row);
    }
    print_table(
        &format!("{} .bin fixtures (esptool {})", rows.len(), esptool.version),
        &rows,
    );
    assert_eq!(rows.len(), FIXTURES.len());
}

/// The verdicts must be able to differ: a one-byte corruption of each valid image makes esptool
/// (or, where esptool does not look, the independent checker) and us call it invalid, together.
#[test]
fn corrupted_fixtures_get_esptools_verdict_too() {
    let Some((_dir, esptool)) = setup() else {
        return;
    };
    let tmp = common::temp_dir();
    let mut rows = Vec::new();
    let corrupt = |rel: &str, what: &str, bytes: &[u8], offset: usize| -> (PathBuf, Vec<u8>) {
        let mut b = bytes.to_vec();
        common::flip_byte(&mut b, offset);
        let name = format!("{}-{what}.bin", rel.replace('/', "_"));
        (write_temp(tmp.path(), &name, &b), b)
    };
    for (rel, kind) in FIXTURES {
        let bytes = common::read_fixture(rel).expect("fixture folder present");
        match *kind {
            Kind::Image(chip) | Kind::Signed(chip) => {
                let walked = common::walk_app_image(&bytes, chip == "esp8266");
                // The last data byte of the last segment; the checksum byte of a header-only image.
                let (offset, what) = match walked.segments.iter().rev().find(|s| s.2 > 0) {
                    Some(&(_, data, len)) => (data + len - 1, "segment-data"),
                    None => (walked.checksum_offset, "checksum-byte"),
                };
                let (path, b) = corrupt(rel, what, &bytes, offset);
                let info = esptool.image_info(&path, Some(chip));
                let lib = ours(&b);
                let report = lib.as_ref().expect("still parses");
                assert!(
                    !report.valid,
                    "{rel} with {what} at {offset:#x} corrupted: we call it valid"
                );
                assert!(
                    !info.is_valid(),
                    "{rel} corrupted: esptool calls it valid:\n{}",
                    info.describe()
                );
                assert!(!common::walk_app_image(&b, chip == "esp8266").is_valid());
                let cli = cli_agrees(&path, &lib);
                rows.push(Row {
                    file: format!("{rel} ({what} {offset:#x} flipped)"),
                    esptool: esptool_summary(&info),
                    ours: ours_summary(&lib),
                    cli,
                    independent: "invalid".into(),
                });
            }
            Kind::Arduino(trailer) => {
                let app = common::walk_app_image(&bytes[ARDUINO_APP..], true);
                let &(_, data, len) = app.segments.last().expect("app segments");
                let offset = ARDUINO_APP + data + len - 1;
                let (path, b) = corrupt(rel, "app-data", &bytes, offset);
                // esptool on the whole file still calls it valid: it only checks eboot. That is
                // why the app must be checked on its own.
                let full = esptool.image_info(&path, Some("esp8266"));
                assert!(
                    full.is_valid(),
                    "{rel}: esptool checks eboot only:\n{}",
                    full.describe()
                );
                let slice = write_temp(tmp.path(), "corrupt-app-slice.bin", &b[ARDUINO_APP..]);
                let app_info = esptool.image_info(&slice, Some("esp8266"));
                assert!(app_info.success);
                assert_eq!(common::arduino_app_checksum_convention(&b), None, "{rel}");
                if trailer != Trailer::None {
                    assert_eq!(common::arduino_crc_ok(&b), Some(false), "{rel}");
                }
                if trailer != Trailer::Core3 {
                    assert!(
                        !app_info.is_valid(),
                        "{rel}: esptool on the corrupted app slice"
                    );
                }
                let lib = ours(&b);
                let report = lib.as_ref().expect("parses");
                assert!(
                    !report.valid && !report.images[1].valid && report.images[0].valid,
                    "{rel}"
                );
                let cli = cli_agrees(&path, &lib);
                rows.push(Row {
                    file: format!("{rel} (app byte {offset:#x} flipped)"),
                    esptool: format!(
                        "eboot: {}; app slice: {}",
                        esptool_summary(&full),
                        esptool_summary(&app_info)
                    ),
                    ours: ours_summary(&lib),
                    cli,
                    independent: "app checksum BAD".into(),
                });

                // And a corrupted eboot: esptool on the full file sees that one.
                let eboot = common::walk_app_image(&bytes, true);
                let &(_, data, len) = eboot.segments.last().expect("eboot segments");
                let (path, b) = corrupt(rel, "eboot-data", &bytes, data + len - 1);
                let full = esptool.image_info(&path, Some("esp8266"));
                assert!(!full.is_valid(), "{rel}: corrupted eboot");
                let lib = ours(&b);
                let report = lib.as_ref().expect("parses");
                assert!(
                    !report.valid && !report.images[0].valid,
                    "{rel}: corrupted eboot"
                );
                let cli = cli_agrees(&path, &lib);
                rows.push(Row {
                    file: format!("{rel} (eboot byte flipped)"),
                    esptool: esptool_summary(&full),
                    ours: ours_summary(&lib),
                    cli,
                    independent: "eboot checksum BAD".into(),
                });
            }
            Kind::V2 => {
                let walked = common::walk_app_image(&bytes, true);
                // A byte of the irom segment: outside the XOR checksum, covered only by the CRC,
                // which esptool ignores.
                let (irom, irom_len) = walked.v2_irom.expect("irom");
                let (path, b) = corrupt(rel, "irom", &bytes, irom + irom_len / 2);
                let info = esptool.image_info(&path, Some("esp8266"));
                assert!(
                    info.is_valid(),
                    "{rel}: esptool ignores the v2 CRC:\n{}",
                    info.describe()
                );
                assert!(!common::v2_crc_ok(&b), "{rel}");
                let lib = ours(&b);
                let report = lib.as_ref().expect("parses");
                assert!(
                    !report.valid,
                    "{rel}: irom corruption must break our CRC check"
                );
                assert_eq!(report.images[0].crc.as_ref().map(|c| c.valid), Some(false));
                let cli = cli_agrees(&path, &lib);
                rows.push(Row {
                    file: format!("{rel} (irom byte flipped)"),
                    esptool: format!("{} (CRC not checked)", esptool_summary(&info)),
                    ours: ours_summary(&lib),
                    cli,
                    independent: "CRC BAD".into(),
                });
                // A byte of a RAM segment: both checksum and CRC break.
                let &(_, data, len) = walked.segments.last().expect("RAM segments");
                let (path, b) = corrupt(rel, "ram", &bytes, data + len - 1);
                let info = esptool.image_info(&path, Some("esp8266"));
                assert!(!info.is_valid(), "{rel}: RAM segment corruption");
                assert!(!common::v2_crc_ok(&b));
                let lib = ours(&b);
                assert!(!lib.as_ref().expect("parses").valid);
                let cli = cli_agrees(&path, &lib);
                rows.push(Row {
                    file: format!("{rel} (RAM byte flipped)"),
                    esptool: esptool_summary(&info),
                    ours: ours_summary(&lib),
                    cli,
                    independent: "checksum BAD, CRC BAD".into(),
                });
            }
            Kind::Encrypted | Kind::Digested | Kind::NotImage => {}
        }
    }
    print_table(&format!("{} corrupted copies", rows.len()), &rows);
}

/// A signed image is refused because of its signature: the same image without one
/// (`bootloader_unsigned_v2.bin`, whose image bytes the `bootloader_signed_v2_*` files share)
/// patches fine at the same address.
#[test]
fn signed_images_are_refused_only_because_of_the_signature() {
    let Some(unsigned) = common::read_fixture("esptool/secure/bootloader_unsigned_v2.bin") else {
        return;
    };
    let mut fw = Firmware::parse(&unsigned).expect("parses");
    let (addr, old) = first_patchable_byte(&fw);
    fw.patch(addr, &[!old]).expect("the unsigned image patches");
    let patched = fw.finish().expect("and re-seals").bytes;
    assert!(common::walk_app_image(&patched, false).is_valid());
    for rel in [
        "esptool/secure/bootloader_signed_v2_rsa.bin",
        "esptool/secure/bootloader_signed_v2_ecdsa256.bin",
        "esptool/secure/bootloader_signed_v2_ecdsa384.bin",
        "esptool/secure/bootloader_multi_signed_v2_rsa.bin",
    ] {
        let signed = common::read_fixture(rel).expect("present");
        let image_len = common::walk_app_image(&signed, false).end;
        assert_eq!(
            signed[..image_len],
            unsigned[..image_len],
            "{rel}: same image"
        );
        let mut fw = Firmware::parse(&signed).expect("parses");
        let report = fw.verify();
        let sig = report.images[0]
            .signature
            .clone()
            .expect("signature reported");
        assert_eq!(sig.offset(), image_len.next_multiple_of(4096), "{rel}");
        let err = fw
            .patch(addr, &[!old])
            .expect_err("signed images are refused");
        assert!(matches!(err, Error::Signed { .. }), "{rel}: {err:?}");
        assert_eq!(fw.data(), &signed[..], "{rel}: nothing was written");
    }
}

/// Every fixture ELF verifies valid with us (CLI too), and converting it gives an image that
/// esptool and we both call valid. esptool cannot convert the esp-hal ELFs of espflash's test
/// suite (two flash sections in one 64 KiB MMU page): for those, espflash's library converts them.
#[test]
fn every_elf_fixture_verifies_and_converts_to_a_valid_image() {
    let Some((dir, esptool)) = setup() else {
        return;
    };
    assert_eq!(
        files_with_ext(&dir, "elf"),
        {
            let mut v: Vec<String> = ELFS.iter().map(|(n, _)| n.to_string()).collect();
            v.sort();
            v
        },
        "the .elf fixtures on disk differ from this test's ELFS table"
    );
    let tmp = common::temp_dir();
    let mut rows = Vec::new();
    let mut images_checked = 0;
    for &(rel, chip) in ELFS {
        let path = dir.join(rel);
        let elf = fs::read(&path).expect("readable");
        let lib = ours(&elf);
        let cli = cli_agrees(&path, &lib);
        let report = lib
            .as_ref()
            .unwrap_or_else(|e| panic!("{rel}: we refuse a fixture ELF: {e}"));
        assert_eq!(report.format, "elf", "{rel}");
        assert!(report.valid, "{rel}: every fixture ELF is valid");
        // Every fixture ELF has patchable sections, except esp32c6-appdesc.elf, which holds
        // nothing but `.flash.appdesc` (the app descriptor, never patchable).
        assert_eq!(
            report.images[0].segments.is_empty(),
            rel == "esptool/esp32c6-appdesc.elf",
            "{rel}: patchable sections {:?}",
            report.images[0].segments
        );

        let stem = rel.replace('/', "_").trim_end_matches(".elf").to_string();
        let mut converted: Vec<(String, Vec<u8>)> = Vec::new();
        if chip == "esp8266" {
            // Default: a v1 image of the RAM segments (0x00000.bin) plus a raw irom blob.
            let prefix = tmp.path().join(format!("{stem}-"));
            esptool
                .elf2image(&path, &prefix, chip, &[])
                .unwrap_or_else(|e| panic!("{rel}: {e}"));
            let v1 = tmp.path().join(format!("{stem}-0x00000.bin"));
            converted.push(("elf2image v1".into(), fs::read(&v1).expect("v1 image")));
            let has_irom = fs::read_dir(tmp.path()).expect("tmp").any(|e| {
                let n = e.expect("entry").file_name().to_string_lossy().to_string();
                n.starts_with(&format!("{stem}-0x")) && !n.ends_with("0x00000.bin")
            });
            // --version 2 needs an irom section (eboot has none: esptool then writes a v2 header
            // without the irom segment, a file neither esptool nor we can read).
            if has_irom {
                let out = tmp.path().join(format!("{stem}-v2.bin"));
                esptool
                    .elf2image(&path, &out, chip, &["--version", "2"])
                    .unwrap_or_else(|e| panic!("{rel}: {e}"));
                converted.push(("elf2image --version 2".into(), fs::read(&out).expect("v2")));
            }
        } else {
            let out = tmp.path().join(format!("{stem}.bin"));
            match esptool.elf2image(&path, &out, chip, &[]) {
                Ok(()) => converted.push(("elf2image".into(), fs::read(&out).expect("image"))),
                Err(e) => assert!(
                    rel.starts_with("espflash/") && e.contains("same 64 KB flash mapping"),
                    "{rel}: esptool elf2image failed: {e}"
                ),
            }
            if rel.starts_with("espflash/") {
                converted.push((
                    "espflash lib".into(),
                    common::espflash_app_image(&elf, chip),
                ));
            }
        }
        assert!(!converted.is_empty(), "{rel}: no conversion");
        let mut notes = Vec::new();
        for (how, image) in converted {
            let img_path = write_temp(tmp.path(), &format!("{stem}-{}.img", notes.len()), &image);
            let info = esptool.image_info(&img_path, Some(chip));
            info.assert_valid(&format!("{rel} converted by {how}"));
            let r = ours(&image).unwrap_or_else(|e| panic!("{rel} via {how}: {e}"));
            assert!(
                r.valid,
                "{rel} via {how}: we call the converted image invalid"
            );
            let walked = common::walk_app_image(&image, chip == "esp8266");
            assert!(walked.is_valid(), "{rel} via {how}: independent walker");
            if image[0] == 0xEA {
                assert!(common::v2_crc_ok(&image), "{rel} via {how}: v2 CRC");
                assert_eq!(r.format, "esp8266-v2");
            }
            images_checked += 1;
            notes.push(format!("{how}: {}", ours_summary(&Ok(r))));
        }
        rows.push(Row {
            file: rel.into(),
            esptool: "n/a (ELF); converted images valid".into(),
            ours: ours_summary(&lib),
            cli,
            independent: notes.join("; "),
        });
    }
    print_table(
        &format!(
            "{} ELF fixtures, {images_checked} converted images",
            rows.len()
        ),
        &rows,
    );
}

// =============================================================================================
// A merged flash image built from flipperhttp's parts
// =============================================================================================

const FLIPPER_TABLE: usize = 0x8000;
const FLIPPER_APP: usize = 0x10000;

/// `(merged, bootloader, table, app)`.
type MergedParts = (Vec<u8>, Vec<u8>, Vec<u8>, Vec<u8>);

fn flipper_merged() -> Option<MergedParts> {
    let bootloader = common::read_fixture("flipperhttp/esp32c3-bootloader.bin")?;
    let table = common::read_fixture("flipperhttp/esp32c3-partitions.bin")?;
    let app = common::read_fixture("flipperhttp/esp32c3-app.bin")?;
    let mut merged = vec![0xFF; FLIPPER_APP + app.len()];
    merged[..bootloader.len()].copy_from_slice(&bootloader);
    merged[FLIPPER_TABLE..FLIPPER_TABLE + table.len()].copy_from_slice(&table);
    merged[FLIPPER_APP..].copy_from_slice(&app);
    Some((merged, bootloader, table, app))
}

/// The independent MD5 check of an ESP-IDF partition table: `(stored, computed)` of the MD5 entry.
fn table_md5(table: &[u8]) -> Option<([u8; 16], [u8; 16])> {
    use md5::Digest as _;
    let at = table.chunks(32).position(|e| e[..2] == [0xEB, 0xEB])? * 32;
    let stored: [u8; 16] = table[at + 16..at + 32].try_into().expect("16 bytes");
    let computed: [u8; 16] = md5::Md5::digest(&table[..at]).into();
    Some((stored, computed))
}

#[test]
fn merged_flipperhttp_image_matches_esptool_on_each_slice() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let Some((merged, bootloader, table, app)) = flipper_merged() else {
        return;
    };
    let tmp = common::temp_dir();
    let parts = [
        ("0x0", "flipperhttp/esp32c3-bootloader.bin"),
        ("0x8000", "flipperhttp/esp32c3-partitions.bin"),
        ("0x10000", "flipperhttp/esp32c3-app.bin"),
    ];

    // The hand-built file is what `esptool merge-bin` writes (0xFF fill).
    let by_esptool = tmp.path().join("merge-bin.bin");
    let mut args: Vec<String> = vec![
        "--chip".into(),
        "esp32c3".into(),
        "merge-bin".into(),
        "-o".into(),
        by_esptool.to_string_lossy().into(),
    ];
    for (at, rel) in parts {
        args.push(at.into());
        args.push(
            common::fixture(rel)
                .expect("present")
                .to_string_lossy()
                .into(),
        );
    }
    let out = esptool.run(&args);
    assert!(out.status.success(), "{}", common::describe_output(&out));
    assert!(
        fs::read(&by_esptool).expect("merge-bin output") == merged,
        "the hand-built merged image differs from esptool merge-bin's"
    );

    let path = write_temp(tmp.path(), "flipperhttp-merged.bin", &merged);
    let lib = ours(&merged);
    let cli = cli_agrees(&path, &lib);
    let report = lib.as_ref().expect("the merged image parses");
    assert_eq!(report.format, "merged");
    assert_eq!(chip_name(report).as_deref(), Some("esp32c3"));
    assert!(report.valid, "{}", ours_summary(&lib));
    let roles: Vec<(&str, usize)> = report
        .images
        .iter()
        .map(|i| (i.role.as_str(), i.offset))
        .collect();
    assert_eq!(
        roles,
        [("bootloader", 0), ("ota_0 (app0)", FLIPPER_APP)],
        "images found"
    );

    // Partition table and its MD5, against the independent MD5.
    let t = report.partition_table.as_ref().expect("table reported");
    assert_eq!(t.offset, FLIPPER_TABLE);
    assert!(t.valid);
    let (stored, computed) = table_md5(&table).expect("the table has an MD5 entry");
    assert_eq!(stored, computed, "independent MD5 of the fixture table");
    let md5 = t.md5.as_ref().expect("MD5 entry reported");
    assert!(md5.valid);
    assert_eq!(md5.stored, common::hex(&stored));
    assert_eq!(md5.computed, common::hex(&computed));
    assert_eq!(md5.offset, FLIPPER_TABLE + 6 * 32);
    let labels: Vec<&str> = t.partitions.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(
        labels,
        ["nvs", "otadata", "app0", "app1", "spiffs", "coredump"]
    );

    // Each slice: esptool's verdict equals ours for that image.
    let mut rows = Vec::new();
    for (img, slice, what) in [
        (
            &report.images[0],
            &merged[..FLIPPER_TABLE],
            "bootloader slice 0x0..0x8000",
        ),
        (
            &report.images[1],
            &merged[FLIPPER_APP..],
            "app slice 0x10000..",
        ),
    ] {
        let p = write_temp(tmp.path(), "slice.bin", slice);
        let info = esptool.image_info(&p, Some("esp32c3"));
        assert!(info.success, "{what}:\n{}", info.describe());
        assert_eq!(img.valid, info.is_valid(), "{what}:\n{}", info.describe());
        assert!(info.is_valid(), "{what}");
        let walked = common::walk_app_image(slice, false);
        assert_eq!(img.valid, walked.is_valid(), "{what}: independent walker");
        rows.push(Row {
            file: format!("merged flipperhttp: {what}"),
            esptool: esptool_summary(&info),
            ours: format!(
                "{}: {}",
                img.role,
                if img.valid { "valid" } else { "INVALID" }
            ),
            cli: cli.clone(),
            independent: if walked.is_valid() {
                "valid".into()
            } else {
                "INVALID".into()
            },
        });
    }
    assert_eq!(bootloader[..], merged[..bootloader.len()]);
    assert_eq!(app[..], merged[FLIPPER_APP..]);

    // The verdict can fail: a corrupted table MD5, a corrupted app byte.
    let mut bad_table = merged.clone();
    common::flip_byte(&mut bad_table, FLIPPER_TABLE + 12); // first label byte: "nvs" -> "ovs"
    let r = ours(&bad_table).expect("parses");
    assert!(!r.valid, "a table whose MD5 does not match must be invalid");
    assert!(!r.partition_table.as_ref().expect("table").valid);
    let (s, c) = table_md5(&bad_table[FLIPPER_TABLE..FLIPPER_TABLE + table.len()]).expect("md5");
    assert_ne!(s, c);

    let mut bad_app = merged.clone();
    let last = common::walk_app_image(&app, false);
    let &(_, data, len) = last.segments.last().expect("segments");
    common::flip_byte(&mut bad_app, FLIPPER_APP + data + len - 1);
    let r = ours(&bad_app).expect("parses");
    assert!(!r.valid && r.images[0].valid && !r.images[1].valid);
    let p = write_temp(tmp.path(), "bad-app-slice.bin", &bad_app[FLIPPER_APP..]);
    assert!(!esptool.image_info(&p, Some("esp32c3")).is_valid());
    let p = write_temp(tmp.path(), "bad-merged.bin", &bad_app);
    cli_agrees(&p, &Ok(r));

    rows.push(Row {
        file: "merged flipperhttp (whole file)".into(),
        esptool: "cannot read merged files".into(),
        ours: ours_summary(&lib),
        cli,
        independent: format!("table MD5 {}", common::hex(&computed)),
    });
    print_table("merged flipperhttp image", &rows);
}

// =============================================================================================
// Damaged files esptool calls valid (issue 8)
// =============================================================================================

const ARDUINO_FIXTURES: &[&str] = &[
    "esphome/esp8266-core27.bin",
    "esphome/esp8266-core3.bin",
    "esptool/esp8266_deepsleep.bin",
];

/// A request that patches the placeholder every Arduino fixture lacks: an invalid file must be
/// refused as invalid before anything is looked for.
fn placeholder_request() -> thinger_patch_core::Request {
    use thinger_patch_core::targets::placeholder::Placeholder;
    use thinger_patch_core::values::{Assignment, Origin};
    thinger_patch_core::Request {
        values: vec![Assignment::new("ssid", "home", Origin::CommandLine)],
        placeholders: vec![Placeholder::new("ssid", "Your SSID")],
        ..thinger_patch_core::Request::default()
    }
}

/// A real Arduino ESP8266 image whose app at 0x1000 is erased, overwritten, cut off, cut inside
/// or has a flipped magic byte (or a lone 4 KiB eboot): `esptool image-info` checks only eboot and
/// calls all of them valid. We call them invalid, say why, the CLI exits 1, and `personalize`
/// refuses for the missing app (not for a placeholder it cannot find).
#[test]
fn arduino_fixtures_with_a_damaged_app_are_invalid() {
    let esptool = common::esptool();
    let tmp = common::temp_dir();
    let mut rows = Vec::new();
    for rel in ARDUINO_FIXTURES {
        let Some(file) = common::read_fixture(rel) else {
            return;
        };
        let fw = Firmware::parse(&file).expect("the fixture parses");
        let thinger_patch_core::format::Layout::Arduino(a) = fw.layout() else {
            panic!("{rel} is not an Arduino image");
        };
        let eboot_end = a.eboot.end;
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut random = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as u8
        };
        let overwritten: Vec<u8> = file[..ARDUINO_APP]
            .iter()
            .copied()
            .chain(std::iter::once(0x5A))
            .chain((ARDUINO_APP + 1..file.len()).map(|_| random()))
            .collect();
        let variants: Vec<(&str, Vec<u8>, &str)> = vec![
            (
                "app erased",
                [
                    &file[..ARDUINO_APP],
                    &vec![0xFF; file.len() - ARDUINO_APP][..],
                ]
                .concat(),
                "no image magic at 0x1000 (found 0xff, expected 0xe9), the rest of the file is erased flash",
            ),
            (
                "app overwritten",
                overwritten,
                "no image magic at 0x1000 (found 0x5a",
            ),
            (
                "lone eboot",
                file[..ARDUINO_APP].to_vec(),
                "the file ends at 0x1000, before it",
            ),
            (
                "cut inside the app",
                file[..ARDUINO_APP + 0x2000].to_vec(),
                "past the end of the file (12288 bytes)",
            ),
            (
                "app magic flipped",
                {
                    let mut v = file.clone();
                    v[ARDUINO_APP] = 0xE8;
                    v
                },
                "no image magic at 0x1000 (found 0xe8",
            ),
        ];
        for (what, bytes, reason) in variants {
            let name = format!("{rel}: {what}");
            let lib = ours(&bytes);
            let report = lib.as_ref().unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(report.format, "arduino-esp8266", "{name}");
            assert!(!report.valid, "{name}: called valid");
            assert!(report.images[0].valid, "{name}: eboot itself is fine");
            let app = &report.images[1];
            assert_eq!(
                (app.role.as_str(), app.offset, app.valid),
                ("app", ARDUINO_APP, false)
            );
            let p = &app.problems[0];
            assert_eq!(
                (p.code, p.offset),
                ("app_missing", Some(ARDUINO_APP)),
                "{name}"
            );
            assert!(
                p.message
                    .contains("the app at 0x1000 is missing or damaged")
                    && p.message.contains(reason),
                "{name}: {}",
                p.message
            );
            let path = write_temp(tmp.path(), "damaged.bin", &bytes);
            let cli = cli_agrees(&path, &lib);
            match thinger_patch_core::personalize(&bytes, &placeholder_request()) {
                Err(e @ Error::InvalidBeforePatch { .. }) => assert!(
                    e.to_string().contains("missing or damaged") && e.to_string().contains(reason),
                    "{name}: {e}"
                ),
                other => panic!(
                    "{name}: personalize did not refuse as invalid: {:?}",
                    other.err()
                ),
            }
            // esptool's blind spot: it checks eboot only, and calls the file valid.
            let esptool_says = match &esptool {
                Some(esptool) => {
                    let info = esptool.image_info(&path, Some("esp8266"));
                    assert!(
                        info.is_valid(),
                        "{name}: esptool (blind spot expected):\n{}",
                        info.describe()
                    );
                    esptool_summary(&info)
                }
                None => "not run".into(),
            };
            rows.push(Row {
                file: name,
                esptool: esptool_says,
                ours: ours_summary(&lib),
                cli,
                independent: "-".into(),
            });
        }
        // eboot alone as a converter writes it (no 0xAA padding): a valid image, named as eboot.
        let bare = &file[..eboot_end];
        let report = ours(bare).unwrap_or_else(|e| panic!("{rel}: bare eboot: {e}"));
        assert_eq!(report.format, "app-image");
        assert!(
            report.valid,
            "{rel}: bare eboot: {}",
            report.summary_of_problems()
        );
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("eboot") && n.contains("holds no app")),
            "{rel}: {:?}",
            report.notes
        );
    }
    print_table("Arduino images with a damaged app", &rows);
    // The eboot ELF of the Arduino core: valid, and named as eboot.
    if let Some(elf) = common::read_fixture("arduino-esp8266/eboot.elf") {
        let r = ours(&elf).expect("parses");
        assert!(r.valid, "{}", r.summary_of_problems());
        assert!(
            r.notes
                .iter()
                .any(|n| n.contains("eboot") && n.contains("holds no app")),
            "{:?}",
            r.notes
        );
    }
    // The intact fixtures stay valid, with no note about eboot.
    for rel in ARDUINO_FIXTURES {
        let r = ours(&common::read_fixture(rel).expect("present")).expect("parses");
        assert!(
            r.valid && !r.notes.iter().any(|n| n.contains("eboot")),
            "{rel}"
        );
    }
}

/// Rewrites entry `index` of the flipperhttp table in `merged` and recomputes its MD5 entry.
fn set_flipper_entry(merged: &mut [u8], index: usize, offset: u32, size: u32) {
    use md5::Digest as _;
    let e = FLIPPER_TABLE + index * 32;
    merged[e + 4..e + 8].copy_from_slice(&offset.to_le_bytes());
    merged[e + 8..e + 12].copy_from_slice(&size.to_le_bytes());
    let md5_at = FLIPPER_TABLE + 6 * 32;
    let md5: [u8; 16] = md5::Md5::digest(&merged[FLIPPER_TABLE..md5_at]).into();
    merged[md5_at + 16..md5_at + 32].copy_from_slice(&md5);
}

/// The flipperhttp merged image (ota_0 at 0x10000 in the file, ota_1 past its end) stays valid
/// with a note about ota_1. With the table's ota_0 entry moved past the end of the file (or to
/// 0xfff00000 with size 0xffffffff) and the real app corrupted, the file holds no bootable app:
/// invalid, with the table problem(s), and a note naming the app-like data at 0x10000.
#[test]
fn merged_flipperhttp_boot_app_outside_the_file_is_invalid() {
    let Some((merged, _, _, app)) = flipper_merged() else {
        return;
    };
    let tmp = common::temp_dir();
    let report = ours(&merged).expect("parses");
    assert!(report.valid, "{}", report.summary_of_problems());
    assert!(
        report
            .notes
            .iter()
            .any(|n| n.contains("app1 (ota_1) at 0x1f0000 lies past the end of the file")),
        "{:?}",
        report.notes
    );
    assert!(
        !report
            .notes
            .iter()
            .any(|n| n.contains("outside every partition"))
    );

    let ota0_entry = FLIPPER_TABLE + 2 * 32;
    for (offset, size, codes) in [
        (0x40_0000u32, 0x1E_0000u32, &["boot_app_missing"][..]),
        (
            0xFFF0_0000,
            0xFFFF_FFFF,
            &["partition_range", "boot_app_missing"][..],
        ),
    ] {
        let mut bad = merged.clone();
        set_flipper_entry(&mut bad, 2, offset, size);
        // The real app data, now in no partition, corrupted too (its last segment byte).
        let last = common::walk_app_image(&app, false);
        let &(_, data, len) = last.segments.last().expect("segments");
        common::flip_byte(&mut bad, FLIPPER_APP + data + len - 1);
        let name = format!("ota_0 at {offset:#x} size {size:#x}");
        let lib = ours(&bad);
        let report = lib.as_ref().expect("parses");
        assert!(!report.valid, "{name}: called valid");
        let t = report.partition_table.as_ref().expect("table");
        let found: Vec<(&str, Option<usize>)> =
            t.problems.iter().map(|p| (p.code, p.offset)).collect();
        let expected: Vec<(&str, Option<usize>)> =
            codes.iter().map(|&c| (c, Some(ota0_entry))).collect();
        assert_eq!(found, expected, "{name}");
        assert!(
            report
                .notes
                .iter()
                .any(|n| n.contains("0x10000") && n.contains("outside every partition")),
            "{name}: {:?}",
            report.notes
        );
        assert_eq!(
            report.images.len(),
            1,
            "{name}: only the bootloader is an image"
        );
        let path = write_temp(tmp.path(), "no-boot-app.bin", &bad);
        cli_agrees(&path, &lib);
        let out = common::run_cli(&["verify", path.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("problem (boot_app_missing)")
                && stdout.contains(&format!("{ota0_entry:#x}")),
            "{name}: {stdout}"
        );
        assert!(matches!(
            thinger_patch_core::personalize(&bad, &placeholder_request()),
            Err(Error::InvalidBeforePatch { .. })
        ));
    }
}

/// `.bin.gz` of a real image: one stream is fine; two members, trailing bytes and a gzip inside
/// the gzip are refused with the offset and what to do, never cut short or called encrypted.
#[test]
fn gzip_of_real_firmware_must_be_one_stream() {
    use thinger_patch_core::format::gzip::compress;
    let Some(file) = common::read_fixture("esphome/esp8266-core3.bin") else {
        return;
    };
    let gz = compress(&file);
    let fw = Firmware::parse(&gz).expect("one stream parses");
    assert!(fw.verify().valid && fw.data() == &file[..]);

    let two = [gz.clone(), compress(&file)].concat();
    assert_eq!(
        Firmware::parse(&two).err(),
        Some(Error::GzipMembers { offset: gz.len() })
    );
    let half = [gz.clone(), compress(&file[..0x1000])].concat();
    assert_eq!(
        Firmware::parse(&half).err(),
        Some(Error::GzipMembers { offset: gz.len() })
    );
    let trailing = [gz.clone(), vec![0; 16]].concat();
    assert_eq!(
        Firmware::parse(&trailing).err(),
        Some(Error::GzipTrailing {
            offset: gz.len(),
            len: 16
        })
    );
    let twice = compress(&gz);
    assert_eq!(Firmware::parse(&twice).err(), Some(Error::GzipNested));

    let tmp = common::temp_dir();
    for (name, bytes, says) in [
        (
            "two.bin.gz",
            &two,
            format!("second gzip member starts at offset {:#x}", gz.len()),
        ),
        ("twice.bin.gz", &twice, "compressed twice".to_string()),
    ] {
        let path = write_temp(tmp.path(), name, bytes);
        let out = common::run_cli(&["verify", path.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(&says) && !stderr.contains("encrypted"),
            "{name}: {stderr}"
        );
    }
}

/// The header of a real signed ESP32 app with its segment count set to 0 (checksum and SHA-256
/// recomputed), followed by that app's real Secure Boot v1 signature block: an invalid image with
/// 0 segments, not "signed: Secure Boot v1".
#[test]
fn zero_segment_header_before_a_real_signature_is_not_signed() {
    let Some(signed) = common::read_fixture("esptool/secure/hello-world-signed.bin") else {
        return;
    };
    // The intact file: signed (v1), at 0x2ffb0.
    let r = ours(&signed).expect("parses");
    assert!(r.images[0].signature.is_some());
    let mut b = signed[..24].to_vec();
    b[1] = 0;
    b.resize(0x1F, 0);
    b.push(0xEF); // the XOR seed: no segment data
    let digest = common::sha256(&b);
    b.extend_from_slice(&digest);
    b.extend_from_slice(&signed[0x2FFB0..0x2FFB0 + 68]);
    let lib = ours(&b);
    let report = lib.as_ref().expect("parses");
    assert!(!report.valid);
    let img = &report.images[0];
    assert_eq!(img.signature, None, "called signed");
    assert!(
        img.problems.iter().any(|p| p.code == "no_segments"),
        "{:?}",
        img.problems
    );
    let tmp = common::temp_dir();
    let path = write_temp(tmp.path(), "zero-segments.bin", &b);
    cli_agrees(&path, &lib);
}
