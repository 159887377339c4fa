//! `thinger-patch batch FIRMWARE`: one firmware, many devices, each with its own identity,
//! recorded in the provisioning ledger (`thinger-patch-ledger`). Identities come from a CSV or
//! are generated; each is reserved before anything is written and committed only once the
//! write is verified, so an interrupted run is completed by running it again and no identity
//! is ever handed to two devices. Either one personalised file per identity (`--out-dir`, for
//! a factory's own jig) or the boards on the given serial ports, one thread per port.

use crate::args::{LoadedConfig, PersonalizeArgs, SerialArgs};
use crate::cmd::thinger::provision::Registrar;
use crate::exit::{self, CliError};
use crate::{CliResult, fsio, outln};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use thinger_patch_core::placement::{self, Route};
use thinger_patch_core::values::{Assignment, Origin};
use thinger_patch_core::{Chip, Firmware, Request, checksum, personalize, slots};
use thinger_patch_delivery::serial::{FlashOptions, esp32, esp8266};
use thinger_patch_ledger::{
    Board, Credential, CsvInput, FirmwareInfo, Generator, IdentitySource, Job, JobSpec, KeySource,
    Ledger, Location, Mac, Reservation, ReservationKind, ReserveOptions, SlotSpec, Target, Written,
};

/// The ledger key's environment variable (CI, scripts).
pub const LEDGER_KEY_ENV: &str = "THINGER_PATCH_LEDGER_KEY";
/// The ledger's file name when `--ledger` is not given: beside the config file, else here.
pub const LEDGER_FILE: &str = "thinger-patch.db";

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// Firmware to personalise for every device: app image, merged image, Arduino ESP8266 image, .bin.gz
    pub file: PathBuf,
    #[command(flatten)]
    pub personalize: PersonalizeArgs,
    /// Identities planned in a CSV: a header row of slot keys, one device per row, used in order
    #[arg(long, value_name = "CSV", conflicts_with = "generate")]
    pub devices: Option<PathBuf>,
    /// Generate up to N identities (device ids from --device-id, credentials from the system's CSPRNG)
    #[arg(long, value_name = "N", requires = "device_id")]
    pub generate: Option<u64>,
    /// Device id template for --generate: {n}, {n:04} (a counter), {mac} (the board's MAC, ports only)
    #[arg(long, value_name = "TEMPLATE")]
    pub device_id: Option<String>,
    /// First {n} of --generate
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub start: u64,
    /// The provisioning ledger [default: thinger-patch.db beside the config file, else here]; key from THINGER_PATCH_LEDGER_KEY or asked
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<PathBuf>,
    /// Write one personalised image per identity into DIR (file names hold the device id) instead of flashing
    #[arg(long, value_name = "DIR", conflicts_with = "ports")]
    pub out_dir: Option<PathBuf>,
    /// Serial port of a board to flash (repeat: one thread per port); ESP32 family
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<String>,
    /// Flash the boards on the given ports once, then stop (required with --port)
    #[arg(long)]
    pub once: bool,
    /// Without --port or --out-dir, boards are flashed as they are plugged in: watch these
    /// paths (a pattern with * and ?, e.g. '/dev/ttyUSB*') [default: the ESP serial ports the
    /// system lists]
    #[arg(long, value_name = "PATTERN", conflicts_with_all = ["ports", "out_dir"])]
    pub watch: Option<String>,
    /// Watching: boards flashed at the same time (1 to 64)
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
    /// Give a board seen before a new identity instead of its own again
    #[arg(long)]
    pub new_identity: bool,
    #[command(flatten)]
    pub serial: SerialArgs,
    /// Print a JSON summary (secret values never appear)
    #[arg(long)]
    pub json: bool,
    /// Register each device on the Thinger.io account as it is written (deleted again if the
    /// write fails); the account's user goes into thinger_user unless a value gives one
    #[arg(long)]
    pub thinger_create: bool,
    #[command(flatten)]
    pub server: crate::cmd::thinger::ServerArgs,
}

/// One device of the run, as the summary shows it.
#[derive(Debug, Serialize)]
struct Outcome {
    device: String,
    /// `written`, `flashed`, `already done`, `failed`.
    result: String,
    /// The file or the port.
    location: String,
    mac: Option<String>,
    sha256: Option<String>,
    reason: Option<String>,
}

