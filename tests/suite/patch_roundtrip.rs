//! Patch round trips for every image kind, on real third-party firmware: patching by load address
//! and re-sealing must give a file that the independent checks of `tests/suite/common.rs` (XOR checksum
//! via `walk_app_image`, SHA-256, ESP8266 v2 CRC, Arduino CRC-32/MPEG-2) AND `esptool image-info`
//! call valid. Every such assertion is paired with the same byte change written WITHOUT
//! re-sealing, which the same checks must call invalid (and exactly the checks that cover the
//! changed bytes).
//!
//! Ranges patched, per image: the middle of every segment, the first bytes after a protected
//! field, every range that straddles two segments contiguous in load address, and the last data
//! byte before the checksum. Refused: the pad zone before the checksum (`Error::Unmapped`), the
//! ESP-IDF app descriptor and the Arduino core 3.x CRC trailer (`Error::Protected`). Also:
//! patching twice keeps validity, and patching back restores the original bytes exactly.
//!
//! The address-to-file mapping used to check the engine is computed here from the independent
//! walker's segment list, not taken from the engine.

use crate::common;

use common::{ChecksumConvention, Esptool};
use std::collections::BTreeSet;
use std::io::{Read as _, Write as _};
use std::ops::Range;
use std::path::Path;
use thinger_patch_core::{Error, Firmware};

/// Where NONOS SDK / rboot link the irom segment of a v2 image at flash 0x1000 (user1):
/// 0x40200000 + 0x1000 + the 16 bytes of the v2 headers. The irom segment header carries no load
/// address (esptool writes 0), so this is the address firmware code uses for those bytes.
const V2_IROM_ADDR: u32 = 0x4020_1010;
/// The Arduino core 3.x CRC trailer: file 0x1010..0x1018, the first 8 bytes of `.irom0.text`.
const CORE3_TRAILER: Range<usize> = 0x1010..0x1018;
const CORE27_TRAILER: Range<usize> = 0xFF8..0x1000;
/// `esp_app_desc_t`: the first 256 bytes of segment 0 of an ESP-IDF app.
const APP_DESC_LEN: u32 = 256;
const APP_DESC_MAGIC: u32 = 0xABCD_5432;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Trailer {
    Core3,
    Core27,
    None,
}

/// How the test (not the engine) knows the file is laid out.
#[derive(Debug, Clone)]
enum Shape {
    /// A standalone ESP32-family app image (checksum + SHA-256).
    App { chip: &'static str },
    /// A standalone ESP8266 v1 image (checksum only).
    V1,
    /// ESP8266 v2 (0xEA): irom segment outside the XOR checksum, RAM image, CRC-32.
    V2,
    /// Arduino ESP8266 full image: eboot at 0x0, app at 0x1000.
    Arduino(Trailer),
    /// ESP32-C3 merged flash image: bootloader at 0x0, partition table at 0x8000, app images at
    /// these offsets (the boot app first).
    Merged { apps: Vec<usize> },
}

struct Subject {
    name: String,
    shape: Shape,
    /// The file is gzip-compressed (the shape describes the decompressed data).
    gzip: bool,
    file: Vec<u8>,
    /// The image has two segments contiguous in load address (a straddling range must be tested).
    expect_straddle: bool,
}

// =============================================================================================
// Independent layout: segments by load address, from the walker in tests/suite/common.rs
// =============================================================================================

#[derive(Debug, Clone, Copy)]
struct Seg {
    addr: u32,
    /// Absolute file offset of the segment's data.
    offset: usize,
    len: usize,
    /// Covered by the XOR checksum (everything but the ESP8266 v2 irom segment).
    checksummed: bool,
}

/// One image of the file that a patch may change (a merged file has one per app partition).
#[derive(Debug, Clone)]
struct ImageCopy {
    /// File offset of the image.
    base: usize,
    /// In file order.
    segs: Vec<Seg>,
    /// Absolute file offset of the checksum byte.
    checksum: usize,
    /// Absolute file offset of the SHA-256, if appended.
    digest: Option<usize>,
}

impl ImageCopy {
    fn from_walk(bytes: &[u8], base: usize, v1: bool) -> ImageCopy {
        let w = common::walk_app_image(&bytes[base..], v1);
        let mut segs: Vec<Seg> = w
            .segments
            .iter()
            .map(|&(addr, off, len)| Seg {
                addr,
                offset: base + off,
                len,
                checksummed: true,
            })
            .collect();
        if let Some((off, len)) = w.v2_irom {
            segs.insert(
                0,
                Seg {
                    addr: V2_IROM_ADDR,
                    offset: base + off,
                    len,
                    checksummed: false,
                },
            );
        }
        ImageCopy {
            base,
            segs,
            checksum: base + w.checksum_offset,
            digest: w.hash.map(|_| base + w.checksum_offset + 1),
        }
    }

    /// File ranges holding `len` bytes at `addr`, or `None` when some byte is not segment data.
    fn map(&self, addr: u32, len: usize) -> Option<Vec<Range<usize>>> {
        let mut out: Vec<Range<usize>> = Vec::new();
        let mut cursor = addr as u64;
        let end = addr as u64 + len as u64;
        while cursor < end {
            let s = self
                .segs
                .iter()
                .find(|s| s.addr as u64 <= cursor && cursor < s.addr as u64 + s.len as u64)?;
            let skip = (cursor - s.addr as u64) as usize;
            let take = (s.len - skip).min((end - cursor) as usize);
            let r = s.offset + skip..s.offset + skip + take;
            match out.last_mut() {
                Some(last) if last.end == r.start => last.end = r.end,
                _ => out.push(r),
            }
            cursor += take as u64;
        }
        Some(out)
    }

