//! A simulator of the Thinger.io REST API on loopback, for tests.
//!
//! It is NOT Thinger's server: it was written for thinger-patch's tests from
//! Thinger's public API description and Thinger's own open-source clients:
//! - thinger-io/Docs `.gitbook/assets/swagger.json` (OpenAPI 3.0, "Thinger.io
//!   Server API" 1.0.0; schemas with `additionalProperties: false`, id patterns,
//!   lengths; operation names, used here as permission names) and
//!   `server/api.md` (`/oauth/token`, JWT tokens with `usr`/`exp`, error shape
//!   `{"error":{"message":...}}`);
//! - thinger-io/Arduino-Library v2.40 `src/ThingerOTA.h`, `ThingerESP32OTA.h`,
//!   `ThingerESP8266OTA.h` for the `$ota` device resources of a simulated ESP32
//!   (block 32768, zlib inflated on the device, both MD5s checked) and ESP8266
//!   (block 2048; gzip only when built with `ATOMIC_FS_UPDATE`, stored as sent
//!   and inflated at boot);
//! - thinger-io/vscode-extension `src/thinger-api.ts` and
//!   `src/thinger-ota-instance.ts` (paths, headers, the OTA call order) and
//!   node-red-contrib-thinger 1.9.2 (upsert of devices and properties).
//!
//! What the description leaves open is a choice made here and documented in
//! `docs/thinger.md`: a duplicate is 409, a schema violation 422 naming the
//! field (and echoing its value, so tests can check clients mask it), an
//! offline device 404 on its resources.
//!
//! Tests inject faults ([`Fault`]): any status (401, 403, 422, 429 with
//! `Retry-After`, 500, a redirect) for the next N matching requests, or a delay.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use md5::{Digest, Md5};
use serde_json::{Map, Value, json};

/// Lifetime of an access token from `/oauth/token` (the API docs: 2 hours).
pub const ACCESS_TOKEN_SECS: u64 = 7200;

/// Which chip a simulated device is, with its `ThingerOTA` build options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chip {
    /// `ThingerESP32OTA`: block 32768, `compression: "zlib"`.
    Esp32,
    /// `ThingerESP8266OTA`: block 2048; `compression: "gzip"` only with `ATOMIC_FS_UPDATE`.
    Esp8266 {
        /// Built with `ATOMIC_FS_UPDATE`.
        atomic_fs_update: bool,
    },
}

/// A simulated device running firmware built with `ThingerOTA`.
#[derive(Debug, Clone)]
pub struct SimDevice {
    /// The chip.
    pub chip: Chip,
    /// Connected to the server.
    pub online: bool,
    /// `set_enabled()`.
    pub enabled: bool,
    /// `THINGER_OTA_VERSION` of the running firmware.
    pub version: String,
    /// `set_timeout()` in ms (default 30000).
    pub timeout_ms: u64,
    /// Room for an update (the OTA partition or free sketch space).
    pub capacity: usize,
    /// The image it runs.
    pub running_image: Vec<u8>,
    /// Restarts so far.
    pub boots: u32,
    /// Images verified at `end`, waiting for the reboot.
    pub installed: Option<Vec<u8>>,
    /// What the device logged (THINGER_DEBUG lines, shortened).
    pub log: Vec<String>,
    ota: OtaRun,
}

#[derive(Debug, Clone, Default)]
struct OtaRun {
    running: bool,
    succeed: bool,
    firmware_size: usize,
    offset: usize,
    version: String,
    // ThingerOTA base class
    md5_checksum: String,
    md5_received: Option<Md5>,
    compressed_size: usize,
    md5_compressed_checksum: String,
    md5_compressed: Option<Md5>,
    // Update library (flash writer)
    update_size: usize,
    update_md5: Option<String>,
    written: Vec<u8>,
    inflater: Option<InflateState>,
    last_progress: Option<Instant>,
}

/// miniz's inflater on the ESP32, streaming across write calls.
#[derive(Debug, Clone)]
struct InflateState {
    d: Arc<Mutex<flate2::Decompress>>,
    done: bool,
}

impl InflateState {
    fn new() -> InflateState {
        InflateState {
            d: Arc::new(Mutex::new(flate2::Decompress::new(true))),
            done: false,
        }
    }

    /// Inflates one chunk; an error, or input left after the stream's end, fails
    /// as ThingerESP32OTA::write_ota does.
    fn feed(&mut self, mut input: &[u8]) -> Result<Vec<u8>, String> {
        let mut d = self.d.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = Vec::with_capacity(input.len() * 4);
        while !input.is_empty() && !self.done {
            out.reserve(64 * 1024);
            let before = d.total_in();
            let status = d
                .decompress_vec(input, &mut out, flate2::FlushDecompress::None)
                .map_err(|_| "Error while decompressing!".to_string())?;
            input = &input[(d.total_in() - before) as usize..];
            if status == flate2::Status::StreamEnd {
                self.done = true;
            }
        }
        if input.is_empty() {
            Ok(out)
        } else {
            Err("Error while decompressing!".into())
        }
    }
}

impl SimDevice {
    /// An ESP32 running `image`, version `version`, online and enabled.
    pub fn esp32(image: Vec<u8>, version: &str) -> SimDevice {
        SimDevice::new(Chip::Esp32, image, version, 0x1E_0000)
    }

    /// An ESP8266 running `image`.
    pub fn esp8266(image: Vec<u8>, version: &str, atomic_fs_update: bool) -> SimDevice {
        SimDevice::new(Chip::Esp8266 { atomic_fs_update }, image, version, 0xF_C000)
    }

