//! The HTTP update servers of the Arduino cores (HTTPUpdateServer, ElegantOTA): URLs,
//! multipart bodies, Basic authorization, the verdict in an answer, and reading an
//! HTTP/1.1 answer from bytes.

use super::Target;
use super::arduino::{md5_hex, printable};
use serde::Serialize;
use std::fmt::Write as _;

/// An `http://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses an `http://` URL. Credentials in the URL are refused (they would show in
    /// process lists); `https://` is refused (the devices' update servers speak plain HTTP).
    pub fn parse(url: &str) -> Result<HttpUrl, String> {
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(format!(
                    "{scheme}:// is not supported: the ESP8266/ESP32 update servers speak plain http://"
                ));
            }
            None => url,
        };
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        if authority.contains('@') {
            return Err("the URL holds credentials: give the user with --user and the password with --password-env or --password-prompt".into());
        }
        // `host`, `host:port`, `[v6]` or `[v6]:port` (the brackets stay in `host`).
        let port_of = |p: &str| {
            p.parse::<u16>()
                .ok()
                .filter(|&p| p != 0)
                .ok_or_else(|| format!("invalid port {p:?} in the URL"))
        };
        let (host, port) = if authority.starts_with('[') {
            let close = authority.find(']').ok_or("unclosed [ in the URL's host")?;
            let (h, after) = authority.split_at(close + 1);
            match after.strip_prefix(':') {
                Some(p) => (h, port_of(p)?),
                None if after.is_empty() => (h, 80),
                None => return Err(format!("invalid host {authority:?} in the URL")),
            }
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, port_of(p)?),
                None => (authority, 80),
            }
        };
        if host.is_empty() {
            return Err("the URL names no host".into());
        }
        Ok(HttpUrl {
            host: host.to_string(),
            port,
            path,
        })
    }

    /// The `Host` header: `host`, or `host:port` for a port other than 80.
    pub fn host_header(&self) -> String {
        if self.port == 80 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `Origin` the newest ESP32 `HTTPUpdateServer` requires: `http://` + `Host`.
    pub fn origin(&self) -> String {
        format!("http://{}", self.host_header())
    }

    /// The same server with another path.
    pub fn with_path(&self, path: &str) -> HttpUrl {
        HttpUrl {
            path: path.to_string(),
            ..self.clone()
        }
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.host_header(), self.path)
    }
}

/// Standard base64 (RFC 4648, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// `Authorization: Basic ...` value. Both web servers' `authenticate()` accept Basic as
/// well as Digest, so it is sent with the first request.
pub fn basic_authorization(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// A `multipart/form-data` body with one file field: `head`, the file's bytes, `tail`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Multipart {
    /// The boundary string.
    pub boundary: String,
    /// What goes before the file's bytes.
    pub head: Vec<u8>,
    /// What goes after them.
    pub tail: Vec<u8>,
}

impl Multipart {
    /// A body for `data` in field `field` named `file_name`; the boundary does not occur
    /// in `data`.
    pub fn new(field: &str, file_name: &str, data: &[u8]) -> Multipart {
        let seed = md5_hex(data);
        let boundary = (0u32..)
            .map(|i| format!("----thinger-patch-{}{i}", &seed[..16]))
            .find(|b| !contains(data, b.as_bytes()))
            .expect("some boundary is absent from the data");
        let field = quoted(field);
        let file_name = quoted(file_name);
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        )
        .into_bytes();
        let tail = format!("\r\n--{boundary}--\r\n").into_bytes();
        Multipart {
            boundary,
            head,
            tail,
        }
    }

    /// The request's `Content-Type`.
    pub fn content_type(&self) -> String {
        format!("multipart/form-data; boundary={}", self.boundary)
    }

    /// The body's length for `data_len` bytes of file data.
    pub fn len(&self, data_len: usize) -> usize {
        self.head.len() + data_len + self.tail.len()
    }

    /// The whole body (the CLI streams the three parts instead).
    pub fn body(&self, data: &[u8]) -> Vec<u8> {
        [&self.head[..], data, &self.tail[..]].concat()
    }
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A quoted-string value without quotes, backslashes or line breaks.
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect()
}

