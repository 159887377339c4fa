//! Data safety: what an adversarial run found (issue 8), each finding with a test that failed
//! before its fix. Outputs that are not regular files, symlinks, `--in-place` mode and owner,
//! the all-or-none rollback, secrets of standard keys without the SECRET flag, non-UTF-8 and
//! `--flag=value` arguments in usage errors, git run without the repository's hooks, inputs that
//! are FIFOs or devices, temporary files left by a killed run, and gzip output names.
//!
//! Works on the committed ESP32-C3 C demo (`examples/c-firmware/prebuilt/`).

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const CANARY: &str = "cred-canary-Zx93Qp";

fn prebuilt(name: &str) -> PathBuf {
    common::repo_root()
        .join("examples/c-firmware/prebuilt")
        .join(name)
}

fn tp(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(common::cli_path())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("XDG_CONFIG_HOME")
        .envs(env.iter().copied())
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

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The values every patch of the demo needs (its required, non-secret slots).
const REQ: [&str; 6] = [
    "--set",
    "wifi_ssid=net",
    "--set",
    "thinger_user=u",
    "--set",
    "thinger_device=d",
];

/// `patch FILE` + the required values + `rest`.
fn patch_args<'a>(file: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut v = vec!["patch", file];
    v.extend(REQ);
    v.extend(rest);
    v
}

/// The demo image with the flags of slot `key` set to `flags` (and the image re-sealed), as if
/// the firmware had been compiled that way.
fn demo_with_flags(src: &str, key: &str, flags: u16) -> Vec<u8> {
    use thinger_patch_core::targets::{Decoded, scan};
    let input = fs::read(prebuilt(src)).unwrap();
    let mut fw = thinger_patch_core::Firmware::parse(&input).unwrap();
    let at = scan(&fw)
        .into_iter()
        .find_map(|f| match f.decoded {
            Decoded::Slot(s) if s.key == key => Some(f.addr),
            _ => None,
        })
        .expect("the demo declares the slot");
    // Flags are the u16 at record offset 0x0A (docs/slot-format.md).
    fw.patch(at + 0x0A, &flags.to_le_bytes()).unwrap();
    fw.finish().unwrap().bytes
}

/// The ESP32-C3 demo with `thinger_credentials` not required (still secret): outputs of runs
/// that leave it empty hold no secret.
fn demo(dir: &Path, name: &str) -> PathBuf {
    common::write_file(
        dir,
        name,
        &demo_with_flags("esp32c3-demo.bin", "thinger_credentials", 1),
    )
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
}

/// Our temporary files left in `dir`.
fn temporaries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".thinger-patch-"))
        .collect()
}

// =============================================================================================
// Outputs that are not regular files
// =============================================================================================

#[cfg(unix)]
#[test]
fn an_output_that_is_a_device_node_or_fifo_is_refused_and_left_alone() {
    use std::os::unix::fs::FileTypeExt;
    let tmp = common::temp_dir();
    let dir = tmp.path();
    demo(dir, "fw.bin");
    // Never the system's own nodes: a regression would destroy /dev/full for the whole machine.
    // A FIFO always; a character device (a copy of /dev/null's numbers) where mknod is allowed.
    let mut outs = vec![dir.join("out.fifo")];
    mkfifo(&outs[0]);
    let dev = dir.join("out.chr");
    let made = nix::sys::stat::mknod(
        &dev,
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
        nix::sys::stat::makedev(1, 3),
    );
    match made {
        Ok(()) => outs.push(dev),
        Err(e) => eprintln!("note: cannot mknod here ({e}); the device-node case is skipped"),
    }
    for out in &outs {
        let out = out.to_str().unwrap();
        let o = tp(
            dir,
            &patch_args("fw.bin", &["--set", "greeting=hi", "-o", out]),
            &[],
        );
        assert_code(&o, 3, out);
        let t = text(&o);
        assert!(
            t.contains("not a regular file") && t.contains(out),
            "{out}: {t}"
        );
        let ft = fs::symlink_metadata(out).unwrap().file_type();
        assert!(
            ft.is_char_device() || ft.is_fifo(),
            "{out} was replaced by a {ft:?}"
        );
    }
    let folder = dir.join("a-folder");
    fs::create_dir(&folder).unwrap();
    let o = tp(
        dir,
        &patch_args("fw.bin", &["--set", "greeting=hi", "-o", "a-folder"]),
        &[],
    );
    assert_code(&o, 3, "folder as output");
    assert!(folder.is_dir());
    assert!(temporaries(dir).is_empty());
}

