//! `thinger-patch fleet update FIRMWARE`: a new build for every device of the provisioning
//! ledger, each personalised in memory with ITS identity from the ledger (decrypted with the
//! ledger's key), delivered through the Thinger.io cloud (`$ota` resources) or by ArduinoOTA on
//! the local network, several devices at a time, each attempt recorded in the ledger (the new
//! build stays `pending` until the device reports it runs it). Offline devices are reported and
//! reached by the next run.

use super::batch::{ledger_error, open_ledger};
use super::thinger::{ServerArgs, client, cloud_error, settings};
use crate::args::{LoadedConfig, PersonalizeArgs};
use crate::exit::{self, CliError};
use crate::{CliResult, fsio, outln};
use clap::{Args, Subcommand, ValueEnum};
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use thinger_patch_core::ota as proto;
use thinger_patch_core::values::{Assignment, Origin};
use thinger_patch_core::{Request, checksum};
use thinger_patch_delivery::ota::{self as lan, arduino};
use thinger_patch_ledger::{Delivery, Filter, FirmwareInfo, Ledger, Method, Outcome, State};

#[derive(Debug, Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub action: FleetAction,
}

#[derive(Debug, Subcommand)]
pub enum FleetAction {
    /// Deliver a new build to the ledger's devices, each with its own identity patched in
    Update(UpdateArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Via {
    /// The Thinger.io cloud: the devices' $ota resources (devices anywhere, online on the account)
    Cloud,
    /// ArduinoOTA on the local network (the address recorded, or --address)
    Lan,
    /// Boards plugged in on --port: each board's MAC finds its identity in the ledger
    Serial,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The new build: app image, merged image (its app is sent), Arduino ESP8266 image
    pub file: PathBuf,
    /// Values for every device besides its identity (e.g. the WiFi of a new site)
    #[command(flatten)]
    pub personalize: PersonalizeArgs,
    /// The provisioning ledger [default: thinger-patch.db beside the config file, else here]; key from THINGER_PATCH_LEDGER_KEY or asked
    #[arg(long, value_name = "FILE")]
    pub ledger: Option<PathBuf>,
    /// Which devices: device=ID, job=NAME, mac=MAC (repeat to narrow) [default: every device in service]
    #[arg(long = "where", value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// How to reach them
    #[arg(long, value_enum, default_value_t = Via::Cloud)]
    pub via: Via,
    /// LAN: a device's address, HOST or HOST:PORT (repeat); recorded in the ledger once it answers
    #[arg(long = "address", value_name = "DEVICE=HOST")]
    pub addresses: Vec<String>,
    /// Serial: a port with a board of the fleet plugged in (repeat: one thread per port)
    #[arg(long = "port", value_name = "PORT")]
    pub ports: Vec<String>,
    #[command(flatten)]
    pub serial: crate::args::SerialArgs,
    /// LAN: read the devices' OTA password from this environment variable
    #[arg(long, value_name = "VAR")]
    pub password_env: Option<String>,
    /// Devices updated at the same time (1 to 64)
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub jobs: u32,
    /// Further attempts for a device that failed or did not answer (0 to 10)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=10))]
    pub retries: u32,
    /// Send even to devices that report the same version
    #[arg(long)]
    pub force: bool,
    /// The build's version [default: its fw.version slot]
    #[arg(long, value_name = "V")]
    pub fw_version: Option<String>,
    /// LAN: seconds to wait for each answer (0.1 to 86400)
    #[arg(long, value_name = "S", default_value = "10", value_parser = super::ota::parse_seconds, allow_negative_numbers = true)]
    pub timeout: Duration,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Print a JSON report (secrets never appear)
    #[arg(long)]
    pub json: bool,
}

/// One device's result.
#[derive(Debug, Serialize)]
struct Report {
    device: String,
    /// `updated`, `already_current`, `offline`, `failed`.
    result: &'static str,
    address: Option<String>,
    sha256: Option<String>,
    attempts: u32,
    reason: Option<String>,
}

pub fn run(args: &FleetArgs) -> CliResult {
    match &args.action {
        FleetAction::Update(u) => update(u),
    }
}

fn update(args: &UpdateArgs) -> CliResult {
    let runs = args.personalize.profile_runs();
    if runs.len() > 1 {
        return Err(CliError::new(
            exit::USAGE,
            "fleet update takes at most one --profile: its values go to every device",
        ));
    }
    let profile = runs.into_iter().next().flatten();
    let filter = parse_filter(&args.filter)?;
    let addresses = parse_addresses(&args.addresses)?;
    let input = fsio::read(&args.file)?;
    let mut warnings = Vec::new();
    let config = args.personalize.load_config(&mut warnings)?;
    crate::print_warnings(&warnings);
    let base = args
        .personalize
        .request(config.as_ref(), profile.as_deref())?;
    let ledger = open_ledger(args.ledger.as_deref(), config.as_ref(), false)?;
    if args.via == Via::Serial {
        return by_serial(args, &ledger, &input, &base);
    }
    let devices: Vec<String> = ledger
        .devices(&filter, false)
        .map_err(ledger_error)?
        .into_iter()
        .filter(|d| d.first_verified_at.is_some() && d.state != State::Retired)
        .map(|d| d.device)
        .collect();
    if devices.is_empty() {
        return Err(CliError::new(
            exit::INVALID,
            format!(
                "{}: no device in service matches; a device is in service once a batch run verified it",
                ledger.path().display()
            ),
        ));
    }
    // Every device's image is made and checked before the first is sent.
    let mut images = Vec::new();
    for device in &devices {
        images.push(image_for(args, &ledger, device, &input, &base)?.0);
    }
    let reach = Reach::new(args, config.as_ref())?;
    let queue = Mutex::new(images.into_iter().collect::<Vec<_>>());
    let reports = Mutex::new(Vec::new());
    let records = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..args.jobs.min(devices.len() as u32) {
            s.spawn(|| {
                loop {
                    let Some(image) = queue.lock().unwrap_or_else(|p| p.into_inner()).pop() else {
                        break;
                    };
                    let address = addresses
                        .iter()
                        .find(|(d, _)| *d == image.device)
                        .map(|(_, a)| a.clone())
                        .or_else(|| image.address.clone());
                    let (report, delivery) = deliver(args, &reach, &image, address);
                    if !args.json {
                        eprintln!(
                            "{}: {}{}",
                            report.device,
                            report.result,
                            report
                                .reason
                                .as_deref()
                                .map_or(String::new(), |r| format!(" ({r})"))
                        );
                    }
                    records.lock().unwrap_or_else(|p| p.into_inner()).push((
                        image.device.clone(),
                        image.version.clone(),
                        delivery,
                    ));
                    reports
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push(report);
                }
            });
        }
    });
    finish(
        args,
        &ledger,
        records.into_inner().unwrap_or_else(|p| p.into_inner()),
        reports.into_inner().unwrap_or_else(|p| p.into_inner()),
    )
}