    /// The segment whose data ends last in the file (just before the pad zone and checksum).
    fn last_seg(&self) -> Seg {
        *self
            .segs
            .iter()
            .max_by_key(|s| s.offset + s.len)
            .expect("segments")
    }
}

fn plain(s: &Subject, file: &[u8]) -> Vec<u8> {
    if s.gzip {
        assert_eq!(file[..2], [0x1F, 0x8B], "{}: not gzip", s.name);
        gunzip(file)
    } else {
        file.to_vec()
    }
}

fn gunzip(file: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(file)
        .read_to_end(&mut out)
        .expect("valid gzip (its own CRC-32 and length checked)");
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).expect("in memory");
    enc.finish().expect("in memory")
}

fn copies(shape: &Shape, bytes: &[u8]) -> Vec<ImageCopy> {
    match shape {
        Shape::App { .. } => vec![ImageCopy::from_walk(bytes, 0, false)],
        Shape::V1 | Shape::V2 => vec![ImageCopy::from_walk(bytes, 0, true)],
        Shape::Arduino(_) => vec![ImageCopy::from_walk(
            bytes,
            common::ARDUINO_APP_OFFSET,
            true,
        )],
        Shape::Merged { apps } => apps
            .iter()
            .map(|&a| ImageCopy::from_walk(bytes, a, false))
            .collect(),
    }
}

fn gather(bytes: &[u8], ranges: &[Range<usize>]) -> Vec<u8> {
    ranges
        .iter()
        .flat_map(|r| bytes[r.clone()].iter().copied())
        .collect()
}

fn scatter(bytes: &mut [u8], ranges: &[Range<usize>], new: &[u8]) {
    let mut at = 0;
    for r in ranges {
        bytes[r.clone()].copy_from_slice(&new[at..at + r.len()]);
        at += r.len();
    }
    assert_eq!(at, new.len());
}

/// New bytes for `old`: every byte changes, and the XOR of the change is never zero (so the
/// unsealed XOR checksum must break: 0xA5 ^ 0x5A ^ 0x5A ^ ... is 0xA5 or 0xFF).
fn changed(old: &[u8]) -> Vec<u8> {
    old.iter()
        .enumerate()
        .map(|(i, b)| b ^ if i == 0 { 0xA5 } else { 0x5A })
        .collect()
}

fn has_app_desc(bytes: &[u8], copy: &ImageCopy) -> bool {
    let s = copy.segs[0];
    s.len >= APP_DESC_LEN as usize
        && u32::from_le_bytes(bytes[s.offset..s.offset + 4].try_into().expect("4"))
            == APP_DESC_MAGIC
}

// =============================================================================================
// Independent verdicts
// =============================================================================================

/// Named checks, each true when valid.
struct Verdict(Vec<(String, bool)>);

impl Verdict {
    fn push(&mut self, name: impl Into<String>, ok: bool) {
        self.0.push((name.into(), ok));
    }

    fn failing(&self) -> BTreeSet<String> {
        self.0
            .iter()
            .filter(|(_, ok)| !ok)
            .map(|(n, _)| n.clone())
            .collect()
    }

    fn names(&self) -> BTreeSet<String> {
        self.0.iter().map(|(n, _)| n.clone()).collect()
    }
}

struct Checker<'a> {
    esptool: &'a Esptool,
    tmp: &'a Path,
}

impl Checker<'_> {
    fn esptool_info(&self, bytes: &[u8], chip: &str) -> common::ImageInfo {
        let path = common::write_file(self.tmp, "under-test.bin", bytes);
        self.esptool.image_info(&path, Some(chip))
    }

    fn esptool_valid(&self, bytes: &[u8], chip: &str) -> bool {
        self.esptool_info(bytes, chip).is_valid()
    }

    /// Every independent check of `bytes` (decompressed) as a file of shape `shape`.
    fn verdict(&self, shape: &Shape, bytes: &[u8]) -> Verdict {
        let mut v = Verdict(Vec::new());
        match shape {
            Shape::App { chip } => {
                let w = common::walk_app_image(bytes, false);
                v.push("checksum", w.checksum_ok());
                v.push("sha256", w.hash_ok() == Some(true));
                v.push("esptool", self.esptool_valid(bytes, chip));
            }
            Shape::V1 => {
                let w = common::walk_app_image(bytes, true);
                v.push("checksum", w.checksum_ok());
                v.push("esptool", self.esptool_valid(bytes, "esp8266"));
            }
            Shape::V2 => {
                let w = common::walk_app_image(bytes, true);
                v.push("checksum", w.checksum_ok());
                v.push("crc", common::v2_crc_ok(bytes));
                // esptool checks the RAM image's checksum of a v2 file, never its CRC.
                v.push("esptool", self.esptool_valid(bytes, "esp8266"));
            }
            Shape::Arduino(trailer) => {
                let app = common::ARDUINO_APP_OFFSET;
                v.push(
                    "eboot checksum",
                    common::walk_app_image(bytes, true).checksum_ok(),
                );
                // esptool on the whole file checks only eboot...
                v.push("esptool eboot", self.esptool_valid(bytes, "esp8266"));
                // ...so the app is checked on its own.
                let convention = match trailer {
                    Trailer::Core3 => ChecksumConvention::TrailerZeroed,
                    _ => ChecksumConvention::Plain,
                };
                v.push(
                    "app checksum",
                    common::arduino_app_checksum_convention(bytes) == Some(convention),
                );
                let info = self.esptool_info(&bytes[app..], "esp8266");
                let esptool_app = match trailer {
                    // Core 3.x: the stored checksum was computed with the trailer zeroed, so
                    // esptool calls every real core-3 app invalid. Its own calculation, with the
                    // trailer bytes XORed back out, must equal the stored checksum.
                    Trailer::Core3 => {
                        info.success
                            && info.checksum.is_some_and(|c| {
                                c.computed ^ common::xor_fold(0, &bytes[CORE3_TRAILER]) == c.stored
                            })
                    }
                    _ => info.is_valid(),
                };
                v.push("esptool app", esptool_app);
                match trailer {
                    Trailer::Core3 | Trailer::Core27 => {
                        let at = if *trailer == Trailer::Core3 {
                            CORE3_TRAILER.start
                        } else {
                            CORE27_TRAILER.start
                        };
                        assert_eq!(common::arduino_crc_offset(bytes), Some(at));
                        v.push("crc", common::arduino_crc_ok(bytes) == Some(true));
                    }
                    Trailer::None => assert_eq!(common::arduino_crc_ok(bytes), None),
                }
            }
            Shape::Merged { apps } => {
                let boot = common::walk_app_image(bytes, false);
                v.push("bootloader", boot.is_valid());
                v.push(
                    "esptool bootloader",
                    self.esptool_valid(&bytes[..boot.end], "esp32c3"),
                );
                let table = &bytes[0x8000..0x9000];
                v.push(
                    "table md5",
                    table_md5(table).is_some_and(|(stored, computed)| stored == computed),
                );
                for &a in apps {
                    let w = common::walk_app_image(&bytes[a..], false);
                    v.push(format!("checksum@{a:#x}"), w.checksum_ok());
                    v.push(format!("sha256@{a:#x}"), w.hash_ok() == Some(true));
                    v.push(
                        format!("esptool@{a:#x}"),
                        self.esptool_valid(&bytes[a..a + w.end], "esp32c3"),
                    );
                }
            }
        }
        v
    }
}

