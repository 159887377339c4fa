//! `thinger-patch thinger ...` against the Thinger.io API simulator of
//! `thinger_patch_test_kit::thinger_cloud` (the cloud cannot be reached from here; the simulator
//! is written from Thinger's public API description and its own clients, and enforces the
//! schemas and the tokens). The account is given as a user would: `--thinger-api` (plain http
//! is accepted for loopback only) and `THINGER_TOKEN`, or `thinger login`.

use crate::common;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use thinger_patch_test_kit::thinger_cloud::{Permissions, ThingerCloud};

const PASSWORD: &str = "pw-CANARY-login-5531";
const APP: &str = "examples/c-firmware/prebuilt/esp32c3-demo.bin";

fn tp(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut c = Command::new(common::cli_path());
    c.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env_remove("THINGER_TOKEN")
        .env_remove("THINGER_PASSWORD")
        .stdin(Stdio::null());
    for (k, v) in envs {
        c.env(k, v);
    }
    c.output().expect("running thinger-patch")
}

/// The simulator with user alice (password [`PASSWORD`]), a token with every permission, and
/// a folder that is the run's home and working directory.
fn account() -> (ThingerCloud, String, tempfile::TempDir) {
    let cloud = ThingerCloud::start();
    cloud.add_user("alice", PASSWORD);
    let token = cloud.issue_token("alice", Permissions::All);
    (cloud, token, common::temp_dir())
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn device_created_with_saved_credentials_then_patched_shown_and_deleted() {
    let (cloud, token, dir) = account();
    let d = dir.path();
    let api = cloud.url();
    let account = ["--thinger-api", api.as_str(), "--thinger-user", "alice"];
    let with_token = [("THINGER_TOKEN", token.as_str())];

    let mut args = vec!["thinger", "whoami"];
    args.extend(account);
    let o = tp(d, &args, &with_token);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("alice"), "{}", text(&o));

    let mut args = vec![
        "thinger",
        "device",
        "create",
        "kitchen_1",
        "--name",
        "Kitchen",
        "--save-credentials",
        "kitchen",
    ];
    args.extend(account);
    let o = tp(d, &args, &with_token);
    assert!(o.status.success(), "{}", text(&o));
    let server = cloud
        .device("alice", "kitchen_1")
        .expect("the device exists on the simulated account");
    let creds = server.credentials().expect("credentials").to_string();
    assert_eq!(creds.len(), 32);
    assert!(
        !text(&o).contains(&creds),
        "credentials printed: {}",
        text(&o)
    );
    assert!(!text(&o).contains(&token), "token printed");
    // Saved in the user config's profile, 0600, and patch finds them there.
    let config = d.join("config/thinger-patch/thinger-patch.toml");
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(
        saved.contains("[profiles.kitchen]")
            && saved.contains(&creds)
            && saved.contains("kitchen_1"),
        "{saved}"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&config).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let app = common::repo_root().join(APP);
    let o = tp(
        d,
        &[
            "patch",
            app.to_str().unwrap(),
            "--profile",
            "kitchen",
            "--set",
            "wifi_ssid=HomeNet",
            "-o",
            "fw.bin",
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(&creds));
    let image = std::fs::read(d.join("fw.bin")).unwrap();
    assert_eq!(
        common::find_all(&image, creds.as_bytes()).len(),
        1,
        "the device's credentials are in its firmware"
    );

    // A second create of the same id is refused (its credentials cannot be read back).
    let mut args = vec![
        "thinger",
        "device",
        "create",
        "kitchen_1",
        "--save-credentials",
        "other",
    ];
    args.extend(account);
    let o = tp(d, &args, &with_token);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));

    let mut args = vec!["thinger", "device", "show", "kitchen_1", "--json"];
    args.extend(account);
    let o = tp(d, &args, &with_token);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["device"], "kitchen_1");
    assert!(!text(&o).contains(&creds));

    let mut args = vec!["thinger", "device", "delete", "kitchen_1"];
    args.extend(account);
    assert!(tp(d, &args, &with_token).status.success());
    assert!(cloud.device("alice", "kitchen_1").is_none());
}

