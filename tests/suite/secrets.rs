//! Secrets never leak: a canary secret given through every value source (`--set`, `--set-env`,
//! a profile literal, `{ env }`, `{ file }`, `{ prompt = true }` typed on a pseudo-terminal)
//! never appears in the stdout, stderr, JSON or error text of any command (`patch` human and
//! `--json`, `--dry-run`, `inspect`, `verify`), on success and on every error path (value too
//! long, standard-key rule broken, unknown key, required slot missing, output folder not
//! writable, invalid firmware).
//!
//! Also: outputs holding secrets are mode 0600; a group-readable config file and a secret
//! literal in a config file git tracks give warnings; no output file appears when a run fails;
//! the input is never modified; `--in-place` replaces the file atomically (new inode) and leaves
//! no temporary file behind.
//!
//! Works on the committed ESP32-C3 C demo (`examples/c-firmware/prebuilt/`). The prompt source
//! needs `python3` (its `pty` module drives the terminal); without it those cases are skipped
//! with a message (a failure under `CI=true`).

use crate::common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The secret under test (a valid WiFi password, 8..=63 characters).
const CANARY: &str = "canary-SeCr3t-Qx81";
/// Always given for `thinger_credentials` (secret, required) through `{ env }`.
const CRED_CANARY: &str = "cred-canary-Yh52Lw";
const CRED_VAR: &str = "SECRETS_TEST_CRED";
/// Too long for `wifi_password` (capacity 64).
fn long_canary() -> String {
    format!("canary-long-{}", "L".repeat(60))
}
/// 5 characters: breaks the `wifi_password` rule (empty, 8..=63, or 64 hex digits).
const SHORT_CANARY: &str = "cZq7k";
const PW_VAR: &str = "SECRETS_TEST_PW";

/// Texts that must never be shown: the canaries and distinctive pieces of them.
fn forbidden() -> Vec<String> {
    vec![
        CANARY.into(),
        CRED_CANARY.into(),
        long_canary(),
        SHORT_CANARY.into(),
        "SeCr3t".into(),
        "Yh52Lw".into(),
        "LLLLLLLLLL".into(),
        "canary-long".into(),
    ]
}

fn prebuilt(name: &str) -> PathBuf {
    common::repo_root()
        .join("examples/c-firmware/prebuilt")
        .join(name)
}

// =============================================================================================
// Value sources and runs
// =============================================================================================

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    Set,
    SetEnv,
    Literal,
    Env,
    File,
    Prompt,
}

/// One `thinger-patch patch` run with `key` = `value` from `source`.
#[derive(Debug, Clone)]
struct Run {
    source: Source,
    key: String,
    value: String,
    /// Give the required `thinger_credentials` (leave it out to test "required slot missing").
    credentials: bool,
    /// File name (in the run's folder) of the input.
    input: String,
    /// Everything after the input and the config/profile options.
    args: Vec<String>,
}

impl Run {
    fn new(source: Source, key: &str, value: &str, args: &[&str]) -> Run {
        Run {
            source,
            key: key.into(),
            value: value.into(),
            credentials: true,
            input: "fw.bin".into(),
            args: args.iter().map(|s| s.to_string()).collect(),
        }
    }
}

/// What a command printed.
#[derive(Debug)]
struct Captured {
    label: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
    /// What the terminal showed (prompt runs only).
    tty: String,
    /// Whether the prompt asked for (and got) the value.
    typed: bool,
}

impl Captured {
    fn all(&self) -> String {
        format!(
            "--- stdout ---\n{}\n--- stderr ---\n{}\n--- terminal ---\n{}",
            self.stdout, self.stderr, self.tty
        )
    }

    fn assert_clean(&self) {
        for f in forbidden() {
            for (name, text) in [
                ("stdout", &self.stdout),
                ("stderr", &self.stderr),
                ("terminal", &self.tty),
            ] {
                assert!(
                    !text.contains(&f),
                    "{}: a secret ({f:?}) appears on {name} (exit {:?}):\n{}",
                    self.label,
                    self.code,
                    self.all()
                );
            }
        }
    }

    fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "{}: expected exit {code}\n{}",
            self.label,
            self.all()
        );
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{}: stdout is not JSON ({e}):\n{}", self.label, self.all()))
    }
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
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

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Writes the config (and the secret file) for `run` into `dir`; returns the config path.
fn write_config(dir: &Path, run: &Run, config_mode: u32) -> PathBuf {
    let mut text = String::from(
        "[profiles.p]\nwifi_ssid = \"SecretsTestNet\"\nthinger_user = \"demo_user\"\nthinger_device = \"secrets_dev\"\n",
    );
    if run.credentials {
        text.push_str(&format!(
            "thinger_credentials = {{ env = \"{CRED_VAR}\" }}\n"
        ));
    }
    let key = toml_str(&run.key);
    match run.source {
        Source::Set | Source::SetEnv => {}
        Source::Literal => text.push_str(&format!("{key} = {}\n", toml_str(&run.value))),
        Source::Env => text.push_str(&format!("{key} = {{ env = \"{PW_VAR}\" }}\n")),
        Source::File => {
            let f = common::write_file(dir, "secret.txt", format!("{}\n", run.value).as_bytes());
            set_mode(&f, 0o600);
            text.push_str(&format!("{key} = {{ file = \"secret.txt\" }}\n"));
        }
        Source::Prompt => text.push_str(&format!("{key} = {{ prompt = true }}\n")),
    }
    let cfg = common::write_file(dir, "thinger-patch.toml", text.as_bytes());
    set_mode(&cfg, config_mode);
    cfg
}

/// The full argument list of `run`.
fn argv(run: &Run, cfg: &Path) -> Vec<String> {
    let mut a: Vec<String> = vec![
        "patch".into(),
        run.input.clone(),
        "--config".into(),
        cfg.to_str().unwrap().into(),
        "--profile".into(),
        "p".into(),
    ];
    match run.source {
        Source::Set => {
            a.push("--set".into());
            a.push(format!("{}={}", run.key, run.value));
        }
        Source::SetEnv => {
            a.push("--set-env".into());
            a.push(format!("{}={PW_VAR}", run.key));
        }
        _ => {}
    }
    a.extend(run.args.iter().cloned());
    a
}

fn envs(run: &Run) -> Vec<(&'static str, String)> {
    let mut e = vec![(CRED_VAR, CRED_CANARY.to_string())];
    if matches!(run.source, Source::SetEnv | Source::Env) {
        e.push((PW_VAR, run.value.clone()));
    }
    e
}

/// Runs `thinger-patch args` in `dir` with stdin closed.
fn exec(dir: &Path, args: &[String], env: &[(&str, String)], label: &str) -> Captured {
    let mut cmd = Command::new(common::cli_path());
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove(PW_VAR)
        .env_remove(CRED_VAR)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running thinger-patch");
    Captured {
        label: label.into(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        tty: String::new(),
        typed: false,
    }
}

/// Drives a command on a pseudo-terminal (stdin and controlling terminal; stdout and stderr
/// go to files): types `value` + Enter once the program has turned echo off (so the terminal
/// never echoes it), then collects everything.
const PTY_DRIVER: &str = r#"
import fcntl, os, select, subprocess, sys, termios, time
value, out_dir, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
master, slave = os.openpty()
def make_controlling_tty():
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)
with open(os.path.join(out_dir, "stdout"), "wb") as so, open(os.path.join(out_dir, "stderr"), "wb") as se:
    p = subprocess.Popen(argv, stdin=slave, stdout=so, stderr=se, start_new_session=True,
                         preexec_fn=make_controlling_tty)
