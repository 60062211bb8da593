//! [`Documents`]: the document definitions of a job, resolved together against one MySQL
//! server and one Elasticsearch sink: their snapshot units, their change stream, their
//! checks.

use std::sync::Arc;

use datatrace_core::Source;
use datatrace_es::{EsSink, SinkConfig, VersionSource};
use datatrace_mysql::binlog::{BinlogSource, CdcOptions};
use datatrace_mysql::{MySqlConnection, SourceOptions, TableSelector};

use crate::clock::Clock;
use crate::definition::{Definition, IndexShape};
use crate::error::{DenormalError, InDocument, Result};
use crate::fanout::{check_cascades, check_fan_out, FanOut};
use crate::resolve::resolve;
use crate::snapshot::{unit_name, DocumentSource};
use crate::spec::DocumentSpec;
use crate::stream::DocumentStream;

/// The resolved definitions of a job (see the module docs).
pub struct Documents {
    conn: MySqlConnection,
    defs: Vec<Arc<Definition>>,
    options: SourceOptions,
}

impl std::fmt::Debug for Documents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Documents")
            .field("defs", &self.defs)
            .finish()
    }
}

impl Documents {
    /// The settings of an Elasticsearch sink for documents: the index pattern (`{table}`
    /// is the document's name) and external versions from the binlog position.
    pub fn sink_config(index: &str) -> SinkConfig {
        SinkConfig {
            index: index.to_string(),
            version: Some(VersionSource::Position),
            ..SinkConfig::default()
        }
    }

    /// Resolves `specs` against `conn`, for documents written by `sink`.
    pub async fn resolve(
        conn: &MySqlConnection,
        specs: Vec<DocumentSpec>,
        sink: &EsSink,
    ) -> Result<Documents> {
        Documents::resolve_with(conn, specs, IndexShape::of(sink), SourceOptions::default()).await
    }

    /// Resolves `specs` with an explicit index shape and read options (`chunk_rows` plans
    /// the snapshot's parts, `zero_date` says what zero dates become).
    pub async fn resolve_with(
        conn: &MySqlConnection,
        specs: Vec<DocumentSpec>,
        shape: IndexShape,
        options: SourceOptions,
    ) -> Result<Documents> {
        let mut defs: Vec<Arc<Definition>> = Vec::with_capacity(specs.len());
        for spec in specs {
            if defs.iter().any(|d| d.name() == spec.name) {
                return Err(DenormalError::definition(
                    &spec.name,
                    None,
                    "two documents have this name: give each its own",
                ));
            }
            defs.push(Arc::new(resolve(conn, &spec, &shape).await?));
        }
        Ok(Documents {
            conn: conn.clone(),
            defs,
            options,
        })
    }

    /// The definitions.
    pub fn definitions(&self) -> &[Arc<Definition>] {
        &self.defs
    }

    /// The clock of a definition's reads.
    pub fn clock(&self, def: &Definition) -> Clock {
        Clock::new(self.conn.clone(), def.name(), self.options.zero_date)
    }

    /// The snapshot units: one per kind of document (`orders`, `orders.items` for child
    /// documents), in definition order.
    pub fn units(&self) -> Vec<String> {
        self.defs
            .iter()
            .flat_map(|d| (0..d.kinds.len()).map(move |k| unit_name(d, k)))
            .collect()
    }

    /// The definition and kind of a unit (see [`Documents::units`]).
    pub fn unit(&self, unit: &str) -> Result<(Arc<Definition>, usize)> {
        for d in &self.defs {
            for k in 0..d.kinds.len() {
                if unit_name(d, k) == unit {
                    return Ok((d.clone(), k));
                }
            }
        }
        Err(DenormalError::definition(
            unit,
            None,
            format!("no such document unit (units: {})", self.units().join(", ")),
        ))
    }

    /// The snapshot source of a unit (see [`Documents::units`]).
    pub fn snapshot(&self, unit: &str) -> Result<DocumentSource> {
        let (d, k) = self.unit(unit)?;
        let clock = self.clock(&d);
        DocumentSource::new(d, k, clock, &self.options)
    }

    /// Every snapshot unit with its source.
    pub fn snapshots(&self) -> Result<Vec<(String, DocumentSource)>> {
        self.units()
            .into_iter()
            .map(|u| self.snapshot(&u).map(|s| (u, s)))
            .collect()
    }

    /// `opts` streaming exactly the tables the definitions read.
    pub fn cdc_options(&self, opts: CdcOptions) -> CdcOptions {
        let mut tables = Vec::new();
        for d in &self.defs {
            for (db, t) in d.tables() {
                let p = format!("{db}.{t}");
                if !tables.contains(&p) {
                    tables.push(p);
                }
            }
        }
        CdcOptions {
            tables: TableSelector::include(tables),
            zero_date: self.options.zero_date,
            ..opts
        }
    }

    /// Fails when the documents cannot be streamed exactly: the server must report its
    /// snapshots' binlog positions (MariaDB), and no table may be changed by foreign key
    /// cascades (see [`crate::fanout`]).
    pub async fn check_stream_support(&self) -> Result<()> {
        let names: Vec<&str> = self.defs.iter().map(|d| d.name()).collect();
        if !self.conn.info().is_mariadb {
            return Err(DenormalError::definition(
                &names.join(", "),
                None,
                format!(
                    "change streams of documents need MariaDB (server {} does not report the binlog position of a consistent snapshot, which orders rebuilt documents exactly); copy them with mode = \"full\"",
                    self.conn.info().version
                ),
            ));
        }
        for d in &self.defs {
            check_cascades(d, &self.conn).await?;
        }
        Ok(())
    }

    /// The stream of every definition's documents over `inner`, the binlog source of
    /// [`Documents::cdc_options`]'s tables (possibly wrapped for a `snapshot+cdc` handoff).
    pub fn stream(&self, unit: &str, inner: Arc<dyn Source>) -> DocumentStream {
        let defs = self
            .defs
            .iter()
            .map(|d| (d.clone(), self.clock(d)))
            .collect();
        DocumentStream::new(unit, defs, inner)
    }

    /// [`Documents::stream`] over a new binlog source with `opts` (its tables replaced by
    /// the definitions').
    pub fn binlog_stream(&self, unit: &str, opts: CdcOptions) -> Result<DocumentStream> {
        let names: Vec<&str> = self.defs.iter().map(|d| d.name()).collect();
        let source = BinlogSource::new(self.conn.clone(), self.cdc_options(opts))
            .in_doc(&names.join(", "))?
            .with_unit(unit);
        Ok(self.stream(unit, Arc::new(source)))
    }

    /// The fan-out check of every definition (see [`crate::fanout`]): the busiest related
    /// rows, or an error naming a relation above its `max_fan_out`.
    pub async fn check_fan_out(&self) -> Result<Vec<FanOut>> {
        let mut out = Vec::new();
        for d in &self.defs {
            out.extend(check_fan_out(d, &self.clock(d)).await?);
        }
        Ok(out)
    }
}
