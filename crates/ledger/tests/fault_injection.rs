//! Fault injection with real processes (harness = false: this binary is both
//! the test and, with `LEDGER_FAULT_WORKER` set, the worker it kills).
//!
//! The worker does what `batch --out-dir` will do for each numbered output:
//! reserve an identity, personalise a real (synthetic ESP32-C3) app image with
//! it through the engine, write the file, mark it flashed, read it back and
//! verify, commit. `LEDGER_FAULT_KILL_AT=STEP:N` makes it stop at STEP of
//! output N and announce it; the test then kills it with SIGKILL, checks the
//! ledger, re-runs it to completion and checks that the interrupted output was
//! completed with the identity it had, and that no identity was lost or
//! issued twice. A second test races worker processes on one pool.

mod common;

use common::*;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use thinger_patch_core::targets::{Decoded, scan};
use thinger_patch_core::values::{Assignment, Origin};
use thinger_patch_core::{Firmware, Request, personalize};
use thinger_patch_ledger::*;

/// Where the worker can be killed: after the reservation, halfway through
/// writing the file, after the file is complete but before it is recorded,
/// after `flashed`, after `verified`.
const STEPS: &[&str] = &["reserved", "mid-write", "written", "flashed", "verified"];
const IMAGE_LEN: usize = 64 * 1024;

fn main() {
    if std::env::var_os("LEDGER_FAULT_WORKER").is_some() {
        if let Err(e) = worker() {
            eprintln!("worker: {e}");
            std::process::exit(1);
        }
        return;
    }
    let tests: &[(&str, fn())] = &[
        (
            "kill_at_every_step_then_rerun",
            kill_at_every_step_then_rerun,
        ),
        (
            "processes_never_share_an_identity",
            processes_never_share_an_identity,
        ),
    ];
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        for (name, _) in tests {
            println!("{name}: test");
        }
        return;
    }
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    let started = Instant::now();
    let (mut passed, mut failed, mut skipped) = (0, 0, 0);
    println!("\nrunning {} tests", tests.len());
    for (name, f) in tests {
        if !filters.is_empty() && !filters.iter().any(|x| name.contains(x.as_str())) {
            skipped += 1;
            continue;
        }
        let ok = std::panic::catch_unwind(f).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if ok {
            passed += 1;
        } else {
            failed += 1;
        }
    }
    println!(
        "\ntest result: {}. {passed} passed; {failed} failed; 0 ignored; 0 measured; {skipped} filtered out; finished in {:.2}s\n",
        if failed == 0 { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(101);
    }
}

fn slot(out: &Path, n: u32) -> Board {
    Board::Slot {
        run: out.display().to_string(),
        n,
    }
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"))
}

/// Stops here, if told to, and waits to be killed.
fn kill_point(step: &str, n: u32) {
    if std::env::var("LEDGER_FAULT_KILL_AT").ok().as_deref() == Some(&format!("{step}:{n}")) {
        println!("KILLPOINT {step} {n}");
        std::io::stdout().flush().ok();
        loop {
            std::thread::sleep(Duration::from_secs(1));
        }
    }
}