/// The checks that a byte change in `touched` copies (without re-sealing) must break.
fn expected_broken(shape: &Shape, touched: &[&ImageCopy], in_irom: bool) -> BTreeSet<String> {
    let names: Vec<String> = match shape {
        Shape::App { .. } => vec!["checksum".into(), "sha256".into(), "esptool".into()],
        Shape::V1 => vec!["checksum".into(), "esptool".into()],
        // The irom segment is outside the XOR checksum: only the CRC sees the change, and esptool
        // (which ignores the CRC) still calls the file valid.
        Shape::V2 if in_irom => vec!["crc".into()],
        Shape::V2 => vec!["checksum".into(), "crc".into(), "esptool".into()],
        Shape::Arduino(t) => {
            let mut n = vec!["app checksum".to_string(), "esptool app".into()];
            if *t != Trailer::None {
                n.push("crc".into());
            }
            n
        }
        Shape::Merged { .. } => touched
            .iter()
            .flat_map(|c| {
                let a = c.base;
                [
                    format!("checksum@{a:#x}"),
                    format!("sha256@{a:#x}"),
                    format!("esptool@{a:#x}"),
                ]
            })
            .collect(),
    };
    names.into_iter().collect()
}

/// File ranges a re-seal may rewrite for `copy`: checksum byte, digest, and the file's CRCs.
fn integrity_fields(shape: &Shape, copy: &ImageCopy, file_len: usize) -> Vec<Range<usize>> {
    let mut f: Vec<Range<usize>> = Vec::new();
    f.push(copy.checksum..copy.checksum + 1);
    if let Some(d) = copy.digest {
        f.push(d..d + 32);
    }
    match shape {
        Shape::V2 => f.push(file_len - 4..file_len),
        Shape::Arduino(Trailer::Core3) => f.push(CORE3_TRAILER.start + 4..CORE3_TRAILER.end),
        Shape::Arduino(Trailer::Core27) => f.push(CORE27_TRAILER.start + 4..CORE27_TRAILER.end),
        _ => {}
    }
    f
}

/// The independent MD5 check of an ESP-IDF partition table: `(stored, computed)`.
fn table_md5(table: &[u8]) -> Option<([u8; 16], [u8; 16])> {
    use md5::Digest as _;
    let at = table.chunks(32).position(|e| e[..2] == [0xEB, 0xEB])? * 32;
    let stored: [u8; 16] = table[at + 16..at + 32].try_into().expect("16 bytes");
    let computed: [u8; 16] = md5::Md5::digest(&table[..at]).into();
    Some((stored, computed))
}

// =============================================================================================
// The round trip
// =============================================================================================

#[derive(Debug, Clone)]
struct Case {
    what: String,
    addr: u32,
    len: usize,
}

/// The outcome of one sealed round trip.
struct Done {
    case: Case,
    old: Vec<u8>,
    sealed_file: Vec<u8>,
}

/// The cases for `s`: middle of every segment, the first bytes after a protected field, every
/// straddle of two address-contiguous segments, the last data byte before the checksum.
fn cases(s: &Subject, bytes: &[u8], all_segments: bool) -> Vec<Case> {
    let boot = &copies(&s.shape, bytes)[0];
    let protected_end = |seg: &Seg, i: usize| -> u32 {
        if i == 0 && has_app_desc(bytes, boot) {
            seg.addr + APP_DESC_LEN
        } else if matches!(s.shape, Shape::Arduino(Trailer::Core3))
            && seg.offset == CORE3_TRAILER.start
        {
            seg.addr + 8
        } else {
            seg.addr
        }
    };
    let mut out = Vec::new();
    for (i, seg) in boot.segs.iter().enumerate() {
        if seg.len == 0 || (!all_segments && i > 0) {
            continue;
        }
        let len = seg.len.min(8);
        let mid = (seg.addr + (seg.len / 2) as u32) & !3;
        let start = mid
            .max(protected_end(seg, i))
            .min(seg.addr + (seg.len - len) as u32);
        out.push(Case {
            what: format!("middle of segment {i} ({:#x}+{:#x})", seg.addr, seg.len),
            addr: start,
            len,
        });
        if protected_end(seg, i) != seg.addr {
            out.push(Case {
                what: format!("first bytes after the protected field of segment {i}"),
                addr: protected_end(seg, i),
                len: 4,
            });
        }
    }
    for a in &boot.segs {
        for b in &boot.segs {
            if a.len >= 4 && b.len >= 4 && a.addr as u64 + a.len as u64 == b.addr as u64 {
                out.push(Case {
                    what: format!(
                        "straddling segments {:#x}+{:#x} and {:#x}",
                        a.addr, a.len, b.addr
                    ),
                    addr: b.addr - 4,
                    len: 8,
                });
            }
        }
    }
    let last = boot.last_seg();
    out.push(Case {
        what: format!(
            "last data byte before the checksum ({:#x})",
            last.addr + last.len as u32 - 1
        ),
        addr: last.addr + last.len as u32 - 1,
        len: 1,
    });
    out
}

