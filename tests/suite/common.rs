//! Shared helpers for the integration tests in `tests/*.rs`: `mod common;` in a test file.
//!
//! - Locations: [`repo_root`], [`shared_fixtures`], [`fixture`], [`read_fixture`], [`temp_dir`].
//! - External tools: [`esptool`] (the pinned esptool from `.venv`, see
//!   `scripts/requirements-test.txt`) with a parser for `esptool image-info` ([`ImageInfo`]), and
//!   [`run_cli`] for the `thinger-patch` binary.
//! - An independent verifier written from `../shared/docs/esp-image-formats.md` and NOT sharing
//!   any code with the library: [`xor_checksum`], [`crc32`], [`esp8266_crc32`], [`crc32_mpeg2`],
//!   [`sha256`], [`walk_app_image`], [`arduino_crc_ok`], [`v2_crc_ok`],
//!   [`arduino_app_checksum_convention`].
//!
//! Skipping rule: when `../shared/fixtures` or esptool is missing, the helpers print
//! `skipping: ...` to stderr and return `None` so the test can `return` early; under `CI=true` a
//! missing fixture folder or esptool is a failure (panic) instead. Typical use:
//!
//! ```ignore
//! mod common;
//! #[test]
//! fn my_test() {
//!     let Some(bin) = common::fixture("esphome/esp8266-core3.bin") else { return };
//!     let Some(esptool) = common::esptool() else { return };
//!     esptool.image_info(&bin, None).assert_valid("original");
//! }
//! ```
#![allow(dead_code)]

use std::env;
use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

// =============================================================================================
// Locations
// =============================================================================================

/// The repository root (the main package's `CARGO_MANIFEST_DIR`).
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// True when running in CI (`CI` is `true`/`1`/`yes`, any case). In CI a missing fixture folder
/// or esptool is an error, not a skip.
pub fn in_ci() -> bool {
    env::var("CI")
        .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "true" | "1" | "yes"))
        .unwrap_or(false)
}

/// A skip, said on stderr and counted in the summary of `scripts/test.sh`.
pub use thinger_patch_test_kit::skip;

/// Skip (print and return `None`) or, under CI, panic.
fn absent<T>(what: &str, hint: &str) -> Option<T> {
    if in_ci() {
        panic!("{what} is absent, and CI=true makes this a failure, not a skip: {hint}");
    }
    thinger_patch_test_kit::skip(&format!("{what} is absent"));
    None
}

/// `../shared/fixtures/third-party` beside the repository root, or `None` (after printing
/// `skipping: ../shared/fixtures is absent`) when it does not exist. Panics under `CI=true`.
pub fn shared_fixtures() -> Option<PathBuf> {
    let dir = repo_root().join("../shared/fixtures/third-party");
    if dir.is_dir() {
        Some(fs::canonicalize(&dir).unwrap_or(dir))
    } else {
        absent(
            "../shared/fixtures",
            &format!(
                "expected the read-only fixture folder at {} (see ../shared/fixtures/README.md)",
                dir.display()
            ),
        )
    }
}

/// A file under `../shared/fixtures/third-party`, e.g. `fixture("esphome/esp8266-core3.bin")`.
/// `None` when the whole fixture folder is absent (see [`shared_fixtures`]); panics when the
/// folder exists but this file does not (a typo or a stale fixture list is a real error).
pub fn fixture(rel: &str) -> Option<PathBuf> {
    let path = shared_fixtures()?.join(rel);
    assert!(
        path.exists(),
        "fixture {rel} not found at {} (see MANIFEST.tsv there for the list)",
        path.display()
    );
    Some(path)
}

/// The bytes of [`fixture`]`(rel)`.
pub fn read_fixture(rel: &str) -> Option<Vec<u8>> {
    let path = fixture(rel)?;
    Some(fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display())))
}

/// A fresh temporary directory, deleted when the value is dropped.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("thinger-patch-test-")
        .tempdir()
        .expect("creating a temporary directory")
}

/// Write `bytes` to `dir/name` and return the path.
pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    path
}

/// Copy `src` to `dir/name` with the byte at `offset` XORed with `0x01` (a one-bit corruption).
pub fn corrupted_copy(src: &Path, dir: &Path, name: &str, offset: usize) -> PathBuf {
    let mut bytes = fs::read(src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()));
    flip_byte(&mut bytes, offset);
    write_file(dir, name, &bytes)
}

