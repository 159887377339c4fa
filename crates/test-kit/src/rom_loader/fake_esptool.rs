//! Misbehaving stand-ins for esptool, for `flash` through `THINGER_PATCH_ESPTOOL`: no
//! real esptool hangs or floods on demand, so these shell scripts do. Each answers
//! `esptool version` like esptool 5 (thinger-patch asks that first), then:
//!
//! - [`Behaviour::Hang`]: prints two lines and waits forever on a child `sleep` (as a
//!   wrapper waiting on a stuck esptool would), printing nothing more;
//! - [`Behaviour::Flood`]: a child `cat /dev/zero` writes NUL bytes without a line break,
//!   endlessly (the "300 MB without a newline" case, without an end).
//!
//! The child's process id is written to [`FakeEsptool::pid_file`], so a test can check
//! that stopping esptool also stopped what it started.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Hang,
    Flood,
}

pub struct FakeEsptool {
    _dir: tempfile::TempDir,
    pub path: PathBuf,
    pub pid_file: PathBuf,
}

impl FakeEsptool {
    pub fn new(behaviour: Behaviour) -> FakeEsptool {
        let dir = tempfile::Builder::new()
            .prefix("fake-esptool-")
            .tempdir()
            .expect("temporary folder");
        let path = dir.path().join("esptool");
        let pid_file = dir.path().join("child.pid");
        let child = match behaviour {
            Behaviour::Hang => "sleep 600",
            Behaviour::Flood => "cat /dev/zero",
        };
        let script = format!(
            "#!/bin/sh\n\
             if [ \"$1\" = version ]; then echo 'esptool v5.1.0'; echo 5.1.0; exit 0; fi\n\
             echo 'esptool v5.1.0'\n\
             echo 'Connecting...'\n\
             {child} &\n\
             echo $! > '{}'\n\
             wait\n",
            pid_file.display()
        );
        std::fs::write(&path, script).expect("write the fake esptool");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .expect("make it executable");
        FakeEsptool {
            _dir: dir,
            path,
            pid_file,
        }
    }

    /// The child's pid, once the script wrote it.
    pub fn child_pid(&self) -> Option<u32> {
        std::fs::read_to_string(&self.pid_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// Whether `pid` is a live process (a zombie waiting for its reaper counts as ended).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Waits (bounded) until `pid` has ended; whether it did.
pub fn ends_within(pid: u32, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if !alive(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    !alive(pid)
}
