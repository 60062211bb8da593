//! `check` of Elasticsearch / OpenSearch indices: an index as either side of a unit (sliced
//! scans, lookups by `ids` query, through the source's own reader), and documents written
//! as the sink writes them (its own document writer), to compare.

use std::any::Any;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datatrace_core::{doc_id, DataType, Part, Record, Schema, SchemaRef, Source, Value};
use datatrace_es::bulk::DocPlan;
use datatrace_es::{EsClient, EsSource, MappingConfig, SinkConfig, SourceConfig};
use serde_json::{json, Value as Json};

use crate::check::normalize::Doc;
use crate::check::side::{read_all, CheckSource, CheckTarget, TargetKey, R};
use crate::connectors::api::{CheckSourceConn, CheckTargetConn};
use crate::plan::PlannedUnit;

/// An Elasticsearch index as the check reads it.
#[derive(Clone)]
pub struct EsIndex {
    /// The cluster.
    pub client: EsClient,
    /// Read settings, `index` naming the index.
    pub cfg: SourceConfig,
}

impl EsIndex {
    fn source(&self, cfg: SourceConfig) -> R<Arc<EsSource>> {
        EsSource::new(self.client.clone(), cfg)
            .map(Arc::new)
            .map_err(|e| e.to_string())
    }

    /// A reader of the whole index in `parallelism` slices.
    pub async fn parts(&self, parallelism: usize) -> R<(Arc<EsSource>, Vec<Part>)> {
        let source = self.source(self.cfg.clone())?;
        let parts = source
            .split(parallelism.max(1))
            .await
            .map_err(|e| e.to_string())?;
        Ok((source, parts))
    }

    /// Without an id column: how the index's document ids encode its key columns (the
    /// mapping's `_meta.datatrace`).
    pub async fn id_key(&self) -> R<Option<datatrace_es::inferred::IdKey>> {
        if self.cfg.id_column.is_some() || self.cfg.raw {
            return Ok(None);
        }
        let answer = self
            .client
            .get_mapping(&self.cfg.index)
            .await
            .map_err(|e| e.to_string())?;
        datatrace_es::inferred::mapping_to_schema(&self.cfg.index, &answer, &self.cfg)
            .map(|i| i.id_key)
            .map_err(|e| e.to_string())
    }

    /// Whether records carry their key in key columns (no id column) rather than as `_id`.
    fn keyed_by_columns(&self) -> bool {
        self.cfg.id_column.is_none() && !self.cfg.raw
    }

    /// The documents with these ids (those the configured `query`, if any, matches).
    pub async fn lookup(&self, ids: &[String]) -> R<Vec<Record>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let by_ids = json!({"ids": {"values": ids}});
        let query = match &self.cfg.query {
            Some(q) => json!({"bool": {"filter": [q, by_ids]}}),
            None => by_ids,
        };
        let cfg = SourceConfig {
            query: Some(query),
            slices: 1,
            page_size: ids.len().clamp(1, 10_000),
            ..self.cfg.clone()
        };
        let source = self.source(cfg)?;
        let parts = source.split(1).await.map_err(|e| e.to_string())?;
        read_all(source, parts).await
    }
}

/// A raw (`_id` + `_source`) record's id and document.
pub fn raw_doc(r: &Record) -> (String, Json) {
    let id = r.values.first().map(|v| v.to_string()).unwrap_or_default();
    let doc = match r.values.get(1) {
        Some(Value::Json(j)) => j.clone(),
        _ => Json::Object(Default::default()),
    };
    (id, doc)
}

/// An Elasticsearch source connected for `check`.
pub struct EsCheckSourceConn {
    /// The cluster.
    pub client: EsClient,
    /// The source's read settings.
    pub cfg: SourceConfig,
}

#[async_trait]
impl CheckSourceConn for EsCheckSourceConn {
    async fn unit(&self, unit: &PlannedUnit) -> Result<Box<dyn CheckSource>, String> {
        Ok(Box::new(EsIndex {
            client: self.client.clone(),
            cfg: SourceConfig {
                index: unit.name.clone(),
                ..self.cfg.clone()
            },
        }))
    }
}

/// An Elasticsearch target connected for `check`.
pub struct EsCheckTargetConn {
    /// The cluster.
    pub client: EsClient,
    /// The sink's settings (how documents are written).
    pub sink: SinkConfig,
}

#[async_trait]
impl CheckTargetConn for EsCheckTargetConn {
    async fn unit(
        &self,
        unit: &PlannedUnit,
        _source: &dyn CheckSource,
    ) -> Result<Box<dyn CheckTarget>, String> {
        let index = unit.target.clone();
        let exists = self
            .client
            .index_exists(&index)
            .await
            .map_err(|e| e.to_string())?;
        if !exists {
            return Err(format!(
                "target index {index} does not exist (run the job, or check with --repair)"
            ));
        }
        Ok(Box::new(EsDocuments {
            index: EsIndex {
                client: self.client.clone(),
                cfg: SourceConfig {
                    raw: true,
                    ..SourceConfig::new(index)
                },
            },
            separator: self.sink.id_separator.clone(),
            write_nulls: self.sink.write_nulls,
            mapping: self.sink.mapping.clone(),
            plans: Mutex::new(Vec::new()),
        }))
    }
}

