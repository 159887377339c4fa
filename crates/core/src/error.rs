//! The engine's errors. Every variant says where (a file offset or a load
//! address) and, where there is one, what to do about it. The engine never sees
//! file names: callers wrap an [`Error`] with the path (see the CLI).

use thiserror::Error;

/// Everything the engine can refuse or fail on.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    #[error("the file is empty (offset 0x0): expected firmware")]
    Empty,

    #[error(
        "truncated {what} at offset {offset:#x}: it needs {needed} bytes but only {available} remain; the file is incomplete, rebuild or download it again"
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
        "the data at offset {offset:#x} looks encrypted (no image magic, random-looking bytes): a pre-encrypted image (espsecure encrypt-flash-data) or a digested Secure Boot v1 bootloader cannot be patched; patch the plain image, then encrypt it"
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
        "the ELF (e_machine {machine} at offset 0x12) is not ESP firmware: expected 32-bit Xtensa (94) or RISC-V (243); for a PC program that uses the slot header or crate, pass --host-elf"
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
        "the gzip stream decompresses to more than {limit} bytes (offset 0x0): refusing it as a likely gzip bomb; no ESP flash is that large"
    )]
    DecompressedTooLarge { limit: usize },

    #[error("cannot decompress the gzip stream (offset 0x0): {reason}")]
    Gzip { reason: String },

    #[error(
        "a second gzip member starts at offset {offset:#x} of the file, after the first stream: the ESP8266 updater decompresses only the first one, so the device would get part of the image; decompress the file and compress the image again as one stream (gzip -9)"
    )]
    GzipMembers { offset: usize },

    #[error(
        "{len} bytes that are not gzip data follow the gzip stream at offset {offset:#x} of the file: the file is damaged or something was appended to it; use the .bin.gz as the build wrote it"
    )]
    GzipTrailing { offset: usize, len: usize },

    #[error(
        "the gzip stream at offset 0x0 holds another gzip stream: the file was compressed twice; decompress it once (gunzip) and use the result, a single .bin.gz"
    )]
    GzipNested,

    #[error(
        "{len} bytes at address {addr:#010x} are not patchable data of {space}: only segment data (ELF: allocated sections) can be patched"
    )]
    Unmapped {
        space: String,
        addr: u32,
        len: usize,
    },

    #[error(
        "refusing to patch {field} of {space} (address {addr:#010x}): it is protected, change the value elsewhere"
    )]
    Protected {
        space: String,
        field: &'static str,
        addr: u32,
    },

    #[error("refusing to patch offset {offset:#x}: it is {field}, not segment data")]
    ProtectedOffset { offset: usize, field: String },

    #[error(
        "the image at offset {offset:#x} is signed ({kind}): any change breaks the signature and the device would refuse it; patch the unsigned image and sign it again with your key"
    )]
    Signed { offset: usize, kind: String },

    #[error(
        "refusing to patch {space}: it is not valid before patching ({problems}); rebuild it or fix it first"
    )]
    InvalidBeforePatch { space: String, problems: String },

    #[error(
        "internal check failed: the patched result does not verify ({problems}); nothing was written"
    )]
    InvalidAfterPatch { problems: String },

    #[error("patch length mismatch: {old} bytes to replace, {new} bytes given")]
    LengthMismatch { old: usize, new: usize },

    /// Personalisation was refused before anything was written; each problem
    /// names the slot (and never the value).
    #[error("{}", problems.join("\n"))]
    Personalize { problems: Vec<String> },
}

/// The engine's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
