//! The GitHub Actions workflow of docs/ci.md, run locally: its `run:` steps are extracted from
//! the YAML and run with bash the way the runner runs them, twice (two folders, two times, two
//! time zones), on a small ESP32-C3 firmware with provenance slots built here. Both runs must
//! give byte-identical outputs, `build_time` must be the commit time, the manifest masked.
//!
//! Needs riscv64-unknown-elf-gcc (with picolibc) and esptool: skipped with a message when they
//! are missing, a failure under `CI=true`.

use crate::common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Steps the test does itself instead of running them.
const INSTALL_STEP: &str = "Install thinger-patch";
const BUILD_STEP: &str = "Build the firmware";
/// The commit's time: 2023-11-14T22:13:20Z.
const COMMIT_EPOCH: &str = "1700000000";
const COMMIT_TIME: &str = "2023-11-14T22:13:20Z";
const CUSTOMER_SECRET: &str = "cust-canary-Cr3d!$(x)";
const CUSTOMER_USER: &str = "acme_corp";

// ---------------------------------------------------------------------------------------------
// A YAML subset: block mappings, block sequences, plain/quoted scalars, `|` block scalars.
// Enough for the workflow in docs/ci.md (flow collections are kept as their text).
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
enum Yaml {
    Map(Vec<(String, Yaml)>),
    Seq(Vec<Yaml>),
    Str(String),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Yaml::Str(s) => Some(s),
            _ => None,
        }
    }

    fn pairs(&self) -> &[(String, Yaml)] {
        match self {
            Yaml::Map(m) => m,
            _ => &[],
        }
    }
}

struct Line {
    indent: usize,
    text: String,
}

fn indent_of(s: &str) -> usize {
    s.len() - s.trim_start_matches(' ').len()
}

fn parse_yaml(src: &str) -> Yaml {
    let raw: Vec<&str> = src.lines().collect();
    let mut i = 0;
    parse_node(&raw, &mut i, 0)
}

/// The next meaningful line at or after `i` (skipping blanks and comments).
fn peek(raw: &[&str], i: &mut usize) -> Option<Line> {
    while *i < raw.len() {
        let t = raw[*i].trim_start();
        if t.is_empty() || t.starts_with('#') {
            *i += 1;
            continue;
        }
        return Some(Line {
            indent: indent_of(raw[*i]),
            text: raw[*i].trim().to_string(),
        });
    }
    None
}

fn parse_node(raw: &[&str], i: &mut usize, min_indent: usize) -> Yaml {
    let Some(first) = peek(raw, i) else {
        return Yaml::Str(String::new());
    };
    if first.indent < min_indent {
        return Yaml::Str(String::new());
    }
    let indent = first.indent;
    if first.text == "-" || first.text.starts_with("- ") {
        let mut items = Vec::new();
        while let Some(l) = peek(raw, i) {
            if l.indent != indent || !(l.text == "-" || l.text.starts_with("- ")) {
                break;
            }
            // Re-read the item as if the dash were a space: its content starts at indent + 2.
            let mut copy: Vec<String> = raw.iter().map(|s| s.to_string()).collect();
            copy[*i] = format!("{}  {}", " ".repeat(indent), &l.text[1..].trim_start());
            let refs: Vec<&str> = copy.iter().map(String::as_str).collect();
            items.push(parse_node(&refs, i, indent + 1));
        }
        return Yaml::Seq(items);
    }
    let mut map = Vec::new();
    while let Some(l) = peek(raw, i) {
        if l.indent != indent {
            assert!(
                l.indent < indent,
                "unexpected indentation at line {}: {:?}",
                *i + 1,
                raw[*i]
            );
            break;
        }
        let (key, rest) = split_key(&l.text)
            .unwrap_or_else(|| panic!("expected `key: value` at line {}: {:?}", *i + 1, raw[*i]));
        *i += 1;
        let value = match rest.as_str() {
            "" => match peek(raw, i) {
                Some(n) if n.indent > indent => parse_node(raw, i, indent + 1),
                _ => Yaml::Str(String::new()),
            },
            "|" | "|-" | "|+" => {
                let mut lines = Vec::new();
                let mut block_indent = None;
                while *i < raw.len() {
                    let r = raw[*i];
                    if r.trim().is_empty() {
                        lines.push(String::new());
                        *i += 1;
                        continue;
                    }
                    let ind = indent_of(r);
                    if ind <= indent {
                        break;
                    }
                    let bi = *block_indent.get_or_insert(ind);
                    lines.push(r[bi.min(ind)..].to_string());
                    *i += 1;
                }
                while lines.last().is_some_and(String::is_empty) {
                    lines.pop();
                }
                let mut text = lines.join("\n");
                if rest != "|-" {
                    text.push('\n');
                }
                Yaml::Str(text)
            }
            other => Yaml::Str(scalar(other)),
        };
        map.push((key, value));
    }
    Yaml::Map(map)
}