#[cfg(unix)]
#[test]
fn a_symlink_output_is_written_through_and_in_place_patches_the_target() {
    let tmp = common::temp_dir();
    let dir = tmp.path();
    demo(dir, "fw.bin");
    let real = demo(dir, "real.bin");
    std::os::unix::fs::symlink("real.bin", dir.join("link.bin")).unwrap();

    let o = tp(
        dir,
        &patch_args("fw.bin", &["--set", "greeting=via-link", "-o", "link.bin"]),
        &[],
    );
    assert_code(&o, 0, "-o symlink");
    assert!(
        fs::symlink_metadata(dir.join("link.bin"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let bytes = fs::read(&real).unwrap();
    assert_eq!(common::find_all(&bytes, b"via-link").len(), 1);
    assert!(common::walk_app_image(&bytes, false).is_valid());

    // --in-place through the link: the target changes, the link stays a link.
    let o = tp(
        dir,
        &patch_args("link.bin", &["--set", "greeting=in-place", "--in-place"]),
        &[],
    );
    assert_code(&o, 0, "--in-place symlink");
    assert!(
        fs::symlink_metadata(dir.join("link.bin"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    let bytes = fs::read(&real).unwrap();
    assert_eq!(common::find_all(&bytes, b"in-place").len(), 1);
    assert!(common::walk_app_image(&bytes, false).is_valid());
    assert!(temporaries(dir).is_empty());

    // A dangling link is refused.
    std::os::unix::fs::symlink("missing/nowhere.bin", dir.join("dangling.bin")).unwrap();
    let o = tp(
        dir,
        &patch_args("fw.bin", &["--set", "greeting=x", "-o", "dangling.bin"]),
        &[],
    );
    assert_code(&o, 3, "dangling symlink");
    assert!(!dir.join("missing").exists());
}

// =============================================================================================
// --in-place keeps mode and owner; new outputs follow the umask
// =============================================================================================

#[cfg(unix)]
#[test]
fn in_place_keeps_mode_and_owner() {
    use std::os::unix::fs::MetadataExt;
    let tmp = common::temp_dir();
    let dir = tmp.path();

    let private = demo(dir, "private.bin");
    set_mode(&private, 0o600);
    let o = tp(
        dir,
        &patch_args("private.bin", &["--set", "greeting=x", "--in-place"]),
        &[],
    );
    assert_code(&o, 0, "0600 in place");
    assert_eq!(mode(&private), 0o600, "a 0600 input must not widen");

    let shared = demo(dir, "shared.bin");
    set_mode(&shared, 0o640);
    let root = nix::unistd::geteuid().is_root();
    if root {
        std::os::unix::fs::chown(&shared, Some(65534), Some(65534)).unwrap();
    }
    let o = tp(
        dir,
        &patch_args("shared.bin", &["--set", "greeting=y", "--in-place"]),
        &[],
    );
    assert_code(&o, 0, "0640 in place");
    let m = fs::metadata(&shared).unwrap();
    assert_eq!(mode(&shared), 0o640);
    if root {
        assert_eq!((m.uid(), m.gid()), (65534, 65534), "owner must be kept");
    } else {
        eprintln!("note: not root, the owner part of this test is skipped");
    }

    // With a secret the mode narrows to 0600 at most, the owner stays.
    let o = tp(
        dir,
        &patch_args(
            "shared.bin",
            &["--set-env", "thinger_credentials=CRED", "--in-place"],
        ),
        &[("CRED", CANARY)],
    );
    assert_code(&o, 0, "secret in place");
    assert_eq!(mode(&shared), 0o600);
    if root {
        let m = fs::metadata(&shared).unwrap();
        assert_eq!((m.uid(), m.gid()), (65534, 65534));
    }
}

#[cfg(unix)]
#[test]
fn a_new_output_without_secrets_follows_the_umask() {
    use std::os::unix::process::CommandExt;
    let tmp = common::temp_dir();
    let dir = tmp.path();
    demo(dir, "fw.bin");
    for (umask, want) in [(0o027, 0o640), (0o022, 0o644), (0o077, 0o600)] {
        let out = format!("out-{umask:o}.bin");
        let mut cmd = Command::new(common::cli_path());
        cmd.args(patch_args("fw.bin", &["--set", "greeting=u", "-o", &out]))
            .current_dir(dir)
            .stdin(Stdio::null());
        // The child's umask only: the tests of this binary run in parallel threads.
        unsafe {
            cmd.pre_exec(move || {
                nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(umask));
                Ok(())
            });
        }
        let o = cmd.output().unwrap();
        assert_code(&o, 0, &out);
        assert_eq!(mode(&dir.join(&out)), want, "umask {umask:o}");
    }
}

// =============================================================================================
// All or none, and what was there before
// =============================================================================================

#[test]
fn a_failed_multi_profile_run_keeps_the_existing_outputs() {
    let tmp = common::temp_dir();
    let dir = tmp.path();
    demo(dir, "fw.bin");
    let cfg = common::write_file(
        dir,
        "thinger-patch.toml",
        b"[profiles.a]\ngreeting = \"from-a\"\n[profiles.b]\ngreeting = \"from-b\"\n",
    );
    #[cfg(unix)]
    set_mode(&cfg, 0o600);
    let old = b"older content of fw.a.bin".to_vec();
    fs::write(dir.join("fw.a.bin"), &old).unwrap();
    fs::create_dir(dir.join("fw.b.bin")).unwrap();
    let o = tp(
        dir,
        &patch_args("fw.bin", &["--profile", "a", "--profile", "b"]),
        &[],
    );
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        fs::read(dir.join("fw.a.bin")).unwrap(),
        old,
        "fw.a.bin lost"
    );
    assert!(dir.join("fw.b.bin").is_dir());
    assert!(temporaries(dir).is_empty(), "{:?}", temporaries(dir));
}

// =============================================================================================
// Secrets by key, whatever the flag
// =============================================================================================

#[test]
fn credentials_without_the_secret_flag_are_still_masked() {
    let tmp = common::temp_dir();
    let dir = tmp.path();
    let image = demo_with_flags("esp32c3-demo.bin", "thinger_credentials", 0);
    common::write_file(dir, "fw.bin", &image);
    let o = tp(dir, &["inspect", "--json", "fw.bin"], &[]);
    assert_code(&o, 0, "inspect");
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let slot = doc["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == "thinger_credentials")
        .unwrap();
    assert!(
        slot["flags"].as_array().unwrap().is_empty(),
        "flag was cleared"
    );
    assert_eq!(slot["secret"], true);

    for json in [false, true] {
        let mut args = patch_args(
            "fw.bin",
            &["--set-env", "thinger_credentials=CRED", "-o", "out.bin"],
        );
        if json {
            args.push("--json");
        }
        let o = tp(dir, &args, &[("CRED", CANARY)]);
        assert_code(&o, 0, "patch");
        assert!(!text(&o).contains(CANARY), "canary shown:\n{}", text(&o));
        assert!(text(&o).contains("********"));
        #[cfg(unix)]
        assert_eq!(mode(&dir.join("out.bin")), 0o600);
        let bytes = fs::read(dir.join("out.bin")).unwrap();
        assert_eq!(common::find_all(&bytes, CANARY.as_bytes()).len(), 1);
        fs::remove_file(dir.join("out.bin")).unwrap();
    }
    let patched = {
        let o = tp(
            dir,
            &patch_args(
                "fw.bin",
                &["--set-env", "thinger_credentials=CRED", "-o", "p.bin"],
            ),
            &[("CRED", CANARY)],
        );
        assert_code(&o, 0, "patch");
        "p.bin"
    };
    for args in [vec!["inspect", patched], vec!["inspect", "--json", patched]] {
        let o = tp(dir, &args, &[]);
        assert_code(&o, 0, "inspect patched");
        assert!(!text(&o).contains(CANARY), "{}", text(&o));
    }
}

// =============================================================================================
// Usage errors never panic and never show a value
// =============================================================================================

#[cfg(unix)]
#[test]
fn a_non_utf8_argument_is_a_usage_error_without_the_value() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let tmp = common::temp_dir();
    let dir = tmp.path();
    demo(dir, "fw.bin");
    let arg = OsStr::from_bytes(b"wifi_password=CANARYvalue\xff");
    let o = Command::new(common::cli_path())
        .arg("patch")
        .arg("fw.bin")
        .arg("--set")
        .arg(arg)
        .args(["-o", "x.bin"])
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_code(&o, 2, "non-UTF-8 argument");
    let t = text(&o);
    assert!(!t.contains("CANARY") && !t.contains("panicked"), "{t}");
    assert!(!dir.join("x.bin").exists());
}

#[test]
fn a_flag_value_in_equals_form_is_hidden_in_usage_errors() {
    let tmp = common::temp_dir();
    let o = tp(
        tmp.path(),
        &patch_args("fw.bin", &["--pad=SECRETPADVALUE", "-o", "x.bin"]),
        &[],
    );
    assert_code(&o, 2, "--pad=");
    assert!(!text(&o).contains("SECRETPADVALUE"), "{}", text(&o));
    assert!(
        text(&o).contains("--pad"),
        "the flag stays named: {}",
        text(&o)
    );
}

// =============================================================================================
// git runs without the repository's hooks
// =============================================================================================

#[cfg(unix)]
#[test]
fn the_tracked_config_check_never_runs_the_repositorys_fsmonitor_hook() {
    let tmp = common::temp_dir();
    let dir = tmp.path();
    let git = |args: &[&str]| {
        let o = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", dir)
            .output()
            .expect("git");
        assert!(o.status.success(), "git {args:?}: {}", text(&o));
    };
    git(&["init", "-q"]);
    git(&["config", "user.email", "t@example.com"]);
    git(&["config", "user.name", "t"]);
    demo(dir, "fw.bin");
    let cfg = common::write_file(
        dir,
        "thinger-patch.toml",
        format!("[profiles.k]\nthinger_credentials = \"{CANARY}\"\n").as_bytes(),
    );
    set_mode(&cfg, 0o600);
    git(&["add", "thinger-patch.toml"]);
    git(&["commit", "-q", "-m", "config"]);
    // A hook a stranger's repository could carry: it leaves a marker when git runs it.
    let marker = dir.join("HOOK-RAN");
    let hook = common::write_file(
        dir,
        "fsmonitor-hook.sh",
        format!("#!/bin/sh\ntouch '{}'\nexit 1\n", marker.display()).as_bytes(),
    );
    set_mode(&hook, 0o755);
    git(&["config", "core.fsmonitor", hook.to_str().unwrap()]);
    // The hook works: plain git runs it.
    git(&["ls-files", "--error-unmatch", "--", "thinger-patch.toml"]);
    assert!(marker.exists(), "the hook under test does not run at all");
    fs::remove_file(&marker).unwrap();

    let o = tp(
        dir,
        &patch_args("fw.bin", &["--profile", "k", "--dry-run"]),
        &[
            ("HOME", dir.to_str().unwrap()),
            ("GIT_CONFIG_NOSYSTEM", "1"),
        ],
    );
    assert_code(&o, 0, "patch in a repository with a hook");
    assert!(
        !marker.exists(),
        "thinger-patch made git run the fsmonitor hook"
    );
    assert!(
        text(&o).contains("which git tracks"),
        "the tracked-secret warning must still work: {}",
        text(&o)
    );
    assert!(!text(&o).contains(CANARY));
}

// =============================================================================================
// Inputs that are not regular files
// =============================================================================================

/// Runs and waits at most `limit`: a command that blocks forever fails the test instead of
/// hanging it.
fn run_bounded(dir: &Path, args: &[&str], limit: Duration) -> Output {
    let mut child = Command::new(common::cli_path())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("thinger-patch {args:?} did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[cfg(unix)]
#[test]
fn fifos_and_devices_are_refused_as_inputs_by_name() {
    let tmp = common::temp_dir();
    let dir = tmp.path();
    let fifo = dir.join("in.fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    for args in [
        vec!["verify", fifo],
        vec!["inspect", fifo],
        vec!["verify", "/dev/zero"],
        patch_args("/dev/zero", &["--set", "a=b", "-o", "x.bin"]),
    ] {
        let o = run_bounded(dir, &args, Duration::from_secs(60));
        assert_code(&o, 3, &format!("{args:?}"));
        let t = text(&o);
        assert!(
            t.contains("not a regular file") && t.contains(args[1]),
            "{t}"
        );
    }
}

#[test]
fn standard_input_is_read_when_asked_with_a_dash() {
    let tmp = common::temp_dir();
    let dir = tmp.path();
    let input = fs::File::open(prebuilt("esp32c3-demo.bin")).unwrap();
    let o = Command::new(common::cli_path())
        .args(["verify", "-"])
        .current_dir(dir)
        .stdin(input)
        .output()
        .unwrap();
    assert_code(&o, 0, "verify -");
    assert!(text(&o).contains("app-image"), "{}", text(&o));
}

// =============================================================================================
// A killed run leaves a temporary file; the next write into that folder removes it
// =============================================================================================

#[cfg(unix)]
#[test]
fn temporaries_of_a_killed_run_are_removed_by_the_next_write() {
    let tmp = common::temp_dir();
    let dir = tmp.path();
    // 16 MiB: the merged demo padded with 0xFF like a full flash dump, so a write takes long
    // enough to be interrupted.
    let mut big = fs::read(prebuilt("esp32c3-demo-merged.bin")).unwrap();
    big.resize(16 << 20, 0xFF);
    common::write_file(dir, "big.bin", &big);

    // A temporary of a live process (this test) is never removed.
    let live = format!(".thinger-patch-{}-0123456789abcdef.tmp", std::process::id());
    fs::write(dir.join(&live), b"in progress").unwrap();

    let mut interrupted = 0;
    for i in 0..40 {
        let mut child = Command::new(common::cli_path())
            .args(patch_args(
                "big.bin",
                &["--set-env", "thinger_credentials=CRED", "-o", "out.bin"],
            ))
            .env("CRED", CANARY)
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Kill as soon as a temporary appears (or at a varying moment).
        let start = Instant::now();
        let wait = Duration::from_millis(5 + (i * 7) % 60);
        loop {
            let seen = temporaries(dir)
                .iter()
                .any(|n| n.ends_with(".tmp") && *n != live);
            if seen || start.elapsed() > wait || child.try_wait().unwrap().is_some() {
                break;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let status = child.wait().unwrap();
        if status.code().is_none() && temporaries(dir).iter().any(|n| *n != live) {
            interrupted += 1;
        }
    }
    assert!(
        interrupted > 0,
        "no run was killed with a temporary file in place: the test proves nothing"
    );
    let o = tp(
        dir,
        &patch_args(
            "big.bin",
            &["--set-env", "thinger_credentials=CRED", "-o", "final.bin"],
        ),
        &[("CRED", CANARY)],
    );
    assert_code(&o, 0, "the next write");
    assert_eq!(
        temporaries(dir),
        vec![live.clone()],
        "stale temporaries remain"
    );
    // out.bin, if a killed run got that far, is a complete image or absent: never a half file.
    if let Ok(out) = fs::read(dir.join("out.bin")) {
        assert_eq!(out.len(), big.len());
    }
}

// =============================================================================================
// Small things a new user tripped over
// =============================================================================================

#[test]
fn gzip_input_needs_a_gz_output_name_and_the_reverse() {
    use std::io::Write;
    let tmp = common::temp_dir();
    let dir = tmp.path();
    let plain = fs::read(prebuilt("esp8266-demo.bin")).unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    common::write_file(dir, "app.bin.gz", &gz.finish().unwrap());
    common::write_file(dir, "app.bin", &plain);
    let o = tp(
        dir,
        &patch_args("app.bin.gz", &["--set", "greeting=z", "-o", "y.bin"]),
        &[],
    );
    assert_code(&o, 2, "gz -> .bin");
    assert!(text(&o).contains("y.bin.gz"), "{}", text(&o));
    assert!(!dir.join("y.bin").exists());
    let o = tp(
        dir,
        &patch_args("app.bin", &["--set", "greeting=z", "-o", "y.bin.gz"]),
        &[],
    );
    assert_code(&o, 2, ".bin -> .gz");
    assert!(!dir.join("y.bin.gz").exists());
}

#[test]
fn every_missing_environment_variable_is_named_at_once() {
    let tmp = common::temp_dir();
    let dir = tmp.path();
    demo(dir, "fw.bin");
    let cfg = common::write_file(
        dir,
        "thinger-patch.toml",
        b"[profiles.k]\nwifi_password = { env = \"MISSING_ONE\" }\nthinger_credentials = { env = \"MISSING_TWO\" }\n",
    );
    #[cfg(unix)]
    set_mode(&cfg, 0o600);
    let o = tp(
        dir,
        &patch_args(
            "fw.bin",
            &[
                "--profile",
                "k",
                "--set-env",
                "greeting=MISSING_THREE",
                "--dry-run",
            ],
        ),
        &[],
    );
    assert_code(&o, 1, "missing variables");
    let t = text(&o);
    for v in ["MISSING_ONE", "MISSING_TWO", "MISSING_THREE"] {
        assert!(t.contains(v), "{v} not named: {t}");
    }
}

#[cfg(unix)]
#[test]
fn a_readable_config_warns_only_when_it_holds_a_secret_value() {
    let tmp = common::temp_dir();
    let dir = tmp.path();
    demo(dir, "fw.bin");
    let cfg = common::write_file(
        dir,
        "thinger-patch.toml",
        b"[profiles.k]\ngreeting = \"hello-there\"\nthinger_credentials = { env = \"CRED\" }\n",
    );
    set_mode(&cfg, 0o644);
    let o = tp(
        dir,
        &patch_args("fw.bin", &["--profile", "k", "--dry-run"]),
        &[("CRED", CANARY)],
    );
    assert_code(&o, 0, "no secret literal");
    assert!(
        !text(&o).contains("readable by group or others"),
        "{}",
        text(&o)
    );

    fs::write(
        &cfg,
        format!("[profiles.k]\nthinger_credentials = \"{CANARY}\"\n"),
    )
    .unwrap();
    set_mode(&cfg, 0o644);
    let o = tp(
        dir,
        &patch_args("fw.bin", &["--profile", "k", "--dry-run"]),
        &[],
    );
    assert_code(&o, 0, "secret literal");
    assert!(
        text(&o).contains("readable by group or others"),
        "{}",
        text(&o)
    );
    assert!(!text(&o).contains(CANARY));
}

#[test]
fn an_output_in_a_missing_folder_names_the_folder() {
    let tmp = common::temp_dir();
    let dir = tmp.path();
    demo(dir, "fw.bin");
    let o = tp(
        dir,
        &patch_args(
            "fw.bin",
            &["--set", "greeting=x", "-o", "no-such-folder/x.bin"],
        ),
        &[],
    );
    assert_code(&o, 3, "missing folder");
    let t = text(&o);
    assert!(
        t.contains("no-such-folder") && !t.contains(".thinger-patch-"),
        "{t}"
    );
}

#[test]
fn verify_accepts_host_elf_on_request() {
    let tmp = common::temp_dir();
    let host = std::env::current_exe().unwrap();
    let o = tp(tmp.path(), &["verify", host.to_str().unwrap()], &[]);
    assert_code(&o, 1, "host ELF without the flag");
    assert!(text(&o).contains("--host-elf"), "{}", text(&o));
    let o = tp(
        tmp.path(),
        &["verify", "--host-elf", host.to_str().unwrap()],
        &[],
    );
    assert_code(&o, 0, "host ELF with --host-elf");
}

#[cfg(unix)]
#[test]
fn a_flash_record_that_is_a_fifo_is_refused_before_any_device_is_touched() {
    let tmp = common::temp_dir();
    let dir = tmp.path();
    demo(dir, "fw.bin");
    let fifo = dir.join("record.fifo");
    mkfifo(&fifo);
    let mut args = vec!["flash", "fw.bin"];
    args.extend(REQ);
    args.extend(["--record", "record.fifo", "--port", "/nonexistent/ttyUSB9"]);
    let o = run_bounded(dir, &args, Duration::from_secs(60));
    assert_code(&o, 3, "--record FIFO");
    let t = text(&o);
    assert!(
        t.contains("record.fifo") && t.contains("not a regular file"),
        "{t}"
    );
    assert!(!t.contains("ttyUSB9"), "the port was tried: {t}");
}
