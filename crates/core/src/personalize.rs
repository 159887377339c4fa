//! The one call that personalises firmware: resolved values in, patched,
//! re-sealed and re-verified bytes out. The CLI, the cargo subcommand, the
//! PlatformIO script and tests all go through [`personalize`].

use crate::error::{Error, Result};
use crate::placeholder::{self, Pad, Placeholder};
use crate::report::Report;
use crate::slot::record::{self, Decoded, SlotState};
use crate::slot::{scan, standard};
use crate::space::AddressSpace;
use crate::values::{Assignment, Origin, mask};
use crate::{Firmware, ParseOptions};
use serde::Serialize;
use std::collections::BTreeMap;

/// What to personalise and how.
#[derive(Debug, Clone, Default)]
pub struct Request {
    /// Values by key; a later assignment of the same key wins.
    pub values: Vec<Assignment>,
    pub placeholders: Vec<Placeholder>,
    pub pad: Pad,
    /// Ignore (with a warning) values whose key matches no slot.
    pub allow_missing: bool,
    pub parse: Option<ParseOptions>,
}

/// What happened to one slot or placeholder. `value` is masked for secrets.
#[derive(Debug, Clone, Serialize)]
pub struct SlotOutcome {
    pub key: String,
    /// `slot` or `placeholder`.
    pub kind: &'static str,
    pub capacity: usize,
    pub flags: Vec<String>,
    /// Load addresses of every copy written (several for duplicates).
    pub addresses: Vec<u32>,
    pub state: SlotState,
    pub value: String,
    pub secret: bool,
    /// Where the new value came from; `None` if the slot was left as it was.
    pub origin: Option<Origin>,
    pub changed: bool,
}

/// The result: bytes to write, what changed, and the re-verified report.
#[derive(Debug, Clone)]
pub struct Personalized {
    pub bytes: Vec<u8>,
    pub slots: Vec<SlotOutcome>,
    pub warnings: Vec<String>,
    pub report: Report,
    pub format: &'static str,
    pub chip: Option<crate::Chip>,
}

impl Personalized {
    /// Whether any written value is a secret (the output file gets mode 0600).
    pub fn holds_secrets(&self) -> bool {
        self.slots.iter().any(|s| s.secret && !s.value.is_empty())
    }
}

/// A writable target: a slot record (all its copies) or a placeholder.
struct Target {
    kind: &'static str,
    capacity: usize,
    flags: u16,
    secret: bool,
    addrs: Vec<u32>,
    current: String,
    state: SlotState,
}

