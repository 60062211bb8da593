//! Planning MySQL sources (one unit per table matched by the patterns) and targets.

use std::sync::Arc;

use datatrace_core::{CheckpointStore, FileCheckpointStore, SchemaRef, Sink, Source, Transform};
use datatrace_mysql::binlog::handoff::{Handoff, HandoffSnapshot, HandoffStream};
use datatrace_mysql::binlog::{check_prerequisites, BinlogSource};
use datatrace_mysql::{
    discover_tables, table_info, MySqlConnection, MySqlSink, MySqlSource, TableSelector,
};

use super::unit_sink::UnitSink;
use crate::job_file::error::JobFileError;
use crate::job_file::mysql::{MySqlSourceSpec, MySqlTargetSpec, SourceMode};
use crate::job_file::JobFile;

/// Connects; the error names the URL (without its password).
async fn connect(
    job: &JobFile,
    at: &str,
    cfg: &datatrace_mysql::ConnectionConfig,
) -> Result<MySqlConnection, JobFileError> {
    MySqlConnection::connect(cfg).await.map_err(|e| {
        JobFileError::new(
            &job.file,
            &format!("{at}.url"),
            job.scrub(&format!("cannot connect to {}: {e}", cfg.redacted_url())),
        )
    })
}

/// The tables of a MySQL source, each a unit named `db.table`.
pub async fn discover(
    job: &JobFile,
    spec: &MySqlSourceSpec,
) -> Result<(MySqlConnection, Vec<(String, Arc<dyn Source>)>), JobFileError> {
    let conn = connect(job, "source", &spec.connection).await?;
    let mut units: Vec<(String, Arc<dyn Source>)> = Vec::new();
    for (i, pattern) in spec.tables.iter().enumerate() {
        let at = format!("source.tables[{i}]");
        let selector = TableSelector {
            include: vec![pattern.clone()],
            exclude: spec.exclude.clone(),
        };
        let tables = discover_tables(&conn, &selector)
            .await
            .map_err(|e| JobFileError::new(&job.file, &at, job.scrub(&e.to_string())))?;
        if tables.is_empty() {
            let why = if spec.exclude.is_empty() {
                String::new()
            } else {
                " (after exclude)".to_owned()
            };
            return Err(JobFileError::new(
                &job.file,
                &at,
                format!(
                    "no table matches {pattern:?}{why} on {}",
                    spec.connection.redacted_url()
                ),
            ));
        }
        for t in tables {
            let name = t.qualified_name();
            if units.iter().any(|(n, _)| n == &name) {
                continue;
            }
            let source = MySqlSource::new(conn.clone(), t, spec.options.clone())
                .map_err(|e| JobFileError::new(&job.file, &at, job.scrub(&e.to_string())))?;
            units.push((name, Arc::new(source)));
        }
    }
    Ok((conn, units))
}

/// The name of the change stream unit of `cdc` and `snapshot+cdc` jobs.
pub const STREAM_UNIT: &str = "binlog";

/// The units of a MySQL source for its `mode`: the table units (`full`), the stream unit
/// (`cdc`), or both (`snapshot+cdc`: the tables wrapped to take the stream's start position
/// P0 before reading, the stream waiting for them and starting at P0). Also returns the
/// transform that gives snapshot rows P0's ordinal (for external versions), for the table
/// units of `snapshot+cdc`.
pub async fn with_stream(
    job: &JobFile,
    spec: &MySqlSourceSpec,
    conn: &MySqlConnection,
    tables: Vec<(String, Arc<dyn Source>)>,
) -> Result<(Vec<(String, Arc<dyn Source>)>, Option<Arc<dyn Transform>>), JobFileError> {
    if spec.mode == SourceMode::Full {
        return Ok((tables, None));
    }
    check_prerequisites(conn)
        .await
        .map_err(|e| JobFileError::new(&job.file, "source.mode", job.scrub(&e.to_string())))?;
    let mut cdc = (*spec.cdc).clone();
    // Patterns without a database are tables of the URL's database.
    if let Some(db) = conn.default_database() {
        for p in cdc
            .tables
            .include
            .iter_mut()
            .chain(cdc.tables.exclude.iter_mut())
        {
            if !p.contains('.') {
                *p = format!("{db}.{p}");
            }
        }
    }
    let stream: Arc<dyn Source> = Arc::new(
        BinlogSource::new(conn.clone(), cdc)
            .map_err(|e| JobFileError::new(&job.file, "source.cdc", e.to_string()))?,
    );
    if spec.mode == SourceMode::Cdc {
        return Ok((vec![(STREAM_UNIT.to_owned(), stream)], None));
    }
    let store: Arc<dyn CheckpointStore> = Arc::new(FileCheckpointStore::new(&job.checkpoint_dir));
    let names = tables.iter().map(|(n, _)| n.clone()).collect();
    let handoff = Handoff::new(conn.clone(), store, job.name.clone(), STREAM_UNIT, names);
    let mut units: Vec<(String, Arc<dyn Source>)> = tables
        .into_iter()
        .map(|(n, s)| {
            let wrapped: Arc<dyn Source> = Arc::new(HandoffSnapshot::new(s, handoff.clone()));
            (n, wrapped)
        })
        .collect();
    units.push((
        STREAM_UNIT.to_owned(),
        Arc::new(HandoffStream::new(stream, handoff.clone())),
    ));
    let stamp: Arc<dyn Transform> = Arc::new(handoff.stamp());
    Ok((units, Some(stamp)))
}

