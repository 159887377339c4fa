//! Uploads to the HTTP update servers of the Arduino cores: ESP8266/ESP32
//! `HTTPUpdateServer` (`POST /update`, multipart, verdict in the body of a 200,
//! `Origin` checked by the newest ESP32 one) and ElegantOTA 3 (`GET /ota/start`
//! with the MD5, then `POST /ota/upload`). A small HTTP/1.1 client on std
//! sockets: one request per connection, every wait bounded.

use crate::error::Error;
use crate::progress::Progress;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};
use thinger_patch_core::ota::{
    self as proto, HttpOutcome, HttpServerKind, HttpUrl, Multipart, Target,
};
use thinger_patch_core::values::Value;

/// One upload to an HTTP update server.
pub struct Upload<'a> {
    /// The update page's URL.
    pub url: HttpUrl,
    /// `None`: find out from the update page.
    pub kind: Option<HttpServerKind>,
    /// Basic authentication's user.
    pub user: Option<&'a str>,
    /// Basic authentication's password (never printed).
    pub password: Option<&'a Value>,
    /// Firmware or file system.
    pub target: Target,
    /// The bytes to send.
    pub data: &'a [u8],
    /// The file name in the multipart body.
    pub file_name: &'a str,
    /// Connecting, each write, and each read before the upload's answer.
    pub timeout: Duration,
    /// The answer after the last byte (the device writes and checks the image first).
    pub result_timeout: Duration,
}

struct Response {
    status: u16,
    content_encoding: Option<String>,
    body: Vec<u8>,
}

fn device_error(message: impl Into<String>) -> Error {
    Error::device(message)
}

/// Sends the upload; returns the server kind used.
pub fn send(u: &Upload, progress: &mut dyn Progress) -> Result<HttpServerKind, Error> {
    let kind = match u.kind {
        Some(k) => k,
        None => detect(u)?,
    };
    let md5 = proto::md5_hex(u.data);
    match kind {
        HttpServerKind::UpdateServer => {
            let r = request(u, "POST", &u.url.path, Some(u.data), progress)?;
            match proto::update_server_outcome(r.status, &r.body) {
                HttpOutcome::Success => Ok(kind),
                outcome => Err(failure(u, &u.url, kind, outcome)),
            }
        }
        HttpServerKind::ElegantOta => {
            let base = proto::elegant_base(&u.url.path);
            let start = u
                .url
                .with_path(&proto::elegant_start_path(&base, u.target, &md5));
            let r = request(u, "GET", &start.path, None, progress)?;
            if r.status == 404 {
                return Err(device_error(format!(
                    "{start} answered 404: no ElegantOTA 3 there (ElegantOTA 2 and older take a plain POST to /update: use --http-server update-server)"
                )));
            }
            match proto::elegant_outcome(r.status, &r.body) {
                HttpOutcome::Success => {}
                outcome => return Err(failure(u, &start, kind, outcome)),
            }
            let upload = u.url.with_path(&proto::elegant_upload_path(&base));
            let r = request(u, "POST", &upload.path, Some(u.data), progress)?;
            match proto::elegant_outcome(r.status, &r.body) {
                HttpOutcome::Success => Ok(kind),
                outcome => Err(failure(u, &upload, kind, outcome)),
            }
        }
    }
}

/// `GET` of the update page tells HTTPUpdateServer from ElegantOTA.
fn detect(u: &Upload) -> Result<HttpServerKind, Error> {
    let r = request(u, "GET", &u.url.path, None, &mut crate::progress::Silent)?;
    match r.status {
        200 => proto::detect_server(r.content_encoding.as_deref(), &r.body).ok_or_else(|| {
            device_error(format!(
                "{} serves a page that is neither HTTPUpdateServer's form nor ElegantOTA: check the URL, or name the server with --http-server update-server|elegant-ota",
                u.url
            ))
        }),
        401 => Err(failure(u, &u.url, HttpServerKind::UpdateServer, HttpOutcome::Unauthorized)),
        404 => Err(device_error(format!(
            "{} answered 404: no update page there; check the URL's path (HTTPUpdateServer and ElegantOTA serve /update)",
            u.url
        ))),
        s => Err(device_error(format!(
            "{} answered HTTP {s} to GET; name the server with --http-server update-server|elegant-ota",
            u.url
        ))),
    }
}

fn failure(u: &Upload, url: &HttpUrl, kind: HttpServerKind, outcome: HttpOutcome) -> Error {
    match outcome {
        HttpOutcome::Success => unreachable!("not a failure"),
        HttpOutcome::Unauthorized if u.user.is_none() => device_error(format!(
            "{url} asks for credentials (HTTP 401): pass --user U with --password-env VAR or --password-prompt"
        )),
        HttpOutcome::Unauthorized => device_error(format!(
            "{url} refused the credentials (HTTP 401): check --user and the password{}",
            if kind == HttpServerKind::UpdateServer {
                " (an ESP32 HTTPUpdateServer with credentials also answers 401 when the Origin header does not match the Host it receives, e.g. behind a proxy that rewrites Host)"
            } else {
                ""
            }
        )),
        HttpOutcome::WrongOrigin => device_error(format!(
            "{url} refused the upload with \"Wrong origin received!\": the ESP32 HTTPUpdateServer requires the header Origin: http://<the Host it receives>, and thinger-patch sent Origin: {}; a proxy or port forwarding that rewrites Host breaks this check: reach the device directly",
            u.url.origin()
        )),
        HttpOutcome::Refused(msg) => device_error(format!("{url} refused the image: {msg}")),
        HttpOutcome::Unexpected(status, text) => device_error(format!(
            "{url} answered HTTP {status}{}{}",
            if text.is_empty() { "" } else { ": " },
            text
        )),
    }
}