/// Records the deliveries (from one thread, in the order they finished) and prints the report.
fn finish(
    args: &UpdateArgs,
    ledger: &Ledger,
    records: Vec<(String, String, Delivery)>,
    mut reports: Vec<Report>,
) -> CliResult {
    for (device, version, delivery) in records {
        ledger
            .record_delivery(&device, &delivery)
            .map_err(ledger_error)?;
        // A board written over serial was verified and restarts into the build: it runs it.
        if delivery.outcome == Outcome::AlreadyCurrent
            || (delivery.method == Method::Serial && delivery.outcome == Outcome::Updated)
        {
            ledger.confirm(&device, &version).map_err(ledger_error)?;
        }
    }
    reports.sort_by(|a, b| a.device.cmp(&b.device));
    let count = |r: &str| reports.iter().filter(|x| x.result == r).count();
    if args.json {
        let doc = serde_json::json!({
            "firmware": args.file.display().to_string(),
            "ledger": ledger.path().display().to_string(),
            "via": match args.via { Via::Cloud => "cloud", Via::Lan => "lan", Via::Serial => "serial" },
            "devices": reports,
        });
        outln!(
            "{}",
            serde_json::to_string_pretty(&doc).expect("report serialises")
        );
    } else {
        for r in &reports {
            outln!(
                "  {:<24} {:<16} {}{}",
                r.device,
                r.result,
                r.address.as_deref().unwrap_or(""),
                r.reason
                    .as_deref()
                    .map_or(String::new(), |x| format!("  ({x})"))
            );
        }
        outln!(
            "{} updated, {} already current, {} offline, {} failed; ledger {}",
            count("updated"),
            count("already_current"),
            count("offline"),
            count("failed"),
            ledger.path().display()
        );
    }
    Ok(if count("offline") + count("failed") > 0 {
        exit::DEVICE
    } else {
        exit::OK
    })
}

