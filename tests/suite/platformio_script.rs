//! The PlatformIO extra script `pio-extra/thinger_patch.py`, run by real SCons without PlatformIO.
//!
//! `tests/platformio/` holds this project's own minimal emulation of what the script relies on
//! (no PlatformIO code): `SConstruct` runs the scripts in PlatformIO Core 6.2.0's order,
//! `pio_tools.py` provides the environment methods the script calls, with that version's names
//! and signatures, and `espressif32.py` emulates an ESP32-C3 build of platform-espressif32
//! v6.13.0: it links the ESP32-C3 demo of `examples/c-firmware` with Debian's
//! `riscv64-unknown-elf-gcc` + picolibc, converts it with an `ElfToBin` builder running esptool
//! `elf2image`, and uploads through an esptool-style `write_flash` command. The pinned SCons
//! (4.11.1, the version PlatformIO 6.2.0 bundles) runs from `<repo>/.venv/bin/scons`; the script
//! finds this build's `thinger-patch` through `THINGER_PATCH`. Checked:
//!
//! - a build writes `firmware.kitchen.bin` and `firmware.garage.bin` beside `firmware.bin`;
//!   esptool calls them valid, they were converted from the personalised ELFs, and
//!   `thinger-patch inspect --json` shows each profile's values (secrets masked, state
//!   patched; the raw bytes hold the real secret);
//! - no value reaches SCons' `.sconsign` or the stamp files;
//! - a second build, a profile switch (`THINGER_PROFILE`) and an upload rebuild nothing; the
//!   upload sends `firmware.<THINGER_PROFILE>.bin` (first listed by default) at the app offset;
//! - changing one profile's secret (an environment variable) regenerates that profile's ELF and
//!   image and nothing else;
//! - the build fails with a clear message when `thinger-patch` is missing or personalisation
//!   fails (a value too long), without printing the secret, and leaves the images as they were.
//!
//! Needs `.venv/bin/scons`, esptool and the RISC-V toolchain with picolibc
//! (`scripts/setup-test-env.sh`): skips without them, fails under `CI=true`.

use crate::common;

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::SystemTime;

const PIOENV: &str = "esp32c3";
const SECRETS: &[(&str, &str)] = &[
    ("KITCHEN_WIFI_PASSWORD", "kitchen-wifi-pw-1"),
    ("KITCHEN_CREDS", "kitchen-creds-1"),
    ("GARAGE_WIFI_PASSWORD", "garage-wifi-pw-1"),
    ("GARAGE_CREDS", "garage-creds-1"),
];

const PLATFORMIO_INI: &str = "\
[env:esp32c3]
platform = espressif32
board = esp32-c3-devkitm-1
upload_protocol = esptool
extra_scripts = post:{SCRIPT}
custom_thinger_profiles = kitchen, garage
custom_thinger_config = secrets/thinger-patch.toml
";

const CONFIG: &str = r#"[defaults]
thinger_user = "alice"

[profiles.kitchen]
wifi_ssid = "KitchenWiFi"
wifi_password = { env = "KITCHEN_WIFI_PASSWORD" }
thinger_device = "kitchen_sensor"
thinger_credentials = { env = "KITCHEN_CREDS" }

[profiles.garage]
wifi_ssid = "GarageWiFi"
wifi_password = { env = "GARAGE_WIFI_PASSWORD" }
thinger_device = "garage_sensor"
thinger_credentials = { env = "GARAGE_CREDS" }
"#;

// =============================================================================================
// Setup
// =============================================================================================

fn skip_or_fail(what: &str) -> Option<()> {
    if common::in_ci() {
        panic!(
            "{what}, and CI=true makes this a failure, not a skip (run scripts/setup-test-env.sh)"
        );
    }
    common::skip(&format!("{what} (run scripts/setup-test-env.sh)"));
    None
}

/// The pinned SCons of `.venv`, or `None` after printing why (panics under `CI=true`).
fn scons() -> Option<PathBuf> {
    let scons = common::repo_root().join(".venv/bin/scons");
    if scons.is_file() {
        Some(scons)
    } else {
        skip_or_fail(&format!("{} is absent", scons.display()))?;
        None
    }
}

