//! The serial loader itself: one command frame in, reply frames out.
//!
//! Message formats (esptool `loader.py` `command()`/`check_command()`, espflash
//! `command.rs`/`connection/mod.rs`):
//!
//! - request: `u8 0x00, u8 op, u16 len, u32 checksum, data[len]`; `checksum`
//!   is only meaningful for `*_DATA` commands: `0xEF XOR every payload byte`
//!   (after the 16-byte `{size, seq, 0, 0}` header);
//! - reply: `u8 0x01, u8 op, u16 len, u32 value, data[len]`, where `data` ends
//!   with the status bytes `{status, error}` (the stub and the ESP8266 ROM) or
//!   `{status, error, 0, 0}` (ROMs of the ESP32 family).

use super::Config;
use flate2::{Decompress, FlushDecompress, Status};
use md5::Digest as _;
use std::collections::{BTreeMap, HashMap};

/// The simulated chip.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chip {
    Esp32c3,
    Esp32s3,
    Esp8266,
}

impl Chip {
    /// `GET_SECURITY_INFO` chip id (ESP32-S3 and later); `None` where the ROM has
    /// no such command.
    fn chip_id(self) -> Option<u32> {
        match self {
            Chip::Esp32c3 => Some(5),
            Chip::Esp32s3 => Some(9),
            Chip::Esp8266 => None,
        }
    }

    /// The value at `CHIP_DETECT_MAGIC_REG_ADDR` (0x40001000).
    fn magic(self) -> u32 {
        match self {
            Chip::Esp32c3 => 0x1b31_506f, // ECO3
            Chip::Esp32s3 => 0x9,
            Chip::Esp8266 => 0xfff0_c101,
        }
    }

    /// `(base, usr, usr1, usr2, w0)` of the SPI peripheral driving the flash.
    fn spi(self) -> (u32, u32, u32, u32, u32) {
        match self {
            Chip::Esp32c3 | Chip::Esp32s3 => (0x6000_2000, 0x18, 0x1c, 0x20, 0x58),
            Chip::Esp8266 => (0x6000_0200, 0x1c, 0x20, 0x24, 0x40),
        }
    }

    /// ROMs of the ESP32 family append two reserved status bytes; the ESP8266's does not.
    fn rom_status_len(self) -> usize {
        match self {
            Chip::Esp8266 => 2,
            _ => 4,
        }
    }
}

/// Command opcodes (esptool `ESP_CMDS`, espflash `CommandType`).
pub mod op {
    pub const FLASH_BEGIN: u8 = 0x02;
    pub const FLASH_DATA: u8 = 0x03;
    pub const FLASH_END: u8 = 0x04;
    pub const MEM_BEGIN: u8 = 0x05;
    pub const MEM_END: u8 = 0x06;
    pub const MEM_DATA: u8 = 0x07;
    pub const SYNC: u8 = 0x08;
    pub const WRITE_REG: u8 = 0x09;
    pub const READ_REG: u8 = 0x0A;
    pub const SPI_SET_PARAMS: u8 = 0x0B;
    pub const SPI_ATTACH: u8 = 0x0D;
    pub const READ_FLASH_SLOW: u8 = 0x0E;
    pub const CHANGE_BAUDRATE: u8 = 0x0F;
    pub const FLASH_DEFL_BEGIN: u8 = 0x10;
    pub const FLASH_DEFL_DATA: u8 = 0x11;
    pub const FLASH_DEFL_END: u8 = 0x12;
    pub const SPI_FLASH_MD5: u8 = 0x13;
    pub const GET_SECURITY_INFO: u8 = 0x14;
    pub const ERASE_FLASH: u8 = 0xD0;
    pub const ERASE_REGION: u8 = 0xD1;
    pub const READ_FLASH: u8 = 0xD2;
    pub const RUN_USER_CODE: u8 = 0xD3;

    pub fn name(op: u8) -> String {
        match op {
            FLASH_BEGIN => "FLASH_BEGIN".into(),
            FLASH_DATA => "FLASH_DATA".into(),
            FLASH_END => "FLASH_END".into(),
            MEM_BEGIN => "MEM_BEGIN".into(),
            MEM_END => "MEM_END".into(),
            MEM_DATA => "MEM_DATA".into(),
            SYNC => "SYNC".into(),
            WRITE_REG => "WRITE_REG".into(),
            READ_REG => "READ_REG".into(),
            SPI_SET_PARAMS => "SPI_SET_PARAMS".into(),
            SPI_ATTACH => "SPI_ATTACH".into(),
            READ_FLASH_SLOW => "READ_FLASH_SLOW".into(),
            CHANGE_BAUDRATE => "CHANGE_BAUDRATE".into(),
            FLASH_DEFL_BEGIN => "FLASH_DEFL_BEGIN".into(),
            FLASH_DEFL_DATA => "FLASH_DEFL_DATA".into(),
            FLASH_DEFL_END => "FLASH_DEFL_END".into(),
            SPI_FLASH_MD5 => "SPI_FLASH_MD5".into(),
            GET_SECURITY_INFO => "GET_SECURITY_INFO".into(),
            ERASE_FLASH => "ERASE_FLASH".into(),
            ERASE_REGION => "ERASE_REGION".into(),
            READ_FLASH => "READ_FLASH".into(),
            RUN_USER_CODE => "RUN_USER_CODE".into(),
            other => format!("OP_{other:#04x}"),
        }
    }
}