pub fn run(args: &BatchArgs) -> CliResult {
    if !args.ports.is_empty() && !args.once {
        return Err(CliError::new(
            exit::USAGE,
            "--port PORT (repeat) flashes the boards on those ports: add --once; or leave --port out to flash boards as they are plugged in",
        ));
    }
    if args.devices.is_none() && args.generate.is_none() {
        return Err(CliError::new(
            exit::USAGE,
            "say where identities come from: --devices devices.csv, or --generate N --device-id 'bar-{n:04}'",
        ));
    }
    let runs = args.personalize.profile_runs();
    if runs.len() > 1 {
        return Err(CliError::new(
            exit::USAGE,
            "batch takes at most one --profile: its values go to every device",
        ));
    }
    let profile = runs.into_iter().next().flatten();
    let input = fsio::read(&args.file)?;
    let mut warnings = Vec::new();
    let config = args.personalize.load_config(&mut warnings)?;
    crate::print_warnings(&warnings);
    let mut request = args
        .personalize
        .request(config.as_ref(), profile.as_deref())?;
    let registrar = match args.thinger_create {
        true => Some(Registrar::new(&args.server, config.as_ref())?),
        false => None,
    };
    if let Some(reg) = &registrar
        && !request.values.iter().any(|a| a.key == "thinger_user")
    {
        request.values.push(Assignment::new(
            "thinger_user",
            reg.user(),
            Origin::Provisioned {
                by: "the Thinger.io account".into(),
            },
        ));
    }
    let spec = job_spec(args, &input, &request)?;
    if registrar.is_some() {
        for key in ["thinger_device", "thinger_credentials"] {
            if !spec.slots.iter().any(|s| s.key == key) {
                return Err(CliError::new(
                    exit::INVALID,
                    format!(
                        "{}: --thinger-create needs a {key} slot in the firmware, to write the device's identity into",
                        args.file.display()
                    ),
                ));
            }
        }
    }
    let registrar = registrar.as_ref();
    let ledger = open_ledger(args.ledger.as_deref(), config.as_ref(), true)?;
    let job = ledger.plan(&spec).map_err(ledger_error)?;
    let outcomes = match &args.out_dir {
        Some(dir) => to_files(args, &ledger, &job, &input, &request, dir, registrar)?,
        None => to_boards(args, &ledger, &job, &input, &request, registrar)?,
    };
    let status = ledger.job_status(&job).map_err(ledger_error)?;
    if args.json {
        let doc = serde_json::json!({
            "firmware": args.file.display().to_string(),
            "ledger": ledger.path().display().to_string(),
            "job": job.name(),
            "devices": outcomes,
            "remaining": status.remaining,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("summary serialises")
        );
    } else {
        for o in &outcomes {
            let extra = o
                .reason
                .as_deref()
                .map_or(String::new(), |r| format!("  ({r})"));
            outln!("  {:<24} {:<13} {}{extra}", o.device, o.result, o.location);
        }
        outln!(
            "{} device(s) this run; {} identit{} left; ledger {}",
            outcomes.len(),
            status.remaining,
            if status.remaining == 1 { "y" } else { "ies" },
            ledger.path().display()
        );
    }
    let failed = outcomes.iter().any(|o| o.result == "failed");
    Ok(if STOP.load(Ordering::SeqCst) {
        exit::INTERRUPTED
    } else if failed {
        exit::DEVICE
    } else {
        exit::OK
    })
}

/// The job as the ledger records it: the firmware's slots, where identities come from, the
/// profile's values for every device, a stable name so that a re-run completes the job.
fn job_spec(args: &BatchArgs, input: &[u8], request: &Request) -> CliResult<JobSpec> {
    let listing =
        slots(input, &request.list_options()).map_err(|e| CliError::engine(&args.file, &e))?;
    if !listing.report.valid {
        return Err(CliError::new(
            exit::INVALID,
            format!(
                "{}: not valid, so nothing is personalised ({})",
                args.file.display(),
                listing.report.summary_of_problems()
            ),
        ));
    }
    if listing.slots.is_empty() {
        return Err(CliError::new(
            exit::INVALID,
            format!(
                "{}: it declares no slot and holds no known placeholder: there is nothing to personalise per device",
                args.file.display()
            ),
        ));
    }
    let slot_specs: Vec<SlotSpec> = listing
        .slots
        .iter()
        .map(|s| SlotSpec {
            key: s.key.clone(),
            capacity: s.capacity,
            secret: s.secret,
            required: s.required,
        })
        .collect();
    let file_name = args
        .file
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let (source, from) = match (&args.devices, &args.generate) {
        (Some(csv), _) => {
            let text = String::from_utf8(fsio::read(csv)?).map_err(|_| {
                CliError::new(
                    exit::INVALID,
                    format!("{}: not UTF-8 text; save the CSV as UTF-8", csv.display()),
                )
            })?;
            let name = csv.display().to_string();
            (
                IdentitySource::Csv(CsvInput {
                    name: name.clone(),
                    text,
                }),
                name,
            )
        }
        (None, Some(n)) => {
            let template = args.device_id.clone().unwrap_or_default();
            (
                IdentitySource::Generate(Generator {
                    template: template.clone(),
                    vars: Default::default(),
                    start: args.start,
                    count: *n,
                }),
                format!("{template} from {}", args.start),
            )
        }
        (None, None) => unreachable!("checked in run"),
    };
    let mut spec = JobSpec::new(format!("{file_name} {from}"), slot_specs, source);
    spec.profile = request
        .values
        .iter()
        .map(|a| (a.key.clone(), a.value.clone()))
        .collect();
    if listing.slots.iter().any(|s| s.key == "thinger_credentials") {
        // Drawn per device where the CSV has no such column (the ledger decides).
        spec.credentials = vec![Credential::new("thinger_credentials")];
    }
    let version = listing
        .slots
        .iter()
        .find(|s| crate::cmd::thinger::provision::VERSION_KEYS.contains(&s.key.as_str()))
        .map(|s| s.value.clone())
        .unwrap_or_default();
    spec.firmware = FirmwareInfo {
        name: file_name,
        version,
    };
    spec.target = if args.out_dir.is_some() {
        Target::Files
    } else {
        Target::Boards
    };
    Ok(spec)
}

/// Opens (or, when `create`, creates) the ledger: `--ledger`, else `thinger-patch.db` beside
/// the config file, else in the current folder. The key comes from THINGER_PATCH_LEDGER_KEY,
/// else a passphrase asked on the terminal.
pub fn open_ledger(
    path: Option<&Path>,
    config: Option<&LoadedConfig>,
    create: bool,
) -> CliResult<Ledger> {
    let path = ledger_path(path, config);
    if !create && !path.exists() {
        return Err(CliError::new(
            exit::INVALID,
            format!(
                "{}: no ledger here; name it with --ledger FILE (a batch run creates one)",
                path.display()
            ),
        ));
    }
    let key = match std::env::var(LEDGER_KEY_ENV) {
        Ok(k) if !k.is_empty() => KeySource::Env(k),
        _ if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() => {
            let p = rpassword::prompt_password(format!(
                "Passphrase of the ledger {}: ",
                path.display()
            ))
            .map_err(|e| CliError::new(exit::IO, format!("cannot read the passphrase: {e}")))?;
            KeySource::Passphrase(p)
        }
        _ => {
            return Err(CliError::new(
                exit::USAGE,
                format!(
                    "{}: the ledger keeps secrets encrypted; give its key in {LEDGER_KEY_ENV}, or run on a terminal to be asked for the passphrase",
                    path.display()
                ),
            ));
        }
    };
    Ledger::open(&path, key).map_err(ledger_error)
}

/// Where the ledger is.
pub fn ledger_path(path: Option<&Path>, config: Option<&LoadedConfig>) -> PathBuf {
    match (path, config) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(c)) => c.path.with_file_name(LEDGER_FILE),
        (None, None) => PathBuf::from(LEDGER_FILE),
    }
}

