//! The engine's errors. Every variant says what is wrong and where (a file
//! offset or a load address); [`Error::help`] says, separately, what to do about
//! it, and [`Error::code`] names the kind for programs. The engine never sees
//! file names: callers wrap an [`Error`] with the path (see the CLI).

use crate::problem::Problem;
use thiserror::Error;

/// Everything the engine can refuse or fail on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    #[error("the file is empty (offset 0x0): expected firmware")]
    Empty,

    #[error(
        "truncated {what} at offset {offset:#x}: it needs {needed} bytes but only {available} remain"
    )]
    Truncated {
        what: &'static str,
        offset: usize,
        needed: usize,
        available: usize,
    },

    #[error(
        "unrecognised firmware at offset {offset:#x} (starts with {head}): expected an ELF, an ESP image (magic 0xE9 or 0xEA), a merged flash image or a gzip OTA image"
    )]
    UnknownFormat { offset: usize, head: String },

    #[error(
        "the data at offset {offset:#x} looks encrypted (no image magic, random-looking bytes): a pre-encrypted image (espsecure encrypt-flash-data) or a digested Secure Boot v1 bootloader cannot be patched"
    )]
    Encrypted { offset: usize },

    #[error("bad magic {found:#04x} at offset {offset:#x} for {what}: expected {expected:#04x}")]
    BadMagic {
        what: &'static str,
        offset: usize,
        found: u8,
        expected: u8,
    },

    #[error(
        "the image at offset {offset:#x} declares {count} segments; an ESP image holds at most 16"
    )]
    TooManySegments { offset: usize, count: usize },

    #[error(
        "segment {index} of the image at offset {image:#x} (header at offset {offset:#x}) declares {len} bytes, past the end of the file ({file_len} bytes)"
    )]
    SegmentPastEnd {
        image: usize,
        index: usize,
        offset: usize,
        len: u32,
        file_len: usize,
    },

    #[error("malformed ELF at offset {offset:#x}: {reason}")]
    Elf { offset: usize, reason: String },

    #[error(
        "the ELF (e_machine {machine} at offset 0x12) is not ESP firmware: expected 32-bit Xtensa (94) or RISC-V (243)"
    )]
    NotEspElf { machine: u16 },

    #[error(
        "partition table at offset {table:#x}: entry {index} ({label}) at offset {offset:#x}: {reason}"
    )]
    PartitionTable {
        table: usize,
        index: usize,
        label: String,
        offset: usize,
        reason: String,
    },

    #[error(
        "partition table at offset {table:#x}: partitions {a} and {b} overlap ({a_start:#x}..{a_end:#x} and {b_start:#x}..{b_end:#x})"
    )]
    PartitionOverlap {
        table: usize,
        a: String,
        b: String,
        a_start: u32,
        a_end: u32,
        b_start: u32,
        b_end: u32,
    },

    #[error(
        "the gzip stream decompresses to more than {limit} bytes (offset 0x0): refusing it as a likely gzip bomb"
    )]
    DecompressedTooLarge { limit: usize },

    #[error("cannot decompress the gzip stream (offset 0x0): {reason}")]
    Gzip { reason: String },

    #[error(
        "a second gzip member starts at offset {offset:#x} of the file, after the first stream: the ESP8266 updater decompresses only the first one, so the device would get part of the image"
    )]
    GzipMembers { offset: usize },

    #[error(
        "{len} bytes that are not gzip data follow the gzip stream at offset {offset:#x} of the file: the file is damaged or something was appended to it"
    )]
    GzipTrailing { offset: usize, len: usize },

    #[error(
        "the gzip stream at offset 0x0 holds another gzip stream: the file was compressed twice"
    )]
    GzipNested,

    #[error("{len} bytes at address {addr:#010x} are not patchable data of {space}")]
    Unmapped {
        space: String,
        addr: u32,
        len: usize,
    },

    #[error("refusing to patch {field} of {space} (address {addr:#010x}): it is protected")]
    Protected {
        space: String,
        field: &'static str,
        addr: u32,
    },

    #[error("refusing to patch offset {offset:#x}: it is {field}, not segment data")]
    ProtectedOffset { offset: usize, field: String },

    #[error(
        "the image at offset {offset:#x} is signed ({kind}): any change breaks the signature and the device would refuse it"
    )]
    Signed { offset: usize, kind: String },

    #[error("refusing to patch {space}: it is not valid before patching ({problems})")]
    InvalidBeforePatch { space: String, problems: String },

    #[error("internal check failed: the patched result does not verify ({problems})")]
    InvalidAfterPatch { problems: String },

    #[error("patch length mismatch: {old} bytes to replace, {new} bytes given")]
    LengthMismatch { old: usize, new: usize },

    /// Personalisation was refused before anything was written: one typed
    /// [`Problem`] per key (never a value), so a form can mark each field.
    /// names the slot (and never the value).
    #[error("{}", problems.iter().map(|p| match p.help() {
        Some(h) => format!("{p}; {h}"),
        None => p.to_string(),
    }).collect::<Vec<_>>().join("\n"))]
    Personalize {
        /// Every reason, in key order.
        problems: Vec<Problem>,
    },
}

