//! File I/O with the guarantees the tool promises: inputs are only read, outputs
//! appear atomically (temporary file in the same folder, then rename) with the
//! right permissions, and a run that writes several files writes all or none.

use super::exit::CliError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Reads a whole input file.
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::io(path, "read it", &e))
}

/// Permissions of an output file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutputMode {
    /// Holds credentials: readable by the owner only (0600).
    pub secret: bool,
    /// Keeps the execute bits of an executable input (host programs).
    pub executable: bool,
}

impl OutputMode {
    /// The mode for an output made from `input`.
    pub fn for_input(input: &Path, secret: bool) -> Self {
        OutputMode {
            secret,
            executable: is_executable(input),
        }
    }

    #[cfg_attr(not(unix), allow(dead_code))]
    fn bits(self) -> u32 {
        let base = if self.secret { 0o600 } else { 0o644 };
        if self.executable {
            base | if self.secret { 0o100 } else { 0o111 }
        } else {
            base
        }
    }
}

/// A finished output waiting beside its destination; dropped, it disappears.
pub struct Staged {
    tmp: tempfile::NamedTempFile,
    path: PathBuf,
}

/// Writes `bytes` into a temporary file beside `path`, synced, with its final
/// permissions. Nothing is visible at `path` until [`Staged::commit`].
pub fn stage(path: &Path, bytes: &[u8], mode: OutputMode) -> Result<Staged, CliError> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".thinger-patch-")
        .tempfile_in(dir)
        .map_err(|e| CliError::io(path, "create a temporary file beside it", &e))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| CliError::io(path, "write it", &e))?;
    set_mode(tmp.path(), mode).map_err(|e| CliError::io(path, "set its permissions", &e))?;
    Ok(Staged {
        tmp,
        path: path.to_path_buf(),
    })
}

impl Staged {
    /// Renames the temporary file into place (atomic on one file system).
    pub fn commit(self) -> Result<PathBuf, CliError> {
        let path = self.path;
        self.tmp
            .persist(&path)
            .map_err(|e| CliError::io(&path, "move the finished file into place", &e.error))?;
        if let Ok(d) = std::fs::File::open(parent_dir(&path)) {
            // Makes the rename itself durable; not every platform allows it.
            let _ = d.sync_all();
        }
        Ok(path)
    }
}

/// Commits every staged file, or none: if a rename fails, the files this call
/// already put in place are removed again.
pub fn commit_all(staged: Vec<Staged>) -> Result<(), CliError> {
    let mut done: Vec<PathBuf> = Vec::new();
    for s in staged {
        match s.commit() {
            Ok(p) => done.push(p),
            Err(e) => {
                for p in &done {
                    let _ = std::fs::remove_file(p);
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Writes one file atomically; `secret` files get mode 0600.
pub fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), CliError> {
    let mode = OutputMode {
        secret,
        executable: false,
    };
    stage(path, bytes, mode)?.commit().map(|_| ())
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: OutputMode) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode.bits()))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: OutputMode) -> std::io::Result<()> {
    Ok(())
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
