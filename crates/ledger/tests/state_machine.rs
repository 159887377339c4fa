//! The state machine on a real SQLite file: reserve -> flashed -> verified,
//! failures, resumption, repeats, new identities, exhaustion, fleet bookkeeping.

mod common;

use common::*;
use thinger_patch_ledger::*;

const CSV: &str = "thinger_device,thinger_credentials\nkitchen-01,cred-one\nkitchen-02,cred-two\nkitchen-03,cred-three\n";

fn state_of(l: &Ledger, device: &str) -> State {
    l.device(device, false).unwrap().state
}

#[test]
fn reserve_flash_verify_then_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let job = l.plan(&csv_job("run", CSV)).unwrap();
    assert_eq!(l.devices(&Filter::default(), false).unwrap().len(), 3);
    assert!(
        l.devices(&Filter::default(), false)
            .unwrap()
            .iter()
            .all(|d| d.state == State::Free && d.board.is_none())
    );

    let mut r = l
        .reserve(&job, &board(1), ReserveOptions::default())
        .unwrap();
    assert_eq!((r.device(), r.kind()), ("kitchen-01", ReservationKind::New));
    assert_eq!(r.value("thinger_credentials").unwrap().expose(), "cred-one");
    assert_eq!(r.value("wifi_ssid").unwrap().expose(), "Kitchen-2.4GHz");
    assert_eq!(r.value("thinger_device").unwrap().expose(), "kitchen-01");
    let d = l.device("kitchen-01", false).unwrap();
    assert_eq!(d.state, State::Reserved);
    assert_eq!(d.mac.as_deref(), Some("24:0a:00:00:00:01"));
    assert_eq!(d.chip.as_deref(), Some("esp32c3"));
    assert_eq!(d.board.as_deref(), Some("mac:240a00000001"));
    assert!(d.reserved_at.is_some() && d.flashed_at.is_none());

    r.mark_flashed(&written("/dev/ttyUSB0")).unwrap();
    let d = l.device("kitchen-01", false).unwrap();
    assert_eq!(d.state, State::Flashed);
    assert_eq!(d.written.sha256.as_deref(), Some(&"ab".repeat(32)[..]));
    assert_eq!(d.location, Some(Location::Port("/dev/ttyUSB0".into())));
    r.mark_verified().unwrap();
    let d = l.device("kitchen-01", false).unwrap();
    assert_eq!(d.state, State::Verified);
    assert_eq!(d.current.version.as_deref(), Some("1.0.0"));
    assert_eq!(d.written.firmware.as_deref(), Some("sensor"));
    assert!(d.verified_at.is_some() && d.first_verified_at.is_some());

    // The same board again: its own identity, not the next one.
    let r = l
        .reserve(&job, &board(1), ReserveOptions::default())
        .unwrap();
    assert_eq!(
        (r.device(), r.kind()),
        ("kitchen-01", ReservationKind::Repeat)
    );
    drop(r);
    // Another board gets the next row.
    let r2 = l
        .reserve(&job, &board(2), ReserveOptions::default())
        .unwrap();
    assert_eq!(r2.device(), "kitchen-02");

    let kinds: Vec<String> = l
        .events(Some("kitchen-01"))
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "planned",
            "reserved",
            "flashed",
            "verified",
            "reserved again"
        ]
    );
    assert!(l.check().unwrap().is_empty());
}

#[test]
fn interrupted_reservation_resumes_for_its_board_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    {
        let l = open(&path);
        let job = l.plan(&csv_job("run", CSV)).unwrap();
        let mut r = l
            .reserve(&job, &board(7), ReserveOptions::default())
            .unwrap();
        r.mark_flashed(&written("/dev/ttyUSB1")).unwrap();
        // Dropped without a result: as if the process died.
    }
    let l = open(&path);
    let job = l.plan(&csv_job("run", CSV)).unwrap();
    let other = l
        .reserve(&job, &board(8), ReserveOptions::default())
        .unwrap();
    assert_eq!(
        other.device(),
        "kitchen-02",
        "kitchen-01 belongs to board 7"
    );
    let r = l
        .reserve(&job, &board(7), ReserveOptions::default())
        .unwrap();
    assert_eq!(
        (r.device(), r.kind()),
        ("kitchen-01", ReservationKind::Resumed)
    );
    // It was written completely before the interruption: the caller can read
    // the board back against this digest and only verify.
    assert_eq!(r.state(), State::Flashed);
    assert_eq!(r.sha256(), Some(&"ab".repeat(32)[..]));
    r.mark_verified().unwrap();
    assert_eq!(state_of(&l, "kitchen-01"), State::Verified);
}

