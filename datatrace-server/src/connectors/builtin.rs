//! The built-in endpoints, for smoke tests and for benchmarking the CLI itself: the
//! `generator` source (the core's [`GeneratorSource`](datatrace_core::GeneratorSource))
//! and the `discard` target (the core's [`DiscardSink`](datatrace_core::DiscardSink)).
//!
//! ```toml
//! [source]
//! type = "generator"
//! units = ["a", "b"]   # one unit per name (default: one unit "generated")
//! rows = 100000        # rows per unit (default 10000)
//! columns = 10         # an `id` key and columns cycling int, string, float, decimal (default 10)
//! width = 16           # characters per string (default 16)
//!
//! [target]
//! type = "discard"     # counts the records and drops them
//! ```

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use datatrace_core::{CheckpointStore, DiscardSink, GeneratorSource, SchemaRef, Sink};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::api::{
    Connector, ConnectorUi, JobCtx, SourceEndpoint, SourceUnit, SourceUnits, Target, TargetEndpoint,
};
use crate::job_file::error::{from_value, join, with_type_key, JobFileError};

/// `[source] type = "generator"`: synthetic rows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorSpec {
    /// Unit names, one generated unit each.
    pub units: Vec<String>,
    /// Rows per unit.
    pub rows: u64,
    /// Columns per row, the `id` key included.
    pub columns: usize,
    /// Characters per string value.
    pub width: usize,
}

impl Default for GeneratorSpec {
    fn default() -> Self {
        GeneratorSpec {
            units: vec!["generated".into()],
            rows: 10_000,
            columns: 10,
            width: 16,
        }
    }
}

impl GeneratorSpec {
    /// Checks the values; returns the key (below `source`) and what is wrong.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.units.is_empty() {
            return Err(("units".into(), "expected at least one unit name".into()));
        }
        for (i, u) in self.units.iter().enumerate() {
            if u.trim().is_empty() {
                return Err((format!("units[{i}]"), "expected a non-empty name".into()));
            }
            if self.units[..i].contains(u) {
                return Err((format!("units[{i}]"), format!("unit {u:?} is listed twice")));
            }
        }
        if self.columns == 0 {
            return Err(("columns".into(), "must be at least 1 (the id)".into()));
        }
        // Rows are built from these numbers: bound them.
        for (key, v, max) in [
            ("columns", self.columns, 1000),
            ("width", self.width, 1 << 20),
        ] {
            datatrace_core::limits::check_range(key, v as u64, 0, max)
                .map_err(|m| (key.to_string(), m))?;
        }
        Ok(())
    }
}

/// `[target] type = "discard"`: counts records and drops them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscardSpec {}

/// `type = "generator"`.
pub struct GeneratorConnector;

impl Connector for GeneratorConnector {
    fn types(&self) -> &'static [&'static str] {
        &["generator"]
    }

    fn reads(&self) -> bool {
        true
    }

    fn parse_source(
        &self,
        file: &str,
        at: &str,
        keys: Map<String, Value>,
    ) -> Result<Arc<dyn SourceEndpoint>, JobFileError> {
        let g: GeneratorSpec = from_value(file, at, Value::Object(keys)).map_err(with_type_key)?;
        g.check()
            .map_err(|(k, m)| JobFileError::new(file, &join(at, &k), m))?;
        Ok(Arc::new(g))
    }

    fn ui(&self) -> Option<ConnectorUi> {
        Some(inline("generator", "Generator (synthetic rows)"))
    }
}

/// A connector used inline in tasks (no data source).
fn inline(kind: &'static str, label: &'static str) -> ConnectorUi {
    ConnectorUi {
        kind,
        label,
        data_source: false,
        url_schemes: &[],
        url_example: "",
        username: false,
        api_key: false,
        units_key: "units",
        units_label: "Units",
        all_units: "",
        target_key: "",
        target_label: "",
        stream_modes: None,
        task_fields: &[],
    }
}

#[async_trait]
impl SourceEndpoint for GeneratorSpec {
    fn kind(&self) -> &'static str {
        "generator"
    }

    fn describe(&self) -> String {
        format!(
            "generator: {} unit(s) of {} rows, {} columns",
            self.units.len(),
            self.rows,
            self.columns
        )
    }

    async fn discover(
        &self,
        _job: JobCtx<'_>,
        _store: &Arc<dyn CheckpointStore>,
    ) -> Result<SourceUnits, JobFileError> {
        let units = self
            .units
            .iter()
            .map(|u| {
                // Every unit has the schema `generated`: each writes to a target of its name.
                let mut unit = SourceUnit::new(
                    u.clone(),
                    Arc::new(GeneratorSource::new(self.rows, self.columns, self.width)),
                );
                unit.own_target = true;
                unit
            })
            .collect();
        Ok(SourceUnits {
            units,
            endpoint: None,
        })
    }

    fn uncheckable(&self) -> Option<String> {
        Some("check compares a MySQL or Elasticsearch source with its target; this job's source is a generator".into())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// `type = "discard"`.
pub struct DiscardConnector;

impl Connector for DiscardConnector {
    fn types(&self) -> &'static [&'static str] {
        &["discard"]
    }

    fn writes(&self) -> bool {
        true
    }

    fn parse_target(
        &self,
        file: &str,
        at: &str,
        keys: Map<String, Value>,
    ) -> Result<Arc<dyn TargetEndpoint>, JobFileError> {
        let d: DiscardSpec = from_value(file, at, Value::Object(keys)).map_err(with_type_key)?;
        Ok(Arc::new(d))
    }

    fn ui(&self) -> Option<ConnectorUi> {
        Some(inline("discard", "Discard (counts and drops)"))
    }
}

#[async_trait]
impl TargetEndpoint for DiscardSpec {
    fn kind(&self) -> &'static str {
        "discard"
    }

    fn describe(&self) -> String {
        "discard (records are counted and dropped)".into()
    }

    async fn connect(&self, _job: JobCtx<'_>) -> Result<Box<dyn Target>, JobFileError> {
        Ok(Box::new(Discard))
    }

    fn uncheckable(&self) -> Option<String> {
        Some(
            "check compares a source with its target; this job's target discards everything".into(),
        )
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// The connected `discard` target.
struct Discard;

#[async_trait]
impl Target for Discard {
    async fn sink_for(
        &self,
        _job: JobCtx<'_>,
        unit: &str,
        _schema: Option<&SchemaRef>,
        _transformed: Option<SchemaRef>,
        _same_source: Option<(&str, &str, &str)>,
    ) -> Result<(Arc<dyn Sink>, String), JobFileError> {
        Ok((Arc::new(DiscardSink::new()), format!("{unit} (discarded)")))
    }

    fn replay_sink(&self) -> Arc<dyn Sink> {
        Arc::new(DiscardSink::new())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