/// ROM error codes (espflash `RomErrorKind`, the ROM's `esp_loader` codes).
mod rom_err {
    pub const INVALID_MESSAGE: u8 = 0x05;
    pub const FAILED_TO_ACT: u8 = 0x06;
    pub const INVALID_CRC: u8 = 0x07;
    pub const FLASH_WRITE: u8 = 0x08;
    pub const FLASH_READ_LENGTH: u8 = 0x0a;
    pub const DEFLATE: u8 = 0x0b;
}

/// Stub error codes (esptool's flasher stub `stub_flasher.h`).
mod stub_err {
    pub const BAD_DATA_LEN: u8 = 0xC0;
    pub const BAD_DATA_CHECKSUM: u8 = 0xC1;
    pub const INVALID_COMMAND: u8 = 0xC3;
    pub const NOT_IN_FLASH_MODE: u8 = 0xC6;
    pub const INFLATE_ERROR: u8 = 0xC7;
    pub const NOT_ENOUGH_DATA: u8 = 0xC8;
    pub const TOO_MUCH_DATA: u8 = 0xC9;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The ROM serial loader (download mode).
    Rom,
    /// The flasher stub, uploaded to RAM and started.
    Stub,
    /// The loader exited (ran the app or rebooted): nothing answers.
    Gone,
}

#[derive(Debug, Clone)]
struct MemSession {
    addr: u32,
    size: u32,
    blocks: u32,
    block_size: u32,
    next_seq: u32,
}

#[derive(Clone)]
struct FlashSession {
    offset: u32,
    /// ROM: bytes erased at begin. Stub: bytes to write (erased as written).
    size: u32,
    blocks: u32,
    block_size: u32,
    next_seq: u32,
    inflater: Option<std::sync::Arc<std::sync::Mutex<Decompress>>>,
    /// Bytes written so far (inflated bytes for compressed writes).
    written: u64,
    /// Stub: the next sector not yet erased.
    erased_to: u64,
}

impl std::fmt::Debug for FlashSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlashSession")
            .field("offset", &self.offset)
            .field("size", &self.size)
            .field("compressed", &self.inflater.is_some())
            .field("written", &self.written)
            .finish()
    }
}

#[derive(Debug, Clone)]
struct ReadSession {
    data: Vec<u8>,
    block: usize,
    max_in_flight: usize,
    sent: usize,
    acked: usize,
}

/// What one frame produced.
#[derive(Debug, Default)]
pub struct Output {
    pub replies: Vec<Vec<u8>>,
    /// Close the line now (a simulated dropped connection).
    pub hang_up: bool,
}

/// The loader's whole state; cloned out at the end of a test.
#[derive(Debug, Clone)]
pub struct Loader {
    pub chip: Chip,
    pub mode: Mode,
    pub flash: Vec<u8>,
    pub regs: HashMap<u32, u32>,
    pub ram: BTreeMap<u32, Vec<u8>>,
    pub baud: u32,
    /// Every command received, by name, in order.
    pub log: Vec<String>,
    /// Every command refused, with the reason (protocol errors, bad data).
    pub rejected: Vec<String>,
    /// Commands this loader does not implement that were asked for anyway.
    pub unsupported: Vec<String>,
    /// `(offset, len)` of every flash write (after inflation).
    pub writes: Vec<(u32, u32)>,
    /// `(offset, len)` of every erase.
    pub erases: Vec<(u32, u32)>,
    /// MD5 checks answered: `(offset, len)`.
    pub md5_checks: Vec<(u32, u32)>,
    pub stub_started: bool,
    pub hung_up: bool,
    data_frames: u32,
    corrupt_data_frame: Option<u32>,
    drop_after_data_frames: Option<u32>,
    mem: Option<MemSession>,
    flash_session: Option<FlashSession>,
    read: Option<ReadSession>,
}

fn u32_at(d: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]])
}

const SECTOR: u64 = 0x1000;
const CHIP_DETECT_MAGIC_REG: u32 = 0x4000_1000;

