//! Step 2: one question per value the firmware takes, in plain words, with its default and its
//! limit, checked as it is typed (on Enter) by the library's own rules: the answer goes through
//! `thinger_patch_core::check`, as `patch` would check it, and the problem's text is shown.
//! Secrets are hidden and asked twice. An empty answer keeps what the file holds, never a
//! made-up value; a value the firmware requires cannot be left empty.

use super::{interrupted, timezone};
use crate::CliResult;
use crate::exit::{self, CliError};
use inquire::validator::Validation;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use thinger_patch_core::targets::standard::{coordinate_text, standard};
use thinger_patch_core::targets::{SlotState, TargetKind};
use thinger_patch_core::values::{Assignment, Origin};
use thinger_patch_core::{ListOptions, ProblemKind, Request, SlotView, check, slots};

/// The standard keys in the order a person thinks of them; other keys follow in key order.
const ORDER: &[&str] = &[
    "wifi_ssid",
    "wifi_password",
    "thinger_host",
    "thinger_user",
    "thinger_device",
    "thinger_credentials",
    "tz_offset",
    "dst_offset",
    "latitude",
    "longitude",
    "owm_api_key",
];

/// The answers, and what was asked.
pub struct Asked {
    pub answers: Vec<Assignment>,
    pub slots: Vec<SlotView>,
}

impl Asked {
    pub fn secret(&self, key: &str) -> bool {
        self.slots.iter().any(|s| s.key == key && s.secret)
    }
}

/// Lists what `input` takes and asks for each value.
/// `skip`: keys filled another way (the Thinger.io account), not asked.
pub fn ask(
    file: &Path,
    input: &[u8],
    remembered: &BTreeMap<String, String>,
    skip: &[&str],
) -> CliResult<Asked> {
    let listing = slots(input, &ListOptions::default()).map_err(|e| CliError::engine(file, &e))?;
    if !listing.report.valid {
        return Err(CliError::new(
            exit::INVALID,
            format!(
                "{}: this file is damaged and cannot be personalised ({}); ask for a fresh copy",
                file.display(),
                listing.report.summary_of_problems()
            ),
        ));
    }
    if !listing.problems.is_empty() {
        let lines: Vec<String> = listing
            .problems
            .iter()
            .map(crate::messages::problem)
            .collect();
        return Err(CliError::new(
            exit::INVALID,
            format!("{}: {}", file.display(), lines.join("\n")),
        ));
    }
    let chip = listing
        .chip
        .map_or("unknown chip".into(), |c| c.to_string());
    eprintln!(
        "{}: {chip} {}, {} value(s) to set. Press Enter to keep a value shown in brackets.\n",
        file.display(),
        listing.format,
        listing.slots.len()
    );
    let mut views = listing.slots.clone();
    views.retain(|v| !skip.contains(&v.key.as_str()));
    views.sort_by_key(|s| {
        (
            ORDER
                .iter()
                .position(|k| *k == s.key)
                .unwrap_or(ORDER.len()),
            s.key.clone(),
        )
    });
    let input = Arc::new(input.to_vec());
    let zone = timezone::offsets();
    let mut answers = Vec::new();
    for view in &views {
        let default = default_for(view, remembered, zone);
        let Some(value) = question(view, default.as_deref(), &input)? else {
            continue;
        };
        answers.push(Assignment::new(view.key.clone(), value, Origin::Form));
    }
    Ok(Asked {
        answers,
        slots: listing.slots,
    })
}

/// What Enter takes: a remembered answer, the computer's time zone, the standard key's usual
/// value, or what the file holds (not for secrets, which are never shown).
fn default_for(
    view: &SlotView,
    remembered: &BTreeMap<String, String>,
    zone: Option<timezone::Offsets>,
) -> Option<String> {
    if view.secret {
        return None;
    }
    if let Some(r) = remembered.get(&view.key) {
        return Some(r.clone());
    }
    match (view.key.as_str(), zone) {
        ("tz_offset", Some(z)) => return Some(z.standard.to_string()),
        ("dst_offset", Some(z)) => return Some(z.daylight_saving.to_string()),
        _ => {}
    }
    let held =
        (view.kind == TargetKind::Slot && !view.value.is_empty()).then(|| view.value.clone());
    held.or_else(|| {
        standard(&view.key)
            .and_then(|s| s.default)
            .map(str::to_string)
    })
}

