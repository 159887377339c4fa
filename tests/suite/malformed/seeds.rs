//! Small, synthetic but well-formed firmware files, built in code (no committed binaries): the
//! seeds the malformed-input cases and the property test corrupt, and the fuzz seed corpus.
//!
//! Every builder also returns the offsets of its structure (segment headers, checksum, digest,
//! CRC, table), so the cases can cut and corrupt exactly at a boundary and name the offset the
//! error must report. Checksums come from `thinger_patch_core::checksum` (plain functions with their
//! own known-answer tests); `seeds_are_valid_and_patchable` checks every seed verifies valid.
#![allow(dead_code)]

use std::ops::Range;
use thinger_patch_core::checksum;

/// A named seed and the byte ranges that hold its structure (the property test flips every byte
/// of these ranges).
pub struct Seed {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    pub hot: Vec<Range<usize>>,
}

/// A deterministic xorshift64* generator (no `rand` dependency; same numbers on every run).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
}

// =============================================================================================
// 0xE9 images
// =============================================================================================

/// One segment: load address and data (a multiple of 4 bytes long).
pub struct Seg {
    pub addr: u32,
    pub data: Vec<u8>,
}

/// The extended (ESP32-family / ESP8266 v3) header fields the seeds vary.
#[derive(Clone, Copy)]
pub struct Ext {
    pub chip_id: u16,
    pub hash_appended: bool,
}

/// An `0xE9` image and where its parts are (offsets relative to the image start).
pub struct Image {
    pub bytes: Vec<u8>,
    pub header_len: usize,
    /// Offset of each segment header (its data follows 8 bytes later).
    pub seg_headers: Vec<usize>,
    pub checksum: usize,
    pub digest: Option<usize>,
}

impl Image {
    pub fn seg_data(&self, i: usize) -> usize {
        self.seg_headers[i] + 8
    }
}

/// Low-entropy filler that looks like code or data (a pattern plus some text), so that a
/// corrupted image is never mistaken for encrypted data.
pub fn filler(len: usize, salt: u8) -> Vec<u8> {
    let text = b"thinger-patch seed data ";
    (0..len)
        .map(|i| {
            if i % 16 < 8 {
                text[(i + salt as usize) % text.len()]
            } else {
                (i as u8 & 0x0F).wrapping_add(salt)
            }
        })
        .collect()
}

/// Builds an `0xE9` image: header, optional extended header, segments, zero padding up to the
/// checksum byte at `E | 0xF`, the checksum, and the SHA-256 when `ext.hash_appended`.
pub fn e9_image(entry: u32, flash: [u8; 2], ext: Option<Ext>, segs: &[Seg]) -> Image {
    let mut b = vec![0xE9, segs.len() as u8, flash[0], flash[1]];
    b.extend_from_slice(&entry.to_le_bytes());
    if let Some(x) = ext {
        // wp_pin (0xEE = disabled), three drive-strength bytes, chip_id, min_chip_rev,
        // min_chip_rev_full, max_chip_rev_full, 4 reserved bytes, hash_appended.
        b.extend_from_slice(&[0xEE, 0, 0, 0]);
        b.extend_from_slice(&x.chip_id.to_le_bytes());
        b.push(0);
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&199u16.to_le_bytes());
        b.extend_from_slice(&[0, 0, 0, 0]);
        b.push(x.hash_appended as u8);
        assert_eq!(b.len(), 24);
    }
    let header_len = b.len();
    let mut seg_headers = Vec::new();
    let mut xor = checksum::XOR_SEED;
    for s in segs {
        assert_eq!(s.data.len() % 4, 0, "segment lengths are multiples of 4");
        seg_headers.push(b.len());
        b.extend_from_slice(&s.addr.to_le_bytes());
        b.extend_from_slice(&(s.data.len() as u32).to_le_bytes());
        b.extend_from_slice(&s.data);
        xor ^= checksum::xor(&s.data);
    }
    let checksum = b.len() | 0xF;
    b.resize(checksum, 0);
    b.push(xor);
    let digest = ext.filter(|x| x.hash_appended).map(|_| {
        let d = checksum::sha256(&b);
        b.extend_from_slice(&d);
        checksum + 1
    });
    Image {
        bytes: b,
        header_len,
        seg_headers,
        checksum,
        digest,
    }
}