pub fn ledger_error(e: thinger_patch_ledger::Error) -> CliError {
    CliError::new(exit::INVALID, e.to_string())
}

/// Registers the reservation's device on the account with its credentials.
fn register(reg: &Registrar, r: &Reservation<'_>) -> Result<bool, String> {
    let credentials = r
        .value("thinger_credentials")
        .ok_or("the identity has no thinger_credentials to register the device with")?;
    let ours = r.kind() != ReservationKind::New;
    reg.register(r.device(), credentials.expose(), ours)
}

/// The reservation's values as a request for the engine (in memory, never on a command line).
fn request_for(r: &Reservation<'_>, base: &Request) -> Request {
    Request {
        values: r
            .values()
            .iter()
            .map(|(k, v)| Assignment::new(k.clone(), v.expose(), Origin::Form))
            .collect(),
        placeholders: base.placeholders.clone(),
        pad: base.pad,
        allow_missing: true,
        parse: base.parse,
        conventions: base.conventions,
    }
}

/// `--out-dir`: one verified image per identity, committed as it is written.
fn to_files(
    args: &BatchArgs,
    ledger: &Ledger,
    job: &Job,
    input: &[u8],
    request: &Request,
    dir: &Path,
    registrar: Option<&Registrar>,
) -> CliResult<Vec<Outcome>> {
    std::fs::create_dir_all(dir).map_err(|e| {
        CliError::new(
            exit::IO,
            format!("{}: cannot create the folder: {e}", dir.display()),
        )
    })?;
    let run = std::fs::canonicalize(dir)
        .unwrap_or_else(|_| dir.to_path_buf())
        .display()
        .to_string();
    let mut outcomes = Vec::new();
    let mut n = 0u32;
    loop {
        if ledger.job_status(job).map_err(ledger_error)?.remaining == 0 {
            break;
        }
        n += 1;
        let board = Board::Slot {
            run: run.clone(),
            n,
        };
        if let Some(done) = ledger.bound(&board).map_err(ledger_error)?
            && done.state == thinger_patch_ledger::State::Verified
        {
            continue;
        }
        let r = ledger
            .reserve(
                job,
                &board,
                ReserveOptions {
                    new_identity: args.new_identity,
                },
            )
            .map_err(ledger_error)?;
        let device = r.device().to_string();
        let done = personalize(input, &request_for(&r, request)).map_err(|e| {
            CliError::new(
                exit::INVALID,
                format!(
                    "{} for {device}: {}",
                    args.file.display(),
                    crate::messages::error(&e)
                ),
            )
        })?;
        let out = dir.join(
            crate::cmd::patch::default_output(&args.file, &device)
                .file_name()
                .unwrap_or_default(),
        );
        let created = match registrar {
            Some(reg) => match register(reg, &r) {
                Ok(c) => c,
                Err(reason) => {
                    let _ = r.fail(&reason);
                    return Err(CliError::new(exit::DEVICE, format!("{device}: {reason}")));
                }
            },
            None => false,
        };
        if let Err(e) = fsio::write_atomic(&out, &done.bytes, done.holds_secrets()) {
            let note = match (registrar, created) {
                (Some(reg), true) => reg.unregister(&device),
                _ => String::new(),
            };
            let _ = r.fail(&e.message);
            return Err(if note.is_empty() {
                e
            } else {
                e.with_note(&note)
            });
        }
        let sha = checksum::sha256(&done.bytes);
        r.commit(&Written {
            sha256: sha,
            location: Location::File(out.display().to_string()),
        })
        .map_err(ledger_error)?;
        outcomes.push(Outcome {
            device,
            result: "written".into(),
            location: out.display().to_string(),
            mac: None,
            sha256: Some(checksum::hex(&sha)),
            reason: None,
        });
    }
    Ok(outcomes)
}

