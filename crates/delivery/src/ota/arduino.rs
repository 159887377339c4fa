//! The host side of ArduinoOTA (what `espota.py` does): invitation over UDP,
//! challenge-response authentication (both schemes), then the device connects
//! back by TCP and receives the image in chunks, answering each with a count,
//! and at the end `OK` or an error line. Every wait is bounded.

use crate::error::Error;
use crate::progress::Progress;
use serde::Serialize;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};
use thinger_patch_core::ota::{
    self as proto, Answer, AnswerScanner, AuthScheme, Core, PasswordHash, Reply, Target,
};
use thinger_patch_core::values::Value;

/// One upload.
pub struct Upload<'a> {
    /// The device as the user named it (for messages).
    pub host: &'a str,
    /// Its resolved address and ArduinoOTA UDP port.
    pub device: SocketAddr,
    /// The Arduino core it runs (chunk size, default port).
    pub core: Core,
    /// Firmware or file system.
    pub target: Target,
    /// The bytes to send.
    pub data: &'a [u8],
    /// The file name `espota.py` would hash into the client nonce.
    pub file_name: &'a str,
    /// The OTA password (never printed).
    pub password: Option<&'a Value>,
    /// Local TCP port to offer; `None` lets the system choose a free one.
    pub host_port: Option<u16>,
    /// Each wait: invitation reply, authentication reply, the device's connection, each
    /// chunk's answer.
    pub timeout: Duration,
    /// The wait for the final answer after the last byte.
    pub result_timeout: Duration,
    /// Invitations to send before giving up.
    pub invitations: u32,
}

/// How the device was authenticated.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AuthUsed {
    /// The scheme the device asked for.
    pub scheme: AuthScheme,
    /// The password hash that was accepted.
    pub password_hash: PasswordHash,
}

/// A finished upload.
#[derive(Debug, Clone)]
pub struct Sent {
    /// How the device was authenticated, if it asked.
    pub auth: Option<AuthUsed>,
    /// The local address and port the device connected back to.
    pub offered: SocketAddr,
}

fn device_error(message: impl Into<String>) -> Error {
    Error::device(message)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0} s")
    } else {
        format!("{s} s")
    }
}

/// Runs the whole exchange.
pub fn send(u: &Upload, progress: &mut dyn Progress) -> Result<Sent, Error> {
    let md5 = proto::md5_hex(u.data);
    let unspecified: SocketAddr = if u.device.is_ipv4() {
        "0.0.0.0:0".parse().expect("address")
    } else {
        "[::]:0".parse().expect("address")
    };
    let net = |doing: &str, e: std::io::Error| device_error(format!("cannot {doing}: {e}"));
    let udp = UdpSocket::bind(unspecified).map_err(|e| net("open a UDP socket", e))?;
    udp.connect(u.device)
        .map_err(|e| net(&format!("reach {} ({})", u.host, u.device), e))?;
    udp.set_read_timeout(Some(u.timeout))
        .map_err(|e| net("set a UDP timeout", e))?;
    // The device connects back to the invitation's source address: the address this
    // computer uses to reach it.
    let local_ip = udp
        .local_addr()
        .map_err(|e| net("read the local address", e))?
        .ip();
    let listener = TcpListener::bind((local_ip, u.host_port.unwrap_or(0))).map_err(|e| {
        device_error(match u.host_port {
            Some(p) => format!(
                "cannot listen on {local_ip}:{p} for the device's connection: {e}; choose another --host-port"
            ),
            None => format!("cannot listen on {local_ip} for the device's connection: {e}"),
        })
    })?;
    let offered = listener
        .local_addr()
        .map_err(|e| net("read the listening address", e))?;
    let invitation = proto::invitation(u.target, offered.port(), u.data.len(), &md5);

    let auth = match invite(&udp, u, &invitation)? {
        Reply::Ok => None,
        Reply::Auth { nonce, scheme } => {
            Some(authenticate(&udp, u, &invitation, &md5, nonce, scheme)?)
        }
        Reply::Refused(text) => return Err(refused_at_begin(u, &text)),
        Reply::AuthFailed => {
            return Err(device_error(format!(
                "{} answered the invitation with \"Authentication Failed\"",
                u.host
            )));
        }
        Reply::Other(text) => {
            return Err(device_error(format!(
                "{} ({}) gave an unexpected answer to the invitation: \"{text}\"; is this an ArduinoOTA port?",
                u.host, u.device
            )));
        }
    };
    drop(udp);
    let stream = accept(&listener, u, offered)?;
    transfer(stream, u, progress)?;
    Ok(Sent { auth, offered })
}

