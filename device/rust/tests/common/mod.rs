//! Helpers shared by the integration tests: the golden vectors parsed from the spec, the
//! expected records built with this crate, a spec-conformant record scanner and patcher, a
//! minimal ELF section reader, temporary directories and process runners.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use thinger_slot::{HEADER_LEN, MAGIC, REQUIRED, SECRET, Slot, value_len};

pub fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `docs/slot-format.md`, the normative spec.
pub fn spec_path() -> PathBuf {
    manifest_dir().join("../../docs/slot-format.md")
}

/// The directory holding `ThingerSlot.h`.
pub fn header_dir() -> PathBuf {
    manifest_dir().join("../arduino/ThingerSlot/src")
}

/// The C sources used by the tests (`tests/c`).
pub fn c_dir() -> PathBuf {
    manifest_dir().join("tests/c")
}

// ---------------------------------------------------------------------------------------------
// Golden vectors (spec §6), parsed at test time so that the document and the tests cannot drift.
// ---------------------------------------------------------------------------------------------

/// The vectors of spec §6 by letter. Checks that every hex dump has consecutive offsets and as
/// many bytes as its heading announces ("...; 84 bytes:").
pub fn golden_vectors() -> BTreeMap<char, Vec<u8>> {
    let text = fs::read_to_string(spec_path()).expect("read docs/slot-format.md");
    let section = text
        .split("## 6. Golden vectors")
        .nth(1)
        .expect("spec has a section '## 6. Golden vectors'");
    let section = section.split("\n## ").next().unwrap();
    let mut vectors = BTreeMap::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        let Some(rest) = line.strip_prefix("**") else {
            continue;
        };
        let letter = rest.chars().next().unwrap();
        assert!(rest[1..].starts_with(".**"), "vector heading {line:?}");
        // The heading may continue on the next lines, up to the opening fence.
        let mut heading = line.to_string();
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            heading.push(' ');
            heading.push_str(l);
        }
        let announced: usize = heading
            .split(" bytes:")
            .next()
            .and_then(|h| h.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("vector {letter}: no 'N bytes:' in {heading:?}"));
        let mut bytes = Vec::new();
        for l in lines.by_ref() {
            if l.trim_start().starts_with("```") {
                break;
            }
            let (offset, hex) = l
                .split_once(':')
                .unwrap_or_else(|| panic!("hex line {l:?}"));
            let offset = usize::from_str_radix(offset.trim(), 16).expect("hex offset");
            assert_eq!(
                offset,
                bytes.len(),
                "vector {letter}: offsets are consecutive"
            );
            for byte in hex.split_whitespace() {
                bytes.push(u8::from_str_radix(byte, 16).expect("hex byte"));
            }
        }
        assert_eq!(bytes.len(), announced, "vector {letter}: announced size");
        assert!(
            vectors.insert(letter, bytes).is_none(),
            "vector {letter} twice"
        );
    }
    for letter in ['A', 'B', 'C', 'D'] {
        assert!(
            vectors.contains_key(&letter),
            "spec §6 lacks vector {letter}"
        );
    }
    vectors
}

// ---------------------------------------------------------------------------------------------
// The slots declared by the test programs (tests/c/vectors.c and tests/rust/probe.rs).
// ---------------------------------------------------------------------------------------------

pub struct Expected {
    /// The C identifier and the name the programs print.
    pub ident: &'static str,
    pub key: &'static str,
    pub default: &'static str,
    /// The record as compiled, built with this crate.
    pub record: Vec<u8>,
    /// The golden vector this declaration must reproduce as compiled, if any.
    pub golden: Option<char>,
    /// Whether the programs read the slot (otherwise only --gc-sections retention is checked).
    pub read: bool,
}