/// `--port ... --once`: every port on its own thread: connect, read the MAC, reserve that
/// board's identity, personalise in memory, write and verify, commit (or record the failure,
/// which puts the identity back in the pool).
fn to_boards(
    args: &BatchArgs,
    ledger: &Ledger,
    job: &Job,
    input: &[u8],
    request: &Request,
    registrar: Option<&Registrar>,
) -> CliResult<Vec<Outcome>> {
    let fw = Firmware::parse_with(input, request.parse.unwrap_or_default())
        .map_err(|e| CliError::engine(&args.file, &e))?;
    let mut tool = None;
    let link = link(&fw, &args.file, &mut tool)?;
    let options = args.serial.options();
    let bars = MultiProgress::new();
    if !std::io::stderr().is_terminal() {
        bars.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let outcomes = Mutex::new(Vec::new());
    let board = |port: &str| {
        let bar = PortBar::new(&bars, port);
        let o = one_board(
            args, ledger, job, input, request, link, port, &options, bar, registrar,
        );
        if !std::io::stderr().is_terminal() {
            let why = o
                .reason
                .as_deref()
                .map_or(String::new(), |r| format!(" ({r})"));
            eprintln!("{port}: {} {}{why}", o.device, o.result);
        }
        outcomes.lock().unwrap_or_else(|p| p.into_inner()).push(o);
    };
    on_ctrl_c();
    if args.once {
        std::thread::scope(|s| {
            for port in &args.ports {
                s.spawn(|| board(port));
            }
        });
    } else {
        watch(args, ledger, job, &board)?;
    }
    let mut v = outcomes.into_inner().unwrap_or_else(|p| p.into_inner());
    v.sort_by(|a, b| a.location.cmp(&b.location));
    Ok(v)
}

#[allow(clippy::too_many_arguments)]
fn one_board(
    args: &BatchArgs,
    ledger: &Ledger,
    job: &Job,
    input: &[u8],
    request: &Request,
    link: Link<'_>,
    port: &str,
    options: &FlashOptions,
    mut bar: PortBar,
    registrar: Option<&Registrar>,
) -> Outcome {
    let failed = |device: &str, mac: Option<String>, reason: String| Outcome {
        device: device.to_string(),
        result: "failed".into(),
        location: port.to_string(),
        mac,
        sha256: None,
        reason: Some(reason),
    };
    use thinger_patch_delivery::Progress as _;
    bar.status("connecting ...");
    let (writer, board) = match identify(link, port, options) {
        Ok(x) => x,
        Err(e) => return failed("-", None, e),
    };
    let mac_text = board.mac_address().map(|m| m.to_string());
    let mut r = match ledger.reserve(
        job,
        &board,
        ReserveOptions {
            new_identity: args.new_identity,
        },
    ) {
        Ok(r) => r,
        Err(e) => return failed("-", mac_text, e.to_string()),
    };
    let device = r.device().to_string();
    bar.status(&format!("{device}: personalising"));
    let done = match personalize(input, &request_for(&r, request)) {
        Ok(d) => d,
        Err(e) => {
            let reason = crate::messages::error(&e);
            let _ = r.fail(&reason);
            return failed(&device, mac_text, reason);
        }
    };
    let fw = match Firmware::parse(&done.bytes) {
        Ok(fw) => fw,
        Err(e) => {
            let _ = r.fail(&e.to_string());
            return failed(&device, mac_text, e.to_string());
        }
    };
    let sha = checksum::sha256(&done.bytes);
    let created = match registrar.map(|reg| register(reg, &r)) {
        Some(Ok(c)) => c,
        Some(Err(reason)) => {
            let _ = r.fail(&reason);
            return failed(&device, mac_text, reason);
        }
        None => false,
    };
    match writer.write(&fw, port, options, &mut bar) {
        Ok(flashed) => {
            let written = Written {
                sha256: sha,
                location: Location::Port(port.to_string()),
            };
            let committed = if flashed.verified {
                r.mark_flashed(&written).and_then(|()| r.mark_verified())
            } else {
                r.mark_flashed(&written)
            };
            bar.done(&format!("{device}: flashed"));
            match committed {
                Ok(()) => Outcome {
                    device,
                    result: if flashed.verified {
                        "flashed".into()
                    } else {
                        "unverified".into()
                    },
                    location: port.to_string(),
                    mac: mac_text,
                    sha256: Some(checksum::hex(&sha)),
                    reason: None,
                },
                Err(e) => failed(&device, mac_text, e.to_string()),
            }
        }
        Err(e) => {
            let mut reason = CliError::from(e).message;
            if let (Some(reg), true) = (registrar, created) {
                reason = format!("{reason}; {}", reg.unregister(&device));
            }
            let _ = r.fail(&reason);
            bar.done(&format!("{device}: failed"));
            failed(&device, mac_text, reason)
        }
    }
}

/// How the boards of this firmware are reached.
#[derive(Clone, Copy)]
pub(crate) enum Link<'a> {
    /// espflash's library, in-process.
    Esp32(Chip),
    /// esptool, one process per step.
    Esp8266(&'a thinger_patch_delivery::serial::esptool::Esptool),
}

/// What writes the board once its identity is chosen.
pub(crate) enum Writer<'a> {
    /// The connection the MAC was read on.
    Session(Box<esp32::Session>, Chip),
    Esptool(&'a thinger_patch_delivery::serial::esptool::Esptool),
}

impl Writer<'_> {
    /// Writes `fw` (personalised for the board) and verifies it.
    pub(crate) fn write(
        self,
        fw: &Firmware<'_>,
        port: &str,
        options: &FlashOptions,
        progress: &mut dyn thinger_patch_delivery::Progress,
    ) -> thinger_patch_delivery::Result<thinger_patch_delivery::serial::Flashed> {
        match self {
            Writer::Session(session, chip) => session.write(fw, chip, progress),
            Writer::Esptool(tool) => esp8266::flash(fw, port, options, tool, progress),
        }
    }
}

