//! The ESP32 family through espflash's library: connect (the chip is checked
//! against the image before anything is written), read the device's partition
//! table when an app image needs it, plan with [`placement::plan`], write every
//! region, verify.

use super::port;
use super::{After, Before, FlashOptions, Flashed};
use crate::error::{Error, Result};
use crate::progress::{Espflash, Progress};
use espflash::connection::{Connection, ResetAfterOperation, ResetBeforeOperation};
use espflash::flasher::Flasher;
use std::borrow::Cow;
use std::time::{Duration, Instant};
use thinger_patch_core::Firmware;
use thinger_patch_core::checksum;
use thinger_patch_core::chip::Chip;
use thinger_patch_core::format::partition_table::{self, PartitionTable};
use thinger_patch_core::placement;

/// The espflash release this was built against (Cargo.toml pins the minor version).
const ESPFLASH_VERSION: &str = "4.7";

/// A chip and MAC, read from its bootloader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Board {
    /// The chip as the bootloader reports it (`esp32c3`).
    pub chip: String,
    /// `(major, minor)` revision, when known.
    pub revision: Option<(u32, u32)>,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
}

/// An open connection to a chip's bootloader, its identity read: what a batch runner needs to
/// choose the board's identity before writing, on one connection.
pub struct Session {
    flasher: Flasher,
    port: String,
    options: FlashOptions,
    /// The connected board.
    pub board: Board,
}

/// Connects to the bootloader on `port` and reads the chip's identity; `want` refuses any
/// other chip before anything is written.
pub fn connect(port: &str, want: Option<Chip>, options: &FlashOptions) -> Result<Session> {
    let want = match want {
        Some(chip) => Some(
            chip.name()
                .parse::<espflash::target::Chip>()
                .map_err(|_| Error::refused(format!("espflash does not support the {chip}")))?,
        ),
        None => None,
    };
    let serial = serialport::new(port, 115_200)
        .timeout(Duration::from_secs(3))
        .open_native()
        .map_err(|e| {
            Error::device(format!("{port}: cannot open the serial port: {e}")).with_source(e)
        })?;
    let (vid, pid) = port::usb_ids(port, &port::system_ports()).unwrap_or((0, 0));
    let info = serialport::UsbPortInfo {
        vid,
        pid,
        serial_number: None,
        manufacturer: None,
        product: None,
    };
    let before = match options.before {
        Before::DefaultReset => ResetBeforeOperation::DefaultReset,
        Before::NoReset => ResetBeforeOperation::NoReset,
    };
    let after = match options.after {
        After::HardReset => ResetAfterOperation::HardReset,
        After::NoReset => ResetAfterOperation::NoReset,
    };
    let conn = Connection::new(serial, info, after, before, 115_200);
    let mut flasher = Flasher::connect(
        conn,
        options.stub,
        options.verify,
        false,
        want,
        Some(options.baud),
    )
    .map_err(|e| match &e {
        espflash::Error::ChipMismatch(image, connected) => Error::refused(format!(
            "{port}: the connected chip is an {connected}, but the firmware is for an {image}: nothing was written"
        )),
        // An ESP8266 answers the ESP32 family's chip detection with this magic value.
        espflash::Error::ChipDetectError(m) if m.contains("0xfff0c101") => Error::refused(format!(
            "{port}: the connected chip is an esp8266, but the firmware is for an {}: nothing was written",
            want.map_or("ESP32-family chip".to_string(), |w| w.to_string())
        )),
        _ => device_error(port, "cannot connect to the bootloader", e)
            .with_help("hold BOOT while pressing RESET, or check how the board enters its bootloader (--before)"),
    })?;
    let info = flasher
        .device_info()
        .map_err(|e| device_error(port, "cannot read the chip's identity", e))?;
    Ok(Session {
        board: Board {
            chip: info.chip.to_string(),
            revision: info.revision,
            mac: info.mac_address.clone(),
        },
        flasher,
        port: port.to_string(),
        options: options.clone(),
    })
}