fn split_key(text: &str) -> Option<(String, String)> {
    let (k, v) = if let Some(k) = text.strip_suffix(':') {
        (k, "")
    } else {
        let p = text.find(": ")?;
        (&text[..p], text[p + 2..].trim())
    };
    Some((scalar(k), v.to_string()))
}

/// A plain or quoted scalar, trailing comment removed.
fn scalar(s: &str) -> String {
    let s = s.trim();
    if let Some(inner) = s.strip_prefix('"').and_then(|r| r.rsplit_once('"')) {
        return inner.0.replace("\\\"", "\"");
    }
    if let Some(inner) = s.strip_prefix('\'').and_then(|r| r.rsplit_once('\'')) {
        return inner.0.replace("''", "'");
    }
    match s.find(" #") {
        Some(p) => s[..p].trim_end().to_string(),
        None => s.to_string(),
    }
}

/// The first ```yaml block of docs/ci.md that defines jobs.
fn workflow() -> Yaml {
    let path = common::repo_root().join("docs/ci.md");
    let doc = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut blocks = doc.split("```yaml\n").skip(1);
    let block = blocks
        .find_map(|b| {
            let body = b.split("\n```").next().unwrap();
            body.contains("\njobs:").then(|| body.to_string())
        })
        .expect("docs/ci.md has a ```yaml block with a workflow (jobs:)");
    parse_yaml(&block)
}

#[test]
fn yaml_subset_parser() {
    let y = parse_yaml(
        "a: 1 # c\nb:\n  - name: x\n    run: |\n      echo \"$X\"\n\n      echo 2\n  - uses: y\n    with:\n      k: 'v'\nc: \"q: r\"\n",
    );
    assert_eq!(y.get("a").unwrap().str(), Some("1"));
    let Some(Yaml::Seq(steps)) = y.get("b") else {
        panic!("{y:?}")
    };
    assert_eq!(steps.len(), 2);
    assert_eq!(
        steps[0].get("run").unwrap().str(),
        Some("echo \"$X\"\n\necho 2\n")
    );
    assert_eq!(
        steps[1].get("with").unwrap().get("k").unwrap().str(),
        Some("v")
    );
    assert_eq!(y.get("c").unwrap().str(), Some("q: r"));
}

// ---------------------------------------------------------------------------------------------
// Running the steps
// ---------------------------------------------------------------------------------------------

/// `${{ secrets.X }}` and `${{ vars.X }}` from `values`; any other expression is an error
/// (extend this test when the workflow uses one).
fn expand(value: &str, values: &BTreeMap<&str, &str>) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("}}")
            .map(|e| start + e)
            .expect("unterminated ${{");
        let expr = rest[start + 3..end].trim();
        let v = values.get(expr).unwrap_or_else(|| {
            panic!(
                "the workflow uses the expression `{expr}`; teach tests/suite/ci_stamping.rs its value"
            )
        });
        out.push_str(v);
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// `NAME=value` and `NAME<<DELIM ... DELIM` lines of a `$GITHUB_ENV` file.
fn read_github_env(path: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if let Some((name, delim)) = line.split_once("<<") {
            let mut value = Vec::new();
            for l in lines.by_ref() {
                if l == delim {
                    break;
                }
                value.push(l);
            }
            out.push((name.to_string(), value.join("\n")));
        } else if let Some((name, value)) = line.split_once('=') {
            out.push((name.to_string(), value.to_string()));
        }
    }
    out
}

