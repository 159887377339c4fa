//! ESP firmware ELFs (Xtensa ESP8266/ESP32/S2/S3, RISC-V ESP32-C/H/P). Patchable
//! bytes are the file bytes of allocated, file-backed sections.

use crate::chip::Chip;
use crate::error::{Error, Result};
use crate::format::app_image::{APP_DESC_LEN, APP_DESC_MAGIC};
use object::read::elf::{FileHeader, SectionHeader};
use object::{LittleEndian, elf};

/// One allocated, file-backed section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfSection {
    /// Section name.
    pub name: String,
    /// Load address.
    pub addr: u32,
    /// File offset of its bytes.
    pub offset: usize,
    /// Length of its bytes.
    pub len: usize,
}

/// A 32-bit little-endian ELF: where its patchable bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfLayout {
    /// `e_machine` (94 Xtensa, 243 RISC-V; others for host programs).
    pub machine: u16,
    /// Entry address.
    pub entry: u32,
    /// File offset of the section header table (`e_shoff`).
    pub section_headers: usize,
    /// Allocated, file-backed sections (never `.debug*`, never NOBITS), each
    /// file byte in one of them at most: see [`ElfLayout::aliased`].
    pub sections: Vec<ElfSection>,
    /// Sections that are allocated but must not be patched (the app descriptor),
    /// at every address that reaches their bytes.
    pub protected: Vec<ElfSection>,
    /// Sections (as their headers declare them) whose file bytes, in part or in
    /// whole, another section already covers: aliased section headers. Only the
    /// first section (by file offset, then header index) keeps such bytes, so
    /// that the address space never holds the same bytes twice: a slot would be
    /// listed twice, and a patch through one alias would change the other copy
    /// behind the report's back (or reach protected bytes at another address).
    pub aliased: Vec<ElfSection>,
}

/// Sections holding `esp_app_desc_t` (ESP-IDF, esp-hal's esp-bootloader-esp-idf).
const APP_DESC_SECTIONS: &[&str] = &[".flash.appdesc", ".rodata_desc"];

/// Whether `data` starts with the ELF magic.
pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(&elf::ELFMAG)
}

/// Machines of host programs (PCs), accepted only on request: the device-side
/// slot pieces also compile into host programs, which tests patch and run.
const HOST_MACHINES: &[u16] = &[
    elf::EM_X86_64.0,
    elf::EM_AARCH64.0,
    elf::EM_386.0,
    elf::EM_ARM.0,
];

impl ElfLayout {
    /// Parses an ESP firmware ELF (32-bit little-endian Xtensa or RISC-V).
    pub fn parse(data: &[u8]) -> Result<ElfLayout> {
        Self::parse_with(data, false)
    }

    /// Like [`ElfLayout::parse`]; `allow_host` also accepts x86/ARM host programs.
    pub fn parse_with(data: &[u8], allow_host: bool) -> Result<ElfLayout> {
        let machine = if data.len() >= 0x14 {
            u16::from_le_bytes([data[0x12], data[0x13]])
        } else {
            0
        };
        let host = allow_host && HOST_MACHINES.contains(&machine);
        if data.len() > 5 && data[5] != elf::ELFDATA2LSB.0 {
            return Err(Error::NotEspElf { machine });
        }
        match data.get(4) {
            Some(2) if host => parse_class::<elf::FileHeader64<LittleEndian>>(data, host),
            Some(1) => parse_class::<elf::FileHeader32<LittleEndian>>(data, host),
            Some(2) => Err(Error::NotEspElf { machine }),
            _ => Err(Error::Elf {
                offset: 4,
                reason: "unknown ELF class (byte 4 must be 1 for 32-bit)".into(),
            }),
        }
    }