os.close(slave)
tty = b""
typed = False
deadline = time.monotonic() + 60
while time.monotonic() < deadline:
    if not typed and p.poll() is None:
        try:
            lflag = termios.tcgetattr(master)[3]
        except termios.error:
            lflag = termios.ECHO
        if not lflag & termios.ECHO:
            os.write(master, value.encode() + b"\n")
            typed = True
    r, _, _ = select.select([master], [], [], 0.02)
    if r:
        try:
            data = os.read(master, 4096)
        except OSError:
            data = b""
        if not data:
            break
        tty += data
    elif p.poll() is not None:
        break
code = p.wait(timeout=60)
with open(os.path.join(out_dir, "tty"), "wb") as f:
    f.write(tty)
with open(os.path.join(out_dir, "result"), "w") as f:
    f.write(f"{code} {int(typed)}\n")
"#;

/// `Some(python3)` when a pseudo-terminal can be driven; `None` after printing why (a panic
/// under CI).
fn pty_driver() -> Option<&'static Path> {
    static OK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *OK.get_or_init(|| {
        Command::new("python3")
            .args([
                "-c",
                "import os, pty, termios, fcntl; os.close(os.openpty()[0])",
            ])
            .stdin(Stdio::null())
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    });
    if ok {
        return Some(Path::new("python3"));
    }
    let msg = "python3 with a working pty module is needed to type a { prompt = true } value on a pseudo-terminal";
    assert!(!common::in_ci(), "{msg} (CI=true makes this a failure)");
    common::skip(&format!("the prompt cases: {msg}"));
    None
}

fn exec_pty(
    dir: &Path,
    args: &[String],
    env: &[(&str, String)],
    value: &str,
    label: &str,
) -> Captured {
    let python = pty_driver().expect("checked by the caller");
    let io = tempfile::Builder::new()
        .prefix("pty-io-")
        .tempdir()
        .unwrap();
    let mut cmd = Command::new(python);
    cmd.arg("-c")
        .arg(PTY_DRIVER)
        .arg(value)
        .arg(io.path())
        .arg(common::cli_path())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove(PW_VAR)
        .env_remove(CRED_VAR)
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running python3");
    assert!(
        out.status.success(),
        "{label}: the pty driver failed:\n{}",
        common::describe_output(&out)
    );
    let read =
        |n: &str| String::from_utf8_lossy(&fs::read(io.path().join(n)).unwrap()).into_owned();
    let result = read("result");
    let mut it = result.split_whitespace();
    let code: i32 = it.next().unwrap().parse().unwrap();
    let typed = it.next() == Some("1");
    Captured {
        label: label.into(),
        code: Some(code),
        stdout: read("stdout"),
        stderr: read("stderr"),
        tty: read("tty"),
        typed,
    }
}

/// A folder with the inputs; checks that the inputs stay byte-identical.
struct Workspace {
    _tmp: tempfile::TempDir,
    dir: PathBuf,
    inputs: Vec<(PathBuf, [u8; 32])>,
}

impl Workspace {
    fn new() -> Workspace {
        let tmp = common::temp_dir();
        let dir = tmp.path().to_path_buf();
        let mut inputs = Vec::new();
        for (name, src) in [
            ("fw.bin", "esp32c3-demo.bin"),
            ("fw.elf", "esp32c3-demo.elf"),
        ] {
            let bytes = fs::read(prebuilt(src)).unwrap();
            let p = common::write_file(&dir, name, &bytes);
            inputs.push((p, common::sha256(&bytes)));
        }
        let mut bad = fs::read(prebuilt("esp32c3-demo.bin")).unwrap();
        let w = common::walk_app_image(&bad, false);
        bad[w.checksum_offset] ^= 0x01;
        let p = common::write_file(&dir, "corrupt.bin", &bad);
        inputs.push((p, common::sha256(&bad)));
        Workspace {
            _tmp: tmp,
            dir,
            inputs,
        }
    }