struct Run {
    workspace: PathBuf,
    /// Everything the steps printed.
    log: String,
    /// The `$GITHUB_ENV` values after the last step.
    env: BTreeMap<String, String>,
}

/// A checkout of "the firmware repository": one commit at COMMIT_EPOCH, the same commit id
/// wherever it is created.
fn make_checkout(dir: &Path) -> String {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("README.md"), "firmware\n").unwrap();
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args([
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_AUTHOR_NAME", "CI")
            .env("GIT_AUTHOR_EMAIL", "ci@example.com")
            .env("GIT_COMMITTER_NAME", "CI")
            .env("GIT_COMMITTER_EMAIL", "ci@example.com")
            .env("GIT_AUTHOR_DATE", format!("@{COMMIT_EPOCH} +0000"))
            .env("GIT_COMMITTER_DATE", format!("@{COMMIT_EPOCH} +0000"))
            .stdin(Stdio::null())
            .output()
            .expect("running git");
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            common::describe_output(&out)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    git(&["init", "-q"]);
    git(&["add", "README.md"]);
    git(&["commit", "-q", "-m", "firmware"]);
    git(&["rev-parse", "HEAD"])
}

/// Runs the workflow's job in `workspace` with `firmware` as the build step's output.
fn run_workflow(
    workspace: &Path,
    firmware: &Path,
    github_ref: &str,
    tz: &str,
    values: &BTreeMap<&str, &str>,
) -> Run {
    let wf = workflow();
    let jobs = wf.get("jobs").expect("jobs:").pairs();
    assert_eq!(
        jobs.len(),
        1,
        "the test runs a workflow with one job; extend it for more"
    );
    let job = &jobs[0].1;
    let Some(Yaml::Seq(steps)) = job.get("steps") else {
        panic!("the job has no steps: {job:?}")
    };
    let shell = wf
        .get("defaults")
        .and_then(|d| d.get("run"))
        .and_then(|r| r.get("shell"))
        .and_then(Yaml::str);
    assert_eq!(
        shell,
        Some("bash"),
        "the test runs the steps with bash, as `defaults: run: shell: bash` says"
    );

    let sha = make_checkout(workspace);
    let runner = workspace.with_extension("runner");
    fs::create_dir_all(runner.join("home")).unwrap();
    fs::create_dir_all(runner.join("tmp")).unwrap();
    let github_env = runner.join("github_env");
    fs::write(&github_env, "").unwrap();
    let bin_dir = runner.join("bin");
    fs::create_dir_all(&bin_dir).unwrap();

    let mut base: BTreeMap<String, String> = BTreeMap::new();
    base.insert("PATH".into(), std::env::var("PATH").unwrap_or_default());
    base.insert("HOME".into(), runner.join("home").display().to_string());
    base.insert("TMPDIR".into(), runner.join("tmp").display().to_string());
    base.insert("TZ".into(), tz.into());
    base.insert("LANG".into(), "C.UTF-8".into());
    base.insert("CI".into(), "true".into());
    base.insert("GITHUB_ACTIONS".into(), "true".into());
    base.insert("GITHUB_REF".into(), github_ref.into());
    base.insert(
        "GITHUB_REF_NAME".into(),
        github_ref.rsplit('/').next().unwrap().into(),
    );
    base.insert("GITHUB_SHA".into(), sha);
    base.insert("GITHUB_WORKSPACE".into(), workspace.display().to_string());
    base.insert("GITHUB_ENV".into(), github_env.display().to_string());
    for f in ["GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY", "GITHUB_PATH"] {
        let p = runner.join(f.to_ascii_lowercase());
        fs::write(&p, "").unwrap();
        base.insert(f.into(), p.display().to_string());
    }
    base.insert(
        "RUNNER_TEMP".into(),
        runner.join("tmp").display().to_string(),
    );
    base.insert("RUNNER_OS".into(), "Linux".into());
    for (k, v) in job.get("env").map(Yaml::pairs).unwrap_or_default() {
        base.insert(k.clone(), expand(v.str().unwrap_or_default(), values));
    }

    let mut log = String::new();
    let mut seen_install = false;
    let mut seen_build = false;
    for (n, step) in steps.iter().enumerate() {
        let Some(script) = step.get("run").and_then(Yaml::str) else {
            continue;
        };
        let name = step
            .get("name")
            .and_then(Yaml::str)
            .unwrap_or(script)
            .to_string();
        let mut env = base.clone();
        for (k, v) in read_github_env(&github_env) {
            env.insert(k, v);
        }
        if name == INSTALL_STEP {
            // This checkout's thinger-patch instead of the released one.
            seen_install = true;
            let exe = common::cli_path();
            #[cfg(unix)]
            std::os::unix::fs::symlink(&exe, bin_dir.join("thinger-patch")).unwrap();
            let path = format!("{}:{}", bin_dir.display(), base["PATH"]);
            base.insert("PATH".into(), path);
            continue;
        }
        if name == BUILD_STEP {
            seen_build = true;
            let dest = workspace.join(&env["FIRMWARE"]);
            fs::create_dir_all(dest.parent().unwrap()).unwrap();
            fs::copy(firmware, &dest).unwrap();
            continue;
        }
        for (k, v) in step.get("env").map(Yaml::pairs).unwrap_or_default() {
            env.insert(k.clone(), expand(v.str().unwrap_or_default(), values));
        }
        assert!(
            !script.contains("${{"),
            "step {name:?} puts an expression into its script; use the step's env: instead"
        );
        let file = runner.join(format!("step-{n}.sh"));
        fs::write(&file, script).unwrap();
        let out = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&file)
            .current_dir(workspace)
            .env_clear()
            .envs(&env)
            .stdin(Stdio::null())
            .output()
            .expect("running bash");
        let shown = common::describe_output(&out);
        log.push_str(&format!("=== {name}\n{shown}\n"));
        assert!(out.status.success(), "step {name:?} failed:\n{shown}");
    }
    assert!(
        seen_install && seen_build,
        "the workflow lost its {INSTALL_STEP:?} or {BUILD_STEP:?} step; update tests/suite/ci_stamping.rs"
    );
    Run {
        workspace: workspace.to_path_buf(),
        log,
        env: read_github_env(&github_env).into_iter().collect(),
    }
}