/// An `esp_app_desc_t` (256 bytes: magic, versions, names, dates, ELF SHA-256) followed by
/// `.rodata`-like strings, the data of an ESP-IDF app's segment 0.
fn app_desc_and_rodata() -> Vec<u8> {
    let mut d = Vec::new();
    d.extend_from_slice(&0xABCD_5432u32.to_le_bytes());
    d.extend_from_slice(&0u32.to_le_bytes()); // secure_version
    d.extend_from_slice(&[0; 8]); // reserved
    let mut field = |s: &str, len: usize| {
        let mut f = s.as_bytes().to_vec();
        f.resize(len, 0);
        d.extend_from_slice(&f);
    };
    field("1.0.0", 32); // version
    field("seed-app", 32); // project_name
    field("00:00:00", 16); // time
    field("Jan  1 2025", 16); // date
    field("v5.4", 32); // idf_ver
    d.extend_from_slice(&[0x5A; 32]); // app_elf_sha256
    d.resize(256, 0);
    for s in [
        "Your SSID\0",
        "Your Password Here\0",
        "thinger-user\0device-id\0",
    ] {
        d.extend_from_slice(s.as_bytes());
    }
    d.resize(0x140, 0);
    d
}

/// An ESP32-C3 app: extended header (chip_id 5, hash_appended 1), 3 segments (DROM with the app
/// descriptor, DRAM, IROM), checksum and SHA-256.
pub fn esp32c3_app() -> Image {
    e9_image(
        0x4038_0080,
        [0x02, 0x20],
        Some(Ext {
            chip_id: 5,
            hash_appended: true,
        }),
        &[
            Seg {
                addr: 0x3C00_0020,
                data: app_desc_and_rodata(),
            },
            Seg {
                addr: 0x3FC8_8000,
                data: filler(0x40, 1),
            },
            Seg {
                addr: 0x4200_0020,
                data: filler(0x60, 2),
            },
        ],
    )
}

/// An ESP32-C3 second-stage bootloader: 2 segments, checksum and SHA-256.
pub fn esp32c3_bootloader() -> Image {
    e9_image(
        0x403C_E000,
        [0x02, 0x20],
        Some(Ext {
            chip_id: 5,
            hash_appended: true,
        }),
        &[
            Seg {
                addr: 0x3FCD_5820,
                data: filler(0x20, 3),
            },
            Seg {
                addr: 0x403C_E000,
                data: filler(0x40, 4),
            },
        ],
    )
}

/// An ESP8266 v1 (ROM format) image: 8-byte header, IRAM and DRAM segments, checksum.
pub fn esp8266_v1() -> Image {
    e9_image(0x4010_0004, [0x00, 0x20], None, &esp8266_ram_segments())
}

fn esp8266_ram_segments() -> Vec<Seg> {
    let mut strings = b"Your SSID\0\0\0Your Password Here\0\0".to_vec();
    strings.resize(0x30, 0);
    vec![
        Seg {
            addr: 0x4010_0000,
            data: filler(0x50, 5),
        },
        Seg {
            addr: 0x3FFE_8000,
            data: strings,
        },
    ]
}

