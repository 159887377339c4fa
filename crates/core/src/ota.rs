//! Sending firmware to a running device, the parts without I/O: which bytes to
//! send for each kind of file, the ArduinoOTA messages and both of its
//! authentication schemes, the device's answers, and the HTTP pieces of the
//! ESP8266/ESP32 `HTTPUpdateServer` and ElegantOTA (multipart body, Basic
//! authorization, `Origin`, reading the verdict from the body).
//!
//! The network side lives in the CLI (`thinger-patch ota`); this module is
//! part of the core and builds for `wasm32-unknown-unknown`.
//!
//! Protocol facts (from `ArduinoOTA.cpp`, `Updater.cpp` and `espota.py` of the
//! esp8266/Arduino and espressif/arduino-esp32 cores):
//!
//! - Invitation, host → device UDP: `"<cmd> <host_tcp_port> <size> <md5hex>\n"`,
//!   `cmd` 0 = firmware, 100 = file system. The device connects back by TCP to the
//!   invitation's source address and `host_tcp_port`.
//! - Replies: `OK`, `AUTH <nonce>`, `Authentication Failed`, and on the ESP8266
//!   `ERR: <Updater error>` when `Update.begin` refuses (e.g. not enough space).
//! - Legacy authentication (every ESP8266 core, arduino-esp32 before 3.3.1), a
//!   32-hex nonce: `cnonce = MD5hex(file + size + md5 + ip)`,
//!   `response = MD5hex(MD5hex(password) ":" nonce ":" cnonce)`.
//! - arduino-esp32 3.3.1 and later, a 64-hex nonce: `cnonce = SHA256hex(...)`,
//!   `dk = hex(PBKDF2-HMAC-SHA256(SHA256hex(password), nonce ":" cnonce, 10000, 32))`,
//!   `response = SHA256hex(dk ":" nonce ":" cnonce)`; a firmware that stored an
//!   MD5 password hash (`setPasswordHash`) needs `MD5hex(password)` in place of
//!   `SHA256hex(password)`. A failed attempt leaves the device idle: invite again.
//! - Transfer: after each piece it wrote, the device writes the decimal count,
//!   with no delimiter; at the end `OK`, or an error line: `ERROR[n]: ...` (ESP8266)
//!   or the bare Updater message (`MD5 Check Failed`, `Wrong Magic Byte`, ... on the
//!   ESP32). How the host matches the counts to what it sent, and when `OK` confirms
//!   an update: [`AnswerScanner`].

use crate::checksum::{self, hex};
use crate::chip::Chip;
use crate::firmware::{Compression, Firmware};
use crate::format::Layout;
use crate::format::app_image::AppImage;
use crate::format::signature::Signature;
use serde::Serialize;
use std::fmt::Write as _;
use std::ops::Range;

/// `U_AUTH`: the command word of an authentication answer.
pub const AUTH_COMMAND: u32 = 200;
/// PBKDF2 iterations of the arduino-esp32 3.3.1+ scheme.
pub const PBKDF2_ROUNDS: u32 = 10_000;

/// The Arduino core whose ArduinoOTA and Updater the device runs: it decides the
/// default port, the chunk size `espota.py` uses, and what the device accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Core {
    Esp8266,
    Esp32,
}

impl Core {
    /// ArduinoOTA's default UDP port.
    pub fn default_port(self) -> u16 {
        match self {
            Core::Esp8266 => 8266,
            Core::Esp32 => 3232,
        }
    }

    /// The chunk `espota.py` of this core sends before waiting for an answer.
    pub fn chunk_len(self) -> usize {
        match self {
            Core::Esp8266 => 1460,
            Core::Esp32 => 1024,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Core::Esp8266 => "ESP8266",
            Core::Esp32 => "ESP32",
        }
    }

    /// The core that runs on `chip` (arduino-esp32 covers the whole ESP32 family).
    pub fn for_chip(chip: Chip) -> Core {
        if chip == Chip::Esp8266 {
            Core::Esp8266
        } else {
            Core::Esp32
        }
    }
}

/// What an upload replaces on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    /// The app (`U_FLASH`).
    Firmware,
    /// The file-system partition (`U_FS` / `U_SPIFFS`).
    Filesystem,
}

impl Target {
    /// The invitation's command word.
    pub fn command(self) -> u32 {
        match self {
            Target::Firmware => 0,
            Target::Filesystem => 100,
        }
    }

    /// The multipart field name `HTTPUpdateServer` reads the target from.
    pub fn form_field(self) -> &'static str {
        match self {
            Target::Firmware => "firmware",
            Target::Filesystem => "filesystem",
        }
    }

    /// ElegantOTA's `mode` parameter.
    pub fn elegant_mode(self) -> &'static str {
        match self {
            Target::Firmware => "fr",
            Target::Filesystem => "fs",
        }
    }
}

// =============================================================================================
// What to send
// =============================================================================================

/// The bytes an over-the-air update sends, chosen from a (personalised) file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// Range of the file's bytes to send (the whole file except for a merged image).
    pub range: Range<usize>,
    pub core: Core,
    pub chip: Option<Chip>,
    /// What is sent, for people: `app image`, `app ota_0 of the merged image at 0x10000`, ...
    pub what: String,
    /// Sent gzip-compressed (ESP8266 only; its Updater decompresses).
    pub compressed: bool,
}

