//! `type = "mysql"` sources and targets.
//!
//! ```toml
//! [source]
//! type = "mysql"
//! url = "mysql://reader@db1:3306/shop"      # the connection (datatrace_mysql::ConnectionConfig)
//! password = "${MYSQL_PASSWORD}"
//! tables = ["shop.*", "crm.customers"]      # patterns: db.table, * and ?
//! exclude = ["shop.tmp_*"]
//! chunk_rows = 100000                       # read settings (datatrace_mysql::SourceOptions)
//! mode = "snapshot+cdc"                     # full (default) | cdc | snapshot+cdc
//! cdc = { server_id = 6401, heartbeat_secs = 5 }   # stream settings (datatrace_mysql::binlog::CdcOptions)
//!
//! # or, instead of `tables`, denormalized documents (see [`super::documents`]):
//! [[source.documents]]
//! name = "orders"
//! table = "orders"
//! relations = [ { field = "items", table = "order_items", kind = "one_to_many", foreign_key = ["order_id"] } ]
//!
//! [target]
//! type = "mysql"
//! url = "mysql://writer@db2:3306/copy"
//! table = "{table}"                         # target table pattern: {table}, {db}
//! mode = "upsert"                           # write settings (datatrace_mysql::SinkOptions)
//! create_table = true                       # the default in job files
//! schema_changes = "apply"                  # change streams, column DDL: apply | fail | ignore
//! table_changes = "apply"                   # change streams, TRUNCATE/DROP/RENAME TABLE: apply | fail | ignore
//! ```

use datatrace_core::TableChanges;
use datatrace_denormal::DocumentSpec;
use datatrace_mysql::binlog::CdcOptions;
use datatrace_mysql::schema_change::SchemaChanges;
use datatrace_mysql::{ConnectionConfig, SinkOptions, SourceOptions};
use serde_json::{Map, Value};

use crate::job_file::error::{from_value, join, kind_of, JobFileError};
use crate::job_file::naming::NamePattern;
use crate::job_file::sections::{split, string_list, Group};

/// A MySQL source: the connection, the tables, the read settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MySqlSourceSpec {
    /// How to connect.
    pub connection: ConnectionConfig,
    /// Table patterns to copy (`db.table`, `*` and `?`).
    pub tables: Vec<String>,
    /// Table patterns to leave out.
    pub exclude: Vec<String>,
    /// Read settings.
    pub options: SourceOptions,
    /// Copy once, stream changes, or both.
    pub mode: SourceMode,
    /// Settings of the change stream (`tables` and `zero_date` come from the source's).
    pub cdc: Box<CdcOptions>,
    /// Denormalized documents built instead of copying tables (`[[source.documents]]`).
    pub documents: Vec<DocumentSpec>,
}

/// How a MySQL source reads (`mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SourceMode {
    /// `full`: a snapshot of every table, then done.
    #[default]
    Full,
    /// `cdc`: one unit streaming the binlog's changes of the tables, never done.
    Cdc,
    /// `snapshot+cdc`: the snapshots, then the stream from a position taken before them.
    SnapshotCdc,
}

impl SourceMode {
    /// Whether a change stream is part of the job.
    pub fn streams(&self) -> bool {
        !matches!(self, SourceMode::Full)
    }
}

/// A MySQL target: the connection, the table naming, the write settings.
#[derive(Debug, Clone, PartialEq)]
pub struct MySqlTargetSpec {
    /// How to connect.
    pub connection: ConnectionConfig,
    /// The target table of each unit.
    pub table: NamePattern,
    /// Write settings (`table` is left unset: the pattern decides).
    pub options: SinkOptions,
    /// What a change stream's schema changes do to the target tables (`schema_changes`:
    /// `apply`, the default, or `fail`; `ignore` to not compare).
    pub schema_changes: SchemaChanges,
    /// What a change stream's `TRUNCATE`, `DROP TABLE` and `RENAME TABLE` do to the target
    /// tables (`table_changes`: `apply`, the default, `fail` or `ignore`).
    pub table_changes: TableChanges,
}

/// The connector's own check of a number, at the key it names
/// (`page_rows = 0 is out of range: ...` -> `source.page_rows: ...`).
fn config_error(file: &str, at: &str, e: datatrace_mysql::MySqlError) -> JobFileError {
    let msg = e.to_string();
    let msg = msg
        .strip_prefix("invalid configuration: ")
        .unwrap_or(&msg)
        .to_owned();
    match msg.split_once(" = ") {
        Some((key, _)) if !key.contains(' ') => JobFileError::new(file, &join(at, key), msg),
        _ => JobFileError::new(file, at, msg),
    }
}