/// `--via serial`: every port's board is identified by its MAC, gets its own identity from
/// the ledger in the new build, and is written and verified.
fn by_serial(args: &UpdateArgs, ledger: &Ledger, input: &[u8], base: &Request) -> CliResult {
    if args.ports.is_empty() {
        return Err(CliError::new(
            exit::USAGE,
            "--via serial updates the boards plugged in: name their ports with --port PORT (repeat)",
        ));
    }
    let fw = thinger_patch_core::Firmware::parse_with(input, base.parse.unwrap_or_default())
        .map_err(|e| CliError::engine(&args.file, &e))?;
    let mut tool = None;
    let link = super::batch::link(&fw, &args.file, &mut tool)?;
    let options = args.serial.options();
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for port in &args.ports {
            let (results, options) = (&results, &options);
            s.spawn(move || {
                let r = board_by_serial(args, ledger, input, base, link, port, options);
                results.lock().unwrap_or_else(|p| p.into_inner()).push(r);
            });
        }
    });
    let (mut records, mut reports) = (Vec::new(), Vec::new());
    for (report, record) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        if !args.json {
            eprintln!("{}: {}", report.device, report.result);
        }
        reports.push(report);
        records.extend(record);
    }
    finish(args, ledger, records, reports)
}

fn board_by_serial(
    args: &UpdateArgs,
    ledger: &Ledger,
    input: &[u8],
    base: &Request,
    link: super::batch::Link<'_>,
    port: &str,
    options: &thinger_patch_delivery::serial::FlashOptions,
) -> (Report, Option<(String, String, Delivery)>) {
    let failed = |device: &str, reason: String| Report {
        device: device.to_string(),
        result: "failed",
        address: Some(port.to_string()),
        sha256: None,
        attempts: 1,
        reason: Some(reason),
    };
    let (writer, board) = match super::batch::identify(link, port, options) {
        Ok(x) => x,
        Err(e) => return (failed("-", e), None),
    };
    let device = match ledger.bound(&board) {
        Ok(Some(d)) if d.first_verified_at.is_some() => d.device,
        Ok(_) => {
            return (
                failed(
                    "-",
                    format!(
                        "{port}: the board {board} is not a device of this ledger in service; nothing was written"
                    ),
                ),
                None,
            );
        }
        Err(e) => return (failed("-", e.to_string()), None),
    };
    // The whole personalised build goes to the board (over the air only its app is sent).
    let (image, whole) = match image_for(args, ledger, &device, input, base) {
        Ok(i) => i,
        Err(e) => return (failed(&device, e.message), None),
    };
    let fw = match thinger_patch_core::Firmware::parse(&whole) {
        Ok(fw) => fw,
        Err(e) => return (failed(&device, e.to_string()), None),
    };
    let outcome = match writer.write(&fw, port, options, &mut thinger_patch_delivery::Silent) {
        Ok(f) if f.verified => Outcome::Updated,
        Ok(_) => Outcome::Failed("written but not verified".into()),
        Err(e) => Outcome::Failed(CliError::from(e).message),
    };
    let sha = checksum::sha256(&whole);
    let (result, reason) = match &outcome {
        Outcome::Updated => ("updated", None),
        Outcome::Failed(r) => ("failed", Some(r.clone())),
        _ => ("failed", None),
    };
    (
        Report {
            device: device.clone(),
            result,
            address: Some(port.to_string()),
            sha256: (outcome == Outcome::Updated).then(|| checksum::hex(&sha)),
            attempts: 1,
            reason,
        },
        Some((
            device,
            image.version.clone(),
            Delivery {
                firmware: image.firmware,
                sha256: Some(sha),
                method: Method::Serial,
                address: None,
                outcome,
            },
        )),
    )
}

/// One device's personalised build, ready to send.
struct Image {
    device: String,
    address: Option<String>,
    data: Vec<u8>,
    core: proto::Core,
    version: String,
    firmware: FirmwareInfo,
    sha256: [u8; 32],
}