/// Chooses what to send from `file` (a personalised file, possibly `.bin.gz`):
///
/// - an ESP32-family app image: the whole file;
/// - a merged full-flash image: only the app the bootloader starts (`factory`, else the
///   lowest OTA slot), from its partition offset to the end of the image (and of its
///   signature, if it has one): the device's Updater writes an app into its other OTA slot;
/// - an Arduino ESP8266 image (eboot + app): the whole file, as `espota.py` does; the
///   ESP8266 Updater stages it and eboot copies it to flash 0x0;
/// - `.bin.gz` of an Arduino ESP8266 image: the compressed file (the ESP8266 Updater
///   accepts a gzip stream, `0x1F 0x8B`);
///
/// and refuses, with the reason, what no Arduino updater accepts: ELF files, ESP8266 v2
/// (`0xEA`) images and bare ESP8266 images (their Updater needs eboot + app), gzip for the
/// ESP32 family (its Updater does not decompress), a merged image without an app.
pub fn firmware_payload(file: &[u8]) -> Result<Payload, String> {
    let fw = Firmware::parse(file).map_err(|e| e.to_string())?;
    let compressed = fw.compression() == Some(Compression::Gzip);
    let whole = 0..file.len();
    let chip = fw.chip();
    let payload = |range: Range<usize>, core: Core, what: String| Payload {
        range,
        core,
        chip,
        what,
        compressed,
    };
    match fw.layout() {
        Layout::Elf(_) => Err("an ELF file cannot be sent over the air: send the image the build makes from it (the .bin), or convert it with esptool elf2image".into()),
        Layout::Esp8266V2(_) => Err("this is an ESP8266 v2 (0xEA) image, which the Arduino ESP8266 Updater refuses (it accepts an Arduino image starting with 0xE9, or its .bin.gz)".into()),
        Layout::Arduino(_) => Ok(payload(
            whole,
            Core::Esp8266,
            if compressed {
                "gzip-compressed Arduino ESP8266 image (eboot + app)".into()
            } else {
                "Arduino ESP8266 image (eboot + app)".into()
            },
        )),
        Layout::App(_) if chip == Some(Chip::Esp8266) || chip.is_none() => Err("this is a bare ESP8266 image without eboot: the Arduino ESP8266 Updater copies what it receives to flash 0x0, so it needs the full Arduino image (eboot + app) the Arduino core builds".into()),
        Layout::App(_) if compressed => Err("the ESP32 Updater does not decompress gzip: send the uncompressed .bin".into()),
        Layout::App(_) => Ok(payload(whole, Core::Esp32, "app image".into())),
        Layout::Merged(_) if compressed => Err("the ESP32 Updater does not decompress gzip: send the uncompressed .bin".into()),
        Layout::Merged(m) => {
            let boot = m
                .table
                .as_ref()
                .and_then(|t| t.boot_app())
                .and_then(|p| m.apps.iter().find(|a| a.partition.as_ref() == Some(p)))
                .or_else(|| m.apps.first())
                .ok_or("this merged image holds no app to send (only a bootloader and a partition table)")?;
            let end = signed_end(&boot.image, boot.signature.as_ref(), file.len());
            let name = boot
                .partition
                .as_ref()
                .map_or(String::new(), |p| format!(" {} ({})", p.label, p.app_role()));
            Ok(payload(
                boot.image.offset..end,
                Core::Esp32,
                format!(
                    "app{name} of the merged image, at {:#x}",
                    boot.image.offset
                ),
            ))
        }
    }
}

/// Where an app ends, including its signature block.
fn signed_end(img: &AppImage, sig: Option<&Signature>, len: usize) -> usize {
    let end = match sig {
        None => img.end,
        Some(Signature::SecureBootV1 { offset }) => offset + 68,
        Some(Signature::SecureBootV2 { offset, blocks, .. }) => offset + blocks * 1216,
        Some(Signature::ArduinoSignedOta { .. }) => len,
    };
    end.min(len)
}

// =============================================================================================
// ArduinoOTA messages
// =============================================================================================

/// Lower-case hex MD5, the form every message uses.
pub fn md5_hex(data: &[u8]) -> String {
    hex(&checksum::md5(data))
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&checksum::sha256(data))
}

/// The invitation: `"<cmd> <host_port> <size> <md5>\n"`.
pub fn invitation(target: Target, host_port: u16, size: usize, md5: &str) -> String {
    format!("{} {host_port} {size} {md5}\n", target.command())
}

/// The two challenge-response schemes, told apart by the nonce's length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthScheme {
    /// 32-hex nonce: every ESP8266 core, arduino-esp32 before 3.3.1.
    LegacyMd5,
    /// 64-hex nonce: arduino-esp32 3.3.1 and later.
    Pbkdf2Sha256,
}

impl AuthScheme {
    /// The scheme of a nonce (32 or 64 hex digits), `None` for anything else.
    pub fn of_nonce(nonce: &str) -> Option<AuthScheme> {
        if !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        match nonce.len() {
            32 => Some(AuthScheme::LegacyMd5),
            64 => Some(AuthScheme::Pbkdf2Sha256),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            AuthScheme::LegacyMd5 => "MD5 challenge (legacy)",
            AuthScheme::Pbkdf2Sha256 => "PBKDF2-HMAC-SHA256",
        }
    }
}

/// How the firmware stored its password: `setPassword` stores SHA-256 (arduino-esp32
/// 3.3.1+) or MD5 (everything older); `setPasswordHash` stores whatever hash it is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PasswordHash {
    Md5,
    Sha256,
}

/// The hex password hash the device keeps.
pub fn password_hash(password: &str, kind: PasswordHash) -> String {
    match kind {
        PasswordHash::Md5 => md5_hex(password.as_bytes()),
        PasswordHash::Sha256 => sha256_hex(password.as_bytes()),
    }
}