/// Connects, then writes `fw` (see [`Session::write`]).
pub fn flash(
    fw: &Firmware<'_>,
    chip: Chip,
    port: &str,
    options: &FlashOptions,
    progress: &mut dyn Progress,
) -> Result<Flashed> {
    progress.status(&format!("connecting to {port} ..."));
    let session = connect(port, Some(chip), options)?;
    let b = &session.board;
    progress.status(&format!(
        "connected: {}{}, MAC {}",
        b.chip,
        b.revision
            .map_or(String::new(), |(a, b)| format!(" (revision v{a}.{b})")),
        b.mac.as_deref().unwrap_or("unknown")
    ));
    session.write(fw, chip, progress)
}

impl Session {
    /// Writes `fw` to the connected chip: reads the device's partition table when an app image
    /// needs it, plans, writes every region and erases what the plan says, then verifies.
    pub fn write(
        mut self,
        fw: &Firmware<'_>,
        chip: Chip,
        progress: &mut dyn Progress,
    ) -> Result<Flashed> {
        let port = self.port.clone();
        let table = if placement::route(fw).is_ok_and(|r| r.needs_table()) {
            let offset = self.options.partition_table_offset;
            let raw = read_flash(
                &mut self.flasher,
                self.options.stub,
                offset,
                partition_table::MAX_LEN as u32,
            )
            .map_err(|e| {
                device_error(&port, "cannot read the partition table from the device", e)
            })?;
            Some(device_table(&raw, offset, &port)?)
        } else {
            None
        };
        let plan =
            placement::plan(fw, table.as_ref()).map_err(|e| Error::refused(e.to_string()))?;
        let data = fw.data();
        let segments: Vec<espflash::image_format::Segment<'_>> = plan
            .writes
            .iter()
            .map(|w| {
                let bytes = &data[w.start..w.start + w.len];
                let seg = if bytes.len().is_multiple_of(4) {
                    Cow::Borrowed(bytes)
                } else {
                    // The loader writes whole words; pad like espflash's write_bin_to_flash.
                    let mut v = bytes.to_vec();
                    v.resize(bytes.len().next_multiple_of(4), 0xFF);
                    Cow::Owned(v)
                };
                espflash::image_format::Segment {
                    addr: w.offset,
                    data: seg,
                }
            })
            .chain(plan.erases.iter().map(|e| espflash::image_format::Segment {
                addr: e.offset,
                data: Cow::Owned(vec![0xFF; e.size as usize]),
            }))
            .collect();
        let labels = plan
            .writes
            .iter()
            .map(|w| (w.offset, w.what.clone()))
            .chain(
                plan.erases
                    .iter()
                    .map(|e| (e.offset, format!("{} (erase)", e.what))),
            )
            .collect();
        let mut callbacks = Espflash { progress, labels };
        let t = Instant::now();
        self.flasher
            .write_bins_to_flash(&segments, &mut callbacks)
            .map_err(|e| match e {
                espflash::Error::VerifyFailed => Error::device(format!(
                    "{port}: the flash content does not match what was sent (MD5 check failed)"
                ))
                .with_help("run again; if it persists the flash chip may be failing"),
                espflash::Error::RomError(_) => {
                    device_error(&port, "writing the flash failed: the bootloader rejected a block", e).with_help(
                        "a block arrived damaged: a noisy cable or too high a baud rate; run again, or lower the baud rate",
                    )
                }
                e => device_error(&port, "writing the flash failed", e),
            })?;
        Ok(Flashed {
            plan,
            chip,
            mac: self.board.mac,
            verified: self.options.verify,
            tool: format!(
                "espflash {ESPFLASH_VERSION} ({})",
                if self.options.stub {
                    "stub"
                } else {
                    "ROM loader"
                }
            ),
            transfer: t.elapsed(),
        })
    }
}

/// A failure talking to the chip: the message names the port and what failed; espflash's own
/// error (and its causes) is kept as the source. A line that dropped is told apart from a
/// device that answered wrongly by espflash's error variants and the I/O errors inside them,
/// not by their text.
fn device_error(port: &str, what: &str, e: espflash::Error) -> Error {
    let dropped = chain_has_io_error(&e)
        || matches!(
            e,
            espflash::Error::Connection(_) | espflash::Error::Flashing(_)
        );
    let err = Error::device(format!("{port}: {what}: {}", chain(&e)));
    let err = if dropped {
        err.with_help(
            "the serial line dropped or the device stopped answering: check the cable and the port, then run again",
        )
    } else {
        err
    };
    err.with_source(e)
}

