//! `check` of a documents job: every kind of document (`orders`, `orders.items`) is rebuilt
//! from the source and compared with the index, extras looked up in the source, and with
//! `repair` written (see `datatrace_denormal::check`). The change stream unit has nothing
//! of its own to compare.

use std::collections::BTreeSet;

use datatrace_denormal::check::{check_unit, CheckOptions as DocOptions, DiffKind, KindCheck};
use serde_json::Value as Json;

use async_trait::async_trait;

use super::PlannedDocuments;
use crate::check::normalize::diff_docs;
use crate::check::report::{CheckReport, Method, Repaired, RowDiff, UnitCheck};
use crate::check::{CheckError, CheckOptions};
use crate::connectors::api::{JobCtx, JobExtra};
use crate::job_file::error::JobFileError;

/// `check` and `validate` of a documents job.
pub struct DocumentsCheck {
    /// The planned documents.
    pub planned: PlannedDocuments,
}

#[async_trait]
impl JobExtra for DocumentsCheck {
    async fn check(&self, job: JobCtx<'_>, opts: &CheckOptions) -> Result<CheckReport, CheckError> {
        check_documents(job, &self.planned, opts).await
    }

    /// The busiest row of each shared table (reads the shared tables in full: here, not
    /// before every run).
    async fn validate(&self, job: JobCtx<'_>) -> Result<Vec<String>, JobFileError> {
        let found = self
            .planned
            .docs
            .check_fan_out()
            .await
            .map_err(|e| super::error(job, &e))?;
        Ok(found
            .into_iter()
            .map(|f| {
                format!(
                    "fan-out:      {}: its busiest row is in {} document(s)",
                    f.relation, f.documents
                )
            })
            .collect())
    }
}

/// Checks the documents of `planned` (units named in `opts.units` only, when given).
pub async fn check_documents(
    job: JobCtx<'_>,
    planned: &PlannedDocuments,
    opts: &CheckOptions,
) -> Result<CheckReport, CheckError> {
    let units = planned.docs.units();
    for u in &opts.units {
        if !units.contains(u) {
            return Err(CheckError::UnknownUnit {
                file: job.file.to_owned(),
                unit: u.clone(),
                units: units.join(", "),
            });
        }
    }
    let lib = DocOptions {
        repair: opts.repair,
        delete_extra: opts.delete_extra,
        max_shown: opts.max_diffs_shown,
        recheck_delay: opts.recheck_delay,
        page: opts.batch_size.max(1),
    };
    let mut out = Vec::new();
    for unit in units {
        if !opts.units.is_empty() && !opts.units.contains(&unit) {
            continue;
        }
        let fail = |e: datatrace_denormal::DenormalError| CheckError::Unit {
            unit: unit.clone(),
            message: job.scrub(&e.to_string()),
        };
        let first = check_unit(&planned.docs, &unit, &planned.sink, &lib)
            .await
            .map_err(fail)?;
        let mut result = to_unit_check(&first);
        if opts.repair {
            result.repaired = Some(Repaired {
                rewritten: first.rewritten,
                deleted: first.deleted,
                rejected: first.rejected.clone(),
                rejected_count: first.rejected_count,
                ..Default::default()
            });
            let again = DocOptions {
                repair: false,
                delete_extra: false,
                ..lib.clone()
            };
            let after = check_unit(&planned.docs, &unit, &planned.sink, &again)
                .await
                .map_err(fail)?;
            let after = to_unit_check(&after);
            result.equal = after.pass_equal();
            result.after_repair = Some(Box::new(after));
        }
        out.push(result);
    }
    let equal = out.iter().all(|u| u.equal);
    Ok(CheckReport {
        job: job.name.to_owned(),
        units: out,
        equal,
    })
}

fn object(v: &Option<(Json, Option<String>)>) -> serde_json::Map<String, Json> {
    let mut m = match v {
        Some((Json::Object(m), _)) => m.clone(),
        _ => serde_json::Map::new(),
    };
    if let Some((_, Some(r))) = v {
        m.insert("_routing".into(), Json::String(r.clone()));
    }
    m
}

/// The library's result in the report's form.
fn to_unit_check(k: &KindCheck) -> UnitCheck {
    let mut u = UnitCheck::new(&k.unit, &k.index, Method::Rows);
    u.source_rows = k.expected;
    u.target_rows = k.found;
    u.missing = k.missing;
    u.extra = k.extra;
    u.different = k.different;
    u.settled = k.settled;
    u.seconds = k.seconds;
    let mut missing = BTreeSet::new();
    let mut extra = BTreeSet::new();
    for d in &k.shown {
        match d.kind {
            DiffKind::Missing => {
                missing.insert(d.id.clone());
            }
            DiffKind::Extra => {
                extra.insert(d.id.clone());
            }
            DiffKind::Different => u.diffs.push(RowDiff {
                key: d.id.clone(),
                fields: diff_docs(&object(&d.expected), &object(&d.found)),
            }),
        }
    }
    u.missing_keys = missing.into_iter().collect();
    u.extra_keys = extra.into_iter().collect();
    u.equal = u.pass_equal();
    u
}
