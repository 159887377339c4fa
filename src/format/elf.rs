//! ESP firmware ELFs (Xtensa ESP8266/ESP32/S2/S3, RISC-V ESP32-C/H/P). Patchable
//! bytes are the file bytes of allocated, file-backed sections.

use crate::chip::Chip;
use crate::error::{Error, Result};
use object::read::elf::{FileHeader, SectionHeader};
use object::{LittleEndian, elf};

/// One allocated, file-backed section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfSection {
    pub name: String,
    pub addr: u32,
    pub offset: usize,
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfLayout {
    pub machine: u16,
    pub entry: u32,
    /// Allocated, file-backed sections (never `.debug*`, never NOBITS).
    pub sections: Vec<ElfSection>,
    /// Sections that are allocated but must not be patched (the app descriptor).
    pub protected: Vec<ElfSection>,
}

/// Sections holding `esp_app_desc_t` (ESP-IDF, esp-hal's esp-bootloader-esp-idf).
const APP_DESC_SECTIONS: &[&str] = &[".flash.appdesc", ".rodata_desc"];

pub fn is_elf(data: &[u8]) -> bool {
    data.starts_with(&elf::ELFMAG)
}

impl ElfLayout {
    pub fn parse(data: &[u8]) -> Result<ElfLayout> {
        let machine = if data.len() >= 0x14 {
            u16::from_le_bytes([data[0x12], data[0x13]])
        } else {
            0
        };
        if data.len() > 5 && (data[4] != elf::ELFCLASS32.0 || data[5] != elf::ELFDATA2LSB.0) {
            return Err(Error::NotEspElf { machine });
        }
        let header = elf::FileHeader32::<LittleEndian>::parse(data).map_err(|e| Error::Elf {
            offset: 0,
            reason: e.to_string(),
        })?;
        let e = header.endian().map_err(|err| Error::Elf {
            offset: 5,
            reason: err.to_string(),
        })?;
        let machine = header.e_machine(e).0;
        if machine != elf::EM_XTENSA.0 && machine != elf::EM_RISCV.0 {
            return Err(Error::NotEspElf { machine });
        }
        let shoff = header.e_shoff(e) as usize;
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
        let mut sections = Vec::new();
        let mut protected = Vec::new();
        for (index, sh) in headers.iter().enumerate() {
            let flags = sh.sh_flags(e);
            if !flags.contains(elf::SHF_ALLOC)
                || sh.sh_type(e) == elf::SHT_NOBITS
                || sh.sh_size(e) == 0
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
            let offset = sh.sh_offset(e) as usize;
            let len = sh.sh_size(e) as usize;
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
                name,
                addr: sh.sh_addr(e),
                offset,
                len,
            };
            if APP_DESC_SECTIONS.contains(&section.name.as_str()) {
                protected.push(section);
            } else {
                sections.push(section);
            }
        }
        sections.sort_by_key(|s| s.addr);
        Ok(ElfLayout {
            machine,
            entry: header.e_entry(e),
            sections,
            protected,
        })
    }

    pub fn arch(&self) -> &'static str {
        if self.machine == elf::EM_XTENSA.0 {
            "xtensa"
        } else {
            "riscv32"
        }
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