/// Personalises `input` (any format the engine knows) with `request`.
/// Nothing is returned unless every check passed and the result verifies.
pub fn personalize(input: &[u8], request: &Request) -> Result<Personalized> {
    let mut fw = Firmware::parse_with(input, request.parse.unwrap_or_default())?;
    // A damaged file is refused for what is wrong with it, before its slots
    // and placeholders are looked for (a missing app holds none of them).
    fw.check_valid()?;
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let mut targets: BTreeMap<String, Target> = BTreeMap::new();

    for found in scan(&fw) {
        match found.decoded {
            Decoded::Slot(s) => {
                let addr = found.addr;
                match targets.get_mut(&s.key) {
                    Some(t) if t.capacity == s.capacity as usize => {
                        // A key is secret if any of its copies says so.
                        t.flags |= s.flags;
                        t.secret |= s.is_secret();
                        t.addrs.push(addr);
                    }
                    Some(t) => problems.push(format!(
                        "slot {} is declared twice with different capacities ({} at {:#010x} and {} at {addr:#010x}); give one of the declarations another key",
                        s.key, t.capacity, t.addrs[0], s.capacity
                    )),
                    None => {
                        targets.insert(
                            s.key.clone(),
                            Target {
                                kind: "slot",
                                capacity: s.capacity as usize,
                                flags: s.flags,
                                secret: crate::slot::is_secret(&s.key, s.flags),
                                addrs: vec![addr],
                                state: s.state,
                                current: s.value,
                            },
                        );
                    }
                }
            }
            Decoded::UnknownVersion { version } => problems.push(format!(
                "the slot record at address {:#010x} (file offset {:#x}) has format version {version}; this thinger-patch understands version {}: upgrade thinger-patch",
                found.addr,
                found.offset,
                record::VERSION
            )),
            Decoded::Malformed { reason } => problems.push(format!(
                "the slot record at address {:#010x} (file offset {:#x}) is damaged ({reason}); rebuild the firmware",
                found.addr, found.offset
            )),
        }
    }

    for p in &request.placeholders {
        if targets.contains_key(&p.key) {
            problems.push(format!(
                "key {} is both a slot and a placeholder; drop the placeholder mapping",
                p.key
            ));
            continue;
        }
        let occ = placeholder::occurrences(&fw, p.literal.as_bytes());
        match occ.as_slice() {
            [] => problems.push(format!(
                "placeholder for {} ({:?}, {} bytes) does not occur in the patchable data; check the literal (spaces count) or whether the file was patched already",
                p.key,
                p.literal,
                p.literal.len()
            )),
            [one] => {
                targets.insert(
                    p.key.clone(),
                    Target {
                        kind: "placeholder",
                        capacity: p.literal.len(),
                        flags: 0,
                        secret: standard::looks_secret(&p.key),
                        addrs: vec![one.addr],
                        current: p.literal.clone(),
                        state: SlotState::Default,
                    },
                );
            }
            many => problems.push(format!(
                "placeholder for {} ({:?}) occurs {} times, it must occur exactly once: {}; use a longer, unique literal",
                p.key,
                p.literal,
                many.len(),
                many.iter()
                    .map(|o| format!("file offset {:#x} (address {:#010x})", o.offset, o.addr))
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    // Later assignments win (defaults < profile < command line).
    let mut values: BTreeMap<&str, &Assignment> = BTreeMap::new();
    for a in &request.values {
        values.insert(a.key.as_str(), a);
    }
    for (key, a) in &values {
        let Some(t) = targets.get(*key) else {
            let known = targets.keys().cloned().collect::<Vec<_>>().join(", ");
            let msg = format!(
                "no slot or placeholder named {key} in this firmware (value from {}); slots here: {}",
                a.origin,
                if known.is_empty() { "none" } else { &known }
            );
            if request.allow_missing {
                warnings.push(format!("{msg}; ignored (--allow-missing)"));
            } else {
                problems.push(format!("{msg}; fix the key, or pass --allow-missing"));
            }
            continue;
        };
        let v = a.value.expose();
        if v.as_bytes().contains(&0) {
            problems.push(format!(
                "slot {key}: the value contains a NUL byte (from {})",
                a.origin
            ));
        } else if v.len() > t.capacity {
            problems.push(format!(
                "slot {key}: the value is {} bytes, the slot holds at most {} (from {}); shorten it or give the slot a larger capacity in the firmware",
                v.len(),
                t.capacity,
                a.origin
            ));
        } else if let Some(std_key) = standard::standard(key)
            && let Err(e) = std_key.check(v)
        {
            problems.push(format!("slot {key}: {e} (from {})", a.origin));
        }
        if t.secret && a.origin == Origin::CommandLine {
            warnings.push(format!(
                "slot {key} is secret but was given with --set, which shows in process lists and shell history; prefer --set-env {key}=VAR or a {{ prompt = true }} profile value"
            ));
        }
    }
    for (key, t) in &targets {
        if t.flags & record::FLAG_REQUIRED != 0
            && t.state == SlotState::Default
            && !values.contains_key(key.as_str())
        {
            problems.push(format!(
                "slot {key} is required and has no value yet; give it in a profile, with --set {key}=... or --set-env {key}=VAR"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(Error::Personalize { problems });
    }

    // Targets were found in the boot space, so it exists whenever one is written.
    let boot = fw.spaces().into_iter().next();
    let mut outcomes = Vec::new();
    for (key, t) in &targets {
        let assigned = values.get(key.as_str());
        let mut changed = false;
        if let (Some(a), Some(space)) = (assigned, &boot) {
            let v = a.value.expose();
            for &addr in &t.addrs {
                changed |= write_target(&mut fw, space, t, addr, v, request.pad)?;
            }
        }
        let (value, state) = match assigned {
            Some(a) => (
                a.value.expose().to_string(),
                if t.kind == "slot" {
                    SlotState::Patched
                } else {
                    t.state
                },
            ),
            None => (t.current.clone(), t.state),
        };
        outcomes.push(SlotOutcome {
            key: key.clone(),
            kind: t.kind,
            capacity: t.capacity,
            flags: record::flag_names(t.flags),
            addresses: t.addrs.clone(),
            state,
            value: if t.secret {
                mask(&value).to_string()
            } else {
                value
            },
            secret: t.secret,
            origin: assigned.map(|a| a.origin.clone()),
            changed,
        });
    }
    let format = fw.format_name();
    let chip = fw.chip();
    let finished = fw.finish()?;
    Ok(Personalized {
        bytes: finished.bytes,
        slots: outcomes,
        warnings,
        report: finished.report,
        format,
        chip,
    })
}

/// Writes one copy; returns whether any byte changed.
fn write_target(
    fw: &mut Firmware,
    space: &AddressSpace,
    t: &Target,
    addr: u32,
    value: &str,
    pad: Pad,
) -> Result<bool> {
    let (at, new) = if t.kind == "slot" {
        let len = record::HEADER_LEN + record::value_field_len(t.capacity as u16);
        let current = fw.read(space, addr, len)?;
        (
            addr + record::OFFSET_STATE as u32,
            record::patched_tail(&current, t.capacity as u16, value),
        )
    } else {
        (addr, placeholder::fill(value, t.capacity, pad))
    };
    let old = fw.read(space, at, new.len())?;
    if old == new {
        return Ok(false);
    }
    fw.patch(at, &new)?;
    Ok(true)
}
