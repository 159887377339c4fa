//! Every call into the thinger-patch core, in one module: `lib.rs` turns what it returns
//! into JS objects, and the native tests at the bottom run it without a browser. Nothing here
//! re-implements a rule: listing ([`thinger_patch_core::slots`]), checking
//! ([`thinger_patch_core::check`]), personalising and placement are the core's own calls, so
//! the page and the CLI cannot drift.

use serde::Serialize;
use std::collections::BTreeMap;
use thinger_patch_core::checksum;
use thinger_patch_core::format::gzip;
use thinger_patch_core::format::partition_table::{self, PartitionTable};
use thinger_patch_core::placement::{self, Route};
use thinger_patch_core::report::Report;
use thinger_patch_core::targets::record::{self, Decoded, SlotState};
use thinger_patch_core::targets::{Placeholder, standard};
use thinger_patch_core::values::{Assignment, Origin, mask};
use thinger_patch_core::{
    Chip, Error, Firmware, ListOptions, Problem, ProblemKind, Request, personalize,
};

/// The largest file the page reads: the engine's own cap on a decompressed image
/// (larger than any ESP flash).
pub const MAX_FILE_SIZE: usize = gzip::DEFAULT_LIMIT;

/// A problem as the page shows it next to its field: the core's message and its advice.
fn problem_text(p: &Problem) -> String {
    match p.help() {
        Some(h) => format!("{p}; {h}"),
        None => p.to_string(),
    }
}

/// `name: message`, like the CLI's `file: message`.
fn about(name: &str, e: &dyn std::fmt::Display) -> String {
    format!("{name}: {e}")
}

/// `name: message; help` for an engine error, in the CLI's words (its advice never names a
/// command-line flag).
fn about_error(name: &str, e: &Error) -> String {
    match e.help() {
        Some(h) => format!("{name}: {e}; {h}"),
        None => about(name, e),
    }
}

/// Why a file is not even opened: too large (checked from the size alone, before the
/// page reads it).
pub fn file_size_problem(name: &str, size: u64) -> Option<String> {
    (size > MAX_FILE_SIZE as u64).then(|| {
        format!(
            "{name}: the file is {size} bytes, more than {MAX_FILE_SIZE} bytes: no ESP flash is that large; pick the firmware image (.bin, .bin.gz or .elf)"
        )
    })
}

/// What a firmware author's manifest (or the page) adds to a file.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Legacy placeholders, `key -> literal`, as in a config file's `[placeholders]`.
    pub placeholders: BTreeMap<String, String>,
    /// Leave out placeholders whose literal does not occur (the file was picked by the
    /// user, not the one the manifest describes); otherwise they are problems.
    pub placeholders_optional: bool,
    /// The chip the manifest says the firmware is for (`esp32c3`, `ESP32-C3`).
    pub chip: Option<String>,
}

/// One image inside the file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageSummary {
    pub role: String,
    pub offset: usize,
    pub kind: &'static str,
    pub chip: Option<Chip>,
    pub valid: bool,
    /// `Secure Boot v2 RSA-PSS signature, 1 block(s)`, for signed images.
    pub signature: Option<String>,
}

/// What the page shows about a file before any value is typed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileInfo {
    pub name: String,
    /// `elf`, `app-image`, `esp8266-v2`, `arduino-esp8266`, `merged`.
    pub format: &'static str,
    pub compression: Option<&'static str>,
    pub chip: Option<Chip>,
    /// Bytes of the file as given.
    pub file_size: usize,
    /// Bytes of the (decompressed) data.
    pub size: usize,
    pub valid: bool,
    /// Every integrity problem, `role: message`.
    pub problems: Vec<String>,
    pub notes: Vec<String>,
    pub images: Vec<ImageSummary>,
    /// Why no value can be written into this file (signed, invalid), in the CLI's words.
    pub refusal: Option<String>,
    /// Why it cannot be flashed as it is (an ELF, an ambiguous merged image).
    pub not_flashable: Option<String>,
    /// Placeholders of the options that do not occur in this file (left out).
    pub placeholders_absent: Vec<String>,
    /// The manifest names another chip than the image (the image's own header wins).
    pub manifest_problem: Option<String>,
    /// The full report (the CLI's `verify --json` structure).
    pub report: Report,
}

