//! Shared helpers. The Thinger.io cloud cannot run here: these tests use the
//! simulator in `thinger-patch-test-kit` (written from Thinger's public API
//! description and its own clients; see its module doc).
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use thinger_patch_cloud::{Client, Credential, RetryPolicy, Secret, Settings, UreqTransport};
#[allow(unused_imports)]
pub use thinger_patch_test_kit::thinger_cloud::{Fault, Permissions, SimDevice, ThingerCloud};

pub const USER: &str = "alice";
pub const PASSWORD: &str = "pw-CANARY-7f3a9c";

/// A simulator with user `alice` (password [`PASSWORD`]).
pub fn cloud() -> ThingerCloud {
    let c = ThingerCloud::start();
    c.add_user(USER, PASSWORD);
    c
}

pub fn settings(cloud: &ThingerCloud) -> Settings {
    Settings::from_table(None)
        .unwrap()
        .with_api_url(&cloud.url())
        .unwrap()
        .with_user(USER)
        .unwrap()
}

/// Fast retries so retry tests take milliseconds.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

pub fn client_with(cloud: &ThingerCloud, credential: Credential) -> Client {
    Client::new(settings(cloud), credential, UreqTransport::new())
        .with_retry(fast_retry())
        .with_timeout(Duration::from_secs(10))
}

/// A client with a full-access long-lived token.
pub fn client(cloud: &ThingerCloud) -> Client {
    let token = cloud.issue_token(USER, Permissions::All);
    client_with(cloud, Credential::Token(Secret::new(token)))
}

/// `../shared/fixtures/third-party/REL` beside the repository root, or `None`
/// (skip) when the folder is absent; a failure under `CI=true`.
pub fn fixture(rel: &str) -> Option<Vec<u8>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let path = root.join("../shared/fixtures/third-party").join(rel);
    match std::fs::read(&path) {
        Ok(b) => Some(b),
        Err(e) => {
            let ci = std::env::var("CI")
                .is_ok_and(|v| matches!(v.to_ascii_lowercase().as_str(), "true" | "1" | "yes"));
            assert!(!ci, "fixture {} is absent under CI: {e}", path.display());
            thinger_patch_test_kit::skip(&format!("fixture {} is absent", path.display()));
            None
        }
    }
}