/// Which HTTP update server a device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HttpServerKind {
    /// ESP8266HTTPUpdateServer / arduino-esp32 HTTPUpdateServer: `POST /update`.
    UpdateServer,
    /// ElegantOTA 3: `GET /ota/start`, then `POST /ota/upload`.
    ElegantOta,
}

/// Tells the two servers apart by their update page (`GET /update`): ElegantOTA serves a
/// gzip-compressed single-page app, HTTPUpdateServer a plain form posting
/// `multipart/form-data` with a `firmware` field.
pub fn detect_server(content_encoding: Option<&str>, body: &[u8]) -> Option<HttpServerKind> {
    let gz = content_encoding.is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip"))
        || body.starts_with(&[0x1F, 0x8B]);
    if gz || contains(body, b"ElegantOTA") {
        return Some(HttpServerKind::ElegantOta);
    }
    if contains(body, b"multipart/form-data") && contains(body, b"firmware") {
        return Some(HttpServerKind::UpdateServer);
    }
    None
}

/// The result of an upload request, from status and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpOutcome {
    /// The device accepted the image.
    Success,
    /// The Updater refused the image: its message.
    Refused(String),
    /// HTTP 401: credentials missing or wrong.
    Unauthorized,
    /// The newest ESP32 HTTPUpdateServer's CSRF check: `Origin` is not `http://` + `Host`.
    WrongOrigin,
    /// Anything else: status and a printable excerpt of the body.
    Unexpected(u16, String),
}

/// HTTPUpdateServer answers 200 for success and failure alike: the body decides
/// (`Update Success! Rebooting...` vs `Update error: ...`).
pub fn update_server_outcome(status: u16, body: &[u8]) -> HttpOutcome {
    let text = String::from_utf8_lossy(body);
    if status == 401 {
        return HttpOutcome::Unauthorized;
    }
    if text.contains("Wrong origin received") {
        return HttpOutcome::WrongOrigin;
    }
    if status == 200 && text.contains("Update Success") {
        return HttpOutcome::Success;
    }
    if let Some(i) = text.find("Update error:") {
        let msg = text[i + "Update error:".len()..].trim();
        return HttpOutcome::Refused(if msg.is_empty() {
            "no reason given".into()
        } else {
            one_line(&printable(msg.as_bytes()))
        });
    }
    HttpOutcome::Unexpected(status, one_line(&printable(text.trim().as_bytes())))
}

/// ElegantOTA answers `OK` (200) or the Updater's error text (400).
pub fn elegant_outcome(status: u16, body: &[u8]) -> HttpOutcome {
    let text = printable(body);
    match status {
        401 => HttpOutcome::Unauthorized,
        200 if text.trim() == "OK" => HttpOutcome::Success,
        400 => HttpOutcome::Refused(one_line(text.trim())),
        s => HttpOutcome::Unexpected(s, one_line(text.trim())),
    }
}

/// ElegantOTA's base path: the given path without a trailing `/update` (the page users
/// open), so `http://dev/update` and `http://dev/` name the same server.
pub fn elegant_base(path: &str) -> String {
    let p = path.split(['?', '#']).next().unwrap_or("");
    let p = p.trim_end_matches('/');
    let p = p.strip_suffix("/update").unwrap_or(p);
    p.trim_end_matches('/').to_string()
}

/// `GET <base>/ota/start?mode=fr&hash=<md5>`.
pub fn elegant_start_path(base: &str, target: Target, md5: &str) -> String {
    format!("{base}/ota/start?mode={}&hash={md5}", target.elegant_mode())
}

/// `POST <base>/ota/upload`.
pub fn elegant_upload_path(base: &str) -> String {
    format!("{base}/ota/upload")
}

