//! The ESP8266 through esptool (espflash dropped it): the whole image at the
//! offset [`placement::plan`] gives, with esptool's progress, chip check and
//! MAC read from its output, and every wait bounded.

use super::esptool::{self, Esptool};
use super::{After, Before, FlashOptions, Flashed};
use crate::error::{Error, Result};
use crate::progress::Progress;
use std::ffi::OsString;
use std::time::{Duration, Instant};
use thinger_patch_core::Firmware;
use thinger_patch_core::chip::Chip;
use thinger_patch_core::placement;

/// Writes `fw` to the ESP8266 on `port` with `tool`.
pub fn flash(
    fw: &Firmware<'_>,
    port: &str,
    options: &FlashOptions,
    tool: &Esptool,
    progress: &mut dyn Progress,
) -> Result<Flashed> {
    let plan = placement::plan(fw, None).map_err(|e| Error::refused(e.to_string()))?;
    progress.status(&format!("using {}", tool.describe()));
    let data = fw.data();
    let w = &plan.writes[0];
    let image = esptool::ImageFile::new(&data[w.start..w.start + w.len])?;
    let mut a = connect_args(port, options, tool);
    a.push(tool.word("write-flash").into());
    a.push(format!("{:#x}", w.offset).into());
    a.push(image.path.clone().into_os_string());

    let what = format!("{:#08x} {}", w.offset, w.what);
    let mut started = false;
    let mut t0 = None;
    let limits = esptool::Limits {
        deadline: options
            .esptool_deadline
            .unwrap_or_else(|| esptool::default_deadline(w.len, options.baud)),
        deadline_from_flag: options.esptool_deadline.is_some(),
        stall: options.esptool_stall,
    };
    let outcome = esptool::run(tool, &a, &limits, |line, o| {
        match esptool::parse_line(line, o) {
            Some(p) => {
                if !started {
                    started = true;
                    t0 = Some(Instant::now());
                    progress.start(&what, 1000);
                }
                progress.advance((p * 10.0) as u64);
            }
            None if !line.trim().is_empty() => {
                progress.status(&format!("esptool: {}", line.trim_end()))
            }
            None => {}
        }
    })?;
    if started {
        progress.finish(false);
    }
    drop(image);
    if let Some((connected, _)) = &outcome.wrong_chip {
        return Err(Error::refused(format!(
            "{port}: the connected chip is an {}, but the firmware is for an esp8266: nothing was written",
            connected.to_ascii_lowercase().replace('-', "")
        )));
    }
    if !outcome.success {
        let why = outcome
            .errors
            .last()
            .cloned()
            .or_else(|| outcome.tail.last().cloned())
            .unwrap_or_else(|| "esptool failed without a message".into());
        let err = Error::device(format!("{port}: esptool could not write the flash: {why}"));
        let no_link = why.contains("No serial data received")
            || why.contains("Failed to connect")
            || why.contains("Input/output error")
            || why.contains("device reports readiness");
        return Err(if no_link {
            err.with_help("check the cable and the port, and that the board is in its bootloader")
        } else {
            err
        });
    }
    Ok(Flashed {
        plan,
        chip: Chip::Esp8266,
        mac: outcome.mac,
        verified: outcome.verified,
        tool: tool.describe(),
        transfer: t0.map_or(Duration::ZERO, |t| t.elapsed()),
    })
}

/// esptool's arguments to reach the chip: chip, port, baud, reset modes, stub.
fn connect_args(port: &str, options: &FlashOptions, tool: &Esptool) -> Vec<OsString> {
    let mut a: Vec<OsString> = vec![
        "--chip".into(),
        "esp8266".into(),
        "--port".into(),
        port.into(),
        "--baud".into(),
        options.baud.to_string().into(),
        "--before".into(),
        tool.word(match options.before {
            Before::DefaultReset => "default-reset",
            Before::NoReset => "no-reset",
        })
        .into(),
        "--after".into(),
        tool.word(match options.after {
            After::HardReset => "hard-reset",
            After::NoReset => "no-reset",
        })
        .into(),
    ];
    if !options.stub {
        a.push("--no-stub".into());
    }
    a
}

/// Reads the MAC of the ESP8266 on `port` (`esptool read-mac`): what a batch run needs to
/// choose the board's identity before anything is written.
pub fn read_mac(port: &str, options: &FlashOptions, tool: &Esptool) -> Result<String> {
    let mut a = connect_args(port, options, tool);
    a.push(tool.word("read-mac").into());
    let limits = esptool::Limits {
        deadline: Duration::from_secs(60),
        deadline_from_flag: false,
        stall: options.esptool_stall,
    };
    let outcome = esptool::run(tool, &a, &limits, |line, o| {
        esptool::parse_line(line, o);
    })?;
    if let Some((connected, _)) = &outcome.wrong_chip {
        return Err(Error::refused(format!(
            "{port}: the connected chip is an {}, but the firmware is for an esp8266: nothing was written",
            connected.to_ascii_lowercase().replace('-', "")
        )));
    }
    match (outcome.success, outcome.mac) {
        (true, Some(mac)) => Ok(mac),
        _ => {
            let why = outcome
                .errors
                .last()
                .or(outcome.tail.last())
                .cloned()
                .unwrap_or_else(|| "esptool printed no MAC".into());
            Err(Error::device(format!(
                "{port}: esptool could not read the board's MAC: {why}"
            ))
            .with_help("check the cable and the port, and that the board is in its bootloader"))
        }
    }
}