/// An ESP32-C3 app whose one segment crosses the top of the 32-bit address space (loaded at
/// 0xFFFFFF00, 0x200 bytes): the placeholder text below the boundary, a slot magic ending
/// exactly at it and the placeholder text again above it. Address arithmetic must neither
/// overflow nor wrap.
pub fn app_across_4gib() -> Image {
    let mut data = filler(0x200, 12);
    data[0x80..0x89].copy_from_slice(b"Your SSID");
    data[0xF8..0x100].copy_from_slice(b"TPSLOT\xA5\x5A");
    data[0x180..0x189].copy_from_slice(b"Your SSID");
    e9_image(
        0x4038_0080,
        [0x02, 0x20],
        Some(Ext {
            chip_id: 5,
            hash_appended: true,
        }),
        &[Seg {
            addr: 0xFFFF_FF00,
            data,
        }],
    )
}

/// An ESP32-C3 image header that declares 0 segments (checksum and SHA-256 right after it),
/// followed by a zero word and 64 bytes of data: what a Secure Boot v1 signature block looks like
/// after a real image. Not an image (nothing to load), and not signed.
pub fn zero_segment_image() -> Image {
    let mut img = e9_image(
        0x4038_0080,
        [0x02, 0x20],
        Some(Ext {
            chip_id: 5,
            hash_appended: true,
        }),
        &[],
    );
    img.bytes.extend_from_slice(&0u32.to_le_bytes());
    img.bytes.extend_from_slice(&Rng::new(68).bytes(64));
    img
}

// =============================================================================================
// ESP8266 v2 (0xEA) and Arduino eboot + app
// =============================================================================================

/// An ESP8266 v2 image and where its parts are.
pub struct V2 {
    pub bytes: Vec<u8>,
    /// The irom segment header (8), and its data.
    pub irom_header: usize,
    /// The `0xE9` header of the RAM image.
    pub second: usize,
    pub seg_headers: Vec<usize>,
    pub checksum: usize,
    pub crc: usize,
}

/// An ESP8266 v2 image: `0xEA` header, irom segment, `0xE9` RAM image (checksum at a
/// file-aligned position), then esptool's `esp8266_crc32` of everything before it.
pub fn esp8266_v2() -> V2 {
    let mut b = vec![0xEA, 0x04, 0x00, 0x20];
    b.extend_from_slice(&0x4010_0004u32.to_le_bytes());
    let irom_header = b.len();
    let irom = filler(0x80, 6);
    b.extend_from_slice(&0u32.to_le_bytes());
    b.extend_from_slice(&(irom.len() as u32).to_le_bytes());
    b.extend_from_slice(&irom);
    let second = b.len();
    let segs = esp8266_ram_segments();
    b.extend_from_slice(&[0xE9, segs.len() as u8, 0x00, 0x20]);
    b.extend_from_slice(&0x4010_0004u32.to_le_bytes());
    let mut seg_headers = Vec::new();
    let mut xor = checksum::XOR_SEED;
    for s in &segs {
        seg_headers.push(b.len());
        b.extend_from_slice(&s.addr.to_le_bytes());
        b.extend_from_slice(&(s.data.len() as u32).to_le_bytes());
        b.extend_from_slice(&s.data);
        xor ^= checksum::xor(&s.data);
    }
    // esptool aligns the v2 checksum to the file, not to the RAM image.
    let checksum = b.len() | 0xF;
    b.resize(checksum, 0);
    b.push(xor);
    let crc = b.len();
    let c = checksum::esp8266_crc32(&b);
    b.extend_from_slice(&c.to_le_bytes());
    V2 {
        bytes: b,
        irom_header,
        second,
        seg_headers,
        checksum,
        crc,
    }
}

/// An Arduino ESP8266 full image and where its parts are.
pub struct Arduino {
    pub bytes: Vec<u8>,
    pub eboot: Image,
    /// The app, at [`ARDUINO_APP`]; its offsets are relative to the app.
    pub app: Image,
    /// The core 3.x CRC trailer `{u32 length, u32 crc}`.
    pub trailer: usize,
}

pub const ARDUINO_APP: usize = 0x1000;

