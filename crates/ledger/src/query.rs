//! Reading device rows into [`DeviceRecord`]s.

use crate::board::Location;
use crate::crypto::{Cipher, value_aad};
use crate::device::{Build, DeviceRecord, Filter, ListedValue};
use crate::engine::mask;
use crate::error::{Error, Result};
use rusqlite::{Connection, params_from_iter, types::Value as Sql};
use std::path::Path;

const COLUMNS: &str = "d.id, d.device, d.state, d.mac, d.chip, d.board, d.last_board, j.name, d.n,
    d.firmware, d.version, d.sha256, d.location_kind, d.location, d.address, d.reason,
    d.created_at, d.reserved_at, d.flashed_at, d.verified_at, d.first_verified_at, d.updated_at,
    d.current_firmware, d.current_version, d.current_sha256,
    d.pending_firmware, d.pending_version, d.pending_sha256";

/// Devices matching `filter` in planning order; secrets opened with `reveal`.
pub(crate) fn devices(
    tx: &Connection,
    path: &Path,
    filter: &Filter,
    reveal: Option<&Cipher>,
) -> Result<Vec<DeviceRecord>> {
    let db = |e| Error::db(path, e);
    let mut wheres = Vec::new();
    let mut args: Vec<Sql> = Vec::new();
    if let Some(job) = &filter.job {
        args.push(Sql::Text(job.clone()));
        wheres.push(format!("j.name = ?{}", args.len()));
    }
    if let Some(device) = &filter.device {
        args.push(Sql::Text(device.clone()));
        wheres.push(format!("d.device = ?{}", args.len()));
    }
    if let Some(mac) = &filter.mac {
        args.push(Sql::Text(mac.to_string()));
        wheres.push(format!("d.mac = ?{}", args.len()));
    }
    if let Some(v) = &filter.version_not {
        args.push(Sql::Text(v.clone()));
        wheres.push(format!(
            "d.first_verified_at IS NOT NULL AND d.current_version IS NOT ?{}",
            args.len()
        ));
    }
    if !filter.states.is_empty() {
        let list = filter
            .states
            .iter()
            .map(|s| format!("'{}'", s.as_str()))
            .collect::<Vec<_>>()
            .join(", ");
        wheres.push(format!("d.state IN ({list})"));
    }
    let sql = format!(
        "SELECT {COLUMNS} FROM devices d JOIN jobs j ON j.id = d.job_id {} ORDER BY d.job_id, d.pool_order, d.id",
        if wheres.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", wheres.join(" AND "))
        }
    );
    let mut st = tx.prepare(&sql).map_err(db)?;
    let mut rows = st.query(params_from_iter(args)).map_err(db)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db)? {
        let row: i64 = r.get(0).map_err(db)?;
        let g = |i: usize| r.get::<_, Option<String>>(i).map_err(db);
        let state: String = r.get(2).map_err(db)?;
        let location = match (g(12)?, g(13)?) {
            (Some(k), Some(t)) => Location::from_parts(&k, t),
            _ => None,
        };
        let pending = match (g(25)?, g(26)?, g(27)?) {
            (None, None, None) => None,
            (firmware, version, sha256) => Some(Build {
                firmware,
                version,
                sha256,
            }),
        };
        let device: String = r.get(1).map_err(db)?;
        out.push(DeviceRecord {
            values: values(tx, path, row, &device, reveal)?,
            device,
            state: state.parse().map_err(Error::Usage)?,
            mac: g(3)?,
            chip: g(4)?,
            board: g(5)?,
            last_board: g(6)?,
            job: r.get(7).map_err(db)?,
            n: r.get::<_, Option<i64>>(8).map_err(db)?.map(|n| n as u64),
            written: Build {
                firmware: g(9)?,
                version: g(10)?,
                sha256: g(11)?,
            },
            location,
            address: g(14)?,
            reason: g(15)?,
            created_at: r.get(16).map_err(db)?,
            reserved_at: g(17)?,
            flashed_at: g(18)?,
            verified_at: g(19)?,
            first_verified_at: g(20)?,
            updated_at: r.get(21).map_err(db)?,
            current: Build {
                firmware: g(22)?,
                version: g(23)?,
                sha256: g(24)?,
            },
            pending,
        });
    }
    Ok(out)
}

fn values(
    tx: &Connection,
    path: &Path,
    row: i64,
    device: &str,
    reveal: Option<&Cipher>,
) -> Result<Vec<ListedValue>> {
    let db = |e| Error::db(path, e);
    let mut st = tx
        .prepare_cached(
            "SELECT key, secret, value, sealed FROM device_values WHERE device_id = ?1 ORDER BY rowid",
        )
        .map_err(db)?;
    let mut rows = st.query([row]).map_err(db)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next().map_err(db)? {
        let key: String = r.get(0).map_err(db)?;
        let secret: bool = r.get(1).map_err(db)?;
        let value = if !secret {
            r.get::<_, Option<String>>(2)
                .map_err(db)?
                .unwrap_or_default()
        } else {
            let sealed: Vec<u8> = r.get(3).map_err(db)?;
            match reveal {
                Some(c) => {
                    let tampered = || Error::Tampered {
                        path: path.to_path_buf(),
                        device: device.to_string(),
                        slot: key.clone(),
                    };
                    let open = c
                        .open(&value_aad(device, &key), &sealed)
                        .ok_or_else(tampered)?;
                    String::from_utf8(open.to_vec()).map_err(|_| tampered())?
                }
                // The length of a secret is not shown: any non-empty one is the mask.
                None => mask(if sealed.len() > 41 { "x" } else { "" }).to_string(),
            }
        };
        out.push(ListedValue { key, secret, value });
    }
    Ok(out)
}
