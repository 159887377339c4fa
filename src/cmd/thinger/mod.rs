//! `thinger-patch thinger login|whoami|logout|device ...`: the Thinger.io account, through
//! `thinger-patch-cloud`. Where the account is: `[thinger]` in thinger-patch.toml, then
//! `--thinger-host`, `--thinger-api` (plain http only for loopback), `--thinger-user`. The
//! credential: `THINGER_TOKEN` (a long-lived access token), else the tokens cached by `login`
//! (mode 0600 in the user config folder; the password is never stored). Device credentials are
//! never printed: `--save-credentials PROFILE` writes them into that profile of the user config
//! file (0600), where `patch --profile PROFILE` finds them.
//!
//! `dashboard` pushes dashboard templates; `provision` is what `patch`, `flash` and `ota` do
//! with `--thinger-device` / `--thinger`.

pub mod dashboard;
pub mod provision;

use crate::args::{LoadedConfig, PersonalizeArgs};
use crate::exit::{self, CliError};
use crate::{CliResult, outln};
use clap::{Args, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use thinger_patch_cloud::{
    Client, Credential, DeviceId, DeviceSpec, Ensured, IfExists, Secret, Settings,
    generate_credentials,
};

/// A long-lived access token from the Thinger.io console.
pub const TOKEN_ENV: &str = "THINGER_TOKEN";
/// The password for `thinger login` without a terminal (scripts, CI).
pub const PASSWORD_ENV: &str = "THINGER_PASSWORD";

#[derive(Debug, Args)]
pub struct ThingerArgs {
    #[command(subcommand)]
    pub action: ThingerAction,
    #[command(flatten)]
    pub account: AccountArgs,
}

/// Which Thinger.io account and config file.
#[derive(Debug, Clone, Default, Args)]
pub struct AccountArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// Config file [default: thinger-patch.toml here or in a parent, then in the user config folder]
    #[arg(long, value_name = "FILE", global = true)]
    pub config: Option<PathBuf>,
}

/// Which Thinger.io server and user; shared by every command that talks to the cloud.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Thinger.io account")]
pub struct ServerArgs {
    /// The Thinger.io server [default: host in [thinger] of thinger-patch.toml, else iot.thinger.io]
    #[arg(long = "thinger-host", value_name = "HOST", global = true)]
    pub thinger_host: Option<String>,
    /// The API's base URL [default: from the host]; http:// only for loopback addresses
    #[arg(long = "thinger-api", value_name = "URL", global = true)]
    pub thinger_api: Option<String>,
    /// The Thinger.io user [default: user in [thinger], else the token's]
    #[arg(long = "thinger-user", value_name = "USER", global = true)]
    pub thinger_user: Option<String>,
    /// Seconds to wait for each answer of the API (0.1 to 86400; retries of 5xx, 429 and
    /// timed-out reads come on top, at most 3, with backoff)
    #[arg(long = "thinger-timeout", value_name = "S", default_value = "60", global = true, value_parser = crate::cmd::ota::parse_seconds, allow_negative_numbers = true)]
    pub thinger_timeout: std::time::Duration,
}

/// What the flags give when none is typed (for commands built in code, e.g. by `setup`).
impl Default for ServerArgs {
    fn default() -> Self {
        ServerArgs {
            thinger_host: None,
            thinger_api: None,
            thinger_user: None,
            thinger_timeout: DEFAULT_TIMEOUT,
        }
    }
}

