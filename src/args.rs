//! The personalisation arguments every command shares (`patch`, `flash`, `ota`
//! and `cargo thinger-patch`), and turning them into a [`Request`]: config
//! discovery, value sources, warnings.

use crate::CliResult;
use crate::exit::{self, CliError};
use clap::Args;
use std::path::{Path, PathBuf};
use thinger_patch_core::config::{Config, FILE_NAME, Source};
use thinger_patch_core::targets::{ConventionChoice, Pad, Placeholder};
use thinger_patch_core::values::{Assignment, Origin};
use thinger_patch_core::{Request, personalize::Personalized};
use thinger_patch_delivery::serial::{After, Before, FlashOptions};

#[derive(Debug, Clone, Default, Args)]
pub struct PersonalizeArgs {
    /// Config file [default: thinger-patch.toml in the current folder or a parent, then in the user config folder]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Credential profile from the config file ([profiles.NAME]); repeat for one output per profile
    #[arg(long = "profile", value_name = "NAME")]
    pub profiles: Vec<String>,
    /// Set a slot: KEY=VALUE (visible in process lists: prefer --set-env for secrets)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
    /// Set a slot from an environment variable: KEY=VAR
    #[arg(long = "set-env", value_name = "KEY=VAR")]
    pub set_env: Vec<String>,
    /// Legacy placeholder: KEY=LITERAL (everything after the first = is the literal text)
    #[arg(long = "placeholder", value_name = "KEY=LITERAL")]
    pub placeholders: Vec<String>,
    /// A legacy placeholder whose value is a secret (masked everywhere): KEY=LITERAL
    #[arg(long = "placeholder-secret", value_name = "KEY=LITERAL")]
    pub secret_placeholders: Vec<String>,
    /// Placeholder convention of firmware without slots: auto (any known one, when the file has no slots), none, or a name (pythonpatcher)
    #[arg(long, value_name = "NAME", default_value = "auto", value_parser = parse_convention)]
    pub convention: ConventionChoice,
    /// How to fill the rest of a legacy placeholder after a shorter value
    #[arg(long, value_enum, default_value_t = Pad::Nul)]
    pub pad: Pad,
    /// Ignore (with a warning) values whose key matches no slot in the firmware
    #[arg(long)]
    pub allow_missing: bool,
    /// Also accept x86/ARM host-program ELFs (programs that use the slot header or crate on a PC)
    #[arg(long)]
    pub host_elf: bool,
    /// Values answered in the guided mode (`setup`), applied after every other source: never on
    /// a command line, so never in a process list.
    #[arg(skip)]
    pub answers: Vec<Assignment>,
}

/// How to talk to a board's serial bootloader: shared by `flash`, `setup` and `batch`.
#[derive(Debug, Clone, Args)]
pub struct SerialArgs {
    /// Baud rate for the transfer (the connection starts at 115200)
    #[arg(short, long, value_name = "B", default_value_t = 460_800)]
    pub baud: u32,
    /// How to enter the serial bootloader: pulse DTR/RTS (auto-reset boards), or the chip is already in it
    #[arg(long, value_enum, default_value_t = Before::DefaultReset)]
    pub before: Before,
    /// After writing: reset the chip via RTS to run the firmware, or stay in the bootloader
    #[arg(long, value_enum, default_value_t = After::HardReset)]
    pub after: After,
    /// Talk to the ROM loader instead of uploading the flasher stub (slower, no compression)
    #[arg(long)]
    pub no_stub: bool,
}

impl Default for SerialArgs {
    fn default() -> Self {
        SerialArgs {
            baud: 460_800,
            before: Before::DefaultReset,
            after: After::HardReset,
            no_stub: false,
        }
    }
}

impl SerialArgs {
    /// The delivery crate's options with these settings and its defaults for the rest.
    pub fn options(&self) -> FlashOptions {
        FlashOptions {
            baud: self.baud,
            stub: !self.no_stub,
            before: self.before,
            after: self.after,
            ..FlashOptions::default()
        }
    }

    /// The same settings as `flash` arguments.
    pub fn to_argv(&self) -> Vec<std::ffi::OsString> {
        use clap::ValueEnum;
        let name = |v: Option<clap::builder::PossibleValue>| {
            v.map_or_else(String::new, |p| p.get_name().to_string())
        };
        let mut argv: Vec<std::ffi::OsString> = vec![
            "--baud".into(),
            self.baud.to_string().into(),
            "--before".into(),
            name(self.before.to_possible_value()).into(),
            "--after".into(),
            name(self.after.to_possible_value()).into(),
        ];
        if self.no_stub {
            argv.push("--no-stub".into());
        }
        argv
    }
}

