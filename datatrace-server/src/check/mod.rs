//! `datatrace check`: proves that a job's target equals its source, and with `repair`
//! rewrites what differs.
//!
//! For every unit of a job (the same job file as `run`):
//!
//! - **MySQL -> MySQL** with identical table definitions and no transforms: the table is
//!   cut into key ranges of `chunk_size` rows (the MySQL source's own chunk planning) and
//!   each range is checksummed on both servers (`COUNT(*)` and `BIT_XOR` of a CRC32 per row,
//!   see [`datatrace_mysql::checksum`]); only ranges whose checksums differ are read, row by
//!   row, to find the exact keys and fields ([`Method::Checksum`]).
//! - **Anything else** (Elasticsearch on either side, transforms, different column types):
//!   the source is read in chunks, each row goes through the job's transforms and the
//!   target's type mapping (for Elasticsearch, the sink's own document writer), and is
//!   compared with the target row or document looked up by key (`WHERE key IN (..)`, an
//!   `ids` query); then the target is read and each key looked up in the source to find
//!   extras ([`Method::Rows`]). Nested fields are compared and reported as paths
//!   (`a.b[2].c`); see [`normalize`] for the comparison rules.
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
pub mod normalize;
pub mod pass;
pub mod report;
pub mod sides;
pub mod unit;

use std::sync::Arc;
use std::time::{Duration, Instant};

use datatrace_core::transforms::TransformSpec;
use datatrace_core::{PrepareContext, SchemaRef, Transform};
use datatrace_es::{EsClient, SourceConfig};
use datatrace_mysql::{table_info, MySqlConnection, SourceOptions, TableInfo};

pub use report::{render, CheckReport, FieldDiff, Method, Repaired, RowDiff, UnitCheck};

use crate::job_file::{JobFile, JobFileError, SourceSpec, TargetSpec};
use crate::plan::{plan, PlannedUnit};
use confirm::{confirm, Actions};
use sides::{EsIndex, MySqlTable};
use unit::{SourceEnd, TargetEnd, UnitCtx};

/// How to check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    /// Rewrite missing and different rows from the source, then check again.
    pub repair: bool,
    /// With `repair`, also delete target rows that have no source row.
    pub delete_extra: bool,
    /// Keys (and rows, field by field) shown per kind of difference. Default 10.
    pub max_diffs_shown: usize,
    /// Wait before checking differing keys again (live targets). Default 2 s.
    pub recheck_delay: Duration,
    /// Rows per checksummed key range (and per part of a row-by-row scan). Default 10,000.
    pub chunk_size: u64,
    /// Rows per lookup in the other side. Default 1,000.
    pub batch_size: usize,
    /// Ranges or parts checked at the same time. Default 4.
    pub parallelism: usize,
    /// Only these units (empty: all).
    pub units: Vec<String>,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            repair: false,
            delete_extra: false,
            max_diffs_shown: 10,
            recheck_delay: Duration::from_secs(2),
            chunk_size: 10_000,
            batch_size: 1_000,
            parallelism: 4,
            units: Vec::new(),
        }
    }
}

/// Why a check could not be done.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The job file, or a check before the run (servers, tables, transforms), is wrong.
    #[error("{0}")]
    Job(#[from] JobFileError),
    /// The job is of a kind `check` cannot compare.
    #[error("{file}: {message}")]
    Unsupported {
        /// The job file.
        file: String,
        /// What is not supported.
        message: String,
    },
    /// A `--unit` names no unit of the job.
    #[error("{file}: no unit {unit:?} in this job (units: {units})")]
    UnknownUnit {
        /// The job file.
        file: String,
        /// The name given.
        unit: String,
        /// The job's units.
        units: String,
    },
    /// Reading or writing a unit failed.
    #[error("unit {unit}: {message}")]
    Unit {
        /// The unit.
        unit: String,
        /// What failed.
        message: String,
    },
}

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
    if matches!(job.source, SourceSpec::Generator(_)) {
        return Err(unsupported(
            "check compares a MySQL or Elasticsearch source with its target; this job's source is a generator",
        ));
    }
    if matches!(job.target, TargetSpec::Discard(_)) {
        return Err(unsupported(
            "check compares a source with its target; this job's target discards everything",
        ));
    }
    let planned = plan(job).await?;
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
    let ends = Ends::connect(job).await?;
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
        let result = check_unit(job, &ends, u, transforms, opts)
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

/// The connected source and target servers of a job.
struct Ends {
    source: SourceConn,
    target: TargetConn,
}

enum SourceConn {
    MySql(MySqlConnection, SourceOptions),
    Es(EsClient, SourceConfig),
}

enum TargetConn {
    MySql(MySqlConnection),
    Es(EsClient, Box<datatrace_es::SinkConfig>),
}

impl Ends {
    async fn connect(job: &JobFile) -> Result<Ends, CheckError> {
        let err = |at: &str, e: String| JobFileError::new(&job.file, at, job.scrub(&e));
        let source = match &job.source {
            SourceSpec::MySql(s) => SourceConn::MySql(
                MySqlConnection::connect(&s.connection)
                    .await
                    .map_err(|e| err("source.url", e.to_string()))?,
                s.options.clone(),
            ),
            SourceSpec::Elasticsearch(s) => SourceConn::Es(
                EsClient::connect(&s.connection)
                    .await
                    .map_err(|e| err("source.url", e.to_string()))?,
                s.options.clone(),
            ),
            SourceSpec::Generator(_) => {
                return Err(err("source.type", "generator sources cannot be checked".into()).into())
            }
        };
        let target = match &job.target {
            TargetSpec::MySql(s) => {
                let conn = MySqlConnection::connect(&s.connection)
                    .await
                    .map_err(|e| err("target.url", e.to_string()))?;
                TargetConn::MySql(conn)
            }
            TargetSpec::Elasticsearch(s) => TargetConn::Es(
                EsClient::connect(&s.connection)
                    .await
                    .map_err(|e| err("target.url", e.to_string()))?,
                Box::new(s.options.clone()),
            ),
            TargetSpec::Discard(_) => {
                return Err(err("target.type", "discard targets cannot be checked".into()).into())
            }
        };
        Ok(Ends { source, target })
    }
}

