//! Legacy placeholders: firmware without slot records that holds a literal such as `Your SSID`
//! where a value belongs (the ESP8266 NONOS SDK example ELF from esptool's test suite).
//!
//! - `--placeholder KEY=LITERAL` + a value replaces exactly the literal's bytes (NUL-padded, or
//!   space-padded with `--pad space`), every other byte stays; the patched ELF converts into a
//!   valid ESP8266 v2 image, equal to the converted original patched through the image route;
//! - a value longer than the literal is refused, naming the key, the capacity and the length;
//! - a literal that occurs twice is refused, listing every occurrence with its file offset;
//! - a config file's `[placeholders]` table works like `--placeholder`.
//!
//! Needs the shared fixtures and esptool (skips without them, fails under `CI=true`).

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const NONOS_ELF: &str = "esptool/esp8266-nonossdkv12-example.elf";
const SSID_LIT: &str = "Your SSID";
const PASS_LIT: &str = "Your Password Here";

fn tp(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(common::cli_path());
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running thinger-patch")
}

fn tp_ok(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = tp(dir, args, env);
    assert!(
        out.status.success(),
        "thinger-patch {} failed:\n{}",
        args.join(" "),
        common::describe_output(&out)
    );
    out
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// The only offset of `lit` in `bytes`.
fn only_offset(bytes: &[u8], lit: &str) -> usize {
    let all = common::find_all(bytes, lit.as_bytes());
    assert_eq!(all.len(), 1, "{lit:?} occurs at {all:#x?}");
    all[0]
}

/// `value` followed by `pad` bytes up to `len`.
fn filled(value: &str, len: usize, pad: u8) -> Vec<u8> {
    let mut v = value.as_bytes().to_vec();
    assert!(v.len() <= len);
    v.resize(len, pad);
    v
}

/// The ELF `original` with `lit_at` overwritten by `new`, byte for byte.
fn expected(original: &[u8], edits: &[(usize, &[u8])]) -> Vec<u8> {
    let mut e = original.to_vec();
    for (at, new) in edits {
        e[*at..*at + new.len()].copy_from_slice(new);
    }
    e
}

fn diff(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len(), "lengths differ");
    (0..a.len()).filter(|&i| a[i] != b[i]).collect()
}

fn assert_valid_v2(esptool: &common::Esptool, path: &Path, what: &str) {
    esptool.image_info(path, Some("esp8266")).assert_valid(what);
    let bytes = fs::read(path).unwrap();
    assert_eq!(bytes[0], 0xEA, "{what}: not a v2 image");
    assert!(
        common::walk_app_image(&bytes, false).checksum_ok(),
        "{what}: checksum"
    );
    assert!(common::v2_crc_ok(&bytes), "{what}: v2 CRC");
}

const SSID: &str = "HomeNet";
const PASS: &str = "pw-canary-5521";

