//! The command-line front end of thinger-patch: argument parsing, file I/O,
//! terminal output and exit codes, one module per command in [`cmd`].
//!
//! Not a stable API: it is shared by the `thinger-patch` binary and
//! `cargo-thinger-patch` only. The library is `thinger-patch-core` (bytes
//! only) with `thinger-patch-delivery` (devices); everything here calls them.

pub mod args;
mod cmd;
pub mod exit;
pub mod fsio;
pub mod messages;
pub mod progress;

use clap::{Parser, Subcommand};
use exit::CliError;

/// `println!` for command output that a closed pipe cannot turn into a panic
/// (`thinger-patch inspect fw.bin | head -1`): the rest of the output is
/// dropped, the command's own result and exit code stand.
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

#[derive(Debug, Parser)]
#[command(
    name = "thinger-patch",
    version,
    about = "Personalise compiled ESP8266/ESP32 firmware without recompiling, keeping every checksum valid",
    after_help = "Exit codes: 0 ok, 1 invalid input or refused operation, 2 usage error, 3 I/O error, 4 device or network error, 70 internal error (a bug), 130 interrupted (setup)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// `thinger-patch` with no arguments: the guided mode (it explains itself when there is no
/// terminal to ask on).
const BARE_RUN: &str = "setup";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every image inside firmware files: structure, chip, checksums, SHA-256, CRCs, signatures.
    Verify(cmd::verify::VerifyArgs),
    /// Show a file's kind, chip, integrity and every slot (secrets masked).
    Inspect(cmd::inspect::InspectArgs),
    /// Personalise firmware from profiles and --set values; writes a re-sealed, verified copy.
    Patch(cmd::patch::PatchArgs),
    /// Personalise in memory and write to a device over its serial bootloader (espflash for the ESP32 family, esptool for the ESP8266).
    Flash(cmd::flash::FlashArgs),
    /// Personalise in memory and send to a running device over the network: ArduinoOTA (both password schemes) or an HTTP update server (HTTPUpdateServer, ElegantOTA).
    Ota(cmd::ota::OtaArgs),
    /// Personalise one firmware for many devices, each with its own identity from a CSV or generated, into files (--out-dir) or onto boards on several ports at once; recorded in the provisioning ledger
    Batch(cmd::batch::BatchArgs),
    /// What the provisioning ledger recorded: list, show, export (secrets masked unless --reveal), forget
    Ledger(cmd::ledger::LedgerArgs),
    /// Deliver a new build to the ledger's devices, each with its own identity patched in: through the Thinger.io cloud or by ArduinoOTA
    Fleet(cmd::fleet::FleetArgs),
    /// The Thinger.io account: login, whoami, logout, devices (create, show, rotate, delete), dashboards (push)
    Thinger(cmd::thinger::ThingerArgs),
    /// Guided mode: asks for each value in plain words, writes <name>.<device>.bin, offers to flash it (also: thinger-patch with no arguments)
    Setup(cmd::setup::SetupArgs),
}

/// Runs the CLI and returns the process exit code. A panic (a bug) is reported without its
/// message, which could hold a value, and ends with [`exit::INTERNAL`], never Rust's 101.
pub fn main() -> i32 {
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map_or(String::new(), |l| format!(" at {}:{}", l.file(), l.line()));
        eprintln!(
            "error: internal error in thinger-patch{at}; this is a bug, please report it (the message is withheld: it could contain a value)"
        );
    }));
    std::panic::catch_unwind(run).unwrap_or(exit::INTERNAL)
}

fn run() -> i32 {
    let bare = std::env::args_os().len() == 1;
    let parsed = if bare {
        Cli::try_parse_from(["thinger-patch", BARE_RUN])
    } else {
        Cli::try_parse()
    };
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let result = match cli.command {
        Command::Verify(args) => cmd::verify::run(&args),
        Command::Inspect(args) => cmd::inspect::run(&args),
        Command::Patch(args) => cmd::patch::run(&args),
        Command::Flash(args) => cmd::flash::run(&args),
        Command::Ota(args) => cmd::ota::run(&args),
        Command::Setup(args) => cmd::setup::run(&args, bare),
        Command::Batch(args) => cmd::batch::run(&args),
        Command::Ledger(args) => cmd::ledger::run(&args),
        Command::Fleet(args) => cmd::fleet::run(&args),
        Command::Thinger(args) => cmd::thinger::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}

pub(crate) type CliResult<T = i32> = Result<T, CliError>;

/// Prints a clap error (help and version go to stdout with exit 0). clap quotes
/// the argument it did not expect, which may be a secret typed as
/// `--set key secret`: every value from the command line is hidden in the text.
fn usage_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return exit::OK;
    }
    let mut text = e.render().to_string();
    // args_os: an argument that is not UTF-8 must not panic here (and print itself).
    for arg in std::env::args_os().skip(1) {
        let arg = arg.to_string_lossy();
        for value in values_in(&arg) {
            text = text.replace(&format!("'{value}'"), "'<value hidden>'");
        }
    }
    eprint!("{text}");
    exit::USAGE
}

/// The parts of one command-line word that may be a value: the word itself, the value of
/// `--flag=value`, the value attached to a short option (`-oVALUE`). Flags and subcommand names
/// stay visible so that the error still says which flag was wrong.
fn values_in(arg: &str) -> Vec<&str> {
    if let Some(long) = arg.strip_prefix("--") {
        return long
            .split_once('=')
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty())
            .into_iter()
            .chain(long.contains('=').then_some(arg))
            .collect();
    }
    if arg.starts_with('-') && arg.len() > 2 {
        return arg.get(2..).into_iter().chain([arg]).collect();
    }
    if arg.starts_with('-') || arg.is_empty() || Command::has_subcommand(arg) {
        return Vec::new();
    }
    vec![arg]
}

impl Command {
    fn has_subcommand(name: &str) -> bool {
        use clap::CommandFactory;
        Cli::command()
            .get_subcommands()
            .any(|c| c.get_name() == name)
    }
}

/// Prints warnings on stderr (they never contain values).
pub(crate) fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}
