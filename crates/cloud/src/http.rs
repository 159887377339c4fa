//! Pure HTTP values: what to send and what came back. No I/O here, so request
//! building and response parsing can run anywhere (a wasm page brings its own
//! [`Transport`]).

use std::fmt;
use std::time::Duration;

use crate::secret::{MASK, Secret};
use crate::settings::ApiBase;

/// HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// Safe to repeat after a 5xx or a timeout (the server may have acted on a POST).
    pub fn is_idempotent(self) -> bool {
        !matches!(self, Method::Post)
    }
}

/// A request body.
#[derive(Clone, PartialEq, Eq)]
pub enum Body {
    /// No body.
    Empty,
    /// `application/json`.
    Json(Vec<u8>),
    /// `application/x-www-form-urlencoded` (holds a password or refresh token).
    Form(Secret),
    /// `application/octet-stream`.
    Bytes(Vec<u8>),
}

impl Body {
    /// A JSON body.
    pub fn json(value: &serde_json::Value) -> Body {
        Body::Json(serde_json::to_vec(value).expect("a Value always serialises"))
    }

    /// The `Content-Type`, if any.
    pub fn content_type(&self) -> Option<&'static str> {
        match self {
            Body::Empty => None,
            Body::Json(_) => Some("application/json"),
            Body::Form(_) => Some("application/x-www-form-urlencoded"),
            Body::Bytes(_) => Some("application/octet-stream"),
        }
    }

    /// The bytes to send.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Body::Empty => &[],
            Body::Json(b) | Body::Bytes(b) => b,
            Body::Form(s) => s.expose().as_bytes(),
        }
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            // JSON bodies may carry device credentials.
            Body::Json(b) => write!(f, "Json({} bytes)", b.len()),
            Body::Form(_) => write!(f, "Form({MASK})"),
            Body::Bytes(b) => write!(f, "Bytes({} bytes)", b.len()),
        }
    }
}

/// One API call: method, path (with query), headers, body, and what it is for
/// (the permission it needs and a description, for error messages).
#[derive(Clone)]
pub struct Request {
    /// Method.
    pub method: Method,
    /// Path below the API base, starting with `/`, percent-encoded.
    pub path: String,
    /// Extra headers (`Authorization` is added by the client).
    pub headers: Vec<(String, Secret)>,
    /// Body.
    pub body: Body,
    /// The Thinger.io permission (the API description's operation name), e.g. `CreateDevice`.
    pub permission: &'static str,
    /// What the call does, for messages: "create device kitchen".
    pub action: String,
    /// What a 404 or 409 is about: "device kitchen".
    pub subject: String,
    /// A bound on the wait for this call, if different from the client's.
    pub timeout: Option<Duration>,
    /// Secrets in the body, masked out of any server message.
    pub secrets: Vec<Secret>,
    /// Authenticated with the bearer token (false only for `/oauth/token`).
    pub authenticated: bool,
}

impl Request {
    /// A request with no body.
    pub fn new(
        method: Method,
        path: String,
        permission: &'static str,
        action: String,
        subject: String,
    ) -> Request {
        Request {
            method,
            path,
            headers: Vec::new(),
            body: Body::Empty,
            permission,
            action,
            subject,
            timeout: None,
            secrets: Vec::new(),
            authenticated: true,
        }
    }

    /// Sets the body.
    pub fn with_body(mut self, body: Body) -> Request {
        self.body = body;
        self
    }

    /// Sets a bound on the wait.
    pub fn with_timeout(mut self, timeout: Duration) -> Request {
        self.timeout = Some(timeout);
        self
    }

    /// Remembers a secret the body carries, to mask it out of server messages.
    pub fn with_secret(mut self, secret: &Secret) -> Request {
        self.secrets.push(secret.clone());
        self
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("path", &self.path)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("body", &self.body)
            .field("permission", &self.permission)
            .field("action", &self.action)
            .finish_non_exhaustive()
    }
}

/// A response: status, headers (names lowercased), body. `Debug` shows neither
/// header values nor the body (a login's answer holds tokens).
#[derive(Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>(),
            )
            .field("body", &format_args!("{} bytes", self.body.len()))
            .finish()
    }
}

impl Response {
    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, String> {
        serde_json::from_slice(&self.body).map_err(|e| format!("not JSON ({e})"))
    }

    /// The server's message in an error answer: `{"error":{"message":...}}`,
    /// `{"error":"..."}`, `{"message":...}` or short text.
    pub fn server_message(&self) -> Option<String> {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(&self.body) {
            let m = v
                .pointer("/error/message")
                .or_else(|| v.get("error").filter(|e| e.is_string()))
                .or_else(|| v.get("message"))
                .and_then(|m| m.as_str());
            return m.map(str::to_string);
        }
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    }
}

/// Why a transport could not deliver a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportError {
    /// No answer within the wait.
    Timeout,
    /// TLS failed (certificate, handshake).
    Tls(String),
    /// Could not connect, or the connection broke.
    Connect(String),
}

/// Sends one request to the API base and returns the response whatever its
/// status. It must not follow redirects and must send to `api` only.
pub trait Transport: Send + Sync {
    /// Sends `request` to `api` with at most `timeout` of waiting.
    fn send(
        &self,
        api: &ApiBase,
        request: &Request,
        timeout: Duration,
    ) -> Result<Response, TransportError>;
}

/// Percent-encodes a path segment or form value (RFC 3986 unreserved kept).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `application/x-www-form-urlencoded` from pairs.
pub fn form_encode(pairs: &[(&str, &str)]) -> Secret {
    Secret::new(
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_escapes_reserved_characters() {
        let f = form_encode(&[("grant_type", "password"), ("password", "a&b=c d+é")]);
        assert_eq!(
            f.expose(),
            "grant_type=password&password=a%26b%3Dc%20d%2B%C3%A9"
        );
    }

    #[test]
    fn debug_never_shows_bodies_or_headers() {
        let r = Request::new(
            Method::Post,
            "/oauth/token".into(),
            "Authenticate",
            "log in".into(),
            String::new(),
        )
        .with_body(Body::Form(form_encode(&[("password", "canary-pw")])));
        assert!(!format!("{r:?}").contains("canary"));
    }

    #[test]
    fn response_debug_hides_tokens() {
        let r = Response {
            status: 200,
            headers: vec![("set-cookie".into(), "session=canary".into())],
            body: br#"{"access_token":"canary"}"#.to_vec(),
        };
        assert!(!format!("{r:?}").contains("canary"));
    }

    #[test]
    fn server_message_shapes() {
        let r = |b: &str| Response {
            status: 400,
            headers: vec![],
            body: b.as_bytes().to_vec(),
        };
        assert_eq!(
            r(r#"{"error":{"message":"bad name"}}"#)
                .server_message()
                .unwrap(),
            "bad name"
        );
        assert_eq!(r(r#"{"error":"x"}"#).server_message().unwrap(), "x");
        assert_eq!(r("plain").server_message().unwrap(), "plain");
        assert_eq!(r("").server_message(), None);
    }
}
