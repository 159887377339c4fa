//! Inputs and reporting shared by the benchmarks (`mod common;` in a bench file).
//!
//! The inputs are built in code, so the benchmarks run without `../shared`:
//!
//! - [`esp32_image`]: an ESP32-family `0xE9` image (extended header, XOR checksum, appended
//!   SHA-256) from segments;
//! - [`synthetic_app`]: an ESP32-C3 app of an exact size with an `esp_app_desc_t` and,
//!   optionally, slot records at the start of its DROM segment;
//! - [`synthetic_bootloader`], [`partition_table`], [`merged`]: a full-flash image (bootloader
//!   at 0x0, table at 0x8000, app at 0x10000, 0xFF up to 4 MiB).
//!
//! The real ESP-IDF fixture (`../shared/fixtures/third-party/flipperhttp`) is used in
//! addition when it is present ([`flipperhttp`]); it is only read, never copied into the repo.
//!
//! [`print_ratios`] reads criterion's own medians back from its output folder and prints
//! tool / floor ratios for the benchmarks of this run.
#![allow(dead_code)] // each bench uses part of this module

use md5::Md5;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

pub const KIB: usize = 1 << 10;
pub const MIB: usize = 1 << 20;
/// The merged image size the issue asks for.
pub const MERGED_LEN: usize = 4 * MIB;
pub const TABLE_OFFSET: usize = 0x8000;
pub const APP_OFFSET: usize = 0x10000;
pub const CHIP_ID_ESP32C3: u16 = 5;

/// ESP32-C3 memory map, as ESP-IDF links an app.
pub const DROM_ADDR: u32 = 0x3C00_0020;
pub const DRAM_ADDR: u32 = 0x3FC8_F800;
pub const IRAM_ADDR: u32 = 0x4038_0000;
pub const IROM_ADDR: u32 = 0x4200_0020;

/// `ESP_APP_DESC_MAGIC_WORD`.
const APP_DESC_MAGIC: u32 = 0xABCD_5432;
const APP_DESC_LEN: usize = 256;

/// One segment of an image: load address and data (length a multiple of 4).
#[derive(Debug, Clone)]
pub struct Segment {
    pub addr: u32,
    pub data: Vec<u8>,
}

/// Deterministic, incompressible filler (xorshift64*), so segment data is not one byte value.
pub fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// An ESP32-family image as esptool's `elf2image` lays it out: 24-byte extended header
/// (DIO, 4 MB, 80 MHz, `hash_appended = 1`), the segments, zero padding up to the checksum
/// in the last byte of a 16-byte block, then the SHA-256 of everything before it.
pub fn esp32_image(chip_id: u16, entry: u32, segments: &[Segment]) -> Vec<u8> {
    let mut v = vec![0xE9, segments.len() as u8, 0x02, 0x2F];
    v.extend_from_slice(&entry.to_le_bytes());
    v.extend_from_slice(&[0xEE, 0, 0, 0]); // wp_pin, SPI pin drive settings
    v.extend_from_slice(&chip_id.to_le_bytes());
    v.push(0); // min_chip_rev
    v.extend_from_slice(&0u16.to_le_bytes()); // min_chip_rev_full
    v.extend_from_slice(&199u16.to_le_bytes()); // max_chip_rev_full
    v.extend_from_slice(&[0; 4]); // reserved
    v.push(1); // hash_appended
    assert_eq!(v.len(), 24);
    let mut xor = 0xEFu8;
    for s in segments {
        assert_eq!(s.data.len() % 4, 0, "segment lengths are multiples of 4");
        v.extend_from_slice(&s.addr.to_le_bytes());
        v.extend_from_slice(&(s.data.len() as u32).to_le_bytes());
        v.extend_from_slice(&s.data);
        xor = s.data.iter().fold(xor, |a, b| a ^ b);
    }
    while v.len() % 16 != 15 {
        v.push(0);
    }
    v.push(xor);
    let digest = Sha256::digest(&v);
    v.extend_from_slice(&digest);
    v
}

/// An `esp_app_desc_t` (magic, version, project name, IDF version; the rest zero).
fn app_desc() -> Vec<u8> {
    let mut d = vec![0u8; APP_DESC_LEN];
    d[..4].copy_from_slice(&APP_DESC_MAGIC.to_le_bytes());
    let put =
        |d: &mut Vec<u8>, at: usize, s: &str| d[at..at + s.len()].copy_from_slice(s.as_bytes());
    put(&mut d, 16, "1.0.0-bench");
    put(&mut d, 48, "thinger-patch-bench");
    put(&mut d, 80, "00:00:00");
    put(&mut d, 96, "Jan  1 2025");
    put(&mut d, 112, "v5.3-bench");
    d
}

