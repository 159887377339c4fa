//! Credentials: a long-lived access token, or a username + password exchanged at
//! `/oauth/token` for access/refresh tokens cached in a file the caller names.
//!
//! The password is never written anywhere. The cache is written atomically with
//! mode 0600 and is used only for the API base it was made for.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{CredentialKind, Error};
use crate::http::{Body, Method, Request, Response, form_encode};
use crate::secret::Secret;

/// Refresh this long before the access token expires.
const EXPIRY_MARGIN_SECS: u64 = 60;

/// How the client proves who it is.
#[derive(Debug, Clone)]
pub enum Credential {
    /// A long-lived access token (console "Access Tokens", or `THINGER_TOKEN`).
    Token(Secret),
    /// A password for `user`, exchanged at `/oauth/token`; the tokens go to `cache`
    /// when given (the password never does).
    Password {
        /// The Thinger.io user.
        user: String,
        /// The password.
        password: Secret,
        /// Where to cache the access/refresh tokens.
        cache: Option<PathBuf>,
    },
    /// The tokens cached by an earlier login (refreshed when expired).
    Cached {
        /// The cache file.
        cache: PathBuf,
    },
}

/// The tokens of a login.
#[derive(Debug, Clone)]
pub struct TokenSet {
    /// The bearer token.
    pub access_token: Secret,
    /// The refresh token, if the server gave one.
    pub refresh_token: Option<Secret>,
    /// Unix seconds when the access token expires, if known.
    pub expires_at: Option<u64>,
}

impl TokenSet {
    /// True when the access token is expired or about to be.
    pub fn is_expired(&self, now: u64) -> bool {
        matches!(self.expires_at, Some(t) if now + EXPIRY_MARGIN_SECS >= t)
    }
}

/// What a JWT access token says about itself (its payload is not secret, but it
/// is not verified either: it only picks the user and the expiry).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `usr`: the user the token belongs to.
    pub user: Option<String>,
    /// `exp`: Unix seconds.
    pub expires_at: Option<u64>,
}

/// Reads the payload of a JWT (`header.payload.signature`).
pub fn jwt_claims(token: &Secret) -> Claims {
    let payload = token
        .expose()
        .split('.')
        .nth(1)
        .and_then(base64url_decode)
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok());
    let Some(p) = payload else {
        return Claims::default();
    };
    Claims {
        user: p.get("usr").and_then(|u| u.as_str()).map(str::to_string),
        expires_at: p.get("exp").and_then(|e| e.as_u64()),
    }
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

/// `POST /oauth/token` with the password grant.
pub fn password_grant_request(user: &str, password: &Secret) -> Request {
    let mut r = Request::new(
        Method::Post,
        "/oauth/token".into(),
        "Authenticate",
        format!("log in as {user}"),
        format!("user {user}"),
    )
    .with_body(Body::Form(form_encode(&[
        ("grant_type", "password"),
        ("username", user),
        ("password", password.expose()),
    ])))
    .with_secret(password);
    r.authenticated = false;
    r
}

/// `POST /oauth/token` with the refresh grant.
pub fn refresh_request(refresh: &Secret) -> Request {
    let mut r = Request::new(
        Method::Post,
        "/oauth/token".into(),
        "Authenticate",
        "refresh the login".into(),
        "login".into(),
    )
    .with_body(Body::Form(form_encode(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh.expose()),
    ])))
    .with_secret(refresh);
    r.authenticated = false;
    r
}

/// Parses `{access_token, expires_in, refresh_token, token_type}`.
pub fn parse_token_response(response: &Response, now: u64) -> Result<TokenSet, Error> {
    let err = |message: String| Error::Protocol {
        action: "log in".into(),
        message,
    };
    let v = response.json().map_err(err)?;
    let access = v
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| err("no access_token in the answer".into()))?;
    let access_token = Secret::new(access);
    let expires_at = v
        .get("expires_in")
        .and_then(|e| e.as_u64())
        .map(|s| now + s)
        .or_else(|| jwt_claims(&access_token).expires_at);
    Ok(TokenSet {
        access_token,
        refresh_token: v
            .get("refresh_token")
            .and_then(|t| t.as_str())
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        expires_at,
    })
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A login cached on disk.
#[derive(Debug, Clone)]
pub struct CachedLogin {
    /// The API base it was made for.
    pub api: String,
    /// The user.
    pub user: String,
    /// The tokens.
    pub tokens: TokenSet,
}

