//! The command-line front end (feature `cli`): argument parsing, file I/O,
//! terminal output and exit codes. Everything here calls the same library
//! functions other front ends (cargo subcommand, PlatformIO, a web page) call.

pub mod args;
pub mod exit;
pub mod fsio;
mod inspect;
mod patch;
mod verify;

use clap::{Parser, Subcommand};
use exit::CliError;

#[derive(Debug, Parser)]
#[command(
    name = "thinger-patch",
    version,
    about = "Personalise compiled ESP8266/ESP32 firmware without recompiling, keeping every checksum valid",
    after_help = "Exit codes: 0 ok, 1 invalid input or refused operation, 2 usage error, 3 I/O error, 4 device or network error."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check every image inside firmware files: structure, chip, checksums, SHA-256, CRCs, signatures.
    Verify(verify::VerifyArgs),
    /// Show a file's kind, chip, integrity and every slot (secrets masked).
    Inspect(inspect::InspectArgs),
    /// Personalise firmware from profiles and --set values; writes a re-sealed, verified copy.
    Patch(patch::PatchArgs),
}

/// Runs the CLI and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Verify(args) => verify::run(&args),
        Command::Inspect(args) => inspect::run(&args),
        Command::Patch(args) => patch::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => e.report(),
    }
}

pub(crate) type CliResult<T = i32> = Result<T, CliError>;

/// Prints warnings on stderr (they never contain values).
pub(crate) fn print_warnings(warnings: &[String]) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}
