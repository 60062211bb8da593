//! [`SnapshotCdc`]: `snapshot+cdc` as a library feature: copy tables, then stream their
//! changes from a binlog position taken before the copies, with no gap (see [`super::handoff`]
//! for why nothing is lost and nothing older overwrites anything newer).
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use datatrace_core::{CheckpointStore, FileCheckpointStore};
//! use datatrace_mysql::binlog::CdcOptions;
//! use datatrace_mysql::{ConnectionConfig, MySqlConnection, SnapshotCdc, SourceOptions, TableSelector};
//!
//! let conn = MySqlConnection::connect(&ConnectionConfig::new("mysql://repl@127.0.0.1:3306/shop")).await?;
//! // The job's own checkpoint store: the handoff keeps its start position there, beside the
//! // units' checkpoints, so a resumed job continues where it stopped.
//! let store: Arc<dyn CheckpointStore> = Arc::new(FileCheckpointStore::new(".datatrace"));
//! let plan = SnapshotCdc::discover(
//!     &conn,
//!     &TableSelector::include(["shop.*"]),
//!     SourceOptions::default(),
//!     CdcOptions::default(),
//!     store,
//!     "shop-sync",
//! )
//! .await?;
//! # let sink: Arc<dyn datatrace_core::Sink> = Arc::new(datatrace_core::DiscardSink::new());
//! let report = plan.into_job(sink).run().await?; // runs until cancelled: the stream never ends
//! # Ok(()) }
//! ```

use std::sync::Arc;

use datatrace_core::{CheckpointStore, Job, PipelineConfig, Sink, Source, Transform, UnitSpec};

use super::handoff::{Handoff, HandoffSnapshot, HandoffStream};
use super::{check_prerequisites, BinlogSource, CdcOptions};
use crate::config::{SourceOptions, TableSelector};
use crate::connect::MySqlConnection;
use crate::error::MySqlError;
use crate::schema::discover_tables;
use crate::source::MySqlSource;

/// The units of a `snapshot+cdc` job: one snapshot unit per table (named `db.table`), then
/// the stream unit ([`SnapshotCdc::STREAM_UNIT`]), all sharing one handoff kept in the job's
/// checkpoint store.
///
/// The snapshot units take the server's position P0 before their first read (saving it as
/// the stream unit's checkpoint, once); the stream unit waits until every snapshot unit is
/// done, then streams from P0 (or from wherever a previous run of the job got to). Snapshot
/// rows carry P0's ordinal ([`SnapshotCdc::snapshot_stamp`]), so external versions of later
/// changes are higher. Run the units as one [`Job`] with the same checkpoint store and job
/// name as given here ([`SnapshotCdc::into_job`] does).
pub struct SnapshotCdc {
    job: String,
    store: Arc<dyn CheckpointStore>,
    handoff: Arc<Handoff>,
    tables: Vec<(String, Arc<dyn Source>)>,
    stream: Arc<dyn Source>,
}

impl SnapshotCdc {
    /// The name of the stream unit.
    pub const STREAM_UNIT: &'static str = "binlog";

    /// Wraps snapshot sources (`(unit name, source)`, usually [`MySqlSource`]s of `conn`'s
    /// server) and the stream (usually a [`BinlogSource`] of the same tables) for a job named
    /// `job` whose checkpoints are kept in `store`.
    pub fn new(
        conn: MySqlConnection,
        store: Arc<dyn CheckpointStore>,
        job: impl Into<String>,
        tables: Vec<(String, Arc<dyn Source>)>,
        stream: Arc<dyn Source>,
    ) -> SnapshotCdc {
        let job = job.into();
        let names = tables.iter().map(|(n, _)| n.clone()).collect();
        let handoff = Handoff::new(conn, store.clone(), job.clone(), Self::STREAM_UNIT, names);
        // A table without a key cannot have its changes replayed over its snapshot (a
        // replayed insert would duplicate its row): its stream starts after its snapshot.
        for (n, s) in &tables {
            if !s.resumes_exactly() {
                handoff.exact_snapshot(n);
            }
        }
        SnapshotCdc {
            job,
            store,
            handoff,
            tables,
            stream,
        }
    }