#[test]
fn failure_records_reason_and_returns_identity_to_pool() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let job = l.plan(&csv_job("run", CSV)).unwrap();
    let r = l
        .reserve(&job, &board(1), ReserveOptions::default())
        .unwrap();
    r.fail("serial line dropped at 41 %").unwrap();
    let d = l.device("kitchen-01", false).unwrap();
    assert_eq!(d.state, State::Failed);
    assert_eq!(d.reason.as_deref(), Some("serial line dropped at 41 %"));
    assert_eq!(d.board, None);
    assert_eq!(d.last_board.as_deref(), Some("mac:240a00000001"));
    // Back in the pool, first in order: the next board gets it.
    let r = l
        .reserve(&job, &board(2), ReserveOptions::default())
        .unwrap();
    assert_eq!(r.device(), "kitchen-01");
    assert_eq!(l.device("kitchen-01", false).unwrap().reason, None);
    // The failed board gets the next identity.
    let r1 = l
        .reserve(&job, &board(1), ReserveOptions::default())
        .unwrap();
    assert_eq!(r1.device(), "kitchen-02");
    assert_eq!(
        l.job_status(&job).unwrap().by_state.get("reserved"),
        Some(&2)
    );
}

#[test]
fn failed_reflash_keeps_the_boards_identity() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let job = l.plan(&csv_job("run", CSV)).unwrap();
    let r = l
        .reserve(&job, &board(1), ReserveOptions::default())
        .unwrap();
    r.commit(&written("/dev/ttyUSB0")).unwrap();
    let r = l
        .reserve(&job, &board(1), ReserveOptions::default())
        .unwrap();
    r.fail("chip stopped answering").unwrap();
    let d = l.device("kitchen-01", false).unwrap();
    assert_eq!(
        (d.state, d.board.as_deref()),
        (State::Failed, Some("mac:240a00000001"))
    );
    assert_ne!(
        l.reserve(&job, &board(2), ReserveOptions::default())
            .unwrap()
            .device(),
        "kitchen-01"
    );
    let r = l
        .reserve(&job, &board(1), ReserveOptions::default())
        .unwrap();
    assert_eq!(
        (r.device(), r.kind()),
        ("kitchen-01", ReservationKind::Repeat)
    );
    assert!(matches!(
        l.release("kitchen-01"),
        Err(Error::WrongState { .. })
    ));
}

#[test]
fn new_identity_retires_a_verified_one_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let job = l.plan(&csv_job("run", CSV)).unwrap();
    l.reserve(&job, &board(1), ReserveOptions::default())
        .unwrap()
        .commit(&written("p"))
        .unwrap();
    let fresh = ReserveOptions { new_identity: true };
    let r = l.reserve(&job, &board(1), fresh).unwrap();
    assert_eq!((r.device(), r.kind()), ("kitchen-02", ReservationKind::New));
    let old = l.device("kitchen-01", false).unwrap();
    assert_eq!((old.state, old.board), (State::Retired, None));
    // An unverified identity asked to be replaced goes back to the pool, and
    // the board gets another one.
    let r = l.reserve(&job, &board(1), fresh).unwrap();
    assert_eq!(r.device(), "kitchen-03");
    assert_eq!(state_of(&l, "kitchen-02"), State::Free);
    let r = l
        .reserve(&job, &board(2), ReserveOptions::default())
        .unwrap();
    assert_eq!(r.device(), "kitchen-02");
    // kitchen-01 is never issued again: the pool is now empty.
    let e = l
        .reserve(&job, &board(3), ReserveOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::Exhausted { issued: 3, .. }), "{e}");
}

