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
