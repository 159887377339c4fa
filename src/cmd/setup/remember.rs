//! Step 5: remembering the answers that are the same for the next device (WiFi network,
//! Thinger.io host and user, time zone, place) as the profile `[profiles.setup]` of the user's
//! config file, whose other content and comments are kept. They become the next run's defaults
//! and work with `patch --profile setup` too. Secrets and the device id are never stored.

use super::{confirm, questions::Asked};
use crate::CliResult;
use crate::exit::{self, CliError};
use std::collections::BTreeMap;
use toml_edit::{DocumentMut, Item, Table, value};

/// The profile the guided mode reads and writes.
const PROFILE: &str = "setup";
/// Different for every device: asked each time.
const PER_DEVICE: &[&str] = &["thinger_device"];

/// The remembered answers (empty when there are none or the file cannot be read).
pub fn load() -> BTreeMap<String, String> {
    let Some(doc) = crate::args::user_config_path()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| t.parse::<DocumentMut>().ok())
    else {
        return BTreeMap::new();
    };
    doc.get("profiles")
        .and_then(|p| p.get(PROFILE))
        .and_then(Item::as_table_like)
        .map(|t| {
            t.iter()
                .filter_map(|(k, v)| Some((k.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// Offers to remember the answers worth remembering.
pub fn offer(asked: &Asked) -> CliResult<()> {
    let keep: Vec<(&str, &str)> = asked
        .answers
        .iter()
        .filter(|a| !asked.secret(&a.key) && !PER_DEVICE.contains(&a.key.as_str()))
        .map(|a| (a.key.as_str(), a.value.expose()))
        .collect();
    let Some(path) = crate::args::user_config_path() else {
        return Ok(());
    };
    let stored = load();
    if keep
        .iter()
        .all(|(k, v)| stored.get(*k).map(String::as_str) == Some(*v))
    {
        return Ok(());
    }
    let keys: Vec<&str> = keep.iter().map(|(k, _)| *k).collect();
    if !confirm(
        &format!(
            "Remember {} for the next device (in {}, profile \"{PROFILE}\"; secrets are not stored)?",
            keys.join(", "),
            path.display()
        ),
        true,
    )? {
        return Ok(());
    }
    let mut doc = match std::fs::read_to_string(&path) {
        Ok(text) => text.parse::<DocumentMut>().map_err(|e| {
            CliError::new(
                exit::INVALID,
                format!(
                    "{}: not valid TOML, so nothing was remembered: {e}",
                    path.display()
                ),
            )
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DocumentMut::new(),
        Err(e) => {
            return Err(CliError::new(exit::IO, format!("{}: {e}", path.display())));
        }
    };
    let profiles = doc
        .entry("profiles")
        .or_insert_with(|| {
            let mut t = Table::new();
            t.set_implicit(true);
            Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| {
            CliError::new(
                exit::INVALID,
                format!(
                    "{}: `profiles` is not a table; nothing was remembered",
                    path.display()
                ),
            )
        })?;
    let table = profiles
        .entry(PROFILE)
        .or_insert_with(|| Item::Table(Table::new()))
        .as_table_mut()
        .ok_or_else(|| {
            CliError::new(
                exit::INVALID,
                format!(
                    "{}: `profiles.{PROFILE}` is not a table; nothing was remembered",
                    path.display()
                ),
            )
        })?;
    for (k, v) in &keep {
        table.insert(k, value(*v));
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::new(exit::IO, format!("{}: {e}", dir.display())))?;
    }
    crate::fsio::write_atomic(&path, doc.to_string().as_bytes(), false)?;
    eprintln!("Remembered in {} (profile \"{PROFILE}\").", path.display());
    Ok(())
}