#[test]
fn login_caches_tokens_not_the_password_and_errors_say_what_to_do() {
    let cloud = ThingerCloud::start();
    cloud.add_user("alice", PASSWORD);
    let dir = common::temp_dir();
    let d = dir.path();
    let api = cloud.url();
    let account = ["--thinger-api", api.as_str(), "--thinger-user", "alice"];

    // No credential at all: usage error with the way out.
    let mut args = vec!["thinger", "whoami"];
    args.extend(account);
    let o = tp(d, &args, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("THINGER_TOKEN") && text(&o).contains("thinger login"),
        "{}",
        text(&o)
    );

    // A wrong password: exit 4, nothing cached, the password never shown.
    let mut args = vec!["thinger", "login"];
    args.extend(account);
    let o = tp(d, &args, &[("THINGER_PASSWORD", "wrong-CANARY-pw")]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(!text(&o).contains("wrong-CANARY-pw"));
    let cache = d.join("config/thinger-patch/thinger-login.json");
    assert!(!cache.exists());

    let o = tp(d, &args, &[("THINGER_PASSWORD", PASSWORD)]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(PASSWORD));
    let cached = std::fs::read_to_string(&cache).unwrap();
    assert!(!cached.contains(PASSWORD), "the password is never stored");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The cached login serves the next commands.
    let mut args = vec!["thinger", "whoami"];
    args.extend(account);
    let o = tp(d, &args, &[]);
    assert!(o.status.success(), "{}", text(&o));
    let mut args = vec!["thinger", "logout"];
    args.extend(account);
    assert!(tp(d, &args, &[]).status.success());
    assert!(!cache.exists());

    // A revoked token: exit 4, the credential named, not shown.
    let token = cloud.issue_token("alice", Permissions::All);
    cloud.revoke(&token);
    let mut args = vec!["thinger", "device", "show", "x1"];
    args.extend(account);
    let o = tp(d, &args, &[("THINGER_TOKEN", token.as_str())]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(!text(&o).contains(&token));
    // Plain http to a host that is not loopback is refused before anything is sent.
    let o = tp(
        d,
        &["thinger", "whoami", "--thinger-api", "http://example.com"],
        &[("THINGER_TOKEN", token.as_str())],
    );
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
}

const TABLE: &str = "examples/c-firmware/prebuilt/esp32c3-partition-table.bin";
const TEMPLATES: &str = "crates/cloud/tests/templates";
const WIFI_PASSWORD: &str = "wifi-CANARY-8841";

/// `inspect --json` of an image: key → value (secrets masked by the tool).
fn slot_values(d: &Path, image: &Path) -> serde_json::Map<String, serde_json::Value> {
    let o = tp(d, &["inspect", image.to_str().unwrap(), "--json"], &[]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap().to_string(), s["value"].clone()))
        .collect()
}

fn property(
    record: &thinger_patch_test_kit::thinger_cloud::DeviceRecord,
    name: &str,
) -> serde_json::Value {
    record
        .properties
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or(serde_json::Value::Null)
}

/// The whole path of issue 11 against the simulators: a new device created on the account,
/// the firmware personalised for it and flashed into the ROM-loader simulator, its properties
/// written and two dashboards pushed (one in the predecessor's `.h` style); then `ota --thinger`
/// of a newer build reaches the simulated device (ThingerOTA over the `$ota` resources), which
/// checks size and MD5 and restarts into an image that still holds its own identity.
#[test]
fn new_board_to_online_with_dashboards_then_updated_through_the_cloud() {
    use thinger_patch_test_kit::rom_loader::{Chip, Config, Sim};
    use thinger_patch_test_kit::thinger_cloud::SimDevice;
    let (cloud, token, dir) = account();
    let d = dir.path();
    let root = common::repo_root();
    let app = root.join(APP);
    let templates = root.join(TEMPLATES);
    let api = cloud.url();
    let envs = [
        ("THINGER_TOKEN", token.as_str()),
        ("WIFI_PW", WIFI_PASSWORD),
    ];
    let table = std::fs::read(root.join(TABLE)).unwrap();
    let sim = Sim::start(Config::new(Chip::Esp32c3).with_flash(0x8000, &table));

    let status = templates.join("status.json");
    let weather = templates.join("z_Thinger.Weather.h");
    let mut args = common::sim_flash_args(
        app.to_str().unwrap(),
        sim.port(),
        &[
            "--set",
            "wifi_ssid=HomeNet",
            "--set-env",
            "wifi_password=WIFI_PW",
        ],
        &[
            "--thinger-device",
            "kitchen_7",
            "--thinger-name",
            "Kitchen",
            "--dashboard",
            status.to_str().unwrap(),
            "--dashboard",
            weather.to_str().unwrap(),
            "--save-credentials",
            "kitchen",
            "--json",
        ],
    );
    args.extend(["--thinger-api", api.as_str()]);
    let o = tp(d, &args, &envs);
    let loader = sim.finish();
    assert!(o.status.success(), "{}", text(&o));

    // The account holds the device, with credentials that only the firmware and the profile know.
    let record = cloud.device("alice", "kitchen_7").expect("device created");
    let creds = record.credentials().expect("credentials").to_string();
    assert_eq!(
        creds.len(),
        32,
        "sized by the generator within the 64-byte slot"
    );
    assert_eq!(record.fields["name"], "Kitchen");
    let out = text(&o);
    for secret in [creds.as_str(), token.as_str(), WIFI_PASSWORD] {
        assert!(!out.contains(secret), "a secret in the output: {out}");
    }
    let summary: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON summary");
    assert_eq!(summary["thinger"]["device"], "kitchen_7");
    assert_eq!(summary["thinger"]["action"], "created");
    assert_eq!(summary["thinger"]["credentials_length"], 32);

    // What landed on the flash is the image personalised for this device.
    let size = summary["size"].as_u64().unwrap() as usize;
    let at = summary["writes"][0]["offset"].as_u64().unwrap() as usize;
    let flashed = loader.flash[at..at + size].to_vec();
    assert_eq!(common::hex(&common::sha256(&flashed)), summary["sha256"]);
    assert_eq!(common::find_all(&flashed, creds.as_bytes()).len(), 1);
    let flashed_path = common::write_file(d, "flashed.bin", &flashed);
    if let Some(esptool) = common::esptool() {
        esptool
            .image_info(&flashed_path, Some("esp32c3"))
            .assert_valid("the flashed image");
    } else {
        thinger_patch_test_kit::skip("esptool image-info of the cloud-provisioned image");
    }
    let values = slot_values(d, &flashed_path);
    assert_eq!(values["thinger_device"], "kitchen_7");
    assert_eq!(values["thinger_user"], "alice");
    assert_eq!(values["thinger_credentials"], "********");

    // Properties after the flash: version from the slot, the MAC the loader reported, the hash.
    assert_eq!(property(&record, "fw_version"), "dev");
    assert_eq!(property(&record, "mac"), "58:cf:79:12:34:56");
    assert_eq!(property(&record, "image_sha256"), summary["sha256"]);
    assert!(
        property(&record, "provisioned_at")
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // Both dashboards, personalised: the JSON one and the predecessor's padded placeholders.
    let status = cloud
        .dashboard("alice", "status_kitchen_7")
        .expect("status dashboard");
    assert_eq!(status["name"], "Kitchen status");
    assert_eq!(status["widgets"][0]["sources"][0]["device"], "kitchen_7");
    assert_eq!(status["widgets"][0]["sources"][0]["user"], "alice");
    let weather = cloud
        .dashboard("alice", "Weather_kitchen_7")
        .expect("weather dashboard");
    let w = weather.to_string();
    assert!(!w.contains("DEVCNAME") && !w.contains("CLOUDNAM"), "{w}");
    assert_eq!(weather["widgets"][0]["sources"][0]["device"], "kitchen_7");
    assert_eq!(weather["widgets"][0]["sources"][0]["user"], "alice");

    // The board now runs it and is online; a newer build goes to it through the cloud. The
    // project's own thinger-patch.toml names the account and the WiFi; the device's profile
    // (not in it) comes from the user config file, where --save-credentials put it.
    cloud.attach(
        "alice",
        "kitchen_7",
        SimDevice::esp32(flashed.clone(), "dev"),
    );
    std::fs::write(
        d.join("thinger-patch.toml"),
        format!("[thinger]\nuser = \"alice\"\napi_url = \"{api}\"\n\n[defaults]\nwifi_ssid = \"HomeNet\"\n"),
    )
    .unwrap();
    let ota = |extra: &[&str]| {
        let mut a = vec![
            "ota",
            app.to_str().unwrap(),
            "--thinger",
            "kitchen_7",
            "--profile",
            "kitchen",
            "--set",
            "fw.version=2.0",
            "--set-env",
            "wifi_password=WIFI_PW",
        ];
        a.extend_from_slice(extra);
        tp(d, &a, &envs)
    };
    let o = ota(&["--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let out = text(&o);
    for secret in [creds.as_str(), token.as_str(), WIFI_PASSWORD] {
        assert!(!out.contains(secret), "a secret in the output: {out}");
    }
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["result"], "ok");
    assert_eq!(v["cloud"]["compression"], "zlib", "the ESP32 offers zlib");
    let (boots, running, version) = cloud
        .with_sim("alice", "kitchen_7", |s| {
            (s.boots, s.running_image.clone(), s.version.clone())
        })
        .unwrap();
    assert_eq!(boots, 1, "restarted once into the new image");
    assert_eq!(version, "2.0");
    {
        use md5::Digest as _;
        let md5 = common::hex(&md5::Md5::digest(&running));
        assert_eq!(md5, v["payload"]["md5"]);
    }
    let running_path = common::write_file(d, "running.bin", &running);
    let values = slot_values(d, &running_path);
    assert_eq!(values["fw.version"], "2.0");
    assert_eq!(values["thinger_device"], "kitchen_7", "identity kept");
    assert_eq!(values["thinger_user"], "alice");
    assert_eq!(values["wifi_ssid"], "HomeNet");
    assert_eq!(
        common::find_all(&running, creds.as_bytes()).len(),
        1,
        "the device's own credentials came back in the update"
    );
    let record = cloud.device("alice", "kitchen_7").unwrap();
    assert_eq!(property(&record, "fw_version"), "2.0");

    // The same version again: nothing sent, and said so.
    let o = ota(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("already runs version 2.0"),
        "{}",
        text(&o)
    );
    assert_eq!(
        cloud.with_sim("alice", "kitchen_7", |s| s.boots).unwrap(),
        1
    );
}

const WIFI: &[&str] = &["--set", "wifi_ssid=HomeNet"];
const EXISTING_CREDS: &str = "creds-CANARY-existing-77";

/// `patch APP --thinger-device ID -o fw.bin` with the account of `api`, plus `extra`.
fn patch_for(d: &Path, api: &str, id: &str, extra: &[&str], token: &str) -> Output {
    let app = common::repo_root().join(APP);
    let mut args = vec![
        "patch",
        app.to_str().unwrap(),
        "--thinger-device",
        id,
        "-o",
        "fw.bin",
        "--thinger-api",
        api,
    ];
    args.extend_from_slice(WIFI);
    args.extend_from_slice(extra);
    tp(
        d,
        &args,
        &[("THINGER_TOKEN", token), ("EXISTING", EXISTING_CREDS)],
    )
}

/// Fails with exit 4, a message holding every `needles`, no output file and no `secrets`.
fn assert_cloud_failure(o: &Output, d: &Path, needles: &[&str], secrets: &[&str]) {
    let t = text(o);
    assert_eq!(o.status.code(), Some(4), "{t}");
    for n in needles {
        assert!(t.contains(n), "{n:?} not in: {t}");
    }
    for s in secrets {
        assert!(!t.contains(s), "a secret in: {t}");
    }
    assert!(!d.join("fw.bin").exists(), "a firmware was written: {t}");
}

/// Every file under `dir` (but `except`) is free of `secrets`.
fn assert_no_secret_in_files(dir: &Path, except: &[&Path], secrets: &[&str]) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if except.iter().any(|e| *e == path) {
            continue;
        }
        if path.is_dir() {
            assert_no_secret_in_files(&path, except, secrets);
        } else {
            let bytes = std::fs::read(&path).unwrap();
            for s in secrets {
                assert!(
                    common::find_all(&bytes, s.as_bytes()).is_empty(),
                    "{} holds a secret",
                    path.display()
                );
            }
        }
    }
}

/// The HTTP error classes through `patch --thinger-device` (the simulator answers them as the
/// API does; faults are injected): each is exit 4 with a message that says what to do, and
/// nothing is written and no secret shown.
#[test]
fn api_errors_are_clear_exit_4_and_write_nothing() {
    use thinger_patch_test_kit::thinger_cloud::Fault;
    let (cloud, token, dir) = account();
    let d = dir.path();
    let api = cloud.url();
    let secrets = [token.as_str(), PASSWORD];

    // 403: the token may read devices but not create them; the permission is named.
    let limited = cloud.issue_token("alice", Permissions::Only(vec!["ReadDeviceStatus".into()]));
    let o = patch_for(d, &api, "d403", &[], &limited);
    assert_cloud_failure(&o, d, &["CreateDevice", "403"], &[&limited]);
    assert!(cloud.device("alice", "d403").is_none());

    // 401: a revoked token; which credential, and how to renew it.
    let revoked = cloud.issue_token("alice", Permissions::All);
    cloud.revoke(&revoked);
    let o = patch_for(d, &api, "d401", &[], &revoked);
    assert_cloud_failure(&o, d, &["401", "access token"], &[&revoked]);

    // 422: the server's field message is echoed.
    cloud.inject(
        Fault::status(
            "/devices",
            422,
            "device_name: must be at most 255 characters",
        )
        .method("POST"),
    );
    let o = patch_for(d, &api, "d422", &[], &token);
    assert_cloud_failure(&o, d, &["must be at most 255 characters", "422"], &secrets);
    assert!(cloud.device("alice", "d422").is_none());

    // 5xx and 429: retried with backoff (a transient one goes unnoticed), bounded.
    cloud.inject(
        Fault::status("/devices/d503", 503, "busy")
            .method("GET")
            .times(2),
    );
    let o = patch_for(d, &api, "d503", &[], &token);
    assert!(o.status.success(), "{}", text(&o));
    assert!(cloud.device("alice", "d503").is_some());
    std::fs::remove_file(d.join("fw.bin")).unwrap();
    cloud.inject(
        Fault::status("/devices/d5xx", 502, "down")
            .method("GET")
            .times(10),
    );
    let o = patch_for(d, &api, "d5xx", &[], &token);
    assert_cloud_failure(&o, d, &["502", "4 attempt"], &secrets);
    cloud.inject(
        Fault::status("/devices/d429", 429, "slow down")
            .method("GET")
            .header("Retry-After", "0")
            .times(10),
    );
    let o = patch_for(d, &api, "d429", &[], &token);
    assert_cloud_failure(&o, d, &["rate limited", "429"], &secrets);

    // A timeout on create: bounded by --thinger-timeout, and the user told it may exist.
    cloud.inject(Fault::delay("/devices", std::time::Duration::from_secs(3)).method("POST"));
    let o = patch_for(d, &api, "dslow", &["--thinger-timeout", "1"], &token);
    assert_cloud_failure(&o, d, &["no answer", "may have been created"], &secrets);

    // TLS: a server that answers the handshake in plain HTTP.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let https = format!("https://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        use std::io::Write;
        for mut conn in listener.incoming().flatten().take(8) {
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let o = patch_for(d, &https, "dtls", &[], &token);
    assert_cloud_failure(&o, d, &["TLS"], &secrets);

    // No request ever went to another host, and nothing on disk holds a secret.
    for r in cloud.requests() {
        assert!(!r.path.contains("://"), "{}", r.path);
    }
    assert_no_secret_in_files(d, &[], &secrets);
}

/// The device's life on the account around a write: an existing id is refused unless
/// `--reuse` (with its credentials from the values) or `--rotate`; a dry run creates nothing;
/// a flash that fails after the device was created says so, and `--cleanup-on-failure`
/// deletes it again.
#[test]
fn existing_devices_and_failed_writes_are_never_silent() {
    let (cloud, token, dir) = account();
    cloud.add_device("alice", "taken", EXISTING_CREDS, None);
    let d = dir.path();
    let api = cloud.url();
    let secrets = [token.as_str(), PASSWORD, EXISTING_CREDS];

    // 409-like: it exists; the way out named.
    let o = patch_for(d, &api, "taken", &[], &token);
    assert_cloud_failure(&o, d, &["already exists", "--reuse", "--rotate"], &secrets);
    // --reuse needs the credentials it cannot read back.
    let o = patch_for(d, &api, "taken", &["--reuse"], &token);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("cannot be read back"), "{}", text(&o));
    // --reuse with them: the firmware holds them; the account is unchanged.
    let o = patch_for(
        d,
        &api,
        "taken",
        &["--reuse", "--set-env", "thinger_credentials=EXISTING"],
        &token,
    );
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(EXISTING_CREDS));
    let fw = std::fs::read(d.join("fw.bin")).unwrap();
    assert_eq!(common::find_all(&fw, EXISTING_CREDS.as_bytes()).len(), 1);
    assert_eq!(
        cloud.device("alice", "taken").unwrap().credentials(),
        Some(EXISTING_CREDS)
    );
    std::fs::remove_file(d.join("fw.bin")).unwrap();
    // --rotate: new credentials on the account and in the firmware, the old ones gone.
    let o = patch_for(d, &api, "taken", &["--rotate"], &token);
    assert!(o.status.success(), "{}", text(&o));
    let rotated = cloud
        .device("alice", "taken")
        .unwrap()
        .credentials()
        .unwrap()
        .to_string();
    assert_ne!(rotated, EXISTING_CREDS);
    let fw = std::fs::read(d.join("fw.bin")).unwrap();
    assert_eq!(common::find_all(&fw, rotated.as_bytes()).len(), 1);
    assert!(common::find_all(&fw, EXISTING_CREDS.as_bytes()).is_empty());
    assert!(!text(&o).contains(&rotated));
    std::fs::remove_file(d.join("fw.bin")).unwrap();

    // A dry run checks the account and creates nothing.
    let o = patch_for(d, &api, "fresh", &["--dry-run"], &token);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("would create device fresh"),
        "{}",
        text(&o)
    );
    assert!(cloud.device("alice", "fresh").is_none());

    // Flashing fails after the device was created: reported, kept, or deleted on request.
    let app = common::repo_root().join(APP);
    let flash = |id: &str, extra: &[&str]| {
        let mut args = common::sim_flash_args(
            app.to_str().unwrap(),
            "/nonexistent/ttyUSB9",
            WIFI,
            &["--thinger-device", id, "--thinger-api", api.as_str()],
        );
        args.extend_from_slice(extra);
        tp(d, &args, &[("THINGER_TOKEN", token.as_str())])
    };
    let o = flash("left_behind", &[]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(
        text(&o).contains("left_behind was created") && text(&o).contains("still there"),
        "{}",
        text(&o)
    );
    assert!(cloud.device("alice", "left_behind").is_some());
    let o = flash("cleaned", &["--cleanup-on-failure"]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("deleted again"), "{}", text(&o));
    assert!(cloud.device("alice", "cleaned").is_none());
    for id in ["left_behind", "taken"] {
        let c = cloud.device("alice", id).unwrap();
        assert!(!text(&o).contains(c.credentials().unwrap()));
    }
    assert_no_secret_in_files(d, &[], &[&token, PASSWORD, EXISTING_CREDS, &rotated]);
}

