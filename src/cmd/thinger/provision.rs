//! `--thinger-device ID` of `patch` and `flash`: the device is created on the Thinger.io account
//! (or reused, or given new credentials) and its id, user, credentials and host go into the
//! firmware's slots in the same run; after a successful write its dashboards are pushed, and
//! after a delivery (flash, OTA) its properties written.
//!
//! The order keeps the account and the firmware in step: everything that can be checked
//! offline (values against the slots, templates against the schema) and on the account (does
//! the device exist?) is checked first; the device is created (or rotated) only then, right
//! before the write; a write that fails afterwards is reported with the device left behind
//! named (or deleted with `--cleanup-on-failure`). Credentials are never printed.

use super::dashboard::Dashboards;
use super::{ServerArgs, client, cloud_error, save, settings};
use crate::args::LoadedConfig;
use crate::exit::{self, CliError};
use crate::{CliResult, print_warnings};
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use thinger_patch_cloud::{
    Client, DeviceId, DeviceSpec, Secret, Substitutions, UnknownKeys, generate_credentials,
    provisioning_properties,
};
use thinger_patch_core::Request;
use thinger_patch_core::values::{Assignment, Origin};

/// The slot keys the device's identity goes into.
const DEVICE_KEY: &str = "thinger_device";
const USER_KEY: &str = "thinger_user";
const CREDENTIALS_KEY: &str = "thinger_credentials";
const HOST_KEY: &str = "thinger_host";
/// The firmware's version slot: `fw.version` as the device-side examples declare it, or `fw_version`.
pub(crate) const VERSION_KEYS: &[&str] = &["fw.version", "fw_version"];

/// The firmware's version: its version slot after personalisation, when it holds one.
pub(crate) fn slot_version(
    slots: &[thinger_patch_core::personalize::SlotOutcome],
) -> Option<String> {
    slots
        .iter()
        .find(|s| VERSION_KEYS.contains(&s.key.as_str()) && !s.secret && !s.value.is_empty())
        .map(|s| s.value.clone())
}

#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Thinger.io device")]
pub struct ProvisionArgs {
    /// Create this device on the Thinger.io account and write its id, user, credentials (new,
    /// from the system's CSPRNG, sized to the firmware's slot) and host into the firmware
    #[arg(long = "thinger-device", value_name = "ID")]
    pub thinger_device: Option<String>,
    /// The device exists already: keep it and its credentials, which must come from the profile
    /// (thinger_credentials; the cloud cannot give them back)
    #[arg(long, requires = "thinger_device", conflicts_with = "rotate")]
    pub reuse: bool,
    /// The device exists already: give it new credentials (the old firmware stops connecting)
    #[arg(long, requires = "thinger_device")]
    pub rotate: bool,
    /// Delete the device again if this run created it and then failed to write or flash
    #[arg(long, requires = "thinger_device")]
    pub cleanup_on_failure: bool,
    /// Also save the device's id, user, host and credentials as [profiles.PROFILE] of the user
    /// config file (mode 0600), for later runs with --profile PROFILE --reuse
    #[arg(long, value_name = "PROFILE", requires = "thinger_device")]
    pub save_credentials: Option<String>,
    /// The device's name in the console
    #[arg(
        long = "thinger-name",
        value_name = "NAME",
        requires = "thinger_device"
    )]
    pub thinger_name: Option<String>,
    /// The device's description
    #[arg(
        long = "thinger-description",
        value_name = "TEXT",
        requires = "thinger_device"
    )]
    pub thinger_description: Option<String>,
    /// The device's asset type
    #[arg(
        long = "thinger-asset-type",
        value_name = "ID",
        requires = "thinger_device"
    )]
    pub thinger_asset_type: Option<String>,
    /// The device's asset group
    #[arg(
        long = "thinger-asset-group",
        value_name = "ID",
        requires = "thinger_device"
    )]
    pub thinger_asset_group: Option<String>,
    /// The product the device belongs to
    #[arg(
        long = "thinger-product",
        value_name = "ID",
        requires = "thinger_device"
    )]
    pub thinger_product: Option<String>,
    /// A dashboard template to personalise for the device and push after the write (repeatable)
    #[arg(
        long = "dashboard",
        value_name = "TEMPLATE",
        requires = "thinger_device"
    )]
    pub dashboards: Vec<PathBuf>,
    /// Replace dashboards that exist already (else an existing one is an error)
    #[arg(long, requires = "thinger_device")]
    pub dashboard_update: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