    /// Checks the server for change data capture ([`check_prerequisites`]), finds the tables
    /// `tables` selects (patterns without a database are tables of the connection's default
    /// database), and plans their snapshots (read with `snapshot`) and their stream (with
    /// `cdc`, whose `tables` and `zero_date` are set from the selection and `snapshot`).
    pub async fn discover(
        conn: &MySqlConnection,
        tables: &TableSelector,
        snapshot: SourceOptions,
        cdc: CdcOptions,
        store: Arc<dyn CheckpointStore>,
        job: impl Into<String>,
    ) -> Result<SnapshotCdc, MySqlError> {
        check_prerequisites(conn).await?;
        let selector = qualified(tables, conn.default_database());
        let mut units: Vec<(String, Arc<dyn Source>)> = Vec::new();
        for t in discover_tables(conn, &selector).await? {
            let name = t.qualified_name();
            // A table without a key is read in a consistent snapshot whose binlog position
            // its changes are streamed after (see [`SnapshotCdc::new`]).
            let mut options = snapshot.clone();
            if t.clone()
                .with_key_settings(&options.key_columns, &options.key)
                .is_ok_and(|t| t.key.is_empty())
            {
                options.consistent_snapshot = true;
            }
            let source = MySqlSource::new(conn.clone(), t, options)?;
            units.push((name, Arc::new(source)));
        }
        if units.is_empty() {
            return Err(MySqlError::Config(format!(
                "no table matches {:?} (exclude {:?})",
                tables.include, tables.exclude
            )));
        }
        let cdc = CdcOptions {
            tables: selector,
            zero_date: snapshot.zero_date,
            ..cdc
        };
        let stream = BinlogSource::new(conn.clone(), cdc)?.with_snapshot_options(snapshot);
        Ok(SnapshotCdc::new(
            conn.clone(),
            store,
            job,
            units,
            Arc::new(stream),
        ))
    }

    /// The job's name.
    pub fn job_name(&self) -> &str {
        &self.job
    }

    /// The units in the order they run: the tables, then the stream.
    pub fn units(&self) -> Vec<(String, Arc<dyn Source>)> {
        let mut units: Vec<(String, Arc<dyn Source>)> = self
            .tables
            .iter()
            .map(|(n, s)| {
                let wrapped: Arc<dyn Source> =
                    Arc::new(HandoffSnapshot::new(s.clone(), self.handoff.clone()));
                (n.clone(), wrapped)
            })
            .collect();
        units.push((
            Self::STREAM_UNIT.to_owned(),
            Arc::new(HandoffStream::new(
                self.stream.clone(),
                self.handoff.clone(),
            )),
        ));
        units
    }

    /// The transform of the snapshot units: their rows get P0's ordinal (for external
    /// versions).
    pub fn snapshot_stamp(&self) -> Arc<dyn Transform> {
        Arc::new(self.handoff.stamp())
    }

    /// A job running every unit into `sink`: named and checkpointed as given to
    /// [`SnapshotCdc::new`], the snapshot rows stamped, each key's changes kept in order
    /// (`partition_by_key`), and one unit at a time (the snapshots one after the other, then
    /// the stream). Raise [`Job::concurrency`] to copy tables in parallel (the stream then
    /// holds a slot while it waits); a [`Job::config`] of your own must keep
    /// `partition_by_key`.
    pub fn into_job(self, sink: Arc<dyn Sink>) -> Job {
        let stamp = self.snapshot_stamp();
        let mut job = Job::new(self.job.clone())
            .checkpoints(self.store.clone())
            .config(PipelineConfig {
                partition_by_key: true,
                ..Default::default()
            });
        for (name, source) in self.units() {
            let mut unit = UnitSpec::new(name.clone(), source, sink.clone());
            if name != Self::STREAM_UNIT {
                unit.transforms.push(stamp.clone());
            }
            job = job.unit(unit);
        }
        job
    }
}

/// `selector` with patterns without a database made patterns of `db`'s tables.
fn qualified(selector: &TableSelector, db: Option<&str>) -> TableSelector {
    let q = |p: &String| match db {
        Some(db) if !p.contains('.') => format!("{db}.{p}"),
        _ => p.clone(),
    };
    TableSelector {
        include: selector.include.iter().map(q).collect(),
        exclude: selector.exclude.iter().map(q).collect(),
    }
}
