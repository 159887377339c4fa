//! The native half of `web/bench.mjs`: the same `core_api` calls the page makes, on the same
//! bytes, timed here instead of in the browser. Prints one JSON line.
//!
//!   bench_native FILE ITERATIONS [--placeholder KEY=LITERAL]... [--set KEY=VALUE]...

use std::collections::BTreeMap;
use std::time::Instant;
use thinger_patch_web::core_api::{OpenOptions, Opened};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = "usage: bench_native FILE ITERATIONS [--placeholder K=L]... [--set K=V]...";
    let file = args.first().expect(usage);
    let iterations: usize = args.get(1).and_then(|n| n.parse().ok()).expect(usage);
    let mut options = OpenOptions::default();
    let mut values = BTreeMap::new();
    let mut rest = args[2..].iter();
    while let Some(flag) = rest.next() {
        let (k, v) = rest.next().and_then(|kv| kv.split_once('=')).expect(usage);
        match flag.as_str() {
            "--placeholder" => options.placeholders.insert(k.into(), v.into()),
            "--set" => values.insert(k.into(), v.into()),
            _ => panic!("{usage}"),
        };
    }
    let bytes = std::fs::read(file).expect("read the file");
    let (mut open_ms, mut personalize_ms) = (Vec::new(), Vec::new());
    for _ in 0..iterations {
        let t = Instant::now();
        let opened = Opened::open("bench.bin", bytes.clone(), &options).expect("opens");
        open_ms.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let out = opened.personalize(&values).expect("personalises");
        personalize_ms.push(t.elapsed().as_secs_f64() * 1e3);
        assert!(out.report.valid);
    }
    println!(
        "{{\"size\": {}, \"iterations\": {iterations}, \"openMs\": {:.3}, \"personalizeMs\": {:.3}}}",
        bytes.len(),
        median(&mut open_ms),
        median(&mut personalize_ms)
    );
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
