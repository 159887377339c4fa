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
    pub fn check(&self, value: &str) -> Result<(), String> {
        if (self.check)(value) {
            Ok(())
        } else {
            Err(format!(
                "{} must be {} (got {} characters)",
                self.key,
                self.rule,
                value.chars().count()
            ))
        }
    }
}

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
        rule: "empty (open network), 8 to 63 characters, or 64 hex digits (a PSK)",
        check: |v| {
            let n = v.chars().count();
            v.is_empty()
                || (8..=63).contains(&n)
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
        let e = pw.check("short").unwrap_err();
        assert!(!e.contains("short") && e.contains("5 characters"));
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
}