impl Loader {
    pub fn new(cfg: &Config) -> Loader {
        let mut flash = vec![0xFF; cfg.flash_size];
        let n = cfg.flash.len().min(cfg.flash_size);
        flash[..n].copy_from_slice(&cfg.flash[..n]);
        let mut regs = HashMap::new();
        regs.insert(CHIP_DETECT_MAGIC_REG, cfg.chip.magic());
        let m = cfg.mac;
        match cfg.chip {
            Chip::Esp32c3 | Chip::Esp32s3 => {
                // eFuse BLOCK1 (MAC_SPI_8M_0..): word 0 = MAC bytes 2..5, word 1 = bytes 0..1.
                let block1 = if cfg.chip == Chip::Esp32c3 {
                    0x6000_8844
                } else {
                    0x6000_7044
                };
                regs.insert(block1, u32::from_be_bytes([m[2], m[3], m[4], m[5]]));
                regs.insert(block1 + 4, u32::from(m[0]) << 8 | u32::from(m[1]));
                // Word 3: WAFER_VERSION_MINOR_LO (bits 18..20) = 4 → revision v0.4.
                regs.insert(block1 + 12, 4 << 18);
            }
            Chip::Esp8266 => {
                // OTP words read by esptool's ESP8266ROM.read_mac(): OUI 18:fe:34 (mac1
                // bits 16..23 = 0, mac3 = 0), then mac1[15:0] and mac0[31:24].
                regs.insert(0x3FF0_0050, u32::from(m[5]) << 24);
                regs.insert(0x3FF0_0054, u32::from(m[3]) << 8 | u32::from(m[4]));
                regs.insert(0x3FF0_0058, 0);
                regs.insert(0x3FF0_005C, 0);
            }
        }
        Loader {
            chip: cfg.chip,
            mode: Mode::Rom,
            flash,
            regs,
            ram: BTreeMap::new(),
            baud: 115_200,
            log: Vec::new(),
            rejected: Vec::new(),
            unsupported: Vec::new(),
            writes: Vec::new(),
            erases: Vec::new(),
            md5_checks: Vec::new(),
            stub_started: false,
            hung_up: false,
            data_frames: 0,
            corrupt_data_frame: cfg.corrupt_data_frame,
            drop_after_data_frames: cfg.drop_after_data_frames,
            mem: None,
            flash_session: None,
            read: None,
        }
    }

    fn status_len(&self) -> usize {
        match self.mode {
            Mode::Stub => 2,
            _ => self.chip.rom_status_len(),
        }
    }

    fn reply(&self, op: u8, value: u32, data: &[u8], status: u8, error: u8) -> Vec<u8> {
        let mut body = data.to_vec();
        body.push(status);
        body.push(error);
        body.resize(data.len() + self.status_len(), 0);
        let mut r = vec![0x01, op];
        r.extend((body.len() as u16).to_le_bytes());
        r.extend(value.to_le_bytes());
        r.extend(body);
        r
    }

    fn ok(&self, op: u8, value: u32, data: &[u8]) -> Vec<u8> {
        self.reply(op, value, data, 0, 0)
    }

    fn fail(&mut self, op: u8, rom: u8, stub: u8, why: String) -> Vec<u8> {
        self.rejected.push(format!("{}: {why}", op::name(op)));
        let e = if self.mode == Mode::Stub { stub } else { rom };
        self.reply(op, 0, &[], 1, e)
    }

    /// Handles one decoded SLIP frame.
    pub fn handle(&mut self, frame: &[u8]) -> Output {
        let mut out = Output::default();
        if self.mode == Mode::Gone {
            return out;
        }
        // A READ_FLASH in progress: the host answers each block with a 4-byte
        // SLIP frame holding the total bytes it has received.
        if self.read.is_some() && frame.len() == 4 {
            self.read_ack(u32_at(frame, 0) as usize, &mut out);
            return out;
        }
        if frame.len() < 8 || frame[0] != 0x00 {
            self.rejected
                .push(format!("malformed frame of {} bytes", frame.len()));
            return out;
        }
        let op = frame[1];
        let len = u16::from_le_bytes([frame[2], frame[3]]) as usize;
        let chk = u32_at(frame, 4);
        let mut data = frame[8..].to_vec();
        self.log.push(op::name(op));
        if data.len() != len {
            let r = self.fail(
                op,
                rom_err::INVALID_MESSAGE,
                stub_err::BAD_DATA_LEN,
                format!("length field {len}, {} bytes follow", data.len()),
            );
            out.replies.push(r);
            return out;
        }
        if matches!(op, op::FLASH_DATA | op::FLASH_DEFL_DATA) {
            let n = self.data_frames;
            self.data_frames += 1;
            if self.drop_after_data_frames == Some(n) {
                self.hung_up = true;
                out.hang_up = true;
                return out;
            }
            if self.corrupt_data_frame == Some(n) && data.len() > 16 {
                // One bit flipped on the wire, inside the block data.
                let i = 16 + (data.len() - 16) / 2;
                data[i] ^= 0x10;
                self.corrupt_data_frame = None;
            }
        }
        let reply = self.dispatch(op, chk, &data, &mut out);
        if let Some(r) = reply {
            out.replies.insert(0, r);
        }
        out
    }

