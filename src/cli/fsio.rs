//! File I/O with the guarantees the tool promises: inputs are only read, outputs
//! appear atomically (temporary file in the same folder, then rename) with the
//! right permissions.

use super::exit::CliError;
use std::io::Write;
use std::path::Path;

/// Reads a whole input file.
pub fn read(path: &Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::io(path, "read it", &e))
}

/// Writes `bytes` to `path` atomically. `secret` files get mode 0600 (they hold
/// credentials), others 0644.
pub fn write_atomic(path: &Path, bytes: &[u8], secret: bool) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".thinger-patch-")
        .tempfile_in(dir)
        .map_err(|e| CliError::io(path, "create a temporary file beside it", &e))?;
    tmp.write_all(bytes)
        .and_then(|_| tmp.as_file().sync_all())
        .map_err(|e| CliError::io(path, "write it", &e))?;
    set_mode(tmp.path(), secret).map_err(|e| CliError::io(path, "set its permissions", &e))?;
    tmp.persist(path)
        .map_err(|e| CliError::io(path, "move the finished file into place", &e.error))?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Make the rename itself durable; not all platforms allow this.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(unix)]
fn set_mode(path: &Path, secret: bool) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if secret { 0o600 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _secret: bool) -> std::io::Result<()> {
    Ok(())
}