/// Every file under `dir`, by relative path.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The firmware: the C demo's ESP32-C3 startup, app descriptor and console, plus provenance slots
// ---------------------------------------------------------------------------------------------

const APP_C: &str = r#"
#include <stddef.h>
#include <ThingerSlot.h>
#include "demo.h"

THINGER_SLOT(fw_version, 16, "dev", 0);
THINGER_SLOT(git_sha, 40, "", 0);
THINGER_SLOT(build_time, 32, "", 0);
THINGER_SLOT(channel, 16, "dev", 0);
THINGER_SLOT(thinger_user, 32, "", 0);
THINGER_SLOT(thinger_credentials, 64, "", THINGER_SLOT_SECRET);

static void put(const char *s)
{
    size_t n = 0;
    while (s[n] != '\0') {
        n++;
    }
    console_write(s, n);
}

int main(void)
{
    for (;;) {
        put(THINGER_SLOT_VALUE(fw_version));
        put(THINGER_SLOT_VALUE(git_sha));
        put(THINGER_SLOT_VALUE(build_time));
        put(THINGER_SLOT_VALUE(channel));
        put(THINGER_SLOT_VALUE(thinger_user));
        put(THINGER_SLOT_VALUE(thinger_credentials)[0] != '\0' ? "credentials set" : "none");
    }
}
"#;

