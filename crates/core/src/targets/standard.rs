//! The standard keys of Thinger.io firmware, their capacities and the rules a
//! value must follow. Error texts never contain the value (it may be secret).

/// A standard key.
#[derive(Debug)]
pub struct StandardKey {
    /// The key.
    pub key: &'static str,
    /// The capacity firmware should declare.
    pub capacity: u16,
    /// Always masked, whatever the firmware's flags say.
    pub secret: bool,
    /// The usual value, if there is one.
    pub default: Option<&'static str>,
    /// What a value must look like, for error messages.
    pub rule: &'static str,
    /// What the value is, in plain words (for prompts and forms).
    pub label: &'static str,
    check: fn(&str) -> bool,
}

impl StandardKey {
    /// Checks `value`; the error says what is expected without repeating it.
    pub fn check(&self, value: &str) -> Result<(), RuleViolation> {
        if (self.check)(value) {
            Ok(())
        } else {
            Err(RuleViolation {
                key: self.key,
                rule: self.rule,
                len: value.len(),
                chars: value.chars().count(),
            })
        }
    }
}

/// A value that breaks a standard key's rule: what was expected and how long the value was
/// (never the value itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleViolation {
    /// The standard key.
    pub key: &'static str,
    /// What a value must look like.
    pub rule: &'static str,
    /// The value's length in bytes (as the firmware stores and the cores read it).
    pub len: usize,
    /// The value's length in characters.
    pub chars: usize,
}

impl std::fmt::Display for RuleViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Characters are named too when they differ from bytes (UTF-8).
        if self.len == self.chars {
            write!(
                f,
                "{} must be {} (got {} bytes)",
                self.key, self.rule, self.len
            )
        } else {
            write!(
                f,
                "{} must be {} (got {} bytes in {} characters)",
                self.key, self.rule, self.len, self.chars
            )
        }
    }
}

impl std::error::Error for RuleViolation {}

/// Every standard key: the six of Thinger.io firmware, then those of the predecessor's
/// placeholder convention.
pub const STANDARD_KEYS: &[StandardKey] = &[
    StandardKey {
        key: "wifi_ssid",
        label: "The name of your WiFi network (SSID)",
        capacity: 32,
        secret: false,
        default: None,
        rule: "1 to 32 bytes",
        check: |v| !v.is_empty() && v.len() <= 32,
    },
    StandardKey {
        key: "wifi_password",
        label: "The password of your WiFi network (empty for an open network)",
        capacity: 64,
        secret: true,
        default: None,
        rule: "empty (open network), 8 to 63 bytes, or exactly 64 hex digits (a PSK)",
        // Bytes, not characters: both Arduino cores (and WPA2 itself) take a
        // 64-byte password as a hex PSK, so 64 bytes of non-hex (32 x "é") fail.
        check: |v| {
            v.is_empty()
                || (8..=63).contains(&v.len())
                || (v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()))
        },
    },
    StandardKey {
        key: "thinger_host",
        label: "The Thinger.io server the device connects to",
        capacity: 64,
        secret: false,
        default: Some("iot.thinger.io"),
        rule: "a host name or address without scheme, path or spaces",
        check: |v| {
            !v.is_empty()
                && !v.contains("://")
                && v.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                })
        },
    },
    StandardKey {
        key: "thinger_user",
        label: "Your Thinger.io user name",
        capacity: 32,
        secret: false,
        default: None,
        rule: "1 to 32 characters without whitespace",
        check: |v| !v.is_empty() && v.len() <= 32 && !v.chars().any(char::is_whitespace),
    },
    StandardKey {
        key: "thinger_device",
        label: "The device id on Thinger.io",
        capacity: 32,
        secret: false,
        default: None,
        rule: "1 to 32 of a-z A-Z 0-9 _ - (Thinger's device id rule)",
        check: |v| {
            (1..=32).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        },
    },
    StandardKey {
        key: "thinger_credentials",
        label: "The device credentials on Thinger.io",
        capacity: 64,
        secret: true,
        default: None,
        rule: "1 to 64 bytes",
        check: |v| !v.is_empty() && v.len() <= 64,
    },
    // The predecessor's geo/time and weather placeholders (the `pythonpatcher` convention).
    StandardKey {
        key: "tz_offset",
        label: "The UTC offset of your time zone, in seconds (e.g. 3600 for UTC+1)",
        capacity: 8,
        secret: false,
        default: None,
        rule: "a whole number of seconds from -43200 to 50400",
        check: |v| {
            v.parse::<i32>()
                .is_ok_and(|n| (-43_200..=50_400).contains(&n))
        },
    },
    StandardKey {
        key: "dst_offset",
        label: "The daylight-saving offset, in seconds (e.g. 3600, or 0 without DST)",
        capacity: 8,
        secret: false,
        default: None,
        rule: "a whole number of seconds from -3600 to 7200",
        check: |v| v.parse::<i32>().is_ok_and(|n| (-3600..=7200).contains(&n)),
    },
    StandardKey {
        key: "latitude",
        label: "The latitude of the device's place, in degrees (e.g. 48.7356)",
        capacity: 8,
        secret: false,
        default: None,
        rule: "a decimal number from -90 to 90",
        check: |v| decimal_in(v, 90.0),
    },
    StandardKey {
        key: "longitude",
        label: "The longitude of the device's place, in degrees (e.g. 9.1829)",
        capacity: 8,
        secret: false,
        default: None,
        rule: "a decimal number from -180 to 180",
        check: |v| decimal_in(v, 180.0),
    },
    StandardKey {
        key: "owm_api_key",
        label: "Your OpenWeatherMap API key",
        capacity: 32,
        secret: true,
        default: None,
        rule: "exactly 32 letters and digits (an OpenWeatherMap API key)",
        check: |v| v.len() == 32 && v.bytes().all(|b| b.is_ascii_alphanumeric()),
    },
];

