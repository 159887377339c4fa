//! `thinger-patch flash`: personalise in memory and write the result to a
//! device over its serial bootloader, through [`thinger_patch_delivery::serial`]
//! (espflash for the ESP32 family, esptool for the ESP8266). Where the image
//! goes is decided by [`thinger_patch_core::placement`]; this module holds the
//! arguments, the port prompt, the summary and the `--record` log.

mod dry_run;
mod record;

use super::batch::Writer;
use super::thinger::provision::{Delivered, PropertyArgs, ProvisionArgs, Provisioning};
use crate::args::{self, PersonalizeArgs, SerialArgs, result_warnings};
use crate::exit::{self, CliError};
use crate::progress::{Bar, rate};
use crate::{CliResult, fsio, outln, print_warnings};
use clap::Args;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use thinger_patch_core::checksum;
use thinger_patch_core::chip::Chip;
use thinger_patch_core::personalize::Personalized;
use thinger_patch_core::placement::{self, Plan, Route};
use thinger_patch_core::{Firmware, ParseOptions};
use thinger_patch_delivery::serial::{self, FlashOptions, esptool, port};

#[derive(Debug, Args)]
#[command(mut_arg("profiles", |a| a.help(super::ota::ONE_PROFILE_HELP)))]
pub struct FlashArgs {
    /// Firmware to personalise and write: app image, merged image, Arduino ESP8266 image, .bin.gz
    pub file: PathBuf,
    #[command(flatten)]
    pub personalize: PersonalizeArgs,
    /// Serial port [default: $ESPFLASH_PORT, else the one ESP serial port found]
    #[arg(short, long, value_name = "PORT")]
    pub port: Option<String>,
    /// Skip the MD5 check of what was written (ESP32 family)
    #[arg(long)]
    pub no_verify: bool,
    /// Append one JSON line per flashed device to FILE (time, port, chip, MAC, profile, masked slots, SHA-256)
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Print a JSON summary on stdout (progress stays on stderr)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub serial: SerialArgs,
    /// Flash offset of the device's partition table (read for app images)
    #[arg(long, value_name = "OFFSET", default_value = "0x8000", value_parser = thinger_patch_core::placement::parse_offset)]
    pub partition_table_offset: u32,
    /// Personalise and show what would be written where; open no serial port, run no esptool
    #[arg(long, conflicts_with = "record")]
    pub dry_run: bool,
    /// ESP8266 (esptool): seconds the whole write may take before esptool is stopped, 0.1 to 86400 [default: 120 + 4 times the transfer time at --baud + 1 per 64 KiB]
    #[arg(long, value_name = "S", value_parser = super::ota::parse_seconds, allow_negative_numbers = true)]
    pub esptool_timeout: Option<Duration>,
    /// ESP8266 (esptool): seconds esptool may print nothing before it is stopped (0.1 to 86400)
    #[arg(long, value_name = "S", default_value = "60", value_parser = super::ota::parse_seconds, allow_negative_numbers = true)]
    pub esptool_stall_timeout: Duration,
    #[command(flatten)]
    pub thinger: ProvisionArgs,
    #[command(flatten)]
    pub properties: PropertyArgs,
}

/// What one run did, for the summary, `--json` and `--record`.
#[derive(Debug, Serialize)]
struct Summary<'a> {
    file: String,
    profile: Option<&'a str>,
    port: String,
    chip: Chip,
    mac: Option<String>,
    format: &'static str,
    size: usize,
    sha256: String,
    writes: &'a [placement::Write],
    erases: &'a [placement::Erase],
    bytes: u64,
    seconds: f64,
    rate: String,
    verified: bool,
    tool: String,
    record: Option<String>,
    slots: &'a [thinger_patch_core::personalize::SlotOutcome],
    warnings: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinger: Option<super::thinger::provision::Summary>,
}

