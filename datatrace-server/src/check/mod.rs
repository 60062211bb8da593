//! `datatrace check`: proves that a job's target equals its source, and with `repair`
//! rewrites what differs.
//!
//! For every unit of a job (the same job file as `run`):
//!
//! Each side comes from its connector ([`crate::connectors::SourceEndpoint::check_source`],
//! [`crate::connectors::TargetEndpoint::check_target`]: [`side::CheckSource`] and
//! [`side::CheckTarget`]); what follows is the same for every connector.
//!
//! - **Checksums** where the connectors can compare ranges on both sides (MySQL -> MySQL
//!   with identical table definitions and no transforms: the table is cut into key ranges of
//!   `chunk_size` rows, the MySQL source's own chunk planning, and each range is checksummed
//!   on both servers, `COUNT(*)` and `BIT_XOR` of a CRC32 per row, see
//!   [`datatrace_mysql::checksum`]); a range whose checksums differ is cut into ever smaller
//!   sub-ranges checksummed the same way, down to a few dozen rows (pt-table-sync's way,
//!   [`crate::connectors::mysql::narrow`]), and only the sub-ranges that differ are read,
//!   row by row, to find the exact keys and fields ([`Method::Checksum`]).
//! - **Anything else** (Elasticsearch on either side, transforms, different column types):
//!   the source is read in chunks, each row goes through the job's transforms and the
//!   target's type mapping (for Elasticsearch, the sink's own document writer), and is
//!   compared with the target row or document looked up by key (`WHERE key IN (..)`, an
//!   `ids` query); then the target is read and each key looked up in the source to find
//!   extras ([`Method::Rows`]). Nested fields are compared and reported as paths
//!   (`a.b[2].c`); see [`normalize`] for the comparison rules.
//!
//! - **Jobs planned by their source** (denormalized documents, `[[source.documents]]`):
//!   the source's own check ([`crate::connectors::JobExtra::check`]; documents: every
//!   document rebuilt from the source and compared with the index, routing included).
//!
//! Keys that differ are checked again after `recheck_delay` before they are reported, so
//! that a target fed by change data capture is not blamed for changes still in flight.
//! With `repair`, missing and different rows are rewritten from the source through the
//! unit's own sink (same transforms and naming as `run`), extras are deleted with
//! `delete_extra`, and the unit is checked again ([`UnitCheck::after_repair`]).
//!
//! Memory is bounded by the chunk and batch sizes (plus the keys that differ), whatever the
//! table size. The function is a plain future: call it from any tokio task.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use datatrace_server::check::{check_job, CheckOptions};
//! use datatrace_server::job_file::JobFile;
//!
//! let job = JobFile::load(std::path::Path::new("job.toml"))?;
//! let report = check_job(&job, &CheckOptions::default()).await?;
//! println!("{}", serde_json::to_string_pretty(&report)?);
//! assert!(report.equal);
//! # Ok(()) }
//! ```

pub mod confirm;
pub mod multiset;
pub mod normalize;
pub mod options;
pub mod pass;
pub mod report;
pub mod side;
pub mod unit;

use std::sync::Arc;
use std::time::Instant;

use datatrace_core::transforms::TransformSpec;
use datatrace_core::{PrepareContext, SchemaRef, Transform};

pub use options::{CheckError, CheckOptions};
pub use report::{render, CheckReport, FieldDiff, Method, Repaired, RowDiff, UnitCheck};

use crate::connectors::{CheckSourceConn, CheckTargetConn, JobCtx};
use crate::job_file::JobFile;
use crate::plan::{plan, PlannedUnit};
use confirm::{confirm, Actions};
use side::RangeChecksum;
use unit::UnitCtx;

/// Checks every unit of `job` (see the module docs); repairs with `opts.repair`.
pub async fn check_job(job: &JobFile, opts: &CheckOptions) -> Result<CheckReport, CheckError> {
    let unsupported = |message: &str| CheckError::Unsupported {
        file: job.file.clone(),
        message: message.to_owned(),
    };
    if job
        .transforms
        .iter()
        .any(|t| matches!(t, TransformSpec::Route(_)))
    {
        return Err(unsupported(
            "check does not support jobs with a `route` transform (rows of one unit in several targets)",
        ));
    }
    if let Some(why) = job.source.0.uncheckable() {
        return Err(unsupported(&why));
    }
    if let Some(why) = job.target.0.uncheckable() {
        return Err(unsupported(&why));
    }
    // A job with a change stream is checked table by table: its tables, as a copy of them
    // would read them (the stream unit has no table of its own), with differing keys
    // checked again up to 10 times while the stream catches up.
    let streams = job.source.streams();
    let as_copy;
    let job = match job.source.as_copy() {
        Some(source) => {
            let mut copy = job.clone();
            copy.source = source;
            as_copy = copy;
            &as_copy
        }
        None => job,
    };
    let ctx = job.ctx();
    let opts = &CheckOptions {
        rounds: Some(opts.rounds.unwrap_or(if streams { 10 } else { 1 })),
        ..opts.clone()
    };
    let planned = plan(job, crate::plan::file_store(job)).await?;
    if let Some(extra) = &planned.extra {
        return extra.check(ctx, opts).await;
    }
    let names: Vec<String> = planned.units.iter().map(|u| u.name.clone()).collect();
    for u in &opts.units {
        if !names.contains(u) {
            return Err(CheckError::UnknownUnit {
                file: job.file.clone(),
                unit: u.clone(),
                units: names.join(", "),
            });
        }
    }
    let source = job.source.check_source(ctx).await?;
    let target = job.target.check_target(ctx).await?;
    let mut units = Vec::new();
    for u in planned.units {
        if !opts.units.is_empty() && !opts.units.contains(&u.name) {
            continue;
        }
        let name = u.name.clone();
        let fail = |message: String| CheckError::Unit {
            unit: name.clone(),
            message: job.scrub(&message),
        };
        let mut transforms: Vec<Arc<dyn Transform>> = u.own_transforms.clone();
        transforms.extend(planned.transforms.iter().cloned());
        let result = check_unit(ctx, &*source, &*target, u, transforms, opts)
            .await
            .map_err(fail)?;
        units.push(result);
    }
    let equal = units.iter().all(|u| u.equal);
    Ok(CheckReport {
        job: job.name.clone(),
        units,
        equal,
    })
}