    fn listing(&self) -> BTreeSet<String> {
        fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn assert_inputs_unchanged(&self, label: &str) {
        for (p, h) in &self.inputs {
            assert_eq!(
                &common::sha256(&fs::read(p).unwrap()),
                h,
                "{label}: the input {} was modified",
                p.display()
            );
        }
    }

    /// Runs `run` and returns what it printed and the files it created.
    fn patch(&self, run: &Run, label: &str) -> Option<(Captured, BTreeSet<String>)> {
        self.patch_with_config_mode(run, label, 0o600)
    }

    fn patch_with_config_mode(
        &self,
        run: &Run,
        label: &str,
        config_mode: u32,
    ) -> Option<(Captured, BTreeSet<String>)> {
        if run.source == Source::Prompt && pty_driver().is_none() {
            return None;
        }
        let cfg = write_config(&self.dir, run, config_mode);
        let before = self.listing();
        let args = argv(run, &cfg);
        let label = format!(
            "{label} [{:?}]: thinger-patch {}",
            run.source,
            args.join(" ")
        );
        let env = envs(run);
        let c = if run.source == Source::Prompt {
            exec_pty(&self.dir, &args, &env, &run.value, &label)
        } else {
            exec(&self.dir, &args, &env, &label)
        };
        c.assert_clean();
        self.assert_inputs_unchanged(&label);
        let created = self.listing().difference(&before).cloned().collect();
        Some((c, created))
    }

    fn run_plain(&self, args: &[&str], label: &str) -> Captured {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let c = exec(&self.dir, &args, &[], label);
        c.assert_clean();
        self.assert_inputs_unchanged(label);
        c
    }
}

/// The masked value of `key` in a `patch --json` document.
fn json_slot_value(doc: &serde_json::Value, key: &str) -> String {
    doc["results"][0]["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .find(|s| s["key"] == key)
        .unwrap_or_else(|| panic!("slot {key} in {doc}"))["value"]
        .as_str()
        .unwrap()
        .to_string()
}

// =============================================================================================
// Successful runs: every command, every source
// =============================================================================================

fn successful_runs(source: Source) {
    let ws = Workspace::new();
    let name = |s: &str| format!("{source:?}-{s}").to_lowercase();

    // patch, human summary.
    let out_bin = name("out.bin");
    let run = Run::new(source, "wifi_password", CANARY, &["-o", &out_bin]);
    let Some((c, created)) = ws.patch(&run, "patch") else {
        return;
    };
    c.assert_code(0);
    assert_eq!(created, BTreeSet::from([out_bin.clone()]), "{}", c.label);
    if source == Source::Prompt {
        assert!(c.typed, "{}: the prompt never asked", c.label);
    }
    assert!(
        c.stdout.contains("********"),
        "{}: the summary shows the secret masked:\n{}",
        c.label,
        c.all()
    );
    let set_warning = c
        .stderr
        .lines()
        .any(|l| l.starts_with("warning") && l.contains("--set") && l.contains("wifi_password"));
    assert_eq!(
        set_warning,
        source == Source::Set,
        "{}: a warning about --set for a secret (and only for --set):\n{}",
        c.label,
        c.all()
    );
    let out_path = ws.dir.join(&out_bin);
    let bytes = fs::read(&out_path).unwrap();
    assert_eq!(
        common::find_all(&bytes, CANARY.as_bytes()).len(),
        1,
        "{}: the output holds the secret once",
        c.label
    );
    assert_eq!(common::find_all(&bytes, CRED_CANARY.as_bytes()).len(), 1);
    assert!(common::walk_app_image(&bytes, false).is_valid());
    #[cfg(unix)]
    assert_eq!(
        mode(&out_path),
        0o600,
        "{}: output holding secrets",
        c.label
    );

    // patch --json.
    let out_json = name("json.bin");
    let run = Run::new(
        source,
        "wifi_password",
        CANARY,
        &["-o", &out_json, "--json"],
    );
    let (c, created) = ws.patch(&run, "patch --json").unwrap();
    c.assert_code(0);
    assert_eq!(created, BTreeSet::from([out_json.clone()]), "{}", c.label);
    let doc = c.json();
    assert_eq!(
        json_slot_value(&doc, "wifi_password"),
        "********",
        "{}",
        c.label
    );
    assert_eq!(json_slot_value(&doc, "thinger_credentials"), "********");
    assert_eq!(json_slot_value(&doc, "wifi_ssid"), "SecretsTestNet");
    #[cfg(unix)]
    assert_eq!(mode(&ws.dir.join(&out_json)), 0o600, "{}", c.label);

    // --dry-run, human and JSON, and on the ELF.
    for (args, what) in [
        (vec!["-o", "dry.bin", "--dry-run"], "--dry-run"),
        (
            vec!["-o", "dry.bin", "--dry-run", "--json"],
            "--dry-run --json",
        ),
    ] {
        let run = Run::new(source, "wifi_password", CANARY, &args);
        let (c, created) = ws.patch(&run, what).unwrap();
        c.assert_code(0);
        assert!(
            created.is_empty(),
            "{}: --dry-run wrote {created:?}",
            c.label
        );
    }
    let out_elf = name("out.elf");
    let mut run = Run::new(source, "wifi_password", CANARY, &["-o", &out_elf, "--json"]);
    run.input = "fw.elf".into();
    let (c, _) = ws.patch(&run, "patch ELF --json").unwrap();
    c.assert_code(0);
    assert_eq!(json_slot_value(&c.json(), "wifi_password"), "********");
    #[cfg(unix)]
    assert_eq!(mode(&ws.dir.join(&out_elf)), 0o600, "{}", c.label);

    // inspect and verify of the outputs.
    for f in [&out_bin, &out_elf] {
        let c = ws.run_plain(&["inspect", f], "inspect");
        c.assert_code(0);
        assert!(c.stdout.contains("********"), "{}", c.all());
        let c = ws.run_plain(&["inspect", f, "--json"], "inspect --json");
        c.assert_code(0);
        let doc = c.json();
        let pw = doc["slots"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == "wifi_password")
            .expect("wifi_password slot")
            .clone();
        assert_eq!(pw["value"], "********");
        assert_eq!(pw["state"], "patched");
        let c = ws.run_plain(&["verify", f], "verify");
        c.assert_code(0);
        let c = ws.run_plain(&["verify", f, "--json"], "verify --json");
        c.assert_code(0);
        assert_eq!(c.json()["valid"], true);
    }
    // A patched file patched again: the old secret is not shown either.
    let c = ws.run_plain(
        &[
            "patch",
            &out_bin,
            "--set",
            "greeting=again",
            "-o",
            "again.bin",
            "--json",
        ],
        "re-patch",
    );
    c.assert_code(0);
    assert_eq!(json_slot_value(&c.json(), "wifi_password"), "********");
    #[cfg(unix)]
    assert_eq!(mode(&ws.dir.join("again.bin")), 0o600, "{}", c.label);
}

#[test]
fn canary_never_shown_with_set() {
    successful_runs(Source::Set);
}

#[test]
fn canary_never_shown_with_set_env() {
    successful_runs(Source::SetEnv);
}

#[test]
fn canary_never_shown_with_profile_literal() {
    successful_runs(Source::Literal);
}

#[test]
fn canary_never_shown_with_env_source() {
    successful_runs(Source::Env);
}

#[test]
fn canary_never_shown_with_file_source() {
    successful_runs(Source::File);
}

#[test]
fn canary_never_shown_with_prompt_on_a_pty() {
    successful_runs(Source::Prompt);
}

// =============================================================================================
// Error paths: every source
// =============================================================================================

fn error_runs(source: Source) {
    let ws = Workspace::new();
    let long = long_canary();
    struct Case<'a> {
        what: &'a str,
        key: &'a str,
        value: &'a str,
        credentials: bool,
        input: &'a str,
        out: &'a str,
        code: i32,
        /// The error must name this.
        names: &'a str,
    }
    let cases = [
        Case {
            what: "value too long",
            key: "wifi_password",
            value: &long,
            credentials: true,
            input: "fw.bin",
            out: "never.bin",
            code: 1,
            names: "wifi_password",
        },
        Case {
            what: "standard-key rule (5-character WiFi password)",
            key: "wifi_password",
            value: SHORT_CANARY,
            credentials: true,
            input: "fw.bin",
            out: "never.bin",
            code: 1,
            names: "wifi_password",
        },
        Case {
            what: "unknown key (typo)",
            key: "wifi_pasword",
            value: CANARY,
            credentials: true,
            input: "fw.bin",
            out: "never.bin",
            code: 1,
            names: "wifi_pasword",
        },
        Case {
            what: "required slot missing",
            key: "wifi_password",
            value: CANARY,
            credentials: false,
            input: "fw.bin",
            out: "never.bin",
            code: 1,
            names: "thinger_credentials",
        },
        Case {
            what: "output folder missing",
            key: "wifi_password",
            value: CANARY,
            credentials: true,
            input: "fw.bin",
            out: "no-such-dir/never.bin",
            code: 3,
            names: "no-such-dir",
        },
        Case {
            what: "output folder is a file",
            key: "wifi_password",
            value: CANARY,
            credentials: true,
            input: "fw.bin",
            out: "fw.bin/never.bin",
            code: 3,
            names: "fw.bin",
        },
        Case {
            what: "invalid firmware",
            key: "wifi_password",
            value: CANARY,
            credentials: true,
            input: "corrupt.bin",
            out: "never.bin",
            code: 1,
            names: "corrupt.bin",
        },
    ];
    let mut read_only = None;
    #[cfg(unix)]
    if !is_root() {
        let ro = ws.dir.join("readonly");
        fs::create_dir(&ro).unwrap();
        set_mode(&ro, 0o555);
        read_only = Some(ro);
    }
    let ro_case = Case {
        what: "output folder not writable",
        key: "wifi_password",
        value: CANARY,
        credentials: true,
        input: "fw.bin",
        out: "readonly/never.bin",
        code: 3,
        names: "readonly",
    };
    for case in cases.iter().chain(read_only.as_ref().map(|_| &ro_case)) {
        for json in [false, true] {
            let mut args = vec!["-o", case.out];
            if json {
                args.push("--json");
            }
            let mut run = Run::new(source, case.key, case.value, &args);
            run.credentials = case.credentials;
            run.input = case.input.into();
            let Some((c, created)) = ws.patch(&run, case.what) else {
                return;
            };
            c.assert_code(case.code);
            assert!(
                created.is_empty(),
                "{}: a failed run wrote {created:?}",
                c.label
            );
            assert!(
                c.stderr.contains("error") && c.stderr.contains(case.names),
                "{}: the error names {:?}:\n{}",
                c.label,
                case.names,
                c.all()
            );
        }
    }
    if let Some(ro) = read_only {
        set_mode(&ro, 0o755);
        assert!(
            fs::read_dir(&ro).unwrap().next().is_none(),
            "temp file left"
        );
    }
    // inspect / verify of an invalid file name the problem without any value.
    let c = ws.run_plain(&["inspect", "corrupt.bin", "--json"], "inspect corrupt");
    c.assert_code(1);
    let c = ws.run_plain(&["verify", "corrupt.bin"], "verify corrupt");
    c.assert_code(1);
}

#[test]
fn error_paths_with_set() {
    error_runs(Source::Set);
}

#[test]
fn error_paths_with_set_env() {
    error_runs(Source::SetEnv);
}

#[test]
fn error_paths_with_profile_literal() {
    error_runs(Source::Literal);
}

#[test]
fn error_paths_with_env_source() {
    error_runs(Source::Env);
}

#[test]
fn error_paths_with_file_source() {
    error_runs(Source::File);
}

#[test]
fn error_paths_with_prompt_on_a_pty() {
    error_runs(Source::Prompt);
}

/// A slip of the hand, `--set KEY VALUE` (a space instead of `=`), is a usage error that must
/// not print the value it refuses: the secret would land in terminal logs and CI output.
#[test]
fn set_with_a_space_instead_of_equals_does_not_echo_the_value() {
    let ws = Workspace::new();
    for args in [
        &[
            "patch",
            "fw.bin",
            "--set",
            "wifi_password",
            CANARY,
            "-o",
            "never.bin",
        ][..],
        &[
            "patch",
            "fw.bin",
            "-o",
            "never.bin",
            "--set",
            "wifi_password",
            CANARY,
        ][..],
    ] {
        let before = ws.listing();
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let c = exec(&ws.dir, &args, &[], "--set KEY VALUE");
        c.assert_code(2);
        assert_eq!(ws.listing(), before);
        c.assert_clean();
    }
}

/// Negative control for the leak check: the same canary as a NON-secret value (`greeting`) is
/// shown by `patch` and `inspect`, so the scans above would see a leaked secret.
#[test]
fn control_a_non_secret_value_is_shown() {
    let ws = Workspace::new();
    let run = Run::new(
        Source::SetEnv,
        "greeting",
        CANARY,
        &["-o", "shown.bin", "--json"],
    );
    let cfg = write_config(&ws.dir, &run, 0o600);
    let c = exec(&ws.dir, &argv(&run, &cfg), &envs(&run), "non-secret canary");
    c.assert_code(0);
    assert!(
        c.stdout.contains(CANARY),
        "patch --json shows a non-secret value:\n{}",
        c.all()
    );
    let c = exec(
        &ws.dir,
        &["inspect".into(), "shown.bin".into()],
        &[],
        "inspect non-secret",
    );
    assert!(c.stdout.contains(CANARY), "{}", c.all());
}

// =============================================================================================
// Warnings, modes, --in-place
// =============================================================================================

fn warning_lines(c: &Captured) -> Vec<&str> {
    c.stderr
        .lines()
        .filter(|l| l.starts_with("warning"))
        .collect()
}

#[cfg(unix)]
#[test]
fn group_readable_config_with_a_secret_literal_gives_a_warning() {
    let ws = Workspace::new();
    let run = Run::new(Source::Literal, "wifi_password", CANARY, &["-o", "a.bin"]);
    let (c, _) = ws
        .patch_with_config_mode(&run, "config 0600", 0o600)
        .unwrap();
    c.assert_code(0);
    assert!(
        !warning_lines(&c)
            .iter()
            .any(|l| l.contains("thinger-patch.toml")),
        "{}: no warning for a 0600 config:\n{}",
        c.label,
        c.all()
    );
    let run = Run::new(Source::Literal, "wifi_password", CANARY, &["-o", "b.bin"]);
    let (c, _) = ws
        .patch_with_config_mode(&run, "config 0644", 0o644)
        .unwrap();
    c.assert_code(0);
    assert!(
        warning_lines(&c)
            .iter()
            .any(|l| l.contains("thinger-patch.toml") && l.contains("chmod")),
        "{}: a warning about the group-readable config:\n{}",
        c.label,
        c.all()
    );
    // The same warning with --json (on stderr, stdout stays JSON).
    let run = Run::new(
        Source::Literal,
        "wifi_password",
        CANARY,
        &["-o", "c.bin", "--json"],
    );
    let (c, _) = ws
        .patch_with_config_mode(&run, "config 0644 --json", 0o644)
        .unwrap();
    c.assert_code(0);
    let _ = c.json();
    assert!(
        warning_lines(&c)
            .iter()
            .any(|l| l.contains("thinger-patch.toml")),
        "{}",
        c.all()
    );
}

#[test]
fn secret_literal_in_a_git_tracked_config_gives_a_warning() {
    if Command::new("git").arg("--version").output().is_err() {
        assert!(
            !common::in_ci(),
            "git is needed (CI=true makes this a failure)"
        );
        common::skip("git is absent");
        return;
    }
    let ws = Workspace::new();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(["-c", "init.defaultBranch=main"])
            .args(args)
            .current_dir(&ws.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            common::describe_output(&out)
        );
    };
    git(&["init", "-q", "."]);
    let warns_about_git = |c: &Captured| {
        warning_lines(c)
            .iter()
            .any(|l| l.contains("wifi_password") && l.contains("git"))
    };

