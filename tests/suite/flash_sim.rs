//! `thinger-patch flash` against a simulated serial bootloader (`thinger_patch_test_kit::rom_loader`) on a
//! pseudo-terminal, and the simulator cross-checked with the real esptool.
//!
//! No chip is attached: the simulator speaks the ROM loader and flasher-stub
//! protocol (see crates/test-kit/src/rom_loader/mod.rs). Pseudo-terminals have no DTR/RTS lines, so
//! every client runs in its no-reset modes (`--before no-reset --after no-reset`).
#![cfg(unix)]

use crate::common;
use thinger_patch_test_kit::rom_loader as sim;

use sim::fake_esptool::{self, Behaviour, FakeEsptool};
use sim::{Chip, Config, Loader, Sim, partition_table};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const APP: &str = "examples/c-firmware/prebuilt/esp32c3-demo.bin";
const MERGED: &str = "examples/c-firmware/prebuilt/esp32c3-demo-merged.bin";
const TABLE: &str = "examples/c-firmware/prebuilt/esp32c3-partition-table.bin";

/// Values for the demo firmware's required slots (one secret).
const VALUES: &[&str] = &[
    "--set",
    "wifi_ssid=SimNet",
    "--set",
    "thinger_user=alice",
    "--set",
    "thinger_device=sim_device",
    "--set-env",
    "thinger_credentials=FLASH_SIM_CREDS",
];
const SECRET: &str = "s3cr3t-credential-value";

