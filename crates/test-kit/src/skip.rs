//! Skipped tests, counted: a test that cannot run here (a tool or `../shared` absent outside CI)
//! returns early and would show as passed. [`skip`] says why on stderr and, when the README's
//! test command set `THINGER_PATCH_SKIP_LOG`, appends one line to that file, which
//! `scripts/test.sh` prints as a summary at the end of the run.

use std::io::Write as _;

/// Report that the current test (the thread's name, which libtest sets to the test's path)
/// skips some or all of its work, and why.
pub fn skip(why: &str) {
    let test = std::thread::current().name().unwrap_or("?").to_owned();
    eprintln!("skipping: {why}");
    let Some(log) = std::env::var_os("THINGER_PATCH_SKIP_LOG") else {
        return;
    };
    // One write per line with O_APPEND, so lines from parallel tests do not interleave.
    let line = format!("{test}: {}\n", why.replace('\n', " "));
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = f.write_all(line.as_bytes());
    }
}
