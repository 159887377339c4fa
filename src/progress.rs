//! Progress on stderr: a bar on a terminal (`indicatif`), plain lines otherwise
//! (CI logs, pipes). stdout stays free for `--json`.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;

/// Draws a transfer's [`thinger_patch_delivery::Progress`]: one region at a time, as a bar on a
/// terminal and as a line every tenth otherwise (with status lines only then: a bar says it).
pub struct Bar {
    bar: Option<ProgressBar>,
    /// Plain mode: the last tenth printed.
    last_tenth: Option<u64>,
    total: u64,
    label: String,
    terminal: bool,
    /// Whether status lines are shown (flash: yes; OTA: the summary says it).
    status: bool,
}

impl Bar {
    /// A bar on a terminal, plain lines otherwise.
    pub fn new(terminal: bool) -> Self {
        Bar {
            bar: None,
            last_tenth: None,
            total: 0,
            label: String::new(),
            terminal,
            status: true,
        }
    }

    /// Shows the transfer only, not the status lines.
    pub fn quiet_status(mut self) -> Self {
        self.status = false;
        self
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl thinger_patch_delivery::Progress for Bar {
    fn start(&mut self, what: &str, total: u64) {
        self.finish_bar();
        self.total = total.max(1);
        self.label = what.to_string();
        self.last_tenth = None;
        if self.terminal {
            let bar = ProgressBar::new(self.total);
            bar.set_style(
                ProgressStyle::with_template("{msg:<40} [{bar:30}] {percent:>3}% {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.set_message(format!("writing {}", self.label));
            self.bar = Some(bar);
        } else {
            line(&format!("writing {} ...", self.label));
        }
    }

    fn advance(&mut self, done: u64) {
        if let Some(bar) = &self.bar {
            bar.set_position(done);
            return;
        }
        let tenth = (done.min(self.total) * 10) / self.total;
        if tenth > 0 && self.last_tenth.is_none_or(|t| tenth > t) {
            self.last_tenth = Some(tenth);
            line(&format!("  {} {:>3}%", self.label, tenth * 10));
        }
    }

    fn verifying(&mut self) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("verifying {}", self.label)),
            None => line(&format!("  {} verifying (MD5)", self.label)),
        }
    }

    fn finish(&mut self, skipped: bool) {
        if self.label.is_empty() {
            return; // finished already, or never started
        }
        let label = std::mem::take(&mut self.label);
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            line(&format!(
                "{} {label}",
                if skipped { "unchanged" } else { "written" }
            ));
        } else {
            line(&format!(
                "  {label} {}",
                if skipped { "unchanged" } else { "done" }
            ));
        }
    }

    fn status(&mut self, text: &str) {
        // esptool's own lines only where no bar shows the progress (CI logs).
        let tool_line = text.starts_with("esptool: ");
        if !self.status || (tool_line && self.terminal) {
            return;
        }
        if tool_line {
            line(&format!("  {text}"));
        } else {
            line(text);
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish_bar();
    }
}

fn line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

/// `12.3 KiB/s` style rate.
pub fn rate(bytes: u64, secs: f64) -> String {
    if secs <= 0.0 {
        return "-".into();
    }
    let r = bytes as f64 / secs;
    if r >= 1024.0 * 1024.0 {
        format!("{:.1} MiB/s", r / (1024.0 * 1024.0))
    } else if r >= 1024.0 {
        format!("{:.1} KiB/s", r / 1024.0)
    } else {
        format!("{r:.0} B/s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(rate(2048, 1.0), "2.0 KiB/s");
        assert_eq!(rate(3 * 1024 * 1024, 2.0), "1.5 MiB/s");
        assert_eq!(rate(10, 1.0), "10 B/s");
        assert_eq!(rate(10, 0.0), "-");
    }
}
