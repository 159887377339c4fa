//! [`Firmware`]: a parsed firmware file that can be verified, patched by load
//! address and re-sealed. The one entry point of the image engine.

use crate::checksum;
use crate::chip::Chip;
use crate::error::{Error, Result};
use crate::format::app_image::{APP_DESC_LEN, AppImage, HeaderKind};
use crate::format::partition_table::{self, PartitionTable};
use crate::format::signature::Signature;
use crate::format::{self, ArduinoApp, ArduinoTrailer, Layout, MergedImage, gzip};
use crate::report::{
    ChecksumReport, ChecksumStatus, CrcReport, DigestReport, ImageReport, Problem, Report,
    SegmentReport, TableReport,
};
use crate::space::{AddressSpace, ImageKey, Piece, ProtectedRange, Region};
use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

/// Options for [`Firmware::parse_with`].
#[derive(Debug, Clone, Copy)]
pub struct ParseOptions {
    /// Cap on the decompressed size of a gzip image.
    pub max_decompressed: usize,
    /// Also accept ELF executables of host machines (x86, ARM): the slot
    /// pieces compile into PC programs too, e.g. firmware logic under test.
    pub allow_host_elf: bool,
}

impl Default for ParseOptions {
    fn default() -> Self {
        ParseOptions {
            max_decompressed: gzip::DEFAULT_LIMIT,
            allow_host_elf: false,
        }
    }
}

/// How the file was wrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// A gzip stream (`.bin.gz`): decompressed on parse, compressed again on finish.
    Gzip,
}

/// One changed copy of a patched range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchedCopy {
    /// The address space's label.
    pub space: String,
    /// File offsets (of the decompressed data) that changed.
    pub pieces: Vec<Piece>,
}

/// The outcome of [`Firmware::finish`]: the bytes to write and their verification.
#[derive(Debug, Clone)]
pub struct Finished {
    /// The bytes to write (compressed again for a gzip input).
    pub bytes: Vec<u8>,
    /// Their verification.
    pub report: Report,
}

/// A firmware file: its bytes (borrowed until patched) and their layout.
#[derive(Debug, Clone)]
pub struct Firmware<'a> {
    data: Cow<'a, [u8]>,
    compression: Option<Compression>,
    layout: Layout,
    /// Set once the original has been verified valid and unsigned for patching.
    checked_before_patch: bool,
    dirty: BTreeSet<ImageKey>,
    /// SHA-256 digests computed while sealing, by hashed range, so the final
    /// re-verification need not hash the same bytes again.
    sealed_digests: HashMap<(usize, usize), [u8; 32]>,
    /// The input as given, when it was not decompressed: the reference for the digests
    /// whose check [`Firmware::check_valid_deferring_digests`] postponed.
    original: Option<&'a [u8]>,
    /// Set while the input's SHA-256 digests are still to be compared (all else verified).
    digests_pending: bool,
    /// While set, `verify` takes stored SHA-256 digests as valid (the deferred check).
    defer_digests: bool,
    /// The first changed file offset of each patched image.
    first_change: std::collections::BTreeMap<ImageKey, usize>,
}