/// Device properties written after a delivery (flash or OTA).
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Thinger.io device")]
pub struct PropertyArgs {
    /// Do not write the device properties (fw_version, mac, image_sha256, provisioned_at)
    #[arg(long)]
    pub no_properties: bool,
    /// The fw_version property (and the cloud OTA version) [default: the firmware's fw_version slot]
    #[arg(long, value_name = "V")]
    pub fw_version: Option<String>,
}

impl PropertyArgs {
    /// `--fw-version`, else the firmware's version slot after personalisation.
    pub fn version(
        &self,
        slots: &[thinger_patch_core::personalize::SlotOutcome],
    ) -> Option<String> {
        self.fw_version.clone().or_else(|| slot_version(slots))
    }
}

/// Writes a delivered image's properties (`provisioned_at` only for a first provisioning);
/// returns their names.
fn write_properties(
    client: &Client,
    id: &DeviceId,
    version: Option<&str>,
    mac: Option<&str>,
    image: &[u8],
    provisioned: bool,
) -> CliResult<Vec<String>> {
    let sha = thinger_patch_core::checksum::hex(&thinger_patch_core::checksum::sha256(image));
    let mut props = provisioning_properties(version, mac, Some(&sha), std::time::SystemTime::now());
    if !provisioned {
        props.retain(|p| p.name != "provisioned_at");
    }
    client.properties(id).write(&props).map_err(cloud_error)?;
    Ok(props.into_iter().map(|p| p.name).collect())
}

/// What to do with the device on the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
enum Plan {
    Create,
    Reuse,
    Rotate,
}

/// What was delivered, for the properties.
pub struct Delivered<'a> {
    pub mac: Option<&'a str>,
    pub image: &'a [u8],
    pub fw_version: Option<String>,
}

/// The `thinger` object of a command's `--json` summary (never a credential).
#[derive(Debug, Serialize)]
pub struct Summary {
    pub device: String,
    pub user: String,
    pub api: String,
    pub action: &'static str,
    pub credentials_length: usize,
    pub saved_to: Option<String>,
    pub dashboards: Vec<String>,
    pub properties: Vec<String>,
}

/// One run's device on the account, from [`Provisioning::prepare`] to [`Provisioning::finish`].
pub struct Provisioning {
    client: Client,
    spec: DeviceSpec,
    user: String,
    host: String,
    credentials: Secret,
    plan: Plan,
    slots: Vec<String>,
    dashboards: Dashboards,
    dashboard_update: bool,
    save_to: Option<String>,
    cleanup: bool,
    registered: bool,
    lines: Vec<String>,
    summary_saved: Option<String>,
    summary_dashboards: Vec<String>,
    summary_properties: Vec<String>,
}

