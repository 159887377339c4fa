//! Devices: get, create, upsert (as Thinger's Node-RED node does), rotate
//! credentials, delete; and the credentials generator.

use serde_json::{Map, Value, json};

use crate::client::Client;
use crate::error::Error;
use crate::http::{Body, Method, Request, Response, percent_encode};
use crate::ids::{DeviceId, check_resource_id};
use crate::secret::Secret;

/// Thinger.io's bounds on device credentials.
pub const CREDENTIALS_MIN: usize = 6;
/// See [`CREDENTIALS_MIN`].
pub const CREDENTIALS_MAX: usize = 255;
/// Generated credentials' length when the firmware has room (192 bits).
pub const CREDENTIALS_DEFAULT_LEN: usize = 32;

/// The alphabet of generated credentials: the 64 characters of URL-safe base64.
/// Nothing to escape in a C string, JSON, a URL, a shell or a TOML string, and
/// 64 symbols make each character exactly 6 random bits (no modulo bias).
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// New device credentials from the operating system's CSPRNG: 32 characters, or
/// fewer to fit `capacity` (the characters the firmware's slot holds, without its
/// terminating NUL); refused when that is under Thinger.io's minimum of 6.
pub fn generate_credentials(capacity: Option<usize>) -> Result<Secret, Error> {
    let len = capacity
        .unwrap_or(CREDENTIALS_DEFAULT_LEN)
        .min(CREDENTIALS_DEFAULT_LEN)
        .min(CREDENTIALS_MAX);
    if len < CREDENTIALS_MIN {
        return Err(Error::Invalid {
            what: "device credentials".into(),
            message: format!(
                "the firmware's slot holds {len} characters; Thinger.io needs at least {CREDENTIALS_MIN}: \
                 rebuild the firmware with a larger thinger_credentials slot"
            ),
        });
    }
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|e| Error::Invalid {
        what: "device credentials".into(),
        message: format!("the system's random generator failed: {e}"),
    })?;
    let text: String = bytes
        .iter()
        .map(|b| ALPHABET[usize::from(b & 63)] as char)
        .collect();
    bytes.iter_mut().for_each(|b| *b = 0);
    Ok(Secret::new(text))
}

/// Checks credentials given by the user: 6 to 255 bytes, no control characters.
pub fn check_credentials(credentials: &Secret) -> Result<(), Error> {
    let n = credentials.len();
    if !(CREDENTIALS_MIN..=CREDENTIALS_MAX).contains(&n) {
        return Err(Error::Invalid {
            what: "device credentials".into(),
            message: format!(
                "are {n} bytes long; Thinger.io accepts {CREDENTIALS_MIN} to {CREDENTIALS_MAX}"
            ),
        });
    }
    if credentials.expose().chars().any(char::is_control) {
        return Err(Error::Invalid {
            what: "device credentials".into(),
            message: "contain a control character".into(),
        });
    }
    Ok(())
}

/// What to create a device with (type Generic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceSpec {
    /// The id.
    pub id: DeviceId,
    /// Display name (at most 255 characters).
    pub name: Option<String>,
    /// Description (at most 255 characters).
    pub description: Option<String>,
    /// Asset type (`^[a-zA-Z0-9_]{1,32}$`).
    pub asset_type: Option<String>,
    /// Asset group (same rule).
    pub asset_group: Option<String>,
    /// Product (same rule).
    pub product: Option<String>,
}

impl DeviceSpec {
    /// A spec with only the id.
    pub fn new(id: DeviceId) -> DeviceSpec {
        DeviceSpec {
            id,
            name: None,
            description: None,
            asset_type: None,
            asset_group: None,
            product: None,
        }
    }

    /// Checks the schema's limits before sending.
    pub fn check(&self) -> Result<(), Error> {
        for (what, v) in [
            ("device name", &self.name),
            ("device description", &self.description),
        ] {
            if let Some(v) = v
                && v.chars().count() > 255
            {
                return Err(Error::Invalid {
                    what: what.into(),
                    message: format!("is {} characters; at most 255", v.chars().count()),
                });
            }
        }
        for (what, v) in [
            ("asset type", &self.asset_type),
            ("asset group", &self.asset_group),
            ("product", &self.product),
        ] {
            if let Some(v) = v {
                check_resource_id(what, v)?;
            }
        }
        Ok(())
    }

    fn fields(&self, body: &mut Map<String, Value>) {
        for (key, v) in [
            ("name", &self.name),
            ("description", &self.description),
            ("asset_type", &self.asset_type),
            ("asset_group", &self.asset_group),
            ("product", &self.product),
        ] {
            if let Some(v) = v {
                body.insert(key.into(), Value::String(v.clone()));
            }
        }
    }
}