/// An ESP32-C3 app image of exactly `total_len` bytes (a multiple of 16): DROM (app
/// descriptor, then `records`, then filler), DRAM, IRAM and IROM segments, the IROM one
/// sized to make the total come out exact.
pub fn synthetic_app(total_len: usize, records: &[Vec<u8>]) -> Vec<u8> {
    assert_eq!(total_len % 16, 0);
    let mut drom = app_desc();
    for r in records {
        assert_eq!(r.len() % 4, 0);
        drom.extend_from_slice(r);
    }
    drom.extend_from_slice(&filler(64 * KIB, 1));
    let dram = filler(14 * KIB, 2);
    let iram = filler(40 * KIB, 3);
    // Header, 4 segment headers, data; the checksum then ends the 16-byte block holding
    // the end of the data, and the 32-byte digest follows: data must end 48 bytes before
    // the end (checksum block and digest).
    let fixed = 24 + 4 * 8 + drom.len() + dram.len() + iram.len();
    let irom_len = total_len - 48 - fixed;
    let irom = filler(irom_len, 4);
    let img = esp32_image(
        CHIP_ID_ESP32C3,
        0x4038_0080,
        &[
            Segment {
                addr: DROM_ADDR,
                data: drom,
            },
            Segment {
                addr: DRAM_ADDR,
                data: dram,
            },
            Segment {
                addr: IRAM_ADDR,
                data: iram,
            },
            Segment {
                addr: IROM_ADDR,
                data: irom,
            },
        ],
    );
    assert_eq!(img.len(), total_len);
    img
}

/// A small ESP32-C3 second-stage bootloader image (about 20 KiB, DRAM and two IRAM segments).
pub fn synthetic_bootloader() -> Vec<u8> {
    esp32_image(
        CHIP_ID_ESP32C3,
        0x403C_E710,
        &[
            Segment {
                addr: 0x3FCD_5820,
                data: filler(0x2000, 5),
            },
            Segment {
                addr: 0x403C_C710,
                data: filler(0x2800, 6),
            },
            Segment {
                addr: 0x403C_E710,
                data: filler(0x0800, 7),
            },
        ],
    )
}

/// One partition table entry.
pub struct Part<'a> {
    pub label: &'a str,
    pub kind: u8,
    pub subtype: u8,
    pub offset: u32,
    pub size: u32,
}

/// The Arduino-ESP32 default table for 4 MB (the one the flipperhttp fixture uses):
/// nvs, otadata, app0 (ota_0) at 0x10000, app1 (ota_1), spiffs, coredump.
pub const DEFAULT_4MB: &[Part<'static>] = &[
    Part {
        label: "nvs",
        kind: 1,
        subtype: 0x02,
        offset: 0x9000,
        size: 0x5000,
    },
    Part {
        label: "otadata",
        kind: 1,
        subtype: 0x00,
        offset: 0xE000,
        size: 0x2000,
    },
    Part {
        label: "app0",
        kind: 0,
        subtype: 0x10,
        offset: 0x10000,
        size: 0x1E_0000,
    },
    Part {
        label: "app1",
        kind: 0,
        subtype: 0x11,
        offset: 0x1F_0000,
        size: 0x1E_0000,
    },
    Part {
        label: "spiffs",
        kind: 1,
        subtype: 0x82,
        offset: 0x3D_0000,
        size: 0x2_0000,
    },
    Part {
        label: "coredump",
        kind: 1,
        subtype: 0x03,
        offset: 0x3F_0000,
        size: 0x1_0000,
    },
];

/// A partition table as `gen_esp32part.py` writes it: 32-byte entries, the MD5 entry
/// (`EB EB`, 14 bytes 0xFF, MD5 of the entries), 0xFF up to 0xC00 (the end marker).
pub fn partition_table(parts: &[Part]) -> Vec<u8> {
    let mut t = Vec::new();
    for p in parts {
        t.extend_from_slice(&[0xAA, 0x50, p.kind, p.subtype]);
        t.extend_from_slice(&p.offset.to_le_bytes());
        t.extend_from_slice(&p.size.to_le_bytes());
        let mut label = [0u8; 16];
        label[..p.label.len()].copy_from_slice(p.label.as_bytes());
        t.extend_from_slice(&label);
        t.extend_from_slice(&0u32.to_le_bytes());
    }
    let md5 = Md5::digest(&t);
    t.extend_from_slice(&[0xEB, 0xEB]);
    t.extend_from_slice(&[0xFF; 14]);
    t.extend_from_slice(&md5);
    t.resize(0xC00, 0xFF);
    t
}

