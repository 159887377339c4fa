//! Where values go: the **targets** of a firmware file. Two kinds stand side by
//! side, with one key, capacity and secrecy rule for both:
//!
//! - **slots**: self-describing records the firmware declares (see
//!   `docs/slot-format.md`; [`record`] encodes and decodes them, [`scan`](mod@scan) finds
//!   them in any firmware);
//! - **placeholders**: literal text that firmware built in the predecessor's
//!   style holds where a value belongs ([`placeholder`]).
//!
//! [`find`] turns a parsed file and the placeholder mappings into one [`Target`]
//! per key (every copy of a slot merged), plus the [`Problem`]s found on the way.
//! A value then travels value → [`Target`] → load addresses ([`Target::addrs`])
//! → file bytes (the address space of [`Firmware`]).

pub mod convention;
pub mod placeholder;
pub mod record;
pub mod scan;
pub mod standard;

pub use convention::{Convention, ConventionChoice};
pub use placeholder::{Pad, Placeholder};
pub use record::{Decoded, SlotRecord, SlotState};
pub use scan::{FoundSlot, scan};

use crate::Firmware;
use crate::problem::{Problem, ProblemKind, Warning};
use crate::values::mask;
use serde::Serialize;
use std::collections::BTreeMap;

/// Which kind of target a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TargetKind {
    /// A slot record declared by the firmware.
    Slot,
    /// A literal placeholder in legacy firmware.
    Placeholder,
}

impl TargetKind {
    /// `slot` or `placeholder`.
    pub fn name(self) -> &'static str {
        match self {
            TargetKind::Slot => "slot",
            TargetKind::Placeholder => "placeholder",
        }
    }
}

impl std::fmt::Display for TargetKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One key of a firmware file and everything known about where its value goes.
#[derive(Clone, PartialEq, Eq)]
pub struct Target {
    /// The key values are given for.
    pub key: String,
    /// Slot or placeholder.
    pub kind: TargetKind,
    /// The largest value in bytes.
    pub capacity: usize,
    /// Slot flags (all copies OR-ed); 0 for placeholders.
    pub flags: u16,
    /// Secret: masked in every output (see [`is_secret`]).
    pub secret: bool,
    /// Load addresses of every copy (a slot the compiler duplicated, or the same
    /// record in several app partitions is written once per address here).
    pub addrs: Vec<u32>,
    /// File offsets of those copies (of the decompressed data), in the same order.
    pub offsets: Vec<usize>,
    /// The value the file holds now (for a placeholder: its literal). May be a
    /// secret: show it only through [`Target::shown_value`].
    pub current: String,
    /// As compiled, or written by a patcher (placeholders are always `Default`).
    pub state: SlotState,
    /// The placeholder's literal.
    pub literal: Option<String>,
    /// The convention that found the placeholder (`pythonpatcher`).
    pub convention: Option<&'static str>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target")
            .field("key", &self.key)
            .field("kind", &self.kind)
            .field("capacity", &self.capacity)
            .field("flags", &self.flags)
            .field("secret", &self.secret)
            .field("addrs", &self.addrs)
            .field("current", &self.shown_value())
            .field("state", &self.state)
            .finish()
    }
}

impl Target {
    /// Whether the firmware demands a value (REQUIRED flag, still in its default state).
    pub fn needs_value(&self) -> bool {
        self.flags & record::FLAG_REQUIRED != 0 && self.state == SlotState::Default
    }

    /// Whether the REQUIRED flag is set.
    pub fn required(&self) -> bool {
        self.flags & record::FLAG_REQUIRED != 0
    }

    /// The current value as every output may show it (masked when secret).
    pub fn shown_value(&self) -> String {
        if self.secret {
            mask(&self.current).to_string()
        } else {
            self.current.clone()
        }
    }

    /// Names of the flags that are set.
    pub fn flag_names(&self) -> Vec<String> {
        record::flag_names(self.flags)
    }