/// The client nonce, as `espota.py` makes it: a hash of file name, size, file MD5 and the
/// device's address (the device only checks its length).
pub fn cnonce(scheme: AuthScheme, file_name: &str, size: usize, md5: &str, device: &str) -> String {
    let text = format!("{file_name}{size}{md5}{device}");
    match scheme {
        AuthScheme::LegacyMd5 => md5_hex(text.as_bytes()),
        AuthScheme::Pbkdf2Sha256 => sha256_hex(text.as_bytes()),
    }
}

/// Legacy response: `MD5hex(password_md5 ":" nonce ":" cnonce)`.
pub fn legacy_response(password_md5: &str, nonce: &str, cnonce: &str) -> String {
    md5_hex(format!("{password_md5}:{nonce}:{cnonce}").as_bytes())
}

/// arduino-esp32 3.3.1+ response:
/// `SHA256hex(hex(PBKDF2-HMAC-SHA256(hash, nonce ":" cnonce, 10000, 32)) ":" nonce ":" cnonce)`.
pub fn pbkdf2_response(password_hash: &str, nonce: &str, cnonce: &str) -> String {
    let salt = format!("{nonce}:{cnonce}");
    let mut dk = [0u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(
        password_hash.as_bytes(),
        salt.as_bytes(),
        PBKDF2_ROUNDS,
        &mut dk,
    );
    sha256_hex(format!("{}:{nonce}:{cnonce}", hex(&dk)).as_bytes())
}

/// An answer to an `AUTH` challenge.
#[derive(Clone, PartialEq, Eq)]
pub struct AuthAnswer {
    pub cnonce: String,
    pub response: String,
}

impl std::fmt::Debug for AuthAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The response is derived from the password: keep it out of logs.
        f.debug_struct("AuthAnswer").finish_non_exhaustive()
    }
}

impl AuthAnswer {
    /// The UDP message: `"200 <cnonce> <response>\n"`.
    pub fn message(&self) -> String {
        format!("{AUTH_COMMAND} {} {}\n", self.cnonce, self.response)
    }
}

/// The answer to `nonce` for `password`. The legacy scheme always uses the MD5 password
/// hash; the PBKDF2 scheme uses `hash` (SHA-256 first, MD5 as the fallback).
pub fn auth_answer(
    scheme: AuthScheme,
    hash: PasswordHash,
    password: &str,
    nonce: &str,
    cnonce: String,
) -> AuthAnswer {
    let response = match scheme {
        AuthScheme::LegacyMd5 => {
            legacy_response(&password_hash(password, PasswordHash::Md5), nonce, &cnonce)
        }
        AuthScheme::Pbkdf2Sha256 => pbkdf2_response(&password_hash(password, hash), nonce, &cnonce),
    };
    AuthAnswer { cnonce, response }
}

/// A UDP reply of the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Ok,
    Auth {
        nonce: String,
        scheme: AuthScheme,
    },
    AuthFailed,
    /// `ERR: ...`: the ESP8266 Updater refused to begin (the text says why).
    Refused(String),
    /// Anything else (printable, shortened).
    Other(String),
}

/// Reads a UDP reply.
pub fn parse_reply(bytes: &[u8]) -> Reply {
    let text = printable(bytes);
    let t = text.trim();
    if t == "OK" {
        return Reply::Ok;
    }
    if let Some(rest) = t.strip_prefix("AUTH ") {
        let nonce = rest.trim();
        if let Some(scheme) = AuthScheme::of_nonce(nonce) {
            return Reply::Auth {
                nonce: nonce.to_string(),
                scheme,
            };
        }
    }
    if t.starts_with("Authentication Failed") {
        return Reply::AuthFailed;
    }
    if t.starts_with("ERR") {
        return Reply::Refused(t.to_string());
    }
    Reply::Other(t.to_string())
}

/// The most characters of device text an error message quotes.
pub const PEER_TEXT_MAX: usize = 200;

/// Device text made safe to put into a message: printable ASCII stays, line breaks
/// stay (`\n`; `\r` and tabs become spaces), a backslash is doubled, and everything
/// else (control characters such as the ESC of ANSI sequences, non-ASCII characters,
/// bytes that are not UTF-8) is written as `\xNN` or `\u{...}`. At most
/// [`PEER_TEXT_MAX`] characters, then `...`.
pub fn printable(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut shown = 0usize;
    for chunk in bytes.utf8_chunks() {
        let escaped = chunk
            .valid()
            .chars()
            .map(|c| match c {
                '\n' => "\n".to_string(),
                '\r' | '\t' => " ".to_string(),
                '\\' => "\\\\".to_string(),
                ' '..='~' => c.to_string(),
                c if c.is_ascii() => format!("\\x{:02x}", c as u32),
                c => format!("\\u{{{:x}}}", c as u32),
            })
            .chain(chunk.invalid().iter().map(|b| format!("\\x{b:02x}")));
        for piece in escaped {
            if shown >= PEER_TEXT_MAX {
                out.push_str("...");
                return out;
            }
            out.push_str(&piece);
            shown += 1;
        }
    }
    out
}

/// The device's final answer on the TCP connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Only progress counts so far (or the `O` of an `OK`).
    Pending,
    /// `OK`. Whether it confirms the update is [`AnswerScanner::complete`]'s to say.
    Ok,
    /// Text that is not `OK` has started but its line has not ended yet: the transfer is
    /// over, the rest of the text is still to come.
    Partial,
    /// A complete answer that is not `OK`: an error line (`ERROR[7]: MD5 verification
    /// failed: ...`, `Wrong Magic Byte`) or anything else (escaped, one line).
    Error(String),
}

