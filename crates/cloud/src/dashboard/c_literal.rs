//! The text of C/C++ string literals in a source file: what the predecessor's
//! `z_Thinger.*.h` dashboard templates hold (JSON inside one or several literals).

/// A run of adjacent literals (`"a" "b"` is one string in C), decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiteralGroup {
    /// 1-based line of the first literal.
    pub line: usize,
    /// The concatenated, unescaped text.
    pub text: String,
}

/// Every string literal group in `source`, in order. Comments, character
/// literals and preprocessor lines (`#include "x.h"`) are skipped; escapes
/// (`\n \t \" \\ \xHH \ooo \uXXXX \UXXXXXXXX`), raw literals `R"d(...)d"` and
/// encoding prefixes (`u8`, `L`, ...) are handled.
pub fn string_literals(source: &str) -> Result<Vec<LiteralGroup>, String> {
    let s = source.as_bytes();
    let mut groups: Vec<LiteralGroup> = Vec::new();
    let mut open: Option<LiteralGroup> = None;
    let mut i = 0;
    let mut line = 1;
    let mut line_start = true;
    while i < s.len() {
        let c = s[i];
        if c == b'\n' {
            line += 1;
            line_start = true;
            i += 1;
            continue;
        }
        if c.is_ascii_whitespace() {
            i += 1;
            continue;
        }
        if line_start && c == b'#' {
            // Skip the directive, with its continuation lines.
            while i < s.len() && s[i] != b'\n' {
                if s[i] == b'\\' && s.get(i + 1) == Some(&b'\n') {
                    line += 1;
                    i += 1;
                }
                i += 1;
            }
            continue;
        }
        line_start = false;
        if s[i..].starts_with(b"//") {
            while i < s.len() && s[i] != b'\n' {
                i += 1;
            }
            continue;
        }
        if s[i..].starts_with(b"/*") {
            let end = find(s, i + 2, b"*/").ok_or(format!("line {line}: unclosed /* comment"))?;
            line += count_lines(&s[i..end]);
            i = end + 2;
            continue;
        }
        if c == b'\'' {
            // A character literal: skip it ('"' is not a string).
            i += 1;
            while i < s.len() && s[i] != b'\'' && s[i] != b'\n' {
                if s[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            continue;
        }
        // Encoding prefix and raw marker before a quote.
        let (prefix_len, raw) = literal_prefix(&s[i..]);
        if let Some(pl) = prefix_len {
            let start_line = line;
            let (text, next) = if raw {
                raw_literal(source, i + pl, &mut line)?
            } else {
                quoted_literal(source, i + pl, &mut line)?
            };
            match open.as_mut() {
                Some(g) => g.text.push_str(&text),
                None => {
                    open = Some(LiteralGroup {
                        line: start_line,
                        text,
                    })
                }
            }
            i = next;
            continue;
        }
        // Any other token ends the current run of adjacent literals.
        if let Some(g) = open.take() {
            groups.push(g);
        }
        i += 1;
    }
    if let Some(g) = open.take() {
        groups.push(g);
    }
    Ok(groups)
}

/// `Some(length of prefix up to and including nothing before the quote)` when a
/// literal starts here, and whether it is raw. The returned length points at the `"`.
fn literal_prefix(s: &[u8]) -> (Option<usize>, bool) {
    for p in ["u8R", "uR", "UR", "LR", "R", "u8", "u", "U", "L", ""] {
        let pb = p.as_bytes();
        if s.starts_with(pb) && s.get(pb.len()) == Some(&b'"') {
            return (Some(pb.len()), p.ends_with('R'));
        }
    }
    (None, false)
}

fn find(s: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    s.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

fn count_lines(s: &[u8]) -> usize {
    s.iter().filter(|&&b| b == b'\n').count()
}

/// `"..."` starting at the quote; returns the text and the index after the closing quote.
fn quoted_literal(source: &str, quote: usize, line: &mut usize) -> Result<(String, usize), String> {
    let start_line = *line;
    let mut out = String::new();
    let mut chars = source[quote + 1..].char_indices().peekable();
    while let Some((k, c)) = chars.next() {
        match c {
            '"' => return Ok((out, quote + 1 + k + 1)),
            '\n' => {
                return Err(format!(
                    "line {start_line}: string literal not closed on its line"
                ));
            }
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '0'..='7' => {
                        let mut v = e.to_digit(8).expect("octal");
                        for _ in 0..2 {
                            match chars.peek() {
                                Some((_, d)) if d.is_digit(8) => {
                                    v = v * 8 + d.to_digit(8).expect("octal");
                                    chars.next();
                                }
                                _ => break,
                            }
                        }
                        out.push(byte_char(v, start_line)?);
                    }
                    'x' => {
                        let mut v = 0u32;
                        let mut n = 0;
                        while let Some((_, d)) = chars.peek() {
                            let Some(h) = d.to_digit(16) else { break };
                            v = v.saturating_mul(16).saturating_add(h);
                            n += 1;
                            chars.next();
                        }
                        if n == 0 {
                            return Err(format!("line {start_line}: \\x without hex digits"));
                        }
                        out.push(byte_char(v, start_line)?);
                    }
                    'u' | 'U' => {
                        let len = if e == 'u' { 4 } else { 8 };
                        let mut v = 0u32;
                        for _ in 0..len {
                            let d = chars
                                .next()
                                .and_then(|(_, d)| d.to_digit(16))
                                .ok_or(format!("line {start_line}: bad \\{e} escape"))?;
                            v = v * 16 + d;
                        }
                        out.push(
                            char::from_u32(v).ok_or(format!(
                                "line {start_line}: \\{e}{v:X} is not a character"
                            ))?,
                        );
                    }
                    'a' => out.push('\u{7}'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'v' => out.push('\u{b}'),
                    '\n' => *line += 1,       // line continuation
                    other => out.push(other), // \" \\ \' \?
                }
            }
            c => out.push(c),
        }
    }
    Err(format!("line {start_line}: string literal not closed"))
}

/// A byte escape: JSON templates are ASCII/UTF-8 text, so only 0..=0x7F is taken
/// as a character; higher bytes would be half a UTF-8 sequence.
fn byte_char(v: u32, line: usize) -> Result<char, String> {
    if v <= 0x7F {
        Ok(char::from_u32(v).expect("ASCII"))
    } else {
        Err(format!(
            "line {line}: byte escape \\x{v:X} outside ASCII; write the character itself (UTF-8) or \\u{v:04X}"
        ))
    }
}

/// `R"delim( ... )delim"` starting at the quote.
fn raw_literal(source: &str, quote: usize, line: &mut usize) -> Result<(String, usize), String> {
    let start_line = *line;
    let rest = &source[quote + 1..];
    let paren = rest
        .find('(')
        .filter(|&p| p <= 16)
        .ok_or(format!("line {start_line}: bad raw string delimiter"))?;
    let delim = &rest[..paren];
    let closing = format!("){delim}\"");
    let body_start = quote + 1 + paren + 1;
    let end = source[body_start..]
        .find(&closing)
        .ok_or(format!("line {start_line}: raw string literal not closed"))?;
    let text = &source[body_start..body_start + end];
    *line += text.matches('\n').count();
    Ok((text.to_string(), body_start + end + closing.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_literals_concatenate_and_escapes_decode() {
        let src = "#include \"Thinger.h\"\n// \"not this\"\nconst char* d =\n  \"{\\\"a\\\":\" /* c */ \"\\x31\\t\\u00e9\"\n  \"}\";\nchar q = '\"';\n";
        let g = string_literals(src).unwrap();
        assert_eq!(g.len(), 1, "{g:?}");
        assert_eq!(g[0].text, "{\"a\":1\té}");
        assert_eq!(g[0].line, 4);
    }

    #[test]
    fn raw_literals_and_separate_groups() {
        let src = "auto a = R\"json({\"x\": \"\\n\"})json\";\nauto b = \"second\";";
        let g = string_literals(src).unwrap();
        assert_eq!(g[0].text, "{\"x\": \"\\n\"}");
        assert_eq!(g[1].text, "second");
        assert_eq!(g[1].line, 2);
    }

    #[test]
    fn arbitrary_input_never_panics() {
        // Deterministic noise over the characters that matter to the scanner.
        let alphabet: Vec<char> = "\"'\\/*#\nR(){}xu0123456789abcdefé€ ;".chars().collect();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let len = (x % 40) as usize;
            let text: String = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    alphabet[(x % alphabet.len() as u64) as usize]
                })
                .collect();
            let _ = string_literals(&text);
            let _ = crate::dashboard::Template::parse("t", "t.h", &text);
        }
    }

    #[test]
    fn unclosed_literal_is_an_error_with_its_line() {
        let e = string_literals("\n\"abc\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
    }
}
