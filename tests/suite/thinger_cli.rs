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

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn device_created_with_saved_credentials_then_patched_shown_and_deleted() {
    let cloud = ThingerCloud::start();
    cloud.add_user("alice", PASSWORD);
    let token = cloud.issue_token("alice", Permissions::All);
    let dir = common::temp_dir();
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
    let cloud = ThingerCloud::start();
    cloud.add_user("alice", PASSWORD);
    let token = cloud.issue_token("alice", Permissions::All);
    let dir = common::temp_dir();
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
    assert_eq!(creds.len(), 32, "sized by the generator within the 64-byte slot");
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
    assert!(property(&record, "provisioned_at").as_str().unwrap().ends_with('Z'));

    // Both dashboards, personalised: the JSON one and the predecessor's padded placeholders.
    let status = cloud.dashboard("alice", "status_kitchen_7").expect("status dashboard");
    assert_eq!(status["name"], "Kitchen status");
    assert_eq!(status["widgets"][0]["sources"][0]["device"], "kitchen_7");
    assert_eq!(status["widgets"][0]["sources"][0]["user"], "alice");
    let weather = cloud.dashboard("alice", "Weather_kitchen_7").expect("weather dashboard");
    let w = weather.to_string();
    assert!(!w.contains("DEVCNAME") && !w.contains("CLOUDNAM"), "{w}");
    assert_eq!(weather["widgets"][0]["sources"][0]["device"], "kitchen_7");
    assert_eq!(weather["widgets"][0]["sources"][0]["user"], "alice");

    // The board now runs it and is online; a newer build goes to it through the cloud.
    cloud.attach("alice", "kitchen_7", SimDevice::esp32(flashed.clone(), "dev"));
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
            "--set",
            "wifi_ssid=HomeNet",
            "--set-env",
            "wifi_password=WIFI_PW",
            "--thinger-api",
            api.as_str(),
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
    assert!(text(&o).contains("already runs version 2.0"), "{}", text(&o));
    assert_eq!(
        cloud.with_sim("alice", "kitchen_7", |s| s.boots).unwrap(),
        1
    );
}
