//! The whole `thinger-patch patch` process on a 4 MiB merged image with six slots from a
//! profile, against `cp` + `sha256sum` of the same file in the same run
//! (`cargo bench --bench patch_command`).
//!
//! Setup (not timed): a merged ESP32-C3 image (synthetic bootloader at 0x0, partition table
//! with MD5 at 0x8000, a 1 MiB app at 0x10000 whose DROM segment holds the six standard slot
//! records, 0xFF up to 4 MiB) and a `thinger-patch.toml` whose profile `kitchen` gives all six
//! values, the two secrets from environment variables. One run of the command is checked:
//! the output verifies and holds the six values.
//!
//! Timed, each as a child process (`std::process::Command`), in criterion group
//! `patch_command-merged-4MiB`:
//!
//! - `thinger_patch`: `thinger-patch patch merged.bin --config thinger-patch.toml --profile
//!   kitchen -o out.bin` (the output holds secrets: written atomically, fsync'd, mode 0600);
//! - `cp_sha256sum` (the floor): `sh -c "cp merged.bin x.bin && sha256sum x.bin"`;
//! - `cp_sha256sum_sync`: the floor plus `sync y.bin` (fsync, the durability the tool gives);
//! - `sha256sum`: `sh -c "sha256sum merged.bin"` (where the floor's time goes);
//! - `thinger_patch_version`: `thinger-patch --version` (process start alone);
//! - `personalize_in_memory`: `thinger_patch_core::personalize` on the bytes, no process, no I/O.
//!
//! Then the tool and the floor alternate for about 10 s (a paired measurement whose per-round
//! ratio a change of the machine's load during the run biases less). The files live on tmpfs (`/dev/shm`) unless
//! `THINGER_PATCH_BENCH_DIR` names another place (e.g. a disk folder, to include the cost of
//! the tool's fsync).
//!
//! The binary is the one cargo builds for this bench (`CARGO_BIN_EXE_thinger-patch`, bench
//! profile = release settings), or `$THINGER_PATCH_BIN` when set.

mod common;

use criterion::{Criterion, SamplingMode, Throughput};
use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};
use thinger_patch_core::Firmware;
use thinger_patch_core::targets::record::{Decoded, FLAG_REQUIRED, FLAG_SECRET, SlotState};
use thinger_patch_core::targets::scan::scan;
use thinger_patch_core::values::{Assignment, Origin};

const GROUP: &str = "patch_command-merged-4MiB";
const FLOOR: &str = "cp_sha256sum";
const FUNCTIONS: &[&str] = &[
    "thinger_patch",
    FLOOR,
    "cp_sha256sum_sync",
    "sha256sum",
    "thinger_patch_version",
    "personalize_in_memory",
];

const PASSWORD_VAR: &str = "BENCH_WIFI_PASSWORD";
const CREDENTIALS_VAR: &str = "BENCH_THINGER_CREDENTIALS";
const PASSWORD: &str = "correct horse battery staple";
const CREDENTIALS: &str = "bench-device-credentials-0123456789";

/// `(key, capacity, flags, compiled default, profile value)`.
const SLOTS: &[(&str, u16, u16, &str, &str)] = &[
    ("wifi_ssid", 32, FLAG_REQUIRED, "", "Kitchen-2.4GHz"),
    ("wifi_password", 64, FLAG_SECRET, "", PASSWORD),
    (
        "thinger_host",
        64,
        0,
        "iot.thinger.io",
        "eu.thinger.example",
    ),
    ("thinger_user", 32, 0, "", "alice"),
    ("thinger_device", 32, 0, "", "kitchen-esp32c3"),
    (
        "thinger_credentials",
        64,
        FLAG_SECRET | FLAG_REQUIRED,
        "",
        CREDENTIALS,
    ),
];

fn merged_with_slots() -> Vec<u8> {
    let slots: Vec<(&str, u16, u16, &str)> = SLOTS
        .iter()
        .map(|&(key, cap, flags, default, _)| (key, cap, flags, default))
        .collect();
    common::merged_with_slots(&slots, common::MIB, common::MERGED_LEN)
}

fn patch_command(bin: &Path, dir: &Path) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args([
        "patch",
        "merged.bin",
        "--config",
        "thinger-patch.toml",
        "--profile",
        "kitchen",
        "-o",
        "out.bin",
    ])
    .current_dir(dir)
    .env(PASSWORD_VAR, PASSWORD)
    .env(CREDENTIALS_VAR, CREDENTIALS);
    cmd
}