impl Provisioning {
    /// Checks everything before the account is changed: the device id, the firmware's slots
    /// (the credentials slot's capacity sizes new credentials), the account and whether the
    /// device exists (`--reuse`/`--rotate` say what to do then), the templates. `None` without
    /// `--thinger-device`.
    pub fn prepare(
        args: &ProvisionArgs,
        file: &Path,
        input: &[u8],
        request: &Request,
        config: Option<&LoadedConfig>,
    ) -> CliResult<Option<Provisioning>> {
        let Some(raw) = &args.thinger_device else {
            return Ok(None);
        };
        let id = DeviceId::new(raw).map_err(cloud_error)?;
        let mut spec = DeviceSpec::new(id.clone());
        spec.name = args.thinger_name.clone();
        spec.description = args.thinger_description.clone();
        spec.asset_type = args.thinger_asset_type.clone();
        spec.asset_group = args.thinger_asset_group.clone();
        spec.product = args.thinger_product.clone();
        spec.check().map_err(cloud_error)?;

        let listing = thinger_patch_core::slots(input, &request.list_options())
            .map_err(|e| CliError::engine(file, &e))?;
        let capacity = listing
            .slots
            .iter()
            .find(|s| s.key == CREDENTIALS_KEY)
            .map(|s| s.capacity);
        let Some(capacity) = capacity else {
            return Err(CliError::new(
                exit::INVALID,
                format!(
                    "{}: --thinger-device {id}: the firmware has no {CREDENTIALS_KEY} slot, so the device's credentials cannot be written into it; declare the slot (thinger_patch.h / the thinger-patch-slots crate) and rebuild",
                    file.display()
                ),
            ));
        };
        if !listing.slots.iter().any(|s| s.key == DEVICE_KEY) {
            return Err(CliError::new(
                exit::INVALID,
                format!(
                    "{}: --thinger-device {id}: the firmware has no {DEVICE_KEY} slot for the device id; declare the slot and rebuild",
                    file.display()
                ),
            ));
        }
        let slots = listing.slots.iter().map(|s| s.key.clone()).collect();

        let settings = settings(&args.server, config)?;
        let host = settings.host.clone();
        let client = client(settings, &args.server)?;
        let user = client.user().map_err(cloud_error)?;
        let exists = client.device(&id).get().map_err(cloud_error)?.is_some();
        let plan = match (exists, args.reuse, args.rotate) {
            (false, false, false) => Plan::Create,
            (true, true, _) => Plan::Reuse,
            (true, _, true) => Plan::Rotate,
            (true, false, false) => {
                return Err(CliError::new(
                    exit::DEVICE,
                    format!(
                        "device {id} already exists on {user}'s account; its credentials cannot be read back: pass --reuse with them in the profile ({CREDENTIALS_KEY}), --rotate to give it new ones, or choose another id"
                    ),
                ));
            }
            (false, ..) => {
                return Err(CliError::new(
                    exit::DEVICE,
                    format!(
                        "device {id} does not exist on {user}'s account, so there is nothing to {}; leave out --reuse/--rotate to create it",
                        if args.reuse { "reuse" } else { "rotate" }
                    ),
                ));
            }
        };
        let credentials = if plan == Plan::Reuse {
            let given = request
                .values
                .iter()
                .rev()
                .find(|a| a.key == CREDENTIALS_KEY);
            match given {
                Some(a) => Secret::new(a.value.expose()),
                None => {
                    return Err(CliError::new(
                        exit::USAGE,
                        format!(
                            "--reuse {id}: the device's credentials cannot be read back from the cloud; give them as {CREDENTIALS_KEY} (a --profile that holds them, or --set-env {CREDENTIALS_KEY}=VAR), or use --rotate"
                        ),
                    ));
                }
            }
        } else {
            generate_credentials(Some(capacity)).map_err(|e| {
                CliError::new(
                    exit::INVALID,
                    format!(
                        "{}: slot {CREDENTIALS_KEY}: {e}; {}",
                        file.display(),
                        e.help()
                    ),
                )
            })?
        };

        let unknown = UnknownKeys::Strip;
        let subs = Substitutions {
            device: id.to_string(),
            user: user.clone(),
            host: host.clone(),
            name: spec.name.clone().unwrap_or_else(|| id.to_string()),
        };
        let dashboards = Dashboards::prepare(&args.dashboards, &subs, unknown)?;
        print_warnings(&dashboards.warnings());

        Ok(Some(Provisioning {
            client,
            spec,
            user,
            host,
            credentials,
            plan,
            slots,
            dashboards,
            dashboard_update: args.dashboard_update,
            save_to: args.save_credentials.clone(),
            cleanup: args.cleanup_on_failure,
            registered: false,
            lines: Vec::new(),
            summary_saved: None,
            summary_dashboards: Vec::new(),
            summary_properties: Vec::new(),
        }))
    }