/// XOR the byte at `offset` with `0x01`.
pub fn flip_byte(bytes: &mut [u8], offset: usize) {
    assert!(
        offset < bytes.len(),
        "offset {offset:#x} is beyond the end ({:#x})",
        bytes.len()
    );
    bytes[offset] ^= 0x01;
}

/// Every offset where `needle` occurs in `haystack` (overlapping matches included).
pub fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return Vec::new();
    }
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}

// =============================================================================================
// The thinger-patch binary
// =============================================================================================

/// Path of the `thinger-patch` binary cargo built for this test run.
pub fn cli_path() -> PathBuf {
    // option_env! so that the helpers still compile when the binary is not built
    // (e.g. `--no-default-features` disables the `cli` feature the binary requires).
    match option_env!("CARGO_BIN_EXE_thinger-patch") {
        Some(p) => PathBuf::from(p),
        None => panic!("the thinger-patch binary was not built (it needs the `cli` feature)"),
    }
}

/// Run the `thinger-patch` binary with `args` (no stdin, `NO_COLOR=1`) and return its output.
pub fn run_cli(args: &[&str]) -> Output {
    let bin = cli_path();
    Command::new(&bin)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("FORCE_COLOR")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", bin.display()))
}

/// `stdout` and `stderr` of an [`Output`] as one string, for error messages.
pub fn describe_output(out: &Output) -> String {
    format!(
        "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// =============================================================================================
// esptool
// =============================================================================================

/// The esptool executable the tests use (see [`esptool`]).
#[derive(Debug, Clone)]
pub struct Esptool {
    pub program: PathBuf,
    /// The version printed by `esptool version`, e.g. `5.6.0`.
    pub version: String,
}

/// Find esptool: `$THINGER_PATCH_ESPTOOL` (must exist when set), else `<repo>/.venv/bin/esptool`,
/// else `esptool` on `PATH`. `None` (after printing `skipping: esptool is absent`) when none is
/// found; panics under `CI=true`. `scripts/test.sh` installs the pinned version and sets
/// `THINGER_PATCH_ESPTOOL`.
pub fn esptool() -> Option<Esptool> {
    static FOUND: OnceLock<Option<Esptool>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        let program = locate_esptool()?;
        let out = Command::new(&program)
            .arg("version")
            .env("NO_COLOR", "1")
            .env_remove("FORCE_COLOR")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {} version: {e}", program.display()));
        assert!(
            out.status.success(),
            "{} version failed:\n{}",
            program.display(),
            describe_output(&out)
        );
        // Output: "esptool v5.6.0\n5.6.0\n"; the last line is the bare version.
        let version = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .unwrap_or_default()
            .to_string();
        if !version.starts_with("5.") {
            eprintln!(
                "warning: {} is esptool {version:?}; the image-info parser was written for 5.x",
                program.display()
            );
        }
        Some(Esptool { program, version })
    });
    match found {
        Some(e) => Some(e.clone()),
        None => absent(
            "esptool",
            "run scripts/setup-test-env.sh (installs it into .venv) or set THINGER_PATCH_ESPTOOL",
        ),
    }
}

fn locate_esptool() -> Option<PathBuf> {
    if let Some(p) = env::var_os("THINGER_PATCH_ESPTOOL").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            p.is_file(),
            "THINGER_PATCH_ESPTOOL={} does not exist (run scripts/setup-test-env.sh)",
            p.display()
        );
        return Some(p);
    }
    let venv = repo_root().join(".venv/bin/esptool");
    if venv.is_file() {
        return Some(venv);
    }
    let path = env::var_os("PATH")?;
    env::split_paths(&path)
        .map(|dir| dir.join("esptool"))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