/// `--convention`: `auto`, `none` or a convention's name.
pub fn parse_convention(s: &str) -> Result<ConventionChoice, String> {
    ConventionChoice::from_name(s).ok_or_else(|| {
        format!(
            "unknown convention; expected one of: {}",
            ConventionChoice::names().join(", ")
        )
    })
}

/// A config file and where it was found.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub path: PathBuf,
    pub config: Config,
    /// Profiles read from the user config file because the project's file does not have them
    /// (`--save-credentials` keeps a device's credentials there, outside any project).
    pub profile_files: std::collections::BTreeMap<String, PathBuf>,
}

impl LoadedConfig {
    /// The file a table (`defaults`, `profiles.NAME`) was read from.
    pub fn file_of(&self, table: &str) -> &Path {
        table
            .strip_prefix("profiles.")
            .and_then(|p| self.profile_files.get(p))
            .unwrap_or(&self.path)
    }
}

impl PersonalizeArgs {
    /// Finds and parses the config file; `None` when there is none and none is needed.
    pub fn load_config(&self, warnings: &mut Vec<String>) -> CliResult<Option<LoadedConfig>> {
        let path = match &self.config {
            Some(p) => Some(p.clone()),
            None => discover_config(),
        };
        let Some(path) = path else {
            if !self.profiles.is_empty() {
                return Err(CliError::new(
                    exit::INVALID,
                    format!(
                        "--profile needs a config file, and no {FILE_NAME} was found in the current folder, its parents or {}; create one or pass --config FILE",
                        user_config_path()
                            .map_or("the user config folder".into(), |p| p.display().to_string())
                    ),
                ));
            }
            return Ok(None);
        };
        let mut config = parse_config(&path)?;
        let _ = warnings;
        // A project's file, found by discovery: profiles it lacks come from the user's file.
        let mut profile_files = std::collections::BTreeMap::new();
        if self.config.is_none()
            && let Some(user) = user_config_path().filter(|u| u.is_file() && *u != path)
            && self
                .profiles
                .iter()
                .any(|p| !config.profiles.contains_key(p))
        {
            for (name, entries) in parse_config(&user)?.profiles {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    config.profiles.entry(name.clone())
                {
                    profile_files.insert(name, user.clone());
                    slot.insert(entries);
                }
            }
        }
        Ok(Some(LoadedConfig {
            path,
            config,
            profile_files,
        }))
    }

    /// The profiles to produce: the named ones, or one run without a profile.
    pub fn profile_runs(&self) -> Vec<Option<String>> {
        if self.profiles.is_empty() {
            vec![None]
        } else {
            self.profiles.iter().cloned().map(Some).collect()
        }
    }

    /// Resolves every value for `profile` into a request.
    pub fn request(
        &self,
        config: Option<&LoadedConfig>,
        profile: Option<&str>,
    ) -> CliResult<Request> {
        let mut values = Vec::new();
        let mut placeholders = Vec::new();
        // Every missing environment variable is reported at once, not one per run.
        let mut missing_env: Vec<String> = Vec::new();
        if let Some(lc) = config {
            let entries = lc
                .config
                .entries_for(profile)
                .map_err(|m| CliError::new(exit::INVALID, m.to_string()))?;
            for e in entries {
                let path = lc.file_of(&e.table);
                let file = path.display().to_string();
                let origin = match &e.source {
                    Source::Literal(_) => Origin::ConfigLiteral {
                        file: file.clone(),
                        table: e.table.clone(),
                    },
                    s => Origin::ConfigSource {
                        file: file.clone(),
                        table: e.table.clone(),
                        source: s.describe(),
                    },
                };
                if let Source::Env(var) = &e.source
                    && std::env::var_os(var).is_none()
                {
                    missing_env.push(format!(
                        "{var} (for {} in [{}] of {})",
                        e.key,
                        e.table,
                        path.display()
                    ));
                    continue;
                }
                let text = resolve_source(&e.source, path, &e.table, &e.key)?;
                values.push(Assignment::new(e.key, text, origin));
            }
            placeholders.extend(lc.config.placeholders.iter().cloned());
        }
        for spec in &self.set_env {
            let (key, var) = split_kv(spec, "--set-env", "KEY=VAR")?;
            if std::env::var_os(var).is_none() {
                missing_env.push(format!("{var} (for {key}, --set-env {key}={var})"));
                continue;
            }
            let text = env_var(var)
                .map_err(|m| CliError::new(exit::INVALID, format!("--set-env {key}={var}: {m}")))?;
            values.push(Assignment::new(
                key,
                text,
                Origin::Environment {
                    var: var.to_string(),
                },
            ));
        }
        if !missing_env.is_empty() {
            return Err(CliError::new(
                exit::INVALID,
                format!(
                    "{} environment variable(s) not set: {}; set them, or give the values another way",
                    missing_env.len(),
                    missing_env.join(", ")
                ),
            ));
        }
        for spec in &self.set {
            let (key, value) = split_kv(spec, "--set", "KEY=VALUE")?;
            values.push(Assignment::new(key, value, Origin::CommandLine));
        }
        values.extend(self.answers.iter().cloned());
        let marked = self.secret_placeholders.iter().map(|s| (s, true));
        for (spec, secret) in self.placeholders.iter().map(|s| (s, false)).chain(marked) {
            let flag = if secret {
                "--placeholder-secret"
            } else {
                "--placeholder"
            };
            let p = Placeholder::parse(spec)
                .map_err(|m| CliError::new(exit::USAGE, format!("{flag}: {m}")))?;
            placeholders.retain(|q: &Placeholder| q.key != p.key);
            placeholders.push(Placeholder { secret, ..p });
        }
        Ok(Request {
            values,
            placeholders,
            pad: self.pad,
            allow_missing: self.allow_missing,
            parse: Some(thinger_patch_core::ParseOptions {
                allow_host_elf: self.host_elf,
                ..Default::default()
            }),
            conventions: self.convention,
        })
    }
}