/// The build with the device's identity from the ledger (after the common values, so it wins):
/// what goes over the air, and the whole personalised file (for a serial write).
fn image_for(
    args: &UpdateArgs,
    ledger: &Ledger,
    device: &str,
    input: &[u8],
    base: &Request,
) -> CliResult<(Image, Vec<u8>)> {
    let mut request = base.clone();
    let by = || Origin::Provisioned {
        by: format!("the ledger's identity of {device}"),
    };
    for (k, v) in ledger.values(device).map_err(ledger_error)? {
        request.values.push(Assignment::new(k, v.expose(), by()));
    }
    // A newer build may lack a slot an older one had: that value is left out, not an error.
    request.allow_missing = true;
    let done = crate::args::personalize_request(&args.file, input, &request, None)
        .map_err(|e| e.with_note(&format!("for device {device}; nothing was sent")))?;
    let payload = proto::firmware_payload(&done.bytes)
        .map_err(|m| CliError::new(exit::INVALID, format!("{}: {m}", args.file.display())))?;
    let version = args
        .fw_version
        .clone()
        .or_else(|| super::thinger::provision::slot_version(&done.slots))
        .unwrap_or_default();
    let data = done.bytes[payload.range.clone()].to_vec();
    let record = ledger.device(device, false).map_err(ledger_error)?;
    let image = Image {
        device: device.to_string(),
        address: record.address,
        sha256: checksum::sha256(&data),
        core: payload.core,
        firmware: FirmwareInfo {
            name: args
                .file
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
            version: version.clone(),
        },
        version,
        data,
    };
    Ok((image, done.bytes))
}

/// How devices are reached: a cloud client, or the LAN's OTA password.
enum Reach {
    Cloud(Box<thinger_patch_cloud::Client>),
    Lan(Option<thinger_patch_core::values::Value>),
}

impl Reach {
    fn new(args: &UpdateArgs, config: Option<&LoadedConfig>) -> CliResult<Reach> {
        match args.via {
            Via::Serial => unreachable!("serial updates are made by by_serial"),
            Via::Cloud => Ok(Reach::Cloud(Box::new(client(
                settings(&args.server, config)?,
                &args.server,
            )?))),
            Via::Lan => {
                let password = match &args.password_env {
                    Some(var) => Some(super::ota::password_from_env(var)?),
                    None => None,
                };
                Ok(Reach::Lan(password))
            }
        }
    }
}

/// Sends one device its image, retrying a failure or silence `--retries` times.
fn deliver(
    args: &UpdateArgs,
    reach: &Reach,
    image: &Image,
    address: Option<String>,
) -> (Report, Delivery) {
    let mut attempts = 0;
    let outcome = loop {
        attempts += 1;
        let outcome = attempt(args, reach, image, address.as_deref());
        let again = matches!(outcome, Outcome::Offline | Outcome::Failed(_));
        if !again || attempts > args.retries {
            break outcome;
        }
        std::thread::sleep(Duration::from_millis(500 * u64::from(attempts)));
    };
    let (result, reason) = match &outcome {
        Outcome::Updated => ("updated", None),
        Outcome::AlreadyCurrent => ("already_current", None),
        Outcome::Offline => (
            "offline",
            Some("no answer; the next run tries again".into()),
        ),
        Outcome::Failed(r) => ("failed", Some(r.clone())),
    };
    let method = match reach {
        Reach::Cloud(_) => Method::Cloud,
        Reach::Lan(_) => Method::LanOta,
    };
    let shown = match reach {
        Reach::Cloud(_) => None,
        Reach::Lan(_) => address.clone(),
    };
    (
        Report {
            device: image.device.clone(),
            result,
            address: shown.clone(),
            sha256: (outcome == Outcome::Updated).then(|| checksum::hex(&image.sha256)),
            attempts,
            reason,
        },
        Delivery {
            firmware: image.firmware.clone(),
            sha256: Some(image.sha256),
            method,
            address: shown,
            outcome,
        },
    )
}