/// A full-flash image: `bootloader` at 0x0, `table` at 0x8000, `app` at 0x10000, 0xFF
/// everywhere else, `total_len` bytes.
pub fn merged(bootloader: &[u8], table: &[u8], app: &[u8], total_len: usize) -> Vec<u8> {
    assert!(bootloader.len() <= TABLE_OFFSET && table.len() <= 0x1000);
    assert!(APP_OFFSET + app.len() <= total_len);
    let mut m = vec![0xFF; total_len];
    m[..bootloader.len()].copy_from_slice(bootloader);
    m[TABLE_OFFSET..TABLE_OFFSET + table.len()].copy_from_slice(table);
    m[APP_OFFSET..APP_OFFSET + app.len()].copy_from_slice(app);
    m
}

/// `../shared/fixtures/third-party/flipperhttp` (or `$THINGER_PATCH_FIXTURES/third-party/...`).
pub fn flipperhttp_dir() -> Option<PathBuf> {
    let base = std::env::var_os("THINGER_PATCH_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"));
    let dir = base.join("third-party/flipperhttp");
    dir.join("esp32c3-app.bin").is_file().then_some(dir)
}

/// The real ESP-IDF files: `(app, bootloader, partition table)`, when the fixture is present.
pub fn flipperhttp() -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let dir = flipperhttp_dir()?;
    let read = |n: &str| std::fs::read(dir.join(n)).ok();
    Some((
        read("esp32c3-app.bin")?,
        read("esp32c3-bootloader.bin")?,
        read("esp32c3-partitions.bin")?,
    ))
}

/// A fresh temp folder for the benchmark files: under `$THINGER_PATCH_BENCH_DIR` when set,
/// else under `/dev/shm` (tmpfs: the page cache without a disk behind it, so reads and
/// writes cost what the kernel's copies cost and no writeback of earlier iterations
/// interferes), else under the system temp folder.
pub fn bench_dir() -> tempfile::TempDir {
    let base = std::env::var_os("THINGER_PATCH_BENCH_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            let shm = Path::new("/dev/shm");
            shm.is_dir().then(|| shm.to_path_buf())
        });
    let dir = match base {
        Some(b) => tempfile::Builder::new()
            .prefix("thinger-patch-bench-")
            .tempdir_in(&b),
        None => tempfile::Builder::new()
            .prefix("thinger-patch-bench-")
            .tempdir(),
    }
    .expect("create the benchmark folder (set THINGER_PATCH_BENCH_DIR to a writable folder)");
    eprintln!("benchmark files in {}", dir.path().display());
    dir
}

/// Makes glibc's allocator keep freed memory (no trimming, no `mmap` for blocks up to 32 MiB),
/// so each iteration reuses the pages of the previous one. Otherwise whether an iteration
/// page-faults its buffers in again depends on glibc's trimming heuristics and on what ran
/// before (a 4 MiB input plus a 4 MiB patched copy crosses the default trim threshold, one
/// 4 MiB buffer does not), which is noise, not the cost of the work. A fresh process always
/// pays the faults: `benches/patch_command.rs` measures that. `THINGER_PATCH_BENCH_MALLOC=default`
/// leaves the allocator as it is.
pub fn pin_allocator() {
    if std::env::var_os("THINGER_PATCH_BENCH_MALLOC").is_some_and(|v| v == "default") {
        eprintln!("allocator: glibc defaults (THINGER_PATCH_BENCH_MALLOC=default)");
        return;
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::c_int;
        unsafe extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        const M_TRIM_THRESHOLD: c_int = -1;
        const M_MMAP_THRESHOLD: c_int = -3;
        // SAFETY: mallopt only sets tuning parameters of glibc's malloc; both values are in
        // their documented ranges (the mmap threshold's maximum is 32 MiB on 64-bit).
        let ok = unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, c_int::MAX) == 1
        };
        eprintln!(
            "allocator: glibc, freed memory kept in the process ({})",
            if ok { "mallopt ok" } else { "mallopt FAILED" }
        );
    }
}