impl Esptool {
    /// A `Command` for esptool with colours off and no stdin.
    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.env("NO_COLOR", "1")
            .env_remove("FORCE_COLOR")
            .env_remove("TTY_COMPATIBLE")
            .stdin(Stdio::null());
        cmd
    }

    /// Run `esptool <args>` and return its output (whatever the exit status).
    pub fn run<S: AsRef<OsStr>>(&self, args: &[S]) -> Output {
        self.command()
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", self.program.display()))
    }

    /// Run `esptool [--chip CHIP] image-info PATH` and parse its output. Never panics on a
    /// failing esptool: check [`ImageInfo::success`] / [`ImageInfo::error`].
    pub fn image_info(&self, path: impl AsRef<Path>, chip: Option<&str>) -> ImageInfo {
        let mut args: Vec<&OsStr> = Vec::new();
        if let Some(chip) = chip {
            args.push(OsStr::new("--chip"));
            args.push(OsStr::new(chip));
        }
        args.push(OsStr::new("image-info"));
        args.push(path.as_ref().as_os_str());
        ImageInfo::from_output(&self.run(&args))
    }

    /// Run `esptool --chip CHIP elf2image -o OUT [EXTRA_ARGS...] ELF`. `Err` holds the exit status
    /// and both output streams. Note: for `--chip esp8266` without `--version 2`, `OUT` is a
    /// prefix and esptool writes two files (`OUT0x00000.bin`, `OUT0x<irom offset>.bin`).
    pub fn elf2image(
        &self,
        elf: impl AsRef<Path>,
        out: impl AsRef<Path>,
        chip: &str,
        extra_args: &[&str],
    ) -> Result<(), String> {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("--chip"),
            OsStr::new(chip),
            OsStr::new("elf2image"),
            OsStr::new("-o"),
            out.as_ref().as_os_str(),
        ];
        args.extend(extra_args.iter().map(OsStr::new));
        args.push(elf.as_ref().as_os_str());
        let output = self.run(&args);
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "esptool {}\n{}",
                args.iter()
                    .map(|a| a.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(" "),
                describe_output(&output)
            ))
        }
    }
}

/// One row of image-info's "Segments Information" table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InfoSegment {
    pub index: usize,
    /// Data length as esptool holds it: esptool pads every segment with a non-zero load address
    /// to a multiple of 4, so this can exceed the header's length field (real Arduino core 3.x
    /// images have unaligned segments).
    pub length: u32,
    pub load_addr: u32,
    /// "File offs": the file offset of the 8-byte segment HEADER (the data starts 8 bytes later).
    pub file_offset: Option<u32>,
    /// "Memory types", e.g. `["DROM"]`, `["BYTE_ACCESSIBLE", "MEM_INTERNAL", "DRAM"]`; empty when
    /// esptool does not know the region (e.g. the ESP8266 v2 irom segment, load address 0).
    pub memory_types: Vec<String>,
}

impl InfoSegment {
    /// File offset of the segment's data (`file_offset + 8`).
    pub fn data_offset(&self) -> Option<u32> {
        self.file_offset.map(|o| o + 8)
    }
}

/// image-info's `Checksum: 0x18 (valid)` / `Checksum: 0x18 (invalid - calculated 0x19)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InfoChecksum {
    pub stored: u8,
    /// What esptool calculated (equal to `stored` when it printed `valid`).
    pub computed: u8,
    /// esptool's own verdict (`valid` vs `invalid - calculated ...`).
    pub valid: bool,
}

/// image-info's `Validation hash: <hex> (valid|invalid)` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HashStatus {
    /// No `Validation hash` line: ESP8266 images, `hash_appended == 0`, or esptool failed
    /// before printing the footer (then `ImageInfo::checksum` is `None` too).
    Absent,
    /// The hex is the digest esptool CALCULATED (it never prints the stored one).
    Valid(String),
    Invalid(String),
}

