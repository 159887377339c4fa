//! One error type for everything the cloud client does, with a help text per class.
//!
//! Messages name what failed and never contain a secret: server messages are
//! scrubbed of every secret the request carried, escaped and shortened before
//! they are stored here.

use std::fmt;
use std::time::Duration;

/// Which credential the server refused (for the 401 message and its help).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialKind {
    /// A long-lived access token (`THINGER_TOKEN` or the `[thinger]` table's `token`).
    AccessToken,
    /// The username and password given for `user`.
    Password {
        /// The Thinger.io user.
        user: String,
    },
    /// The access/refresh tokens cached by an earlier login.
    CachedLogin {
        /// The Thinger.io user.
        user: String,
    },
}

impl fmt::Display for CredentialKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CredentialKind::AccessToken => f.write_str("access token"),
            CredentialKind::Password { user } => write!(f, "username and password of user {user}"),
            CredentialKind::CachedLogin { user } => write!(f, "cached login of user {user}"),
        }
    }
}

/// Everything that can go wrong talking to Thinger.io.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The `[thinger]` settings (or the flags that override them) are invalid.
    #[error("[thinger] {key}: {message}")]
    Settings {
        /// The key (`host`, `api_url`, `user`, `token`, ...).
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// An input we check before sending (a device id, credentials, a property name).
    #[error("{what}: {message}")]
    Invalid {
        /// What was checked.
        what: String,
        /// Why it was refused.
        message: String,
    },
    /// A dashboard template could not be read or parsed.
    #[error("dashboard template {file}: {message}")]
    Template {
        /// The template's file (or label).
        file: String,
        /// What is wrong.
        message: String,
    },
    /// A personalised dashboard does not satisfy the API's schema.
    #[error("dashboard {dashboard}: {path}: {message}")]
    Schema {
        /// The dashboard id (or template name).
        dashboard: String,
        /// JSON path of the offending value, e.g. `$.widgets`.
        path: String,
        /// What the schema requires.
        message: String,
    },
    /// 401: the credential was refused.
    #[error("{api} refused the {credential} (401 Unauthorized){}", suffix(.server_message))]
    Unauthorized {
        /// The API base URL.
        api: String,
        /// Which credential.
        credential: CredentialKind,
        /// The server's message, escaped.
        server_message: Option<String>,
    },
    /// 403: the credential lacks a permission.
    #[error("{action}: the credential lacks the {permission} permission (403 Forbidden){}", suffix(.server_message))]
    Forbidden {
        /// What was being done.
        action: String,
        /// The Thinger.io permission the call needs, e.g. `AccessDeviceResources`.
        permission: String,
        /// The server's message, escaped.
        server_message: Option<String>,
    },
    /// 404.
    #[error("{what} not found (404){}", suffix(.server_message))]
    NotFound {
        /// What was looked for.
        what: String,
        /// The server's message, escaped.
        server_message: Option<String>,
    },
    /// 409 (or the API's "already exists").
    #[error("{what} already exists (409){}", suffix(.server_message))]
    Exists {
        /// What exists.
        what: String,
        /// The server's message, escaped.
        server_message: Option<String>,
    },
    /// 400/422: the server refused a field.
    #[error("{action}: the server refused the request ({status}): {server_message}")]
    Rejected {
        /// What was being done.
        action: String,
        /// HTTP status.
        status: u16,
        /// The server's field message, escaped.
        server_message: String,
    },
    /// 429 after the bounded retries.
    #[error("{action}: rate limited by the server (429) after {attempts} attempts")]
    RateLimited {
        /// What was being done.
        action: String,
        /// Attempts made.
        attempts: u32,
    },
    /// 5xx after the bounded retries (or at once for a request that is not safe to repeat).
    #[error("{action}: server error {status} after {attempts} attempt(s){}", suffix(.server_message))]
    Server {
        /// What was being done.
        action: String,
        /// HTTP status.
        status: u16,
        /// Attempts made.
        attempts: u32,
        /// The server's message, escaped.
        server_message: Option<String>,
    },
    /// Any other status we do not expect.
    #[error("{action}: unexpected HTTP status {status}{}", suffix(.server_message))]
    UnexpectedStatus {
        /// What was being done.
        action: String,
        /// HTTP status.
        status: u16,
        /// The server's message, escaped.
        server_message: Option<String>,
    },
    /// 3xx: redirects are never followed (they could lead to a host the user did not configure).
    #[error(
        "{action}: the server answered with a redirect ({status}) to {location}; redirects are not followed"
    )]
    Redirect {
        /// What was being done.
        action: String,
        /// HTTP status.
        status: u16,
        /// Where it pointed (scheme and host only).
        location: String,
    },
    /// TLS handshake or certificate failure.
    #[error("TLS with {api} failed: {message}")]
    Tls {
        /// The API base URL.
        api: String,
        /// The TLS library's message.
        message: String,
    },
    /// No answer within the bounded wait.
    #[error("{action}: no answer from {api} within {}s", .after.as_secs())]
    Timeout {
        /// What was being done.
        action: String,
        /// The API base URL.
        api: String,
        /// The wait.
        after: Duration,
    },
    /// Cannot connect (DNS, refused, reset).
    #[error("cannot reach {api}: {message}")]
    Connect {
        /// The API base URL.
        api: String,
        /// What failed.
        message: String,
    },
    /// The server's answer could not be understood.
    #[error("{action}: unexpected answer from the server: {message}")]
    Protocol {
        /// What was being done.
        action: String,
        /// What was wrong with it.
        message: String,
    },
    /// Local file I/O (the token cache).
    #[error("{path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// A call needs a login and there is none.
    #[error("not logged in to {api}: no access token and no cached login")]
    NotLoggedIn {
        /// The API base URL.
        api: String,
    },
    /// OTA: the device is not connected (or its firmware has no `$ota` resources).
    #[error("device {device} is offline or its firmware has no Thinger.io OTA ($ota resources){}", suffix(.server_message))]
    OtaOffline {
        /// The device id.
        device: String,
        /// The server's message, escaped.
        server_message: Option<String>,
    },
    /// OTA: the device reports OTA disabled.
    #[error("device {device} has OTA disabled")]
    OtaDisabled {
        /// The device id.
        device: String,
    },
    /// OTA: the device refused to begin.
    #[error("device {device} refused to begin the update: {message}")]
    OtaBegin {
        /// The device id.
        device: String,
        /// The device's error, escaped.
        message: String,
    },
    /// OTA: the device refused a chunk.
    #[error("device {device} refused the chunk at byte {offset} of {total}: {message}")]
    OtaWrite {
        /// The device id.
        device: String,
        /// Bytes acknowledged before this chunk.
        offset: u64,
        /// Bytes to send in all.
        total: u64,
        /// The device's error, escaped.
        message: String,
    },
    /// OTA: the device stopped acknowledging (gave up after its timeout, or no answer).
    #[error("device {device} stopped acknowledging at byte {offset} of {total}{}", suffix(.detail))]
    OtaStalled {
        /// The device id.
        device: String,
        /// Bytes acknowledged.
        offset: u64,
        /// Bytes to send in all.
        total: u64,
        /// What was seen.
        detail: Option<String>,
    },
    /// OTA: the device refused to finish (size or MD5 mismatch, bad image).
    #[error("device {device} did not accept the image at the end: {message}")]
    OtaEnd {
        /// The device id.
        device: String,
        /// The device's error, escaped.
        message: String,
    },
}

