//! `thinger-patch setup [FILE]` (and `thinger-patch` alone on a terminal): the guided mode for
//! someone who received a `.bin`. It asks, in plain words, for each value the firmware takes,
//! writes `<name>.<device>.bin` beside the input, then offers to flash it over USB or send it
//! over the network. Every step is the same code as the commands: the questions are checked by
//! the library's rules (`thinger_patch_core::check`), the file is written by `patch`, the device
//! is written by `flash` or `ota`, with the answers handed over in memory.

mod choose;
mod cloud;
mod deliver;
mod questions;
mod remember;
mod timezone;

use crate::CliResult;
use crate::exit::{self, CliError};
use clap::Args;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use thinger_patch_core::values::{Assignment, mask};

#[derive(Debug, Args, Default)]
pub struct SetupArgs {
    /// The firmware [default: choose among the .bin, .bin.gz and .elf files of the current folder]
    pub file: Option<PathBuf>,
    /// Serial port to offer for flashing [default: the ESP serial ports found]
    #[arg(short, long, value_name = "PORT")]
    pub port: Option<String>,
    #[command(flatten)]
    pub serial: crate::args::SerialArgs,
}

/// What to print instead of prompting when there is no terminal.
const NO_TERMINAL: &str = "setup asks its questions on a terminal, and this is not one (standard input or error is redirected); to personalise without questions, run\n  thinger-patch inspect FIRMWARE          (what the firmware takes)\n  thinger-patch patch FIRMWARE --set wifi_ssid=... --set-env wifi_password=VAR ... -o OUT\nor run thinger-patch setup in a terminal window";

/// `started_bare`: run as `thinger-patch` with no arguments (on Windows, by a double-click).
pub fn run(args: &SetupArgs, started_bare: bool) -> CliResult {
    let result = guided(args);
    if started_bare && cfg!(windows) {
        // A double-clicked console closes at exit: let the user read the result first.
        if let Err(e) = &result {
            eprintln!("error: {}", e.message);
        }
        let _ = inquire::Text::new("Press Enter to close this window.").prompt();
        return Ok(result.unwrap_or_else(|e| e.code));
    }
    result
}

fn guided(args: &SetupArgs) -> CliResult {
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return Err(CliError::new(exit::USAGE, NO_TERMINAL));
    }
    eprintln!(
        "thinger-patch {}: personalise a firmware file, then flash it. Ctrl-C stops at any point; nothing is written before you confirm.\n",
        env!("CARGO_PKG_VERSION")
    );
    let file = match &args.file {
        Some(f) => f.clone(),
        None => choose::firmware(Path::new("."))?,
    };
    let input = crate::fsio::read(&file)?;
    let remembered = remember::load();
    let new_device = cloud::offer(&input)?;
    let skip: &[&str] = if new_device.is_some() {
        cloud::FILLED
    } else {
        &[]
    };
    let asked = questions::ask(&file, &input, &remembered, skip)?;
    if asked.answers.is_empty() && new_device.is_none() {
        eprintln!("Nothing to change: every value keeps what the file holds.");
        return Ok(exit::OK);
    }

    eprintln!("\nSummary:");
    for a in &asked.answers {
        let shown = if asked.secret(&a.key) {
            mask(a.value.expose()).to_string()
        } else {
            format!("{:?}", a.value.expose())
        };
        eprintln!("  {:<20} {shown}", a.key);
    }
    if let Some(id) = &new_device {
        eprintln!(
            "  {:<20} {id:?}, created on your Thinger.io account with new credentials",
            "thinger_device"
        );
    }
    let device = new_device.clone().unwrap_or_else(|| {
        asked
            .answers
            .iter()
            .find(|a| a.key == "thinger_device")
            .map_or_else(
                || "personalised".to_string(),
                |a| a.value.expose().to_string(),
            )
    });
    let output = crate::cmd::patch::default_output(&file, &device);
    if output.exists() && !confirm(&format!("{} exists. Replace it?", output.display()), false)? {
        return Err(CliError::new(
            exit::INVALID,
            format!("{} was kept; nothing was written", output.display()),
        ));
    }
    if !confirm(&format!("Write {}?", output.display()), true)? {
        eprintln!("Nothing was written.");
        return Ok(exit::OK);
    }
    write(&file, &output, &asked.answers, new_device.as_deref())?;

    if new_device.is_some() {
        // The credentials exist only in the written file: deliver that file as it is.
        deliver::offer(args, &output, &[])?;
    } else {
        deliver::offer(args, &file, &asked.answers)?;
    }
    remember::offer(&asked)?;
    Ok(exit::OK)
}

/// The `patch` command with the answers, writing `output`.
fn write(
    file: &Path,
    output: &Path,
    answers: &[Assignment],
    new_device: Option<&str>,
) -> CliResult<()> {
    let mut patch = crate::cmd::patch::PatchArgs {
        file: file.to_path_buf(),
        personalize: Default::default(),
        output: Some(output.to_path_buf()),
        in_place: false,
        dry_run: false,
        json: false,
        thinger: Default::default(),
    };
    patch.thinger.thinger_device = new_device.map(str::to_string);
    patch.personalize.answers = answers.to_vec();
    crate::cmd::patch::run(&patch)?;
    Ok(())
}

/// A yes/no question.
fn confirm(question: &str, default: bool) -> CliResult<bool> {
    inquire::Confirm::new(question)
        .with_default(default)
        .prompt()
        .map_err(interrupted)
}

/// Ctrl-C or Esc at a prompt: nothing written, exit 130; other prompt errors are I/O.
fn interrupted(e: inquire::InquireError) -> CliError {
    use inquire::InquireError as E;
    match e {
        E::OperationInterrupted | E::OperationCanceled => {
            CliError::new(exit::INTERRUPTED, "interrupted: nothing was written")
        }
        other => CliError::new(exit::IO, format!("the terminal prompt failed: {other}")),
    }
}
