//! Planning MySQL sources (one unit per table matched by the patterns) and targets.

use std::sync::Arc;

use datatrace_core::{CheckpointStore, FileCheckpointStore, SchemaRef, Sink, Source, Transform};
use datatrace_mysql::binlog::{check_prerequisites, BinlogSource};
use datatrace_mysql::SnapshotCdc;
use datatrace_mysql::{
    discover_tables, table_info, MySqlConnection, MySqlSink, MySqlSource, TableSelector,
};

use super::spec::{MySqlSourceSpec, MySqlTargetSpec, SourceMode};
use crate::connectors::api::{JobCtx, StoppedRetention};
use crate::job_file::error::JobFileError;
use crate::plan::unit_sink::UnitSink;

/// Connects; the error names the URL (without its password).
pub(crate) async fn connect(
    job: JobCtx<'_>,
    at: &str,
    cfg: &datatrace_mysql::ConnectionConfig,
) -> Result<MySqlConnection, JobFileError> {
    MySqlConnection::connect(cfg).await.map_err(|e| {
        JobFileError::new(
            job.file,
            &format!("{at}.url"),
            job.scrub(&format!("cannot connect to {}: {e}", cfg.redacted_url())),
        )
    })
}

/// The tables of a MySQL source, each a unit named `db.table`.
pub async fn discover(
    job: JobCtx<'_>,
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
            .map_err(|e| JobFileError::new(job.file, &at, job.scrub(&e.to_string())))?;
        if tables.is_empty() {
            let why = if spec.exclude.is_empty() {
                String::new()
            } else {
                " (after exclude)".to_owned()
            };
            return Err(JobFileError::new(
                job.file,
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
            // Key columns named in the settings must identify a row: NOT NULL (a NULL key
            // has no document id, and a created target's key columns are NOT NULL).
            if let Ok(keyed) = t
                .clone()
                .with_key_settings(&spec.options.key_columns, &spec.options.key)
            {
                if keyed.key_source == datatrace_mysql::KeySource::Configured {
                    if let Some(c) = keyed
                        .key
                        .iter()
                        .map(|&i| &keyed.schema.columns()[i])
                        .find(|c| c.nullable)
                    {
                        return Err(JobFileError::new(
                            job.file,
                            "source.key",
                            format!(
                                "table {name}: key column {} is nullable, so it cannot identify a row (a NULL has no document id, and the target's key columns are NOT NULL); name NOT NULL columns, or make the column NOT NULL",
                                c.name
                            ),
                        ));
                    }
                }
            }
            // snapshot+cdc: a table without a key is read in a consistent snapshot whose
            // binlog position the stream starts its changes after (a replayed insert of such
            // a table would duplicate its row).
            let mut options = spec.options.clone();
            if spec.mode == SourceMode::SnapshotCdc {
                let keyless = t
                    .clone()
                    .with_key_settings(&options.key_columns, &options.key)
                    .is_ok_and(|t| t.key.is_empty());
                if keyless {
                    options.consistent_snapshot = true;
                }
            }
            let source = MySqlSource::new(conn.clone(), t, options)
                .map_err(|e| JobFileError::new(job.file, &at, job.scrub(&e.to_string())))?;
            units.push((name, Arc::new(source)));
        }
    }
    Ok((conn, units))
}

/// The warnings of a streaming job (`cdc`, `snapshot+cdc`) into MySQL about tables without a
/// usable key (no primary key, no unique NOT NULL key, no `key` setting): their changes find
/// rows by all their values, and after a crash the stream replays what followed its last
/// checkpoint, so such a row may be changed twice. One line per table, naming the fix.
/// `validate` prints them; `run` logs them at start. Empty for copies and other targets (an
/// index refuses such tables outright).
pub async fn keyless_stream_warnings(
    job: JobCtx<'_>,
    spec: &MySqlSourceSpec,
) -> Result<Vec<String>, JobFileError> {
    if !spec.mode.streams() || job.target.kind() != "mysql" || !spec.documents.is_empty() {
        return Ok(Vec::new());
    }
    let conn = connect(job, "source", &spec.connection).await?;
    let selector = TableSelector {
        include: spec.tables.clone(),
        exclude: spec.exclude.clone(),
    };
    let tables = discover_tables(&conn, &selector).await;
    let _ = conn.close().await;
    let tables = tables
        .map_err(|e| JobFileError::new(job.file, "source.tables", job.scrub(&e.to_string())))?;
    let mut out = Vec::new();
    for t in tables {
        let keyless = t
            .clone()
            .with_key_settings(&spec.options.key_columns, &spec.options.key)
            .is_ok_and(|t| t.key.is_empty());
        if !keyless {
            continue;
        }
        let name = t.qualified_name();
        out.push(format!(
            "table {name} has no primary key (nor unique NOT NULL key): its streamed changes \
             find rows by all their values, and after a crash the stream replays what followed \
             its last checkpoint, so such rows may be changed twice; for exactness under \
             crashes name the columns that identify a row (NOT NULL, unique together) in the \
             source's `key` setting, e.g. key = {{ \"{name}\" = [\"{}\"] }}",
            t.schema
                .columns()
                .first()
                .map_or("col", |c| c.name.as_str())
        ));
    }
    Ok(out)
}

/// The name of the change stream unit of `cdc` and `snapshot+cdc` jobs.
pub const STREAM_UNIT: &str = SnapshotCdc::STREAM_UNIT;

/// The units of a MySQL source for its `mode`: the table units (`full`), the stream unit
/// (`cdc`), or both (`snapshot+cdc`: the tables wrapped to take the stream's start position
/// P0 before reading, the stream waiting for them and starting at P0). Also returns the
/// transform that gives snapshot rows P0's ordinal (for external versions), for the table
/// units of `snapshot+cdc`.
pub async fn with_stream(
    job: JobCtx<'_>,
    spec: &MySqlSourceSpec,
    conn: &MySqlConnection,
    tables: Vec<(String, Arc<dyn Source>)>,
    store: &Arc<dyn CheckpointStore>,
) -> Result<(Vec<(String, Arc<dyn Source>)>, Option<Arc<dyn Transform>>), JobFileError> {
    if spec.mode == SourceMode::Full {
        return Ok((tables, None));
    }
    check_prerequisites(conn)
        .await
        .map_err(|e| JobFileError::new(job.file, "source.mode", job.scrub(&e.to_string())))?;
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
            .map_err(|e| JobFileError::new(job.file, "source.cdc", e.to_string()))?
            .with_snapshot_options(spec.options.clone()),
    );
    if spec.mode == SourceMode::Cdc {
        return Ok((vec![(STREAM_UNIT.to_owned(), stream)], None));
    }
    // The library's snapshot+cdc, on the job's own checkpoint store.
    let plan = SnapshotCdc::new(conn.clone(), store.clone(), job.name, tables, stream);
    Ok((plan.units(), Some(plan.snapshot_stamp())))
}

