//! OTA of a 1 MiB image on loopback (`cargo bench --bench ota`): `thinger-patch ota`
//! against the ArduinoOTA device simulator of the tests (`thinger_patch_test_kit::arduino_ota`, ESP32
//! 3.3.1+ behaviour: 1024-byte chunks, each answered with a count), compared with
//!
//! - `espota_py`: the Arduino core's own `espota.py` against the same simulator, sending the
//!   same personalised bytes, when `ESPOTA_PY` names it (it is not in this repository: take
//!   `tools/espota.py` of arduino-esp32; nothing is downloaded here);
//! - `raw_tcp_1MiB` (the floor): 1 MiB written to a loopback TCP socket, the peer reads it
//!   all and answers one byte;
//! - `raw_tcp_lockstep_1KiB`: the same 1 MiB in 1024-byte chunks, each answered by the
//!   peer's decimal count before the next is sent: the protocol's own round trips, without
//!   processes, UDP or hashing.
//!
//! `thinger_patch_ota` runs the whole command as a child process: start, config, personalise
//! the 1 MiB app (six slots), MD5, invitation, the device connecting back, transfer, the
//! device's MD5 check and `OK`. The binary is the one cargo builds for this bench, or
//! `$THINGER_PATCH_BIN`. After criterion's report the bench times each function again
//! (medians of 15 interleaved runs) and prints the ratios. Everything stays on 127.0.0.1.

mod common;

use thinger_patch_test_kit::arduino_ota as arduino;

use criterion::{Criterion, SamplingMode, Throughput};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use thinger_patch_core::targets::record::{FLAG_REQUIRED, FLAG_SECRET, SlotState, encode};

const GROUP: &str = "ota-1MiB-loopback";
const LEN: usize = 1 << 20;

fn app_with_slots() -> Vec<u8> {
    let records: Vec<Vec<u8>> = [
        ("wifi_ssid", 32, FLAG_REQUIRED, ""),
        ("wifi_password", 64, FLAG_SECRET, ""),
        ("thinger_host", 64, 0, "iot.thinger.io"),
        ("thinger_user", 32, 0, ""),
        ("thinger_device", 32, 0, ""),
        ("thinger_credentials", 64, FLAG_SECRET | FLAG_REQUIRED, ""),
    ]
    .iter()
    .map(|&(k, c, f, d)| encode(k, c, f, SlotState::Default, d))
    .collect();
    common::synthetic_app(LEN, &records)
}

fn run(cmd: &mut Command) {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .expect("spawn");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A loopback peer: reads 1 MiB per connection; `lockstep` answers every 1024 bytes with
/// the count, else it answers once at the end.
fn raw_peer(lockstep: bool) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            let _ = s.set_nodelay(true);
            let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0usize;
            let mut unanswered = 0usize;
            while got < LEN {
                let want = if lockstep {
                    1024 - unanswered
                } else {
                    buf.len()
                };
                match s.read(&mut buf[..want]) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        got += n;
                        unanswered += n;
                        if lockstep && unanswered == 1024 {
                            let _ = s.write_all(b"1024");
                            unanswered = 0;
                        }
                    }
                }
            }
            let _ = s.write_all(b"K");
        }
    });
    port
}

fn raw_send(port: u16, data: &[u8], lockstep: bool) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut ack = [0u8; 16];
    if lockstep {
        for c in data.chunks(1024) {
            s.write_all(c).unwrap();
            let n = s.read(&mut ack).unwrap();
            assert!(n > 0);
        }
    } else {
        s.write_all(data).unwrap();
    }
    // The final answer.
    loop {
        let n = s.read(&mut ack).unwrap();
        if n == 0 || ack[..n].contains(&b'K') {
            break;
        }
    }
}

/// Medians of `runs` alternating runs of each function (alternating keeps a changing load
/// on the machine from favouring one of them).
fn interleaved_medians(runs: usize, fs: &mut [&mut dyn FnMut()]) -> Vec<Duration> {
    let mut times = vec![Vec::with_capacity(runs); fs.len()];
    for _ in 0..runs {
        for (f, t) in fs.iter_mut().zip(times.iter_mut()) {
            let s = Instant::now();
            f();
            t.push(s.elapsed());
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[t.len() / 2]
        })
        .collect()
}