    fn new(chip: Chip, image: Vec<u8>, version: &str, capacity: usize) -> SimDevice {
        SimDevice {
            chip,
            online: true,
            enabled: true,
            version: version.into(),
            timeout_ms: 30_000,
            capacity,
            running_image: image,
            boots: 0,
            installed: None,
            log: Vec::new(),
            ota: OtaRun::default(),
        }
    }

    fn block_size(&self) -> usize {
        match self.chip {
            Chip::Esp32 => 32768,
            Chip::Esp8266 { .. } => 2048,
        }
    }

    fn reboot(&mut self, why: &str) {
        self.boots += 1;
        self.ota = OtaRun::default();
        if let Some(image) = self.installed.take() {
            let plain = match self.chip {
                Chip::Esp8266 {
                    atomic_fs_update: true,
                } if image.starts_with(&[0x1f, 0x8b]) => {
                    // eboot inflates the stored gzip file into place.
                    let mut out = Vec::new();
                    match flate2::read::GzDecoder::new(&image[..]).read_to_end(&mut out) {
                        Ok(_) => Some(out),
                        Err(_) => None,
                    }
                }
                _ => Some(image),
            };
            match plain {
                Some(p) => {
                    self.running_image = p;
                    self.log.push(format!("reboot ({why}) into the new image"));
                }
                None => self.log.push(format!(
                    "reboot ({why}): eboot could not inflate; old image kept"
                )),
            }
        } else {
            self.log.push(format!("reboot ({why})"));
        }
    }

    /// The device loop's timeout (ThingerOTA.h: no progress for `timeout` ms ends
    /// the update and, unless it succeeded, restarts the device).
    fn check_timeout(&mut self) {
        if !self.ota.running {
            return;
        }
        let stale = self
            .ota
            .last_progress
            .is_some_and(|t| t.elapsed() >= Duration::from_millis(self.timeout_ms));
        if stale {
            self.ota.running = false;
            self.log.push("OTA update timed out".into());
            if !self.ota.succeed {
                self.reboot("OTA failed");
            }
        }
    }

    fn options(&self) -> Value {
        let mut o = json!({
            "enabled": self.enabled,
            "block_size": self.block_size(),
            "timeout": self.timeout_ms,
            "version": self.version,
        });
        match self.chip {
            Chip::Esp32 => {
                o["compression"] = "zlib".into();
                o["platform"] = "espressif32".into();
            }
            Chip::Esp8266 { atomic_fs_update } => {
                o["platform"] = "espressif8266".into();
                if atomic_fs_update {
                    o["compression"] = "gzip".into();
                }
            }
        }
        o["checksum"] = "md5".into();
        o
    }

    fn begin(&mut self, input: &Value) -> Value {
        let empty = input.as_object().is_none_or(|o| o.is_empty());
        if empty || self.ota.running {
            return json!({"success": false});
        }
        let s = |k: &str| {
            input
                .get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("")
                .to_string()
        };
        let n = |k: &str| input.get(k).and_then(|v| v.as_u64()).unwrap_or(0) as usize;
        let mut run = OtaRun {
            firmware_size: n("size"),
            version: s("version"),
            ..OtaRun::default()
        };
        let checksum = s("checksum");
        if checksum.len() == 32 {
            run.md5_checksum = checksum.clone();
            run.md5_received = Some(Md5::new());
        }
        if self.chip == Chip::Esp32 {
            // THINGER_OTA_COMPRESSION is on for the ESP32 only.
            let compression = s("compression");
            if !compression.is_empty() {
                if compression != "zlib" {
                    return json!({"success": false, "error": "Unsupported compression"});
                }
                run.compressed_size = n("compressed_size");
                if run.compressed_size == 0 {
                    return json!({"success": false, "error": "Invalid compressed size"});
                }
                let cc = s("compressed_checksum");
                if cc.len() == 32 {
                    run.md5_compressed_checksum = cc;
                    run.md5_compressed = Some(Md5::new());
                }
            }
        }
        // begin_ota of the chip's class: Update.begin(size) and Update.setMD5().
        let (size, md5) = match self.chip {
            Chip::Esp32 => (run.firmware_size, checksum),
            Chip::Esp8266 {
                atomic_fs_update: true,
            } => (n("compressed_size"), s("compressed_checksum")),
            Chip::Esp8266 {
                atomic_fs_update: false,
            } => (run.firmware_size, checksum),
        };
        if size == 0 {
            return json!({"success": false, "error": "Bad Size Given"});
        }
        if size > self.capacity {
            return json!({"success": false, "error": "Not Enough Space"});
        }
        run.update_size = size;
        run.update_md5 = (md5.len() == 32).then_some(md5);
        if run.compressed_size > 0 {
            run.inflater = Some(InflateState::new());
        }
        run.running = true;
        run.succeed = false;
        run.last_progress = Some(Instant::now());
        self.ota = run;
        self.log.push(format!("OTA begin: size {size}"));
        json!({"success": true})
    }

    fn update_write(&mut self, data: &[u8]) -> Result<(), String> {
        if self.ota.written.is_empty() && !data.is_empty() {
            let ok = data[0] == 0xE9
                || matches!(self.chip, Chip::Esp8266 { atomic_fs_update: true } if data[0] == 0x1f);
            if !ok {
                return Err("Wrong Magic Byte".into());
            }
        }
        if self.ota.written.len() + data.len() > self.ota.update_size {
            return Err("Not Enough Space".into());
        }
        self.ota.written.extend_from_slice(data);
        Ok(())
    }