impl Error {
    /// A stable identifier of the kind of error (`truncated`, `signed`, ...).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Empty => "empty",
            Error::Truncated { .. } => "truncated",
            Error::UnknownFormat { .. } => "unknown_format",
            Error::Encrypted { .. } => "encrypted",
            Error::BadMagic { .. } => "bad_magic",
            Error::TooManySegments { .. } => "too_many_segments",
            Error::SegmentPastEnd { .. } => "segment_past_end",
            Error::Elf { .. } => "elf",
            Error::NotEspElf { .. } => "not_esp_elf",
            Error::PartitionTable { .. } => "partition_table",
            Error::PartitionOverlap { .. } => "partition_overlap",
            Error::DecompressedTooLarge { .. } => "decompressed_too_large",
            Error::Gzip { .. } => "gzip",
            Error::GzipMembers { .. } => "gzip_members",
            Error::GzipTrailing { .. } => "gzip_trailing",
            Error::GzipNested => "gzip_nested",
            Error::Unmapped { .. } => "unmapped",
            Error::Protected { .. } => "protected",
            Error::ProtectedOffset { .. } => "protected_offset",
            Error::Signed { .. } => "signed",
            Error::InvalidBeforePatch { .. } => "invalid_before_patch",
            Error::InvalidAfterPatch { .. } => "invalid_after_patch",
            Error::LengthMismatch { .. } => "length_mismatch",
            Error::Personalize { .. } => "personalize",
        }
    }

    /// What to do about it, in words that fit every front end; `None` where the message says
    /// all there is. A personalisation's problems carry their own ([`Problem::help`]).
    pub fn help(&self) -> Option<&'static str> {
        Some(match self {
            Error::Empty | Error::Truncated { .. } | Error::SegmentPastEnd { .. } => {
                "the file is incomplete: rebuild or download it again"
            }
            Error::UnknownFormat { .. } => {
                "check that this is the firmware file the build wrote (.bin, .bin.gz or .elf)"
            }
            Error::Encrypted { .. } => "patch the plain image, then encrypt it",
            Error::NotEspElf { .. } => {
                "a PC program that uses the slot header or crate can be accepted on request (host ELF files)"
            }
            Error::DecompressedTooLarge { .. } => "no ESP flash is that large",
            Error::GzipMembers { .. } => {
                "decompress the file and compress the image again as one stream (gzip -9)"
            }
            Error::GzipTrailing { .. } => "use the .bin.gz as the build wrote it",
            Error::GzipNested => "decompress it once (gunzip) and use the result, a single .bin.gz",
            Error::Unmapped { .. } => "only segment data (ELF: allocated sections) can be patched",
            Error::Protected { .. } => "change the value elsewhere",
            Error::Signed { .. } => "patch the unsigned image and sign it again with your key",
            Error::InvalidBeforePatch { .. } => "rebuild the file or fix it first",
            Error::InvalidAfterPatch { .. } => {
                "nothing was written; this is a bug in thinger-patch, please report it"
            }
            _ => return None,
        })
    }
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
