//! Device-id templates: `esp-{mac}`, `{prefix}-{n:03}`, `bar-{n:04}`.
//!
//! A template is literal text with fields in braces:
//!
//! - `{n}`: the identity's sequence number in its job (1, 2, ... from the job's
//!   start), in decimal; `{n:0W}` pads it with zeros to at least W digits
//!   (W from 1 to 9; a larger number just has more digits, ids stay distinct);
//! - `{mac}`: the board's MAC as 12 lowercase hex digits without separators
//!   (`a4cf120b3c7e`); only for runs that identify boards by MAC;
//! - `{NAME}`: the value of variable NAME given by the caller (a profile value
//!   or an option such as `prefix`), the same for every device;
//! - `{{` and `}}`: a literal brace.
//!
//! Ids are distinct only if the template holds `{n}` or `{mac}`.

use crate::board::Mac;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    N { width: usize },
    Mac,
}

/// A parsed device-id template (variables already substituted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl Template {
    /// Parses `text`, substituting `{NAME}` from `vars`. The error says what is
    /// wrong and where.
    pub fn parse(text: &str, vars: &BTreeMap<String, String>) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|p| p.1) == Some('{') => {
                    chars.next();
                    lit.push('{');
                }
                '}' if chars.peek().map(|p| p.1) == Some('}') => {
                    chars.next();
                    lit.push('}');
                }
                '}' => {
                    return Err(format!(
                        "device-id template {text:?}: unmatched `}}` at character {}; write `}}}}` for a literal brace",
                        i + 1
                    ));
                }
                '{' => {
                    let mut field = String::new();
                    loop {
                        match chars.next() {
                            Some((_, '}')) => break,
                            Some((_, ch)) => field.push(ch),
                            None => {
                                return Err(format!(
                                    "device-id template {text:?}: `{{` at character {} is not closed; write `{{{{` for a literal brace",
                                    i + 1
                                ));
                            }
                        }
                    }
                    let (name, spec) = match field.split_once(':') {
                        Some((n, s)) => (n, Some(s)),
                        None => (field.as_str(), None),
                    };
                    let part = match (name, spec) {
                        ("n", None) => Part::N { width: 0 },
                        ("n", Some(s)) => Part::N {
                            width: parse_width(s).ok_or_else(|| {
                                format!(
                                    "device-id template {text:?}: `{{n:{s}}}` is not a format this understands; write {{n:0W}} with W from 1 to 9 (zero padding), e.g. {{n:03}}"
                                )
                            })?,
                        },
                        ("mac", None) => Part::Mac,
                        (name, None) if vars.contains_key(name) => {
                            lit.push_str(&vars[name]);
                            continue;
                        }
                        (name, Some(_)) if name == "mac" || vars.contains_key(name) => {
                            return Err(format!(
                                "device-id template {text:?}: `{{{field}}}` takes no format; only {{n}} does"
                            ));
                        }
                        _ => {
                            let known: Vec<String> = ["n", "mac"]
                                .iter()
                                .map(|s| s.to_string())
                                .chain(vars.keys().cloned())
                                .collect();
                            return Err(format!(
                                "device-id template {text:?}: unknown field `{{{field}}}`; known fields: {}",
                                known.join(", ")
                            ));
                        }
                    };
                    if !lit.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut lit)));
                    }
                    parts.push(part);
                }
                c => lit.push(c),
            }
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(Template {
            source: text.to_string(),
            parts,
        })
    }

    /// Whether the template holds `{n}`.
    pub fn uses_n(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::N { .. }))
    }

    /// Whether the template holds `{mac}`.
    pub fn uses_mac(&self) -> bool {
        self.parts.contains(&Part::Mac)
    }

    /// Whether two devices can never get the same id.
    pub fn distinct(&self) -> bool {
        self.uses_n() || self.uses_mac()
    }

    /// The template as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The id for sequence number `n` and board `mac` (`None` when the
    /// template needs a MAC and there is none).
    pub fn render(&self, n: u64, mac: Option<Mac>) -> Option<String> {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::N { width } => out.push_str(&format!("{n:0width$}")),
                Part::Mac => out.push_str(&mac?.hex()),
            }
        }
        Some(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn parse_width(spec: &str) -> Option<usize> {
    let digits = spec.strip_prefix('0')?;
    let w: usize = digits.parse().ok()?;
    (digits.len() == 1 && (1..=9).contains(&w)).then_some(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("prefix".to_string(), "kitchen".to_string())].into()
    }

    #[test]
    fn renders() {
        let mac: Mac = "a4:cf:12:0b:3c:7e".parse().unwrap();
        let t = Template::parse("esp-{mac}", &vars()).unwrap();
        assert_eq!(t.render(1, Some(mac)).unwrap(), "esp-a4cf120b3c7e");
        assert_eq!(t.render(1, None), None);
        let t = Template::parse("{prefix}-{n:03}", &vars()).unwrap();
        assert_eq!(t.render(7, None).unwrap(), "kitchen-007");
        assert_eq!(t.render(1234, None).unwrap(), "kitchen-1234");
        let t = Template::parse("bar-{n:04}", &vars()).unwrap();
        assert_eq!(t.render(12, None).unwrap(), "bar-0012");
        assert!(t.distinct() && t.uses_n() && !t.uses_mac());
        let t = Template::parse("x{{{n}}}", &vars()).unwrap();
        assert_eq!(t.render(3, None).unwrap(), "x{3}");
        assert!(!Template::parse("{prefix}", &vars()).unwrap().distinct());
    }

    #[test]
    fn refuses() {
        for (t, want) in [
            ("esp-{serial}", "unknown field `{serial}`"),
            ("esp-{n", "not closed"),
            ("esp-}", "unmatched"),
            ("esp-{n:3}", "{n:0W}"),
            ("esp-{n:010}", "{n:0W}"),
            ("esp-{mac:x}", "takes no format"),
        ] {
            let e = Template::parse(t, &vars()).unwrap_err();
            assert!(e.contains(want), "{t}: {e}");
        }
    }
}
