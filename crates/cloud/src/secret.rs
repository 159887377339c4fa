//! Secrets (tokens, passwords, device credentials) that never print.

use std::fmt;

/// What a secret looks like in every output.
pub const MASK: &str = "********";

/// A secret string. `Debug` and `Display` show [`MASK`]; [`Secret::expose`] is the
/// only way to the text, so a secret cannot reach a log, an error or a panic by
/// accident. The text is overwritten when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(text: impl Into<String>) -> Self {
        Secret(text.into())
    }

    /// The secret's text, for the one place that must send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes (lengths are not secret: the API's rules are about them).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        // Best effort: overwrite the heap copy we own before it is freed.
        let mut bytes = std::mem::take(&mut self.0).into_bytes();
        bytes.iter_mut().for_each(|b| *b = 0);
        // Keeps the optimiser from removing the wipe of a buffer about to be freed.
        std::hint::black_box(&bytes);
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({MASK})")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

/// Replaces every occurrence of each secret in `text` with [`MASK`]: servers echo
/// request fields in their messages, and those messages end up in our errors.
pub(crate) fn scrub(text: &str, secrets: &[&Secret]) -> String {
    let mut out = text.to_string();
    for s in secrets {
        // Very short secrets would mask ordinary words; the API's minimum is 6.
        if s.len() >= 4 {
            out = out.replace(s.expose(), MASK);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_masked_in_debug_and_display() {
        let s = Secret::new("hunter2-canary");
        assert_eq!(format!("{s}"), MASK);
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2-canary");
    }

    #[test]
    fn scrub_masks_every_occurrence() {
        let s = Secret::new("abcdef");
        assert_eq!(scrub("x abcdef y abcdef", &[&s]), "x ******** y ********");
    }
}