/// Every column of the rows written (`written`) must be a column of the existing target
/// table, or the first write fails (1054 Unknown column): the error names the table, the
/// column and the setting that leaves it out.
fn columns_fit(
    job: JobCtx<'_>,
    target: &str,
    written: &datatrace_core::Schema,
    existing: &datatrace_mysql::TableInfo,
) -> Result<(), JobFileError> {
    let missing: Vec<&str> = written
        .columns()
        .iter()
        .map(|c| c.name.as_str())
        .filter(|n| existing.schema.index_of(n).is_none())
        .collect();
    let Some(first) = missing.first() else {
        return Ok(());
    };
    let fix = match *first {
        "_id" => "switch the id column off with id_column = false in [source] (the key columns are then read back from the document ids), ".to_string(),
        "_extra" => "switch the extra column off with extra_column = false in [source], ".to_string(),
        other => format!("leave it out with a transform ([[transforms]] type = \"drop\", fields = [\"{other}\"]), "),
    };
    Err(JobFileError::new(
        job.file,
        "target.table",
        format!(
            "the target table {target} exists without column(s) {} that the rows of {} carry, so every write would fail (Unknown column): {fix}add the column(s) to the table, or drop the table and let the job create it",
            missing.join(", "),
            written.qualified_name()
        ),
    ))
}