/// One form field: a slot (all its copies) or a placeholder.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotView {
    pub key: String,
    /// `slot` or `placeholder`.
    pub kind: &'static str,
    /// Bytes the value may have.
    pub capacity: usize,
    pub flags: Vec<String>,
    pub secret: bool,
    pub required: bool,
    /// `default` (as compiled) or `patched`; placeholders are always `default`.
    pub state: SlotState,
    /// The value in the file now, masked (`********`) for secrets.
    pub value: String,
    /// The firmware's own description; slot format 1 has no field for it, so `None`.
    pub description: Option<String>,
    /// What a value must look like, for keys with a standard rule.
    pub rule: Option<&'static str>,
    /// The usual value of a standard key (e.g. `iot.thinger.io`).
    pub usual: Option<&'static str>,
    /// The placeholder's literal text.
    pub literal: Option<String>,
    pub addresses: Vec<u32>,
    pub file_offsets: Vec<usize>,
}

/// A slot record that cannot be patched (damaged, or of an unknown format version).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DamagedRecord {
    pub address: u32,
    pub file_offset: usize,
    /// `malformed` or `unknown_version`.
    pub status: &'static str,
    pub problem: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SlotList {
    pub fields: Vec<SlotView>,
    pub damaged: Vec<DamagedRecord>,
}

/// The verdict on a set of values: problems next to their field, and the rest.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// True when the values can be written (personalise would succeed).
    pub ok: bool,
    /// Problems by key (only keys that have one).
    pub fields: BTreeMap<String, Vec<String>>,
    /// Problems of no single field (the file, the manifest's placeholders).
    pub general: Vec<String>,
}

/// A personalised file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Output {
    #[serde(skip)]
    pub bytes: Vec<u8>,
    /// Where the page suggests saving it: `<stem>.<device><extensions>`.
    pub file_name: String,
    pub format: &'static str,
    pub chip: Option<Chip>,
    pub size: usize,
    pub holds_secrets: bool,
    /// Every slot as written (secrets masked).
    pub slots: Vec<Written>,
    pub warnings: Vec<String>,
    pub report: Report,
}

/// One slot or placeholder of a personalised file.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Written {
    pub key: String,
    pub kind: &'static str,
    pub capacity: usize,
    pub flags: Vec<String>,
    pub addresses: Vec<u32>,
    pub state: SlotState,
    /// Masked for secrets.
    pub value: String,
    pub secret: bool,
    /// Whether the form gave it a value (else it kept what it held).
    pub set: bool,
    /// Whether any byte changed.
    pub changed: bool,
}

/// A file opened by the page, with what every check needs computed once.
pub struct Opened {
    name: String,
    /// The file as given (gzip stays gzip: the download is compressed again).
    bytes: Vec<u8>,
    /// The decompressed data: what checks parse, so no check decompresses again.
    data: Vec<u8>,
    placeholders: Vec<Placeholder>,
    info: FileInfo,
    slots: SlotList,
}

impl Opened {
    /// Parses and verifies `bytes`; fails only when it is not firmware at all.
    pub fn open(name: &str, bytes: Vec<u8>, options: &OpenOptions) -> Result<Opened, String> {
        if let Some(p) = file_size_problem(name, bytes.len() as u64) {
            return Err(p);
        }
        let fw = Firmware::parse(&bytes).map_err(|e| about_error(name, &e))?;
        let report = fw.verify();
        let data = fw.data().to_vec();

        let mut placeholders = Vec::new();
        let mut absent = Vec::new();
        for (key, literal) in &options.placeholders {
            if !record::is_valid_key(key) || literal.is_empty() {
                return Err(format!(
                    "placeholder {key:?} of the manifest must map a key of [A-Za-z0-9_.-] (starting with a letter or _) to a non-empty literal"
                ));
            }
            let found =
                thinger_patch_core::targets::placeholder::occurrences(&fw, literal.as_bytes());
            if found.is_empty() && options.placeholders_optional {
                absent.push(key.clone());
                continue;
            }
            placeholders.push(Placeholder::new(key.clone(), literal.clone()));
        }

        let refusal = patch_refusal(&fw).map(|e| about_error(name, &e));
        let manifest_problem = options
            .chip
            .as_deref()
            .and_then(|c| manifest_chip_problem(name, c, fw.chip()));
        let not_flashable = placement::route(&fw).err().map(|e| about(name, &e));
        let info = FileInfo {
            name: name.to_string(),
            format: fw.format_name(),
            compression: report.compression,
            chip: fw.chip(),
            file_size: bytes.len(),
            size: data.len(),
            valid: report.valid,
            problems: report
                .images
                .iter()
                .flat_map(|i| {
                    i.problems
                        .iter()
                        .map(move |p| format!("{}: {}", i.role, p.message))
                })
                .chain(
                    report
                        .partition_table
                        .iter()
                        .flat_map(|t| t.problems.iter().map(|p| p.message.clone())),
                )
                .collect(),
            notes: report.notes.clone(),
            images: report
                .images
                .iter()
                .map(|i| ImageSummary {
                    role: i.role.clone(),
                    offset: i.offset,
                    kind: i.kind,
                    chip: i.chip,
                    valid: i.valid,
                    signature: i.signature.as_ref().map(|s| s.describe()),
                })
                .collect(),
            refusal,
            not_flashable,
            placeholders_absent: absent,
            manifest_problem,
            report,
        };
        drop(fw);
        let slots = list_slots(&data, &placeholders).map_err(|e| about_error(name, &e))?;
        Ok(Opened {
            name: name.to_string(),
            bytes,
            data,
            placeholders,
            info,
            slots,
        })
    }

