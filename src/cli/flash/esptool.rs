//! ESP8266 delivery through esptool (espflash dropped the ESP8266): finding it,
//! handing it the personalised image without a file on disk, running it and
//! reading what it says (chip, MAC, progress, errors).

use crate::cli::CliResult;
use crate::cli::exit::{self, CliError};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};

/// Overrides the search: a path to `esptool`/`esptool.py`, or a command name.
pub const ENV: &str = "THINGER_PATCH_ESPTOOL";

/// How to run esptool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Esptool {
    pub program: PathBuf,
    /// Arguments before esptool's own (`-m esptool`, a script path).
    pub prefix: Vec<OsString>,
    /// Where it was found, for messages.
    pub source: String,
    /// `(major, minor, patch)` from `esptool version`, when it answered.
    pub version: Option<(u32, u32, u32)>,
}

impl Esptool {
    /// esptool 5 spells options and commands with hyphens; older ones with underscores.
    pub fn hyphenated(&self) -> bool {
        self.version.is_none_or(|v| v.0 >= 5)
    }

    /// `write-flash` or `write_flash`, `no-reset` or `no_reset`.
    pub fn word(&self, hyphenated: &str) -> String {
        if self.hyphenated() {
            hyphenated.to_string()
        } else {
            hyphenated.replace('-', "_")
        }
    }

    pub fn describe(&self) -> String {
        let v = self
            .version
            .map_or("unknown version".to_string(), |(a, b, c)| {
                format!("v{a}.{b}.{c}")
            });
        format!("esptool {v} ({})", self.source)
    }

    fn expression(&self, args: &[OsString]) -> duct::Expression {
        let mut all = self.prefix.clone();
        all.extend(args.iter().cloned());
        duct::cmd(&self.program, all)
    }

    /// Asks for its version (`esptool version`); `None` when it does not answer.
    fn probe(&mut self) -> bool {
        let out = self
            .expression(&["version".into()])
            .stderr_to_stdout()
            .stdout_capture()
            .stdin_null()
            .unchecked()
            .env("NO_COLOR", "1")
            .run();
        match out {
            Ok(o) if o.status.success() => {
                self.version = parse_version(&String::from_utf8_lossy(&o.stdout));
                true
            }
            _ => false,
        }
    }
}

/// The first `X.Y.Z` in `esptool version` output (`esptool v5.6.0`, `esptool.py v4.7.0`).
pub fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    text.split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .filter_map(|w| {
            let mut it = w.split('.');
            let a = it.next()?.parse().ok()?;
            let b = it.next()?.parse().ok()?;
            let c = it.next().and_then(|c| c.parse().ok()).unwrap_or(0);
            Some((a, b, c))
        })
        .next()
}

/// Where esptool is looked for, in order (after [`ENV`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    /// An executable on PATH.
    Path(PathBuf),
    /// A Python interpreter with `-m esptool`.
    Module(PathBuf),
    /// A script run by a Python interpreter (PlatformIO, Arduino core).
    Script {
        python: PathBuf,
        script: PathBuf,
        source: String,
    },
}

/// Finds esptool: [`ENV`] (must work when set), then `esptool`/`esptool.py` on PATH,
/// `python3 -m esptool`, PlatformIO's `tool-esptoolpy`, the Arduino ESP8266 core's
/// bundled esptool.
pub fn find() -> CliResult<Esptool> {
    if let Some(v) = std::env::var_os(ENV).filter(|v| !v.is_empty()) {
        let mut t = from_override(&v)?;
        if !t.probe() {
            return Err(CliError::new(
                exit::DEVICE,
                format!(
                    "{ENV}={} does not run as esptool (`esptool version` failed); point it at a working esptool, or unset it",
                    Path::new(&v).display()
                ),
            ));
        }
        return Ok(t);
    }
    for c in candidates() {
        let mut t = match c {
            Candidate::Path(p) => Esptool {
                source: format!("{} on PATH", p.display()),
                program: p,
                prefix: vec![],
                version: None,
            },
            Candidate::Module(py) => Esptool {
                source: format!("{} -m esptool", py.display()),
                program: py,
                prefix: vec!["-m".into(), "esptool".into()],
                version: None,
            },
            Candidate::Script {
                python,
                script,
                source,
            } => Esptool {
                program: python,
                prefix: vec![script.into_os_string()],
                source,
                version: None,
            },
        };
        if t.probe() {
            return Ok(t);
        }
    }
    Err(CliError::new(exit::DEVICE, not_found_message()))
}

