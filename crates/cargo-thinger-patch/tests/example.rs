//! `cargo thinger-patch` on the real esp-hal example (examples/esp32c3-rust), built into the
//! same target dir as the CI hook scripts/ci.d/30-esp32c3-rust-firmware.sh
//! (`<repo>/target/esp32c3-rust`), so after the hook nothing needs compiling.
//!
//! Skipped with a message when the Rust target riscv32imc-unknown-none-elf or esptool is missing;
//! under `CI=true` that is a failure instead.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

const TRIPLE: &str = "riscv32imc-unknown-none-elf";
const BIN: &str = "thinger-esp32c3";
/// Secrets of the two profiles, given through the environment variables the example's
/// thinger-patch.toml names. They must never appear in any output.
const SECRETS: &[(&str, &str)] = &[
    ("KITCHEN_WIFI_PASSWORD", "kitchen-canary-pw1"),
    ("KITCHEN_THINGER_CREDENTIALS", "kitchen-canary-cred$(x)"),
    ("GARAGE_WIFI_PASSWORD", "garage-canary-pw2"),
    ("GARAGE_THINGER_CREDENTIALS", "garage-canary-cred&y"),
];
const SLOT_MAGIC: &[u8] = b"TPSLOT\xA5\x5A";

/// The tests share one target dir and write the same output files: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn repo() -> PathBuf {
    // crates/cargo-thinger-patch -> the repository root.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn example() -> PathBuf {
    repo().join("examples/esp32c3-rust")
}

fn target_dir() -> PathBuf {
    repo().join("target/esp32c3-rust")
}

fn out_dir() -> PathBuf {
    target_dir().join(TRIPLE).join("release")
}

fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

fn absent(what: &str) -> bool {
    assert!(
        !in_ci(),
        "{what} is absent, and CI=true makes this a failure, not a skip (scripts/setup-test-env.sh installs it)"
    );
    thinger_patch_test_kit::skip(&format!("{what} is absent"));
    false
}

fn real_cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The example's Rust target is installed (looked up in the sysroot, with or without rustup).
fn toolchain_ready() -> bool {
    let out = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .current_dir(example())
        .output();
    let ready = out.is_ok_and(|o| {
        let sysroot = String::from_utf8_lossy(&o.stdout).trim().to_string();
        o.status.success()
            && Path::new(&sysroot)
                .join("lib/rustlib")
                .join(TRIPLE)
                .is_dir()
    });
    ready
        || absent(&format!(
            "the Rust target {TRIPLE} (rustup target add {TRIPLE})"
        ))
}

fn esptool() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("THINGER_PATCH_ESPTOOL").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let venv = repo().join(".venv/bin/esptool");
    if venv.is_file() {
        return Some(venv);
    }
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("esptool"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        absent("esptool");
    }
    found
}

