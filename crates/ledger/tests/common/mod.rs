//! Helpers shared by the ledger's integration tests.
#![allow(dead_code)] // each test uses part of this module

pub mod image;

use std::path::Path;
use thinger_patch_ledger::*;

/// A secret that must never appear in clear in the database file or any output.
pub const CANARY: &str = "CANARY-s3cr3t-7f1d2e";
/// The test key (what THINGER_PATCH_LEDGER_KEY would hold).
pub const KEY: &str = "test ledger key";

/// Cheap Argon2id parameters: tests open many ledgers; the default ones are
/// exercised by `default_kdf_parameters_are_stored` and the benchmark.
pub fn options() -> OpenOptions {
    OpenOptions {
        create: true,
        kdf: KdfParams {
            m_cost: 256,
            t_cost: 1,
            p_cost: 1,
        },
    }
}

/// Opens (creating) the ledger at `path` with [`KEY`].
pub fn open(path: &Path) -> Ledger {
    Ledger::open_with(path, Some(KeySource::Env(KEY.into())), &options()).expect("open ledger")
}

/// The standard Thinger slots as the firmware of [`image::app_with_slots`] declares them.
pub fn slots() -> Vec<SlotSpec> {
    image::SLOTS
        .iter()
        .map(|(key, cap, flags)| SlotSpec {
            key: key.to_string(),
            capacity: *cap as usize,
            secret: flags & 1 != 0,
            required: flags & 2 != 0,
        })
        .collect()
}

/// Profile values every device shares.
pub fn profile() -> Vec<(String, Value)> {
    vec![
        ("wifi_ssid".into(), Value::new("Kitchen-2.4GHz")),
        ("wifi_password".into(), Value::new("correct horse battery")),
        ("thinger_user".into(), Value::new("alice")),
    ]
}

/// A generated job: `bar-{n:04}`, `count` identities, credentials from the CSPRNG.
pub fn generated(name: &str, template: &str, count: u64, target: Target) -> JobSpec {
    let mut spec = JobSpec::new(
        name,
        slots(),
        IdentitySource::Generate(Generator {
            template: template.into(),
            vars: Default::default(),
            start: 1,
            count,
        }),
    );
    spec.profile = profile();
    spec.credentials = vec![Credential::new("thinger_credentials")];
    spec.firmware = FirmwareInfo {
        name: "sensor".into(),
        version: "1.0.0".into(),
    };
    spec.target = target;
    spec
}

/// A CSV job.
pub fn csv_job(name: &str, csv: &str) -> JobSpec {
    let mut spec = JobSpec::new(
        name,
        slots(),
        IdentitySource::Csv(CsvInput {
            name: "devices.csv".into(),
            text: csv.into(),
        }),
    );
    spec.profile = profile();
    spec.firmware = FirmwareInfo {
        name: "sensor".into(),
        version: "1.0.0".into(),
    };
    spec
}

/// The MAC of test board `i`.
pub fn mac(i: u32) -> Mac {
    let b = i.to_be_bytes();
    Mac([0x24, 0x0a, b[0], b[1], b[2], b[3]])
}

/// A board on a port.
pub fn board(i: u32) -> Board {
    Board::Mac {
        mac: mac(i),
        chip: Some("esp32c3".into()),
    }
}

/// A plausible write record.
pub fn written(port: &str) -> Written {
    Written {
        sha256: [0xab; 32],
        location: Location::Port(port.into()),
    }
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