fn repo(rel: &str) -> PathBuf {
    common::repo_root().join(rel)
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(repo(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Runs thinger-patch with the test environment (no config discovery surprises).
fn cli(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let dir = common::temp_dir();
    let mut c = Command::new(common::cli_path());
    c.args(args)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("FLASH_SIM_CREDS", SECRET)
        .env("XDG_CONFIG_HOME", dir.path())
        .env_remove("ESPFLASH_PORT")
        .env_remove("THINGER_PATCH_ESPTOOL")
        .stdin(Stdio::null());
    for (k, v) in envs {
        c.env(k, v);
    }
    let o = c.output().expect("running thinger-patch");
    if std::env::var_os("FLASH_SIM_SHOW").is_some() {
        eprintln!(
            "$ thinger-patch {}\n{}",
            args.join(" "),
            common::describe_output(&o)
        );
    }
    o
}

/// The bytes `thinger-patch patch` makes with the same values: what must land on the flash.
fn expected(input: &Path, values: &[&str]) -> Vec<u8> {
    let dir = common::temp_dir();
    let out = dir.path().join("expected.bin");
    let mut args = vec!["patch", input.to_str().unwrap()];
    args.extend_from_slice(values);
    args.extend(["-o", out.to_str().unwrap()]);
    let o = cli(&args, &[]);
    assert!(o.status.success(), "{}", common::describe_output(&o));
    std::fs::read(out).unwrap()
}

fn flash_args<'a>(file: &'a str, port: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    common::sim_flash_args(file, port, VALUES, extra)
}

/// A C3 whose flash holds the demo's partition table, an otadata that selects an
/// older OTA slot, and old bytes in the app partitions and in nvs.
fn c3_with_table(table: &[u8]) -> Config {
    Config::new(Chip::Esp32c3)
        .with_flash(0x8000, table)
        .with_flash(0x9000, &[0x42; 0x100]) // nvs content that must survive
        .with_flash(0xd000, &[0x01, 0, 0, 0, 0x11, 0x22]) // otadata: seq 1 → ota_0
        .with_flash(0x10000, &[0x5A; 0x20000]) // an older factory app
        .with_flash(0x110000, &[0xA5; 0x100])
}

fn assert_ok(o: &Output) {
    assert!(o.status.success(), "{}", common::describe_output(o));
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn region(l: &Loader, at: usize, len: usize) -> &[u8] {
    &l.flash[at..at + len]
}

fn sha256_hex(b: &[u8]) -> String {
    common::hex(&common::sha256(b))
}

#[test]
fn c3_app_lands_in_factory_otadata_erased_recorded() {
    let sim = Sim::start(c3_with_table(&read(TABLE)));
    let dir = common::temp_dir();
    let record = dir.path().join("series.jsonl");
    let app = repo(APP);
    let args = flash_args(
        app.to_str().unwrap(),
        sim.port(),
        &["--record", record.to_str().unwrap(), "--json"],
    );
    let o = cli(&args, &[]);
    let l = sim.finish();
    assert_ok(&o);
    let want = expected(&app, VALUES);

    // The personalised image at the factory partition, the rest of it untouched.
    assert_eq!(region(&l, 0x10000, want.len()), want.as_slice());
    assert!(
        l.flash[0x10000 + want.len()..0x30000]
            .iter()
            .all(|&b| b == 0xFF || b == 0x5A),
        "bytes after the image"
    );
    // otadata erased; nvs, the table and ota_0 untouched.
    assert!(region(&l, 0xd000, 0x2000).iter().all(|&b| b == 0xFF));
    assert_eq!(region(&l, 0x9000, 0x100), &[0x42; 0x100][..]);
    assert_eq!(region(&l, 0x8000, 0xC00), read(TABLE).as_slice());
    assert_eq!(region(&l, 0x110000, 0x100), &[0xA5; 0x100][..]);

    // The espflash client went the whole way: stub, table read, compressed writes, MD5.
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    assert!(l.stub_started);
    for cmd in [
        "GET_SECURITY_INFO",
        "MEM_END",
        "READ_FLASH",
        "FLASH_DEFL_DATA",
        "SPI_FLASH_MD5",
        "CHANGE_BAUDRATE",
    ] {
        assert!(
            l.log.iter().any(|c| c == cmd),
            "{cmd} not sent: {:?}",
            l.log
        );
    }
    assert!(
        l.md5_checks
            .contains(&(0x10000, want.len().next_multiple_of(4) as u32)),
        "{:?}",
        l.md5_checks
    );
    assert!(
        l.md5_checks.contains(&(0xd000, 0x2000)),
        "{:?}",
        l.md5_checks
    );
    assert_eq!(l.baud, 460_800);

    // JSON summary: MAC, placement, no secret anywhere.
    let stdout = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(&stdout).expect("JSON summary");
    assert_eq!(v["mac"], "58:cf:79:12:34:56");
    assert_eq!(v["chip"], "esp32c3");
    assert_eq!(v["writes"][0]["offset"], 0x10000);
    assert_eq!(v["erases"][0]["offset"], 0xd000);
    assert_eq!(v["verified"], true);
    assert_eq!(v["sha256"], sha256_hex(&want));
    assert!(!stdout.contains(SECRET) && !stderr(&o).contains(SECRET));

    // The record: one JSON line, masked, with the SHA-256 of what was written.
    let text = std::fs::read_to_string(&record).unwrap();
    assert!(!text.contains(SECRET));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    let r: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(r["port"], sim_port_of(&v));
    assert_eq!(r["chip"], "esp32c3");
    assert_eq!(r["mac"], "58:cf:79:12:34:56");
    assert_eq!(r["sha256"], sha256_hex(&want));
    assert_eq!(r["slots"]["thinger_credentials"], "********");
    assert_eq!(r["slots"]["wifi_ssid"], "SimNet");
    assert!(r["time"].as_str().unwrap().ends_with('Z'));
}

fn sim_port_of(v: &serde_json::Value) -> serde_json::Value {
    v["port"].clone()
}

#[test]
fn c3_app_goes_to_ota_0_without_factory_rom_loader() {
    // No factory partition; and no stub: the ROM path (READ_FLASH_SLOW, FLASH_BEGIN/DATA).
    let table = partition_table(&[
        ("nvs", 1, 2, 0x9000, 0x4000),
        ("otadata", 1, 0, 0xd000, 0x2000),
        ("phy_init", 1, 1, 0xf000, 0x1000),
        ("ota_0", 0, 0x10, 0x10000, 0x100000),
        ("ota_1", 0, 0x11, 0x110000, 0x100000),
    ]);
    let sim = Sim::start(c3_with_table(&table));
    let app = repo(APP);
    // The port from ESPFLASH_PORT this time.
    let mut args = vec![
        "flash",
        app.to_str().unwrap(),
        "--before",
        "no-reset",
        "--after",
        "no-reset",
        "--no-stub",
    ];
    args.extend_from_slice(VALUES);
    let o = cli(&args, &[("ESPFLASH_PORT", sim.port())]);
    let l = sim.finish();
    assert_ok(&o);
    let want = expected(&app, VALUES);
    assert_eq!(region(&l, 0x10000, want.len()), want.as_slice());
    assert!(region(&l, 0xd000, 0x2000).iter().all(|&b| b == 0xFF));
    assert_eq!(
        region(&l, 0x110000, 0x100),
        &[0xA5; 0x100][..],
        "ota_1 untouched"
    );
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    assert!(!l.stub_started);
    assert!(l.log.iter().any(|c| c == "READ_FLASH_SLOW"));
    assert!(l.log.iter().any(|c| c == "FLASH_DATA"));
    assert!(!l.log.iter().any(|c| c == "FLASH_DEFL_DATA"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("ota_0"), "{out}");
    assert!(out.contains("MAC      58:cf:79:12:34:56"), "{out}");
}

#[test]
fn c3_merged_lands_at_zero() {
    let sim = Sim::start(Config::new(Chip::Esp32c3).with_flash(0x200000, &[0x77; 0x40]));
    let merged = repo(MERGED);
    let o = cli(&flash_args(merged.to_str().unwrap(), sim.port(), &[]), &[]);
    let l = sim.finish();
    assert_ok(&o);
    let want = expected(&merged, VALUES);
    assert_eq!(region(&l, 0, want.len()), want.as_slice());
    assert_eq!(
        region(&l, 0x200000, 0x40),
        &[0x77; 0x40][..],
        "beyond the image untouched"
    );
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    // No table read for a merged image.
    assert!(!l.log.iter().any(|c| c.starts_with("READ_FLASH")));
}

#[test]
fn chip_mismatch_writes_nothing() {
    let sim = Sim::start(Config::new(Chip::Esp32s3).with_flash(0x8000, &read(TABLE)));
    let app = repo(APP);
    let o = cli(&flash_args(app.to_str().unwrap(), sim.port(), &[]), &[]);
    let l = sim.finish();
    assert_eq!(o.status.code(), Some(1), "{}", common::describe_output(&o));
    let err = stderr(&o);
    assert!(err.contains("esp32s3") && err.contains("esp32c3"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert!(
        l.writes.is_empty() && l.erases.is_empty(),
        "{:?} {:?}",
        l.writes,
        l.erases
    );
    assert!(
        !l.log
            .iter()
            .any(|c| c.starts_with("FLASH_") || c.starts_with("MEM_")),
        "{:?}",
        l.log
    );
}

#[test]
fn corrupted_data_frame_is_rejected() {
    let mut cfg = c3_with_table(&read(TABLE));
    cfg.corrupt_data_frame = Some(0);
    let sim = Sim::start(cfg);
    let app = repo(APP);
    let o = cli(&flash_args(app.to_str().unwrap(), sim.port(), &[]), &[]);
    let l = sim.finish();
    assert_eq!(o.status.code(), Some(4), "{}", common::describe_output(&o));
    assert!(
        l.rejected.iter().any(|r| r.contains("checksum")),
        "{:?}",
        l.rejected
    );
    let err = stderr(&o);
    assert!(err.contains("writing the flash failed"), "{err}");
    assert!(err.contains("checksum"), "{err}");
    // The rejected block was not written; otadata (erased after the app) still selects the old app.
    assert_eq!(region(&l, 0xd000, 6), &[0x01, 0, 0, 0, 0x11, 0x22][..]);
}

#[test]
fn dropped_line_gives_a_clear_error() {
    let mut cfg = c3_with_table(&read(TABLE));
    cfg.drop_after_data_frames = Some(0);
    let sim = Sim::start(cfg);
    let app = repo(APP);
    let t = Instant::now();
    let o = cli(&flash_args(app.to_str().unwrap(), sim.port(), &[]), &[]);
    let l = sim.finish();
    assert!(l.hung_up);
    assert_eq!(o.status.code(), Some(4), "{}", common::describe_output(&o));
    let err = stderr(&o);
    assert!(err.contains("serial line dropped"), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t.elapsed()
    );
}

#[test]
fn missing_port_is_a_device_error() {
    // (Port choice without --port is unit-tested with fake port lists in
    // src/cli/flash/port.rs: a test here must never reach a real serial port.)
    let app = repo(APP);
    let dir = common::temp_dir();
    let port = dir.path().join("no-such-port");
    let o = cli(
        &flash_args(app.to_str().unwrap(), port.to_str().unwrap(), &[]),
        &[],
    );
    assert_eq!(o.status.code(), Some(4), "{}", common::describe_output(&o));
    assert!(
        stderr(&o).contains("cannot open the serial port"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn refusals_come_before_any_port_is_opened() {
    let dir = common::temp_dir();
    let port = dir.path().join("no-such-port");
    let port = port.to_str().unwrap();
    // An ELF is not a flash image: exit 1, and the (missing) port is never touched.
    let elf = repo("examples/c-firmware/prebuilt/esp32c3-demo.elf");
    let o = cli(&flash_args(elf.to_str().unwrap(), port, &[]), &[]);
    assert_eq!(o.status.code(), Some(1), "{}", common::describe_output(&o));
    assert!(stderr(&o).contains("convert it first"), "{}", stderr(&o));
    // A missing required value: exit 1 before connecting.
    let app = repo(APP);
    let o = cli(&["flash", app.to_str().unwrap(), "--port", port], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", common::describe_output(&o));
    assert!(!stderr(&o).contains("serial port"), "{}", stderr(&o));
    // One device per run.
    let o = cli(
        &[
            "flash",
            app.to_str().unwrap(),
            "--port",
            port,
            "--profile",
            "a",
            "--profile",
            "b",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", common::describe_output(&o));
}

// ---------------------------------------------------------------------------------------
// ESP8266 through esptool, and the simulator cross-checked with esptool itself
// ---------------------------------------------------------------------------------------

const PLACEHOLDER: &[&str] = &[
    "--placeholder",
    "banner=Captive Portal Requested WiFi Settings Change:",
    "--set",
    "banner=Provisioned by flash_sim",
];

#[test]
fn esp8266_arduino_image_via_esptool_rom() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let Some(image) = common::fixture("esphome/esp8266-core3.bin") else {
        return;
    };
    let sim = Sim::start(Config::new(Chip::Esp8266).with_flash(0x300000, &[0x33; 0x10]));
    let image_s = image.to_str().unwrap();
    let args = common::sim_flash_args(
        image_s,
        sim.port(),
        PLACEHOLDER,
        &["--no-stub", "--baud", "115200", "--json"],
    );
    let o = cli(
        &args,
        &[("THINGER_PATCH_ESPTOOL", esptool.program.to_str().unwrap())],
    );
    let l = sim.finish();
    assert_ok(&o);
    let want = expected(&image, PLACEHOLDER);
    assert_ne!(want, std::fs::read(&image).unwrap());
    assert_eq!(region(&l, 0, want.len()), want.as_slice());
    assert_eq!(region(&l, 0x300000, 0x10), &[0x33; 0x10][..]);
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    assert!(!l.stub_started);
    assert!(l.log.iter().any(|c| c == "FLASH_DATA"));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON summary");
    assert_eq!(v["mac"], "18:fe:34:a1:b2:c3");
    assert_eq!(v["chip"], "esp8266");
    assert_eq!(v["writes"][0]["offset"], 0);
    assert_eq!(v["sha256"], sha256_hex(&want));
    assert!(
        v["tool"].as_str().unwrap().contains(&esptool.version),
        "{}",
        v["tool"]
    );
    // No copy of the personalised image was left behind.
    assert!(!std::fs::read_dir(std::env::temp_dir()).unwrap().any(|e| {
        e.unwrap()
            .file_name()
            .to_string_lossy()
            .starts_with("thinger-patch-flash-")
    }));
}

#[test]
fn esp8266_image_on_an_esp32c3_is_refused_by_esptool() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let Some(image) = common::fixture("esphome/esp8266-core3.bin") else {
        return;
    };
    let sim = Sim::start(Config::new(Chip::Esp32c3));
    let image_s = image.to_str().unwrap();
    let args = common::sim_flash_args(image_s, sim.port(), PLACEHOLDER, &["--no-stub"]);
    let o = cli(
        &args,
        &[("THINGER_PATCH_ESPTOOL", esptool.program.to_str().unwrap())],
    );
    let l = sim.finish();
    assert_eq!(o.status.code(), Some(1), "{}", common::describe_output(&o));
    let err = stderr(&o);
    assert!(err.contains("esp32c3") && err.contains("esp8266"), "{err}");
    assert!(l.writes.is_empty() && l.erases.is_empty());
}

#[test]
fn missing_esptool_says_how_to_get_it() {
    // An ESP8266 v2 image, no esptool anywhere (empty PATH, empty HOME).
    let sim = Sim::start(Config::new(Chip::Esp8266));
    let dir = common::temp_dir();
    let image = repo("examples/c-firmware/prebuilt/esp8266-demo.bin");
    let mut args = vec!["flash", image.to_str().unwrap(), "--port", sim.port()];
    args.extend_from_slice(VALUES);
    let home = dir.path().to_str().unwrap();
    let o = cli(
        &args,
        &[("PATH", ""), ("HOME", home), ("PLATFORMIO_CORE_DIR", home)],
    );
    let l = sim.finish();
    // A tool this computer lacks is a local problem (3), not a device error (4).
    assert_eq!(o.status.code(), Some(3), "{}", common::describe_output(&o));
    let err = stderr(&o);
    assert!(
        err.contains("pipx install esptool") && err.contains("THINGER_PATCH_ESPTOOL"),
        "{err}"
    );
    assert!(
        err.contains("boot loader"),
        "the v2 placement warning: {err}"
    );
    assert!(l.log.is_empty(), "{:?}", l.log);
}

/// [`cli`] with a bound: a run longer than `limit` is killed and fails the test (a hang is
/// a failure, not a stuck test run).
fn cli_bounded(args: &[&str], envs: &[(&str, &str)], limit: Duration) -> Output {
    let dir = common::temp_dir();
    let mut c = Command::new(common::cli_path());
    c.args(args)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("FLASH_SIM_CREDS", SECRET)
        .env("XDG_CONFIG_HOME", dir.path())
        .env_remove("ESPFLASH_PORT")
        .env_remove("THINGER_PATCH_ESPTOOL")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        c.env(k, v);
    }
    let mut child = c.spawn().expect("running thinger-patch");
    let end = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > end {
            let _ = child.kill();
            let o = child.wait_with_output().unwrap();
            panic!(
                "thinger-patch {args:?} ran longer than {limit:?}\n{}",
                common::describe_output(&o)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// `flash` of the ESP8266 v2 demo through a fake esptool, with `extra` arguments.
fn flash_with_fake_esptool(fake: &FakeEsptool, extra: &[&str]) -> Output {
    let image = repo("examples/c-firmware/prebuilt/esp8266-demo.bin");
    let dir = common::temp_dir();
    let port = dir.path().join("ttyFAKE0");
    let mut args = vec![
        "flash",
        image.to_str().unwrap(),
        "--port",
        port.to_str().unwrap(),
    ];
    args.extend_from_slice(VALUES);
    args.extend_from_slice(extra);
    cli_bounded(
        &args,
        &[("THINGER_PATCH_ESPTOOL", fake.path.to_str().unwrap())],
        Duration::from_secs(60),
    )
}

#[test]
fn hung_esptool_is_stopped_with_its_children() {
    let fake = FakeEsptool::new(Behaviour::Hang);
    let o = flash_with_fake_esptool(&fake, &["--esptool-stall-timeout", "1"]);
    assert_eq!(o.status.code(), Some(4), "{}", common::describe_output(&o));
    let err = stderr(&o);
    assert!(err.contains("esptool printed nothing for 1 s"), "{err}");
    assert!(err.contains("was stopped"), "{err}");
    assert!(err.contains("--esptool-stall-timeout"), "{err}");
    assert!(!err.contains(SECRET));
    // The process esptool started went with it.
    let pid = fake
        .child_pid()
        .expect("the fake esptool started its child");
    assert!(
        fake_esptool::ends_within(pid, Duration::from_secs(5)),
        "process {pid} outlived the stopped esptool"
    );
}

#[test]
fn flooding_esptool_is_stopped_at_the_deadline() {
    // NUL bytes without a line break, endlessly: the output is read with a bounded line,
    // and the overall limit ends the run (the old reader buffered the whole flood).
    let fake = FakeEsptool::new(Behaviour::Flood);
    let o = flash_with_fake_esptool(&fake, &["--esptool-timeout", "2"]);
    assert_eq!(o.status.code(), Some(4), "{}", common::describe_output(&o));
    let err = stderr(&o);
    assert!(err.contains("esptool did not finish within 2 s"), "{err}");
    assert!(err.contains("--esptool-timeout"), "{err}");
    // The error quotes at most a bounded piece of the flood.
    assert!(
        o.stderr.len() < 8 * 1024,
        "{} bytes of stderr",
        o.stderr.len()
    );
    let pid = fake
        .child_pid()
        .expect("the fake esptool started its child");
    assert!(
        fake_esptool::ends_within(pid, Duration::from_secs(5)),
        "process {pid} outlived the stopped esptool"
    );
}

#[test]
fn duration_flags_out_of_range_are_usage_errors() {
    let app = repo(APP);
    let dir = common::temp_dir();
    let port = dir.path().join("no-such-port");
    for flag in ["--esptool-timeout", "--esptool-stall-timeout"] {
        for value in ["1e-12", "0", "-1", "NaN", "inf", "1e300", "ten"] {
            let o = cli(
                &flash_args(
                    app.to_str().unwrap(),
                    port.to_str().unwrap(),
                    &["--dry-run", flag, value],
                ),
                &[],
            );
            assert_eq!(
                o.status.code(),
                Some(2),
                "{flag} {value}: {}",
                common::describe_output(&o)
            );
            let err = stderr(&o);
            assert!(err.contains(flag) && err.contains("0.1 to 86400"), "{err}");
        }
    }
}

#[test]
fn help_offers_one_profile() {
    let o = cli(&["flash", "--help"], &[]);
    assert_ok(&o);
    let help = String::from_utf8_lossy(&o.stdout);
    let line = help
        .lines()
        .skip_while(|l| !l.contains("--profile"))
        .take(3)
        .flat_map(str::split_whitespace)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!line.contains("one output per profile"), "{line}");
    assert!(line.contains("at most one"), "{line}");
}

#[test]
fn dry_run_shows_the_plan_and_touches_no_port() {
    // An app image: the device's table decides; the rule and the candidate are shown.
    let sim = Sim::start(Config::new(Chip::Esp32c3));
    let app = repo(APP);
    let o = cli(
        &flash_args(app.to_str().unwrap(), sim.port(), &["--dry-run", "--json"]),
        &[],
    );
    assert_ok(&o);
    assert!(!String::from_utf8_lossy(&o.stdout).contains(SECRET));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON summary");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["chip"], "esp32c3");
    assert_eq!(v["tool"], "espflash");
    assert_eq!(v["writes"], serde_json::json!([]));
    assert_eq!(v["device_table"]["read_at"], 0x8000);
    assert!(
        v["device_table"]["target"]
            .as_str()
            .unwrap()
            .contains("factory")
    );
    let want = expected(&app, VALUES);
    assert_eq!(v["device_table"]["len"], want.len());
    assert_eq!(v["sha256"], sha256_hex(&want));
    let o = cli(
        &flash_args(app.to_str().unwrap(), sim.port(), &["--dry-run"]),
        &[],
    );
    assert_ok(&o);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("factory app partition, else ota_0"), "{text}");
    assert!(text.contains("0x8000"), "{text}");
    assert!(text.contains("nothing written"), "{text}");
    assert!(!text.contains(SECRET));

    // A merged image: its place is known.
    let merged = repo(MERGED);
    let o = cli(
        &flash_args(
            merged.to_str().unwrap(),
            sim.port(),
            &["--dry-run", "--json"],
        ),
        &[],
    );
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON summary");
    assert_eq!(v["writes"][0]["offset"], 0);
    assert_eq!(v["writes"][0]["what"], "merged image");
    assert!(v.get("device_table").is_none());
    let l = sim.finish();
    assert!(l.log.is_empty(), "the port was touched: {:?}", l.log);

    // ESP8266 without any esptool: a dry run does not need it.
    let home = common::temp_dir();
    let h = home.path().to_str().unwrap();
    let image = repo("examples/c-firmware/prebuilt/esp8266-demo.bin");
    let port = home.path().join("no-such-port");
    let o = cli(
        &flash_args(
            image.to_str().unwrap(),
            port.to_str().unwrap(),
            &["--dry-run", "--json"],
        ),
        &[("PATH", ""), ("HOME", h), ("PLATFORMIO_CORE_DIR", h)],
    );
    assert_ok(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON summary");
    assert_eq!(v["tool"], "esptool");
    assert_eq!(v["writes"][0]["offset"], 0x1000);
    assert!(stderr(&o).contains("boot loader"), "{}", stderr(&o));

    // Nothing is flashed, so nothing is recorded.
    let o = cli(
        &flash_args(
            app.to_str().unwrap(),
            port.to_str().unwrap(),
            &["--dry-run", "--record", "x.jsonl"],
        ),
        &[],
    );
    assert_eq!(o.status.code(), Some(2), "{}", common::describe_output(&o));
}

fn esptool_write(
    esptool: &common::Esptool,
    chip: &str,
    port: &str,
    extra: &[&str],
    addr_file: &[&str],
) -> Output {
    let mut c = Command::new(&esptool.program);
    c.args([
        "--chip", chip, "--port", port, "--baud", "115200", "--before", "no-reset", "--after",
        "no-reset",
    ])
    .args(extra)
    .arg("write-flash")
    .args(addr_file)
    .env("NO_COLOR", "1")
    .stdin(Stdio::null());
    c.output().expect("running esptool")
}

#[test]
fn esptool_stub_writes_c3_app_compressed_and_verified() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let sim = Sim::start(Config::new(Chip::Esp32c3).with_flash(0x10000, &[0x5A; 0x1000]));
    let app = repo(APP);
    let o = esptool_write(
        &esptool,
        "esp32c3",
        sim.port(),
        &[],
        &["0x10000", app.to_str().unwrap()],
    );
    let l = sim.finish();
    assert!(o.status.success(), "{}", common::describe_output(&o));
    let bytes = read(APP);
    assert_eq!(region(&l, 0x10000, bytes.len()), bytes.as_slice());
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    assert!(l.stub_started);
    assert!(l.log.iter().any(|c| c == "FLASH_DEFL_DATA"));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("Hash of data verified"), "{out}");
    assert!(out.contains("58:cf:79:12:34:56"), "{out}");
}

#[test]
fn esptool_stub_writes_esp8266_compressed_and_verified() {
    // The ESP8266 flasher stub speaks the same stub protocol: the simulator runs it too.
    let Some(esptool) = common::esptool() else {
        return;
    };
    let sim = Sim::start(Config::new(Chip::Esp8266));
    let bytes: Vec<u8> = (0..0x9000u32).map(|i| (i % 97) as u8).collect();
    let dir = common::temp_dir();
    let file = common::write_file(dir.path(), "blob.bin", &bytes);
    let o = esptool_write(
        &esptool,
        "esp8266",
        sim.port(),
        &[],
        &["0x1000", file.to_str().unwrap()],
    );
    let l = sim.finish();
    assert!(o.status.success(), "{}", common::describe_output(&o));
    assert!(l.stub_started);
    assert!(l.log.iter().any(|c| c == "FLASH_DEFL_DATA"));
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    assert_eq!(region(&l, 0x1000, bytes.len()), bytes.as_slice());
    assert!(String::from_utf8_lossy(&o.stdout).contains("Hash of data verified"));
}

#[test]
fn esptool_retries_a_corrupted_block() {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let mut cfg = Config::new(Chip::Esp8266);
    cfg.corrupt_data_frame = Some(1);
    let sim = Sim::start(cfg);
    let bytes: Vec<u8> = (0..0x3000u32).map(|i| (i * 7 % 251) as u8).collect();
    let dir = common::temp_dir();
    let file = common::write_file(dir.path(), "blob.bin", &bytes);
    let o = esptool_write(
        &esptool,
        "esp8266",
        sim.port(),
        &["--no-stub"],
        &["0x20000", file.to_str().unwrap()],
    );
    let l = sim.finish();
    assert!(o.status.success(), "{}", common::describe_output(&o));
    // The ROM rejected the damaged block by its checksum; esptool sent it again.
    let data_rejects: Vec<&String> = l
        .rejected
        .iter()
        .filter(|r| r.starts_with("FLASH_DATA"))
        .collect();
    assert_eq!(data_rejects.len(), 1, "{:?}", l.rejected);
    assert!(data_rejects[0].contains("checksum"), "{:?}", l.rejected);
    assert_eq!(region(&l, 0x20000, bytes.len()), bytes.as_slice());
}

// ---------------------------------------------------------------------------------------
// The loader on its own: hand-made frames
// ---------------------------------------------------------------------------------------

fn frame(op: u8, data: &[u8], chk: u32) -> Vec<u8> {
    let mut f = vec![0x00, op];
    f.extend((data.len() as u16).to_le_bytes());
    f.extend(chk.to_le_bytes());
    f.extend(data);
    f
}

fn words(ws: &[u32]) -> Vec<u8> {
    ws.iter().flat_map(|w| w.to_le_bytes()).collect()
}

fn data_frame(op: u8, seq: u32, block: &[u8]) -> Vec<u8> {
    let chk = block.iter().fold(0xEFu8, |a, b| a ^ b);
    let mut d = words(&[block.len() as u32, seq, 0, 0]);
    d.extend(block);
    frame(op, &d, u32::from(chk))
}

/// `(status, error)` of a reply with the ROM's 4 status bytes.
fn status(reply: &[u8]) -> (u8, u8) {
    let n = reply.len();
    (reply[n - 4], reply[n - 3])
}

#[test]
fn loader_checks_order_checksums_and_md5() {
    use sim::loader::op;
    let mut l = Loader::new(&Config::new(Chip::Esp32c3));
    // SLIP round trip of the special bytes.
    let mut dec = sim::SlipDecoder::default();
    let mut frames = Vec::new();
    for b in sim::slip_encode(&[0xC0, 0xDB, 0x01]) {
        dec.push(b, &mut frames);
    }
    assert_eq!(frames, vec![vec![0xC0, 0xDB, 0x01]]);

    let mut sync = vec![0x07, 0x07, 0x12, 0x20];
    sync.extend([0x55; 32]);
    let out = l.handle(&frame(op::SYNC, &sync, 0));
    assert_eq!(out.replies.len(), 8, "the ROM answers SYNC eight times");
    assert_ne!(
        u32::from_le_bytes(out.replies[0][4..8].try_into().unwrap()),
        0
    );

    // Two blocks of 0x400 at 0x1000.
    let out = l.handle(&frame(
        op::FLASH_BEGIN,
        &words(&[0x1000, 2, 0x400, 0x1000, 0]),
        0,
    ));
    assert_eq!(status(&out.replies[0]), (0, 0));
    let a = vec![0x11u8; 0x400];
    let b = vec![0x22u8; 0x400];
    // Out of order: block 1 before block 0.
    let out = l.handle(&data_frame(op::FLASH_DATA, 1, &b));
    assert_eq!(status(&out.replies[0]).0, 1);
    assert!(l.rejected.last().unwrap().contains("out of order"));
    // A damaged block: the checksum no longer matches.
    let mut bad = data_frame(op::FLASH_DATA, 0, &a);
    let n = bad.len();
    bad[n - 1] ^= 0x01;
    let out = l.handle(&bad);
    assert_eq!(status(&out.replies[0]), (1, 0x07));
    assert!(l.rejected.last().unwrap().contains("checksum"));
    // In order, intact.
    for (seq, blk) in [(0, &a), (1, &b)] {
        let out = l.handle(&data_frame(op::FLASH_DATA, seq, blk));
        assert_eq!(status(&out.replies[0]), (0, 0));
    }
    assert_eq!(&l.flash[0x1000..0x1400], a.as_slice());
    assert_eq!(&l.flash[0x1400..0x1800], b.as_slice());
    // MD5 (the ROM answers in 32 hex digits).
    let out = l.handle(&frame(op::SPI_FLASH_MD5, &words(&[0x1000, 0x800, 0, 0]), 0));
    let r = &out.replies[0];
    let hex = std::str::from_utf8(&r[8..40]).unwrap();
    let mut both = a.clone();
    both.extend(&b);
    use md5::Digest as _;
    assert_eq!(hex, common::hex(&md5::Md5::digest(&both)));
    // Writing without erasing only clears bits, as on NOR flash.
    l.handle(&frame(
        op::FLASH_BEGIN,
        &words(&[0, 1, 0x400, 0x1000, 0]),
        0,
    ));
    let out = l.handle(&data_frame(op::FLASH_DATA, 0, &vec![0x0Fu8; 0x400]));
    assert_eq!(status(&out.replies[0]), (0, 0));
    assert!(l.flash[0x1000..0x1400].iter().all(|&x| x == 0x11 & 0x0F));
}
