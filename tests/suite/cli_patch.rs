//! `thinger-patch patch` as a command: default output names, one output per profile, usage
//! errors, `--dry-run`, unknown keys and `--allow-missing`, and the documented exit codes
//! (0 ok, 1 invalid input or refused, 2 usage, 3 I/O).
//!
//! Works on the committed ESP32-C3 C demo (`examples/c-firmware/prebuilt/`); needs nothing else.

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const KITCHEN_SSID: &str = "KitchenNet-7c1e";
const GARAGE_SSID: &str = "GarageNet-93ad";

const CONFIG: &str = r#"
[defaults]
thinger_user = "demo_user"
thinger_credentials = "cred-canary-1234"

[profiles.kitchen]
wifi_ssid = "KitchenNet-7c1e"
thinger_device = "kitchen_sensor"

[profiles.garage]
wifi_ssid = "GarageNet-93ad"
thinger_device = "garage_sensor"

[profiles.typo]
wifi_ssid = "TypoNet"
thinger_device = "typo_sensor"
wifi_ssidd = "misspelt"
"#;

fn prebuilt(name: &str) -> PathBuf {
    common::repo_root()
        .join("examples/c-firmware/prebuilt")
        .join(name)
}

struct Setup {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    cfg: PathBuf,
}

/// A temp folder with `thinger-patch.toml` (mode 0600) and the named copies of prebuilt files.
fn setup(files: &[(&str, &str)]) -> Setup {
    let tmp = common::temp_dir();
    let dir = tmp.path().to_path_buf();
    let cfg = common::write_file(&dir, "thinger-patch.toml", CONFIG.as_bytes());
    set_mode(&cfg, 0o600);
    for (name, src) in files {
        common::write_file(&dir, name, &fs::read(prebuilt(src)).unwrap());
    }
    Setup {
        _tmp: tmp,
        dir,
        cfg,
    }
}

fn set_mode(path: &Path, mode: u32) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }
    #[cfg(not(unix))]
    let _ = (path, mode);
}

/// Runs thinger-patch in `dir`.
fn tp(dir: &Path, args: &[&str]) -> Output {
    Command::new(common::cli_path())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("XDG_CONFIG_HOME")
        .stdin(Stdio::null())
        .output()
        .expect("running thinger-patch")
}

fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}: expected exit {code}\n{}",
        common::describe_output(out)
    );
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

fn listing(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

fn names(list: &[&str]) -> BTreeSet<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("a gzip stream");
    out
}

fn assert_valid_app(bytes: &[u8], what: &str) {
    let w = common::walk_app_image(bytes, false);
    assert!(w.is_valid(), "{what}: not a valid app image: {w:?}");
}

#[test]
fn default_output_names_follow_the_input() {
    let st = setup(&[("fw.bin", "esp32c3-demo.bin"), ("fw", "esp32c3-demo.elf")]);
    let dir = &st.dir;
    let cfg = s(&st.cfg);
    let app = fs::read(dir.join("fw.bin")).unwrap();
    common::write_file(dir, "fw.bin.gz", &gzip(&app));
    let before = listing(dir);

    // fw.bin -> fw.kitchen.bin
    let out = tp(
        dir,
        &["patch", "fw.bin", "--config", cfg, "--profile", "kitchen"],
    );
    assert_code(&out, 0, "fw.bin");
    let k = fs::read(dir.join("fw.kitchen.bin")).expect("fw.kitchen.bin written");
    assert_valid_app(&k, "fw.kitchen.bin");
    assert_eq!(common::find_all(&k, KITCHEN_SSID.as_bytes()).len(), 1);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("fw.kitchen.bin"),
        "the summary names the output:\n{}",
        common::describe_output(&out)
    );
    // Same bytes as naming the output explicitly.
    let out = tp(
        dir,
        &[
            "patch",
            "fw.bin",
            "--config",
            cfg,
            "--profile",
            "kitchen",
            "-o",
            "explicit.bin",
        ],
    );
    assert_code(&out, 0, "-o explicit.bin");
    assert_eq!(fs::read(dir.join("explicit.bin")).unwrap(), k);

    // fw.bin.gz -> fw.kitchen.bin.gz, compressed again, holding the same image.
    let out = tp(
        dir,
        &[
            "patch",
            "fw.bin.gz",
            "--config",
            cfg,
            "--profile",
            "kitchen",
        ],
    );
    assert_code(&out, 0, "fw.bin.gz");
    let kgz = fs::read(dir.join("fw.kitchen.bin.gz")).expect("fw.kitchen.bin.gz written");
    assert_eq!(&kgz[..2], &[0x1F, 0x8B], "the output is gzip");
    assert_eq!(gunzip(&kgz), k, "the gzip output holds the patched image");

    // fw (an ELF without extension) -> fw.kitchen
    let out = tp(
        dir,
        &["patch", "fw", "--config", cfg, "--profile", "kitchen"],
    );
    assert_code(&out, 0, "fw");
    let kelf = fs::read(dir.join("fw.kitchen")).expect("fw.kitchen written");
    assert_eq!(&kelf[..4], b"\x7FELF");
    assert_eq!(common::find_all(&kelf, KITCHEN_SSID.as_bytes()).len(), 1);

    let mut want = before;
    want.extend(names(&[
        "fw.kitchen.bin",
        "explicit.bin",
        "fw.kitchen.bin.gz",
        "fw.kitchen",
    ]));
    assert_eq!(
        listing(dir),
        want,
        "exactly the expected files (no temporaries)"
    );
}