impl<'a> Firmware<'a> {
    /// Parses firmware from bytes with default options.
    pub fn parse(bytes: &'a [u8]) -> Result<Firmware<'a>> {
        Self::parse_with(bytes, ParseOptions::default())
    }

    /// Parses firmware from bytes with `options`.
    pub fn parse_with(bytes: &'a [u8], options: ParseOptions) -> Result<Firmware<'a>> {
        let original = (!gzip::is_gzip(bytes)).then_some(bytes);
        let (data, compression) = if gzip::is_gzip(bytes) {
            let inner = gzip::decompress(bytes, options.max_decompressed)?;
            // Compressed data is random-looking: without this it would be called encrypted.
            if gzip::is_gzip(&inner) {
                return Err(Error::GzipNested);
            }
            (Cow::Owned(inner), Some(Compression::Gzip))
        } else {
            (Cow::Borrowed(bytes), None)
        };
        let layout = Layout::parse_with(&data, options.allow_host_elf)?;
        Ok(Firmware {
            data,
            compression,
            layout,
            checked_before_patch: false,
            dirty: BTreeSet::new(),
            sealed_digests: HashMap::new(),
            original,
            digests_pending: false,
            defer_digests: false,
            first_change: Default::default(),
        })
    }

    /// The file's structure.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The (decompressed) bytes as they are now.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// How the file was wrapped.
    pub fn compression(&self) -> Option<Compression> {
        self.compression
    }

    /// Whether it is an ELF (patched ELFs are converted afterwards; nothing to seal).
    pub fn is_elf(&self) -> bool {
        matches!(self.layout, Layout::Elf(_))
    }

    /// `elf`, `app-image`, `esp8266-v2`, `arduino-esp8266` or `merged`.
    pub fn format_name(&self) -> &'static str {
        match &self.layout {
            Layout::Elf(_) => "elf",
            Layout::App(_) => "app-image",
            Layout::Esp8266V2(_) => "esp8266-v2",
            Layout::Arduino(_) => "arduino-esp8266",
            Layout::Merged(_) => "merged",
        }
    }

    /// The chip the firmware is for, when the file says.
    pub fn chip(&self) -> Option<Chip> {
        match &self.layout {
            Layout::Elf(e) => e.chip(),
            Layout::App(t) => t.image.chip(),
            Layout::Esp8266V2(_) | Layout::Arduino(_) => Some(Chip::Esp8266),
            Layout::Merged(m) => m
                .chip
                .or_else(|| m.apps.first().and_then(|a| a.image.chip())),
        }
    }

    /// The patchable address spaces, the one that boots first.
    pub fn spaces(&self) -> Vec<AddressSpace> {
        let data = &self.data[..];
        match &self.layout {
            Layout::Elf(e) => {
                let regions = e
                    .sections
                    .iter()
                    .map(|s| Region {
                        addr: s.addr,
                        offset: s.offset,
                        len: s.len,
                        checksummed: false,
                    })
                    .collect();
                let mut space = AddressSpace::new("elf".into(), ImageKey::Elf, regions);
                space.protected = e
                    .protected
                    .iter()
                    .map(|s| ProtectedRange {
                        addr: s.addr,
                        len: s.len,
                        field: "the ESP32 app descriptor (esp_app_desc_t)",
                    })
                    .collect();
                vec![space]
            }
            Layout::App(t) => vec![image_space("app".into(), ImageKey::App, &t.image, data)],
            Layout::Esp8266V2(v) => {
                let mut regions = vec![Region {
                    addr: v.irom.addr,
                    offset: v.irom.data_offset,
                    len: v.irom.len,
                    checksummed: false,
                }];
                regions.extend(segment_regions(&v.image));
                vec![AddressSpace::new(
                    "app".into(),
                    ImageKey::Esp8266V2,
                    regions,
                )]
            }
            Layout::Arduino(a) => {
                // A damaged app has no space: nothing can be patched.
                let Some(app) = a.app.image() else {
                    return Vec::new();
                };
                let mut space = image_space("app".into(), ImageKey::Arduino, app, data);
                if a.trailer == Some(ArduinoTrailer::Core3)
                    && let Some(first) = app.segments.first()
                {
                    space.protected.push(ProtectedRange {
                        addr: first.addr,
                        len: 8,
                        field: "the Arduino CRC trailer",
                    });
                }
                vec![space]
            }
            Layout::Merged(m) => {
                let boot = m
                    .table
                    .as_ref()
                    .and_then(|t| t.boot_app())
                    .and_then(|p| m.apps.iter().position(|a| a.partition.as_ref() == Some(p)))
                    .unwrap_or(0);
                let mut order: Vec<usize> = (0..m.apps.len()).collect();
                order.sort_by_key(|&i| i != boot);
                order
                    .into_iter()
                    .map(|i| {
                        image_space(
                            m.apps[i].role(),
                            ImageKey::MergedApp(i),
                            &m.apps[i].image,
                            data,
                        )
                    })
                    .collect()
            }
        }
    }

    /// Reads `len` bytes at `addr` of `space`.
    pub fn read(&self, space: &AddressSpace, addr: u32, len: usize) -> Result<Vec<u8>> {
        Ok(gather(&self.data, &space.map(addr, len)?))
    }

    /// The bytes of a contiguous address run (borrowed when it is one region).
    pub fn chunk_bytes(&self, chunk: &crate::space::Chunk) -> Cow<'_, [u8]> {
        match chunk.regions.as_slice() {
            [r] => Cow::Borrowed(&self.data[r.offset..r.offset + r.len]),
            rs => Cow::Owned(
                rs.iter()
                    .flat_map(|r| self.data[r.offset..r.offset + r.len].iter().copied())
                    .collect(),
            ),
        }
    }

