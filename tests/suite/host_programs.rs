//! Host programs (Linux ELF executables) that use the device-side slot pieces, compiled with
//! aggressive optimisation, patched by thinger-patch (`--host-elf`) and run:
//!
//! - C, `device/arduino/ThingerSlot/src/ThingerSlot.h`: `cc -Os` with `--gc-sections`, and
//!   `cc -O2 -flto`; the same source as C++ with `c++ -O2 -flto`;
//! - Rust, `device/rust` (the `thinger-slot` crate): `tests/host/rust`, `lto = "fat"`,
//!   `opt-level = "s"`.
//!
//! For each: the program prints the defaults; each default occurs exactly once in the allocated
//! sections (inside its record); after patching, the program prints the patched values (and
//! their lengths, and "patched"), the old defaults occur nowhere in the allocated sections and
//! each new value exactly once: proof that no optimiser folded or copied a slot. A declared but
//! never read slot survives `--gc-sections` and LTO.
//!
//! Sources in `tests/host/`. A missing compiler is a skip with a message (a failure under
//! `CI=true`).
#![cfg(target_os = "linux")]

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// key, default (as compiled), patched value (`None`: left alone, never printed).
const SLOTS: &[(&str, &str, Option<&str>)] = &[
    (
        "wifi_ssid",
        "default-ssid-7f3a",
        Some("patched-ssid-Longer-0001"),
    ),
    ("wifi_password", "default-pass-c41d", Some("patched-pw-9z")),
    ("fw.version", "dflt-ver-9e2b", Some("2.0.1")),
    ("never_read", "never-read-5b6c", None),
];
const PW_VAR: &str = "HOST_PROGRAM_TEST_PW";

fn host_dir() -> PathBuf {
    common::repo_root().join("tests/host")
}

/// Whether `tool` runs; `false` after printing why (a panic under CI).
fn have(tool: &str) -> bool {
    let ok = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        assert!(
            !common::in_ci(),
            "{tool} is absent, and CI=true makes this a failure"
        );
        common::skip(&format!("{tool} is absent"));
    }
    ok
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        common::describe_output(&out)
    );
}

/// Compiles `tests/host/c/slots_demo.c` with `compiler` and `flags` into `dir/name`.
fn build_c(dir: &Path, compiler: &str, flags: &[&str], name: &str) -> PathBuf {
    let exe = dir.join(name);
    let mut cmd = Command::new(compiler);
    cmd.args(flags)
        .arg("-Wall")
        .arg("-Wextra")
        .arg("-Werror")
        .arg("-I")
        .arg(common::repo_root().join("device/arduino/ThingerSlot/src"))
        .arg("-o")
        .arg(&exe)
        .arg(host_dir().join("c/slots_demo.c"));
    run_ok(&mut cmd, &format!("{compiler} {}", flags.join(" ")));
    exe
}

/// Builds `tests/host/rust` (its own workspace, committed Cargo.lock) into
/// `target/host-programs` and returns the executable.
fn build_rust() -> PathBuf {
    let target_dir = common::repo_root().join("target/host-programs");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args([
        "build",
        "--release",
        "--locked",
        "--quiet",
        "--manifest-path",
    ])
    .arg(host_dir().join("rust/Cargo.toml"))
    .arg("--target-dir")
    .arg(&target_dir)
    .env_remove("CARGO_TARGET_DIR")
    .env_remove("RUSTFLAGS")
    .env_remove("CARGO_ENCODED_RUSTFLAGS");
    run_ok(&mut cmd, "cargo build of tests/host/rust");
    let exe = target_dir.join("release/thinger-slot-host-demo");
    assert!(exe.is_file(), "{} was not built", exe.display());
    exe
}

/// `(name, file offset, size)` of every allocated, file-backed section.
fn allocated_sections(data: &[u8]) -> Vec<(String, usize, usize)> {
    use object::{Object, ObjectSection, SectionFlags};
    let file = object::File::parse(data).expect("an ELF the object crate reads");
    file.sections()
        .filter_map(|s| {
            let SectionFlags::Elf { sh_flags, .. } = s.flags() else {
                return None;
            };
            if !sh_flags.contains(object::elf::SHF_ALLOC) {
                return None;
            }
            let (offset, size) = s.file_range()?; // None for NOBITS
            Some((
                s.name().unwrap_or("?").to_string(),
                offset as usize,
                size as usize,
            ))
        })
        .collect()
}

