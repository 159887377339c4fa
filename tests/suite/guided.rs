//! The guided mode (`thinger-patch setup`, or `thinger-patch` alone on a terminal), driven as a
//! person would: through a pseudo-terminal (rexpect), keys typed into the real binary's prompts.
//! Flashing goes into the ROM-loader simulator of `thinger_patch_test_kit` (no chip here; a
//! pseudo-terminal has no DTR/RTS, so setup runs with `--before no-reset --after no-reset`,
//! and `--port` names the simulator, the documented way to offer a port). The written and the
//! flashed image are checked by esptool and the project's inspect, and the transcript must
//! never show a secret.
#![cfg(unix)]

use crate::common;
use rexpect::process::WaitStatus;
use rexpect::session::{PtySession, spawn_command};
use std::path::Path;
use std::process::Command;
use thinger_patch_test_kit::rom_loader::{Chip, Config, Sim};

const APP: &str = "examples/c-firmware/prebuilt/esp32c3-demo.bin";
const OTHER: &str = "examples/c-firmware/prebuilt/esp8266-demo.bin";
const TABLE: &str = "examples/c-firmware/prebuilt/esp32c3-partition-table.bin";
const PASSWORD: &str = "pw-CANARY-4471";
const CREDENTIALS: &str = "cred-CANARY-9025";
/// Keys typed are echoed by the terminal's line discipline only for visible prompts; a
/// too-long answer is deleted with this many backspaces before the right one is typed.
const BACKSPACE: &str = "\x7f";

fn setup(dir: &Path, args: &[&str]) -> PtySession {
    let mut c = Command::new(common::cli_path());
    c.arg("setup")
        .args(args)
        .current_dir(dir)
        .env("HOME", dir.join("home"))
        .env("XDG_CONFIG_HOME", dir.join("home/.config"))
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env_remove("ESPFLASH_PORT")
        .env_remove("THINGER_TOKEN");
    spawn_command(c, Some(30_000)).expect("spawning thinger-patch setup on a pty")
}

/// Waits for `text`, keeping everything seen in `log`.
fn expect(p: &mut PtySession, log: &mut String, text: &str) {
    match p.exp_string(text) {
        Ok(before) => {
            log.push_str(&before);
            log.push_str(text);
        }
        Err(e) => panic!("waiting for {text:?}: {e}\n--- seen so far ---\n{log}"),
    }
}

fn answer(p: &mut PtySession, log: &mut String, prompt: &str, keys: &str) {
    expect(p, log, prompt);
    p.send(keys).unwrap();
    p.send("\r").unwrap();
    p.flush().unwrap();
}

fn rest(p: &mut PtySession, log: &mut String) -> i32 {
    log.push_str(&p.exp_eof().unwrap_or_default());
    match p.process().wait().expect("wait") {
        WaitStatus::Exited(_, code) => code,
        other => panic!("setup ended with {other:?}\n{log}"),
    }
}

fn no_secret(log: &str) {
    for s in [PASSWORD, CREDENTIALS] {
        assert!(
            !log.contains(s),
            "a secret was shown on the terminal:\n{log}"
        );
    }
}

