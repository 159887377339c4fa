//! HTTP update servers on loopback, written from the libraries' sources, sharing no code
//! with thinger-patch:
//!
//! - `ESP8266HTTPUpdateServer` (esp8266/Arduino `ESP8266HTTPUpdateServer-impl.h`):
//!   `GET /update` serves the upload form; `POST /update` reads a `multipart/form-data`
//!   upload (field `filesystem` = file system, anything else = firmware), checks Basic
//!   credentials when set (401 otherwise), runs the Updater (`ERROR[n]: ...` messages, magic
//!   byte `0xE9` or gzip checked at the end) and answers **200 either way**: the body says
//!   `Update Success! Rebooting...` or `Update error: <Updater error>`.
//! - arduino-esp32 `HTTPUpdateServer.h` (newest): as above plus the CSRF check at the start
//!   of the upload: `Origin` must equal `http://` + `Host`, else the upload is ignored and
//!   the answer is `200 Update error: Wrong origin received!` (no credentials configured) or
//!   401 (credentials configured); ESP32 Updater messages (`Not Enough Space`, `Wrong Magic
//!   Byte`, ...).
//! - ElegantOTA 3 (ayushsharma82/ElegantOTA `src/ElegantOTA.cpp`, synchronous web server):
//!   `GET /update` serves a gzip-compressed page; `GET /ota/start?mode=fr|fs&hash=<md5>`
//!   sets the MD5 (400 `MD5 parameter invalid` unless 32 characters) and begins the update
//!   (200 `OK` or 400 with the error); `POST /ota/upload` writes the multipart upload and
//!   answers 200 `OK` or 400 with the Updater's error (MD5 mismatch included).
//!
//! One connection at a time, every read bounded; the thread stops when the server is dropped.
#![allow(dead_code)]

use flate2::Compression;
use flate2::write::GzEncoder;
use md5::{Digest as _, Md5};
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// ESP8266HTTPUpdateServer (no Origin check).
    UpdateServer8266,
    /// The newest arduino-esp32 HTTPUpdateServer (Origin check).
    UpdateServer32,
    /// ElegantOTA 3 on an ESP8266 (ESP8266 Updater messages).
    ElegantOta8266,
    /// ElegantOTA 3 on an ESP32 (ESP32 Updater messages).
    ElegantOta32,
}