/// The message when no esptool is found: how to get one.
pub fn not_found_message() -> String {
    format!(
        "ESP8266 firmware is written with esptool, and none was found (looked for {ENV}, esptool and esptool.py on PATH, `python3 -m esptool`, PlatformIO's tool-esptoolpy and the Arduino ESP8266 core's esptool). Install it with `pipx install esptool` or `python3 -m pip install --user esptool`, or set {ENV} to an esptool you have"
    )
}

fn from_override(v: &std::ffi::OsStr) -> CliResult<Esptool> {
    let p = PathBuf::from(v);
    let source = format!("{ENV}={}", p.display());
    let resolved = if p.components().count() > 1 || p.is_file() {
        if !p.is_file() {
            return Err(CliError::new(
                exit::DEVICE,
                format!("{ENV}={}: no such file", p.display()),
            ));
        }
        p
    } else {
        which::which(&p).map_err(|_| {
            CliError::new(
                exit::DEVICE,
                format!("{ENV}={}: not found on PATH", p.display()),
            )
        })?
    };
    if resolved.extension().is_some_and(|e| e == "py") {
        let python = python().ok_or_else(|| {
            CliError::new(
                exit::DEVICE,
                format!("{source} is a Python script, and no python3 was found to run it"),
            )
        })?;
        return Ok(Esptool {
            program: python,
            prefix: vec![resolved.into_os_string()],
            source,
            version: None,
        });
    }
    Ok(Esptool {
        program: resolved,
        prefix: vec![],
        source,
        version: None,
    })
}

fn python() -> Option<PathBuf> {
    ["python3", "python"]
        .into_iter()
        .find_map(|n| which::which(n).ok())
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .map(PathBuf::from)
}

/// Every place esptool may be, in search order (without checking that it runs).
pub fn candidates() -> Vec<Candidate> {
    let mut out = Vec::new();
    for name in ["esptool", "esptool.py"] {
        if let Ok(p) = which::which(name) {
            out.push(Candidate::Path(p));
        }
    }
    if let Some(py) = python() {
        out.push(Candidate::Module(py));
    }
    let home = home();
    // PlatformIO: $PLATFORMIO_CORE_DIR or ~/.platformio; its own Python in penv.
    let pio = std::env::var_os("PLATFORMIO_CORE_DIR")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".platformio")));
    if let Some(pio) = pio {
        let script = pio.join("packages/tool-esptoolpy/esptool.py");
        if script.is_file() {
            let penv = if cfg!(windows) {
                pio.join("penv/Scripts/python.exe")
            } else {
                pio.join("penv/bin/python")
            };
            if let Some(python) = Some(penv).filter(|p| p.is_file()).or_else(python) {
                out.push(Candidate::Script {
                    python,
                    script,
                    source: "PlatformIO's tool-esptoolpy".into(),
                });
            }
        }
    }
    // Arduino IDE: packages/esp8266/hardware/esp8266/<version>/tools/esptool/esptool.py.
    let mut arduino_roots = Vec::new();
    if let Some(h) = &home {
        arduino_roots.push(h.join(".arduino15"));
        arduino_roots.push(h.join("Library/Arduino15"));
    }
    if let Some(l) = std::env::var_os("LOCALAPPDATA") {
        arduino_roots.push(PathBuf::from(l).join("Arduino15"));
    }
    for root in arduino_roots {
        let base = root.join("packages/esp8266/hardware/esp8266");
        let Ok(rd) = std::fs::read_dir(&base) else {
            continue;
        };
        let mut versions: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        versions.sort_by_key(|p| version_key(p));
        for v in versions.into_iter().rev() {
            let script = v.join("tools/esptool/esptool.py");
            if script.is_file()
                && let Some(python) = python()
            {
                out.push(Candidate::Script {
                    python,
                    script,
                    source: format!(
                        "the Arduino ESP8266 core {}",
                        v.file_name().unwrap_or_default().to_string_lossy()
                    ),
                });
            }
        }
    }
    out
}

