//! `thinger-patch flash`: personalise in memory and write the result to a
//! device over its serial bootloader. ESP32 family through the espflash
//! library (stub, compression, verification), ESP8266 through esptool.
//! Where the image goes is decided by [`thinger_patch_core::placement`].

mod dry_run;
mod esptool;
mod port;
mod progress;
mod record;

use crate::args::{self, PersonalizeArgs, result_warnings};
use crate::exit::{self, CliError};
use crate::{CliResult, fsio, outln, print_warnings};
use clap::{Args, ValueEnum};
use progress::Progress;
use serde::Serialize;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use thinger_patch_core::checksum;
use thinger_patch_core::chip::Chip;
use thinger_patch_core::format::partition_table::{self, PartitionTable};
use thinger_patch_core::personalize::Personalized;
use thinger_patch_core::placement::{self, Plan, Route};
use thinger_patch_core::{Firmware, ParseOptions};

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
    /// Baud rate for the transfer (the connection starts at 115200)
    #[arg(short, long, value_name = "B", default_value_t = 460_800)]
    pub baud: u32,
    /// Skip the MD5 check of what was written (ESP32 family)
    #[arg(long)]
    pub no_verify: bool,
    /// Append one JSON line per flashed device to FILE (time, port, chip, MAC, profile, masked slots, SHA-256)
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Print a JSON summary on stdout (progress stays on stderr)
    #[arg(long)]
    pub json: bool,
    /// How to enter the serial bootloader: pulse DTR/RTS (auto-reset boards), or the chip is already in it
    #[arg(long, value_enum, default_value_t = Before::DefaultReset)]
    pub before: Before,
    /// After writing: reset the chip via RTS to run the firmware, or stay in the bootloader
    #[arg(long, value_enum, default_value_t = After::HardReset)]
    pub after: After,
    /// Talk to the ROM loader instead of uploading the flasher stub (slower, no compression)
    #[arg(long)]
    pub no_stub: bool,
    /// Flash offset of the device's partition table (read for app images)
    #[arg(long, value_name = "OFFSET", default_value = "0x8000", value_parser = parse_offset)]
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
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Before {
    DefaultReset,
    NoReset,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum After {
    HardReset,
    NoReset,
}

fn parse_offset(s: &str) -> Result<u32, String> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    }
    .map_err(|_| format!("{s}: expected a number like 0x8000"))?;
    if !v.is_multiple_of(placement::SECTOR) {
        return Err(format!("{s}: must be a multiple of 0x1000"));
    }
    Ok(v)
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
    let done = args::personalize_for(
        &args.personalize,
        &args.file,
        &input,
        config.as_ref(),
        profile.as_deref(),
    )?;
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
        Route::Esp8266 => Some(esptool::find()?),
        Route::Esp32 { .. } => None,
    };
    let port = pick_port(args)?;
    let started = Instant::now();
    let delivered = match route {
        Route::Esp32 { chip, .. } => flash_esp32(args, &fw, chip, &port)?,
        Route::Esp8266 => flash_esp8266(
            args,
            &fw,
            &port,
            esptool.expect("found above for the ESP8266 route"),
        )?,
    };
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
        rate: progress::rate(
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
    }
    Ok(exit::OK)
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
        port::Choice::Ask(c) => port::ask(&c),
    }
}

/// What a delivery did.
struct Delivered {
    plan: Plan,
    mac: Option<String>,
    verified: bool,
    tool: String,
    /// Time spent writing (for the effective rate).
    transfer: Duration,
}

// ---------------------------------------------------------------------------
// ESP32 family: espflash
// ---------------------------------------------------------------------------

fn device_error(port: &str, what: &str, e: &espflash::Error) -> CliError {
    CliError::new(exit::DEVICE, format!("{port}: {what}: {}", chain(e)))
}

/// An error and its sources, one sentence: `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    if out.contains("Broken pipe")
        || out.contains("Input/output error")
        || out.contains("os error 5")
        || out.contains("Timeout")
        || out.contains("timed out")
    {
        out.push_str(
            " (the serial line dropped or the device stopped answering: check the cable and the port, then run again)",
        );
    }
    out
}

