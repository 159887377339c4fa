//! Planning a job: the input's own problems (see `plan`), then conflicts with
//! what the ledger holds, then recording it, all in one transaction.

use crate::crypto::Cipher;
use crate::error::{Error, Problem, Problems, Result};
use crate::identity::{IdentitySource, JobSpec};
use crate::ledger::{Job, Ledger, StoredJob, event, exec, holder, insert_device, load_values};
use crate::plan::{self, Planned, PlannedRow};
use crate::schema::NOW;
use crate::template::Template;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::BTreeSet;

impl Ledger {
    /// Checks a job and records it: every problem of its input (unknown or
    /// missing columns, duplicated device ids in the CSV or in the ledger,
    /// values breaking a slot's rule, templates that cannot make distinct
    /// ids) comes back at once in [`Error::Invalid`], and then nothing is
    /// recorded. Planning the same job again (a re-run) finds it and adds
    /// only what is new.
    pub fn plan(&self, spec: &JobSpec) -> Result<Job> {
        let checked = plan::check(spec);
        let mut problems = checked.problems;
        let source_name = match &spec.source {
            IdentitySource::Csv(c) => c.name.clone(),
            IdentitySource::Generate(_) => "the generated identities".to_string(),
        };
        let invalid = |problems: Vec<Problem>| {
            Error::Invalid(Problems {
                source: source_name.clone(),
                problems,
            })
        };
        let Some(planned) = checked.planned else {
            return Err(invalid(problems));
        };
        let cipher = self.cipher("planning a job")?;
        let kind = match planned {
            Planned::Csv(_) => "csv",
            Planned::Generated { .. } => "generated",
        };
        self.write_durable(true, |tx| {
            let existing: Option<StoredJob> = tx
                .query_row(
                    "SELECT id, source, template, start_n, next_n FROM jobs WHERE name = ?1",
                    [&spec.name],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
                )
                .optional()
                .map_err(self.db())?;
            if let Some((_, source, ..)) = &existing
                && source != kind
            {
                return Err(self.mismatch(
                    spec,
                    format!("{source} identities (this run gives {kind} ones)"),
                ));
            }
            let job_id = existing.as_ref().map(|e| e.0);
            let mut new_rows = Vec::new();
            let mut template = None;
            match &planned {
                Planned::Csv(rows) => {
                    new_rows = self.csv_conflicts(tx, cipher, spec, rows, job_id, &mut problems)?;
                }
                Planned::Generated {
                    template: t,
                    start,
                    count,
                } => {
                    template = Some(t.clone());
                    match &existing {
                        Some(job) => {
                            self.rerun_check(spec, job, t, *start, *count, &mut problems)?
                        }
                        None => self.taken_ids(tx, t, *start, *count, &mut problems)?,
                    }
                }
            }
            if !problems.is_empty() {
                return Err(invalid(std::mem::take(&mut problems)));
            }
            let job_id = match job_id {
                Some(id) => {
                    if let Planned::Generated { count, .. } = &planned {
                        exec(
                            tx,
                            "UPDATE jobs SET count = ?2 WHERE id = ?1",
                            params![id, *count as i64],
                        )
                        .map_err(self.db())?;
                    }
                    id
                }
                None => self.insert_job(tx, spec, &planned, kind, &source_name)?,
            };
            if let Planned::Csv(rows) = &planned {
                for r in new_rows {
                    let values = &r.values;
                    insert_device(
                        tx,
                        &self.path,
                        cipher,
                        spec,
                        job_id,
                        &r.device,
                        r.row as i64,
                        None,
                        values,
                    )?;
                }
                self.drop_unlisted(tx, spec, job_id, rows)?;
            }
            Ok(Job {
                id: job_id,
                spec: spec.clone(),
                template,
            })
        })
    }

    fn mismatch(&self, spec: &JobSpec, what: String) -> Error {
        Error::JobMismatch {
            path: self.path.clone(),
            job: spec.name.clone(),
            what,
        }
    }

