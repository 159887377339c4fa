//! The one call that personalises firmware: resolved values in, patched,
//! re-sealed and re-verified bytes out. The CLI, the cargo subcommand, the
//! PlatformIO script, the batch runner, the browser page and tests all go
//! through [`personalize`] (or [`check`], the same steps without writing).
//!
//! The steps, in order: parse and verify the input; [`targets::find`] the
//! slots and placeholders; take the latest value of each key; check every
//! value against its target (capacity, NUL, standard-key rule, unknown keys,
//! required slots) into typed [`Problem`]s; write each value into every copy
//! of its target; seal and re-verify ([`Firmware::finish`]).

use crate::error::{Error, Result};
use crate::problem::{Problem, ProblemKind, Warning};
use crate::report::Report;
use crate::space::AddressSpace;
use crate::targets::{
    self, ConventionChoice, Found, Pad, Placeholder, SlotState, Target, TargetKind, Targets,
};
use crate::targets::{placeholder, record, standard};
use crate::values::{Assignment, Origin};
use crate::{Firmware, ParseOptions};
use serde::Serialize;
use std::collections::BTreeMap;

/// What to personalise and how.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Values by key; a later assignment of the same key wins.
    pub values: Vec<Assignment>,
    /// Legacy placeholder mappings.
    pub placeholders: Vec<Placeholder>,
    /// How a shorter value fills the rest of a placeholder.
    pub pad: Pad,
    /// Ignore (with a warning) values whose key matches no slot.
    pub allow_missing: bool,
    /// How to parse the input (`None`: the defaults).
    pub parse: Option<ParseOptions>,
    /// Which placeholder conventions to look for (default: every one, when the file declares
    /// no slots).
    pub conventions: ConventionChoice,
}

impl Request {
    /// How [`crate::slots`] finds the same slots and placeholders this request fills.
    pub fn list_options(&self) -> crate::ListOptions {
        crate::ListOptions {
            parse: self.parse.unwrap_or_default(),
            placeholders: self.placeholders.clone(),
            conventions: self.conventions,
        }
    }
}

/// What happened to one slot or placeholder. `value` is masked for secrets.
#[derive(Debug, Clone, Serialize)]
pub struct SlotOutcome {
    /// The key.
    pub key: String,
    /// Slot or placeholder.
    pub kind: TargetKind,
    /// The largest value in bytes.
    pub capacity: usize,
    /// Names of the flags that are set.
    pub flags: Vec<String>,
    /// Load addresses of every copy written (several for duplicates).
    pub addresses: Vec<u32>,
    /// The state after this run.
    pub state: SlotState,
    /// The value after this run, masked when secret.
    pub value: String,
    /// Whether the value is masked everywhere.
    pub secret: bool,
    /// Where the new value came from; `None` if the slot was left as it was.
    pub origin: Option<Origin>,
    /// Whether any byte changed.
    pub changed: bool,
}

/// The result: bytes to write, what changed, and the re-verified report.
#[derive(Debug, Clone)]
pub struct Personalized {
    /// The bytes to write (compressed again for a gzip input).
    pub bytes: Vec<u8>,
    /// Every target, in key order.
    pub slots: Vec<SlotOutcome>,
    /// Facts worth knowing (never values).
    pub warnings: Vec<Warning>,
    /// The verification of the result.
    pub report: Report,
    /// The input's format name (`app-image`, `merged`, ...).
    pub format: &'static str,
    /// The chip the firmware is for, when known.
    pub chip: Option<crate::Chip>,
}

impl Personalized {
    /// Whether any written value is a secret (the output file gets mode 0600).
    pub fn holds_secrets(&self) -> bool {
        self.slots.iter().any(|s| s.secret && !s.value.is_empty())
    }
}

/// What [`check`] found: the targets, and whether the values would be accepted.
#[derive(Debug, Clone)]
pub struct Checked {
    /// One target per key.
    pub targets: Targets,
    /// Why the values would be refused (empty: they would be accepted).
    pub problems: Vec<Problem>,
    /// What a personalisation would warn about.
    pub warnings: Vec<Warning>,
}