#[test]
fn two_profiles_give_two_outputs() {
    let st = setup(&[("fw.bin", "esp32c3-demo.bin")]);
    let dir = &st.dir;
    let out = tp(
        dir,
        &[
            "patch",
            "fw.bin",
            "--config",
            s(&st.cfg),
            "--profile",
            "kitchen",
            "--profile",
            "garage",
        ],
    );
    assert_code(&out, 0, "two profiles");
    let k = fs::read(dir.join("fw.kitchen.bin")).expect("fw.kitchen.bin");
    let g = fs::read(dir.join("fw.garage.bin")).expect("fw.garage.bin");
    assert_valid_app(&k, "kitchen");
    assert_valid_app(&g, "garage");
    assert_eq!(common::find_all(&k, KITCHEN_SSID.as_bytes()).len(), 1);
    assert!(common::find_all(&k, GARAGE_SSID.as_bytes()).is_empty());
    assert_eq!(common::find_all(&g, GARAGE_SSID.as_bytes()).len(), 1);
    assert!(common::find_all(&g, KITCHEN_SSID.as_bytes()).is_empty());
    assert_eq!(
        listing(dir),
        names(&[
            "fw.bin",
            "thinger-patch.toml",
            "fw.kitchen.bin",
            "fw.garage.bin"
        ])
    );
    // --json reports both runs.
    let out = tp(
        dir,
        &[
            "patch",
            "fw.bin",
            "--config",
            s(&st.cfg),
            "--profile",
            "kitchen",
            "--profile",
            "garage",
            "--json",
        ],
    );
    assert_code(&out, 0, "two profiles --json");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let profiles: Vec<_> = doc["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["profile"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(profiles, ["kitchen", "garage"]);
}

#[test]
fn one_output_name_for_two_profiles_is_a_usage_error() {
    let st = setup(&[("fw.bin", "esp32c3-demo.bin")]);
    let dir = &st.dir;
    let before = listing(dir);
    for extra in [&["-o", "out.bin"][..], &["--in-place"][..]] {
        let mut args = vec![
            "patch",
            "fw.bin",
            "--config",
            s(&st.cfg),
            "--profile",
            "kitchen",
            "--profile",
            "garage",
        ];
        args.extend_from_slice(extra);
        let out = tp(dir, &args);
        assert_code(&out, 2, &args.join(" "));
        assert!(stderr(&out).contains("error"), "{}", stderr(&out));
        assert_eq!(listing(dir), before, "{}: wrote something", args.join(" "));
    }
    assert_eq!(
        fs::read(dir.join("fw.bin")).unwrap(),
        fs::read(prebuilt("esp32c3-demo.bin")).unwrap()
    );
}

#[test]
fn no_profile_and_no_output_is_a_usage_error() {
    let st = setup(&[("fw.bin", "esp32c3-demo.bin")]);
    let dir = &st.dir;
    let before = listing(dir);
    let out = tp(
        dir,
        &[
            "patch",
            "fw.bin",
            "--config",
            s(&st.cfg),
            "--set",
            "wifi_ssid=Home",
        ],
    );
    assert_code(&out, 2, "no profile, no -o");
    assert!(
        stderr(&out).contains("-o"),
        "says what to add: {}",
        stderr(&out)
    );
    assert_eq!(listing(dir), before);
    // Found by discovery (no --config) the same holds.
    let out = tp(dir, &["patch", "fw.bin"]);
    assert_code(&out, 2, "no arguments at all");
    assert_eq!(listing(dir), before);
}

#[test]
fn dry_run_writes_nothing() {
    let st = setup(&[
        ("fw.bin", "esp32c3-demo.bin"),
        ("fw.elf", "esp32c3-demo.elf"),
    ]);
    let dir = &st.dir;
    let cfg = s(&st.cfg);
    let before = listing(dir);
    let runs: [&[&str]; 5] = [
        &[
            "patch",
            "fw.bin",
            "--config",
            cfg,
            "--profile",
            "kitchen",
            "--dry-run",
        ],
        &[
            "patch",
            "fw.bin",
            "--config",
            cfg,
            "--profile",
            "kitchen",
            "--profile",
            "garage",
            "--dry-run",
        ],
        &[
            "patch",
            "fw.bin",
            "--config",
            cfg,
            "--profile",
            "kitchen",
            "-o",
            "o.bin",
            "--dry-run",
        ],
        &[
            "patch",
            "fw.elf",
            "--config",
            cfg,
            "--profile",
            "kitchen",
            "--in-place",
            "--dry-run",
        ],
        &[
            "patch",
            "fw.bin",
            "--set",
            "wifi_ssid=Home",
            "--set",
            "thinger_user=u",
            "--set",
            "thinger_device=d",
            "--set-env",
            "thinger_credentials=DRY_CRED",
            "--dry-run",
        ],
    ];
    for args in runs {
        let out = Command::new(common::cli_path())
            .args(args)
            .current_dir(dir)
            .env("DRY_CRED", "cred-canary-1234")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_code(&out, 0, &args.join(" "));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("would write"),
            "{}: the summary says nothing was written:\n{}",
            args.join(" "),
            common::describe_output(&out)
        );
        assert_eq!(listing(dir), before, "{}: wrote a file", args.join(" "));
    }
    assert_eq!(
        fs::read(dir.join("fw.elf")).unwrap(),
        fs::read(prebuilt("esp32c3-demo.elf")).unwrap(),
        "--in-place --dry-run changed the input"
    );
    let out = tp(
        dir,
        &[
            "patch",
            "fw.bin",
            "--config",
            cfg,
            "--profile",
            "kitchen",
            "--dry-run",
            "--json",
        ],
    );
    assert_code(&out, 0, "--dry-run --json");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["results"][0]["written"], false);
    assert_eq!(doc["results"][0]["valid"], true);
    assert_eq!(listing(dir), before);
}

