//! `thinger-patch ota`: personalise firmware in memory and send it to a running
//! device over the network, by ArduinoOTA (what `espota.py` and the Arduino IDE
//! do) or to an HTTP update server (HTTPUpdateServer, ElegantOTA). Nothing is
//! written to disk; the personalised image exists only in memory. With `--thinger DEVICE` it
//! goes through the Thinger.io cloud instead (the device's `$ota` resources).

use super::thinger::ServerArgs;
use super::thinger::provision::{CloudOta, PropertyArgs};
use crate::args::{self, PersonalizeArgs, result_warnings};
use crate::exit::{self, CliError};
use crate::progress::Bar;
use crate::{CliResult, fsio, outln, print_warnings};
use clap::{ArgGroup, Args, ValueEnum};
use serde::Serialize;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use thinger_patch_core::ota::{self as proto, Core, HttpServerKind, HttpUrl, Payload, Target};
use thinger_patch_core::personalize::{Personalized, SlotOutcome};
use thinger_patch_core::values::Value;
use thinger_patch_delivery::ota::{self as lan, arduino, http};

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("destination").required(true).args(["host", "http", "thinger"])))]
#[command(mut_arg("profiles", |a| a.help(ONE_PROFILE_HELP)))]
pub struct OtaArgs {
    /// Firmware to personalise and send: app image, merged image (only its app is sent),
    /// Arduino ESP8266 image or its .bin.gz; with --fs a file-system image, sent unchanged
    pub file: PathBuf,
    #[command(flatten)]
    pub personalize: PersonalizeArgs,
    /// ArduinoOTA: the device's address or host name (e.g. 192.168.1.50, esp32-a1b2c3.local)
    #[arg(long, value_name = "H")]
    pub host: Option<String>,
    /// HTTP update server: the device's update URL, e.g. http://192.168.1.50/update
    #[arg(long, value_name = "URL")]
    pub http: Option<String>,
    /// Which HTTP update server the device runs [default: auto, found from its update page]
    #[arg(long, value_enum, value_name = "KIND", requires = "http")]
    pub http_server: Option<HttpServerArg>,
    /// HTTP user name (sent with Basic authentication)
    #[arg(long, value_name = "U", requires = "http")]
    pub user: Option<String>,
    /// Read the OTA (or HTTP) password from this environment variable
    #[arg(long, value_name = "VAR", conflicts_with = "password_prompt")]
    pub password_env: Option<String>,
    /// Ask for the OTA (or HTTP) password on the terminal, input hidden
    #[arg(long)]
    pub password_prompt: bool,
    /// ArduinoOTA: the device's UDP port [default: 8266 for ESP8266, 3232 for ESP32]
    #[arg(long, value_name = "P", conflicts_with = "http")]
    pub ota_port: Option<u16>,
    /// ArduinoOTA: the local TCP port the device connects back to [default: a free one];
    /// pin it to open it in a firewall
    #[arg(long, value_name = "P", conflicts_with = "http")]
    pub host_port: Option<u16>,
    /// Seconds to wait for each answer: invitation, authentication, the device's
    /// connection, each chunk's acknowledgement, an HTTP connection (0.1 to 86400)
    #[arg(long, value_name = "S", default_value = "10", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub timeout: Duration,
    /// Seconds to wait for the device's final answer after the last byte (0.1 to 86400)
    #[arg(long, value_name = "S", default_value = "60", value_parser = parse_seconds, allow_negative_numbers = true)]
    pub result_timeout: Duration,
    /// ArduinoOTA: invitations to send before giving up (1 to 100)
    #[arg(long, value_name = "N", default_value_t = 3, conflicts_with = "http", value_parser = clap::value_parser!(u32).range(1..=100))]
    pub invitations: u32,
    /// Send a file-system image (SPIFFS/LittleFS) unchanged, instead of firmware
    #[arg(long)]
    pub fs: bool,
    /// The Arduino core the device runs [default: from the image's chip; needed with --fs --host]
    #[arg(long, value_enum, value_name = "CORE")]
    pub core: Option<Core>,
    /// Personalise, check and show what would be sent; send nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print a JSON summary (secret values masked)
    #[arg(long)]
    pub json: bool,
    /// Through the Thinger.io cloud: the device's id on the account; the firmware gets this
    /// device's identity from --profile (saved by --save-credentials)
    #[arg(
        long,
        value_name = "DEVICE",
        conflicts_with = "fs",
        help_heading = "Thinger.io device"
    )]
    pub thinger: Option<String>,
    /// Cloud OTA: send even when the device reports the same version
    #[arg(long, requires = "thinger", help_heading = "Thinger.io device")]
    pub force: bool,
    /// Cloud OTA: send uncompressed even when the device offers compression
    #[arg(long, requires = "thinger", help_heading = "Thinger.io device")]
    pub no_compress: bool,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub properties: PropertyArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HttpServerArg {
    Auto,
    /// ESP8266HTTPUpdateServer / ESP32 HTTPUpdateServer (POST /update)
    UpdateServer,
    /// ElegantOTA 3 (/ota/start, /ota/upload)
    ElegantOta,
}

