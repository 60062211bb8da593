//! [`UnitCtx`]: one unit's source and target as the check sees them, and the row-level
//! comparisons every method ends in: source rows through the job's transforms against the
//! target rows looked up by key ([`UnitCtx::compare_records`]), and target rows looked up
//! in the source ([`UnitCtx::find_extras`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use datatrace_core::{Record, SchemaRef, Sink, Transform, Value};
use datatrace_es::bulk::DocPlan;
use datatrace_es::MappingConfig;

use super::normalize::{diff_docs, key_display, row_doc, value_to_json, Doc};
use super::report::FieldDiff;
use super::sides::{raw_doc, EsIndex, MySqlTable, R};

/// Where a unit is read from.
pub enum SourceEnd {
    /// A MySQL table.
    MySql(MySqlTable),
    /// An Elasticsearch index (typed records, as the job reads them).
    Es(EsIndex),
}

/// Where a unit was written to.
pub enum TargetEnd {
    /// A MySQL table.
    MySql(MySqlTable),
    /// An Elasticsearch index (read raw: `_id` + `_source`), with the sink's settings.
    Es {
        /// The index.
        index: EsIndex,
        /// How composite keys are joined into ids.
        separator: String,
        /// Whether NULL fields are written.
        write_nulls: bool,
        /// How values are written.
        mapping: MappingConfig,
    },
}

/// A target row's identity: the document id, or the key values of a table row (`id` is
/// then their normalized JSON text).
#[derive(Debug, Clone, PartialEq)]
pub struct TargetKey {
    /// The identity compared.
    pub id: String,
    /// The key values (`[id]` for documents).
    pub key: Vec<Value>,
}

impl TargetKey {
    /// For people: the id, or the key values joined by commas.
    pub fn display(&self) -> String {
        key_display(&self.key)
    }
}

/// How a source row compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Not in the target.
    Missing,
    /// In the target with other values.
    Different,
}

/// A source row that is missing or different in the target.
#[derive(Debug, Clone)]
pub struct Compared {
    /// The source key.
    pub key: Vec<Value>,
    /// Missing or different.
    pub kind: Kind,
    /// The fields that differ (empty when missing).
    pub fields: Vec<FieldDiff>,
    /// The source row as read (when asked for, to repair it).
    pub record: Option<Record>,
}

/// One unit, connected.
pub struct UnitCtx {
    /// The unit's name.
    pub name: String,
    /// The target table or index, for people.
    pub target_name: String,
    /// Its source.
    pub source: SourceEnd,
    /// Its target.
    pub target: TargetEnd,
    /// The unit's transforms then the job's, as `run` applies them.
    pub transforms: Vec<Arc<dyn Transform>>,
    /// The unit's sink (for repairs).
    pub sink: Arc<dyn Sink>,
    /// The source schema.
    pub schema: Option<SchemaRef>,
    /// The schema after the transforms (deletes are built in it).
    pub out_schema: Option<SchemaRef>,
    /// Rows per lookup.
    pub batch: usize,
    plans: Mutex<Vec<(SchemaRef, Arc<DocPlan>)>>,
}