#[test]
fn guided_setup_asks_writes_and_flashes_into_the_simulator() {
    let dir = common::temp_dir();
    let d = dir.path();
    let app = d.join("esp32c3-demo.bin");
    std::fs::copy(common::repo_root().join(APP), &app).unwrap();
    std::fs::copy(common::repo_root().join(OTHER), d.join("esp8266-demo.bin")).unwrap();
    let table = std::fs::read(common::repo_root().join(TABLE)).unwrap();
    let sim = Sim::start(Config::new(Chip::Esp32c3).with_flash(0x8000, &table));

    let mut p = setup(
        d,
        &[
            "--port",
            sim.port(),
            "--before",
            "no-reset",
            "--after",
            "no-reset",
            "--no-stub",
        ],
    );
    let mut log = String::new();
    // 1. Two firmware files: choose by typing part of the name.
    answer(&mut p, &mut log, "Which firmware", "esp32c3");
    // 2. One question per slot, standard keys first.
    answer(
        &mut p,
        &mut log,
        "wifi_ssid (slot), up to 32 bytes",
        "HomeNet",
    );
    // A password too short for WPA2 is refused with the rule, then a good one, twice.
    answer(
        &mut p,
        &mut log,
        "wifi_password (slot), up to 64 bytes",
        "short",
    );
    expect(&mut p, &mut log, "8 to 63");
    p.send(&BACKSPACE.repeat(5)).unwrap();
    answer(&mut p, &mut log, "", PASSWORD);
    answer(&mut p, &mut log, "Type it again", PASSWORD);
    answer(&mut p, &mut log, "thinger_host (slot)", ""); // the default, iot.thinger.io
    answer(&mut p, &mut log, "thinger_user (slot)", "alice");
    // Too long for the device id: re-asked with the limit.
    let long = "k".repeat(40);
    answer(
        &mut p,
        &mut log,
        "thinger_device (slot), up to 32 bytes",
        &long,
    );
    expect(&mut p, &mut log, "32");
    p.send(&BACKSPACE.repeat(40)).unwrap();
    answer(&mut p, &mut log, "", "kitchen_1");
    answer(&mut p, &mut log, "thinger_credentials (slot)", CREDENTIALS);
    answer(&mut p, &mut log, "Type it again", CREDENTIALS);
    answer(&mut p, &mut log, "fw.version (slot)", ""); // keeps "dev"
    answer(&mut p, &mut log, "greeting (slot)", "hi there");
    // 3. Summary (masked), then the file.
    expect(&mut p, &mut log, "Summary");
    answer(&mut p, &mut log, "Write ", "");
    expect(&mut p, &mut log, "esp32c3-demo.kitchen_1.bin");
    // 4. Flash into the simulator on the named port.
    answer(&mut p, &mut log, "What next?", "");
    answer(&mut p, &mut log, "Flash to ", "");
    // 5. Remember the network, host and user for the next device.
    answer(&mut p, &mut log, "Remember ", "y");
    let code = rest(&mut p, &mut log);
    let flashed = sim.finish();
    assert_eq!(code, 0, "{log}");
    no_secret(&log);

    let out = d.join("esp32c3-demo.kitchen_1.bin");
    let written = std::fs::read(&out).expect("the personalised file");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
        0o600,
        "it holds secrets"
    );
    assert_eq!(
        std::fs::read(&app).unwrap(),
        std::fs::read(common::repo_root().join(APP)).unwrap(),
        "the input is untouched"
    );
    // What was flashed is what was written, at the app partition.
    assert_eq!(
        &flashed.flash[0x10000..0x10000 + written.len()],
        written.as_slice()
    );
    if let Some(esptool) = common::esptool() {
        esptool
            .image_info(&out, Some("esp32c3"))
            .assert_valid("the guided mode's output");
    }
    let o = Command::new(common::cli_path())
        .args(["inspect", out.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    for v in [
        "HomeNet",
        "alice",
        "kitchen_1",
        "iot.thinger.io",
        "hi there",
        "\"dev\"",
    ] {
        assert!(text.contains(v), "{v} not in {text}");
    }
    assert_eq!(
        common::find_all(&written, PASSWORD.as_bytes()).len(),
        1,
        "the password is in the image"
    );
    // Remembered: the network, host and user; not the secrets, not the device id.
    let remembered =
        std::fs::read_to_string(d.join("home/.config/thinger-patch/thinger-patch.toml")).unwrap();
    assert!(
        remembered.contains("[profiles.setup]")
            && remembered.contains("HomeNet")
            && remembered.contains("alice"),
        "{remembered}"
    );
    assert!(
        !remembered.contains("kitchen_1")
            && !remembered.contains(PASSWORD)
            && !remembered.contains(CREDENTIALS),
        "{remembered}"
    );
    if std::env::var_os("GUIDED_SHOW").is_some() {
        eprintln!("{log}");
    }
}

#[test]
fn ctrl_c_midway_writes_nothing_and_exits_130() {
    let dir = common::temp_dir();
    let d = dir.path();
    std::fs::copy(common::repo_root().join(APP), d.join("fw.bin")).unwrap();
    let mut p = setup(d, &["fw.bin"]);
    let mut log = String::new();
    answer(&mut p, &mut log, "wifi_ssid (slot)", "HomeNet");
    expect(&mut p, &mut log, "wifi_password (slot)");
    p.send_control('c').unwrap();
    let code = rest(&mut p, &mut log);
    assert_eq!(code, 130, "{log}");
    assert!(log.contains("nothing was written"), "{log}");
    let names: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "home")
        .collect();
    assert_eq!(names, ["fw.bin"]);
}