/// The declarations of tests/c/vectors.c and tests/rust/probe.rs.
pub fn vector_slots() -> Vec<Expected> {
    vec![
        Expected {
            ident: "wifi_ssid",
            key: "wifi_ssid",
            default: "",
            record: Slot::<{ value_len(32) }>::new("wifi_ssid", 32, "", REQUIRED)
                .as_bytes()
                .to_vec(),
            golden: Some('A'),
            read: true,
        },
        Expected {
            ident: "thinger_host",
            key: "thinger_host",
            default: "iot.thinger.io",
            record: Slot::<{ value_len(64) }>::new("thinger_host", 64, "iot.thinger.io", 0)
                .as_bytes()
                .to_vec(),
            golden: Some('B'),
            read: true,
        },
        Expected {
            ident: "wifi_password",
            key: "wifi_password",
            default: "",
            record: Slot::<{ value_len(64) }>::new("wifi_password", 64, "", SECRET | REQUIRED)
                .as_bytes()
                .to_vec(),
            golden: None, // vector C is this record after patching
            read: true,
        },
        Expected {
            ident: "x",
            key: "x",
            default: "",
            record: Slot::<{ value_len(1) }>::new("x", 1, "", 0)
                .as_bytes()
                .to_vec(),
            golden: Some('D'),
            read: true,
        },
        Expected {
            ident: "fw_version",
            key: "fw.version",
            default: "dev-7f3a9c",
            record: Slot::<{ value_len(16) }>::new("fw.version", 16, "dev-7f3a9c", 0)
                .as_bytes()
                .to_vec(),
            golden: None,
            read: true,
        },
        Expected {
            ident: "never_read",
            key: "never_read",
            default: "nr-5e1b",
            record: Slot::<{ value_len(8) }>::new("never_read", 8, "nr-5e1b", 0)
                .as_bytes()
                .to_vec(),
            golden: None,
            read: false,
        },
    ]
}

/// The six standard slots, as the spec §3 table and the brief define them.
pub fn standard_slots() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        (
            "wifi_ssid",
            Slot::<36>::new("wifi_ssid", 32, "", REQUIRED)
                .as_bytes()
                .to_vec(),
        ),
        (
            "wifi_password",
            Slot::<68>::new("wifi_password", 64, "", SECRET)
                .as_bytes()
                .to_vec(),
        ),
        (
            "thinger_host",
            Slot::<68>::new("thinger_host", 64, "iot.thinger.io", 0)
                .as_bytes()
                .to_vec(),
        ),
        (
            "thinger_user",
            Slot::<36>::new("thinger_user", 32, "", REQUIRED)
                .as_bytes()
                .to_vec(),
        ),
        (
            "thinger_device",
            Slot::<36>::new("thinger_device", 32, "", REQUIRED)
                .as_bytes()
                .to_vec(),
        ),
        (
            "thinger_credentials",
            Slot::<68>::new("thinger_credentials", 64, "", SECRET | REQUIRED)
                .as_bytes()
                .to_vec(),
        ),
    ]
}

// ---------------------------------------------------------------------------------------------
// Reading and patching records (spec §1, §4, §5).
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct FoundRecord {
    pub offset: usize,
    pub key: String,
    pub capacity: usize,
    /// Size V of the value field.
    pub value_len: usize,
}

impl FoundRecord {
    pub fn len(&self) -> usize {
        HEADER_LEN + self.value_len
    }
    pub fn value_range(&self) -> std::ops::Range<usize> {
        self.offset + HEADER_LEN..self.offset + self.len()
    }
}

/// Every well-formed version-1 record in `data` (any alignment), as a reader of spec §4 sees it.
pub fn find_records(data: &[u8]) -> Vec<FoundRecord> {
    let mut found = Vec::new();
    let mut pos = 0;
    while pos + MAGIC.len() <= data.len() {
        if data[pos..pos + MAGIC.len()] != MAGIC {
            pos += 1;
            continue;
        }
        match parse_record(data, pos) {
            Some(record) => {
                pos += record.len();
                found.push(record);
            }
            None => pos += MAGIC.len(),
        }
    }
    found
}

fn parse_record(data: &[u8], at: usize) -> Option<FoundRecord> {
    let header = data.get(at..at + HEADER_LEN)?;
    let capacity = u16::from_le_bytes([header[12], header[13]]) as usize;
    let key_len = header[14] as usize;
    if header[8] != 1
        || header[9] > 1
        || header[15] != 0
        || !(1..=4096).contains(&capacity)
        || !(1..=31).contains(&key_len)
    {
        return None;
    }
    let key = &header[16..16 + key_len];
    if header[16 + key_len..48].iter().any(|&b| b != 0) {
        return None;
    }
    let value_len = value_len(capacity);
    let value = data.get(at + HEADER_LEN..at + HEADER_LEN + value_len)?;
    let nul = value[..capacity + 1].iter().position(|&b| b == 0)?;
    if value[nul..].iter().any(|&b| b != 0) || std::str::from_utf8(&value[..nul]).is_err() {
        return None;
    }
    Some(FoundRecord {
        offset: at,
        key: String::from_utf8(key.to_vec()).ok()?,
        capacity,
        value_len,
    })
}

