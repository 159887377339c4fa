//! `ledger export`: CSV or JSON, secrets masked unless revealed with the key.

use crate::device::{DeviceRecord, Filter};
use crate::error::{Error, Result};
use crate::ledger::Ledger;

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// One header row, one row per device (docs/ledger.md lists the columns).
    Csv,
    /// A JSON array of device objects, as [`DeviceRecord`] serialises.
    Json,
}

/// The fixed CSV columns, before one column per slot key.
pub const CSV_COLUMNS: &[&str] = &[
    "device",
    "state",
    "mac",
    "chip",
    "job",
    "n",
    "firmware",
    "version",
    "sha256",
    "location",
    "address",
    "reason",
    "reserved_at",
    "flashed_at",
    "verified_at",
    "current_version",
    "pending_version",
];

impl Ledger {
    /// The devices matching `filter` in `format`. Secrets are `********`
    /// unless `reveal`, which needs the ledger opened with its key.
    pub fn export(&self, filter: &Filter, format: ExportFormat, reveal: bool) -> Result<String> {
        let devices = self.devices(filter, reveal)?;
        match format {
            ExportFormat::Json => serde_json::to_string_pretty(&devices)
                .map(|mut s| {
                    s.push('\n');
                    s
                })
                .map_err(|e| Error::Usage(format!("JSON export failed: {e}"))),
            ExportFormat::Csv => csv_text(&devices),
        }
    }
}

fn csv_text(devices: &[DeviceRecord]) -> Result<String> {
    let mut keys: Vec<&str> = Vec::new();
    for d in devices {
        for v in &d.values {
            if !keys.contains(&v.key.as_str()) {
                keys.push(&v.key);
            }
        }
    }
    let err = |e: csv::Error| Error::Usage(format!("CSV export failed: {e}"));
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(CSV_COLUMNS.iter().copied().chain(keys.iter().copied()))
        .map_err(err)?;
    for d in devices {
        let o = |s: &Option<String>| s.clone().unwrap_or_default();
        let mut row = vec![
            d.device.clone(),
            d.state.to_string(),
            o(&d.mac),
            o(&d.chip),
            d.job.clone(),
            d.n.map(|n| n.to_string()).unwrap_or_default(),
            o(&d.written.firmware),
            o(&d.written.version),
            o(&d.written.sha256),
            d.location
                .as_ref()
                .map(|l| l.to_string())
                .unwrap_or_default(),
            o(&d.address),
            o(&d.reason),
            o(&d.reserved_at),
            o(&d.flashed_at),
            o(&d.verified_at),
            o(&d.current.version),
            d.pending
                .as_ref()
                .and_then(|p| p.version.clone())
                .unwrap_or_default(),
        ];
        for k in &keys {
            row.push(
                d.values
                    .iter()
                    .find(|v| v.key == *k)
                    .map(|v| v.value.clone())
                    .unwrap_or_default(),
            );
        }
        w.write_record(&row).map_err(err)?;
    }
    let bytes = w
        .into_inner()
        .map_err(|e| Error::Usage(format!("CSV export failed: {e}")))?;
    String::from_utf8(bytes).map_err(|e| Error::Usage(format!("CSV export failed: {e}")))
}