/// Sends the invitation up to `u.invitations` times; returns the first reply.
fn invite(udp: &UdpSocket, u: &Upload, invitation: &str) -> Result<Reply, Error> {
    let tries = u.invitations.max(1);
    let mut buf = [0u8; 256];
    for _ in 0..tries {
        if let Err(e) = udp.send(invitation.as_bytes()) {
            return Err(unreachable(u, &e));
        }
        match udp.recv(&mut buf) {
            Ok(n) => return Ok(proto::parse_reply(&buf[..n])),
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Err(unreachable(u, &e)),
        }
    }
    Err(device_error(format!(
        "no answer from {} ({}, UDP) to {tries} invitation(s), waiting {} for each: check the address, that the firmware runs ArduinoOTA (ArduinoOTA.begin() in setup(), ArduinoOTA.handle() in loop()) on UDP port {} (--ota-port), and that no firewall drops UDP to it",
        u.host,
        u.device,
        secs(u.timeout),
        u.device.port()
    ))
    .with_code(NO_ANSWER))
}

/// [`Error::code`] of an upload the device never answered (offline, or no ArduinoOTA there).
pub const NO_ANSWER: &str = "ota_no_answer";

fn unreachable(u: &Upload, e: &std::io::Error) -> Error {
    let e = if e.kind() == ErrorKind::ConnectionRefused {
        device_error(format!(
            "nothing listens on {} ({}, UDP): the device refused the invitation (ICMP port unreachable); check --ota-port ({} by default for the {} core) and that the firmware runs ArduinoOTA",
            u.host,
            u.device,
            u.core.default_port(),
            u.core.name()
        ))
    } else {
        device_error(format!(
            "cannot send the invitation to {} ({}): {e}",
            u.host, u.device
        ))
    };
    e.with_code(NO_ANSWER)
}

fn refused_at_begin(u: &Upload, text: &str) -> Error {
    let reason = text.trim_start_matches("ERR:").trim();
    device_error(format!(
        "{} refused the update before the transfer: {reason} (the Updater could not begin: an image of {} bytes must fit the device's free sketch space or file system)",
        u.host,
        u.data.len()
    ))
}

/// Answers the challenge. With the PBKDF2 scheme the SHA-256 password hash is tried
/// first, then (after a new invitation: a failed attempt leaves the device idle) the MD5
/// hash, for firmware that stored one with `setPasswordHash`.
fn authenticate(
    udp: &UdpSocket,
    u: &Upload,
    invitation: &str,
    md5: &str,
    first_nonce: String,
    scheme: AuthScheme,
) -> Result<AuthUsed, Error> {
    let password = u.password.ok_or_else(|| {
        device_error(format!(
            "{} asks for the OTA password ({} scheme): pass it with --password-env VAR or --password-prompt",
            u.host,
            scheme.name()
        ))
    })?;
    let hashes: &[PasswordHash] = match scheme {
        AuthScheme::LegacyMd5 => &[PasswordHash::Md5],
        AuthScheme::Pbkdf2Sha256 => &[PasswordHash::Sha256, PasswordHash::Md5],
    };
    let device_ip = u.device.ip().to_string();
    let mut nonce = first_nonce;
    let mut buf = [0u8; 256];
    for (i, &hash) in hashes.iter().enumerate() {
        if i > 0 {
            nonce = match invite(udp, u, invitation)? {
                Reply::Auth {
                    nonce,
                    scheme: AuthScheme::Pbkdf2Sha256,
                } => nonce,
                Reply::Refused(text) => return Err(refused_at_begin(u, &text)),
                other => {
                    return Err(device_error(format!(
                        "{} gave an unexpected answer to the second invitation (for the MD5 password-hash attempt): {}",
                        u.host,
                        describe(&other)
                    )));
                }
            };
        }
        let cnonce = proto::cnonce(scheme, u.file_name, u.data.len(), md5, &device_ip);
        let answer = proto::auth_answer(scheme, hash, password.expose(), &nonce, cnonce);
        udp.send(answer.message().as_bytes())
            .map_err(|e| unreachable(u, &e))?;
        match udp.recv(&mut buf) {
            Ok(n) => match proto::parse_reply(&buf[..n]) {
                Reply::Ok => {
                    return Ok(AuthUsed {
                        scheme,
                        password_hash: hash,
                    });
                }
                Reply::AuthFailed => continue,
                Reply::Refused(text) => return Err(refused_at_begin(u, &text)),
                other => {
                    return Err(device_error(format!(
                        "{} gave an unexpected answer to the authentication: {}",
                        u.host,
                        describe(&other)
                    )));
                }
            },
            Err(e) if is_timeout(&e) => {
                return Err(device_error(format!(
                    "no answer from {} to the authentication within {}",
                    u.host,
                    secs(u.timeout)
                )));
            }
            Err(e) => return Err(unreachable(u, &e)),
        }
    }
    let tried = match scheme {
        AuthScheme::LegacyMd5 => "legacy MD5 challenge".to_string(),
        AuthScheme::Pbkdf2Sha256 => {
            "PBKDF2-HMAC-SHA256 challenge with the SHA-256 password hash, then with the MD5 password hash".to_string()
        }
    };
    Err(device_error(format!(
        "wrong OTA password: {} answered \"Authentication Failed\" (tried the {tried}); check the password the firmware sets with ArduinoOTA.setPassword() or setPasswordHash()",
        u.host
    )))
}

