//! What the ledger adds to personalising one device.
//!
//! 1,000 identities are generated (`bar-{n:04}`, 64 random credential
//! characters), each personalised into a 1 MiB ESP32-C3 app image holding the
//! six standard slots (`thinger_patch_core::personalize`, as `patch` does in
//! memory) and committed to the ledger (no file or board is written), in the
//! two ways a run can reserve: one fsynced reservation per device (boards
//! arriving on serial ports), or `reserve_many` for 50 outputs at a time (a
//! run writing files); each device is then committed on its own. Reported: time per device, personalising
//! alone in the same run, the ledger's time and its share (target < 10 % of
//! personalising).
//!
//! The ledger lives on tmpfs (`/dev/shm`, where an fsync costs nothing) and
//! on the disk behind the system temp folder (where every commit waits for
//! fsync): both are reported, the disk figure being what a production line
//! pays. `THINGER_PATCH_LEDGER_BENCH_DISK` overrides the disk folder.
//!
//! glibc's allocator is told to keep freed memory, as in the repository's
//! other benchmarks.
//!
//! Criterion measures `personalize_one`, `ledger_reserve_commit` and
//! `device_with_ledger` per device; then the 1,000-device runs print their
//! table. `cargo test --benches` runs everything once on 20 devices.

#[path = "../tests/common/image.rs"]
mod image;

use criterion::Criterion;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use thinger_patch_core::values::{Assignment, Origin};
use thinger_patch_core::{Request, personalize};
use thinger_patch_ledger::*;

const DEVICES: u32 = 1_000;
const IMAGE_LEN: usize = 1 << 20;

fn slots() -> Vec<SlotSpec> {
    image::SLOTS
        .iter()
        .map(|(key, cap, flags)| SlotSpec {
            key: key.to_string(),
            capacity: *cap as usize,
            secret: flags & 1 != 0,
            required: flags & 2 != 0,
        })
        .collect()
}

fn spec(name: &str) -> JobSpec {
    let mut s = JobSpec::new(
        name,
        slots(),
        IdentitySource::Generate(Generator {
            template: "bar-{n:07}".into(),
            vars: Default::default(),
            start: 1,
            count: 200_000,
        }),
    );
    s.profile = vec![
        ("wifi_ssid".into(), Value::new("Kitchen-2.4GHz")),
        ("wifi_password".into(), Value::new("correct horse battery")),
        ("thinger_user".into(), Value::new("alice")),
    ];
    s.credentials = vec![Credential::new("thinger_credentials")];
    s.firmware = FirmwareInfo {
        name: "bench".into(),
        version: "1.0.0".into(),
    };
    s.target = Target::Files;
    s
}

fn request(values: &[(String, Value)]) -> Request {
    Request {
        values: values
            .iter()
            .map(|(k, v)| {
                Assignment::new(
                    k.clone(),
                    v.expose(),
                    Origin::Environment {
                        var: "LEDGER".into(),
                    },
                )
            })
            .collect(),
        ..Request::default()
    }
}

/// One ledger (default Argon2id parameters) with one generated job.
struct Bench {
    _dir: tempfile::TempDir,
    ledger: Ledger,
    job: Job,
    next: u32,
}

impl Bench {
    fn new(base: &Path, what: &str) -> Bench {
        let dir = tempfile::Builder::new()
            .prefix("thinger-patch-ledger-bench-")
            .tempdir_in(base)
            .expect("bench folder");
        eprintln!("{what}: ledger in {}", dir.path().display());
        let ledger = Ledger::open(
            dir.path().join("ledger.db"),
            KeySource::Env("bench key".into()),
        )
        .expect("open");
        let job = ledger.plan(&spec("bench")).expect("plan");
        Bench {
            _dir: dir,
            ledger,
            job,
            next: 0,
        }
    }

    fn board(&mut self) -> Board {
        self.next += 1;
        Board::Slot {
            run: "bench".into(),
            n: self.next,
        }
    }
}

fn written(bytes: &[u8], n: u32) -> Written {
    Written {
        sha256: thinger_patch_core::checksum::sha256(bytes),
        location: Location::File(format!("out/{n}.bin")),
    }
}