fn flash_esp32(
    args: &FlashArgs,
    fw: &Firmware<'_>,
    chip: Chip,
    port: &str,
) -> CliResult<Delivered> {
    use espflash::connection::{Connection, ResetAfterOperation, ResetBeforeOperation};
    use espflash::flasher::Flasher;

    let want: espflash::target::Chip = chip.name().parse().map_err(|_| {
        CliError::new(
            exit::INVALID,
            format!(
                "{}: espflash does not support the {chip}",
                args.file.display()
            ),
        )
    })?;
    let serial = serialport::new(port, 115_200)
        .timeout(Duration::from_secs(3))
        .open_native()
        .map_err(|e| {
            CliError::new(
                exit::DEVICE,
                format!("{port}: cannot open the serial port: {e}"),
            )
        })?;
    let (vid, pid) = port::usb_ids(port, &port::system_ports()).unwrap_or((0, 0));
    let info = serialport::UsbPortInfo {
        vid,
        pid,
        serial_number: None,
        manufacturer: None,
        product: None,
    };
    let before = match args.before {
        Before::DefaultReset => ResetBeforeOperation::DefaultReset,
        Before::NoReset => ResetBeforeOperation::NoReset,
    };
    let after = match args.after {
        After::HardReset => ResetAfterOperation::HardReset,
        After::NoReset => ResetAfterOperation::NoReset,
    };
    let conn = Connection::new(serial, info, after, before, 115_200);
    let use_stub = !args.no_stub;
    eprintln!("connecting to {port} ...");
    let mut flasher = Flasher::connect(
        conn,
        use_stub,
        !args.no_verify,
        false,
        Some(want),
        Some(args.baud),
    )
    .map_err(|e| match &e {
        espflash::Error::ChipMismatch(image, connected) => CliError::new(
            exit::INVALID,
            format!(
                "{port}: the connected chip is an {connected}, but {} is firmware for an {image}: nothing was written",
                args.file.display()
            ),
        ),
        espflash::Error::ChipDetectError(m) if m.contains("0xfff0c101") => CliError::new(
            exit::INVALID,
            format!(
                "{port}: the connected chip is an esp8266, but {} is firmware for an {chip}: nothing was written",
                args.file.display()
            ),
        ),
        _ => device_error(port, "cannot connect to the bootloader (hold BOOT while pressing RESET, or check --before)", &e),
    })?;
    let info = flasher
        .device_info()
        .map_err(|e| device_error(port, "cannot read the chip's identity", &e))?;
    let mac = info.mac_address.clone();
    eprintln!(
        "connected: {}{}, MAC {}",
        info.chip,
        info.revision
            .map_or(String::new(), |(a, b)| format!(" (revision v{a}.{b})")),
        mac.as_deref().unwrap_or("unknown")
    );

    let table = if placement::route(fw).is_ok_and(|r| r.needs_table()) {
        let offset = args.partition_table_offset;
        let raw = read_flash(
            &mut flasher,
            use_stub,
            offset,
            partition_table::MAX_LEN as u32,
        )
        .map_err(|e| device_error(port, "cannot read the partition table from the device", &e))?;
        Some(device_table(&raw, offset, port)?)
    } else {
        None
    };
    let plan = placement::plan(fw, table.as_ref())
        .map_err(|e| CliError::new(exit::INVALID, format!("{}: {e}", args.file.display())))?;

    let data = fw.data();
    let segments: Vec<espflash::image_format::Segment<'_>> = plan
        .writes
        .iter()
        .map(|w| {
            let bytes = &data[w.start..w.start + w.len];
            let seg = if bytes.len().is_multiple_of(4) {
                Cow::Borrowed(bytes)
            } else {
                // The loader writes whole words; pad like espflash's write_bin_to_flash.
                let mut v = bytes.to_vec();
                v.resize(bytes.len().next_multiple_of(4), 0xFF);
                Cow::Owned(v)
            };
            espflash::image_format::Segment {
                addr: w.offset,
                data: seg,
            }
        })
        .chain(plan.erases.iter().map(|e| espflash::image_format::Segment {
            addr: e.offset,
            data: Cow::Owned(vec![0xFF; e.size as usize]),
        }))
        .collect();
    let labels = plan
        .writes
        .iter()
        .map(|w| (w.offset, w.what.clone()))
        .chain(
            plan.erases
                .iter()
                .map(|e| (e.offset, format!("{} (erase)", e.what))),
        )
        .collect();
    let mut progress = Progress::new(std::io::stderr().is_terminal(), labels);
    let t = Instant::now();
    flasher
        .write_bins_to_flash(&segments, &mut progress)
        .map_err(|e| match e {
            espflash::Error::VerifyFailed => CliError::new(
                exit::DEVICE,
                format!("{port}: the flash content does not match what was sent (MD5 check failed); run again, and if it persists the flash chip may be failing"),
            ),
            e => {
                let mut err = device_error(port, "writing the flash failed", &e);
                if err.message.contains("checksum") || err.message.contains("CRC") {
                    err.message.push_str(
                        " (a block arrived damaged: a noisy cable or too high a --baud; run again, or lower --baud)",
                    );
                }
                err
            }
        })?;
    let transfer = t.elapsed();
    drop(progress);
    Ok(Delivered {
        plan,
        mac,
        verified: !args.no_verify,
        tool: format!(
            "espflash {} ({})",
            ESPFLASH_VERSION,
            if use_stub { "stub" } else { "ROM loader" }
        ),
        transfer,
    })
}