/// Spec §5: writes `value` into every record with `key` (value field and state, nothing else).
/// Returns how many records were patched.
pub fn patch_key(data: &mut [u8], key: &str, value: &str) -> usize {
    let records: Vec<_> = find_records(data)
        .into_iter()
        .filter(|r| r.key == key)
        .collect();
    for record in &records {
        patch_record_at(data, record.offset, value);
    }
    records.len()
}

/// Spec §5 for the record starting at `offset`.
pub fn patch_record_at(data: &mut [u8], offset: usize, value: &str) {
    let record = parse_record(data, offset).expect("a well-formed record");
    assert!(value.len() <= record.capacity && !value.as_bytes().contains(&0));
    let field = &mut data[record.value_range()];
    field.fill(0);
    field[..value.len()].copy_from_slice(value.as_bytes());
    data[offset + 9] = 1;
}

/// A record's bytes after patching it with `value`.
pub fn patched(record: &[u8], value: &str) -> Vec<u8> {
    let mut bytes = record.to_vec();
    patch_record_at(&mut bytes, 0, value);
    bytes
}

// ---------------------------------------------------------------------------------------------
// A minimal ELF reader (32/64-bit little-endian section headers): enough to name sections and
// to know which file bytes are loaded.
// ---------------------------------------------------------------------------------------------

pub const SHT_PROGBITS: u32 = 1;
pub const SHT_NOBITS: u32 = 8;
pub const SHF_WRITE: u64 = 1;
pub const SHF_ALLOC: u64 = 2;
pub const SHF_EXECINSTR: u64 = 4;
pub const SHF_GNU_RETAIN: u64 = 0x20_0000;

#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    pub sh_type: u32,
    pub flags: u64,
    pub offset: usize,
    pub size: usize,
    pub addralign: u64,
}

impl Section {
    pub fn data<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        &file[self.offset..self.offset + self.size]
    }
    /// Allocated and backed by file bytes: what a reader of spec §4 scans.
    pub fn is_patchable(&self) -> bool {
        self.flags & SHF_ALLOC != 0 && self.sh_type != SHT_NOBITS && self.size > 0
    }
}