/// Digits of unmatched counts kept at most (an honest device needs a few).
const MAX_PENDING: usize = 64;
/// Bytes of the final answer kept at most.
const MAX_ANSWER: usize = 512;
/// How often the ESP32 repeats its last count when no data arrives (`tried < 3`).
const MAX_REPEATS: usize = 3;

/// Reads the TCP stream of a transfer and keeps the account of what the device
/// acknowledged.
///
/// The device answers every piece it wrote with the decimal count of its bytes, with no
/// delimiter, and ends with `OK` or an error line. TCP may split one count over two reads
/// or join several into one (`5361460`), so the counts cannot be read off one by one.
/// The rule:
///
/// 1. The host sends the next chunk only once **every byte sent so far is acknowledged**
///    (or the device gave its final answer, or the wait timed out). So the digits received
///    since the last such point acknowledge exactly the bytes of one chunk, and a count
///    never exceeds what was sent.
/// 2. Those digits acknowledge the chunk when they can be cut into counts (positive, no
///    leading zero, whitespace is always a cut) that **add up to exactly** the bytes
///    sent and not yet acknowledged. Coalesced counts are then unambiguous in practice
///    (`536924` after 1460 bytes can only be 536 + 924), and a count split over two reads
///    simply waits for its second half.
/// 3. The ESP32 repeats its last count (up to three times) when no data arrives for a
///    second; such a repeat at the start of the digits acknowledges nothing.
/// 4. The first byte that is neither a digit nor whitespace starts the final answer;
///    digits after it are part of the answer, not acknowledgements. The update is
///    confirmed only by `OK` that begins when every byte was sent and acknowledged
///    ([`AnswerScanner::complete`]); an `OK` before that is a failure.
#[derive(Debug, Clone)]
pub struct AnswerScanner {
    total: usize,
    sent: usize,
    acked: usize,
    /// Digits received since everything sent was last acknowledged; `b' '` where
    /// whitespace separated them.
    pending: Vec<u8>,
    /// The digits of the last count matched (what an ESP32 repeats).
    last: Vec<u8>,
    /// The final answer, from its first byte.
    text: Vec<u8>,
}

impl AnswerScanner {
    /// A scanner for the transfer of `total` bytes.
    pub fn new(total: usize) -> Self {
        AnswerScanner {
            total,
            sent: 0,
            acked: 0,
            pending: Vec::new(),
            last: Vec::new(),
            text: Vec::new(),
        }
    }

    /// Records that `n` more bytes were sent.
    pub fn sent(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.total);
    }

    /// Feeds received bytes; returns what is known so far.
    pub fn feed(&mut self, bytes: &[u8]) -> Answer {
        for &b in bytes {
            if !self.text.is_empty() {
                if self.text.len() < MAX_ANSWER {
                    self.text.push(b);
                }
            } else if b.is_ascii_digit() {
                if self.pending.len() < MAX_PENDING {
                    self.pending.push(b);
                }
            } else if b.is_ascii_whitespace() {
                if self.pending.last().is_some_and(|&l| l != b' ') {
                    self.pending.push(b' ');
                }
            } else {
                // The acknowledgements end where the answer begins.
                self.settle();
                self.text.push(b);
            }
        }
        if self.text.is_empty() {
            self.settle();
        }
        self.state()
    }

    /// The answer as far as it arrived.
    pub fn state(&self) -> Answer {
        match self.text.as_slice() {
            [] | [b'O'] => Answer::Pending,
            [b'O', b'K', ..] => Answer::Ok,
            t if t.contains(&b'\n') || t.len() >= MAX_ANSWER => Answer::Error(self.answer_text()),
            _ => Answer::Partial,
        }
    }

    /// Bytes sent so far.
    pub fn bytes_sent(&self) -> usize {
        self.sent
    }

    /// Bytes the device acknowledged.
    pub fn acknowledged(&self) -> usize {
        self.acked
    }

    /// The image's size.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Whether every byte sent so far is acknowledged (the next chunk may go).
    pub fn all_sent_acknowledged(&self) -> bool {
        self.acked == self.sent && self.pending.is_empty()
    }

    /// Whether the whole image was sent and acknowledged before the final answer began:
    /// the only state in which `OK` confirms the update.
    pub fn complete(&self) -> bool {
        self.sent == self.total && self.acked == self.total && self.unmatched().is_none()
    }

    /// Digits received that acknowledge nothing yet (escaped, bounded), if any.
    pub fn unmatched(&self) -> Option<String> {
        let p = trim_separators(&self.pending);
        (!p.is_empty()).then(|| printable(p))
    }

    /// At the end of the stream: the answer text received, unless it was `OK` or none.
    pub fn at_end(&self) -> Option<String> {
        match self.state() {
            Answer::Ok => None,
            _ if self.text.is_empty() => None,
            _ => Some(self.answer_text()),
        }
    }

    fn answer_text(&self) -> String {
        let t = printable(&self.text);
        t.lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Matches the pending digits against the bytes sent and not yet acknowledged.
    fn settle(&mut self) {
        let room = self.sent - self.acked;
        let mut p: &[u8] = trim_separators(&self.pending);
        if p.is_empty() {
            self.pending.clear();
            return;
        }
        for _ in 0..=MAX_REPEATS {
            if let Some(last) = cut_exact(p, room) {
                self.last = last.to_vec();
                self.acked = self.sent;
                self.pending.clear();
                return;
            }
            // A repeat of the last count acknowledges nothing.
            match p.strip_prefix(self.last.as_slice()) {
                Some(rest) if !self.last.is_empty() => {
                    p = trim_separators(rest);
                    if p.is_empty() {
                        self.pending.clear();
                        return;
                    }
                }
                _ => return,
            }
        }
    }
}