/// Time spent per part of a device.
#[derive(Default, Clone, Copy)]
struct Parts {
    ledger: Duration,
    personalise: Duration,
    digest: Duration,
}

impl std::ops::AddAssign for Parts {
    fn add_assign(&mut self, o: Parts) {
        self.ledger += o.ledger;
        self.personalise += o.personalise;
        self.digest += o.digest;
    }
}

/// Personalises with `r`'s values, digests the image (the SHA-256 the ledger
/// records; the CLI computes it to verify the write anyway) and commits.
fn personalise_and_commit(r: Reservation<'_>, image: &[u8], n: u32) -> Parts {
    let t1 = Instant::now();
    let p = personalize(image, &request(r.values())).expect("personalise");
    assert!(p.report.valid);
    let t2 = Instant::now();
    let w = written(&p.bytes, n);
    let t3 = Instant::now();
    r.commit(&w).expect("commit");
    Parts {
        ledger: t3.elapsed(),
        personalise: t2 - t1,
        digest: t3 - t2,
    }
}

/// One device: reserve, personalise, digest, commit.
fn device(b: &mut Bench, image: &[u8]) -> Parts {
    let board = b.board();
    let t0 = Instant::now();
    let r = b
        .ledger
        .reserve(&b.job, &board, ReserveOptions::default())
        .expect("reserve");
    let reserve = t0.elapsed();
    let mut parts = personalise_and_commit(r, image, b.next);
    parts.ledger += reserve;
    parts
}

struct Run {
    what: String,
    devices: u32,
    total: Duration,
    parts: Parts,
    personalise_alone: Duration,
}

/// How identities are reserved.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pattern {
    /// One reservation (one fsynced transaction) per device, as for boards
    /// arriving one at a time on serial ports.
    PerBoard,
    /// `reserve_many` for a block of outputs, then one commit per device, as
    /// a run writing files (`--out-dir`) can do.
    Files,
}

const BLOCK: u32 = 50;

/// `devices` devices end to end, then as many personalisations without the
/// ledger, alternating in blocks of 50 so machine load affects both alike.
fn run(base: &Path, what: &str, image: &[u8], devices: u32, pattern: Pattern) -> Run {
    let mut b = Bench::new(base, what);
    let fixed: Vec<(String, Value)> = {
        let board = b.board();
        let r = b
            .ledger
            .reserve(&b.job, &board, ReserveOptions::default())
            .expect("reserve");
        r.values().to_vec()
    };
    let req = request(&fixed);
    let (mut total, mut parts, mut alone) = (Duration::ZERO, Parts::default(), Duration::ZERO);
    let mut done = 0;
    while done < devices {
        let block = BLOCK.min(devices - done);
        let t = Instant::now();
        match pattern {
            Pattern::PerBoard => {
                for _ in 0..block {
                    parts += device(&mut b, image);
                }
            }
            Pattern::Files => {
                let boards: Vec<Board> = (0..block).map(|_| b.board()).collect();
                let t0 = Instant::now();
                let rs = b
                    .ledger
                    .reserve_many(&b.job, &boards, ReserveOptions::default())
                    .expect("reserve_many");
                parts.ledger += t0.elapsed();
                for (i, r) in rs.into_iter().enumerate() {
                    parts += personalise_and_commit(r, image, i as u32);
                }
            }
        }
        total += t.elapsed();
        let t = Instant::now();
        for _ in 0..block {
            black_box(personalize(image, &req).expect("personalise"));
        }
        alone += t.elapsed();
        done += block;
    }
    let verified = b
        .ledger
        .devices(
            &Filter {
                states: vec![State::Verified],
                ..Filter::default()
            },
            false,
        )
        .expect("list")
        .len();
    assert_eq!(verified, devices as usize);
    Run {
        what: what.to_string(),
        devices,
        total,
        parts,
        personalise_alone: alone,
    }
}

fn ms(d: Duration, n: u32) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3 / f64::from(n))
}

