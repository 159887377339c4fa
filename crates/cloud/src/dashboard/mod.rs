//! Dashboard templates: read (JSON, or JSON in C string literals as the
//! predecessor's `z_Thinger.*.h` files), personalise (JSON-aware: string values
//! only), bring to what the API accepts, validate against its schema, and push.

pub mod c_literal;

use std::path::Path;

use md5::{Digest, Md5};
use serde_json::{Map, Value};

use crate::client::Client;
use crate::error::Error;
use crate::http::{Body, Method, Request, percent_encode};

/// Keys the dashboard schema allows (`additionalProperties: false`).
pub const ALLOWED_KEYS: &[&str] = &[
    "dashboard",
    "name",
    "description",
    "widgets",
    "tabs",
    "controls",
    "properties",
];

/// The predecessor's padded placeholders and what they stand for in its
/// dashboard templates. `CLOUDNAM` is the USER there (it fills the widgets'
/// `"user"` fields), unlike in its firmware of the newer generation.
const PADDED: &[(&str, Field)] = &[
    ("DEVCNAME", Field::Device),
    ("CLOUDNAM", Field::User),
    ("DEVCUSER", Field::User),
];

/// A padded placeholder is its keyword followed by spaces up to this width at
/// most (the predecessor padded to 16, later to 24 characters).
const PADDED_WIDTH: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Device,
    User,
    Host,
    Name,
}

/// The values a template is personalised with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Substitutions {
    /// `{{device}}`, `DEVCNAME…`.
    pub device: String,
    /// `{{user}}`, `CLOUDNAM…`, `DEVCUSER…`.
    pub user: String,
    /// `{{host}}`.
    pub host: String,
    /// `{{name}}`: the device's display name (its id when it has none).
    pub name: String,
}

impl Substitutions {
    fn get(&self, f: Field) -> &str {
        match f {
            Field::Device => &self.device,
            Field::User => &self.user,
            Field::Host => &self.host,
            Field::Name => &self.name,
        }
    }
}

/// What to do with keys the API's schema does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnknownKeys {
    /// Remove them, with a warning each.
    Strip,
    /// Refuse the template.
    Refuse,
}

/// A dashboard template, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    /// Its name (the file's stem without `z_Thinger.`), part of the dashboard id.
    pub name: String,
    /// Where it came from, for messages.
    pub source: String,
    /// The dashboard JSON.
    pub json: Value,
}

/// A personalised dashboard, ready to send (or to write out, offline).
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedDashboard {
    /// The dashboard id (`^[a-zA-Z0-9_]{1,32}$`).
    pub id: String,
    /// The body for `POST /v1/users/{user}/dashboards`.
    pub json: Value,
    /// Placeholders replaced.
    pub replaced: usize,
    /// What was changed or looks wrong.
    pub warnings: Vec<String>,
}