fn trim_separators(p: &[u8]) -> &[u8] {
    let start = p.iter().position(|&b| b != b' ').unwrap_or(p.len());
    let end = p.iter().rposition(|&b| b != b' ').map_or(start, |i| i + 1);
    &p[start..end]
}

/// Whether `p` (digits and single `b' '` cuts, none at either end) can be cut into
/// counts (positive, no leading zero) adding up to exactly `target`; returns the last
/// count of such a cut.
fn cut_exact(p: &[u8], target: usize) -> Option<&[u8]> {
    let count = |d: &[u8]| -> Option<usize> {
        if d.first() == Some(&b'0') || d.len() > 9 {
            return None;
        }
        d.iter().try_fold(0usize, |v, &c| {
            c.is_ascii_digit().then(|| v * 10 + usize::from(c - b'0'))
        })
    };
    // The common case: one count, the whole chunk.
    if count(p) == Some(target) {
        return Some(p);
    }
    if target == 0 {
        return None;
    }
    // reach[i][s]: the first i bytes can be cut into counts adding up to s.
    let n = p.len();
    let w = target + 1;
    let mut reach = vec![false; (n + 1) * w];
    reach[0] = true;
    for i in 0..n {
        if !reach[i * w..(i + 1) * w].contains(&true) {
            continue;
        }
        if p[i] == b' ' {
            for s in 0..w {
                if reach[i * w + s] {
                    reach[(i + 1) * w + s] = true;
                }
            }
            continue;
        }
        if p[i] == b'0' {
            continue;
        }
        let mut v = 0usize;
        for j in i..n {
            if p[j] == b' ' {
                break;
            }
            v = v * 10 + usize::from(p[j] - b'0');
            if v > target {
                break;
            }
            for s in 0..=target - v {
                if reach[i * w + s] {
                    reach[(j + 1) * w + s + v] = true;
                }
            }
        }
    }
    if !reach[n * w + target] {
        return None;
    }
    // The last count: a digit run ending at n that an exact cut can end with.
    (0..n)
        .rev()
        .take_while(|&i| p[i] != b' ')
        .filter_map(|i| {
            let v = count(&p[i..])?;
            (v <= target && reach[i * w + target - v]).then_some(&p[i..])
        })
        .next()
}

// =============================================================================================
// HTTP update servers
// =============================================================================================

