//! ArduinoOTA: the invitation, both authentication schemes, the device's replies and
//! the acknowledgements of a transfer.

use super::{AUTH_COMMAND, PBKDF2_ROUNDS, Target};
use crate::checksum::{self, hex};
use serde::Serialize;

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

    /// `MD5 challenge` or `PBKDF2-HMAC-SHA256`.
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
    /// `MD5hex(password)`: every ESP8266 core, and arduino-esp32 firmware that stored an MD5 hash.
    Md5,
    /// `SHA256hex(password)`: arduino-esp32 3.3.1 and later.
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
    /// The client nonce sent.
    pub cnonce: String,
    /// The response sent.
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
    /// `OK`: go ahead, no password.
    Ok,
    /// `AUTH <nonce>`: a password is needed.
    Auth {
        /// The device's nonce.
        nonce: String,
        /// The scheme its length tells.
        scheme: AuthScheme,
    },
    /// `Authentication Failed`.
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