/// Patches `case` with the engine and checks the result against the independent checks, then
/// writes the same change without re-sealing and checks that exactly the expected checks fail.
fn roundtrip(s: &Subject, case: &Case, checker: &Checker<'_>) -> Done {
    let what = format!("{}: {}", s.name, case.what);
    let orig = plain(s, &s.file);
    let all = copies(&s.shape, &orig);
    let boot_ranges = all[0]
        .map(case.addr, case.len)
        .unwrap_or_else(|| panic!("{what}: not segment data per the independent walker"));
    let old = gather(&orig, &boot_ranges);
    let new = changed(&old);
    // Every copy holding the same bytes at that address is patched; the others are not.
    let touched: Vec<(&ImageCopy, Vec<Range<usize>>)> = all
        .iter()
        .filter_map(|c| c.map(case.addr, case.len).map(|r| (c, r)))
        .filter(|(_, r)| gather(&orig, r) == old)
        .collect();
    let in_irom = boot_ranges.iter().any(|r| {
        all[0]
            .segs
            .iter()
            .any(|s| !s.checksummed && s.offset <= r.start && r.start < s.offset + s.len)
    });

    // The engine.
    let mut fw = Firmware::parse(&s.file).unwrap_or_else(|e| panic!("{what}: parse: {e}"));
    let space = fw.spaces().into_iter().next().expect("a boot space");
    assert_eq!(
        fw.read(&space, case.addr, case.len).expect("readable"),
        old,
        "{what}: the engine reads other bytes at that address than the independent mapping"
    );
    let patched = fw
        .patch(case.addr, &new)
        .unwrap_or_else(|e| panic!("{what}: patch refused: {e}"));
    assert_eq!(
        patched.len(),
        touched.len(),
        "{what}: copies patched: {patched:?}"
    );
    let engine_offsets: BTreeSet<usize> = patched
        .iter()
        .flat_map(|c| c.pieces.iter().flat_map(|p| p.offset..p.offset + p.len))
        .collect();
    let our_offsets: BTreeSet<usize> = touched
        .iter()
        .flat_map(|(_, rs)| rs.iter().flat_map(|r| r.clone()))
        .collect();
    assert_eq!(
        engine_offsets, our_offsets,
        "{what}: file bytes the engine patched"
    );
    let finished = fw
        .finish()
        .unwrap_or_else(|e| panic!("{what}: finish: {e}"));
    assert!(finished.report.valid, "{what}: the engine's own report");
    let sealed = plain(s, &finished.bytes);
    assert_eq!(sealed.len(), orig.len(), "{what}: length changed");

    // The new bytes are there, in every touched copy, and nothing else changed except the
    // integrity fields of the touched copies (so untouched copies are byte-identical).
    for (c, ranges) in &touched {
        assert_eq!(
            gather(&sealed, ranges),
            new,
            "{what}: copy at {:#x}",
            c.base
        );
    }
    let mut allowed: BTreeSet<usize> = our_offsets.clone();
    for (c, _) in &touched {
        for f in integrity_fields(&s.shape, c, orig.len()) {
            allowed.extend(f);
        }
    }
    let diff: Vec<usize> = (0..orig.len()).filter(|&i| orig[i] != sealed[i]).collect();
    let stray: Vec<usize> = diff
        .iter()
        .copied()
        .filter(|i| !allowed.contains(i))
        .collect();
    assert!(
        stray.is_empty(),
        "{what}: bytes changed outside the patch and integrity fields: {:x?}",
        &stray[..stray.len().min(16)]
    );

    // A straddling patch: bytes changed on both sides of the second segment's header, and the
    // header itself is untouched.
    if boot_ranges.len() > 1 {
        for w in boot_ranges.windows(2) {
            let header = w[1].start - 8..w[1].start;
            assert_ne!(
                sealed[w[0].end - 1],
                orig[w[0].end - 1],
                "{what}: before the split"
            );
            assert_ne!(
                sealed[w[1].start], orig[w[1].start],
                "{what}: after the split"
            );
            assert_eq!(
                sealed[header.clone()],
                orig[header],
                "{what}: segment header"
            );
        }
    }

    // Sealed: every independent check and esptool call it valid.
    let v = checker.verdict(&s.shape, &sealed);
    assert!(
        v.failing().is_empty(),
        "{what}: re-sealed result fails {:?}",
        v.failing()
    );

    // Unsealed: the same change written into a copy of the original, nothing re-sealed.
    let mut unsealed = orig.clone();
    for (_, ranges) in &touched {
        scatter(&mut unsealed, ranges, &new);
    }
    let u = checker.verdict(&s.shape, &unsealed);
    let touched_copies: Vec<&ImageCopy> = touched.iter().map(|(c, _)| *c).collect();
    let expected = expected_broken(&s.shape, &touched_copies, in_irom);
    assert!(
        expected.is_subset(&u.names()),
        "{what}: expected checks {expected:?} not among {:?}",
        u.names()
    );
    assert_eq!(
        u.failing(),
        expected,
        "{what}: the unsealed change must fail exactly these checks"
    );
    Done {
        case: case.clone(),
        old,
        sealed_file: finished.bytes,
    }
}

