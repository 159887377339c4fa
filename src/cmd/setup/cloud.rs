//! Step 1½: when the firmware has slots for a Thinger.io device and an account is at hand
//! (`THINGER_TOKEN`, or a cached `thinger login`), offer to create the device now. Its id is
//! asked (checked by the API's rule); the user, the credentials (made from the system's
//! CSPRNG, never shown) and the host then come from the account, not from questions, and the
//! file is written by `patch --thinger-device`.

use super::{confirm, interrupted};
use crate::CliResult;
use thinger_patch_core::{ListOptions, slots};

/// The keys the account fills when the device is created here.
pub const FILLED: &[&str] = &[
    "thinger_device",
    "thinger_user",
    "thinger_credentials",
    "thinger_host",
];

/// The device id to create, if the user wants one created.
pub fn offer(input: &[u8]) -> CliResult<Option<String>> {
    let Ok(listing) = slots(input, &ListOptions::default()) else {
        return Ok(None); // the questions report a damaged file
    };
    let has = |k: &str| listing.slots.iter().any(|s| s.key == k);
    if !(has("thinger_device") && has("thinger_credentials")) {
        return Ok(None);
    }
    let token = std::env::var_os(crate::cmd::thinger::TOKEN_ENV).is_some_and(|t| !t.is_empty());
    let cached = crate::cmd::thinger::cache_path().is_ok_and(|p| p.is_file());
    if !(token || cached) {
        eprintln!(
            "(This firmware connects to Thinger.io. To have the device created on your account from here, run thinger-patch thinger login first, or set {}.)\n",
            crate::cmd::thinger::TOKEN_ENV
        );
        return Ok(None);
    }
    if !confirm(
        "Create this device on your Thinger.io account now? (its credentials are made for you, written into the firmware and never shown)",
        true,
    )? {
        return Ok(None);
    }
    let id = inquire::Text::new("The new device's id on Thinger.io:")
        .with_help_message("1 to 32 letters, digits, _ or -; e.g. kitchen_sensor")
        .with_validator(|v: &str| {
            Ok(match thinger_patch_cloud::DeviceId::new(v.trim()) {
                Ok(_) => inquire::validator::Validation::Valid,
                Err(e) => inquire::validator::Validation::Invalid(e.to_string().into()),
            })
        })
        .prompt()
        .map_err(interrupted)?;
    Ok(Some(id.trim().to_string()))
}