/// The loader for `fw`'s chip; for the ESP8266, esptool is found now (into `tool`), before any
/// board is touched, so that a missing esptool is one message, not one per board.
pub(crate) fn link<'a>(
    fw: &Firmware<'_>,
    file: &Path,
    tool: &'a mut Option<thinger_patch_delivery::serial::esptool::Esptool>,
) -> CliResult<Link<'a>> {
    match placement::route(fw) {
        Ok(Route::Esp32 { chip, .. }) => Ok(Link::Esp32(chip)),
        Ok(Route::Esp8266) => Ok(Link::Esp8266(
            tool.insert(thinger_patch_delivery::serial::esptool::find()?),
        )),
        Err(e) => Err(CliError::new(
            exit::INVALID,
            format!("{}: {e}", file.display()),
        )),
    }
}

/// The board on `port`, identified before anything is written: one connection for the ESP32
/// family (kept for the write), esptool's read-mac for the ESP8266.
pub(crate) fn identify<'a>(
    link: Link<'a>,
    port: &str,
    options: &FlashOptions,
) -> Result<(Writer<'a>, Board), String> {
    let (writer, mac, chip) = match link {
        Link::Esp32(chip) => {
            let s =
                esp32::connect(port, Some(chip), options).map_err(|e| CliError::from(e).message)?;
            let (mac, name) = (s.board.mac.clone(), s.board.chip.clone());
            (Writer::Session(Box::new(s), chip), mac, name)
        }
        Link::Esp8266(tool) => {
            let mac =
                esp8266::read_mac(port, options, tool).map_err(|e| CliError::from(e).message)?;
            (Writer::Esptool(tool), Some(mac), "esp8266".to_string())
        }
    };
    let mac = mac
        .as_deref()
        .and_then(|m| m.parse::<Mac>().ok())
        .ok_or_else(|| format!("{port}: the board's MAC could not be read"))?;
    Ok((
        writer,
        Board::Mac {
            mac,
            chip: Some(chip),
        },
    ))
}