    /// `Xtensa`, `RISC-V`, or the host architecture's name.
    pub fn arch(&self) -> &'static str {
        match self.machine {
            m if m == elf::EM_XTENSA.0 => "xtensa",
            m if m == elf::EM_RISCV.0 => "riscv32",
            m if m == elf::EM_X86_64.0 => "x86_64 (host)",
            m if m == elf::EM_AARCH64.0 => "aarch64 (host)",
            _ => "host",
        }
    }

    /// Whether this is a host program rather than ESP firmware.
    pub fn is_host(&self) -> bool {
        self.machine != elf::EM_XTENSA.0 && self.machine != elf::EM_RISCV.0
    }

    /// The chip, inferred from where sections are linked (each chip family maps
    /// flash and RAM at its own addresses). `None` where two chips share a map.
    pub fn chip(&self) -> Option<Chip> {
        let any = |lo: u32, hi: u32| self.sections.iter().any(|s| (lo..hi).contains(&s.addr));
        if self.machine == elf::EM_XTENSA.0 {
            if any(0x4020_0000, 0x4030_0000) || any(0x4010_0000, 0x4011_0000) {
                Some(Chip::Esp8266)
            } else if any(0x3C00_0000, 0x3E00_0000)
                || any(0x4200_0000, 0x4400_0000)
                || any(0x4037_0000, 0x403E_0000)
                || any(0x3FC8_8000, 0x3FD0_0000)
            {
                Some(Chip::Esp32s3)
            } else if any(0x3F00_0000, 0x3F40_0000) {
                Some(Chip::Esp32s2)
            } else if any(0x3F40_0000, 0x3F80_0000) || any(0x400D_0000, 0x4040_0000) {
                Some(Chip::Esp32)
            } else {
                None
            }
        } else if self.machine != elf::EM_RISCV.0 {
            None
        } else if any(0x4FF0_0000, 0x4FFC_0000) {
            Some(Chip::Esp32p4)
        } else if any(0x3FC8_0000, 0x3FCA_0000) || any(0x4037_C000, 0x4038_0000) {
            // ESP32-C2 DRAM starts at 0x3FCA0000; 0x3FC80000..0x3FCA0000 is C3-only.
            Some(Chip::Esp32c3)
        } else {
            None
        }
    }
}

