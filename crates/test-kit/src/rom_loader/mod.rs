//! A simulated ESP serial bootloader on a pseudo-terminal, for `tests/suite/flash_sim.rs`.
//!
//! The test side opens a pty pair, hands the slave's path (`/dev/pts/N`) to the
//! real client (thinger-patch's espflash code, or esptool) and runs the loader
//! in a thread on the master. The loader speaks the serial protocol as
//! documented by Espressif and implemented by esptool (`loader.py`, the flasher
//! stub) and espflash (`connection/`, `command.rs`, `flasher/`):
//! SLIP framing, `SYNC`, register reads and writes (chip magic, eFuse MAC and
//! revision words, the SPI peripheral's user command for the flash JEDEC id),
//! `GET_SECURITY_INFO`, RAM download of the flasher stub (`MEM_*`, then `OHAI`),
//! `FLASH_BEGIN/DATA/END` with the XOR-0xEF block checksum and sequence
//! numbers, `FLASH_DEFL_*` inflated with zlib, `SPI_FLASH_MD5`, `READ_FLASH`
//! (stub, acknowledged blocks and a final MD5) and `READ_FLASH_SLOW` (ROM),
//! `ERASE_REGION`, `CHANGE_BAUDRATE`, `SPI_ATTACH`, `SPI_SET_PARAMS`.
//!
//! Flash behaves like NOR flash: an erase sets bytes to 0xFF, a write can only
//! clear bits (new = old AND data), so a write to an area that was not erased
//! leaves wrong bytes that the MD5 check then catches.
//!
//! Faults for tests: [`Config::corrupt_data_frame`] flips one bit of one
//! `FLASH_DATA`/`FLASH_DEFL_DATA` frame "on the wire" (the loader rejects it by
//! its checksum), and [`Config::drop_after_data_frames`] closes the line (the
//! pty master) in the middle of a transfer.

#![allow(dead_code)]

pub mod fake_esptool;
pub mod loader;

pub use loader::{Chip, Loader};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What to simulate.
#[derive(Debug, Clone)]
pub struct Config {
    pub chip: Chip,
    /// Flash size in bytes (a power of two; the JEDEC id reports it).
    pub flash_size: usize,
    pub mac: [u8; 6],
    /// Initial flash content (padded with 0xFF to `flash_size`).
    pub flash: Vec<u8>,
    /// Flip one bit in the data of the n-th (0-based) FLASH_DATA / FLASH_DEFL_DATA
    /// frame, once.
    pub corrupt_data_frame: Option<u32>,
    /// Close the line when the n-th (0-based) data frame arrives.
    pub drop_after_data_frames: Option<u32>,
    /// Simulate the UART's speed: every byte received takes 10 bit times at the loader's
    /// current baud rate (a pty alone has no baud rate, so transfers take no wire time).
    pub wire_time: bool,
}

impl Config {
    pub fn new(chip: Chip) -> Config {
        Config {
            chip,
            flash_size: 4 * 1024 * 1024,
            mac: match chip {
                Chip::Esp8266 => [0x18, 0xfe, 0x34, 0xa1, 0xb2, 0xc3],
                _ => [0x58, 0xcf, 0x79, 0x12, 0x34, 0x56],
            },
            flash: Vec::new(),
            corrupt_data_frame: None,
            drop_after_data_frames: None,
            wire_time: false,
        }
    }

    /// Puts `bytes` at `offset` of the initial flash content.
    pub fn with_flash(mut self, offset: usize, bytes: &[u8]) -> Config {
        if self.flash.len() < offset + bytes.len() {
            self.flash.resize(offset + bytes.len(), 0xFF);
        }
        self.flash[offset..offset + bytes.len()].copy_from_slice(bytes);
        self
    }
}

/// A running simulator.
pub struct Sim {
    path: String,
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<Loader>>,
    thread: Option<JoinHandle<()>>,
    // Kept open so the master sees no hang-up between client opens.
    slave: Option<OwnedFd>,
}

impl Sim {
    /// Opens a pty pair and starts the loader on its master.
    pub fn start(cfg: Config) -> Sim {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        let path = nix::unistd::ttyname(pty.slave.as_fd())
            .expect("ttyname of the pty slave")
            .to_string_lossy()
            .into_owned();
        // Raw mode from the start: no echo, no line editing, no CR/LF translation.
        let mut t = nix::sys::termios::tcgetattr(pty.slave.as_fd()).expect("tcgetattr");
        nix::sys::termios::cfmakeraw(&mut t);
        nix::sys::termios::tcsetattr(pty.slave.as_fd(), nix::sys::termios::SetArg::TCSANOW, &t)
            .expect("tcsetattr");
        let flags =
            nix::fcntl::fcntl(pty.master.as_fd(), nix::fcntl::FcntlArg::F_GETFL).expect("F_GETFL");
        let flags = nix::fcntl::OFlag::from_bits_truncate(flags) | nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(pty.master.as_fd(), nix::fcntl::FcntlArg::F_SETFL(flags))
            .expect("F_SETFL O_NONBLOCK");

        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(Loader::new(&cfg)));
        let master = File::from(pty.master);
        let thread = {
            let stop = stop.clone();
            let state = state.clone();
            let wire_time = cfg.wire_time;
            std::thread::spawn(move || serve(master, &state, &stop, wire_time))
        };
        Sim {
            path,
            stop,
            state,
            thread: Some(thread),
            slave: Some(pty.slave),
        }
    }

    /// The serial port to give the client (`/dev/pts/N`).
    pub fn port(&self) -> &str {
        &self.path
    }

    /// Stops the loader and returns its final state (flash content, log).
    pub fn finish(mut self) -> Loader {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("the simulator thread panicked");
        }
        self.slave.take();
        let guard = self.state.lock().expect("simulator state");
        guard.clone()
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// SLIP: `C0 <escaped payload> C0`, `DB DC` for `C0`, `DB DD` for `DB`.
pub fn slip_encode(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 2);
    out.push(0xC0);
    for &b in payload {
        match b {
            0xC0 => out.extend([0xDB, 0xDC]),
            0xDB => out.extend([0xDB, 0xDD]),
            b => out.push(b),
        }
    }
    out.push(0xC0);
    out
}

