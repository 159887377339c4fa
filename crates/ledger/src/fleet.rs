//! Fleet-update bookkeeping: per device, what each delivery attempt did, and
//! which build it runs. A delivered build stays `pending` (the old one stays
//! `current`) until the device confirms it runs the new one.

use crate::device::{Build, State};
use crate::error::{Error, Result};
use crate::identity::FirmwareInfo;
use crate::ledger::{Ledger, event};
use crate::schema::NOW;
use rusqlite::{OptionalExtension, params};
use serde::Serialize;

/// How a build was delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// ArduinoOTA or HTTP update on the local network.
    LanOta,
    /// The Thinger.io cloud OTA.
    Cloud,
    /// A serial port.
    Serial,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::LanOta => "lan_ota",
            Method::Cloud => "cloud",
            Method::Serial => "serial",
        }
    }
}

/// What one delivery attempt did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    /// The device took the new build (it stays pending until confirmed).
    Updated,
    /// The device already runs this build.
    AlreadyCurrent,
    /// The device did not answer; retried by the next run.
    Offline,
    /// The delivery failed, with the reason (never a secret).
    Failed(String),
}

impl Outcome {
    fn parts(&self) -> (&'static str, Option<&str>) {
        match self {
            Outcome::Updated => ("updated", None),
            Outcome::AlreadyCurrent => ("already_current", None),
            Outcome::Offline => ("offline", None),
            Outcome::Failed(r) => ("failed", Some(r)),
        }
    }
}

/// One delivery attempt to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The build delivered.
    pub firmware: FirmwareInfo,
    /// SHA-256 of the personalised image delivered, if it was made.
    pub sha256: Option<[u8; 32]>,
    /// How.
    pub method: Method,
    /// Where (address, mDNS name, port); becomes the device's address when
    /// the device answered.
    pub address: Option<String>,
    /// What happened.
    pub outcome: Outcome,
}

/// A recorded delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRecord {
    /// The device id.
    pub device: String,
    /// When.
    pub at: String,
    /// The build.
    pub build: Build,
    /// How.
    pub method: String,
    /// Where.
    pub address: Option<String>,
    /// `updated`, `already_current`, `offline` or `failed`.
    pub result: String,
    /// Why it failed.
    pub reason: Option<String>,
}

/// What a device's report of its running version meant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confirmation {
    /// It runs the pending build: now current.
    Confirmed,
    /// It runs the build already recorded as current.
    AlreadyCurrent,
    /// It runs something else (recorded as current, SHA-256 unknown).
    Unexpected {
        /// What it reported.
        reported: String,
    },
}

