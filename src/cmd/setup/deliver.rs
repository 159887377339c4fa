//! Step 4: getting the personalised firmware onto the device: over USB with the `flash`
//! command (the chip is checked before anything is written), over the network with the `ota`
//! command (ArduinoOTA), or not now. The answers go to those commands in memory; the port is
//! the user's choice, never "the first one".

use super::{SetupArgs, confirm, interrupted};
use crate::exit::{self, CliError};
use crate::{Cli, CliResult, Command};
use clap::Parser;
use std::ffi::OsString;
use std::path::Path;
use thinger_patch_core::values::Assignment;
use thinger_patch_delivery::serial::port::{self, Choice};

const FLASH: &str = "Flash it to a board on USB now";
const OTA: &str = "Send it to a running device over the network (OTA)";
const STOP: &str = "Stop here";

pub fn offer(args: &SetupArgs, file: &Path, answers: &[Assignment]) -> CliResult<()> {
    let next = inquire::Select::new("What next?", vec![FLASH, OTA, STOP])
        .prompt()
        .map_err(interrupted)?;
    match next {
        FLASH => flash(args, file, answers),
        OTA => ota(file, answers),
        _ => Ok(()),
    }
}

fn flash(args: &SetupArgs, file: &Path, answers: &[Assignment]) -> CliResult<()> {
    let env = std::env::var(port::PORT_ENV).ok();
    let port = match port::choose(
        args.port.as_deref(),
        env.as_deref(),
        &port::system_ports(),
        true,
    ) {
        Ok(Choice::Use(p, why)) => {
            if !confirm(&format!("Flash to {p} ({why})?"), true)? {
                return Ok(());
            }
            p
        }
        Ok(Choice::Ask(ports)) => {
            let names: Vec<String> = ports.iter().map(port::PortInfo::describe).collect();
            let chosen =
                inquire::Select::new("Several ESP boards are connected. Which one?", names)
                    .prompt_skippable()
                    .map_err(interrupted)?;
            let Some(chosen) = chosen else { return Ok(()) };
            ports
                .into_iter()
                .find(|p| p.describe() == chosen)
                .map(|p| p.name)
                .ok_or_else(|| {
                    CliError::new(exit::INTERNAL, "the chosen port vanished from the list")
                })?
        }
        Err(e) => {
            let e = CliError::from(e);
            eprintln!(
                "{}\nPlug the board in and run: thinger-patch flash {} (with the same values), or run setup again.",
                e.message,
                file.display()
            );
            return Ok(());
        }
    };
    let mut argv: Vec<OsString> = vec!["flash".into(), file.into(), "--port".into(), port.into()];
    argv.extend(args.serial.to_argv());
    let Command::Flash(mut flash) = parsed(argv)? else {
        unreachable!("parsed a flash command line")
    };
    flash.personalize.answers = answers.to_vec();
    crate::cmd::flash::run(&flash).map(|_| ())
}

fn ota(file: &Path, answers: &[Assignment]) -> CliResult<()> {
    let host = inquire::Text::new("The device's address on your network:")
        .with_help_message("an IP address (192.168.1.50) or a name (esp-kitchen.local); for an HTTP update page, use thinger-patch ota --http URL")
        .with_validator(|v: &str| {
            Ok(if v.trim().is_empty() || v.contains(char::is_whitespace) {
                inquire::validator::Validation::Invalid("an address without spaces".into())
            } else {
                inquire::validator::Validation::Valid
            })
        })
        .prompt()
        .map_err(interrupted)?;
    let password = confirm("Does the device ask for an OTA password?", false)?;
    let mut argv: Vec<OsString> = vec![
        "ota".into(),
        file.into(),
        "--host".into(),
        host.trim().into(),
    ];
    if password {
        argv.push("--password-prompt".into());
    }
    let Command::Ota(mut ota) = parsed(argv)? else {
        unreachable!("parsed an ota command line")
    };
    ota.personalize.answers = answers.to_vec();
    crate::cmd::ota::run(&ota).map(|_| ())
}

/// A command line built here, parsed by the same definitions as the user's.
fn parsed(argv: Vec<OsString>) -> CliResult<Command> {
    let full = std::iter::once(OsString::from("thinger-patch")).chain(argv);
    Cli::try_parse_from(full).map(|c| c.command).map_err(|e| {
        CliError::new(
            exit::INTERNAL,
            format!("setup built a command line clap refused: {}", e.kind()),
        )
    })
}