pub fn elf_sections(d: &[u8]) -> Vec<Section> {
    assert_eq!(&d[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(d[5], 1, "little-endian ELF expected");
    let is64 = match d[4] {
        1 => false,
        2 => true,
        c => panic!("ELF class {c}"),
    };
    let u16_at = |o: usize| u16::from_le_bytes(d[o..o + 2].try_into().unwrap()) as usize;
    let u32_at = |o: usize| u32::from_le_bytes(d[o..o + 4].try_into().unwrap()) as u64;
    let u64_at = |o: usize| u64::from_le_bytes(d[o..o + 8].try_into().unwrap());
    let word = |o32: usize, o64: usize, base: usize| {
        if is64 {
            u64_at(base + o64)
        } else {
            u32_at(base + o32)
        }
    };
    let (shoff, shentsize, shnum, shstrndx) = if is64 {
        (
            u64_at(0x28) as usize,
            u16_at(0x3A),
            u16_at(0x3C),
            u16_at(0x3E),
        )
    } else {
        (
            u32_at(0x20) as usize,
            u16_at(0x2E),
            u16_at(0x30),
            u16_at(0x32),
        )
    };
    let raw: Vec<(u32, Section)> = (0..shnum)
        .map(|i| {
            let b = shoff + i * shentsize;
            let name = u32_at(b) as u32;
            let section = Section {
                name: String::new(),
                sh_type: u32_at(b + 4) as u32,
                flags: word(8, 8, b),
                offset: word(16, 24, b) as usize,
                size: word(20, 32, b) as usize,
                addralign: word(32, 48, b),
            };
            (name, section)
        })
        .collect();
    let strtab = raw[shstrndx].1.clone();
    let names = strtab.data(d);
    raw.into_iter()
        .map(|(name, mut s)| {
            let start = name as usize;
            let end = start + names[start..].iter().position(|&b| b == 0).unwrap();
            s.name = String::from_utf8_lossy(&names[start..end]).into_owned();
            s
        })
        .collect()
}

/// Checks that every occurrence of `needle` in the loaded (allocated, file-backed) bytes of the
/// ELF file lies inside the value field of a record, and that there is at least one: the
/// compiler neither folded the default into code nor copied it into a string pool.
pub fn assert_only_inside_records(file: &[u8], needle: &str, label: &str) {
    let records = find_records(file);
    let mut inside = 0;
    for section in elf_sections(file).iter().filter(|s| s.is_patchable()) {
        let data = section.data(file);
        let n = needle.as_bytes();
        for i in 0..data.len().saturating_sub(n.len() - 1) {
            if &data[i..i + n.len()] != n {
                continue;
            }
            let at = section.offset + i;
            let in_record = records.iter().any(|r| {
                r.value_range().contains(&at) && r.value_range().contains(&(at + n.len() - 1))
            });
            assert!(
                in_record,
                "{label}: {needle:?} appears at file offset {at:#x} in section {} outside every slot record",
                section.name
            );
            inside += 1;
        }
    }
    assert!(inside > 0, "{label}: {needle:?} not found in any record");
}

// ---------------------------------------------------------------------------------------------
// The output of the test programs: one line per slot,
// `<ident> <record hex> <value hex or -> <strlen> <patched 0/1> <value in place 0/1>`.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    pub record: Vec<u8>,
    pub value: String,
    pub strlen: usize,
    pub patched: bool,
    pub in_place: bool,
}

pub fn parse_dump(stdout: &str) -> BTreeMap<String, Dump> {
    stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            assert_eq!(f.len(), 6, "dump line {line:?}");
            let value = if f[2] == "-" { Vec::new() } else { unhex(f[2]) };
            let dump = Dump {
                record: unhex(f[1]),
                value: String::from_utf8(value).expect("UTF-8 value"),
                strlen: f[3].parse().unwrap(),
                patched: f[4] == "1",
                in_place: f[5] == "1",
            };
            (f[0].to_string(), dump)
        })
        .collect()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Processes and directories.