/// `--thinger-timeout`'s default.
const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Debug, Subcommand)]
pub enum ThingerAction {
    /// Exchange the user's password for tokens, cached (0600) for the next commands; the password is not stored
    Login,
    /// Which account, server and credential the commands use
    Whoami {
        #[arg(long)]
        json: bool,
    },
    /// Forget the cached tokens
    Logout,
    /// Create, show, rotate or delete a device on the account
    Device {
        #[command(subcommand)]
        action: DeviceAction,
    },
    /// Personalise dashboard templates for a device and push them to the account
    Dashboard {
        #[command(subcommand)]
        action: dashboard::DashboardAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum DeviceAction {
    /// Create a device (type Generic) with credentials from the system's CSPRNG
    Create {
        /// The device id (1 to 32 of a-z A-Z 0-9 _ -)
        id: String,
        /// Its name in the console
        #[arg(long)]
        name: Option<String>,
        /// Its description
        #[arg(long)]
        description: Option<String>,
        /// Length of the credentials (6 to 64; the firmware's thinger_credentials slot must hold them)
        #[arg(long, value_name = "N", default_value_t = 32)]
        credentials_length: usize,
        /// Save device, user, host and credentials as [profiles.PROFILE] of the user config file (0600): the credentials are never shown and cannot be read back
        #[arg(long, value_name = "PROFILE")]
        save_credentials: String,
    },
    /// Show a device (never its credentials)
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Give a device new credentials (the firmware must then be patched with them)
    Rotate {
        id: String,
        #[arg(long, value_name = "N", default_value_t = 32)]
        credentials_length: usize,
        /// Save them as [profiles.PROFILE] of the user config file (0600)
        #[arg(long, value_name = "PROFILE")]
        save_credentials: String,
    },
    /// Delete a device from the account
    Delete { id: String },
}

pub fn run(args: &ThingerArgs) -> CliResult {
    let personalize = PersonalizeArgs {
        config: args.account.config.clone(),
        ..Default::default()
    };
    let mut warnings = Vec::new();
    let config = personalize.load_config(&mut warnings)?;
    crate::print_warnings(&warnings);
    if let ThingerAction::Dashboard {
        action: dashboard::DashboardAction::Push(push),
    } = &args.action
    {
        return dashboard::push(push, &args.account.server, config.as_ref());
    }
    let settings = settings(&args.account.server, config.as_ref())?;
    let cache = cache_path()?;
    match &args.action {
        ThingerAction::Login => {
            let user = match &settings.user {
                Some(u) => u.clone(),
                None => ask_text("Thinger.io user: ")?,
            };
            let password = match std::env::var(PASSWORD_ENV) {
                Ok(p) if !p.is_empty() => p,
                _ if std::io::stdin().is_terminal() => {
                    rpassword::prompt_password(format!("Password of {user}: ")).map_err(|e| {
                        CliError::new(exit::IO, format!("cannot read the password: {e}"))
                    })?
                }
                _ => {
                    return Err(CliError::new(
                        exit::USAGE,
                        format!(
                            "thinger login asks for the password on a terminal; without one, set {PASSWORD_ENV}, or use an access token in {TOKEN_ENV} and skip login"
                        ),
                    ));
                }
            };
            let client = Client::https(
                settings.with_user(&user).map_err(cloud_error)?,
                Credential::Password {
                    user: user.clone(),
                    password: Secret::new(password),
                    cache: Some(cache.clone()),
                },
            );
            let who = client.login().map_err(cloud_error)?;
            outln!(
                "logged in as {} at {}; tokens cached in {} (the password is not stored)",
                who.user,
                who.api,
                cache.display()
            );
        }
        ThingerAction::Whoami { json } => {
            let who = client(settings, &args.account.server)?
                .whoami()
                .map_err(cloud_error)?;
            if *json {
                let doc = serde_json::json!({
                    "user": who.user,
                    "api": who.api,
                    "credential": who.credential.to_string(),
                    "expires_at": who.expires_at,
                });
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&doc).expect("identity serialises")
                );
            } else {
                outln!("{} at {} ({})", who.user, who.api, who.credential);
            }
        }
        ThingerAction::Logout => {
            let removed = thinger_patch_cloud::auth::remove_cache(&cache).map_err(cloud_error)?;
            outln!(
                "{}",
                if removed {
                    format!("logged out: removed {}", cache.display())
                } else {
                    "no cached login".to_string()
                }
            );
        }
        ThingerAction::Device { action } => {
            device(action, client(settings, &args.account.server)?)?
        }
        ThingerAction::Dashboard { .. } => unreachable!("pushed above"),
    }
    Ok(exit::OK)
}