impl Ledger {
    /// Records one delivery attempt to `device` (which must have been verified
    /// once: fleet updates are for devices in service).
    pub fn record_delivery(&self, device: &str, d: &Delivery) -> Result<()> {
        let sha = d.sha256.map(|s| crate::engine::hex(&s));
        let (result, reason) = d.outcome.parts();
        self.write(|tx| {
            let row = self.row_of(tx, device)?;
            let (state, first): (String, Option<String>) = tx
                .query_row(
                    "SELECT state, first_verified_at FROM devices WHERE id = ?1",
                    [row],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(self.db())?;
            if first.is_none() {
                return Err(Error::WrongState {
                    device: device.to_string(),
                    state: state.parse().map_err(Error::Usage)?,
                    action: "a fleet update",
                    expected: "verified on a board at least once",
                });
            }
            tx.execute(
                &format!(
                    "INSERT INTO deliveries (device_id, device, at, firmware, version, sha256, method, address, result, reason)
                     VALUES (?1, ?2, {NOW}, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
                ),
                params![row, device, d.firmware.name, d.firmware.version, sha, d.method.as_str(), d.address, result, reason],
            )
            .map_err(self.db())?;
            let set = match d.outcome {
                Outcome::Updated => Some(format!(
                    "pending_firmware = ?2, pending_version = ?3, pending_sha256 = ?4, pending_at = {NOW}"
                )),
                Outcome::AlreadyCurrent => Some(
                    "current_firmware = ?2, current_version = ?3, current_sha256 = coalesce(?4, current_sha256),
                     pending_firmware = NULL, pending_version = NULL, pending_sha256 = NULL, pending_at = NULL"
                        .to_string(),
                ),
                Outcome::Offline | Outcome::Failed(_) => None,
            };
            if let Some(set) = set {
                tx.execute(
                    &format!("UPDATE devices SET {set}, updated_at = {NOW} WHERE id = ?1"),
                    params![row, d.firmware.name, d.firmware.version, sha],
                )
                .map_err(self.db())?;
            }
            if matches!(d.outcome, Outcome::Updated | Outcome::AlreadyCurrent)
                && let Some(a) = &d.address
            {
                tx.execute("UPDATE devices SET address = ?2 WHERE id = ?1", params![row, a])
                    .map_err(self.db())?;
            }
            let detail = format!(
                "{} {} by {}{}",
                d.firmware.version,
                result,
                d.method.as_str(),
                reason.map(|r| format!(": {r}")).unwrap_or_default()
            );
            event(tx, &self.path, Some(device), None, None, "delivery", Some(&detail))
        })
    }

    /// The device reports it runs `version`: a matching pending build becomes current.
    pub fn confirm(&self, device: &str, version: &str) -> Result<Confirmation> {
        self.write(|tx| {
            let row = self.row_of(tx, device)?;
            let (pending, current): (Option<String>, Option<String>) = tx
                .query_row(
                    "SELECT pending_version, current_version FROM devices WHERE id = ?1",
                    [row],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(self.db())?;
            let (c, set) = if pending.as_deref() == Some(version) {
                (
                    Confirmation::Confirmed,
                    "current_firmware = pending_firmware, current_version = coalesce(pending_version, ?2),
                     current_sha256 = pending_sha256, pending_firmware = NULL, pending_version = NULL,
                     pending_sha256 = NULL, pending_at = NULL",
                )
            } else if current.as_deref() == Some(version) {
                (Confirmation::AlreadyCurrent, "current_version = ?2")
            } else {
                (
                    Confirmation::Unexpected {
                        reported: version.to_string(),
                    },
                    "current_version = ?2, current_sha256 = NULL",
                )
            };
            tx.execute(
                &format!("UPDATE devices SET {set}, updated_at = {NOW} WHERE id = ?1"),
                params![row, version],
            )
            .map_err(self.db())?;
            event(tx, &self.path, Some(device), None, None, "confirmed", Some(&format!("runs {version}")))?;
            Ok(c)
        })
    }

    /// Delivery attempts, oldest first; only `device`'s when given.
    pub fn deliveries(&self, device: Option<&str>) -> Result<Vec<DeliveryRecord>> {
        self.read(|tx| {
            let mut st = tx
                .prepare(
                    "SELECT device, at, firmware, version, sha256, method, address, result, reason
                     FROM deliveries WHERE ?1 IS NULL OR device = ?1 ORDER BY id",
                )
                .map_err(self.db())?;
            st.query_map([device], |r| {
                Ok(DeliveryRecord {
                    device: r.get(0)?,
                    at: r.get(1)?,
                    build: Build {
                        firmware: r.get(2)?,
                        version: r.get(3)?,
                        sha256: r.get(4)?,
                    },
                    method: r.get(5)?,
                    address: r.get(6)?,
                    result: r.get(7)?,
                    reason: r.get(8)?,
                })
            })
            .map_err(self.db())?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(self.db())
        })
    }

    /// Records the network address or mDNS name a device is reached at.
    pub fn set_address(&self, device: &str, address: &str) -> Result<()> {
        self.write(|tx| {
            let row = self.row_of(tx, device)?;
            let state: String = tx
                .query_row("SELECT state FROM devices WHERE id = ?1", [row], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(self.db())?
                .unwrap_or_default();
            let _: State = state.parse().map_err(Error::Usage)?;
            tx.execute(
                &format!("UPDATE devices SET address = ?2, updated_at = {NOW} WHERE id = ?1"),
                params![row, address],
            )
            .map_err(self.db())?;
            event(
                tx,
                &self.path,
                Some(device),
                None,
                None,
                "address",
                Some(address),
            )
        })
    }
}