fn version_key(p: &Path) -> Vec<u32> {
    p.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// The image as a path esptool can open and seek, without a file on disk where
/// the system allows it (Linux: an in-memory file inherited by esptool, named
/// `/dev/fd/N`); elsewhere a private temporary file (mode 0600), deleted when
/// this is dropped.
pub struct ImageFile {
    pub path: PathBuf,
    #[cfg(target_os = "linux")]
    _memfd: Option<std::fs::File>,
    _temp: Option<tempfile::TempDir>,
}

impl ImageFile {
    pub fn new(bytes: &[u8]) -> CliResult<ImageFile> {
        #[cfg(target_os = "linux")]
        if let Some(f) = memfd(bytes) {
            use std::os::fd::AsRawFd;
            return Ok(ImageFile {
                path: PathBuf::from(format!("/dev/fd/{}", f.as_raw_fd())),
                _memfd: Some(f),
                _temp: None,
            });
        }
        let dir = tempfile::Builder::new()
            .prefix("thinger-patch-flash-")
            .tempdir()
            .map_err(|e| {
                CliError::new(
                    exit::IO,
                    format!("cannot create a private temporary folder: {e}"),
                )
            })?;
        let path = dir.path().join("image.bin");
        super::super::fsio::write_atomic(&path, bytes, true)?;
        Ok(ImageFile {
            path,
            #[cfg(target_os = "linux")]
            _memfd: None,
            _temp: Some(dir),
        })
    }
}

/// An anonymous in-memory file holding `bytes`, inheritable by child processes
/// (no close-on-exec) so esptool can open `/dev/fd/N`.
#[cfg(target_os = "linux")]
fn memfd(bytes: &[u8]) -> Option<std::fs::File> {
    use std::io::{Seek, Write};
    use std::os::fd::FromRawFd;
    // SAFETY: a NUL-terminated name and no flags; the returned fd is owned by the File.
    let fd = unsafe { libc::memfd_create(c"thinger-patch-image".as_ptr(), 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: fd is a fresh descriptor nothing else owns.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    f.write_all(bytes).ok()?;
    f.rewind().ok()?;
    Some(f)
}

/// What esptool said, as far as this tool cares.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub success: bool,
    pub mac: Option<String>,
    /// `ESP8266EX` etc.
    pub chip_description: Option<String>,
    pub verified: bool,
    /// `Some((connected, wanted))` for esptool's "This chip is X, not Y".
    pub wrong_chip: Option<(String, String)>,
    /// esptool's own error lines (`A fatal error occurred: ...`).
    pub errors: Vec<String>,
    pub tail: Vec<String>,
}

/// Reads one line of esptool output into `o`; returns a progress percentage.
pub fn parse_line(line: &str, o: &mut Outcome) -> Option<f32> {
    let l = line.trim();
    if let Some(mac) = l.strip_prefix("MAC:") {
        o.mac = Some(mac.trim().to_ascii_lowercase());
    } else if let Some(c) = l
        .strip_prefix("Chip type:")
        .or_else(|| l.strip_prefix("Chip is "))
    {
        o.chip_description = Some(c.trim().to_string());
    } else if l.starts_with("Hash of data verified") {
        o.verified = true;
    } else if let Some(i) = l.find("This chip is ") {
        // "A fatal error occurred: This chip is ESP32-C3, not ESP8266. Wrong chip argument?"
        let rest = &l[i + "This chip is ".len()..];
        if let Some((is, not)) = rest.split_once(", not ") {
            let wanted = not.split(['.', ' ']).next().unwrap_or(not);
            o.wrong_chip = Some((is.trim().to_string(), wanted.trim().to_string()));
        }
    }
    if l.contains("fatal error") || l.starts_with("Error") || l.contains("FatalError") {
        o.errors.push(l.to_string());
    }
    if !l.is_empty() {
        o.tail.push(l.to_string());
        if o.tail.len() > 8 {
            o.tail.remove(0);
        }
    }
    // "Writing at 0x00001000 [=====>    ]  45.3% 12288/27136 bytes..." (esptool 5),
    // "Writing at 0x00001000... (45 %)" (esptool 3/4).
    if l.starts_with("Writing at 0x") {
        let pct = l.find('%').and_then(|end| {
            let head = &l[..end];
            let start = head
                .char_indices()
                .rev()
                .find(|&(_, c)| !(c.is_ascii_digit() || c == '.' || c == ' '))
                .map_or(0, |(i, c)| i + c.len_utf8());
            head[start..].trim().parse::<f32>().ok()
        });
        return pct;
    }
    None
}

/// Runs esptool with `args`, feeding each line to `on_line`; returns what it said.
pub fn run(
    tool: &Esptool,
    args: &[OsString],
    mut on_line: impl FnMut(&str, &mut Outcome),
) -> CliResult<Outcome> {
    let reader = tool
        .expression(args)
        .stderr_to_stdout()
        .stdin_null()
        .unchecked()
        .env("NO_COLOR", "1")
        .env("PYTHONUNBUFFERED", "1")
        .reader()
        .map_err(|e| CliError::new(exit::DEVICE, format!("cannot run {}: {e}", tool.describe())))?;
    let mut outcome = Outcome::default();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let mut r = &reader;
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(CliError::new(
                    exit::DEVICE,
                    format!("reading esptool's output: {e}"),
                ));
            }
        };
        for &b in &chunk[..n] {
            if b == b'\n' || b == b'\r' {
                if !buf.is_empty() {
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    on_line(&line, &mut outcome);
                    buf.clear();
                }
            } else {
                buf.push(b);
            }
        }
    }
    if !buf.is_empty() {
        let line = String::from_utf8_lossy(&buf).into_owned();
        on_line(&line, &mut outcome);
    }
    let status = reader
        .try_wait()
        .map_err(|e| CliError::new(exit::DEVICE, format!("waiting for esptool: {e}")))?
        .map(|o| o.status.success());
    outcome.success = status == Some(true);
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        assert_eq!(parse_version("esptool v5.6.0\n5.6.0\n"), Some((5, 6, 0)));
        assert_eq!(parse_version("esptool.py v4.7.0\n4.7.0"), Some((4, 7, 0)));
        assert_eq!(parse_version("esptool.py v3.0"), Some((3, 0, 0)));
        assert_eq!(parse_version("nothing"), None);
    }

    #[test]
    fn words_follow_the_version() {
        let mut t = Esptool {
            program: "esptool".into(),
            prefix: vec![],
            source: "test".into(),
            version: Some((5, 6, 0)),
        };
        assert_eq!(t.word("write-flash"), "write-flash");
        t.version = Some((4, 7, 0));
        assert_eq!(t.word("write-flash"), "write_flash");
        assert_eq!(t.word("no-reset"), "no_reset");
    }

    #[test]
    fn lines() {
        let mut o = Outcome::default();
        parse_line("MAC:                18:fe:34:a1:b2:c3", &mut o);
        assert_eq!(o.mac.as_deref(), Some("18:fe:34:a1:b2:c3"));
        parse_line("Chip type:          ESP8266EX", &mut o);
        assert_eq!(o.chip_description.as_deref(), Some("ESP8266EX"));
        assert_eq!(
            parse_line(
                "Writing at 0x00001000 [=====>      ]  45.3% 12288/27136 bytes...",
                &mut o
            ),
            Some(45.3)
        );
        assert_eq!(
            parse_line("Writing at 0x00001000... (45 %)", &mut o),
            Some(45.0)
        );
        assert_eq!(
            parse_line(
                "Writing at 0x00001c00 ╸                    1.7% 7.00kB/404.78kB [0s]",
                &mut o
            ),
            Some(1.7)
        );
        parse_line(
            "A fatal error occurred: This chip is ESP32-C3, not ESP8266. Wrong chip argument?",
            &mut o,
        );
        assert_eq!(
            o.wrong_chip,
            Some(("ESP32-C3".to_string(), "ESP8266".to_string()))
        );
        assert_eq!(o.errors.len(), 1);
        parse_line("Hash of data verified.", &mut o);
        assert!(o.verified);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn image_file_is_readable_and_seekable() {
        let img = ImageFile::new(b"hello image").unwrap();
        assert!(img.path.starts_with("/dev/fd"));
        assert_eq!(std::fs::read(&img.path).unwrap(), b"hello image");
        // Opened twice: each open starts at 0.
        assert_eq!(std::fs::read(&img.path).unwrap(), b"hello image");
    }
}