/// `ota --thinger` refuses what would cost the device its identity, and says clearly when the
/// device is offline or has OTA disabled (exit 4); dashboards: an existing one needs
/// `--update`, a template the schema refuses names the JSON path, `--offline` needs no account.
#[test]
fn cloud_ota_and_dashboard_refusals() {
    use thinger_patch_test_kit::thinger_cloud::SimDevice;
    let (cloud, token, dir) = account();
    let d = dir.path();
    let api = cloud.url();
    let app = common::repo_root().join(APP);
    let envs = [
        ("THINGER_TOKEN", token.as_str()),
        ("EXISTING", EXISTING_CREDS),
    ];
    let image = std::fs::read(&app).unwrap();
    cloud.add_device(
        "alice",
        "porch",
        EXISTING_CREDS,
        Some(SimDevice::esp32(image.clone(), "dev")),
    );
    let ota = |id: &str, extra: &[&str]| {
        let mut args = vec![
            "ota",
            app.to_str().unwrap(),
            "--thinger",
            id,
            "--thinger-api",
            api.as_str(),
        ];
        args.extend_from_slice(WIFI);
        args.extend_from_slice(extra);
        tp(d, &args, &envs)
    };
    let with_creds = ["--set-env", "thinger_credentials=EXISTING"];

    // Without the device's credentials the update would orphan it: refused before sending.
    let o = ota("porch", &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("thinger_credentials"), "{}", text(&o));
    // Values made for another device are refused too.
    let mut other = with_creds.to_vec();
    other.extend(["--set", "thinger_device=garage"]);
    let o = ota("porch", &other);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        !cloud.requests().iter().any(|r| r.path.contains("$ota")),
        "nothing may reach the device before the image is right"
    );

    // Offline, then OTA disabled: exit 4, what to do.
    cloud.with_sim("alice", "porch", |s| s.online = false);
    let o = ota("porch", &with_creds);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("offline"), "{}", text(&o));
    cloud.with_sim("alice", "porch", |s| {
        s.online = true;
        s.enabled = false;
    });
    let o = ota("porch", &with_creds);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("OTA disabled"), "{}", text(&o));
    // A device that does not exist.
    let o = ota("nowhere", &with_creds);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert_eq!(cloud.with_sim("alice", "porch", |s| s.boots), Some(0));
    assert!(!text(&o).contains(EXISTING_CREDS) && !text(&o).contains(&token));

    // Dashboards.
    let templates = common::repo_root().join(TEMPLATES);
    let status = templates.join("status.json");
    let push = |extra: &[&str]| {
        let mut args = vec![
            "thinger",
            "dashboard",
            "push",
            status.to_str().unwrap(),
            "--device",
            "porch",
            "--thinger-api",
            api.as_str(),
        ];
        args.extend_from_slice(extra);
        tp(d, &args, &envs)
    };
    let o = push(&[]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(cloud.dashboard("alice", "status_porch").is_some());
    let o = push(&[]);
    assert_eq!(o.status.code(), Some(4), "{}", text(&o));
    assert!(text(&o).contains("--update"), "{}", text(&o));
    assert!(push(&["--update"]).status.success());
    // A template the schema refuses: the JSON path named, nothing sent.
    let bad = d.join("bad.json");
    std::fs::write(&bad, r#"{"name": "x", "widgets": {"not": "a list"}}"#).unwrap();
    let mut args = vec!["thinger", "dashboard", "push", bad.to_str().unwrap()];
    args.extend(["--device", "porch", "--thinger-api", api.as_str()]);
    let o = tp(d, &args, &envs);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("$.widgets"), "{}", text(&o));
    assert!(cloud.dashboard("alice", "bad_porch").is_none());
    // Offline: no account, no token; the personalised JSON written.
    let out = d.join("dash");
    let o = tp(
        d,
        &[
            "thinger",
            "dashboard",
            "push",
            status.to_str().unwrap(),
            "--device",
            "porch",
            "--thinger-user",
            "bob",
            "--offline",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", text(&o));
    let written: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("status_porch.json")).unwrap()).unwrap();
    assert_eq!(written["widgets"][0]["sources"][0]["user"], "bob");
    assert_no_secret_in_files(d, &[], &[&token, PASSWORD, EXISTING_CREDS]);
}

