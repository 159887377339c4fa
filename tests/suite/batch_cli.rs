//! `thinger-patch batch` and `thinger-patch ledger`: one firmware, many identities, a real
//! SQLite ledger. Boards are the project's ROM-loader simulators on pseudo-terminals (no chip
//! here; no DTR/RTS, so `--before no-reset --after no-reset`), several at once.
#![cfg(unix)]

use crate::common;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use thinger_patch_test_kit::rom_loader::{Chip, Config, Sim};

const APP: &str = "examples/c-firmware/prebuilt/esp32c3-demo.bin";
const MERGED: &str = "examples/c-firmware/prebuilt/esp32c3-demo-merged.bin";
const KEY: &str = "ledger-key-for-tests";
const PASSWORD: &str = "batch-pw-CANARY-31";

/// Runs thinger-patch; the canary secret must not be in its output.
fn tp(dir: &Path, args: &[&str]) -> Output {
    let o = run(dir, args);
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(!shown.contains(PASSWORD), "the secret was shown:\n{shown}");
    o
}

/// Runs thinger-patch (`ledger export --reveal` shows secrets: the user asked).
fn run(dir: &Path, args: &[&str]) -> Output {
    Command::new(common::cli_path())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", dir)
        .env("THINGER_PATCH_LEDGER_KEY", KEY)
        .env("PW", PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("running thinger-patch")
}

fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", common::describe_output(o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn repo(rel: &str) -> String {
    common::repo_root().join(rel).display().to_string()
}

fn inspect(dir: &Path, file: &Path) -> serde_json::Value {
    serde_json::from_str(&ok(&tp(
        dir,
        &["inspect", file.to_str().unwrap(), "--json"],
    )))
    .unwrap()
}