    fn write(&mut self, body: &[u8], is_bytes: bool) -> Value {
        self.check_timeout();
        if !self.ota.running {
            return json!({"success": false, "error": "no OTA update in progress"});
        }
        if !is_bytes {
            self.ota.running = false;
            return json!({"success": false, "error": "Invalid input type received"});
        }
        let result = if let Some(inf) = self.ota.inflater.as_mut() {
            // ESP32: inflate with miniz and write the plain bytes; its base MD5
            // context gets the plain output, the compressed one the input.
            match inf.feed(body) {
                Err(e) => Err(e),
                Ok(plain) => {
                    let r = self.update_write(&plain);
                    if let (Ok(()), Some(m)) = (&r, self.ota.md5_received.as_mut()) {
                        m.update(&plain);
                    }
                    r
                }
            }
        } else {
            let r = self.update_write(body);
            if let (Ok(()), Some(m)) = (&r, self.ota.md5_received.as_mut()) {
                m.update(body);
            }
            r
        };
        match result {
            Ok(()) => {
                self.ota.offset += body.len();
                if let Some(m) = self.ota.md5_compressed.as_mut() {
                    m.update(body);
                }
                self.ota.last_progress = Some(Instant::now());
                json!({"success": true})
            }
            Err(e) => {
                self.ota.running = false;
                json!({"success": false, "error": e})
            }
        }
    }

    fn remaining(&self) -> usize {
        match self.ota.inflater {
            // ThingerESP32OTA::remaining() is Update.remaining(): plain bytes still due.
            Some(_) => self
                .ota
                .firmware_size
                .saturating_sub(self.ota.written.len()),
            None => self.ota.update_size.saturating_sub(self.ota.written.len()),
        }
    }

    fn end(&mut self) -> Value {
        self.check_timeout();
        if !self.ota.running {
            return json!({"success": false, "error": "No OTA update in progress"});
        }
        if self.remaining() != 0 {
            return json!({"success": false, "error": "Cannot end OTA with missing bytes"});
        }
        let hex = |m: &Option<Md5>| {
            m.clone()
                .map(|m| {
                    m.finalize()
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                })
                .unwrap_or_default()
        };
        // ThingerOTA.h: the compressed checksum when compressing, else the plain one.
        let base_ok = if self.ota.compressed_size > 0 {
            !self.ota.md5_compressed_checksum.is_empty()
                && hex(&self.ota.md5_compressed)
                    .eq_ignore_ascii_case(&self.ota.md5_compressed_checksum)
        } else {
            !self.ota.md5_checksum.is_empty()
                && hex(&self.ota.md5_received).eq_ignore_ascii_case(&self.ota.md5_checksum)
        };
        if !base_ok {
            self.ota.written.clear();
            self.log.push("Invalid MD5 checksum".into());
            return json!({"success": false, "error": "Invalid MD5 checksum"});
        }
        // Update.end(): its own MD5 over what reached flash.
        if let Some(md5) = &self.ota.update_md5 {
            let got: String = Md5::digest(&self.ota.written)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if !got.eq_ignore_ascii_case(md5) {
                return json!({"success": false, "error": "MD5 Check Failed"});
            }
        }
        self.installed = Some(std::mem::take(&mut self.ota.written));
        if !self.ota.version.is_empty() {
            self.log
                .push(format!("installed version {}", self.ota.version));
        }
        self.ota.succeed = true;
        json!({"success": true})
    }
}

/// A token's permissions: every action, or these operation names of the API
/// description (`CreateDevice`, `AccessDeviceResources`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Permissions {
    /// `{"*": {"*": "*"}}`.
    All,
    /// Only these actions.
    Only(Vec<String>),
}