/// Refusals: the pad zone before the checksum is not segment data; protected fields stay put.
fn refusals(s: &Subject) {
    let orig = plain(s, &s.file);
    let boot = &copies(&s.shape, &orig)[0];
    let mut fw = Firmware::parse(&s.file).expect("parses");

    // The pad zone: the bytes after the last segment's data up to the checksum byte. They have
    // no load address; the address just past the last segment's data is not mapped.
    let last = boot.last_seg();
    let data_end = last.offset + last.len;
    let pad = boot.checksum - data_end;
    assert!(
        orig[data_end..boot.checksum].iter().all(|&b| b == 0),
        "{}: pad zone is zero",
        s.name
    );
    let after = last.addr + last.len as u32;
    assert!(
        boot.map(after, 1).is_none(),
        "{}: {after:#x} is mapped",
        s.name
    );
    for (addr, len, what) in [
        (after, pad.max(1), "the pad zone"),
        (after - 1, 2, "the last data byte and the first pad byte"),
    ] {
        match fw.patch(addr, &vec![0x55; len]) {
            Err(Error::Unmapped { .. }) => {}
            other => panic!(
                "{}: patching {what} ({addr:#x}+{len}) must be refused as Unmapped, got {other:?}",
                s.name
            ),
        }
    }

    // The ESP-IDF app descriptor (esp_app_desc_t, 256 bytes at the start of segment 0).
    if has_app_desc(&orig, boot) {
        let d = boot.segs[0].addr;
        for (addr, len) in [(d, 4), (d + 0x90, 32), (d + APP_DESC_LEN - 4, 8)] {
            match fw.patch(addr, &vec![0x55; len]) {
                Err(Error::Protected { .. }) => {}
                other => panic!(
                    "{}: patching the app descriptor at {addr:#x}+{len} must be refused as Protected, got {other:?}",
                    s.name
                ),
            }
        }
    }
    // The Arduino core 3.x CRC trailer (first 8 bytes of .irom0.text).
    if matches!(s.shape, Shape::Arduino(Trailer::Core3)) {
        let irom = boot.segs[0];
        assert_eq!(irom.offset, CORE3_TRAILER.start);
        for (addr, len) in [(irom.addr, 4), (irom.addr + 4, 4), (irom.addr + 6, 4)] {
            match fw.patch(addr, &vec![0x55; len]) {
                Err(Error::Protected { .. }) => {}
                other => panic!(
                    "{}: patching the CRC trailer at {addr:#x}+{len} must be refused as Protected, got {other:?}",
                    s.name
                ),
            }
        }
    }
    // (`data()` is the decompressed data of a gzip file.)
    assert!(
        fw.data() == orig,
        "{}: a refused patch wrote something",
        s.name
    );
}

/// Patching a patched file keeps it valid; patching the old bytes back restores the original.
fn repatch_and_restore(s: &Subject, first: &Done, second: &Case, checker: &Checker<'_>) {
    let orig = plain(s, &s.file);
    // Re-patch elsewhere, and the same place again with other bytes.
    let mut fw = Firmware::parse(&first.sealed_file).expect("the sealed file parses");
    let space = fw.spaces().into_iter().next().expect("space");
    let old2 = fw.read(&space, second.addr, second.len).expect("readable");
    fw.patch(second.addr, &changed(&old2))
        .expect("second patch");
    let again: Vec<u8> = first.old.iter().map(|b| b ^ 0x0F).collect();
    fw.patch(first.case.addr, &again)
        .expect("third patch, same place");
    let twice = fw.finish().expect("re-seal after re-patching");
    let v = checker.verdict(&s.shape, &plain(s, &twice.bytes));
    assert!(
        v.failing().is_empty(),
        "{}: re-patched file fails {:?}",
        s.name,
        v.failing()
    );

    // Patch back: the original bytes, exactly (checksum, digest and CRCs included).
    let mut fw = Firmware::parse(&first.sealed_file).expect("parses");
    fw.patch(first.case.addr, &first.old).expect("patch back");
    let back = fw.finish().expect("re-seal");
    assert!(
        plain(s, &back.bytes) == orig,
        "{}: patching the old bytes back does not restore the original",
        s.name
    );
    if !s.gzip {
        assert!(back.bytes == s.file);
    }
}

fn run_subject(s: &Subject, all_segments: bool) {
    let Some(esptool) = common::esptool() else {
        return;
    };
    let tmp = common::temp_dir();
    let checker = Checker {
        esptool: &esptool,
        tmp: tmp.path(),
    };
    let orig = plain(s, &s.file);
    let v = checker.verdict(&s.shape, &orig);
    assert!(
        v.failing().is_empty(),
        "{}: the original fails {:?}",
        s.name,
        v.failing()
    );
    let cases = cases(s, &orig, all_segments);
    let straddles = cases
        .iter()
        .filter(|c| c.what.starts_with("straddling"))
        .count();
    assert_eq!(
        straddles > 0,
        s.expect_straddle,
        "{}: address-contiguous segment pairs",
        s.name
    );
    let mut done = Vec::new();
    for case in &cases {
        done.push(roundtrip(s, case, &checker));
    }
    refusals(s);
    let last_case = cases.last().expect("cases");
    repatch_and_restore(s, &done[0], last_case, &checker);
    eprintln!(
        "{}: {} round trips ({} straddling), each paired with its unsealed counterpart",
        s.name,
        cases.len(),
        straddles
    );
}

fn subject(rel: &str, shape: Shape, expect_straddle: bool) -> Option<Subject> {
    Some(Subject {
        name: rel.into(),
        shape,
        gzip: false,
        file: common::read_fixture(rel)?,
        expect_straddle,
    })
}

// =============================================================================================
// One test per image kind
// =============================================================================================

