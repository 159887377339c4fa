//! File I/O with the guarantees the tool promises:
//!
//! - inputs are only read, only when they are regular files (or `-`, standard input), and never
//!   more than [`MAX_INPUT`] bytes: a FIFO, a device or `/dev/zero` is refused by name instead of
//!   blocking or filling memory;
//! - outputs appear atomically (a temporary file in the destination folder, synced, then renamed
//!   over it), with the right permissions and owner;
//! - an output path that exists and is not a regular file (a device node, a FIFO, a folder) is
//!   refused: a serial port is never replaced by a file. A symlink is written through: its target
//!   is replaced and the link stays;
//! - a run that writes several files writes all or none, and a failed run puts back what was
//!   there before;
//! - temporary files have recognisable names (`.thinger-patch-<pid>-<random>.tmp`), and those left
//!   behind by a killed run are removed by the next run that writes into the same folder.

use crate::exit::{self, CliError};
use std::fs::{File, Metadata};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The most bytes read from one input: well above the largest ESP flash (128 MiB), far below
/// what `/dev/zero` would deliver.
pub const MAX_INPUT: u64 = 256 << 20;

/// The most bytes read from a config file or a `{ file = ... }` value.
pub const MAX_TEXT_INPUT: u64 = 1 << 20;

/// Reads a whole input file (`-` is standard input), at most [`MAX_INPUT`] bytes.
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    read_limited(path, MAX_INPUT)
}

/// Reads a regular file (or `-`, standard input) of at most `cap` bytes.
pub fn read_limited(path: &Path, cap: u64) -> Result<Vec<u8>, CliError> {
    let too_large = || {
        CliError::new(
            exit::INVALID,
            format!(
                "{}: larger than {} MiB, the most this tool reads; no ESP firmware is that large: check the file",
                path.display(),
                cap >> 20
            ),
        )
    };
    let mut data = Vec::new();
    if path == Path::new("-") {
        std::io::stdin()
            .lock()
            .take(cap + 1)
            .read_to_end(&mut data)
            .map_err(|e| CliError::io(path, "read standard input", &e))?;
        if data.len() as u64 > cap {
            return Err(too_large());
        }
        return Ok(data);
    }
    let file = open_input(path)?;
    let meta = file
        .metadata()
        .map_err(|e| CliError::io(path, "read it", &e))?;
    if !meta.is_file() {
        return Err(not_regular(path, &meta, "read it"));
    }
    if meta.len() > cap {
        return Err(too_large());
    }
    file.take(cap + 1)
        .read_to_end(&mut data)
        .map_err(|e| CliError::io(path, "read it", &e))?;
    if data.len() as u64 > cap {
        return Err(too_large());
    }
    Ok(data)
}

/// Opens without blocking on a FIFO that has no writer: the type is checked after opening (no
/// race between the check and the open), and reads from a regular file never block anyway.
fn open_input(path: &Path) -> Result<File, CliError> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options
        .open(path)
        .map_err(|e| CliError::io(path, "read it", &e))
}

/// What kind of file system object `meta` describes, for messages.
fn kind(meta: &Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a folder";
    }
    if t.is_symlink() {
        return "a symbolic link";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_file() {
        "a regular file"
    } else {
        "not a regular file"
    }
}

fn not_regular(path: &Path, meta: &Metadata, doing: &str) -> CliError {
    CliError::new(
        exit::IO,
        format!(
            "{}: cannot {doing}: it is {}, not a regular file; name a firmware file",
            path.display(),
            kind(meta)
        ),
    )
}

/// Permissions (and owner) of an output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputMode {
    /// Holds credentials: readable by the owner only (0600).
    pub secret: bool,
    /// Keeps the execute bits of an executable input (host programs).
    pub executable: bool,
    /// `--in-place`: the replaced file's mode bits, owner and group, kept.
    pub keep: Option<Kept>,
}

