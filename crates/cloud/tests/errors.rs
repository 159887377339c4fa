//! Every error class, against the Thinger.io API simulator (the real cloud cannot
//! be reached from tests; see `thinger-patch-test-kit`).

mod common;

use std::time::Duration;

use common::*;
use thinger_patch_cloud::{
    Client, Credential, DeviceId, DeviceSpec, Error, IfExists, PushMode, Secret, Settings,
    Substitutions, Template, UnknownKeys, UreqTransport,
};

fn id(s: &str) -> DeviceId {
    DeviceId::new(s).unwrap()
}

#[test]
fn unauthorized_token_names_the_credential_and_how_to_renew() {
    let cloud = cloud();
    let token = cloud.issue_token(USER, Permissions::All);
    cloud.revoke(&token);
    let c = client_with(&cloud, Credential::Token(Secret::new(token.clone())));
    let e = c.device(&id("d1")).get().unwrap_err();
    assert!(matches!(e, Error::Unauthorized { .. }), "{e:?}");
    let text = e.to_string();
    assert!(
        text.contains("refused the access token (401 Unauthorized)"),
        "{text}"
    );
    assert!(
        e.help().contains("Access Tokens") && e.help().contains("THINGER_TOKEN"),
        "{}",
        e.help()
    );
    assert_eq!(e.exit_code(), 4);
    assert!(!text.contains(&token) && !format!("{e:?}").contains(&token));
}

#[test]
fn unauthorized_password_says_so_without_the_password() {
    let cloud = cloud();
    let c = client_with(
        &cloud,
        Credential::Password {
            user: USER.into(),
            password: Secret::new("wrong-password-CANARY"),
            cache: None,
        },
    );
    let e = c.login().unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("refused the username and password of user alice"),
        "{text}"
    );
    assert!(text.contains("invalid username or password"), "{text}");
    assert!(e.help().contains("never stored"));
    assert!(!text.contains("CANARY") && !format!("{e:?}").contains("CANARY"));
}

#[test]
fn forbidden_names_the_missing_permission() {
    let cloud = cloud();
    cloud.add_device(
        USER,
        "d1",
        "credentials1",
        Some(SimDevice::esp32(vec![0xe9; 64], "1")),
    );
    let token = cloud.issue_token(USER, Permissions::Only(vec!["ReadDeviceStatus".into()]));
    let c = client_with(&cloud, Credential::Token(Secret::new(token)));
    assert!(c.device(&id("d1")).get().unwrap().is_some());
    let e = c.ota(&id("d1")).options().unwrap_err();
    assert!(
        e.to_string()
            .contains("read the OTA options of device d1: the credential lacks the AccessDeviceResources permission (403 Forbidden)"),
        "{e}"
    );
    assert!(
        e.help()
            .contains("give the access token the AccessDeviceResources permission"),
        "{}",
        e.help()
    );
    let e = c
        .device(&id("d2"))
        .create(&DeviceSpec::new(id("d2")), &Secret::new("abcdefgh"))
        .unwrap_err();
    assert!(e.to_string().contains("CreateDevice permission"), "{e}");
}

