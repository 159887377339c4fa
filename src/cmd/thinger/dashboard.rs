//! `thinger-patch thinger dashboard push TEMPLATE... --device ID`: dashboard templates (JSON, or
//! the predecessor's `.h`/`.txt` files with the JSON in C string literals) personalised for one
//! device by `thinger_patch_cloud::dashboard` and pushed, or written to a folder (`--offline`).
//! `--dashboard` of `patch`/`flash` goes through [`Dashboards`] too.

use super::{ServerArgs, client, cloud_error, settings};
use crate::args::LoadedConfig;
use crate::exit::{self, CliError};
use crate::{CliResult, fsio, outln, print_warnings};
use clap::{Args, Subcommand};
use std::path::{Path, PathBuf};
use thinger_patch_cloud::{
    Client, PreparedDashboard, PushMode, Pushed, Substitutions, Template, UnknownKeys,
};

#[derive(Debug, Subcommand)]
pub enum DashboardAction {
    /// Personalise templates for a device and create (or with --update replace) its dashboards
    Push(PushArgs),
}

#[derive(Debug, Args)]
pub struct PushArgs {
    /// Dashboard templates: .json, or .h/.txt files holding the JSON (the predecessor's z_Thinger.*.h)
    #[arg(required = true, value_name = "TEMPLATE")]
    pub templates: Vec<PathBuf>,
    /// The device the dashboards are for ({{device}}, DEVCNAME...)
    #[arg(long, value_name = "ID")]
    pub device: String,
    /// Its display name ({{name}}) [default: the device id]
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Replace dashboards that exist already (else an existing one is an error)
    #[arg(long)]
    pub update: bool,
    /// Refuse keys the dashboard API does not accept, instead of removing them with a warning
    #[arg(long)]
    pub strict: bool,
    /// Write the personalised JSON into DIR instead of sending it (no account needed; the user
    /// and host come from --thinger-user/--thinger-host or [thinger])
    #[arg(long, value_name = "DIR")]
    pub offline: Option<PathBuf>,
}

/// Templates read and personalised for one device: every one checked before any is sent.
pub struct Dashboards {
    prepared: Vec<(String, PreparedDashboard)>,
}

impl Dashboards {
    /// Reads and personalises `templates`; any error names the file (and the JSON path).
    pub fn prepare(
        templates: &[PathBuf],
        subs: &Substitutions,
        unknown: UnknownKeys,
    ) -> CliResult<Dashboards> {
        let mut prepared = Vec::new();
        let mut ids: Vec<(String, String)> = Vec::new();
        for path in templates {
            let source = path.display().to_string();
            let template = Template::from_file(path).map_err(cloud_error)?;
            let d = template.personalize(subs, unknown).map_err(cloud_error)?;
            if let Some((_, first)) = ids.iter().find(|(id, _)| *id == d.id) {
                return Err(CliError::new(
                    exit::USAGE,
                    format!(
                        "{source} and {first} both make dashboard {} for device {}: rename one template",
                        d.id, subs.device
                    ),
                ));
            }
            ids.push((d.id.clone(), source.clone()));
            prepared.push((source, d));
        }
        Ok(Dashboards { prepared })
    }

    /// The warnings of every template (keys removed, no placeholder found).
    pub fn warnings(&self) -> Vec<String> {
        self.prepared
            .iter()
            .flat_map(|(_, d)| d.warnings.iter().cloned())
            .collect()
    }

    /// Sends each one; one line per dashboard.
    pub fn send(&self, client: &Client, update: bool) -> CliResult<Vec<String>> {
        let mode = if update {
            PushMode::Update
        } else {
            PushMode::Create
        };
        let mut lines = Vec::new();
        for (source, d) in &self.prepared {
            let pushed = client.dashboards().push(d, mode).map_err(|e| match e {
                thinger_patch_cloud::Error::Exists { .. } => CliError::new(
                    exit::DEVICE,
                    format!(
                        "dashboard {} exists already on the account; pass --update to replace it",
                        d.id
                    ),
                ),
                e => cloud_error(e),
            })?;
            let verb = match pushed {
                Pushed::Created => "created",
                Pushed::Updated => "updated",
            };
            lines.push(format!(
                "{verb} dashboard {} from {source} ({} placeholder(s) filled)",
                d.id, d.replaced
            ));
        }
        Ok(lines)
    }

    /// Writes `<id>.json` for each into `dir` (created if missing).
    pub fn write(&self, dir: &Path) -> CliResult<Vec<String>> {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::new(exit::IO, format!("{}: {e}", dir.display())))?;
        let mut lines = Vec::new();
        for (source, d) in &self.prepared {
            let out = dir.join(format!("{}.json", d.id));
            fsio::destination(&out)?;
            let mut text = serde_json::to_string_pretty(&d.json).expect("JSON serialises");
            text.push('\n');
            fsio::write_atomic(&out, text.as_bytes(), false)?;
            lines.push(format!(
                "wrote {} from {source} ({} placeholder(s) filled)",
                out.display(),
                d.replaced
            ));
        }
        Ok(lines)
    }
}

pub fn push(args: &PushArgs, server: &ServerArgs, config: Option<&LoadedConfig>) -> CliResult {
    let device = thinger_patch_cloud::DeviceId::new(&args.device).map_err(cloud_error)?;
    let settings = settings(server, config)?;
    let unknown = if args.strict {
        UnknownKeys::Refuse
    } else {
        UnknownKeys::Strip
    };
    // Offline needs no account: the user must then be known without asking the server.
    let (client, user) = match &args.offline {
        Some(_) => (
            None,
            settings.user.clone().ok_or_else(|| {
                CliError::new(
                    exit::USAGE,
                    "--offline needs the user for the dashboards' \"user\" fields: --thinger-user USER (or user in [thinger])",
                )
            })?,
        ),
        None => {
            let client = client(settings.clone(), server)?;
            let user = client.user().map_err(cloud_error)?;
            (Some(client), user)
        }
    };
    let subs = Substitutions {
        device: device.to_string(),
        user,
        host: settings.host.clone(),
        name: args.name.clone().unwrap_or_else(|| device.to_string()),
    };
    let dashboards = Dashboards::prepare(&args.templates, &subs, unknown)?;
    print_warnings(&dashboards.warnings());
    let lines = match (&args.offline, &client) {
        (Some(dir), _) => dashboards.write(dir)?,
        (None, Some(c)) => dashboards.send(c, args.update)?,
        (None, None) => unreachable!("a client is made unless --offline"),
    };
    for l in lines {
        outln!("{l}");
    }
    Ok(exit::OK)
}