/// Parsed output of `esptool image-info` (esptool 5.x).
///
/// Behaviour of esptool 5.6.0 this models (checked on the shared fixtures):
/// - An image whose checksum and/or SHA-256 is wrong still exits with status 0; only the footer
///   lines say so (`Checksum: 0x18 (invalid - calculated 0x19)`,
///   `Validation hash: <calculated hex> (invalid)`).
/// - Exit status 2 with `ERROR: A fatal error occurred: <msg>` on stderr for images it cannot
///   read: `Image is empty.`, `This is not a valid image (invalid magic number: 0xaa).`,
///   `End of file reading segment 0x40080020, length 89320 (actual length 34432)`.
/// - Warnings go to stderr as `WARNING: ...` (e.g. `Suspicious segment 0x40201010, length 375140`
///   for an ESP8266 app with an irom segment, or `Flash size/freq value in first header (0x01)
///   disagrees with second (0x50). Using second value.` for a v2 image) and do not change the
///   exit status.
/// - `Detected image type: X` is printed only without `--chip`.
#[derive(Debug, Clone)]
pub struct ImageInfo {
    pub exit_code: Option<i32>,
    pub success: bool,
    /// From the banner `esptool v5.6.0`, e.g. `5.6.0`.
    pub esptool_version: Option<String>,
    /// `Image size: N bytes`.
    pub image_size: Option<u64>,
    /// `Detected image type: ESP32-S2` (only without `--chip`).
    pub detected_chip: Option<String>,
    /// The chip name of the `<CHIP> Image Header` title, e.g. `ESP8266`, `ESP32-C3`.
    pub chip: Option<String>,
    /// `Image version: 1` (ESP8266 v2 images say 2).
    pub image_version: Option<u32>,
    pub entry_point: Option<u32>,
    /// `Segments: N` from the header section.
    pub segment_count: Option<usize>,
    pub flash_size: Option<String>,
    pub flash_freq: Option<String>,
    pub flash_mode: Option<String>,
    /// `Chip ID: 5 (ESP32-C3)` (ESP32 family only).
    pub chip_id: Option<u32>,
    pub segments: Vec<InfoSegment>,
    pub checksum: Option<InfoChecksum>,
    pub hash: HashStatus,
    /// `WARNING:` lines (prefix removed) from stdout and stderr.
    pub warnings: Vec<String>,
    /// The message of `ERROR: A fatal error occurred: <msg>` (or any other `ERROR:` line).
    pub error: Option<String>,
    pub stdout: String,
    pub stderr: String,
}