fn tool_on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// Builds the firmware image into `dir`; `None` (after printing why) when the cross compiler or
/// esptool is missing outside CI.
fn build_firmware(dir: &Path) -> Option<PathBuf> {
    const CC: &str = "riscv64-unknown-elf-gcc";
    if !tool_on_path(CC) {
        assert!(
            !common::in_ci(),
            "{CC} is absent, and CI=true makes this a failure (scripts/setup-test-env.sh installs it)"
        );
        common::skip(&format!("{CC} is absent"));
        return None;
    }
    let esptool = common::esptool()?;
    let repo = common::repo_root();
    let c = repo.join("examples/c-firmware");
    let app = dir.join("app.c");
    fs::write(&app, APP_C).unwrap();
    let elf = dir.join("firmware.elf");
    let out = Command::new(CC)
        .args([
            "-march=rv32imc",
            "-mabi=ilp32",
            "--specs=picolibc.specs",
            "-std=gnu11",
            "-Os",
            "-ffreestanding",
            "-ffunction-sections",
            "-fdata-sections",
            "-fno-common",
            "-fno-asynchronous-unwind-tables",
            "-fno-ident",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-nostartfiles",
            "-Wl,--gc-sections",
            "-Wl,--build-id=none",
            "-Wl,--no-warn-rwx-segments",
        ])
        .arg("-I")
        .arg(repo.join("device/arduino/ThingerSlot/src"))
        .arg("-I")
        .arg(c.join("common"))
        .arg("-T")
        .arg(c.join("esp32c3/esp32c3.ld"))
        .arg("-o")
        .arg(&elf)
        .arg(c.join("esp32c3/startup.S"))
        .arg(c.join("esp32c3/app_desc.c"))
        .arg(c.join("esp32c3/console.c"))
        .arg(&app)
        .stdin(Stdio::null())
        .output()
        .expect("running the cross compiler");
    assert!(
        out.status.success(),
        "building the test firmware: {}",
        common::describe_output(&out)
    );
    let bin = dir.join("firmware.bin");
    esptool
        .elf2image(
            &elf,
            &bin,
            "esp32c3",
            &["--flash-mode", "dio", "--flash-size", "4MB"],
        )
        .unwrap();
    Some(bin)
}

