//! Cloud OTA of a 1 MiB image against the Thinger.io API simulator on loopback
//! (`cargo bench -p thinger-patch-cloud --bench cloud_ota`; the real cloud cannot
//! be reached here). Compared in the same run:
//!
//! - `crate`: `client.ota(device).send(...)` (uncompressed, so the requests are
//!   identical to the next): options, begin, 32 writes of 32 KiB, end, reboot,
//!   with the MD5 and the chunking done per run;
//! - `raw`: the same HTTP requests, bodies prepared beforehand, sent by a minimal
//!   `ureq` client: the floor for this protocol on this simulator;
//! - `crate_zlib`: what the crate really does for an ESP32 (zlib at best level).
//!
//! After criterion's report it prints the fastest of 31 interleaved runs and the ratio
//! crate/raw, and the bytes on the wire, compressed vs not, for a real ESP32 app
//! (`flipperhttp/esp32c3-app.bin` in `../shared/fixtures/third-party`, when present).
//! Everything stays on 127.0.0.1.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput};
use md5::{Digest, Md5};
use serde_json::json;
use thinger_patch_cloud::ota::{Compression, compress};
use thinger_patch_cloud::{
    Client, Credential, DeviceId, NoProgress, Secret, Settings, UreqTransport,
};
use thinger_patch_test_kit::thinger_cloud::{Permissions, SimDevice, ThingerCloud};

const LEN: usize = 1 << 20;
const BLOCK: usize = 32768;

fn real_app() -> Option<Vec<u8>> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/third-party/flipperhttp/esp32c3-app.bin");
    std::fs::read(p).ok()
}

/// 1 MiB that an ESP32 accepts: the real app's first MiB, else 0xE9 and noise.
fn image() -> Vec<u8> {
    match real_app() {
        Some(mut a) if a.len() >= LEN => {
            a.truncate(LEN);
            a
        }
        _ => {
            let mut x: u32 = 0x1234_5678;
            let mut v: Vec<u8> = (0..LEN)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            v[0] = 0xE9;
            v
        }
    }
}

struct Raw {
    agent: ureq::Agent,
    base: String,
    auth: String,
    begin: Vec<u8>,
    chunks: Vec<Vec<u8>>,
}

impl Raw {
    fn run(&self) {
        let get = |p: &str| {
            let mut r = self
                .agent
                .get(format!("{}/{p}", self.base))
                .header("authorization", &self.auth)
                .call()
                .expect("options");
            r.body_mut().read_to_vec().expect("body");
        };
        let post = |p: &str, ct: &str, body: &[u8]| {
            let mut r = self
                .agent
                .post(format!("{}/{p}", self.base))
                .header("authorization", &self.auth)
                .header("content-type", ct)
                .send(body)
                .expect("post");
            let b = r.body_mut().read_to_vec().expect("body");
            assert!(
                p == "reboot" || b.starts_with(br#"{"success":true"#),
                "{p}: {}",
                String::from_utf8_lossy(&b)
            );
        };
        get("options");
        post("begin", "application/json", &self.begin);
        for c in &self.chunks {
            post("write", "application/octet-stream", c);
        }
        post("end", "application/json", b"{}");
        post("reboot", "application/json", b"{}");
    }
}

/// The fastest of interleaved runs: on a shared machine, other load only ever adds time.
fn fastest(v: Vec<Duration>) -> Duration {
    v.into_iter().min().expect("runs")
}

fn main() {
    let cloud = ThingerCloud::start();
    cloud.add_user("bench", "pw");
    cloud.add_device(
        "bench",
        "esp32",
        "credentials1",
        Some(SimDevice::esp32(vec![0xe9; 16], "")),
    );
    let token = cloud.issue_token("bench", Permissions::All);
    let settings = Settings::from_table(None)
        .unwrap()
        .with_api_url(&cloud.url())
        .unwrap()
        .with_user("bench")
        .unwrap();
    let client = Client::new(
        settings,
        Credential::Token(Secret::new(token.clone())),
        UreqTransport::new(),
    );
    let device = DeviceId::new("esp32").unwrap();
    let image = image();
    let md5: String = Md5::digest(&image)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let raw = Raw {
        agent: ureq::Agent::new_with_defaults(),
        base: format!("{}/v3/users/bench/devices/esp32/resources/$ota", cloud.url()),
        auth: format!("Bearer {token}"),
        begin: json!({"firmware": "default", "version": "", "size": LEN, "chunk_size": BLOCK, "checksum": md5})
            .to_string()
            .into_bytes(),
        chunks: image.chunks(BLOCK).map(<[u8]>::to_vec).collect(),
    };
    let plain = || {
        client
            .ota(&device)
            .compress(false)
            .send(&image, None, &mut NoProgress)
            .expect("crate OTA")
    };
    let zlib = || {
        client
            .ota(&device)
            .send(&image, None, &mut NoProgress)
            .expect("crate OTA zlib")
    };

    let mut c = Criterion::default().configure_from_args().sample_size(20);
    {
        let mut g = c.benchmark_group("cloud-ota-1MiB-loopback");
        g.throughput(Throughput::Bytes(LEN as u64));
        g.bench_function("crate", |b| b.iter(plain));
        g.bench_function("raw", |b| b.iter(|| raw.run()));
        g.bench_function("crate_zlib", |b| b.iter(zlib));
        g.finish();
    }
    c.final_summary();

    // Interleaved runs for the ratio (same process, same simulator, same run).
    let (mut a, mut r, mut m) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..31 {
        let t = Instant::now();
        std::hint::black_box(Md5::digest(std::hint::black_box(&image)));
        m.push(t.elapsed());
        let t = Instant::now();
        plain();
        a.push(t.elapsed());
        let t = Instant::now();
        raw.run();
        r.push(t.elapsed());
    }
    let (a, r, m) = (fastest(a), fastest(r), fastest(m));
    // The raw client's begin body was prepared beforehand; any real client hashes the image.
    println!(
        "cloud OTA 1 MiB: crate {:.1} ms, raw requests {:.1} ms, MD5 of the image {:.1} ms; \
         ratio crate/raw = {:.3}, crate/(raw + MD5) = {:.3}",
        a.as_secs_f64() * 1e3,
        r.as_secs_f64() * 1e3,
        m.as_secs_f64() * 1e3,
        a.as_secs_f64() / r.as_secs_f64(),
        a.as_secs_f64() / (r + m).as_secs_f64()
    );

    if let Some(app) = real_app() {
        let z = compress(Compression::Zlib, &app);
        let g = compress(Compression::Gzip, &app);
        println!(
            "bytes on the wire for flipperhttp/esp32c3-app.bin: plain {} B, zlib {} B ({:.1}%), gzip {} B ({:.1}%); writes of 32 KiB: {} vs {}",
            app.len(),
            z.len(),
            100.0 * z.len() as f64 / app.len() as f64,
            g.len(),
            100.0 * g.len() as f64 / app.len() as f64,
            app.len().div_ceil(BLOCK),
            z.len().div_ceil(BLOCK)
        );
    } else {
        println!("skipping the bytes-on-the-wire figure: ../shared/fixtures is absent");
    }
}