/// Set by Ctrl-C: no new board is started; the ones being flashed finish.
static STOP: AtomicBool = AtomicBool::new(false);

/// First Ctrl-C: stop taking boards, let those in flight finish (their identities are then
/// committed or back in the pool). Second: leave now; an identity in flight stays reserved for
/// its board and is resumed when that board is flashed again.
fn on_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        if STOP.swap(true, Ordering::SeqCst) {
            eprintln!(
                "\nabandoned: the boards in flight keep their reserved identities, resumed when they are plugged in again"
            );
            std::process::exit(exit::INTERRUPTED);
        }
        eprintln!(
            "\nstopping: no new board; the boards being flashed finish (Ctrl-C again to abandon them)"
        );
    });
}

/// Flashes boards as they appear: every new port gets a thread (at most `--jobs`); a port that
/// was flashed must disappear (the board unplugged) before it is taken again. Ends when the
/// job has no identity left and no board is in flight, or after Ctrl-C.
fn watch(
    args: &BatchArgs,
    ledger: &Ledger,
    job: &Job,
    board: &(dyn Fn(&str) + Sync),
) -> CliResult<()> {
    let (done_tx, done_rx) = std::sync::mpsc::channel::<String>();
    eprintln!(
        "watching {} for boards; plug them in one after another (Ctrl-C to stop)",
        args.watch.as_deref().unwrap_or("the ESP serial ports")
    );
    std::thread::scope(|s| {
        let mut busy: BTreeSet<String> = BTreeSet::new();
        let mut flashed: BTreeSet<String> = BTreeSet::new();
        loop {
            while let Ok(p) = done_rx.try_recv() {
                busy.remove(&p);
                flashed.insert(p);
            }
            let remaining = ledger.job_status(job).map_err(ledger_error)?.remaining;
            if busy.is_empty() && (STOP.load(Ordering::SeqCst) || remaining == 0) {
                return Ok(());
            }
            let present = candidates(args.watch.as_deref());
            flashed.retain(|p| present.contains(p));
            if !STOP.load(Ordering::SeqCst) {
                let mut room = remaining.saturating_sub(busy.len());
                for port in present {
                    if room == 0 || busy.len() >= args.jobs as usize {
                        break;
                    }
                    if busy.contains(&port) || flashed.contains(&port) {
                        continue;
                    }
                    room -= 1;
                    busy.insert(port.clone());
                    let tx = done_tx.clone();
                    s.spawn(move || {
                        board(&port);
                        let _ = tx.send(port);
                    });
                }
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
        }
    })
}

/// The ports to watch: the paths matching `pattern`, or the system's likely ESP ports.
fn candidates(pattern: Option<&str>) -> BTreeSet<String> {
    use thinger_patch_delivery::serial::port;
    let Some(pattern) = pattern else {
        return port::system_ports()
            .into_iter()
            .filter(port::likely_esp)
            .map(|p| p.name)
            .collect();
    };
    let (dir, name) = match pattern.rsplit_once('/') {
        Some(("", n)) => ("/", n),
        Some((d, n)) => (d, n),
        None => (".", pattern),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeSet::new();
    };
    entries
        .flatten()
        .filter(|e| wildcard(name.as_bytes(), e.file_name().as_encoded_bytes()))
        // A dangling link is a board that was unplugged.
        .filter(|e| e.path().exists())
        .map(|e| e.path().display().to_string())
        .collect()
}

/// `*` (any run) and `?` (one byte) in a file name.
fn wildcard(p: &[u8], s: &[u8]) -> bool {
    match (p.first(), s.first()) {
        (None, None) => true,
        (Some(b'*'), _) => wildcard(&p[1..], s) || (!s.is_empty() && wildcard(p, &s[1..])),
        (Some(b'?'), Some(_)) => wildcard(&p[1..], &s[1..]),
        (Some(a), Some(b)) if a == b => wildcard(&p[1..], &s[1..]),
        _ => false,
    }
}

/// One port's line in the MultiProgress.
struct PortBar {
    bar: ProgressBar,
    port: String,
}

impl PortBar {
    fn new(bars: &MultiProgress, port: &str) -> PortBar {
        let bar = bars.add(ProgressBar::new(1));
        bar.set_style(
            ProgressStyle::with_template("{prefix:<14} {msg:<36} [{bar:24}] {percent:>3}%")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        bar.set_prefix(port.to_string());
        PortBar {
            bar,
            port: port.to_string(),
        }
    }

    fn done(&mut self, text: &str) {
        self.bar.set_message(text.to_string());
        self.bar.finish();
    }
}

impl thinger_patch_delivery::Progress for PortBar {
    fn start(&mut self, what: &str, total: u64) {
        self.bar.set_length(total.max(1));
        self.bar.set_position(0);
        self.bar.set_message(format!("writing {what}"));
    }
    fn advance(&mut self, done: u64) {
        self.bar.set_position(done);
    }
    fn finish(&mut self, _skipped: bool) {}
    fn status(&mut self, text: &str) {
        let _ = &self.port;
        self.bar.set_message(text.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards_match_file_names() {
        assert!(wildcard(b"ttyUSB*", b"ttyUSB0"));
        assert!(wildcard(b"ttyUSB*", b"ttyUSB"));
        assert!(wildcard(b"tty??M0", b"ttyACM0"));
        assert!(!wildcard(b"ttyUSB*", b"ttyACM0"));
        assert!(wildcard(b"*", b"x"));
        assert!(!wildcard(b"a?", b"a"));
    }
}
