//! The image engine against the floor for the same bytes (`cargo bench --bench engine`).
//!
//! For each input, in one criterion group `engine-<input>`:
//!
//! - `patch_seal_verify`: read the file (page cache), `Firmware::parse`, the check before
//!   patching as `personalize` makes it (`check_valid_deferring_digests`), `patch` 32 bytes in
//!   the middle of the largest segment of the boot app (not the app descriptor), `finish()`
//!   (re-seal, re-parse, re-verify), write the result to a second file;
//! - `floor_read_sha256_write`: read the same file, SHA-256 of all of it, write it.
//!
//! And, to explain the difference:
//!
//! - `read_write`: read and write only (the I/O both of the above do);
//! - `sha256_in_memory`: SHA-256 of the whole file's bytes;
//! - `xor_in_memory`: the XOR checksum function over the whole file's bytes;
//! - `copy_in_memory`: one copy of the bytes into a new buffer (what patching a borrowed
//!   input costs before the first byte changes);
//! - `parse_verify`: `Firmware::parse` + `verify()` of the original bytes;
//! - `patch_finish_in_memory`: parse + patch + finish without file I/O.
//!
//! Inputs: a synthetic ESP32-C3 app of exactly 1 MiB, and a 4 MiB merged image (synthetic
//! bootloader at 0x0, table at 0x8000, that app at 0x10000); and, when
//! `../shared/fixtures/third-party/flipperhttp` is present, the real ESP-IDF app (1.4 MB) and
//! the real bootloader + table + app merged into 4 MiB. All files live in one temp folder,
//! on tmpfs (`/dev/shm`) unless `THINGER_PATCH_BENCH_DIR` names another place.
//!
//! glibc's allocator is told to keep freed memory ([`common::pin_allocator`]), so the
//! numbers are the cost of the work, not of page faults that depend on its heuristics.
//!
//! At the end, the ratios of criterion's medians (and fastest samples) to the floor are
//! printed, then a paired measurement (tool and floor alternating, about 5 s per input)
//! whose per-round ratio a change of the machine's load during the run biases less
//! (docs/benchmarks.md).

mod common;

use criterion::{Criterion, SamplingMode, Throughput};
use sha2::{Digest, Sha256};
use std::fs;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use thinger_patch_core::Firmware;

const FLOOR: &str = "floor_read_sha256_write";
const FUNCTIONS: &[&str] = &[
    "patch_seal_verify",
    FLOOR,
    "read_write",
    "sha256_in_memory",
    "xor_in_memory",
    "copy_in_memory",
    "parse_verify",
    "patch_finish_in_memory",
];

struct Case {
    name: &'static str,
    bytes: Vec<u8>,
}

fn cases() -> Vec<Case> {
    let app = common::synthetic_app(common::MIB, &[]);
    let table = common::partition_table(common::DEFAULT_4MB);
    let merged = common::merged(
        &common::synthetic_bootloader(),
        &table,
        &app,
        common::MERGED_LEN,
    );
    let mut cases = vec![
        Case {
            name: "synthetic-app-1MiB",
            bytes: app,
        },
        Case {
            name: "synthetic-merged-4MiB",
            bytes: merged,
        },
    ];
    match common::flipperhttp() {
        Some((app, bootloader, table)) => {
            let merged = common::merged(&bootloader, &table, &app, common::MERGED_LEN);
            cases.push(Case {
                name: "flipperhttp-app-1.4MB",
                bytes: app,
            });
            cases.push(Case {
                name: "flipperhttp-merged-4MiB",
                bytes: merged,
            });
        }
        None => eprintln!(
            "note: ../shared/fixtures/third-party/flipperhttp is absent: benchmarking the synthetic inputs only"
        ),
    }
    cases
}

/// 32 bytes in the middle of the largest region of the boot space, and new bytes for them
/// (every byte flipped, so the patch always changes the image).
fn patch_target(bytes: &[u8]) -> (u32, Vec<u8>) {
    let fw = Firmware::parse(bytes).expect("input parses");
    let space = fw.spaces().remove(0);
    let region = space
        .regions
        .iter()
        .max_by_key(|r| r.len)
        .expect("a region");
    let addr = region.addr + ((region.len as u32 / 2) & !3);
    let old = fw.read(&space, addr, 32).expect("maps");
    (addr, old.iter().map(|b| b ^ 0x5A).collect())
}

