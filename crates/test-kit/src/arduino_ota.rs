//! An ArduinoOTA device on loopback (UDP for the invitation, TCP back to the host), written
//! from the devices' sources, sharing no code with thinger-patch:
//!
//! - ESP8266: esp8266/Arduino `libraries/ArduinoOTA/ArduinoOTA.cpp` and `cores/esp8266/Updater.cpp`.
//!   The UDP `OK` is sent only after `Update.begin` succeeded (else `ERR: ERROR[n]: ...`);
//!   32-hex nonce (`MD5(micros())`), `MD5(stored ":" nonce ":" cnonce)` where stored is
//!   `MD5hex(password)` (`setPassword`) or the given hash (`setPasswordHash`); on the TCP
//!   connection every `Update.write(client)` of the available bytes is answered with its
//!   decimal count; a second without data is a receive failure; at the end `Update.end()`
//!   checks the MD5 (case-insensitive) and the first byte (`0xE9` or gzip `1F 8B`), then
//!   waits 1 s, writes `OK`, waits 1 s and closes; or writes `ERROR[n]: <text>\n`.
//! - ESP32 before 3.3.1 (legacy): arduino-esp32 `libraries/ArduinoOTA/src/ArduinoOTA.cpp`:
//!   `OK` on the invitation (or after the authentication) before `Update.begin`; a failing
//!   `begin` then leaves the device idle without ever connecting. Reads at most 1460 bytes
//!   per turn and answers each write with `%lu`; waits 1 s for data (re-sending the last
//!   count up to 3 times), else gives up; the Updater buffers 4096-byte sectors and checks
//!   the magic byte `0xE9` when the first sector is written (a failed write is not answered);
//!   `end()` compares the MD5 exactly; the result is `OK` or the bare Updater message
//!   (`println`, e.g. `MD5 Check Failed\r\n`), then the connection closes.
//! - ESP32 3.3.1 and later: as above, with a 64-hex nonce, cnonce and response checked for
//!   64 characters, stored hash `SHA256hex(password)` (`setPassword`) or the given hash
//!   (`setPasswordHash`, possibly an old MD5 hash), and
//!   `response = SHA256hex(hex(PBKDF2-HMAC-SHA256(stored, nonce ":" cnonce, 10000, 32)) ":" nonce ":" cnonce)`
//!   (the scheme of `espota.py` 2025-09/10). After `Authentication Failed` the device is
//!   idle: the host must invite again.
//!
//! Injected faults: no connection back (a host firewall), a drop-out after N bytes, a flash
//! write failure at an offset, a corrupting link (one byte flipped: MD5 mismatch), a stall,
//! an `OK` before the image is complete, garbage (ANSI escapes, bytes that are not UTF-8)
//! in place of counts. And the shapes TCP gives honest counts: several joined in one
//! segment, one split over several.
//! Every socket operation has a timeout; the thread stops when the [`Device`] is dropped.
#![allow(dead_code)]

use md5::{Digest as _, Md5};
use sha2::Sha256;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Which core's ArduinoOTA the simulated device runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Esp8266,
    /// arduino-esp32 before 3.3.1: MD5 challenge.
    Esp32Legacy,
    /// arduino-esp32 3.3.1+: PBKDF2-HMAC-SHA256 challenge.
    Esp32,
}

#[derive(Debug, Clone)]
pub enum Password {
    None,
    /// `ArduinoOTA.setPassword(pw)`.
    Plain(String),
    /// `ArduinoOTA.setPasswordHash(hex)`.
    Hash(String),
}

#[derive(Debug, Clone)]
pub struct Config {
    pub flavor: Flavor,
    pub password: Password,
    /// Room for the update: ESP8266 free sketch space, ESP32 OTA partition size.
    pub space: usize,
    /// Never connect back (as if a firewall on the host dropped the connection).
    pub never_connect: bool,
    /// Close the TCP connection abruptly once this many bytes arrived.
    pub drop_after: Option<usize>,
    /// Stop reading and answering (connection left open) once this many bytes arrived.
    pub stall_after: Option<usize>,
    /// The flash write covering this offset fails.
    pub fail_write_at: Option<usize>,
    /// The byte at this offset arrives flipped (a corrupting link: MD5 mismatch).
    pub corrupt_at: Option<usize>,
    /// ESP8266's `delay(1000)` before and after the final `OK`.
    pub ok_delay: Duration,
    /// Once this many bytes arrived: write the count and `OK` in one segment and close,
    /// with the image incomplete (a broken or hostile device).
    pub ok_after: Option<usize>,
    /// Once this many bytes arrived: answer every further piece with [`GARBAGE`] instead
    /// of its count (no line break), and keep reading.
    pub garbage_after: Option<usize>,
    /// How the counts travel (ESP32 flavours).
    pub acks: AckShape,
}

