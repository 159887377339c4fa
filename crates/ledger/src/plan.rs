//! Checks a job's input before anything is reserved, listing every problem at
//! once, and turns it into the identities to record.

use crate::engine::{Value, check_rule};
use crate::error::Problem;
use crate::identity::{IdentitySource, JobSpec, Target, random_string};
use crate::template::Template;
use std::collections::{BTreeMap, BTreeSet};

/// The most identities one generated job may plan.
pub const MAX_GENERATED: u64 = 1_000_000;
/// How many failing examples of one kind are listed before "and N more".
const EXAMPLES: usize = 5;

/// One identity from a CSV row, with the profile and generated values merged.
#[derive(Debug)]
pub(crate) struct PlannedRow {
    pub row: usize,
    pub device: String,
    /// Every value to store, slot keys only, in slot order.
    pub values: Vec<(String, Value)>,
    /// The keys whose values came from the CSV (compared on a re-run).
    pub from_csv: BTreeSet<String>,
}

/// What a job issues.
#[derive(Debug)]
pub(crate) enum Planned {
    Csv(Vec<PlannedRow>),
    Generated {
        template: Template,
        start: u64,
        count: u64,
    },
}

/// The checked input: identities, or the problems that stop the job.
pub(crate) struct Plan {
    pub planned: Option<Planned>,
    pub problems: Vec<Problem>,
}

/// Why `value` cannot go into slot `key`, without repeating the value.
pub(crate) fn value_problem(spec: &JobSpec, key: &str, value: &str) -> Option<String> {
    let slot = spec.slot(key)?;
    if value.as_bytes().contains(&0) {
        return Some(format!("the value of {key} contains a NUL byte"));
    }
    if value.len() > slot.capacity {
        return Some(format!(
            "the value of {key} is {} bytes, the slot holds at most {}; shorten it",
            value.len(),
            slot.capacity
        ));
    }
    check_rule(key, value).err()
}

/// Why `id` cannot be a device id when the device key is not a slot.
fn bare_id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        Some("the device id is empty".into())
    } else if id.len() > 64 || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Some("a device id must be 1 to 64 characters without spaces or control characters".into())
    } else {
        None
    }
}

fn id_problem(spec: &JobSpec, id: &str) -> Option<String> {
    if spec.slot(&spec.device_key).is_some() {
        if id.is_empty() {
            return Some("the device id is empty".into());
        }
        value_problem(spec, &spec.device_key, id)
    } else {
        bare_id_problem(id)
    }
}

/// Checks everything that does not need the ledger.
pub(crate) fn check(spec: &JobSpec) -> Plan {
    let mut problems = Vec::new();
    if spec.name.trim().is_empty() {
        problems.push(Problem::general("the job has no name; give it one"));
    }
    if spec.device_key.is_empty() {
        problems.push(Problem::general("the device key is empty; name the slot that holds the device id (usually thinger_device)"));
    }
    let slot_keys: Vec<&str> = spec.slots.iter().map(|s| s.key.as_str()).collect();
    let slot_list = if slot_keys.is_empty() {
        "none".to_string()
    } else {
        slot_keys.join(", ")
    };

    let mut profile: BTreeMap<&str, &Value> = BTreeMap::new();
    for (key, value) in &spec.profile {
        if key == &spec.device_key {
            continue; // the id is per device
        }
        if spec.slot(key).is_none() {
            problems.push(Problem {
                row: None,
                column: Some(key.clone()),
                message: format!(
                    "the profile value {key} matches no slot of the firmware (slots: {slot_list}); drop it"
                ),
            });
        } else if let Some(p) = value_problem(spec, key, value.expose()) {
            problems.push(Problem {
                row: None,
                column: Some(key.clone()),
                message: format!("profile: {p}"),
            });
        }
        profile.insert(key, value);
    }

    let mut credentials = BTreeMap::new();
    for c in &spec.credentials {
        let Some(slot) = spec.slot(&c.key) else {
            problems.push(Problem::general(format!(
                "generated credential {} matches no slot of the firmware (slots: {slot_list})",
                c.key
            )));
            continue;
        };
        let alphabet = c.alphabet.chars();
        let distinct: BTreeSet<u8> = alphabet.iter().copied().collect();
        if alphabet.len() < 2
            || distinct.len() != alphabet.len()
            || alphabet.iter().any(|b| !b.is_ascii_graphic())
        {
            problems.push(Problem::general(format!(
                "generated credential {}: the alphabet must be at least 2 distinct printable ASCII characters",
                c.key
            )));
            continue;
        }
        let len = c.length.unwrap_or(slot.capacity);
        if len == 0 || len > slot.capacity {
            problems.push(Problem::general(format!(
                "generated credential {}: length {len} is outside 1..={} (the slot's capacity)",
                c.key, slot.capacity
            )));
            continue;
        }
        // A sample shows whether this length and alphabet can satisfy the slot's rule.
        match random_string(len, &alphabet) {
            Ok(sample) => {
                if let Some(p) = value_problem(spec, &c.key, &sample) {
                    problems.push(Problem::general(format!(
                        "generated credential {} ({len} characters): {p}; give a length or alphabet that fits",
                        c.key
                    )));
                    continue;
                }
            }
            Err(e) => problems.push(Problem::general(e.to_string())),
        }
        credentials.insert(c.key.as_str(), (len, alphabet));
    }

    let planned = match &spec.source {
        IdentitySource::Csv(csv) => {
            check_csv(spec, &csv.text, &profile, &credentials, &mut problems).map(Planned::Csv)
        }
        IdentitySource::Generate(g) => {
            let mut sources: BTreeSet<&str> = profile.keys().copied().collect();
            sources.extend(credentials.keys().copied());
            sources.insert(spec.device_key.as_str());
            missing(spec, &sources, &mut problems);
            check_generator(spec, g, &mut problems)
        }
    };
    Plan { planned, problems }
}

