//! Canary secrets (password, token, device credentials) through every path:
//! none may appear in any error message, help, `Debug` output or JSON we
//! produce. The server side is the Thinger.io API simulator.

mod common;

use common::*;
use thinger_patch_cloud::{
    Credential, DeviceId, DeviceSpec, Error, IfExists, PushMode, Secret, Substitutions, Template,
    UnknownKeys,
};

const CREDS: &str = "creds-CANARY-91b2";

fn assert_clean(what: &str, text: &str, canaries: &[&str]) {
    for c in canaries {
        assert!(!text.contains(c), "{what} leaks a secret: {text}");
    }
}

fn assert_error_clean(e: &Error, canaries: &[&str]) {
    assert_clean("Display", &e.to_string(), canaries);
    assert_clean("Debug", &format!("{e:?}"), canaries);
    assert_clean("help", &e.help(), canaries);
}

#[test]
fn token_never_leaks() {
    let cloud = cloud();
    let token = cloud.issue_token(USER, Permissions::All);
    let canaries = [token.as_str(), CREDS];
    let c = client_with(&cloud, Credential::Token(Secret::new(token.clone())));
    assert_clean("client Debug", &format!("{c:?}"), &canaries);
    // A server that echoes the token and the credentials in its messages.
    cloud.inject(
        Fault::status(
            "/devices",
            422,
            &format!("bad token {token} for credentials {CREDS}"),
        )
        .method("POST"),
    );
    let e = c
        .device(&DeviceId::new("d1").unwrap())
        .create(
            &DeviceSpec::new(DeviceId::new("d1").unwrap()),
            &Secret::new(CREDS),
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("bad token ******** for credentials ********"),
        "{e}"
    );
    assert_error_clean(&e, &canaries);

    cloud.inject(Fault::status(
        "/devices/d2",
        401,
        &format!("token {token} revoked"),
    ));
    let e = c.device(&DeviceId::new("d2").unwrap()).get().unwrap_err();
    assert_error_clean(&e, &canaries);
    cloud.inject(Fault::status("/devices/d2", 403, &token));
    let e = c.device(&DeviceId::new("d2").unwrap()).get().unwrap_err();
    assert_error_clean(&e, &canaries);
    cloud.inject(Fault::status("/devices/d2", 500, &token).times(4));
    let e = c.device(&DeviceId::new("d2").unwrap()).get().unwrap_err();
    assert_error_clean(&e, &canaries);
}

#[test]
fn device_credentials_never_leak() {
    let cloud = cloud();
    let c = client(&cloud);
    let d = DeviceId::new("d1").unwrap();
    let spec = DeviceSpec::new(d.clone());
    let creds = Secret::new(CREDS);
    let request = thinger_patch_cloud::device::requests::create(USER, &spec, &creds);
    assert_clean("request Debug", &format!("{request:?}"), &[CREDS]);
    assert_clean(
        "preview JSON",
        &thinger_patch_cloud::device::preview_create(&spec).to_string(),
        &[CREDS],
    );
    c.device(&d).ensure(&spec, &creds, IfExists::Fail).unwrap();
    let e = c
        .device(&d)
        .ensure(&spec, &creds, IfExists::Fail)
        .unwrap_err();
    assert_error_clean(&e, &[CREDS]);
    // Rotation answered with an echo of the new credentials.
    cloud.inject(
        Fault::status(
            "/devices/d1",
            422,
            &format!("/credentials: \"{CREDS}\" refused"),
        )
        .method("PUT"),
    );
    let e = c.device(&d).rotate(&creds).unwrap_err();
    assert_error_clean(&e, &[CREDS]);
    // The server's own schema error echoes a value: masked too.
    let short = Secret::new("x");
    let e = c.device(&d).rotate(&short).unwrap_err();
    assert_error_clean(&e, &[CREDS]);
    let g = thinger_patch_cloud::generate_credentials(None).unwrap();
    assert_clean("generated Debug", &format!("{g:?} {g}"), &[g.expose()]);
    // What the device info shows never includes them (the server never returns them).
    let info = c.device(&d).get().unwrap().unwrap();
    assert_clean("device info", &format!("{info:?}"), &[CREDS]);
}

#[test]
fn password_and_refresh_token_never_leak() {
    let cloud = cloud();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("login.json");
    let credential = Credential::Password {
        user: USER.into(),
        password: Secret::new(PASSWORD),
        cache: Some(cache.clone()),
    };
    assert_clean("credential Debug", &format!("{credential:?}"), &[PASSWORD]);
    let c = client_with(&cloud, credential);
    c.login().unwrap();
    assert_clean("client Debug", &format!("{c:?}"), &[PASSWORD]);
    assert_clean(
        "cache",
        &std::fs::read_to_string(&cache).unwrap(),
        &[PASSWORD],
    );
    let refresh =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&cache).unwrap())
            .unwrap()["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
    // A failing refresh whose message echoes the refresh token.
    cloud.expire_access_tokens();
    cloud.inject(Fault::status(
        "/oauth/token",
        401,
        &format!("refresh {refresh} rejected"),
    ));
    let later = client_with(
        &cloud,
        Credential::Cached {
            cache: cache.clone(),
        },
    );
    // The server says 401 for the expired access token; the client refreshes once.
    let e = later
        .device(&DeviceId::new("d1").unwrap())
        .get()
        .unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    assert_error_clean(&e, &[PASSWORD, &refresh]);
    assert!(e.help().contains("log in again"));
    let wrong = client_with(
        &cloud,
        Credential::Password {
            user: USER.into(),
            password: Secret::new("wrong-CANARY-pw"),
            cache: None,
        },
    );
    let e = wrong.login().unwrap_err();
    assert_error_clean(&e, &["wrong-CANARY-pw"]);
}

#[test]
fn dashboards_and_ota_carry_no_secret() {
    let cloud = cloud();
    let token = cloud.issue_token(USER, Permissions::All);
    let c = client_with(&cloud, Credential::Token(Secret::new(token.clone())));
    let t = Template::parse("t", "t.json", r#"{"name":"{{device}}","widgets":[]}"#).unwrap();
    let d = t
        .personalize(
            &Substitutions {
                device: "d1".into(),
                user: USER.into(),
                host: "h".into(),
                name: "n".into(),
            },
            UnknownKeys::Strip,
        )
        .unwrap();
    c.dashboards().push(&d, PushMode::Create).unwrap();
    assert_clean("dashboard JSON", &d.json.to_string(), &[&token]);
    cloud.add_device(
        USER,
        "off",
        CREDS,
        Some(SimDevice::esp32(vec![0xe9; 8], "")),
    );
    cloud.with_sim(USER, "off", |s| s.online = false);
    let e = c
        .ota(&DeviceId::new("off").unwrap())
        .send(&[0xe9; 10], None, &mut thinger_patch_cloud::NoProgress)
        .unwrap_err();
    assert_error_clean(&e, &[&token, CREDS]);
    // The token only ever went to the configured API base, in the header.
    for r in cloud.requests() {
        assert!(!r.path.contains(&token));
    }
}
