//! `thinger-patch ledger list|show|export|forget`: what the provisioning ledger recorded, which
//! device got which identity. Secrets stay masked unless `export --reveal` (which needs the
//! ledger's key); listing needs no key.

use super::batch::{ledger_error, ledger_path, open_ledger};
use crate::args::PersonalizeArgs;
use crate::exit::{self, CliError};
use crate::{CliResult, outln};
use clap::{Args, Subcommand, ValueEnum};
use std::path::PathBuf;
use thinger_patch_ledger::{ExportFormat, Filter, Ledger, State};

#[derive(Debug, Args)]
pub struct LedgerArgs {
    #[command(subcommand)]
    pub action: LedgerAction,
    /// The ledger [default: thinger-patch.db beside the config file, else here]
    #[arg(long, value_name = "FILE", global = true)]
    pub ledger: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum LedgerAction {
    /// One line per device: id, state, MAC, where it was written, image SHA-256
    List {
        /// Only devices in this state (reserved, flashed, verified, failed, retired)
        #[arg(long, value_name = "STATE")]
        state: Vec<String>,
        /// One JSON object per device (secrets masked)
        #[arg(long)]
        json: bool,
    },
    /// One device in full, with its slot values (secrets masked) and its events
    Show {
        /// The device id
        device: String,
        #[arg(long)]
        json: bool,
    },
    /// Every device as CSV or JSON on standard output; secrets masked unless --reveal
    Export {
        #[arg(long, value_enum, default_value_t = Format::Csv)]
        format: Format,
        /// Write secret values in clear (needs the ledger's key: THINGER_PATCH_LEDGER_KEY or the passphrase)
        #[arg(long)]
        reveal: bool,
    },
    /// Remove a device and its identity from the ledger (its events stay)
    Forget {
        /// The device id
        device: String,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    Csv,
    Json,
}

pub fn run(args: &LedgerArgs) -> CliResult {
    let mut warnings = Vec::new();
    let config = PersonalizeArgs::default().load_config(&mut warnings)?;
    let path = ledger_path(args.ledger.as_deref(), config.as_ref());
    let locked = || -> CliResult<Ledger> {
        if !path.exists() {
            return Err(CliError::new(
                exit::INVALID,
                format!(
                    "{}: no ledger here; name it with --ledger FILE",
                    path.display()
                ),
            ));
        }
        Ledger::open_locked(&path).map_err(ledger_error)
    };
    match &args.action {
        LedgerAction::List { state, json } => {
            let states = state
                .iter()
                .map(|s| {
                    s.parse::<State>().map_err(|_| {
                        CliError::new(exit::USAGE, format!("--state {s}: expected reserved, flashed, verified, failed or retired"))
                    })
                })
                .collect::<CliResult<Vec<_>>>()?;
            let ledger = locked()?;
            let devices = ledger
                .devices(
                    &Filter {
                        states,
                        ..Filter::default()
                    },
                    false,
                )
                .map_err(ledger_error)?;
            if *json {
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&devices).expect("devices serialise")
                );
            } else {
                for d in &devices {
                    let sha = d.written.sha256.as_deref().unwrap_or("-");
                    outln!(
                        "{:<24} {:<9} {:<17} {}",
                        d.device,
                        format!("{:?}", d.state).to_lowercase(),
                        d.mac.as_deref().unwrap_or("-"),
                        &sha[..sha.len().min(16)]
                    );
                }
                outln!("{} device(s) in {}", devices.len(), path.display());
            }
        }
        LedgerAction::Show { device, json } => {
            let ledger = locked()?;
            let d = ledger.device(device, false).map_err(ledger_error)?;
            let events = ledger.events(Some(device)).map_err(ledger_error)?;
            if *json {
                let doc = serde_json::json!({ "device": d, "events": events });
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&doc).expect("device serialises")
                );
            } else {
                outln!("{}  {}", d.device, format!("{:?}", d.state).to_lowercase());
                outln!("  MAC       {}", d.mac.as_deref().unwrap_or("-"));
                outln!("  chip      {}", d.chip.as_deref().unwrap_or("-"));
                outln!(
                    "  written   {} {} {}",
                    d.written.firmware.as_deref().unwrap_or("-"),
                    d.written.version.as_deref().unwrap_or(""),
                    d.written.sha256.as_deref().unwrap_or("")
                );
                if let Some(r) = &d.reason {
                    outln!("  reason    {r}");
                }
                for v in &d.values {
                    outln!("  {:<20} {:?}", v.key, v.value);
                }
                outln!("  {} event(s)", events.len());
            }
        }
        LedgerAction::Export { format, reveal } => {
            let ledger = if *reveal {
                open_ledger(Some(&path), None, false)?
            } else {
                locked()?
            };
            let f = match format {
                Format::Csv => ExportFormat::Csv,
                Format::Json => ExportFormat::Json,
            };
            let text = ledger
                .export(&Filter::default(), f, *reveal)
                .map_err(ledger_error)?;
            outln!("{}", text.trim_end());
        }
        LedgerAction::Forget { device } => {
            let ledger = locked()?;
            ledger.forget(device).map_err(ledger_error)?;
            eprintln!("forgot {device} in {}", path.display());
        }
    }
    Ok(exit::OK)
}