/// `--thinger-device 'esp-{mac}'`: the board is identified first and its MAC names the device:
/// on the connection that then writes it (ESP32 family), or by esptool's read-mac (ESP8266).
#[test]
fn a_device_named_after_the_boards_mac() {
    use thinger_patch_test_kit::rom_loader::{Chip, Config, Sim};
    let (cloud, token, dir) = account();
    let d = dir.path();
    let api = cloud.url();
    let root = common::repo_root();
    let app = root.join(APP);
    let table = std::fs::read(root.join(TABLE)).unwrap();
    let sim = Sim::start(Config::new(Chip::Esp32c3).with_flash(0x8000, &table));
    let mut args = common::sim_flash_args(
        app.to_str().unwrap(),
        sim.port(),
        WIFI,
        &["--thinger-device", "esp-{mac}", "--no-properties"],
    );
    args.extend(["--thinger-api", api.as_str()]);
    let o = tp(d, &args, &[("THINGER_TOKEN", token.as_str())]);
    let loader = sim.finish();
    assert!(o.status.success(), "{}", text(&o));
    let record = cloud
        .device("alice", "esp-58cf79123456")
        .expect("named after the simulated board's MAC 58:cf:79:12:34:56");
    assert!(record.properties.is_empty(), "--no-properties");
    let creds = record.credentials().unwrap();
    assert_eq!(common::find_all(&loader.flash, creds.as_bytes()).len(), 1);
    assert_eq!(
        common::find_all(&loader.flash, b"esp-58cf79123456\0").len(),
        1
    );

    // The ESP8266: esptool's read-mac names it, esptool writes it.
    let Some(esptool) = common::esptool() else {
        thinger_patch_test_kit::skip(
            "flash --thinger-device 'esp-{mac}' on an ESP8266: no esptool",
        );
        return;
    };
    let sim = Sim::start(Config::new(Chip::Esp8266));
    let esp8266 = root.join("examples/c-firmware/prebuilt/esp8266-demo.bin");
    let mut args = common::sim_flash_args(
        esp8266.to_str().unwrap(),
        sim.port(),
        WIFI,
        &[
            "--thinger-device",
            "esp-{mac}",
            "--no-stub",
            "--baud",
            "115200",
        ],
    );
    args.extend(["--thinger-api", api.as_str()]);
    let o = tp(
        d,
        &args,
        &[
            ("THINGER_TOKEN", token.as_str()),
            ("THINGER_PATCH_ESPTOOL", esptool.program.to_str().unwrap()),
        ],
    );
    let loader = sim.finish();
    assert!(o.status.success(), "{}", text(&o));
    let record = cloud
        .device("alice", "esp-18fe34a1b2c3")
        .expect("named after the simulated ESP8266's MAC 18:fe:34:a1:b2:c3");
    let creds = record.credentials().unwrap();
    assert_eq!(common::find_all(&loader.flash, creds.as_bytes()).len(), 1);
    assert_eq!(property(&record, "mac"), "18:fe:34:a1:b2:c3");
}