/// Runs every check of [`personalize`] without writing anything: the targets of `input` and
/// the problems and warnings the values of `request` would give. `Err` only when the input
/// itself cannot be personalised (not firmware, invalid, signed).
pub fn check(input: &[u8], request: &Request) -> Result<Checked> {
    let fw = open(input, request)?;
    Ok(checked(&fw, request))
}

/// The targets of `fw` and every problem and warning the request's values give.
fn checked(fw: &Firmware<'_>, request: &Request) -> Checked {
    let values = latest_values(&request.values);
    let Found {
        targets,
        mut problems,
        mut warnings,
    } = targets::find(fw, &request.placeholders, request.conventions);
    warnings.extend(check_values(
        &targets,
        &values,
        request.allow_missing,
        &mut problems,
    ));
    check_required(&targets, &values, &mut problems);
    for t in targets.iter() {
        if t.kind == TargetKind::Placeholder && !values.contains_key(t.key.as_str()) {
            warnings.push(Warning::PlaceholderLeft { key: t.key.clone() });
        }
    }
    Checked {
        targets,
        problems,
        warnings,
    }
}

/// Personalises `input` (any format the engine knows) with `request`.
/// Nothing is returned unless every check passed and the result verifies.
pub fn personalize(input: &[u8], request: &Request) -> Result<Personalized> {
    let mut fw = Firmware::parse_with(input, request.parse.unwrap_or_default())?;
    // The input's SHA-256 digests are compared while sealing, in one pass with the new ones
    // (docs/benchmarks.md); a run that stops earlier compares them first, so an invalid input
    // is refused for that, as `check` refuses it.
    fw.check_valid_deferring_digests()?;
    let Checked {
        targets,
        problems,
        warnings,
    } = checked(&fw, request);
    if !problems.is_empty() {
        fw.check_deferred_digests()?;
        return Err(Error::Personalize { problems });
    }
    let values = latest_values(&request.values);
    let slots = match write_values(&mut fw, &targets, &values, request.pad) {
        Ok(slots) => slots,
        Err(e) => {
            fw.check_deferred_digests()?;
            return Err(e);
        }
    };
    let format = fw.format_name();
    let chip = fw.chip();
    let finished = fw.finish()?;
    Ok(Personalized {
        bytes: finished.bytes,
        slots,
        warnings,
        report: finished.report,
        format,
        chip,
    })
}

/// Parses the input; a damaged or signed file is refused for what is wrong with it, before its
/// slots and placeholders are looked for (a missing app holds none of them).
fn open<'a>(input: &'a [u8], request: &Request) -> Result<Firmware<'a>> {
    let mut fw = Firmware::parse_with(input, request.parse.unwrap_or_default())?;
    fw.check_valid()?;
    Ok(fw)
}

/// The value of each key: later assignments win (defaults < profile < command line).
fn latest_values(values: &[Assignment]) -> BTreeMap<&str, &Assignment> {
    values.iter().map(|a| (a.key.as_str(), a)).collect()
}

/// Checks each value against its target; returns the warnings.
fn check_values(
    targets: &Targets,
    values: &BTreeMap<&str, &Assignment>,
    allow_missing: bool,
    problems: &mut Vec<Problem>,
) -> Vec<Warning> {
    let mut warnings = Vec::new();
    for (&key, a) in values {
        let Some(t) = targets.get(key) else {
            // A placeholder that was not found (or was refused) is reported once, as such.
            if problems.iter().any(|p| p.key.as_deref() == Some(key)) {
                continue;
            }
            if allow_missing {
                warnings.push(Warning::IgnoredUnknownKey {
                    key: key.into(),
                    origin: a.origin.clone(),
                });
            } else {
                problems.push(Problem::new(
                    key,
                    ProblemKind::UnknownKey {
                        origin: a.origin.clone(),
                        known: targets.keys(),
                    },
                ));
            }
            continue;
        };
        if let Some(kind) = value_problem(key, a.value.expose(), t.capacity, t.kind, &a.origin) {
            problems.push(Problem::new(key, kind));
        }
        if t.secret && a.origin == Origin::CommandLine {
            warnings.push(Warning::SecretOnCommandLine { key: key.into() });
        }
    }
    warnings
}