/// Not an ArduinoOTA answer: ANSI escapes (colour, window title, clear screen), a bell,
/// bytes that are not UTF-8, and more text than any message should quote.
pub const GARBAGE: &[u8] = b"\x1b[31m\x1b]0;pwned\x07\x1b[2J\xff\xfe not a count ";

/// The shape of the device's counts on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckShape {
    /// One write per piece read.
    Normal,
    /// The piece is read and written in parts of at most 500 bytes, and their counts go
    /// out together in one write (`500500460`): TCP joining segments.
    Joined,
    /// Each count is written a digit at a time with a pause between: one count split over
    /// several segments.
    Split,
}

impl Config {
    pub fn new(flavor: Flavor) -> Self {
        Config {
            flavor,
            password: Password::None,
            space: 4 << 20,
            never_connect: false,
            drop_after: None,
            stall_after: None,
            fail_write_at: None,
            corrupt_at: None,
            ok_delay: Duration::from_millis(1000),
            ok_after: None,
            garbage_after: None,
            acks: AckShape::Normal,
        }
    }
}

/// What the device saw and did.
#[derive(Debug, Clone, Default)]
pub struct Record {
    /// Every UDP datagram received, as text.
    pub datagrams: Vec<String>,
    /// Parsed invitations: (command, host port, size, md5).
    pub invitations: Vec<(u32, u16, usize, String)>,
    pub nonces: Vec<String>,
    pub auth_failures: usize,
    pub auth_ok: bool,
    /// UDP replies sent.
    pub replies: Vec<String>,
    pub connected: bool,
    /// Bytes written to the simulated flash (what `Update.write` accepted).
    pub flashed: Vec<u8>,
    /// `Ok` when `OK` was written, `Err(text)` for an error line or a failure.
    pub result: Option<Result<(), String>>,
}

pub struct Device {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    record: Arc<Mutex<Record>>,
    thread: Option<JoinHandle<()>>,
}