fn connect(u: &Upload) -> Result<TcpStream, Error> {
    let host = u.url.host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<_> = (host, u.url.port)
        .to_socket_addrs()
        .map_err(|e| device_error(format!("cannot resolve {}: {e}", u.url.host)))?
        .collect();
    let mut last = None;
    for a in &addrs {
        match TcpStream::connect_timeout(a, u.timeout) {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(device_error(format!(
        "cannot connect to {}:{}{}",
        u.url.host,
        u.url.port,
        last.map_or(String::new(), |e| format!(": {e}"))
    )))
}

/// One request on its own connection; `body` is sent as a multipart upload.
fn request(
    u: &Upload,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    progress: &mut dyn Progress,
) -> Result<Response, Error> {
    let mut stream = connect(u)?;
    let setup = |e: std::io::Error| device_error(format!("cannot configure the connection: {e}"));
    stream.set_write_timeout(Some(u.timeout)).map_err(setup)?;
    stream.set_read_timeout(Some(u.timeout)).map_err(setup)?;
    let _ = stream.set_nodelay(true);
    let multipart = body.map(|data| Multipart::new(u.target.form_field(), u.file_name, data));
    let content = match (&multipart, body) {
        (Some(m), Some(data)) => Some((m.content_type(), m.len(data.len()))),
        _ => None,
    };
    let head = proto::request_head(
        method,
        path,
        &u.url,
        u.user.zip(u.password.map(|p| p.expose())),
        content.as_ref().map(|(t, n)| (t.as_str(), *n)),
        concat!("thinger-patch/", env!("CARGO_PKG_VERSION")),
    );
    let url = u.url.with_path(path);
    let mut written = 0usize;
    let total = body.map_or(0, <[u8]>::len);
    let sent = (|| -> std::io::Result<()> {
        stream.write_all(head.as_bytes())?;
        if let (Some(m), Some(data)) = (&multipart, body) {
            progress.start(u.target.what(), total as u64);
            stream.write_all(&m.head)?;
            for piece in data.chunks(8 * 1024) {
                stream.write_all(piece)?;
                written += piece.len();
                progress.advance(written as u64);
            }
            stream.write_all(&m.tail)?;
            progress.finish(false);
        }
        stream.flush()
    })();
    if let Err(e) = sent {
        // The server may have answered before reading everything (e.g. 401): read it.
        if let Ok(r) = read_response(&mut stream, Duration::from_secs(1)) {
            return Ok(r);
        }
        return Err(device_error(
            if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock {
                format!(
                    "{url} stopped reading after {written} of {total} bytes: no progress within {} s",
                    u.timeout.as_secs_f64()
                )
            } else {
                format!(
                    "the connection to {url} dropped after {written} of {total} bytes ({e}): the device may have rebooted or lost its network; try again"
                )
            },
        ));
    }
    let wait = if body.is_some() {
        u.result_timeout
    } else {
        u.timeout
    };
    read_response(&mut stream, wait).map_err(|e| {
        device_error(match e {
            ReadError::Timeout => format!(
                "{url} gave no answer within {} s{}",
                wait.as_secs_f64(),
                if body.is_some() {
                    " after the upload"
                } else {
                    ""
                }
            ),
            ReadError::Closed => format!("{url} closed the connection without an HTTP answer"),
            ReadError::Malformed(why) => format!("{url} sent a malformed HTTP answer: {why}"),
            ReadError::Io(e) => format!("reading the answer of {url} failed: {e}"),
        })
    })
}

enum ReadError {
    Timeout,
    Closed,
    Malformed(&'static str),
    Io(std::io::Error),
}

/// Reads one answer within `wait`: the bytes come from the socket, their meaning from
/// [`proto::parse_response_head`] and [`proto::dechunk`].
fn read_response(stream: &mut TcpStream, wait: Duration) -> Result<Response, ReadError> {
    let deadline = Instant::now() + wait;
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let mut read_more = |stream: &mut TcpStream, data: &mut Vec<u8>| -> Result<usize, ReadError> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ReadError::Timeout);
            }
            stream.set_read_timeout(Some(left)).map_err(ReadError::Io)?;
            match stream.read(&mut buf) {
                Ok(n) => {
                    data.extend_from_slice(&buf[..n]);
                    return Ok(n);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(ReadError::Timeout);
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    };
    let head = loop {
        if let Some(h) = proto::parse_response_head(&data).map_err(ReadError::Malformed)? {
            break h;
        }
        if read_more(stream, &mut data)? == 0 {
            return Err(ReadError::Closed);
        }
    };
    let mut body = data.split_off(head.body_start);
    if head.chunked {
        loop {
            if let Some(decoded) = proto::dechunk(&body) {
                body = decoded;
                break;
            }
            if body.len() > proto::MAX_BODY {
                body.truncate(proto::MAX_BODY);
                break;
            }
            match read_more(stream, &mut body) {
                Ok(0) | Err(ReadError::Timeout) => break,
                Ok(_) => {}
                Err(e) => return Err(e),
            }
        }
    } else {
        let want = head
            .content_length
            .unwrap_or(proto::MAX_BODY)
            .min(proto::MAX_BODY);
        while body.len() < want {
            match read_more(stream, &mut body) {
                Ok(0) => break,
                Ok(_) => {}
                // Without a length the body ends with the connection; the status decides.
                Err(ReadError::Timeout) if head.content_length.is_none() => break,
                Err(e) => return Err(e),
            }
        }
        body.truncate(want);
    }
    Ok(Response {
        status: head.status,
        content_encoding: head.content_encoding,
        body,
    })
}
