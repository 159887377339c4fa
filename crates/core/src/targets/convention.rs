//! Placeholder **conventions**: how firmware already in users' hands marks where
//! values go, so that it is personalised without any `--placeholder` mapping.
//!
//! A convention is a table: a keyword, the key it stands for, and, where the
//! meaning of a keyword depends on which others are present, the key it stands
//! for then. A placeholder of a convention is the keyword padded with spaces to
//! any length (the length is the capacity), stored as a C string: it starts at a
//! string boundary (the start of the data, or after a NUL or other control byte)
//! and its spaces end in a NUL. The same keyword inside a longer text (a
//! dashboard template compiled into the firmware, a log message) is not one.
//!
//! The one convention known so far is the predecessor script's (`pythonpatcher`,
//! `../shared/docs/thinger-and-field-notes.md` §3); a later one is one more table.

use super::placeholder::Placeholder;
use super::scan::find;
use super::standard;
use crate::Firmware;
use crate::problem::{Problem, ProblemKind};

/// A keyword of a convention and the key it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    /// The text the placeholder starts with, e.g. `WIFISSID`.
    pub keyword: &'static str,
    /// The key it stands for.
    pub key: &'static str,
    /// `(other keyword, key)`: when the other keyword is present too, this one stands for
    /// that key instead.
    pub key_when: Option<(&'static str, &'static str)>,
}

/// A naming convention for placeholders.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Convention {
    /// Its name on the command line and in outputs.
    pub name: &'static str,
    /// Who uses it.
    pub about: &'static str,
    /// Its keywords.
    pub entries: &'static [Entry],
}

/// The predecessor script's placeholders, both generations: 16- or 24-character text
/// placeholders, and the 8-character geo/time and 32-character weather ones of the current
/// script. `CLOUDNAM` is the Thinger user in the 2024 firmware and the cloud host in firmware
/// that also has `DEVCUSER` (then the user).
pub const PYTHONPATCHER: Convention = Convention {
    name: "pythonpatcher",
    about: "the predecessor Python script's placeholders (WIFISSID, WIFIPASS, DEVCNAME, DEVCUSER, CLOUDNAM, DEVCCRED, TZ_OFF, DST_OFF, LONGTD, LATITD, OWMAPI)",
    entries: &[
        Entry {
            keyword: "WIFISSID",
            key: "wifi_ssid",
            key_when: None,
        },
        Entry {
            keyword: "WIFIPASS",
            key: "wifi_password",
            key_when: None,
        },
        Entry {
            keyword: "DEVCNAME",
            key: "thinger_device",
            key_when: None,
        },
        Entry {
            keyword: "DEVCUSER",
            key: "thinger_user",
            key_when: None,
        },
        Entry {
            keyword: "CLOUDNAM",
            key: "thinger_user",
            key_when: Some(("DEVCUSER", "thinger_host")),
        },
        Entry {
            keyword: "DEVCCRED",
            key: "thinger_credentials",
            key_when: None,
        },
        Entry {
            keyword: "TZ_OFF",
            key: "tz_offset",
            key_when: None,
        },
        Entry {
            keyword: "DST_OFF",
            key: "dst_offset",
            key_when: None,
        },
        Entry {
            keyword: "LONGTD",
            key: "longitude",
            key_when: None,
        },
        Entry {
            keyword: "LATITD",
            key: "latitude",
            key_when: None,
        },
        Entry {
            keyword: "OWMAPI",
            key: "owm_api_key",
            key_when: None,
        },
    ],
};

/// Every known convention.
pub const CONVENTIONS: &[&Convention] = &[&PYTHONPATCHER];

/// The convention named `name`.
pub fn by_name(name: &str) -> Option<&'static Convention> {
    CONVENTIONS.iter().copied().find(|c| c.name == name)
}

/// Which conventions to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConventionChoice {
    /// Every known convention, in a file that declares no slots.
    #[default]
    Auto,
    /// None: only slots and explicit placeholder mappings.
    None,
    /// This one, even beside slots (its keys that are slots are left to the slots).
    Only(&'static Convention),
}