/// What `GET /v1/users/{user}/devices/{device}` tells (fields the server omits are `None`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInfo {
    /// The id.
    pub device: String,
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Type (`Generic`, `HTTP`, `MQTT`).
    pub kind: Option<String>,
    /// Enabled.
    pub enabled: Option<bool>,
    /// Connected now.
    pub connected: Option<bool>,
    /// Product.
    pub product: Option<String>,
    /// The whole answer.
    pub raw: Value,
}

/// Request builders (pure).
pub mod requests {
    use super::*;

    fn path(user: &str, id: Option<&DeviceId>) -> String {
        match id {
            Some(d) => format!(
                "/v1/users/{}/devices/{}",
                percent_encode(user),
                percent_encode(d.as_str())
            ),
            None => format!("/v1/users/{}/devices", percent_encode(user)),
        }
    }

    /// `GET /v1/users/{user}/devices/{device}`.
    pub fn get(user: &str, id: &DeviceId) -> Request {
        Request::new(
            Method::Get,
            path(user, Some(id)),
            "ReadDeviceStatus",
            format!("read device {id}"),
            format!("device {id}"),
        )
    }

    /// `POST /v1/users/{user}/devices`: type Generic, enabled.
    pub fn create(user: &str, spec: &DeviceSpec, credentials: &Secret) -> Request {
        let mut body = Map::new();
        body.insert("device".into(), spec.id.as_str().into());
        body.insert("type".into(), "Generic".into());
        body.insert("credentials".into(), credentials.expose().into());
        body.insert("enabled".into(), true.into());
        spec.fields(&mut body);
        Request::new(
            Method::Post,
            path(user, None),
            "CreateDevice",
            format!("create device {}", spec.id),
            format!("device {}", spec.id),
        )
        .with_body(Body::json(&Value::Object(body)))
        .with_secret(credentials)
    }

    /// `PUT /v1/users/{user}/devices/{device}` (no `device` or `type`: the schema refuses them).
    pub fn update(user: &str, spec: &DeviceSpec, credentials: Option<&Secret>) -> Request {
        let mut body = Map::new();
        spec.fields(&mut body);
        if let Some(c) = credentials {
            body.insert("credentials".into(), c.expose().into());
        }
        let mut r = Request::new(
            Method::Put,
            path(user, Some(&spec.id)),
            "UpdateDevice",
            format!("update device {}", spec.id),
            format!("device {}", spec.id),
        )
        .with_body(Body::json(&Value::Object(body)));
        if let Some(c) = credentials {
            r = r.with_secret(c);
        }
        r
    }

    /// `DELETE /v1/users/{user}/devices/{device}`.
    pub fn delete(user: &str, id: &DeviceId) -> Request {
        Request::new(
            Method::Delete,
            path(user, Some(id)),
            "DeleteDevice",
            format!("delete device {id}"),
            format!("device {id}"),
        )
    }
}

/// Parses a device answer.
pub fn parse_device(id: &DeviceId, response: &Response) -> Result<DeviceInfo, Error> {
    let v = response.json().map_err(|message| Error::Protocol {
        action: format!("read device {id}"),
        message,
    })?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let b = |k: &str| v.get(k).and_then(|x| x.as_bool());
    Ok(DeviceInfo {
        device: s("device").unwrap_or_else(|| id.to_string()),
        name: s("name"),
        description: s("description"),
        kind: s("type"),
        enabled: b("enabled"),
        connected: b("connected")
            .or_else(|| v.pointer("/connection/active").and_then(|x| x.as_bool())),
        product: s("product"),
        raw: v,
    })
}

/// What to do when the device already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfExists {
    /// Refuse (its credentials cannot be read back).
    Fail,
    /// Use it as it is: the caller has its credentials (e.g. from a profile).
    Reuse,
    /// Give it the new credentials (`PUT`), keeping everything else.
    Rotate,
    /// Thinger's Node-RED node: `PUT` the fields and credentials.
    Update,
}

/// What [`DeviceHandle::ensure`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    /// Created with the given credentials.
    Created,
    /// Existed; left as it was.
    Reused,
    /// Existed; credentials replaced.
    Rotated,
    /// Existed; fields and credentials replaced.
    Updated,
}

/// One device of the client's user.
#[derive(Debug)]
pub struct DeviceHandle<'a> {
    client: &'a Client,
    id: DeviceId,
}

impl Client {
    /// A device of the client's user.
    pub fn device(&self, id: &DeviceId) -> DeviceHandle<'_> {
        DeviceHandle {
            client: self,
            id: id.clone(),
        }
    }
}