/// Required slots that nothing gives a value.
fn missing(spec: &JobSpec, given: &BTreeSet<&str>, problems: &mut Vec<Problem>) {
    for s in spec.slots.iter().filter(|s| s.required) {
        if !given.contains(s.key.as_str()) {
            problems.push(Problem {
                row: Some(1).filter(|_| matches!(spec.source, IdentitySource::Csv(_))),
                column: Some(s.key.clone()),
                message: format!(
                    "column {} is missing: the firmware requires it and no profile value or generated credential gives it",
                    s.key
                ),
            });
        }
    }
}

fn check_generator(
    spec: &JobSpec,
    g: &crate::identity::Generator,
    problems: &mut Vec<Problem>,
) -> Option<Planned> {
    let template = match Template::parse(&g.template, &g.vars) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem::general(e));
            return None;
        }
    };
    let before = problems.len();
    if g.count == 0 {
        problems.push(Problem::general(
            "the job generates 0 identities; give a count of at least 1",
        ));
    }
    if g.count > MAX_GENERATED {
        problems.push(Problem::general(format!(
            "the job generates {} identities; at most {MAX_GENERATED} per job",
            g.count
        )));
    }
    if g.start.checked_add(g.count).is_none() {
        problems.push(Problem::general(
            "start + count overflows; use a smaller start",
        ));
    }
    if g.count > 1 && !template.distinct() {
        problems.push(Problem::general(format!(
            "device-id template {template:?} gives every device the same id; add {{n}} or {{mac}}"
        )));
    }
    if template.uses_mac() && spec.target == Target::Files {
        problems.push(Problem::general(format!(
            "device-id template {template:?} uses {{mac}}, but a run that writes files has no board MAC; use {{n}}"
        )));
    }
    if problems.len() > before {
        return None;
    }
    let sample_mac = crate::board::Mac([0xff; 6]);
    let mut bad = Vec::new();
    let ns: Box<dyn Iterator<Item = u64>> = if template.uses_n() {
        Box::new(g.start..g.start + g.count)
    } else {
        Box::new(std::iter::once(g.start))
    };
    let mut bad_count = 0usize;
    for n in ns {
        let id = template.render(n, Some(sample_mac)).unwrap_or_default();
        if let Some(p) = id_problem(spec, &id) {
            bad_count += 1;
            if bad.len() < EXAMPLES {
                bad.push(format!("{id:?}: {p}"));
            }
        }
    }
    if bad_count > 0 {
        let more = if bad_count > bad.len() {
            format!("; and {} more", bad_count - bad.len())
        } else {
            String::new()
        };
        problems.push(Problem::general(format!(
            "device-id template {template:?} makes ids the device slot refuses: {}{more}",
            bad.join("; ")
        )));
        return None;
    }
    Some(Planned::Generated {
        template,
        start: g.start,
        count: g.count,
    })
}

/// Values for one device: profile, then generated credentials, then `own`
/// (CSV cells), then the device id; slot keys only, in slot order.
pub(crate) fn merge_values(
    spec: &JobSpec,
    device: &str,
    own: &BTreeMap<String, String>,
) -> crate::Result<Vec<(String, Value)>> {
    let mut out = Vec::new();
    for slot in &spec.slots {
        let key = slot.key.as_str();
        let value = if key == spec.device_key {
            Some(device.to_string())
        } else if let Some(v) = own.get(key) {
            Some(v.clone())
        } else if let Some(c) = spec.credentials.iter().find(|c| c.key == key) {
            let len = c.length.unwrap_or(slot.capacity);
            Some(random_string(len, &c.alphabet.chars())?)
        } else {
            spec.profile
                .iter()
                .rev()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.expose().to_string())
        };
        if let Some(v) = value {
            out.push((key.to_string(), Value::new(v)));
        }
    }
    Ok(out)
}

