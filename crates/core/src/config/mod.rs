//! `thinger-patch.toml`: credential profiles, defaults, legacy placeholder
//! mappings and the tables reserved for build, delivery and cloud features.
//! `docs/config.md` is the full description. Parsing only: resolving `env`,
//! `file`, `prompt` and `keyring` sources is the front end's job (it does I/O).

pub mod build;

use crate::targets::Placeholder;
use crate::targets::record::is_valid_key;
use std::collections::BTreeMap;

/// Tables that belong to other features and never hold slot values.
pub const RESERVED_TABLES: &[&str] = &["build", "flash", "ota", "thinger"];
/// The config file's name.
pub const FILE_NAME: &str = "thinger-patch.toml";

/// Where a value comes from.
#[derive(Clone, PartialEq, Eq)]
pub enum Source {
    /// The value itself, written in the file.
    Literal(crate::values::Value),
    /// `{ env = "VAR" }`: an environment variable.
    Env(String),
    /// A path, relative to the config file's folder unless absolute.
    File(String),
    /// `{ prompt = true }`: asked on the terminal, input hidden.
    Prompt,
    /// `service/account` in the system keyring.
    Keyring(String),
}

/// A config file that cannot be used, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {kind}")]
pub struct ConfigError {
    /// How the file is named in messages (its path).
    pub file: String,
    /// What is wrong.
    pub kind: ConfigErrorKind,
}

/// What is wrong with a config file. No message ever holds a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigErrorKind {
    /// Not TOML at all.
    #[error("not valid TOML: {0}")]
    Toml(String),
    /// A table name that must be a table holds something else.
    #[error("[{0}] must be a table")]
    NotATable(String),
    /// A profile name with other characters.
    #[error("profile name {0:?} must match ^[A-Za-z0-9_-]+$")]
    ProfileName(String),
    /// A `[placeholders]` entry that is not a non-empty string or `{ literal, secret }`.
    #[error(
        "[placeholders] {0}: expected the literal text as a non-empty string, or {{ literal = \"...\", secret = true }}"
    )]
    PlaceholderLiteral(String),
    /// A top-level table or key this tool does not know.
    #[error(
        "unknown table or key {name:?}{hint}; expected [defaults], [profiles.NAME], [placeholders], [build], [flash], [ota] or [thinger]"
    )]
    UnknownTable {
        /// The name found.
        name: String,
        /// A likely correction, with its leading space, or empty.
        hint: &'static str,
    },
    /// A key that is not a valid slot key.
    #[error("[{table}] key {key:?} is not a valid slot key (^[A-Za-z_][A-Za-z0-9_.-]{{0,30}}$)")]
    InvalidKey {
        /// The table.
        table: String,
        /// The key.
        key: String,
    },
    /// A value that is neither a string nor a known source table.
    #[error(
        "[{table}] {key}: expected a string, or one of {{ env = \"VAR\" }}, {{ file = \"path\" }}, {{ prompt = true }}, {{ keyring = \"service/account\" }}"
    )]
    BadSource {
        /// The table.
        table: String,
        /// The key.
        key: String,
    },
    /// `--profile NAME` names no `[profiles.NAME]`.
    #[error("no profile named {name:?} (profiles here: {known})")]
    NoProfile {
        /// The name asked for.
        name: String,
        /// The profiles the file has, comma-separated, or `none`.
        known: String,
    },
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Literal(v) => write!(f, "Literal({v:?})"),
            Source::Env(v) => write!(f, "Env({v})"),
            Source::File(p) => write!(f, "File({p})"),
            Source::Prompt => f.write_str("Prompt"),
            Source::Keyring(k) => write!(f, "Keyring({k})"),
        }
    }
}

impl Source {
    /// `env KITCHEN_PW`, `file secrets/pw`, ... (never the literal's text).
    pub fn describe(&self) -> String {
        match self {
            Source::Literal(_) => "literal".into(),
            Source::Env(v) => format!("env {v}"),
            Source::File(p) => format!("file {p}"),
            Source::Prompt => "prompt".into(),
            Source::Keyring(k) => format!("keyring {k}"),
        }
    }
}

