//! Legacy placeholders: firmware built in the predecessor's style holds a
//! literal such as `"WIFISSID        "` where a value belongs. The literal must
//! occur exactly once in patchable data; its length is the capacity.

use super::scan::find;
use crate::Firmware;

/// A key mapped to the literal text that stands for it in the firmware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// The key values are given for (`wifi_ssid`).
    pub key: String,
    /// The text in the firmware; its length is the capacity.
    pub literal: String,
    /// Marked secret by whoever mapped it (legacy firmware carries no flags).
    pub secret: bool,
    /// The convention that found it (`pythonpatcher`); `None` for an explicit mapping.
    pub convention: Option<&'static str>,
}

/// A `KEY=LITERAL` specification that is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("placeholder {spec:?} must be KEY=LITERAL with a non-empty key and literal")]
pub struct PlaceholderSpecError {
    /// The text given.
    pub spec: String,
}

impl Placeholder {
    /// A placeholder that is not marked secret.
    pub fn new(key: impl Into<String>, literal: impl Into<String>) -> Self {
        Placeholder {
            key: key.into(),
            literal: literal.into(),
            secret: false,
            convention: None,
        }
    }

    /// Parses `KEY=LITERAL` (everything after the first `=` is the literal).
    pub fn parse(spec: &str) -> Result<Placeholder, PlaceholderSpecError> {
        match spec.split_once('=') {
            Some((k, l)) if !k.is_empty() && !l.is_empty() => Ok(Placeholder::new(k, l)),
            _ => Err(PlaceholderSpecError { spec: spec.into() }),
        }
    }
}

/// How the rest of a placeholder is filled after a shorter value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Pad {
    /// NUL bytes: C code sees the value as the whole string.
    #[default]
    Nul,
    /// Spaces, for firmware that trims the string itself.
    Space,
}

impl Pad {
    /// The padding byte.
    pub fn byte(self) -> u8 {
        match self {
            Pad::Nul => 0,
            Pad::Space => b' ',
        }
    }
}

/// Where a placeholder literal occurs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// Load address.
    pub addr: u32,
    /// File offset (of the decompressed data).
    pub offset: usize,
    /// Spaces right after the literal: a literal given without its padding matches as a
    /// shorter prefix of the real placeholder.
    pub spaces_after: usize,
}

/// Every occurrence of `literal` in the boot space's patchable data.
pub fn occurrences(fw: &Firmware, literal: &[u8]) -> Vec<Occurrence> {
    let mut out = Vec::new();
    let Some(space) = fw.spaces().into_iter().next() else {
        return out;
    };
    for chunk in space.chunks() {
        let bytes = fw.chunk_bytes(&chunk);
        let mut i = 0;
        while let Some(p) = find(&bytes[i..], literal) {
            let addr = chunk.addr + (i + p) as u32;
            let offset = space.map(addr, 1).map_or(0, |m| m[0].offset);
            let spaces_after = bytes[i + p + literal.len()..]
                .iter()
                .take_while(|&&b| b == b' ')
                .count();
            out.push(Occurrence {
                addr,
                offset,
                spaces_after,
            });
            i += p + 1;
        }
    }
    out
}

/// The bytes to write over a placeholder of `capacity` bytes.
pub fn fill(value: &str, capacity: usize, pad: Pad) -> Vec<u8> {
    let mut out = value.as_bytes().to_vec();
    out.resize(capacity, pad.byte());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_fill() {
        let p = Placeholder::parse("wifi_ssid=WIFI=SSID  ").unwrap();
        assert_eq!(
            (p.key.as_str(), p.literal.as_str()),
            ("wifi_ssid", "WIFI=SSID  ")
        );
        assert!(Placeholder::parse("novalue").is_err() && Placeholder::parse("=x").is_err());
        assert_eq!(fill("ab", 4, Pad::Space), b"ab  ");
        assert_eq!(fill("ab", 4, Pad::Nul), b"ab\0\0");
    }
}