fn suffix(message: &Option<String>) -> String {
    match message {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

impl Error {
    /// A short, separate help text for this class of error: what to do next.
    pub fn help(&self) -> String {
        match self {
            Error::Settings { .. } => "fix the [thinger] table in thinger-patch.toml or the matching --thinger-* flag; \
                 host is a bare host name (default iot.thinger.io), api_url an https:// URL \
                 (http:// only for loopback addresses)"
                .into(),
            Error::Invalid { .. } => "correct the value and run again; nothing was sent".into(),
            Error::Template { .. } => "a template is dashboard JSON, or a .h/.txt file holding that JSON in C string literals".into(),
            Error::Schema { .. } => "the dashboard API accepts only dashboard, name, description, widgets, tabs, controls and properties; \
                 fix the template at that JSON path"
                .into(),
            Error::Unauthorized { credential, .. } => match credential {
                CredentialKind::AccessToken => "the access token is wrong, expired or revoked: create a new one in the Thinger.io console \
                     (Access Tokens) and set THINGER_TOKEN or [thinger] token, or log in with a password instead"
                    .into(),
                CredentialKind::Password { .. } => "the username or password is wrong: check them in the Thinger.io console; \
                     the password is never stored"
                    .into(),
                CredentialKind::CachedLogin { .. } => "the cached login has expired or was revoked: log in again \
                     (thinger-patch thinger login)"
                    .into(),
            },
            Error::Forbidden { permission, .. } => format!(
                "give the access token the {permission} permission (Thinger.io console, Access Tokens, \
                 its allowed actions), or use a token or login that has it"
            ),
            Error::NotFound { .. } => "check the user, the device or dashboard id, and the host the API base points to".into(),
            Error::Exists { .. } => "it is already there: reuse it explicitly (--reuse), update it (--update), \
                 or choose another id"
                .into(),
            Error::Rejected { .. } => "the server named the field it refused; fix that value".into(),
            Error::RateLimited { .. } => "the server is limiting requests: wait a minute and run again".into(),
            Error::Server { .. } | Error::UnexpectedStatus { .. } => {
                "the server failed; run again later, and check the server's status if it persists".into()
            }
            Error::Redirect { .. } => "set api_url to the final address of the API (redirects are not followed so that \
                 no credential goes to a host you did not configure)"
                .into(),
            Error::Tls { .. } => "check the host name in [thinger] host/api_url and the system clock; a private server \
                 needs a certificate from a public CA"
                .into(),
            Error::Timeout { .. } => "the server or device did not answer in time: check the network and run again".into(),
            Error::Connect { .. } => "check the host name, the network and any proxy".into(),
            Error::Protocol { .. } => "the server's answer was not what its API describes: check api_url points to a \
                 Thinger.io server"
                .into(),
            Error::Io { .. } => "check the folder exists and is writable".into(),
            Error::NotLoggedIn { .. } => "set THINGER_TOKEN (or [thinger] token) or log in: thinger-patch thinger login".into(),
            Error::OtaOffline { .. } => "power the device and let it connect to Thinger.io (the console shows it online); \
                 its firmware must be built with ThingerESP32OTA/ThingerESP8266OTA"
                .into(),
            Error::OtaDisabled { .. } => "the firmware turned OTA off (set_enabled(false)); enable it in the firmware".into(),
            Error::OtaBegin { .. } => "the device could not start the update (space, another update running): \
                 restart it and run again"
                .into(),
            Error::OtaWrite { .. } | Error::OtaEnd { .. } => "the device rejected the image; it keeps running its old firmware. \
                 Check the image is for this chip and run again"
                .into(),
            Error::OtaStalled { .. } => "the device gave up waiting (its OTA timeout) or lost its connection; it restarts \
                 into its old firmware. Run again on a steadier connection"
                .into(),
        }
    }

    /// The CLI's exit code for this error: 1 invalid input or refused, 3 local I/O,
    /// 4 device or network.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Settings { .. }
            | Error::Invalid { .. }
            | Error::Template { .. }
            | Error::Schema { .. } => 1,
            Error::Io { .. } => 3,
            _ => 4,
        }
    }
}

/// Escapes a server's (or device's) message for a terminal: control characters
/// escaped, at most 300 characters kept.
pub(crate) fn escape_message(text: &str) -> String {
    const LIMIT: usize = 300;
    let mut out = String::new();
    for (n, c) in text.trim().chars().enumerate() {
        if n == LIMIT {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_message_escapes_control_characters_and_shortens() {
        assert_eq!(
            escape_message("bad\u{1b}[31m\nname"),
            "bad\\u{1b}[31m\\nname"
        );
        assert_eq!(escape_message(&"x".repeat(400)).chars().count(), 301);
    }
}
