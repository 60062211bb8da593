//! Planning Elasticsearch sources (one unit per index matched by the patterns) and targets.

use std::sync::Arc;

use datatrace_core::pattern::glob_match;
use datatrace_core::{SchemaRef, Sink, Source};
use datatrace_es::naming::IndexPattern;
use datatrace_es::{EsClient, EsError, EsSink, EsSource, SourceConfig};

use super::spec::{EsSourceSpec, EsTargetSpec};
use crate::connectors::api::JobCtx;
use crate::job_file::error::JobFileError;
use crate::plan::unit_sink::UnitSink;

/// Connects; the error names the URL(s).
async fn connect(
    job: JobCtx<'_>,
    at: &str,
    cfg: &datatrace_es::ConnectionConfig,
) -> Result<EsClient, JobFileError> {
    let key = if cfg.urls.len() == 1 { "url" } else { "urls" };
    EsClient::connect(cfg).await.map_err(|e| {
        let msg = match &e {
            EsError::Unreachable { .. } => e.to_string(),
            _ => format!("cannot connect to {}: {e}", cfg.urls.join(", ")),
        };
        JobFileError::new(job.file, &format!("{at}.{key}"), job.scrub(&msg))
    })
}

/// The indices of an Elasticsearch source, each a unit named after the index.
pub async fn discover(
    job: JobCtx<'_>,
    spec: &EsSourceSpec,
) -> Result<Vec<(String, Arc<dyn Source>)>, JobFileError> {
    let client = connect(job, "source", &spec.connection).await?;
    let mut units: Vec<(String, Arc<dyn Source>)> = Vec::new();
    for (i, pattern) in spec.indices.iter().enumerate() {
        let at = format!("source.indices[{i}]");
        let answer = client
            .get_mapping(pattern)
            .await
            .map_err(|e| JobFileError::new(job.file, &at, job.scrub(&e.to_string())))?;
        let mut names: Vec<String> = answer
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        // Hidden and system indices only when asked for by name.
        names.retain(|n| !n.starts_with('.') || pattern.starts_with('.'));
        names.retain(|n| !spec.exclude.iter().any(|x| glob_match(x, n)));
        names.sort();
        if names.is_empty() {
            let why = if spec.exclude.is_empty() {
                ""
            } else {
                " (after exclude)"
            };
            return Err(JobFileError::new(
                job.file,
                &at,
                format!(
                    "no index matches {pattern:?}{why} on {}",
                    spec.connection.urls.join(", ")
                ),
            ));
        }
        for name in names {
            if units.iter().any(|(n, _)| n == &name) {
                continue;
            }
            let cfg = SourceConfig {
                index: name.clone(),
                ..spec.options.clone()
            };
            let source = EsSource::new(client.clone(), cfg)
                .map_err(|e| JobFileError::new(job.file, "source", job.scrub(&e.to_string())))?;
            units.push((name, Arc::new(source)));
        }
    }
    Ok(units)
}

/// A connected Elasticsearch target: one bulk sink shared by every unit.
pub struct EsTarget {
    client: EsClient,
    sink: Arc<EsSink>,
    pattern: IndexPattern,
    spec: EsTargetSpec,
}

impl EsTarget {
    /// Connects.
    pub async fn connect(job: JobCtx<'_>, spec: &EsTargetSpec) -> Result<Self, JobFileError> {
        let client = connect(job, "target", &spec.connection).await?;
        let pattern = IndexPattern::parse(&spec.options.index)
            .map_err(|e| JobFileError::new(job.file, "target.index", job.scrub(&e.to_string())))?;
        // Change streams from MySQL are ordered by external versions from the binlog position
        // (key-changing updates, replays after a crash, the snapshot handoff), unless the
        // file names another version source.
        let mut options = spec.options.clone();
        if job.source.kind() == "mysql" && job.source.streams() && options.version.is_none() {
            options.version = Some(datatrace_es::VersionSource::Position);
        }
        let sink = EsSink::new(client.clone(), options)
            .map_err(|e| JobFileError::new(job.file, "target", job.scrub(&e.to_string())))?;
        Ok(EsTarget {
            client,
            sink: Arc::new(sink),
            pattern,
            spec: spec.clone(),
        })
    }

    /// The sink for one unit and the index it writes.
    pub async fn sink_for(
        &self,
        job: JobCtx<'_>,
        schema: Option<&SchemaRef>,
        transformed: Option<SchemaRef>,
    ) -> Result<(Arc<dyn Sink>, String), JobFileError> {
        let index = match schema {
            Some(s) => self
                .pattern
                .render(s.name(), s.namespace(), &self.spec.options.prefix)
                .map_err(|e| {
                    JobFileError::new(job.file, "target.index", job.scrub(&e.to_string()))
                })?,
            None => "?".into(),
        };
        if !self.spec.options.create_index && schema.is_some() && !self.pattern.is_time_based() {
            let exists = self.client.index_exists(&index).await.map_err(|e| {
                JobFileError::new(job.file, "target.index", job.scrub(&e.to_string()))
            })?;
            if !exists {
                return Err(JobFileError::new(
                    job.file,
                    "target.index",
                    format!(
                        "index {index} does not exist (create_index = false: the target index \
                         must exist)"
                    ),
                ));
            }
        }
        if let Some(s) = transformed.as_ref().or(schema) {
            self.check_mapping(job, s, &index).await?;
        }
        let inner: Arc<dyn Sink> = self.sink.clone();
        let unit = UnitSink::new(inner.clone(), transformed, None);
        let sink: Arc<dyn Sink> = if unit.is_needed() {
            Arc::new(unit)
        } else {
            inner
        };
        Ok((sink, index))
    }

    /// Refuses, before anything is written, an index this target would create for records of
    /// `schema` holding a column the cluster cannot map as configured (a 64-bit unsigned
    /// column where `unsigned_long` is missing); the error names the table, the column and
    /// `target.mapping.unsigned`. An index that exists keeps its own mapping.
    pub async fn check_mapping(
        &self,
        job: JobCtx<'_>,
        schema: &SchemaRef,
        index: &str,
    ) -> Result<(), JobFileError> {
        if !self.spec.options.create_index {
            return Ok(());
        }
        let Err(e) = datatrace_es::mapping::schema_to_mapping(
            schema,
            &self.spec.options.mapping,
            self.client.info(),
        ) else {
            return Ok(());
        };
        if !self.pattern.is_time_based() && self.client.index_exists(index).await.unwrap_or(false) {
            return Ok(());
        }
        Err(JobFileError::new(
            job.file,
            "target.mapping.unsigned",
            job.scrub(&e.to_string()),
        ))
    }

    /// The index a unit whose schema is `schema` writes to.
    pub fn index_name(&self, job: JobCtx<'_>, schema: &SchemaRef) -> Result<String, JobFileError> {
        self.pattern
            .render(schema.name(), schema.namespace(), &self.spec.options.prefix)
            .map_err(|e| JobFileError::new(job.file, "target.index", job.scrub(&e.to_string())))
    }

    /// A sink for denormalized documents: the target's settings, with external versions
    /// from the records' positions when `versions`.
    pub fn documents_sink(
        &self,
        job: JobCtx<'_>,
        versions: bool,
    ) -> Result<Arc<EsSink>, JobFileError> {
        let mut cfg = self.spec.options.clone();
        cfg.version = versions.then_some(datatrace_es::VersionSource::Position);
        EsSink::new(self.client.clone(), cfg)
            .map(Arc::new)
            .map_err(|e| JobFileError::new(job.file, "target", job.scrub(&e.to_string())))
    }

    /// The sink for replaying dead letters.
    pub fn replay_sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }
}
