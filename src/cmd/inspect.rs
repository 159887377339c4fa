//! `thinger-patch inspect`: kind, chip, integrity and every slot (secrets masked).

use crate::exit::{self, CliError};
use crate::outln;
use crate::{CliResult, fsio};
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use thinger_patch_core::Firmware;
use thinger_patch_core::placeholder::{self, Placeholder};
use thinger_patch_core::slot::{self, Decoded};
use thinger_patch_core::values::mask;

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// Firmware: ELF, app image, merged image, Arduino ESP8266 image, .bin.gz
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
}

#[derive(Serialize)]
struct SlotView {
    address: u32,
    file_offset: usize,
    /// `ok`, `unknown_version` or `malformed`.
    status: &'static str,
    key: Option<String>,
    capacity: Option<u16>,
    flags: Vec<String>,
    state: Option<slot::SlotState>,
    value: Option<String>,
    secret: bool,
    version: Option<u8>,
    problem: Option<String>,
}

#[derive(Serialize)]
struct PlaceholderView {
    key: String,
    literal: String,
    capacity: usize,
    occurrences: Vec<(u32, usize)>,
}

pub fn run(args: &InspectArgs) -> CliResult {
    let bytes = fsio::read(&args.file)?;
    let options = thinger_patch_core::ParseOptions {
        allow_host_elf: args.host_elf,
        ..Default::default()
    };
    let fw = Firmware::parse_with(&bytes, options).map_err(|e| CliError::engine(&args.file, &e))?;
    let report = fw.verify();
    let found = slot::scan(&fw);
    // A key is secret if any of its copies is: one unflagged copy must not show the value.
    let secret_keys: std::collections::BTreeSet<String> = found
        .iter()
        .filter_map(|f| match &f.decoded {
            Decoded::Slot(s) if slot::is_secret(&s.key, s.flags) => Some(s.key.clone()),
            _ => None,
        })
        .collect();
    let slots: Vec<SlotView> = found.into_iter().map(|f| view(f, &secret_keys)).collect();
    let mut placeholders = Vec::new();
    for spec in &args.placeholders {
        let p = Placeholder::parse(spec)
            .map_err(|m| CliError::new(exit::USAGE, format!("--placeholder: {m}")))?;
        let occ = placeholder::occurrences(&fw, p.literal.as_bytes());
        placeholders.push(PlaceholderView {
            capacity: p.literal.len(),
            occurrences: occ.iter().map(|o| (o.addr, o.offset)).collect(),
            key: p.key,
            literal: p.literal,
        });
    }
    if args.json {
        let doc = serde_json::json!({
            "file": args.file.display().to_string(),
            "format": fw.format_name(),
            "chip": fw.chip(),
            "valid": report.valid,
            "integrity": report,
            "slots": slots,
            "placeholders": placeholders,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("inspect serialises")
        );
    } else {
        let chip = fw.chip().map_or("unknown chip".into(), |c| c.to_string());
        let verdict = if report.valid {
            "valid".to_string()
        } else {
            format!("INVALID: {}", report.summary_of_problems())
        };
        outln!(
            "{}: {}, {chip}, {verdict}",
            args.file.display(),
            fw.format_name()
        );
        if slots.is_empty() {
            outln!(
                "  no slots (declare them with device/arduino/ThingerSlot or the thinger-slot crate, or use --placeholder)"
            );
        }
        for s in &slots {
            match s.status {
                "ok" => outln!(
                    "  {:<20} cap {:>4}  {:<8} {:<17} {:?}",
                    s.key.as_deref().unwrap_or(""),
                    s.capacity.unwrap_or(0),
                    s.state.map_or("", |st| if st == slot::SlotState::Patched {
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
        for p in &placeholders {
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
    Ok(if report.valid {
        exit::OK
    } else {
        exit::INVALID
    })
}

fn view(f: slot::FoundSlot, secret_keys: &std::collections::BTreeSet<String>) -> SlotView {
    let mut v = SlotView {
        address: f.addr,
        file_offset: f.offset,
        status: "ok",
        key: None,
        capacity: None,
        flags: Vec::new(),
        state: None,
        value: None,
        secret: false,
        version: None,
        problem: None,
    };
    match f.decoded {
        Decoded::Slot(s) => {
            v.secret = secret_keys.contains(&s.key);
            v.value = Some(if v.secret {
                mask(&s.value).to_string()
            } else {
                s.value.clone()
            });
            v.flags = s.flag_names();
            v.key = Some(s.key);
            v.capacity = Some(s.capacity);
            v.state = Some(s.state);
            v.version = Some(slot::record::VERSION);
        }
        Decoded::UnknownVersion { version } => {
            v.status = "unknown_version";
            v.version = Some(version);
            v.problem = Some(format!(
                "slot format version {version}, unknown to this thinger-patch (shown, never patched)"
            ));
        }
        Decoded::Malformed { reason } => {
            v.status = "malformed";
            v.problem = Some(format!("damaged slot record: {reason}"));
        }
    }
    v
}
