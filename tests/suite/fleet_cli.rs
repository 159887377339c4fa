//! `thinger-patch fleet update`: a new build for every device of a real SQLite ledger, each
//! personalised with ITS identity, delivered through the Thinger.io API simulator's `$ota`
//! resources (simulated ThingerOTA boards) or by ArduinoOTA to the project's ArduinoOTA device
//! simulators. What each simulated device received is parsed to check it holds its own
//! identity and no other's.
#![cfg(unix)]

use crate::common;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use thinger_patch_test_kit::arduino_ota::{self as arduino, Device, Flavor};
use thinger_patch_test_kit::thinger_cloud::{Permissions, SimDevice, ThingerCloud};

const APP: &str = "examples/c-firmware/prebuilt/esp32c3-demo.bin";
const KEY: &str = "fleet-ledger-key";
const PASSWORD: &str = "fleet-pw-CANARY-52";
const DEVICES: [&str; 3] = ["bar-01", "bar-02", "bar-03"];

fn tp(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(common::cli_path());
    c.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("XDG_CONFIG_HOME", dir)
        .env("THINGER_PATCH_LEDGER_KEY", KEY)
        .env("PW", PASSWORD)
        .env_remove("THINGER_TOKEN")
        .stdin(Stdio::null());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("running thinger-patch")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Three identities generated into files by `batch` (verified in the ledger), and their
/// credentials as the ledger reveals them with its key.
fn series(d: &Path, extra: &[&str], envs: &[(&str, &str)]) -> BTreeMap<String, (String, Vec<u8>)> {
    let app = common::repo_root().join(APP);
    let mut args = vec![
        "batch",
        app.to_str().unwrap(),
        "--generate",
        "3",
        "--device-id",
        "bar-{n:02}",
        "--out-dir",
        "out",
        "--ledger",
        "series.db",
        "--set",
        "wifi_ssid=HomeNet",
        "--set-env",
        "wifi_password=PW",
    ];
    args.extend_from_slice(extra);
    let o = tp(d, &args, envs);
    assert!(o.status.success(), "{}", text(&o));
    let export = common::ledger_revealed(d, "series.db", KEY);
    DEVICES
        .iter()
        .map(|id| {
            let creds = common::revealed_value(&export, id, "thinger_credentials");
            let image = std::fs::read(d.join(format!("out/esp32c3-demo.{id}.bin"))).unwrap();
            (id.to_string(), (creds, image))
        })
        .collect()
}

/// The device's own credentials and id are in `image`, and no other device's credentials.
fn holds_only_its_identity(id: &str, image: &[u8], all: &BTreeMap<String, (String, Vec<u8>)>) {
    for (other, (creds, _)) in all {
        let n = common::find_all(image, creds.as_bytes()).len();
        assert_eq!(
            n,
            usize::from(other == id),
            "{id}'s image and {other}'s credentials"
        );
    }
    let mut id0 = id.as_bytes().to_vec();
    id0.push(0);
    assert_eq!(common::find_all(image, &id0).len(), 1, "{id}'s id");
}

/// The Thinger.io simulator with user alice and a token with every permission.
fn account() -> (ThingerCloud, String) {
    let cloud = ThingerCloud::start();
    cloud.add_user("alice", "pw");
    let token = cloud.issue_token("alice", Permissions::All);
    (cloud, token)
}

fn report(o: &Output) -> BTreeMap<String, String> {
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(o)));
    v["devices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["device"].as_str().unwrap().to_string(),
                r["result"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn fleet_update_through_the_cloud_keeps_each_identity_and_retries_the_offline_next_run() {
    let dir = common::temp_dir();
    let d = dir.path();
    let (cloud, token) = account();
    let api = cloud.url();
    // The series is made with --thinger-create: every device registered on the account with
    // the identity the ledger issued (the account's user goes into thinger_user).
    let all = series(
        d,
        &["--thinger-create", "--thinger-api", &api],
        &[("THINGER_TOKEN", &token)],
    );
    for (id, (creds, image)) in &all {
        let record = cloud.device("alice", id).expect("registered by batch");
        assert_eq!(record.credentials(), Some(creds.as_str()), "{id}");
        assert_eq!(
            common::find_all(image, b"alice\0").len(),
            1,
            "{id}: the account's user"
        );
        let mut sim = SimDevice::esp32(image.clone(), "dev");
        sim.online = id != "bar-03";
        cloud.attach("alice", id, sim);
    }
    let app = common::repo_root().join(APP);
    let update = || {
        tp(
            d,
            &[
                "fleet",
                "update",
                app.to_str().unwrap(),
                "--ledger",
                "series.db",
                "--set",
                "fw.version=2.0",
                "--via",
                "cloud",
                "--retries",
                "0",
                "--thinger-api",
                &api,
                "--thinger-user",
                "alice",
                "--json",
            ],
            &[("THINGER_TOKEN", &token)],
        )
    };
    let o = update();
    assert_eq!(
        o.status.code(),
        Some(4),
        "one device is offline: {}",
        text(&o)
    );
    let r = report(&o);
    assert_eq!(r["bar-01"], "updated");
    assert_eq!(r["bar-02"], "updated");
    assert_eq!(r["bar-03"], "offline");
    for id in ["bar-01", "bar-02"] {
        let (boots, running, version) = cloud
            .with_sim("alice", id, |s| {
                (s.boots, s.running_image.clone(), s.version.clone())
            })
            .unwrap();
        assert_eq!((boots, version.as_str()), (1, "2.0"), "{id}");
        holds_only_its_identity(id, &running, &all);
        // The common values came along (the WiFi), from the ledger's identity.
        assert_eq!(common::find_all(&running, b"HomeNet\0").len(), 1);
        assert_eq!(common::find_all(&running, PASSWORD.as_bytes()).len(), 1);
    }
    let out = text(&o);
    for (creds, _) in all.values() {
        assert!(!out.contains(creds.as_str()));
    }
    assert!(!out.contains(&token) && !out.contains(PASSWORD));

    // The offline one comes online: the next run reaches it; the others are current.
    cloud.with_sim("alice", "bar-03", |s| s.online = true);
    let o = update();
    assert!(o.status.success(), "{}", text(&o));
    let r = report(&o);
    assert_eq!(r["bar-03"], "updated");
    assert_eq!(r["bar-01"], "already_current");
    let running = cloud
        .with_sim("alice", "bar-03", |s| s.running_image.clone())
        .unwrap();
    holds_only_its_identity("bar-03", &running, &all);
    // The ledger recorded it: bar-01 confirmed at 2.0.
    let o = tp(
        d,
        &[
            "ledger",
            "--ledger",
            "series.db",
            "show",
            "bar-01",
            "--json",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let shown: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(shown["device"]["current"]["version"], "2.0", "{shown}");
    let db = std::fs::read(d.join("series.db")).unwrap();
    for (creds, _) in all.values() {
        assert!(
            common::find_all(&db, creds.as_bytes()).is_empty(),
            "secrets at rest"
        );
    }
}

#[test]
fn fleet_update_by_arduino_ota_sends_each_device_its_own_image() {
    let dir = common::temp_dir();
    let d = dir.path();
    let all = series(d, &["--set", "thinger_user=alice"], &[]);
    let boards: Vec<Device> = (0..2)
        .map(|_| Device::start(arduino::Config::new(Flavor::Esp32)))
        .collect();
    let app = common::repo_root().join(APP);
    let a1 = format!("bar-01=127.0.0.1:{}", boards[0].port());
    let a2 = format!("bar-02=127.0.0.1:{}", boards[1].port());
    // bar-03: nothing listens there (a UDP port just released).
    let closed = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let a3 = format!("bar-03=127.0.0.1:{}", closed.local_addr().unwrap().port());
    drop(closed);
    let o = tp(
        d,
        &[
            "fleet",
            "update",
            app.to_str().unwrap(),
            "--ledger",
            "series.db",
            "--via",
            "lan",
            "--address",
            &a1,
            "--address",
            &a2,
            "--address",
            &a3,
            "--retries",
            "0",
            "--timeout",
            "2",
            "--json",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    let r = report(&o);
    assert_eq!(r["bar-01"], "updated", "{}", text(&o));
    assert_eq!(r["bar-02"], "updated");
    assert_eq!(r["bar-03"], "offline");
    for (board, id) in boards.iter().zip(["bar-01", "bar-02"]) {
        let rec = board.wait_result(Duration::from_secs(10));
        assert_eq!(rec.result, Some(Ok(())), "{id}");
        holds_only_its_identity(id, &rec.flashed, &all);
    }
    // The address each device answered on is recorded for the next run.
    let o = tp(
        d,
        &["ledger", "--ledger", "series.db", "list", "--json"],
        &[],
    );
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let bar1 = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["device"] == "bar-01")
        .unwrap();
    assert_eq!(bar1["address"], a1.trim_start_matches("bar-01="));
}

/// `batch --port ... --once --thinger-create`: two boards at once, each registered on the
/// account with its identity as it is flashed; a board whose line drops mid-write fails, its
/// device is deleted from the account again and its identity goes back to the pool.
#[test]
fn batch_registers_each_flashed_board_and_removes_the_one_that_failed() {
    use thinger_patch_test_kit::rom_loader::{Chip, Config, Sim};
    let dir = common::temp_dir();
    let d = dir.path();
    let (cloud, token) = account();
    let api = cloud.url();
    let table = std::fs::read(
        common::repo_root().join("examples/c-firmware/prebuilt/esp32c3-partition-table.bin"),
    )
    .unwrap();
    let good = Sim::start(Config::new(Chip::Esp32c3).with_flash(0x8000, &table));
    let mut cfg = Config::new(Chip::Esp32c3).with_flash(0x8000, &table);
    cfg.mac = [0x58, 0xcf, 0x79, 0x00, 0x00, 0x02];
    cfg.drop_after_data_frames = Some(0);
    let bad = Sim::start(cfg);
    let app = common::repo_root().join(APP);
    let o = tp(
        d,
        &[
            "batch",
            app.to_str().unwrap(),
            "--generate",
            "2",
            "--device-id",
            "esp-{mac}",
            "--port",
            good.port(),
            "--port",
            bad.port(),
            "--once",
            "--before",
            "no-reset",
            "--after",
            "no-reset",
            "--ledger",
            "series.db",
            "--set",
            "wifi_ssid=HomeNet",
            "--thinger-create",
            "--thinger-api",
            &api,
            "--json",
        ],
        &[("THINGER_TOKEN", &token)],
    );
    let (good, bad) = (good.finish(), bad.finish());
    assert_eq!(o.status.code(), Some(4), "one board failed: {}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let results = report(&o);
    assert_eq!(results["esp-58cf79123456"], "flashed", "{v}");
    assert_eq!(results["esp-58cf79000002"], "failed", "{v}");
    assert!(
        v.to_string().contains("deleted from the account again"),
        "{v}"
    );
    let record = cloud
        .device("alice", "esp-58cf79123456")
        .expect("registered");
    let creds = record.credentials().unwrap();
    assert_eq!(common::find_all(&good.flash, creds.as_bytes()).len(), 1);
    assert!(cloud.device("alice", "esp-58cf79000002").is_none());
    assert!(bad.hung_up);
    assert!(!text(&o).contains(creds) && !text(&o).contains(&token));
}

/// `fleet update --via serial`: the boards of a series, plugged in again, are identified by
/// their MAC and each is written the new build with its own identity (confirmed at once: the
/// write was verified).
#[test]
fn fleet_update_over_serial_finds_each_board_by_its_mac() {
    use thinger_patch_test_kit::rom_loader::{Chip, Config, Sim};
    let dir = common::temp_dir();
    let d = dir.path();
    let merged = common::repo_root().join("examples/c-firmware/prebuilt/esp32c3-demo-merged.bin");
    let sims: Vec<Sim> = (1..=2u8)
        .map(|n| {
            let mut cfg = Config::new(Chip::Esp32c3);
            cfg.mac = [0x58, 0xcf, 0x79, 0xbb, 0x00, n];
            Sim::start(cfg)
        })
        .collect();
    let serial = ["--before", "no-reset", "--after", "no-reset"];
    let mut args = vec![
        "batch",
        merged.to_str().unwrap(),
        "--generate",
        "2",
        "--device-id",
        "s-{mac}",
        "--once",
        "--ledger",
        "series.db",
        "--set",
        "thinger_user=alice",
        "--set",
        "wifi_ssid=HomeNet",
        "--port",
        sims[0].port(),
        "--port",
        sims[1].port(),
    ];
    args.extend(serial);
    let o = tp(d, &args, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let mut args = vec![
        "fleet",
        "update",
        merged.to_str().unwrap(),
        "--via",
        "serial",
        "--ledger",
        "series.db",
        "--set",
        "fw.version=2.0",
        "--json",
        "--port",
        sims[1].port(),
        "--port",
        sims[0].port(),
    ];
    args.extend(serial);
    let o = tp(d, &args, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let r = report(&o);
    assert_eq!(r["s-58cf79bb0001"], "updated");
    assert_eq!(r["s-58cf79bb0002"], "updated");
    let export = common::ledger_revealed(d, "series.db", KEY);
    for (n, sim) in sims.into_iter().enumerate() {
        let l = sim.finish();
        let device = format!("s-58cf79bb000{}", n + 1);
        let creds = common::revealed_value(&export, &device, "thinger_credentials");
        assert_eq!(
            common::find_all(&l.flash, creds.as_bytes()).len(),
            1,
            "{device}"
        );
        assert_eq!(
            common::find_all(&l.flash, b"2.0\0").len(),
            1,
            "{device}: the new build"
        );
        let row = export
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["device"] == device.as_str())
            .unwrap();
        assert_eq!(row["current"]["version"], "2.0", "{row}");
    }
}
