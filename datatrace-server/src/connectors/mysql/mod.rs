//! `type = "mysql"`: MySQL / MariaDB tables as units, their change streams, and denormalized
//! documents ([`spec`] for the settings, [`plan`] for the units and sinks, [`check`] for
//! `check`, [`documents`] for `[[source.documents]]`).

pub mod check;
pub mod documents;
pub mod narrow;
pub mod plan;
pub mod spec;
pub mod table;

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::transforms::TransformSpec;
use datatrace_core::{CheckpointStore, SchemaRef, Sink};
use datatrace_mysql::MySqlConnection;
use serde_json::{Map, Value};

pub use spec::{MySqlSourceSpec, MySqlTargetSpec, SourceMode};

use super::api::{
    CheckSourceConn, CheckTargetConn, Connector, ConnectorUi, JobCtx, JobPlan, SourceEndpoint,
    SourceSpec, SourceUnit, SourceUnits, StoppedRetention, Target, TargetEndpoint, TargetSpec,
    TestResult,
};
use crate::job_file::error::JobFileError;
use check::{MySqlCheckSourceConn, MySqlCheckTargetConn};
use plan::MySqlTarget;

/// The MySQL / MariaDB connector.
pub struct MySqlConnector;

impl Connector for MySqlConnector {
    fn types(&self) -> &'static [&'static str] {
        &["mysql"]
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
            kind: "mysql",
            label: "MySQL / MariaDB",
            data_source: true,
            url_schemes: &["mysql://"],
            url_example: "mysql://user@host:3306/db",
            username: false,
            api_key: false,
            units_key: "tables",
            units_label: "Tables",
            all_units: "*.*",
            target_key: "table",
            target_label: "Target table",
            stream_modes: Some(("cdc", "snapshot+cdc")),
            task_fields: &[],
        })
    }
}

/// Connects for `check`, naming the section's URL key in the error.
async fn check_conn(
    job: JobCtx<'_>,
    at: &str,
    cfg: &datatrace_mysql::ConnectionConfig,
) -> Result<MySqlConnection, JobFileError> {
    MySqlConnection::connect(cfg)
        .await
        .map_err(|e| job.error(&format!("{at}.url"), e))
}