#[test]
fn without_a_terminal_it_says_what_to_run() {
    let dir = common::temp_dir();
    for args in [&[][..], &["setup"][..]] {
        let o = Command::new(common::cli_path())
            .args(args)
            .current_dir(dir.path())
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", common::describe_output(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains("thinger-patch patch FIRMWARE --set"), "{err}");
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "nothing written"
        );
    }
}

/// The predecessor's current-generation firmware (placeholders only): every placeholder is
/// asked for, the time zone comes from the computer's (TZ here), coordinates are written with
/// as many decimals as fit 8 characters, the weather key is a secret asked twice.
#[test]
fn guided_setup_fills_the_predecessors_placeholders() {
    let dir = common::temp_dir();
    let d = dir.path();
    std::fs::copy(
        common::repo_root().join("examples/c-firmware/prebuilt/esp32c3-legacy-2025.bin"),
        d.join("weather.bin"),
    )
    .unwrap();
    let mut c = Command::new(common::cli_path());
    c.args(["setup", "weather.bin"])
        .current_dir(d)
        .env("HOME", d.join("home"))
        .env("XDG_CONFIG_HOME", d.join("home/.config"))
        .env("TERM", "xterm")
        .env("TZ", "Europe/Madrid");
    let mut p = spawn_command(c, Some(30_000)).unwrap();
    let mut log = String::new();
    let owm = "0123456789abcdef0123456789ABCDEF";
    answer(
        &mut p,
        &mut log,
        "wifi_ssid (placeholder), up to 24 bytes",
        "HomeNet",
    );
    answer(&mut p, &mut log, "wifi_password (placeholder)", PASSWORD);
    answer(&mut p, &mut log, "Type it again", PASSWORD);
    answer(&mut p, &mut log, "thinger_host (placeholder)", ""); // iot.thinger.io
    answer(&mut p, &mut log, "thinger_user (placeholder)", "alice");
    answer(
        &mut p,
        &mut log,
        "thinger_device (placeholder)",
        "weather_1",
    );
    answer(
        &mut p,
        &mut log,
        "thinger_credentials (placeholder)",
        CREDENTIALS,
    );
    answer(&mut p, &mut log, "Type it again", CREDENTIALS);
    // Madrid: UTC+1, one hour of daylight-saving time, offered as the defaults.
    expect(&mut p, &mut log, "(3600)");
    answer(&mut p, &mut log, "tz_offset (placeholder)", "");
    answer(&mut p, &mut log, "dst_offset (placeholder)", "");
    answer(&mut p, &mut log, "latitude (placeholder)", "95");
    expect(&mut p, &mut log, "-90 to 90");
    p.send(&BACKSPACE.repeat(2)).unwrap();
    answer(&mut p, &mut log, "", "48.73561234");
    answer(&mut p, &mut log, "longitude (placeholder)", "-9.18291234");
    answer(&mut p, &mut log, "owm_api_key (placeholder)", owm);
    answer(&mut p, &mut log, "Type it again", owm);
    answer(&mut p, &mut log, "Write ", "");
    // Typing filters the choices.
    answer(&mut p, &mut log, "What next?", "Stop");
    answer(&mut p, &mut log, "Remember ", "n");
    let code = rest(&mut p, &mut log);
    assert_eq!(code, 0, "{log}");
    no_secret(&log);
    assert!(!log.contains(owm), "the weather key was shown");
    let out = d.join("weather.weather_1.bin");
    let bytes = std::fs::read(&out).unwrap();
    for (value, width) in [
        ("HomeNet", 24),
        ("alice", 24),
        ("iot.thinger.io", 24),
        ("weather_1", 24),
        ("3600", 8),
        ("48.73561", 8),
        ("-9.18291", 8),
    ] {
        let mut want = value.as_bytes().to_vec();
        want.resize(width, 0);
        assert_eq!(
            common::find_all(&bytes, &want).len(),
            if value == "3600" { 2 } else { 1 },
            "{value}"
        );
    }
    if let Some(esptool) = common::esptool() {
        esptool
            .image_info(&out, Some("esp32c3"))
            .assert_valid("the guided legacy output");
    }
}