#[test]
fn nonos_elf_placeholders_are_replaced_in_place_nul_padded() {
    let Some(src) = common::fixture(NONOS_ELF) else {
        return;
    };
    let Some(esptool) = common::esptool() else {
        return;
    };
    let tmp = common::temp_dir();
    let dir = tmp.path();
    let original = fs::read(&src).unwrap();
    let elf = common::write_file(dir, "nonos.elf", &original);
    let ssid_at = only_offset(&original, SSID_LIT);
    let pass_at = only_offset(&original, PASS_LIT);

    let out = dir.join("patched.elf");
    let run = tp_ok(
        dir,
        &[
            "patch",
            s(&elf),
            "--placeholder",
            &format!("wifi_ssid={SSID_LIT}"),
            "--placeholder",
            &format!("wifi_password={PASS_LIT}"),
            "--set-env",
            "wifi_ssid=LEGACY_SSID",
            "--set-env",
            "wifi_password=LEGACY_PASS",
            "-o",
            s(&out),
        ],
        &[("LEGACY_SSID", SSID), ("LEGACY_PASS", PASS)],
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!all.contains(PASS), "the password is shown:\n{all}");
    let patched = fs::read(&out).unwrap();
    let ssid_new = filled(SSID, SSID_LIT.len(), 0);
    let pass_new = filled(PASS, PASS_LIT.len(), 0);
    let want = expected(&original, &[(ssid_at, &ssid_new), (pass_at, &pass_new)]);
    assert!(
        patched == want,
        "the patched ELF differs from the original with only the literals replaced, at {:#x?}",
        diff(&patched, &want)
    );
    // The input is untouched; the output holds a secret (wifi_password looks secret).
    assert_eq!(fs::read(&elf).unwrap(), original);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "an output holding a secret placeholder value");
    }

    // The patched ELF converts to a valid v2 image ...
    let img = dir.join("patched.bin");
    esptool
        .elf2image(&out, &img, "esp8266", &["--version", "2"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_valid_v2(&esptool, &img, "v2 image of the patched ELF");
    let img_bytes = fs::read(&img).unwrap();
    assert_eq!(
        common::find_all(&img_bytes, SSID_LIT.as_bytes()),
        Vec::<usize>::new()
    );
    assert_eq!(common::find_all(&img_bytes, &ssid_new).len(), 1);

    // ... equal to the converted original patched as an image.
    let orig_img = dir.join("orig.bin");
    esptool
        .elf2image(&elf, &orig_img, "esp8266", &["--version", "2"])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_valid_v2(&esptool, &orig_img, "v2 image of the original ELF");
    let img_route = dir.join("orig.patched.bin");
    tp_ok(
        dir,
        &[
            "patch",
            s(&orig_img),
            "--placeholder",
            &format!("wifi_ssid={SSID_LIT}"),
            "--placeholder",
            &format!("wifi_password={PASS_LIT}"),
            "--set-env",
            "wifi_ssid=LEGACY_SSID",
            "--set-env",
            "wifi_password=LEGACY_PASS",
            "-o",
            s(&img_route),
        ],
        &[("LEGACY_SSID", SSID), ("LEGACY_PASS", PASS)],
    );
    assert_valid_v2(&esptool, &img_route, "image route");
    let route = fs::read(&img_route).unwrap();
    assert!(
        route == img_bytes,
        "ELF route and image route differ at {:#x?}",
        diff(&route, &img_bytes)
    );
}

#[test]
fn pad_space_fills_with_spaces() {
    let Some(src) = common::fixture(NONOS_ELF) else {
        return;
    };
    let tmp = common::temp_dir();
    let dir = tmp.path();
    let original = fs::read(&src).unwrap();
    let elf = common::write_file(dir, "nonos.elf", &original);
    let ssid_at = only_offset(&original, SSID_LIT);
    let out = dir.join("spaced.elf");
    tp_ok(
        dir,
        &[
            "patch",
            s(&elf),
            "--placeholder",
            &format!("wifi_ssid={SSID_LIT}"),
            "--set",
            &format!("wifi_ssid={SSID}"),
            "--pad",
            "space",
            "-o",
            s(&out),
        ],
        &[],
    );
    let patched = fs::read(&out).unwrap();
    let want = expected(&original, &[(ssid_at, &filled(SSID, SSID_LIT.len(), b' '))]);
    assert!(
        patched == want,
        "--pad space: differs at {:#x?}",
        diff(&patched, &want)
    );
    // The NUL that ended the literal in the original ends the value now.
    assert_eq!(patched[ssid_at + SSID_LIT.len()], 0);
    // A value exactly as long as the literal needs no padding at all.
    let full = "ABCDEFGHI";
    assert_eq!(full.len(), SSID_LIT.len());
    let out2 = dir.join("full.elf");
    tp_ok(
        dir,
        &[
            "patch",
            s(&elf),
            "--placeholder",
            &format!("wifi_ssid={SSID_LIT}"),
            "--set",
            &format!("wifi_ssid={full}"),
            "-o",
            s(&out2),
        ],
        &[],
    );
    let want = expected(&original, &[(ssid_at, full.as_bytes())]);
    assert!(fs::read(&out2).unwrap() == want);
}

/// Every decimal number in `text`.
fn numbers(text: &str) -> BTreeSet<u64> {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|t| !t.is_empty())
        .filter_map(|t| t.parse().ok())
        .collect()
}