    /// The device's identity as values for the firmware: applied after every other source.
    /// The host goes in only where the firmware has a slot for it.
    pub fn answers(&self) -> Vec<Assignment> {
        let by = || Origin::Provisioned {
            by: format!("Thinger.io device {}", self.spec.id),
        };
        let mut out = vec![
            Assignment::new(DEVICE_KEY, self.spec.id.as_str(), by()),
            Assignment::new(USER_KEY, self.user.as_str(), by()),
            Assignment::new(CREDENTIALS_KEY, self.credentials.expose(), by()),
            Assignment::new(HOST_KEY, self.host.as_str(), by()),
        ];
        out.retain(|a| self.slots.contains(&a.key));
        out
    }

    /// The request with the device's identity added (last, so it wins).
    pub fn apply(&self, request: &mut Request) {
        request.values.extend(self.answers());
    }

    /// Creates the device (or gives it the new credentials): right before the write.
    pub fn register(&mut self) -> CliResult<()> {
        let device = self.client.device(&self.spec.id);
        match self.plan {
            Plan::Create => device
                .create(&self.spec, &self.credentials)
                .map_err(|e| {
                    // The server may have acted on a request whose answer never came.
                    let unsure = matches!(e, thinger_patch_cloud::Error::Timeout { .. });
                    let id = self.spec.id.clone();
                    let e = cloud_error(e);
                    if unsure {
                        e.with_note(&format!("device {id} may have been created all the same: see thinger-patch thinger device show {id}; nothing was written"))
                    } else {
                        e.with_note("nothing was written")
                    }
                })?,
            Plan::Rotate => device.rotate(&self.credentials).map_err(cloud_error)?,
            Plan::Reuse => {}
        }
        self.registered = true;
        Ok(())
    }

    /// The write failed after [`Self::register`]: the error, with what became of the device.
    pub fn failed(&self, error: CliError) -> CliError {
        if !self.registered {
            return error;
        }
        let id = &self.spec.id;
        let note = match self.plan {
            Plan::Create if self.cleanup => match self.client.device(id).delete() {
                Ok(()) => format!(
                    "device {id}, created by this run, was deleted again (--cleanup-on-failure)"
                ),
                Err(e) => format!(
                    "device {id} was created by this run and could not be deleted ({e}); delete it with: thinger-patch thinger device delete {id}"
                ),
            },
            Plan::Create => format!(
                "device {id} was created on {}'s account by this run and is still there; run again with --rotate to use it, or delete it: thinger-patch thinger device delete {id} (--cleanup-on-failure does that by itself)",
                self.user
            ),
            Plan::Rotate => format!(
                "device {id} was given new credentials that no firmware holds yet; run again with --rotate"
            ),
            Plan::Reuse => return error,
        };
        error.with_note(&note)
    }

    /// After a successful write: the credentials saved (if asked), the dashboards pushed, and
    /// after a delivery the properties written.
    pub fn finish(
        &mut self,
        delivered: Option<Delivered<'_>>,
        properties: &PropertyArgs,
    ) -> CliResult<()> {
        let id = self.spec.id.clone();
        let verb = match self.plan {
            Plan::Create => "created device",
            Plan::Reuse => "reused device",
            Plan::Rotate => "new credentials for device",
        };
        self.lines.push(format!(
            "{verb} {id} on {}'s account ({}); its credentials ({} characters) are in the firmware, never shown",
            self.user,
            self.client.settings().api.url(""),
            self.credentials.len()
        ));
        if let Some(profile) = &self.save_to {
            let file = save(profile, &id, &self.credentials, &self.client)?;
            self.lines.push(format!(
                "saved device, user and credentials as [profiles.{profile}] of {} (mode 0600)",
                file.display()
            ));
            self.summary_saved = Some(format!("{}#profiles.{profile}", file.display()));
        }
        let pushed = self
            .dashboards
            .send(&self.client, self.dashboard_update)
            .map_err(|e| e.with_note(&format!("the firmware was written for device {id}")))?;
        self.summary_dashboards = pushed.clone();
        self.lines.extend(pushed);
        if let Some(d) = delivered
            && !properties.no_properties
        {
            let names = write_properties(
                &self.client,
                &id,
                d.fw_version.as_deref(),
                d.mac,
                d.image,
                true,
            )
            .map_err(|e| e.with_note("the firmware was delivered"))?;
            self.lines
                .push(format!("wrote properties {} of {id}", names.join(", ")));
            self.summary_properties = names;
        }
        Ok(())
    }

