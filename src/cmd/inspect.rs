//! `thinger-patch inspect`: kind, chip, integrity and every slot (secrets masked),
//! as [`thinger_patch_core::slots`] lists them.

use crate::exit::{self, CliError};
use crate::outln;
use crate::{CliResult, fsio};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use thinger_patch_core::targets::{ConventionChoice, Placeholder, SlotState, TargetKind};
use thinger_patch_core::{ListOptions, Listing, ProblemKind, SlotView};

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Firmware: ELF, app image, merged image, Arduino ESP8266 image, .bin.gz; - for standard input
    pub file: PathBuf,
    /// Also locate a legacy placeholder: KEY=LITERAL (repeatable)
    #[arg(long = "placeholder", value_name = "KEY=LITERAL")]
    pub placeholders: Vec<String>,
    /// Print JSON (secret values masked)
    #[arg(long)]
    pub json: bool,
    /// Also accept x86/ARM host-program ELFs
    #[arg(long)]
    pub host_elf: bool,
    /// Placeholder convention of firmware without slots: auto, none, or a name (pythonpatcher)
    #[arg(long, value_name = "NAME", default_value = "auto", value_parser = crate::args::parse_convention)]
    pub convention: ConventionChoice,
}

/// One line of the JSON `slots` array: a key (all its copies), or a record that could not be
/// read (`status` says why).
#[derive(Serialize)]
struct SlotEntry {
    /// `ok`, `unknown_version` or `malformed`.
    status: &'static str,
    /// The first copy's load address and file offset.
    address: u32,
    file_offset: usize,
    key: Option<String>,
    kind: Option<TargetKind>,
    capacity: Option<usize>,
    flags: Vec<String>,
    state: Option<SlotState>,
    value: Option<String>,
    secret: bool,
    required: bool,
    rule: Option<&'static str>,
    /// A placeholder's literal, and the convention that found it.
    literal: Option<String>,
    convention: Option<&'static str>,
    addresses: Vec<u32>,
    file_offsets: Vec<usize>,
    version: Option<u8>,
    problem: Option<String>,
}

#[derive(Serialize)]
struct PlaceholderEntry {
    key: String,
    literal: String,
    capacity: usize,
    /// `(load address, file offset)` of every occurrence.
    occurrences: Vec<(u32, usize)>,
}