/// An `http://host[:port]/path` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
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
    pub boundary: String,
    pub head: Vec<u8>,
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

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;

    // Known-answer vectors computed independently with Python's hashlib (the functions
    // espota.py itself calls), by:
    //
    // python3 - <<'EOF'
    // import hashlib, base64
    // pw = "ota-secret-7"; fn = "firmware.bin"; size = 66400; ip = "192.168.1.50"
    // fmd5 = hashlib.md5(b"thinger").hexdigest()
    // nonce32 = "0123456789abcdef0123456789abcdef"
    // c = hashlib.md5(("%s%u%s%s" % (fn, size, fmd5, ip)).encode()).hexdigest()
    // r = hashlib.md5(("%s:%s:%s" % (hashlib.md5(pw.encode()).hexdigest(), nonce32, c)).encode()).hexdigest()
    // nonce64 = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
    // c2 = hashlib.sha256(("%s%u%s%s" % (fn, size, fmd5, ip)).encode()).hexdigest()
    // for ph in (hashlib.sha256(pw.encode()).hexdigest(), hashlib.md5(pw.encode()).hexdigest()):
    //     dk = hashlib.pbkdf2_hmac("sha256", ph.encode(), (nonce64 + ":" + c2).encode(), 10000).hex()
    //     print(hashlib.sha256((dk + ":" + nonce64 + ":" + c2).encode()).hexdigest())
    // print(base64.b64encode(b"admin:p@ss:w0rd").decode())
    // EOF
    const PASSWORD: &str = "ota-secret-7";
    const FILE: &str = "firmware.bin";
    const SIZE: usize = 66400;
    const IP: &str = "192.168.1.50";
    const FILE_MD5: &str = "b597b28cf5c794878acf5479aaabb097"; // md5(b"thinger")
    const NONCE32: &str = "0123456789abcdef0123456789abcdef";
    const NONCE64: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const LEGACY_CNONCE: &str = "aed4c4422286521df02543ee10a141b8";
    const LEGACY_RESPONSE: &str = "49d055f5830ca8f41a370d6b7b8b1101";
    const SHA_CNONCE: &str = "87e291a1217314798ed0950e603ac3539b3852bf2d9bbf5d6de822b1e51afd71";
    const PW_MD5: &str = "843d83d338d2a025ceb2612b7376e943";
    const PW_SHA256: &str = "4733ffbaeae3b0da8889440aa989153ac3f9c32b19a7fb9411288c54fd830092";
    const PBKDF2_RESPONSE_SHA256_PW: &str =
        "3f81123e3c4153979efb1cc9acbb6c2b7a87fea4d0d217601ec31132bffa2abd";
    const PBKDF2_RESPONSE_MD5_PW: &str =
        "3b9e5540849ea8ecd860bed8021d966a4ac262c5aa207d5b95bdd88d0b0062a6";

    fn prebuilt(name: &str) -> Vec<u8> {
        let path = format!(
            "{}/../../examples/c-firmware/prebuilt/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    /// An ESP8266 v1 image (8-byte header, XOR checksum in the last byte of its block).
    fn v1_image(entry: u32, segments: &[(u32, Vec<u8>)]) -> Vec<u8> {
        let mut v = vec![0xE9, segments.len() as u8, 0, 0x20];
        v.extend(entry.to_le_bytes());
        let mut x = checksum::XOR_SEED;
        for (addr, data) in segments {
            v.extend(addr.to_le_bytes());
            v.extend((data.len() as u32).to_le_bytes());
            v.extend(data);
            x ^= checksum::xor(data);
        }
        while v.len() % 16 != 15 {
            v.push(0);
        }
        v.push(x);
        v
    }

    /// eboot at 0x0, app at 0x1000: what the Arduino ESP8266 core builds.
    fn arduino_image() -> Vec<u8> {
        let mut f = v1_image(0x4010_F000, &[(0x4010_F000, vec![0x11; 64])]);
        f.resize(0x1000, 0xFF);
        f.extend(v1_image(
            0x4010_0000,
            &[
                (0x4010_0000, vec![0x22; 256]),
                (0x3FFE_8000, vec![0x33; 32]),
            ],
        ));
        f
    }

    #[test]
    fn payloads() {
        let app = prebuilt("esp32c3-demo.bin");
        let p = firmware_payload(&app).unwrap();
        assert_eq!(
            (p.range.clone(), p.core, p.chip, p.compressed),
            (0..app.len(), Core::Esp32, Some(Chip::Esp32c3), false)
        );

        // A merged image sends only its boot app, which is the standalone app.
        let merged = prebuilt("esp32c3-demo-merged.bin");
        let p = firmware_payload(&merged).unwrap();
        assert_eq!(p.range, 0x10000..0x10000 + app.len());
        assert_eq!(&merged[p.range.clone()], &app[..]);
        assert_eq!(p.core, Core::Esp32);
        assert!(p.what.contains("merged image, at 0x10000"), "{}", p.what);

        let arduino = arduino_image();
        let p = firmware_payload(&arduino).unwrap();
        assert_eq!(
            (p.range.clone(), p.core, p.compressed),
            (0..arduino.len(), Core::Esp8266, false)
        );
        let gz = crate::format::gzip::compress(&arduino);
        let p = firmware_payload(&gz).unwrap();
        assert_eq!(
            (p.range.clone(), p.core, p.compressed),
            (0..gz.len(), Core::Esp8266, true)
        );

        for (name, bytes, why) in [
            (
                "esp32 gzip",
                crate::format::gzip::compress(&app),
                "does not decompress",
            ),
            ("esp8266 v2", prebuilt("esp8266-demo.bin"), "v2 (0xEA)"),
            ("elf", prebuilt("esp32c3-demo.elf"), "ELF"),
            ("bare esp8266", arduino[0x1000..].to_vec(), "without eboot"),
        ] {
            let e = firmware_payload(&bytes).unwrap_err();
            assert!(e.contains(why), "{name}: {e}");
        }
    }

    #[test]
    fn legacy_known_answer() {
        assert_eq!(md5_hex(b"thinger"), FILE_MD5);
        assert_eq!(password_hash(PASSWORD, PasswordHash::Md5), PW_MD5);
        let c = cnonce(AuthScheme::LegacyMd5, FILE, SIZE, FILE_MD5, IP);
        assert_eq!(c, LEGACY_CNONCE);
        assert_eq!(legacy_response(PW_MD5, NONCE32, &c), LEGACY_RESPONSE);
        // The legacy scheme ignores the requested hash: it is always MD5.
        let a = auth_answer(
            AuthScheme::LegacyMd5,
            PasswordHash::Sha256,
            PASSWORD,
            NONCE32,
            c,
        );
        assert_eq!(a.response, LEGACY_RESPONSE);
        assert_eq!(
            a.message(),
            format!("200 {LEGACY_CNONCE} {LEGACY_RESPONSE}\n")
        );
    }

    #[test]
    fn pbkdf2_known_answers() {
        assert_eq!(password_hash(PASSWORD, PasswordHash::Sha256), PW_SHA256);
        let c = cnonce(AuthScheme::Pbkdf2Sha256, FILE, SIZE, FILE_MD5, IP);
        assert_eq!(c, SHA_CNONCE);
        assert_eq!(
            pbkdf2_response(PW_SHA256, NONCE64, &c),
            PBKDF2_RESPONSE_SHA256_PW
        );
        assert_eq!(pbkdf2_response(PW_MD5, NONCE64, &c), PBKDF2_RESPONSE_MD5_PW);
        let a = auth_answer(
            AuthScheme::Pbkdf2Sha256,
            PasswordHash::Md5,
            PASSWORD,
            NONCE64,
            c.clone(),
        );
        assert_eq!(a.response, PBKDF2_RESPONSE_MD5_PW);
        assert!(!format!("{a:?}").contains(&a.response));
    }

    #[test]
    fn invitation_and_replies() {
        assert_eq!(
            invitation(Target::Firmware, 41234, 66400, FILE_MD5),
            format!("0 41234 66400 {FILE_MD5}\n")
        );
        assert_eq!(
            invitation(Target::Filesystem, 1, 2, "x"),
            "100 1 2 x\n".to_string()
        );
        assert_eq!(parse_reply(b"OK"), Reply::Ok);
        assert_eq!(
            parse_reply(format!("AUTH {NONCE32}").as_bytes()),
            Reply::Auth {
                nonce: NONCE32.into(),
                scheme: AuthScheme::LegacyMd5
            }
        );
        assert_eq!(
            parse_reply(format!("AUTH {NONCE64}").as_bytes()),
            Reply::Auth {
                nonce: NONCE64.into(),
                scheme: AuthScheme::Pbkdf2Sha256
            }
        );
        assert_eq!(parse_reply(b"Authentication Failed"), Reply::AuthFailed);
        assert_eq!(
            parse_reply(b"ERR: ERROR[4]: Not Enough Space\n"),
            Reply::Refused("ERR: ERROR[4]: Not Enough Space".into())
        );
        assert!(matches!(parse_reply(b"AUTH 1234"), Reply::Other(_)));
    }

    /// Feeds `reads` after sending `chunks`, one read per chunk (a read may be empty).
    fn scan(total: usize, steps: &[(usize, &[u8])]) -> (AnswerScanner, Answer) {
        let mut s = AnswerScanner::new(total);
        let mut a = Answer::Pending;
        for (chunk, read) in steps {
            s.sent(*chunk);
            a = s.feed(read);
        }
        (s, a)
    }

    #[test]
    fn answers_and_errors() {
        let (s, a) = scan(2920, &[(1460, b"1460"), (1460, b"1460O")]);
        assert_eq!(a, Answer::Pending);
        assert!(s.all_sent_acknowledged());
        let mut s = s;
        assert_eq!(s.feed(b"K"), Answer::Ok);
        assert!(s.complete());

        let (s, a) = scan(1024, &[(1024, b"1024OK")]);
        assert_eq!(a, Answer::Ok);
        assert!(s.complete());

        let (mut s, a) = scan(2000, &[(1460, b"1460ERROR[7]: MD5 verific")]);
        assert_eq!(a, Answer::Partial);
        assert_eq!(
            s.feed(b"ation failed: expected: a, calculated: b\n"),
            Answer::Error("ERROR[7]: MD5 verification failed: expected: a, calculated: b".into())
        );
        assert_eq!(s.acknowledged(), 1460);

        // ESP32: the bare Updater message, println'd.
        let (_, a) = scan(
            2048,
            &[(1024, b"1024"), (1024, b"1024Wrong Magic Byte\r\n")],
        );
        assert_eq!(a, Answer::Error("Wrong Magic Byte".into()));
        let (s, _) = scan(4096, &[(1024, b"1024Abor")]);
        assert_eq!(s.at_end(), Some("Abor".into()));
        let (s, _) = scan(4096, &[(1024, b"1024")]);
        assert_eq!(s.at_end(), None);
    }

    #[test]
    fn ok_before_the_last_acknowledgement_is_not_complete() {
        // The device says OK after the first chunk of 66400 bytes.
        let (s, a) = scan(66400, &[(1024, b"1024OK")]);
        assert_eq!(a, Answer::Ok);
        assert!(!s.complete());
        assert_eq!(
            (s.acknowledged(), s.bytes_sent(), s.total()),
            (1024, 1024, 66400)
        );
        // Everything sent, the last chunk not acknowledged before OK.
        let (s, a) = scan(2048, &[(1024, b"1024"), (1024, b"OK1024")]);
        assert_eq!(a, Answer::Ok);
        assert!(!s.complete());
        assert_eq!(s.acknowledged(), 1024);
        // Counts that claim more than was sent acknowledge nothing.
        let (s, a) = scan(2048, &[(1024, b"2048OK")]);
        assert_eq!(a, Answer::Ok);
        assert_eq!(s.acknowledged(), 0);
        assert_eq!(s.unmatched().as_deref(), Some("2048"));
        // Extra counts after everything was acknowledged spoil the OK.
        let (s, _) = scan(1024, &[(1024, b"1024 17OK")]);
        assert!(!s.complete());
    }

    #[test]
    fn coalesced_and_split_counts() {
        // Two pieces of one chunk in one read: only 536 + 924 adds up to 1460.
        let (s, _) = scan(1460, &[(1460, b"536924")]);
        assert!(s.all_sent_acknowledged());
        // A small first piece: 52 + 812 (the greedy 528 + 12 would not add up).
        let (s, _) = scan(864, &[(864, b"52812")]);
        assert!(s.all_sent_acknowledged());
        // A count split over two reads waits for its second half.
        let mut s = AnswerScanner::new(2920);
        s.sent(1460);
        assert_eq!(s.feed(b"14"), Answer::Pending);
        assert!(!s.all_sent_acknowledged());
        assert_eq!(s.acknowledged(), 0);
        s.feed(b"60");
        assert!(s.all_sent_acknowledged());
        assert_eq!(s.acknowledged(), 1460);
        // Whitespace is always a cut.
        let (s, _) = scan(1460, &[(1460, b"146 0")]);
        assert!(!s.all_sent_acknowledged());
        let (s, _) = scan(1460, &[(1460, b"1000 460\r\n")]);
        assert!(s.all_sent_acknowledged());
        // Less than was sent is not an acknowledgement of the chunk.
        let (s, _) = scan(2048, &[(1024, b"1000")]);
        assert_eq!(s.acknowledged(), 0);
        assert_eq!(s.unmatched().as_deref(), Some("1000"));
    }

    #[test]
    fn esp32_repeats_of_the_last_count_acknowledge_nothing() {
        // The device repeated 1024 (no data for a second) before acknowledging the next
        // chunk; at the end a repeat arrives on its own.
        let (s, _) = scan(
            3000,
            &[(1024, b"1024"), (1024, b"10241024"), (952, b"1024952")],
        );
        assert!(s.complete());
        let (s, _) = scan(2048, &[(1024, b"1024"), (1024, b"1024")]);
        assert_eq!(s.acknowledged(), 2048);
        let mut s = s;
        assert_eq!(s.feed(b"1024"), Answer::Pending);
        assert!(s.complete());
        // A repeat that is not the last count is no repeat.
        let (s, _) = scan(3072, &[(1024, b"1024"), (1024, b"5121024")]);
        assert_eq!(s.acknowledged(), 1024);
    }

    #[test]
    fn device_text_is_escaped_and_bounded() {
        let t = printable(b"\x1b[31mred\x07 \xff\xfe caf\xc3\xa9 \\ \xe2\x80\xae\r\tend\n");
        assert_eq!(
            t,
            "\\x1b[31mred\\x07 \\xff\\xfe caf\\u{e9} \\\\ \\u{202e}  end\n"
        );
        assert!(!t.chars().any(|c| c.is_control() && c != '\n'));
        let long = printable(&[b'A'; 5000]);
        assert_eq!(long.len(), PEER_TEXT_MAX + 3);
        // The scanner's answer text too.
        let (_, a) = scan(4096, &[(1024, b"1024\x1b[2J\xffgarbage\n")]);
        assert_eq!(a, Answer::Error("\\x1b[2J\\xffgarbage".into()));
        let mut s = AnswerScanner::new(4096);
        s.sent(1024);
        assert_eq!(
            s.feed(&[b'x'; 600]),
            Answer::Error("x".repeat(PEER_TEXT_MAX) + "...")
        );
    }

    #[test]
    fn urls() {
        let u = HttpUrl::parse("http://192.168.1.50/update").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("192.168.1.50", 80, "/update")
        );
        assert_eq!(u.host_header(), "192.168.1.50");
        assert_eq!(u.origin(), "http://192.168.1.50");
        let u = HttpUrl::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((u.port, u.path.as_str()), (8080, "/"));
        assert_eq!(u.origin(), "http://127.0.0.1:8080");
        assert_eq!(u.to_string(), "http://127.0.0.1:8080/");
        let u = HttpUrl::parse("esp.local:81/fw").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.path.as_str()),
            ("esp.local", 81, "/fw")
        );
        assert!(HttpUrl::parse("https://x/update").is_err());
        assert!(HttpUrl::parse("http://u:secret@x/update").is_err());
        assert!(HttpUrl::parse("http://x:0/").is_err());
        assert!(HttpUrl::parse("http:///update").is_err());
    }

    #[test]
    fn basic_auth_and_base64() {
        // base64.b64encode(b"admin:p@ss:w0rd") (see the command above).
        assert_eq!(
            basic_authorization("admin", "p@ss:w0rd"),
            "Basic YWRtaW46cEBzczp3MHJk"
        );
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn multipart_body() {
        let data = b"\xE9\x03binary--data\r\n";
        let m = Multipart::new("firmware", "fw\".bin", data);
        let body = m.body(data);
        assert_eq!(body.len(), m.len(data.len()));
        let text = String::from_utf8_lossy(&body);
        assert!(text.starts_with(&format!("--{}\r\n", m.boundary)));
        assert!(text.contains("name=\"firmware\"; filename=\"fw.bin\"\r\n"));
        assert!(text.ends_with(&format!("\r\n--{}--\r\n", m.boundary)));
        assert_eq!(
            m.content_type(),
            format!("multipart/form-data; boundary={}", m.boundary)
        );
        // The boundary never occurs in the data.
        let first = Multipart::new("f", "x", b"").boundary;
        let tricky = [first.as_bytes(), b"xyz"].concat();
        let m2 = Multipart::new("f", "x", &tricky);
        assert!(!contains(&tricky, m2.boundary.as_bytes()));
    }

    #[test]
    fn http_outcomes() {
        assert_eq!(
            update_server_outcome(
                200,
                b"<META http-equiv=\"refresh\" content=\"15;URL=/\">Update Success! Rebooting..."
            ),
            HttpOutcome::Success
        );
        assert_eq!(
            update_server_outcome(200, b"Update error: ERROR[4]: Not Enough Space\n"),
            HttpOutcome::Refused("ERROR[4]: Not Enough Space".into())
        );
        assert_eq!(
            update_server_outcome(200, b"Update error: Wrong origin received!"),
            HttpOutcome::WrongOrigin
        );
        assert_eq!(update_server_outcome(401, b""), HttpOutcome::Unauthorized);
        assert!(matches!(
            update_server_outcome(404, b"Not found: /update"),
            HttpOutcome::Unexpected(404, _)
        ));
        assert_eq!(elegant_outcome(200, b"OK"), HttpOutcome::Success);
        assert_eq!(
            elegant_outcome(400, b"MD5 Check Failed\r\n\n"),
            HttpOutcome::Refused("MD5 Check Failed".into())
        );
        assert_eq!(elegant_base("/update"), "");
        assert_eq!(elegant_base("/"), "");
        assert_eq!(elegant_base("/dev/update/"), "/dev");
        assert_eq!(
            elegant_start_path("", Target::Firmware, FILE_MD5),
            format!("/ota/start?mode=fr&hash={FILE_MD5}")
        );
        assert_eq!(elegant_upload_path("/dev"), "/dev/ota/upload");
        assert_eq!(
            detect_server(Some("gzip"), b"\x1f\x8b..."),
            Some(HttpServerKind::ElegantOta)
        );
        assert_eq!(
            detect_server(
                None,
                b"<form method='POST' action='' enctype='multipart/form-data'><input type='file' name='firmware'>"
            ),
            Some(HttpServerKind::UpdateServer)
        );
        assert_eq!(detect_server(None, b"hello"), None);
    }
}