#[test]
fn generated_identities_are_distinct_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let job = l
        .plan(&generated("gen", "bar-{n:04}", 3, Target::Boards))
        .unwrap();
    let mut creds = Vec::new();
    for i in 1..=3 {
        let r = l
            .reserve(&job, &board(i), ReserveOptions::default())
            .unwrap();
        assert_eq!(r.device(), format!("bar-{i:04}"));
        let c = r.value("thinger_credentials").unwrap().expose().to_string();
        assert_eq!(c.len(), 64, "sized to the slot's capacity");
        assert!(c.bytes().all(|b| b.is_ascii_alphanumeric()));
        creds.push(c);
        r.commit(&written("p")).unwrap();
    }
    creds.sort();
    creds.dedup();
    assert_eq!(creds.len(), 3);
    let e = l
        .reserve(&job, &board(4), ReserveOptions::default())
        .unwrap_err();
    assert!(e.to_string().contains("all 3 identities are issued"), "{e}");
    // A re-run with a larger count continues the numbering.
    let job = l
        .plan(&generated("gen", "bar-{n:04}", 4, Target::Boards))
        .unwrap();
    assert_eq!(
        l.reserve(&job, &board(4), ReserveOptions::default())
            .unwrap()
            .device(),
        "bar-0004"
    );
    // A different template under the same job name is refused.
    let e = l
        .plan(&generated("gen", "foo-{n:04}", 4, Target::Boards))
        .unwrap_err();
    assert!(matches!(e, Error::JobMismatch { .. }), "{e}");

    let job = l
        .plan(&generated("macs", "esp-{mac}", 10, Target::Boards))
        .unwrap();
    let r = l
        .reserve(&job, &board(9), ReserveOptions::default())
        .unwrap();
    assert_eq!(r.device(), "esp-240a00000009");
}

#[test]
fn files_target_uses_numbered_slots() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let job = l
        .plan(&generated("files", "bar-{n:04}", 2, Target::Files))
        .unwrap();
    let slot = |n| Board::Slot {
        run: "/out".into(),
        n,
    };
    let r = l
        .reserve(&job, &slot(1), ReserveOptions::default())
        .unwrap();
    r.commit(&Written {
        sha256: [1; 32],
        location: Location::File("/out/bar-0001.bin".into()),
    })
    .unwrap();
    let b = l.bound(&slot(1)).unwrap().unwrap();
    assert_eq!((b.device.as_str(), b.state), ("bar-0001", State::Verified));
    assert_eq!(b.mac, None);
    assert!(l.bound(&slot(2)).unwrap().is_none());
}

#[test]
fn replanning_a_csv_job_adds_rows_and_refuses_changes() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    l.plan(&csv_job("run", CSV)).unwrap();
    let job = l
        .plan(&csv_job("run", &format!("{CSV}kitchen-04,cred-four\n")))
        .unwrap();
    assert_eq!(l.devices(&Filter::default(), false).unwrap().len(), 4);
    let changed = CSV.replace("cred-two", "cred-2");
    let e = l.plan(&csv_job("run", &changed)).unwrap_err();
    let Error::Invalid(p) = e else { panic!("{e}") };
    assert_eq!(p.problems.len(), 1);
    assert_eq!(p.problems[0].row, Some(3));
    assert!(p.problems[0].message.contains("thinger_credentials"));
    assert!(!p.to_string().contains("cred-2"), "secret in {p}");
    // Rows dropped from the CSV that were never issued leave the pool.
    l.reserve(&job, &board(1), ReserveOptions::default())
        .unwrap();
    l.plan(&csv_job(
        "run",
        "thinger_device,thinger_credentials\nkitchen-01,cred-one\n",
    ))
    .unwrap();
    let ids: Vec<String> = l
        .devices(&Filter::default(), false)
        .unwrap()
        .into_iter()
        .map(|d| d.device)
        .collect();
    assert_eq!(ids, ["kitchen-01"]);
}

#[test]
fn transitions_out_of_order_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let job = l.plan(&csv_job("run", CSV)).unwrap();
    let r = l
        .reserve(&job, &board(1), ReserveOptions::default())
        .unwrap();
    let e = r.mark_verified().unwrap_err();
    assert!(
        matches!(
            e,
            Error::WrongState {
                state: State::Reserved,
                ..
            }
        ),
        "{e}"
    );
    let mut r = l
        .reserve(&job, &board(1), ReserveOptions::default())
        .unwrap();
    l.release("kitchen-01").unwrap();
    let e = r.mark_flashed(&written("p")).unwrap_err();
    assert!(matches!(e, Error::Stale { .. }), "{e}");
    assert_eq!(state_of(&l, "kitchen-01"), State::Free);
    // Forgetting removes the row, keeps the events.
    l.forget("kitchen-01").unwrap();
    assert!(matches!(
        l.device("kitchen-01", false),
        Err(Error::UnknownDevice { .. })
    ));
    let kinds: Vec<String> = l
        .events(Some("kitchen-01"))
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds.last().map(String::as_str), Some("forgotten"));
}