// ---------------------------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed on drop unless the test failed.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "thinger-slot-{label}-{}-{n}-{nanos}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping {} for inspection", self.0.display());
        } else {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// Runs `cmd`, retrying while the executable is reported busy (ETXTBSY: another test thread
/// forked while this process still had the freshly written file open).
pub fn output(cmd: &mut Command) -> Output {
    for _ in 0..50 {
        match cmd.output() {
            Ok(out) => return out,
            Err(e) if e.raw_os_error() == Some(26) => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Err(e) => panic!("cannot run {cmd:?}: {e}"),
        }
    }
    panic!("{cmd:?}: executable stayed busy");
}

/// Runs `cmd` and returns its stdout, failing the test with the full output if it fails.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// Whether `program` can be started (`program --version` succeeds).
pub fn have(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// A compiler or tool named in environment variable `var`, else `default`.
pub fn tool(var: &str, default: &str) -> String {
    std::env::var(var)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .unwrap_or_else(|| default.to_string())
}

// ---------------------------------------------------------------------------------------------
// The end-to-end check of a test program (C or Rust) that prints the slots of vectors.c/probe.rs.
// ---------------------------------------------------------------------------------------------

/// Runs `exe`, checks its records against the golden vectors and this crate, checks that the
/// defaults occur only inside records and that the never-read slot survived the linker; then
/// patches a copy of the file as thinger-patch would, runs it and checks that the program sees
/// the new values (so nothing was constant-folded), and patches it again with shorter values.
/// `in_place`: whether the program returns values in place (false when it copies them to RAM).
pub fn check_vector_program(exe: &Path, label: &str, in_place: bool) {
    let golden = golden_vectors();
    let expected = vector_slots();
    let file = fs::read(exe).expect("read executable");

    // As compiled.
    let dump = parse_dump(&run_ok(&mut Command::new(exe)));
    for e in expected.iter().filter(|e| e.read) {
        let d = dump
            .get(e.ident)
            .unwrap_or_else(|| panic!("{label}: no line for {}", e.ident));
        assert_eq!(
            hex(&d.record),
            hex(&e.record),
            "{label}: record {} differs from this crate's",
            e.ident
        );
        if let Some(letter) = e.golden {
            assert_eq!(
                hex(&d.record),
                hex(&golden[&letter]),
                "{label}: record {} != vector {letter}",
                e.ident
            );
        }
        assert_eq!(d.value, e.default, "{label}: value of {}", e.ident);
        assert_eq!(d.strlen, e.default.len(), "{label}: strlen of {}", e.ident);
        assert!(!d.patched, "{label}: {} reported patched", e.ident);
        assert_eq!(
            d.in_place, in_place,
            "{label}: in-place flag of {}",
            e.ident
        );
    }
    assert_eq!(
        dump.len(),
        expected.iter().filter(|e| e.read).count(),
        "{label}: lines {dump:?}"
    );

    // In the file: every record once, 4-byte aligned in the file, never-read one included.
    let records = find_records(&file);
    for e in &expected {
        let found: Vec<_> = records.iter().filter(|r| r.key == e.key).collect();
        assert_eq!(
            found.len(),
            1,
            "{label}: records with key {} in the file",
            e.key
        );
        assert_eq!(
            &file[found[0].offset..found[0].offset + found[0].len()],
            &e.record[..],
            "{label}: {} in the file",
            e.key
        );
        assert_eq!(
            found[0].offset % 4,
            0,
            "{label}: {} is not 4-byte aligned in the file",
            e.key
        );
    }
    for e in expected.iter().filter(|e| !e.default.is_empty()) {
        assert_only_inside_records(&file, e.default, label);
    }

    // Patched as thinger-patch would, then run again.
    let patches = [
        ("thinger_host", "patched.example.com"),
        ("wifi_password", "correct horse"),
        ("x", "z"),
        ("fw.version", "1.2.3-rc.4"),
    ];
    let mut bytes = file.clone();
    for (key, value) in patches {
        assert_eq!(patch_key(&mut bytes, key, value), 1, "{label}: patch {key}");
    }
    let patched_exe = exe.with_extension("patched");
    fs::copy(exe, &patched_exe).expect("copy executable");
    fs::write(&patched_exe, &bytes).expect("write patched executable");
    let dump = parse_dump(&run_ok(&mut Command::new(&patched_exe)));
    assert_eq!(
        hex(&dump["wifi_password"].record),
        hex(&golden[&'C']),
        "{label}: patched wifi_password != vector C"
    );
    for e in expected.iter().filter(|e| e.read) {
        let d = &dump[e.ident];
        let want = patches.iter().find(|(k, _)| *k == e.key).map(|(_, v)| *v);
        match want {
            Some(value) => {
                assert_eq!(
                    hex(&d.record),
                    hex(&patched(&e.record, value)),
                    "{label}: patched record {}",
                    e.ident
                );
                assert_eq!(d.value, value, "{label}: {} after patching", e.ident);
                assert_eq!(
                    d.strlen,
                    value.len(),
                    "{label}: strlen of {} after patching",
                    e.ident
                );
                assert!(d.patched, "{label}: {} not reported patched", e.ident);
            }
            None => {
                assert_eq!(
                    hex(&d.record),
                    hex(&e.record),
                    "{label}: unpatched record {}",
                    e.ident
                );
                assert!(!d.patched, "{label}: {} reported patched", e.ident);
            }
        }
        assert_eq!(
            d.in_place, in_place,
            "{label}: in-place flag of {} after patching",
            e.ident
        );
    }

    // Patched again with a shorter value: the old tail must be gone.
    assert_eq!(patch_key(&mut bytes, "thinger_host", "h"), 1);
    fs::write(&patched_exe, &bytes).expect("write patched executable");
    let dump = parse_dump(&run_ok(&mut Command::new(&patched_exe)));
    assert_eq!(dump["thinger_host"].value, "h", "{label}: re-patched value");
    assert_eq!(dump["thinger_host"].strlen, 1, "{label}: re-patched strlen");
}