/// Personalises `input` (read from `file`) for one profile: resolves the
/// values, runs [`thinger_patch_core::personalize`], and names the file and profile in
/// any refusal.
pub fn personalize_for(
    args: &PersonalizeArgs,
    file: &Path,
    input: &[u8],
    config: Option<&LoadedConfig>,
    profile: Option<&str>,
) -> CliResult<Personalized> {
    personalize_request(file, input, &args.request(config, profile)?, profile)
}

/// Personalises `input` with a request already resolved (so that no value source is asked
/// twice); any refusal names the file and profile.
pub fn personalize_request(
    file: &Path,
    input: &[u8],
    request: &Request,
    profile: Option<&str>,
) -> CliResult<Personalized> {
    thinger_patch_core::personalize(input, request).map_err(|e| {
        let what = profile.map_or(String::new(), |p| format!(" (profile {p})"));
        CliError::new(
            exit::INVALID,
            format!("{}{what}: {}", file.display(), crate::messages::error(&e)),
        )
    })
}

/// One line per slot: key, kind, capacity, value (masked for secrets), origin.
pub fn slot_lines(slots: &[thinger_patch_core::personalize::SlotOutcome]) -> Vec<String> {
    slots
        .iter()
        .map(|o| {
            let from = o
                .origin
                .as_ref()
                .map_or("unchanged".to_string(), |x| x.to_string());
            format!(
                "  {:<20} {:<11} {:>4}  {:<24} {}",
                o.key,
                o.kind,
                o.capacity,
                format!("{:?}", o.value),
                from
            )
        })
        .collect()
}

/// Warnings that need the result, about secret literals in a config file: one that git tracks,
/// and one that others can read (a config without secret values may be world-readable: every
/// example in a fresh clone is).
pub fn result_warnings(p: &Personalized) -> Vec<String> {
    let mut out = Vec::new();
    let mut loose_reported = std::collections::BTreeSet::new();
    for s in &p.slots {
        let (true, Some(Origin::ConfigLiteral { file, table })) = (s.secret, &s.origin) else {
            continue;
        };
        if git_tracks(Path::new(file)) {
            out.push(format!(
                "secret slot {} is a literal in [{table}] of {file}, which git tracks: move it to {{ env = \"VAR\" }}, {{ file = \"...\" }} (untracked) or {{ prompt = true }}",
                s.key
            ));
        }
        if let Some(mode) = loose_mode(Path::new(file))
            && loose_reported.insert(file.clone())
        {
            out.push(format!(
                "{file} is readable by group or others (mode {mode:03o}) and holds the secret value of {}: run chmod 600 {file}",
                s.key
            ));
        }
    }
    out
}

fn split_kv<'a>(spec: &'a str, flag: &str, form: &str) -> CliResult<(&'a str, &'a str)> {
    match spec.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        // Never echo the argument: it may be a secret.
        _ => Err(CliError::new(exit::USAGE, format!("{flag} expects {form}"))),
    }
}