#[test]
fn not_found_and_exists() {
    let cloud = cloud();
    let c = client(&cloud);
    let e = c.device(&id("ghost")).delete().unwrap_err();
    assert_eq!(
        e.to_string(),
        "device ghost not found (404): device not found"
    );
    assert!(e.help().contains("check the user"));
    cloud.add_device(USER, "taken", "credentials1", None);
    let e = c
        .device(&id("taken"))
        .create(&DeviceSpec::new(id("taken")), &Secret::new("abcdefgh"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "device taken already exists (409): device already exists"
    );
    assert!(e.help().contains("--reuse"));
    let e = c
        .device(&id("taken"))
        .ensure(
            &DeviceSpec::new(id("taken")),
            &Secret::new("abcdefgh"),
            IfExists::Fail,
        )
        .unwrap_err();
    assert!(matches!(e, Error::Exists { .. }), "{e:?}");
}

#[test]
fn unprocessable_echoes_the_field_message_escaped() {
    let cloud = cloud();
    cloud.inject(
        Fault::status("/devices", 422, "/name: too long\u{1b}[31m\nsecond line").method("POST"),
    );
    let c = client(&cloud);
    let e = c
        .device(&id("d1"))
        .create(&DeviceSpec::new(id("d1")), &Secret::new("abcdefgh"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "create device d1: the server refused the request (422): /name: too long\\u{1b}[31m\\nsecond line"
    );
    assert!(e.help().contains("named the field"));
}

#[test]
fn rate_limited_retries_then_succeeds_or_gives_up() {
    let cloud = cloud();
    cloud.add_device(USER, "d1", "credentials1", None);
    let c = client(&cloud);
    cloud.inject(
        Fault::status("/devices/d1", 429, "slow down")
            .header("Retry-After", "0")
            .times(2),
    );
    assert!(c.device(&id("d1")).get().unwrap().is_some());
    let gets = cloud
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/devices/d1"))
        .count();
    assert_eq!(gets, 3, "two 429s then the answer");
    cloud.inject(Fault::status("/devices/d1", 429, "slow down").times(10));
    let e = c.device(&id("d1")).get().unwrap_err();
    assert_eq!(
        e.to_string(),
        "read device d1: rate limited by the server (429) after 4 attempts"
    );
    assert!(e.help().contains("wait a minute"));
}

#[test]
fn server_errors_retry_idempotent_calls_only() {
    let cloud = cloud();
    cloud.add_device(USER, "d1", "credentials1", None);
    let c = client(&cloud);
    cloud.inject(Fault::status("/devices/d1", 500, "boom").times(2));
    assert!(c.device(&id("d1")).get().unwrap().is_some());
    // A POST may have been acted on: never repeated.
    cloud.inject(Fault::status("/devices", 503, "maintenance").method("POST"));
    let e = c
        .device(&id("d2"))
        .create(&DeviceSpec::new(id("d2")), &Secret::new("abcdefgh"))
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "create device d2: server error 503 after 1 attempt(s): maintenance"
    );
    let posts = cloud
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(posts, 1);
}

#[test]
fn timeout_is_bounded_and_named() {
    let cloud = cloud();
    cloud.add_device(USER, "d1", "credentials1", None);
    let c = client(&cloud)
        .with_timeout(Duration::from_millis(500))
        .with_retry(thinger_patch_cloud::RetryPolicy {
            max_retries: 0,
            ..fast_retry()
        });
    cloud.inject(Fault::delay("/devices/d1", Duration::from_millis(2500)));
    let e = c.device(&id("d1")).get().unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("read device d1: no answer from http://127.0.0.1:"),
        "{e}"
    );
    assert!(e.help().contains("did not answer in time"));
}

#[test]
fn redirects_are_never_followed() {
    let cloud = cloud();
    let other = ThingerCloud::start();
    let location = format!("{}/v1/users/alice/devices/d1?token=abc", other.url());
    cloud.inject(
        Fault::status("/devices/d1", 302, "moved")
            .header("Location", &location)
            .times(5),
    );
    let c = client(&cloud);
    let e = c.device(&id("d1")).get().unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains(&format!("redirect (302) to {}", other.url())),
        "{text}"
    );
    assert!(!text.contains("token=abc"), "{text}");
    assert!(
        other.requests().is_empty(),
        "nothing may reach the other host"
    );
}

#[test]
fn tls_failure_is_a_tls_error() {
    // A server that is not speaking TLS (answers plain HTTP at once): the handshake fails.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        for mut conn in listener.incoming().flatten().take(4) {
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let url = format!("https://{addr}");
    let s = Settings::from_table(None)
        .unwrap()
        .with_api_url(&url)
        .unwrap()
        .with_user(USER)
        .unwrap();
    let c = Client::new(
        s,
        Credential::Token(Secret::new("x.y.z")),
        UreqTransport::new(),
    )
    .with_retry(fast_retry());
    let e = c.device(&id("d1")).get().unwrap_err();
    assert!(matches!(e, Error::Tls { .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with(&format!("TLS with {url} failed: ")),
        "{e}"
    );
    assert!(e.help().contains("certificate"));
}

#[test]
fn settings_errors_are_refused_before_sending() {
    let e = Settings::from_table(None)
        .unwrap()
        .with_api_url("http://things.example.com")
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("plain http:// is accepted only for loopback addresses"),
        "{e}"
    );
    assert_eq!(e.exit_code(), 1);
    let e = DeviceId::new("bad id!").unwrap_err();
    assert!(e.to_string().contains("1 to 32 letters"), "{e}");
}

#[test]
fn schema_errors_name_the_json_path() {
    let t = Template::parse(
        "t",
        "t.json",
        r#"{"name":"x","widgets":[],"tabs":{"a":1},"extra":1}"#,
    )
    .unwrap();
    let subs = Substitutions {
        device: "d".into(),
        user: "u".into(),
        host: "h".into(),
        name: "n".into(),
    };
    let e = t.personalize(&subs, UnknownKeys::Refuse).unwrap_err();
    assert_eq!(e.to_string().split(": ").nth(1), Some("$.extra"), "{e}");
    let e = t.personalize(&subs, UnknownKeys::Strip).unwrap_err();
    assert!(e.to_string().contains("$.tabs: must be an array"), "{e}");
    assert_eq!(e.exit_code(), 1);
    let _ = PushMode::Create;
}