impl ConventionChoice {
    /// `auto`, `none`, or a convention's name.
    pub fn from_name(name: &str) -> Option<ConventionChoice> {
        match name {
            "auto" => Some(ConventionChoice::Auto),
            "none" => Some(ConventionChoice::None),
            n => by_name(n).map(ConventionChoice::Only),
        }
    }

    /// Every name [`ConventionChoice::from_name`] takes.
    pub fn names() -> Vec<&'static str> {
        ["auto", "none"]
            .into_iter()
            .chain(CONVENTIONS.iter().map(|c| c.name))
            .collect()
    }
}

/// Where one keyword of a convention stands in the data.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Hit {
    keyword: &'static str,
    literal: String,
    addr: u32,
    offset: usize,
}

/// The placeholders of `convention` in the boot space of `fw`, mapped to their keys, and the
/// problems of a keyword that occurs more than once (each occurrence listed).
pub fn placeholders(
    fw: &Firmware<'_>,
    convention: &'static Convention,
) -> (Vec<Placeholder>, Vec<Problem>) {
    let hits = hits(fw, convention);
    let present = |kw: &str| hits.iter().any(|h| h.keyword == kw);
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for e in convention.entries {
        let mine: Vec<&Hit> = hits.iter().filter(|h| h.keyword == e.keyword).collect();
        let key = match e.key_when {
            Some((other, key)) if present(other) => key,
            _ => e.key,
        };
        match mine.as_slice() {
            [] => {}
            [one] => out.push(Placeholder {
                key: key.to_string(),
                literal: one.literal.clone(),
                secret: standard::standard(key).is_some_and(|k| k.secret),
                convention: Some(convention.name),
            }),
            many => problems.push(Problem::new(
                key,
                ProblemKind::PlaceholderRepeated {
                    literal: many[0].literal.clone(),
                    at: many.iter().map(|h| (h.offset, h.addr)).collect(),
                },
            )),
        }
    }
    (out, problems)
}

