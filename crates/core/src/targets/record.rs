//! The slot record, version 1 (`docs/slot-format.md` is the normative spec):
//! decoding from bytes, encoding, and the bytes a patch changes.

use serde::Serialize;

/// `TPSLOT` followed by two non-ASCII bytes.
pub const MAGIC: [u8; 8] = *b"TPSLOT\xA5\x5A";
/// The record format version this library reads and writes.
pub const VERSION: u8 = 1;
/// Bytes before the value field.
pub const HEADER_LEN: usize = 48;
/// Bytes of the key field.
pub const KEY_FIELD_LEN: usize = 32;
/// The longest key.
pub const MAX_KEY_LEN: usize = 31;
/// The largest capacity.
pub const MAX_CAPACITY: u16 = 4096;
/// Offset of the state byte.
pub const OFFSET_STATE: usize = 9;
/// Offset of the value field.
pub const OFFSET_VALUE: usize = HEADER_LEN;

/// Flag bit 0: the value is a secret.
pub const FLAG_SECRET: u16 = 1 << 0;
/// Flag bit 1: a value must be given.
pub const FLAG_REQUIRED: u16 = 1 << 1;

/// Size of the value field for a capacity: `capacity + 1` rounded up to 4.
pub const fn value_field_len(capacity: u16) -> usize {
    (capacity as usize + 4) & !3
}

/// Whether the value is as compiled or was written by a patcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotState {
    /// As compiled.
    Default,
    /// Written by a patcher.
    Patched,
}

/// A well-formed version-1 record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRecord {
    /// The key.
    pub key: String,
    /// The largest value in bytes.
    pub capacity: u16,
    /// Flag bits.
    pub flags: u16,
    /// As compiled or patched.
    pub state: SlotState,
    /// The current value (without the NUL padding). May be a secret: never print
    /// it without [`crate::values::mask`].
    pub value: String,
}

impl SlotRecord {
    /// Whether the SECRET flag is set (see [`crate::targets::is_secret`] for the full rule).
    pub fn is_secret(&self) -> bool {
        self.flags & FLAG_SECRET != 0
    }

    /// Whether the REQUIRED flag is set.
    pub fn is_required(&self) -> bool {
        self.flags & FLAG_REQUIRED != 0
    }

    /// Total record size in bytes.
    pub fn record_len(&self) -> usize {
        HEADER_LEN + value_field_len(self.capacity)
    }

    /// Names of the flags that are set.
    pub fn flag_names(&self) -> Vec<String> {
        flag_names(self.flags)
    }
}

/// Names of the flags that are set, unknown bits as `bitN`.
pub fn flag_names(flags: u16) -> Vec<String> {
    (0..16)
        .filter(|b| flags & (1 << b) != 0)
        .map(|b| match b {
            0 => "secret".to_string(),
            1 => "required".to_string(),
            n => format!("bit{n}"),
        })
        .collect()
}

/// What sits at an occurrence of the magic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// A well-formed version-1 record.
    Slot(SlotRecord),
    /// A record of a format version this tool does not know: shown, never patched.
    UnknownVersion {
        /// The version byte found.
        version: u8,
    },
    /// Version 1, but broken: shown with the reason, never patched.
    Malformed {
        /// What is wrong with it.
        reason: String,
    },
}

/// Decodes the record starting at `bytes[0]` (which holds the magic). `bytes`
/// runs to the end of contiguous patchable data.
pub fn decode(bytes: &[u8]) -> Decoded {
    let malformed = |reason: String| Decoded::Malformed { reason };
    if bytes.len() < MAGIC.len() + 1 {
        return malformed("the record is cut off after its magic".into());
    }
    let version = bytes[8];
    if version != VERSION {
        return Decoded::UnknownVersion { version };
    }
    if bytes.len() < HEADER_LEN {
        return malformed(format!(
            "the record header needs {HEADER_LEN} bytes, only {} are contiguous data",
            bytes.len()
        ));
    }
    let state = match bytes[9] {
        0 => SlotState::Default,
        1 => SlotState::Patched,
        s => return malformed(format!("state byte is {s:#04x}, expected 0 or 1")),
    };
    let flags = u16::from_le_bytes([bytes[10], bytes[11]]);
    let capacity = u16::from_le_bytes([bytes[12], bytes[13]]);
    let key_len = bytes[14] as usize;
    if bytes[15] != 0 {
        return malformed(format!("reserved byte is {:#04x}, expected 0", bytes[15]));
    }
    if capacity == 0 || capacity > MAX_CAPACITY {
        return malformed(format!("capacity {capacity} is outside 1..={MAX_CAPACITY}"));
    }
    if key_len == 0 || key_len > MAX_KEY_LEN {
        return malformed(format!("key length {key_len} is outside 1..={MAX_KEY_LEN}"));
    }
    let key_field = &bytes[16..16 + KEY_FIELD_LEN];
    let key_bytes = &key_field[..key_len];
    if key_field[key_len..].iter().any(|&b| b != 0) {
        return malformed("the key field is not NUL-padded after the key".into());
    }
    let key = match std::str::from_utf8(key_bytes) {
        Ok(k) if is_valid_key(k) => k.to_string(),
        _ => return malformed("the key has characters outside [A-Za-z0-9_.-]".into()),
    };
    let vlen = value_field_len(capacity);
    if bytes.len() < HEADER_LEN + vlen {
        return malformed(format!(
            "slot {key}: the value field needs {vlen} bytes, only {} are contiguous data",
            bytes.len() - HEADER_LEN
        ));
    }
    let field = &bytes[HEADER_LEN..HEADER_LEN + vlen];
    let Some(nul) = field[..capacity as usize + 1].iter().position(|&b| b == 0) else {
        return malformed(format!(
            "slot {key}: the value has no NUL within its capacity"
        ));
    };
    if field[nul..].iter().any(|&b| b != 0) {
        return malformed(format!(
            "slot {key}: bytes after the value's NUL are not NUL"
        ));
    }
    let Ok(value) = std::str::from_utf8(&field[..nul]) else {
        return malformed(format!("slot {key}: the value is not valid UTF-8"));
    };
    Decoded::Slot(SlotRecord {
        key,
        capacity,
        flags,
        state,
        value: value.to_string(),
    })
}