/// The espflash release this was built against (Cargo.toml pins the minor version).
const ESPFLASH_VERSION: &str = "4.7";

/// The partition table read from the device at `offset`, or why it is unusable.
fn device_table(raw: &[u8], offset: u32, port: &str) -> CliResult<PartitionTable> {
    if !PartitionTable::is_at(raw, 0) {
        return Err(CliError::new(
            exit::INVALID,
            format!(
                "{port}: no partition table at {offset:#x} on the device (it reads {}): flash a merged image (bootloader, partition table and app) first, or give --partition-table-offset",
                checksum::hex_head(raw, 8)
            ),
        ));
    }
    let mut t = PartitionTable::parse(raw, 0).map_err(|e| {
        CliError::new(
            exit::INVALID,
            format!("{port}: the device's partition table at {offset:#x} is damaged: {e}"),
        )
    })?;
    if let Some(md5) = &t.md5
        && !md5.valid
    {
        return Err(CliError::new(
            exit::INVALID,
            format!(
                "{port}: the device's partition table at {offset:#x} fails its MD5 check; flash a merged image to repair it"
            ),
        ));
    }
    t.offset = offset as usize;
    Ok(t)
}

/// Reads `len` bytes of flash at `offset`: the stub's READ_FLASH (acknowledged
/// blocks, MD5 at the end) or the ROM's READ_FLASH_SLOW (64 bytes a command).
fn read_flash(
    flasher: &mut espflash::flasher::Flasher,
    use_stub: bool,
    offset: u32,
    len: u32,
) -> Result<Vec<u8>, espflash::Error> {
    use espflash::command::{Command, CommandType};
    const BLOCK: u32 = 0x1000;
    let conn = flasher.connection();
    let mut data = Vec::with_capacity(len as usize);
    if use_stub {
        conn.with_timeout(CommandType::ReadFlash.timeout(), |c| {
            c.command(Command::ReadFlash {
                offset,
                size: len,
                block_size: BLOCK,
                // One block in flight: every block is acknowledged before the next is sent.
                max_in_flight: 1,
            })
        })?;
        while data.len() < len as usize {
            let chunk: Vec<u8> = match conn.read_flash_response()? {
                Some(r) => r.value.try_into()?,
                None => return Err(espflash::Error::IncorrectResponse),
            };
            if chunk.is_empty() {
                return Err(espflash::Error::IncorrectResponse);
            }
            data.extend_from_slice(&chunk);
            if data.len() < len as usize && chunk.len() < BLOCK as usize {
                return Err(espflash::Error::CorruptData(BLOCK as usize, chunk.len()));
            }
            conn.write_raw(data.len() as u32)?;
        }
        if data.len() > len as usize {
            return Err(espflash::Error::ReadMoreThanExpected);
        }
        let digest: Vec<u8> = match conn.read_flash_response()? {
            Some(r) => r.value.try_into()?,
            None => return Err(espflash::Error::IncorrectResponse),
        };
        let ours = checksum::md5(&data);
        if digest != ours {
            return Err(espflash::Error::DigestMismatch(digest, ours.to_vec()));
        }
    } else {
        while data.len() < len as usize {
            let n = (len as usize - data.len()).min(64);
            let at = offset + data.len() as u32;
            let payload: Vec<u8> = conn
                .with_timeout(CommandType::ReadFlashSlow.timeout(), |c| {
                    c.command(Command::ReadFlashSlow {
                        offset: at,
                        size: n as u32,
                        block_size: 64,
                        max_in_flight: 1,
                    })
                })?
                .try_into()?;
            if payload.len() < n {
                return Err(espflash::Error::CorruptData(n, payload.len()));
            }
            data.extend_from_slice(&payload[..n]);
        }
    }
    Ok(data)
}