/// File offsets of `needle` inside allocated sections.
fn in_allocated(data: &[u8], needle: &str) -> Vec<(String, usize)> {
    allocated_sections(data)
        .into_iter()
        .flat_map(|(name, off, size)| {
            common::find_all(&data[off..off + size], needle.as_bytes())
                .into_iter()
                .map(move |i| (name.clone(), off + i))
        })
        .collect()
}

/// File offset of the value field of the record for `key` (independent scan for the magic).
fn value_field(data: &[u8], key: &str) -> usize {
    let magic = b"TPSLOT\xA5\x5A";
    let hits: Vec<usize> = common::find_all(data, magic)
        .into_iter()
        .filter(|&at| {
            let len = data[at + 14] as usize;
            &data[at + 16..at + 16 + len] == key.as_bytes()
        })
        .collect();
    assert_eq!(hits.len(), 1, "records for {key}: {hits:#x?}");
    hits[0] + 48
}

fn run_program(exe: &Path) -> BTreeMap<String, String> {
    let out = Command::new(exe)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", exe.display()));
    assert!(
        out.status.success(),
        "{} failed:\n{}",
        exe.display(),
        common::describe_output(&out)
    );
    String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What the program must print when `values` (key -> value, patched flag) are in its records.
fn assert_prints(label: &str, got: &BTreeMap<String, String>, values: &[(&str, &str, bool)]) {
    for (key, value, patched) in values {
        assert_eq!(
            got.get(*key).map(String::as_str),
            Some(*value),
            "{label}: {key}: {got:?}"
        );
        assert_eq!(
            got.get(&format!("{key}.len")),
            Some(&value.len().to_string()),
            "{label}: strlen/len of {key}"
        );
        assert_eq!(
            got.get(&format!("{key}.patched")).map(String::as_str),
            Some(if *patched { "1" } else { "0" }),
            "{label}: {key} patched flag"
        );
    }
    let ssid = values.iter().find(|v| v.0 == "wifi_ssid").expect("ssid").1;
    assert_eq!(
        got.get("wifi_ssid.first"),
        Some(&ssid.as_bytes()[0].to_string()),
        "{label}: first byte of wifi_ssid"
    );
}

/// Patches `exe`, runs both, and checks the allocated sections before and after.
fn check_program(exe: &Path, label: &str) {
    let tmp = common::temp_dir();
    let original = fs::read(exe).unwrap();
    let input = common::write_file(tmp.path(), "prog", &original);

    // Before: each default exactly once, inside its record; the program reads the defaults.
    for (key, default, _) in SLOTS {
        let hits = in_allocated(&original, default);
        assert_eq!(
            hits.iter().map(|h| h.1).collect::<Vec<_>>(),
            vec![value_field(&original, key)],
            "{label}: the default of {key} ({default:?}) must occur exactly once in the allocated sections, inside its record: {hits:?}"
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&input, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let defaults: Vec<(&str, &str, bool)> = SLOTS
        .iter()
        .filter(|s| s.2.is_some())
        .map(|(k, d, _)| (*k, *d, false))
        .collect();
    assert_prints(
        &format!("{label} (as built)"),
        &run_program(&input),
        &defaults,
    );

    // Without --host-elf a PC program is refused (it is not ESP firmware).
    let refused = Command::new(common::cli_path())
        .args([
            "patch",
            input.to_str().unwrap(),
            "--set",
            "wifi_ssid=x",
            "-o",
        ])
        .arg(tmp.path().join("refused"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        refused.status.code(),
        Some(1),
        "{label}: without --host-elf\n{}",
        common::describe_output(&refused)
    );
    assert!(!tmp.path().join("refused").exists());

    // Patch it like firmware.
    let patched = tmp.path().join("prog.patched");
    let mut args: Vec<String> = vec![
        "patch".into(),
        input.to_str().unwrap().into(),
        "--host-elf".into(),
        "-o".into(),
        patched.to_str().unwrap().into(),
    ];
    let mut pw = None;
    for (key, _, value) in SLOTS {
        match (key, value) {
            (&"wifi_password", Some(v)) => {
                args.push("--set-env".into());
                args.push(format!("{key}={PW_VAR}"));
                pw = Some(*v);
            }
            (_, Some(v)) => {
                args.push("--set".into());
                args.push(format!("{key}={v}"));
            }
            (_, None) => {}
        }
    }
    let out = Command::new(common::cli_path())
        .args(&args)
        .env(PW_VAR, pw.expect("a password"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{label}: thinger-patch {} failed:\n{}",
        args.join(" "),
        common::describe_output(&out)
    );
    let after = fs::read(&patched).unwrap();
    assert_eq!(after.len(), original.len(), "{label}: size changed");
    assert_eq!(
        fs::read(&input).unwrap(),
        original,
        "{label}: input changed"
    );

    // After: old defaults gone from the allocated sections, new values once, in the records.
    for (key, default, value) in SLOTS {
        let field = value_field(&after, key);
        match value {
            Some(v) => {
                let old = in_allocated(&after, default);
                assert!(
                    old.is_empty(),
                    "{label}: the default of {key} ({default:?}) still occurs after patching: {old:?}"
                );
                let new = in_allocated(&after, v);
                assert_eq!(
                    new.iter().map(|h| h.1).collect::<Vec<_>>(),
                    vec![field],
                    "{label}: the patched value of {key} must occur once, in its record: {new:?}"
                );
            }
            None => {
                let hits = in_allocated(&after, default);
                assert_eq!(
                    hits.iter().map(|h| h.1).collect::<Vec<_>>(),
                    vec![field],
                    "{label}: the untouched {key} keeps its default once: {hits:?}"
                );
            }
        }
    }

    // inspect --host-elf shows the slots, the secret masked.
    let out = Command::new(common::cli_path())
        .args(["inspect", "--host-elf", "--json"])
        .arg(&patched)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", common::describe_output(&out));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let slots = doc["slots"].as_array().expect("slots");
    assert_eq!(slots.len(), SLOTS.len(), "{label}: {doc}");
    for (key, default, value) in SLOTS {
        let s = slots
            .iter()
            .find(|s| s["key"] == *key)
            .unwrap_or_else(|| panic!("{label}: slot {key} in {doc}"));
        let (shown, state) = match (key, value) {
            (&"wifi_password", Some(_)) => ("********", "patched"),
            (_, Some(v)) => (*v, "patched"),
            (_, None) => (*default, "default"),
        };
        assert_eq!(s["value"], shown, "{label}: {key}");
        assert_eq!(s["state"], state, "{label}: {key}");
    }
    let pw = pw.expect("a password");
    assert!(!String::from_utf8_lossy(&out.stdout).contains(pw));

    // The patched program reads the patched values.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&patched, fs::Permissions::from_mode(0o755)).unwrap();
    }
    let values: Vec<(&str, &str, bool)> = SLOTS
        .iter()
        .filter_map(|(k, _, v)| v.map(|v| (*k, v, true)))
        .collect();
    assert_prints(
        &format!("{label} (patched)"),
        &run_program(&patched),
        &values,
    );
}

#[test]
fn c_header_at_os_with_gc_sections() {
    if !have("cc") {
        return;
    }
    let tmp = common::temp_dir();
    let exe = build_c(
        tmp.path(),
        "cc",
        &[
            "-std=c11",
            "-Os",
            "-ffunction-sections",
            "-fdata-sections",
            "-Wl,--gc-sections",
        ],
        "c-os",
    );
    check_program(&exe, "cc -Os --gc-sections");
}

#[test]
fn c_header_at_o2_with_lto() {
    if !have("cc") {
        return;
    }
    let tmp = common::temp_dir();
    let exe = build_c(tmp.path(), "cc", &["-std=c11", "-O2", "-flto"], "c-o2-lto");
    check_program(&exe, "cc -O2 -flto");
}

#[test]
fn c_header_as_cxx_at_o2_with_lto() {
    if !have("c++") {
        return;
    }
    let tmp = common::temp_dir();
    let exe = build_c(
        tmp.path(),
        "c++",
        &["-x", "c++", "-std=c++17", "-O2", "-flto"],
        "cxx-o2-lto",
    );
    check_program(&exe, "c++ -O2 -flto");
}

/// Negative control: a program that really holds a second copy of a default (a string literal
/// equal to it, as a folding optimiser would leave) is caught by the allocated-section count.
#[test]
fn a_copy_of_a_default_is_detected() {
    if !have("cc") {
        return;
    }
    let tmp = common::temp_dir();
    let exe = build_c(
        tmp.path(),
        "cc",
        &["-std=c11", "-O2", "-DTHINGER_TEST_EXTRA_COPY"],
        "c-extra-copy",
    );
    let data = fs::read(&exe).unwrap();
    let hits = in_allocated(&data, "default-ssid-7f3a");
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert!(hits.iter().any(|h| h.1 == value_field(&data, "wifi_ssid")));
    let out = run_program(&exe);
    assert_eq!(
        out.get("extra").map(String::as_str),
        Some("default-ssid-7f3a")
    );
}

#[test]
fn rust_crate_with_fat_lto_at_opt_level_s() {
    let exe = build_rust();
    check_program(&exe, "rust lto=fat opt-level=s");
}