    pub fn info(&self) -> &FileInfo {
        &self.info
    }

    pub fn slots(&self) -> &SlotList {
        &self.slots
    }

    /// Checks `values` (key -> text; an empty text means "not given": the slot keeps
    /// what it holds) with the rules and messages of `thinger-patch patch`, without
    /// writing anything.
    pub fn check(&self, values: &BTreeMap<String, String>) -> Check {
        let request = self.request(&given(values));
        let problems = match thinger_patch_core::check(&self.data, &request) {
            Ok(c) => c.problems,
            Err(e) => {
                return Check {
                    ok: false,
                    fields: BTreeMap::new(),
                    general: vec![about_error(&self.name, &e)],
                };
            }
        };
        let mut fields: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut general = Vec::new();
        for p in &problems {
            let field = p
                .key
                .as_deref()
                .filter(|k| self.slots.fields.iter().any(|f| f.key == *k));
            match field {
                Some(k) => fields
                    .entry(k.to_string())
                    .or_default()
                    .push(problem_text(p)),
                None => general.push(problem_text(p)),
            }
        }
        let ok = problems.is_empty() && self.info.refusal.is_none();
        Check {
            ok,
            fields,
            general,
        }
    }

    /// Writes `values` into the file: re-sealed, re-verified bytes, or every problem.
    pub fn personalize(&self, values: &BTreeMap<String, String>) -> Result<Output, Vec<String>> {
        if let Some(r) = &self.info.refusal {
            return Err(vec![r.clone()]);
        }
        let given = given(values);
        let request = self.request(&given);
        let done = personalize(&self.bytes, &request).map_err(|e| match e {
            Error::Personalize { problems } => problems.iter().map(problem_text).collect(),
            e => vec![about_error(&self.name, &e)],
        })?;
        let device = given
            .iter()
            .find(|(k, _)| k == "thinger_device")
            .filter(|_| {
                !self
                    .slots
                    .fields
                    .iter()
                    .any(|s| s.key == "thinger_device" && s.secret)
            })
            .map(|(_, v)| v.as_str());
        Ok(Output {
            file_name: output_name(&self.name, device),
            format: done.format,
            chip: done.chip,
            size: done.bytes.len(),
            holds_secrets: done.holds_secrets(),
            warnings: done.warnings.iter().map(|w| w.to_string()).collect(),
            slots: done
                .slots
                .into_iter()
                .map(|o| Written {
                    set: o.origin.is_some(),
                    key: o.key,
                    kind: o.kind.name(),
                    capacity: o.capacity,
                    flags: o.flags,
                    addresses: o.addresses,
                    state: o.state,
                    value: o.value,
                    secret: o.secret,
                    changed: o.changed,
                })
                .collect(),
            report: done.report,
            bytes: done.bytes,
        })
    }

    fn request(&self, given: &[(String, String)]) -> Request {
        Request {
            values: given
                .iter()
                .map(|(k, v)| Assignment::new(k.clone(), v.clone(), Origin::Form))
                .collect(),
            placeholders: self.placeholders.clone(),
            ..Default::default()
        }
    }
}