/// The mode and owner of a file replaced in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Kept {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl OutputMode {
    /// The mode for a new output made from `input`: the umask's choice, or 0600 for secrets.
    pub fn for_input(input: &Path, secret: bool) -> Self {
        OutputMode {
            secret,
            executable: is_executable(input),
            keep: None,
        }
    }

    /// The mode for replacing `input` in place: its own mode and owner (and no more than 0600
    /// when the result holds secrets).
    pub fn in_place(input: &Path, secret: bool) -> Self {
        OutputMode {
            keep: kept(input),
            ..Self::for_input(input, secret)
        }
    }

    /// The mode passed to `open` (the umask then applies) and, when exact bits are needed, the
    /// mode set afterwards.
    #[cfg_attr(not(unix), allow(dead_code))]
    fn modes(self) -> (u32, Option<u32>) {
        if let Some(k) = self.keep {
            let bits = if self.secret { k.mode & !0o077 } else { k.mode };
            return (0o600, Some(bits & 0o7777));
        }
        match (self.secret, self.executable) {
            (true, false) => (0o600, Some(0o600)),
            (true, true) => (0o700, Some(0o700)),
            (false, false) => (0o666, None),
            (false, true) => (0o777, None),
        }
    }
}

/// Where an output is really written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The path as the user named it (for messages).
    pub shown: PathBuf,
    /// The file replaced: `shown`, or the target of the symlink `shown`.
    pub real: PathBuf,
    /// Whether something is there already (it is then a regular file).
    pub exists: bool,
}

/// Checks an output path before anything is computed or written: the folder must exist, and an
/// existing path must be a regular file or a symlink to one (written through). Anything else is
/// refused: replacing a device node, a FIFO or a folder with a file would destroy it.
pub fn destination(path: &Path) -> Result<Destination, CliError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => {
            let real = std::fs::canonicalize(path).map_err(|e| {
                CliError::new(
                    exit::IO,
                    format!(
                        "{}: a symbolic link whose target cannot be reached ({e}); refusing to write through it: name a regular file",
                        path.display()
                    ),
                )
            })?;
            let target =
                std::fs::metadata(&real).map_err(|e| CliError::io(path, "check it", &e))?;
            if !target.is_file() {
                return Err(CliError::new(
                    exit::IO,
                    format!(
                        "{}: a symbolic link to {} ({}): refusing to replace it; name a regular file",
                        path.display(),
                        real.display(),
                        kind(&target)
                    ),
                ));
            }
            Ok(Destination {
                shown: path.to_path_buf(),
                real,
                exists: true,
            })
        }
        Ok(meta) if meta.is_file() => Ok(Destination {
            shown: path.to_path_buf(),
            real: path.to_path_buf(),
            exists: true,
        }),
        Ok(meta) => Err(CliError::new(
            exit::IO,
            format!(
                "{}: it exists and is {}, not a regular file: refusing to replace it; name a new or regular file",
                path.display(),
                kind(&meta)
            ),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = parent_dir(path);
            match std::fs::metadata(dir) {
                Ok(m) if m.is_dir() => Ok(Destination {
                    shown: path.to_path_buf(),
                    real: path.to_path_buf(),
                    exists: false,
                }),
                Ok(_) => Err(CliError::new(
                    exit::IO,
                    format!(
                        "{}: cannot write it: {} is not a folder",
                        path.display(),
                        dir.display()
                    ),
                )),
                Err(e) => Err(CliError::new(
                    exit::IO,
                    format!(
                        "{}: cannot write it: its folder {} cannot be used ({e})",
                        path.display(),
                        dir.display()
                    ),
                )),
            }
        }
        Err(e) => Err(CliError::io(path, "check it", &e)),
    }
}

/// A finished output waiting beside its destination; dropped, it disappears.
pub struct Staged {
    tmp: PathBuf,
    dest: Destination,
    done: bool,
}

