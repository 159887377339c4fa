//! `--record FILE`: one JSON line per flashed device, appended and made durable
//! (fsync) before the command reports success. Values are masked exactly as in
//! every other output.

use crate::CliResult;
use crate::exit::CliError;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

/// One line of the log.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// UTC, RFC 3339 (`2025-01-31T12:00:00Z`).
    pub time: String,
    pub port: String,
    pub chip: String,
    pub mac: Option<String>,
    pub profile: Option<String>,
    pub file: String,
    pub format: &'static str,
    /// Slot key → value (secrets masked).
    pub slots: BTreeMap<String, String>,
    /// SHA-256 of the image bytes written (decompressed).
    pub sha256: String,
    pub size: usize,
    /// `offset: what` of every region written or erased.
    pub regions: Vec<String>,
    pub verified: bool,
    pub tool: String,
}

/// Appends `record` as one line to `path` (created with mode 0600), then
/// fsyncs the file (and, when it was created, its folder).
pub fn append(path: &Path, record: &Record) -> CliResult<()> {
    let mut line = serde_json::to_string(record).expect("a record serialises");
    line.push('\n');
    let existed = crate::fsio::destination(path)?.exists;
    let mut opts = OpenOptions::new();
    opts.append(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let io = |doing: &str, e: &std::io::Error| {
        CliError::io(
            path,
            &format!("{doing} (the device WAS flashed; note it by hand)"),
            e,
        )
    };
    let mut f = opts
        .open(path)
        .map_err(|e| io("open the record file", &e))?;
    // One write call: appends of whole lines do not interleave.
    f.write_all(line.as_bytes())
        .map_err(|e| io("append to the record file", &e))?;
    f.sync_all()
        .map_err(|e| io("sync the record file to disk", &e))?;
    if !existed {
        sync_dir(path);
    }
    Ok(())
}

#[cfg(unix)]
fn sync_dir(path: &Path) {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_path: &Path) {}

/// Now, as RFC 3339 UTC with whole seconds.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

/// Seconds since the Unix epoch → `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days_from_civil, inverted.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn appends_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let mut r = Record {
            time: rfc3339(0),
            port: "/dev/ttyUSB0".into(),
            chip: "esp32c3".into(),
            mac: Some("aa:bb:cc:dd:ee:ff".into()),
            profile: Some("kitchen".into()),
            file: "fw.bin".into(),
            format: "app-image",
            slots: BTreeMap::from([("wifi_password".to_string(), "********".to_string())]),
            sha256: "00".repeat(32),
            size: 1,
            regions: vec!["0x10000 factory".into()],
            verified: true,
            tool: "espflash 4.7".into(),
        };
        append(&path, &r).unwrap();
        r.mac = None;
        append(&path, &r).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        let v: serde_json::Value = serde_json::from_str(lines[0]).unwrap();
        assert_eq!(v["slots"]["wifi_password"], "********");
        assert_eq!(v["mac"], "aa:bb:cc:dd:ee:ff");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
    }
}