fn print(runs: &[Run]) {
    println!(
        "\nPer device ({} identities generated, personalised into a 1 MiB app, committed):",
        runs.first().map_or(0, |r| r.devices)
    );
    println!(
        "{:<36} {:>10} {:>12} {:>10} {:>10} {:>13} {:>14}",
        "ledger on", "device", "personalise", "digest", "ledger", "ledger share", "patch alone"
    );
    for r in runs {
        let p = &r.parts;
        println!(
            "{:<36} {:>10} {:>12} {:>10} {:>10} {:>11.1} % {:>14}",
            r.what,
            ms(r.total, r.devices),
            ms(p.personalise, r.devices),
            ms(p.digest, r.devices),
            ms(p.ledger, r.devices),
            100.0 * p.ledger.as_secs_f64() / p.personalise.as_secs_f64(),
            ms(r.personalise_alone, r.devices),
        );
    }
    println!(
        "(ledger share = the ledger's time / personalising time, both measured per device in the run; target < 10 %. digest = SHA-256 of the image, recorded by the ledger and needed to verify the write anyway. patch alone = personalising one device without the ledger, measured alternately in the same run.)"
    );
}

fn bases() -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        v.push(("tmpfs (/dev/shm)".to_string(), shm.to_path_buf()));
    }
    let disk = std::env::var_os("THINGER_PATCH_LEDGER_BENCH_DISK")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    v.push((format!("disk ({})", disk.display()), disk));
    v
}

/// Makes glibc keep freed memory, as the repository's other benchmarks do
/// (`benches/common`, docs/benchmarks.md): otherwise whether the 1 MiB buffers
/// of each personalisation fault their pages in again depends on glibc's
/// trimming heuristics and on what the ledger allocated in between, which is
/// noise, not the cost of either.
fn pin_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::ffi::c_int;
        unsafe extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        const M_TRIM_THRESHOLD: c_int = -1;
        const M_MMAP_THRESHOLD: c_int = -3;
        // SAFETY: mallopt only sets tuning parameters of glibc's malloc; both
        // values are in their documented ranges.
        let ok = unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, c_int::MAX) == 1
        };
        eprintln!(
            "allocator: glibc, freed memory kept (mallopt {})",
            if ok { "ok" } else { "FAILED" }
        );
    }
}

fn main() {
    pin_allocator();
    let args: Vec<String> = std::env::args().collect();
    let measuring = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");
    let image = image::app_with_slots(IMAGE_LEN);
    let mut c = Criterion::default().configure_from_args();
    {
        let (_, base) = bases().remove(0);
        let mut b = Bench::new(&base, "criterion");
        let fixed = {
            let board = b.board();
            let r = b
                .ledger
                .reserve(&b.job, &board, ReserveOptions::default())
                .expect("reserve");
            r.values().to_vec()
        };
        let req = request(&fixed);
        let mut g = c.benchmark_group("ledger-1MiB-app");
        g.sample_size(30);
        g.warm_up_time(Duration::from_secs(1));
        g.measurement_time(Duration::from_secs(4));
        g.bench_function("personalize_one", |bn| {
            bn.iter(|| personalize(black_box(&image), &req).expect("personalise"))
        });
        g.bench_function("ledger_reserve_commit", |bn| {
            bn.iter(|| {
                let board = b.board();
                let n = b.next;
                let r = b
                    .ledger
                    .reserve(&b.job, &board, ReserveOptions::default())
                    .expect("reserve");
                r.commit(&written(&[0; 4], n)).expect("commit");
            })
        });
        g.bench_function("device_with_ledger", |bn| {
            bn.iter(|| device(&mut b, &image))
        });
        g.finish();
    }
    c.final_summary();
    let n = if measuring { DEVICES } else { 20 };
    let mut runs = Vec::new();
    for (what, base) in bases() {
        for (pattern, how) in [
            (Pattern::PerBoard, "reserve per device"),
            (Pattern::Files, "reserve_many x50"),
        ] {
            runs.push(run(&base, &format!("{what}, {how}"), &image, n, pattern));
        }
    }
    print(&runs);
}