fn worker() -> std::result::Result<(), Box<dyn std::error::Error>> {
    let db = PathBuf::from(env("LEDGER_FAULT_DB"));
    let l = open(&db);
    match env("LEDGER_FAULT_WORKER").as_str() {
        "files" => {
            let out = PathBuf::from(env("LEDGER_FAULT_OUT"));
            let n_boards: u32 = env("LEDGER_FAULT_BOARDS").parse()?;
            let job = l.plan(&generated("fault", "bar-{n:04}", 1000, Target::Files))?;
            let image = image::app_with_slots(IMAGE_LEN);
            for n in 1..=n_boards {
                let board = slot(&out, n);
                if l.bound(&board)?.is_some_and(|d| d.state == State::Verified) {
                    continue; // committed by an earlier run
                }
                let mut r = l.reserve(&job, &board, ReserveOptions::default())?;
                kill_point("reserved", n);
                let request = Request {
                    values: r
                        .values()
                        .iter()
                        .map(|(k, v)| Assignment::new(k.clone(), v.expose(), Origin::CommandLine))
                        .collect(),
                    ..Request::default()
                };
                let bytes = personalize(&image, &request)?.bytes;
                let file = out.join(format!("{}.bin", r.device()));
                let mut f = std::fs::File::create(&file)?;
                f.write_all(&bytes[..bytes.len() / 2])?;
                f.sync_all()?;
                kill_point("mid-write", n);
                f.write_all(&bytes[bytes.len() / 2..])?;
                f.sync_all()?;
                drop(f);
                kill_point("written", n);
                let sha256 = thinger_patch_core::checksum::sha256(&bytes);
                let written = Written {
                    sha256,
                    location: Location::File(file.display().to_string()),
                };
                r.mark_flashed(&written)?;
                kill_point("flashed", n);
                if thinger_patch_core::checksum::sha256(&std::fs::read(&file)?) != sha256 {
                    r.fail("read-back differs")?;
                    continue;
                }
                r.mark_verified()?;
                kill_point("verified", n);
            }
        }
        "race" => {
            let csv = std::fs::read_to_string(env("LEDGER_FAULT_CSV"))?;
            let first: u32 = env("LEDGER_FAULT_FIRST_BOARD").parse()?;
            let job = l.plan(&csv_job("race", &csv))?;
            for i in 0..10 {
                let r = l.reserve(&job, &board(first + i), ReserveOptions::default())?;
                println!("{} {}", r.board(), r.device());
                r.commit(&written("race"))?;
            }
        }
        other => return Err(format!("unknown worker mode {other}").into()),
    }
    Ok(())
}

