//! Why a personalisation is refused, and what it warns about, one typed item per
//! finding. Each names the key it is about (so a form can mark that field),
//! says what is wrong in [`Display`](std::fmt::Display) and, separately, what to
//! do in [`Problem::help`]. Neither ever contains a value: values may be secrets.

use crate::values::Origin;
use serde::Serialize;
use std::fmt;

/// One reason a personalisation cannot go ahead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// The slot or placeholder key it is about; `None` for a record whose key
    /// could not be read.
    pub key: Option<String>,
    /// What is wrong.
    #[serde(flatten)]
    pub kind: ProblemKind,
}

/// What is wrong. Lengths are in bytes, as the firmware stores them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ProblemKind {
    /// Two records declare the same key with different capacities.
    CapacityConflict {
        /// Address and capacity of the first declaration.
        first: (u32, usize),
        /// Address and capacity of the other one.
        second: (u32, usize),
    },
    /// A slot record of a format version this library does not know.
    UnknownRecordVersion {
        /// Load address of the record.
        address: u32,
        /// File offset of the record (in the decompressed data).
        offset: usize,
        /// The version byte found.
        version: u8,
    },
    /// A version-1 slot record that cannot be decoded.
    DamagedRecord {
        /// Load address of the record.
        address: u32,
        /// File offset of the record.
        offset: usize,
        /// Why it cannot be decoded.
        reason: String,
    },
    /// A key is both a slot of the firmware and a placeholder mapping.
    SlotAndPlaceholder,
    /// A placeholder's literal does not occur in the patchable data.
    PlaceholderNotFound {
        /// The literal looked for.
        literal: String,
    },
    /// A placeholder's literal occurs more than once.
    PlaceholderRepeated {
        /// The literal looked for.
        literal: String,
        /// Every occurrence: file offset and load address.
        at: Vec<(usize, u32)>,
    },
    /// A value for a key the firmware has no slot or placeholder for.
    UnknownKey {
        /// Where the value came from.
        origin: Origin,
        /// The keys the firmware does have.
        known: Vec<String>,
    },
    /// The value contains a NUL byte (C code would cut it there).
    NulByte {
        /// Where the value came from.
        origin: Origin,
    },
    /// The value does not fit the slot.
    TooLong {
        /// The value's length in bytes.
        len: usize,
        /// The slot's capacity in bytes.
        capacity: usize,
        /// A slot, or a placeholder (whose capacity is its literal's length).
        target: crate::targets::TargetKind,
        /// Where the value came from.
        origin: Origin,
    },
    /// The value breaks the rule of a standard key.
    Rule {
        /// What a value must look like.
        rule: &'static str,
        /// The value's length in bytes.
        len: usize,
        /// The value's length in characters (differs from `len` for non-ASCII text).
        chars: usize,
        /// Where the value came from.
        origin: Origin,
    },
    /// A required slot still in its default state got no value.
    Required,
    /// Two placeholders cover the same bytes: the later value would overwrite the earlier.
    PlaceholdersOverlap {
        /// The other key.
        other: String,
        /// Where they meet (file offset of the later one's first byte).
        offset: usize,
    },
    /// The file has neither slot records nor placeholders.
    NothingToPersonalize,
}

impl Problem {
    /// A problem about `key`.
    pub fn new(key: impl Into<String>, kind: ProblemKind) -> Self {
        Problem {
            key: Some(key.into()),
            kind,
        }
    }

