//! The Thinger.io API simulator itself (thinger-patch-test-kit), with raw
//! requests: it must refuse what the public API description refuses, or the
//! other tests would pass against a server more lenient than the real one.

mod common;

use common::*;
use serde_json::{Value, json};

struct Raw {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

impl Raw {
    fn new(cloud: &ThingerCloud, token: &str) -> Raw {
        Raw {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build()
                .new_agent(),
            base: cloud.url(),
            auth: format!("Bearer {token}"),
        }
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut resp = match (method, body) {
            ("GET", _) => self
                .agent
                .get(&url)
                .header("authorization", &self.auth)
                .call(),
            ("DELETE", _) => self
                .agent
                .delete(&url)
                .header("authorization", &self.auth)
                .call(),
            ("POST", b) => self
                .agent
                .post(&url)
                .header("authorization", &self.auth)
                .header("content-type", "application/json")
                .send(b.unwrap_or(Value::Null).to_string()),
            (_, b) => self
                .agent
                .put(&url)
                .header("authorization", &self.auth)
                .header("content-type", "application/json")
                .send(b.unwrap_or(Value::Null).to_string()),
        }
        .unwrap();
        let status = resp.status().as_u16();
        let body = resp.body_mut().read_to_vec().unwrap();
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }
}

fn message(v: &Value) -> &str {
    v.pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[test]
fn device_schemas_are_enforced() {
    let cloud = cloud();
    let raw = Raw::new(&cloud, &cloud.issue_token(USER, Permissions::All));
    let devices = format!("/v1/users/{USER}/devices");
    let (s, v) = raw.call(
        "POST",
        &devices,
        Some(json!({"device": "d1", "credentials": "abcdef", "color": "red"})),
    );
    assert_eq!(
        (s, message(&v)),
        (422, "/color: additional property not allowed")
    );
    let (s, v) = raw.call(
        "POST",
        &devices,
        Some(json!({"device": "d1", "type": "Generic"})),
    );
    assert_eq!((s, message(&v)), (422, "/credentials: required"));
    let (s, v) = raw.call(
        "POST",
        &devices,
        Some(json!({"device": "bad id", "credentials": "abcdef"})),
    );
    assert_eq!(s, 422, "{v}");
    let (s, v) = raw.call(
        "POST",
        &devices,
        Some(json!({"device": "d1", "credentials": "abcdef", "asset_type": "a-b"})),
    );
    assert_eq!(s, 422, "{v}");
    // HTTP devices need no credentials.
    let (s, _) = raw.call(
        "POST",
        &devices,
        Some(json!({"device": "h1", "type": "HTTP"})),
    );
    assert_eq!(s, 200);
    let (s, _) = raw.call(
        "POST",
        &devices,
        Some(json!({"device": "d1", "credentials": "abcdef"})),
    );
    assert_eq!(s, 200);
    // The update schema has no `device` or `type`.
    let (s, v) = raw.call(
        "PUT",
        &format!("{devices}/d1"),
        Some(json!({"device": "d1", "name": "x"})),
    );
    assert_eq!(
        (s, message(&v)),
        (422, "/device: additional property not allowed")
    );
    let (s, v) = raw.call("GET", &format!("{devices}/d1"), None);
    assert_eq!(s, 200);
    assert!(
        v.get("credentials").is_none(),
        "credentials are never read back: {v}"
    );
}

#[test]
fn dashboard_property_and_token_schemas_are_enforced() {
    let cloud = cloud();
    cloud.add_device(USER, "d1", "credentials1", None);
    let raw = Raw::new(&cloud, &cloud.issue_token(USER, Permissions::All));
    let dashboards = format!("/v1/users/{USER}/dashboards");
    let (s, v) = raw.call(
        "POST",
        &dashboards,
        Some(json!({"dashboard": "x", "name": "n", "widgets": [], "created": 1})),
    );
    assert_eq!(
        (s, message(&v)),
        (422, "/created: additional property not allowed")
    );
    let (s, v) = raw.call(
        "POST",
        &dashboards,
        Some(json!({"dashboard": "x-y", "name": "n", "widgets": []})),
    );
    assert_eq!(s, 422, "{v}");
    let (s, v) = raw.call(
        "POST",
        &dashboards,
        Some(json!({"dashboard": "x", "name": "", "widgets": []})),
    );
    assert_eq!(s, 422, "{v}");
    let props = format!("/v3/users/{USER}/devices/d1/properties");
    let (s, v) = raw.call(
        "POST",
        &props,
        Some(json!([{"property": "fw-version", "value": 1}])),
    );
    assert_eq!(s, 422, "{v}");
    let (s, _) = raw.call(
        "POST",
        &props,
        Some(json!({"property": "fw_version", "value": "1"})),
    );
    assert_eq!(s, 200);
    let (s, v) = raw.call(
        "PUT",
        &format!("{props}/fw_version"),
        Some(json!({"value": 2, "extra": 1})),
    );
    assert_eq!(
        (s, message(&v)),
        (422, "/extra: additional property not allowed")
    );
    let tokens = format!("/v1/users/{USER}/tokens");
    let (s, v) = raw.call(
        "POST",
        &tokens,
        Some(json!({"token": "t-1", "name": "n", "enabled": true})),
    );
    assert_eq!(s, 422, "{v}");
    let (s, v) = raw.call(
        "POST",
        &tokens,
        Some(json!({"token": "ota_only", "name": "OTA", "enabled": true, "allow": {"Device": {"*": ["AccessDeviceResources"]}}})),
    );
    assert_eq!(s, 200, "{v}");
    assert!(
        v["access_token"]
            .as_str()
            .is_some_and(|t| t.split('.').count() == 3)
    );
}

#[test]
fn auth_and_permissions_are_enforced() {
    let cloud = cloud();
    cloud.add_user("bob", "bob-password");
    cloud.add_device(USER, "d1", "credentials1", None);
    let path = format!("/v1/users/{USER}/devices/d1");
    let (s, _) = Raw::new(&cloud, "not-a-token").call("GET", &path, None);
    assert_eq!(s, 401);
    let bob = cloud.issue_token("bob", Permissions::All);
    let (s, _) = Raw::new(&cloud, &bob).call("GET", &path, None);
    assert_eq!(s, 403, "another user's token");
    let read_only = cloud.issue_token(USER, Permissions::Only(vec!["ReadDeviceStatus".into()]));
    let raw = Raw::new(&cloud, &read_only);
    assert_eq!(raw.call("GET", &path, None).0, 200);
    let (s, v) = raw.call("DELETE", &path, None);
    assert_eq!((s, message(&v)), (403, "not allowed: DeleteDevice"));
    // The token may also come as the `authorization` query parameter (api.md).
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let resp = agent
        .get(format!("{}{path}?authorization={read_only}", cloud.url()))
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    // /oauth/token takes a form only.
    let resp = agent
        .post(format!("{}/oauth/token", cloud.url()))
        .header("content-type", "application/json")
        .send(r#"{"grant_type":"password"}"#)
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}
