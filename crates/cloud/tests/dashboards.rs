//! Dashboard templates (JSON, and a predecessor-style `.h` written for these
//! tests) personalised and pushed to the Thinger.io API simulator.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::json;
use thinger_patch_cloud::{Error, PushMode, Pushed, Substitutions, Template, UnknownKeys};

fn template(name: &str) -> Template {
    Template::from_file(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/templates")
            .join(name),
    )
    .unwrap()
}

fn subs() -> Substitutions {
    Substitutions {
        device: "kitchen".into(),
        user: USER.into(),
        host: "iot.thinger.io".into(),
        name: "Kitchen".into(),
    }
}

#[test]
fn predecessor_h_template_with_padded_placeholders() {
    let t = template("z_Thinger.Weather.h");
    assert_eq!(t.name, "Weather");
    let d = t.personalize(&subs(), UnknownKeys::Strip).unwrap();
    assert_eq!(d.id, "Weather_kitchen");
    assert_eq!(d.replaced, 7);
    let j = &d.json;
    assert_eq!(j["name"], "Weather kitchen");
    assert_eq!(j["description"], "Weather station \"outdoor\"\t(°C)");
    let w = &j["widgets"];
    assert_eq!(w[0]["sources"][0]["device"], "kitchen");
    assert_eq!(
        w[0]["sources"][0]["user"], "alice",
        "CLOUDNAM is the user in the templates"
    );
    assert_eq!(w[1]["panel"]["title"], "Device kitchen");
    // An unpadded keyword at the end of a value is a placeholder too.
    assert_eq!(w[1]["sources"][0]["resource"], "kitchen");
    // Keys the API refuses are removed, with a warning that names them.
    assert!(j.get("created").is_none());
    assert!(
        d.warnings
            .iter()
            .any(|w| w.contains("removed key $.created")),
        "{:?}",
        d.warnings
    );
    assert_eq!(j.as_object().unwrap().keys().next().unwrap(), "dashboard");
}

#[test]
fn json_template_and_push_create_then_update() {
    let cloud = cloud();
    let c = client(&cloud);
    let weather = template("z_Thinger.Weather.h")
        .personalize(&subs(), UnknownKeys::Strip)
        .unwrap();
    let status = template("status.json")
        .personalize(&subs(), UnknownKeys::Refuse)
        .unwrap();
    assert_eq!(status.id, "status_kitchen");
    assert_eq!(status.json["name"], "Kitchen status");
    assert_eq!(
        status.json["description"],
        "Status of kitchen on iot.thinger.io"
    );
    assert_eq!(
        status.json["widgets"][0]["sources"][0]["resource"],
        "kitchen_uptime"
    );
    assert!(status.warnings.is_empty(), "{:?}", status.warnings);

    assert_eq!(
        c.dashboards().push(&weather, PushMode::Create).unwrap(),
        Pushed::Created
    );
    assert_eq!(
        c.dashboards().push(&status, PushMode::Create).unwrap(),
        Pushed::Created
    );
    assert_eq!(
        cloud.dashboard(USER, "Weather_kitchen").unwrap(),
        weather.json
    );
    assert_eq!(
        cloud.dashboard(USER, "status_kitchen").unwrap(),
        status.json
    );

    let e = c.dashboards().push(&status, PushMode::Create).unwrap_err();
    assert!(matches!(e, Error::Exists { .. }), "{e:?}");
    assert!(e.help().contains("--update"));
    let mut changed = status.clone();
    changed.json["name"] = json!("Renamed");
    assert_eq!(
        c.dashboards().push(&changed, PushMode::Update).unwrap(),
        Pushed::Updated
    );
    assert_eq!(
        cloud.dashboard(USER, "status_kitchen").unwrap()["name"],
        "Renamed"
    );
    // The PUT body has no `dashboard` key (the update schema refuses it).
    let put = cloud
        .requests()
        .into_iter()
        .find(|r| r.method == "PUT")
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&put.body).unwrap();
    assert!(body.get("dashboard").is_none());
}

#[test]
fn offline_mode_needs_no_account_and_same_template_differs_per_device() {
    let t = template("z_Thinger.Weather.h");
    let a = t.personalize(&subs(), UnknownKeys::Strip).unwrap();
    let b = t
        .personalize(
            &Substitutions {
                device: "garage".into(),
                ..subs()
            },
            UnknownKeys::Strip,
        )
        .unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(b.json["widgets"][0]["sources"][0]["device"], "garage");
    let text = serde_json::to_string_pretty(&b.json).unwrap();
    assert!(!text.contains("DEVCNAME") && !text.contains("CLOUDNAM"));
}

#[test]
fn template_without_placeholders_warns_and_bad_files_are_refused() {
    let t = Template::parse("fixed", "fixed.json", r#"{"name":"Fixed","widgets":[]}"#).unwrap();
    let d = t.personalize(&subs(), UnknownKeys::Strip).unwrap();
    assert!(d.warnings[0].contains("no placeholder"), "{:?}", d.warnings);
    let e = Template::parse("x", "x.h", "const char a[] = \"{\\\"name\\\": \";").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("dashboard template x.h: its string literals (from line 1)"),
        "{e}"
    );
    let e = Template::parse(
        "x",
        "x.h",
        "const char *a = \"{}\";\nconst char *b = \"{}\";",
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("several JSON documents (lines 1, 2)"),
        "{e}"
    );
    let e = Template::parse("x", "x.json", "[1,2]").unwrap_err();
    assert_eq!(e.exit_code(), 1);
}