impl Template {
    /// Reads a `.json`, `.h`/`.hpp` or `.txt` template.
    pub fn from_file(path: &Path) -> Result<Template, Error> {
        let label = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| Error::Io {
            path: label.clone(),
            message: e.to_string(),
        })?;
        let text = String::from_utf8(bytes).map_err(|e| Error::Template {
            file: label.clone(),
            message: format!("not UTF-8 text (byte {})", e.utf8_error().valid_up_to()),
        })?;
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        Template::parse(&template_name(&file), &label, &text)
    }

    /// Parses template text: JSON when it starts with `{`, else C/C++ source whose
    /// string literals hold the JSON.
    pub fn parse(name: &str, source: &str, text: &str) -> Result<Template, Error> {
        let err = |message: String| Error::Template {
            file: source.to_string(),
            message,
        };
        let text = text.trim_start_matches('\u{feff}');
        let json = if text.trim_start().starts_with('{') {
            serde_json::from_str::<Value>(text).map_err(|e| err(format!("not valid JSON: {e}")))?
        } else {
            let groups = c_literal::string_literals(text).map_err(err)?;
            if groups.is_empty() {
                return Err(err("neither JSON nor C source with string literals".into()));
            }
            let all: String = groups.iter().map(|g| g.text.as_str()).collect();
            match serde_json::from_str::<Value>(&all) {
                Ok(v) if v.is_object() => v,
                whole => {
                    let parsed: Vec<(usize, Value)> = groups
                        .iter()
                        .filter_map(|g| {
                            serde_json::from_str::<Value>(&g.text)
                                .ok()
                                .filter(Value::is_object)
                                .map(|v| (g.line, v))
                        })
                        .collect();
                    match parsed.len() {
                        1 => parsed.into_iter().next().expect("one").1,
                        0 => {
                            let why = whole
                                .err()
                                .map(|e| e.to_string())
                                .unwrap_or_else(|| "not an object".into());
                            return Err(err(format!(
                                "its string literals (from line {}) do not hold a JSON object: {why}",
                                groups[0].line
                            )));
                        }
                        _ => {
                            let lines: Vec<String> =
                                parsed.iter().map(|(l, _)| l.to_string()).collect();
                            return Err(err(format!(
                                "holds several JSON documents (lines {}); put one dashboard per file",
                                lines.join(", ")
                            )));
                        }
                    }
                }
            }
        };
        if !json.is_object() {
            return Err(err("the dashboard JSON must be an object".into()));
        }
        Ok(Template {
            name: name.to_string(),
            source: source.to_string(),
            json,
        })
    }

    /// Personalises the template for one device: substitution in string values
    /// only, the id derived from the template name and the device, the keys
    /// brought to what the API accepts, and the schema checked.
    pub fn personalize(
        &self,
        subs: &Substitutions,
        unknown: UnknownKeys,
    ) -> Result<PreparedDashboard, Error> {
        let id = dashboard_id(&self.name, &subs.device);
        let mut json = self.json.clone();
        let mut replaced = 0;
        substitute_value(&mut json, subs, &mut replaced);
        let mut warnings = Vec::new();
        if replaced == 0 {
            warnings.push(format!(
                "{}: no placeholder ({{{{device}}}}, {{{{user}}}}, DEVCNAME, CLOUDNAM, DEVCUSER) found; \
                 every device gets the same dashboard",
                self.source
            ));
        }
        let obj = json.as_object_mut().expect("checked at parse");
        let unknown_keys: Vec<String> = obj
            .keys()
            .filter(|k| !ALLOWED_KEYS.contains(&k.as_str()))
            .cloned()
            .collect();
        for k in unknown_keys {
            match unknown {
                UnknownKeys::Strip => {
                    obj.shift_remove(&k);
                    warnings.push(format!(
                        "{}: removed key $.{k}: the dashboard API does not accept it",
                        self.source
                    ));
                }
                UnknownKeys::Refuse => {
                    return Err(Error::Schema {
                        dashboard: id,
                        path: format!("$.{k}"),
                        message: format!(
                            "key not allowed (the API accepts {})",
                            ALLOWED_KEYS.join(", ")
                        ),
                    });
                }
            }
        }
        // The id goes first, as in the API's examples.
        let mut out = Map::new();
        out.insert("dashboard".into(), Value::String(id.clone()));
        obj.shift_remove("dashboard");
        let name_missing = !matches!(obj.get("name"), Some(Value::String(s)) if !s.is_empty());
        if name_missing {
            obj.insert(
                "name".into(),
                Value::String(format!("{} {}", self.name, subs.name)),
            );
        }
        if !obj.contains_key("widgets") {
            warnings.push(format!(
                "{}: no widgets; the dashboard will be empty",
                self.source
            ));
            obj.insert("widgets".into(), Value::Array(Vec::new()));
        }
        out.extend(std::mem::take(obj));
        let json = Value::Object(out);
        validate(&id, &json, false)?;
        Ok(PreparedDashboard {
            id,
            json,
            replaced,
            warnings,
        })
    }
}

/// The template name of a file: `z_Thinger.Weather.h` → `Weather`.
pub fn template_name(file: &str) -> String {
    let mut name = file;
    for ext in [".json", ".txt", ".hpp", ".h"] {
        if let Some(n) = name.strip_suffix(ext) {
            name = n;
            break;
        }
    }
    for prefix in ["z_Thinger.", "z_thinger.", "z_Thinger_"] {
        if let Some(n) = name.strip_prefix(prefix) {
            name = n;
        }
    }
    name.to_string()
}

