//! Flashing speed against the project's ROM-loader simulator (`cargo bench --bench flashing`).
//!
//! The boards are `thinger_patch_test_kit::rom_loader` simulators on pseudo-terminals. Two
//! settings: **CPU only** (a pty has no baud rate: what is measured is the clients' own cost,
//! connecting, the stub, compressing, framing, each answer, the MD5 check, and the simulator's;
//! a 1 MiB app) and **with wire time** (the simulator takes 10 bit times per byte received at
//! its current baud rate, as a UART does; a 256 KiB app, since every byte now costs real time).
//! Every figure is a ratio of runs made in the same process, alternating (median of rounds):
//!
//! 1. **Parallel ports**: `thinger-patch batch IMAGE --port P1..P8 --once` (eight simulated
//!    ESP32-C3 boards, one identity each, a fresh ledger each round) against `thinger-patch flash
//!    IMAGE` to one board: the wall time of eight over the time of one (8.0 = no overlap at all,
//!    1.0 = perfect overlap; the target is <= 1.3).
//! 2. **Anchor**: `thinger-patch flash IMAGE` against `esptool write-flash 0x0 IMAGE` of the same
//!    personalised image into the same simulator, both with the flasher stub, compressed writes,
//!    the same baud (460800) and the MD5 check (target <= 1.0). Needs esptool
//!    (`$THINGER_PATCH_ESPTOOL`, else `.venv/bin/esptool`); skipped with a message otherwise.
//!
//! The image is a merged ESP32-C3 image built in code (`common::merged_with_slots`): bootloader,
//! table and an app of incompressible filler with four slots. The binary is the one cargo
//! builds for this bench (`CARGO_BIN_EXE_thinger-patch`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use thinger_patch_test_kit::rom_loader::{Chip, Config, Sim};

const PORTS: usize = 8;
const KEY: &str = "bench-ledger-key";

fn tool() -> PathBuf {
    std::env::var_os("THINGER_PATCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_thinger-patch")))
}

fn esptool() -> Option<PathBuf> {
    let p = std::env::var_os("THINGER_PATCH_ESPTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/esptool"));
    p.is_file().then_some(p)
}

/// One setting: the simulators' wire time and the image.
struct Setting {
    wire_time: bool,
    image: PathBuf,
}

impl Setting {
    fn board(&self, n: u8) -> Sim {
        let mut c = Config::new(Chip::Esp32c3);
        c.mac = [0x58, 0xcf, 0x79, 0x00, 0x10, n];
        c.wire_time = self.wire_time;
        Sim::start(c)
    }
}

fn run(mut c: Command, what: &str) -> Duration {
    let t = Instant::now();
    let o = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let d = t.elapsed();
    checked(o, what);
    d
}

fn checked(o: Output, what: &str) {
    assert!(
        o.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

fn flash_one(dir: &Path, s: &Setting) -> Duration {
    let sim = s.board(0);
    let mut c = Command::new(tool());
    c.args(["flash", s.image.to_str().unwrap(), "--port", sim.port()])
        .args([
            "--before", "no-reset", "--after", "no-reset", "--baud", "460800",
        ])
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir);
    let d = run(c, "thinger-patch flash");
    let l = sim.finish();
    assert!(l.rejected.is_empty(), "{:?}", l.rejected);
    d
}

fn batch_eight(dir: &Path, s: &Setting, round: usize) -> Duration {
    let sims: Vec<Sim> = (1..=PORTS as u8).map(|n| s.board(n)).collect();
    let ledger = dir.join(format!("bench-{}-{round}.db", s.wire_time));
    let mut c = Command::new(tool());
    c.args(["batch", s.image.to_str().unwrap(), "--generate", "8"])
        .args(["--device-id", "b-{mac}", "--once", "--ledger"])
        .arg(&ledger)
        .args([
            "--before", "no-reset", "--after", "no-reset", "--baud", "460800",
        ])
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir)
        .env("THINGER_PATCH_LEDGER_KEY", KEY)
        .args(["--set", "wifi_ssid=BenchNet", "--set", "thinger_user=bench"]);
    for sim in &sims {
        c.args(["--port", sim.port()]);
    }
    let d = run(c, "thinger-patch batch");
    for sim in sims {
        assert!(sim.finish().rejected.is_empty());
    }
    d
}