impl Device {
    pub fn start(config: Config) -> Device {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind the device's UDP socket");
        udp.set_read_timeout(Some(Duration::from_millis(20)))
            .expect("timeout");
        let addr = udp.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let record = Arc::new(Mutex::new(Record::default()));
        let (s, r) = (stop.clone(), record.clone());
        let thread = std::thread::spawn(move || Sim::new(config, udp, s, r).run());
        Device {
            addr,
            stop,
            record,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn record(&self) -> Record {
        self.record.lock().unwrap().clone()
    }

    /// Waits (bounded) until the device has a result, then returns the record.
    pub fn wait_result(&self, limit: Duration) -> Record {
        let end = Instant::now() + limit;
        while Instant::now() < end {
            if self.record.lock().unwrap().result.is_some() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.record()
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// =============================================================================================

/// What follows a piece, with the misbehaviours.
enum Act {
    Count,
    NoCount,
    End,
}

enum State {
    Idle,
    WaitAuth,
    RunUpdate,
}

struct Invite {
    cmd: u32,
    port: u16,
    size: usize,
    md5: String,
    /// ESP8266 `_ota_ip` / `_ota_udp_port`: the invitation's source.
    from: SocketAddr,
}

struct Sim {
    cfg: Config,
    udp: UdpSocket,
    stop: Arc<AtomicBool>,
    rec: Arc<Mutex<Record>>,
    state: State,
    invite: Option<Invite>,
    nonce: String,
    /// ESP32: `_ota_ip`, set when OK is sent.
    ota_ip: Option<IpAddr>,
}

static MICROS: AtomicU64 = AtomicU64::new(1);

fn md5_hex(data: &[u8]) -> String {
    hex(&Md5::digest(data))
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A cursor over a datagram with `parseInt` / `readStringUntil` of ArduinoOTA.cpp.
struct Packet<'a> {
    data: &'a [u8],
    at: usize,
}

impl Packet<'_> {
    fn peek(&self) -> Option<u8> {
        self.data.get(self.at).copied()
    }

    fn read(&mut self) -> Option<u8> {
        let b = self.peek();
        if b.is_some() {
            self.at += 1;
        }
        b
    }

    fn parse_int(&mut self) -> u64 {
        while self.peek() == Some(b' ') {
            self.at += 1;
        }
        let mut v = 0u64;
        let mut digits = 0;
        while let Some(c) = self.peek() {
            if !c.is_ascii_digit() || digits >= 15 {
                break;
            }
            v = v * 10 + u64::from(c - b'0');
            digits += 1;
            self.at += 1;
        }
        v
    }

    fn read_until(&mut self, end: u8) -> String {
        let mut s = String::new();
        while let Some(c) = self.read() {
            if c == 0 || c == end {
                break;
            }
            s.push(c as char);
        }
        s
    }
}

impl Sim {
    fn new(cfg: Config, udp: UdpSocket, stop: Arc<AtomicBool>, rec: Arc<Mutex<Record>>) -> Self {
        Sim {
            cfg,
            udp,
            stop,
            rec,
            state: State::Idle,
            invite: None,
            nonce: String::new(),
            ota_ip: None,
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    fn reply(&self, to: SocketAddr, text: &str) {
        let _ = self.udp.send_to(text.as_bytes(), to);
        self.rec.lock().unwrap().replies.push(text.to_string());
    }

    fn run(mut self) {
        let mut buf = [0u8; 512];
        while !self.stopped() {
            if matches!(self.state, State::RunUpdate) {
                self.run_update();
                self.state = State::Idle;
                continue;
            }
            match self.udp.recv_from(&mut buf) {
                Ok((n, from)) => {
                    let data = buf[..n].to_vec();
                    self.rec
                        .lock()
                        .unwrap()
                        .datagrams
                        .push(String::from_utf8_lossy(&data).into_owned());
                    self.on_rx(&data, from);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => {}
            }
        }
    }

    fn hex_len(&self) -> usize {
        match self.cfg.flavor {
            Flavor::Esp32 => 64,
            _ => 32,
        }
    }

    /// The password hash the firmware keeps.
    fn stored(&self) -> Option<String> {
        match &self.cfg.password {
            Password::None => None,
            Password::Plain(p) => Some(match self.cfg.flavor {
                Flavor::Esp32 => sha256_hex(p.as_bytes()),
                _ => md5_hex(p.as_bytes()),
            }),
            Password::Hash(h) => Some(h.clone()),
        }
    }

    fn on_rx(&mut self, data: &[u8], from: SocketAddr) {
        let mut p = Packet { data, at: 0 };
        match self.state {
            State::Idle => {
                let cmd = p.parse_int() as u32;
                if cmd != 0 && cmd != 100 {
                    return;
                }
                let port = p.parse_int() as u16;
                let size = p.parse_int() as usize;
                p.read();
                let md5 = p.read_until(b'\n').trim().to_string();
                if md5.len() != 32 {
                    return;
                }
                self.rec
                    .lock()
                    .unwrap()
                    .invitations
                    .push((cmd, port, size, md5.clone()));
                self.invite = Some(Invite {
                    cmd,
                    port,
                    size,
                    md5,
                    from,
                });
                if self.stored().is_some() {
                    // `String(micros())`: any changing number does.
                    let t = MICROS.fetch_add(7919, Ordering::SeqCst)
                        ^ std::time::SystemTime::now()
                            .duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_nanos() as u64);
                    self.nonce = match self.cfg.flavor {
                        Flavor::Esp32 => sha256_hex(t.to_string().as_bytes()),
                        _ => md5_hex(t.to_string().as_bytes()),
                    };
                    self.rec.lock().unwrap().nonces.push(self.nonce.clone());
                    self.reply(from, &format!("AUTH {}", self.nonce));
                    self.state = State::WaitAuth;
                } else {
                    if self.cfg.flavor != Flavor::Esp8266 {
                        self.reply(from, "OK");
                        self.ota_ip = Some(from.ip());
                    }
                    self.state = State::RunUpdate;
                }
            }
            State::WaitAuth => {
                let cmd = p.parse_int();
                if cmd != 200 {
                    // Anything else (a new invitation too) drops back to idle.
                    self.state = State::Idle;
                    return;
                }
                p.read();
                let cnonce = p.read_until(b' ');
                let response = p.read_until(b'\n');
                let n = self.hex_len();
                if cnonce.len() != n || response.len() != n {
                    self.state = State::Idle;
                    return;
                }
                let stored = self.stored().expect("a password is set");
                let expected = match self.cfg.flavor {
                    Flavor::Esp32 => {
                        let salt = format!("{}:{cnonce}", self.nonce);
                        let mut dk = [0u8; 32];
                        pbkdf2::pbkdf2_hmac::<Sha256>(
                            stored.as_bytes(),
                            salt.as_bytes(),
                            10_000,
                            &mut dk,
                        );
                        sha256_hex(format!("{}:{}:{cnonce}", hex(&dk), self.nonce).as_bytes())
                    }
                    _ => md5_hex(format!("{stored}:{}:{cnonce}", self.nonce).as_bytes()),
                };
                if expected == response {
                    self.rec.lock().unwrap().auth_ok = true;
                    if self.cfg.flavor != Flavor::Esp8266 {
                        self.reply(from, "OK");
                        self.ota_ip = Some(from.ip());
                    }
                    self.state = State::RunUpdate;
                } else {
                    self.rec.lock().unwrap().auth_failures += 1;
                    self.reply(from, "Authentication Failed");
                    self.state = State::Idle;
                }
            }
            State::RunUpdate => {}
        }
    }

    fn finish(&self, result: Result<(), String>) {
        self.rec.lock().unwrap().result = Some(result);
    }

    fn run_update(&mut self) {
        let Some(inv) = self.invite.take() else {
            return;
        };
        // Update.begin(size, cmd)
        let begin_error = if inv.size == 0 {
            Some((5u8, "Bad Size Given"))
        } else if inv.size > self.cfg.space {
            Some((4, "Not Enough Space"))
        } else {
            None
        };
        let esp8266 = self.cfg.flavor == Flavor::Esp8266;
        if esp8266 {
            match begin_error {
                Some((code, text)) => {
                    self.reply(inv.from, &format!("ERR: ERROR[{code}]: {text}\n"));
                    self.finish(Err(format!("begin: {text}")));
                    return;
                }
                None => self.reply(inv.from, "OK"),
            }
            std::thread::sleep(Duration::from_millis(100));
        } else if let Some((_, text)) = begin_error {
            // "Begin ERROR": the device had already said OK; it just goes idle.
            self.finish(Err(format!("begin: {text}")));
            return;
        }
        if self.cfg.never_connect {
            self.finish(Err("did not connect back".into()));
            return;
        }
        let ip = if esp8266 {
            inv.from.ip()
        } else {
            self.ota_ip.unwrap_or(inv.from.ip())
        };
        let target = SocketAddr::new(ip, inv.port);
        let Ok(mut client) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
            self.finish(Err("Connect Failed".into()));
            return;
        };
        self.rec.lock().unwrap().connected = true;
        let _ = client.set_nodelay(true);
        if esp8266 {
            self.receive_esp8266(&mut client, &inv);
        } else {
            self.receive_esp32(&mut client, &inv);
        }
    }

    /// Flash writes of `data` at `offset`: the bytes accepted before a failure, and the
    /// failure.
    fn flash_write(&self, offset: usize, data: &[u8]) -> (usize, bool) {
        match self.cfg.fail_write_at {
            Some(at) if at >= offset && at < offset + data.len() => (at - offset, true),
            _ => (data.len(), false),
        }
    }

    fn corrupt(&self, offset: usize, data: &mut [u8]) {
        if let Some(at) = self.cfg.corrupt_at
            && at >= offset
            && at < offset + data.len()
        {
            data[at - offset] ^= 0x01;
        }
    }

    /// Reads what is available within `wait`: `Ok(None)` on timeout, `Ok(Some(0))` at EOF.
    fn read_some(&self, c: &mut TcpStream, buf: &mut [u8], wait: Duration) -> Option<usize> {
        let _ = c.set_read_timeout(Some(wait));
        match c.read(buf) {
            Ok(n) => Some(n),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => None,
            Err(_) => Some(0),
        }
    }

    fn stall(&self, c: &mut TcpStream) {
        // Hold the connection without reading until stopped (bounded).
        let end = Instant::now() + Duration::from_secs(30);
        while !self.stopped() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = c.shutdown(Shutdown::Both);
        self.finish(Err("stalled".into()));
    }

    /// The injected misbehaviours after a piece of `n` bytes (`total` so far).
    fn misbehave(&self, c: &mut TcpStream, total: usize, n: usize, flashed: &[u8]) -> Act {
        if self.cfg.ok_after.is_some_and(|at| total >= at) {
            let _ = c.write_all(format!("{n}OK").as_bytes());
            let _ = c.flush();
            std::thread::sleep(Duration::from_millis(50));
            let _ = c.shutdown(Shutdown::Both);
            self.rec.lock().unwrap().flashed = flashed.to_vec();
            self.finish(Err(format!("premature OK after {total} bytes")));
            return Act::End;
        }
        if self.cfg.garbage_after.is_some_and(|at| total > at) {
            let _ = c.write_all(GARBAGE);
            let _ = c.write_all(&[b'A'; 3000]);
            if self.rec.lock().unwrap().result.is_none() {
                self.finish(Err(format!("garbage after {total} bytes")));
            }
            return Act::NoCount;
        }
        Act::Count
    }

    /// Writes the count of a piece of `n` bytes in the configured shape.
    fn send_count(&self, c: &mut TcpStream, n: usize) {
        let digits = n.to_string();
        match self.cfg.acks {
            AckShape::Normal => {
                let _ = c.write_all(digits.as_bytes());
            }
            AckShape::Joined => {
                let mut counts = String::new();
                let mut left = n;
                while left > 0 {
                    let part = left.min(500);
                    counts.push_str(&part.to_string());
                    left -= part;
                }
                let _ = c.write_all(counts.as_bytes());
            }
            AckShape::Split => {
                for d in digits.as_bytes() {
                    let _ = c.write_all(&[*d]);
                    let _ = c.flush();
                    std::thread::sleep(Duration::from_millis(3));
                }
            }
        }
    }

    fn receive_esp8266(&mut self, c: &mut TcpStream, inv: &Invite) {
        let mut total = 0usize;
        let mut flashed = Vec::with_capacity(inv.size);
        let mut error: Option<(u8, String)> = None;
        let mut buf = vec![0u8; 4096];
        let mut connected = true;
        let end = Instant::now() + Duration::from_secs(60);
        while total < inv.size && connected && !self.stopped() && Instant::now() < end {
            if self.cfg.stall_after.is_some_and(|s| total >= s) {
                return self.stall(c);
            }
            // `while (!client.available() && waited--) delay(1);` then Update.write(client).
            let want = (inv.size - total).min(buf.len());
            let n = match self.read_some(c, &mut buf[..want], Duration::from_millis(1000)) {
                None => continue, // "Receive Failed"; the loop goes on while connected.
                Some(0) => {
                    connected = false;
                    continue;
                }
                Some(n) => n,
            };
            let mut data = buf[..n].to_vec();
            self.corrupt(total, &mut data);
            let (ok, failed) = self.flash_write(total, &data);
            flashed.extend_from_slice(&data[..ok]);
            total += n;
            if self.cfg.drop_after.is_some_and(|d| total >= d) {
                self.rec.lock().unwrap().flashed = flashed;
                let _ = c.shutdown(Shutdown::Both);
                self.finish(Err("dropped".into()));
                return;
            }
            if failed {
                error = Some((1, "Flash Write Failed".into()));
                if ok > 0 {
                    let _ = c.write_all(ok.to_string().as_bytes());
                }
                break;
            }
            match self.misbehave(c, total, n, &flashed) {
                Act::End => return,
                Act::NoCount => continue,
                Act::Count => {}
            }
            let _ = c.write_all(n.to_string().as_bytes());
        }
        self.rec.lock().unwrap().flashed = flashed.clone();
        if error.is_none() && total < inv.size {
            // Update.end() on an unfinished update.
            self.finish(Err("premature end (connection lost)".into()));
            return;
        }
        if error.is_none() {
            let calculated = md5_hex(&flashed);
            if !calculated.eq_ignore_ascii_case(&inv.md5) {
                error = Some((
                    7,
                    format!(
                        "MD5 verification failed: expected: {}, calculated: {calculated}",
                        inv.md5
                    ),
                ));
            } else if inv.cmd == 0
                && flashed.first() != Some(&0xE9)
                && !(flashed.starts_with(&[0x1F, 0x8B]))
            {
                error = Some((10, "Magic byte is not 0xE9".into()));
            }
        }
        match error {
            None => {
                let _ = c.flush();
                std::thread::sleep(self.cfg.ok_delay);
                let _ = c.write_all(b"OK");
                std::thread::sleep(self.cfg.ok_delay);
                let _ = c.shutdown(Shutdown::Both);
                self.finish(Ok(()));
            }
            Some((code, text)) => {
                let line = format!("ERROR[{code}]: {text}\n");
                let _ = c.write_all(line.as_bytes());
                let _ = c.shutdown(Shutdown::Both);
                self.finish(Err(line.trim().to_string()));
            }
        }
    }

    fn receive_esp32(&mut self, c: &mut TcpStream, inv: &Invite) {
        const SECTOR: usize = 4096;
        let mut total = 0usize;
        let mut flashed = Vec::with_capacity(inv.size);
        let mut error: Option<&'static str> = None;
        let mut buf = [0u8; 1460];
        let mut written_last = 0usize;
        let mut tried = 0;
        let mut connected = true;
        let end = Instant::now() + Duration::from_secs(60);
        // `while (!Update.isFinished() && client.connected())`
        while total < inv.size
            && error.is_none()
            && connected
            && !self.stopped()
            && Instant::now() < end
        {
            if self.cfg.stall_after.is_some_and(|s| total >= s) {
                return self.stall(c);
            }
            let n = match self.read_some(c, &mut buf, Duration::from_millis(1000)) {
                None => {
                    if written_last > 0 && tried < 3 {
                        tried += 1;
                        let _ = c.write_all(written_last.to_string().as_bytes());
                        continue;
                    }
                    error = Some("Receive Failed");
                    break;
                }
                Some(0) => {
                    connected = false;
                    continue;
                }
                Some(n) => n,
            };
            tried = 0;
            let mut data = buf[..n].to_vec();
            self.corrupt(total, &mut data);
            // Update.write(buf, r)
            if n > inv.size - total {
                error = Some("Not Enough Space");
                break;
            }
            let before = total;
            total += n;
            // The first sector is written (and its magic checked) once it is full or the
            // image ends.
            if inv.cmd == 0 && before < SECTOR && (total >= SECTOR || total == inv.size) {
                let first = if before == 0 { data[0] } else { flashed[0] };
                if first != 0xE9 {
                    error = Some("Wrong Magic Byte");
                    break;
                }
            }
            let (ok, failed) = self.flash_write(before, &data);
            flashed.extend_from_slice(&data[..ok]);
            if self.cfg.drop_after.is_some_and(|d| total >= d) {
                self.rec.lock().unwrap().flashed = flashed;
                let _ = c.shutdown(Shutdown::Both);
                self.finish(Err("dropped".into()));
                return;
            }
            if failed {
                error = Some("Flash Write Failed");
                break;
            }
            written_last = n;
            match self.misbehave(c, total, n, &flashed) {
                Act::End => return,
                Act::NoCount => continue,
                Act::Count => {}
            }
            self.send_count(c, n);
        }
        self.rec.lock().unwrap().flashed = flashed.clone();
        if error == Some("Receive Failed") {
            // Update.abort() and return: the connection just closes.
            let _ = c.shutdown(Shutdown::Both);
            self.finish(Err("Receive Failed".into()));
            return;
        }
        if error.is_none() && total < inv.size {
            self.finish(Err("Aborted (connection lost)".into()));
            return;
        }
        if error.is_none() && md5_hex(&flashed) != inv.md5 {
            error = Some("MD5 Check Failed");
        }
        match error {
            None => {
                let _ = c.write_all(b"OK");
                let _ = c.shutdown(Shutdown::Both);
                self.finish(Ok(()));
            }
            Some(text) => {
                let _ = c.write_all(format!("{text}\r\n").as_bytes());
                let _ = c.shutdown(Shutdown::Both);
                self.finish(Err(text.to_string()));
            }
        }
    }
}