/// A MySQL table's shape, with the key the source uses.
async fn mysql_table(
    conn: &MySqlConnection,
    qualified: &str,
    key_columns: &[String],
) -> Result<TableInfo, String> {
    let (db, table) = qualified
        .split_once('.')
        .ok_or_else(|| format!("{qualified}: expected db.table"))?;
    let info = table_info(conn, db, table)
        .await
        .map_err(|e| e.to_string())?
        .with_key_columns(key_columns)
        .map_err(|e| e.to_string())?;
    if info.key.is_empty() {
        return Err(format!(
            "table {qualified} has no primary key (nor a unique NOT NULL key): rows cannot be \
             matched; name `key_columns` in the source"
        ));
    }
    Ok(info)
}

/// Same columns (names, types, charsets) and key: checksums are comparable.
fn same_shape(a: &TableInfo, b: &TableInfo) -> bool {
    let (x, y) = (a.schema.columns(), b.schema.columns());
    x.len() == y.len()
        && x.iter()
            .zip(y)
            .all(|(p, q)| p.name == q.name && p.native_type == q.native_type)
        && a.key_names() == b.key_names()
}

fn out_schema(job: &JobFile, schema: &Option<SchemaRef>) -> Option<SchemaRef> {
    let mut s = schema.clone()?;
    for t in &job.transforms {
        s = t.output_schema(&s).ok()?;
    }
    Some(s)
}

async fn check_unit(
    job: &JobFile,
    ends: &Ends,
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
    let (source, src_info) = match &ends.source {
        SourceConn::MySql(conn, o) => {
            let table = mysql_table(conn, &unit.name, &o.key_columns).await?;
            let opts = SourceOptions {
                consistent_snapshot: false,
                ..o.clone()
            };
            (
                SourceEnd::MySql(MySqlTable {
                    conn: conn.clone(),
                    table: table.clone(),
                    opts,
                }),
                Some(table),
            )
        }
        SourceConn::Es(client, cfg) => (
            SourceEnd::Es(EsIndex {
                client: client.clone(),
                cfg: SourceConfig {
                    index: unit.name.clone(),
                    ..cfg.clone()
                },
            }),
            None,
        ),
    };
    let (target, method) = match &ends.target {
        TargetConn::MySql(conn) => {
            let table = mysql_table(conn, &unit.target, &[])
                .await
                .map_err(|e| format!("target: {e}"))?;
            let zero_date = match &ends.source {
                SourceConn::MySql(_, o) => o.zero_date,
                SourceConn::Es(..) => Default::default(),
            };
            let checksum = job.transforms.is_empty()
                && matches!(&ends.source, SourceConn::MySql(_, o) if o.filter.is_none())
                && src_info.as_ref().is_some_and(|s| same_shape(s, &table));
            let method = if checksum {
                Method::Checksum
            } else {
                Method::Rows
            };
            (
                TargetEnd::MySql(MySqlTable {
                    conn: conn.clone(),
                    table,
                    opts: SourceOptions {
                        zero_date,
                        ..Default::default()
                    },
                }),
                method,
            )
        }
        TargetConn::Es(client, sink) => {
            let index = unit.target.clone();
            let exists = client
                .index_exists(&index)
                .await
                .map_err(|e| e.to_string())?;
            if !exists {
                return Err(format!(
                    "target index {index} does not exist (run the job, or check with --repair)"
                ));
            }
            (
                TargetEnd::Es {
                    index: EsIndex {
                        client: client.clone(),
                        cfg: SourceConfig {
                            raw: true,
                            ..SourceConfig::new(index)
                        },
                    },
                    separator: sink.id_separator.clone(),
                    write_nulls: sink.write_nulls,
                    mapping: sink.mapping.clone(),
                },
                Method::Rows,
            )
        }
    };
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
    };
    let mut first = one_pass(&ctx, method, opts, actions).await?;
    if let Some(rep) = &first.repaired {
        if rep.rewritten + rep.deleted > 0 {
            let _ = ctx.sink.finish().await;
            if let TargetEnd::Es { index, .. } = &ctx.target {
                datatrace_es::indices::refresh(&index.client, &index.cfg.index)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let again = Actions {
                repair: false,
                ..actions
            };
            let after = one_pass(&ctx, method, opts, again).await?;
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
    method: Method,
    opts: &CheckOptions,
    actions: Actions,
) -> Result<UnitCheck, String> {
    let started = Instant::now();
    let found = match method {
        Method::Checksum => {
            pass::checksum_pass(ctx.clone(), opts.chunk_size, opts.parallelism).await?
        }
        Method::Rows => pass::rows_pass(ctx.clone(), opts.chunk_size, opts.parallelism).await?,
    };
    let mut check = UnitCheck::new(&ctx.name, &ctx.target_name, method);
    check.source_rows = found.counts.source_rows;
    check.target_rows = found.counts.target_rows;
    check.chunks = found.counts.chunks;
    check.chunks_differing = found.counts.chunks_differing;
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
