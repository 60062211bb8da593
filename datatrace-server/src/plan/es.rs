//! Planning Elasticsearch sources (one unit per index matched by the patterns) and targets.

use std::sync::Arc;

use datatrace_core::pattern::glob_match;
use datatrace_core::{SchemaRef, Sink, Source};
use datatrace_es::naming::IndexPattern;
use datatrace_es::{EsClient, EsError, EsSink, EsSource, SourceConfig};

use super::unit_sink::UnitSink;
use crate::job_file::error::JobFileError;
use crate::job_file::es::{EsSourceSpec, EsTargetSpec};
use crate::job_file::JobFile;

/// Connects; the error names the URL(s).
async fn connect(
    job: &JobFile,
    at: &str,
    cfg: &datatrace_es::ConnectionConfig,
) -> Result<EsClient, JobFileError> {
    let key = if cfg.urls.len() == 1 { "url" } else { "urls" };
    EsClient::connect(cfg).await.map_err(|e| {
        let msg = match &e {
            EsError::Unreachable { .. } => e.to_string(),
            _ => format!("cannot connect to {}: {e}", cfg.urls.join(", ")),
        };
        JobFileError::new(&job.file, &format!("{at}.{key}"), job.scrub(&msg))
    })
}

/// The indices of an Elasticsearch source, each a unit named after the index.
pub async fn discover(
    job: &JobFile,
    spec: &EsSourceSpec,
) -> Result<Vec<(String, Arc<dyn Source>)>, JobFileError> {
    let client = connect(job, "source", &spec.connection).await?;
    let mut units: Vec<(String, Arc<dyn Source>)> = Vec::new();
    for (i, pattern) in spec.indices.iter().enumerate() {
        let at = format!("source.indices[{i}]");
        let answer = client
            .get_mapping(pattern)
            .await
            .map_err(|e| JobFileError::new(&job.file, &at, job.scrub(&e.to_string())))?;
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
                &job.file,
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
                .map_err(|e| JobFileError::new(&job.file, "source", job.scrub(&e.to_string())))?;
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
    pub async fn connect(job: &JobFile, spec: &EsTargetSpec) -> Result<Self, JobFileError> {
        let client = connect(job, "target", &spec.connection).await?;
        let pattern = IndexPattern::parse(&spec.options.index)
            .map_err(|e| JobFileError::new(&job.file, "target.index", job.scrub(&e.to_string())))?;
        let sink = EsSink::new(client.clone(), spec.options.clone())
            .map_err(|e| JobFileError::new(&job.file, "target", job.scrub(&e.to_string())))?;
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
        job: &JobFile,
        schema: Option<&SchemaRef>,
        transformed: Option<SchemaRef>,
    ) -> Result<(Arc<dyn Sink>, String), JobFileError> {
        let index = match schema {
            Some(s) => self
                .pattern
                .render(s.name(), s.namespace(), &self.spec.options.prefix)
                .map_err(|e| {
                    JobFileError::new(&job.file, "target.index", job.scrub(&e.to_string()))
                })?,
            None => "?".into(),
        };
        if !self.spec.options.create_index && schema.is_some() && !self.pattern.is_time_based() {
            let exists = self.client.index_exists(&index).await.map_err(|e| {
                JobFileError::new(&job.file, "target.index", job.scrub(&e.to_string()))
            })?;
            if !exists {
                return Err(JobFileError::new(
                    &job.file,
                    "target.index",
                    format!(
                        "index {index} does not exist (create_index = false: the target index \
                         must exist)"
                    ),
                ));
            }
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

    /// The sink for replaying dead letters.
    pub fn replay_sink(&self) -> Arc<dyn Sink> {
        self.sink.clone()
    }
}