fn slot_value(image: &[u8], key: &str) -> String {
    let fw = thinger_patch_core::Firmware::parse(image).unwrap();
    thinger_patch_core::targets::scan(&fw)
        .into_iter()
        .find_map(|f| match f.decoded {
            thinger_patch_core::targets::record::Decoded::Slot(s) if s.key == key => Some(s.value),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no slot {key}"))
}

#[test]
fn workflow_stamps_reproducibly() {
    let tmp = common::temp_dir();
    let Some(firmware) = build_firmware(tmp.path()) else {
        return;
    };
    let Some(esptool) = common::esptool() else {
        return;
    };
    let values: BTreeMap<&str, &str> = [
        ("secrets.THINGER_CREDENTIALS", CUSTOMER_SECRET),
        ("vars.THINGER_USER", CUSTOMER_USER),
    ]
    .into();
    let tag = "refs/tags/v1.4.0";

    // Two runs: different folders (different depths), times, time zones.
    let a = run_workflow(
        &tmp.path().join("a/checkout"),
        &firmware,
        tag,
        "UTC",
        &values,
    );
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let b = run_workflow(
        &tmp.path().join("b/somewhere/else/checkout"),
        &firmware,
        tag,
        "XYZ-13",
        &values,
    );
    let dist_a = files(&a.workspace.join("dist"));
    let dist_b = files(&b.workspace.join("dist"));
    assert_eq!(
        dist_a.keys().collect::<Vec<_>>(),
        ["SHA256SUMS", "firmware-v1.4.0.bin", "firmware-v1.4.0.json"],
        "{}",
        a.log
    );
    for (name, bytes) in &dist_a {
        assert!(
            dist_b.get(name) == Some(bytes),
            "dist/{name} differs between the two runs"
        );
    }

    // build_time is the commit's time, from SOURCE_DATE_EPOCH only.
    assert_eq!(a.env["SOURCE_DATE_EPOCH"], COMMIT_EPOCH);
    let image_path = a.workspace.join("dist/firmware-v1.4.0.bin");
    let image = &dist_a["firmware-v1.4.0.bin"];
    assert_eq!(slot_value(image, "build_time"), COMMIT_TIME);
    assert_eq!(slot_value(image, "git_sha"), a.env["GIT_SHA"]);
    assert_eq!(a.env["GIT_SHA"].len(), 40);
    assert_eq!(slot_value(image, "fw_version"), "v1.4.0");
    assert_eq!(slot_value(image, "channel"), "stable");
    assert_eq!(slot_value(image, "thinger_user"), CUSTOMER_USER);
    assert_eq!(slot_value(image, "thinger_credentials"), CUSTOMER_SECRET);

    // Valid for esptool and for thinger-patch; the image holds a secret: mode 0600.
    esptool
        .image_info(&image_path, Some("esp32c3"))
        .assert_valid("stamped image");
    assert!(
        thinger_patch_core::Firmware::parse(image)
            .unwrap()
            .verify()
            .valid
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&image_path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }

    // The manifest: masked, with the origin of every value; the secret is nowhere in text.
    let manifest: serde_json::Value =
        serde_json::from_slice(&dist_a["firmware-v1.4.0.json"]).unwrap();
    let slots = manifest["results"][0]["slots"].as_array().unwrap();
    let slot = |k: &str| slots.iter().find(|s| s["key"] == k).unwrap().clone();
    assert_eq!(slot("thinger_credentials")["value"], "********");
    assert_eq!(slot("build_time")["value"], COMMIT_TIME);
    assert_eq!(
        slot("build_time")["origin"],
        serde_json::json!({"kind": "environment", "var": "BUILD_TIME"})
    );
    for (name, bytes) in [
        ("manifest", &dist_a["firmware-v1.4.0.json"]),
        ("SHA256SUMS", &dist_a["SHA256SUMS"]),
    ] {
        assert!(
            !String::from_utf8_lossy(bytes).contains(CUSTOMER_SECRET),
            "the secret is in {name}"
        );
    }
    for run in [&a, &b] {
        assert!(
            !run.log.contains(CUSTOMER_SECRET),
            "a step printed the secret:\n{}",
            run.log
        );
    }
    // SHA256SUMS matches the files.
    let sums = String::from_utf8_lossy(&dist_a["SHA256SUMS"]).into_owned();
    assert!(
        sums.contains(&format!(
            "{}  firmware-v1.4.0.bin",
            common::hex(&common::sha256(image))
        )),
        "{sums}"
    );

    // Without the optional customer values (a branch build): still green, slots unchanged.
    let none: BTreeMap<&str, &str> = [
        ("secrets.THINGER_CREDENTIALS", ""),
        ("vars.THINGER_USER", ""),
    ]
    .into();
    let c = run_workflow(
        &tmp.path().join("c/checkout"),
        &firmware,
        "refs/heads/main",
        "UTC",
        &none,
    );
    let dist_c = files(&c.workspace.join("dist"));
    let version = format!("dev-{}", &c.env["GIT_SHA"][..7]);
    let image_c = &dist_c[&format!("firmware-{version}.bin")];
    assert_eq!(slot_value(image_c, "fw_version"), version);
    assert_eq!(slot_value(image_c, "channel"), "dev");
    assert_eq!(slot_value(image_c, "build_time"), COMMIT_TIME);
    assert_eq!(slot_value(image_c, "thinger_credentials"), "");
    assert_eq!(slot_value(image_c, "thinger_user"), "");
}