/// Asks for one value; `None`: keep what the file holds.
fn question(
    view: &SlotView,
    default: Option<&str>,
    input: &Arc<Vec<u8>>,
) -> CliResult<Option<String>> {
    let label = view.label.unwrap_or(view.key.as_str());
    let what = if view.kind == TargetKind::Placeholder {
        "placeholder"
    } else {
        "slot"
    };
    let mut help = format!("{} ({what}), up to {} bytes", view.key, view.capacity);
    if let Some(rule) = view.rule {
        help.push_str(&format!("; {rule}"));
    }
    let required = view.required && view.state == SlotState::Default;
    if !required {
        help.push_str("; empty keeps what the file holds");
    }
    let validator = {
        let input = Arc::clone(input);
        let key = view.key.clone();
        let capacity = view.capacity;
        move |answer: &str| -> Result<Validation, inquire::CustomUserError> {
            Ok(match verdict(&input, &key, answer, required, capacity) {
                None => Validation::Valid,
                Some(why) => Validation::Invalid(why.into()),
            })
        }
    };
    let prompt = format!("{label}:");
    let answer = if view.secret {
        inquire::Password::new(&prompt)
            .with_display_mode(inquire::PasswordDisplayMode::Masked)
            .with_help_message(&help)
            .with_custom_confirmation_message("Type it again:")
            .with_custom_confirmation_error_message("The two entries differ; type it again.")
            .with_validator(validator)
            .prompt()
    } else {
        let mut text = inquire::Text::new(&prompt)
            .with_help_message(&help)
            .with_validator(validator);
        if let Some(d) = default {
            text = text.with_default(d);
        }
        text.prompt()
    }
    .map_err(interrupted)?;
    let answer = normalise(&view.key, &answer, view.capacity);
    if answer.is_empty() || (!view.secret && view.kind == TargetKind::Slot && answer == view.value)
    {
        return Ok(None);
    }
    Ok(Some(answer))
}

/// Coordinates are written with as many decimals as fit the placeholder.
fn normalise(key: &str, answer: &str, capacity: usize) -> String {
    let answer = answer.trim_end_matches(['\r', '\n']);
    if matches!(key, "latitude" | "longitude")
        && let Ok(v) = answer.trim().parse::<f64>()
        && let Some(t) = coordinate_text(v, capacity)
    {
        return t;
    }
    answer.to_string()
}

/// Why `answer` is refused for `key`, in the words `patch` uses; `None` when it passes.
fn verdict(
    input: &[u8],
    key: &str,
    answer: &str,
    required: bool,
    capacity: usize,
) -> Option<String> {
    if answer.is_empty() {
        return required.then(|| "the firmware needs a value here".to_string());
    }
    let answer = normalise(key, answer, capacity);
    let request = Request {
        values: vec![Assignment::new(key, answer, Origin::Form)],
        allow_missing: true,
        ..Request::default()
    };
    match check(input, &request) {
        Err(e) => Some(e.to_string()),
        Ok(checked) => {
            let mine: BTreeSet<String> = checked
                .problems
                .iter()
                .filter(|p| {
                    p.key.as_deref() == Some(key) && !matches!(p.kind, ProblemKind::Required)
                })
                .map(|p| match p.help() {
                    Some(h) => format!("{p}; {h}"),
                    None => p.to_string(),
                })
                .collect();
            (!mine.is_empty()).then(|| mine.into_iter().collect::<Vec<_>>().join("; "))
        }
    }
}