#[test]
fn esp32c3_app_flipperhttp() {
    let Some(s) = subject(
        "flipperhttp/esp32c3-app.bin",
        Shape::App { chip: "esp32c3" },
        true,
    ) else {
        return;
    };
    run_subject(&s, true);
}

#[test]
fn esp32s2_app_esp_idf_blink() {
    let Some(s) = subject(
        "esptool/esp_idf_blink_esp32s2.bin",
        Shape::App { chip: "esp32s2" },
        true,
    ) else {
        return;
    };
    run_subject(&s, true);
}

#[test]
fn arduino_core3_esphome() {
    let Some(s) = subject(
        "esphome/esp8266-core3.bin",
        Shape::Arduino(Trailer::Core3),
        true,
    ) else {
        return;
    };
    // The example of the issue: .text 0x40100000+0x22c and .text1 at 0x4010022c.
    let bytes = &s.file;
    let app = copies(&s.shape, bytes);
    assert!(
        app[0]
            .segs
            .windows(2)
            .any(|w| w[0].addr == 0x4010_0000 && w[0].len == 0x22C && w[1].addr == 0x4010_022C),
        "esphome core3: the consecutive segments 0x40100000+0x22c, 0x4010022c"
    );
    run_subject(&s, true);
}

#[test]
fn arduino_core27_esphome() {
    let Some(s) = subject(
        "esphome/esp8266-core27.bin",
        Shape::Arduino(Trailer::Core27),
        true,
    ) else {
        return;
    };
    run_subject(&s, true);
}

#[test]
fn arduino_without_trailer_esp8266_deepsleep() {
    let Some(s) = subject(
        "esptool/esp8266_deepsleep.bin",
        Shape::Arduino(Trailer::None),
        false,
    ) else {
        return;
    };
    run_subject(&s, true);
}

#[test]
fn esp8266_v2_nonos_sdk_user1() {
    let Some(s) = subject("nonos-sdk/user1.2048.new.5.bin", Shape::V2, false) else {
        return;
    };
    let orig = s.file.clone();
    let boot = &copies(&s.shape, &orig)[0];
    assert!(!boot.segs[0].checksummed, "the irom segment comes first");
    run_subject(&s, true);
}

#[test]
fn esp8266_v1_bootloader() {
    let Some(s) = subject("esptool/bootloader_esp8266.bin", Shape::V1, true) else {
        return;
    };
    run_subject(&s, true);
}

#[test]
fn esp8266_v1_ram_helloworld() {
    let Some(s) = subject(
        "esptool/ram_helloworld/helloworld-esp8266.bin",
        Shape::V1,
        false,
    ) else {
        return;
    };
    run_subject(&s, true);
}

#[test]
fn gzip_arduino_core3() {
    let Some(inner) = common::read_fixture("esphome/esp8266-core3.bin") else {
        return;
    };
    let s = Subject {
        name: "esphome/esp8266-core3.bin, gzipped".into(),
        shape: Shape::Arduino(Trailer::Core3),
        gzip: true,
        file: gzip(&inner),
        expect_straddle: true,
    };
    // The engine sees the gzip wrapper and writes gzip back.
    let fw = Firmware::parse(&s.file).expect("parses");
    assert!(fw.compression().is_some());
    run_subject(&s, false);
}

/// flipperhttp's bootloader, partition table and app merged at 0x0, 0x8000, 0x10000.
#[test]
fn merged_flipperhttp() {
    let Some(bootloader) = common::read_fixture("flipperhttp/esp32c3-bootloader.bin") else {
        return;
    };
    let table = common::read_fixture("flipperhttp/esp32c3-partitions.bin").expect("present");
    let app = common::read_fixture("flipperhttp/esp32c3-app.bin").expect("present");
    let mut merged = vec![0xFF; 0x10000 + app.len()];
    merged[..bootloader.len()].copy_from_slice(&bootloader);
    merged[0x8000..0x8000 + table.len()].copy_from_slice(&table);
    merged[0x10000..].copy_from_slice(&app);
    let s = Subject {
        name: "merged flipperhttp".into(),
        shape: Shape::Merged {
            apps: vec![0x10000],
        },
        gzip: false,
        file: merged,
        expect_straddle: true,
    };
    run_subject(&s, false);
}

const FACTORY: usize = 0x10000;
const OTA0: usize = 0x170000;
const OTA1: usize = 0x2D0000;

/// A partition table with an MD5 entry, written by the test.
fn partition_table(entries: &[(&str, u8, u8, u32, u32)]) -> Vec<u8> {
    use md5::Digest as _;
    let mut t = Vec::new();
    for &(label, kind, subtype, offset, size) in entries {
        t.extend_from_slice(&[0xAA, 0x50, kind, subtype]);
        t.extend_from_slice(&offset.to_le_bytes());
        t.extend_from_slice(&size.to_le_bytes());
        let mut l = [0u8; 16];
        l[..label.len()].copy_from_slice(label.as_bytes());
        t.extend_from_slice(&l);
        t.extend_from_slice(&0u32.to_le_bytes());
    }
    let md5: [u8; 16] = md5::Md5::digest(&t).into();
    t.extend_from_slice(&[0xEB, 0xEB]);
    t.extend_from_slice(&[0xFF; 14]);
    t.extend_from_slice(&md5);
    t.extend_from_slice(&[0xFF; 32]);
    t
}

/// Re-seals an ESP32 app image after a change to its segment data, the way the formats doc says
/// (independently of the engine): XOR checksum updated, SHA-256 recomputed.
fn reseal_app(image: &mut [u8], ranges: &[Range<usize>], new: &[u8]) {
    let old = gather(image, ranges);
    scatter(image, ranges, new);
    let w = common::walk_app_image(image, false);
    image[w.checksum_offset] ^= common::xor_fold(0, &old) ^ common::xor_fold(0, new);
    let digest = common::sha256(&image[..=w.checksum_offset]);
    image[w.checksum_offset + 1..w.checksum_offset + 33].copy_from_slice(&digest);
    assert!(common::walk_app_image(image, false).is_valid());
}