/// Arduino ESP8266 core 3.x layout: eboot (v1 image) at 0x0 padded with 0xAA to 0x1000, the app
/// (v1 image, `.irom0.text` first) at 0x1000, and the CRC trailer in the first 8 bytes of
/// `.irom0.text` (the app checksum computed with them zero, as the core's build does).
pub fn arduino_core3() -> Arduino {
    let eboot = e9_image(
        0x4010_F000,
        [0x00, 0x20],
        None,
        &[Seg {
            addr: 0x4010_F000,
            data: filler(0x40, 7),
        }],
    );
    let mut irom = vec![0; 8];
    irom.extend_from_slice(&filler(0x78, 8));
    let mut segs = vec![Seg {
        addr: 0x4020_1010,
        data: irom,
    }];
    segs.extend(esp8266_ram_segments());
    let app = e9_image(0x4010_0004, [0x00, 0x20], None, &segs);
    let mut b = eboot.bytes.clone();
    b.resize(ARDUINO_APP, 0xAA);
    b.extend_from_slice(&app.bytes);
    let trailer = ARDUINO_APP + app.seg_data(0);
    assert_eq!(trailer, 0x1010);
    let len = b.len() as u32;
    b[trailer..trailer + 4].copy_from_slice(&len.to_le_bytes());
    let crc = checksum::crc32_mpeg2(&b, trailer..trailer + 8);
    b[trailer + 4..trailer + 8].copy_from_slice(&crc.to_le_bytes());
    Arduino {
        bytes: b,
        eboot,
        app,
        trailer,
    }
}

// =============================================================================================
// Merged flash image with a partition table
// =============================================================================================

pub const TABLE: usize = 0x8000;
pub const APP: usize = 0x10000;

/// One partition table entry: `AA 50`, type, subtype, offset, size, label[16], flags.
pub fn partition_entry(kind: u8, subtype: u8, offset: u32, size: u32, label: &str) -> [u8; 32] {
    let mut e = [0u8; 32];
    e[0] = 0xAA;
    e[1] = 0x50;
    e[2] = kind;
    e[3] = subtype;
    e[4..8].copy_from_slice(&offset.to_le_bytes());
    e[8..12].copy_from_slice(&size.to_le_bytes());
    e[12..12 + label.len()].copy_from_slice(label.as_bytes());
    e
}

/// The MD5 entry over `entries`: `EB EB`, 14 x `FF`, MD5.
pub fn md5_entry(entries: &[u8]) -> [u8; 32] {
    let mut e = [0xFF; 32];
    e[0] = 0xEB;
    e[1] = 0xEB;
    e[16..].copy_from_slice(&checksum::md5(entries));
    e
}

/// nvs, phy_init and factory entries, the MD5 entry and the all-0xFF end marker (160 bytes).
pub fn partition_table() -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&partition_entry(1, 0x02, 0x9000, 0x6000, "nvs"));
    t.extend_from_slice(&partition_entry(1, 0x01, 0xF000, 0x1000, "phy_init"));
    t.extend_from_slice(&partition_entry(0, 0x00, APP as u32, 0x10_0000, "factory"));
    let md5 = md5_entry(&t);
    t.extend_from_slice(&md5);
    t.extend_from_slice(&[0xFF; 32]);
    t
}

/// A merged ESP32-C3 flash image: bootloader at 0x0, partition table at 0x8000 (with MD5), the
/// app at 0x10000, gaps filled with 0xFF.
pub struct Merged {
    pub bytes: Vec<u8>,
    pub bootloader: Image,
    pub app: Image,
}