/// With an account at hand (`THINGER_TOKEN`; the API named in the folder's thinger-patch.toml,
/// here the project's simulator), setup offers to create the device: its id is asked, the
/// user, credentials and host come from the account (not asked, never shown), and the written
/// file is what gets flashed.
#[test]
fn guided_setup_creates_the_device_on_thinger_io() {
    use thinger_patch_test_kit::thinger_cloud::{Permissions, ThingerCloud};
    let cloud = ThingerCloud::start();
    cloud.add_user("alice", "pw-unused");
    let token = cloud.issue_token("alice", Permissions::All);
    let dir = common::temp_dir();
    let d = dir.path();
    std::fs::copy(common::repo_root().join(APP), d.join("fw.bin")).unwrap();
    std::fs::write(
        d.join("thinger-patch.toml"),
        format!(
            "[thinger]\nuser = \"alice\"\napi_url = \"{}\"\n",
            cloud.url()
        ),
    )
    .unwrap();
    let table = std::fs::read(common::repo_root().join(TABLE)).unwrap();
    let sim = Sim::start(Config::new(Chip::Esp32c3).with_flash(0x8000, &table));
    let mut c = Command::new(common::cli_path());
    c.args(["setup", "fw.bin", "--port", sim.port()])
        .args(["--before", "no-reset", "--after", "no-reset", "--no-stub"])
        .current_dir(d)
        .env("HOME", d.join("home"))
        .env("XDG_CONFIG_HOME", d.join("home/.config"))
        .env("TERM", "xterm")
        .env("NO_COLOR", "1")
        .env("THINGER_TOKEN", &token)
        .env_remove("ESPFLASH_PORT");
    let mut p = spawn_command(c, Some(30_000)).expect("spawning setup");
    let mut log = String::new();
    answer(
        &mut p,
        &mut log,
        "Create this device on your Thinger.io account",
        "",
    );
    answer(&mut p, &mut log, "The new device's id", "porch 1");
    expect(&mut p, &mut log, "letters, digits"); // the API's rule, then a good id
    p.send(&BACKSPACE.repeat(7)).unwrap();
    answer(&mut p, &mut log, "", "porch_1");
    answer(&mut p, &mut log, "wifi_ssid (slot)", "HomeNet");
    answer(&mut p, &mut log, "wifi_password (slot)", PASSWORD);
    answer(&mut p, &mut log, "Type it again", PASSWORD);
    answer(&mut p, &mut log, "fw.version (slot)", "");
    answer(&mut p, &mut log, "greeting (slot)", "");
    expect(&mut p, &mut log, "Summary");
    answer(&mut p, &mut log, "Write ", "");
    expect(&mut p, &mut log, "created device porch_1");
    answer(&mut p, &mut log, "What next?", "");
    answer(&mut p, &mut log, "Flash to ", "");
    answer(&mut p, &mut log, "Remember ", "n");
    let code = rest(&mut p, &mut log);
    let flashed = sim.finish();
    assert_eq!(code, 0, "{log}");
    assert!(
        !log.contains("thinger_credentials (slot)"),
        "not asked: {log}"
    );
    let record = cloud.device("alice", "porch_1").expect("created");
    let creds = record.credentials().unwrap().to_string();
    assert!(
        !log.contains(&creds) && !log.contains(&token) && !log.contains(PASSWORD),
        "{log}"
    );
    let written = std::fs::read(d.join("fw.porch_1.bin")).expect("written");
    assert_eq!(common::find_all(&written, creds.as_bytes()).len(), 1);
    assert_eq!(
        &flashed.flash[0x10000..0x10000 + written.len()],
        written.as_slice(),
        "the written file is what was flashed"
    );
}
