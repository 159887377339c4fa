//! How long a transfer has to go, for whoever shows it: the command line draws a
//! bar (or plain lines), a batch runner one line per port, a test records the
//! calls. One trait for serial flashing and for OTA.

/// Receives the progress of one transfer: regions start, advance and finish, in order.
pub trait Progress: Send {
    /// A region starts: `total` units (bytes, or steps a tool reports) of `what` (a flash
    /// address and what lands there: `0x010000 factory partition`, or `app image`).
    fn start(&mut self, what: &str, total: u64);
    /// `done` of the region's units are through.
    fn advance(&mut self, done: u64);
    /// The device checks what it received (MD5).
    fn verifying(&mut self) {}
    /// The region is finished; `skipped` when the device already held these bytes.
    fn finish(&mut self, skipped: bool);
    /// A status line worth showing (`connecting to /dev/ttyUSB0 ...`).
    fn status(&mut self, text: &str) {
        let _ = text;
    }
}

/// Shows nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {
    fn start(&mut self, _what: &str, _total: u64) {}
    fn advance(&mut self, _done: u64) {}
    fn finish(&mut self, _skipped: bool) {}
}

/// espflash's callbacks, drawn through a [`Progress`]: flash addresses named by `labels`.
pub(crate) struct Espflash<'a> {
    pub progress: &'a mut dyn Progress,
    pub labels: Vec<(u32, String)>,
}

impl espflash::target::ProgressCallbacks for Espflash<'_> {
    fn init(&mut self, addr: u32, total: usize) {
        let what = self
            .labels
            .iter()
            .find(|(a, _)| *a == addr)
            .map_or_else(|| format!("{addr:#x}"), |(a, l)| format!("{a:#08x} {l}"));
        self.progress.start(&what, total as u64);
    }

    fn update(&mut self, current: usize) {
        self.progress.advance(current as u64);
    }

    fn verifying(&mut self) {
        self.progress.verifying();
    }

    fn finish(&mut self, skipped: bool) {
        self.progress.finish(skipped);
    }
}
