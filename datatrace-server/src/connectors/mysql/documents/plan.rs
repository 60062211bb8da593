//! Planning a MySQL source with `[[source.documents]]`: one unit per kind of document
//! (`orders`, and `orders.items` for child documents) for the snapshot modes, and one stream
//! unit, `documents`, rebuilding the documents every binlog change reaches (see
//! `datatrace_denormal::stream`). `snapshot+cdc` hands off without a gap as table copies
//! do: the stream starts at a position taken before the snapshots.
//!
//! Documents carry external versions (the binlog position of the snapshot they were built
//! from) whenever the server has a binlog; a `full` copy from a server without one writes
//! without versions. Streams need MariaDB and no cascading foreign keys in the documents'
//! tables (refused here, naming the constraint).

use std::sync::Arc;

use datatrace_core::{CheckpointStore, Sink, Source};
use datatrace_denormal::{Documents, IndexShape};
use datatrace_mysql::binlog::gap::OnBinlogGap;
use datatrace_mysql::binlog::handoff::{Handoff, HandoffSnapshot, HandoffStream};
use datatrace_mysql::binlog::{check_prerequisites, BinlogSource};
use datatrace_mysql::MySqlConnection;
use mysql_async::prelude::Queryable;

use super::check::DocumentsCheck;
use super::{error, PlannedDocuments, STREAM_UNIT};
use crate::connectors::api::{JobCtx, JobPlan};
use crate::connectors::es::plan::EsTarget;
use crate::connectors::es::EsTargetSpec;
use crate::connectors::mysql::spec::{MySqlSourceSpec, SourceMode};
use crate::job_file::error::JobFileError;
use crate::plan::PlannedUnit;

/// Whether the server writes a binlog.
async fn binlog_on(job: JobCtx<'_>, conn: &MySqlConnection) -> Result<bool, JobFileError> {
    let mut c = conn
        .get()
        .await
        .map_err(|e| JobFileError::new(job.file, "source.url", job.scrub(&e.to_string())))?;
    let on: Option<u64> = c
        .query_first("SELECT @@log_bin")
        .await
        .map_err(|e| JobFileError::new(job.file, "source.url", job.scrub(&e.to_string())))?;
    Ok(on == Some(1))
}

/// Plans a documents job (see the module docs).
pub async fn plan(
    job: JobCtx<'_>,
    spec: &MySqlSourceSpec,
    store: &Arc<dyn CheckpointStore>,
) -> Result<JobPlan, JobFileError> {
    let Some(es) = job.target.get::<EsTargetSpec>() else {
        return Err(JobFileError::new(
            job.file,
            "target.type",
            "documents are written to Elasticsearch",
        ));
    };
    let conn = crate::connectors::mysql::plan::connect(job, "source", &spec.connection).await?;
    let target = EsTarget::connect(job, es).await?;
    if spec.mode.streams() && spec.cdc.on_binlog_gap == OnBinlogGap::Resnapshot {
        return Err(JobFileError::new(
            job.file,
            "source.cdc.on_binlog_gap",
            "\"resnapshot\" copies tables again inside the stream, which documents cannot follow: leave it at \"fail\" and, after a binlog gap, run the job again with --restart",
        ));
    }
    if spec.mode.streams() {
        check_prerequisites(&conn)
            .await
            .map_err(|e| JobFileError::new(job.file, "source.mode", job.scrub(&e.to_string())))?;
    }
    let versions = binlog_on(job, &conn).await?;
    let sink = target.documents_sink(job, versions)?;
    let docs = Documents::resolve_with(
        &conn,
        spec.documents.clone(),
        IndexShape::of(&sink),
        spec.options.clone(),
    )
    .await
    .map_err(|e| error(job, &e))?;
    if spec.mode.streams() {
        docs.check_stream_support()
            .await
            .map_err(|e| error(job, &e))?;
    }
    for d in docs.definitions() {
        let index = target.index_name(job, &d.mapping_schema)?;
        target.check_mapping(job, &d.mapping_schema, &index).await?;
    }
    let docs = Arc::new(docs);
    let dyn_sink: Arc<dyn Sink> = sink.clone();
    let mut units = Vec::new();
    let names = docs.units();
    let handoff = (spec.mode == SourceMode::SnapshotCdc).then(|| {
        Handoff::new(
            conn.clone(),
            store.clone(),
            job.name,
            STREAM_UNIT,
            names.clone(),
        )
    });
    if spec.mode != SourceMode::Cdc {
        for (name, source) in docs.snapshots().map_err(|e| error(job, &e))? {
            let schema = source
                .schema()
                .await
                .map_err(|e| JobFileError::new(job.file, "source", job.scrub(&e.to_string())))?;
            let estimated_rows = source.estimate_rows().await;
            let target_name = match &schema {
                Some(s) => target.index_name(job, s)?,
                None => "?".into(),
            };
            let source: Arc<dyn Source> = match &handoff {
                Some(h) => Arc::new(HandoffSnapshot::new(Arc::new(source), h.clone())),
                None => Arc::new(source),
            };
            units.push(PlannedUnit {
                name,
                target: target_name,
                source,
                sink: dyn_sink.clone(),
                schema,
                own_transforms: Vec::new(),
                estimated_rows,
            });
        }
    }
    if spec.mode.streams() {
        let binlog = BinlogSource::new(conn.clone(), docs.cdc_options((*spec.cdc).clone()))
            .map_err(|e| JobFileError::new(job.file, "source.cdc", e.to_string()))?
            .with_unit(super::STREAM_UNIT);
        let inner: Arc<dyn Source> = match &handoff {
            Some(h) => Arc::new(HandoffStream::new(Arc::new(binlog), h.clone())),
            None => Arc::new(binlog),
        };
        let indices: Vec<String> = docs
            .definitions()
            .iter()
            .map(|d| target.index_name(job, &d.mapping_schema))
            .collect::<Result<_, _>>()?;
        units.push(PlannedUnit {
            name: STREAM_UNIT.to_string(),
            target: indices.join(", "),
            source: Arc::new(docs.stream(STREAM_UNIT, inner)),
            sink: dyn_sink.clone(),
            schema: None,
            own_transforms: Vec::new(),
            estimated_rows: None,
        });
    }
    Ok(JobPlan {
        units,
        // Each document's writes (and deletes on old routings) go through one writer, in
        // order.
        streams: spec.mode.streams(),
        extra: Arc::new(DocumentsCheck {
            planned: PlannedDocuments { docs, sink },
        }),
    })
}