pub fn run(args: &InspectArgs) -> CliResult {
    let bytes = fsio::read(&args.file)?;
    let placeholders = args
        .placeholders
        .iter()
        .map(|spec| {
            Placeholder::parse(spec)
                .map_err(|m| CliError::new(exit::USAGE, format!("--placeholder: {m}")))
        })
        .collect::<CliResult<Vec<_>>>()?;
    let options = ListOptions {
        parse: thinger_patch_core::ParseOptions {
            allow_host_elf: args.host_elf,
            ..Default::default()
        },
        placeholders: placeholders.clone(),
        conventions: args.convention,
    };
    let listing = thinger_patch_core::slots(&bytes, &options)
        .map_err(|e| CliError::engine(&args.file, &e))?;
    let entries = slot_entries(&listing);
    let found = placeholder_entries(&listing, &placeholders);
    if args.json {
        let doc = serde_json::json!({
            "file": args.file.display().to_string(),
            "format": listing.format,
            "chip": listing.chip,
            "valid": listing.report.valid,
            "integrity": listing.report,
            "slots": entries,
            "placeholders": found,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("inspect serialises")
        );
    } else {
        print_human(args, &listing, &entries, &found);
    }
    Ok(if listing.report.valid {
        exit::OK
    } else {
        exit::INVALID
    })
}

fn print_human(
    args: &InspectArgs,
    listing: &Listing,
    entries: &[SlotEntry],
    found: &[PlaceholderEntry],
) {
    let chip = listing
        .chip
        .map_or("unknown chip".into(), |c| c.to_string());
    let verdict = if listing.report.valid {
        "valid".to_string()
    } else {
        format!("INVALID: {}", listing.report.summary_of_problems())
    };
    outln!(
        "{}: {}, {chip}, {verdict}",
        args.file.display(),
        listing.format
    );
    if listing.slots.is_empty() {
        outln!(
            "  no slots and no known placeholders: nothing to personalise (declare slots with device/arduino/ThingerSlot or the thinger-slot crate, or name placeholders with --placeholder)"
        );
    }
    for s in entries {
        match s.status {
            "ok" if s.kind == Some(TargetKind::Placeholder) && s.convention.is_some() => outln!(
                "  {:<20} cap {:>4}  {:<8} {:<17} {:?}",
                s.key.as_deref().unwrap_or(""),
                s.capacity.unwrap_or(0),
                "placeholder",
                format!(
                    "{}{}",
                    s.convention.unwrap_or(""),
                    if s.secret { ",secret" } else { "" }
                ),
                s.literal.as_deref().unwrap_or("")
            ),
            "ok" if s.kind == Some(TargetKind::Placeholder) => {}
            "ok" => outln!(
                "  {:<20} cap {:>4}  {:<8} {:<17} {:?}",
                s.key.as_deref().unwrap_or(""),
                s.capacity.unwrap_or(0),
                s.state.map_or("", |st| if st == SlotState::Patched {
                    "patched"
                } else {
                    "default"
                }),
                s.flags.join(","),
                s.value.as_deref().unwrap_or("")
            ),
            _ => outln!(
                "  record at {:#010x} (file offset {:#x}): {}",
                s.address,
                s.file_offset,
                s.problem.as_deref().unwrap_or("")
            ),
        }
    }
    for w in &listing.warnings {
        outln!("  note: {w}");
    }
    for p in found {
        outln!(
            "  placeholder {} ({:?}, {} bytes): {} occurrence(s){}",
            p.key,
            p.literal,
            p.capacity,
            p.occurrences.len(),
            p.occurrences
                .iter()
                .map(|(a, o)| format!(" {a:#010x}@{o:#x}"))
                .collect::<String>()
        );
    }
}

fn slot_entries(listing: &Listing) -> Vec<SlotEntry> {
    let mut out: Vec<SlotEntry> = listing.slots.iter().map(slot_entry).collect();
    for p in &listing.problems {
        let (status, address, offset, version, text) = match &p.kind {
            ProblemKind::UnknownRecordVersion {
                address,
                offset,
                version,
            } => (
                "unknown_version",
                *address,
                *offset,
                Some(*version),
                format!(
                    "slot format version {version}, unknown to this thinger-patch (shown, never patched)"
                ),
            ),
            ProblemKind::DamagedRecord {
                address,
                offset,
                reason,
            } => (
                "malformed",
                *address,
                *offset,
                None,
                format!("damaged slot record: {reason}"),
            ),
            _ => continue,
        };
        out.push(SlotEntry {
            status,
            address,
            file_offset: offset,
            key: None,
            kind: None,
            capacity: None,
            flags: Vec::new(),
            state: None,
            value: None,
            secret: false,
            required: false,
            rule: None,
            literal: None,
            convention: None,
            addresses: vec![address],
            file_offsets: vec![offset],
            version,
            problem: Some(text),
        });
    }
    out
}

fn slot_entry(s: &SlotView) -> SlotEntry {
    SlotEntry {
        status: "ok",
        address: s.addresses.first().copied().unwrap_or(0),
        file_offset: s.file_offsets.first().copied().unwrap_or(0),
        key: Some(s.key.clone()),
        kind: Some(s.kind),
        capacity: Some(s.capacity),
        flags: s.flags.clone(),
        state: Some(s.state),
        value: Some(s.value.clone()),
        secret: s.secret,
        required: s.required,
        rule: s.rule,
        literal: s.literal.clone(),
        convention: s.convention,
        addresses: s.addresses.clone(),
        file_offsets: s.file_offsets.clone(),
        version: (s.kind == TargetKind::Slot)
            .then_some(thinger_patch_core::targets::record::VERSION),
        problem: None,
    }
}

/// Every `--placeholder` asked for, with where its literal occurs (none, once, or several
/// times: `inspect` shows what `patch` would refuse).
fn placeholder_entries(listing: &Listing, asked: &[Placeholder]) -> Vec<PlaceholderEntry> {
    asked
        .iter()
        .map(|p| {
            let occurrences = match listing
                .slots
                .iter()
                .find(|s| s.key == p.key && s.kind == TargetKind::Placeholder)
            {
                Some(s) => s
                    .addresses
                    .iter()
                    .copied()
                    .zip(s.file_offsets.iter().copied())
                    .collect(),
                None => listing
                    .problems
                    .iter()
                    .find_map(|pr| match &pr.kind {
                        ProblemKind::PlaceholderRepeated { at, .. }
                            if pr.key.as_deref() == Some(&p.key) =>
                        {
                            Some(at.iter().map(|&(o, a)| (a, o)).collect())
                        }
                        _ => None,
                    })
                    .unwrap_or_default(),
            };
            PlaceholderEntry {
                key: p.key.clone(),
                literal: p.literal.clone(),
                capacity: p.literal.len(),
                occurrences,
            }
        })
        .collect()
}