fn device(action: &DeviceAction, client: Client) -> CliResult<()> {
    let id = |s: &str| DeviceId::new(s).map_err(cloud_error);
    match action {
        DeviceAction::Create {
            id: raw,
            name,
            description,
            credentials_length,
            save_credentials,
        } => {
            let id = id(raw)?;
            let creds = generate_credentials(Some(*credentials_length)).map_err(cloud_error)?;
            let mut spec = DeviceSpec::new(id.clone());
            spec.name = name.clone();
            spec.description = description.clone();
            let ensured = client
                .device(&id)
                .ensure(&spec, &creds, IfExists::Fail)
                .map_err(cloud_error)?;
            debug_assert!(matches!(ensured, Ensured::Created));
            let file = save(save_credentials, &id, &creds, &client)?;
            outln!(
                "created device {id}; its credentials ({} characters) are in [profiles.{save_credentials}] of {} (mode 0600), never shown",
                creds.expose().len(),
                file.display()
            );
        }
        DeviceAction::Show { id: raw, json } => {
            let id = id(raw)?;
            let info = client
                .device(&id)
                .get()
                .map_err(cloud_error)?
                .ok_or_else(|| {
                    CliError::new(
                        exit::DEVICE,
                        format!("device {id} does not exist on the account"),
                    )
                })?;
            if *json {
                let doc = serde_json::json!({
                    "device": info.device,
                    "name": info.name,
                    "description": info.description,
                    "type": info.kind,
                    "enabled": info.enabled,
                    "connected": info.connected,
                    "product": info.product,
                });
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&doc).expect("device serialises")
                );
            } else {
                outln!(
                    "{}  {}  {}{}",
                    info.device,
                    info.kind.as_deref().unwrap_or("-"),
                    match info.connected {
                        Some(true) => "online",
                        Some(false) => "offline",
                        None => "-",
                    },
                    info.name
                        .as_deref()
                        .map_or(String::new(), |n| format!("  {n:?}"))
                );
            }
        }
        DeviceAction::Rotate {
            id: raw,
            credentials_length,
            save_credentials,
        } => {
            let id = id(raw)?;
            let creds = generate_credentials(Some(*credentials_length)).map_err(cloud_error)?;
            client.device(&id).rotate(&creds).map_err(cloud_error)?;
            let file = save(save_credentials, &id, &creds, &client)?;
            outln!(
                "new credentials for {id} in [profiles.{save_credentials}] of {} (mode 0600); patch and flash the firmware with them, the old ones no longer work",
                file.display()
            );
        }
        DeviceAction::Delete { id: raw } => {
            let id = id(raw)?;
            client.device(&id).delete().map_err(cloud_error)?;
            outln!("deleted device {id}");
        }
    }
    Ok(())
}

/// The account's settings: `[thinger]` of the config file, then the flags.
pub(crate) fn settings(server: &ServerArgs, config: Option<&LoadedConfig>) -> CliResult<Settings> {
    let table = match config {
        Some(c) => {
            let text = std::fs::read_to_string(&c.path)
                .map_err(|e| CliError::new(exit::IO, format!("{}: {e}", c.path.display())))?;
            let doc: toml::Table = toml::from_str(&text)
                .map_err(|e| CliError::new(exit::INVALID, format!("{}: {e}", c.path.display())))?;
            doc.get("thinger").and_then(|t| t.as_table()).cloned()
        }
        None => None,
    };
    let mut s = Settings::from_table(table.as_ref()).map_err(cloud_error)?;
    if let Some(h) = &server.thinger_host {
        s = s.with_host(h).map_err(cloud_error)?;
    }
    if let Some(a) = &server.thinger_api {
        s = s.with_api_url(a).map_err(cloud_error)?;
    }
    if let Some(u) = &server.thinger_user {
        s = s.with_user(u).map_err(cloud_error)?;
    }
    Ok(s)
}