/// Parses `[source]` with `type = "mysql"`.
pub fn parse_source(
    file: &str,
    at: &str,
    map: Map<String, Value>,
) -> Result<MySqlSourceSpec, JobFileError> {
    let [conn, mut sel, opts, mut stream] = split(
        file,
        at,
        map,
        [
            Group::of::<ConnectionConfig>(),
            Group::keys(&["tables", "exclude", "documents"]),
            Group::of::<SourceOptions>(),
            Group::keys(&["mode", "cdc"]),
        ],
    )?;
    let connection: ConnectionConfig = conn.parse(file, at)?;
    connection
        .validate()
        .map_err(|e| config_error(file, at, e))?;
    let documents =
        super::documents::spec::parse(file, &join(at, "documents"), sel.take("documents"))?;
    if !documents.is_empty() {
        for key in ["tables", "exclude"] {
            if sel.take(key).is_some() {
                return Err(JobFileError::new(
                    file,
                    &join(at, key),
                    "a source with documents reads the tables its documents name: leave out `tables` and `exclude`",
                ));
            }
        }
    }
    let tables = string_list(
        file,
        &join(at, "tables"),
        sel.take("tables"),
        "table patterns such as \"shop.*\"; or [[source.documents]] for documents",
        documents.is_empty(),
    )?;
    let exclude = string_list(
        file,
        &join(at, "exclude"),
        sel.take("exclude"),
        "table patterns",
        false,
    )?;
    let options: SourceOptions = opts.parse(file, at)?;
    options.validate().map_err(|e| config_error(file, at, e))?;
    let mode = match stream.take("mode") {
        None => SourceMode::Full,
        Some(Value::String(m)) => match m.as_str() {
            "full" => SourceMode::Full,
            "cdc" => SourceMode::Cdc,
            "snapshot+cdc" => SourceMode::SnapshotCdc,
            other => {
                return Err(JobFileError::new(
                    file,
                    &join(at, "mode"),
                    format!(
                        "unknown mode {other:?}: expected \"full\", \"cdc\" or \"snapshot+cdc\""
                    ),
                ))
            }
        },
        Some(other) => {
            return Err(JobFileError::new(
                file,
                &join(at, "mode"),
                format!(
                    "expected \"full\", \"cdc\" or \"snapshot+cdc\", found {}",
                    kind_of(&other)
                ),
            ))
        }
    };
    let mut cdc: CdcOptions = match stream.take("cdc") {
        None => CdcOptions::default(),
        Some(v) => from_value(file, &join(at, "cdc"), v)?,
    };
    cdc.validate()
        .map_err(|m| JobFileError::new(file, &join(at, "cdc"), m))?;
    cdc.tables = datatrace_mysql::TableSelector {
        include: tables.clone(),
        exclude: exclude.clone(),
    };
    cdc.zero_date = options.zero_date;
    cdc.key_columns = options.key_columns.clone();
    cdc.key = options.key.clone();
    Ok(MySqlSourceSpec {
        connection,
        tables,
        exclude,
        options,
        mode,
        cdc: Box::new(cdc),
        documents,
    })
}

/// Parses `[target]` with `type = "mysql"`.
pub fn parse_target(
    file: &str,
    at: &str,
    map: Map<String, Value>,
) -> Result<MySqlTargetSpec, JobFileError> {
    let [conn, mut opts, mut changes] = split(
        file,
        at,
        map,
        [
            Group::of::<ConnectionConfig>(),
            Group::of::<SinkOptions>(),
            Group::keys(&["schema_changes", "table_changes"]),
        ],
    )?;
    let connection: ConnectionConfig = conn.parse(file, at)?;
    connection
        .validate()
        .map_err(|e| config_error(file, at, e))?;
    let table = match opts.take("table") {
        None => NamePattern::parse("{table}").map_err(|m| JobFileError::new(file, at, m))?,
        Some(Value::String(s)) => {
            NamePattern::parse(&s).map_err(|m| JobFileError::new(file, &join(at, "table"), m))?
        }
        Some(other) => {
            return Err(JobFileError::new(
                file,
                &join(at, "table"),
                format!(
                    "expected a name pattern such as \"{{table}}\", found {}",
                    kind_of(&other)
                ),
            ))
        }
    };
    // Job files create missing target tables unless told not to.
    let create = opts.take("create_table").unwrap_or(Value::Bool(true));
    opts.insert("create_table", create);
    let mut options: SinkOptions = opts.parse(file, at)?;
    options.table = None;
    options.validate().map_err(|e| config_error(file, at, e))?;
    let schema_changes = match changes.take("schema_changes") {
        None => SchemaChanges::Apply,
        Some(v) => from_value(file, &join(at, "schema_changes"), v)?,
    };
    let table_changes = match changes.take("table_changes") {
        None => TableChanges::Apply,
        Some(v) => from_value(file, &join(at, "table_changes"), v)?,
    };
    Ok(MySqlTargetSpec {
        connection,
        table,
        options,
        schema_changes,
        table_changes,
    })
}