fn manifest_chip_problem(name: &str, said: &str, chip: Option<Chip>) -> Option<String> {
    match (Chip::from_name(said), chip) {
        (None, _) => Some(format!(
            "the manifest names the chip {said:?}, which this thinger-patch does not know"
        )),
        (Some(want), Some(c)) if want == c => None,
        (Some(want), c) => Some(format!(
            "the manifest says the firmware is for an {want}, but {name} is for {}; the image's own header counts",
            c.map_or("an unknown chip".to_string(), |c| format!("an {c}"))
        )),
    }
}

/// The non-empty values, in key order.
fn given(values: &BTreeMap<String, String>) -> Vec<(String, String)> {
    values
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Whether a value could be written at all: the library's own refusal (signed image,
/// image invalid before patching), found by writing the first patchable byte back
/// unchanged. CORE WISH: `Firmware::check_patchable()`.
fn patch_refusal(fw: &Firmware<'_>) -> Option<Error> {
    let space = fw.spaces().into_iter().next()?;
    let chunk = space.chunks().into_iter().next()?;
    let mut probe = fw.clone();
    let current = probe.read(&space, chunk.addr, 1).ok()?;
    probe.patch(chunk.addr, &current).err()
}

/// The form's fields: the core's listing, with each standard key's usual value.
fn list_slots(data: &[u8], placeholders: &[Placeholder]) -> Result<SlotList, Error> {
    let listing = thinger_patch_core::slots(
        data,
        &ListOptions {
            placeholders: placeholders.to_vec(),
            ..Default::default()
        },
    )?;
    let fields = listing
        .slots
        .into_iter()
        .map(|s| SlotView {
            usual: standard::standard(&s.key).and_then(|k| k.default),
            kind: s.kind.name(),
            capacity: s.capacity,
            flags: s.flags,
            secret: s.secret,
            required: s.required,
            state: s.state,
            value: s.value,
            description: None,
            rule: s.rule,
            literal: s.literal,
            addresses: s.addresses,
            file_offsets: s.file_offsets,
            key: s.key,
        })
        .collect();
    // The CLI's `inspect` wording.
    let damaged = listing
        .problems
        .iter()
        .filter_map(|p| match &p.kind {
            ProblemKind::UnknownRecordVersion {
                address,
                offset,
                version,
            } => Some(DamagedRecord {
                address: *address,
                file_offset: *offset,
                status: "unknown_version",
                problem: format!(
                    "slot format version {version}, unknown to this thinger-patch (shown, never patched)"
                ),
            }),
            ProblemKind::DamagedRecord {
                address,
                offset,
                reason,
            } => Some(DamagedRecord {
                address: *address,
                file_offset: *offset,
                status: "malformed",
                problem: format!("damaged slot record: {reason}"),
            }),
            _ => None,
        })
        .collect();
    Ok(SlotList { fields, damaged })
}

/// `fw.bin.gz` + `kitchen` -> `fw.kitchen.bin.gz` (the CLI's naming of outputs).
pub fn output_name(input: &str, device: Option<&str>) -> String {
    let tag = device
        .filter(|d| {
            !d.is_empty()
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        })
        .unwrap_or("personalised");
    let base = input.rsplit(['/', '\\']).next().unwrap_or(input);
    let base = if base.is_empty() {
        "firmware.bin"
    } else {
        base
    };
    // A leading dot is part of the stem (hidden files), not an extension.
    match base.char_indices().skip(1).find(|&(_, c)| c == '.') {
        Some((i, _)) => format!("{}.{tag}{}", &base[..i], &base[i..]),
        None => format!("{base}.{tag}"),
    }
}

// ---------------------------------------------------------------------------------------
// Placement: where the image goes on a device
// ---------------------------------------------------------------------------------------

/// Which loader reaches the chip, and whether the device's partition table is needed.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RouteView {
    pub chip: Chip,
    /// `esp32` (ROM loader / stub protocol) or `esp8266`.
    pub loader: &'static str,
    pub needs_table: bool,
    /// Where to read the device's table from, and how many bytes.
    pub table_offset: u32,
    pub table_len: u32,
}

/// One write to the device; erases are writes of 0xFF.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    pub offset: u32,
    pub what: String,
    pub erase: bool,
    /// Bytes written (padded to whole words with 0xFF, as the loader writes them).
    pub len: usize,
    /// MD5 of the written bytes, for the loader's verification.
    pub md5: String,
    #[serde(skip)]
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FlashPlan {
    pub route: RouteView,
    pub parts: Vec<Part>,
    pub warnings: Vec<String>,
    pub total_bytes: u64,
}