#[derive(Serialize)]
struct PayloadSummary<'a> {
    what: &'a str,
    offset: usize,
    size: usize,
    md5: String,
    chip: Option<thinger_patch_core::Chip>,
    compressed: bool,
}

#[derive(Serialize)]
struct Summary<'a> {
    file: String,
    profile: Option<&'a str>,
    dry_run: bool,
    method: &'static str,
    destination: String,
    target: Target,
    core: Option<Core>,
    payload: PayloadSummary<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<arduino::AuthUsed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    http_server: Option<HttpServerKind>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connected_to: Option<String>,
    format: Option<&'static str>,
    slots: &'a [SlotOutcome],
    warnings: Vec<String>,
    result: &'static str,
    seconds: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cloud: Option<CloudSummary>,
}

/// What a cloud OTA sent.
#[derive(Serialize)]
struct CloudSummary {
    device_version: String,
    version: Option<String>,
    block_size: usize,
    compression: Option<&'static str>,
    sent_bytes: usize,
    chunks: usize,
    properties: Vec<String>,
}

/// The bar of the network uploads, fed by the cloud client's progress.
struct CloudProgress<'a>(&'a mut dyn thinger_patch_delivery::Progress);

impl thinger_patch_cloud::Progress for CloudProgress<'_> {
    fn started(&mut self, total: u64) {
        self.0.start("through the cloud", total);
    }
    fn advanced(&mut self, done: u64) {
        self.0.advance(done);
    }
    fn finished(&mut self) {
        self.0.finish(false);
    }
}

/// `--profile` of `flash` and `ota`, which reach one device per run (the shared text
/// offers one output per profile, which only `patch` does).
pub(super) const ONE_PROFILE_HELP: &str =
    "Credential profile from the config file ([profiles.NAME]); one device per run, so at most one";

/// The shortest and longest wait a duration flag accepts, in seconds. Below 0.1 s no
/// network or serial answer can arrive (and a zero socket timeout is an error); above a
/// day is a typo.
pub(super) const SECONDS_RANGE: (f64, f64) = (0.1, 86_400.0);

/// Parses a duration flag: seconds, fractions allowed, within [`SECONDS_RANGE`].
/// Zero, negative, NaN, infinite and absurd values are usage errors naming the range
/// (clap adds the flag).
pub(crate) fn parse_seconds(text: &str) -> Result<Duration, String> {
    let (min, max) = SECONDS_RANGE;
    let range = format!("expected a number of seconds from {min} to {max}");
    let value: f64 = text.trim().parse().map_err(|_| range.clone())?;
    if value.is_finite() && (min..=max).contains(&value) {
        Ok(Duration::from_secs_f64(value))
    } else {
        Err(range)
    }
}

fn personalisation_given(p: &PersonalizeArgs) -> bool {
    !p.profiles.is_empty()
        || !p.set.is_empty()
        || !p.set_env.is_empty()
        || !p.placeholders.is_empty()
        || p.config.is_some()
}