    /// Replaces the bytes at `addr` of the boot space with `new` (same length),
    /// and the same bytes of every other copy (merged images) that holds what
    /// the boot space held. Updates XOR checksums at once; digests and CRCs are
    /// re-sealed by [`Firmware::finish`]. Returns the changed copies.
    pub fn patch(&mut self, addr: u32, new: &[u8]) -> Result<Vec<PatchedCopy>> {
        // First: an invalid file is refused for what is wrong with it, not for
        // what a damaged part no longer maps (a missing app has no addresses).
        self.check_valid()?;
        let spaces = self.spaces();
        let primary = spaces.first().ok_or_else(|| Error::Unmapped {
            space: "this file (no app image)".into(),
            addr,
            len: new.len(),
        })?;
        let pieces = primary.map(addr, new.len())?;
        let old = gather(&self.data, &pieces);
        let mut targets = vec![(primary.clone(), pieces)];
        for other in &spaces[1..] {
            if let Ok(p) = other.map(addr, new.len())
                && gather(&self.data, &p) == old
            {
                targets.push((other.clone(), p));
            }
        }
        self.check_before_patch(&targets)?;
        let mut changed = Vec::new();
        for (space, pieces) in targets {
            self.write_pieces(space.key, &pieces, new);
            changed.push(PatchedCopy {
                space: space.label,
                pieces,
            });
        }
        Ok(changed)
    }

    /// Refuses to patch an image that is signed or invalid to begin with.
    fn check_before_patch(&mut self, targets: &[(AddressSpace, Vec<Piece>)]) -> Result<()> {
        for (space, _) in targets {
            if let Some(sig) = self.signature_of(space.key) {
                return Err(Error::Signed {
                    offset: sig.offset(),
                    kind: sig.describe(),
                });
            }
        }
        self.check_valid()
    }

    /// Fails with [`Error::InvalidBeforePatch`] (naming every problem) unless the
    /// file as parsed verifies valid. Callers that look for slots or placeholders
    /// call it first, so that a damaged file is refused for what is wrong with it
    /// rather than for a value that cannot be found in it. Checked once.
    pub fn check_valid(&mut self) -> Result<()> {
        if !self.checked_before_patch {
            let report = self.verify();
            if !report.valid {
                return Err(Error::InvalidBeforePatch {
                    space: "this file".into(),
                    problems: report.summary_of_problems(),
                });
            }
            self.checked_before_patch = true;
        }
        Ok(())
    }

    /// [`Firmware::check_valid`] for a caller that goes on to patch and [`Firmware::finish`]:
    /// everything is verified now except the input's SHA-256 digests, which `finish` compares
    /// while it seals, hashing the bytes before the first change once for both (the two
    /// hashes that remain run on two threads). An input whose digest is wrong is refused by
    /// `finish` (or by [`Firmware::check_deferred_digests`]) with the same error as here.
    /// A decompressed (gzip) input is checked in full at once.
    pub fn check_valid_deferring_digests(&mut self) -> Result<()> {
        if self.checked_before_patch || self.original.is_none() {
            return self.check_valid();
        }
        self.defer_digests = true;
        let report = self.verify();
        self.defer_digests = false;
        if !report.valid {
            return Err(Error::InvalidBeforePatch {
                space: "this file".into(),
                problems: report.summary_of_problems(),
            });
        }
        self.checked_before_patch = true;
        self.digests_pending = true;
        Ok(())
    }

    /// Compares the input's SHA-256 digests that [`Firmware::check_valid_deferring_digests`]
    /// postponed (nothing to do otherwise): a caller that stops before `finish` calls it so that
    /// an invalid input is refused for what is wrong with it.
    pub fn check_deferred_digests(&mut self) -> Result<()> {
        self.compare_original_digests(&BTreeSet::new())
    }

    /// [`Firmware::check_deferred_digests`] except the images whose hashed range starts at an
    /// offset in `done` (compared while sealing).
    fn compare_original_digests(&mut self, done: &BTreeSet<usize>) -> Result<()> {
        let Some(original) = self.original.filter(|_| self.digests_pending) else {
            return Ok(());
        };
        for (key, range, at) in self.digests() {
            if done.contains(&range.start) {
                continue;
            }
            let computed = checksum::sha256(&original[range.clone()]);
            if computed[..] != original[at..at + 32] {
                return Err(self.refusal_of_original());
            }
            if !key.is_some_and(|k| self.dirty.contains(&k)) {
                // Unchanged bytes: the final verification can take this digest as computed.
                self.sealed_digests
                    .insert((range.start, range.end), computed);
            }
        }
        self.digests_pending = false;
        Ok(())
    }

    /// The error an up-front [`Firmware::check_valid`] gives for the input (rare path: a
    /// deferred digest did not match).
    fn refusal_of_original(&self) -> Error {
        let original = self.original.unwrap_or(&[]);
        let mut fresh = Firmware {
            data: Cow::Borrowed(original),
            compression: None,
            layout: self.layout.clone(),
            checked_before_patch: false,
            dirty: BTreeSet::new(),
            sealed_digests: HashMap::new(),
            original: None,
            digests_pending: false,
            defer_digests: false,
            first_change: Default::default(),
        };
        fresh
            .check_valid()
            .err()
            .unwrap_or_else(|| Error::InvalidBeforePatch {
                space: "this file".into(),
                problems: "an appended SHA-256 does not match the image".into(),
            })
    }