    /// A stable identifier of the kind of problem (`too_long`, `required`, ...).
    pub fn code(&self) -> &'static str {
        match self.kind {
            ProblemKind::CapacityConflict { .. } => "capacity_conflict",
            ProblemKind::UnknownRecordVersion { .. } => "unknown_record_version",
            ProblemKind::DamagedRecord { .. } => "damaged_record",
            ProblemKind::SlotAndPlaceholder => "slot_and_placeholder",
            ProblemKind::PlaceholderNotFound { .. } => "placeholder_not_found",
            ProblemKind::PlaceholderRepeated { .. } => "placeholder_repeated",
            ProblemKind::UnknownKey { .. } => "unknown_key",
            ProblemKind::NulByte { .. } => "nul_byte",
            ProblemKind::TooLong { .. } => "too_long",
            ProblemKind::Rule { .. } => "rule",
            ProblemKind::Required => "required",
            ProblemKind::PlaceholdersOverlap { .. } => "placeholders_overlap",
            ProblemKind::NothingToPersonalize => "nothing_to_personalize",
        }
    }

    /// What to do about it, in words that fit every front end (no flag names).
    pub fn help(&self) -> Option<String> {
        Some(match &self.kind {
            ProblemKind::CapacityConflict { .. } => {
                "give one of the declarations another key".into()
            }
            ProblemKind::UnknownRecordVersion { .. } => {
                "upgrade thinger-patch to a version that knows this record format".into()
            }
            ProblemKind::DamagedRecord { .. } => "rebuild the firmware".into(),
            ProblemKind::SlotAndPlaceholder => "drop the placeholder mapping".into(),
            ProblemKind::PlaceholderNotFound { .. } => {
                "check the literal (spaces count), or whether the file was personalised already: a placeholder is gone once written, start again from the original file".into()
            }
            ProblemKind::PlaceholderRepeated { .. } => "use a longer, unique literal".into(),
            ProblemKind::UnknownKey { .. } => "fix the key".into(),
            ProblemKind::NulByte { .. } => "remove the NUL byte".into(),
            ProblemKind::TooLong {
                target: crate::targets::TargetKind::Placeholder,
                ..
            } => {
                "shorten it: a placeholder holds no more than its literal's length; a longer value needs firmware built with a longer placeholder (a file personalised before has no placeholder left: start again from the original file)".into()
            }
            ProblemKind::TooLong { .. } => {
                "shorten it or give the slot a larger capacity in the firmware".into()
            }
            ProblemKind::PlaceholdersOverlap { .. } => {
                "map each literal to one key only (drop one mapping, or pass --convention none if a convention found it)".into()
            }
            ProblemKind::NothingToPersonalize => {
                "the firmware author can declare slots (device/arduino/ThingerSlot or the thinger-slot crate) or name its placeholders (--placeholder KEY=LITERAL, or [placeholders] in thinger-patch.toml)".into()
            }
            ProblemKind::Rule { .. } => return None,
            ProblemKind::Required => "give it a value".into(),
        })
    }

    /// The origin of the value the problem is about, if any.
    pub fn origin(&self) -> Option<&Origin> {
        match &self.kind {
            ProblemKind::UnknownKey { origin, .. }
            | ProblemKind::NulByte { origin }
            | ProblemKind::TooLong { origin, .. }
            | ProblemKind::Rule { origin, .. } => Some(origin),
            _ => None,
        }
    }
}

