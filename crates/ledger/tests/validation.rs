//! Bad input is refused before any board is touched: every problem listed at
//! once with its row number, nothing recorded.

mod common;

use common::*;
use thinger_patch_ledger::*;

fn problems(l: &Ledger, spec: &JobSpec) -> Problems {
    match l.plan(spec) {
        Err(Error::Invalid(p)) => p,
        other => panic!("expected problems, got {other:?}"),
    }
}

fn nothing_recorded(l: &Ledger) {
    assert!(l.devices(&Filter::default(), false).unwrap().is_empty());
    assert!(
        l.events(None).unwrap().iter().all(|e| e.kind == "created"),
        "only the creation is logged"
    );
}

#[test]
fn every_csv_problem_is_listed_with_its_row() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    // Row 1 header: unknown column `colour`; thinger_credentials is missing and
    // nothing else gives it. Row 3: WiFi password too short (a secret: never
    // echoed). Row 4: a device id with a space. Row 5: too few fields. Row 6:
    // duplicate of row 2. Row 7 is fine, with a quoted comma.
    let csv = format!(
        "thinger_device,wifi_password,colour\n\
         kitchen-01,longenough1,red\n\
         kitchen-02,{short},blue\n\
         kitchen 03,longenough3,green\n\
         kitchen-04,longenough4\n\
         kitchen-01,longenough6,red\n\
         kitchen-07,\"comma, inside\",red\n",
        short = "CANARY"
    );
    let p = problems(&l, &csv_job("bad", &csv));
    let got: Vec<(Option<usize>, Option<&str>)> = p
        .problems
        .iter()
        .map(|p| (p.row, p.column.as_deref()))
        .collect();
    for want in [
        (Some(1), Some("colour")),
        (Some(1), Some("thinger_credentials")),
        (Some(3), Some("wifi_password")),
        (Some(4), Some("thinger_device")),
        (Some(5), None),
        (Some(6), Some("thinger_device")),
    ] {
        assert!(got.contains(&want), "{want:?} missing from {p}");
    }
    assert_eq!(p.problems.len(), 6, "{p}");
    let text = p.to_string();
    assert!(text.starts_with("6 problems in devices.csv; nothing was reserved or written:"));
    assert!(text.contains("row 6, column thinger_device: device id kitchen-01 is also in row 2"));
    assert!(text.contains("row 5: has 2 fields, the header has 3"));
    assert!(!text.contains("CANARY"), "a secret value leaked: {text}");
    nothing_recorded(&l);
}

#[test]
fn slot_rules_capacity_and_encoding() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let long = "x".repeat(65);
    let csv = format!(
        "thinger_device,thinger_credentials,thinger_host\n\
         dev-1,{long},iot.thinger.io\n\
         dev-2,ok,https://iot.thinger.io\n\
         ,ok,iot.thinger.io\n"
    );
    let mut bytes = csv.into_bytes();
    bytes.extend_from_slice(b"dev-4,\xff\xfe,iot.thinger.io\n");
    let mut spec = csv_job("rules", "");
    spec.source = IdentitySource::Csv(CsvInput {
        name: "devices.csv".into(),
        text: String::from_utf8_lossy(&bytes).into_owned(),
    });
    let p = problems(&l, &spec);
    let text = p.to_string();
    assert!(text.contains("row 2, column thinger_credentials: the value of thinger_credentials is 65 bytes, the slot holds at most 64"), "{text}");
    assert!(
        text.contains("row 3, column thinger_host: thinger_host must be a host name"),
        "{text}"
    );
    assert!(
        text.contains("row 4, column thinger_device: the device id is empty"),
        "{text}"
    );
    assert_eq!(p.problems.len(), 3, "{text}");
    nothing_recorded(&l);
}

#[test]
fn duplicates_against_the_ledger_and_profile_problems() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let job = l
        .plan(&csv_job(
            "first",
            "thinger_device,thinger_credentials\nkitchen-01,a\nkitchen-02,b\n",
        ))
        .unwrap();
    l.reserve(&job, &board(1), ReserveOptions::default())
        .unwrap()
        .commit(&written("p"))
        .unwrap();
    let mut spec = csv_job(
        "second",
        "thinger_device,thinger_credentials\nhall-01,c\nkitchen-01,d\nkitchen-02,e\n",
    );
    spec.profile
        .push(("wifi_password".into(), Value::new("short")));
    spec.profile.push(("mqtt_topic".into(), Value::new("x")));
    let p = problems(&l, &spec);
    let text = p.to_string();
    assert!(text.contains("row 3, column thinger_device: device id kitchen-01 is already in the ledger (job first, verified for board mac:240a00000001)"), "{text}");
    assert!(text.contains("row 4, column thinger_device: device id kitchen-02 is already in the ledger (job first, free)"), "{text}");
    assert!(
        text.contains("column wifi_password: profile: wifi_password must be"),
        "{text}"
    );
    assert!(
        text.contains("profile value mqtt_topic matches no slot"),
        "{text}"
    );
    assert_eq!(p.problems.len(), 4, "{text}");
    assert!(l.device("hall-01", false).is_err(), "nothing recorded");
}