impl Permissions {
    fn allows(&self, action: &str) -> bool {
        match self {
            Permissions::All => true,
            Permissions::Only(list) => list.iter().any(|a| a == action || a == "*"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    user: String,
    allow: Permissions,
    expires_at: Option<u64>,
    refresh: bool,
}

/// A device record.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    /// The create/update body fields (credentials included).
    pub fields: Map<String, Value>,
    /// Properties in creation order.
    pub properties: Vec<(String, Value)>,
    /// The simulated hardware, if any.
    pub sim: Option<SimDevice>,
}

impl DeviceRecord {
    /// The credentials the server holds.
    pub fn credentials(&self) -> Option<&str> {
        self.fields.get("credentials").and_then(|c| c.as_str())
    }
}

#[derive(Debug, Default)]
struct UserData {
    password: String,
    devices: BTreeMap<String, DeviceRecord>,
    dashboards: BTreeMap<String, Value>,
    tokens: BTreeMap<String, Value>,
}

/// One received request, as logged.
#[derive(Debug, Clone)]
pub struct LoggedRequest {
    /// Method.
    pub method: String,
    /// Path with query.
    pub path: String,
    /// Headers (names lowercased).
    pub headers: Vec<(String, String)>,
    /// The body's first 16 KiB (OTA chunks would fill memory in a benchmark).
    pub body: Vec<u8>,
    /// The body's full length.
    pub body_len: usize,
    /// The status answered.
    pub status: u16,
}

/// What a fault does.
#[derive(Debug, Clone)]
pub enum FaultKind {
    /// Answer with this status, body and headers instead of handling the request.
    Respond {
        /// Status.
        status: u16,
        /// Body (JSON text).
        body: String,
        /// Extra headers.
        headers: Vec<(String, String)>,
    },
    /// Wait, then handle the request normally.
    Delay(Duration),
}

/// A fault for the next `times` requests whose path contains `path_contains`
/// (and whose method matches, when given).
#[derive(Debug, Clone)]
pub struct Fault {
    /// Method to match, if any.
    pub method: Option<String>,
    /// Substring of the path.
    pub path_contains: String,
    /// What to do.
    pub kind: FaultKind,
    /// How many requests it applies to.
    pub times: usize,
}

impl Fault {
    /// Answer `status` with `{"error":{"message": message}}`, once.
    pub fn status(path_contains: &str, status: u16, message: &str) -> Fault {
        Fault {
            method: None,
            path_contains: path_contains.into(),
            kind: FaultKind::Respond {
                status,
                body: json!({"error": {"message": message}}).to_string(),
                headers: Vec::new(),
            },
            times: 1,
        }
    }

    /// Delay matching requests, once.
    pub fn delay(path_contains: &str, delay: Duration) -> Fault {
        Fault {
            method: None,
            path_contains: path_contains.into(),
            kind: FaultKind::Delay(delay),
            times: 1,
        }
    }

    /// Applies to `n` requests.
    pub fn times(mut self, n: usize) -> Fault {
        self.times = n;
        self
    }

    /// Only for this method.
    pub fn method(mut self, m: &str) -> Fault {
        self.method = Some(m.into());
        self
    }

    /// Adds a response header (e.g. `Retry-After`, `Location`).
    pub fn header(mut self, name: &str, value: &str) -> Fault {
        if let FaultKind::Respond { headers, .. } = &mut self.kind {
            headers.push((name.into(), value.into()));
        }
        self
    }
}

#[derive(Debug, Default)]
struct State {
    users: BTreeMap<String, UserData>,
    tokens: BTreeMap<String, Token>,
    faults: Vec<Fault>,
    log: Vec<LoggedRequest>,
}

/// The simulator: an HTTP/1.1 server on 127.0.0.1 with keep-alive.
pub struct ThingerCloud {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Drop for ThingerCloud {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200));
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("OS random");
    b
}

/// A JWT-shaped token (the server's are JWTs; clients read `usr` and `exp`).
fn jwt(user: &str, exp: Option<u64>) -> String {
    let header = b64url(br#"{"alg":"HS256","typ":"JWT"}"#);
    let mut payload = json!({"usr": user, "iat": now_secs(), "jti": b64url(&random_bytes(9))});
    if let Some(e) = exp {
        payload["exp"] = e.into();
    }
    format!(
        "{header}.{}.{}",
        b64url(payload.to_string().as_bytes()),
        b64url(&random_bytes(32))
    )
}

impl ThingerCloud {
    /// Starts a simulator on an ephemeral loopback port.
    pub fn start() -> ThingerCloud {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("address");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (st, sp) = (st.clone(), sp.clone());
                thread::spawn(move || serve(conn, st, sp));
            }
        });
        ThingerCloud { addr, state, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a user with a password.
    pub fn add_user(&self, user: &str, password: &str) {
        self.lock().users.entry(user.into()).or_default().password = password.into();
    }

    /// A long-lived access token for `user` (as made in the console).
    pub fn issue_token(&self, user: &str, allow: Permissions) -> String {
        let t = jwt(user, None);
        self.lock().tokens.insert(
            t.clone(),
            Token {
                user: user.into(),
                allow,
                expires_at: None,
                refresh: false,
            },
        );
        t
    }

    /// Makes every access token from `/oauth/token` expired (as after 2 hours).
    pub fn expire_access_tokens(&self) {
        for t in self.lock().tokens.values_mut() {
            if !t.refresh && t.expires_at.is_some() {
                t.expires_at = Some(0);
            }
        }
    }

    /// Revokes a token.
    pub fn revoke(&self, token: &str) {
        self.lock().tokens.remove(token);
    }

    /// Adds a device (as if created in the console) with simulated hardware.
    pub fn add_device(&self, user: &str, id: &str, credentials: &str, sim: Option<SimDevice>) {
        let mut fields = Map::new();
        fields.insert("device".into(), id.into());
        fields.insert("type".into(), "Generic".into());
        fields.insert("credentials".into(), credentials.into());
        fields.insert("enabled".into(), true.into());
        self.lock()
            .users
            .entry(user.into())
            .or_default()
            .devices
            .insert(
                id.into(),
                DeviceRecord {
                    fields,
                    properties: Vec::new(),
                    sim,
                },
            );
    }

    /// Attaches simulated hardware to a device (e.g. one the client created).
    pub fn attach(&self, user: &str, id: &str, sim: SimDevice) {
        if let Some(d) = self
            .lock()
            .users
            .get_mut(user)
            .and_then(|u| u.devices.get_mut(id))
        {
            d.sim = Some(sim);
        }
    }

    /// Changes a simulated device.
    pub fn with_sim<R>(
        &self,
        user: &str,
        id: &str,
        f: impl FnOnce(&mut SimDevice) -> R,
    ) -> Option<R> {
        let mut st = self.lock();
        let sim = st.users.get_mut(user)?.devices.get_mut(id)?.sim.as_mut()?;
        Some(f(sim))
    }

    /// A device record.
    pub fn device(&self, user: &str, id: &str) -> Option<DeviceRecord> {
        self.lock().users.get(user)?.devices.get(id).cloned()
    }

    /// A dashboard as stored.
    pub fn dashboard(&self, user: &str, id: &str) -> Option<Value> {
        self.lock().users.get(user)?.dashboards.get(id).cloned()
    }

    /// Queues a fault.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<LoggedRequest> {
        self.lock().log.clone()
    }
}