#[test]
fn unknown_key_is_refused_unless_allow_missing() {
    let st = setup(&[("fw.bin", "esp32c3-demo.bin")]);
    let dir = &st.dir;
    let cfg = s(&st.cfg);
    let before = listing(dir);

    // From the command line.
    let args = [
        "patch",
        "fw.bin",
        "--config",
        cfg,
        "--profile",
        "kitchen",
        "--set",
        "greetng=hi",
    ];
    let out = tp(dir, &args);
    assert_code(&out, 1, "unknown --set key");
    assert!(
        stderr(&out).contains("greetng"),
        "names the key: {}",
        stderr(&out)
    );
    assert_eq!(listing(dir), before, "wrote an output");

    // From a profile.
    let out = tp(
        dir,
        &["patch", "fw.bin", "--config", cfg, "--profile", "typo"],
    );
    assert_code(&out, 1, "unknown profile key");
    assert!(stderr(&out).contains("wifi_ssidd"), "{}", stderr(&out));
    assert_eq!(listing(dir), before, "wrote an output");

    // --allow-missing: a warning, and the rest is written.
    let mut allow = args.to_vec();
    allow.push("--allow-missing");
    let out = tp(dir, &allow);
    assert_code(&out, 0, "--allow-missing");
    let err = stderr(&out);
    assert!(
        err.lines()
            .any(|l| l.starts_with("warning") && l.contains("greetng")),
        "a warning names the ignored key:\n{err}"
    );
    let k = fs::read(dir.join("fw.kitchen.bin")).expect("output written");
    assert_valid_app(&k, "--allow-missing output");
    assert_eq!(common::find_all(&k, KITCHEN_SSID.as_bytes()).len(), 1);
    assert!(common::find_all(&k, b"greetng").is_empty());

    let out = tp(
        dir,
        &[
            "patch",
            "fw.bin",
            "--config",
            cfg,
            "--profile",
            "typo",
            "--allow-missing",
        ],
    );
    assert_code(&out, 0, "profile typo --allow-missing");
    assert!(stderr(&out).contains("wifi_ssidd"), "{}", stderr(&out));
    assert!(dir.join("fw.typo.bin").is_file());
}