/// The route for `bytes` (a personalised file), named `name` in messages.
pub fn route(name: &str, bytes: &[u8]) -> Result<RouteView, String> {
    let fw = Firmware::parse(bytes).map_err(|e| about_error(name, &e))?;
    let r = placement::route(&fw).map_err(|e| about(name, &e))?;
    Ok(route_view(r))
}

fn route_view(r: Route) -> RouteView {
    RouteView {
        chip: r.chip(),
        loader: match r {
            Route::Esp32 { .. } => "esp32",
            Route::Esp8266 => "esp8266",
        },
        needs_table: r.needs_table(),
        table_offset: partition_table::DEFAULT_OFFSET as u32,
        table_len: partition_table::MAX_LEN as u32,
    }
}

/// The writes and erases for `bytes`; `device_table` is what the device holds at
/// [`RouteView::table_offset`], when the route needs it.
pub fn flash_plan(
    name: &str,
    bytes: &[u8],
    device_table: Option<&[u8]>,
) -> Result<FlashPlan, String> {
    let fw = Firmware::parse(bytes).map_err(|e| about_error(name, &e))?;
    let r = placement::route(&fw).map_err(|e| about(name, &e))?;
    let table = match device_table {
        Some(raw) if r.needs_table() => Some(device_table_of(raw)?),
        _ => None,
    };
    let plan = placement::plan(&fw, table.as_ref()).map_err(|e| about(name, &e))?;
    let data = fw.data();
    let mut parts: Vec<Part> = plan
        .writes
        .iter()
        .map(|w| {
            let mut bytes = data[w.start..w.start + w.len].to_vec();
            bytes.resize(bytes.len().next_multiple_of(4), 0xFF);
            part(w.offset, w.what.clone(), false, bytes)
        })
        .collect();
    parts.extend(
        plan.erases
            .iter()
            .map(|e| part(e.offset, e.what.clone(), true, vec![0xFF; e.size as usize])),
    );
    Ok(FlashPlan {
        route: route_view(r),
        total_bytes: plan.total_bytes(),
        warnings: plan.warnings,
        parts,
    })
}

fn part(offset: u32, what: String, erase: bool, data: Vec<u8>) -> Part {
    Part {
        offset,
        what,
        erase,
        len: data.len(),
        md5: md5_hex(&data),
        data,
    }
}

/// The partition table read from the device, or why it is unusable (the CLI's checks
/// and wording, without its port name). CORE WISH: `delivery::device_table(raw, offset)`.
fn device_table_of(raw: &[u8]) -> Result<PartitionTable, String> {
    let offset = partition_table::DEFAULT_OFFSET;
    if !PartitionTable::is_at(raw, 0) {
        return Err(format!(
            "the device: no partition table at {offset:#x} on the device (it reads {}): flash a merged image (bootloader, partition table and app) first",
            checksum::hex_head(raw, 8)
        ));
    }
    let mut t = PartitionTable::parse(raw, 0).map_err(|e| {
        format!("the device: the device's partition table at {offset:#x} is damaged: {e}")
    })?;
    if t.md5.as_ref().is_some_and(|m| !m.valid) {
        return Err(format!(
            "the device: the device's partition table at {offset:#x} fails its MD5 check; flash a merged image to repair it"
        ));
    }
    t.offset = offset;
    Ok(t)
}

/// Whether the chip the loader detected (`ESP32-C3`, as esptool-js names it) is the one
/// the image is for; the refusal in the CLI's words otherwise.
pub fn check_chip(name: &str, image_chip: &str, detected: &str) -> Result<Chip, String> {
    let want = Chip::from_name(image_chip)
        .ok_or_else(|| format!("{name}: unknown chip {image_chip:?}"))?;
    match Chip::from_name(detected) {
        Some(c) if c == want => Ok(c),
        Some(c) => Err(format!(
            "the connected chip is an {c}, but {name} is firmware for an {want}: nothing was written"
        )),
        None => Err(format!(
            "the connected chip reports itself as {detected:?}, which this thinger-patch does not know, and {name} is firmware for an {want}: nothing was written"
        )),
    }
}

pub fn md5_hex(bytes: &[u8]) -> String {
    checksum::hex(&checksum::md5(bytes))
}