fn chain_has_io_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut src = e.source();
    while let Some(s) = src {
        if s.downcast_ref::<std::io::Error>().is_some()
            || s.downcast_ref::<serialport::Error>().is_some()
        {
            return true;
        }
        src = s.source();
    }
    false
}

/// An error and its sources, one sentence: `a: b: c`.
fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !out.contains(&t) {
            out.push_str(": ");
            out.push_str(&t);
        }
        src = s.source();
    }
    out
}

/// The partition table read from the device at `offset`, or why it is unusable.
pub fn device_table(raw: &[u8], offset: u32, port: &str) -> Result<PartitionTable> {
    if !PartitionTable::is_at(raw, 0) {
        return Err(Error::refused(format!(
            "{port}: no partition table at {offset:#x} on the device (it reads {})",
            checksum::hex_head(raw, 8)
        ))
        .with_help(
            "flash a merged image (bootloader, partition table and app) first, or say where the device's table is (--partition-table-offset)",
        ));
    }
    let mut t = PartitionTable::parse(raw, 0).map_err(|e| {
        Error::refused(format!(
            "{port}: the device's partition table at {offset:#x} is damaged: {e}"
        ))
    })?;
    if let Some(md5) = &t.md5
        && !md5.valid
    {
        return Err(Error::refused(format!(
            "{port}: the device's partition table at {offset:#x} fails its MD5 check"
        ))
        .with_help("flash a merged image to repair it"));
    }
    t.offset = offset as usize;
    Ok(t)
}

/// Reads `len` bytes of flash at `offset`: the stub's READ_FLASH (acknowledged
/// blocks, MD5 at the end) or the ROM's READ_FLASH_SLOW (64 bytes a command).
fn read_flash(
    flasher: &mut espflash::flasher::Flasher,
    use_stub: bool,
    offset: u32,
    len: u32,
) -> Result<Vec<u8>, espflash::Error> {
    use espflash::command::{Command, CommandType};
    const BLOCK: u32 = 0x1000;
    let conn = flasher.connection();
    let mut data = Vec::with_capacity(len as usize);
    if use_stub {
        conn.with_timeout(CommandType::ReadFlash.timeout(), |c| {
            c.command(Command::ReadFlash {
                offset,
                size: len,
                block_size: BLOCK,
                // One block in flight: every block is acknowledged before the next is sent.
                max_in_flight: 1,
            })
        })?;
        while data.len() < len as usize {
            let chunk: Vec<u8> = match conn.read_flash_response()? {
                Some(r) => r.value.try_into()?,
                None => return Err(espflash::Error::IncorrectResponse),
            };
            if chunk.is_empty() {
                return Err(espflash::Error::IncorrectResponse);
            }
            data.extend_from_slice(&chunk);
            if data.len() < len as usize && chunk.len() < BLOCK as usize {
                return Err(espflash::Error::CorruptData(BLOCK as usize, chunk.len()));
            }
            conn.write_raw(data.len() as u32)?;
        }
        if data.len() > len as usize {
            return Err(espflash::Error::ReadMoreThanExpected);
        }
        let digest: Vec<u8> = match conn.read_flash_response()? {
            Some(r) => r.value.try_into()?,
            None => return Err(espflash::Error::IncorrectResponse),
        };
        let ours = checksum::md5(&data);
        if digest != ours {
            return Err(espflash::Error::DigestMismatch(digest, ours.to_vec()));
        }
    } else {
        while data.len() < len as usize {
            let n = (len as usize - data.len()).min(64);
            let at = offset + data.len() as u32;
            let payload: Vec<u8> = conn
                .with_timeout(CommandType::ReadFlashSlow.timeout(), |c| {
                    c.command(Command::ReadFlashSlow {
                        offset: at,
                        size: n as u32,
                        block_size: 64,
                        max_in_flight: 1,
                    })
                })?
                .try_into()?;
            if payload.len() < n {
                return Err(espflash::Error::CorruptData(n, payload.len()));
            }
            data.extend_from_slice(&payload[..n]);
        }
    }
    Ok(data)
}