fn check_csv(
    spec: &JobSpec,
    text: &str,
    profile: &BTreeMap<&str, &Value>,
    credentials: &BTreeMap<&str, (usize, Vec<u8>)>,
    problems: &mut Vec<Problem>,
) -> Option<Vec<PlannedRow>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text); // spreadsheet BOM
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut records = reader.byte_records();
    let header = match records.next() {
        None => {
            problems.push(Problem::general(
                "the CSV is empty; it needs a header row of slot keys and one row per device",
            ));
            return None;
        }
        Some(Err(e)) => {
            problems.push(Problem::at(1, None, format!("unreadable header: {e}")));
            return None;
        }
        Some(Ok(h)) => h,
    };
    let mut columns: Vec<String> = Vec::new();
    let mut header_ok = true;
    for (i, raw) in header.iter().enumerate() {
        let name = String::from_utf8_lossy(raw).trim().to_string();
        if name.is_empty() {
            problems.push(Problem::at(
                1,
                None,
                format!("column {} has no name", i + 1),
            ));
            header_ok = false;
        } else if columns.contains(&name) {
            problems.push(Problem::at(
                1,
                Some(&name),
                format!("column {name} appears twice"),
            ));
            header_ok = false;
        } else if name != spec.device_key && spec.slot(&name).is_none() {
            problems.push(Problem::at(
                1,
                Some(&name),
                format!(
                    "unknown column {name}: the firmware has no such slot (slots: {}); rename or drop the column",
                    spec.slots
                        .iter()
                        .map(|s| s.key.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        columns.push(name);
    }
    if !columns.contains(&spec.device_key) {
        problems.push(Problem::at(
            1,
            Some(&spec.device_key),
            format!(
                "column {} is missing: it gives each device its id",
                spec.device_key
            ),
        ));
        header_ok = false;
    }
    let mut given: BTreeSet<&str> = columns.iter().map(String::as_str).collect();
    given.extend(profile.keys().copied());
    given.extend(credentials.keys().copied());
    missing(spec, &given, problems);

    let mut rows = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for rec in records {
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                let row = e.position().map_or(0, |p| p.line() as usize);
                problems.push(Problem::at(row, None, format!("unreadable row: {e}")));
                continue;
            }
        };
        let row = rec.position().map_or(0, |p| p.line() as usize);
        if rec.iter().all(|f| f.is_empty()) {
            continue; // a trailing ",,," line from a spreadsheet
        }
        if rec.len() != columns.len() {
            problems.push(Problem::at(
                row,
                None,
                format!(
                    "has {} fields, the header has {}; quote fields that contain commas",
                    rec.len(),
                    columns.len()
                ),
            ));
            continue;
        }
        let mut own = BTreeMap::new();
        let mut row_ok = true;
        for (col, raw) in columns.iter().zip(rec.iter()) {
            let Ok(value) = std::str::from_utf8(raw) else {
                problems.push(Problem::at(
                    row,
                    Some(col),
                    "not valid UTF-8; save the CSV as UTF-8",
                ));
                row_ok = false;
                continue;
            };
            if col == &spec.device_key {
                if let Some(p) = id_problem(spec, value) {
                    problems.push(Problem::at(row, Some(col), p));
                    row_ok = false;
                }
            } else if let Some(p) = value_problem(spec, col, value) {
                problems.push(Problem::at(row, Some(col), p));
                row_ok = false;
            }
            own.insert(col.clone(), value.to_string());
        }
        let device = own.remove(&spec.device_key).unwrap_or_default();
        if !device.is_empty() {
            if let Some(first) = seen.get(&device) {
                problems.push(Problem::at(
                    row,
                    Some(&spec.device_key),
                    format!(
                        "device id {device} is also in row {first}; every device needs its own id"
                    ),
                ));
                row_ok = false;
            } else {
                seen.insert(device.clone(), row);
            }
        }
        if row_ok && header_ok {
            let from_csv = own.keys().cloned().collect();
            match merge_values(spec, &device, &own) {
                Ok(values) => rows.push(PlannedRow {
                    row,
                    device,
                    values,
                    from_csv,
                }),
                Err(e) => problems.push(Problem::at(row, None, e.to_string())),
            }
        }
    }
    if seen.is_empty() && header_ok {
        problems.push(Problem::general("the CSV has a header but no device rows"));
    }
    Some(rows)
}