fn describe(r: &Reply) -> String {
    match r {
        Reply::Ok => "OK".into(),
        Reply::Auth { nonce, .. } => format!("AUTH with a {}-digit nonce", nonce.len()),
        Reply::AuthFailed => "Authentication Failed".into(),
        Reply::Refused(t) | Reply::Other(t) => format!("\"{t}\""),
    }
}

/// Waits for the device's TCP connection. Only the device may connect: the image holds
/// personal values.
fn accept(listener: &TcpListener, u: &Upload, offered: SocketAddr) -> Result<TcpStream, Error> {
    listener
        .set_nonblocking(true)
        .map_err(|e| device_error(format!("cannot poll the listening socket: {e}")))?;
    let deadline = Instant::now() + u.timeout;
    let mut strangers: Vec<IpAddr> = Vec::new();
    loop {
        match listener.accept() {
            Ok((stream, peer)) => {
                if peer.ip() == u.device.ip()
                    || (peer.ip().is_loopback() && u.device.ip().is_loopback())
                {
                    stream.set_nonblocking(false).map_err(|e| {
                        device_error(format!("cannot use the device's connection: {e}"))
                    })?;
                    return Ok(stream);
                }
                // Not the device: refuse it, keep waiting.
                drop(stream);
                if !strangers.contains(&peer.ip()) {
                    strangers.push(peer.ip());
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                if Instant::now() >= deadline {
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(device_error(format!(
                    "waiting for the device's connection failed: {e}"
                )));
            }
        }
    }
    let strangers = if strangers.is_empty() {
        String::new()
    } else {
        format!(
            " (connections from {} were refused: they did not come from the device's address {}; behind NAT use the device's own network)",
            strangers
                .iter()
                .map(IpAddr::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            u.device.ip()
        )
    };
    Err(device_error(format!(
        "no response from device: {} accepted the invitation but did not connect back within {} to {}:{} (TCP), the address and port this computer offered{strangers}. \
A firewall on this computer, a VPN, WSL or a virtual machine (NAT), or a router between subnets usually blocks that connection: \
allow incoming TCP connections on port {} (pin it with --host-port {} to open just that one), or run thinger-patch on a computer in the device's network",
        u.host,
        secs(u.timeout),
        offered.ip(),
        offered.port(),
        offered.port(),
        offered.port()
    )))
}

/// Streams the image and reads the device's answers: the next chunk goes only once every
/// byte sent so far is acknowledged (see [`AnswerScanner`] for the accounting rule).
fn transfer(mut stream: TcpStream, u: &Upload, progress: &mut dyn Progress) -> Result<(), Error> {
    let setup =
        |e: std::io::Error| device_error(format!("cannot configure the device's connection: {e}"));
    stream.set_nodelay(true).map_err(setup)?;
    stream.set_write_timeout(Some(u.timeout)).map_err(setup)?;
    let total = u.data.len();
    let mut acks = AnswerScanner::new(total);
    let mut buf = [0u8; 512];
    progress.start(u.target.what(), total as u64);
    for chunk in u.data.chunks(u.core.chunk_len()) {
        if let Err(e) = stream.write_all(chunk) {
            return Err(after_failure(&mut stream, &mut acks, u, &e));
        }
        acks.sent(chunk.len());
        let deadline = Instant::now() + u.timeout;
        while !acks.all_sent_acknowledged() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(stalled(u, &acks));
            }
            stream.set_read_timeout(Some(left)).map_err(setup)?;
            match stream.read(&mut buf) {
                Ok(0) => return Err(closed(&acks, u)),
                Ok(n) => match acks.feed(&buf[..n]) {
                    Answer::Pending => {}
                    Answer::Ok => return confirmed(&acks, u, progress),
                    Answer::Error(text) => return Err(refused(u, &acks, &text)),
                    Answer::Partial => return Err(rest_of_answer(&mut stream, &mut acks, u)),
                },
                Err(e) if is_timeout(&e) => return Err(stalled(u, &acks)),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(after_failure(&mut stream, &mut acks, u, &e)),
            }
        }
        progress.advance(acks.acknowledged() as u64);
    }
    progress.finish(false);
    // The final answer: the device checks the MD5 and the image, then says OK.
    let deadline = Instant::now() + u.result_timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(device_error(format!(
                "{} acknowledged all {total} bytes but gave no final answer within {}",
                u.host,
                secs(u.result_timeout)
            )));
        }
        stream.set_read_timeout(Some(left)).map_err(setup)?;
        match stream.read(&mut buf) {
            Ok(0) => return Err(closed(&acks, u)),
            Ok(n) => match acks.feed(&buf[..n]) {
                Answer::Ok => return confirmed(&acks, u, progress),
                Answer::Error(text) => return Err(refused(u, &acks, &text)),
                Answer::Partial => return Err(rest_of_answer(&mut stream, &mut acks, u)),
                Answer::Pending => {}
            },
            Err(e) if is_timeout(&e) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(after_failure(&mut stream, &mut acks, u, &e)),
        }
    }
}