fn one_line(s: &str) -> String {
    let mut out = String::new();
    for (i, l) in s
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
    {
        if i > 0 {
            out.push(' ');
        }
        let _ = write!(out, "{l}");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// HTTP/1.1 framing: the request head, and reading an answer from the bytes received so far
// ---------------------------------------------------------------------------------------------

/// Longest answer head accepted.
pub const MAX_HEAD: usize = 32 * 1024;
/// Answers longer than this are cut (update pages are tens of KiB).
pub const MAX_BODY: usize = 512 * 1024;

/// The head of a request to an update server: one request per connection, with the `Origin`
/// the newest ESP32 server checks, Basic authorization when a user is given, and the
/// multipart body's type and length when there is one.
pub fn request_head(
    method: &str,
    path: &str,
    url: &HttpUrl,
    basic: Option<(&str, &str)>,
    body: Option<(&str, usize)>,
    agent: &str,
) -> String {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nOrigin: {}\r\nUser-Agent: {agent}\r\nAccept: */*\r\nConnection: close\r\n",
        url.host_header(),
        url.origin(),
    );
    if let Some((user, password)) = basic {
        head.push_str(&format!(
            "Authorization: {}\r\n",
            basic_authorization(user, password)
        ));
    }
    if let Some((content_type, len)) = body {
        head.push_str(&format!(
            "Content-Type: {content_type}\r\nContent-Length: {len}\r\n"
        ));
    }
    head.push_str("\r\n");
    head
}

/// What the head of an answer says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    /// The status code.
    pub status: u16,
    /// `Content-Length`.
    pub content_length: Option<usize>,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    /// `Content-Encoding` (an ESP8266 update page arrives gzip-compressed).
    pub content_encoding: Option<String>,
    /// Where the body starts in the bytes given.
    pub body_start: usize,
}

/// Reads the head of an answer from the bytes received so far: `Ok(None)` until the blank
/// line that ends it has arrived.
pub fn parse_response_head(data: &[u8]) -> Result<Option<ResponseHead>, &'static str> {
    let Some(head_end) = find(data, b"\r\n\r\n") else {
        return if data.len() > MAX_HEAD {
            Err("the header is too long")
        } else {
            Ok(None)
        };
    };
    let head = String::from_utf8_lossy(&data[..head_end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| {
            let mut parts = l.split_whitespace();
            parts.next()?.starts_with("HTTP/").then_some(())?;
            parts.next()?.parse::<u16>().ok()
        })
        .ok_or("no status line")?;
    let mut out = ResponseHead {
        status,
        content_length: None,
        chunked: false,
        content_encoding: None,
        body_start: head_end + 4,
    };
    for l in lines {
        let Some((name, value)) = l.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => out.content_length = value.parse::<usize>().ok(),
            "transfer-encoding" => out.chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-encoding" => out.content_encoding = Some(value.to_string()),
            _ => {}
        }
    }
    Ok(Some(out))
}

/// The decoded body of a chunked answer once its final chunk arrived; `None` before.
pub fn dechunk(data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + find(&data[at..], b"\r\n")?;
        let size_text = String::from_utf8_lossy(&data[at..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            return Some(out);
        }
        if data.len() < at.checked_add(size)?.checked_add(2)? {
            return None;
        }
        out.extend_from_slice(&data[at..at + size]);
        at += size + 2;
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod framing_tests {
    use super::*;

    #[test]
    fn heads_and_chunks() {
        assert_eq!(
            parse_response_head(b"HTTP/1.1 200 OK\r\nContent-Le"),
            Ok(None)
        );
        let h = parse_response_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Encoding: gzip\r\n\r\n5\r\nhello",
        )
        .unwrap()
        .unwrap();
        assert_eq!((h.status, h.chunked), (200, true));
        assert_eq!(h.content_encoding.as_deref(), Some("gzip"));
        assert_eq!(h.body_start, 71);
        assert_eq!(
            parse_response_head(b"garbage\r\n\r\n"),
            Err("no status line")
        );
        assert_eq!(dechunk(b"5\r\nhello\r\n"), None);
        assert_eq!(
            dechunk(b"5\r\nhello\r\n6;x=1\r\n world\r\n0\r\n\r\n").as_deref(),
            Some(&b"hello world"[..])
        );
        assert_eq!(dechunk(b"ffffffffffffffff\r\nx"), None);
    }
}