#[test]
fn exit_codes() {
    let st = setup(&[("fw.bin", "esp32c3-demo.bin")]);
    let dir = &st.dir;
    let cfg = s(&st.cfg);
    let k = ["--config", cfg, "--profile", "kitchen"];
    let with = |first: &[&str], rest: &[&str]| -> Output {
        let mut a = first.to_vec();
        a.extend_from_slice(rest);
        tp(dir, &a)
    };

    // Documented in --help.
    let help = tp(dir, &["--help"]);
    assert_code(&help, 0, "--help");
    let h = String::from_utf8_lossy(&help.stdout);
    let line = h
        .lines()
        .find(|l| l.to_lowercase().contains("exit codes"))
        .unwrap_or_else(|| panic!("--help documents the exit codes:\n{h}"));
    for code in ["0 ok", "1 invalid", "2 usage", "3 i/o"] {
        assert!(line.to_lowercase().contains(code), "{code:?} in {line:?}");
    }
    // ... and in the README's table.
    let readme = fs::read_to_string(common::repo_root().join("README.md")).unwrap();
    let table = readme
        .split("## Exit codes")
        .nth(1)
        .expect("README.md has an \"Exit codes\" section");
    for (code, word) in [("0", "ok"), ("1", "invalid"), ("2", "usage"), ("3", "I/O")] {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(&format!("| {code} |")) && l.contains(word)),
            "README.md documents exit code {code} ({word})"
        );
    }

    // 0
    assert_code(&with(&["patch", "fw.bin", "-o", "ok.bin"], &k), 0, "ok");

    // 1: invalid firmware, refused values.
    let mut bad = fs::read(dir.join("fw.bin")).unwrap();
    let w = common::walk_app_image(&bad, false);
    bad[w.checksum_offset] ^= 0x01;
    common::write_file(dir, "badsum.bin", &bad);
    common::write_file(
        dir,
        "garbage.bin",
        b"this is not firmware at all, just text\n",
    );
    common::write_file(dir, "empty.bin", b"");
    for f in ["badsum.bin", "garbage.bin", "empty.bin"] {
        let out = with(&["patch", f, "-o", "never.bin"], &k);
        assert_code(&out, 1, f);
        assert!(
            stderr(&out).contains(f),
            "the error names the file: {}",
            stderr(&out)
        );
    }
    let out = with(
        &["patch", "fw.bin", "-o", "never.bin", "--set", "wifi_ssid="],
        &k,
    );
    assert_code(&out, 1, "empty SSID (standard rule)");
    let long = "x".repeat(49);
    let out = with(
        &[
            "patch",
            "fw.bin",
            "-o",
            "never.bin",
            "--set",
            &format!("greeting={long}"),
        ],
        &k,
    );
    assert_code(&out, 1, "value longer than the capacity");
    let out = tp(
        dir,
        &[
            "patch",
            "fw.bin",
            "--config",
            cfg,
            "--profile",
            "nosuch",
            "-o",
            "never.bin",
        ],
    );
    assert_code(&out, 1, "unknown profile");
    assert!(!dir.join("never.bin").exists());

    // 2: usage.
    assert_code(
        &tp(dir, &["patch", "fw.bin", "--bogus"]),
        2,
        "unknown option",
    );
    assert_code(&tp(dir, &["patch"]), 2, "missing FILE");
    assert_code(&tp(dir, &["frobnicate"]), 2, "unknown command");
    assert_code(
        &with(
            &["patch", "fw.bin", "-o", "never.bin", "--set", "novalue"],
            &k,
        ),
        2,
        "--set without =",
    );
    assert_code(
        &with(&["patch", "fw.bin", "-o", "never.bin", "--pad", "tabs"], &k),
        2,
        "bad --pad",
    );
    assert_code(
        &with(&["patch", "fw.bin", "-o", "never.bin", "--in-place"], &k),
        2,
        "-o with --in-place",
    );
    assert!(!dir.join("never.bin").exists());

    // 3: I/O.
    let out = with(&["patch", "missing.bin", "-o", "never.bin"], &k);
    assert_code(&out, 3, "input does not exist");
    assert!(stderr(&out).contains("missing.bin"), "{}", stderr(&out));
    fs::create_dir(dir.join("adir")).unwrap();
    assert_code(
        &with(&["patch", "adir", "-o", "never.bin"], &k),
        3,
        "input is a folder",
    );
    let out = with(&["patch", "fw.bin", "-o", "no/such/dir/out.bin"], &k);
    assert_code(&out, 3, "output folder does not exist");
    assert_code(
        &with(&["patch", "fw.bin", "-o", "fw.bin/out.bin"], &k),
        3,
        "output folder is a file",
    );
    assert_code(
        &tp(
            dir,
            &[
                "patch",
                "fw.bin",
                "--config",
                "nosuch.toml",
                "--profile",
                "kitchen",
                "-o",
                "x.bin",
            ],
        ),
        3,
        "config file does not exist",
    );
    #[cfg(unix)]
    if !is_root() {
        let ro = dir.join("readonly");
        fs::create_dir(&ro).unwrap();
        set_mode(&ro, 0o555);
        let out = with(&["patch", "fw.bin", "-o", "readonly/out.bin"], &k);
        set_mode(&ro, 0o755);
        assert_code(&out, 3, "output folder not writable");
        let unreadable = common::write_file(
            dir,
            "unreadable.bin",
            &fs::read(dir.join("fw.bin")).unwrap(),
        );
        set_mode(&unreadable, 0o000);
        let out = with(&["patch", "unreadable.bin", "-o", "never.bin"], &k);
        set_mode(&unreadable, 0o644);
        assert_code(&out, 3, "input not readable");
    }
    assert!(!dir.join("never.bin").exists());
    assert!(!dir.join("x.bin").exists());
}