impl Kind {
    fn esp8266(self) -> bool {
        matches!(self, Kind::UpdateServer8266 | Kind::ElegantOta8266)
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub kind: Kind,
    pub credentials: Option<(String, String)>,
    /// Free space for the update.
    pub space: usize,
    /// The `Host` the device sees, when a proxy rewrote it.
    pub seen_host: Option<String>,
}

impl Config {
    pub fn new(kind: Kind) -> Self {
        Config {
            kind,
            credentials: None,
            space: 4 << 20,
            seen_host: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body_len: usize,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, Default)]
pub struct Record {
    pub requests: Vec<Request>,
    /// Multipart field name and file name of the last upload.
    pub field: Option<String>,
    pub filename: Option<String>,
    /// What the Updater wrote.
    pub flashed: Vec<u8>,
    /// ElegantOTA: the MD5 and mode given to `/ota/start`.
    pub md5: Option<String>,
    pub mode: Option<String>,
    /// Result of the last upload: `Ok` for success, `Err(message)` otherwise.
    pub result: Option<Result<(), String>>,
    /// Responses sent: (status, body).
    pub responses: Vec<(u16, String)>,
}

pub struct Server {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    record: Arc<Mutex<Record>>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    pub fn start(config: Config) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let record = Arc::new(Mutex::new(Record::default()));
        let (s, r) = (stop.clone(), record.clone());
        let thread = std::thread::spawn(move || {
            let mut dev = Dev {
                cfg: config,
                rec: r,
                updater: None,
            };
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => dev.serve(stream),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Server {
            addr,
            stop,
            record,
            thread: Some(thread),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn record(&self) -> Record {
        self.record.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The Updater: `begin`, `write`, `end`, errors in each core's words.
struct Updater {
    esp8266: bool,
    firmware: bool,
    size: usize,
    data: Vec<u8>,
    md5: Option<String>,
    error: Option<String>,
}

impl Updater {
    fn begin(esp8266: bool, firmware: bool, size: usize) -> Updater {
        Updater {
            esp8266,
            firmware,
            size,
            data: Vec::new(),
            md5: None,
            error: None,
        }
    }

    fn err(&self, code: u8, text8266: &str, text32: &str) -> String {
        if self.esp8266 {
            format!("ERROR[{code}]: {text8266}\n")
        } else {
            format!("{text32}\r\n")
        }
    }

    fn write(&mut self, data: &[u8]) {
        if self.error.is_some() {
            return;
        }
        if self.data.len() + data.len() > self.size {
            self.error = Some(self.err(4, "Not Enough Space", "Not Enough Space"));
            return;
        }
        if !self.esp8266 && self.firmware && self.data.is_empty() && data.first() != Some(&0xE9) {
            self.error = Some(self.err(10, "", "Wrong Magic Byte"));
            return;
        }
        self.data.extend_from_slice(data);
    }

    /// `end(true)`: true on success.
    fn end(&mut self) -> bool {
        if self.error.is_some() {
            return false;
        }
        if self.data.is_empty() {
            self.error = Some(self.err(13, "No data supplied", "Bad Size Given"));
            return false;
        }
        let calculated = hex(&Md5::digest(&self.data));
        if let Some(expected) = &self.md5
            && !expected.eq_ignore_ascii_case(&calculated)
        {
            let e =
                format!("MD5 verification failed: expected: {expected}, calculated: {calculated}");
            self.error = Some(self.err(7, &e, "MD5 Check Failed"));
            return false;
        }
        if self.esp8266
            && self.firmware
            && self.data.first() != Some(&0xE9)
            && !self.data.starts_with(&[0x1F, 0x8B])
        {
            self.error = Some(self.err(10, "Magic byte is not 0xE9", ""));
            return false;
        }
        true
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

const FORM: &str = "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'></head><body>\
<form method='POST' action='' enctype='multipart/form-data'>Firmware:<br>\
<input type='file' accept='.bin,.bin.gz' name='firmware'><input type='submit' value='Update Firmware'></form>\
<form method='POST' action='' enctype='multipart/form-data'>FileSystem:<br>\
<input type='file' accept='.bin,.bin.gz' name='filesystem'><input type='submit' value='Update FileSystem'></form>\
</body></html>";
const SUCCESS: &str =
    "<META http-equiv=\"refresh\" content=\"15;URL=/\">Update Success! Rebooting...";

struct Dev {
    cfg: Config,
    rec: Arc<Mutex<Record>>,
    /// ElegantOTA: the update begun by /ota/start.
    updater: Option<Updater>,
}

struct Incoming {
    req: Request,
    body: Vec<u8>,
}

fn read_request(s: &mut TcpStream) -> Option<Incoming> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut data = Vec::new();
    let mut buf = [0u8; 16384];
    let end = Instant::now() + Duration::from_secs(20);
    let head_end = loop {
        if let Some(i) = find(&data, b"\r\n\r\n") {
            break i;
        }
        if data.len() > 65536 || Instant::now() > end {
            return None;
        }
        let n = s.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let len = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0)
        .min(64 << 20);
    let mut body = data.split_off(head_end + 4);
    while body.len() < len && Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    body.truncate(len);
    Some(Incoming {
        req: Request {
            method,
            target,
            headers,
            body_len: len,
        },
        body,
    })
}

/// The first file part of a multipart body: (field name, file name, data).
fn multipart(content_type: &str, body: &[u8]) -> Option<(String, String, Vec<u8>)> {
    let boundary = content_type
        .split(';')
        .map(str::trim)
        .find_map(|p| p.strip_prefix("boundary="))?
        .trim_matches('"');
    let delim = format!("--{boundary}");
    let start = find(body, delim.as_bytes())? + delim.len() + 2;
    let head_end = start + find(&body[start..], b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&body[start..head_end]).into_owned();
    let data_start = head_end + 4;
    let end_delim = format!("\r\n--{boundary}");
    let data_end = data_start + find(&body[data_start..], end_delim.as_bytes())?;
    let disp = head
        .split("\r\n")
        .find(|l| l.to_ascii_lowercase().starts_with("content-disposition"))?;
    let param = |name: &str| {
        disp.split(';')
            .map(str::trim)
            .find_map(|p| p.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim_matches('"').to_string())
    };
    Some((
        param("name")?,
        param("filename").unwrap_or_default(),
        body[data_start..data_end].to_vec(),
    ))
}

fn query(target: &str, name: &str) -> Option<String> {
    target.split_once('?')?.1.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == name).then(|| v.to_string())
    })
}

fn b64decode(s: &str) -> Option<Vec<u8>> {
    let val = |c: u8| -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    };
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

impl Dev {
    fn respond(&self, s: &mut TcpStream, status: u16, extra: &[(&str, &str)], body: &[u8]) {
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            401 => "Unauthorized",
            _ => "Not Found",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (n, v) in extra {
            head.push_str(&format!("{n}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let _ = s.write_all(head.as_bytes());
        let _ = s.write_all(body);
        let _ = s.flush();
        self.rec
            .lock()
            .unwrap()
            .responses
            .push((status, String::from_utf8_lossy(body).into_owned()));
    }

    fn text(&self, s: &mut TcpStream, status: u16, body: &str) {
        self.respond(
            s,
            status,
            &[("Content-Type", "text/plain")],
            body.as_bytes(),
        );
    }

    fn html(&self, s: &mut TcpStream, status: u16, body: &str) {
        self.respond(s, status, &[("Content-Type", "text/html")], body.as_bytes());
    }

    fn request_authentication(&self, s: &mut TcpStream) {
        self.respond(
            s,
            401,
            &[("WWW-Authenticate", "Basic realm=\"Login Required\"")],
            b"",
        );
    }

    /// `server.authenticate(user, pass)` with the Basic scheme.
    fn authenticated(&self, req: &Request) -> bool {
        let Some((user, pass)) = &self.cfg.credentials else {
            return true;
        };
        let Some(auth) = req.header("Authorization") else {
            return false;
        };
        let Some(b64) = auth.strip_prefix("Basic ") else {
            return false;
        };
        b64decode(b64).is_some_and(|d| d == format!("{user}:{pass}").as_bytes())
    }

    fn serve(&mut self, mut s: TcpStream) {
        let _ = s.set_nonblocking(false);
        let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
        let Some(inc) = read_request(&mut s) else {
            return;
        };
        self.rec.lock().unwrap().requests.push(inc.req.clone());
        let path = inc.req.target.split('?').next().unwrap_or("").to_string();
        match (self.cfg.kind, inc.req.method.as_str(), path.as_str()) {
            (Kind::UpdateServer8266 | Kind::UpdateServer32, "GET", "/update") => {
                if !self.authenticated(&inc.req) {
                    return self.request_authentication(&mut s);
                }
                self.html(&mut s, 200, FORM);
            }
            (Kind::UpdateServer8266 | Kind::UpdateServer32, "POST", "/update") => {
                self.update_server_post(&mut s, &inc)
            }
            (Kind::ElegantOta8266 | Kind::ElegantOta32, "GET", "/update") => {
                if !self.authenticated(&inc.req) {
                    return self.request_authentication(&mut s);
                }
                let mut gz = GzEncoder::new(Vec::new(), Compression::default());
                gz.write_all(b"<!DOCTYPE html><html><body>ElegantOTA</body></html>")
                    .unwrap();
                let page = gz.finish().unwrap();
                self.respond(
                    &mut s,
                    200,
                    &[("Content-Type", "text/html"), ("Content-Encoding", "gzip")],
                    &page,
                );
            }
            (Kind::ElegantOta8266 | Kind::ElegantOta32, "GET", "/ota/start") => {
                if !self.authenticated(&inc.req) {
                    return self.request_authentication(&mut s);
                }
                let mode = query(&inc.req.target, "mode");
                let firmware = mode.as_deref() != Some("fs");
                let mut up = Updater::begin(self.cfg.kind.esp8266(), firmware, self.cfg.space);
                if let Some(hash) = query(&inc.req.target, "hash") {
                    if hash.len() != 32 {
                        return self.text(&mut s, 400, "MD5 parameter invalid");
                    }
                    up.md5 = Some(hash.clone());
                    self.rec.lock().unwrap().md5 = Some(hash);
                }
                self.rec.lock().unwrap().mode = mode;
                self.updater = Some(up);
                self.text(&mut s, 200, "OK");
            }
            (Kind::ElegantOta8266 | Kind::ElegantOta32, "POST", "/ota/upload") => {
                if !self.authenticated(&inc.req) {
                    return self.request_authentication(&mut s);
                }
                let ct = inc.req.header("Content-Type").unwrap_or("").to_string();
                let part = multipart(&ct, &inc.body);
                let ok = match (self.updater.as_mut(), part) {
                    (Some(up), Some((field, filename, data))) => {
                        up.write(&data);
                        let ok = up.end();
                        let mut r = self.rec.lock().unwrap();
                        r.field = Some(field);
                        r.filename = Some(filename);
                        r.flashed = up.data.clone();
                        ok
                    }
                    _ => false,
                };
                let err = self
                    .updater
                    .take()
                    .and_then(|u| u.error)
                    .unwrap_or_else(|| "No Error\n".into());
                if ok {
                    self.rec.lock().unwrap().result = Some(Ok(()));
                    self.text(&mut s, 200, "OK");
                } else {
                    let msg = format!("{err}\n");
                    self.rec.lock().unwrap().result = Some(Err(err.trim().to_string()));
                    self.text(&mut s, 400, &msg);
                }
            }
            _ => self.text(&mut s, 404, &format!("Not found: {path}")),
        }
    }

    fn update_server_post(&mut self, s: &mut TcpStream, inc: &Incoming) {
        let ct = inc.req.header("Content-Type").unwrap_or("").to_string();
        let part = multipart(&ct, &inc.body);
        // UPLOAD_FILE_START
        let mut authenticated = self.authenticated(&inc.req);
        if authenticated && self.cfg.kind == Kind::UpdateServer32 {
            let host = self
                .cfg
                .seen_host
                .clone()
                .or_else(|| inc.req.header("Host").map(str::to_string))
                .unwrap_or_default();
            if inc.req.header("Origin").unwrap_or("") != format!("http://{host}") {
                authenticated = false;
            }
        }
        let mut updater_error = None;
        if authenticated && let Some((field, filename, data)) = part {
            let firmware = field != "filesystem";
            let mut up = Updater::begin(self.cfg.kind.esp8266(), firmware, self.cfg.space);
            up.write(&data);
            up.end();
            updater_error = up.error.clone();
            let mut r = self.rec.lock().unwrap();
            r.field = Some(field);
            r.filename = Some(filename);
            r.flashed = up.data;
        }
        // The POST handler, once the upload is done.
        if !authenticated {
            if self.cfg.kind == Kind::UpdateServer32 && self.cfg.credentials.is_none() {
                self.rec.lock().unwrap().result = Some(Err("Wrong origin received!".into()));
                return self.html(s, 200, "Update error: Wrong origin received!");
            }
            self.rec.lock().unwrap().result = Some(Err("unauthenticated".into()));
            return self.request_authentication(s);
        }
        match updater_error {
            Some(e) => {
                self.rec.lock().unwrap().result = Some(Err(e.trim().to_string()));
                self.html(s, 200, &format!("Update error: {e}"));
            }
            None => {
                self.rec.lock().unwrap().result = Some(Ok(()));
                self.html(s, 200, SUCCESS);
            }
        }
    }
}