/// ` (from --set)`, or nothing for a value typed into a form (the field shows it).
fn from(origin: &Origin) -> String {
    match origin {
        Origin::Form => String::new(),
        o => format!(" (from {o})"),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.key.as_deref().unwrap_or("?");
        match &self.kind {
            ProblemKind::CapacityConflict { first, second } => write!(
                f,
                "slot {key} is declared twice with different capacities ({} at {:#010x} and {} at {:#010x})",
                first.1, first.0, second.1, second.0
            ),
            ProblemKind::UnknownRecordVersion {
                address,
                offset,
                version,
            } => write!(
                f,
                "the slot record at address {address:#010x} (file offset {offset:#x}) has format version {version}; this thinger-patch understands version {}",
                crate::targets::record::VERSION
            ),
            ProblemKind::DamagedRecord {
                address,
                offset,
                reason,
            } => write!(
                f,
                "the slot record at address {address:#010x} (file offset {offset:#x}) is damaged ({reason})"
            ),
            ProblemKind::SlotAndPlaceholder => {
                write!(f, "key {key} is both a slot and a placeholder")
            }
            ProblemKind::PlaceholderNotFound { literal } => write!(
                f,
                "placeholder for {key} ({literal:?}, {} bytes) does not occur in the patchable data",
                literal.len()
            ),
            ProblemKind::PlaceholderRepeated { literal, at } => write!(
                f,
                "placeholder for {key} ({literal:?}) occurs {} times, it must occur exactly once: {}",
                at.len(),
                at.iter()
                    .map(|(o, a)| format!("file offset {o:#x} (address {a:#010x})"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            ProblemKind::UnknownKey { origin, known } => write!(
                f,
                "no slot or placeholder named {key} in this firmware{}; slots here: {}",
                from(origin),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
            ProblemKind::NulByte { origin } => write!(
                f,
                "slot {key}: the value contains a NUL byte{}",
                from(origin)
            ),
            ProblemKind::TooLong {
                len,
                capacity,
                target,
                origin,
            } => write!(
                f,
                "{target} {key}: the value is {len} bytes, the {target} holds at most {capacity}{}",
                from(origin)
            ),
            ProblemKind::Rule {
                rule,
                len,
                chars,
                origin,
            } => {
                let got = if len == chars {
                    format!("{len} bytes")
                } else {
                    format!("{len} bytes in {chars} characters")
                };
                write!(
                    f,
                    "slot {key}: {key} must be {rule} (got {got}){}",
                    from(origin)
                )
            }
            ProblemKind::Required => {
                write!(f, "slot {key} is required and has no value yet")
            }
            ProblemKind::PlaceholdersOverlap { other, offset } => write!(
                f,
                "the placeholders for {key} and {other} overlap at file offset {offset:#x}: writing one would overwrite the other"
            ),
            ProblemKind::NothingToPersonalize => f.write_str(
                "this file has no slots and no placeholder this tool knows: there is nothing to personalise (if it was personalised before, start again from the original file)",
            ),
        }
    }
}

/// Something worth knowing about a personalisation that goes ahead. Never holds a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "code", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Warning {
    /// A value for a key the firmware lacks, ignored on request.
    IgnoredUnknownKey {
        /// The key.
        key: String,
        /// Where the value came from.
        origin: Origin,
    },
    /// A secret was given on the command line, where process lists and shell history show it.
    SecretOnCommandLine {
        /// The key.
        key: String,
    },
    /// A placeholder the firmware has got no value: its literal stays in the image.
    PlaceholderLeft {
        /// The key.
        key: String,
    },
    /// A placeholder literal matched, but spaces follow it in the firmware: it is probably the
    /// start of a longer placeholder whose trailing spaces the mapping lost.
    PlaceholderPrefix {
        /// The key.
        key: String,
        /// The literal's length.
        len: usize,
        /// Spaces after it.
        spaces: usize,
    },
}

impl Warning {
    /// The key the warning is about.
    pub fn key(&self) -> &str {
        match self {
            Warning::IgnoredUnknownKey { key, .. }
            | Warning::SecretOnCommandLine { key }
            | Warning::PlaceholderLeft { key }
            | Warning::PlaceholderPrefix { key, .. } => key,
        }
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Warning::IgnoredUnknownKey { key, origin } => write!(
                f,
                "no slot or placeholder named {key} in this firmware{}; ignored",
                from(origin)
            ),
            Warning::SecretOnCommandLine { key } => write!(
                f,
                "slot {key} is secret but was given on the command line, which shows in process lists and shell history"
            ),
            Warning::PlaceholderLeft { key } => write!(
                f,
                "placeholder {key} got no value: its placeholder text stays in the image"
            ),
            Warning::PlaceholderPrefix { key, len, spaces } => write!(
                f,
                "the placeholder literal for {key} ({len} bytes) is followed by {spaces} space(s) in the firmware: the placeholder there is probably {} bytes long; give the literal with its trailing spaces to use all of it",
                len + spaces
            ),
        }
    }
}