/// The measured operation.
fn patch_seal_verify(input: &Path, output: &Path, addr: u32, new: &[u8]) {
    let bytes = fs::read(input).expect("read");
    let mut fw = Firmware::parse(&bytes).expect("parse");
    // As `personalize` does: the input's digests are compared while sealing.
    fw.check_valid_deferring_digests().expect("valid input");
    fw.patch(addr, new).expect("patch");
    let done = fw.finish().expect("finish");
    assert!(done.report.valid);
    fs::write(output, &done.bytes).expect("write");
}

/// The floor for the same bytes.
fn floor(input: &Path, output: &Path) {
    let bytes = fs::read(input).expect("read");
    black_box(Sha256::digest(&bytes));
    fs::write(output, &bytes).expect("write");
}

/// Benchmarks one input; returns the interleaved tool/floor measurement when measuring.
fn bench_case(c: &mut Criterion, dir: &Path, case: &Case) -> Option<(String, common::Paired)> {
    let input: PathBuf = dir.join(format!("{}.bin", case.name));
    let out_tool = dir.join(format!("{}.patched.bin", case.name));
    let out_floor = dir.join(format!("{}.floor.bin", case.name));
    fs::write(&input, &case.bytes).expect("write input");
    let (addr, new) = patch_target(&case.bytes);

    // Once, outside the timing: the input is valid, the result is valid and patched.
    let fw = Firmware::parse(&case.bytes).expect("parse");
    assert!(fw.verify().valid, "{}: input does not verify", case.name);
    patch_seal_verify(&input, &out_tool, addr, &new);
    let out = fs::read(&out_tool).expect("read output");
    let patched = Firmware::parse(&out).expect("output parses");
    assert!(
        patched.verify().valid,
        "{}: output does not verify",
        case.name
    );
    let space = patched.spaces().remove(0);
    assert_eq!(patched.read(&space, addr, 32).expect("maps"), new);
    assert_eq!(out.len(), case.bytes.len());
    eprintln!(
        "{}: {} bytes, {}, patching 32 bytes at {addr:#010x} of {}",
        case.name,
        case.bytes.len(),
        fw.format_name(),
        space.label
    );

    let group = format!("engine-{}", case.name);
    let mut g = c.benchmark_group(&group);
    g.throughput(Throughput::Bytes(case.bytes.len() as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(50);
    g.warm_up_time(Duration::from_secs(2));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("patch_seal_verify", |b| {
        b.iter(|| patch_seal_verify(&input, &out_tool, addr, black_box(&new)))
    });
    g.bench_function(FLOOR, |b| b.iter(|| floor(&input, &out_floor)));
    g.bench_function("read_write", |b| {
        b.iter(|| {
            let bytes = fs::read(&input).expect("read");
            fs::write(&out_floor, black_box(&bytes)).expect("write");
        })
    });
    let bytes = &case.bytes;
    g.bench_function("sha256_in_memory", |b| {
        b.iter(|| Sha256::digest(black_box(bytes)))
    });
    g.bench_function("xor_in_memory", |b| {
        b.iter(|| thinger_patch_core::checksum::xor(black_box(bytes)))
    });
    g.bench_function("copy_in_memory", |b| b.iter(|| black_box(bytes).to_vec()));
    g.bench_function("parse_verify", |b| {
        b.iter(|| {
            let fw = Firmware::parse(black_box(bytes)).expect("parse");
            fw.verify().valid
        })
    });
    g.bench_function("patch_finish_in_memory", |b| {
        b.iter(|| {
            let mut fw = Firmware::parse(black_box(bytes)).expect("parse");
            fw.check_valid_deferring_digests().expect("valid input");
            fw.patch(addr, &new).expect("patch");
            fw.finish().expect("finish").bytes
        })
    });
    g.finish();

    common::pair_group(&group).then(|| {
        let p = common::paired(
            Duration::from_secs(5),
            || patch_seal_verify(&input, &out_tool, addr, black_box(&new)),
            || floor(&input, &out_floor),
        );
        (group, p)
    })
}

fn main() {
    let started = SystemTime::now();
    common::pin_allocator();
    let mut c = Criterion::default()
        .output_directory(&common::criterion_dir())
        .configure_from_args();
    let dir = common::bench_dir();
    let cases = cases();
    let pairs: Vec<_> = cases
        .iter()
        .filter_map(|case| bench_case(&mut c, dir.path(), case))
        .collect();
    c.final_summary();
    let groups: Vec<(String, Vec<&str>)> = cases
        .iter()
        .map(|k| (format!("engine-{}", k.name), FUNCTIONS.to_vec()))
        .collect();
    common::print_ratios(started, &groups, FLOOR);
    common::print_paired(&pairs, "patch_seal_verify", FLOOR);
}
