//! The `[thinger]` table: host, API base, user and where the credential comes from.
//!
//! The config file is parsed elsewhere; this module takes the table (a
//! [`toml::Table`]) and turns it into typed [`Settings`].

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use crate::error::Error;

/// The public cloud's device host.
pub const PUBLIC_HOST: &str = "iot.thinger.io";
/// The public cloud's REST API.
pub const PUBLIC_API: &str = "https://api.thinger.io";
/// Host names that mean the public cloud (its API is always [`PUBLIC_API`]).
const PUBLIC_HOSTS: &[&str] = &[
    "iot.thinger.io",
    "api.thinger.io",
    "console.thinger.io",
    "backend.thinger.io",
];

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP: loopback addresses only.
    Http,
    /// HTTPS.
    Https,
}

/// Where the REST API lives: scheme, host, optional port and path prefix.
/// Every request goes to this base and nowhere else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBase {
    scheme: Scheme,
    host: String,
    port: Option<u16>,
    prefix: String,
}

impl ApiBase {
    /// The API of a device host: the public cloud's for its hosts, `https://<host>`
    /// for a private server.
    pub fn for_host(host: &str) -> Result<ApiBase, Error> {
        let host = validate_host(host).map_err(|message| Error::Settings {
            key: "host".into(),
            message,
        })?;
        if PUBLIC_HOSTS.contains(&host.as_str()) {
            return ApiBase::parse(PUBLIC_API);
        }
        Ok(ApiBase {
            scheme: Scheme::Https,
            host,
            port: None,
            prefix: String::new(),
        })
    }

    /// Parses an `api_url`: `https://host[:port][/prefix]`, or `http://` for a
    /// loopback address only. No credentials, query or fragment.
    pub fn parse(url: &str) -> Result<ApiBase, Error> {
        let err = |message: String| Error::Settings {
            key: "api_url".into(),
            message,
        };
        let (scheme, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (Scheme::Https, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (Scheme::Http, rest)
        } else {
            return Err(err(format!(
                "{url:?} must start with https:// (or http:// for a loopback address)"
            )));
        };
        if rest.contains(['?', '#', '@'])
            || rest.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(err(format!(
                "{url:?} must be scheme://host[:port][/path], without user, query or fragment"
            )));
        }
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        if prefix.split('/').any(|s| s == ".." || s == ".") {
            return Err(err(format!("{url:?}: the path must not contain . or ..")));
        }
        let (host, port) = split_port(authority).map_err(|m| err(format!("{url:?}: {m}")))?;
        let host = validate_host(&host).map_err(|m| err(format!("{url:?}: {m}")))?;
        let base = ApiBase {
            scheme,
            host,
            port,
            prefix: prefix.to_string(),
        };
        if scheme == Scheme::Http && !base.is_loopback() {
            return Err(err(format!(
                "{url:?}: plain http:// is accepted only for loopback addresses (127.0.0.1, ::1, localhost); \
                 use https:// so tokens are not sent in clear"
            )));
        }
        Ok(base)
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host name or address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The explicit port, if any.
    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// True for 127.0.0.0/8, ::1 and `localhost`.
    pub fn is_loopback(&self) -> bool {
        is_loopback(&self.host)
    }

    /// The full URL of an API path (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{self}{path}")
    }
}

impl fmt::Display for ApiBase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.port {
            Some(p) => write!(f, "{scheme}://{host}:{p}{}", self.prefix),
            None => write!(f, "{scheme}://{host}{}", self.prefix),
        }
    }
}

fn split_port(authority: &str) -> Result<(String, Option<u16>), String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let end = rest.find(']').ok_or("unclosed [ in the host")?;
        let host = &rest[..end];
        let after = &rest[end + 1..];
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?),
            None if after.is_empty() => None,
            None => return Err("unexpected text after ]".into()),
        };
        return Ok((host.to_string(), port));
    }
    match authority.rsplit_once(':') {
        Some((h, p)) => Ok((
            h.to_string(),
            Some(p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?),
        )),
        None => Ok((authority.to_string(), None)),
    }
}