    /// The lines to print after the command's own summary.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The `thinger` object of `--json`.
    pub fn summary(&self) -> Summary {
        Summary {
            device: self.spec.id.to_string(),
            user: self.user.clone(),
            api: self.client.settings().api.url(""),
            action: match self.plan {
                Plan::Create => "created",
                Plan::Reuse => "reused",
                Plan::Rotate => "rotated",
            },
            credentials_length: self.credentials.len(),
            saved_to: self.summary_saved.clone(),
            dashboards: self.summary_dashboards.clone(),
            properties: self.summary_properties.clone(),
        }
    }

    /// What a dry run would do.
    pub fn plan_line(&self) -> String {
        let id = &self.spec.id;
        match self.plan {
            Plan::Create => format!(
                "would create device {id} on {}'s account with new {}-character credentials",
                self.user,
                self.credentials.len()
            ),
            Plan::Reuse => format!("would reuse device {id} with the profile's credentials"),
            Plan::Rotate => format!("would give device {id} new credentials"),
        }
    }
}

/// `ota FIRMWARE --thinger DEVICE`: the firmware, personalised with the device's own identity,
/// sent through the cloud with the `$ota` resources (thinger_patch_cloud::ota).
pub struct CloudOta {
    client: Client,
    id: DeviceId,
    user: String,
}

/// What a cloud OTA did, for the command's summary.
pub struct CloudOtaDone {
    pub up_to_date: Option<String>,
    pub report: thinger_patch_cloud::OtaReport,
    pub properties: Vec<String>,
}

impl CloudOta {
    /// The account and the device id (checked); nothing is sent yet.
    pub fn prepare(
        device: &str,
        server: &ServerArgs,
        config: Option<&LoadedConfig>,
    ) -> CliResult<CloudOta> {
        let id = DeviceId::new(device).map_err(cloud_error)?;
        let client = client(settings(server, config)?, server)?;
        let user = client.user().map_err(cloud_error)?;
        Ok(CloudOta { client, id, user })
    }

    /// Puts the device id (and the account's user, when nothing else gives one) into the
    /// request; a profile made for another device is refused, since that device's identity
    /// would then be sent to this one.
    pub fn apply(&self, request: &mut Request) -> CliResult<()> {
        let given = |key: &str| request.values.iter().rev().find(|a| a.key == key);
        if let Some(a) = given(DEVICE_KEY)
            && a.value.expose() != self.id.as_str()
        {
            return Err(CliError::new(
                exit::USAGE,
                format!(
                    "--thinger {}: the values give {DEVICE_KEY} = {} (from {}), another device; use that device's profile",
                    self.id,
                    a.value.expose(),
                    a.origin
                ),
            ));
        }
        let by = || Origin::Provisioned {
            by: format!("--thinger {}", self.id),
        };
        let (device_given, user_given) = (given(DEVICE_KEY).is_some(), given(USER_KEY).is_some());
        if !device_given {
            request
                .values
                .push(Assignment::new(DEVICE_KEY, self.id.as_str(), by()));
        }
        if !user_given {
            request
                .values
                .push(Assignment::new(USER_KEY, self.user.as_str(), by()));
        }
        Ok(())
    }