pub fn run(args: &FlashArgs) -> CliResult {
    let runs = args.personalize.profile_runs();
    if runs.len() > 1 {
        return Err(CliError::new(
            exit::USAGE,
            "flash writes one device: give at most one --profile (run it once per device)",
        ));
    }
    let profile = runs.into_iter().next().flatten();
    if let Some(path) = &args.record {
        // Checked before the device is touched: a FIFO or device node would block or be lost.
        fsio::destination(path)?;
    }
    let input = fsio::read(&args.file)?;
    let mut warnings = Vec::new();
    let config = args.personalize.load_config(&mut warnings)?;
    let request = args
        .personalize
        .request(config.as_ref(), profile.as_deref())?;
    // `--thinger-device 'esp-{mac}'`: the board is connected first, its MAC names the device.
    let mut thinger = args.thinger.clone();
    let mut early_session = None;
    let mut early_tool = None;
    if let Some(template) = mac_template(&args.thinger)? {
        let (port, writer, id) = connect_for_id(args, &input, &template, &mut early_tool)?;
        thinger.thinger_device = Some(id);
        early_session = Some((port, writer));
    }
    let mut device =
        Provisioning::prepare(&thinger, &args.file, &input, &request, config.as_ref())?;
    let mut request = request;
    if let Some(p) = &device {
        p.apply(&mut request);
    }
    let done = args::personalize_request(&args.file, &input, &request, profile.as_deref())?;
    let fw_version = args.properties.version(&done.slots);
    warnings.extend(crate::messages::warnings(&done.warnings));
    warnings.extend(result_warnings(&done));
    let fw = Firmware::parse_with(&done.bytes, ParseOptions::default())
        .map_err(|e| CliError::engine(&args.file, &e))?;
    let route = placement::route(&fw)
        .map_err(|e| CliError::new(exit::INVALID, format!("{}: {e}", args.file.display())))?;
    // Plans that need no device table are checked before any port is touched.
    let early = !route.needs_table();
    let early_plan = if early {
        let plan = placement::plan(&fw, None)
            .map_err(|e| CliError::new(exit::INVALID, format!("{}: {e}", args.file.display())))?;
        warnings.extend(plan.warnings.iter().cloned());
        Some(plan)
    } else {
        None
    };
    if args.dry_run {
        if let Some(p) = &device {
            eprintln!("{}", p.plan_line());
        }
        return dry_run::report(
            args,
            profile.as_deref(),
            &done,
            &fw,
            route,
            early_plan.as_ref(),
            warnings,
        );
    }
    print_warnings(&warnings);

    // A missing esptool is reported before any port is chosen or asked for.
    let esptool = match route {
        Route::Esp8266 if early_session.is_none() => Some(esptool::find()?),
        _ => None,
    };
    let port = match &early_session {
        Some((port, _)) => port.clone(),
        None => pick_port(args)?,
    };
    let options = flash_options(args);
    let started = Instant::now();
    let mut bar = Bar::new(std::io::stderr().is_terminal());
    if let Some(p) = &mut device {
        p.register()?;
    }
    let delivered = match early_session {
        Some((_, writer)) => writer.write(&fw, &port, &options, &mut bar),
        None => serial::flash(&fw, &port, &options, esptool.as_ref(), &mut bar),
    };
    drop(bar);
    let delivered = match (delivered, &device) {
        (Ok(d), _) => d,
        (Err(e), Some(p)) => return Err(p.failed(e.into())),
        (Err(e), None) => return Err(e.into()),
    };
    if let Some(p) = &mut device {
        p.finish(
            Some(Delivered {
                mac: delivered.mac.as_deref(),
                image: fw.data(),
                fw_version,
            }),
            &args.properties,
        )?;
    }
    let seconds = started.elapsed().as_secs_f64();
    if !early {
        print_warnings(&delivered.plan.warnings);
    }
    let data = fw.data();
    let sha256 = checksum::hex(&checksum::sha256(data));
    let summary = Summary {
        file: args.file.display().to_string(),
        profile: profile.as_deref(),
        port: port.clone(),
        chip: route.chip(),
        mac: delivered.mac.clone(),
        format: done.format,
        size: data.len(),
        sha256: sha256.clone(),
        writes: &delivered.plan.writes,
        erases: &delivered.plan.erases,
        bytes: delivered.plan.total_bytes(),
        seconds: (seconds * 1000.0).round() / 1000.0,
        rate: rate(
            delivered.plan.total_bytes(),
            delivered.transfer.as_secs_f64(),
        ),
        verified: delivered.verified,
        tool: delivered.tool.clone(),
        record: args.record.as_ref().map(|p| p.display().to_string()),
        slots: &done.slots,
        warnings: if early {
            warnings.clone()
        } else {
            warnings
                .iter()
                .chain(&delivered.plan.warnings)
                .cloned()
                .collect()
        },
        thinger: device.as_ref().map(Provisioning::summary),
    };
    if let Some(path) = &args.record {
        record::append(path, &record_line(&summary, &done, &delivered.plan))?;
    }
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&summary).expect("summary serialises")
        );
    } else {
        print_human(&summary);
        for line in device.iter().flat_map(|p| p.lines()) {
            outln!("{line}");
        }
    }
    Ok(exit::OK)
}

fn flash_options(args: &FlashArgs) -> FlashOptions {
    FlashOptions {
        verify: !args.no_verify,
        partition_table_offset: args.partition_table_offset,
        esptool_deadline: args.esptool_timeout,
        esptool_stall: args.esptool_stall_timeout,
        ..args.serial.options()
    }
}

/// A `--thinger-device` with `{mac}` in it, parsed (`None` for a plain id).
fn mac_template(args: &ProvisionArgs) -> CliResult<Option<thinger_patch_ledger::Template>> {
    let Some(text) = args.thinger_device.as_deref().filter(|t| t.contains('{')) else {
        return Ok(None);
    };
    let template = thinger_patch_ledger::Template::parse(text, &Default::default())
        .map_err(|m| CliError::new(exit::USAGE, format!("--thinger-device: {m}")))?;
    if template.uses_n() || !template.uses_mac() {
        return Err(CliError::new(
            exit::USAGE,
            format!(
                "--thinger-device {text:?}: flash takes one board, so the only field is {{mac}} (e.g. esp-{{mac}}); numbered ids are for batch"
            ),
        ));
    }
    Ok(Some(template))
}