fn env_var(var: &str) -> Result<String, String> {
    match std::env::var(var) {
        Ok(v) => Ok(v),
        Err(std::env::VarError::NotPresent) => {
            Err(format!("environment variable {var} is not set"))
        }
        Err(std::env::VarError::NotUnicode(_)) => {
            Err(format!("environment variable {var} is not valid UTF-8"))
        }
    }
}

fn resolve_source(source: &Source, config: &Path, table: &str, key: &str) -> CliResult<String> {
    let ctx = |m: String| {
        CliError::new(
            exit::INVALID,
            format!("{}: [{table}] {key}: {m}", config.display()),
        )
    };
    match source {
        Source::Literal(v) => Ok(v.expose().to_string()),
        Source::Env(var) => env_var(var).map_err(ctx),
        Source::File(p) => {
            let path = config.parent().unwrap_or(Path::new(".")).join(p);
            let bytes =
                super::fsio::read_limited(&path, super::fsio::MAX_TEXT_INPUT).map_err(|e| {
                    CliError::new(
                        e.code,
                        format!("{}: [{table}] {key}: {}", config.display(), e.message),
                    )
                })?;
            let mut text = String::from_utf8(bytes)
                .map_err(|_| ctx(format!("{} is not UTF-8", path.display())))?;
            // Files written by editors and `echo` end in one newline that is not part of the value.
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            Ok(text)
        }
        Source::Prompt => {
            use std::io::IsTerminal;
            if !std::io::stdin().is_terminal() {
                return Err(ctx(
                    "{ prompt = true } needs a terminal; use { env = \"VAR\" } in scripts and CI"
                        .into(),
                ));
            }
            rpassword::prompt_password(format!("{key} ([{table}], input hidden): ")).map_err(|e| {
                CliError::new(
                    exit::IO,
                    format!("cannot read {key} from the terminal: {e}"),
                )
            })
        }
        Source::Keyring(spec) => keyring_get(spec).map_err(ctx),
    }
}

#[cfg(feature = "keyring")]
fn keyring_get(spec: &str) -> Result<String, String> {
    let (service, account) = spec.split_once('/').ok_or("expected service/account")?;
    keyring::Entry::new(service, account)
        .and_then(|e| e.get_password())
        .map_err(|e| format!("keyring entry {spec}: {e}"))
}

#[cfg(not(feature = "keyring"))]
fn keyring_get(_spec: &str) -> Result<String, String> {
    Err("this thinger-patch was built without keyring support: install it with `cargo install thinger-patch --features keyring`, or use { env = \"VAR\" }".into())
}

fn parse_config(path: &Path) -> CliResult<Config> {
    let text = super::fsio::read_limited(path, super::fsio::MAX_TEXT_INPUT)?;
    let text = String::from_utf8(text).map_err(|_| {
        CliError::new(
            exit::INVALID,
            format!("{}: the config file is not UTF-8", path.display()),
        )
    })?;
    Config::parse(&text, &path.display().to_string())
        .map_err(|m| CliError::new(exit::INVALID, m.to_string()))
}

/// `thinger-patch.toml` in the current folder or a parent, then in the user config folder.
fn discover_config() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|d| d.join(FILE_NAME))
        .find(|p| p.is_file())
        .or_else(|| user_config_path().filter(|p| p.is_file()))
}

pub(crate) fn user_config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            if cfg!(windows) {
                std::env::var_os("APPDATA").map(PathBuf::from)
            } else if cfg!(target_os = "macos") {
                std::env::var_os("HOME")
                    .map(|h| PathBuf::from(h).join("Library/Application Support"))
            } else {
                std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config"))
            }
        })?;
    Some(base.join("thinger-patch").join(FILE_NAME))
}

#[cfg(unix)]
fn loose_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn loose_mode(_path: &Path) -> Option<u32> {
    None
}

/// Whether git tracks `file`. The repository is the user's (maybe a fresh clone of someone
/// else's), so git runs with nothing its configuration could make it execute: no fsmonitor
/// hook, no hooks, no pager, no prompts, no optional index writes; and
/// `safe.directory` stays in force (a repository owned by another user is not read at all).
fn git_tracks(file: &Path) -> bool {
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::process::Command::new("git")
        .args([
            "--no-pager",
            "-c",
            "core.fsmonitor=false",
            "-c",
            "core.hooksPath=/dev/null",
            "-c",
            "core.untrackedCache=false",
        ])
        .arg("-C")
        .arg(dir)
        .args(["ls-files", "--error-unmatch", "--"])
        .arg(file.file_name().unwrap_or_default())
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_EXTERNAL_DIFF")
        .env_remove("GIT_PAGER")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