fn worker_cmd(mode: &str, db: &Path) -> Command {
    let mut c = Command::new(std::env::current_exe().expect("own path"));
    c.env("LEDGER_FAULT_WORKER", mode)
        .env("LEDGER_FAULT_DB", db)
        .env_remove("LEDGER_FAULT_KILL_AT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// Runs the worker until it announces the kill point, then SIGKILLs it.
fn run_and_kill(mut cmd: Command, at: &str) {
    let mut child = cmd
        .env("LEDGER_FAULT_KILL_AT", at)
        .spawn()
        .expect("spawn worker");
    let stdout = child.stdout.take().expect("piped");
    let mut reached = false;
    for line in BufReader::new(stdout).lines() {
        if line.expect("read worker").starts_with("KILLPOINT") {
            reached = true;
            break;
        }
    }
    if !reached {
        let out = child.wait_with_output().expect("wait");
        panic!(
            "worker ended before kill point {at}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    child.kill().expect("SIGKILL");
    let status = child.wait().expect("wait");
    assert_eq!(status.signal(), Some(9), "killed by SIGKILL at {at}");
}

fn run_to_end(mut cmd: Command) -> String {
    let out = cmd.output().expect("run worker");
    assert!(
        out.status.success(),
        "worker failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kill_at_every_step_then_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    let out = dir.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut boards = 0;
    for step in STEPS {
        boards += 2;
        let victim = boards;
        let files = |cmd: &mut Command| {
            cmd.env("LEDGER_FAULT_OUT", &out)
                .env("LEDGER_FAULT_BOARDS", boards.to_string());
        };
        let mut cmd = worker_cmd("files", &db);
        files(&mut cmd);
        run_and_kill(cmd, &format!("{step}:{victim}"));

        // Right after the kill: consistent, the identity held for its output.
        let l = open(&db);
        assert_eq!(
            l.check().unwrap(),
            Vec::<String>::new(),
            "after kill at {step}"
        );
        let held = l.bound(&slot(&out, victim)).unwrap().expect("still bound");
        let want = match *step {
            "flashed" => State::Flashed,
            "verified" => State::Verified,
            _ => State::Reserved,
        };
        assert_eq!(held.state, want, "after kill at {step}");
        assert_eq!(held.device, format!("bar-{victim:04}"), "no number skipped");
        drop(l);

        let mut cmd = worker_cmd("files", &db);
        files(&mut cmd);
        run_to_end(cmd);

        // After the re-run: every output verified with its own identity.
        let l = open(&db);
        assert_eq!(l.check().unwrap(), Vec::<String>::new());
        let devices = l.devices(&Filter::default(), false).unwrap();
        let ids: BTreeSet<&str> = devices.iter().map(|d| d.device.as_str()).collect();
        let want_ids: BTreeSet<String> = (1..=boards).map(|n| format!("bar-{n:04}")).collect();
        assert_eq!(
            ids,
            want_ids.iter().map(String::as_str).collect(),
            "identities lost or extra after {step}"
        );
        let boards_bound: BTreeSet<Option<&str>> =
            devices.iter().map(|d| d.board.as_deref()).collect();
        assert_eq!(
            boards_bound.len(),
            devices.len(),
            "an identity on two outputs"
        );
        for d in &devices {
            assert_eq!(d.state, State::Verified, "{} after {step}", d.device);
            let Some(Location::File(f)) = &d.location else {
                panic!("{} has no file", d.device)
            };
            let bytes = std::fs::read(f).unwrap();
            assert_eq!(bytes.len(), IMAGE_LEN, "{f} complete");
            assert_eq!(
                d.written.sha256.as_deref(),
                Some(
                    thinger_patch_core::checksum::hex(&thinger_patch_core::checksum::sha256(
                        &bytes
                    ))
                    .as_str()
                )
            );
            // Checked independently of the ledger: the image verifies and its
            // slots hold this device's identity.
            let fw = Firmware::parse(&bytes).unwrap();
            assert!(fw.verify().valid, "{f} verifies");
            let values = l.values(&d.device).unwrap();
            for found in scan(&fw) {
                if let Decoded::Slot(s) = found.decoded {
                    let want = values
                        .iter()
                        .find(|(k, _)| *k == s.key)
                        .map(|(_, v)| v.expose().to_string())
                        .unwrap_or_else(|| "iot.thinger.io".into());
                    assert_eq!(s.value, want, "{} slot {}", d.device, s.key);
                }
            }
        }
        let kinds: Vec<String> = l
            .events(Some(&format!("bar-{victim:04}")))
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        if *step != "verified" {
            assert!(kinds.contains(&"resumed".to_string()), "{step}: {kinds:?}");
        }
        assert_eq!(
            std::fs::read_dir(&out).unwrap().count(),
            boards as usize,
            "one file per output"
        );
    }
}

fn processes_never_share_an_identity() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ledger.db");
    let csv_path = dir.path().join("devices.csv");
    let csv: String = std::iter::once("thinger_device,thinger_credentials\n".to_string())
        .chain((1..=30).map(|i| format!("race-{i:02},cred-{i}\n")))
        .collect();
    std::fs::write(&csv_path, &csv).unwrap();
    let children: Vec<_> = (0..3u32)
        .map(|p| {
            worker_cmd("race", &db)
                .env("LEDGER_FAULT_CSV", &csv_path)
                .env("LEDGER_FAULT_FIRST_BOARD", (p * 100).to_string())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let mut lines = Vec::new();
    for c in children {
        let out = c.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string),
        );
    }
    assert_eq!(lines.len(), 30);
    let ids: BTreeSet<&str> = lines.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert_eq!(ids.len(), 30, "an identity went to two boards: {lines:?}");
    let l = open(&db);
    assert!(l.check().unwrap().is_empty());
    let devices = l.devices(&Filter::default(), false).unwrap();
    assert_eq!(devices.len(), 30);
    assert!(devices.iter().all(|d| d.state == State::Verified));
}