fn io_err(path: &Path, message: impl std::fmt::Display) -> Error {
    Error::Io {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// Reads the cache; `None` when there is none or it was made for another API
/// base (its tokens are never sent anywhere else).
pub fn load_cache(path: &Path, api: &str) -> Result<Option<CachedLogin>, Error> {
    let text = match fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(path, e)),
    };
    let v: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|_| io_err(path, "the login cache is not valid JSON; log in again"))?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let (Some(cached_api), Some(user), Some(access)) = (s("api"), s("user"), s("access_token"))
    else {
        return Err(io_err(
            path,
            "the login cache lacks api, user or access_token; log in again",
        ));
    };
    if cached_api != api {
        return Ok(None);
    }
    Ok(Some(CachedLogin {
        api: cached_api,
        user,
        tokens: TokenSet {
            access_token: Secret::new(access),
            refresh_token: s("refresh_token").map(Secret::new),
            expires_at: v.get("expires_at").and_then(|e| e.as_u64()),
        },
    }))
}

/// Writes the cache atomically (temporary file in the same folder, mode 0600 from
/// creation, fsync, rename).
pub fn store_cache(path: &Path, login: &CachedLogin) -> Result<(), Error> {
    let mut v = serde_json::json!({
        "api": login.api,
        "user": login.user,
        "access_token": login.tokens.access_token.expose(),
    });
    if let Some(r) = &login.tokens.refresh_token {
        v["refresh_token"] = r.expose().into();
    }
    if let Some(e) = login.tokens.expires_at {
        v["expires_at"] = e.into();
    }
    let text = Secret::new(serde_json::to_string_pretty(&v).expect("JSON"));
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
    let mut suffix = [0u8; 6];
    getrandom::fill(&mut suffix).map_err(|e| io_err(path, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.{}.tmp",
        suffix
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut f = options.open(&tmp)?;
        f.write_all(text.expose().as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(path, e));
    }
    Ok(())
}

/// Removes the cache (`logout`); true when there was one.
pub fn remove_cache(path: &Path) -> Result<bool, Error> {
    match fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(io_err(path, e)),
    }
}

impl Credential {
    /// The kind, for a 401 message.
    pub fn kind(&self, user: &str) -> CredentialKind {
        match self {
            Credential::Token(_) => CredentialKind::AccessToken,
            Credential::Password { user, .. } => CredentialKind::Password { user: user.clone() },
            Credential::Cached { .. } => CredentialKind::CachedLogin {
                user: user.to_string(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_claims_are_read_without_verification() {
        // {"alg":"HS256","typ":"JWT"} . {"exp":1486048377,"iat":1486041177,"usr":"jt"} (the API docs' example)
        let t = Secret::new(
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJleHAiOjE0ODYwNDgzNzcsImlhdCI6MTQ4NjA0MTE3NywidXNyIjoianQifQ.sig",
        );
        let c = jwt_claims(&t);
        assert_eq!(c.user.as_deref(), Some("jt"));
        assert_eq!(c.expires_at, Some(1486048377));
        assert_eq!(jwt_claims(&Secret::new("not-a-jwt")), Claims::default());
    }

    #[cfg(unix)]
    #[test]
    fn cache_is_private_and_bound_to_its_api() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/login.json");
        let login = CachedLogin {
            api: "https://api.thinger.io".into(),
            user: "alice".into(),
            tokens: TokenSet {
                access_token: Secret::new("a.b.c"),
                refresh_token: Some(Secret::new("r.r.r")),
                expires_at: Some(10),
            },
        };
        store_cache(&path, &login).unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert!(
            load_cache(&path, "https://api.thinger.io")
                .unwrap()
                .is_some()
        );
        assert!(
            load_cache(&path, "https://other.example")
                .unwrap()
                .is_none()
        );
        assert!(remove_cache(&path).unwrap());
        assert!(!remove_cache(&path).unwrap());
    }
}