fn main() {
    let mut c = Criterion::default()
        .output_directory(&common::criterion_dir())
        .configure_from_args();
    let bin = common::binary();
    assert!(
        bin.is_file(),
        "{} is missing: build it with `cargo build --release` or set THINGER_PATCH_BIN",
        bin.display()
    );
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = tmp.path().to_path_buf();
    std::fs::write(dir.join("app.bin"), app_with_slots()).unwrap();
    let cfg = dir.join("thinger-patch.toml");
    std::fs::write(&cfg, common::CONFIG).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let env = [
        ("BENCH_WIFI_PASSWORD", "correct horse battery staple"),
        (
            "BENCH_THINGER_CREDENTIALS",
            "bench-device-credentials-0123456789",
        ),
    ];
    // The personalised bytes, for espota.py and to check what the device received.
    run(Command::new(&bin)
        .args([
            "patch",
            "app.bin",
            "--profile",
            "kitchen",
            "-o",
            "patched.bin",
        ])
        .current_dir(&dir)
        .envs(env));
    let patched = std::fs::read(dir.join("patched.bin")).unwrap();

    let mut cfg = arduino::Config::new(arduino::Flavor::Esp32);
    cfg.space = 4 << 20;
    let dev = arduino::Device::start(cfg);
    let port = dev.port().to_string();
    let ota = || {
        let mut cmd = Command::new(&bin);
        cmd.args([
            "ota",
            "app.bin",
            "--host",
            "127.0.0.1",
            "--ota-port",
            &port,
            "--profile",
            "kitchen",
            "--timeout",
            "5",
        ])
        .current_dir(&dir)
        .envs(env);
        cmd
    };
    // Once, untimed: the device receives exactly the personalised image.
    run(&mut ota());
    let r = dev.wait_result(Duration::from_secs(5));
    assert_eq!(r.result, Some(Ok(())), "device: {r:?}");
    assert!(
        r.flashed == patched,
        "the device did not receive the personalised image"
    );
    eprintln!("checked: the simulator received the personalised 1 MiB image and answered OK");

    let espota = std::env::var_os("ESPOTA_PY").map(PathBuf::from);
    let espota_cmd = |script: &Path| {
        // A free host port each time (espota.py's random default can collide).
        let host_port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port()
            .to_string();
        let mut cmd = Command::new("python3");
        cmd.arg(script)
            .args([
                "-i",
                "127.0.0.1",
                "-I",
                "127.0.0.1",
                "-p",
                &port,
                "-P",
                &host_port,
            ])
            .args(["-f", "patched.bin"])
            .current_dir(&dir);
        if script.to_string_lossy().contains("32") {
            cmd.args(["-t", "2"]);
        }
        cmd
    };
    let raw = raw_peer(false);
    let lockstep = raw_peer(true);

    let mut g = c.benchmark_group(GROUP);
    g.throughput(Throughput::Bytes(LEN as u64));
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(6));
    g.bench_function("thinger_patch_ota", |b| b.iter(|| run(&mut ota())));
    if let Some(script) = &espota {
        g.bench_function("espota_py", |b| b.iter(|| run(&mut espota_cmd(script))));
    }
    g.bench_function("raw_tcp_1MiB", |b| {
        b.iter(|| raw_send(raw, &patched, false))
    });
    g.bench_function("raw_tcp_lockstep_1KiB", |b| {
        b.iter(|| raw_send(lockstep, &patched, true))
    });
    g.finish();

    // Ratios from our own medians of interleaved runs (criterion's estimates are above).
    if std::env::args().any(|a| a == "--bench") {
        const RUNS: usize = 15;
        let mut tool = || run(&mut ota());
        let mut floor = || raw_send(raw, &patched, false);
        let mut steps = || raw_send(lockstep, &patched, true);
        let mut fs: Vec<&mut dyn FnMut()> = vec![&mut tool, &mut floor, &mut steps];
        let mut reference = espota
            .as_ref()
            .map(|script| move || run(&mut espota_cmd(script)));
        if let Some(r) = reference.as_mut() {
            fs.push(r);
        }
        let m = interleaved_medians(RUNS, &mut fs);
        let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
        println!("\n{GROUP}: medians of {RUNS} interleaved runs");
        println!("  thinger_patch_ota        {:>10.2?}", m[0]);
        if let Some(e) = m.get(3) {
            println!(
                "  espota_py                {e:>10.2?}   thinger_patch_ota / espota_py = {:.2}",
                ratio(m[0], *e)
            );
        }
        println!(
            "  raw_tcp_1MiB             {:>10.2?}   thinger_patch_ota / raw_tcp_1MiB = {:.1}",
            m[1],
            ratio(m[0], m[1])
        );
        println!(
            "  raw_tcp_lockstep_1KiB    {:>10.2?}   thinger_patch_ota / raw_tcp_lockstep_1KiB = {:.2}",
            m[2],
            ratio(m[0], m[2])
        );
    }
    c.final_summary();
}