impl ImageInfo {
    /// Parse an esptool image-info run.
    pub fn from_output(out: &Output) -> ImageInfo {
        let stdout = strip_ansi(&String::from_utf8_lossy(&out.stdout));
        let stderr = strip_ansi(&String::from_utf8_lossy(&out.stderr));
        let mut info = ImageInfo {
            exit_code: out.status.code(),
            success: out.status.success(),
            esptool_version: None,
            image_size: None,
            detected_chip: None,
            chip: None,
            image_version: None,
            entry_point: None,
            segment_count: None,
            flash_size: None,
            flash_freq: None,
            flash_mode: None,
            chip_id: None,
            segments: Vec::new(),
            checksum: None,
            hash: HashStatus::Absent,
            warnings: Vec::new(),
            error: None,
            stdout: String::new(),
            stderr: String::new(),
        };

        for line in stdout.lines().chain(stderr.lines()) {
            let line = line.trim();
            if let Some(w) = line.strip_prefix("WARNING:") {
                info.warnings.push(w.trim().to_string());
            } else if let Some(e) = line.strip_prefix("ERROR:") {
                let e = e.trim();
                let e = e
                    .strip_prefix("A fatal error occurred:")
                    .unwrap_or(e)
                    .trim();
                info.error.get_or_insert_with(|| e.to_string());
            }
        }

        let mut in_segments = false;
        for raw in stdout.lines() {
            let line = raw.trim();
            if in_segments {
                if line.is_empty() {
                    in_segments = false;
                } else if line.starts_with("Segment") || line.starts_with("---") {
                    // table header
                } else if let Some(seg) = parse_segment_row(line) {
                    info.segments.push(seg);
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("esptool v") {
                info.esptool_version = Some(v.trim().to_string());
            } else if line == "Segments Information" {
                in_segments = true;
            } else if let Some(chip) = line.strip_suffix(" Image Header") {
                if !chip.ends_with("Extended") {
                    info.chip = Some(chip.to_string());
                }
            } else if let Some((key, value)) = line.split_once(": ") {
                let value = value.trim();
                match key {
                    "Image size" => {
                        info.image_size = value.strip_suffix(" bytes").and_then(|v| v.parse().ok())
                    }
                    "Detected image type" => info.detected_chip = Some(value.to_string()),
                    "Image version" => info.image_version = value.parse().ok(),
                    "Entry point" => info.entry_point = parse_hex(value),
                    "Segments" => info.segment_count = value.parse().ok(),
                    "Flash size" => info.flash_size = Some(value.to_string()),
                    "Flash freq" => info.flash_freq = Some(value.to_string()),
                    "Flash mode" => info.flash_mode = Some(value.to_string()),
                    "Chip ID" => {
                        info.chip_id = value.split_whitespace().next().and_then(|v| v.parse().ok())
                    }
                    "Checksum" => info.checksum = parse_checksum(value),
                    "Validation hash" => info.hash = parse_hash(value),
                    _ => {}
                }
            }
        }
        info.stdout = stdout;
        info.stderr = stderr;
        info
    }

    /// esptool's checksum verdict; `None` when it printed no footer.
    pub fn checksum_valid(&self) -> Option<bool> {
        self.checksum.map(|c| c.valid)
    }

    /// esptool's SHA-256 verdict; `None` when no hash is appended (or no footer was printed).
    pub fn hash_valid(&self) -> Option<bool> {
        match self.hash {
            HashStatus::Absent => None,
            HashStatus::Valid(_) => Some(true),
            HashStatus::Invalid(_) => Some(false),
        }
    }

    /// esptool read the image, its checksum is valid and its hash (if any) is valid.
    pub fn is_valid(&self) -> bool {
        self.success && self.checksum_valid() == Some(true) && self.hash_valid() != Some(false)
    }

    /// Panic with the full esptool output unless [`is_valid`](Self::is_valid).
    pub fn assert_valid(&self, what: &str) {
        assert!(
            self.is_valid(),
            "esptool says {what} is not a valid image:\n{}",
            self.describe()
        );
    }

    /// The value of the first `key: value` line of stdout, e.g. `field("Project name")`,
    /// `field("ELF file SHA256")`, `field("App version")`.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.stdout.lines().find_map(|l| {
            let (k, v) = l.trim().split_once(": ")?;
            (k == key).then_some(v.trim())
        })
    }

    /// stdout followed by stderr, for `contains` checks on messages.
    pub fn messages(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Everything, for assertion messages.
    pub fn describe(&self) -> String {
        format!(
            "exit code: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.exit_code, self.stdout, self.stderr
        )
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // CSI: parameters and intermediates, then one final byte in 0x40..=0x7E.
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

fn parse_hex(s: &str) -> Option<u32> {
    let s = s.trim();
    let digits = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    u32::from_str_radix(digits, 16).ok()
}

/// `      0  0x08c18  0x3f000020  0x00000018  DROM`
fn parse_segment_row(line: &str) -> Option<InfoSegment> {
    let mut it = line.split_whitespace();
    let index = it.next()?.parse().ok()?;
    let length = parse_hex(it.next()?)?;
    let load_addr = parse_hex(it.next()?)?;
    let rest: Vec<&str> = it.collect();
    let (file_offset, types) = match rest.first().and_then(|t| parse_hex(t)) {
        Some(off) => (Some(off), &rest[1..]),
        None => (None, &rest[..]),
    };
    let memory_types = types
        .join(" ")
        .split(',')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    Some(InfoSegment {
        index,
        length,
        load_addr,
        file_offset,
        memory_types,
    })
}

/// `0x18 (valid)` or `0x18 (invalid - calculated 0x19)`.
fn parse_checksum(value: &str) -> Option<InfoChecksum> {
    let (stored, verdict) = value.split_once(' ')?;
    let stored = u8::try_from(parse_hex(stored)?).ok()?;
    let verdict = verdict.trim().trim_start_matches('(').trim_end_matches(')');
    if verdict == "valid" {
        Some(InfoChecksum {
            stored,
            computed: stored,
            valid: true,
        })
    } else {
        let computed = verdict.strip_prefix("invalid - calculated ")?;
        let computed = u8::try_from(parse_hex(computed)?).ok()?;
        Some(InfoChecksum {
            stored,
            computed,
            valid: false,
        })
    }
}

/// `<64 hex> (valid)` or `<64 hex> (invalid)`.
fn parse_hash(value: &str) -> HashStatus {
    let (hex, verdict) = value.split_once(' ').unwrap_or((value, ""));
    match verdict.trim() {
        "(valid)" => HashStatus::Valid(hex.to_string()),
        _ => HashStatus::Invalid(hex.to_string()),
    }
}

// =============================================================================================
// Independent integrity checks (written from the formats doc; share nothing with the library)
// =============================================================================================

/// The ESP image checksum: `0xEF` XOR every byte of every segment's data.
pub fn xor_checksum(segments: &[&[u8]]) -> u8 {
    segments.iter().fold(0xEF, |acc, seg| xor_fold(acc, seg))
}

/// `acc` XOR every byte of `data`.
pub fn xor_fold(acc: u8, data: &[u8]) -> u8 {
    data.iter().fold(acc, |a, b| a ^ b)
}

/// zlib's CRC-32 (reflected polynomial 0xEDB88320, init and final XOR 0xFFFFFFFF), bitwise.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// esptool's `esp8266_crc32`: `c = zlib.crc32(data); c ^ 0xFFFFFFFF if c & 0x80000000 else c + 1`.
pub fn esp8266_crc32(data: &[u8]) -> u32 {
    let c = crc32(data);
    if c & 0x8000_0000 != 0 {
        c ^ 0xFFFF_FFFF
    } else {
        c + 1
    }
}

/// CRC-32/MPEG-2: polynomial 0x04C11DB7, init 0xFFFFFFFF, MSB first, no reflection, no final XOR.
pub fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04C1_1DB7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// SHA-256 (the `sha2` crate).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn le32(bytes: &[u8], off: usize) -> Result<u32, String> {
    bytes
        .get(off..off + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| {
            format!(
                "truncated: need 4 bytes at {off:#x}, have {:#x}",
                bytes.len()
            )
        })
}

/// Result of [`walk_app_image`]. All offsets are relative to the start of the slice walked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkedImage {
    /// `(load_addr, data_offset, data_len)` of every checksummed segment, in file order.
    /// `data_offset` is where the DATA starts (esptool's "File offs" is the header, 8 earlier).
    /// `data_len` is the header's length field (not rounded up to 4).
    pub segments: Vec<(u32, usize, usize)>,
    /// ESP8266 v2 (0xEA) only: `(data_offset, data_len)` of the irom segment, which precedes the
    /// inner v1 image and is NOT covered by the XOR checksum (only by the trailing CRC).
    pub v2_irom: Option<(usize, usize)>,
    pub checksum_offset: usize,
    pub stored_checksum: u8,
    pub computed_checksum: u8,
    /// `(stored, computed)` SHA-256 when the header's `hash_appended` byte is 1.
    pub hash: Option<([u8; 32], [u8; 32])>,
    /// Offset just past the image: after the checksum byte, or after the SHA-256 if appended.
    /// (For a v2 image the 4-byte CRC starts here.)
    pub end: usize,
}