/// `^[A-Za-z_][A-Za-z0-9_.-]{0,30}$`
pub fn is_valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_KEY_LEN
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Encodes a whole record (for tests, golden vectors and other writers).
pub fn encode(key: &str, capacity: u16, flags: u16, state: SlotState, value: &str) -> Vec<u8> {
    let mut r = Vec::with_capacity(HEADER_LEN + value_field_len(capacity));
    r.extend_from_slice(&MAGIC);
    r.push(VERSION);
    r.push(match state {
        SlotState::Default => 0,
        SlotState::Patched => 1,
    });
    r.extend_from_slice(&flags.to_le_bytes());
    r.extend_from_slice(&capacity.to_le_bytes());
    r.push(key.len() as u8);
    r.push(0);
    let mut key_field = [0u8; KEY_FIELD_LEN];
    key_field[..key.len()].copy_from_slice(key.as_bytes());
    r.extend_from_slice(&key_field);
    let mut value_field = vec![0u8; value_field_len(capacity)];
    value_field[..value.len()].copy_from_slice(value.as_bytes());
    r.extend_from_slice(&value_field);
    r
}

/// The bytes from the state byte to the end of the record after patching
/// `value` into `current` (a whole record): only state and value change.
pub fn patched_tail(current: &[u8], capacity: u16, value: &str) -> Vec<u8> {
    let mut tail = current[OFFSET_STATE..HEADER_LEN].to_vec();
    tail[0] = 1;
    let mut field = vec![0u8; value_field_len(capacity)];
    field[..value.len()].copy_from_slice(value.as_bytes());
    tail.extend_from_slice(&field);
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let r = encode(
            "wifi_password",
            64,
            FLAG_SECRET | FLAG_REQUIRED,
            SlotState::Patched,
            "correct horse",
        );
        assert_eq!(r.len(), 116);
        let Decoded::Slot(s) = decode(&r) else {
            panic!("not decoded")
        };
        assert_eq!(
            (s.key.as_str(), s.capacity, s.value.as_str()),
            ("wifi_password", 64, "correct horse")
        );
        assert!(s.is_secret() && s.is_required());
        assert_eq!(s.state, SlotState::Patched);

        let mut bad = r.clone();
        bad[48 + 20] = b'x'; // after the NUL
        assert!(matches!(decode(&bad), Decoded::Malformed { .. }));
        let mut v2 = r.clone();
        v2[8] = 2;
        assert_eq!(decode(&v2), Decoded::UnknownVersion { version: 2 });
        assert!(matches!(decode(&r[..100]), Decoded::Malformed { .. }));
        let mut full = r.clone();
        full[48..48 + 65].fill(b'a');
        assert!(matches!(decode(&full), Decoded::Malformed { .. }));
    }

    #[test]
    fn patch_changes_only_state_and_value() {
        let r = encode("thinger_host", 64, 0, SlotState::Default, "iot.thinger.io");
        let tail = patched_tail(&r, 64, "example.org");
        let mut p = r.clone();
        p[OFFSET_STATE..].copy_from_slice(&tail);
        assert_eq!(
            p,
            encode("thinger_host", 64, 0, SlotState::Patched, "example.org")
        );
        let changed: Vec<usize> = (0..r.len()).filter(|&i| r[i] != p[i]).collect();
        assert!(
            changed
                .iter()
                .all(|&i| i == OFFSET_STATE || i >= HEADER_LEN)
        );
    }

    #[test]
    fn keys() {
        assert!(is_valid_key("wifi_ssid") && is_valid_key("fw.version") && is_valid_key("_x-1"));
        assert!(
            !is_valid_key("")
                && !is_valid_key("1abc")
                && !is_valid_key("a b")
                && !is_valid_key(&"a".repeat(32))
        );
    }
}
