//! The API's identifier rules (from its schemas), checked before anything is sent.

use std::fmt;

use crate::error::Error;

fn matches(s: &str, max: usize, hyphen: bool) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || (hyphen && c == '-'))
}

/// A user name: `^[a-zA-Z0-9_-]{1,32}$` (the path parameter's pattern).
pub(crate) fn check_user(user: &str) -> Result<(), String> {
    if matches(user, 32, true) {
        Ok(())
    } else {
        Err(format!(
            "{user:?} is not a Thinger.io user name (1 to 32 letters, digits, '_' or '-')"
        ))
    }
}

/// `resource_id` of the API description (asset types and groups, products,
/// dashboards, property names): `^[a-zA-Z0-9_]{1,32}$`.
pub(crate) fn check_resource_id(what: &str, id: &str) -> Result<(), Error> {
    if matches(id, 32, false) {
        Ok(())
    } else {
        Err(Error::Invalid {
            what: format!("{what} {id:?}"),
            message: "must be 1 to 32 letters, digits or '_'".into(),
        })
    }
}

/// A device id: `^[a-zA-Z0-9_-]{1,32}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(String);

impl DeviceId {
    /// Checks the API's pattern.
    pub fn new(id: &str) -> Result<DeviceId, Error> {
        if matches(id, 32, true) {
            Ok(DeviceId(id.to_string()))
        } else {
            Err(Error::Invalid {
                what: format!("device id {id:?}"),
                message: "must be 1 to 32 letters, digits, '_' or '-' (Thinger.io's rule)".into(),
            })
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