impl DeviceHandle<'_> {
    /// The device, or `None` when it does not exist.
    pub fn get(&self) -> Result<Option<DeviceInfo>, Error> {
        let user = self.client.user()?;
        match self.client.execute(requests::get(&user, &self.id)) {
            Ok(r) => parse_device(&self.id, &r).map(Some),
            Err(Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates it (type Generic) with these credentials.
    pub fn create(&self, spec: &DeviceSpec, credentials: &Secret) -> Result<(), Error> {
        self.same_id(spec)?;
        spec.check()?;
        check_credentials(credentials)?;
        let user = self.client.user()?;
        self.client
            .execute(requests::create(&user, spec, credentials))
            .map(drop)
    }

    /// Upsert as Thinger's Node-RED node does: `GET` (200: exists, 404: create
    /// with `POST`), then what `if_exists` says.
    pub fn ensure(
        &self,
        spec: &DeviceSpec,
        credentials: &Secret,
        if_exists: IfExists,
    ) -> Result<Ensured, Error> {
        self.same_id(spec)?;
        spec.check()?;
        check_credentials(credentials)?;
        if self.get()?.is_none() {
            self.create(spec, credentials)?;
            return Ok(Ensured::Created);
        }
        let user = self.client.user()?;
        match if_exists {
            IfExists::Fail => Err(Error::Exists {
                what: format!("device {}", self.id),
                server_message: None,
            }),
            IfExists::Reuse => Ok(Ensured::Reused),
            IfExists::Rotate => {
                self.rotate(credentials)?;
                Ok(Ensured::Rotated)
            }
            IfExists::Update => {
                self.client
                    .execute(requests::update(&user, spec, Some(credentials)))?;
                Ok(Ensured::Updated)
            }
        }
    }

    /// Replaces its credentials (`PUT {"credentials": ...}`).
    pub fn rotate(&self, credentials: &Secret) -> Result<(), Error> {
        check_credentials(credentials)?;
        let user = self.client.user()?;
        let spec = DeviceSpec::new(self.id.clone());
        self.client
            .execute(requests::update(&user, &spec, Some(credentials)))
            .map(drop)
    }

    /// Deletes it.
    pub fn delete(&self) -> Result<(), Error> {
        let user = self.client.user()?;
        self.client
            .execute(requests::delete(&user, &self.id))
            .map(drop)
    }

    fn same_id(&self, spec: &DeviceSpec) -> Result<(), Error> {
        if spec.id != self.id {
            return Err(Error::Invalid {
                what: format!("device {}", self.id),
                message: format!("the spec is for device {}", spec.id),
            });
        }
        Ok(())
    }
}

/// The JSON a create request would send, with the credentials masked (for dry runs).
pub fn preview_create(spec: &DeviceSpec) -> Value {
    let mut body = Map::new();
    body.insert("device".into(), spec.id.as_str().into());
    body.insert("type".into(), "Generic".into());
    body.insert("credentials".into(), crate::secret::MASK.into());
    spec.fields(&mut body);
    json!(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_credentials_fit_capacity_and_alphabet() {
        let c = generate_credentials(None).unwrap();
        assert_eq!(c.len(), 32);
        assert!(c.expose().bytes().all(|b| ALPHABET.contains(&b)));
        assert_eq!(generate_credentials(Some(16)).unwrap().len(), 16);
        assert_eq!(generate_credentials(Some(6)).unwrap().len(), 6);
        let e = generate_credentials(Some(5)).unwrap_err();
        assert!(e.to_string().contains("at least 6"), "{e}");
        assert_ne!(
            generate_credentials(None).unwrap(),
            generate_credentials(None).unwrap()
        );
    }

    #[test]
    fn create_body_is_generic_and_update_body_has_no_id() {
        let mut spec = DeviceSpec::new(DeviceId::new("kitchen-1").unwrap());
        spec.name = Some("Kitchen".into());
        let creds = Secret::new("s3cret-creds");
        let r = requests::create("alice", &spec, &creds);
        let v: Value = serde_json::from_slice(r.body.bytes()).unwrap();
        assert_eq!(v["type"], "Generic");
        assert_eq!(v["device"], "kitchen-1");
        let r = requests::update("alice", &spec, Some(&creds));
        let v: Value = serde_json::from_slice(r.body.bytes()).unwrap();
        assert!(v.get("device").is_none() && v.get("type").is_none());
        assert_eq!(r.path, "/v1/users/alice/devices/kitchen-1");
        assert!(!preview_create(&spec).to_string().contains("s3cret"));
    }
}