/// What is wrong with `value` for a target of `capacity` bytes under `key`, if anything: the
/// rules every front end checks as the user types.
pub fn value_problem(
    key: &str,
    value: &str,
    capacity: usize,
    target: TargetKind,
    origin: &Origin,
) -> Option<ProblemKind> {
    if value.as_bytes().contains(&0) {
        return Some(ProblemKind::NulByte {
            origin: origin.clone(),
        });
    }
    if value.len() > capacity {
        return Some(ProblemKind::TooLong {
            len: value.len(),
            capacity,
            target,
            origin: origin.clone(),
        });
    }
    let rule = standard::standard(key)?.check(value).err()?;
    Some(ProblemKind::Rule {
        rule: rule.rule,
        len: rule.len,
        chars: rule.chars,
        origin: origin.clone(),
    })
}

/// Every required slot still in its default state must get a value.
fn check_required(
    targets: &Targets,
    values: &BTreeMap<&str, &Assignment>,
    problems: &mut Vec<Problem>,
) {
    for t in targets.iter() {
        if t.needs_value() && !values.contains_key(t.key.as_str()) {
            problems.push(Problem::new(&t.key, ProblemKind::Required));
        }
    }
}

/// Writes every assigned value into every copy of its target; returns what happened to each.
fn write_values(
    fw: &mut Firmware<'_>,
    targets: &Targets,
    values: &BTreeMap<&str, &Assignment>,
    pad: Pad,
) -> Result<Vec<SlotOutcome>> {
    // Targets were found in the boot space, so it exists whenever one is written.
    let boot = fw.spaces().into_iter().next();
    let mut outcomes = Vec::new();
    for t in targets.iter() {
        let assigned = values.get(t.key.as_str()).copied();
        let mut changed = false;
        if let (Some(a), Some(space)) = (assigned, &boot) {
            for &addr in &t.addrs {
                changed |= write_copy(fw, space, t, addr, a.value.expose(), pad)?;
            }
        }
        let (value, state) = match assigned {
            Some(a) if t.kind == TargetKind::Slot => {
                (a.value.expose().to_string(), SlotState::Patched)
            }
            Some(a) => (a.value.expose().to_string(), t.state),
            None => (t.current.clone(), t.state),
        };
        outcomes.push(SlotOutcome {
            key: t.key.clone(),
            kind: t.kind,
            capacity: t.capacity,
            flags: t.flag_names(),
            addresses: t.addrs.clone(),
            state,
            value: if t.secret {
                crate::values::mask(&value).to_string()
            } else {
                value
            },
            secret: t.secret,
            origin: assigned.map(|a| a.origin.clone()),
            changed,
        });
    }
    Ok(outcomes)
}

/// Writes one copy; returns whether any byte changed.
fn write_copy(
    fw: &mut Firmware<'_>,
    space: &AddressSpace,
    t: &Target,
    addr: u32,
    value: &str,
    pad: Pad,
) -> Result<bool> {
    let (at, new) = match t.kind {
        TargetKind::Slot => {
            let len = record::HEADER_LEN + record::value_field_len(t.capacity as u16);
            let current = fw.read(space, addr, len)?;
            (
                addr + record::OFFSET_STATE as u32,
                record::patched_tail(&current, t.capacity as u16, value),
            )
        }
        TargetKind::Placeholder => (addr, placeholder::fill(value, t.capacity, pad)),
    };
    let old = fw.read(space, at, new.len())?;
    if old == new {
        return Ok(false);
    }
    fw.patch(at, &new)?;
    Ok(true)
}
