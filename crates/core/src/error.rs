//! The engine's errors. Every variant says what is wrong and where (a file
//! offset or a load address); [`Error::help`] says, separately, what to do about
//! it, and [`Error::code`] names the kind for programs. The engine never sees
//! file names: callers wrap an [`Error`](enum@Error) with the path (see the CLI).

use crate::problem::Problem;
use thiserror::Error;

/// Everything the engine can refuse or fail on. Offsets are file offsets (of the
/// decompressed data for a gzip input); addresses are load addresses.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The input has no bytes.
    #[error("the file is empty (offset 0x0): expected firmware")]
    Empty,

    /// A structure runs past the end of the data.
    #[error(
        "truncated {what} at offset {offset:#x}: it needs {needed} bytes but only {available} remain"
    )]
    Truncated {
        /// What was being read (`image header`, `segment header`, ...).
        what: &'static str,
        /// Where it starts.
        offset: usize,
        /// Bytes it needs.
        needed: usize,
        /// Bytes left.
        available: usize,
    },

    /// No format this library knows starts here.
    #[error(
        "unrecognised firmware at offset {offset:#x} (starts with {head}): expected an ELF, an ESP image (magic 0xE9 or 0xEA), a merged flash image or a gzip OTA image"
    )]
    UnknownFormat {
        /// Where the data was looked at.
        offset: usize,
        /// Its first bytes, in hex.
        head: String,
    },

    /// Random-looking data without an image magic: encrypted.
    #[error(
        "the data at offset {offset:#x} looks encrypted (no image magic, random-looking bytes): a pre-encrypted image (espsecure encrypt-flash-data) or a digested Secure Boot v1 bootloader cannot be patched"
    )]
    Encrypted {
        /// Where the data was looked at.
        offset: usize,
    },

    /// A structure's magic byte is wrong.
    #[error("bad magic {found:#04x} at offset {offset:#x} for {what}: expected {expected:#04x}")]
    BadMagic {
        /// The structure.
        what: &'static str,
        /// Where its magic is.
        offset: usize,
        /// The byte found.
        found: u8,
        /// The byte expected.
        expected: u8,
    },

    /// An image header declares more segments than any ESP image may hold.
    #[error(
        "the image at offset {offset:#x} declares {count} segments; an ESP image holds at most 16"
    )]
    TooManySegments {
        /// The image's offset.
        offset: usize,
        /// The count it declares.
        count: usize,
    },

    /// A segment's length runs past the end of the file.
    #[error(
        "segment {index} of the image at offset {image:#x} (header at offset {offset:#x}) declares {len} bytes, past the end of the file ({file_len} bytes)"
    )]
    SegmentPastEnd {
        /// The image's offset.
        image: usize,
        /// The segment's index.
        index: usize,
        /// The segment header's offset.
        offset: usize,
        /// The length it declares.
        len: u32,
        /// The file's length.
        file_len: usize,
    },

    /// An ELF file that cannot be read.
    #[error("malformed ELF at offset {offset:#x}: {reason}")]
    Elf {
        /// Where the problem is.
        offset: usize,
        /// What it is.
        reason: String,
    },

    /// An ELF for another machine (a PC program), not accepted unless asked for.
    #[error(
        "the ELF (e_machine {machine} at offset 0x12) is not ESP firmware: expected 32-bit Xtensa (94) or RISC-V (243)"
    )]
    NotEspElf {
        /// Its `e_machine`.
        machine: u16,
    },

    /// A partition table entry that cannot be used.
    #[error(
        "partition table at offset {table:#x}: entry {index} ({label}) at offset {offset:#x}: {reason}"
    )]
    PartitionTable {
        /// The table's offset.
        table: usize,
        /// The entry's index.
        index: usize,
        /// The entry's label.
        label: String,
        /// The entry's offset.
        offset: usize,
        /// What is wrong.
        reason: String,
    },

    /// Two partitions of a table overlap.
    #[error(
        "partition table at offset {table:#x}: partitions {a} and {b} overlap ({a_start:#x}..{a_end:#x} and {b_start:#x}..{b_end:#x})"
    )]
    PartitionOverlap {
        /// The table's offset.
        table: usize,
        /// One partition's label.
        a: String,
        /// The other's label.
        b: String,
        /// Where the first starts on the flash.
        a_start: u32,
        /// Where it ends.
        a_end: u32,
        /// Where the second starts.
        b_start: u32,
        /// Where it ends.
        b_end: u32,
    },

    /// A gzip stream inflating past the cap.
    #[error(
        "the gzip stream decompresses to more than {limit} bytes (offset 0x0): refusing it as a likely gzip bomb"
    )]
    DecompressedTooLarge {
        /// The cap.
        limit: usize,
    },

    /// A gzip stream that cannot be inflated.
    #[error("cannot decompress the gzip stream (offset 0x0): {reason}")]
    Gzip {
        /// The decoder's reason.
        reason: String,
    },

    /// A second gzip member after the first.
    #[error(
        "a second gzip member starts at offset {offset:#x} of the file, after the first stream: the ESP8266 updater decompresses only the first one, so the device would get part of the image"
    )]
    GzipMembers {
        /// Where it starts in the compressed file.
        offset: usize,
    },

    /// Bytes after the gzip stream that are not gzip data.
    #[error(
        "{len} bytes that are not gzip data follow the gzip stream at offset {offset:#x} of the file: the file is damaged or something was appended to it"
    )]
    GzipTrailing {
        /// Where they start in the compressed file.
        offset: usize,
        /// How many.
        len: usize,
    },

    /// A gzip stream that inflates to another gzip stream.
    #[error(
        "the gzip stream at offset 0x0 holds another gzip stream: the file was compressed twice"
    )]
    GzipNested,

    /// Bytes that are not segment data (a gap, a header, padding).
    #[error("{len} bytes at address {addr:#010x} are not patchable data of {space}")]
    Unmapped {
        /// The address space (`app`, `factory`, `elf`, ...).
        space: String,
        /// The first address.
        addr: u32,
        /// How many bytes.
        len: usize,
    },

    /// Bytes of a protected field (the app descriptor, the Arduino CRC trailer).
    #[error("refusing to patch {field} of {space} (address {addr:#010x}): it is protected")]
    Protected {
        /// The address space.
        space: String,
        /// The field.
        field: &'static str,
        /// The address asked for.
        addr: u32,
    },

    /// A file offset that holds a header, checksum, digest or CRC.
    #[error("refusing to patch offset {offset:#x}: it is {field}, not segment data")]
    ProtectedOffset {
        /// The offset.
        offset: usize,
        /// What is there.
        field: String,
    },

    /// A signed image: any change breaks the signature.
    #[error(
        "the image at offset {offset:#x} is signed ({kind}): any change breaks the signature and the device would refuse it"
    )]
    Signed {
        /// Where the signature is.
        offset: usize,
        /// Which kind (`Secure Boot v2 (RSA-3072)`, ...).
        kind: String,
    },

    /// The input does not verify, so it is not patched.
    #[error("refusing to patch {space}: it is not valid before patching ({problems})")]
    InvalidBeforePatch {
        /// What was to be patched.
        space: String,
        /// The verification's problems, summarised.
        problems: String,
    },

    /// The result does not verify: a bug, and nothing is returned.
    #[error("internal check failed: the patched result does not verify ({problems})")]
    InvalidAfterPatch {
        /// What does not verify.
        problems: String,
    },

    /// A patch whose new bytes are not as long as the old ones.
    #[error("patch length mismatch: {old} bytes to replace, {new} bytes given")]
    LengthMismatch {
        /// Bytes to replace.
        old: usize,
        /// Bytes given.
        new: usize,
    },

    /// Personalisation was refused before anything was written: one typed
    /// [`Problem`] per key (never a value), so a form can mark each field.
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