#[async_trait]
impl SourceEndpoint for MySqlSourceSpec {
    fn kind(&self) -> &'static str {
        "mysql"
    }

    fn describe(&self) -> String {
        if !self.documents.is_empty() {
            let docs: Vec<String> = self
                .documents
                .iter()
                .map(|d| format!("{} ({} + {} relations)", d.name, d.table, d.relations.len()))
                .collect();
            return format!(
                "mysql {}, documents {}",
                self.connection.redacted_url(),
                docs.join(", ")
            );
        }
        let mut s = format!(
            "mysql {}, tables {}",
            self.connection.redacted_url(),
            self.tables.join(", ")
        );
        if !self.exclude.is_empty() {
            s.push_str(&format!(" (exclude {})", self.exclude.join(", ")));
        }
        s
    }

    fn check_job(
        &self,
        file: &str,
        target: &TargetSpec,
        transforms: &[TransformSpec],
    ) -> Result<(), JobFileError> {
        documents::spec::check_job(file, &self.documents, target, transforms)
    }

    fn streams(&self) -> bool {
        self.mode.streams()
    }

    async fn discover(
        &self,
        job: JobCtx<'_>,
        store: &Arc<dyn CheckpointStore>,
    ) -> Result<SourceUnits, JobFileError> {
        let (conn, units) = plan::discover(job, self).await?;
        // Documents need ids: every table the job copies or streams into an index must have
        // a key (a stream unit has no single schema, so its tables are checked here).
        if job.target.kind() == "elasticsearch" && self.documents.is_empty() {
            for (_, s) in &units {
                let schema = s.schema().await.map_err(|e| {
                    JobFileError::new(job.file, "source", job.scrub(&e.to_string()))
                })?;
                if let Some(schema) = schema.filter(|s| s.primary_key().is_empty()) {
                    return Err(plan::keyless(job, &schema));
                }
            }
        }
        let (units, stamp) = plan::with_stream(job, self, &conn, units, store).await?;
        let units = units
            .into_iter()
            .map(|(name, source)| {
                let mut unit = SourceUnit::new(name, source);
                if let Some(stamp) = stamp.as_ref().filter(|_| unit.name != plan::STREAM_UNIT) {
                    unit.own_transforms.push(stamp.clone());
                }
                unit
            })
            .collect();
        Ok(SourceUnits {
            units,
            endpoint: Some(conn.endpoint().to_owned()),
        })
    }

    async fn plan_job(
        &self,
        job: JobCtx<'_>,
        store: &Arc<dyn CheckpointStore>,
    ) -> Option<Result<JobPlan, JobFileError>> {
        if self.documents.is_empty() {
            return None;
        }
        Some(documents::plan::plan(job, self, store).await)
    }

    async fn validate(&self, job: JobCtx<'_>) -> Vec<String> {
        match plan::stream_retention(job, self).await {
            Some(r) => vec![format!("stream:       {r}")],
            None => Vec::new(),
        }
    }

    async fn warnings(&self, job: JobCtx<'_>) -> Result<Vec<String>, JobFileError> {
        plan::keyless_stream_warnings(job, self).await
    }

    async fn stopped_retention(
        &self,
        job: JobCtx<'_>,
        store: &dyn CheckpointStore,
        job_name: &str,
    ) -> Option<StoppedRetention> {
        plan::stopped_stream_retention(job, self, store, job_name).await
    }

    fn uncheckable(&self) -> Option<String> {
        None
    }

    fn as_copy(&self) -> Option<SourceSpec> {
        if !self.mode.streams() {
            return None;
        }
        let mut copy = self.clone();
        copy.mode = SourceMode::Full;
        Some(SourceSpec(Arc::new(copy)))
    }

    async fn check_source(
        &self,
        job: JobCtx<'_>,
    ) -> Result<Box<dyn CheckSourceConn>, JobFileError> {
        Ok(Box::new(MySqlCheckSourceConn {
            conn: check_conn(job, "source", &self.connection).await?,
            opts: self.options.clone(),
        }))
    }

    async fn test_connection(&self) -> TestResult {
        use mysql_async::prelude::Queryable;
        match MySqlConnection::connect(&self.connection).await {
            Ok(conn) => {
                let info = conn.info().clone();
                let mut details = Vec::new();
                if let Ok(mut c) = conn.get().await {
                    if let Ok(rows) = c.query::<String, _>("SHOW GRANTS").await {
                        details = rows;
                    }
                }
                let _ = conn.close().await;
                TestResult {
                    ok: true,
                    version: Some(info.version),
                    flavor: Some(if info.is_mariadb { "mariadb" } else { "mysql" }.into()),
                    details,
                    error: None,
                }
            }
            Err(e) => TestResult::failed(format!(
                "cannot connect to {}: {e}",
                self.connection.redacted_url()
            )),
        }
    }

    async fn list_units(&self) -> Result<Vec<String>, String> {
        let conn = MySqlConnection::connect(&self.connection)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", self.connection.redacted_url()))?;
        let selector = datatrace_mysql::TableSelector::include(["*.*"]);
        let tables = datatrace_mysql::discover_tables(&conn, &selector)
            .await
            .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        Ok(tables.iter().map(|t| t.qualified_name()).collect())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[async_trait]
impl TargetEndpoint for MySqlTargetSpec {
    fn kind(&self) -> &'static str {
        "mysql"
    }

    fn describe(&self) -> String {
        format!(
            "mysql {}, table {}, mode {}, create_table {}",
            self.connection.redacted_url(),
            self.table.as_str(),
            serde_json::to_value(self.options.mode)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
            self.options.create_table
        )
    }

    async fn connect(&self, job: JobCtx<'_>) -> Result<Box<dyn Target>, JobFileError> {
        Ok(Box::new(MySqlTarget::connect(job, self).await?))
    }

    fn uncheckable(&self) -> Option<String> {
        None
    }

    async fn check_target(
        &self,
        job: JobCtx<'_>,
    ) -> Result<Box<dyn CheckTargetConn>, JobFileError> {
        Ok(Box::new(MySqlCheckTargetConn {
            conn: check_conn(job, "target", &self.connection).await?,
        }))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

#[async_trait]
impl Target for MySqlTarget {
    async fn sink_for(
        &self,
        job: JobCtx<'_>,
        _unit: &str,
        schema: Option<&SchemaRef>,
        transformed: Option<SchemaRef>,
        same_source: Option<(&str, &str, &str)>,
    ) -> Result<(Arc<dyn Sink>, String), JobFileError> {
        MySqlTarget::sink_for(self, job, schema, transformed, same_source).await
    }

    fn replay_sink(&self) -> Arc<dyn Sink> {
        MySqlTarget::replay_sink(self)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
