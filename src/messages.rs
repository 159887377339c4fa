//! How the library's errors, problems and warnings read on the command line: the
//! library's own text (what is wrong, where) followed by what to do, in words
//! that name this tool's flags where the library's help cannot.

use thinger_patch_core::{Error, Problem, ProblemKind, Warning};

/// `message; help`, or the message alone.
fn joined(message: String, help: Option<String>) -> String {
    match help {
        Some(h) => format!("{message}; {h}"),
        None => message,
    }
}

/// An engine error: its message and advice, one problem per line for a refused
/// personalisation.
pub fn error(e: &Error) -> String {
    match e {
        Error::Personalize { problems } => {
            problems.iter().map(problem).collect::<Vec<_>>().join("\n")
        }
        Error::NotEspElf { .. } => joined(
            e.to_string(),
            Some("for a PC program that uses the slot header or crate, pass --host-elf".into()),
        ),
        _ => joined(e.to_string(), e.help().map(str::to_string)),
    }
}

/// One problem of a refused personalisation, with advice.
pub fn problem(p: &Problem) -> String {
    let key = p.key.as_deref().unwrap_or("KEY");
    let help = match &p.kind {
        ProblemKind::Required => Some(format!(
            "give it in a profile, with --set {key}=... or --set-env {key}=VAR"
        )),
        ProblemKind::UnknownKey { .. } => Some("fix the key, or pass --allow-missing".into()),
        _ => p.help(),
    };
    joined(p.to_string(), help)
}

/// A warning, with advice.
pub fn warning(w: &Warning) -> String {
    match w {
        Warning::SecretOnCommandLine { key } => format!(
            "slot {key} is secret but was given with --set, which shows in process lists and shell history; prefer --set-env {key}=VAR or a {{ prompt = true }} profile value"
        ),
        Warning::IgnoredUnknownKey { .. } => format!("{w} (--allow-missing)"),
        Warning::PlaceholderLeft { key } => format!("{w}; give it a value with --set {key}=..."),
        _ => w.to_string(),
    }
}

/// Every warning of a run, with advice.
pub fn warnings(ws: &[Warning]) -> Vec<String> {
    ws.iter().map(warning).collect()
}