#[cfg(unix)]
fn is_root() -> bool {
    // The effective uid of this process, without libc: /proc/self/status "Uid: real effective ..".
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// A reader that goes away (`thinger-patch ... | head -1`) is not a crash: no panic, no exit
/// code 101, whatever the command.
#[test]
fn closed_stdout_is_not_a_panic() {
    let st = setup(&[("fw.bin", "esp32c3-demo.bin")]);
    let dir = &st.dir;
    let cfg = s(&st.cfg);
    let runs: [&[&str]; 4] = [
        &[
            "patch",
            "fw.bin",
            "--config",
            cfg,
            "--profile",
            "kitchen",
            "--profile",
            "garage",
            "--json",
        ],
        &["patch", "fw.bin", "--config", cfg, "--profile", "kitchen"],
        &["inspect", "fw.bin"],
        &["verify", "fw.bin", "--json"],
    ];
    let mut panics = Vec::new();
    for args in runs {
        let mut child = Command::new(common::cli_path())
            .args(args)
            .current_dir(dir)
            .env("RUST_BACKTRACE", "0")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Close the reading end before the program writes anything.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        if out.status.code() == Some(101) || err.contains("panicked") {
            panics.push(format!(
                "thinger-patch {} (exit {:?}):\n{err}",
                args.join(" "),
                out.status.code()
            ));
        }
    }
    assert!(
        panics.is_empty(),
        "panics when stdout is closed:\n{}",
        panics.join("\n")
    );
}

/// "Everything is checked before anything is written" also for I/O: when the output of the
/// second profile cannot be written, the first profile's output must not be left behind either.
#[test]
fn a_failed_output_leaves_no_other_output() {
    let st = setup(&[("fw.bin", "esp32c3-demo.bin")]);
    let dir = &st.dir;
    // A folder where the garage output belongs: it cannot be replaced by a file.
    fs::create_dir(dir.join("fw.garage.bin")).unwrap();
    let before = listing(dir);
    let out = tp(
        dir,
        &[
            "patch",
            "fw.bin",
            "--config",
            s(&st.cfg),
            "--profile",
            "kitchen",
            "--profile",
            "garage",
        ],
    );
    assert_code(&out, 3, "garage output blocked by a folder");
    assert!(stderr(&out).contains("fw.garage.bin"), "{}", stderr(&out));
    assert_eq!(
        listing(dir),
        before,
        "a failed run left outputs behind (fw.kitchen.bin written before fw.garage.bin failed)"
    );
}

#[test]
fn json_names_the_sha256_of_what_is_written_and_a_dry_run_the_same() {
    use sha2::{Digest, Sha256};
    let st = setup(&[("fw.bin", "esp32c3-demo.bin")]);
    let dir = &st.dir;
    let args = |extra: &[&'static str]| {
        let mut a = vec![
            "patch",
            "fw.bin",
            "--config",
            s(&st.cfg),
            "--profile",
            "kitchen",
            "--json",
        ];
        a.extend_from_slice(extra);
        a
    };
    let dry = tp(dir, &args(&["--dry-run"]));
    assert_code(&dry, 0, "dry run");
    let wrote = tp(dir, &args(&[]));
    assert_code(&wrote, 0, "patch");
    let sha = |out: &Output| -> String {
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        doc["results"][0]["sha256"].as_str().unwrap().to_string()
    };
    let file = fs::read(dir.join("fw.kitchen.bin")).unwrap();
    let actual: String = Sha256::digest(&file)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(sha(&wrote), actual);
    assert_eq!(sha(&dry), actual, "a dry run reports the same bytes");
}