/// `riscv64-unknown-elf-gcc` with picolibc, as `examples/c-firmware/build.sh` uses it.
fn riscv_toolchain() -> Option<()> {
    let ok = Command::new("riscv64-unknown-elf-gcc")
        .args([
            "-march=rv32imc",
            "-mabi=ilp32",
            "--specs=picolibc.specs",
            "-E",
            "-x",
            "c",
            "-",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Some(())
    } else {
        skip_or_fail("riscv64-unknown-elf-gcc with picolibc is absent")
    }
}

/// A PlatformIO project folder in a temporary directory, built with the test SConstruct.
struct Project {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    scons: PathBuf,
    esptool: common::Esptool,
    /// Secret environment variables of every run (a test may override one per run).
    secrets: BTreeMap<&'static str, String>,
}

impl Project {
    fn new() -> Option<Project> {
        let scons = scons()?;
        let esptool = common::esptool()?;
        riscv_toolchain()?;
        let tmp = common::temp_dir();
        let dir = fs::canonicalize(tmp.path()).expect("canonical temp dir");
        let script = common::repo_root().join("pio-extra/thinger_patch.py");
        let ini = PLATFORMIO_INI.replace("{SCRIPT}", &script.display().to_string());
        fs::write(dir.join("platformio.ini"), ini).expect("writing platformio.ini");
        fs::create_dir(dir.join("secrets")).expect("mkdir secrets");
        // owner-only, or thinger-patch warns about a config readable by others
        let config = common::write_file(
            &dir.join("secrets"),
            "thinger-patch.toml",
            CONFIG.as_bytes(),
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).expect("chmod 600");
        }
        #[cfg(not(unix))]
        let _ = config;
        Some(Project {
            _tmp: tmp,
            dir,
            scons,
            esptool,
            secrets: SECRETS.iter().map(|&(k, v)| (k, v.to_string())).collect(),
        })
    }

    fn build_dir(&self) -> PathBuf {
        self.dir.join(".pio/build").join(PIOENV)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.build_dir().join(name)
    }

    fn upload_log(&self) -> PathBuf {
        self.dir.join("upload.log")
    }

    /// The command PlatformIO's `platformio/platform/_run.py` runs, on the test SConstruct.
    fn command(&self, targets: &[&str]) -> Command {
        let mut cmd = Command::new(&self.scons);
        cmd.current_dir(&self.dir)
            .arg("-Q")
            .arg("--warn=no-no-parallel-support")
            .args(["--jobs", "2"])
            .arg("--sconstruct")
            .arg(common::repo_root().join("tests/platformio/SConstruct"))
            .args(["PIOVERBOSE=0", "ISATTY=0"])
            .arg(format!("PIOENV={PIOENV}"))
            .arg(format!(
                "PROJECT_CONFIG={}",
                self.dir.join("platformio.ini").display()
            ))
            .args(targets)
            .env("THINGER_PATCH", common::cli_path())
            .env("ESPTOOL", &self.esptool.program)
            .env("FAKE_UPLOAD_LOG", self.upload_log())
            .env("NO_COLOR", "1")
            .env_remove("THINGER_PROFILE")
            .env_remove("FORCE_COLOR")
            .stdin(Stdio::null());
        for (k, v) in &self.secrets {
            cmd.env(k, v);
        }
        cmd
    }

    fn run(&self, mut cmd: Command) -> Output {
        cmd.output().expect("running scons")
    }

    /// Run scons and require success.
    fn ok(&self, cmd: Command, what: &str) -> String {
        let out = self.run(cmd);
        assert!(
            out.status.success(),
            "{what}: scons failed\n{}",
            common::describe_output(&out)
        );
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Run scons and require failure; returns stdout + stderr.
    fn fails(&self, cmd: Command, what: &str) -> String {
        let out = self.run(cmd);
        assert!(
            !out.status.success(),
            "{what}: scons succeeded but must fail\n{}",
            common::describe_output(&out)
        );
        format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    }

    /// Every file of the build folder (except SCons' database) with its mtime and SHA-256.
    fn snapshot(&self) -> BTreeMap<String, (SystemTime, [u8; 32])> {
        fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, (SystemTime, [u8; 32])>) {
            for entry in fs::read_dir(dir).expect("reading the build folder") {
                let path = entry.expect("dir entry").path();
                if path.is_dir() {
                    walk(&path, base, out);
                    continue;
                }
                let rel = path
                    .strip_prefix(base)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                if rel.starts_with(".sconsign") {
                    continue;
                }
                let mtime = fs::metadata(&path)
                    .and_then(|m| m.modified())
                    .expect("mtime");
                let bytes = fs::read(&path).expect("reading a build file");
                out.insert(rel, (mtime, common::sha256(&bytes)));
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.build_dir(), &self.build_dir(), &mut out);
        out
    }
}

/// Files added, removed, rewritten (mtime) or changed (content) between two snapshots.
fn changed(
    before: &BTreeMap<String, (SystemTime, [u8; 32])>,
    after: &BTreeMap<String, (SystemTime, [u8; 32])>,
) -> BTreeSet<String> {
    before
        .keys()
        .chain(after.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .cloned()
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Assert that a run compiled, linked, personalised and converted nothing.
fn assert_nothing_built(log: &str, what: &str) {
    for word in ["Compiling ", "Linking ", "Personalising ", "Building ."] {
        assert!(
            !log.contains(word),
            "{what}: the log shows {word:?}:\n{log}"
        );
    }
}

// =============================================================================================
// What the images hold
// =============================================================================================

/// `thinger-patch inspect --json FILE`: key -> (state, value as printed, file offset).
fn inspect(path: &Path) -> BTreeMap<String, (String, String, usize)> {
    let out = common::run_cli(&["inspect", "--json", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "inspect {}\n{}",
        path.display(),
        common::describe_output(&out)
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("inspect --json output");
    assert_eq!(json["format"], "app-image", "{}: {json}", path.display());
    assert_eq!(json["chip"], "esp32c3", "{}", path.display());
    assert_eq!(json["valid"], true, "{}", path.display());
    json["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| {
            (
                s["key"].as_str().unwrap().to_string(),
                (
                    s["state"].as_str().unwrap().to_string(),
                    s["value"].as_str().unwrap().to_string(),
                    s["file_offset"].as_u64().unwrap() as usize,
                ),
            )
        })
        .collect()
}

/// The NUL-terminated value in the slot record at `offset` (header: 48 bytes).
fn raw_value(bytes: &[u8], offset: usize) -> String {
    let field = &bytes[offset + 48..];
    let nul = field
        .iter()
        .position(|&b| b == 0)
        .expect("NUL-terminated value");
    String::from_utf8(field[..nul].to_vec()).expect("UTF-8 value")
}

/// Check one personalised image: valid for esptool, converted from `firmware.<profile>.elf`,
/// and holding the profile's values.
fn check_image(p: &Project, profile: &str, ssid: &str, device: &str, password: &str, creds: &str) {
    let bin = p.file(&format!("firmware.{profile}.bin"));
    let elf = p.file(&format!("firmware.{profile}.elf"));
    let info = p.esptool.image_info(&bin, None);
    info.assert_valid(&format!("firmware.{profile}.bin"));
    assert_eq!(
        info.chip.as_deref(),
        Some("ESP32-C3"),
        "{}",
        info.describe()
    );
    // elf2image writes the SHA-256 of the ELF it converts into the app descriptor
    let elf_sha = common::hex(&common::sha256(&fs::read(&elf).unwrap()));
    assert_eq!(
        info.field("ELF file SHA256"),
        Some(elf_sha.as_str()),
        "firmware.{profile}.bin was not converted from firmware.{profile}.elf"
    );

    let slots = inspect(&bin);
    let expect = [
        ("wifi_ssid", "patched", ssid),
        ("thinger_device", "patched", device),
        ("thinger_user", "patched", "alice"),
        ("wifi_password", "patched", "********"),
        ("thinger_credentials", "patched", "********"),
        ("thinger_host", "default", "iot.thinger.io"),
        ("greeting", "default", "hello"),
        ("fw.version", "default", "dev"),
    ];
    for (key, state, value) in expect {
        let (s, v, _) = &slots[key];
        assert_eq!(
            (s.as_str(), v.as_str()),
            (state, value),
            "firmware.{profile}.bin slot {key}"
        );
    }
    // inspect masks secrets: the raw records must hold the real ones
    let bytes = fs::read(&bin).unwrap();
    assert_eq!(raw_value(&bytes, slots["wifi_password"].2), password);
    assert_eq!(raw_value(&bytes, slots["thinger_credentials"].2), creds);
}

fn assert_no_secret_in(path: &Path, secrets: &[&str]) {
    let bytes = fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    for s in secrets {
        assert!(
            common::find_all(&bytes, s.as_bytes()).is_empty(),
            "{} holds the secret {s:?}",
            path.display()
        );
    }
}

/// The arguments of the last fake esptool run.
fn last_upload(p: &Project) -> Vec<String> {
    let log = fs::read_to_string(p.upload_log()).expect("the fake uploader ran");
    let line = log.lines().last().expect("an upload line");
    serde_json::from_str(line).expect("JSON argument list")
}

// =============================================================================================
// Tests
// =============================================================================================

#[test]
fn builds_per_profile_images_and_uploads_the_chosen_one() {
    let Some(mut p) = Project::new() else { return };

    // ---- 1. first build: firmware.bin plus one personalised image per profile
    let log = p.ok(p.command(&[]), "first build");
    for name in [
        "firmware.elf",
        "firmware.bin",
        "firmware.kitchen.elf",
        "firmware.kitchen.bin",
    ] {
        assert!(
            p.file(name).is_file(),
            "{name} missing after the first build:\n{log}"
        );
    }
    assert!(p.file("firmware.garage.bin").is_file(), "{log}");
    p.esptool
        .image_info(p.file("firmware.bin"), None)
        .assert_valid("firmware.bin");
    let plain = inspect(&p.file("firmware.bin"));
    assert_eq!(
        plain["wifi_ssid"].0, "default",
        "firmware.bin must stay unpersonalised"
    );
    check_image(
        &p,
        "kitchen",
        "KitchenWiFi",
        "kitchen_sensor",
        "kitchen-wifi-pw-1",
        "kitchen-creds-1",
    );
    check_image(
        &p,
        "garage",
        "GarageWiFi",
        "garage_sensor",
        "garage-wifi-pw-1",
        "garage-creds-1",
    );
    #[cfg(unix)]
    for name in [
        "firmware.kitchen.bin",
        "firmware.kitchen.elf",
        "firmware.garage.bin",
    ] {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(p.file(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode & 0o077,
            0,
            "{name} holds secrets and must be owner-only, is {mode:o}"
        );
    }

    // SCons keeps a hash per profile, never a value
    let secrets: Vec<&str> = SECRETS.iter().map(|(_, v)| *v).collect();
    let sconsign = p
        .build_dir()
        .join(format!(".sconsign{}.dblite", python_version_tag(&p.scons)));
    for stamp in [
        "thinger-patch/kitchen.sha256",
        "thinger-patch/garage.sha256",
    ] {
        let text = fs::read_to_string(p.file(stamp)).unwrap();
        assert!(
            text.starts_with("sha256 ") && text.len() == 72,
            "{stamp}: {text:?}"
        );
    }
    for path in [
        sconsign.clone(),
        p.file("thinger-patch/kitchen.sha256"),
        p.file("thinger-patch/garage.sha256"),
    ] {
        assert_no_secret_in(&path, &secrets);
        assert_no_secret_in(&path, &["KitchenWiFi", "kitchen_sensor"]);
    }

    // ---- 2. nothing changed: nothing is rebuilt or rewritten
    let before = p.snapshot();
    let log = p.ok(p.command(&[]), "second build");
    assert_nothing_built(&log, "second build");
    assert_eq!(
        changed(&before, &p.snapshot()),
        set(&[]),
        "second build:\n{log}"
    );

    // ---- 3. upload, default profile: the first listed one
    let log = p.ok(
        {
            let mut c = p.command(&["upload", "UPLOAD_PORT=/dev/ttyFAKE0"]);
            c.env_remove("THINGER_PROFILE");
            c
        },
        "upload (default profile)",
    );
    assert_nothing_built(&log, "upload (default profile)");
    let args = last_upload(&p);
    let tail: Vec<&str> = args[args.len() - 2..].iter().map(String::as_str).collect();
    assert_eq!(
        tail,
        ["0x10000", ".pio/build/esp32c3/firmware.kitchen.bin"],
        "{args:?}"
    );
    assert!(
        log.contains("thinger-patch: uploading .pio/build/esp32c3/firmware.kitchen.bin (profile 'kitchen', from the first of custom_thinger_profiles)"),
        "{log}"
    );

    // ---- 4. profile switch + upload: no compilation, no regeneration, the garage image is sent
    let before = p.snapshot();
    let log = p.ok(
        {
            let mut c = p.command(&["upload", "UPLOAD_PORT=/dev/ttyFAKE0"]);
            c.env("THINGER_PROFILE", "garage");
            c
        },
        "upload (THINGER_PROFILE=garage)",
    );
    assert_nothing_built(&log, "profile switch");
    assert_eq!(
        changed(&before, &p.snapshot()),
        set(&[]),
        "profile switch:\n{log}"
    );
    let args = last_upload(&p);
    let repo = common::repo_root();
    let prebuilt = |f: &str| {
        repo.join("examples/c-firmware/prebuilt")
            .join(f)
            .display()
            .to_string()
    };
    let expected: Vec<String> = [
        "--chip",
        "esp32c3",
        "--port",
        "/dev/ttyFAKE0",
        "--baud",
        "460800",
        "--before",
        "default_reset",
        "--after",
        "hard_reset",
        "write_flash",
        "-z",
        "--flash_mode",
        "dio",
        "--flash_freq",
        "80m",
        "--flash_size",
        "4MB",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([
        "0x0".to_string(),
        prebuilt("esp32c3-bootloader.bin"),
        "0x8000".to_string(),
        prebuilt("esp32c3-partition-table.bin"),
        "0x10000".to_string(),
        ".pio/build/esp32c3/firmware.garage.bin".to_string(),
    ])
    .collect();
    assert_eq!(args, expected, "what upload sends");
    assert!(
        log.contains("Uploading .pio/build/esp32c3/firmware.garage.bin"),
        "the upload label must name the file sent:\n{log}"
    );

    // ---- 4b. `nobuild upload`: the existing image, nothing checked or built
    fs::remove_file(p.upload_log()).unwrap();
    let log = p.ok(
        {
            let mut c = p.command(&["nobuild", "upload", "UPLOAD_PORT=/dev/ttyFAKE0"]);
            c.env("THINGER_PROFILE", "garage");
            c
        },
        "nobuild upload",
    );
    assert_nothing_built(&log, "nobuild upload");
    assert!(!log.contains("Checking thinger-patch profile"), "{log}");
    assert_eq!(last_upload(&p), expected, "what `nobuild upload` sends");

    // ---- 5. unknown THINGER_PROFILE: upload refused before anything runs
    let log = p.fails(
        {
            let mut c = p.command(&["upload", "UPLOAD_PORT=/dev/ttyFAKE0"]);
            c.env("THINGER_PROFILE", "attic");
            c
        },
        "upload with THINGER_PROFILE=attic",
    );
    assert!(
        log.contains("Error: thinger-patch: THINGER_PROFILE=attic is not one of custom_thinger_profiles (kitchen, garage)"),
        "{log}"
    );

    // ---- 6. a profile's secret changes: that profile's ELF and image only
    p.secrets
        .insert("KITCHEN_CREDS", "kitchen-creds-2".to_string());
    let before = p.snapshot();
    let log = p.ok(p.command(&[]), "build after changing KITCHEN_CREDS");
    assert!(
        !log.contains("Compiling ") && !log.contains("Linking "),
        "{log}"
    );
    assert_eq!(
        changed(&before, &p.snapshot()),
        set(&[
            "firmware.kitchen.bin",
            "firmware.kitchen.elf",
            "thinger-patch/kitchen.sha256"
        ]),
        "changing KITCHEN_CREDS:\n{log}"
    );
    check_image(
        &p,
        "kitchen",
        "KitchenWiFi",
        "kitchen_sensor",
        "kitchen-wifi-pw-1",
        "kitchen-creds-2",
    );
    check_image(
        &p,
        "garage",
        "GarageWiFi",
        "garage_sensor",
        "garage-wifi-pw-1",
        "garage-creds-1",
    );
    assert_no_secret_in(&sconsign, &["kitchen-creds-2"]);

    // ---- 7. a plain build under another THINGER_PROFILE: nothing to do either
    let before = p.snapshot();
    let log = p.ok(
        {
            let mut c = p.command(&[]);
            c.env("THINGER_PROFILE", "garage");
            c
        },
        "same build, other THINGER_PROFILE",
    );
    assert_nothing_built(&log, "plain build with THINGER_PROFILE=garage");
    assert_eq!(changed(&before, &p.snapshot()), set(&[]), "{log}");
}

/// `.sconsign<major><minor>.dblite`: the Python version SCons runs under.
fn python_version_tag(scons: &Path) -> String {
    let python = scons.with_file_name("python3");
    let out = Command::new(&python)
        .args(["-c", "import sys; print('%d%d' % sys.version_info[:2])"])
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", python.display()));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn fails_clearly_without_the_tool_or_with_a_bad_value() {
    let Some(mut p) = Project::new() else { return };

    // ---- THINGER_PATCH names nothing
    let log = p.fails(
        {
            let mut c = p.command(&[]);
            c.env("THINGER_PATCH", "/nonexistent/thinger-patch");
            c
        },
        "THINGER_PATCH=/nonexistent",
    );
    assert!(
        log.contains("Error: thinger-patch: THINGER_PATCH=/nonexistent/thinger-patch is not an executable file"),
        "{log}"
    );
    assert!(!p.file("firmware.kitchen.bin").exists() && !p.file("firmware.garage.bin").exists());

    // ---- not on PATH, not in ~/.cargo/bin, no THINGER_PATCH
    let home = common::temp_dir();
    let path = env::var_os("PATH").unwrap_or_default();
    let path =
        env::join_paths(env::split_paths(&path).filter(|d| !d.join("thinger-patch").exists()))
            .expect("PATH");
    let log = p.fails(
        {
            let mut c = p.command(&[]);
            c.env_remove("THINGER_PATCH")
                .env_remove("CARGO_HOME")
                .env("HOME", home.path())
                .env("PATH", &path);
            c
        },
        "thinger-patch missing",
    );
    let cargo_bin = home.path().join(".cargo").join("bin");
    assert!(
        log.contains(&format!(
            "Error: thinger-patch: the thinger-patch program was not found: not on PATH, not in {}, and THINGER_PATCH is not set",
            cargo_bin.display()
        )),
        "{log}"
    );
    assert_eq!(
        log.matches("was not found").count(),
        1,
        "the message is printed once, not once per profile:\n{log}"
    );

    // ---- a value too long for its slot: names profile, slot and capacity, never the value
    let good = p.ok(p.command(&[]), "build with the tool");
    assert!(p.file("firmware.garage.bin").is_file(), "{good}");
    let before = p.snapshot();
    let too_long = "TOO-LONG-SECRET-".repeat(5); // 80 bytes, the slot holds 64
    p.secrets.insert("GARAGE_CREDS", too_long.clone());
    let log = p.fails(p.command(&[]), "GARAGE_CREDS too long");
    assert!(
        log.contains("Error: thinger-patch: personalising .pio/build/esp32c3/firmware.elf with profile 'garage' failed"),
        "{log}"
    );
    assert!(
        log.contains("thinger_credentials") && log.contains("80 bytes") && log.contains("64"),
        "the tool's message names the slot, the length and the capacity:\n{log}"
    );
    assert!(!log.contains(&too_long), "the secret was printed:\n{log}");
    let after = p.snapshot();
    assert!(
        changed(&before, &after)
            .iter()
            .all(|f| !f.starts_with("firmware.garage")),
        "a failed personalisation must leave the garage files alone"
    );

    // ---- fixed again: the garage image is the old one, nothing needs rebuilding
    p.secrets
        .insert("GARAGE_CREDS", "garage-creds-1".to_string());
    let log = p.ok(p.command(&[]), "build after fixing GARAGE_CREDS");
    assert_nothing_built(&log, "after the failure");
    check_image(
        &p,
        "garage",
        "GarageWiFi",
        "garage_sensor",
        "garage-wifi-pw-1",
        "garage-creds-1",
    );
}