    /// The rule of a standard key, for forms and prompts.
    pub fn rule(&self) -> Option<&'static str> {
        standard::standard(&self.key).map(|k| k.rule)
    }
}

/// The one secrecy rule for slots: secret when the record carries the SECRET flag or the key
/// is a standard secret key (`wifi_password`, `thinger_credentials`), whatever the flag says:
/// firmware compiled without the flag must not make credentials print.
pub fn is_secret(key: &str, flags: u16) -> bool {
    flags & record::FLAG_SECRET != 0 || standard::standard(key).is_some_and(|k| k.secret)
}

/// The secrecy rule for placeholders, which carry no flags: marked secret by the mapping (a
/// convention marks its standard secret keys), or a key that names a secret (standard secret
/// keys, and names such as `mqtt_pass`: see [`standard::looks_secret`]).
pub fn placeholder_is_secret(p: &Placeholder) -> bool {
    p.secret || standard::looks_secret(&p.key)
}

/// What [`find`] found: one target per key, in key order.
#[derive(Debug, Clone, Default)]
pub struct Targets {
    /// By key.
    pub by_key: BTreeMap<String, Target>,
}

impl Targets {
    /// The target for `key`.
    pub fn get(&self, key: &str) -> Option<&Target> {
        self.by_key.get(key)
    }

    /// Every target, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &Target> {
        self.by_key.values()
    }

    /// The keys, in order.
    pub fn keys(&self) -> Vec<String> {
        self.by_key.keys().cloned().collect()
    }

    /// Whether there is no target at all.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// What [`find`] found.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// One target per key.
    pub targets: Targets,
    /// Damaged records, a key declared with two capacities, placeholders missing, repeated
    /// or overlapping, a key that is both, or nothing at all to personalise.
    pub problems: Vec<Problem>,
    /// Placeholder literals that look cut short.
    pub warnings: Vec<Warning>,
}

/// Finds every slot record in the boot space of `fw`, the placeholders of `conventions` (by
/// default: every known convention, when the file declares no slots) and of `placeholders`
/// (explicit mappings win over a convention's for the same key), and merges them into one
/// target per key. A listing shows the problems beside the targets; a personalisation
/// refuses on any.
pub fn find(
    fw: &Firmware<'_>,
    placeholders: &[Placeholder],
    conventions: ConventionChoice,
) -> Found {
    let mut found = Found::default();
    for hit in scan(fw) {
        let (addr, offset) = (hit.addr, hit.offset);
        match hit.decoded {
            Decoded::Slot(s) => add_slot(&mut found, s, addr, offset),
            Decoded::UnknownVersion { version } => found.problems.push(Problem {
                key: None,
                kind: ProblemKind::UnknownRecordVersion {
                    address: addr,
                    offset,
                    version,
                },
            }),
            Decoded::Malformed { reason } => found.problems.push(Problem {
                key: None,
                kind: ProblemKind::DamagedRecord {
                    address: addr,
                    offset,
                    reason,
                },
            }),
        }
    }
    let has_slots = !found.targets.is_empty();
    let chosen: Vec<&'static Convention> = match conventions {
        ConventionChoice::None => Vec::new(),
        ConventionChoice::Auto if has_slots => Vec::new(),
        ConventionChoice::Auto => convention::CONVENTIONS.to_vec(),
        ConventionChoice::Only(c) => vec![c],
    };
    let mut all: Vec<Placeholder> = Vec::new();
    for c in chosen {
        let (mapped, problems) = convention::placeholders(fw, c);
        found.problems.extend(problems);
        all.extend(mapped.into_iter().filter(|p| {
            // A convention steps aside for a slot and for an explicit mapping of the same key.
            !found.targets.by_key.contains_key(&p.key)
                && !placeholders.iter().any(|q| q.key == p.key)
        }));
    }
    all.extend(placeholders.iter().cloned());
    for p in &all {
        add_placeholder(&mut found, fw, p);
    }
    check_overlaps(&mut found);
    if found.targets.is_empty() && found.problems.is_empty() {
        found.problems.push(Problem {
            key: None,
            kind: ProblemKind::NothingToPersonalize,
        });
    }
    found
}