fn shell(dir: &Path, script: &str) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", script]).current_dir(dir);
    cmd
}

/// Runs `cmd` with its output discarded; panics unless it succeeds.
fn run(cmd: &mut Command) {
    let status = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("spawn");
    assert!(status.success(), "{cmd:?} failed: {status}");
}

/// Once, outside the timing: the command succeeds, and its output verifies and holds the
/// six values, patched.
fn check_output(bin: &Path, dir: &Path, input: &[u8]) {
    let out = patch_command(bin, dir)
        .output()
        .expect("spawn thinger-patch");
    assert!(
        out.status.success(),
        "thinger-patch patch failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = fs::read(dir.join("out.bin")).expect("read out.bin");
    assert_eq!(bytes.len(), input.len());
    let fw = Firmware::parse(&bytes).expect("output parses");
    let report = fw.verify();
    assert!(report.valid, "output does not verify: {report:?}");
    assert_eq!(fw.format_name(), "merged");
    let found: Vec<_> = scan(&fw)
        .into_iter()
        .filter_map(|f| match f.decoded {
            Decoded::Slot(s) => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(found.len(), SLOTS.len());
    for &(key, cap, flags, _, value) in SLOTS {
        let s = found.iter().find(|s| s.key == key).expect("slot present");
        assert_eq!(
            (s.capacity, s.flags, s.state, s.value.as_str()),
            (cap, flags, SlotState::Patched, value),
            "{key}"
        );
    }
    eprintln!(
        "checked: {} wrote a valid merged image with the six values ({})",
        bin.display(),
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
    );
}

fn main() {
    let started = SystemTime::now();
    common::pin_allocator();
    let mut c = Criterion::default()
        .output_directory(&common::criterion_dir())
        .configure_from_args();
    let bin = common::binary();
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --release` or set THINGER_PATCH_BIN",
        bin.display()
    );
    let tmp = common::bench_dir();
    let dir = tmp.path();
    let input = merged_with_slots();
    fs::write(dir.join("merged.bin"), &input).expect("write merged.bin");
    let config = dir.join("thinger-patch.toml");
    fs::write(&config, common::CONFIG).expect("write config");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&config, fs::Permissions::from_mode(0o600)).expect("chmod config");
    }
    assert!(
        Firmware::parse(&input)
            .expect("input parses")
            .verify()
            .valid,
        "input does not verify"
    );
    check_output(&bin, dir, &input);

    let request = thinger_patch_core::Request {
        values: SLOTS
            .iter()
            .map(|&(key, _, _, _, value)| Assignment::new(key, value, Origin::CommandLine))
            .collect(),
        ..Default::default()
    };

    let mut g = c.benchmark_group(GROUP);
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(30);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(8));
    g.bench_function("thinger_patch", |b| {
        b.iter(|| run(&mut patch_command(&bin, dir)))
    });
    g.bench_function(FLOOR, |b| {
        b.iter(|| run(&mut shell(dir, "cp merged.bin x.bin && sha256sum x.bin")))
    });
    g.bench_function("cp_sha256sum_sync", |b| {
        b.iter(|| {
            run(&mut shell(
                dir,
                "cp merged.bin y.bin && sha256sum y.bin && sync y.bin",
            ))
        })
    });
    g.bench_function("sha256sum", |b| {
        b.iter(|| run(&mut shell(dir, "sha256sum merged.bin")))
    });
    g.bench_function("thinger_patch_version", |b| {
        b.iter(|| run(Command::new(&bin).arg("--version")))
    });
    g.bench_function("personalize_in_memory", |b| {
        b.iter(|| {
            thinger_patch_core::personalize(black_box(&input), &request)
                .expect("personalize")
                .bytes
        })
    });
    g.finish();
    let pairs: Vec<_> = common::pair_group(GROUP)
        .then(|| {
            let p = common::paired(
                Duration::from_secs(10),
                || run(&mut patch_command(&bin, dir)),
                || run(&mut shell(dir, "cp merged.bin x.bin && sha256sum x.bin")),
            );
            (GROUP.to_string(), p)
        })
        .into_iter()
        .collect();
    c.final_summary();
    common::print_ratios(started, &[(GROUP.to_string(), FUNCTIONS.to_vec())], FLOOR);
    common::print_paired(&pairs, "thinger_patch", FLOOR);
}