/// The dashboard id for a template and a device: `<template>_<device>` with every
/// character outside `[a-zA-Z0-9_]` made `_`, at most 32 characters (a longer one
/// keeps 23 characters and a hash of the whole, so two devices never share an id).
pub fn dashboard_id(template: &str, device: &str) -> String {
    let raw = format!("{template}_{device}");
    let mut id = String::new();
    for c in raw.chars() {
        let c = if c.is_ascii_alphanumeric() { c } else { '_' };
        if c == '_' && id.ends_with('_') {
            continue;
        }
        id.push(c);
    }
    let id = id.trim_matches('_').to_string();
    let id = if id.is_empty() {
        "dashboard".to_string()
    } else {
        id
    };
    if id.len() <= 32 {
        return id;
    }
    let hash = Md5::digest(raw.as_bytes());
    let hex: String = hash.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{}_{hex}", id[..23].trim_end_matches('_'))
}

fn substitute_value(v: &mut Value, subs: &Substitutions, count: &mut usize) {
    match v {
        Value::String(s) => {
            let (t, n) = substitute(s, subs);
            if n > 0 {
                *s = t;
                *count += n;
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|i| substitute_value(i, subs, count)),
        // Keys are never changed: only values are personal.
        Value::Object(map) => map
            .values_mut()
            .for_each(|i| substitute_value(i, subs, count)),
        _ => {}
    }
}

/// Replaces the placeholders in one string; returns the text and how many.
fn substitute(text: &str, subs: &Substitutions) -> (String, usize) {
    let mut out = String::with_capacity(text.len());
    let mut n = 0;
    let mut rest = text;
    'outer: while !rest.is_empty() {
        if rest.starts_with("{{") {
            for (key, f) in [
                ("device", Field::Device),
                ("user", Field::User),
                ("host", Field::Host),
                ("name", Field::Name),
            ] {
                if let Some(after) = rest[2..]
                    .trim_start()
                    .strip_prefix(key)
                    .map(str::trim_start)
                    .and_then(|a| a.strip_prefix("}}"))
                {
                    out.push_str(subs.get(f));
                    n += 1;
                    rest = after;
                    continue 'outer;
                }
            }
        }
        for (key, f) in PADDED {
            if let Some(after) = rest.strip_prefix(key) {
                let spaces = after
                    .bytes()
                    .take(PADDED_WIDTH - key.len())
                    .take_while(|&b| b == b' ')
                    .count();
                out.push_str(subs.get(*f));
                n += 1;
                rest = &after[spaces..];
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    (out, n)
}

/// Checks a dashboard body against the API's schema (`POST` when `for_update` is
/// false, `PUT` otherwise); the error names the JSON path.
pub fn validate(id: &str, json: &Value, for_update: bool) -> Result<(), Error> {
    let err = |path: &str, message: String| Error::Schema {
        dashboard: id.to_string(),
        path: path.to_string(),
        message,
    };
    let obj = json
        .as_object()
        .ok_or_else(|| err("$", "must be an object".into()))?;
    for k in obj.keys() {
        let allowed = ALLOWED_KEYS.contains(&k.as_str()) && !(for_update && k == "dashboard");
        if !allowed {
            return Err(err(
                &format!("$.{k}"),
                "key not allowed by the dashboard schema".into(),
            ));
        }
    }
    if !for_update {
        match obj.get("dashboard") {
            Some(Value::String(d)) if crate::ids::check_resource_id("dashboard id", d).is_ok() => {}
            Some(_) => return Err(err("$.dashboard", "must match ^[a-zA-Z0-9_]{1,32}$".into())),
            None => return Err(err("$.dashboard", "required".into())),
        }
        for k in ["name", "widgets"] {
            if !obj.contains_key(k) {
                return Err(err(&format!("$.{k}"), "required".into()));
            }
        }
    }
    if let Some(v) = obj.get("name") {
        match v {
            Value::String(s) if (1..=255).contains(&s.chars().count()) => {}
            Value::String(s) => {
                return Err(err(
                    "$.name",
                    format!("must be 1 to 255 characters, is {}", s.chars().count()),
                ));
            }
            _ => return Err(err("$.name", "must be a string".into())),
        }
    }
    if let Some(v) = obj.get("description") {
        match v {
            Value::String(s) if s.chars().count() <= 255 => {}
            Value::String(_) => {
                return Err(err(
                    "$.description",
                    "must be at most 255 characters".into(),
                ));
            }
            _ => return Err(err("$.description", "must be a string".into())),
        }
    }
    for k in ["widgets", "tabs"] {
        if let Some(v) = obj.get(k)
            && !v.is_array()
        {
            return Err(err(&format!("$.{k}"), "must be an array".into()));
        }
    }
    Ok(())
}

/// Create, or update an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushMode {
    /// `POST`; an existing dashboard is an error.
    Create,
    /// `PUT` (or `POST` when it does not exist yet).
    Update,
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Created.
    Created,
    /// Replaced.
    Updated,
}

/// Request builders (pure).
pub mod requests {
    use super::*;

    /// `POST /v1/users/{user}/dashboards`.
    pub fn create(user: &str, d: &PreparedDashboard) -> Request {
        Request::new(
            Method::Post,
            format!("/v1/users/{}/dashboards", percent_encode(user)),
            "CreateDashboard",
            format!("create dashboard {}", d.id),
            format!("dashboard {}", d.id),
        )
        .with_body(Body::json(&d.json))
    }

    /// `PUT /v1/users/{user}/dashboards/{dashboard}` (without the `dashboard` key).
    pub fn update(user: &str, d: &PreparedDashboard) -> Request {
        let mut body = d.json.clone();
        if let Some(o) = body.as_object_mut() {
            o.shift_remove("dashboard");
        }
        Request::new(
            Method::Put,
            format!(
                "/v1/users/{}/dashboards/{}",
                percent_encode(user),
                percent_encode(&d.id)
            ),
            "UpdateDashboard",
            format!("update dashboard {}", d.id),
            format!("dashboard {}", d.id),
        )
        .with_body(Body::json(&body))
    }
}

/// The client's dashboards.
#[derive(Debug)]
pub struct Dashboards<'a> {
    client: &'a Client,
}

impl Client {
    /// The user's dashboards.
    pub fn dashboards(&self) -> Dashboards<'_> {
        Dashboards { client: self }
    }
}

