//! The standard keys of Thinger.io firmware, their capacities and the rules a
//! value must follow. Error texts never contain the value (it may be secret).

/// A standard key.
#[derive(Debug)]
pub struct StandardKey {
    pub key: &'static str,
    pub capacity: u16,
    pub secret: bool,
    pub default: Option<&'static str>,
    /// What a value must look like, for error messages.
    pub rule: &'static str,
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

pub const STANDARD_KEYS: &[StandardKey] = &[
    StandardKey {
        key: "wifi_ssid",
        capacity: 32,
        secret: false,
        default: None,
        rule: "1 to 32 bytes",
        check: |v| !v.is_empty() && v.len() <= 32,
    },
    StandardKey {
        key: "wifi_password",
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
        capacity: 32,
        secret: false,
        default: None,
        rule: "1 to 32 characters without whitespace",
        check: |v| !v.is_empty() && v.len() <= 32 && !v.chars().any(char::is_whitespace),
    },
    StandardKey {
        key: "thinger_device",
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
        capacity: 64,
        secret: true,
        default: None,
        rule: "1 to 64 bytes",
        check: |v| !v.is_empty() && v.len() <= 64,
    },
];

pub fn standard(key: &str) -> Option<&'static StandardKey> {
    STANDARD_KEYS.iter().find(|k| k.key == key)
}

/// Whether a key names a secret when the firmware cannot say (legacy
/// placeholders carry no flags): standard secret keys and names that say so.
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
