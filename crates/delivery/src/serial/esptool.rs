//! ESP8266 delivery through esptool (espflash dropped the ESP8266): finding it,
//! handing it the personalised image without a file on disk, running it and
//! reading what it says (chip, MAC, progress, errors).

use crate::error::{Error, Result};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::time::{Duration, Instant};

/// Overrides the search: a path to `esptool`/`esptool.py`, or a command name.
pub const ENV: &str = "THINGER_PATCH_ESPTOOL";

/// How to run esptool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Esptool {
    /// The program to run (esptool, or a Python interpreter).
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

    /// `esptool v5.6.0 (esptool on PATH)`.
    pub fn describe(&self) -> String {
        let v = self
            .version
            .map_or("unknown version".to_string(), |(a, b, c)| {
                format!("v{a}.{b}.{c}")
            });
        format!("esptool {v} ({})", self.source)
    }

    /// Asks for its version (`esptool version`, bounded); `false` when it does not answer.
    fn probe(&mut self) -> bool {
        let limits = Limits {
            deadline: PROBE_LIMIT,
            deadline_from_flag: false,
            stall: PROBE_LIMIT,
        };
        let mut text = String::new();
        let ran = run_bounded(self, &["version".into()], &limits, &mut |line: &str| {
            if text.len() < 4096 {
                text.push_str(line);
                text.push('\n');
            }
        });
        match ran {
            Ok(true) => {
                self.version = parse_version(&text);
                true
            }
            _ => false,
        }
    }
}

/// How long `esptool version` may take (a Python start-up on a slow machine).
const PROBE_LIMIT: Duration = Duration::from_secs(30);

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
    /// The esptool installed with thinger-patch: beside its executable (a pip/pipx/uv
    /// environment's bin/ or Scripts\, which pipx and uvx do not put on PATH).
    Beside(PathBuf),
    /// An executable on PATH.
    Path(PathBuf),
    /// A Python interpreter with `-m esptool`.
    Module(PathBuf),
    /// A script run by a Python interpreter (PlatformIO, Arduino core).
    Script {
        /// The interpreter.
        python: PathBuf,
        /// The script.
        script: PathBuf,
        /// Where it was found, for messages.
        source: String,
    },
}