/// Every occurrence of every keyword as a placeholder (see the module doc).
fn hits(fw: &Firmware<'_>, convention: &Convention) -> Vec<Hit> {
    let mut out = Vec::new();
    let Some(space) = fw.spaces().into_iter().next() else {
        return out;
    };
    for chunk in space.chunks() {
        let bytes = fw.chunk_bytes(&chunk);
        for e in convention.entries {
            let kw = e.keyword.as_bytes();
            let mut i = 0;
            while let Some(p) = find(&bytes[i..], kw) {
                let at = i + p;
                i = at + 1;
                let boundary = at == 0 || bytes[at - 1] < 0x20 || bytes[at - 1] >= 0x7F;
                let spaces = bytes[at + kw.len()..]
                    .iter()
                    .take_while(|&&b| b == b' ')
                    .count();
                let end = at + kw.len() + spaces;
                if !boundary || bytes.get(end) != Some(&0) {
                    continue;
                }
                let addr = chunk.addr + at as u32;
                out.push(Hit {
                    keyword: e.keyword,
                    literal: String::from_utf8_lossy(&bytes[at..end]).into_owned(),
                    addr,
                    offset: space.map(addr, 1).map_or(0, |m| m[0].offset),
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checksum;
    use crate::personalize::{Request, personalize};
    use crate::problem::ProblemKind;
    use crate::targets::{ConventionChoice, find};
    use crate::values::{Assignment, Origin};

    /// An ESP8266 v1 image whose one RAM segment holds `strings`, each NUL-terminated.
    fn image(strings: &[&str]) -> Vec<u8> {
        let mut data = vec![0u8; 4];
        for s in strings {
            data.extend(s.as_bytes());
            data.push(0);
        }
        data.resize(data.len().next_multiple_of(4), 0);
        let mut v = vec![0xE9, 1, 0, 0x20];
        v.extend(0x4010_0000u32.to_le_bytes());
        v.extend(0x3FFE_8000u32.to_le_bytes());
        v.extend((data.len() as u32).to_le_bytes());
        v.extend(&data);
        while v.len() % 16 != 15 {
            v.push(0);
        }
        v.push(checksum::XOR_SEED ^ checksum::xor(&data));
        v
    }

    fn keys(bytes: &[u8]) -> Vec<(String, usize)> {
        let fw = Firmware::parse(bytes).unwrap();
        let found = find(&fw, &[], ConventionChoice::Auto);
        assert!(found.problems.is_empty(), "{:?}", found.problems);
        found
            .targets
            .iter()
            .map(|t| (t.key.clone(), t.capacity))
            .collect()
    }

    #[test]
    fn both_generations_map_to_their_keys() {
        // 2024: 16-character placeholders, CLOUDNAM is the user.
        let old = image(&[
            "WIFISSID        ",
            "WIFIPASS                ",
            "DEVCNAME        ",
            "CLOUDNAM        ",
            "DEVCCRED        ",
        ]);
        let mut k = keys(&old);
        k.sort();
        assert_eq!(
            k,
            [
                ("thinger_credentials".into(), 16),
                ("thinger_device".into(), 16),
                ("thinger_user".into(), 16),
                ("wifi_password".into(), 24),
                ("wifi_ssid".into(), 16),
            ]
        );
        // Current: 24 characters, DEVCUSER present, so CLOUDNAM is the host.
        let new = image(&[
            "WIFISSID                ",
            "DEVCUSER                ",
            "CLOUDNAM                ",
            "TZ_OFF  ",
            "LATITD  ",
            "OWMAPI                          ",
        ]);
        let k = keys(&new);
        assert!(k.contains(&("thinger_host".into(), 24)), "{k:?}");
        assert!(k.contains(&("thinger_user".into(), 24)), "{k:?}");
        assert!(k.contains(&("tz_offset".into(), 8)), "{k:?}");
        assert!(k.contains(&("owm_api_key".into(), 32)), "{k:?}");
    }

    #[test]
    fn keywords_inside_other_text_and_repeats() {
        // Inside a longer string (a dashboard template): not a placeholder.
        let inside = image(&[r#"{"device":"DEVCNAME        "}"#, "WIFISSID        "]);
        assert_eq!(keys(&inside), [("wifi_ssid".into(), 16)]);
        // Twice: refused, both places named.
        let twice = image(&["WIFISSID        ", "WIFISSID        "]);
        let fw = Firmware::parse(&twice).unwrap();
        let found = find(&fw, &[], ConventionChoice::Auto);
        assert!(matches!(
            &found.problems[0].kind,
            ProblemKind::PlaceholderRepeated { at, .. } if at.len() == 2
        ));
        // Switched off: nothing to personalise.
        let fw = Firmware::parse(&inside).unwrap();
        let found = find(&fw, &[], ConventionChoice::None);
        assert!(matches!(
            found.problems[0].kind,
            ProblemKind::NothingToPersonalize
        ));
    }

    #[test]
    fn personalise_masks_and_warns_about_what_is_left() {
        let bytes = image(&["WIFISSID        ", "DEVCCRED        ", "DEVCNAME        "]);
        let request = Request {
            values: vec![
                Assignment::new("wifi_ssid", "Home", Origin::CommandLine),
                Assignment::new("thinger_credentials", "s3cr3t-cred", Origin::CommandLine),
            ],
            ..Request::default()
        };
        let done = personalize(&bytes, &request).unwrap();
        let cred = done
            .slots
            .iter()
            .find(|s| s.key == "thinger_credentials")
            .unwrap();
        assert!(cred.secret && cred.value == "********");
        assert!(done.warnings.iter().any(
            |w| matches!(w, crate::Warning::PlaceholderLeft { key } if key == "thinger_device")
        ));
        assert!(done.report.valid);
        let fw = Firmware::parse(&done.bytes).unwrap();
        assert!(!fw.data().windows(8).any(|w| w == b"WIFISSID"));
    }

    #[test]
    fn overlapping_mappings_are_refused() {
        let bytes = image(&["WIFISSID        "]);
        let request = Request {
            values: vec![Assignment::new("my_ssid", "x", Origin::CommandLine)],
            placeholders: vec![Placeholder::new("my_ssid", "SSID    ")],
            ..Request::default()
        };
        let err = personalize(&bytes, &request).unwrap_err();
        let crate::Error::Personalize { problems } = err else {
            panic!("{err}")
        };
        assert!(
            problems.iter().any(|p| matches!(
                &p.kind,
                ProblemKind::PlaceholdersOverlap { other, .. } if other == "wifi_ssid" || p.key.as_deref() == Some("wifi_ssid")
            )),
            "{problems:?}"
        );
    }
}