    /// Refuses an image that would come back without the device's credentials: it could
    /// never connect again, so no second OTA could repair it.
    pub fn check_identity(
        &self,
        file: &Path,
        slots: &[thinger_patch_core::personalize::SlotOutcome],
    ) -> CliResult<()> {
        let unset = |key: &str| {
            slots
                .iter()
                .any(|s| s.key == key && s.origin.is_none() && s.value.is_empty())
        };
        if let Some(key) = [CREDENTIALS_KEY, DEVICE_KEY, USER_KEY]
            .into_iter()
            .find(|k| unset(k))
        {
            return Err(CliError::new(
                exit::USAGE,
                format!(
                    "{}: --thinger {}: no value for slot {key}, so the device would restart without its identity and never reach the cloud again; give the device's profile (--profile NAME, as saved by --save-credentials)",
                    file.display(),
                    self.id
                ),
            ));
        }
        Ok(())
    }

    /// Sends `image` (an app image), then writes the properties unless `--no-properties`.
    #[allow(clippy::too_many_arguments)]
    pub fn send(
        &self,
        image: &[u8],
        version: Option<&str>,
        force: bool,
        compress: bool,
        properties: &PropertyArgs,
        progress: &mut dyn thinger_patch_cloud::Progress,
    ) -> CliResult<CloudOtaDone> {
        let report = self
            .client
            .ota(&self.id)
            .force(force)
            .compress(compress)
            .send(image, version, progress)
            .map_err(cloud_error)?;
        let up_to_date = match &report.outcome {
            thinger_patch_cloud::OtaOutcome::AlreadyUpToDate { version } => Some(version.clone()),
            thinger_patch_cloud::OtaOutcome::Updated => None,
        };
        let mut names = Vec::new();
        if up_to_date.is_none() && !properties.no_properties {
            names = write_properties(&self.client, &self.id, version, None, image, false)
                .map_err(|e| e.with_note("the device was updated"))?;
        }
        Ok(CloudOtaDone {
            up_to_date,
            report,
            properties: names,
        })
    }

    /// `DEVICE (user USER at API)`.
    pub fn describe(&self) -> String {
        format!(
            "Thinger.io device {} of {} at {}",
            self.id,
            self.user,
            self.client.settings().api.url("")
        )
    }
}

/// `batch --thinger-create`: each device is registered on the account as its board (or file)
/// is written, with the identity the ledger issued, and deleted again if that write fails
/// (the identity then goes back to the pool). A resumed or repeated identity is this series'
/// own device: an existing one is given the identity's credentials again.
pub struct Registrar {
    client: Client,
    user: String,
}

impl Registrar {
    pub fn new(server: &ServerArgs, config: Option<&LoadedConfig>) -> CliResult<Registrar> {
        let client = client(settings(server, config)?, server)?;
        let user = client.user().map_err(cloud_error)?;
        Ok(Registrar { client, user })
    }

    /// The account's user, for the firmware's `thinger_user` when no value gives one.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// Registers `device` with `credentials`; `Ok(true)` when this call created it.
    pub fn register(&self, device: &str, credentials: &str, ours: bool) -> Result<bool, String> {
        let id = DeviceId::new(device).map_err(|e| e.to_string())?;
        let if_exists = if ours {
            thinger_patch_cloud::IfExists::Rotate
        } else {
            thinger_patch_cloud::IfExists::Fail
        };
        match self.client.device(&id).ensure(
            &DeviceSpec::new(id.clone()),
            &Secret::new(credentials),
            if_exists,
        ) {
            Ok(thinger_patch_cloud::Ensured::Created) => Ok(true),
            Ok(_) => Ok(false),
            Err(e @ thinger_patch_cloud::Error::Exists { .. }) => Err(format!(
                "{e}: it is not this series' device (its credentials are unknown); forget the identity (ledger forget {device}) or delete the device on the account"
            )),
            Err(e) => Err(cloud_error(e).message),
        }
    }

    /// Deletes a device this run created, after its write failed; what happened, for the reason.
    pub fn unregister(&self, device: &str) -> String {
        let deleted = DeviceId::new(device)
            .map_err(|e| e.to_string())
            .and_then(|id| self.client.device(&id).delete().map_err(|e| e.to_string()));
        match deleted {
            Ok(()) => format!("device {device} deleted from the account again"),
            Err(e) => format!("device {device} stays on the account ({e})"),
        }
    }
}