impl Drop for Staged {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `bytes` into a temporary file beside the destination (the symlink's target for a
/// symlink), synced, with its final permissions and owner. Nothing is visible at `path` until
/// [`Staged::commit`].
pub fn stage(path: &Path, bytes: &[u8], mode: OutputMode) -> Result<Staged, CliError> {
    let dest = destination(path)?;
    let dir = parent_dir(&dest.real).to_path_buf();
    remove_stale_temporaries(&dir);
    let (open_mode, exact) = mode.modes();
    let (tmp, mut file) = create_temporary(&dir, "tmp", open_mode).map_err(|e| {
        CliError::new(
            exit::IO,
            format!(
                "{}: cannot create a temporary file in its folder {}: {e}",
                path.display(),
                dir.display()
            ),
        )
    })?;
    let staged = Staged {
        tmp,
        dest,
        done: false,
    };
    file.write_all(bytes)
        .and_then(|_| file.sync_all())
        .map_err(|e| CliError::io(path, "write it", &e))?;
    set_mode(&file, exact).map_err(|e| CliError::io(path, "set its permissions", &e))?;
    if let Some(k) = mode.keep {
        keep_owner(&file, k).map_err(|e| {
            CliError::new(
                exit::IO,
                format!(
                    "{}: cannot keep its owner and group ({}:{}) on the new file: {e}; run as that user, or write a new file with -o",
                    path.display(),
                    k.uid,
                    k.gid
                ),
            )
        })?;
    }
    Ok(staged)
}

/// A file put in place; [`Committed::rollback`] restores what was there before.
pub struct Committed {
    path: PathBuf,
    backup: Option<PathBuf>,
}

impl Committed {
    /// Puts back the previous file (or removes the new one where there was none).
    pub fn rollback(self) {
        match &self.backup {
            Some(b) => {
                let _ = std::fs::rename(b, &self.path);
            }
            None => {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }

    /// Drops the copy of the previous file.
    pub fn finish(self) -> PathBuf {
        if let Some(b) = &self.backup {
            let _ = std::fs::remove_file(b);
        }
        self.path
    }
}

impl Staged {
    /// Renames the temporary file over the destination (atomic on one file system), keeping a
    /// hard link to the file it replaces until [`Committed::finish`].
    pub fn commit(mut self) -> Result<Committed, CliError> {
        let real = self.dest.real.clone();
        let dir = parent_dir(&real).to_path_buf();
        let backup = if self.dest.exists {
            Some(backup_of(&real, &dir).map_err(|e| {
                CliError::new(
                    exit::IO,
                    format!(
                        "{}: cannot keep a copy of the file it replaces: {e}",
                        self.dest.shown.display()
                    ),
                )
            })?)
        } else {
            None
        };
        if let Err(e) = std::fs::rename(&self.tmp, &real) {
            if let Some(b) = &backup {
                let _ = std::fs::remove_file(b);
            }
            return Err(CliError::io(
                &self.dest.shown,
                "move the finished file into place",
                &e,
            ));
        }
        self.done = true;
        if let Ok(d) = File::open(&dir) {
            // Makes the rename itself durable; not every platform allows it.
            let _ = d.sync_all();
        }
        Ok(Committed { path: real, backup })
    }
}

/// A second name for the file at `path` (a hard link, else a copy) in the same folder.
fn backup_of(path: &Path, dir: &Path) -> std::io::Result<PathBuf> {
    let name = temporary_name("bak");
    let backup = dir.join(name);
    if std::fs::hard_link(path, &backup).is_err() {
        std::fs::copy(path, &backup)?;
    }
    Ok(backup)
}

/// Commits every staged file, or none: if one fails, the files this call already put in place
/// are rolled back to what was there before.
pub fn commit_all(staged: Vec<Staged>) -> Result<Vec<PathBuf>, CliError> {
    let mut done: Vec<Committed> = Vec::new();
    for s in staged {
        match s.commit() {
            Ok(c) => done.push(c),
            Err(e) => {
                for c in done.into_iter().rev() {
                    c.rollback();
                }
                return Err(e);
            }
        }
    }
    Ok(done.into_iter().map(Committed::finish).collect())
}

/// Writes one file atomically; `secret` files get mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), CliError> {
    let mode = OutputMode {
        secret,
        ..OutputMode::default()
    };
    commit_all(vec![stage(path, bytes, mode)?]).map(|_| ())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

const TEMP_PREFIX: &str = ".thinger-patch-";

/// `.thinger-patch-<pid>-<16 hex digits>.<ext>`: the pid tells a later run whether its writer is
/// still alive.
fn temporary_name(ext: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    format!(
        "{TEMP_PREFIX}{}-{:016x}.{ext}",
        std::process::id(),
        h.finish()
    )
}

/// The pid in a temporary name of ours, or `None` for any other name.
fn temporary_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?;
    let (pid, rest) = rest.split_once('-')?;
    let (random, ext) = rest.split_once('.')?;
    let ours = random.len() == 16
        && random.bytes().all(|b| b.is_ascii_hexdigit())
        && matches!(ext, "tmp" | "bak");
    if !ours {
        return None;
    }
    pid.parse().ok()
}

fn create_temporary(dir: &Path, ext: &str, mode: u32) -> std::io::Result<(PathBuf, File)> {
    let mut last = None;
    for _ in 0..16 {
        let path = dir.join(temporary_name(ext));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(mode);
        }
        #[cfg(not(unix))]
        let _ = mode;
        match options.open(&path) {
            Ok(f) => return Ok((path, f)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// Removes temporary files of ours in `dir` whose writing process is gone (killed mid-write:
/// they may hold secrets). Files of live processes, and anything not named like ours, stay.
fn remove_stale_temporaries(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(temporary_pid) else {
            continue;
        };
        if pid != me && !process_alive(pid) && entry.file_type().is_ok_and(|t| t.is_file()) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(unix)]
fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence only; EPERM means it exists but belongs to someone else.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_pid: u32) -> bool {
    // No cheap check: keep the file rather than remove another run's work.
    true
}

#[cfg(unix)]
fn set_mode(file: &File, exact: Option<u32>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match exact {
        Some(bits) => file.set_permissions(std::fs::Permissions::from_mode(bits)),
        None => Ok(()),
    }
}

#[cfg(not(unix))]
fn set_mode(_file: &File, _exact: Option<u32>) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn keep_owner(file: &File, k: Kept) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let now = file.metadata()?;
    if now.uid() == k.uid && now.gid() == k.gid {
        return Ok(());
    }
    std::os::unix::fs::fchown(file, Some(k.uid), Some(k.gid))
}

#[cfg(not(unix))]
fn keep_owner(_file: &File, _k: Kept) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn kept(path: &Path) -> Option<Kept> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Kept {
        mode: m.mode() & 0o7777,
        uid: m.uid(),
        gid: m.gid(),
    })
}

#[cfg(not(unix))]
fn kept(_path: &Path) -> Option<Kept> {
    None
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(_path: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_round_trip() {
        let n = temporary_name("tmp");
        assert_eq!(temporary_pid(&n), Some(std::process::id()));
        assert_eq!(
            temporary_pid(".thinger-patch-12-0123456789abcdef.bak"),
            Some(12)
        );
        for other in [
            ".thinger-patch-abc123",
            ".thinger-patch-12-0123.tmp",
            ".thinger-patch-12-0123456789abcdef.bin",
            "fw.bin",
        ] {
            assert_eq!(temporary_pid(other), None, "{other}");
        }
    }

    #[test]
    fn a_failed_commit_puts_back_what_was_there() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a.bin");
        let b = tmp.path().join("b.bin");
        std::fs::write(&a, b"old a").unwrap();
        let staged = vec![
            stage(&a, b"new a", OutputMode::default()).unwrap(),
            stage(&b, b"new b", OutputMode::default()).unwrap(),
        ];
        // Something takes b's place after the checks: its rename fails.
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("keep"), b"x").unwrap();
        assert!(commit_all(staged).is_err());
        assert_eq!(std::fs::read(&a).unwrap(), b"old a");
        assert!(b.is_dir());
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(TEMP_PREFIX))
            .collect();
        assert!(left.is_empty(), "{left:?}");

        // Success replaces and leaves no backup.
        std::fs::remove_dir_all(&b).unwrap();
        let staged = vec![
            stage(&a, b"new a", OutputMode::default()).unwrap(),
            stage(&b, b"new b", OutputMode::default()).unwrap(),
        ];
        commit_all(staged).unwrap();
        assert_eq!(std::fs::read(&a).unwrap(), b"new a");
        assert_eq!(std::fs::read(&b).unwrap(), b"new b");
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
    }

    #[test]
    fn modes() {
        let m = |secret, executable, keep| {
            OutputMode {
                secret,
                executable,
                keep,
            }
            .modes()
        };
        assert_eq!(m(false, false, None), (0o666, None));
        assert_eq!(m(true, false, None), (0o600, Some(0o600)));
        let k = Kept {
            mode: 0o640,
            uid: 1,
            gid: 2,
        };
        assert_eq!(m(false, false, Some(k)).1, Some(0o640));
        assert_eq!(m(true, false, Some(k)).1, Some(0o600));
    }
}