/// Identifies the board before anything is personalised, to name its device after its MAC:
/// an open connection for the ESP32 family (kept for the write), esptool's read-mac for the
/// ESP8266 (the same as `batch`).
fn connect_for_id<'a>(
    args: &FlashArgs,
    input: &[u8],
    template: &thinger_patch_ledger::Template,
    tool: &'a mut Option<esptool::Esptool>,
) -> CliResult<(String, Writer<'a>, String)> {
    if args.dry_run {
        return Err(CliError::new(
            exit::USAGE,
            format!(
                "--thinger-device {template} reads the board's MAC, which --dry-run does not; give a plain id for a dry run"
            ),
        ));
    }
    let fw = Firmware::parse_with(input, ParseOptions::default())
        .map_err(|e| CliError::engine(&args.file, &e))?;
    let link = super::batch::link(&fw, &args.file, tool)?;
    let port = pick_port(args)?;
    let (writer, board) = super::batch::identify(link, &port, &flash_options(args))
        .map_err(|m| CliError::new(exit::DEVICE, m))?;
    let mac = board.mac_address().expect("identified by its MAC");
    let id = template.render(0, Some(mac)).expect("the MAC is there");
    Ok((port, writer, id))
}

fn record_line(s: &Summary<'_>, done: &Personalized, plan: &Plan) -> record::Record {
    record::Record {
        time: record::now_rfc3339(),
        port: s.port.clone(),
        chip: s.chip.to_string(),
        mac: s.mac.clone(),
        profile: s.profile.map(str::to_string),
        file: s.file.clone(),
        format: s.format,
        slots: done
            .slots
            .iter()
            .map(|o| (o.key.clone(), o.value.clone()))
            .collect::<BTreeMap<_, _>>(),
        sha256: s.sha256.clone(),
        size: s.size,
        regions: regions(plan),
        verified: s.verified,
        tool: s.tool.clone(),
    }
}

fn regions(plan: &Plan) -> Vec<String> {
    plan.writes
        .iter()
        .map(|w| format!("{:#x} {} ({} bytes)", w.offset, w.what, w.len))
        .chain(
            plan.erases
                .iter()
                .map(|e| format!("{:#x} {} (erased, {} bytes)", e.offset, e.what, e.size)),
        )
        .collect()
}

fn print_human(s: &Summary<'_>) {
    let set = s.slots.iter().filter(|o| o.origin.is_some()).count();
    outln!(
        "flashed {} ({}, {} of {} slot(s) set) to the {} on {}",
        s.file,
        s.format,
        set,
        s.slots.len(),
        s.chip,
        s.port
    );
    outln!("  MAC      {}", s.mac.as_deref().unwrap_or("(not read)"));
    for w in s.writes {
        outln!(
            "  wrote    {:#08x}  {:>8} bytes  {}",
            w.offset,
            w.len,
            w.what
        );
    }
    for e in s.erases {
        outln!(
            "  erased   {:#08x}  {:>8} bytes  {}",
            e.offset,
            e.size,
            e.what
        );
    }
    outln!("  SHA-256  {}", s.sha256);
    outln!(
        "  {} bytes at {}, {:.1} s in all, {}",
        s.bytes,
        s.rate,
        s.seconds,
        if s.verified {
            "verified (MD5)"
        } else {
            "not verified"
        }
    );
    if let Some(r) = &s.record {
        outln!("  recorded in {r}");
    }
}

fn pick_port(args: &FlashArgs) -> CliResult<String> {
    let env = std::env::var(port::PORT_ENV).ok();
    if args.port.is_some() || env.as_deref().is_some_and(|e| !e.trim().is_empty()) {
        return match port::choose(args.port.as_deref(), env.as_deref(), &[], false)? {
            port::Choice::Use(p, _) => Ok(p),
            port::Choice::Ask(_) => unreachable!("an explicit port never asks"),
        };
    }
    let ports = port::system_ports();
    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    match port::choose(None, None, &ports, interactive)? {
        port::Choice::Use(p, why) => {
            eprintln!("using {p} ({why})");
            Ok(p)
        }
        port::Choice::Ask(c) => ask(&c),
    }
}

/// Asks on the terminal which port (stderr for the list, stdin for the answer).
pub fn ask(candidates: &[port::PortInfo]) -> CliResult<String> {
    use std::io::{BufRead, Write};
    let mut err = std::io::stderr();
    let _ = writeln!(err, "Several ESP serial ports found:");
    for (i, p) in candidates.iter().enumerate() {
        let _ = writeln!(err, "  {}) {}", i + 1, p.describe());
    }
    for _ in 0..3 {
        let _ = write!(err, "Which one? [1-{}] ", candidates.len());
        let _ = err.flush();
        let mut line = String::new();
        let n = std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| CliError::new(exit::IO, format!("cannot read the answer: {e}")))?;
        if n == 0 {
            break;
        }
        if let Some(i) = port::parse_answer(&line, candidates.len()) {
            return Ok(candidates[i].name.clone());
        }
    }
    Err(CliError::new(
        exit::USAGE,
        format!(
            "no port chosen; name one with --port PORT or {}",
            port::PORT_ENV
        ),
    ))
}