#[test]
fn events_are_append_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    let l = open(&path);
    l.plan(&csv_job("run", CSV)).unwrap();
    drop(l);
    let raw = rusqlite::Connection::open(&path).unwrap();
    let n: i64 = raw
        .query_row("SELECT count(*) FROM events", [], |r| r.get(0))
        .unwrap();
    assert!(n >= 4);
    let e = raw.execute("UPDATE events SET kind = 'x'", []).unwrap_err();
    assert!(e.to_string().contains("append-only"), "{e}");
    assert!(raw.execute("DELETE FROM events", []).is_err());
    let v: i64 = raw
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, schema::SCHEMA_VERSION);
}

#[test]
fn fleet_update_keeps_old_version_current_until_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let job = l.plan(&csv_job("run", CSV)).unwrap();
    for i in 1..=2 {
        l.reserve(&job, &board(i), ReserveOptions::default())
            .unwrap()
            .commit(&written("p"))
            .unwrap();
    }
    let v2 = FirmwareInfo {
        name: "sensor".into(),
        version: "2.0.0".into(),
    };
    let delivery = |outcome| Delivery {
        firmware: v2.clone(),
        sha256: Some([2; 32]),
        method: Method::LanOta,
        address: Some("kitchen-01.local".into()),
        outcome,
    };
    l.record_delivery("kitchen-01", &delivery(Outcome::Updated))
        .unwrap();
    l.record_delivery("kitchen-02", &delivery(Outcome::Offline))
        .unwrap();
    let d = l.device("kitchen-01", false).unwrap();
    assert_eq!(d.current.version.as_deref(), Some("1.0.0"));
    assert_eq!(
        d.pending.as_ref().and_then(|p| p.version.as_deref()),
        Some("2.0.0")
    );
    assert_eq!(d.address.as_deref(), Some("kitchen-01.local"));
    // Both still need 2.0.0 until confirmed.
    let need = Filter {
        version_not: Some("2.0.0".into()),
        ..Filter::default()
    };
    assert_eq!(l.devices(&need, false).unwrap().len(), 2);
    assert_eq!(
        l.confirm("kitchen-01", "2.0.0").unwrap(),
        Confirmation::Confirmed
    );
    let d = l.device("kitchen-01", false).unwrap();
    assert_eq!(d.current.version.as_deref(), Some("2.0.0"));
    assert_eq!(d.current.sha256.as_deref(), Some(&"02".repeat(32)[..]));
    assert!(d.pending.is_none());
    assert_eq!(l.devices(&need, false).unwrap().len(), 1);
    let results: Vec<String> = l
        .deliveries(None)
        .unwrap()
        .into_iter()
        .map(|d| d.result)
        .collect();
    assert_eq!(results, ["updated", "offline"]);
    // A device never verified cannot be updated.
    let e = l
        .record_delivery("kitchen-03", &delivery(Outcome::Updated))
        .unwrap_err();
    assert!(matches!(e, Error::WrongState { .. }), "{e}");
}

#[test]
fn reserve_many_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let job = l.plan(&csv_job("run", CSV)).unwrap();
    let slot = |n| Board::Slot {
        run: "/out".into(),
        n,
    };
    let rs = l
        .reserve_many(&job, &[slot(1), slot(2)], ReserveOptions::default())
        .unwrap();
    let ids: Vec<&str> = rs.iter().map(Reservation::device).collect();
    assert_eq!(ids, ["kitchen-01", "kitchen-02"]);
    for r in rs {
        r.commit(&written("p")).unwrap();
    }
    // Two more outputs, one identity left: neither is reserved.
    let e = l
        .reserve_many(&job, &[slot(3), slot(4)], ReserveOptions::default())
        .unwrap_err();
    assert!(matches!(e, Error::Exhausted { .. }), "{e}");
    assert_eq!(state_of(&l, "kitchen-03"), State::Free);
    assert!(l.bound(&slot(3)).unwrap().is_none());
}
