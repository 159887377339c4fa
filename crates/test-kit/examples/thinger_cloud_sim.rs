//! Runs the Thinger.io API simulator on loopback for manual cross-checks with
//! other clients: prints `{"url", "user", "token"}` as one JSON line, with a
//! simulated ESP32 device `esp32_sim` online, and stops after SECONDS (default
//! 60, at most 600) or when stdin closes. Device ids after SECONDS come online as simulated
//! ESP32 boards (version `dev`) as soon as a client creates them, as a flashed board would.

use std::io::Read;
use std::time::Duration;

use thinger_patch_test_kit::thinger_cloud::{Permissions, SimDevice, ThingerCloud};

fn main() {
    let secs: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(60)
        .min(600);
    let cloud = ThingerCloud::start();
    cloud.add_user("alice", "alice-password");
    cloud.add_device(
        "alice",
        "esp32_sim",
        "esp32-sim-credentials",
        Some(SimDevice::esp32(vec![0xe9; 16], "1.0")),
    );
    let token = cloud.issue_token("alice", Permissions::All);
    println!(
        "{}",
        serde_json::json!({"url": cloud.url(), "user": "alice", "token": token})
    );
    let boards: Vec<String> = std::env::args().skip(2).collect();
    let cloud = std::sync::Arc::new(cloud);
    let watcher = cloud.clone();
    std::thread::spawn(move || {
        let mut pending = boards;
        while !pending.is_empty() {
            pending.retain(|id| match watcher.device("alice", id) {
                Some(d) if d.sim.is_none() => {
                    watcher.attach("alice", id, SimDevice::esp32(vec![0xe9; 16], "dev"));
                    false
                }
                _ => true,
            });
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = tx.send(());
    });
    let _ = rx.recv_timeout(Duration::from_secs(secs));
    for r in cloud.requests() {
        eprintln!("{} {} -> {}", r.method, r.path, r.status);
    }
    if let Some(d) = cloud.device("alice", "esp32_sim") {
        let s = d.sim.expect("simulated");
        eprintln!(
            "esp32_sim: boots {} version {} image {} bytes",
            s.boots,
            s.version,
            s.running_image.len()
        );
    }
}