/// A bare host name, IPv4 or IPv6 address (no scheme, port or path), lowercased.
fn validate_host(host: &str) -> Result<String, String> {
    let host = host.trim();
    if host.is_empty() {
        return Err("the host is empty".into());
    }
    if host.parse::<Ipv6Addr>().is_ok() || host.parse::<Ipv4Addr>().is_ok() {
        return Ok(host.to_ascii_lowercase());
    }
    let ok = host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !ok {
        return Err(format!(
            "{host:?} is not a host name (letters, digits, '-' and '.', no scheme, port or path)"
        ));
    }
    Ok(host.to_ascii_lowercase())
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<Ipv4Addr>()
            .map(|a| a.is_loopback())
            .unwrap_or(false)
        || host
            .parse::<Ipv6Addr>()
            .map(|a| a.is_loopback())
            .unwrap_or(false)
}

/// Where a secret comes from, as in the rest of `thinger-patch.toml`; the caller
/// resolves it (environment, file, keyring, prompt).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueSource {
    /// `{ env = "VAR" }`.
    Env(String),
    /// `{ file = "path" }`.
    File(PathBuf),
    /// `{ keyring = "service/account" }`.
    Keyring(String),
    /// `{ prompt = true }`.
    Prompt,
}

/// How the client authenticates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// Nothing configured: `THINGER_TOKEN` from the environment, else the cached login.
    Default,
    /// A long-lived access token from this source.
    Token(ValueSource),
    /// The user's password from this source, exchanged at `/oauth/token`.
    Password(ValueSource),
}

/// The `[thinger]` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The device host written into firmware (default `iot.thinger.io`).
    pub host: String,
    /// The REST API base, derived from `host` unless `api_url` is given.
    pub api: ApiBase,
    /// The Thinger.io user (else taken from the token).
    pub user: Option<String>,
    /// Where the credential comes from.
    pub credential: CredentialSource,
}

const KEYS: &[&str] = &["host", "api_url", "user", "token", "password"];

impl Default for Settings {
    fn default() -> Self {
        Settings {
            host: PUBLIC_HOST.into(),
            api: ApiBase::parse(PUBLIC_API).expect("constant URL"),
            user: None,
            credential: CredentialSource::Default,
        }
    }
}