/// A client with `THINGER_TOKEN`, else the cached login, waiting `--thinger-timeout` per answer.
pub(crate) fn client(settings: Settings, server: &ServerArgs) -> CliResult<Client> {
    let cache = cache_path()?;
    let credential = match std::env::var(TOKEN_ENV) {
        Ok(t) if !t.is_empty() => Credential::Token(Secret::new(t)),
        _ if cache.is_file() => Credential::Cached { cache },
        _ => {
            return Err(CliError::new(
                exit::USAGE,
                format!(
                    "no Thinger.io credential: set {TOKEN_ENV} to an access token (console: Access Tokens), or run thinger-patch thinger login"
                ),
            ));
        }
    };
    Ok(Client::https(settings, credential).with_timeout(server.thinger_timeout))
}

/// Where `login` caches its tokens: beside the user config file.
pub(crate) fn cache_path() -> CliResult<PathBuf> {
    crate::args::user_config_path()
        .map(|p| p.with_file_name("thinger-login.json"))
        .ok_or_else(|| CliError::new(exit::IO, "no user config folder (HOME is not set)"))
}

/// Writes device, user, host and credentials into `[profiles.NAME]` of the user config file
/// (kept comments, mode 0600 since it now holds a secret).
pub(crate) fn save(
    profile: &str,
    id: &DeviceId,
    creds: &Secret,
    client: &Client,
) -> CliResult<PathBuf> {
    let path = crate::args::user_config_path()
        .ok_or_else(|| CliError::new(exit::IO, "no user config folder (HOME is not set)"))?;
    let mut doc = match std::fs::read_to_string(&path) {
        Ok(t) => t.parse::<toml_edit::DocumentMut>().map_err(|e| {
            CliError::new(exit::INVALID, format!("{}: not valid TOML ({e}); the credentials were not saved: rotate them once it is fixed", path.display()))
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => toml_edit::DocumentMut::new(),
        Err(e) => return Err(CliError::new(exit::IO, format!("{}: {e}", path.display()))),
    };
    let profiles = doc
        .entry("profiles")
        .or_insert_with(|| {
            let mut t = toml_edit::Table::new();
            t.set_implicit(true);
            toml_edit::Item::Table(t)
        })
        .as_table_mut()
        .ok_or_else(|| {
            CliError::new(
                exit::INVALID,
                format!("{}: `profiles` is not a table", path.display()),
            )
        })?;
    let table = profiles
        .entry(profile)
        .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()))
        .as_table_mut()
        .ok_or_else(|| {
            CliError::new(
                exit::INVALID,
                format!("{}: `profiles.{profile}` is not a table", path.display()),
            )
        })?;
    table.insert("thinger_device", toml_edit::value(id.to_string()));
    if let Ok(user) = client.user() {
        table.insert("thinger_user", toml_edit::value(user));
    }
    // The public cloud is the firmware's default; a private server must be written in.
    let host = &client.settings().host;
    if host != Settings::default().host.as_str() {
        table.insert("thinger_host", toml_edit::value(host.as_str()));
    }
    table.insert("thinger_credentials", toml_edit::value(creds.expose()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError::new(exit::IO, format!("{}: {e}", dir.display())))?;
    }
    crate::fsio::write_atomic(&path, doc.to_string().as_bytes(), true)?;
    Ok(path)
}

fn ask_text(prompt: &str) -> CliResult<String> {
    if !std::io::stdin().is_terminal() {
        return Err(CliError::new(
            exit::USAGE,
            "name the user with --thinger-user USER (or user in [thinger])",
        ));
    }
    inquire::Text::new(prompt.trim_end_matches([':', ' ']))
        .prompt()
        .map_err(|e| CliError::new(exit::INTERRUPTED, format!("no user given: {e}")))
}

/// The library's error with its advice and exit code; never a secret (the library masks them).
pub(crate) fn cloud_error(e: thinger_patch_cloud::Error) -> CliError {
    CliError::new(e.exit_code(), format!("{e}; {}", e.help()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Flags {
        #[command(flatten)]
        server: ServerArgs,
    }

    #[test]
    fn the_default_in_code_is_the_flags_default() {
        let parsed = Flags::parse_from(["t"]).server;
        let coded = ServerArgs::default();
        assert_eq!(parsed.thinger_timeout, coded.thinger_timeout);
        assert_eq!(parsed.thinger_host, coded.thinger_host);
    }
}
