//! Several connections (as separate threads, each with its own SQLite
//! connection, and one ledger shared by threads) reserving from one pool
//! never get the same identity. Separate processes: tests/fault_injection.rs.

mod common;

use common::*;
use std::collections::BTreeSet;
use thinger_patch_ledger::*;

#[test]
fn threads_with_their_own_connections_never_share_an_identity() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let csv: String = std::iter::once("thinger_device,thinger_credentials\n".to_string())
        .chain((1..=60).map(|i| format!("dev-{i:03},cred-{i}\n")))
        .collect();
    open(&path).plan(&csv_job("pool", &csv)).unwrap();
    let ids: Vec<Vec<String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u32)
            .map(|t| {
                let (path, csv) = (&path, &csv);
                s.spawn(move || {
                    let l = open(path);
                    let job = l.plan(&csv_job("pool", csv)).unwrap();
                    let mut got = Vec::new();
                    for i in 0..15 {
                        let r = l
                            .reserve(&job, &board(t * 100 + i), ReserveOptions::default())
                            .unwrap();
                        got.push(r.device().to_string());
                        if i % 2 == 0 {
                            r.commit(&written("p")).unwrap();
                        }
                    }
                    got
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let all: Vec<&String> = ids.iter().flatten().collect();
    let distinct: BTreeSet<&String> = all.iter().copied().collect();
    assert_eq!(all.len(), 60);
    assert_eq!(distinct.len(), 60, "an identity went to two boards");
    let l = open(&path);
    assert!(l.check().unwrap().is_empty());
    let job = l.plan(&csv_job("pool", &csv)).unwrap();
    assert!(matches!(
        l.reserve(&job, &board(999), ReserveOptions::default()),
        Err(Error::Exhausted { .. })
    ));
}

#[test]
fn one_ledger_shared_by_threads() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let job = l
        .plan(&generated("gen", "bar-{n:04}", 40, Target::Boards))
        .unwrap();
    let ids: Vec<String> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..8u32)
            .map(|t| {
                let (l, job) = (&l, &job);
                s.spawn(move || {
                    (0..5)
                        .map(|i| {
                            let mut r = l
                                .reserve(job, &board(t * 10 + i), ReserveOptions::default())
                                .unwrap();
                            r.mark_flashed(&written("p")).unwrap();
                            let id = r.device().to_string();
                            r.mark_verified().unwrap();
                            id
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), 40);
    let want: BTreeSet<String> = (1..=40).map(|n| format!("bar-{n:04}")).collect();
    assert_eq!(distinct, want.iter().collect(), "no number skipped");
}
