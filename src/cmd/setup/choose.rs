//! Step 1: which firmware. The `.bin`, `.bin.gz` and `.elf` files of the folder, newest first,
//! each with its chip, kind and how many values it takes; files already personalised (a slot
//! written by a patcher) are marked, so the user picks the original.

use super::interrupted;
use crate::CliResult;
use crate::exit::{self, CliError};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;
use thinger_patch_core::targets::SlotState;
use thinger_patch_core::{ListOptions, slots};

/// Files larger than this are not read to describe them (no ESP flash is larger).
const DESCRIBE_MAX: u64 = 64 << 20;

struct Candidate {
    path: PathBuf,
    modified: SystemTime,
    about: String,
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        write!(f, "{name}  ({})", self.about)
    }
}

/// Asks which firmware file of `dir` to personalise.
pub fn firmware(dir: &Path) -> CliResult<PathBuf> {
    let mut found = candidates(dir)?;
    match found.len() {
        0 => Err(CliError::new(
            exit::USAGE,
            format!(
                "no firmware here: {} holds no .bin, .bin.gz or .elf file; run thinger-patch setup FIRMWARE, or start it in the folder that holds the file",
                display_dir(dir)
            ),
        )),
        1 => {
            let only = found.remove(0);
            eprintln!("Firmware: {only}");
            Ok(only.path)
        }
        _ => inquire::Select::new("Which firmware do you want to personalise?", found)
            .with_help_message("newest first; type to filter, arrows to move, Enter to choose")
            .prompt()
            .map(|c| c.path)
            .map_err(interrupted),
    }
}

fn display_dir(dir: &Path) -> String {
    std::fs::canonicalize(dir)
        .map_or_else(|_| dir.display().to_string(), |d| d.display().to_string())
}

fn candidates(dir: &Path) -> CliResult<Vec<Candidate>> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        CliError::new(
            exit::IO,
            format!("{}: cannot list the folder: {e}", display_dir(dir)),
        )
    })?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        // Named as the user sees it in this folder (no "./").
        let path = if dir == Path::new(".") {
            PathBuf::from(entry.file_name())
        } else {
            entry.path()
        };
        let name = entry.file_name().to_string_lossy().to_lowercase();
        if !(name.ends_with(".bin") || name.ends_with(".bin.gz") || name.ends_with(".elf")) {
            continue;
        }
        // Regular files only (a FIFO named x.bin would block the listing).
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        let about = if meta.len() > DESCRIBE_MAX {
            "too large to be firmware".to_string()
        } else {
            std::fs::read(&path).map_or_else(|e| format!("unreadable: {e}"), |b| describe(&b))
        };
        out.push(Candidate {
            path,
            modified,
            about,
        });
    }
    out.sort_by(|a, b| {
        b.modified
            .cmp(&a.modified)
            .then_with(|| a.path.cmp(&b.path))
    });
    Ok(out)
}

/// `esp32c3 app-image, 8 values` / `..., already personalised` / `not firmware: ...`.
fn describe(bytes: &[u8]) -> String {
    match slots(bytes, &ListOptions::default()) {
        Err(e) => format!("not firmware: {e}"),
        Ok(l) => {
            let chip = l.chip.map_or("unknown chip".to_string(), |c| c.to_string());
            let mut about = format!("{chip} {}, {} value(s)", l.format, l.slots.len());
            if !l.report.valid {
                about.push_str(", INVALID");
            } else if l.slots.iter().any(|s| s.state == SlotState::Patched) {
                about.push_str(", already personalised");
            }
            about
        }
    }
}