impl WalkedImage {
    pub fn checksum_ok(&self) -> bool {
        self.stored_checksum == self.computed_checksum
    }

    /// `None` when no SHA-256 is appended.
    pub fn hash_ok(&self) -> Option<bool> {
        self.hash.map(|(stored, computed)| stored == computed)
    }

    /// Checksum valid and, if present, SHA-256 valid.
    pub fn is_valid(&self) -> bool {
        self.checksum_ok() && self.hash_ok() != Some(false)
    }
}

/// Walk an ESP application image starting at `bytes[0]`, panicking on malformed input (see
/// [`try_walk_app_image`]).
pub fn walk_app_image(bytes: &[u8], esp8266_v1_header: bool) -> WalkedImage {
    try_walk_app_image(bytes, esp8266_v1_header)
        .unwrap_or_else(|e| panic!("walking the app image: {e}"))
}

/// Walk an ESP application image starting at `bytes[0]`:
/// - magic `0xE9`, `esp8266_v1_header == true`: ESP8266 v1 (8-byte header, no SHA-256);
/// - magic `0xE9`, `esp8266_v1_header == false`: ESP32 family / ESP8266 v3 (24-byte header,
///   SHA-256 when byte 23 is 1);
/// - magic `0xEA` (either flag): ESP8266 v2 (first header, irom segment, then a v1 image).
///
/// The checksum byte sits at `E | 0xF` where `E` is the end of the last segment's data; the
/// SHA-256 covers `bytes[0..=checksum_offset]`.
pub fn try_walk_app_image(bytes: &[u8], esp8266_v1_header: bool) -> Result<WalkedImage, String> {
    let magic = *bytes.first().ok_or("empty image")?;
    let mut pos = 0usize;
    let mut v2_irom = None;
    let mut v1 = esp8266_v1_header;
    match magic {
        0xE9 => {}
        0xEA => {
            // First header: EA 04 mode size_freq entry; then {u32 addr (0), u32 len} + irom data.
            let len = le32(bytes, 12)? as usize;
            let data = 16usize;
            if data + len > bytes.len() {
                return Err(format!(
                    "v2 irom segment ({len:#x} bytes at {data:#x}) runs past the end"
                ));
            }
            v2_irom = Some((data, len));
            pos = data + len;
            if bytes.get(pos) != Some(&0xE9) {
                return Err(format!(
                    "v2 image: no 0xE9 header at {pos:#x} after the irom segment"
                ));
            }
            v1 = true;
        }
        m => return Err(format!("bad magic {m:#04x} (want 0xE9 or 0xEA)")),
    }

    let header = pos;
    let count = *bytes.get(header + 1).ok_or("truncated header")? as usize;
    if count > 16 {
        return Err(format!("segment count {count} (at most 16)"));
    }
    let hash_appended = if v1 {
        pos += 8;
        false
    } else {
        let flag = *bytes.get(header + 23).ok_or("truncated extended header")?;
        if flag > 1 {
            return Err(format!("hash_appended byte is {flag} (want 0 or 1)"));
        }
        pos += 24;
        flag == 1
    };

    let mut segments = Vec::with_capacity(count);
    let mut computed = 0xEFu8;
    for i in 0..count {
        let addr = le32(bytes, pos)?;
        let len = le32(bytes, pos + 4)? as usize;
        let data = pos + 8;
        let seg = bytes.get(data..data + len).ok_or_else(|| {
            format!(
                "segment {i} ({len:#x} bytes at {data:#x}) runs past the end ({:#x})",
                bytes.len()
            )
        })?;
        computed = xor_fold(computed, seg);
        segments.push((addr, data, len));
        pos = data + len;
    }

    let checksum_offset = pos | 0xF;
    let stored_checksum = *bytes
        .get(checksum_offset)
        .ok_or_else(|| format!("no checksum byte at {checksum_offset:#x}"))?;
    let mut end = checksum_offset + 1;
    let hash = if hash_appended {
        let stored: [u8; 32] = bytes
            .get(end..end + 32)
            .ok_or_else(|| format!("no SHA-256 at {end:#x}"))?
            .try_into()
            .expect("32 bytes");
        let computed = sha256(&bytes[..end]);
        end += 32;
        Some((stored, computed))
    } else {
        None
    };

    Ok(WalkedImage {
        segments,
        v2_irom,
        checksum_offset,
        stored_checksum,
        computed_checksum: computed,
        hash,
        end,
    })
}