fn esptool_write(esptool: &Path, s: &Setting) -> Duration {
    let sim = s.board(0);
    let mut c = Command::new(esptool);
    c.args([
        "--chip",
        "esp32c3",
        "--port",
        sim.port(),
        "--baud",
        "460800",
    ])
    .args(["--before", "no-reset", "--after", "no-reset"])
    .args(["write-flash", "0x0", s.image.to_str().unwrap()]);
    let d = run(c, "esptool write-flash");
    assert!(sim.finish().rejected.is_empty());
    d
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The image personalised once (so that esptool writes the very same bytes as the tool).
fn image(dir: &Path, app_len: usize) -> PathBuf {
    use thinger_patch_core::targets::record::{FLAG_REQUIRED, FLAG_SECRET};
    let slots = [
        ("wifi_ssid", 32, FLAG_REQUIRED, ""),
        ("thinger_user", 32, 0, ""),
        ("thinger_device", 32, 0, ""),
        ("thinger_credentials", 64, FLAG_SECRET | FLAG_REQUIRED, ""),
    ];
    let bytes = common::merged_with_slots(&slots, app_len, common::APP_OFFSET + app_len);
    let input = dir.join(format!("image-{app_len}.bin"));
    std::fs::write(&input, &bytes).unwrap();
    let out = dir.join(format!("personalised-{app_len}.bin"));
    let mut c = Command::new(tool());
    c.args(["patch", input.to_str().unwrap(), "-o"])
        .arg(&out)
        .args(["--set", "wifi_ssid=BenchNet", "--set", "thinger_user=bench"])
        .args([
            "--set",
            "thinger_device=bench",
            "--set",
            "thinger_credentials=bench-creds-01",
        ]);
    run(c, "thinger-patch patch");
    out
}

fn measure(dir: &Path, wire_time: bool, app_len: usize, rounds: usize) {
    let s = Setting {
        wire_time,
        image: image(dir, app_len),
    };
    let size = std::fs::metadata(&s.image).unwrap().len();
    println!(
        "flashing, {}: merged ESP32-C3 image of {size} bytes ({} KiB incompressible app), 460800 baud, {rounds} rounds",
        if wire_time {
            "with wire time"
        } else {
            "CPU only (no wire time)"
        },
        app_len / 1024
    );
    let (mut par, mut anchor) = (Vec::new(), Vec::new());
    let (mut t1s, mut t8s, mut tes) = (Vec::new(), Vec::new(), Vec::new());
    let esptool = esptool();
    for round in 0..rounds {
        let t1 = flash_one(dir, &s).as_secs_f64();
        let t8 = batch_eight(dir, &s, round).as_secs_f64();
        par.push(t8 / t1);
        t1s.push(t1);
        t8s.push(t8);
        if let Some(e) = &esptool {
            let te = esptool_write(e, &s).as_secs_f64();
            let t1b = flash_one(dir, &s).as_secs_f64();
            anchor.push(t1b / te);
            tes.push(te);
        }
    }
    println!(
        "  one port (flash) {:.3} s; eight ports (batch --once) {:.3} s; eight / one = {:.2} (8.0 = no overlap; target <= 1.3)",
        median(t1s),
        median(t8s),
        median(par)
    );
    match esptool {
        Some(_) => println!(
            "  esptool write-flash {:.3} s; thinger-patch flash / esptool write-flash = {:.2} (target <= 1.0)",
            median(tes),
            median(anchor)
        ),
        None => println!(
            "  anchor skipped: no esptool (set THINGER_PATCH_ESPTOOL or run scripts/setup-test-env.sh)"
        ),
    }
}

fn main() {
    // `cargo test --benches` runs bench targets with `--list`-like test arguments: do nothing.
    if std::env::args().any(|a| a == "--list" || a == "--test") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    measure(dir.path(), false, common::MIB, 5);
    measure(dir.path(), true, 256 * 1024, 3);
}
