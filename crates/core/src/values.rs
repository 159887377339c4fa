//! Resolved slot values and where they came from. Values may be secrets:
//! [`Value`] never shows its text through `Debug` or `Display`.

use std::fmt;

/// What a masked secret looks like in every output.
pub const MASK: &str = "********";

/// Masks a secret for display: empty stays visibly empty.
pub fn mask(value: &str) -> &'static str {
    if value.is_empty() { "" } else { MASK }
}

/// A value's text, hidden from `Debug` and `Display` so it cannot leak into
/// logs, errors or panic messages by accident. [`Value::expose`] is the only
/// way to the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Value(String);

impl Value {
    /// Wraps a value's text.
    pub fn new(text: impl Into<String>) -> Self {
        Value(text.into())
    }

    /// The text: the one way to it, for writing it into firmware.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Value({MASK})")
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Where a value came from, for summaries and warnings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// A literal in a config table (`defaults` or `profiles.NAME`) of `file`.
    ConfigLiteral {
        /// The config file.
        file: String,
        /// `defaults` or `profiles.NAME`.
        table: String,
    },
    /// `{ env = ... }`, `{ file = ... }`, `{ prompt = true }` or `{ keyring = ... }`
    /// in a config table.
    ConfigSource {
        /// The config file.
        file: String,
        /// `defaults` or `profiles.NAME`.
        table: String,
        /// `env VAR`, `file PATH`, `prompt`, `keyring SERVICE/ACCOUNT`.
        source: String,
    },
    /// `--set KEY=VALUE` on the command line.
    CommandLine,
    /// `--set-env KEY=VAR`.
    Environment {
        /// The variable's name.
        var: String,
    },
    /// Typed into a form (the guided mode, the browser page): messages name the field, not a source.
    Form,
    /// Put in by the tool from the user's cloud account (a device it created, its credentials).
    Provisioned {
        /// What provided it, e.g. `Thinger.io device kitchen`.
        by: String,
    },
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::ConfigLiteral { file, table } => write!(f, "[{table}] in {file}"),
            Origin::ConfigSource {
                file,
                table,
                source,
            } => write!(f, "{source} from [{table}] in {file}"),
            Origin::CommandLine => f.write_str("--set"),
            Origin::Environment { var } => write!(f, "--set-env {var}"),
            Origin::Form => f.write_str("the form"),
            Origin::Provisioned { by } => f.write_str(by),
        }
    }
}

/// One key's resolved value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The key.
    pub key: String,
    /// The value (never printed).
    pub value: Value,
    /// Where it came from.
    pub origin: Origin,
}

impl Assignment {
    /// An assignment of `value` to `key`.
    pub fn new(key: impl Into<String>, value: impl Into<String>, origin: Origin) -> Self {
        Assignment {
            key: key.into(),
            value: Value::new(value),
            origin,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_never_print() {
        let v = Value::new("hunter2-canary");
        assert!(
            !format!(
                "{v:?} {v} {:?}",
                Assignment::new("k", "hunter2-canary", Origin::CommandLine)
            )
            .contains("canary")
        );
        assert_eq!(v.expose(), "hunter2-canary");
        assert_eq!(mask(""), "");
    }
}