fn out_schema(job: JobCtx<'_>, schema: &Option<SchemaRef>) -> Option<SchemaRef> {
    let mut s = schema.clone()?;
    for t in job.transforms {
        s = t.output_schema(&s).ok()?;
    }
    Some(s)
}

async fn check_unit(
    job: JobCtx<'_>,
    source: &dyn CheckSourceConn,
    target: &dyn CheckTargetConn,
    unit: PlannedUnit,
    transforms: Vec<Arc<dyn Transform>>,
    opts: &CheckOptions,
) -> Result<UnitCheck, String> {
    if opts.repair {
        // Creates a missing target; never truncates (as a resumed unit).
        unit.sink
            .prepare(&PrepareContext {
                unit: unit.name.clone(),
                schema: unit.schema.clone(),
                resumed: true,
            })
            .await
            .map_err(|e| format!("preparing the target for repairs: {e}"))?;
    }
    let source = source.unit(&unit).await?;
    let target = target.unit(&unit, &*source).await?;
    let sums = source.checksum(&*target, job.transforms.is_empty());
    let ctx = Arc::new(UnitCtx::new(
        unit.name.clone(),
        unit.target.clone(),
        source,
        target,
        transforms,
        unit.sink.clone(),
        unit.schema.clone(),
        out_schema(job, &unit.schema),
        opts.batch_size,
    ));
    let actions = Actions {
        repair: opts.repair,
        delete_extra: opts.delete_extra,
        shown: opts.max_diffs_shown,
        rounds: opts.rounds.unwrap_or(1),
    };
    let mut first = one_pass(&ctx, sums.clone(), opts, actions).await?;
    if let Some(rep) = &first.repaired {
        if rep.rewritten + rep.deleted > 0 {
            let _ = ctx.sink.finish().await;
            ctx.target.refresh().await?;
            let again = Actions {
                repair: false,
                ..actions
            };
            let after = one_pass(&ctx, sums, opts, again).await?;
            first.equal = after.pass_equal();
            first.after_repair = Some(Box::new(after));
        } else {
            let _ = ctx.sink.finish().await;
        }
    }
    Ok(first)
}

/// One check of a unit (finding, confirming, repairing when asked).
async fn one_pass(
    ctx: &Arc<UnitCtx>,
    sums: Option<Arc<dyn RangeChecksum>>,
    opts: &CheckOptions,
    actions: Actions,
) -> Result<UnitCheck, String> {
    let started = Instant::now();
    // A table without a key: both sides compared as multisets of rows.
    if ctx
        .schema
        .as_ref()
        .is_some_and(|s| s.primary_key().is_empty())
    {
        let mut check = UnitCheck::new(&ctx.name, &ctx.target_name, Method::Multiset);
        check.repaired = multiset::multiset_pass(
            ctx.clone(),
            opts.chunk_size,
            opts.parallelism,
            actions,
            &mut check,
        )
        .await?;
        check.equal = check.pass_equal();
        check.seconds = started.elapsed().as_secs_f64();
        return Ok(check);
    }
    let (method, found) = match sums {
        Some(sums) => (
            Method::Checksum,
            pass::checksum_pass(ctx.clone(), sums, opts).await?,
        ),
        None => (
            Method::Rows,
            pass::rows_pass(ctx.clone(), opts.chunk_size, opts.parallelism).await?,
        ),
    };
    let mut check = UnitCheck::new(&ctx.name, &ctx.target_name, method);
    check.source_rows = found.counts.source_rows;
    check.target_rows = found.counts.target_rows;
    check.chunks = found.counts.chunks;
    check.chunks_differing = found.counts.chunks_differing;
    check.sub_ranges = found.counts.sub_ranges;
    check.rows_read = found.counts.rows_read;
    check.repaired = confirm(ctx, found.suspects, opts.recheck_delay, actions, &mut check).await?;
    check.equal = check.pass_equal();
    check.seconds = started.elapsed().as_secs_f64();
    Ok(check)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send<T: Send>(_: &T) {}

    #[test]
    fn check_job_runs_in_a_spawned_task() {
        // The server's "verify" action runs it with tokio::spawn: the future must be Send.
        let job = JobFile::parse(
            "job.toml",
            "name = \"j\"\n[source]\ntype = \"generator\"\n[target]\ntype = \"discard\"\n",
            std::path::Path::new("."),
            &|_| None,
        )
        .unwrap();
        let opts = CheckOptions::default();
        let fut = check_job(&job, &opts);
        assert_send(&fut);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = rt.block_on(fut).unwrap_err();
        assert!(err.to_string().contains("generator"), "{err}");
    }
}