/// The commands that flash a downloaded file without the page.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Commands {
    /// `thinger-patch flash FILE` (reads the device's table, checks the chip, verifies).
    pub thinger_patch: String,
    /// The plain esptool command, when no device table decides the offset.
    pub esptool: Option<String>,
}

pub fn commands(file_name: &str, bytes: &[u8]) -> Commands {
    let quoted = shell_quote(file_name);
    let esptool = Firmware::parse(bytes)
        .ok()
        .filter(|fw| fw.compression().is_none())
        .and_then(|fw| placement::plan(&fw, None).ok())
        .filter(|p| p.erases.is_empty() && p.writes.len() == 1)
        .map(|p| {
            format!(
                "esptool --chip {} write-flash {:#x} {quoted}",
                p.route.chip(),
                p.writes[0].offset
            )
        });
    Commands {
        thinger_patch: format!("thinger-patch flash {quoted}"),
        esptool,
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/' | b'+'))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

// ---------------------------------------------------------------------------------------
// Slot records (the spec's golden vectors run through these under Node)
// ---------------------------------------------------------------------------------------

/// A decoded record; the value is masked when the record is secret.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RecordView {
    /// `ok`, `unknown_version` or `malformed`.
    pub status: &'static str,
    pub key: Option<String>,
    pub capacity: Option<u16>,
    pub flags: Option<u16>,
    pub flag_names: Vec<String>,
    pub state: Option<SlotState>,
    pub value: Option<String>,
    pub secret: bool,
    pub required: bool,
    pub record_len: Option<usize>,
    pub problem: Option<String>,
}

pub fn decode_record(bytes: &[u8]) -> RecordView {
    let mut v = RecordView {
        status: "ok",
        key: None,
        capacity: None,
        flags: None,
        flag_names: Vec::new(),
        state: None,
        value: None,
        secret: false,
        required: false,
        record_len: None,
        problem: None,
    };
    match record::decode(bytes) {
        Decoded::Slot(s) => {
            v.secret = s.is_secret();
            v.required = s.is_required();
            v.value = Some(if v.secret {
                mask(&s.value).to_string()
            } else {
                s.value.clone()
            });
            v.flag_names = s.flag_names();
            v.flags = Some(s.flags);
            v.capacity = Some(s.capacity);
            v.state = Some(s.state);
            v.record_len = Some(s.record_len());
            v.key = Some(s.key);
        }
        Decoded::UnknownVersion { version } => {
            v.status = "unknown_version";
            v.problem = Some(format!(
                "slot format version {version}, unknown to this thinger-patch (shown, never patched)"
            ));
        }
        Decoded::Malformed { reason } => {
            v.status = "malformed";
            v.problem = Some(format!("damaged slot record: {reason}"));
        }
    }
    v
}

/// A whole record, as a firmware declaration compiles to (after checking the
/// declaration as the spec does).
pub fn encode_record(
    key: &str,
    capacity: u16,
    flags: u16,
    patched: bool,
    value: &str,
) -> Result<Vec<u8>, String> {
    if !record::is_valid_key(key) {
        return Err(format!("key {key:?} is not a valid slot key"));
    }
    if capacity == 0 || capacity > record::MAX_CAPACITY {
        return Err(format!(
            "capacity {capacity} is outside 1..={}",
            record::MAX_CAPACITY
        ));
    }
    if value.len() > capacity as usize || value.contains('\0') {
        return Err(format!(
            "the value is {} bytes or holds a NUL; the capacity is {capacity}",
            value.len()
        ));
    }
    let state = if patched {
        SlotState::Patched
    } else {
        SlotState::Default
    };
    Ok(record::encode(key, capacity, flags, state, value))
}

/// `current` (a whole record) after writing `value` into it, as every patch does.
pub fn patch_record(current: &[u8], value: &str) -> Result<Vec<u8>, String> {
    let Decoded::Slot(s) = record::decode(current) else {
        return Err("not a well-formed version 1 slot record".into());
    };
    if value.len() > s.capacity as usize || value.contains('\0') {
        return Err(format!(
            "slot {}: the value is {} bytes, the slot holds at most {}",
            s.key,
            value.len(),
            s.capacity
        ));
    }
    let mut out = current[..s.record_len()].to_vec();
    let tail = record::patched_tail(&out, s.capacity, value);
    out[record::OFFSET_STATE..].copy_from_slice(&tail);
    Ok(out)
}

#[cfg(test)]
mod tests;
