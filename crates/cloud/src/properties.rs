//! Device properties (API v3): written as Thinger's Node-RED node does (list,
//! then `PUT` the ones that exist and `POST` the new ones).

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::client::Client;
use crate::error::Error;
use crate::http::{Body, Method, Request, Response, percent_encode};
use crate::ids::{DeviceId, check_resource_id};

/// One property: a name (`^[a-zA-Z0-9_]{1,32}$`) and any JSON value.
#[derive(Debug, Clone, PartialEq)]
pub struct Property {
    /// The name.
    pub name: String,
    /// The value.
    pub value: Value,
}

impl Property {
    /// A property, its name checked.
    pub fn new(name: &str, value: impl Into<Value>) -> Result<Property, Error> {
        check_resource_id("property name", name)?;
        Ok(Property {
            name: name.into(),
            value: value.into(),
        })
    }
}

/// What a provisioned device gets: `fw_version`, `mac`, `image_sha256`,
/// `provisioned_at` (RFC 3339, UTC); absent ones are left out.
pub fn provisioning_properties(
    fw_version: Option<&str>,
    mac: Option<&str>,
    image_sha256: Option<&str>,
    provisioned_at: SystemTime,
) -> Vec<Property> {
    let mut out = Vec::new();
    for (name, v) in [
        ("fw_version", fw_version),
        ("mac", mac),
        ("image_sha256", image_sha256),
    ] {
        if let Some(v) = v {
            out.push(Property {
                name: name.into(),
                value: v.into(),
            });
        }
    }
    out.push(Property {
        name: "provisioned_at".into(),
        value: rfc3339(provisioned_at).into(),
    });
    out
}

/// `YYYY-MM-DDTHH:MM:SSZ`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Request builders (pure).
pub mod requests {
    use super::*;

    fn base(user: &str, device: &DeviceId) -> String {
        format!(
            "/v3/users/{}/devices/{}/properties",
            percent_encode(user),
            percent_encode(device.as_str())
        )
    }

    /// `GET .../properties`.
    pub fn list(user: &str, device: &DeviceId) -> Request {
        Request::new(
            Method::Get,
            base(user, device),
            "ListDeviceProperties",
            format!("list the properties of device {device}"),
            format!("device {device}"),
        )
    }

    /// `POST .../properties` with an array of `{property, value}`.
    pub fn create(user: &str, device: &DeviceId, properties: &[Property]) -> Request {
        let body: Vec<Value> = properties
            .iter()
            .map(|p| json!({"property": p.name, "value": p.value}))
            .collect();
        Request::new(
            Method::Post,
            base(user, device),
            "CreateDeviceProperty",
            format!("create properties of device {device}"),
            format!("device {device}"),
        )
        .with_body(Body::json(&Value::Array(body)))
    }

    /// `PUT .../properties/{property}` with `{value}`.
    pub fn update(user: &str, device: &DeviceId, property: &Property) -> Request {
        Request::new(
            Method::Put,
            format!("{}/{}", base(user, device), percent_encode(&property.name)),
            "UpdateDeviceProperty",
            format!("update property {} of device {device}", property.name),
            format!("property {} of device {device}", property.name),
        )
        .with_body(Body::json(&json!({"value": property.value})))
    }
}

/// Parses the list answer: an array of `{property, value, ...}`.
pub fn parse_list(device: &DeviceId, response: &Response) -> Result<Vec<Property>, Error> {
    let err = |message: String| Error::Protocol {
        action: format!("list the properties of device {device}"),
        message,
    };
    let v = response.json().map_err(err)?;
    let items = v.as_array().ok_or_else(|| err("not an array".into()))?;
    Ok(items
        .iter()
        .filter_map(|i| {
            Some(Property {
                name: i.get("property")?.as_str()?.to_string(),
                value: i.get("value").cloned().unwrap_or(Value::Null),
            })
        })
        .collect())
}

/// The properties of one device.
#[derive(Debug)]
pub struct PropertiesHandle<'a> {
    client: &'a Client,
    device: DeviceId,
}

impl Client {
    /// The properties of a device.
    pub fn properties(&self, device: &DeviceId) -> PropertiesHandle<'_> {
        PropertiesHandle {
            client: self,
            device: device.clone(),
        }
    }
}

impl PropertiesHandle<'_> {
    /// All properties.
    pub fn list(&self) -> Result<Vec<Property>, Error> {
        let user = self.client.user()?;
        let r = self.client.execute(requests::list(&user, &self.device))?;
        parse_list(&self.device, &r)
    }

    /// Writes these properties: `PUT` the existing, one `POST` for the new.
    pub fn write(&self, properties: &[Property]) -> Result<(), Error> {
        for p in properties {
            check_resource_id("property name", &p.name)?;
        }
        let user = self.client.user()?;
        let existing = self.list()?;
        let (update, create): (Vec<&Property>, Vec<&Property>) = properties
            .iter()
            .partition(|p| existing.iter().any(|e| e.name == p.name));
        for p in update {
            self.client
                .execute(requests::update(&user, &self.device, p))?;
        }
        if !create.is_empty() {
            let create: Vec<Property> = create.into_iter().cloned().collect();
            self.client
                .execute(requests::create(&user, &self.device, &create))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339(UNIX_EPOCH + Duration::from_secs(1_709_251_199)),
            "2024-02-29T23:59:59Z"
        );
    }

    #[test]
    fn property_names_follow_the_schema() {
        assert!(Property::new("fw_version", "1.0").is_ok());
        assert!(Property::new("fw-version", "1.0").is_err());
    }
}
