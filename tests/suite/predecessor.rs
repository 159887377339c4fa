//! Firmware built the way the predecessor script's users build it: placeholder strings, no slot
//! records (examples/c-firmware/common/legacy_app.c, compiled by build.sh with the real
//! cross compilers in both generations: `esp8266-legacy-2024.bin`, 16-character placeholders
//! where CLOUDNAM is the user; `esp32c3-legacy-2025.bin`, 24-character placeholders with
//! DEVCUSER, CLOUDNAM as the host, and the 8-character time/place and 32-character weather-key
//! placeholders). With no `--placeholder` flag, `inspect`, `patch`, `flash` and the guided mode
//! find them (the `pythonpatcher` convention), and every output passes the independent checks:
//! esptool image-info, the XOR checksum and SHA-256 / v2 CRC recomputed here, and only the
//! placeholders' bytes (plus those integrity fields) changed.
#![cfg(unix)]

use crate::common;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use thinger_patch_test_kit::rom_loader::{Chip, Config, Sim};

const GEN_2024: &str = "examples/c-firmware/prebuilt/esp8266-legacy-2024.bin";
const GEN_2025: &str = "examples/c-firmware/prebuilt/esp32c3-legacy-2025.bin";
const TABLE: &str = "examples/c-firmware/prebuilt/esp32c3-partition-table.bin";
const PASSWORD: &str = "legacy-pw-CANARY";
const CREDENTIALS: &str = "cred-CANARY-77";

fn repo(rel: &str) -> PathBuf {
    common::repo_root().join(rel)
}

fn tp(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(common::cli_path());
    c.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", dir)
        .env("PW", PASSWORD)
        .env("CREDS", CREDENTIALS)
        .env_remove("ESPFLASH_PORT")
        .stdin(Stdio::null());
    for (k, v) in envs {
        c.env(k, v);
    }
    let o = c.output().expect("running thinger-patch");
    for s in [PASSWORD, CREDENTIALS] {
        let shown = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(!shown.contains(s), "a secret was shown:\n{shown}");
    }
    o
}