/// A key and its source in one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The slot key.
    pub key: String,
    /// Where its value comes from.
    pub source: Source,
    /// `defaults` or `profiles.NAME`.
    pub table: String,
}

/// A parsed config file.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// How to name the file in messages (its path).
    pub label: String,
    /// `[defaults]`: every profile's starting values.
    pub defaults: Vec<Entry>,
    /// `[profiles.NAME]`, by name.
    pub profiles: BTreeMap<String, Vec<Entry>>,
    /// `[placeholders]`: legacy placeholder mappings.
    pub placeholders: Vec<Placeholder>,
    /// `[build]`, `[flash]`, `[ota]`, `[thinger]`, kept for their features.
    pub reserved: BTreeMap<String, toml::Table>,
}

/// `^[A-Za-z0-9_-]+$`
pub fn is_valid_profile_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl Config {
    /// Parses the text of a config file; `label` names it in errors.
    pub fn parse(text: &str, label: &str) -> Result<Config, ConfigError> {
        let err = |kind: ConfigErrorKind| ConfigError {
            file: label.to_string(),
            kind,
        };
        let doc: toml::Table = text
            .parse()
            .map_err(|e: toml::de::Error| err(ConfigErrorKind::Toml(e.message().to_string())))?;
        let mut config = Config {
            label: label.to_string(),
            ..Config::default()
        };
        for (name, item) in doc {
            match name.as_str() {
                "defaults" => {
                    config.defaults =
                        entries(table(&item, "defaults").map_err(err)?, "defaults").map_err(err)?
                }
                "profiles" => {
                    for (p, t) in table(&item, "profiles").map_err(err)? {
                        if !is_valid_profile_name(p) {
                            return Err(err(ConfigErrorKind::ProfileName(p.clone())));
                        }
                        let tname = format!("profiles.{p}");
                        let t = table(t, &tname).map_err(err)?;
                        config
                            .profiles
                            .insert(p.clone(), entries(t, &tname).map_err(err)?);
                    }
                }
                "placeholders" => {
                    for (key, v) in table(&item, "placeholders").map_err(err)? {
                        let p = placeholder(key, v)
                            .ok_or_else(|| err(ConfigErrorKind::PlaceholderLiteral(key.clone())))?;
                        config.placeholders.push(p);
                    }
                }
                r if RESERVED_TABLES.contains(&r) => {
                    config
                        .reserved
                        .insert(name.clone(), table(&item, r).map_err(err)?.clone());
                }
                other => {
                    let hint = match other {
                        "profile" => " (did you mean [profiles.NAME]?)",
                        "default" => " (did you mean [defaults]?)",
                        "placeholder" => " (did you mean [placeholders]?)",
                        _ => "",
                    };
                    return Err(err(ConfigErrorKind::UnknownTable {
                        name: other.to_string(),
                        hint,
                    }));
                }
            }
        }
        Ok(config)
    }

    /// The entries for a profile: `[defaults]`, overridden by `[profiles.NAME]`
    /// (or only the defaults when `profile` is `None`).
    pub fn entries_for(&self, profile: Option<&str>) -> Result<Vec<Entry>, ConfigError> {
        let mut out = self.defaults.clone();
        if let Some(p) = profile {
            let entries = self.profiles.get(p).ok_or_else(|| {
                let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
                ConfigError {
                    file: self.label.clone(),
                    kind: ConfigErrorKind::NoProfile {
                        name: p.to_string(),
                        known: if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        },
                    },
                }
            })?;
            out.retain(|d| !entries.iter().any(|e| e.key == d.key));
            out.extend(entries.iter().cloned());
        }
        Ok(out)
    }
}

fn table<'t>(item: &'t toml::Value, name: &str) -> Result<&'t toml::Table, ConfigErrorKind> {
    item.as_table()
        .ok_or_else(|| ConfigErrorKind::NotATable(name.to_string()))
}

fn entries(t: &toml::Table, table_name: &str) -> Result<Vec<Entry>, ConfigErrorKind> {
    t.iter()
        .map(|(key, v)| {
            if !is_valid_key(key) {
                return Err(ConfigErrorKind::InvalidKey {
                    table: table_name.to_string(),
                    key: key.clone(),
                });
            }
            Ok(Entry {
                key: key.clone(),
                source: source(v).ok_or_else(|| ConfigErrorKind::BadSource {
                    table: table_name.to_string(),
                    key: key.clone(),
                })?,
                table: table_name.to_string(),
            })
        })
        .collect()
}