/// A merged ESP32-C3 flash image with the Arduino-style OTA table: nvs, otadata, ota_0 at
/// 0x10000 (the app) and ota_1 at 0x110000, past the end of the file, as `esptool merge-bin` of
/// bootloader, table and app writes it. Valid: an empty ota_1 beyond the end is normal.
pub fn merged_esp32c3_ota() -> Merged {
    let bootloader = esp32c3_bootloader();
    let app = esp32c3_app();
    let mut t = Vec::new();
    t.extend_from_slice(&partition_entry(1, 0x02, 0x9000, 0x5000, "nvs"));
    t.extend_from_slice(&partition_entry(1, 0x00, 0xE000, 0x2000, "otadata"));
    t.extend_from_slice(&partition_entry(0, 0x10, APP as u32, 0x10_0000, "app0"));
    t.extend_from_slice(&partition_entry(0, 0x11, 0x11_0000, 0x10_0000, "app1"));
    let md5 = md5_entry(&t);
    t.extend_from_slice(&md5);
    t.extend_from_slice(&[0xFF; 32]);
    let mut b = bootloader.bytes.clone();
    b.resize(TABLE, 0xFF);
    b.extend_from_slice(&t);
    b.resize(APP, 0xFF);
    b.extend_from_slice(&app.bytes);
    Merged {
        bytes: b,
        bootloader,
        app,
    }
}

pub fn merged_esp32c3() -> Merged {
    let bootloader = esp32c3_bootloader();
    let app = esp32c3_app();
    let mut b = bootloader.bytes.clone();
    b.resize(TABLE, 0xFF);
    b.extend_from_slice(&partition_table());
    b.resize(APP, 0xFF);
    b.extend_from_slice(&app.bytes);
    Merged {
        bytes: b,
        bootloader,
        app,
    }
}

// =============================================================================================
// ELF
// =============================================================================================

pub const EM_386: u16 = 3;
pub const EM_XTENSA: u16 = 94;
pub const EM_RISCV: u16 = 243;
pub const SHDR_LEN: usize = 40;

/// One section of a synthetic ELF: name, type, flags, address and data (a NOBITS section takes
/// its size from `data` but stores no bytes).
pub struct ElfSec {
    pub name: &'static str,
    pub kind: u32,
    pub flags: u32,
    pub addr: u32,
    pub data: Vec<u8>,
}

/// A synthetic 32-bit little-endian ELF and where its section headers are.
pub struct Elf {
    pub bytes: Vec<u8>,
    pub shoff: usize,
    /// Section data offsets, by section index (index 0 is the null section).
    pub data_offsets: Vec<usize>,
}

/// Builds an ELF32 LSB executable: header, section data, `.shstrtab`, then the section header
/// table (null section first, `.shstrtab` last).
pub fn elf32(machine: u16, sections: &[ElfSec]) -> Elf {
    let mut b = vec![0u8; 52];
    let mut names = vec![0u8];
    let mut headers: Vec<[u32; 10]> = vec![[0; 10]];
    let mut data_offsets = vec![0];
    for s in sections {
        while !b.len().is_multiple_of(4) {
            b.push(0);
        }
        let name = names.len() as u32;
        names.extend_from_slice(s.name.as_bytes());
        names.push(0);
        data_offsets.push(b.len());
        headers.push([
            name,
            s.kind,
            s.flags,
            s.addr,
            b.len() as u32,
            s.data.len() as u32,
            0,
            0,
            4,
            0,
        ]);
        if s.kind != 8 {
            b.extend_from_slice(&s.data);
        }
    }
    let shstrtab_name = names.len() as u32;
    names.extend_from_slice(b".shstrtab\0");
    data_offsets.push(b.len());
    headers.push([
        shstrtab_name,
        3,
        0,
        0,
        b.len() as u32,
        names.len() as u32,
        0,
        0,
        1,
        0,
    ]);
    b.extend_from_slice(&names);
    while !b.len().is_multiple_of(4) {
        b.push(0);
    }
    let shoff = b.len();
    for h in &headers {
        for w in h {
            b.extend_from_slice(&w.to_le_bytes());
        }
    }
    // e_ident: magic, ELFCLASS32, ELFDATA2LSB, EV_CURRENT.
    b[..7].copy_from_slice(&[0x7F, b'E', b'L', b'F', 1, 1, 1]);
    let put16 =
        |b: &mut Vec<u8>, at: usize, v: u16| b[at..at + 2].copy_from_slice(&v.to_le_bytes());
    put16(&mut b, 16, 2); // ET_EXEC
    put16(&mut b, 18, machine);
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[24..28].copy_from_slice(&0x4200_0020u32.to_le_bytes());
    b[32..36].copy_from_slice(&(shoff as u32).to_le_bytes());
    put16(&mut b, 40, 52);
    put16(&mut b, 42, 32);
    put16(&mut b, 46, SHDR_LEN as u16);
    put16(&mut b, 48, headers.len() as u16);
    put16(&mut b, 50, (headers.len() - 1) as u16);
    Elf {
        bytes: b,
        shoff,
        data_offsets,
    }
}