/// Where the Arduino ESP8266 app image starts in a full (eboot + app) image.
pub const ARDUINO_APP_OFFSET: usize = 0x1000;
/// Offsets of the Arduino CRC trailer `{u32 len, u32 crc}`: core 3.x, then core 2.7.
pub const ARDUINO_CRC_OFFSETS: [usize; 2] = [0x1010, 0xFF8];

/// Offset of the Arduino CRC trailer in a full image: the first of 0x1010 (core 3.x) and 0xFF8
/// (core 2.7) whose length word equals the file length. `None` when the file is not an
/// eboot+app image (0xE9 at 0 and at 0x1000) or neither place holds the file length.
pub fn arduino_crc_offset(file: &[u8]) -> Option<usize> {
    if file.len() < ARDUINO_APP_OFFSET + 0x20 || file[0] != 0xE9 || file[ARDUINO_APP_OFFSET] != 0xE9
    {
        return None;
    }
    ARDUINO_CRC_OFFSETS
        .into_iter()
        .find(|&off| le32(file, off).ok() == Some(file.len() as u32))
}

/// Arduino ESP8266 `ESP.checkFlashCRC()` trailer check: `Some(true)` when the trailer's CRC
/// equals CRC-32/MPEG-2 of the whole file with the 8 trailer bytes counted as zero,
/// `Some(false)` when it does not, `None` when there is no trailer (see [`arduino_crc_offset`]).
pub fn arduino_crc_ok(file: &[u8]) -> Option<bool> {
    let off = arduino_crc_offset(file)?;
    let stored = le32(file, off + 4).ok()?;
    let mut zeroed = file.to_vec();
    zeroed[off..off + 8].fill(0);
    Some(crc32_mpeg2(&zeroed) == stored)
}