/// A `cargo` stand-in that records cargo's stdout (the JSON messages) in `log`.
fn recording_cargo(dir: &Path, log: &Path) -> PathBuf {
    let script = dir.join("cargo-recorder.sh");
    fs::write(
        &script,
        format!(
            "#!/usr/bin/env bash\nset -o pipefail\n\"$REAL_CARGO\" \"$@\" | tee -a '{}'\n",
            log.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    }
    script
}

/// Runs `cargo thinger-patch ARGS` the way cargo does (`cargo-thinger-patch thinger-patch ARGS`)
/// from the example's folder, so its .cargo/config.toml and thinger-patch.toml apply.
fn cargo_thinger_patch(args: &[&str], cargo: Option<&Path>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-thinger-patch"));
    cmd.arg("thinger-patch")
        .args(args)
        // Extra cargo arguments go after `--`; the committed lock file must do, as in CI.
        .args(["--", "--locked"])
        .current_dir(example())
        .env("CARGO_TARGET_DIR", target_dir())
        .env("REAL_CARGO", real_cargo())
        .stdin(Stdio::null());
    if let Some(c) = cargo {
        cmd.env("CARGO", c);
    }
    for (var, value) in SECRETS {
        cmd.env(var, value);
    }
    cmd.output().expect("running cargo-thinger-patch")
}

fn describe(out: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn assert_no_secret(out: &Output) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (var, value) in SECRETS {
        assert!(
            !text.contains(value),
            "the value of {var} was printed:\n{}",
            describe(out)
        );
    }
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `(start, end, key, value)` of every slot record in `bytes` (an independent reader of
/// docs/slot-format.md §1).
fn slot_records(bytes: &[u8]) -> Vec<(usize, usize, String, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(p) = bytes[i..]
        .windows(SLOT_MAGIC.len())
        .position(|w| w == SLOT_MAGIC)
    {
        let at = i + p;
        let cap = u16::from_le_bytes([bytes[at + 12], bytes[at + 13]]) as usize;
        let key_len = bytes[at + 14] as usize;
        let key = String::from_utf8_lossy(&bytes[at + 16..at + 16 + key_len]).into_owned();
        let v = (cap + 4) & !3;
        let field = &bytes[at + 48..at + 48 + v];
        let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
        let value = String::from_utf8_lossy(&field[..end]).into_owned();
        out.push((at, at + 48 + v, key, value));
        i = at + 48 + v;
    }
    out
}

fn value_of(bytes: &[u8], key: &str) -> String {
    slot_records(bytes)
        .into_iter()
        .find(|r| r.2 == key)
        .unwrap_or_else(|| panic!("no slot {key}"))
        .3
}

fn esptool_valid(esptool: &Path, image: &Path) {
    let out = Command::new(esptool)
        .args(["--chip", "esp32c3", "image-info"])
        .arg(image)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .expect("running esptool");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && text.contains("Checksum: ")
            && !text.contains("invalid")
            && text.contains("Validation hash: ")
            && text.contains("(valid)"),
        "esptool image-info {}:\n{}",
        image.display(),
        describe(&out)
    );
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", describe(out)))
}

#[test]
fn two_profiles_from_one_build_then_a_fresh_profile_switch() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !toolchain_ready() {
        return;
    }
    let Some(esptool) = esptool() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let cargo_elf = out_dir().join(BIN);

    // 1: build (a no-op after the CI hook) and write both profiles.
    let first = cargo_thinger_patch(
        &[
            "--release",
            "--profile",
            "kitchen",
            "--profile",
            "garage",
            "--json",
        ],
        None,
    );
    assert!(first.status.success(), "{}", describe(&first));
    assert_no_secret(&first);
    let elf_after_first = fs::read(&cargo_elf).unwrap();
    // The cargo artifact is the unpersonalised build: every slot still holds its default.
    let ssid = value_of(&elf_after_first, "wifi_ssid");
    assert_eq!(ssid, "", "the cargo artifact was personalised");
    let images: Vec<(PathBuf, Vec<u8>)> = ["kitchen", "garage"]
        .iter()
        .map(|p| {
            let path = out_dir().join(format!("{BIN}.{p}.bin"));
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path, bytes)
        })
        .collect();

    // Both valid for esptool and for thinger-patch.
    for (path, bytes) in &images {
        esptool_valid(&esptool, path);
        let report = thinger_patch_core::Firmware::parse(bytes).unwrap().verify();
        assert!(report.valid, "{}: {report:?}", path.display());
        #[cfg(unix)]
        {
            assert_eq!(mode(path), 0o600, "{}", path.display());
            let elf = path.with_extension("elf");
            assert_eq!(mode(&elf), 0o600, "{}", elf.display());
        }
    }

    // The values are in.
    let (kitchen, garage) = (&images[0].1, &images[1].1);
    assert_eq!(value_of(kitchen, "wifi_ssid"), "KitchenWiFi");
    assert_eq!(value_of(garage, "wifi_ssid"), "GarageWiFi");
    assert_eq!(value_of(kitchen, "thinger_device"), "kitchen_sensor");
    assert_eq!(value_of(garage, "thinger_device"), "garage_sensor");
    assert_eq!(value_of(kitchen, "wifi_password"), SECRETS[0].1);
    assert_eq!(value_of(kitchen, "thinger_credentials"), SECRETS[1].1);
    assert_eq!(value_of(garage, "wifi_password"), SECRETS[2].1);
    assert_eq!(value_of(garage, "thinger_credentials"), SECRETS[3].1);
    assert_eq!(value_of(kitchen, "thinger_user"), "demo_user");
    let kitchen_elf = fs::read(out_dir().join(format!("{BIN}.kitchen.elf"))).unwrap();
    assert_eq!(value_of(&kitchen_elf, "wifi_ssid"), "KitchenWiFi");

    // The two images differ only in slot records, the checksum byte, the SHA-256 digest and
    // the app descriptor's app_elf_sha256 (the SHA-256 of the personalised ELF).
    assert_eq!(kitchen.len(), garage.len());
    let len = kitchen.len();
    let mut allowed: Vec<(usize, usize, String)> = slot_records(kitchen)
        .into_iter()
        .map(|(s, e, k, _)| (s, e, format!("slot {k}")))
        .collect();
    assert_eq!(
        kitchen[0x20..0x24],
        0xABCD_5432u32.to_le_bytes(),
        "app descriptor at 0x20"
    );
    allowed.push((0x20 + 0x90, 0x20 + 0xB0, "app_elf_sha256".into()));
    allowed.push((len - 33, len - 32, "checksum".into()));
    allowed.push((len - 32, len, "SHA-256".into()));
    let mut slot_diffs = 0;
    for (i, (a, b)) in kitchen.iter().zip(garage.iter()).enumerate() {
        if a != b {
            let what = allowed
                .iter()
                .find(|(s, e, _)| (*s..*e).contains(&i))
                .unwrap_or_else(|| {
                    panic!("the images differ at {i:#x}, outside slots and integrity fields")
                });
            if what.2.starts_with("slot") {
                slot_diffs += 1;
            }
        }
    }
    assert!(slot_diffs > 0);

    // The manifest: masked, pointing at the files.
    let manifest = json(&first);
    assert_eq!(manifest["chip"], "esp32c3");
    assert_eq!(manifest["target"], TRIPLE);
    let results = manifest["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    for (r, (path, bytes)) in results.iter().zip(&images) {
        assert!(path.ends_with(r["image"].as_str().unwrap()), "{r}");
        assert_eq!(r["sha256"], sha256(bytes));
        let pw = r["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "wifi_password")
            .unwrap();
        assert_eq!(pw["value"], "********");
    }

    // 2: a profile switch compiles nothing and leaves the cargo artifact alone.
    let log = tmp.path().join("cargo-stdout.jsonl");
    let cargo = recording_cargo(tmp.path(), &log);
    let before = sha256(&fs::read(&cargo_elf).unwrap());
    let second = cargo_thinger_patch(
        &[
            "--release",
            "--profile",
            "garage",
            "--profile",
            "kitchen",
            "--json",
        ],
        Some(&cargo),
    );
    assert!(second.status.success(), "{}", describe(&second));
    assert_no_secret(&second);
    assert_eq!(
        sha256(&fs::read(&cargo_elf).unwrap()),
        before,
        "the cargo artifact changed"
    );
    assert_eq!(json(&second)["fresh"], true);
    let messages = fs::read_to_string(&log).unwrap();
    let artifacts: Vec<serde_json::Value> = messages
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact")
        .collect();
    assert!(
        !artifacts.is_empty(),
        "no compiler-artifact messages:\n{messages}"
    );
    for a in &artifacts {
        assert_eq!(a["fresh"], true, "compiled again: {}", a["target"]["name"]);
    }
    // Same inputs, same bytes.
    for (path, bytes) in &images {
        assert_eq!(&fs::read(path).unwrap(), bytes, "{}", path.display());
    }
}

#[test]
fn merged_image_verifies() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !toolchain_ready() {
        return;
    }
    let out = cargo_thinger_patch(&["--release", "--profile", "kitchen", "--merged"], None);
    assert!(out.status.success(), "{}", describe(&out));
    assert_no_secret(&out);
    let path = out_dir().join(format!("{BIN}.kitchen.bin"));
    let bytes = fs::read(&path).unwrap();
    let report = thinger_patch_core::Firmware::parse(&bytes)
        .unwrap()
        .verify();
    assert!(report.valid, "{report:?}");
    assert_eq!(report.format, "merged");
    assert!(report.partition_table.is_some(), "{report:?}");
    assert!(report.images.len() >= 2, "bootloader and app: {report:?}");
    // The ESP32-C3's bootloader sits at 0x0, the default partition table at 0x8000 and the
    // factory app at 0x10000.
    assert_eq!(bytes[0], 0xE9);
    assert_eq!(&bytes[0x8000..0x8002], &[0xAA, 0x50]);
    assert_eq!(bytes[0x10000], 0xE9);
    assert_eq!(value_of(&bytes, "wifi_ssid"), "KitchenWiFi");
}

