//! Devices, properties and logins against the Thinger.io API simulator (the
//! real cloud cannot be reached from tests; see `thinger-patch-test-kit`).

mod common;

use std::time::UNIX_EPOCH;

use common::*;
use thinger_patch_cloud::{
    Credential, DeviceId, DeviceSpec, Ensured, IfExists, Property, Secret, generate_credentials,
    provisioning_properties,
};

fn id(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

#[test]
fn create_upsert_rotate_delete() {
    let cloud = cloud();
    let c = client(&cloud);
    let d = id("esp-a1b2c3d4e5f6");
    let mut spec = DeviceSpec::new(d.clone());
    spec.name = Some("Kitchen".into());
    spec.description = Some("made by a test".into());
    spec.asset_type = Some("sensor".into());
    spec.asset_group = Some("home".into());
    spec.product = Some("weather_station".into());
    let creds = generate_credentials(Some(40)).unwrap();

    assert_eq!(
        c.device(&d).ensure(&spec, &creds, IfExists::Fail).unwrap(),
        Ensured::Created
    );
    let stored = cloud.device(USER, "esp-a1b2c3d4e5f6").unwrap();
    assert_eq!(stored.credentials(), Some(creds.expose()));
    assert_eq!(stored.fields["type"], "Generic");
    assert_eq!(stored.fields["asset_group"], "home");
    assert_eq!(stored.fields["product"], "weather_station");
    let info = c.device(&d).get().unwrap().unwrap();
    assert_eq!(info.name.as_deref(), Some("Kitchen"));
    assert_eq!(info.kind.as_deref(), Some("Generic"));

    assert_eq!(
        c.device(&d).ensure(&spec, &creds, IfExists::Reuse).unwrap(),
        Ensured::Reused
    );
    let rotated = generate_credentials(Some(40)).unwrap();
    assert_eq!(
        c.device(&d)
            .ensure(&spec, &rotated, IfExists::Rotate)
            .unwrap(),
        Ensured::Rotated
    );
    assert_eq!(
        cloud
            .device(USER, "esp-a1b2c3d4e5f6")
            .unwrap()
            .credentials(),
        Some(rotated.expose())
    );
    spec.name = Some("Kitchen 2".into());
    assert_eq!(
        c.device(&d)
            .ensure(&spec, &creds, IfExists::Update)
            .unwrap(),
        Ensured::Updated
    );
    assert_eq!(
        cloud.device(USER, "esp-a1b2c3d4e5f6").unwrap().fields["name"],
        "Kitchen 2"
    );

    c.device(&d).delete().unwrap();
    assert!(c.device(&d).get().unwrap().is_none());
    assert!(cloud.device(USER, "esp-a1b2c3d4e5f6").is_none());
}

#[test]
fn invalid_specs_are_refused_before_sending() {
    let cloud = cloud();
    let c = client(&cloud);
    let d = id("d1");
    let mut spec = DeviceSpec::new(d.clone());
    spec.asset_type = Some("has-hyphen".into());
    let e = c
        .device(&d)
        .create(&spec, &Secret::new("abcdefgh"))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("asset type \"has-hyphen\": must be 1 to 32"),
        "{e}"
    );
    let e = c
        .device(&d)
        .create(&DeviceSpec::new(d.clone()), &Secret::new("abc"))
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("3 bytes long; Thinger.io accepts 6 to 255"),
        "{e}"
    );
    assert!(cloud.requests().is_empty());
}

#[test]
fn properties_are_created_then_updated() {
    let cloud = cloud();
    cloud.add_device(USER, "d1", "credentials1", None);
    let c = client(&cloud);
    let d = id("d1");
    let props = provisioning_properties(
        Some("1.2.3"),
        Some("a4:cf:12:34:56:78"),
        Some("ab".repeat(32).as_str()),
        UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000),
    );
    c.properties(&d).write(&props).unwrap();
    let stored = cloud.device(USER, "d1").unwrap().properties;
    let names: Vec<&str> = stored.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        names,
        ["fw_version", "mac", "image_sha256", "provisioned_at"]
    );
    assert_eq!(stored[3].1, "2023-11-14T22:13:20Z");
    // Again with a new version: PUT for the existing one (POST would be a 409).
    c.properties(&d)
        .write(&[
            Property::new("fw_version", "1.2.4").unwrap(),
            Property::new("site", "lab").unwrap(),
        ])
        .unwrap();
    let list = c.properties(&d).list().unwrap();
    assert_eq!(
        list.iter().find(|p| p.name == "fw_version").unwrap().value,
        "1.2.4"
    );
    assert_eq!(list.len(), 5);
}

#[test]
fn password_login_caches_tokens_privately_and_refreshes() {
    let cloud = cloud();
    cloud.add_device(USER, "d1", "credentials1", None);
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("thinger-login.json");
    let c = client_with(
        &cloud,
        Credential::Password {
            user: USER.into(),
            password: Secret::new(PASSWORD),
            cache: Some(cache.clone()),
        },
    );
    let who = c.login().unwrap();
    assert_eq!(who.user, USER);
    assert!(who.expires_at.is_some());
    let text = std::fs::read_to_string(&cache).unwrap();
    assert!(!text.contains(PASSWORD), "the password is never stored");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&cache).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // The form is what /oauth/token expects.
    let login = cloud
        .requests()
        .into_iter()
        .find(|r| r.path == "/oauth/token")
        .unwrap();
    assert!(
        login
            .headers
            .iter()
            .any(|(k, v)| k == "content-type" && v == "application/x-www-form-urlencoded")
    );

    // A later run without the password uses the cache; expired -> refresh.
    let later = client_with(
        &cloud,
        Credential::Cached {
            cache: cache.clone(),
        },
    );
    assert!(later.device(&id("d1")).get().unwrap().is_some());
    cloud.expire_access_tokens();
    let before = std::fs::read_to_string(&cache).unwrap();
    assert!(later.device(&id("d1")).get().unwrap().is_some());
    let after = std::fs::read_to_string(&cache).unwrap();
    assert_ne!(before, after, "refreshed tokens are written back");
    let grants: Vec<String> = cloud
        .requests()
        .iter()
        .filter(|r| r.path == "/oauth/token")
        .map(|r| {
            String::from_utf8_lossy(&r.body)
                .split('&')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(grants, ["grant_type=password", "grant_type=refresh_token"]);

    // The cache is bound to its API base: another server never gets its tokens.
    let other = common::cloud();
    let elsewhere = client_with(
        &other,
        Credential::Cached {
            cache: cache.clone(),
        },
    );
    let e = elsewhere.device(&id("d1")).get().unwrap_err();
    assert!(
        e.to_string()
            .starts_with("not logged in to http://127.0.0.1:"),
        "{e}"
    );
    assert!(other.requests().is_empty());

    assert!(thinger_patch_cloud::auth::remove_cache(&cache).unwrap());
}

#[test]
fn whoami_reads_the_user_from_the_token() {
    let cloud = cloud();
    let token = cloud.issue_token(USER, Permissions::All);
    let s = thinger_patch_cloud::Settings::from_table(None)
        .unwrap()
        .with_api_url(&cloud.url())
        .unwrap();
    let c = thinger_patch_cloud::Client::new(
        s,
        Credential::Token(Secret::new(token)),
        thinger_patch_cloud::UreqTransport::new(),
    );
    let who = c.whoami().unwrap();
    assert_eq!(who.user, USER);
    assert_eq!(who.expires_at, None, "console tokens do not expire");
}