const SHT_PROGBITS: u32 = 1;
const SHT_NOBITS: u32 = 8;
const SHF_WRITE: u32 = 1;
const SHF_ALLOC: u32 = 2;
const SHF_EXECINSTR: u32 = 4;

/// A RISC-V (ESP32-C3) firmware ELF: `.text`, `.rodata`, `.data`, `.bss` and a debug section.
pub fn riscv_elf() -> Elf {
    let mut rodata = b"Your SSID\0\0\0Your Password Here\0\0".to_vec();
    rodata.resize(0x40, 0);
    elf32(
        EM_RISCV,
        &[
            ElfSec {
                name: ".text",
                kind: SHT_PROGBITS,
                flags: SHF_ALLOC | SHF_EXECINSTR,
                addr: 0x4200_0020,
                data: filler(0x80, 9),
            },
            ElfSec {
                name: ".rodata",
                kind: SHT_PROGBITS,
                flags: SHF_ALLOC,
                addr: 0x3C00_0020,
                data: rodata,
            },
            ElfSec {
                name: ".data",
                kind: SHT_PROGBITS,
                flags: SHF_ALLOC | SHF_WRITE,
                addr: 0x3FC8_8000,
                data: filler(0x20, 10),
            },
            ElfSec {
                name: ".bss",
                kind: SHT_NOBITS,
                flags: SHF_ALLOC | SHF_WRITE,
                addr: 0x3FC8_8020,
                data: vec![0; 0x100],
            },
            ElfSec {
                name: ".debug_info",
                kind: SHT_PROGBITS,
                flags: 0,
                addr: 0,
                data: filler(0x20, 11),
            },
        ],
    )
}

// =============================================================================================
// gzip
// =============================================================================================

/// The deterministic gzip the library writes (`mtime` 0, no name).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    thinger_patch_core::format::gzip::compress(data)
}

