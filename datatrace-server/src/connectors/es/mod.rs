//! `type = "elasticsearch"` (or `"opensearch"`): indices as units ([`spec`] for the
//! settings, [`plan`] for the units and the shared bulk sink, [`check`] for `check`).

pub mod check;
pub mod plan;
pub mod spec;

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::{CheckpointStore, SchemaRef, Sink};
use datatrace_es::EsClient;
use serde_json::{Map, Value};

pub use spec::{EsSourceSpec, EsTargetSpec};

use super::api::{
    CheckSourceConn, CheckTargetConn, Connector, ConnectorUi, JobCtx, SourceEndpoint, SourceUnit,
    SourceUnits, Target, TargetEndpoint, TestResult,
};
use crate::job_file::error::JobFileError;
use check::{EsCheckSourceConn, EsCheckTargetConn};
use plan::EsTarget;

/// The Elasticsearch / OpenSearch connector.
pub struct EsConnector;

impl Connector for EsConnector {
    fn types(&self) -> &'static [&'static str] {
        &["elasticsearch", "opensearch"]
    }

    fn reads(&self) -> bool {
        true
    }

    fn writes(&self) -> bool {
        true
    }

    fn parse_source(
        &self,
        file: &str,
        at: &str,
        keys: Map<String, Value>,
    ) -> Result<Arc<dyn SourceEndpoint>, JobFileError> {
        Ok(Arc::new(spec::parse_source(file, at, keys)?))
    }

    fn parse_target(
        &self,
        file: &str,
        at: &str,
        keys: Map<String, Value>,
    ) -> Result<Arc<dyn TargetEndpoint>, JobFileError> {
        Ok(Arc::new(spec::parse_target(file, at, keys)?))
    }

    fn ui(&self) -> Option<ConnectorUi> {
        Some(ConnectorUi {
            kind: "elasticsearch",
            label: "Elasticsearch / OpenSearch",
            data_source: true,
            url_schemes: &["http://", "https://"],
            url_example: "http(s)://host:9200",
            username: true,
            api_key: true,
            units_key: "indices",
            units_label: "Indices",
            all_units: "*",
            target_key: "index",
            target_label: "Target index",
            stream_modes: None,
            task_fields: &[],
        })
    }
}

/// Connects for `check`, naming the section's URL key in the error.
async fn check_client(
    job: JobCtx<'_>,
    at: &str,
    conn: &datatrace_es::ConnectionConfig,
) -> Result<EsClient, JobFileError> {
    EsClient::connect(conn)
        .await
        .map_err(|e| job.error(&format!("{at}.url"), e))
}

/// What a cluster answers to `GET /`.
async fn test(conn: &datatrace_es::ConnectionConfig) -> TestResult {
    match EsClient::connect(conn).await {
        Ok(client) => {
            let info = client.info().clone();
            TestResult {
                ok: true,
                version: Some(info.version.clone()),
                flavor: Some(
                    match info.flavor {
                        datatrace_es::Flavor::Elasticsearch => "elasticsearch",
                        datatrace_es::Flavor::OpenSearch => "opensearch",
                    }
                    .into(),
                ),
                details: vec![format!("cluster {}", info.cluster_name)],
                error: None,
            }
        }
        Err(e) => TestResult::failed(format!("cannot connect to {}: {e}", conn.urls.join(", "))),
    }
}

#[async_trait]
impl SourceEndpoint for EsSourceSpec {
    fn kind(&self) -> &'static str {
        "elasticsearch"
    }

    fn describe(&self) -> String {
        let mut s = format!(
            "elasticsearch {}, indices {}",
            self.connection.urls.join(", "),
            self.indices.join(", ")
        );
        if !self.exclude.is_empty() {
            s.push_str(&format!(" (exclude {})", self.exclude.join(", ")));
        }
        s
    }

    async fn discover(
        &self,
        job: JobCtx<'_>,
        _store: &Arc<dyn CheckpointStore>,
    ) -> Result<SourceUnits, JobFileError> {
        let units = plan::discover(job, self)
            .await?
            .into_iter()
            .map(|(name, source)| SourceUnit::new(name, source))
            .collect();
        Ok(SourceUnits {
            units,
            endpoint: None,
        })
    }

    fn uncheckable(&self) -> Option<String> {
        None
    }

    async fn check_source(
        &self,
        job: JobCtx<'_>,
    ) -> Result<Box<dyn CheckSourceConn>, JobFileError> {
        Ok(Box::new(EsCheckSourceConn {
            client: check_client(job, "source", &self.connection).await?,
            cfg: self.options.clone(),
        }))
    }

    async fn test_connection(&self) -> TestResult {
        test(&self.connection).await
    }

    async fn list_units(&self) -> Result<Vec<String>, String> {
        let client = EsClient::connect(&self.connection)
            .await
            .map_err(|e| e.to_string())?;
        let answer = client.get_mapping("*").await.map_err(|e| e.to_string())?;
        let mut names: Vec<String> = answer
            .as_object()
            .map(|m| m.keys().filter(|k| !k.starts_with('.')).cloned().collect())
            .unwrap_or_default();
        names.sort();
        Ok(names)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[async_trait]
impl TargetEndpoint for EsTargetSpec {
    fn kind(&self) -> &'static str {
        "elasticsearch"
    }

    fn describe(&self) -> String {
        format!(
            "elasticsearch {}, index {}, create_index {}",
            self.connection.urls.join(", "),
            self.options.index,
            self.options.create_index
        )
    }

    async fn connect(&self, job: JobCtx<'_>) -> Result<Box<dyn Target>, JobFileError> {
        Ok(Box::new(EsTarget::connect(job, self).await?))
    }

    fn uncheckable(&self) -> Option<String> {
        None
    }

    async fn check_target(
        &self,
        job: JobCtx<'_>,
    ) -> Result<Box<dyn CheckTargetConn>, JobFileError> {
        Ok(Box::new(EsCheckTargetConn {
            client: check_client(job, "target", &self.connection).await?,
            sink: self.options.clone(),
        }))
    }

    async fn test_connection(&self) -> TestResult {
        test(&self.connection).await
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[async_trait]
impl Target for EsTarget {
    async fn sink_for(
        &self,
        job: JobCtx<'_>,
        _unit: &str,
        schema: Option<&SchemaRef>,
        transformed: Option<SchemaRef>,
        _same_source: Option<(&str, &str, &str)>,
    ) -> Result<(Arc<dyn Sink>, String), JobFileError> {
        EsTarget::sink_for(self, job, schema, transformed).await
    }

    fn replay_sink(&self) -> Arc<dyn Sink> {
        EsTarget::replay_sink(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