/// A connected MySQL target.
pub struct MySqlTarget {
    conn: MySqlConnection,
    sink: Arc<MySqlSink>,
    spec: MySqlTargetSpec,
    database: String,
}

impl MySqlTarget {
    /// Connects and checks that there is a target database.
    pub async fn connect(job: &JobFile, spec: &MySqlTargetSpec) -> Result<Self, JobFileError> {
        let conn = connect(job, "target", &spec.connection).await?;
        let database = spec
            .options
            .database
            .clone()
            .or_else(|| conn.default_database().map(str::to_owned))
            .ok_or_else(|| {
                JobFileError::new(
                    &job.file,
                    "target",
                    "no target database: name one in the URL (mysql://host:3306/db) or in `database`",
                )
            })?;
        let sink = MySqlSink::new(conn.clone(), spec.options.clone())
            .map_err(|e| JobFileError::new(&job.file, "target", job.scrub(&e.to_string())))?
            .schema_changes(spec.schema_changes)
            .table_changes(spec.table_changes);
        Ok(MySqlTarget {
            conn,
            sink: Arc::new(sink),
            spec: spec.clone(),
            database,
        })
    }

    /// The sink for one unit and the `db.table` it writes. `source` is the unit's source
    /// table (`db`, `table`, endpoint) when the source is MySQL, to refuse copying a table
    /// onto itself.
    pub async fn sink_for(
        &self,
        job: &JobFile,
        schema: Option<&SchemaRef>,
        transformed: Option<SchemaRef>,
        source: Option<(&str, &str, &str)>,
    ) -> Result<(Arc<dyn Sink>, String), JobFileError> {
        let table = match schema {
            Some(s) => self.spec.table.render(s.name(), s.namespace()),
            None => "?".into(),
        };
        let target = format!("{}.{table}", self.database);
        if let Some((endpoint, db, name)) = source {
            if endpoint == self.conn.endpoint() && db == self.database && name == table {
                return Err(JobFileError::new(
                    &job.file,
                    "target",
                    format!(
                        "the target table {target} is the source table: write to another \
                         database or set `table` (e.g. \"{{table}}_copy\")"
                    ),
                ));
            }
        }
        if !self.spec.options.create_table && schema.is_some() {
            table_info(&self.conn, &self.database, &table)
                .await
                .map_err(|e| {
                    JobFileError::new(
                        &job.file,
                        "target.table",
                        job.scrub(&format!(
                            "{e} (create_table = false: the target table must exist)"
                        )),
                    )
                })?;
        }
        let inner: Arc<dyn Sink> = self.sink.clone();
        let unit = UnitSink::new(inner.clone(), transformed, Some(self.spec.table.clone()));
        let sink: Arc<dyn Sink> = if unit.is_needed() {
            Arc::new(unit)
        } else {
            inner
        };
        Ok((sink, target))
    }

    /// The sink for replaying dead letters (names from the pattern, no schema override).
    pub fn replay_sink(&self) -> Arc<dyn Sink> {
        Arc::new(UnitSink::new(
            self.sink.clone(),
            None,
            Some(self.spec.table.clone()),
        ))
    }

    /// `host:port` of the target server.
    pub fn endpoint(&self) -> &str {
        self.conn.endpoint()
    }
}
