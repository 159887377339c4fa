//! Everything this crate takes from the thinger-patch engine, in one place, so
//! that repointing the crate at `thinger-patch-core` touches this module (and
//! the dependency line in `Cargo.toml`) only.

use thinger_patch_core::targets::standard;

pub use thinger_patch_core::values::{MASK, Value, mask};

/// The rule the engine enforces for a standard key (`wifi_password`,
/// `thinger_device`, ...): `Err` says what is expected without repeating the
/// value, which may be secret. Keys without a standard rule accept anything.
pub fn check_rule(key: &str, value: &str) -> Result<(), String> {
    match standard::standard(key) {
        Some(k) => k.check(value).map_err(|e| e.to_string()),
        None => Ok(()),
    }
}

/// Whether a key is secret when the firmware cannot say (legacy placeholders).
pub fn looks_secret(key: &str) -> bool {
    standard::looks_secret(key)
}

/// Lowercase hex, as everywhere in thinger-patch.
pub fn hex(bytes: &[u8]) -> String {
    thinger_patch_core::checksum::hex(bytes)
}