fn attempt(args: &UpdateArgs, reach: &Reach, image: &Image, address: Option<&str>) -> Outcome {
    match reach {
        Reach::Cloud(client) => {
            let id = match thinger_patch_cloud::DeviceId::new(&image.device) {
                Ok(id) => id,
                Err(e) => return Outcome::Failed(e.to_string()),
            };
            let version = (!image.version.is_empty()).then_some(image.version.as_str());
            match client.ota(&id).force(args.force).send(
                &image.data,
                version,
                &mut thinger_patch_cloud::NoProgress,
            ) {
                Ok(r) => match r.outcome {
                    thinger_patch_cloud::OtaOutcome::Updated => Outcome::Updated,
                    thinger_patch_cloud::OtaOutcome::AlreadyUpToDate { .. } => {
                        Outcome::AlreadyCurrent
                    }
                },
                Err(thinger_patch_cloud::Error::OtaOffline { .. }) => Outcome::Offline,
                Err(e) => Outcome::Failed(cloud_error(e).message),
            }
        }
        Reach::Lan(password) => {
            let Some(address) = address else {
                return Outcome::Failed(
                    "no address recorded; give it with --address DEVICE=HOST".into(),
                );
            };
            let (host, port) = split_host_port(address, image.core.default_port());
            let device = match lan::resolve(host, port) {
                Ok(d) => d,
                Err(_) => return Outcome::Offline,
            };
            let file_name = args
                .file
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            let sent = arduino::send(
                &arduino::Upload {
                    host,
                    device,
                    core: image.core,
                    target: proto::Target::Firmware,
                    data: &image.data,
                    file_name: &file_name,
                    password: password.as_ref(),
                    host_port: None,
                    timeout: args.timeout,
                    result_timeout: args.timeout.max(Duration::from_secs(30)),
                    invitations: 3,
                },
                &mut thinger_patch_delivery::Silent,
            );
            match sent {
                Ok(_) => Outcome::Updated,
                Err(e) if e.code() == arduino::NO_ANSWER => Outcome::Offline,
                Err(e) => Outcome::Failed(e.to_string()),
            }
        }
    }
}

/// `host:port` (IPv4 or a name) or `[v6]:port`; a plain host gets the core's port.
fn split_host_port(address: &str, default: u16) -> (&str, u16) {
    if let Some(rest) = address.strip_prefix('[')
        && let Some((h, p)) = rest.split_once("]:")
        && let Ok(p) = p.parse()
    {
        return (h, p);
    }
    match address.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse() {
            Ok(p) => (h, p),
            Err(_) => (address, default),
        },
        _ => (address, default),
    }
}

fn parse_filter(specs: &[String]) -> CliResult<Filter> {
    let mut f = Filter::default();
    for spec in specs {
        let (k, v) = spec.split_once('=').ok_or_else(|| {
            CliError::new(
                exit::USAGE,
                format!("--where {spec}: write KEY=VALUE (device=ID, job=NAME, mac=MAC)"),
            )
        })?;
        match k.trim() {
            "device" => f.device = Some(v.trim().to_string()),
            "job" => f.job = Some(v.trim().to_string()),
            "mac" => {
                f.mac = Some(v.trim().parse().map_err(|e: thinger_patch_ledger::Error| {
                    CliError::new(exit::USAGE, format!("--where {spec}: {e}"))
                })?)
            }
            other => {
                return Err(CliError::new(
                    exit::USAGE,
                    format!("--where {spec}: unknown key {other:?}; the keys are device, job, mac"),
                ));
            }
        }
    }
    Ok(f)
}

fn parse_addresses(specs: &[String]) -> CliResult<Vec<(String, String)>> {
    specs
        .iter()
        .map(|spec| {
            spec.split_once('=')
                .filter(|(d, a)| !d.trim().is_empty() && !a.trim().is_empty())
                .map(|(d, a)| (d.trim().to_string(), a.trim().to_string()))
                .ok_or_else(|| {
                    CliError::new(
                        exit::USAGE,
                        format!("--address {spec}: write DEVICE=HOST or DEVICE=HOST:PORT"),
                    )
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_split_into_host_and_port() {
        assert_eq!(split_host_port("10.0.0.5", 3232), ("10.0.0.5", 3232));
        assert_eq!(split_host_port("10.0.0.5:4000", 3232), ("10.0.0.5", 4000));
        assert_eq!(split_host_port("esp.local:x", 8266), ("esp.local:x", 8266));
        assert_eq!(split_host_port("[::1]:4000", 3232), ("::1", 4000));
        assert_eq!(split_host_port("::1", 3232), ("::1", 3232));
    }
}
