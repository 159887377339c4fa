//! Progress on stderr: a bar on a terminal (`indicatif`), plain lines otherwise
//! (CI logs, pipes). stdout stays free for `--json`.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;

/// Progress of one region being written, then verified.
pub struct Progress {
    bar: Option<ProgressBar>,
    /// Plain mode: the last tenth printed.
    last_tenth: Option<usize>,
    total: usize,
    label: String,
    /// Names of the regions, by flash address, for `init(addr, ..)` calls.
    labels: Vec<(u32, String)>,
    terminal: bool,
}

impl Progress {
    /// `labels`: what lands at each address (`0x10000` → `factory partition factory`).
    pub fn new(terminal: bool, labels: Vec<(u32, String)>) -> Self {
        Progress {
            bar: None,
            last_tenth: None,
            total: 0,
            label: String::new(),
            labels,
            terminal,
        }
    }

    fn label_for(&self, addr: u32) -> String {
        self.labels
            .iter()
            .find(|(a, _)| *a == addr)
            .map_or_else(|| format!("{addr:#x}"), |(a, l)| format!("{a:#08x} {l}"))
    }

    /// A region starts: `total` steps (chunks, or percent for esptool).
    pub fn start(&mut self, addr: u32, total: usize) {
        self.finish_bar();
        self.total = total.max(1);
        self.label = self.label_for(addr);
        self.last_tenth = None;
        if self.terminal {
            let bar = ProgressBar::new(self.total as u64);
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

    pub fn step(&mut self, current: usize) {
        if let Some(bar) = &self.bar {
            bar.set_position(current as u64);
            return;
        }
        let tenth = (current.min(self.total) * 10) / self.total;
        if tenth > 0 && self.last_tenth.is_none_or(|t| tenth > t) {
            self.last_tenth = Some(tenth);
            line(&format!("  {} {:>3}%", self.label, tenth * 10));
        }
    }

    pub fn verifying(&mut self) {
        match &self.bar {
            Some(bar) => bar.set_message(format!("verifying {}", self.label)),
            None => line(&format!("  {} verifying (MD5)", self.label)),
        }
    }

    pub fn done(&mut self, skipped: bool) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
            line(&format!(
                "{} {}",
                if skipped { "unchanged" } else { "written" },
                self.label
            ));
        } else {
            line(&format!(
                "  {} {}",
                self.label,
                if skipped { "unchanged" } else { "done" }
            ));
        }
    }

    fn finish_bar(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish_bar();
    }
}

fn line(text: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{text}");
}

impl espflash::target::ProgressCallbacks for Progress {
    fn init(&mut self, addr: u32, total: usize) {
        self.start(addr, total);
    }

    fn update(&mut self, current: usize) {
        self.step(current);
    }

    fn verifying(&mut self) {
        Progress::verifying(self);
    }

    fn finish(&mut self, skipped: bool) {
        self.done(skipped);
    }
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