/// Incremental SLIP decoder: bytes in, complete frames out. A bad escape
/// discards the frame (the ROM ignores such frames).
#[derive(Debug, Default)]
pub struct SlipDecoder {
    frame: Vec<u8>,
    in_frame: bool,
    escape: bool,
    bad: bool,
}

impl SlipDecoder {
    pub fn push(&mut self, byte: u8, frames: &mut Vec<Vec<u8>>) {
        if byte == 0xC0 {
            if self.in_frame && !self.frame.is_empty() && !self.bad && !self.escape {
                frames.push(std::mem::take(&mut self.frame));
            }
            self.frame.clear();
            self.in_frame = true;
            self.escape = false;
            self.bad = false;
            return;
        }
        if !self.in_frame {
            return; // noise between frames
        }
        if self.escape {
            self.escape = false;
            match byte {
                0xDC => self.frame.push(0xC0),
                0xDD => self.frame.push(0xDB),
                _ => self.bad = true,
            }
        } else if byte == 0xDB {
            self.escape = true;
        } else {
            self.frame.push(byte);
        }
    }
}

fn serve(mut master: File, state: &Mutex<Loader>, stop: &AtomicBool, wire_time: bool) {
    let mut dec = SlipDecoder::default();
    let mut buf = [0u8; 8192];
    // When the bytes read so far would have finished arriving on a real UART.
    let mut wire = std::time::Instant::now();
    loop {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let readable = {
            let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, PollTimeout::from(20u8)) {
                Ok(n) if n > 0 => fds[0]
                    .revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP)),
                _ => false,
            }
        };
        if !readable {
            continue;
        }
        let n = match master.read(&mut buf) {
            Ok(0) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                continue;
            }
            // EIO: no slave open at the moment.
            Err(_) => {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        if wire_time {
            let baud = state.lock().expect("simulator state").baud.max(1);
            let now = std::time::Instant::now();
            wire = wire.max(now) + Duration::from_secs_f64(n as f64 * 10.0 / f64::from(baud));
            if wire > now {
                std::thread::sleep(wire - now);
            }
        }
        let mut frames = Vec::new();
        for &b in &buf[..n] {
            dec.push(b, &mut frames);
        }
        for frame in frames {
            let out = {
                let mut l = state.lock().expect("simulator state");
                l.handle(&frame)
            };
            for reply in &out.replies {
                if !write_all(&mut master, &slip_encode(reply), stop) {
                    return;
                }
            }
            if out.hang_up {
                // Dropping the master hangs the line up: the client's next read or
                // write fails (EIO), as when a USB cable is pulled.
                drop(master);
                return;
            }
        }
    }
}

/// Writes everything (the master is non-blocking); gives up when stopped.
fn write_all(master: &mut File, mut data: &[u8], stop: &AtomicBool) -> bool {
    while !data.is_empty() {
        if stop.load(Ordering::SeqCst) {
            return false;
        }
        match master.write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::Interrupted => {
                let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(20u8));
            }
            Err(_) => return false,
        }
    }
    true
}

/// A partition table binary: entries `(label, type, subtype, offset, size)`, the
/// MD5 entry, the end marker, padded with 0xFF to 0xC00 bytes.
pub fn partition_table(entries: &[(&str, u8, u8, u32, u32)]) -> Vec<u8> {
    use md5::Digest as _;
    let mut t = Vec::new();
    for &(label, kind, subtype, offset, size) in entries {
        t.extend([0xAA, 0x50, kind, subtype]);
        t.extend(offset.to_le_bytes());
        t.extend(size.to_le_bytes());
        let mut name = [0u8; 16];
        name[..label.len()].copy_from_slice(label.as_bytes());
        t.extend(name);
        t.extend(0u32.to_le_bytes());
    }
    let digest = md5::Md5::digest(&t);
    t.extend([0xEB, 0xEB]);
    t.extend([0xFF; 14]);
    t.extend(digest);
    t.resize(0xC00, 0xFF);
    t
}