#[test]
fn build_table_settings_reach_the_image() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !toolchain_ready() {
        return;
    }
    // The example's profiles plus a [build] table, in a folder of its own.
    let tmp = tempfile::tempdir().unwrap();
    let mut config = fs::read_to_string(example().join("thinger-patch.toml")).unwrap();
    config.push_str(
        "\n[build]\nchip = \"esp32c3\"\nflash_size = \"8MB\"\nflash_freq = \"80m\"\n\
         partition_table = \"parts.csv\"\nmerged = true\n",
    );
    let config_path = tmp.path().join("thinger-patch.toml");
    fs::write(&config_path, config).unwrap();
    fs::write(
        tmp.path().join("parts.csv"),
        "# Name, Type, SubType, Offset, Size, Flags\n\
         nvs,      data, nvs,     0x9000,  0x6000,\n\
         phy_init, data, phy,     0xf000,  0x1000,\n\
         factory,  app,  factory, 0x20000, 0x200000,\n",
    )
    .unwrap();
    let out = cargo_thinger_patch(
        &[
            "--release",
            "--config",
            config_path.to_str().unwrap(),
            "--profile",
            "garage",
        ],
        None,
    );
    assert!(out.status.success(), "{}", describe(&out));
    let bytes = fs::read(out_dir().join(format!("{BIN}.garage.bin"))).unwrap();
    let report = thinger_patch_core::Firmware::parse(&bytes)
        .unwrap()
        .verify();
    assert!(report.valid && report.format == "merged", "{report:?}");
    // The app sits where the partition table puts it, and its header says 8 MB at 80 MHz
    // (ESP32-C3 encodings: size 3 in the high nibble, frequency 0xF in the low one).
    assert_eq!(bytes[0x20000], 0xE9);
    assert_eq!(bytes[0x20000 + 3], 0x3F);
    assert_eq!(bytes[3], 0x3F, "the bootloader's header too");
    assert_eq!(value_of(&bytes[0x20000..], "wifi_ssid"), "GarageWiFi");

    // A typo in [build] is an error naming the file and the key.
    fs::write(&config_path, "[build]\nflash-size = \"8MB\"\n").unwrap();
    let out = cargo_thinger_patch(
        &["--release", "--config", config_path.to_str().unwrap()],
        Some(Path::new("/nonexistent/cargo-must-not-run")),
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("did you mean flash_size"), "{err}");
}

#[test]
fn chip_mismatch_and_missing_secret_are_clear_errors() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    if !toolchain_ready() {
        return;
    }
    let out = cargo_thinger_patch(
        &["--release", "--profile", "kitchen", "--chip", "esp32s3"],
        None,
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("chip esp32s3 (from --chip) does not match") && err.contains(TRIPLE),
        "{err}"
    );

    // A value that cannot be resolved fails before cargo runs.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cargo-thinger-patch"));
    let out = cmd
        .args(["thinger-patch", "--release", "--profile", "garage"])
        .current_dir(example())
        .env("CARGO_TARGET_DIR", target_dir())
        .env("CARGO", "/nonexistent/cargo-must-not-run")
        .env_remove("GARAGE_WIFI_PASSWORD")
        .env("GARAGE_THINGER_CREDENTIALS", "x")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("GARAGE_WIFI_PASSWORD") && err.contains("profiles.garage"),
        "{err}"
    );
}