    // Untracked: no warning.
    let run = Run::new(Source::Literal, "wifi_password", CANARY, &["-o", "a.bin"]);
    let (c, _) = ws.patch(&run, "untracked config").unwrap();
    c.assert_code(0);
    assert!(
        !warns_about_git(&c),
        "{}: untracked, no warning:\n{}",
        c.label,
        c.all()
    );

    // Tracked (added to the index): a warning naming the key, never the value.
    git(&["add", "thinger-patch.toml"]);
    let run = Run::new(Source::Literal, "wifi_password", CANARY, &["-o", "b.bin"]);
    let (c, _) = ws.patch(&run, "tracked config").unwrap();
    c.assert_code(0);
    assert!(
        warns_about_git(&c),
        "{}: tracked, a warning:\n{}",
        c.label,
        c.all()
    );
    let run = Run::new(
        Source::Literal,
        "wifi_password",
        CANARY,
        &["-o", "c.bin", "--json"],
    );
    let (c, _) = ws.patch(&run, "tracked config --json").unwrap();
    c.assert_code(0);
    assert!(warns_about_git(&c), "{}", c.all());
    let doc = c.json();
    assert!(
        doc["results"][0]["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("git")),
        "the JSON summary lists the warning: {doc}"
    );

    // A secret from { env } in the same tracked file is fine.
    let run = Run::new(Source::Env, "wifi_password", CANARY, &["-o", "d.bin"]);
    let (c, _) = ws.patch(&run, "tracked config, env source").unwrap();
    c.assert_code(0);
    assert!(
        !warns_about_git(&c),
        "{}: {{ env }} is not a literal:\n{}",
        c.label,
        c.all()
    );
}

#[cfg(unix)]
#[test]
fn in_place_replaces_atomically_and_leaves_no_temporary_file() {
    use std::os::unix::fs::MetadataExt;
    let ws = Workspace::new();
    let original = fs::read(prebuilt("esp32c3-demo.bin")).unwrap();
    let target = common::write_file(&ws.dir, "inplace.bin", &original);
    set_mode(&target, 0o644);
    let inode = fs::metadata(&target).unwrap().ino();

    // A refused run leaves the file as it was (same inode, same bytes).
    let run = {
        let mut r = Run::new(Source::Env, "wifi_password", SHORT_CANARY, &["--in-place"]);
        r.input = "inplace.bin".into();
        r
    };
    let (c, created) = ws.patch(&run, "--in-place refused").unwrap();
    c.assert_code(1);
    assert!(created.is_empty(), "{created:?}");
    let before = ws.listing();
    assert_eq!(fs::read(&target).unwrap(), original);
    assert_eq!(fs::metadata(&target).unwrap().ino(), inode);

    // A successful run replaces it with a new file.
    let mut run = Run::new(Source::Env, "wifi_password", CANARY, &["--in-place"]);
    run.input = "inplace.bin".into();
    let (c, created) = ws.patch(&run, "--in-place").unwrap();
    c.assert_code(0);
    assert!(created.is_empty(), "{}: created {created:?}", c.label);
    assert_eq!(
        ws.listing(),
        before,
        "{}: files appeared or vanished",
        c.label
    );
    assert!(
        !ws.listing().iter().any(|n| n.starts_with(".thinger-patch")),
        "temporary file left behind"
    );
    let meta = fs::metadata(&target).unwrap();
    assert_ne!(
        meta.ino(),
        inode,
        "--in-place must rename a new file over the input"
    );
    let bytes = fs::read(&target).unwrap();
    assert_ne!(bytes, original);
    assert_eq!(bytes.len(), original.len());
    assert!(common::walk_app_image(&bytes, false).is_valid());
    assert_eq!(common::find_all(&bytes, CANARY.as_bytes()).len(), 1);
    assert_eq!(mode(&target), 0o600, "the replaced file holds secrets");
}

#[cfg(unix)]
fn is_root() -> bool {
    fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
