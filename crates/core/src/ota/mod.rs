//! Sending firmware to a running device, the parts without I/O: which bytes to
//! send for each kind of file, the ArduinoOTA messages and both of its
//! authentication schemes, the device's answers, and the HTTP pieces of the
//! ESP8266/ESP32 `HTTPUpdateServer` and ElegantOTA (multipart body, Basic
//! authorization, `Origin`, reading the verdict from the body).
//!
//! The network side lives in `thinger-patch-delivery`; this module is part of
//! the core and builds for `wasm32-unknown-unknown`. One file per section:
//! [`payload`] (which bytes to send), [`arduino`] (ArduinoOTA), [`http`] (the
//! HTTP update servers, and reading an HTTP/1.1 answer).
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

pub mod arduino;
pub mod http;
pub mod payload;

pub use arduino::*;
pub use http::*;
pub use payload::*;

use crate::chip::Chip;
use serde::Serialize;

/// `U_AUTH`: the command word of an authentication answer.
pub const AUTH_COMMAND: u32 = 200;
/// PBKDF2 iterations of the arduino-esp32 3.3.1+ scheme.
pub const PBKDF2_ROUNDS: u32 = 10_000;

/// The Arduino core whose ArduinoOTA and Updater the device runs: it decides the
/// default port, the chunk size `espota.py` uses, and what the device accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Core {
    /// The ESP8266 Arduino core.
    Esp8266,
    /// The ESP32 Arduino core (arduino-esp32).
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

    /// `ESP8266` or `ESP32`.
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

    /// What is sent, for people: `firmware` or `file-system image`.
    pub fn what(self) -> &'static str {
        match self {
            Target::Firmware => "firmware",
            Target::Filesystem => "file-system image",
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

#[cfg(test)]
mod tests {
    use super::http::contains;
    use super::*;
    use crate::checksum;

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
