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
//!
//! [target]
//! type = "mysql"
//! url = "mysql://writer@db2:3306/copy"
//! table = "{table}"                         # target table pattern: {table}, {db}
//! mode = "upsert"                           # write settings (datatrace_mysql::SinkOptions)
//! create_table = true                       # the default in job files
//! ```

use datatrace_mysql::{ConnectionConfig, SinkOptions, SourceOptions};
use serde_json::{Map, Value};

use super::error::{join, JobFileError};
use super::naming::NamePattern;
use super::sections::{split, string_list, Group};

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
}

/// Parses `[source]` with `type = "mysql"`.
pub fn parse_source(
    file: &str,
    at: &str,
    map: Map<String, Value>,
) -> Result<MySqlSourceSpec, JobFileError> {
    let groups = split(
        file,
        at,
        map,
        vec![
            Group::of::<ConnectionConfig>(),
            Group::keys(&["tables", "exclude"]),
            Group::of::<SourceOptions>(),
        ],
    )?;
    let [conn, mut sel, opts]: [Group; 3] = groups
        .try_into()
        .map_err(|_| JobFileError::new(file, at, "internal: key groups"))?;
    let connection: ConnectionConfig = conn.parse(file, at)?;
    let tables = string_list(
        file,
        &join(at, "tables"),
        sel.take("tables"),
        "table patterns such as \"shop.*\"",
        true,
    )?;
    let exclude = string_list(
        file,
        &join(at, "exclude"),
        sel.take("exclude"),
        "table patterns",
        false,
    )?;
    let options: SourceOptions = opts.parse(file, at)?;
    Ok(MySqlSourceSpec {
        connection,
        tables,
        exclude,
        options,
    })
}

/// Parses `[target]` with `type = "mysql"`.
pub fn parse_target(
    file: &str,
    at: &str,
    map: Map<String, Value>,
) -> Result<MySqlTargetSpec, JobFileError> {
    let groups = split(
        file,
        at,
        map,
        vec![Group::of::<ConnectionConfig>(), Group::of::<SinkOptions>()],
    )?;
    let [conn, mut opts]: [Group; 2] = groups
        .try_into()
        .map_err(|_| JobFileError::new(file, at, "internal: key groups"))?;
    let connection: ConnectionConfig = conn.parse(file, at)?;
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
                    super::endpoint::kind_of(&other)
                ),
            ))
        }
    };
    // Job files create missing target tables unless told not to.
    let create = opts.take("create_table").unwrap_or(Value::Bool(true));
    opts.insert("create_table", create);
    let mut options: SinkOptions = opts.parse(file, at)?;
    options.table = None;
    Ok(MySqlTargetSpec {
        connection,
        table,
        options,
    })
}