impl Settings {
    /// Reads the `[thinger]` table (`None` when the file has none).
    pub fn from_table(table: Option<&toml::Table>) -> Result<Settings, Error> {
        let Some(table) = table else {
            return Ok(Settings::default());
        };
        for key in table.keys() {
            if !KEYS.contains(&key.as_str()) {
                return Err(Error::Settings {
                    key: key.clone(),
                    message: format!("unknown key; [thinger] takes {}", KEYS.join(", ")),
                });
            }
        }
        let string = |key: &str| -> Result<Option<String>, Error> {
            match table.get(key) {
                None => Ok(None),
                Some(toml::Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(Error::Settings {
                    key: key.into(),
                    message: format!("must be a string, found {}", other.type_str()),
                }),
            }
        };
        let host = string("host")?.unwrap_or_else(|| PUBLIC_HOST.into());
        let mut settings = Settings::default().with_host(&host)?;
        if let Some(url) = string("api_url")? {
            settings = settings.with_api_url(&url)?;
        }
        if let Some(user) = string("user")? {
            settings = settings.with_user(&user)?;
        }
        settings.credential = match (table.get("token"), table.get("password")) {
            (Some(_), Some(_)) => {
                return Err(Error::Settings {
                    key: "token".into(),
                    message: "give either token or password, not both".into(),
                });
            }
            (Some(v), None) => CredentialSource::Token(value_source("token", v)?),
            (None, Some(v)) => {
                if settings.user.is_none() {
                    return Err(Error::Settings {
                        key: "password".into(),
                        message: "a password needs user = \"...\" in the same table".into(),
                    });
                }
                CredentialSource::Password(value_source("password", v)?)
            }
            (None, None) => CredentialSource::Default,
        };
        Ok(settings)
    }

    /// Sets the device host (`--thinger-host`); the API base follows it unless
    /// `api_url` is set afterwards.
    pub fn with_host(mut self, host: &str) -> Result<Settings, Error> {
        self.api = ApiBase::for_host(host)?;
        self.host = validate_host(host).map_err(|message| Error::Settings {
            key: "host".into(),
            message,
        })?;
        Ok(self)
    }

    /// Overrides the API base (`--thinger-api URL`).
    pub fn with_api_url(mut self, url: &str) -> Result<Settings, Error> {
        self.api = ApiBase::parse(url)?;
        Ok(self)
    }

    /// Sets the user (`--thinger-user`).
    pub fn with_user(mut self, user: &str) -> Result<Settings, Error> {
        crate::ids::check_user(user).map_err(|message| Error::Settings {
            key: "user".into(),
            message,
        })?;
        self.user = Some(user.to_string());
        Ok(self)
    }
}

fn value_source(key: &str, value: &toml::Value) -> Result<ValueSource, Error> {
    let err = |message: &str| Error::Settings {
        key: key.into(),
        message: message.into(),
    };
    let toml::Value::Table(t) = value else {
        // A secret typed into a config file ends up in backups and version control.
        return Err(err(
            "write where the secret comes from, not the secret: { env = \"THINGER_TOKEN\" }, \
             { file = \"path\" }, { keyring = \"service/account\" } or { prompt = true }",
        ));
    };
    if t.len() != 1 {
        return Err(err("exactly one of env, file, keyring or prompt"));
    }
    let (k, v) = t.iter().next().expect("one entry");
    match (k.as_str(), v) {
        ("env", toml::Value::String(s)) if !s.is_empty() => Ok(ValueSource::Env(s.clone())),
        ("file", toml::Value::String(s)) if !s.is_empty() => {
            Ok(ValueSource::File(PathBuf::from(s)))
        }
        ("keyring", toml::Value::String(s)) if s.contains('/') => {
            Ok(ValueSource::Keyring(s.clone()))
        }
        ("prompt", toml::Value::Boolean(true)) => Ok(ValueSource::Prompt),
        _ => Err(err(
            "expected { env = \"VAR\" }, { file = \"path\" }, { keyring = \"service/account\" } or { prompt = true }",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str) -> toml::Table {
        text.parse::<toml::Table>().unwrap()
    }

    #[test]
    fn public_and_private_hosts_derive_their_api() {
        let s = Settings::from_table(None).unwrap();
        assert_eq!(s.host, "iot.thinger.io");
        assert_eq!(s.api.to_string(), "https://api.thinger.io");
        let s = Settings::from_table(Some(&table("host = \"things.example.com\""))).unwrap();
        assert_eq!(s.api.to_string(), "https://things.example.com");
    }

    #[test]
    fn http_only_for_loopback() {
        assert!(ApiBase::parse("http://127.0.0.1:8080").is_ok());
        assert!(ApiBase::parse("http://[::1]:80/api").is_ok());
        assert!(ApiBase::parse("http://localhost").is_ok());
        let e = ApiBase::parse("http://things.example.com").unwrap_err();
        assert!(e.to_string().contains("loopback"), "{e}");
        assert!(ApiBase::parse("https://user:pw@x.com").is_err());
        assert!(ApiBase::parse("ftp://x.com").is_err());
    }

    #[test]
    fn literal_secrets_and_unknown_keys_are_refused() {
        let e = Settings::from_table(Some(&table("token = \"eyJ.abc\""))).unwrap_err();
        assert!(!e.to_string().contains("eyJ"), "{e}");
        let e = Settings::from_table(Some(&table("hots = \"x\""))).unwrap_err();
        assert!(e.to_string().contains("unknown key"), "{e}");
        let s = Settings::from_table(Some(&table(
            "user = \"alice\"\npassword = { prompt = true }",
        )))
        .unwrap();
        assert_eq!(
            s.credential,
            CredentialSource::Password(ValueSource::Prompt)
        );
    }
}