fn add_placeholder(found: &mut Found, fw: &Firmware<'_>, p: &Placeholder) {
    if found.targets.by_key.contains_key(&p.key) {
        found
            .problems
            .push(Problem::new(&p.key, ProblemKind::SlotAndPlaceholder));
        return;
    }
    let occ = placeholder::occurrences(fw, p.literal.as_bytes());
    match occ.as_slice() {
        [] => found.problems.push(Problem::new(
            &p.key,
            ProblemKind::PlaceholderNotFound {
                literal: p.literal.clone(),
            },
        )),
        [one] => {
            if p.convention.is_none() && one.spaces_after > 0 {
                found.warnings.push(Warning::PlaceholderPrefix {
                    key: p.key.clone(),
                    len: p.literal.len(),
                    spaces: one.spaces_after,
                });
            }
            found.targets.by_key.insert(
                p.key.clone(),
                Target {
                    key: p.key.clone(),
                    kind: TargetKind::Placeholder,
                    capacity: p.literal.len(),
                    flags: 0,
                    secret: placeholder_is_secret(p),
                    addrs: vec![one.addr],
                    offsets: vec![one.offset],
                    current: p.literal.clone(),
                    state: SlotState::Default,
                    literal: Some(p.literal.clone()),
                    convention: p.convention,
                },
            );
        }
        many => found.problems.push(Problem::new(
            &p.key,
            ProblemKind::PlaceholderRepeated {
                literal: p.literal.clone(),
                at: many.iter().map(|o| (o.offset, o.addr)).collect(),
            },
        )),
    }
}

/// Two placeholders over the same bytes (the same literal, or one inside the other): the
/// report would name both values as written while the bytes hold only the last.
fn check_overlaps(found: &mut Found) {
    let spans: Vec<(&str, u32, u32, usize)> = found
        .targets
        .iter()
        .filter(|t| t.kind == TargetKind::Placeholder)
        .map(|t| {
            let a = t.addrs[0];
            (t.key.as_str(), a, a + t.capacity as u32, t.offsets[0])
        })
        .collect();
    for (i, a) in spans.iter().enumerate() {
        for b in &spans[i + 1..] {
            if a.1 < b.2 && b.1 < a.2 {
                let offset = if a.1 >= b.1 { a.3 } else { b.3 };
                found.problems.push(Problem::new(
                    a.0,
                    ProblemKind::PlaceholdersOverlap {
                        other: b.0.to_string(),
                        offset,
                    },
                ));
            }
        }
    }
}

fn add_slot(found: &mut Found, s: SlotRecord, addr: u32, offset: usize) {
    let Found {
        targets, problems, ..
    } = found;
    match targets.by_key.get_mut(&s.key) {
        Some(t) if t.capacity == s.capacity as usize => {
            // A key is secret if any of its copies says so.
            t.flags |= s.flags;
            t.secret |= is_secret(&s.key, s.flags);
            t.addrs.push(addr);
            t.offsets.push(offset);
        }
        Some(t) => problems.push(Problem::new(
            &s.key,
            ProblemKind::CapacityConflict {
                first: (t.addrs[0], t.capacity),
                second: (addr, s.capacity as usize),
            },
        )),
        None => {
            targets.by_key.insert(
                s.key.clone(),
                Target {
                    key: s.key.clone(),
                    kind: TargetKind::Slot,
                    capacity: s.capacity as usize,
                    flags: s.flags,
                    secret: is_secret(&s.key, s.flags),
                    addrs: vec![addr],
                    offsets: vec![offset],
                    current: s.value,
                    state: s.state,
                    literal: None,
                    convention: None,
                },
            );
        }
    }
}