pub fn run(args: &OtaArgs) -> CliResult {
    let (timeout, result_timeout) = (args.timeout, args.result_timeout);
    let runs = args.personalize.profile_runs();
    if runs.len() > 1 {
        return Err(CliError::new(
            exit::USAGE,
            "ota sends to one device: give at most one --profile",
        ));
    }
    if args.fs && personalisation_given(&args.personalize) {
        return Err(CliError::new(
            exit::USAGE,
            "--fs sends a file-system image unchanged: personalisation arguments (--profile, --set, --set-env, --placeholder, --config) do not apply",
        ));
    }
    if args.user.is_some() != (args.password_env.is_some() || args.password_prompt)
        && args.http.is_some()
    {
        return Err(CliError::new(
            exit::USAGE,
            if args.user.is_some() {
                "--user needs the password too: --password-env VAR or --password-prompt"
            } else {
                "an HTTP password needs --user (the update servers check both)"
            },
        ));
    }
    let http_url = match &args.http {
        Some(u) => Some(
            HttpUrl::parse(u).map_err(|m| CliError::new(exit::USAGE, format!("--http: {m}")))?,
        ),
        None => None,
    };
    let profile = runs[0].as_deref();
    let input = fsio::read(&args.file)?;
    let file_name = args.file.file_name().map_or_else(
        || args.file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );

    // What to send.
    let mut warnings = Vec::new();
    let mut cloud = None;
    let mut version = None;
    let (bytes, done, payload) = if args.fs {
        let core = args.core;
        if core.is_none() && args.host.is_some() {
            return Err(CliError::new(
                exit::USAGE,
                "--fs --host needs --core esp8266|esp32: a file-system image does not say which core the device runs",
            ));
        }
        let payload = Payload {
            range: 0..input.len(),
            core: core.unwrap_or(Core::Esp32),
            chip: None,
            what: "file-system image".into(),
            compressed: false,
        };
        (input, None, payload)
    } else {
        let config = args.personalize.load_config(&mut warnings)?;
        let mut request = args.personalize.request(config.as_ref(), profile)?;
        if let Some(device) = &args.thinger {
            let c = CloudOta::prepare(device, &args.server, config.as_ref())?;
            c.apply(&mut request)?;
            cloud = Some(c);
        }
        let mut done = args::personalize_request(&args.file, &input, &request, profile)?;
        if let Some(c) = &cloud {
            c.check_identity(&args.file, &done.slots)?;
        }
        version = args.properties.version(&done.slots);
        warnings.extend(crate::messages::warnings(&done.warnings));
        warnings.extend(result_warnings(&done));
        let payload = proto::firmware_payload(&done.bytes)
            .map_err(|m| CliError::new(exit::INVALID, format!("{}: {m}", args.file.display())))?;
        if let Some(c) = args.core
            && c != payload.core
        {
            return Err(CliError::new(
                exit::INVALID,
                format!(
                    "{}: --core {} does not match the image, which is for the {} core",
                    args.file.display(),
                    c.name().to_lowercase(),
                    payload.core.name()
                ),
            ));
        }
        let bytes = std::mem::take(&mut done.bytes);
        (bytes, Some(done), payload)
    };
    if payload.range.is_empty() {
        return Err(CliError::new(
            exit::INVALID,
            format!("{}: nothing to send (empty file)", args.file.display()),
        ));
    }
    let data = &bytes[payload.range.clone()];
    let target = if args.fs {
        Target::Filesystem
    } else {
        Target::Firmware
    };
    let md5 = proto::md5_hex(data);

    let method = if args.host.is_some() {
        "arduino-ota"
    } else if cloud.is_some() {
        "thinger-cloud"
    } else {
        "http"
    };
    let core = if args.fs && args.core.is_none() {
        None
    } else {
        Some(payload.core)
    };
    let mut summary = Summary {
        file: args.file.display().to_string(),
        profile,
        dry_run: args.dry_run,
        method,
        destination: String::new(),
        target,
        core,
        payload: PayloadSummary {
            what: &payload.what,
            offset: payload.range.start,
            size: data.len(),
            md5,
            chip: payload.chip,
            compressed: payload.compressed,
        },
        auth: None,
        http_server: None,
        connected_to: None,
        format: done.as_ref().map(|d| d.format),
        slots: done.as_ref().map_or(&[], |d: &Personalized| &d.slots[..]),
        warnings,
        result: "dry-run",
        seconds: 0.0,
        cloud: None,
    };
    let started = Instant::now();
    // A bar on a terminal only: the summary says what happened.
    let terminal = !args.json && std::io::stderr().is_terminal();
    let mut progress: Box<dyn thinger_patch_delivery::Progress> = if terminal {
        Box::new(Bar::new(true).quiet_status())
    } else {
        Box::new(thinger_patch_delivery::Silent)
    };

    if let Some(host) = &args.host {
        let port = args.ota_port.unwrap_or(payload.core.default_port());
        let device = lan::resolve(host, port)?;
        summary.destination = device.to_string();
        if !args.dry_run {
            let password = read_password(args, host)?;
            let sent = arduino::send(
                &arduino::Upload {
                    host,
                    device,
                    core: payload.core,
                    target,
                    data,
                    file_name: &file_name,
                    password: password.as_ref(),
                    host_port: args.host_port,
                    timeout,
                    result_timeout,
                    invitations: args.invitations,
                },
                progress.as_mut(),
            );
            let sent = sent.map_err(|e| with_warnings(e.into(), &summary.warnings))?;
            summary.auth = sent.auth;
            summary.connected_to = Some(sent.offered.to_string());
            summary.result = "ok";
        }
    } else if let Some(c) = &cloud {
        summary.destination = c.describe();
        if !args.dry_run {
            let sent = c.send(
                data,
                version.as_deref(),
                args.force,
                !args.no_compress,
                &args.properties,
                &mut CloudProgress(progress.as_mut()),
            );
            let sent = sent.map_err(|e| with_warnings(e, &summary.warnings))?;
            summary.result = if sent.up_to_date.is_some() {
                "up-to-date"
            } else {
                "ok"
            };
            summary.cloud = Some(CloudSummary {
                device_version: sent.report.options.version.clone(),
                version: version.clone(),
                block_size: sent.report.options.block_size,
                compression: sent.report.compression.map(|c| c.as_str()),
                sent_bytes: sent.report.sent_bytes,
                chunks: sent.report.chunks,
                properties: sent.properties,
            });
        }
    } else if let Some(url) = http_url {
        summary.destination = url.to_string();
        let kind = match args.http_server {
            None | Some(HttpServerArg::Auto) => None,
            Some(HttpServerArg::UpdateServer) => Some(HttpServerKind::UpdateServer),
            Some(HttpServerArg::ElegantOta) => Some(HttpServerKind::ElegantOta),
        };
        summary.http_server = kind;
        if !args.dry_run {
            let password = read_password(args, &url.host)?;
            let kind = http::send(
                &http::Upload {
                    url,
                    kind,
                    user: args.user.as_deref(),
                    password: password.as_ref(),
                    target,
                    data,
                    file_name: &file_name,
                    timeout,
                    result_timeout,
                },
                progress.as_mut(),
            );
            summary.http_server =
                Some(kind.map_err(|e| with_warnings(e.into(), &summary.warnings))?);
            summary.result = "ok";
        }
    }
    summary.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    report(&summary, args.json);
    Ok(exit::OK)
}