#[test]
fn value_longer_than_the_literal_is_refused() {
    let Some(src) = common::fixture(NONOS_ELF) else {
        return;
    };
    let tmp = common::temp_dir();
    let dir = tmp.path();
    let elf = common::write_file(dir, "nonos.elf", &fs::read(&src).unwrap());
    let out = dir.join("never.elf");
    let long = "TooLongSSID"; // 11 bytes, the literal holds 9
    let run = tp(
        dir,
        &[
            "patch",
            s(&elf),
            "--placeholder",
            &format!("wifi_ssid={SSID_LIT}"),
            "--set-env",
            "wifi_ssid=LONG_SSID",
            "-o",
            s(&out),
        ],
        &[("LONG_SSID", long)],
    );
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        common::describe_output(&run)
    );
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("wifi_ssid"), "names the key: {err}");
    let n = numbers(&err);
    assert!(
        n.contains(&(SSID_LIT.len() as u64)) && n.contains(&(long.len() as u64)),
        "names the capacity ({}) and the length ({}): {err}",
        SSID_LIT.len(),
        long.len()
    );
    assert!(!out.exists(), "an output was written");

    // The password literal is 18 bytes: a 19-byte password is refused without showing it.
    let pw = "pw-canary-19-bytes!";
    assert_eq!(pw.len(), 19);
    let run = tp(
        dir,
        &[
            "patch",
            s(&elf),
            "--placeholder",
            &format!("wifi_password={PASS_LIT}"),
            "--set-env",
            "wifi_password=LONG_PASS",
            "-o",
            s(&out),
        ],
        &[("LONG_PASS", pw)],
    );
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        common::describe_output(&run)
    );
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(err.contains("wifi_password"), "{err}");
    let n = numbers(&err);
    assert!(n.contains(&18) && n.contains(&19), "{err}");
    assert!(!err.contains(pw) && !String::from_utf8_lossy(&run.stdout).contains(pw));
    assert!(!out.exists(), "an output was written");
}

/// An ESP32-C3 app image (valid checksum and SHA-256) whose DROM segment holds `lit` twice.
/// Returns the image and the file offsets of the two copies.
fn image_with_two_copies(lit: &[u8]) -> (Vec<u8>, [usize; 2]) {
    let mut img = vec![0xE9, 2, 0x02, 0x20, 0x00, 0x00, 0x38, 0x40]; // entry 0x40380000
    let mut ext = [0u8; 16];
    ext[0] = 0xEE; // WP pin disabled
    ext[4] = 5; // chip id: ESP32-C3
    ext[9] = 0xC7; // max chip revision (full) 199, little-endian u16 at ext[9..11]
    ext[15] = 1; // SHA-256 appended
    img.extend_from_slice(&ext);
    // DROM: some text, the literal, more text, the literal again.
    let mut drom = b"boot banner\0".to_vec();
    drom.resize(0x40, b'.');
    let first = drom.len();
    drom.extend_from_slice(lit);
    drom.extend_from_slice(b"\0other constant data\0");
    drom.resize(0x100, 0x5A);
    let second = drom.len();
    drom.extend_from_slice(lit);
    drom.push(0);
    while !drom.len().is_multiple_of(4) {
        drom.push(0);
    }
    let iram: Vec<u8> = vec![0x01, 0x00, 0x01, 0x00, 0x82, 0x80, 0x01, 0x00]; // nop; nop; ret; nop
    let mut offsets = [0; 2];
    let mut checksum_data: Vec<&[u8]> = Vec::new();
    for (addr, data) in [(0x3C00_0020u32, &drom[..]), (0x4038_0000u32, &iram[..])] {
        img.extend_from_slice(&addr.to_le_bytes());
        img.extend_from_slice(&(data.len() as u32).to_le_bytes());
        if addr == 0x3C00_0020 {
            offsets = [img.len() + first, img.len() + second];
        }
        img.extend_from_slice(data);
        checksum_data.push(data);
    }
    while img.len() % 16 != 15 {
        img.push(0);
    }
    img.push(common::xor_checksum(&checksum_data));
    let digest = common::sha256(&img);
    img.extend_from_slice(&digest);
    (img, offsets)
}