/// `key = "LITERAL"` or `key = { literal = "LITERAL", secret = true }`.
fn placeholder(key: &str, v: &toml::Value) -> Option<Placeholder> {
    let (literal, secret) = match v {
        toml::Value::String(s) => (s.as_str(), false),
        toml::Value::Table(t) => {
            if t.keys().any(|k| k != "literal" && k != "secret") {
                return None;
            }
            let literal = t.get("literal")?.as_str()?;
            let secret = match t.get("secret") {
                None => false,
                Some(v) => v.as_bool()?,
            };
            (literal, secret)
        }
        _ => return None,
    };
    if literal.is_empty() {
        return None;
    }
    Some(Placeholder {
        secret,
        ..Placeholder::new(key, literal)
    })
}

fn source(v: &toml::Value) -> Option<Source> {
    match v {
        toml::Value::String(s) => Some(Source::Literal(crate::values::Value::new(s.clone()))),
        toml::Value::Table(t) if t.len() == 1 => {
            let (k, inner) = t.iter().next().expect("one entry");
            match (k.as_str(), inner) {
                ("env", toml::Value::String(s)) if !s.is_empty() => Some(Source::Env(s.clone())),
                ("file", toml::Value::String(s)) if !s.is_empty() => Some(Source::File(s.clone())),
                ("prompt", toml::Value::Boolean(true)) => Some(Source::Prompt),
                ("keyring", toml::Value::String(s)) if s.contains('/') => {
                    Some(Source::Keyring(s.clone()))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"
[defaults]
thinger_host = "iot.thinger.io"
thinger_user = "demo"

[profiles.kitchen]
wifi_ssid = "Kitchen"
wifi_password = { env = "KITCHEN_PW" }
thinger_user = "alice"

[profiles.garage-2]
wifi_password = { prompt = true }
thinger_credentials = { file = "secrets/garage" }
token = { keyring = "thinger/garage" }

[placeholders]
wifi_ssid = "WIFISSID        "

[build]
chip = "esp32c3"
"#;

    #[test]
    fn parses_profiles_and_inherits_defaults() {
        let c = Config::parse(SAMPLE, "t.toml").unwrap();
        let k = c.entries_for(Some("kitchen")).unwrap();
        let get = |key: &str| k.iter().find(|e| e.key == key).unwrap();
        assert_eq!(get("thinger_user").table, "profiles.kitchen");
        assert_eq!(get("thinger_host").table, "defaults");
        assert_eq!(
            get("wifi_password").source,
            Source::Env("KITCHEN_PW".into())
        );
        let g = c.entries_for(Some("garage-2")).unwrap();
        assert!(g.iter().any(|e| e.source == Source::Prompt));
        assert!(
            g.iter()
                .any(|e| e.source == Source::Keyring("thinger/garage".into()))
        );
        assert_eq!(c.placeholders[0].literal, "WIFISSID        ");
        assert!(c.reserved.contains_key("build"));
        // [build] is never read as slot values.
        assert!(!k.iter().any(|e| e.key == "chip"));
        assert!(
            c.entries_for(Some("nope"))
                .unwrap_err()
                .to_string()
                .contains("kitchen")
        );
    }

    #[test]
    fn rejects_mistakes_without_echoing_values() {
        let bad = Config::parse("[profile.x]\na = \"secret-canary\"", "c.toml")
            .unwrap_err()
            .to_string();
        assert!(bad.contains("did you mean [profiles.NAME]") && !bad.contains("canary"));
        assert!(Config::parse("[profiles.\"bad name\"]\n", "c").is_err());
        assert!(
            Config::parse("[defaults]\nx = 3", "c")
                .unwrap_err()
                .to_string()
                .contains("expected a string")
        );
        assert!(Config::parse("[defaults]\nx = { env = \"\" }", "c").is_err());
        assert!(Config::parse("[defaults]\n\"bad key\" = \"v\"", "c").is_err());
        let e = Config::parse("[defaults]\nx = \"unterminated-canary", "c")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("canary"), "{e}");
    }
}