fn slot(v: &serde_json::Value, key: &str) -> String {
    v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["key"] == key)
        .map(|s| s["value"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn out_dir_from_a_csv_then_generated_identities_are_recorded_and_never_reissued() {
    let dir = common::temp_dir();
    let d = dir.path();
    std::fs::write(
        d.join("devices.csv"),
        "thinger_device,wifi_ssid\nkitchen,HomeNet\ngarage,GarageNet\nporch,HomeNet\n",
    )
    .unwrap();
    let common_args = [
        "--set",
        "thinger_user=alice",
        "--set-env",
        "wifi_password=PW",
        "--ledger",
        "series.db",
    ];
    let app = repo(APP);
    let mut args = vec![
        "batch",
        &app,
        "--devices",
        "devices.csv",
        "--out-dir",
        "out",
    ];
    args.extend(common_args);
    let out = ok(&tp(d, &args));
    assert!(
        out.contains("3 device(s) this run; 0 identities left"),
        "{out}"
    );
    let mut creds = BTreeSet::new();
    let export = common::ledger_revealed(d, "series.db", KEY);
    for (device, ssid) in [
        ("kitchen", "HomeNet"),
        ("garage", "GarageNet"),
        ("porch", "HomeNet"),
    ] {
        let file: PathBuf = d.join("out").join(format!("esp32c3-demo.{device}.bin"));
        if let Some(esptool) = common::esptool() {
            esptool
                .image_info(&file, Some("esp32c3"))
                .assert_valid(device);
        }
        let v = inspect(d, &file);
        assert_eq!(slot(&v, "thinger_device"), device);
        assert_eq!(slot(&v, "wifi_ssid"), ssid);
        assert_eq!(slot(&v, "thinger_credentials"), "********");
        // Its own credentials (from the CSPRNG, revealed with the key) are in its image.
        let cred = common::revealed_value(&export, device, "thinger_credentials");
        assert_eq!(cred.len(), 64, "fills the 64-byte slot");
        let bytes = std::fs::read(&file).unwrap();
        assert_eq!(
            common::find_all(&bytes, cred.as_bytes()).len(),
            1,
            "{device}'s own credentials"
        );
        creds.insert(cred);
    }
    assert_eq!(creds.len(), 3, "distinct credentials");
    // Secrets at rest: the password is not in the database file in clear.
    let db = std::fs::read(d.join("series.db")).unwrap();
    assert!(common::find_all(&db, PASSWORD.as_bytes()).is_empty());
    // The same command again: every identity is used, nothing is written twice.
    let before = std::fs::read_dir(d.join("out")).unwrap().count();
    let out = ok(&tp(d, &args));
    assert!(out.contains("0 device(s) this run"), "{out}");
    assert_eq!(std::fs::read_dir(d.join("out")).unwrap().count(), before);
    // The ledger lists them, verified, secrets masked.
    let list: serde_json::Value = serde_json::from_str(&ok(&tp(
        d,
        &["ledger", "--ledger", "series.db", "list", "--json"],
    )))
    .unwrap();
    let states: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(states, ["verified"; 3]);
    assert!(
        !list
            .to_string()
            .contains(&*creds.iter().next().unwrap().clone())
    );

    // Generated identities in another folder: bar-01, bar-02.
    let mut generated = vec![
        "batch",
        &app,
        "--generate",
        "2",
        "--device-id",
        "bar-{n:02}",
        "--out-dir",
        "gen",
    ];
    generated.extend(common_args);
    generated.extend(["--set", "wifi_ssid=GenNet"]);
    ok(&tp(d, &generated));
    for n in ["bar-01", "bar-02"] {
        assert!(
            d.join("gen")
                .join(format!("esp32c3-demo.{n}.bin"))
                .is_file(),
            "{n}"
        );
    }
}

#[test]
fn bad_identities_are_all_listed_before_anything_is_reserved_or_written() {
    let dir = common::temp_dir();
    let d = dir.path();
    std::fs::write(
        d.join("devices.csv"),
        "thinger_device,wifi_sid\nkitchen,HomeNet\nkitchen,Other\nthis id has spaces,HomeNet\n",
    )
    .unwrap();
    let app = repo(APP);
    let o = tp(
        d,
        &[
            "batch",
            &app,
            "--devices",
            "devices.csv",
            "--out-dir",
            "out",
            "--set",
            "thinger_user=alice",
            "--set",
            "wifi_ssid=x",
            "--ledger",
            "series.db",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", common::describe_output(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("nothing was reserved or written"), "{err}");
    assert!(err.contains("wifi_sid"), "the unknown column: {err}");
    assert!(err.contains("row 3"), "the duplicate, by row: {err}");
    assert!(
        err.contains("row 4"),
        "the id breaking the rule, by row: {err}"
    );
    assert!(!d.join("out").exists() || std::fs::read_dir(d.join("out")).unwrap().count() == 0);
}

#[test]
fn eight_boards_flashed_at_once_each_with_its_own_identity_and_a_dropped_line_recorded() {
    let dir = common::temp_dir();
    let d = dir.path();
    let merged = std::fs::read(repo(MERGED)).unwrap();
    let sims: Vec<Sim> = (0..9u8)
        .map(|i| {
            let mut c = Config::new(Chip::Esp32c3);
            c.mac = [0x58, 0xcf, 0x79, 0x00, 0x00, i + 1];
            if i == 8 {
                // The ninth board's line drops during the write.
                c.drop_after_data_frames = Some(1);
            }
            Sim::start(c)
        })
        .collect();
    let merged_path = repo(MERGED);
    let mut args: Vec<&str> = vec![
        "batch",
        &merged_path,
        "--generate",
        "20",
        "--device-id",
        "bar-{n:02}",
        "--once",
        "--before",
        "no-reset",
        "--after",
        "no-reset",
        "--no-stub",
        "--baud",
        "115200",
        "--set",
        "wifi_ssid=Line",
        "--set",
        "thinger_user=alice",
        "--set-env",
        "wifi_password=PW",
        "--ledger",
        "line.db",
        "--json",
    ];
    for s in &sims {
        args.extend(["--port", s.port()]);
    }
    let o = tp(d, &args);
    let flashes: Vec<_> = sims.into_iter().map(|s| s.finish().flash).collect();
    assert_eq!(
        o.status.code(),
        Some(4),
        "one board failed: {}",
        common::describe_output(&o)
    );
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = summary["devices"].as_array().unwrap();
    assert_eq!(rows.len(), 9);
    let mut devices = BTreeSet::new();
    for (i, flash) in flashes.iter().enumerate().take(8) {
        let image = &flash[..merged.len()];
        let file = d.join(format!("board{i}.bin"));
        std::fs::write(&file, image).unwrap();
        let v = inspect(d, &file);
        let device = slot(&v, "thinger_device");
        assert!(device.starts_with("bar-"), "{device}");
        assert!(devices.insert(device), "an identity given twice");
        if let Some(esptool) = common::esptool() {
            esptool
                .image_info(&file, Some("esp32c3"))
                .assert_valid("a batch board");
        }
    }
    assert_eq!(devices.len(), 8);
    assert_eq!(
        rows.iter().filter(|r| r["result"] == "flashed").count(),
        8,
        "{rows:?}"
    );
    let failed: Vec<_> = rows.iter().filter(|r| r["result"] == "failed").collect();
    assert_eq!(failed.len(), 1, "{rows:?}");
    // The ledger: 8 verified with their MACs, the failed one's identity back in the pool.
    let list: serde_json::Value = serde_json::from_str(&ok(&tp(
        d,
        &["ledger", "--ledger", "line.db", "list", "--json"],
    )))
    .unwrap();
    let verified: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "verified")
        .collect();
    assert_eq!(verified.len(), 8);
    let macs: BTreeSet<_> = verified
        .iter()
        .map(|r| r["mac"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(macs.len(), 8);
    let failed_rows: Vec<_> = list
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["state"] == "failed")
        .collect();
    assert_eq!(failed_rows.len(), 1, "{list}");
    assert!(
        failed_rows[0]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
}

/// kill -9 of `batch` at any moment, again and again, then one more run: the ledger opens and
/// is consistent after every kill, and the final run completes the job with every identity
/// written exactly once, to its own file, and no temporary file left behind.
#[test]
fn killed_at_any_moment_then_rerun_completes_with_no_identity_lost_or_duplicated() {
    use std::os::unix::process::ExitStatusExt;
    let dir = common::temp_dir();
    let d = dir.path();
    let app = repo(APP);
    let args = [
        "batch",
        &app,
        "--generate",
        "12",
        "--device-id",
        "k-{n:02}",
        "--out-dir",
        "out",
        "--ledger",
        "series.db",
        "--set",
        "thinger_user=alice",
        "--set",
        "wifi_ssid=HomeNet",
        "--set-env",
        "wifi_password=PW",
    ];
    let mut killed = 0;
    for delay_ms in [5u64, 20, 40, 60, 90, 130, 180, 250] {
        let mut child = Command::new(common::cli_path())
            .args(args)
            .current_dir(d)
            .env("NO_COLOR", "1")
            .env("XDG_CONFIG_HOME", d)
            .env("THINGER_PATCH_LEDGER_KEY", KEY)
            .env("PW", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let status = child.wait().unwrap();
        killed += usize::from(status.signal() == Some(9));
        if d.join("series.db").exists() {
            let o = tp(d, &["ledger", "--ledger", "series.db", "list", "--json"]);
            let empty = String::from_utf8_lossy(&o.stderr).contains("holds no ledger yet");
            assert!(
                o.status.success() || empty,
                "after a kill at {delay_ms} ms: {}",
                common::describe_output(&o)
            );
        }
    }
    assert!(
        killed >= 3,
        "the runs must really be interrupted ({killed} were)"
    );
    ok(&tp(d, &args));
    let export = common::ledger_revealed(d, "series.db", KEY);
    let rows = export.as_array().unwrap();
    assert_eq!(rows.len(), 12, "{export}");
    let mut creds = BTreeSet::new();
    for r in rows {
        assert_eq!(r["state"], "verified", "{r}");
        let device = r["device"].as_str().unwrap();
        let c = r["values"]["thinger_credentials"]
            .as_str()
            .unwrap()
            .to_string();
        let image = std::fs::read(d.join(format!("out/esp32c3-demo.{device}.bin"))).unwrap();
        assert_eq!(common::find_all(&image, c.as_bytes()).len(), 1, "{device}");
        assert!(creds.insert(c), "{device}'s credentials given twice");
    }
    let files: Vec<String> = std::fs::read_dir(d.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        files.len(),
        12,
        "one file per identity, no temporary left: {files:?}"
    );
}

/// Devices verified so far, from `ledger list --json` (the running batch holds the file too).
fn verified(d: &Path) -> Vec<String> {
    if !d.join("series.db").exists() {
        return Vec::new();
    }
    let o = run(d, &["ledger", "--ledger", "series.db", "list", "--json"]);
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&o.stdout) else {
        return Vec::new();
    };
    v.as_array()
        .map(|a| {
            a.iter()
                .filter(|r| r["state"] == "verified")
                .map(|r| r["device"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn wait_for(what: &str, limit: std::time::Duration, mut ok: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + limit;
    while !ok() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn sim_with_mac(last: u8) -> Sim {
    let mut cfg = Config::new(Chip::Esp32c3);
    cfg.mac = [0x58, 0xcf, 0x79, 0xaa, 0x00, last];
    Sim::start(cfg)
}

fn watching(d: &Path, generate: &str) -> std::process::Child {
    let app = repo(MERGED);
    let pattern = d.join("dev/ttyESP*");
    Command::new(common::cli_path())
        .args([
            "batch",
            &app,
            "--generate",
            generate,
            "--device-id",
            "w-{mac}",
        ])
        .args([
            "--watch",
            pattern.to_str().unwrap(),
            "--ledger",
            "series.db",
        ])
        .args(["--before", "no-reset", "--after", "no-reset"])
        .args(["--set", "thinger_user=alice", "--set", "wifi_ssid=HomeNet"])
        .current_dir(d)
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", d)
        .env("THINGER_PATCH_LEDGER_KEY", KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Watching: boards are flashed as they are plugged in (here: a link to a simulator's port
/// appears in the watched folder), a port is taken again only after it was unplugged, and the
/// run ends by itself when the job's identities are used up.
#[test]
fn boards_are_flashed_as_they_are_plugged_in() {
    let dir = common::temp_dir();
    let d = dir.path();
    std::fs::create_dir(d.join("dev")).unwrap();
    let sims: Vec<Sim> = (1..=3).map(sim_with_mac).collect();
    let child = watching(d, "3");
    let plug = |name: &str, sim: &Sim| {
        std::os::unix::fs::symlink(sim.port(), d.join("dev").join(name)).unwrap()
    };
    let limit = std::time::Duration::from_secs(60);
    plug("ttyESP0", &sims[0]);
    wait_for("the first board", limit, || verified(d).len() == 1);
    // The same port name, a new board: only after the first one was unplugged.
    std::fs::remove_file(d.join("dev/ttyESP0")).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(600));
    plug("ttyESP0", &sims[1]);
    plug("ttyESP1", &sims[2]);
    wait_for("three boards", limit, || verified(d).len() == 3);
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", common::describe_output(&o));
    let mut devices = verified(d);
    devices.sort();
    assert_eq!(
        devices,
        ["w-58cf79aa0001", "w-58cf79aa0002", "w-58cf79aa0003"],
        "each board its own identity, named after its MAC"
    );
    let export = common::ledger_revealed(d, "series.db", KEY);
    for (n, sim) in sims.into_iter().enumerate() {
        let l = sim.finish();
        let device = format!("w-58cf79aa000{}", n + 1);
        let creds = common::revealed_value(&export, &device, "thinger_credentials");
        assert_eq!(
            common::find_all(&l.flash, creds.as_bytes()).len(),
            1,
            "{device}"
        );
    }
}

/// Ctrl-C while watching: no new board is taken, the run ends with 130 and says so, and what
/// was flashed is committed (nothing left reserved).
#[test]
fn ctrl_c_stops_watching_cleanly() {
    let dir = common::temp_dir();
    let d = dir.path();
    std::fs::create_dir(d.join("dev")).unwrap();
    let sim = sim_with_mac(9);
    let child = watching(d, "5");
    std::os::unix::fs::symlink(sim.port(), d.join("dev/ttyESP0")).unwrap();
    wait_for("the board", std::time::Duration::from_secs(60), || {
        verified(d).len() == 1
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(130),
        "{}",
        common::describe_output(&o)
    );
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("stopping"),
        "{}",
        common::describe_output(&o)
    );
    let list: serde_json::Value = serde_json::from_str(&ok(&tp(
        d,
        &["ledger", "--ledger", "series.db", "list", "--json"],
    )))
    .unwrap();
    let states: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["verified"], "{list}");
    drop(sim);
}

/// ESP8266 boards in parallel: esptool reads each board's MAC (`read-mac`), the board gets
/// its identity, then esptool writes it; both simulated boards at once, each its own image.
#[test]
fn esp8266_boards_in_parallel_through_esptool() {
    let Some(esptool) = common::esptool() else {
        thinger_patch_test_kit::skip("ESP8266 batch: no esptool");
        return;
    };
    let dir = common::temp_dir();
    let d = dir.path();
    let sims: Vec<Sim> = (1..=2u8)
        .map(|n| {
            let mut cfg = Config::new(Chip::Esp8266);
            cfg.mac = [0x18, 0xfe, 0x34, 0x00, 0x00, n];
            Sim::start(cfg)
        })
        .collect();
    let app = repo("examples/c-firmware/prebuilt/esp8266-demo.bin");
    let o = Command::new(common::cli_path())
        .args([
            "batch",
            &app,
            "--generate",
            "2",
            "--device-id",
            "e-{mac}",
            "--once",
        ])
        .args(["--port", sims[0].port(), "--port", sims[1].port()])
        .args([
            "--before",
            "no-reset",
            "--after",
            "no-reset",
            "--no-stub",
            "--baud",
            "115200",
        ])
        .args([
            "--ledger",
            "series.db",
            "--set",
            "thinger_user=alice",
            "--set",
            "wifi_ssid=HomeNet",
        ])
        .current_dir(d)
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", d)
        .env("THINGER_PATCH_LEDGER_KEY", KEY)
        .env("THINGER_PATCH_ESPTOOL", &esptool.program)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", common::describe_output(&o));
    let export = common::ledger_revealed(d, "series.db", KEY);
    for (n, sim) in sims.into_iter().enumerate() {
        let l = sim.finish();
        assert!(l.rejected.is_empty(), "{:?}", l.rejected);
        let device = format!("e-18fe340000{:02x}", n + 1);
        let creds = common::revealed_value(&export, &device, "thinger_credentials");
        assert_eq!(
            common::find_all(&l.flash, creds.as_bytes()).len(),
            1,
            "{device}"
        );
        let mut id = device.clone().into_bytes();
        id.push(0);
        assert_eq!(common::find_all(&l.flash, &id).len(), 1, "{device}");
    }
}