    /// A command this loader does not have (clients probe, e.g. GET_SECURITY_INFO on
    /// an ESP8266): refused like any failure, but logged apart from protocol errors.
    fn unsupported(&mut self, op: u8) -> Option<Vec<u8>> {
        self.unsupported.push(op::name(op));
        let e = if self.mode == Mode::Stub {
            stub_err::INVALID_COMMAND
        } else {
            rom_err::INVALID_MESSAGE
        };
        Some(self.reply(op, 0, &[], 1, e))
    }

    fn dispatch(&mut self, op: u8, chk: u32, d: &[u8], out: &mut Output) -> Option<Vec<u8>> {
        let rom = self.mode == Mode::Rom;
        let esp8266_rom = rom && self.chip == Chip::Esp8266;
        match op {
            op::SYNC => {
                let mut want = vec![0x07, 0x07, 0x12, 0x20];
                want.extend([0x55; 32]);
                if d != want.as_slice() {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        "bad SYNC pattern".into(),
                    ));
                }
                if rom {
                    // The ROM answers a SYNC eight times, with a non-zero value.
                    for _ in 0..7 {
                        out.replies.push(self.ok(op, 0x2012_0707, &[]));
                    }
                    Some(self.ok(op, 0x2012_0707, &[]))
                } else {
                    Some(self.ok(op, 0, &[]))
                }
            }
            op::READ_REG => {
                if d.len() != 4 {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        "READ_REG takes 4 bytes".into(),
                    ));
                }
                let v = self.read_reg(u32_at(d, 0));
                Some(self.ok(op, v, &[]))
            }
            op::WRITE_REG => {
                if d.is_empty() || !d.len().is_multiple_of(16) {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        "WRITE_REG takes 16-byte entries".into(),
                    ));
                }
                for e in d.chunks(16) {
                    self.write_reg(u32_at(e, 0), u32_at(e, 4), u32_at(e, 8));
                }
                Some(self.ok(op, 0, &[]))
            }
            op::GET_SECURITY_INFO => match self.chip.chip_id() {
                Some(id) => {
                    let mut info = Vec::with_capacity(20);
                    info.extend(0u32.to_le_bytes()); // flags: nothing enabled
                    info.push(0); // flash_crypt_cnt
                    info.extend([0u8; 7]); // key purposes
                    info.extend(id.to_le_bytes());
                    info.extend(0u32.to_le_bytes()); // eco/api version
                    Some(self.ok(op, 0, &info))
                }
                None => self.unsupported(op),
            },
            op::SPI_ATTACH if !esp8266_rom => {
                let want = if rom { 8 } else { 4 };
                if d.len() != want {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        format!("SPI_ATTACH takes {want} bytes here, got {}", d.len()),
                    ));
                }
                Some(self.ok(op, 0, &[]))
            }
            op::SPI_SET_PARAMS if !esp8266_rom => {
                if d.len() != 24 {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        "SPI_SET_PARAMS takes 24 bytes".into(),
                    ));
                }
                let total = u32_at(d, 4) as usize;
                if total > self.flash.len() {
                    self.rejected.push(format!(
                        "SPI_SET_PARAMS: {total:#x} bytes is more than the flash ({:#x})",
                        self.flash.len()
                    ));
                }
                Some(self.ok(op, 0, &[]))
            }
            op::CHANGE_BAUDRATE if !esp8266_rom => {
                if d.len() != 8 {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        "CHANGE_BAUDRATE takes 8 bytes".into(),
                    ));
                }
                let new = u32_at(d, 0);
                let prior = u32_at(d, 4);
                if !rom && prior == 0 {
                    self.rejected
                        .push("CHANGE_BAUDRATE: the stub needs the prior baud rate".into());
                }
                self.baud = new;
                Some(self.ok(op, 0, &[]))
            }
            op::MEM_BEGIN => {
                if d.len() != 16 {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        "MEM_BEGIN takes 16 bytes".into(),
                    ));
                }
                self.mem = Some(MemSession {
                    size: u32_at(d, 0),
                    blocks: u32_at(d, 4),
                    block_size: u32_at(d, 8),
                    addr: u32_at(d, 12),
                    next_seq: 0,
                });
                Some(self.ok(op, 0, &[]))
            }
            op::MEM_DATA => {
                let Some(mem) = self.mem.clone() else {
                    return Some(self.fail(
                        op,
                        rom_err::FAILED_TO_ACT,
                        stub_err::NOT_IN_FLASH_MODE,
                        "MEM_DATA without MEM_BEGIN".into(),
                    ));
                };
                let (size, seq, block) = match self.check_block(op, chk, d, mem.next_seq) {
                    Ok(x) => x,
                    Err(r) => return Some(r),
                };
                if seq >= mem.blocks || size > mem.block_size as usize {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        format!("block {seq} of {size} bytes does not fit the download"),
                    ));
                }
                let addr = mem.addr + seq * mem.block_size;
                self.ram.insert(addr, block.to_vec());
                if let Some(m) = &mut self.mem {
                    m.next_seq += 1;
                }
                Some(self.ok(op, 0, &[]))
            }
            op::MEM_END => {
                if d.len() != 8 {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        "MEM_END takes 8 bytes".into(),
                    ));
                }
                let no_entry = u32_at(d, 0);
                let entry = u32_at(d, 4);
                if let Some(m) = self.mem.take()
                    && m.next_seq != m.blocks
                {
                    return Some(self.fail(
                        op,
                        rom_err::FAILED_TO_ACT,
                        stub_err::NOT_ENOUGH_DATA,
                        format!(
                            "{} of {} blocks of {} bytes received",
                            m.next_seq, m.blocks, m.size
                        ),
                    ));
                }
                let reply = self.ok(op, 0, &[]);
                if no_entry == 0 {
                    let loaded = self
                        .ram
                        .iter()
                        .any(|(a, b)| entry >= *a && (entry as usize) < *a as usize + b.len());
                    if !loaded || !rom {
                        self.rejected.push(format!(
                            "MEM_END: entry {entry:#x} is not in downloaded RAM"
                        ));
                        return Some(reply);
                    }
                    // The ROM answers, then jumps to the stub, which says hello.
                    out.replies.push(b"OHAI".to_vec());
                    self.mode = Mode::Stub;
                    self.stub_started = true;
                    self.mem = None;
                }
                Some(reply)
            }
            op::FLASH_BEGIN | op::FLASH_DEFL_BEGIN => {
                if op == op::FLASH_DEFL_BEGIN && esp8266_rom {
                    return self.unsupported(op);
                }
                // 16 bytes; ROMs of chips after the ESP32 (and the stub) also take a
                // fifth word, "encrypted".
                let extended_ok = !rom || !matches!(self.chip, Chip::Esp8266);
                if !(d.len() == 16 || (d.len() == 20 && extended_ok)) {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        format!("{} bytes of parameters", d.len()),
                    ));
                }
                let (size, blocks, block_size, offset) =
                    (u32_at(d, 0), u32_at(d, 4), u32_at(d, 8), u32_at(d, 12));
                if d.len() == 20 && u32_at(d, 16) != 0 {
                    return Some(self.fail(
                        op,
                        rom_err::FAILED_TO_ACT,
                        stub_err::BAD_DATA_LEN,
                        "encrypted writes are not simulated".into(),
                    ));
                }
                if size > 0 && !u64::from(offset).is_multiple_of(SECTOR) {
                    return Some(self.fail(
                        op,
                        rom_err::FAILED_TO_ACT,
                        stub_err::BAD_DATA_LEN,
                        format!("offset {offset:#x} is not sector aligned"),
                    ));
                }
                if u64::from(offset) + u64::from(size) > self.flash.len() as u64 {
                    return Some(self.fail(
                        op,
                        rom_err::FAILED_TO_ACT,
                        stub_err::BAD_DATA_LEN,
                        format!("{size:#x} bytes at {offset:#x} exceed the flash"),
                    ));
                }
                if rom && size > 0 {
                    // The ROM erases up front.
                    let sectors = u64::from(size).div_ceil(SECTOR);
                    let sectors = if self.chip == Chip::Esp8266 {
                        // The ESP8266 ROM's SPIEraseArea bug (esptool's get_erase_size()
                        // works around it): it erases the head sectors up to the next
                        // 64 KiB block twice over, i.e. n + min(16 - start % 16, n).
                        let start = u64::from(offset) / SECTOR;
                        sectors + (16 - start % 16).min(sectors)
                    } else {
                        sectors
                    };
                    self.erase(u64::from(offset), sectors * SECTOR);
                }
                let inflater = (op == op::FLASH_DEFL_BEGIN)
                    .then(|| std::sync::Arc::new(std::sync::Mutex::new(Decompress::new(true))));
                self.flash_session = Some(FlashSession {
                    offset,
                    size,
                    blocks,
                    block_size,
                    next_seq: 0,
                    inflater,
                    written: 0,
                    erased_to: u64::from(offset),
                });
                Some(self.ok(op, 0, &[]))
            }
            op::FLASH_DATA | op::FLASH_DEFL_DATA => {
                let Some(s) = self.flash_session.clone() else {
                    return Some(self.fail(
                        op,
                        rom_err::FAILED_TO_ACT,
                        stub_err::NOT_IN_FLASH_MODE,
                        "no FLASH_BEGIN".into(),
                    ));
                };
                if (op == op::FLASH_DEFL_DATA) != s.inflater.is_some() {
                    return Some(self.fail(
                        op,
                        rom_err::FAILED_TO_ACT,
                        stub_err::NOT_IN_FLASH_MODE,
                        "data command does not match the begin command".into(),
                    ));
                }
                let (size, seq, block) = match self.check_block(op, chk, d, s.next_seq) {
                    Ok(x) => x,
                    Err(r) => return Some(r),
                };
                if seq >= s.blocks || size > s.block_size as usize {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        format!(
                            "block {seq} ({size} bytes) beyond {} blocks of {}",
                            s.blocks, s.block_size
                        ),
                    ));
                }
                let block = block.to_vec();
                let result = match &s.inflater {
                    None => {
                        if rom && size != s.block_size as usize {
                            return Some(self.fail(
                                op,
                                rom_err::INVALID_MESSAGE,
                                stub_err::BAD_DATA_LEN,
                                format!("ROM blocks are {} bytes, got {size}", s.block_size),
                            ));
                        }
                        let at = u64::from(s.offset) + u64::from(seq) * u64::from(s.block_size);
                        self.program(at, &block, &s)
                    }
                    Some(inf) => {
                        let inflated = match inflate(inf, &block) {
                            Ok(v) => v,
                            Err(e) => {
                                return Some(self.fail(
                                    op,
                                    rom_err::DEFLATE,
                                    stub_err::INFLATE_ERROR,
                                    e,
                                ));
                            }
                        };
                        if !rom && s.written + inflated.len() as u64 > u64::from(s.size) {
                            return Some(self.fail(
                                op,
                                rom_err::DEFLATE,
                                stub_err::TOO_MUCH_DATA,
                                "more data than announced".into(),
                            ));
                        }
                        let at = u64::from(s.offset) + s.written;
                        self.program(at, &inflated, &s)
                    }
                };
                if let Err(e) = result {
                    return Some(self.fail(op, rom_err::FLASH_WRITE, stub_err::BAD_DATA_LEN, e));
                }
                Some(self.ok(op, 0, &[]))
            }
            op::FLASH_END | op::FLASH_DEFL_END => {
                if op == op::FLASH_DEFL_END && esp8266_rom {
                    return self.unsupported(op);
                }
                if d.len() != 4 {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        "END takes 4 bytes".into(),
                    ));
                }
                let stay = u32_at(d, 0) != 0;
                if let Some(s) = self.flash_session.take()
                    && !rom
                    && s.inflater.is_some()
                    && s.written < u64::from(s.size)
                {
                    return Some(self.fail(
                        op,
                        rom_err::FAILED_TO_ACT,
                        stub_err::NOT_ENOUGH_DATA,
                        format!("{} of {} bytes written", s.written, s.size),
                    ));
                }
                let reply = self.ok(op, 0, &[]);
                match (self.mode, stay) {
                    // The stub stays on "run user code = 1"; on 0 it reboots into the
                    // ROM loader (the chip is still strapped for download mode).
                    (Mode::Stub, true) => {}
                    (Mode::Stub, false) => self.mode = Mode::Rom,
                    // The ROM leaves the loader either way (runs the app or reboots).
                    _ => self.mode = Mode::Gone,
                }
                Some(reply)
            }
            op::SPI_FLASH_MD5 if !esp8266_rom => {
                if d.len() != 16 {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        "SPI_FLASH_MD5 takes 16 bytes".into(),
                    ));
                }
                let (addr, size) = (u32_at(d, 0) as usize, u32_at(d, 4) as usize);
                if addr + size > self.flash.len() {
                    return Some(self.fail(
                        op,
                        rom_err::FLASH_READ_LENGTH,
                        stub_err::BAD_DATA_LEN,
                        "beyond the flash".into(),
                    ));
                }
                self.md5_checks.push((addr as u32, size as u32));
                let digest = md5::Md5::digest(&self.flash[addr..addr + size]);
                let body: Vec<u8> = if rom {
                    digest
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<String>()
                        .into_bytes()
                } else {
                    digest.to_vec()
                };
                Some(self.ok(op, 0, &body))
            }
            op::READ_FLASH_SLOW if rom && !esp8266_rom => {
                if d.len() < 8 {
                    return Some(self.fail(
                        op,
                        rom_err::INVALID_MESSAGE,
                        stub_err::BAD_DATA_LEN,
                        "READ_FLASH_SLOW takes offset and size".into(),
                    ));
                }
                let (addr, size) = (u32_at(d, 0) as usize, u32_at(d, 4) as usize);
                if size > 64 || addr + 64 > self.flash.len() {
                    return Some(self.fail(
                        op,
                        rom_err::FLASH_READ_LENGTH,
                        0,
                        format!("{size} bytes at {addr:#x}"),
                    ));
                }
                // Always a 64-byte buffer, whatever was asked for.
                let body = self.flash[addr..addr + 64].to_vec();
                Some(self.ok(op, 0, &body))
            }
            op::READ_FLASH if !rom => {
                if d.len() != 16 {
                    return Some(self.fail(
                        op,
                        0,
                        stub_err::BAD_DATA_LEN,
                        "READ_FLASH takes 16 bytes".into(),
                    ));
                }
                let (addr, size) = (u32_at(d, 0) as usize, u32_at(d, 4) as usize);
                let (block, max) = (u32_at(d, 8) as usize, u32_at(d, 12) as usize);
                if addr + size > self.flash.len() || block == 0 || max == 0 {
                    return Some(self.fail(
                        op,
                        0,
                        stub_err::BAD_DATA_LEN,
                        format!("{size} bytes at {addr:#x}, blocks of {block}, {max} in flight"),
                    ));
                }
                self.read = Some(ReadSession {
                    data: self.flash[addr..addr + size].to_vec(),
                    block,
                    max_in_flight: max,
                    sent: 0,
                    acked: 0,
                });
                let reply = self.ok(op, 0, &[]);
                out.replies.push(reply);
                self.read_send(out);
                None
            }
            op::ERASE_REGION if !rom => {
                if d.len() != 8 {
                    return Some(self.fail(
                        op,
                        0,
                        stub_err::BAD_DATA_LEN,
                        "ERASE_REGION takes 8 bytes".into(),
                    ));
                }
                let (addr, size) = (u64::from(u32_at(d, 0)), u64::from(u32_at(d, 4)));
                if !addr.is_multiple_of(SECTOR)
                    || !size.is_multiple_of(SECTOR)
                    || addr + size > self.flash.len() as u64
                {
                    return Some(self.fail(
                        op,
                        0,
                        stub_err::BAD_DATA_LEN,
                        format!("{size:#x} bytes at {addr:#x}"),
                    ));
                }
                self.erase(addr, size);
                Some(self.ok(op, 0, &[]))
            }
            op::ERASE_FLASH if !rom => {
                let n = self.flash.len() as u64;
                self.erase(0, n);
                Some(self.ok(op, 0, &[]))
            }
            op::RUN_USER_CODE if !rom => {
                self.mode = Mode::Gone;
                None
            }
            _ => self.unsupported(op),
        }
    }

    /// Checks a `*_DATA` frame: `{size, seq, 0, 0}` header, payload length, the
    /// XOR-0xEF checksum and the sequence number.
    fn check_block<'d>(
        &mut self,
        op: u8,
        chk: u32,
        d: &'d [u8],
        expected_seq: u32,
    ) -> Result<(usize, u32, &'d [u8]), Vec<u8>> {
        if d.len() < 16 {
            return Err(self.fail(
                op,
                rom_err::INVALID_MESSAGE,
                stub_err::BAD_DATA_LEN,
                "no block header".into(),
            ));
        }
        let size = u32_at(d, 0) as usize;
        let seq = u32_at(d, 4);
        let block = &d[16..];
        if block.len() != size {
            return Err(self.fail(
                op,
                rom_err::INVALID_MESSAGE,
                stub_err::BAD_DATA_LEN,
                format!("header says {size} bytes, {} follow", block.len()),
            ));
        }
        let sum = block.iter().fold(0xEFu8, |a, b| a ^ b);
        if u32::from(sum) != chk {
            return Err(self.fail(
                op,
                rom_err::INVALID_CRC,
                stub_err::BAD_DATA_CHECKSUM,
                format!("block {seq}: checksum {chk:#04x}, data gives {sum:#04x}"),
            ));
        }
        if seq != expected_seq {
            return Err(self.fail(
                op,
                rom_err::INVALID_MESSAGE,
                stub_err::BAD_DATA_LEN,
                format!("block {seq} out of order (expected {expected_seq})"),
            ));
        }
        Ok((size, seq, block))
    }

    /// Writes `bytes` at `at` as NOR flash does (AND), erasing first for the stub.
    fn program(&mut self, at: u64, bytes: &[u8], s: &FlashSession) -> Result<(), String> {
        let mut bytes = bytes;
        if self.mode == Mode::Stub && s.inflater.is_none() {
            // The stub trims the padding of the final block to the announced size.
            let left = u64::from(s.size).saturating_sub(s.written) as usize;
            bytes = &bytes[..bytes.len().min(left)];
        }
        let end = at + bytes.len() as u64;
        if end > self.flash.len() as u64 {
            return Err(format!(
                "write of {} bytes at {at:#x} beyond the flash",
                bytes.len()
            ));
        }
        if self.mode == Mode::Stub && !bytes.is_empty() {
            // The stub erases sector by sector as the data arrives.
            let from = s.erased_to.max(at - at % SECTOR);
            let to = end.next_multiple_of(SECTOR);
            if to > from {
                self.erase(from, to - from);
            }
            if let Some(f) = &mut self.flash_session {
                f.erased_to = f.erased_to.max(to);
            }
        }
        for (i, b) in bytes.iter().enumerate() {
            self.flash[at as usize + i] &= b;
        }
        if !bytes.is_empty() {
            self.writes.push((at as u32, bytes.len() as u32));
        }
        if let Some(f) = &mut self.flash_session {
            f.next_seq += 1;
            f.written += bytes.len() as u64;
        }
        Ok(())
    }

    fn erase(&mut self, at: u64, len: u64) {
        let end = (at + len).min(self.flash.len() as u64);
        self.flash[at as usize..end as usize].fill(0xFF);
        self.erases.push((at as u32, (end - at) as u32));
    }

    fn read_send(&mut self, out: &mut Output) {
        let Some(r) = &mut self.read else { return };
        while r.sent < r.data.len() && (r.sent - r.acked).div_ceil(r.block) < r.max_in_flight {
            let n = r.block.min(r.data.len() - r.sent);
            out.replies.push(r.data[r.sent..r.sent + n].to_vec());
            r.sent += n;
        }
    }

    fn read_ack(&mut self, acked: usize, out: &mut Output) {
        let Some(r) = &mut self.read else { return };
        if acked > r.sent || acked < r.acked {
            self.rejected.push(format!(
                "READ_FLASH: ack of {acked} bytes after {} sent",
                r.sent
            ));
            self.read = None;
            return;
        }
        r.acked = acked;
        if r.acked == r.data.len() {
            let digest = md5::Md5::digest(&r.data).to_vec();
            out.replies.push(digest);
            self.read = None;
            return;
        }
        self.read_send(out);
    }

    fn read_reg(&self, addr: u32) -> u32 {
        match (self.chip, addr) {
            // UART_CLKDIV: the divider the ROM set for the current baud rate from the
            // APB clock (ESP8266: 2 x 26 MHz crystal; ESP32 family: 40 MHz crystal).
            (Chip::Esp8266, 0x6000_0014) => 52_000_000 / self.baud.max(1),
            (_, 0x6000_0014) => 40_000_000 / self.baud.max(1),
            _ => self.regs.get(&addr).copied().unwrap_or(0),
        }
    }

    fn write_reg(&mut self, addr: u32, value: u32, mask: u32) {
        let old = self.read_reg(addr);
        let new = (old & !mask) | (value & mask);
        self.regs.insert(addr, new);
        let (base, _usr, _usr1, usr2, w0) = self.chip.spi();
        if addr == base && new & (1 << 18) != 0 {
            // SPI_CMD_USR: run the user command in USR2's low byte, then clear the bit.
            let command = self.read_reg(base + usr2) & 0xFF;
            let result = match command {
                // RDID: manufacturer 0xEF (Winbond), type 0x40, capacity log2(size).
                0x9F => {
                    let cap = self.flash.len().trailing_zeros();
                    0xEF | (0x40 << 8) | (cap << 16)
                }
                _ => 0,
            };
            self.regs.insert(base + w0, result);
            self.regs.insert(base, new & !(1 << 18));
        }
    }
}

fn inflate(inf: &std::sync::Mutex<Decompress>, input: &[u8]) -> Result<Vec<u8>, String> {
    let mut d = inf.lock().map_err(|_| "inflater poisoned".to_string())?;
    let mut out = Vec::with_capacity(input.len() * 4 + 1024);
    let mut consumed = 0usize;
    loop {
        if out.capacity() - out.len() < 4096 {
            out.reserve(64 * 1024);
        }
        let before_in = d.total_in();
        let status = d
            .decompress_vec(&input[consumed..], &mut out, FlushDecompress::None)
            .map_err(|e| format!("inflate: {e}"))?;
        consumed += (d.total_in() - before_in) as usize;
        match status {
            Status::StreamEnd => break,
            Status::Ok | Status::BufError => {
                if consumed >= input.len() && out.capacity() > out.len() {
                    break;
                }
            }
        }
    }
    if consumed < input.len() {
        return Err(format!(
            "{} bytes after the end of the zlib stream",
            input.len() - consumed
        ));
    }
    Ok(out)
}