/// Prints the warnings gathered so far before the error (the error is printed by main).
fn with_warnings(e: CliError, warnings: &[String]) -> CliError {
    print_warnings(warnings);
    e
}

/// `--password-env VAR`: the OTA (or HTTP) password from the environment (shared with `fleet`).
pub(crate) fn password_from_env(var: &str) -> CliResult<Value> {
    match std::env::var(var) {
        Ok(v) => Ok(Value::new(v)),
        Err(std::env::VarError::NotPresent) => Err(CliError::new(
            exit::INVALID,
            format!("--password-env {var}: environment variable {var} is not set"),
        )),
        Err(std::env::VarError::NotUnicode(_)) => Err(CliError::new(
            exit::INVALID,
            format!("--password-env {var}: environment variable {var} is not valid UTF-8"),
        )),
    }
}

fn read_password(args: &OtaArgs, host: &str) -> CliResult<Option<Value>> {
    if let Some(var) = &args.password_env {
        return password_from_env(var).map(Some);
    }
    if args.password_prompt {
        if !std::io::stdin().is_terminal() {
            return Err(CliError::new(
                exit::USAGE,
                "--password-prompt needs a terminal; use --password-env VAR in scripts and CI",
            ));
        }
        return rpassword::prompt_password(format!("OTA password for {host} (input hidden): "))
            .map(|p| Some(Value::new(p)))
            .map_err(|e| {
                CliError::new(
                    exit::IO,
                    format!("cannot read the password from the terminal: {e}"),
                )
            });
    }
    Ok(None)
}