#[test]
fn literal_occurring_twice_is_refused_with_every_offset() {
    let lit = "WIFISSID        ";
    let (img, offsets) = image_with_two_copies(lit.as_bytes());
    let tmp = common::temp_dir();
    let dir = tmp.path();
    let file = common::write_file(dir, "twice.bin", &img);
    // The crafted image is valid (so the refusal is about the duplicate, nothing else).
    let walked = common::walk_app_image(&img, false);
    assert!(walked.is_valid(), "{walked:?}");
    assert_eq!(common::find_all(&img, lit.as_bytes()), offsets.to_vec());
    if let Some(esptool) = common::esptool() {
        esptool
            .image_info(&file, Some("esp32c3"))
            .assert_valid("the crafted image");
    }
    let v = tp(dir, &["verify", s(&file)], &[]);
    assert!(v.status.success(), "{}", common::describe_output(&v));

    let out = dir.join("never.bin");
    let run = tp(
        dir,
        &[
            "patch",
            s(&file),
            "--placeholder",
            &format!("wifi_ssid={lit}"),
            "--set",
            "wifi_ssid=Home",
            "-o",
            s(&out),
        ],
        &[],
    );
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        common::describe_output(&run)
    );
    let err = String::from_utf8_lossy(&run.stderr).to_lowercase();
    assert!(err.contains("wifi_ssid"), "names the key: {err}");
    for off in offsets {
        assert!(
            err.contains(&format!("{off:#x}")),
            "the error must list file offset {off:#x}: {err}"
        );
    }
    assert!(!out.exists(), "an output was written");
    assert_eq!(fs::read(&file).unwrap(), img, "the input changed");

    // inspect --placeholder shows both occurrences too.
    let run = tp(
        dir,
        &[
            "inspect",
            s(&file),
            "--json",
            "--placeholder",
            &format!("wifi_ssid={lit}"),
        ],
        &[],
    );
    let doc: serde_json::Value = serde_json::from_slice(&run.stdout)
        .unwrap_or_else(|e| panic!("inspect --json: {e}\n{}", common::describe_output(&run)));
    let occ = &doc["placeholders"][0]["occurrences"];
    let found: Vec<u64> = occ
        .as_array()
        .expect("occurrences")
        .iter()
        .map(|o| o[1].as_u64().expect("file offset"))
        .collect();
    assert_eq!(found, offsets.iter().map(|&o| o as u64).collect::<Vec<_>>());
}

#[test]
fn placeholders_table_in_config_works_like_the_option() {
    let Some(src) = common::fixture(NONOS_ELF) else {
        return;
    };
    let tmp = common::temp_dir();
    let dir = tmp.path();
    let original = fs::read(&src).unwrap();
    let elf = common::write_file(dir, "nonos.elf", &original);
    let cfg = common::write_file(
        dir,
        "thinger-patch.toml",
        format!(
            "[placeholders]\nwifi_ssid = \"{SSID_LIT}\"\nwifi_password = \"{PASS_LIT}\"\n\n\
             [profiles.home]\nwifi_ssid = \"{SSID}\"\nwifi_password = {{ env = \"HOME_PW\" }}\n"
        )
        .as_bytes(),
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&cfg, fs::Permissions::from_mode(0o600)).unwrap();
    }
    let via_config = dir.join("via-config.elf");
    let run = tp_ok(
        dir,
        &[
            "patch",
            s(&elf),
            "--config",
            s(&cfg),
            "--profile",
            "home",
            "-o",
            s(&via_config),
        ],
        &[("HOME_PW", PASS)],
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!all.contains(PASS), "{all}");
    let via_option = dir.join("via-option.elf");
    tp_ok(
        dir,
        &[
            "patch",
            s(&elf),
            "--placeholder",
            &format!("wifi_ssid={SSID_LIT}"),
            "--placeholder",
            &format!("wifi_password={PASS_LIT}"),
            "--set",
            &format!("wifi_ssid={SSID}"),
            "--set-env",
            "wifi_password=HOME_PW",
            "-o",
            s(&via_option),
        ],
        &[("HOME_PW", PASS)],
    );
    let a = fs::read(&via_config).unwrap();
    let b = fs::read(&via_option).unwrap();
    assert!(a == b, "config and option differ at {:#x?}", diff(&a, &b));
    let want = expected(
        &original,
        &[
            (
                only_offset(&original, SSID_LIT),
                &filled(SSID, SSID_LIT.len(), 0),
            ),
            (
                only_offset(&original, PASS_LIT),
                &filled(PASS, PASS_LIT.len(), 0),
            ),
        ],
    );
    assert!(a == want, "differs at {:#x?}", diff(&a, &want));

    // A --placeholder for the same key overrides the table's literal: a wrong literal now
    // makes the run fail, proving the option won.
    let run = tp(
        dir,
        &[
            "patch",
            s(&elf),
            "--config",
            s(&cfg),
            "--profile",
            "home",
            "--placeholder",
            "wifi_ssid=No Such Literal",
            "-o",
            s(&dir.join("never.elf")),
        ],
        &[("HOME_PW", PASS)],
    );
    assert_eq!(
        run.status.code(),
        Some(1),
        "{}",
        common::describe_output(&run)
    );
    assert!(String::from_utf8_lossy(&run.stderr).contains("wifi_ssid"));
    assert!(!dir.join("never.elf").exists());
}
