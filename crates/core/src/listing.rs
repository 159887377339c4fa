//! What a firmware file takes, without patching it: [`slots`] lists every
//! target (slots merged across their copies, placeholders found exactly once),
//! values masked for secrets, with the file's verification and the problems a
//! personalisation would refuse. `inspect`, the guided mode and the browser
//! page all show this one list.

use crate::Chip;
use crate::error::Result;
use crate::firmware::{Firmware, ParseOptions};
use crate::problem::{Problem, Warning};
use crate::report::Report;
use crate::targets::{self, ConventionChoice, Placeholder, SlotState, TargetKind};
use serde::Serialize;

/// What [`slots`] looks for besides slot records.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// How to parse the input.
    pub parse: ParseOptions,
    /// Legacy placeholder mappings to locate.
    pub placeholders: Vec<Placeholder>,
    /// Which placeholder conventions to look for.
    pub conventions: ConventionChoice,
}

/// One key a file takes, as every output may show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlotView {
    /// The key.
    pub key: String,
    /// Slot or placeholder.
    pub kind: TargetKind,
    /// The largest value in bytes.
    pub capacity: usize,
    /// Names of the flags that are set (`secret`, `required`, unknown bits as `bitN`).
    pub flags: Vec<String>,
    /// Masked in every output.
    pub secret: bool,
    /// The firmware demands a value.
    pub required: bool,
    /// As compiled, or written by a patcher.
    pub state: SlotState,
    /// The current value, masked when secret (`********`, or empty when empty).
    pub value: String,
    /// Load addresses of every copy.
    pub addresses: Vec<u32>,
    /// File offsets of every copy (of the decompressed data).
    pub file_offsets: Vec<usize>,
    /// What a value must look like (standard keys).
    pub rule: Option<&'static str>,
    /// A placeholder's literal.
    pub literal: Option<String>,
    /// The convention that found the placeholder (`pythonpatcher`).
    pub convention: Option<&'static str>,
    /// What the value is, in plain words (standard keys).
    pub label: Option<&'static str>,
}

/// Everything [`slots`] found.
#[derive(Debug, Clone, Serialize)]
pub struct Listing {
    /// The format name (`app-image`, `merged`, `arduino-esp8266`, `elf`, ...).
    pub format: &'static str,
    /// The chip the firmware is for, when known.
    pub chip: Option<Chip>,
    /// The file's verification.
    pub report: Report,
    /// One entry per key, in key order.
    pub slots: Vec<SlotView>,
    /// Damaged or unknown records, conflicting declarations, placeholders missing, repeated or
    /// overlapping, or nothing to personalise at all.
    pub problems: Vec<Problem>,
    /// Placeholder literals that look cut short.
    pub warnings: Vec<Warning>,
}

/// Lists what `input` takes. `Err` only when it is not firmware at all; an invalid file is
/// listed with its report saying why (and whatever targets could still be found).
pub fn slots(input: &[u8], options: &ListOptions) -> Result<Listing> {
    let fw = Firmware::parse_with(input, options.parse)?;
    let report = fw.verify();
    let found = targets::find(&fw, &options.placeholders, options.conventions);
    let slots = found
        .targets
        .iter()
        .map(|t| SlotView {
            key: t.key.clone(),
            kind: t.kind,
            capacity: t.capacity,
            flags: t.flag_names(),
            secret: t.secret,
            required: t.required(),
            state: t.state,
            value: t.shown_value(),
            addresses: t.addrs.clone(),
            file_offsets: t.offsets.clone(),
            rule: t.rule(),
            literal: t.literal.clone(),
            convention: t.convention,
            label: crate::targets::standard::standard(&t.key).map(|k| k.label),
        })
        .collect();
    Ok(Listing {
        format: fw.format_name(),
        chip: fw.chip(),
        report,
        slots,
        problems: found.problems,
        warnings: found.warnings,
    })
}