    /// Every image with an appended SHA-256: its key (none for a merged image's
    /// bootloader, which is never patched), hashed range and digest offset.
    fn digests(&self) -> Vec<(Option<ImageKey>, Range<usize>, usize)> {
        let mut out = Vec::new();
        let mut push = |key: Option<ImageKey>, img: &AppImage| {
            if let Some(d) = img.digest_offset {
                out.push((key, img.hashed_range(), d));
            }
        };
        match &self.layout {
            Layout::App(t) => push(Some(ImageKey::App), &t.image),
            Layout::Arduino(a) => {
                if let Some(img) = a.app.image() {
                    push(Some(ImageKey::Arduino), img);
                }
            }
            Layout::Merged(m) => {
                if let Some(b) = &m.bootloader {
                    push(None, b);
                }
                for (i, app) in m.apps.iter().enumerate() {
                    push(Some(ImageKey::MergedApp(i)), &app.image);
                }
            }
            _ => {}
        }
        out
    }

    fn signature_of(&self, key: ImageKey) -> Option<&Signature> {
        match (&self.layout, key) {
            (Layout::App(t), ImageKey::App) => t.signature.as_ref(),
            (Layout::Arduino(a), ImageKey::Arduino) => a.signature.as_ref(),
            (Layout::Merged(m), ImageKey::MergedApp(i)) => m.apps[i].signature.as_ref(),
            _ => None,
        }
    }

    fn checksum_offset(&self, key: ImageKey) -> Option<usize> {
        match (&self.layout, key) {
            (Layout::App(t), ImageKey::App) => Some(t.image.checksum_offset),
            (Layout::Esp8266V2(v), ImageKey::Esp8266V2) => Some(v.image.checksum_offset),
            (Layout::Arduino(a), ImageKey::Arduino) => a.app.image().map(|i| i.checksum_offset),
            (Layout::Merged(m), ImageKey::MergedApp(i)) => Some(m.apps[i].image.checksum_offset),
            _ => None,
        }
    }

    fn write_pieces(&mut self, key: ImageKey, pieces: &[Piece], new: &[u8]) {
        let checksum_at = self.checksum_offset(key);
        let data = self.data.to_mut();
        let mut delta = 0u8;
        let mut at = 0;
        for p in pieces {
            let src = &new[at..at + p.len];
            let dst = &mut data[p.offset..p.offset + p.len];
            if p.checksummed {
                // stored ^= XOR(old) ^ XOR(new): keeps whatever convention the
                // image's checksum follows (e.g. Arduino core 3.x).
                delta ^= checksum::xor(dst) ^ checksum::xor(src);
            }
            dst.copy_from_slice(src);
            at += p.len;
        }
        if let Some(c) = checksum_at {
            data[c] ^= delta;
        }
        if let Some(first) = pieces.iter().map(|p| p.offset).min() {
            let e = self.first_change.entry(key).or_insert(first);
            *e = (*e).min(first);
        }
        self.dirty.insert(key);
    }

