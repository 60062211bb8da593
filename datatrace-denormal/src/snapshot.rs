//! [`DocumentSource`]: a snapshot of one kind of documents (the root documents of a
//! definition, or the child documents of one of its relations), as a core [`Source`].
//!
//! The top table is split into key ranges like any table (`datatrace_mysql::chunk`), read in
//! parallel by the pipeline's readers. Each part is read in pages of `batch_size` tops;
//! each page is one consistent snapshot ([`crate::clock`]): the tops, then one statement
//! per relation for the whole page ([`crate::fetch`]), assembled into documents
//! ([`crate::build`]) that carry the snapshot's binlog ordinal as their external version.
//! After each page the part checkpoints its last key, so a stopped copy resumes there.
//! Memory: a page of documents, whatever the table sizes.
//!
//! A top without a document (filtered out by the top's transforms, or a child document
//! whose parent is missing) is written as a delete, so that copying again over an index
//! (a restarted unit, a repair) leaves no stale document behind.

use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::{Emitter, Part, Position, Record, Schema, Source, Value};
use datatrace_mysql::chunk::{ChunkPosition, ChunkSpec};
use datatrace_mysql::{MySqlSource, SourceOptions};

use crate::build::{self, delete_record};
use crate::clock::Clock;
use crate::definition::Definition;
use crate::error::{DenormalError, InDocument, Result};

/// A snapshot of one kind of documents (see the module docs).
pub struct DocumentSource {
    def: Arc<Definition>,
    kind: usize,
    clock: Clock,
    planner: MySqlSource,
}

impl DocumentSource {
    /// The snapshot of `kind` of `def`, reading through `clock`; `options` plan the parts
    /// (`chunk_rows`) of the top table.
    pub fn new(
        def: Arc<Definition>,
        kind: usize,
        clock: Clock,
        options: &SourceOptions,
    ) -> Result<DocumentSource> {
        let top = &def.nodes[def.kinds[kind].top];
        let opts = SourceOptions {
            consistent_snapshot: false,
            filter: None,
            key_columns: top.table.key_names(),
            ..options.clone()
        };
        let planner = MySqlSource::new(clock.connection().clone(), (*top.table).clone(), opts)
            .in_doc(def.name())?;
        Ok(DocumentSource {
            def,
            kind,
            clock,
            planner,
        })
    }

    /// The unit name: the document's name for root documents, `document.relation` for
    /// child documents.
    pub fn unit(&self) -> String {
        unit_name(&self.def, self.kind)
    }

    async fn read_part(
        &self,
        part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> Result<()> {
        let err = |m: String| DenormalError::Data {
            document: self.def.name().to_string(),
            context: format!("part {}", part.id),
            message: m,
        };
        let spec = ChunkSpec::from_part(part).map_err(|e| err(e.to_string()))?;
        let resume: Option<ChunkPosition> = match &from {
            Some(p) => Some(
                p.state_as(&part.id, "a MySQL chunk position")
                    .map_err(|e| err(e.to_string()))?,
            ),
            None => None,
        };
        let mut last: Option<Vec<Value>> = match resume {
            Some(ChunkPosition {
                last: Some(last), ..
            }) => Some(last),
            _ => spec.lo.clone(),
        };
        let limit = self.def.spec.batch_size;
        loop {
            let mut txn = self.clock.begin(None).await?;
            let (docs, page_last, n) = build::page(
                &self.def,
                &mut txn,
                self.kind,
                last.as_deref(),
                spec.hi.as_deref(),
                limit,
            )
            .await?;
            let version = txn.version();
            txn.finish().await?;
            let position = Position {
                state: serde_json::Value::Null,
                ordinal: version,
                ts_ms: None,
            };
            for (_, mut r) in docs.docs {
                r.position = Some(position.clone());
                out.emit(r).await?;
            }
            let routed = self.def.kinds[self.kind].routed;
            for (key, routing) in docs.absent {
                // Pages read the rows they build, so the routing is known.
                let routing = if routed { routing.flatten() } else { None };
                let mut r: Record = delete_record(&self.def, self.kind, &key, routing);
                r.position = Some(position.clone());
                out.emit(r).await?;
            }
            if page_last.is_some() {
                last = page_last;
                out.checkpoint(Position::of(&ChunkPosition {
                    last: last.clone(),
                    ..Default::default()
                }))
                .await?;
            }
            if n < limit {
                return Ok(());
            }
        }
    }
}

/// The unit name of a kind (see [`DocumentSource::unit`]).
pub fn unit_name(def: &Definition, kind: usize) -> String {
    if kind == 0 {
        def.name().to_string()
    } else {
        format!("{}.{}", def.name(), def.kinds[kind].name)
    }
}

impl From<datatrace_core::Stopped> for DenormalError {
    fn from(_: datatrace_core::Stopped) -> Self {
        DenormalError::Data {
            document: String::new(),
            context: "pipeline".into(),
            message: "stopped".into(),
        }
    }
}

#[async_trait]
impl Source for DocumentSource {
    async fn schema(&self) -> datatrace_core::Result<Option<Arc<Schema>>> {
        Ok(Some(self.def.mapping_schema.clone()))
    }

    async fn split(&self, max_parts: usize) -> datatrace_core::Result<Vec<Part>> {
        self.planner.split(max_parts).await
    }

    async fn estimate_rows(&self) -> Option<u64> {
        self.planner.estimate_rows().await
    }

    async fn read(
        &self,
        part: &Part,
        from: Option<Position>,
        out: &mut Emitter,
    ) -> datatrace_core::Result<()> {
        match self.read_part(part, from, out).await {
            Ok(()) => Ok(()),
            Err(_) if out.is_stopped() => Err(datatrace_core::Error::Cancelled),
            Err(e) => Err(datatrace_core::Error::source(self.unit(), e)),
        }
    }
}