/// Each generation: (image, chip, values as --set/--set-env arguments, placeholder literal ->
/// the bytes it must hold afterwards).
struct Generation {
    rel: &'static str,
    chip: &'static str,
    args: Vec<&'static str>,
    filled: Vec<(&'static str, Vec<u8>)>,
}

fn nul_padded(value: &str, len: usize) -> Vec<u8> {
    let mut v = value.as_bytes().to_vec();
    v.resize(len, 0);
    v
}

fn generations() -> Vec<Generation> {
    vec![
        Generation {
            rel: GEN_2024,
            chip: "esp8266",
            args: vec![
                "--set",
                "wifi_ssid=OldNet",
                "--set-env",
                "wifi_password=PW",
                "--set",
                "thinger_user=alice",
                "--set",
                "thinger_device=shed_2",
                "--set-env",
                "thinger_credentials=CREDS",
            ],
            filled: vec![
                ("WIFISSID        ", nul_padded("OldNet", 16)),
                ("WIFIPASS                ", nul_padded(PASSWORD, 24)),
                // In 2024 binaries CLOUDNAM is the Thinger.io user.
                ("CLOUDNAM        ", nul_padded("alice", 16)),
                ("DEVCNAME        ", nul_padded("shed_2", 16)),
                ("DEVCCRED        ", nul_padded(CREDENTIALS, 16)),
            ],
        },
        Generation {
            rel: GEN_2025,
            chip: "esp32c3",
            args: vec![
                "--set",
                "wifi_ssid=NewNet",
                "--set-env",
                "wifi_password=PW",
                "--set",
                "thinger_user=bob",
                "--set",
                "thinger_host=my.thinger.example",
                "--set",
                "thinger_device=barn_7",
                "--set-env",
                "thinger_credentials=CREDS",
                "--set",
                "tz_offset=3600",
                "--set",
                "dst_offset=3600",
                "--set",
                "latitude=48.7356",
                "--set",
                "longitude=-9.1829",
                "--set",
                "owm_api_key=0123456789abcdef0123456789abcdef",
            ],
            filled: vec![
                ("WIFISSID                ", nul_padded("NewNet", 24)),
                ("WIFIPASS                ", nul_padded(PASSWORD, 24)),
                ("DEVCCRED                ", nul_padded(CREDENTIALS, 24)),
                ("DEVCUSER                ", nul_padded("bob", 24)),
                // With DEVCUSER present, CLOUDNAM is the host.
                (
                    "CLOUDNAM                ",
                    nul_padded("my.thinger.example", 24),
                ),
                ("DEVCNAME                ", nul_padded("barn_7", 24)),
                ("TZ_OFF  ", nul_padded("3600", 8)),
                ("DST_OFF ", nul_padded("3600", 8)),
                ("LATITD  ", nul_padded("48.7356", 8)),
                ("LONGTD  ", nul_padded("-9.1829", 8)),
                (
                    "OWMAPI                          ",
                    nul_padded("0123456789abcdef0123456789abcdef", 32),
                ),
            ],
        },
    ]
}

/// The independent checks: esptool's verdict, the walker's XOR checksum and SHA-256 (ESP32) or
/// v2 CRC (ESP8266), and nothing changed but the placeholders and the integrity fields.
fn assert_patched(g: &Generation, original: &[u8], out: &Path) {
    let patched = std::fs::read(out).unwrap();
    assert_eq!(patched.len(), original.len());
    if let Some(esptool) = common::esptool() {
        esptool.image_info(out, Some(g.chip)).assert_valid(g.rel);
    }
    let mut allowed = Vec::new();
    for (literal, want) in &g.filled {
        let at = common::find_all(original, literal.as_bytes());
        assert_eq!(at.len(), 1, "{literal:?} occurs once in {}", g.rel);
        assert_eq!(
            &patched[at[0]..at[0] + want.len()],
            want.as_slice(),
            "{literal:?}"
        );
        allowed.push(at[0]..at[0] + want.len());
    }
    let w = common::walk_app_image(&patched, false);
    assert!(w.checksum_ok(), "XOR checksum of {}", g.rel);
    if g.chip == "esp8266" {
        assert!(common::v2_crc_ok(&patched), "v2 CRC of {}", g.rel);
    } else {
        assert_eq!(w.hash_ok(), Some(true), "SHA-256 of {}", g.rel);
    }
    // Every other changed byte is an integrity field near the end of the image.
    let tail = original.len().saturating_sub(64);
    for (i, (a, b)) in original.iter().zip(&patched).enumerate() {
        if a != b && !allowed.iter().any(|r| r.contains(&i)) {
            assert!(
                i >= tail,
                "{}: byte {i:#x} changed outside every placeholder",
                g.rel
            );
        }
    }
}

#[test]
fn both_generations_inspect_and_patch_with_no_placeholder_flag() {
    let dir = common::temp_dir();
    for g in generations() {
        let input = repo(g.rel);
        let original = std::fs::read(&input).unwrap();
        let o = tp(
            dir.path(),
            &["inspect", input.to_str().unwrap(), "--json"],
            &[],
        );
        assert!(o.status.success(), "{}", common::describe_output(&o));
        let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let text = json.to_string();
        assert!(text.contains("pythonpatcher"), "{text}");
        assert!(!text.contains(PASSWORD));
        let out = dir.path().join(format!("{}.out.bin", g.chip));
        let mut args = vec![
            "patch",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ];
        args.extend(g.args.iter().copied());
        let o = tp(dir.path(), &args, &[]);
        assert!(o.status.success(), "{}", common::describe_output(&o));
        assert_patched(&g, &original, &out);
    }
}

#[test]
fn both_generations_flash_with_no_placeholder_flag() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let dir = common::temp_dir();
    for g in generations() {
        let input = repo(g.rel);
        let want_file = dir.path().join(format!("{}.want.bin", g.chip));
        let mut args = vec![
            "patch",
            input.to_str().unwrap(),
            "-o",
            want_file.to_str().unwrap(),
        ];
        args.extend(g.args.iter().copied());
        assert!(tp(dir.path(), &args, &[]).status.success());
        let want = std::fs::read(&want_file).unwrap();
        let (config, at) = if g.chip == "esp8266" {
            // A v2 image runs from 0x1000 (the SDK boot loader's place is 0x0).
            (Config::new(Chip::Esp8266), 0x1000)
        } else {
            let table = std::fs::read(repo(TABLE)).unwrap();
            (
                Config::new(Chip::Esp32c3).with_flash(0x8000, &table),
                0x10000,
            )
        };
        let sim = Sim::start(config);
        let args = common::sim_flash_args(
            input.to_str().unwrap(),
            sim.port(),
            &g.args,
            &["--no-stub", "--json"],
        );
        let o = tp(
            dir.path(),
            &args,
            &[("THINGER_PATCH_ESPTOOL", esptool.program.to_str().unwrap())],
        );
        let flashed = sim.finish();
        assert!(o.status.success(), "{}", common::describe_output(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["writes"][0]["offset"].as_u64(), Some(at as u64), "{v}");
        assert_eq!(
            &flashed.flash[at..at + want.len()],
            want.as_slice(),
            "{}",
            g.rel
        );
    }
}