/// Whether this run measures (`cargo bench`), as opposed to `cargo test --benches` or
/// `-- --test` / `--list` / `--profile-time`, and the filter given, if any.
pub fn measuring() -> (bool, Option<String>) {
    const WITH_VALUE: &[&str] = &[
        "--save-baseline",
        "--baseline",
        "--baseline-lenient",
        "--load-baseline",
        "--sample-size",
        "--warm-up-time",
        "--measurement-time",
        "--nresamples",
        "--noise-threshold",
        "--confidence-level",
        "--significance-level",
        "--profile-time",
        "--output-format",
        "--color",
        "--format",
        "--plotting-backend",
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    let bench = args.iter().any(|a| a == "--bench")
        && !args
            .iter()
            .any(|a| a == "--test" || a == "--list" || a.starts_with("--profile-time"));
    let mut filter = None;
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if WITH_VALUE.contains(&a.as_str()) {
            i += 2;
            continue;
        }
        if !a.starts_with('-') && filter.is_none() {
            filter = Some(a.clone());
        }
        i += 1;
    }
    (bench, filter)
}

/// Whether the paired pass should run for `group` (see [`paired`]).
pub fn pair_group(group: &str) -> bool {
    match measuring() {
        (false, _) => false,
        (true, None) => true,
        (true, Some(f)) => group.contains(&f) || f.contains(group),
    }
}

/// Medians of an interleaved measurement: `tool` and `floor` alternate (ABBA order), so a
/// change of machine load between criterion's separate measurements cannot bias the ratio.
#[derive(Debug, Clone, Copy)]
pub struct Paired {
    pub rounds: usize,
    pub tool_ns: f64,
    pub floor_ns: f64,
    /// Median of the per-round ratios tool / floor, and its quartiles.
    pub ratio: f64,
    pub ratio_q1: f64,
    pub ratio_q3: f64,
    /// 10th percentiles of each, which other load on the machine inflates least.
    pub tool_p10_ns: f64,
    pub floor_p10_ns: f64,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Runs `tool` and `floor` alternately for about `budget` (at least 20 rounds) after a
/// short warm-up, and returns the medians and the median per-round ratio.
pub fn paired(
    budget: std::time::Duration,
    mut tool: impl FnMut(),
    mut floor: impl FnMut(),
) -> Paired {
    use std::time::Instant;
    let time = |f: &mut dyn FnMut()| {
        let t = Instant::now();
        f();
        t.elapsed().as_nanos() as f64
    };
    for _ in 0..3 {
        tool();
        floor();
    }
    let (mut ts, mut fs, mut rs) = (Vec::new(), Vec::new(), Vec::new());
    let start = Instant::now();
    while ts.len() < 20 || (start.elapsed() < budget && ts.len() < 10_000) {
        let (t, f) = if ts.len() % 2 == 0 {
            let t = time(&mut tool);
            (t, time(&mut floor))
        } else {
            let f = time(&mut floor);
            (time(&mut tool), f)
        };
        ts.push(t);
        fs.push(f);
        rs.push(t / f);
    }
    for v in [&mut ts, &mut fs, &mut rs] {
        v.sort_by(f64::total_cmp);
    }
    Paired {
        rounds: ts.len(),
        tool_ns: quantile(&ts, 0.5),
        floor_ns: quantile(&fs, 0.5),
        ratio: quantile(&rs, 0.5),
        ratio_q1: quantile(&rs, 0.25),
        ratio_q3: quantile(&rs, 0.75),
        tool_p10_ns: quantile(&ts, 0.1),
        floor_p10_ns: quantile(&fs, 0.1),
    }
}

/// Prints the paired results.
pub fn print_paired(results: &[(String, Paired)], tool: &str, floor: &str) {
    if results.is_empty() {
        return;
    }
    println!(
        "\nInterleaved pairs ({tool} / {floor}, alternating): medians, median per-round ratio [quartiles]; 10th percentiles and their ratio:"
    );
    for (group, p) in results {
        println!(
            "{group} ({} rounds)\n  median {:>10} / {:>10}   ratio {:.2} [{:.2}, {:.2}]\n  p10    {:>10} / {:>10}   ratio {:.2}",
            p.rounds,
            human(p.tool_ns),
            human(p.floor_ns),
            p.ratio,
            p.ratio_q1,
            p.ratio_q3,
            human(p.tool_p10_ns),
            human(p.floor_p10_ns),
            p.tool_p10_ns / p.floor_p10_ns
        );
    }
}

/// Where criterion writes its results: `$CRITERION_HOME`, `$CARGO_TARGET_DIR/criterion`, or
/// `criterion/` in the target folder this bench binary was built in. Set explicitly so
/// [`print_ratios`] reads the same folder criterion writes.
pub fn criterion_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t).join("criterion");
    }
    // target/<profile>/deps/<bench>-<hash>
    std::env::current_exe()
        .ok()
        .and_then(|e| e.ancestors().nth(3).map(Path::to_path_buf))
        .map_or_else(
            || PathBuf::from("target/criterion"),
            |t| t.join("criterion"),
        )
}