    /// CSV rows against the ledger: the rows to add; a row already in this
    /// job must be unchanged, a device id in another job is a duplicate.
    fn csv_conflicts<'r>(
        &self,
        tx: &Connection,
        cipher: &Cipher,
        spec: &JobSpec,
        rows: &'r [PlannedRow],
        job_id: Option<i64>,
        problems: &mut Vec<Problem>,
    ) -> Result<Vec<&'r PlannedRow>> {
        let mut new_rows = Vec::new();
        for r in rows {
            let Some(h) = holder(tx, &self.path, &r.device)? else {
                new_rows.push(r);
                continue;
            };
            if Some(h.job_id) != job_id {
                problems.push(Problem::at(
                    r.row,
                    Some(&spec.device_key),
                    format!(
                        "device id {} is already in the ledger ({}); every device needs its own id",
                        r.device,
                        h.describe()
                    ),
                ));
                continue;
            }
            let stored = load_values(tx, &self.path, cipher, h.row, &r.device)?;
            let get = |list: &[(String, crate::Value)], k: &str| {
                list.iter()
                    .find(|(key, _)| key == k)
                    .map(|(_, v)| v.expose().to_string())
            };
            let differs: Vec<&str> = r
                .from_csv
                .iter()
                .filter(|k| get(&r.values, k) != get(&stored, k))
                .map(String::as_str)
                .collect();
            if !differs.is_empty() {
                problems.push(Problem::at(
                    r.row,
                    Some(&spec.device_key),
                    format!(
                        "device {} is already in this job ({}) with other values for {}; a re-run must use the same CSV rows (add new rows for new devices)",
                        r.device,
                        h.describe(),
                        differs.join(", ")
                    ),
                ));
            }
        }
        Ok(new_rows)
    }

    /// A re-run of a generated job: same template and start; the count may
    /// grow, not drop below what was issued.
    fn rerun_check(
        &self,
        spec: &JobSpec,
        job: &StoredJob,
        t: &Template,
        start: u64,
        count: u64,
        problems: &mut Vec<Problem>,
    ) -> Result<()> {
        let (_, _, stored_t, stored_start, next_n) = job;
        if stored_t.as_deref() != Some(t.source()) || *stored_start != Some(start as i64) {
            return Err(self.mismatch(
                spec,
                format!(
                    "template {:?} starting at {} (this run: {:?} from {start})",
                    stored_t.as_deref().unwrap_or(""),
                    stored_start.unwrap_or(0),
                    t.source()
                ),
            ));
        }
        let issued = next_n.unwrap_or(start as i64) - start as i64;
        if (count as i64) < issued {
            problems.push(Problem::general(format!(
                "job {} has issued {issued} identities already; the count cannot be less",
                spec.name
            )));
        }
        Ok(())
    }

    /// `{n}` ids of a new job that the ledger already holds.
    fn taken_ids(
        &self,
        tx: &Connection,
        t: &Template,
        start: u64,
        count: u64,
        problems: &mut Vec<Problem>,
    ) -> Result<()> {
        if !t.uses_n() || t.uses_mac() {
            return Ok(()); // `{mac}` ids are checked per board at reserve time
        }
        // One pass over the ids in the ledger, not one query per rendered id.
        let existing: std::collections::HashSet<String> = {
            let mut st = tx
                .prepare("SELECT device FROM devices")
                .map_err(self.db())?;
            st.query_map([], |r| r.get(0))
                .map_err(self.db())?
                .collect::<rusqlite::Result<_>>()
                .map_err(self.db())?
        };
        let mut taken = Vec::new();
        let mut n_taken = 0;
        if !existing.is_empty() {
            for n in start..start + count {
                let id = t.render(n, None).unwrap_or_default();
                if existing.contains(&id) {
                    n_taken += 1;
                    if taken.len() < 5
                        && let Some(h) = holder(tx, &self.path, &id)?
                    {
                        taken.push(format!("{id} ({})", h.describe()));
                    }
                }
            }
        }
        if n_taken > 0 {
            let more = if n_taken > taken.len() {
                format!(" and {} more", n_taken - taken.len())
            } else {
                String::new()
            };
            problems.push(Problem::general(format!(
                "device-id template {:?} makes ids already in the ledger: {}{more}; use another prefix or start number",
                t.source(),
                taken.join(", ")
            )));
        }
        Ok(())
    }

    fn insert_job(
        &self,
        tx: &Connection,
        spec: &JobSpec,
        planned: &Planned,
        kind: &str,
        source_name: &str,
    ) -> Result<i64> {
        let (t, s, c) = match planned {
            Planned::Generated {
                template,
                start,
                count,
            } => (
                Some(template.source().to_string()),
                Some(*start as i64),
                Some(*count as i64),
            ),
            Planned::Csv(_) => (None, None, None),
        };
        exec(
            tx,
            &format!(
                "INSERT INTO jobs (name, source, input, template, start_n, count, next_n, firmware, version, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?5, ?7, ?8, {NOW})"
            ),
            params![spec.name, kind, source_name, t, s, c, spec.firmware.name, spec.firmware.version],
        )
        .map_err(self.db())?;
        let id = tx.last_insert_rowid();
        let detail = format!("{kind} identities from {source_name}");
        event(
            tx,
            &self.path,
            None,
            None,
            Some(&spec.name),
            "job planned",
            Some(&detail),
        )?;
        Ok(id)
    }

    /// Rows dropped from the CSV that were never issued leave the pool.
    fn drop_unlisted(
        &self,
        tx: &Connection,
        spec: &JobSpec,
        job_id: i64,
        rows: &[PlannedRow],
    ) -> Result<()> {
        let keep: BTreeSet<&str> = rows.iter().map(|r| r.device.as_str()).collect();
        let free: Vec<(i64, String)> = {
            let mut st = tx
                .prepare("SELECT id, device FROM devices WHERE job_id = ?1 AND state = 'free'")
                .map_err(self.db())?;
            st.query_map([job_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(self.db())?
                .collect::<rusqlite::Result<_>>()
                .map_err(self.db())?
        };
        for (id, device) in free.into_iter().filter(|(_, d)| !keep.contains(d.as_str())) {
            exec(tx, "DELETE FROM devices WHERE id = ?1", [id]).map_err(self.db())?;
            let why = Some("no longer in the CSV; never issued");
            event(
                tx,
                &self.path,
                Some(&device),
                None,
                Some(&spec.name),
                "unplanned",
                why,
            )?;
        }
        Ok(())
    }
}