/// Finds esptool: [`ENV`] (must work when set), then an `esptool` beside this executable,
/// `esptool`/`esptool.py` on PATH,
/// `python3 -m esptool`, PlatformIO's `tool-esptoolpy`, the Arduino ESP8266 core's
/// bundled esptool.
pub fn find() -> Result<Esptool> {
    if let Some(v) = std::env::var_os(ENV).filter(|v| !v.is_empty()) {
        let mut t = from_override(&v)?;
        if !t.probe() {
            return Err(Error::local(format!(
                "{ENV}={} does not run as esptool (`esptool version` failed); point it at a working esptool, or unset it",
                Path::new(&v).display()
            )));
        }
        return Ok(t);
    }
    for c in candidates() {
        let mut t = match c {
            Candidate::Beside(p) => Esptool {
                source: format!("{}, installed with thinger-patch", p.display()),
                program: p,
                prefix: vec![],
                version: None,
            },
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
    // A tool this computer lacks is a local problem (exit 3), not a device error.
    Err(Error::local(not_found_message()))
}

/// The message when no esptool is found: how to get one.
pub fn not_found_message() -> String {
    format!(
        "ESP8266 firmware is written with esptool, and none was found (looked for {ENV}, esptool beside thinger-patch, esptool and esptool.py on PATH, `python3 -m esptool`, PlatformIO's tool-esptoolpy and the Arduino ESP8266 core's esptool). Install it with `pipx install esptool` or `python3 -m pip install --user esptool`, or set {ENV} to an esptool you have"
    )
}

fn from_override(v: &std::ffi::OsStr) -> Result<Esptool> {
    let p = PathBuf::from(v);
    let source = format!("{ENV}={}", p.display());
    let resolved = if p.components().count() > 1 || p.is_file() {
        if !p.is_file() {
            return Err(Error::local(format!("{ENV}={}: no such file", p.display())));
        }
        p
    } else {
        which::which(&p)
            .map_err(|_| Error::local(format!("{ENV}={}: not found on PATH", p.display())))?
    };
    if resolved.extension().is_some_and(|e| e == "py") {
        let python = python().ok_or_else(|| {
            Error::local(format!(
                "{source} is a Python script, and no python3 was found to run it"
            ))
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
    if let Some(p) = beside_exe() {
        out.push(Candidate::Beside(p));
    }
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

/// `esptool` in the folder of the running executable, symlinks resolved (pipx links
/// `~/.local/bin/thinger-patch` to its environment's `bin/thinger-patch`). The wheel
/// depends on esptool, so that is the version installed and tested with it.
fn beside_exe() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?.canonicalize().ok()?;
    let name = if cfg!(windows) {
        "esptool.exe"
    } else {
        "esptool"
    };
    Some(exe.parent()?.join(name)).filter(|p| p.is_file())
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
    /// The path esptool is given.
    pub path: PathBuf,
    #[cfg(target_os = "linux")]
    _memfd: Option<std::fs::File>,
    _temp: Option<tempfile::TempDir>,
}

impl ImageFile {
    /// Holds `bytes` where esptool can read them: an in-memory file on Linux, a private temporary file elsewhere.
    pub fn new(bytes: &[u8]) -> Result<ImageFile> {
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
            .map_err(|e| Error::local(format!("cannot create a private temporary folder: {e}")))?;
        let path = dir.path().join("image.bin");
        write_private(&path, bytes)
            .map_err(|e| Error::local(format!("cannot write {}: {e}", path.display())))?;
        Ok(ImageFile {
            path,
            #[cfg(target_os = "linux")]
            _memfd: None,
            _temp: Some(dir),
        })
    }
}

/// Writes `bytes` into a new file only the owner can read (the image may hold secrets).
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
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
    /// esptool exited with success.
    pub success: bool,
    /// The MAC it printed.
    pub mac: Option<String>,
    /// `ESP8266EX` etc.
    pub chip_description: Option<String>,
    /// It said the written data verified.
    pub verified: bool,
    /// `Some((connected, wanted))` for esptool's "This chip is X, not Y".
    pub wrong_chip: Option<(String, String)>,
    /// esptool's own error lines (`A fatal error occurred: ...`).
    pub errors: Vec<String>,
    /// Its last lines.
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
        if o.errors.len() == MAX_ERRORS {
            o.errors.remove(0);
        }
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

/// Bounds on one esptool run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The whole run.
    pub deadline: Duration,
    /// Whether `deadline` was given with `--esptool-timeout` (for the message).
    pub deadline_from_flag: bool,
    /// The longest time without any output.
    pub stall: Duration,
}

/// The default limit for writing `len` bytes at `baud`: 120 s for connecting, the stub
/// and the resets, plus four times the transfer at 10 bits a byte (the ROM loader,
/// retries, verification), plus 1 s for every 64 KiB erased. Generous on purpose: it
/// only has to end a hung esptool.
pub fn default_deadline(len: usize, baud: u32) -> Duration {
    let transfer = len as f64 * 10.0 / f64::from(baud.max(1));
    let erase = len.div_ceil(64 * 1024) as f64;
    Duration::from_secs_f64((120.0 + 4.0 * transfer + erase).min(86_400.0))
}

/// Longest line of esptool output kept; the rest of a longer line is dropped (esptool's
/// own lines are short; a flood without line breaks must not fill the memory).
const MAX_LINE: usize = 4096;
/// esptool error lines kept (the last ones).
const MAX_ERRORS: usize = 16;

/// Runs esptool with `args`, feeding each line to `on_line`; returns what it said.
/// Stops it (and every process it started) when it exceeds `limits`.
pub fn run(
    tool: &Esptool,
    args: &[OsString],
    limits: &Limits,
    mut on_line: impl FnMut(&str, &mut Outcome),
) -> Result<Outcome> {
    let mut outcome = Outcome::default();
    let ran = run_bounded(tool, args, limits, &mut |line: &str| {
        on_line(line, &mut outcome)
    });
    match ran {
        Ok(success) => {
            outcome.success = success;
            Ok(outcome)
        }
        Err(Failure::Spawn(e)) => Err(Error::local(format!("cannot run {}: {e}", tool.describe()))),
        Err(Failure::Io(e)) => Err(Error::device(format!(
            "reading esptool's output or waiting for it failed: {e}"
        ))),
        Err(Failure::Stopped(why)) => {
            let last = outcome.tail.last().map_or(String::new(), |l| {
                format!("; its last line: \"{}\"", shorten(l))
            });
            let code = match why {
                Stop::Stall => "esptool_stall",
                Stop::Deadline => "esptool_deadline",
            };
            Err(Error::device(match why {
                    Stop::Stall => format!(
                        "esptool printed nothing for {} s and was stopped (with every process it started){last}. The serial port or the board hangs: check the cable, the port and that the board is in its bootloader; if a long erase needs more time, allow esptool a longer silence",
                        secs(limits.stall)
                    ),
                    Stop::Deadline => format!(
                        "esptool did not finish within {} s ({}) and was stopped (with every process it started){last}. Check the port and the board, then run again, or allow a longer time",
                        secs(limits.deadline),
                        if limits.deadline_from_flag {
                            "the limit given"
                        } else {
                            "the limit derived from the image size and the baud rate"
                        }
                    ),
                },
            )
            .with_code(code))
        }
    }
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}")
    } else {
        format!("{s:.1}")
    }
}

fn shorten(line: &str) -> String {
    const MAX: usize = 200;
    if line.chars().count() <= MAX {
        line.to_string()
    } else {
        line.chars().take(MAX).chain("...".chars()).collect()
    }
}

/// Why a bounded run was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Deadline,
    Stall,
}

#[derive(Debug)]
enum Failure {
    Spawn(std::io::Error),
    Io(std::io::Error),
    Stopped(Stop),
}

/// Runs the tool with `args` in its own process group, stdout and stderr merged into one
/// pipe read by a thread line by line (each line at most [`MAX_LINE`] bytes). Returns
/// whether it exited successfully; kills the whole group when a limit is exceeded.
fn run_bounded(
    tool: &Esptool,
    args: &[OsString],
    limits: &Limits,
    on_line: &mut dyn FnMut(&str),
) -> Result<bool, Failure> {
    let (reader, writer) = std::io::pipe().map_err(Failure::Spawn)?;
    let mut cmd = Command::new(&tool.program);
    cmd.args(&tool.prefix)
        .args(args)
        .stdin(Stdio::null())
        .stdout(writer.try_clone().map_err(Failure::Spawn)?)
        .stderr(writer)
        .env("NO_COLOR", "1")
        .env("PYTHONUNBUFFERED", "1");
    // Its own process group: a timeout stops esptool and whatever it started (a shell
    // wrapper's children keep the pipe open otherwise).
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd.spawn().map_err(Failure::Spawn)?;
    // Our copies of the pipe's write end go with the Command: EOF comes when esptool ends.
    drop(cmd);

    let seen = Arc::new(AtomicU64::new(0));
    let (tx, rx) = mpsc::sync_channel::<String>(64);
    {
        let seen = seen.clone();
        std::thread::spawn(move || read_lines(reader, &tx, &seen));
    }
    let start = Instant::now();
    let deadline = start + limits.deadline;
    let mut last_output = start;
    let mut last_seen = 0;
    let mut output_open = true;
    loop {
        let n = seen.load(Ordering::Relaxed);
        if n != last_seen {
            last_seen = n;
            last_output = Instant::now();
        }
        let now = Instant::now();
        if now >= deadline {
            kill_group(&mut child);
            return Err(Failure::Stopped(Stop::Deadline));
        }
        if now >= last_output + limits.stall {
            kill_group(&mut child);
            return Err(Failure::Stopped(Stop::Stall));
        }
        let tick = Duration::from_millis(100)
            .min(deadline - now)
            .min(last_output + limits.stall - now);
        if output_open {
            match rx.recv_timeout(tick) {
                Ok(line) => on_line(&line),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => output_open = false,
            }
        } else {
            // The output ended: wait for the exit, within the same limits.
            match child.try_wait() {
                Ok(Some(status)) => return Ok(status.success()),
                Ok(None) => std::thread::sleep(tick.min(Duration::from_millis(20))),
                Err(e) => {
                    kill_group(&mut child);
                    return Err(Failure::Io(e));
                }
            }
        }
    }
}

/// Reads `r` to its end, sending each line (at most [`MAX_LINE`] bytes; `\r` ends a line
/// too, as esptool's progress uses it) and counting every byte in `seen`.
fn read_lines(mut r: std::io::PipeReader, tx: &SyncSender<String>, seen: &AtomicU64) {
    let mut line: Vec<u8> = Vec::with_capacity(256);
    let mut cut = false;
    let mut chunk = [0u8; 8192];
    let text = |line: &[u8], cut: bool| {
        let mut t = String::from_utf8_lossy(line).into_owned();
        if cut {
            t.push_str(" [...]");
        }
        t
    };
    loop {
        let n = match r.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        seen.fetch_add(n as u64, Ordering::Relaxed);
        for &b in &chunk[..n] {
            if b == b'\n' || b == b'\r' {
                if !line.is_empty() {
                    if tx.send(text(&line, cut)).is_err() {
                        return;
                    }
                    line.clear();
                    cut = false;
                }
            } else if line.len() < MAX_LINE {
                line.push(b);
            } else {
                cut = true;
            }
        }
    }
    if !line.is_empty() {
        let _ = tx.send(text(&line, cut));
    }
}

/// Kills the child's process group (the child leads it), then the child, and reaps it.
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    if let Ok(pid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals that process group; the child is
        // not reaped yet, so its id (and group id) cannot have been reused.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_deadline_grows_with_size_and_falls_with_baud() {
        // 1 MiB at 460800 baud: 120 + 4 * 22.76 + 16 s.
        let d = default_deadline(1 << 20, 460_800).as_secs_f64();
        assert!((d - (120.0 + 4.0 * 22.755_555 + 16.0)).abs() < 0.01, "{d}");
        assert!(default_deadline(1 << 20, 115_200) > default_deadline(1 << 20, 460_800));
        assert_eq!(default_deadline(0, 460_800), Duration::from_secs(120));
        // Never beyond a day, whatever the numbers.
        assert_eq!(
            default_deadline(usize::MAX / 2, 1),
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn error_lines_kept_are_bounded() {
        let mut o = Outcome::default();
        for i in 0..1000 {
            parse_line(&format!("A fatal error occurred: number {i}"), &mut o);
        }
        assert_eq!(o.errors.len(), MAX_ERRORS);
        assert!(o.errors.last().unwrap().ends_with("number 999"));
        assert_eq!(o.tail.len(), 8);
    }

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