impl Dashboards<'_> {
    /// Sends a prepared dashboard.
    pub fn push(&self, d: &PreparedDashboard, mode: PushMode) -> Result<Pushed, Error> {
        validate(&d.id, &d.json, false)?;
        let user = self.client.user()?;
        match mode {
            PushMode::Create => {
                self.client.execute(requests::create(&user, d))?;
                Ok(Pushed::Created)
            }
            PushMode::Update => match self.client.execute(requests::update(&user, d)) {
                Ok(_) => Ok(Pushed::Updated),
                Err(Error::NotFound { .. }) => {
                    self.client.execute(requests::create(&user, d))?;
                    Ok(Pushed::Created)
                }
                Err(e) => Err(e),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs() -> Substitutions {
        Substitutions {
            device: "kitchen".into(),
            user: "alice".into(),
            host: "iot.thinger.io".into(),
            name: "Kitchen".into(),
        }
    }

    #[test]
    fn padded_and_braced_placeholders_in_values_only() {
        let (t, n) = substitute("DEVCNAME        ", &subs());
        assert_eq!((t.as_str(), n), ("kitchen", 1));
        let (t, _) = substitute("temp of DEVCNAME        on CLOUDNAM        ", &subs());
        assert_eq!(t, "temp of kitchenon alice");
        let (t, _) = substitute("{{ device }}@{{host}} ({{name}}) DEVCUSER", &subs());
        assert_eq!(t, "kitchen@iot.thinger.io (Kitchen) alice");
        let tpl =
            Template::parse("t", "t.json", r#"{"DEVCNAME":"DEVCNAME","widgets":[]}"#).unwrap();
        let d = tpl.personalize(&subs(), UnknownKeys::Strip).unwrap();
        assert!(d.warnings.iter().any(|w| w.contains("$.DEVCNAME")));
    }

    #[test]
    fn ids_are_sanitised_and_unique_when_long() {
        assert_eq!(dashboard_id("Weather", "esp-a1b2"), "Weather_esp_a1b2");
        let a = dashboard_id("A_very_long_template_name", "device_number_000000001");
        let b = dashboard_id("A_very_long_template_name", "device_number_000000002");
        assert!(a.len() <= 32 && b.len() <= 32);
        assert_ne!(a, b);
        assert_eq!(template_name("z_Thinger.Weather.h"), "Weather");
    }

    #[test]
    fn validation_names_the_path() {
        let e = validate(
            "x",
            &serde_json::json!({"dashboard":"x","name":"","widgets":[]}),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("$.name"), "{e}");
        let e = validate(
            "x",
            &serde_json::json!({"dashboard":"x","name":"n","widgets":{}}),
            false,
        )
        .unwrap_err();
        assert!(e.to_string().contains("$.widgets"), "{e}");
    }
}