#[async_trait]
impl CheckSource for EsIndex {
    fn key_of(&self, r: &Record) -> Vec<Value> {
        if self.keyed_by_columns() {
            return r.key().cloned().collect();
        }
        vec![r.values.first().cloned().unwrap_or(Value::Null)]
    }

    fn key_for(&self, tk: &TargetKey, target: &dyn CheckTarget) -> Option<Vec<Value>> {
        if self.keyed_by_columns() {
            // A table row's key is the source's key columns.
            return Some(tk.key.clone());
        }
        Some(vec![Value::String(target.id_text(tk))])
    }

    async fn parts(&self, _chunk_rows: u64, parallelism: usize) -> R<(Arc<dyn Source>, Vec<Part>)> {
        let (s, p) = EsIndex::parts(self, parallelism).await?;
        Ok((s, p))
    }

    async fn lookup(&self, keys: &[Vec<Value>]) -> R<Vec<Record>> {
        let ids: Vec<String> = match self.id_key().await? {
            // Key columns back into the document ids they were decoded from.
            Some(idk) => keys
                .iter()
                .filter_map(|k| doc_id::encode(k, &idk.separator).ok())
                .collect(),
            None => keys
                .iter()
                .map(|k| k.first().map(|v| v.to_string()).unwrap_or_default())
                .collect(),
        };
        EsIndex::lookup(self, &ids).await
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// An index read raw (`_id` + `_source`) as a unit's target, with the sink's settings.
pub struct EsDocuments {
    /// The index.
    pub index: EsIndex,
    /// How composite keys are joined into ids.
    pub separator: String,
    /// Whether NULL fields are written.
    pub write_nulls: bool,
    /// How values are written.
    pub mapping: MappingConfig,
    plans: Mutex<Vec<(SchemaRef, Arc<DocPlan>)>>,
}

impl EsDocuments {
    fn doc_plan(&self, schema: &SchemaRef) -> Arc<DocPlan> {
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = plans.iter().find(|(s, _)| Arc::ptr_eq(s, schema)) {
            return p.clone();
        }
        let p = Arc::new(DocPlan::new(schema, &self.mapping));
        if plans.len() >= 16 {
            plans.remove(0);
        }
        plans.push((schema.clone(), p.clone()));
        p
    }
}

#[async_trait]
impl CheckTarget for EsDocuments {
    fn key_of(&self, tr: &Record, unit: &str, _target: &str) -> R<TargetKey> {
        if !tr.has_key() {
            return Err(format!(
                "rows of {unit} have no primary key after the transforms: documents cannot be matched"
            ));
        }
        // A row whose key has no document id (a NULL part) cannot be in the index.
        let id = tr
            .doc_id(&self.separator)
            .unwrap_or_else(|e| format!("(no document id: {e})"));
        Ok(TargetKey {
            key: vec![Value::String(id.clone())],
            id,
        })
    }

    fn doc_of(&self, tr: &Record, unit: &str) -> R<Doc> {
        let plan = self.doc_plan(&tr.schema);
        let mut buf = Vec::with_capacity(256);
        plan.write_doc(&mut buf, &tr.schema, &tr.values, self.write_nulls)
            .map_err(|why| format!("row {} of {unit}: {why}", tr.key_string(",")))?;
        serde_json::from_slice(&buf).map_err(|e| {
            format!(
                "row {} of {unit}: cannot read back its document: {e}",
                tr.key_string(",")
            )
        })
    }

    fn row(&self, r: &Record) -> (TargetKey, Doc) {
        let (id, doc) = raw_doc(r);
        let doc = match doc {
            Json::Object(m) => m,
            _ => Doc::new(),
        };
        (
            TargetKey {
                key: vec![Value::String(id.clone())],
                id,
            },
            doc,
        )
    }

    async fn lookup(&self, keys: &[TargetKey]) -> R<Vec<Record>> {
        let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
        self.index.lookup(&ids).await
    }

    async fn parts(&self, _chunk_rows: u64, parallelism: usize) -> R<(Arc<dyn Source>, Vec<Part>)> {
        let (s, p) = self.index.parts(parallelism).await?;
        Ok((s, p))
    }

    fn key_parts(&self, tk: &TargetKey, types: &[DataType]) -> Option<Vec<Value>> {
        doc_id::decode(&tk.id, types, &self.separator).ok()
    }

    fn id_text(&self, tk: &TargetKey) -> String {
        tk.id.clone()
    }

    fn delete_values(
        &self,
        t: &TargetKey,
        schema: &Schema,
        unit: &str,
        _target: &str,
    ) -> R<Vec<Value>> {
        let mut values = vec![Value::Null; schema.len()];
        let pk = schema.primary_key().to_vec();
        if pk.is_empty() {
            return Err(format!(
                "unit {unit}: the copied rows have no key, document {} cannot be deleted",
                t.id
            ));
        }
        let types: Vec<DataType> = pk.iter().map(|&i| schema.columns()[i].data_type).collect();
        let key = doc_id::decode(&t.id, &types, &self.separator).map_err(|e| {
            format!(
                "unit {unit}: document id {} does not map to the key of the copied rows: {e}",
                t.id
            )
        })?;
        for (&i, v) in pk.iter().zip(key) {
            values[i] = v;
        }
        Ok(values)
    }

    async fn refresh(&self) -> R<()> {
        datatrace_es::refresh(&self.index.client, &self.index.cfg.index)
            .await
            .map_err(|e| e.to_string())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