impl UnitCtx {
    /// A unit context.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        target_name: String,
        source: SourceEnd,
        target: TargetEnd,
        transforms: Vec<Arc<dyn Transform>>,
        sink: Arc<dyn Sink>,
        schema: Option<SchemaRef>,
        out_schema: Option<SchemaRef>,
        batch: usize,
    ) -> Self {
        UnitCtx {
            name,
            target_name,
            source,
            target,
            transforms,
            sink,
            schema,
            out_schema,
            batch: batch.max(1),
            plans: Mutex::new(Vec::new()),
        }
    }

    /// The source key of a source record.
    pub fn source_key(&self, r: &Record) -> Vec<Value> {
        match &self.source {
            SourceEnd::MySql(t) => t.key_of(r),
            SourceEnd::Es(_) => vec![r.values.first().cloned().unwrap_or(Value::Null)],
        }
    }

    /// The record after the transforms (`None`: dropped, or refused by a transform).
    pub fn transform(&self, mut r: Record) -> Option<Record> {
        for t in &self.transforms {
            match t.apply(r) {
                Ok(Some(next)) => r = next,
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(unit = %self.name, error = %e.message, "a transform refused a row; it is not compared");
                    return None;
                }
            }
        }
        Some(r)
    }

    /// Where a transformed source record lands in the target.
    pub fn target_key_of(&self, tr: &Record) -> R<TargetKey> {
        match &self.target {
            TargetEnd::Es { separator, .. } => {
                if !tr.has_key() {
                    return Err(format!(
                        "rows of {} have no primary key after the transforms: documents cannot be matched",
                        self.name
                    ));
                }
                let id = tr.key_string(separator);
                Ok(TargetKey {
                    key: vec![Value::String(id.clone())],
                    id,
                })
            }
            TargetEnd::MySql(t) => {
                let mut key = Vec::with_capacity(t.table.key.len());
                for name in t.key_names() {
                    match tr.get(&name) {
                        Some(v) => key.push(v.clone()),
                        None => {
                            return Err(format!(
                                "key column {name} of the target table {} is not in the rows of {} after the transforms",
                                self.target_name, self.name
                            ))
                        }
                    }
                }
                Ok(table_key(key))
            }
        }
    }

    fn doc_plan(&self, schema: &SchemaRef, mapping: &MappingConfig) -> Arc<DocPlan> {
        let mut plans = self.plans.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = plans.iter().find(|(s, _)| Arc::ptr_eq(s, schema)) {
            return p.clone();
        }
        let p = Arc::new(DocPlan::new(schema, mapping));
        if plans.len() >= 16 {
            plans.remove(0);
        }
        plans.push((schema.clone(), p.clone()));
        p
    }

    /// A transformed source record as the target should hold it.
    pub fn source_doc(&self, tr: &Record) -> R<Doc> {
        match &self.target {
            TargetEnd::Es {
                write_nulls,
                mapping,
                ..
            } => {
                let plan = self.doc_plan(&tr.schema, mapping);
                let mut buf = Vec::with_capacity(256);
                plan.write_doc(&mut buf, &tr.schema, &tr.values, *write_nulls);
                serde_json::from_slice(&buf).map_err(|e| {
                    format!(
                        "row {} of {}: cannot read back its document: {e}",
                        tr.key_string(","),
                        self.name
                    )
                })
            }
            TargetEnd::MySql(_) => Ok(row_doc(
                tr.schema.columns().iter().map(|c| c.name.clone()),
                &tr.values,
            )),
        }
    }

    /// A record read from the target: its identity and document.
    pub fn target_row(&self, r: &Record) -> (TargetKey, Doc) {
        match &self.target {
            TargetEnd::Es { .. } => {
                let (id, doc) = raw_doc(r);
                let doc = match doc {
                    serde_json::Value::Object(m) => m,
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
            TargetEnd::MySql(t) => (
                table_key(t.key_of(r)),
                row_doc(r.schema.columns().iter().map(|c| c.name.clone()), &r.values),
            ),
        }
    }

    /// The target rows with these identities, by identity.
    pub async fn target_docs(&self, keys: &[TargetKey]) -> R<HashMap<String, Doc>> {
        let records = match &self.target {
            TargetEnd::Es { index, .. } => {
                let ids: Vec<String> = keys.iter().map(|k| k.id.clone()).collect();
                index.lookup(&ids).await?
            }
            TargetEnd::MySql(t) => {
                let ks: Vec<Vec<Value>> = keys.iter().map(|k| k.key.clone()).collect();
                t.lookup(&ks).await?
            }
        };
        Ok(records
            .iter()
            .map(|r| {
                let (k, d) = self.target_row(r);
                (k.id, d)
            })
            .collect())
    }

    /// The source key a target row came from.
    pub fn source_key_for(&self, tk: &TargetKey) -> Vec<Value> {
        let es_target = matches!(self.target, TargetEnd::Es { .. });
        match &self.source {
            SourceEnd::Es(_) => {
                let id = if es_target {
                    tk.id.clone()
                } else {
                    tk.display()
                };
                vec![Value::String(id)]
            }
            SourceEnd::MySql(t) => {
                if let TargetEnd::Es { separator, .. } = &self.target {
                    let n = t.table.key.len();
                    let parts: Vec<&str> = if n > 1 {
                        tk.id.splitn(n, separator.as_str()).collect()
                    } else {
                        vec![tk.id.as_str()]
                    };
                    parts.into_iter().map(Value::from).collect()
                } else {
                    tk.key.clone()
                }
            }
        }
    }

    /// The source rows with these keys.
    pub async fn source_lookup(&self, keys: &[Vec<Value>]) -> R<Vec<Record>> {
        match &self.source {
            SourceEnd::MySql(t) => t.lookup(keys).await,
            SourceEnd::Es(i) => {
                let ids: Vec<String> = keys
                    .iter()
                    .map(|k| k.first().map(|v| v.to_string()).unwrap_or_default())
                    .collect();
                i.lookup(&ids).await
            }
        }
    }

    /// Compares source rows with the target: the rows the transforms keep (their count is
    /// returned) are looked up in the target by key and compared field by field.
    pub async fn compare_records(
        &self,
        records: Vec<Record>,
        keep: bool,
    ) -> R<(u64, Vec<Compared>)> {
        let mut rows = Vec::with_capacity(records.len());
        for r in records {
            let key = self.source_key(&r);
            let raw = keep.then(|| r.clone());
            if let Some(tr) = self.transform(r) {
                let tk = self.target_key_of(&tr)?;
                let doc = self.source_doc(&tr)?;
                rows.push((key, tk, doc, raw));
            }
        }
        let keys: Vec<TargetKey> = rows.iter().map(|r| r.1.clone()).collect();
        let targets = self.target_docs(&keys).await?;
        let kept = rows.len() as u64;
        let mut out = Vec::new();
        for (key, tk, doc, record) in rows {
            match targets.get(&tk.id) {
                None => out.push(Compared {
                    key,
                    kind: Kind::Missing,
                    fields: Vec::new(),
                    record,
                }),
                Some(t) => {
                    let fields = diff_docs(&doc, t);
                    if !fields.is_empty() {
                        out.push(Compared {
                            key,
                            kind: Kind::Different,
                            fields,
                            record,
                        });
                    }
                }
            }
        }
        Ok((kept, out))
    }

    /// The target rows among `rows` that no source row (kept by the transforms) maps to.
    pub async fn find_extras(&self, rows: Vec<TargetKey>) -> R<Vec<TargetKey>> {
        if rows.is_empty() {
            return Ok(rows);
        }
        let keys: Vec<Vec<Value>> = rows.iter().map(|t| self.source_key_for(t)).collect();
        let found = self.source_lookup(&keys).await?;
        let mut present = HashSet::with_capacity(found.len());
        for r in found {
            if let Some(tr) = self.transform(r) {
                present.insert(self.target_key_of(&tr)?.id);
            }
        }
        Ok(rows
            .into_iter()
            .filter(|t| !present.contains(&t.id))
            .collect())
    }

    /// Which of these target rows are (still) in the target.
    pub async fn target_present(&self, rows: Vec<TargetKey>) -> R<Vec<TargetKey>> {
        let docs = self.target_docs(&rows).await?;
        Ok(rows
            .into_iter()
            .filter(|t| docs.contains_key(&t.id))
            .collect())
    }
}

/// The identity of a table row from its key values.
pub fn table_key(key: Vec<Value>) -> TargetKey {
    let norm: Vec<serde_json::Value> = key.iter().map(value_to_json).collect();
    TargetKey {
        id: serde_json::Value::Array(norm).to_string(),
        key,
    }
}