/// The same app in factory and ota_0, and a third copy in ota_1 that differs (only) at the
/// target range: patching the target changes factory and ota_0 and leaves ota_1 byte-identical.
#[test]
fn merged_same_app_in_factory_and_ota0_third_copy_differs() {
    let Some(bootloader) = common::read_fixture("flipperhttp/esp32c3-bootloader.bin") else {
        return;
    };
    let Some(esptool) = common::esptool() else {
        return;
    };
    let app = common::read_fixture("flipperhttp/esp32c3-app.bin").expect("present");
    let table = partition_table(&[
        ("nvs", 1, 0x02, 0x9000, 0x5000),
        ("otadata", 1, 0x00, 0xE000, 0x2000),
        ("factory", 0, 0x00, FACTORY as u32, 0x160000),
        ("ota_0", 0, 0x10, OTA0 as u32, 0x160000),
        ("ota_1", 0, 0x11, OTA1 as u32, 0x160000),
    ]);
    assert!(app.len() <= 0x160000);

    // The target: 8 bytes in the middle of segment 0 (.rodata), after the app descriptor.
    let copy = ImageCopy::from_walk(&app, 0, false);
    let seg0 = copy.segs[0];
    let target = Case {
        what: "the target (middle of segment 0)".into(),
        addr: (seg0.addr + (seg0.len / 2) as u32) & !3,
        len: 8,
    };
    let ranges = copy.map(target.addr, target.len).expect("mapped");
    let mut variant = app.clone();
    let other: Vec<u8> = gather(&app, &ranges).iter().map(|b| b ^ 0x33).collect();
    reseal_app(&mut variant, &ranges, &other);

    let mut merged = vec![0xFF; OTA1 + app.len()];
    merged[..bootloader.len()].copy_from_slice(&bootloader);
    merged[0x8000..0x8000 + table.len()].copy_from_slice(&table);
    merged[FACTORY..FACTORY + app.len()].copy_from_slice(&app);
    merged[OTA0..OTA0 + app.len()].copy_from_slice(&app);
    merged[OTA1..].copy_from_slice(&variant);
    let s = Subject {
        name: "merged factory+ota_0 (same app)+ota_1 (different)".into(),
        shape: Shape::Merged {
            apps: vec![FACTORY, OTA0, OTA1],
        },
        gzip: false,
        file: merged,
        expect_straddle: true,
    };

    // What the engine finds.
    let report = Firmware::parse(&s.file).expect("parses").verify();
    assert!(report.valid, "{}", report.summary_of_problems());
    let roles: Vec<(&str, usize)> = report
        .images
        .iter()
        .map(|i| (i.role.as_str(), i.offset))
        .collect();
    assert_eq!(
        roles,
        [
            ("bootloader", 0),
            ("factory (factory)", FACTORY),
            ("ota_0 (ota_0)", OTA0),
            ("ota_1 (ota_1)", OTA1)
        ]
    );

    let tmp = common::temp_dir();
    let checker = Checker {
        esptool: &esptool,
        tmp: tmp.path(),
    };
    let done = roundtrip(&s, &target, &checker);
    let sealed = &done.sealed_file;
    let new = changed(&done.old);
    for base in [FACTORY, OTA0] {
        let r: Vec<Range<usize>> = ranges
            .iter()
            .map(|r| base + r.start..base + r.end)
            .collect();
        assert_eq!(gather(sealed, &r), new, "copy at {base:#x} patched");
    }
    assert!(
        sealed[OTA1..] == s.file[OTA1..],
        "ota_1 holds other bytes at the target: it must stay byte-identical"
    );
    assert!(
        sealed[..FACTORY] == s.file[..FACTORY],
        "bootloader and table untouched"
    );

    // The other ranges: every copy holding the same bytes is patched (all three of them).
    let mut more = cases(&s, &s.file, false);
    more.retain(|c| c.addr != target.addr);
    for case in &more {
        roundtrip(&s, case, &checker);
    }
    refusals(&s);
    repatch_and_restore(&s, &done, more.last().expect("cases"), &checker);
}

// =============================================================================================
// ELF: patch a section, nothing else changes
// =============================================================================================

struct ElfSection {
    name: String,
    addr: u32,
    offset: usize,
    size: usize,
    nobits: bool,
}

/// Section headers, read here with `object`, not through the engine.
fn elf_sections(elf: &[u8]) -> Vec<ElfSection> {
    use object::read::elf::{FileHeader as _, SectionHeader as _};
    let header = object::elf::FileHeader32::<object::LittleEndian>::parse(elf).expect("ELF32");
    let e = header.endian().expect("endian");
    let sections = header.sections(e, elf).expect("sections");
    sections
        .iter()
        .map(|sh| ElfSection {
            name: String::from_utf8_lossy(sections.section_name(e, sh).expect("name")).into_owned(),
            addr: sh.sh_addr(e),
            offset: sh.sh_offset(e) as usize,
            size: sh.sh_size(e) as usize,
            nobits: sh.sh_type(e) == object::elf::SHT_NOBITS,
        })
        .collect()
}

fn section<'a>(secs: &'a [ElfSection], name: &str) -> &'a ElfSection {
    secs.iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no section {name}"))
}