fn report(s: &Summary, json: bool) {
    if json {
        outln!(
            "{}",
            serde_json::to_string_pretty(s).expect("summary serialises")
        );
        print_warnings(&s.warnings);
        return;
    }
    print_warnings(&s.warnings);
    let chip = s
        .payload
        .chip
        .map_or_else(String::new, |c| format!("{c}, "));
    let set = s.slots.iter().filter(|o| o.origin.is_some()).count();
    let slots = if s.format.is_some() {
        format!(", {set} of {} slot(s) set", s.slots.len())
    } else {
        String::new()
    };
    let how = match (s.method, s.http_server) {
        ("arduino-ota", _) => {
            let mut parts = vec![format!(
                "ArduinoOTA, {} core",
                s.core.map_or("?", Core::name)
            )];
            match &s.auth {
                Some(a) => parts.push(format!(
                    "{} authentication with the {} password hash",
                    a.scheme.name(),
                    match a.password_hash {
                        proto::PasswordHash::Md5 => "MD5",
                        proto::PasswordHash::Sha256 => "SHA-256",
                    }
                )),
                None if !s.dry_run => parts.push("no password".into()),
                None => {}
            }
            if let Some(c) = &s.connected_to {
                parts.push(format!("the device connected back to {c}"));
            }
            parts.join("; ")
        }
        ("thinger-cloud", _) => match &s.cloud {
            Some(c) => format!(
                "the cloud's $ota resources ({} write(s) of up to {} bytes, {} bytes on the wire{})",
                c.chunks,
                c.block_size,
                c.sent_bytes,
                c.compression.map_or(String::new(), |z| format!(", {z}"))
            ),
            None => "the cloud's $ota resources".into(),
        },
        (_, Some(HttpServerKind::ElegantOta)) => "HTTP, ElegantOTA".into(),
        (_, Some(HttpServerKind::UpdateServer)) => "HTTP, HTTPUpdateServer".into(),
        _ => "HTTP".into(),
    };
    if s.result == "up-to-date" {
        let version = s.cloud.as_ref().map_or("", |c| c.device_version.as_str());
        outln!(
            "{} already runs version {version}: nothing sent (--force sends it anyway)",
            s.destination
        );
        return;
    }
    let verb = if s.dry_run { "would send" } else { "sent" };
    outln!(
        "{verb} {} of {} ({chip}{} bytes, md5 {}{slots}) to {} by {how}{}",
        s.payload.what,
        s.file,
        s.payload.size,
        s.payload.md5,
        s.destination,
        if s.dry_run {
            String::new()
        } else {
            format!(
                " in {:.1} s: the device accepted it and restarts into it",
                s.seconds
            )
        }
    );
    for line in args::slot_lines(s.slots) {
        outln!("{line}");
    }
    if let Some(c) = s.cloud.as_ref().filter(|c| !c.properties.is_empty()) {
        outln!("  wrote properties {}", c.properties.join(", "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_flags_accept_only_a_sane_range() {
        assert_eq!(parse_seconds("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_seconds("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds("0.1"), Ok(Duration::from_millis(100)));
        assert_eq!(parse_seconds("86400"), Ok(Duration::from_secs(86_400)));
        for bad in [
            "1e-12", "0", "-0", "-1", "0.09", "NaN", "inf", "-inf", "1e300", "86401", "", "ten",
        ] {
            let e = parse_seconds(bad).unwrap_err();
            assert!(e.contains("from 0.1 to 86400"), "{bad}: {e}");
        }
    }
}