fn parse_class<H: FileHeader<Endian = LittleEndian>>(data: &[u8], host: bool) -> Result<ElfLayout> {
    let header = H::parse(data).map_err(|e| Error::Elf {
        offset: 0,
        reason: e.to_string(),
    })?;
    let e = header.endian().map_err(|err| Error::Elf {
        offset: 5,
        reason: err.to_string(),
    })?;
    let machine = header.e_machine(e).0;
    if !host && machine != elf::EM_XTENSA.0 && machine != elf::EM_RISCV.0 {
        return Err(Error::NotEspElf { machine });
    }
    let shoff = header.e_shoff(e).into() as usize;
    let headers = header.section_headers(e, data).map_err(|err| Error::Elf {
        offset: shoff,
        reason: err.to_string(),
    })?;
    let strings = header
        .section_strings(e, data, headers)
        .map_err(|err| Error::Elf {
            offset: shoff,
            reason: err.to_string(),
        })?;
    let shentsize = header.e_shentsize(e) as usize;
    let mut candidates = Vec::new();
    for (index, sh) in headers.iter().enumerate() {
        let flags = sh.sh_flags(e);
        if !flags.contains(elf::SHF_ALLOC)
            || sh.sh_type(e) == elf::SHT_NOBITS
            || sh.sh_size(e).into() == 0
        {
            continue;
        }
        let name = sh
            .name(e, strings)
            .map(|n| String::from_utf8_lossy(n).into_owned())
            .unwrap_or_default();
        if name.starts_with(".debug") {
            continue;
        }
        let offset = sh.sh_offset(e).into() as usize;
        let len = sh.sh_size(e).into() as usize;
        if offset.checked_add(len).is_none_or(|end| end > data.len()) {
            return Err(Error::Elf {
                offset: shoff + index * shentsize,
                reason: format!(
                    "section {name} claims file bytes {offset:#x}..{:#x}, past the end of the file ({} bytes)",
                    offset as u64 + len as u64,
                    data.len()
                ),
            });
        }
        let section = ElfSection {
            addr: u32::try_from(sh.sh_addr(e).into()).map_err(|_| Error::Elf {
                offset: shoff + index * shentsize,
                reason: "section address above 4 GiB".into(),
            })?,
            name,
            offset,
            len,
        };
        let desc = APP_DESC_SECTIONS.contains(&section.name.as_str());
        candidates.push(Candidate {
            index,
            section,
            desc,
        });
    }
    // The file bytes of esp_app_desc_t: its own section, and (ESP-IDF v4) the
    // start of `.flash.rodata`, as the image route protects it in segment 0.
    let mut guarded: Vec<(usize, usize, String)> = candidates
        .iter()
        .filter_map(|c| {
            let s = &c.section;
            if c.desc {
                Some((s.offset, s.len, s.name.clone()))
            } else if s.len >= APP_DESC_LEN
                && data[s.offset..s.offset + 4] == APP_DESC_MAGIC.to_le_bytes()
            {
                Some((
                    s.offset,
                    APP_DESC_LEN,
                    format!("{} (esp_app_desc_t)", s.name),
                ))
            } else {
                None
            }
        })
        .collect();
    guarded.sort();
    guarded.dedup_by_key(|g| (g.0, g.1));
    let (sections, mut protected, aliased) = dealias(candidates);
    // Protect the descriptor's bytes at whichever address reaches them.
    for (start, len, name) in guarded {
        let end = start + len;
        let first = sections.partition_point(|s| s.offset + s.len <= start);
        for s in sections[first..].iter().take_while(|s| s.offset < end) {
            let a = start.max(s.offset);
            let b = end.min(s.offset + s.len);
            if a < b {
                protected.push(ElfSection {
                    name: name.clone(),
                    // `a - s.offset < s.len`, and dealias keeps `addr + len` within 4 GiB.
                    addr: s.addr + (a - s.offset) as u32,
                    offset: a,
                    len: b - a,
                });
            }
        }
    }
    let mut sections = sections;
    sections.sort_by_key(|s| s.addr);
    Ok(ElfLayout {
        machine,
        entry: header.e_entry(e).into() as u32,
        section_headers: shoff,
        sections,
        protected,
        aliased,
    })
}

/// Patchable sections, app descriptor sections, aliased sections.
type Dealiased = (Vec<ElfSection>, Vec<ElfSection>, Vec<ElfSection>);

/// An allocated, file-backed section and its header index.
struct Candidate {
    index: usize,
    section: ElfSection,
    /// It is the app descriptor's own section (never patchable).
    desc: bool,
}

/// Gives every file byte to one section: the first by file offset (then header
/// index). A later section that covers bytes already given keeps only its part
/// past them (at the matching address), or nothing. Returns the patchable
/// sections sorted by file offset, the app descriptor sections (never
/// patchable, but they still take their bytes) and the aliased sections.
fn dealias(mut candidates: Vec<Candidate>) -> Dealiased {
    candidates.sort_by_key(|c| (c.section.offset, c.index));
    let (mut sections, mut protected, mut aliased) = (Vec::new(), Vec::new(), Vec::new());
    // Every section so far starts at or before this one, so the bytes already
    // given away are exactly `s.offset..covered` of it.
    let mut covered = 0usize;
    for Candidate {
        section: s, desc, ..
    } in candidates
    {
        let end = s.offset + s.len;
        let start = s.offset.max(covered);
        covered = covered.max(end);
        if start > s.offset {
            aliased.push(s.clone());
        }
        if desc {
            protected.push(s);
            continue;
        }
        if start >= end {
            continue;
        }
        // Past 4 GiB the rest loads nowhere; AddressSpace clips it there too.
        let Some(addr) = u32::try_from(start - s.offset)
            .ok()
            .and_then(|skip| s.addr.checked_add(skip))
        else {
            continue;
        };
        let len = (end - start).min(((1u64 << 32) - addr as u64) as usize);
        sections.push(ElfSection {
            addr,
            offset: start,
            len,
            ..s
        });
    }
    (sections, protected, aliased)
}