/// Criterion's results for `group/function`, if measured in this run (written after `since`):
/// the median (ns per iteration) and the fastest sample's mean (ns per iteration), which
/// other load on the machine inflates least.
pub fn measured(dir: &Path, group: &str, function: &str, since: SystemTime) -> Option<(f64, f64)> {
    let new = dir.join(group).join(function).join("new");
    let json = |name: &str| -> Option<serde_json::Value> {
        let path = new.join(name);
        let modified = std::fs::metadata(&path).ok()?.modified().ok()?;
        if modified < since {
            return None;
        }
        serde_json::from_slice(&std::fs::read(&path).ok()?).ok()
    };
    let median = json("estimates.json")?["median"]["point_estimate"].as_f64()?;
    let sample = json("sample.json")?;
    let iters = sample["iters"].as_array()?;
    let times = sample["times"].as_array()?;
    let fastest = iters
        .iter()
        .zip(times)
        .filter_map(|(i, t)| Some(t.as_f64()? / i.as_f64()?))
        .fold(f64::INFINITY, f64::min);
    Some((median, fastest))
}

/// Formats nanoseconds with a unit that suits them.
pub fn human(ns: f64) -> String {
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Prints, per group, the median and fastest sample of every function and their ratios to
/// the group's `floor` function, for the groups measured in this run (nothing in
/// `cargo test --benches`, which runs each benchmark once and records no estimates).
pub fn print_ratios(since: SystemTime, groups: &[(String, Vec<&str>)], floor: &str) {
    let dir = criterion_dir();
    let mut lines = Vec::new();
    for (group, functions) in groups {
        let Some((base, base_fast)) = measured(&dir, group, floor, since) else {
            continue;
        };
        lines.push(group.clone());
        for f in functions {
            if let Some((m, fast)) = measured(&dir, group, f, since) {
                lines.push(format!(
                    "  {f:<26} median {:>10} {:>6.2} x   fastest sample {:>10} {:>6.2} x",
                    human(m),
                    m / base,
                    human(fast),
                    fast / base_fast
                ));
            }
        }
    }
    if !lines.is_empty() {
        println!(
            "\nRatios to {floor}, measured in this run (criterion's median; its fastest sample):"
        );
        for l in lines {
            println!("{l}");
        }
    }
}

/// The credential profile both whole-process benches personalise with (secrets
/// from `BENCH_WIFI_PASSWORD` and `BENCH_THINGER_CREDENTIALS`).
pub const CONFIG: &str = r#"# thinger-patch benchmark profile
[profiles.kitchen]
wifi_ssid = "Kitchen-2.4GHz"
wifi_password = { env = "BENCH_WIFI_PASSWORD" }
thinger_host = "eu.thinger.example"
thinger_user = "alice"
thinger_device = "kitchen-esp32c3"
thinger_credentials = { env = "BENCH_THINGER_CREDENTIALS" }
"#;

/// The `thinger-patch` binary the whole-process benches run: `THINGER_PATCH_BIN`,
/// else the one cargo built for the bench, else `target/release/thinger-patch`.
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("THINGER_PATCH_BIN") {
        return PathBuf::from(p);
    }
    match option_env!("CARGO_BIN_EXE_thinger-patch") {
        Some(p) => PathBuf::from(p),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/thinger-patch"),
    }
}

/// A merged image (synthetic bootloader, the 4 MB default table, an app of `app_len` bytes whose
/// DROM starts with a slot record per `(key, capacity, flags, compiled default)`), `total_len`
/// bytes long.
pub fn merged_with_slots(
    slots: &[(&str, u16, u16, &str)],
    app_len: usize,
    total_len: usize,
) -> Vec<u8> {
    use thinger_patch_core::targets::record::{self, SlotState};
    let records: Vec<Vec<u8>> = slots
        .iter()
        .map(|&(key, cap, flags, default)| {
            record::encode(key, cap, flags, SlotState::Default, default)
        })
        .collect();
    let app = synthetic_app(app_len, &records);
    let table = partition_table(DEFAULT_4MB);
    merged(&synthetic_bootloader(), &table, &app, total_len)
}