/// ESP8266 v2 image (magic 0xEA): the last 4 bytes (LE) equal [`esp8266_crc32`] of everything
/// before them. `false` for anything that is not a v2 image.
pub fn v2_crc_ok(file: &[u8]) -> bool {
    if file.len() < 5 || file[0] != 0xEA {
        return false;
    }
    let (body, tail) = file.split_at(file.len() - 4);
    u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]) == esp8266_crc32(body)
}

/// Which checksum convention the app at 0x1000 of an Arduino full image follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumConvention {
    /// The plain ESP rule: the checksum covers the segment data as stored (core 2.7 and older;
    /// also what `esptool image-info` checks).
    Plain,
    /// Core 3.x: computed with the CRC trailer at file 0x1010..0x1018 (inside `.irom0.text`)
    /// zeroed, because the build writes the trailer after the checksum.
    TrailerZeroed,
}

/// The convention under which the Arduino app (at 0x1000) checksum is valid, or `None` when it is
/// valid under neither (or the app cannot be walked). `Plain` wins when both hold.
pub fn arduino_app_checksum_convention(file: &[u8]) -> Option<ChecksumConvention> {
    let app = file.get(ARDUINO_APP_OFFSET..)?;
    let walked = try_walk_app_image(app, true).ok()?;
    if walked.checksum_ok() {
        return Some(ChecksumConvention::Plain);
    }
    let mut zeroed = file.to_vec();
    zeroed[0x1010..0x1018].fill(0);
    let walked = try_walk_app_image(&zeroed[ARDUINO_APP_OFFSET..], true).ok()?;
    walked
        .checksum_ok()
        .then_some(ChecksumConvention::TrailerZeroed)
}

/// espflash's library (the converter `espflash save-image` uses): the app image of `elf`.
pub fn espflash_app_image(elf: &[u8], chip: &str) -> Vec<u8> {
    use espflash::flasher::{FlashData, FlashSettings};
    use espflash::image_format::idf::IdfBootloaderFormat;
    use espflash::target::{Chip, XtalFrequency};
    let chip = match chip {
        "esp32" => Chip::Esp32,
        "esp32c3" => Chip::Esp32c3,
        "esp32c6" => Chip::Esp32c6,
        "esp32h2" => Chip::Esp32h2,
        "esp32s3" => Chip::Esp32s3,
        other => panic!("no espflash chip for {other}"),
    };
    let xtal = if chip == Chip::Esp32h2 {
        XtalFrequency::_32Mhz
    } else {
        XtalFrequency::_40Mhz
    };
    let flash = FlashData::new(FlashSettings::default(), 0, None, chip, xtal);
    let image = IdfBootloaderFormat::new(elf, &flash, None, None, None, None)
        .unwrap_or_else(|e| panic!("espflash cannot convert the {chip} ELF: {e:?}"));
    let mut segments = image.ota_segments();
    let app = segments.next().expect("one OTA segment");
    assert!(segments.next().is_none());
    app.data().to_vec()
}

/// `flash FILE --port PORT` with no reset before or after (a simulated port has no DTR/RTS
/// lines), then `values` and `extra`.
pub fn sim_flash_args<'a>(
    file: &'a str,
    port: &'a str,
    values: &[&'a str],
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut a = vec![
        "flash", file, "--port", port, "--before", "no-reset", "--after", "no-reset",
    ];
    a.extend_from_slice(values);
    a.extend_from_slice(extra);
    a
}

/// `ledger export --format json --reveal` of `ledger` (relative to `dir`), with `key`.
pub fn ledger_revealed(dir: &Path, ledger: &str, key: &str) -> serde_json::Value {
    let o = Command::new(cli_path())
        .args([
            "ledger", "--ledger", ledger, "export", "--format", "json", "--reveal",
        ])
        .current_dir(dir)
        .env("XDG_CONFIG_HOME", dir)
        .env("THINGER_PATCH_LEDGER_KEY", key)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("running thinger-patch ledger export");
    assert!(o.status.success(), "{}", describe_output(&o));
    serde_json::from_slice(&o.stdout).expect("the export is JSON")
}

/// A device's value in clear from [`ledger_revealed`].
pub fn revealed_value(export: &serde_json::Value, device: &str, key: &str) -> String {
    export
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["device"] == device))
        .and_then(|r| r["values"][key].as_str())
        .unwrap_or_else(|| panic!("{key} of {device} in {export}"))
        .to_string()
}