// ---------------------------------------------------------------------------
// ESP8266: esptool
// ---------------------------------------------------------------------------

fn flash_esp8266(
    args: &FlashArgs,
    fw: &Firmware<'_>,
    port: &str,
    tool: esptool::Esptool,
) -> CliResult<Delivered> {
    let plan = placement::plan(fw, None)
        .map_err(|e| CliError::new(exit::INVALID, format!("{}: {e}", args.file.display())))?;
    eprintln!("using {}", tool.describe());
    let data = fw.data();
    let w = &plan.writes[0];
    let image = esptool::ImageFile::new(&data[w.start..w.start + w.len])?;
    let mut a: Vec<OsString> = vec![
        "--chip".into(),
        "esp8266".into(),
        "--port".into(),
        port.into(),
        "--baud".into(),
        args.baud.to_string().into(),
        "--before".into(),
        tool.word(match args.before {
            Before::DefaultReset => "default-reset",
            Before::NoReset => "no-reset",
        })
        .into(),
        "--after".into(),
        tool.word(match args.after {
            After::HardReset => "hard-reset",
            After::NoReset => "no-reset",
        })
        .into(),
    ];
    if args.no_stub {
        a.push("--no-stub".into());
    }
    a.push(tool.word("write-flash").into());
    a.push(format!("{:#x}", w.offset).into());
    a.push(image.path.clone().into_os_string());

    let terminal = std::io::stderr().is_terminal();
    let mut progress = Progress::new(terminal, vec![(w.offset, w.what.clone())]);
    let mut started = false;
    let mut t0 = None;
    let limits = esptool::Limits {
        deadline: args
            .esptool_timeout
            .unwrap_or_else(|| esptool::default_deadline(w.len, args.baud)),
        deadline_from_flag: args.esptool_timeout.is_some(),
        stall: args.esptool_stall_timeout,
    };
    let outcome = esptool::run(&tool, &a, &limits, |line, o| {
        let pct = esptool::parse_line(line, o);
        if let Some(p) = pct {
            if !started {
                started = true;
                t0 = Some(Instant::now());
                progress.start(w.offset, 1000);
            }
            progress.step((p * 10.0) as usize);
        } else if !terminal && !line.trim().is_empty() {
            eprintln!("  esptool: {}", line.trim_end());
        }
    })?;
    if started {
        progress.done(false);
    }
    drop(progress);
    drop(image);
    if let Some((connected, _)) = &outcome.wrong_chip {
        return Err(CliError::new(
            exit::INVALID,
            format!(
                "{port}: the connected chip is an {}, but {} is firmware for an esp8266: nothing was written",
                connected.to_ascii_lowercase().replace('-', ""),
                args.file.display()
            ),
        ));
    }
    if !outcome.success {
        let why = outcome
            .errors
            .last()
            .cloned()
            .or_else(|| outcome.tail.last().cloned())
            .unwrap_or_else(|| "esptool failed without a message".into());
        return Err(CliError::new(
            exit::DEVICE,
            format!(
                "{port}: esptool could not write the flash: {why}{}",
                if why.contains("No serial data received")
                    || why.contains("Failed to connect")
                    || why.contains("Input/output error")
                    || why.contains("device reports readiness")
                {
                    " (check the cable and the port, and that the board is in its bootloader)"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(Delivered {
        plan,
        mac: outcome.mac,
        verified: outcome.verified,
        tool: tool.describe(),
        transfer: t0.map_or(Duration::ZERO, |t| t.elapsed()),
    })
}