    /// Recomputes SHA-256 digests, then ESP8266 v2 and Arduino CRCs, of every
    /// patched image (in that order: each covers the previous). Compares the input's
    /// digests if their check was deferred: for a patched image, in one pass with the new
    /// digest ([`checksum::sha256_pair`]).
    fn seal(&mut self) -> Result<()> {
        let dirty: Vec<ImageKey> = self.dirty.iter().copied().collect();
        let mut compared = BTreeSet::new();
        for key in dirty {
            let image = match (&self.layout, key) {
                (Layout::App(t), ImageKey::App) => Some(t.image.clone()),
                (Layout::Arduino(a), ImageKey::Arduino) => a.app.image().cloned(),
                (Layout::Merged(m), ImageKey::MergedApp(i)) => Some(m.apps[i].image.clone()),
                _ => None,
            };
            if let Some(img) = image
                && let Some(d) = img.digest_offset
            {
                let range = img.hashed_range();
                let split = self.first_change.get(&key).copied();
                let digest = match (self.original.filter(|_| self.digests_pending), split) {
                    (Some(original), Some(split)) if range.contains(&split) => {
                        let (old, new) =
                            checksum::sha256_pair(original, &self.data, range.clone(), split);
                        if old[..] != original[d..d + 32] {
                            return Err(self.refusal_of_original());
                        }
                        compared.insert(range.start);
                        new
                    }
                    _ => checksum::sha256(&self.data[range.clone()]),
                };
                self.data.to_mut()[d..d + 32].copy_from_slice(&digest);
                self.sealed_digests.insert((range.start, range.end), digest);
            }
            match (&self.layout, key) {
                (Layout::Esp8266V2(v), ImageKey::Esp8266V2) => {
                    let at = v.crc_offset;
                    let crc = checksum::esp8266_crc32(&self.data[..at]);
                    self.data.to_mut()[at..at + 4].copy_from_slice(&crc.to_le_bytes());
                }
                (Layout::Arduino(a), ImageKey::Arduino) => {
                    if let Some(t) = a.trailer {
                        let at = t.offset();
                        let crc = checksum::crc32_mpeg2(&self.data, at..at + 8);
                        self.data.to_mut()[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
                    }
                }
                _ => {}
            }
        }
        // Digests of images left unchanged, or changed only outside their hashed range.
        self.compare_original_digests(&compared)?;
        self.dirty.clear();
        Ok(())
    }

    /// Seals, re-parses and re-verifies the result, and returns the bytes to
    /// write (compressed again for gzip input). Fails rather than return an
    /// image that would not verify.
    pub fn finish(mut self) -> Result<Finished> {
        self.seal()?;
        let reparsed =
            Layout::parse_with(&self.data, true).map_err(|e| Error::InvalidAfterPatch {
                problems: format!("re-parse failed: {e}"),
            })?;
        if reparsed != self.layout {
            return Err(Error::InvalidAfterPatch {
                problems: "the layout changed".into(),
            });
        }
        let report = self.verify();
        if !report.valid {
            return Err(Error::InvalidAfterPatch {
                problems: report.summary_of_problems(),
            });
        }
        let data = self.data.into_owned();
        let bytes = match self.compression {
            Some(Compression::Gzip) => gzip::compress(&data),
            None => data,
        };
        Ok(Finished { bytes, report })
    }

    /// Checks every integrity field of every image.
    pub fn verify(&self) -> Report {
        let data = &self.data[..];
        let mut images = Vec::new();
        let mut table = None;
        let mut notes = Vec::new();
        match &self.layout {
            Layout::Elf(e) => {
                let mut problems = Vec::new();
                // The app descriptor counts: esptool's esp32c6-appdesc.elf holds only that.
                if e.sections.is_empty() && e.protected.is_empty() {
                    problems.push(Problem {
                        code: "no_sections",
                        offset: Some(e.section_headers),
                        message: format!(
                            "the ELF has no allocated, file-backed sections (section headers at {:#x}): nothing in it would be loaded on a device, so it is not firmware, or its section headers were stripped; use the ELF the build wrote",
                            e.section_headers
                        ),
                    });
                }
                if e.chip() == Some(Chip::Esp8266)
                    && format::looks_like_eboot(e.entry, e.sections.iter().map(|s| s.addr))
                {
                    notes.push(eboot_note(e.entry));
                }
                if !e.aliased.is_empty() {
                    notes.push(format!(
                        "section header(s) {} cover file bytes that another section holds already (aliased sections): those bytes count once, at the address of the first section",
                        e.aliased
                            .iter()
                            .map(|s| format!("{} ({:#x}..{:#x})", s.name, s.offset, s.offset + s.len))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
                images.push(ImageReport {
                    role: "elf".into(),
                    offset: 0,
                    kind: "elf",
                    chip: e.chip(),
                    chip_id: None,
                    entry: e.entry,
                    segments: e
                        .sections
                        .iter()
                        .map(|s| SegmentReport {
                            addr: s.addr,
                            offset: s.offset,
                            len: s.len,
                            name: Some(s.name.clone()),
                        })
                        .collect(),
                    checksum: None,
                    sha256: None,
                    crc: None,
                    signature: None,
                    valid: problems.is_empty(),
                    problems,
                });
                notes.push(format!(
                    "{} ELF: no integrity fields; patch it, then convert it to an image",
                    e.arch()
                ));
            }
            Layout::App(t) => {
                let mut r = self.check_image("app", &t.image, None);
                r.signature = t.signature.clone();
                if format::is_lone_eboot(&t.image) {
                    notes.push(eboot_note(t.image.entry));
                }
                if t.trailing > 0 {
                    notes.push(format!(
                        "{} bytes of unknown data follow the image at {:#x}",
                        t.trailing, t.image.end
                    ));
                }
                images.push(r);
            }
            Layout::Esp8266V2(v) => {
                let mut r = self.check_image("app", &v.image, None);
                r.kind = "esp8266-v2";
                r.offset = 0;
                r.entry = v.entry;
                r.segments.insert(
                    0,
                    SegmentReport {
                        addr: v.irom.addr,
                        offset: v.irom.data_offset,
                        len: v.irom.len,
                        name: Some("irom (not in the XOR checksum)".into()),
                    },
                );
                let stored = read_u32(data, v.crc_offset);
                let computed = checksum::esp8266_crc32(&data[..v.crc_offset]);
                push_crc(&mut r, "esp8266-v2", v.crc_offset, stored, computed);
                images.push(r);
            }
            Layout::Arduino(a) => {
                images.push(self.check_image("eboot", &a.eboot, None));
                let app = match &a.app {
                    ArduinoApp::Image(app) => app,
                    ArduinoApp::Missing { reason } => {
                        images.push(missing_app_report(reason));
                        return self.report(images, table, notes);
                    }
                };
                let core3 = (a.trailer == Some(ArduinoTrailer::Core3)).then(|| {
                    let o = ArduinoTrailer::Core3.offset();
                    o..o + 8
                });
                let mut r = self.check_image("app", app, core3);
                r.signature = a.signature.clone();
                match a.trailer {
                    Some(t) => {
                        let o = t.offset();
                        let stored = read_u32(data, o + 4);
                        let computed = checksum::crc32_mpeg2(data, o..o + 8);
                        let kind = match t {
                            ArduinoTrailer::Core27 => "arduino-core-2.7",
                            ArduinoTrailer::Core3 => "arduino-core-3",
                        };
                        push_crc(&mut r, kind, o, stored, computed);
                    }
                    None => notes.push("no Arduino CRC trailer (core before 2.7)".into()),
                }
                images.push(r);
            }
            Layout::Merged(m) => {
                if let Some(b) = &m.bootloader {
                    let mut r = self.check_image("bootloader", b, None);
                    if let Some(chip) = b.chip()
                        && chip.bootloader_offset() as usize != b.offset
                    {
                        r.problems.push(Problem {
                            code: "bootloader_offset",
                            offset: Some(b.offset),
                            message: format!(
                                "a {chip} bootloader belongs at {:#x}, not {:#x}",
                                chip.bootloader_offset(),
                                b.offset
                            ),
                        });
                        r.valid = false;
                    }
                    images.push(r);
                } else {
                    notes.push("no second-stage bootloader in this file".into());
                }
                for app in &m.apps {
                    let mut r = self.check_image(&app.role(), &app.image, None);
                    r.signature = app.signature.clone();
                    if let (Some(c), Some(bc)) = (app.image.chip(), m.chip)
                        && c != bc
                    {
                        r.problems.push(Problem {
                            code: "chip_id",
                            offset: Some(app.image.offset + 12),
                            message: format!("app is for {c} but the bootloader is for {bc}"),
                        });
                        r.valid = false;
                    }
                    images.push(r);
                }
                for p in &m.empty_apps {
                    notes.push(format!(
                        "app partition {} at {:#x} holds no image",
                        p.label, p.offset
                    ));
                }
                if let Some(t) = &m.table {
                    let mut problems: Vec<Problem> = t
                        .md5
                        .iter()
                        .filter(|m| !m.valid)
                        .map(|m| Problem {
                            code: "table_md5",
                            offset: Some(m.offset),
                            message: format!(
                                "partition table at {:#x}: its MD5 entry at {:#x} holds {}, the entries hash to {}",
                                t.offset, m.offset, m.stored, m.computed
                            ),
                        })
                        .collect();
                    check_merged_table(data, m, t, &mut problems, &mut notes);
                    table = Some(TableReport {
                        offset: t.offset,
                        partitions: t.partitions.clone(),
                        md5: t.md5.clone(),
                        valid: problems.is_empty(),
                        problems,
                    });
                } else {
                    notes.push("no partition table in this file".into());
                }
            }
        }
        self.report(images, table, notes)
    }

    fn report(
        &self,
        images: Vec<ImageReport>,
        table: Option<TableReport>,
        notes: Vec<String>,
    ) -> Report {
        let valid = images.iter().all(|i| i.valid) && table.as_ref().is_none_or(|t| t.valid);
        Report {
            format: self.format_name(),
            compression: self.compression.map(|_| "gzip"),
            chip: self.chip(),
            size: self.data.len(),
            images,
            partition_table: table,
            notes,
            valid,
        }
    }

    fn check_image(&self, role: &str, img: &AppImage, core3: Option<Range<usize>>) -> ImageReport {
        let data = &self.data[..];
        let mut problems = Vec::new();
        // The ROM and the bootloaders would jump to the entry with nothing loaded.
        if img.segments.is_empty() {
            problems.push(Problem {
                code: "no_segments",
                offset: Some(img.offset + 1),
                message: format!(
                    "the image at {:#x} declares 0 segments (byte {:#x}): it holds no code or data, so it is not firmware",
                    img.offset,
                    img.offset + 1
                ),
            });
        }
        let stored = img.stored_checksum(data);
        let computed = img.computed_checksum(data, None);
        let status = if stored == computed {
            ChecksumStatus::Valid
        } else if core3
            .clone()
            .is_some_and(|z| img.computed_checksum(data, Some(z)) == stored)
        {
            ChecksumStatus::ValidArduinoCore3
        } else {
            problems.push(Problem {
                code: "checksum",
                offset: Some(img.checksum_offset),
                message: format!(
                    "checksum at {:#x} is {stored:#04x}, computed {computed:#04x}",
                    img.checksum_offset
                ),
            });
            ChecksumStatus::Invalid
        };
        let sha256 = img.digest_offset.map(|d| {
            let range = img.hashed_range();
            let stored = &data[d..d + 32];
            let computed = match self.sealed_digests.get(&(range.start, range.end)) {
                Some(c) => *c,
                // The deferred check: compared later (check_valid_deferring_digests).
                None if self.defer_digests => stored.try_into().unwrap_or([0; 32]),
                None => checksum::sha256(&data[range]),
            };
            let valid = stored == computed;
            if !valid {
                problems.push(Problem {
                    code: "sha256",
                    offset: Some(d),
                    message: format!("appended SHA-256 at {d:#x} does not match the image"),
                });
            }
            DigestReport {
                offset: d,
                stored: checksum::hex(stored),
                computed: checksum::hex(&computed),
                valid,
            }
        });
        if let Some(h) = img.hash_appended
            && h > 1
        {
            problems.push(Problem {
                code: "hash_appended",
                offset: Some(img.offset + 23),
                message: format!(
                    "hash_appended at {:#x} is {h}, must be 0 or 1",
                    img.offset + 23
                ),
            });
        }
        if img.header == HeaderKind::Extended && !img.is_esp8266_v3() {
            if let Some(id) = img.chip_id
                && Chip::from_chip_id(id).is_none()
            {
                problems.push(Problem {
                    code: "chip_id",
                    offset: Some(img.offset + 12),
                    message: format!("unknown chip_id {id}"),
                });
            }
            for (i, s) in img.segments.iter().enumerate() {
                if s.len % 4 != 0 {
                    problems.push(Problem {
                        code: "segment_alignment",
                        offset: Some(s.header_offset),
                        message: format!(
                            "segment {i} length {:#x} is not a multiple of 4 (the bootloader rejects it)",
                            s.len
                        ),
                    });
                }
            }
        }
        let kind = match img.header {
            HeaderKind::Esp8266V1 => "esp8266-v1",
            HeaderKind::Extended if img.is_esp8266_v3() => "esp8266-v3",
            HeaderKind::Extended => "esp32-app",
        };
        ImageReport {
            role: role.into(),
            offset: img.offset,
            kind,
            chip: img.chip(),
            chip_id: img.chip_id,
            entry: img.entry,
            segments: img
                .segments
                .iter()
                .map(|s| SegmentReport {
                    addr: s.addr,
                    offset: s.data_offset,
                    len: s.len,
                    name: None,
                })
                .collect(),
            checksum: Some(ChecksumReport {
                offset: img.checksum_offset,
                stored,
                computed,
                status,
            }),
            sha256,
            crc: None,
            signature: None,
            valid: problems.is_empty(),
            problems,
        }
    }
}

fn push_crc(r: &mut ImageReport, kind: &'static str, offset: usize, stored: u32, computed: u32) {
    let valid = stored == computed;
    if !valid {
        r.problems.push(Problem {
            code: "crc",
            offset: Some(offset),
            message: format!(
                "{kind} CRC at {offset:#x} is {stored:#010x}, computed {computed:#010x}"
            ),
        });
        r.valid = false;
    }
    r.crc = Some(CrcReport {
        kind,
        offset,
        stored,
        computed,
        valid,
    });
}

fn read_u32(data: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(data[offset..offset + 4].try_into().expect("4 bytes"))
}

fn gather(data: &[u8], pieces: &[Piece]) -> Vec<u8> {
    pieces
        .iter()
        .flat_map(|p| data[p.offset..p.offset + p.len].iter().copied())
        .collect()
}

/// Segment data by load address. Padding segments that esptool inserts to align
/// flash-mapped segments load nowhere (address 0) and are not patchable.
fn segment_regions(img: &AppImage) -> impl Iterator<Item = Region> + '_ {
    img.segments.iter().filter(|s| s.addr != 0).map(|s| Region {
        addr: s.addr,
        offset: s.data_offset,
        len: s.len,
        checksummed: s.in_checksum,
    })
}

/// The space of one `0xE9` image; the app descriptor is protected.
fn image_space(label: String, key: ImageKey, img: &AppImage, data: &[u8]) -> AddressSpace {
    let mut space = AddressSpace::new(label, key, segment_regions(img).collect());
    if img.has_app_desc(data) {
        space.protected.push(ProtectedRange {
            addr: img.segments[0].addr,
            len: APP_DESC_LEN,
            field: "the ESP32 app descriptor (esp_app_desc_t)",
        });
    }
    space
}

/// What a user holding eboot alone needs to hear: it is a boot loader, not an app.
fn eboot_note(entry: u32) -> String {
    format!(
        "this looks like the Arduino ESP8266 boot loader (eboot, code at {:#010x}) on its own: it holds no app; personalise the app instead (its ELF, or the one .bin the Arduino build writes with eboot at 0x0 and the app at {:#x})",
        entry & !0xFFF,
        format::ARDUINO_APP_OFFSET
    )
}

/// The report of an Arduino app that is not there: an image entry at 0x1000
/// with one problem, so that `verify` shows it where the app should be.
fn missing_app_report(reason: &str) -> ImageReport {
    let at = format::ARDUINO_APP_OFFSET;
    ImageReport {
        role: "app".into(),
        offset: at,
        kind: "missing",
        chip: Some(Chip::Esp8266),
        chip_id: None,
        entry: 0,
        segments: Vec::new(),
        checksum: None,
        sha256: None,
        crc: None,
        signature: None,
        problems: vec![Problem {
            code: "app_missing",
            offset: Some(at),
            message: format!(
                "the app at {at:#x} is missing or damaged: {reason}; only the eboot boot loader at 0x0 is intact (the part esptool image-info checks), and eboot does not check the app, so the device would not start"
            ),
        }],
        valid: false,
    }
}

/// The largest flash of any ESP chip (the ESP32-P4 maps up to 256 MiB): a
/// partition that ends past it cannot exist on a device.
const MAX_FLASH: u64 = 256 << 20;

/// What the partition table of a merged file says about the file: partitions no
/// flash can hold, a boot app the file does not contain, app images the table
/// does not point to.
fn check_merged_table(
    data: &[u8],
    m: &MergedImage,
    t: &PartitionTable,
    problems: &mut Vec<Problem>,
    notes: &mut Vec<String>,
) {
    for (i, p) in t.partitions.iter().enumerate() {
        if p.end() > MAX_FLASH {
            let why = if p.end() > u64::from(u32::MAX) + 1 {
                "its offset plus size overflows 32 bits"
            } else {
                "past the 256 MiB of the largest ESP flash"
            };
            let entry = t.entry_offset(i);
            problems.push(Problem {
                code: "partition_range",
                offset: Some(entry),
                message: format!(
                    "partition table at {:#x}: partition {} (entry at {entry:#x}) spans {:#x}..{:#x}, {why}; fix the table (partitions.csv) and rebuild it",
                    t.offset,
                    p.label,
                    p.offset,
                    p.end()
                ),
            });
        }
    }
    let beyond = |p: &crate::format::partition_table::Partition| p.offset as usize >= data.len();
    let boot = t.boot_app();
    match boot {
        None => problems.push(Problem {
            code: "boot_app_missing",
            offset: Some(t.offset),
            message: format!(
                "partition table at {:#x} has no app partition: the file holds no bootable app",
                t.offset
            ),
        }),
        Some(b) if beyond(b) => {
            let i = t.partitions.iter().position(|p| p == b).unwrap_or(0);
            let entry = t.entry_offset(i);
            problems.push(Problem {
                code: "boot_app_missing",
                offset: Some(entry),
                message: format!(
                    "partition table at {:#x}: the app the bootloader starts, {} ({}, entry at {entry:#x}) at {:#x}, lies past the end of the file ({:#x} bytes): the file holds no bootable app, and flashing it leaves whatever the device has there; merge the app at {:#x}, or fix the table",
                    t.offset,
                    b.label,
                    b.app_role(),
                    b.offset,
                    data.len(),
                    b.offset
                ),
            });
        }
        Some(_) if m.apps.is_empty() => problems.push(Problem {
            code: "boot_app_missing",
            offset: Some(t.offset),
            message: format!(
                "partition table at {:#x}: no app partition inside the file holds an image: the file holds no bootable app",
                t.offset
            ),
        }),
        Some(_) => {}
    }
    for p in t.apps().filter(|p| Some(*p) != boot && beyond(p)) {
        notes.push(format!(
            "app partition {} ({}) at {:#x} lies past the end of the file: flashing leaves it as it is",
            p.label,
            p.app_role(),
            p.offset
        ));
    }
    // App-like data the table does not point to: an image header at a 64 KiB
    // boundary (where apps are merged) after the table, outside every partition.
    let from = (t.offset + partition_table::MAX_LEN).next_multiple_of(0x10000);
    for o in (from..data.len()).step_by(0x10000) {
        let inside = t
            .partitions
            .iter()
            .any(|p| (p.offset as u64..p.end()).contains(&(o as u64)));
        if data[o] == crate::format::app_image::MAGIC && !inside {
            notes.push(format!(
                "an image header (0xE9) at {o:#x} lies outside every partition of the table at {:#x}: the bootloader never starts it (was the table changed, or the app merged at the wrong offset?)",
                t.offset
            ));
        }
    }
}