/// The refusal of a table without a key into an index: documents need ids.
pub fn keyless(job: JobCtx<'_>, s: &datatrace_core::Schema) -> JobFileError {
    JobFileError::new(
        job.file,
        "source.key",
        format!(
            "table {} has no primary key, so its rows have no document ids: copies would \
             duplicate documents and changes could not find them; name the columns that \
             identify a row (NOT NULL, unique together) in the source's `key` setting, \
             e.g. key = {{ \"{}\" = [\"{}\"] }}",
            s.qualified_name(),
            s.qualified_name(),
            s.columns().first().map_or("col", |c| c.name.as_str())
        ),
    )
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
    pub async fn connect(job: JobCtx<'_>, spec: &MySqlTargetSpec) -> Result<Self, JobFileError> {
        // A target that creates its tables creates a missing database too.
        let conn = if spec.options.create_table {
            MySqlConnection::connect_creating_database(&spec.connection)
                .await
                .map(|(c, _)| c)
                .map_err(|e| {
                    JobFileError::new(
                        job.file,
                        "target.url",
                        job.scrub(&format!(
                            "cannot connect to {}: {e}",
                            spec.connection.redacted_url()
                        )),
                    )
                })?
        } else {
            connect(job, "target", &spec.connection).await?
        };
        let database = spec
            .options
            .database
            .clone()
            .or_else(|| conn.default_database().map(str::to_owned))
            .ok_or_else(|| {
                JobFileError::new(
                    job.file,
                    "target",
                    "no target database: name one in the URL (mysql://host:3306/db) or in `database`",
                )
            })?;
        let sink = MySqlSink::new(conn.clone(), spec.options.clone())
            .map_err(|e| JobFileError::new(job.file, "target", job.scrub(&e.to_string())))?
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
        job: JobCtx<'_>,
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
                    job.file,
                    "target",
                    format!(
                        "the target table {target} is the source table: write to another \
                         database or set `table` (e.g. \"{{table}}_copy\")"
                    ),
                ));
            }
        }
        if let Some(s) = schema {
            match table_info(&self.conn, &self.database, &table).await {
                // The rows' columns must all be in a table that exists.
                Ok(existing) => {
                    let written = transformed.as_ref().unwrap_or(s);
                    columns_fit(job, &target, written, &existing)?;
                }
                Err(datatrace_mysql::MySqlError::NoTable { .. })
                    if self.spec.options.create_table => {}
                Err(e) => {
                    let why = if self.spec.options.create_table {
                        String::new()
                    } else {
                        " (create_table = false: the target table must exist)".into()
                    };
                    return Err(JobFileError::new(
                        job.file,
                        "target.table",
                        job.scrub(&format!("{e}{why}")),
                    ));
                }
            }
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
}

/// For `validate`: where a stopped change stream's checkpoint stands against the server's
/// binlogs (a gap, or the time left before its binlog may be purged); `None` without a
/// stream or a checkpoint.
pub async fn stream_retention(job: JobCtx<'_>, spec: &MySqlSourceSpec) -> Option<String> {
    let store = FileCheckpointStore::new(job.checkpoint_dir);
    stopped_stream_retention(job, spec, &store, job.name)
        .await
        .map(|r| r.text)
}

/// The stream unit of a MySQL source's job.
pub fn stream_unit(spec: &MySqlSourceSpec) -> &'static str {
    if spec.documents.is_empty() {
        STREAM_UNIT
    } else {
        super::documents::STREAM_UNIT
    }
}

/// Checks the checkpoint of the change stream of `job_name` in `store` against the server's
/// binlogs; `None` without a stream or a checkpoint.
pub async fn stopped_stream_retention(
    job: JobCtx<'_>,
    spec: &MySqlSourceSpec,
    store: &dyn CheckpointStore,
    job_name: &str,
) -> Option<StoppedRetention> {
    use datatrace_mysql::binlog::gap::find_gap;
    use datatrace_mysql::binlog::position::from_position;
    use datatrace_mysql::binlog::retention::retention;
    if !spec.mode.streams() {
        return None;
    }
    let unit = stream_unit(spec);
    let cp = store.load(job_name, unit).await.ok()??;
    let position = cp.parts.first()?.position.clone()?;
    let pos = from_position(&position)?;
    let conn = MySqlConnection::connect(&spec.connection).await.ok()?;
    let by_gtid = spec.cdc.resume_by_gtid || pos.file.is_empty();
    let (time_left_secs, text) = match find_gap(&conn, &pos, by_gtid).await {
        Ok(Some(gap)) => (Some(0), format!("{gap}")),
        Ok(None) => match retention(&conn, &pos, position.ts_ms).await {
            Ok(r) => (r.time_left_secs, r.to_string()),
            Err(e) => (None, format!("cannot check the binlog retention: {e}")),
        },
        Err(e) => (None, format!("cannot check the binlog position: {e}")),
    };
    Some(StoppedRetention {
        unit: unit.to_string(),
        time_left_secs,
        warn_secs: spec.cdc.retention_warn_secs,
        text: job.scrub(&text),
    })
}