#[test]
fn templates_that_cannot_work_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let cases = [
        (
            "esp-fixed",
            3,
            Target::Boards,
            "gives every device the same id",
        ),
        ("esp-{mac}", 3, Target::Files, "has no board MAC"),
        (
            "bar {n:04}",
            3,
            Target::Boards,
            "makes ids the device slot refuses",
        ),
        (
            "bar-{serial}",
            3,
            Target::Boards,
            "unknown field `{serial}`",
        ),
        ("bar-{n:4}", 3, Target::Boards, "{n:0W}"),
        ("bar-{n:04}", 0, Target::Boards, "0 identities"),
        (
            "a-very-long-prefix-for-ids-{n:09}",
            2,
            Target::Boards,
            "at most 32",
        ),
    ];
    for (template, count, target, want) in cases {
        let p = problems(&l, &generated("g", template, count, target));
        assert!(p.to_string().contains(want), "{template}: {p}");
    }
    // Ids that would collide with ledger devices.
    let job = l
        .plan(&generated("first", "bar-{n:04}", 2, Target::Boards))
        .unwrap();
    l.reserve(&job, &board(1), ReserveOptions::default())
        .unwrap();
    let mut spec = generated("second", "bar-{n:04}", 5, Target::Boards);
    if let IdentitySource::Generate(g) = &mut spec.source {
        g.vars.insert("prefix".into(), "bar".into());
    }
    let p = problems(&l, &spec);
    assert!(p.to_string().contains("makes ids already in the ledger: bar-0001 (job first, reserved for board mac:240a00000001)"), "{p}");
    // A credential the slot's rule refuses.
    let mut spec = generated("third", "x-{n}", 1, Target::Boards);
    spec.credentials.push(Credential::new("wifi_password"));
    let p = problems(&l, &spec);
    assert!(
        p.to_string()
            .contains("generated credential wifi_password (64 characters)"),
        "{p}"
    );
    // A required slot nothing fills.
    let mut spec = generated("fourth", "x-{n}", 1, Target::Boards);
    spec.credentials.clear();
    let p = problems(&l, &spec);
    assert!(
        p.to_string()
            .contains("column thinger_credentials is missing"),
        "{p}"
    );
}

#[test]
fn quoted_fields_bom_and_blank_rows() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(&dir.path().join("l.db"));
    let csv = "\u{feff}thinger_device,wifi_ssid,thinger_credentials\r\n\
               dev-1,\"Cafe, \"\"upstairs\"\"\",\"two\nlines\"\r\n\
               ,,\r\n\
               dev-2,plain,c2\r\n";
    let job = l.plan(&csv_job("quoted", csv)).unwrap();
    let r = l
        .reserve(&job, &board(1), ReserveOptions::default())
        .unwrap();
    assert_eq!(r.value("wifi_ssid").unwrap().expose(), "Cafe, \"upstairs\"");
    assert_eq!(
        r.value("thinger_credentials").unwrap().expose(),
        "two\nlines"
    );
    let r = l
        .reserve(&job, &board(2), ReserveOptions::default())
        .unwrap();
    assert_eq!(r.device(), "dev-2");
    // A problem after a multi-line field names the row where it starts.
    let p = problems(
        &l,
        &csv_job(
            "q2",
            "thinger_device,thinger_credentials\nq-1,\"a\nb\"\nq 2,c\n",
        ),
    );
    assert_eq!(p.problems[0].row, Some(4), "{p}");
}

/// An empty database (a run killed before its creating transaction committed) is reported as
/// such when opened without creating, and becomes a ledger at the next creating open.
#[test]
fn an_empty_file_is_no_ledger_yet_until_a_run_creates_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.db");
    rusqlite::Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA user_version = 0;")
        .unwrap();
    let e = Ledger::open_locked(&path).unwrap_err();
    assert!(matches!(e, Error::Uninitialised { .. }), "{e:?}");
    assert!(e.to_string().contains("holds no ledger yet"), "{e}");
    let l = Ledger::open(&path, KeySource::Env("k".into())).unwrap();
    assert!(l.devices(&Filter::default(), false).unwrap().is_empty());
    drop(l);
    assert!(Ledger::open_locked(&path).is_ok());
}