struct HttpRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<HttpRequest> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut headers = Vec::new();
    let mut total = 0;
    loop {
        let mut h = String::new();
        let n = r.read_line(&mut h).ok()?;
        total += n;
        if n == 0 || total > 64 * 1024 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let mut req = HttpRequest {
        method,
        path,
        headers,
        body: Vec::new(),
    };
    if req
        .header("transfer-encoding")
        .is_some_and(|t| t.eq_ignore_ascii_case("chunked"))
    {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            if n == 0 {
                let mut end = String::new();
                r.read_line(&mut end).ok()?;
                break;
            }
            let mut chunk = vec![0u8; n + 2];
            r.read_exact(&mut chunk).ok()?;
            req.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(len) = req
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok())
    {
        if len > 64 * 1024 * 1024 {
            return None;
        }
        req.body = vec![0u8; len];
        r.read_exact(&mut req.body).ok()?;
    }
    Some(req)
}

fn serve(conn: TcpStream, state: Arc<Mutex<State>>, stop: Arc<AtomicBool>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    // Small answers must not wait for delayed ACKs (Nagle).
    let _ = conn.set_nodelay(true);
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(conn);
    while let Some(req) = read_request(&mut reader) {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let (status, headers, body) = handle(&state, &req);
        let reason = match status {
            200 => "OK",
            302 => "Found",
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            409 => "Conflict",
            422 => "Unprocessable Entity",
            429 => "Too Many Requests",
            500 => "Internal Server Error",
            _ => "Status",
        };
        let mut head = format!(
            "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut message = head.into_bytes();
        message.extend_from_slice(&body);
        if out.write_all(&message).is_err() {
            return;
        }
        let _ = out.flush();
        if req
            .header("connection")
            .is_some_and(|c| c.eq_ignore_ascii_case("close"))
        {
            return;
        }
    }
}

type Answer = (u16, Vec<(String, String)>, Vec<u8>);

fn answer(status: u16, body: Value) -> Answer {
    (status, Vec::new(), body.to_string().into_bytes())
}

fn error(status: u16, message: &str) -> Answer {
    answer(status, json!({"error": {"message": message}}))
}

fn handle(state: &Arc<Mutex<State>>, req: &HttpRequest) -> Answer {
    // Faults first (a delay happens outside the lock).
    let fault = {
        let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
        let i = st.faults.iter().position(|f| {
            req.path.contains(&f.path_contains)
                && f.method.as_ref().is_none_or(|m| *m == req.method)
        });
        i.map(|i| {
            let f = st.faults[i].clone();
            st.faults[i].times -= 1;
            if st.faults[i].times == 0 {
                st.faults.remove(i);
            }
            f.kind
        })
    };
    let result = match fault {
        Some(FaultKind::Respond {
            status,
            body,
            headers,
        }) => (status, headers, body.into_bytes()),
        Some(FaultKind::Delay(d)) => {
            thread::sleep(d);
            route(state, req)
        }
        None => route(state, req),
    };
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.log.push(LoggedRequest {
        method: req.method.clone(),
        path: req.path.clone(),
        headers: req.headers.clone(),
        body: req.body[..req.body.len().min(16 * 1024)].to_vec(),
        body_len: req.body.len(),
        status: result.0,
    });
    result
}

fn form_decode(body: &[u8]) -> BTreeMap<String, String> {
    let dec = |s: &str| -> String {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            match b[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < b.len() => {
                    let h = std::str::from_utf8(&b[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    match h {
                        Some(v) => {
                            out.push(v);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                c => out.push(c),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (dec(k), dec(v)))
        .collect()
}

fn oauth(st: &mut State, req: &HttpRequest) -> Answer {
    if !req
        .header("content-type")
        .is_some_and(|c| c.starts_with("application/x-www-form-urlencoded"))
    {
        return error(400, "expected application/x-www-form-urlencoded");
    }
    let form = form_decode(&req.body);
    let user = match form.get("grant_type").map(String::as_str) {
        Some("password") => {
            let (Some(u), Some(p)) = (form.get("username"), form.get("password")) else {
                return error(400, "username and password required");
            };
            match st.users.get(u) {
                Some(d) if d.password == *p && !p.is_empty() => u.clone(),
                _ => return error(401, "invalid username or password"),
            }
        }
        Some("refresh_token") => {
            let Some(r) = form.get("refresh_token") else {
                return error(400, "refresh_token required");
            };
            match st.tokens.remove(r) {
                Some(t) if t.refresh && t.expires_at.is_none_or(|e| e > now_secs()) => t.user,
                _ => return error(401, "invalid refresh token"),
            }
        }
        _ => return error(400, "unsupported grant_type"),
    };
    let exp = now_secs() + ACCESS_TOKEN_SECS;
    let access = jwt(&user, Some(exp));
    let refresh = jwt(&user, Some(now_secs() + 60 * 86400));
    st.tokens.insert(
        access.clone(),
        Token {
            user: user.clone(),
            allow: Permissions::All,
            expires_at: Some(exp),
            refresh: false,
        },
    );
    st.tokens.insert(
        refresh.clone(),
        Token {
            user,
            allow: Permissions::All,
            expires_at: Some(now_secs() + 60 * 86400),
            refresh: true,
        },
    );
    answer(
        200,
        json!({"access_token": access, "expires_in": ACCESS_TOKEN_SECS, "refresh_token": refresh, "scope": null, "token_type": "bearer"}),
    )
}

fn route(state: &Arc<Mutex<State>>, req: &HttpRequest) -> Answer {
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    let (path, query) = req.path.split_once('?').unwrap_or((&req.path, ""));
    if path == "/oauth/token" && req.method == "POST" {
        return oauth(&mut st, req);
    }
    // Authorization header, or the `authorization` query parameter (api.md).
    let token = req
        .header("authorization")
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::to_string)
        .or_else(|| {
            query
                .split('&')
                .find_map(|kv| kv.strip_prefix("authorization="))
                .map(str::to_string)
        });
    let Some(token) = token.and_then(|t| st.tokens.get(&t).cloned()) else {
        return error(401, "invalid or missing access token");
    };
    if token.refresh || token.expires_at.is_some_and(|e| e <= now_secs()) {
        return error(401, "access token expired");
    }
    let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let m = req.method.as_str();
    let (action, user) = match (m, seg.as_slice()) {
        ("GET", ["v1", "users", u, "devices"]) => ("ListDevices", *u),
        ("POST", ["v1", "users", u, "devices"]) => ("CreateDevice", *u),
        ("GET", ["v1", "users", u, "devices", _]) => ("ReadDeviceStatus", *u),
        ("PUT", ["v1", "users", u, "devices", _]) => ("UpdateDevice", *u),
        ("DELETE", ["v1", "users", u, "devices", _]) => ("DeleteDevice", *u),
        ("GET", ["v3", "users", u, "devices", _, "properties"]) => ("ListDeviceProperties", *u),
        ("POST", ["v3", "users", u, "devices", _, "properties"]) => ("CreateDeviceProperty", *u),
        ("GET", ["v3", "users", u, "devices", _, "properties", _]) => ("ReadDeviceProperty", *u),
        ("PUT", ["v3", "users", u, "devices", _, "properties", _]) => ("UpdateDeviceProperty", *u),
        ("DELETE", ["v3", "users", u, "devices", _, "properties", _]) => {
            ("DeleteDeviceProperty", *u)
        }
        ("GET" | "POST", ["v3", "users", u, "devices", _, "resources", ..]) => {
            ("AccessDeviceResources", *u)
        }
        ("GET", ["v1", "users", u, "dashboards"]) => ("ListDashboards", *u),
        ("POST", ["v1", "users", u, "dashboards"]) => ("CreateDashboard", *u),
        ("GET", ["v1", "users", u, "dashboards", _]) => ("ReadDashboardConfig", *u),
        ("PUT", ["v1", "users", u, "dashboards", _]) => ("UpdateDashboard", *u),
        ("DELETE", ["v1", "users", u, "dashboards", _]) => ("DeleteDashboard", *u),
        ("GET", ["v1", "users", u, "tokens"]) => ("ListTokens", *u),
        ("POST", ["v1", "users", u, "tokens"]) => ("CreateToken", *u),
        _ => return error(404, "resource not found"),
    };
    if token.user != user {
        return error(403, "the token does not belong to this user");
    }
    if !token.allow.allows(action) {
        return error(403, &format!("not allowed: {action}"));
    }
    let json_body = || -> Result<Value, Answer> {
        if !req
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
        {
            return Err(error(400, "expected application/json"));
        }
        serde_json::from_slice(&req.body).map_err(|e| error(400, &format!("invalid JSON: {e}")))
    };
    let st = &mut *st;
    let data = st.users.entry(user.to_string()).or_default();
    match (action, seg.as_slice()) {
        ("ListDevices", _) => answer(
            200,
            Value::Array(data.devices.values().map(public_device).collect()),
        ),
        ("CreateDevice", _) => {
            let body = match json_body() {
                Ok(b) => b,
                Err(a) => return a,
            };
            if let Err(m) = check_device_create(&body) {
                return error(422, &m);
            }
            let id = body["device"].as_str().unwrap_or("").to_string();
            if data.devices.contains_key(&id) {
                return error(409, "device already exists");
            }
            let mut fields = body.as_object().cloned().unwrap_or_default();
            fields.entry("type").or_insert("Generic".into());
            fields.entry("enabled").or_insert(true.into());
            data.devices.insert(
                id,
                DeviceRecord {
                    fields,
                    properties: Vec::new(),
                    sim: None,
                },
            );
            answer(200, json!({}))
        }
        ("ReadDeviceStatus", [.., id]) => match data.devices.get(*id) {
            Some(d) => answer(200, public_device(d)),
            None => error(404, "device not found"),
        },
        ("UpdateDevice", [.., id]) => {
            let body = match json_body() {
                Ok(b) => b,
                Err(a) => return a,
            };
            if let Err(m) = check_device_update(&body) {
                return error(422, &m);
            }
            match data.devices.get_mut(*id) {
                Some(d) => {
                    for (k, v) in body.as_object().cloned().unwrap_or_default() {
                        d.fields.insert(k, v);
                    }
                    answer(200, json!({}))
                }
                None => error(404, "device not found"),
            }
        }
        ("DeleteDevice", [.., id]) => match data.devices.remove(*id) {
            Some(_) => answer(200, json!({})),
            None => error(404, "device not found"),
        },
        ("ListDeviceProperties", [.., id, _]) => match data.devices.get(*id) {
            Some(d) => answer(
                200,
                Value::Array(
                    d.properties
                        .iter()
                        .map(|(k, v)| json!({"property": k, "value": v}))
                        .collect(),
                ),
            ),
            None => error(404, "device not found"),
        },
        ("CreateDeviceProperty", [.., id, _]) => {
            let body = match json_body() {
                Ok(b) => b,
                Err(a) => return a,
            };
            let items = match &body {
                Value::Array(a) => a.clone(),
                o => vec![o.clone()],
            };
            for (i, p) in items.iter().enumerate() {
                if let Err(m) = check_property(p, true) {
                    return error(422, &format!("[{i}]{m}"));
                }
            }
            let Some(d) = data.devices.get_mut(*id) else {
                return error(404, "device not found");
            };
            for p in &items {
                let name = p["property"].as_str().unwrap_or("");
                if d.properties.iter().any(|(k, _)| k == name) {
                    return error(409, &format!("property {name} already exists"));
                }
            }
            for p in items {
                d.properties.push((
                    p["property"].as_str().unwrap_or("").to_string(),
                    p["value"].clone(),
                ));
            }
            answer(200, json!({}))
        }
        ("ReadDeviceProperty", [.., id, _, prop]) => {
            match data
                .devices
                .get(*id)
                .and_then(|d| d.properties.iter().find(|(k, _)| k == prop))
            {
                Some((k, v)) => answer(200, json!({"property": k, "value": v})),
                None => error(404, "property not found"),
            }
        }
        ("UpdateDeviceProperty", [.., id, _, prop]) => {
            let body = match json_body() {
                Ok(b) => b,
                Err(a) => return a,
            };
            if let Err(m) = check_property(&body, false) {
                return error(422, &m);
            }
            match data
                .devices
                .get_mut(*id)
                .and_then(|d| d.properties.iter_mut().find(|(k, _)| k == prop))
            {
                Some(p) => {
                    p.1 = body["value"].clone();
                    answer(200, json!({}))
                }
                None => error(404, "property not found"),
            }
        }
        ("DeleteDeviceProperty", [.., id, _, prop]) => match data.devices.get_mut(*id) {
            Some(d) => {
                d.properties.retain(|(k, _)| k != prop);
                answer(200, json!({}))
            }
            None => error(404, "device not found"),
        },
        ("AccessDeviceResources", [_, _, _, _, id, _, rest @ ..]) => {
            let Some(d) = data.devices.get_mut(*id) else {
                return error(404, "device not found");
            };
            let Some(sim) = d.sim.as_mut().filter(|s| s.online) else {
                return error(404, "device not connected");
            };
            let is_bytes = req
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/octet-stream"));
            match (m, rest) {
                ("GET", ["$ota", "options"]) => answer(200, sim.options()),
                ("GET", ["$ota", "version"]) => answer(200, json!({"version": sim.version})),
                ("POST", ["$ota", "begin"]) => {
                    let input = serde_json::from_slice::<Value>(&req.body).unwrap_or(Value::Null);
                    answer(200, sim.begin(&input))
                }
                ("POST", ["$ota", "write"]) => answer(200, sim.write(&req.body, is_bytes)),
                ("POST", ["$ota", "end"]) => answer(200, sim.end()),
                ("POST", ["$ota", "reboot"]) => {
                    let version = sim.ota.version.clone();
                    let installed = sim.installed.is_some();
                    sim.reboot("reboot resource");
                    if installed && !version.is_empty() {
                        sim.version = version;
                    }
                    answer(200, json!({}))
                }
                _ => error(404, "resource not found"),
            }
        }
        ("ListDashboards", _) => answer(
            200,
            Value::Array(data.dashboards.values().cloned().collect()),
        ),
        ("CreateDashboard", _) => {
            let body = match json_body() {
                Ok(b) => b,
                Err(a) => return a,
            };
            if let Err(m) = check_dashboard(&body, true) {
                return error(422, &m);
            }
            let id = body["dashboard"].as_str().unwrap_or("").to_string();
            if data.dashboards.contains_key(&id) {
                return error(409, "dashboard already exists");
            }
            data.dashboards.insert(id, body);
            answer(200, json!({}))
        }
        ("ReadDashboardConfig", [.., id]) => match data.dashboards.get(*id) {
            Some(d) => answer(200, d.clone()),
            None => error(404, "dashboard not found"),
        },
        ("UpdateDashboard", [.., id]) => {
            let body = match json_body() {
                Ok(b) => b,
                Err(a) => return a,
            };
            if let Err(m) = check_dashboard(&body, false) {
                return error(422, &m);
            }
            match data.dashboards.get_mut(*id) {
                Some(d) => {
                    for (k, v) in body.as_object().cloned().unwrap_or_default() {
                        d[k] = v;
                    }
                    answer(200, json!({}))
                }
                None => error(404, "dashboard not found"),
            }
        }
        ("DeleteDashboard", [.., id]) => match data.dashboards.remove(*id) {
            Some(_) => answer(200, json!({})),
            None => error(404, "dashboard not found"),
        },
        ("ListTokens", _) => answer(200, Value::Array(data.tokens.values().cloned().collect())),
        ("CreateToken", _) => {
            let body = match json_body() {
                Ok(b) => b,
                Err(a) => return a,
            };
            if let Err(m) = check_token(&body) {
                return error(422, &m);
            }
            let id = body["token"].as_str().unwrap_or("").to_string();
            if data.tokens.contains_key(&id) {
                return error(409, "token already exists");
            }
            data.tokens.insert(id, body.clone());
            let t = jwt(user, None);
            st.tokens.insert(
                t.clone(),
                Token {
                    user: user.into(),
                    allow: Permissions::All,
                    expires_at: None,
                    refresh: false,
                },
            );
            answer(200, json!({"token": body["token"], "access_token": t}))
        }
        _ => error(404, "resource not found"),
    }
}

/// What `GET .../devices/{id}` shows: never the credentials.
fn public_device(d: &DeviceRecord) -> Value {
    let mut v = Value::Object(d.fields.clone());
    v.as_object_mut().expect("object").remove("credentials");
    v["connected"] = d.sim.as_ref().is_some_and(|s| s.online).into();
    v
}

fn id_ok(s: &str, max: usize, hyphen: bool) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || (hyphen && c == '-'))
}

/// Checks an object against `additionalProperties: false` with these keys.
fn only_keys(o: &Map<String, Value>, allowed: &[&str]) -> Result<(), String> {
    match o.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("/{k}: additional property not allowed")),
        None => Ok(()),
    }
}

fn string_field(
    o: &Map<String, Value>,
    key: &str,
    min: usize,
    max: usize,
) -> Result<Option<String>, String> {
    match o.get(key) {
        None => Ok(None),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < min || n > max {
                // Echo the value, as many servers do: clients must mask secrets themselves.
                Err(format!("/{key}: length {n} of \"{s}\" not in {min}..{max}"))
            } else {
                Ok(Some(s.clone()))
            }
        }
        Some(_) => Err(format!("/{key}: must be a string")),
    }
}

fn resource_id_field(o: &Map<String, Value>, key: &str, empty_ok: bool) -> Result<(), String> {
    match o.get(key) {
        None => Ok(()),
        Some(Value::String(s)) if (empty_ok && s.is_empty()) || id_ok(s, 32, false) => Ok(()),
        Some(v) => Err(format!("/{key}: {v} does not match ^[a-zA-Z0-9_]{{1,32}}$")),
    }
}

fn check_device_create(body: &Value) -> Result<(), String> {
    let o = body.as_object().ok_or("body must be an object")?;
    only_keys(
        o,
        &[
            "asset_group",
            "asset_type",
            "credentials",
            "description",
            "device",
            "enabled",
            "name",
            "product",
            "type",
        ],
    )?;
    let device = o
        .get("device")
        .and_then(|d| d.as_str())
        .ok_or("/device: required")?;
    if !id_ok(device, 32, true) {
        return Err(format!(
            "/device: \"{device}\" does not match ^[a-zA-Z0-9_-]{{1,32}}$"
        ));
    }
    let kind = match o.get("type") {
        None => "Generic",
        Some(Value::String(t)) if ["Generic", "MQTT", "HTTP"].contains(&t.as_str()) => t.as_str(),
        Some(t) => return Err(format!("/type: {t} not one of Generic, MQTT, HTTP")),
    };
    if kind == "HTTP" {
        only_keys(
            o,
            &[
                "asset_group",
                "asset_type",
                "description",
                "device",
                "enabled",
                "name",
                "product",
                "type",
            ],
        )?;
        string_field(o, "description", 1, 255)?;
    } else {
        if string_field(o, "credentials", 6, 255)?.is_none() {
            return Err("/credentials: required".into());
        }
        string_field(o, "description", 0, 255)?;
    }
    string_field(o, "name", 0, 255)?;
    for k in ["asset_group", "asset_type", "product"] {
        resource_id_field(o, k, false)?;
    }
    if o.get("enabled").is_some_and(|e| !e.is_boolean()) {
        return Err("/enabled: must be a boolean".into());
    }
    Ok(())
}

fn check_device_update(body: &Value) -> Result<(), String> {
    let o = body.as_object().ok_or("body must be an object")?;
    only_keys(
        o,
        &[
            "asset_group",
            "asset_type",
            "credentials",
            "description",
            "enabled",
            "name",
            "product",
        ],
    )?;
    string_field(o, "credentials", 1, 255)?;
    string_field(o, "description", 0, 255)?;
    string_field(o, "name", 0, 255)?;
    for k in ["asset_group", "asset_type", "product"] {
        resource_id_field(o, k, true)?;
    }
    if o.get("enabled").is_some_and(|e| !e.is_boolean()) {
        return Err("/enabled: must be a boolean".into());
    }
    Ok(())
}

fn check_property(p: &Value, create: bool) -> Result<(), String> {
    let o = p.as_object().ok_or("must be an object")?;
    if !create {
        only_keys(o, &["property", "value"])?;
    }
    match o.get("property") {
        Some(Value::String(s)) if id_ok(s, 32, false) => {}
        None if !create => {}
        Some(v) => {
            return Err(format!(
                "/property: {v} does not match ^[a-zA-Z0-9_]{{1,32}}$"
            ));
        }
        None => return Err("/property: required".into()),
    }
    if !o.contains_key("value") {
        return Err("/value: required".into());
    }
    Ok(())
}

fn check_dashboard(body: &Value, create: bool) -> Result<(), String> {
    let o = body.as_object().ok_or("body must be an object")?;
    let mut keys = vec![
        "controls",
        "description",
        "name",
        "properties",
        "tabs",
        "widgets",
    ];
    if create {
        keys.push("dashboard");
    }
    only_keys(o, &keys)?;
    if create {
        match o.get("dashboard") {
            Some(Value::String(d)) if id_ok(d, 32, false) => {}
            Some(d) => {
                return Err(format!(
                    "/dashboard: {d} does not match ^[a-zA-Z0-9_]{{1,32}}$"
                ));
            }
            None => return Err("/dashboard: required".into()),
        }
        for k in ["name", "widgets"] {
            if !o.contains_key(k) {
                return Err(format!("/{k}: required"));
            }
        }
    }
    string_field(o, "name", 1, 255)?;
    string_field(o, "description", 0, 255)?;
    for k in ["widgets", "tabs"] {
        if o.get(k).is_some_and(|v| !v.is_array()) {
            return Err(format!("/{k}: must be an array"));
        }
    }
    Ok(())
}

fn check_token(body: &Value) -> Result<(), String> {
    let o = body.as_object().ok_or("body must be an object")?;
    only_keys(
        o,
        &[
            "allow",
            "deny",
            "description",
            "enabled",
            "expire",
            "name",
            "token",
        ],
    )?;
    match o.get("token") {
        Some(Value::String(t)) if id_ok(t, 50, false) => {}
        Some(t) => return Err(format!("/token: {t} does not match ^[a-zA-Z0-9_]{{1,50}}$")),
        None => return Err("/token: required".into()),
    }
    if string_field(o, "name", 0, 255)?.is_none() {
        return Err("/name: required".into());
    }
    if !o.get("enabled").is_some_and(Value::is_boolean) {
        return Err("/enabled: required boolean".into());
    }
    Ok(())
}