/// A gzip bomb of `len` zero bytes (`len >= 1`), written by hand so that building it costs
/// nothing: one fixed-Huffman deflate block holding a literal 0 and then matches of length 258
/// (and one shorter) at distance 1, about 13 bits per 258 output bytes. CRC-32 and ISIZE are
/// correct, so it is a valid gzip file.
pub fn gzip_bomb(len: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        acc: u64,
        n: u32,
    }
    impl Bits {
        /// `n` bits of `v`, least significant first (header fields, extra bits).
        fn put(&mut self, v: u32, n: u32) {
            self.acc |= (v as u64) << self.n;
            self.n += n;
            while self.n >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.n -= 8;
            }
        }
        /// A Huffman code of `n` bits, most significant first.
        fn code(&mut self, code: u32, n: u32) {
            self.put(code.reverse_bits() >> (32 - n), n);
        }
        /// Fixed-Huffman length code for a match of `len` (3..=258) at distance 1.
        fn matched(&mut self, len: usize) {
            const BASE: [usize; 29] = [
                3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83,
                99, 115, 131, 163, 195, 227, 258,
            ];
            const EXTRA: [u32; 29] = [
                0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5,
                0,
            ];
            let i = BASE.iter().rposition(|&b| b <= len).expect("len >= 3");
            let sym = 257 + i as u32;
            if sym < 280 {
                self.code(sym - 256, 7);
            } else {
                self.code(0xC0 + (sym - 280), 8);
            }
            self.put((len - BASE[i]) as u32, EXTRA[i]);
            self.code(0, 5); // distance code 0 = distance 1
        }
    }
    let mut bits = Bits {
        out: vec![0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 2, 0xFF],
        acc: 0,
        n: 0,
    };
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE = fixed Huffman
    bits.code(0x30, 8); // literal 0
    let mut left = len - 1;
    while left > 0 {
        let m = if left >= 258 + 3 || left == 258 {
            258
        } else if left > 258 {
            left - 3
        } else {
            left
        };
        if m < 3 {
            // 1 or 2 bytes left: literals.
            for _ in 0..m {
                bits.code(0x30, 8);
            }
        } else {
            bits.matched(m);
        }
        left -= m;
    }
    bits.code(0, 7); // end of block
    bits.put(0, 7); // flush to a byte boundary
    let mut out = bits.out;
    let mut crc = flate2::Crc::new();
    let zeros = vec![0u8; 1 << 20];
    let mut todo = len;
    while todo > 0 {
        let n = todo.min(zeros.len());
        crc.update(&zeros[..n]);
        todo -= n;
    }
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(len as u32).to_le_bytes());
    out
}

// =============================================================================================
// All seeds
// =============================================================================================

/// Every synthetic seed, with its structural ranges.
pub fn all() -> Vec<Seed> {
    let app = esp32c3_app();
    let v1 = esp8266_v1();
    let v2 = esp8266_v2();
    let ard = arduino_core3();
    let merged = merged_esp32c3();
    let merged_ota = merged_esp32c3_ota();
    let elf = riscv_elf();
    // One range (a `Vec` so that some seeds can list several).
    let one = |r: Range<usize>| -> Vec<Range<usize>> { std::iter::once(r).collect() };
    let whole = |b: &[u8]| one(0..b.len());
    let merged_hot = vec![
        0..merged.bootloader.bytes.len(),
        TABLE..TABLE + 0xA0,
        APP..merged.bytes.len(),
    ];
    let ard_hot = vec![0..ard.eboot.bytes.len() + 16, 0xFF0..ard.bytes.len()];
    let gz = gzip(&v1.bytes);
    vec![
        Seed {
            name: "esp32c3-app",
            hot: whole(&app.bytes),
            bytes: app.bytes,
        },
        Seed {
            name: "esp32c3-bootloader",
            bytes: esp32c3_bootloader().bytes,
            hot: one(0..0x100),
        },
        Seed {
            name: "esp8266-v1",
            hot: whole(&v1.bytes),
            bytes: v1.bytes,
        },
        Seed {
            name: "esp8266-v2",
            hot: whole(&v2.bytes),
            bytes: v2.bytes,
        },
        Seed {
            name: "arduino-core3",
            bytes: ard.bytes,
            hot: ard_hot,
        },
        Seed {
            name: "merged-esp32c3",
            bytes: merged.bytes,
            hot: merged_hot,
        },
        Seed {
            name: "merged-esp32c3-ota",
            hot: vec![
                0..merged_ota.bootloader.bytes.len(),
                TABLE..TABLE + 0xC0,
                APP..merged_ota.bytes.len(),
            ],
            bytes: merged_ota.bytes,
        },
        Seed {
            name: "riscv-elf",
            hot: whole(&elf.bytes),
            bytes: elf.bytes,
        },
        Seed {
            name: "app-across-4gib",
            bytes: app_across_4gib().bytes,
            hot: one(0..0x40),
        },
        Seed {
            name: "esp8266-v1.bin.gz",
            hot: whole(&gz),
            bytes: gz,
        },
    ]
}