/// `X of Y bytes (Z sent)`, and the digits that matched nothing, for messages.
fn account(acks: &AnswerScanner) -> String {
    let mut s = format!(
        "acknowledged {} of {} bytes ({} sent)",
        acks.acknowledged(),
        acks.total(),
        acks.bytes_sent()
    );
    if let Some(d) = acks.unmatched() {
        s.push_str(&format!(
            "; its counts \"{d}\" do not add up to the bytes sent"
        ));
    }
    s
}

/// `OK`: a success only when it came after the device acknowledged every byte.
fn confirmed(acks: &AnswerScanner, u: &Upload, progress: &mut dyn Progress) -> Result<(), Error> {
    progress.finish(false);
    if acks.complete() {
        return Ok(());
    }
    Err(device_error(format!(
        "{} answered OK but {}: a device confirms only after it received and checked the whole image, so this update is not confirmed (the device may not hold the new firmware); check what runs on it and try again",
        u.host,
        account(acks)
    )))
}

fn stalled(u: &Upload, acks: &AnswerScanner) -> Error {
    device_error(format!(
        "{} stopped answering: no acknowledgement within {}; it {}; the connection stalled (WiFi, or the device is busy)",
        u.host,
        secs(u.timeout),
        account(acks)
    ))
}

fn refused(u: &Upload, acks: &AnswerScanner, text: &str) -> Error {
    device_error(format!(
        "{} refused the image: {text}; it {}",
        u.host,
        account(acks)
    ))
}

/// Text that is not `OK` began: nothing more is sent; the rest of its line is read for a
/// moment (bounded), then reported.
fn rest_of_answer(stream: &mut TcpStream, acks: &mut AnswerScanner, u: &Upload) -> Error {
    let deadline = Instant::now() + u.timeout.min(Duration::from_secs(2));
    let mut buf = [0u8; 512];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {
                if let Answer::Error(text) = acks.feed(&buf[..n]) {
                    return refused(u, acks, &text);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            _ => break,
        }
    }
    let text = acks.at_end().unwrap_or_default();
    refused(u, acks, &text)
}

/// The connection closed: an answer received before, or a drop.
fn closed(acks: &AnswerScanner, u: &Upload) -> Error {
    match acks.at_end() {
        Some(text) => refused(u, acks, &text),
        None => device_error(format!(
            "{} closed the connection after {} of {} bytes without confirming the update (no OK); it {}: the device may have rebooted, run out of memory or lost its network; nothing was activated, try again",
            u.host,
            acks.bytes_sent(),
            acks.total(),
            account(acks)
        )),
    }
}

/// A write or read failed: the device may have written its error line before closing.
fn after_failure(
    stream: &mut TcpStream,
    acks: &mut AnswerScanner,
    u: &Upload,
    e: &std::io::Error,
) -> Error {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    let mut buf = [0u8; 512];
    for _ in 0..8 {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => {
                if let Answer::Error(text) = acks.feed(&buf[..n]) {
                    return refused(u, acks, &text);
                }
            }
            _ => break,
        }
    }
    if let Some(text) = acks.at_end() {
        return refused(u, acks, &text);
    }
    device_error(format!(
        "the connection to {} dropped after {} of {} bytes ({e}); it {}: the device may have rebooted, run out of memory or lost its network; nothing was activated, try again",
        u.host,
        acks.bytes_sent(),
        acks.total(),
        account(acks)
    ))
}