/// Patch `new` at `file_offset` (inside `sec`) by address; the result must differ from the
/// original in exactly those bytes, verify valid, and patching back must restore it.
fn elf_patch(rel: &str, elf: &[u8], sec: &ElfSection, file_offset: usize, new: &[u8]) {
    let addr = sec.addr + (file_offset - sec.offset) as u32;
    let mut fw = Firmware::parse(elf).unwrap_or_else(|e| panic!("{rel}: {e}"));
    fw.patch(addr, new).unwrap_or_else(|e| {
        panic!(
            "{rel}: patch {}+{:#x}: {e}",
            sec.name,
            file_offset - sec.offset
        )
    });
    let out = fw.finish().expect("finish").bytes;
    assert_eq!(out.len(), elf.len());
    assert_eq!(&out[file_offset..file_offset + new.len()], new, "{rel}");
    let diff: Vec<usize> = (0..elf.len()).filter(|&i| out[i] != elf[i]).collect();
    assert!(
        diff.iter()
            .all(|&i| (file_offset..file_offset + new.len()).contains(&i)),
        "{rel}: bytes outside the patch changed"
    );
    assert!(!diff.is_empty());
    assert!(Firmware::parse(&out).expect("parses").verify().valid);
    let mut fw = Firmware::parse(&out).expect("parses");
    fw.patch(addr, &elf[file_offset..file_offset + new.len()])
        .expect("patch back");
    assert!(
        fw.finish().expect("finish").bytes == elf,
        "{rel}: patch back"
    );
}

#[test]
fn elf_sections_patch_in_place() {
    // ESP8266 NONOS SDK example: the placeholder SSID in .rodata.
    let Some(elf) = common::read_fixture("esptool/esp8266-nonossdkv12-example.elf") else {
        return;
    };
    let secs = elf_sections(&elf);
    let rodata = section(&secs, ".rodata");
    let at = common::find_all(
        &elf[rodata.offset..rodata.offset + rodata.size],
        b"Your SSID",
    );
    assert_eq!(at.len(), 1, "one placeholder");
    elf_patch(
        "nonossdkv12",
        &elf,
        rodata,
        rodata.offset + at[0],
        b"Mine SSID",
    );

    // esp-hal ESP32-C3: 16 bytes in the middle of .rodata; .rodata_desc is the app descriptor.
    let elf = common::read_fixture("espflash/esp32c3.elf").expect("present");
    let secs = elf_sections(&elf);
    let rodata = section(&secs, ".rodata");
    let mid = rodata.offset + rodata.size / 2;
    let new: Vec<u8> = changed(&elf[mid..mid + 16]);
    elf_patch("espflash esp32c3", &elf, rodata, mid, &new);
    let desc = section(&secs, ".rodata_desc");
    let mut fw = Firmware::parse(&elf).expect("parses");
    assert!(matches!(
        fw.patch(desc.addr + 0x10, &[0; 4]),
        Err(Error::Protected { .. })
    ));
    // A NOBITS section (.bss) has no file bytes to patch.
    let bss = secs
        .iter()
        .find(|s| s.nobits && s.size >= 4 && s.addr != 0)
        .expect("a .bss");
    assert!(
        matches!(fw.patch(bss.addr, &[0; 4]), Err(Error::Unmapped { .. })),
        "{}",
        bss.name
    );

    // ESP-IDF v4.0 ESP32 app: .flash.rodata patchable (away from its start, see below).
    let elf = common::read_fixture("esptool/esp32-app-template.elf").expect("present");
    let secs = elf_sections(&elf);
    let rodata = section(&secs, ".flash.rodata");
    let mid = rodata.offset + rodata.size / 2;
    let new = changed(&elf[mid..mid + 16]);
    elf_patch("esp32-app-template", &elf, rodata, mid, &new);
}

/// The ESP-IDF app descriptor (`esp_app_desc_t`, 256 bytes starting with the magic word
/// 0xABCD5432) must never be patched, in an ELF as in an image: the image route refuses it
/// (`Error::Protected`), so the ELF route must too, whatever section holds it. Found here
/// independently: an allocated section whose first word is the magic. Linkers put it in
/// `.flash.appdesc` (ESP-IDF 5), `.rodata_desc` (esp-hal), or at the start of `.flash.rodata`
/// (ESP-IDF 4.x, e.g. esptool's esp32-app-template.elf, where `.rodata_desc` input sections are
/// merged into the `.flash.rodata` output section).
#[test]
fn elf_app_descriptor_is_protected_whatever_section_holds_it() {
    let Some(dir) = common::shared_fixtures() else {
        return;
    };
    let mut found = Vec::new();
    let mut unprotected = Vec::new();
    for rel in [
        "esptool/esp32-app-template.elf",
        "esptool/esp32c6-appdesc.elf",
        "espflash/esp32.elf",
        "espflash/esp32c3.elf",
        "espflash/esp32c6.elf",
        "espflash/esp32h2.elf",
        "espflash/esp32s3.elf",
    ] {
        let elf = std::fs::read(dir.join(rel)).expect("readable");
        let secs = elf_sections(&elf);
        let desc = secs
            .iter()
            .find(|s| {
                !s.nobits
                    && s.size >= APP_DESC_LEN as usize
                    && s.addr != 0
                    && elf[s.offset..s.offset + 4] == APP_DESC_MAGIC.to_le_bytes()
            })
            .unwrap_or_else(|| panic!("{rel}: no section starts with an app descriptor"));
        found.push(format!("{rel}: {}", desc.name));
        let mut fw = Firmware::parse(&elf).expect("parses");
        // app_elf_sha256 (descriptor offset 0x90) and the magic word itself.
        for (off, len) in [(0x90u32, 32usize), (0, 4)] {
            match fw.patch(desc.addr + off, &vec![0x55; len]) {
                Err(Error::Protected { .. }) => {}
                other => unprotected.push(format!(
                    "{rel}: {}+{off:#x} ({len} bytes): {:?}",
                    desc.name,
                    other.map(|_| "patched")
                )),
            }
        }
    }
    eprintln!("app descriptors: {found:#?}");
    assert!(
        unprotected.is_empty(),
        "the app descriptor of these ELFs can be patched: {unprotected:#?}"
    );
}