/// A plain decimal number (`-12.5`, `48.7356`; no exponent, no `inf`) within `-limit..=limit`.
fn decimal_in(v: &str, limit: f64) -> bool {
    let digits = v.strip_prefix('-').unwrap_or(v);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && v.parse::<f64>().is_ok_and(|n| n.abs() <= limit)
}

/// `value` (degrees) as text that fits `width` bytes: as many decimals as fit, at most 6
/// (about 0.1 m). `None` when not even the whole degrees fit.
pub fn coordinate_text(value: f64, width: usize) -> Option<String> {
    if !value.is_finite() {
        return None;
    }
    (0..=6).rev().find_map(|decimals| {
        let text = format!("{value:.decimals$}");
        // "-0" and "-0.00" read as 0 to every parser, but say nothing useful.
        let text = if text
            .trim_start_matches('-')
            .bytes()
            .all(|b| b == b'0' || b == b'.')
        {
            text.trim_start_matches('-').to_string()
        } else {
            text
        };
        (text.len() <= width).then_some(text)
    })
}

/// The standard key `key`, if it is one.
pub fn standard(key: &str) -> Option<&'static StandardKey> {
    STANDARD_KEYS.iter().find(|k| k.key == key)
}

/// Whether a key names a secret when the firmware cannot say (legacy placeholders carry no
/// flags): standard secret keys, and names that contain `pass`, `secret`, `credential`,
/// `token`, `psk`, `apikey` or `api_key` (a safety net: mark custom secrets explicitly).
pub fn looks_secret(key: &str) -> bool {
    if let Some(k) = standard(key) {
        return k.secret;
    }
    let k = key.to_ascii_lowercase();
    [
        "pass",
        "secret",
        "credential",
        "token",
        "psk",
        "apikey",
        "api_key",
    ]
    .iter()
    .any(|w| k.contains(w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn convention_keys_and_coordinates() {
        let lat = standard("latitude").unwrap();
        assert!(lat.check("48.7356").is_ok() && lat.check("-90").is_ok());
        assert!(lat.check("90.1").is_err() && lat.check("1e1").is_err() && lat.check("").is_err());
        let lon = standard("longitude").unwrap();
        assert!(lon.check("-122.419").is_ok() && lon.check("180.5").is_err());
        let tz = standard("tz_offset").unwrap();
        assert!(tz.check("3600").is_ok() && tz.check("-18000").is_ok() && tz.check("1.5").is_err());
        let owm = standard("owm_api_key").unwrap();
        assert!(owm.secret && owm.check(&"a1".repeat(16)).is_ok() && owm.check("short").is_err());
        assert_eq!(coordinate_text(48.7356, 8).as_deref(), Some("48.73560"));
        assert_eq!(coordinate_text(-122.41942, 8).as_deref(), Some("-122.419"));
        assert_eq!(coordinate_text(-0.0000001, 8).as_deref(), Some("0.000000"));
        for v in [48.7356, -122.41942, 179.99999, -89.5] {
            let t = coordinate_text(v, 8).unwrap();
            assert!(
                t.len() <= 8 && (t.parse::<f64>().unwrap() - v).abs() < 0.01,
                "{t}"
            );
        }
    }

    #[test]
    fn rules() {
        let pw = standard("wifi_password").unwrap();
        assert!(pw.check("").is_ok() && pw.check("12345678").is_ok());
        assert!(pw.check("1234567").is_err() && pw.check(&"a".repeat(64)).is_ok());
        assert!(pw.check(&"g".repeat(64)).is_err());
        let e = pw.check("short").unwrap_err().to_string();
        assert!(!e.contains("short") && e.contains("got 5 bytes"), "{e}");
        let dev = standard("thinger_device").unwrap();
        assert!(
            dev.check("kitchen_01-a").is_ok()
                && dev.check("bad id").is_err()
                && dev.check("").is_err()
        );
        assert!(
            standard("thinger_host")
                .unwrap()
                .check("https://x")
                .is_err()
        );
        assert!(
            looks_secret("wifi_password")
                && looks_secret("mqtt_pass")
                && !looks_secret("wifi_ssid")
        );
    }

    /// The password rule counts bytes: 32 x "é" is 64 bytes of non-hex, which both Arduino
    /// cores would take as a (broken) hex PSK; 63 bytes of UTF-8 pass, 64 hex digits pass, and
    /// the error never repeats the value.
    #[test]
    fn wifi_password_counts_bytes_not_characters() {
        let pw = standard("wifi_password").unwrap();
        let e_acute = "é".repeat(32);
        assert_eq!((e_acute.len(), e_acute.chars().count()), (64, 32));
        let e = pw.check(&e_acute).unwrap_err().to_string();
        assert!(e.contains("64 bytes in 32 characters"), "{e}");
        assert!(e.contains("8 to 63 bytes") && !e.contains('é'), "{e}");
        // 31 x "é" + "a" = 63 bytes: the longest passphrase.
        assert!(pw.check(&format!("{}a", "é".repeat(31))).is_ok());
        // 4 x "é" = 8 bytes in 4 characters: long enough in bytes.
        assert!(pw.check(&"é".repeat(4)).is_ok());
        // 3 x "é" + "a" = 7 bytes: too short.
        assert!(pw.check(&format!("{}a", "é".repeat(3))).is_err());
        assert!(pw.check(&"0123456789abcdefABCDEF".repeat(3)[..64]).is_ok());
        assert!(pw.check(&"0".repeat(65)).is_err());
        assert!(pw.check(&format!("{}g", "0".repeat(63))).is_err());
    }
}
