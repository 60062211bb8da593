//! [`UnitCtx`]: one unit's source and target as the check sees them (each through its
//! connector's [`CheckSource`] / [`CheckTarget`]), and the row-level
//! comparisons every method ends in: source rows through the job's transforms against the
//! target rows looked up by key ([`UnitCtx::compare_records`]), and target rows looked up
//! in the source ([`UnitCtx::find_extras`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use datatrace_core::{Record, SchemaRef, Sink, Transform, Value};

use super::normalize::{diff_docs_with, Doc, Rules};
use super::report::FieldDiff;
use super::side::{key_id, CheckSource, CheckTarget, TargetKey, R};

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
    /// Its source, as its connector reads it for `check`.
    pub source: Box<dyn CheckSource>,
    /// Its target, as its connector reads it for `check`.
    pub target: Box<dyn CheckTarget>,
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
    /// How the target's columns compare ([`CheckTarget::rules`]).
    pub rules: Rules,
}

impl UnitCtx {
    /// A unit context.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        target_name: String,
        source: Box<dyn CheckSource>,
        target: Box<dyn CheckTarget>,
        transforms: Vec<Arc<dyn Transform>>,
        sink: Arc<dyn Sink>,
        schema: Option<SchemaRef>,
        out_schema: Option<SchemaRef>,
        batch: usize,
    ) -> Self {
        let rules = target.rules();
        UnitCtx {
            rules,
            name,
            target_name,
            source,
            target,
            transforms,
            sink,
            schema,
            out_schema,
            batch: batch.max(1),
        }
    }

    /// The source key of a source record.
    pub fn source_key(&self, r: &Record) -> Vec<Value> {
        self.source.key_of(r)
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
        self.target.key_of(tr, &self.name, &self.target_name)
    }

    /// A transformed source record as the target should hold it.
    pub fn source_doc(&self, tr: &Record) -> R<Doc> {
        self.target.doc_of(tr, &self.name)
    }

    /// A record read from the target: its identity and document.
    pub fn target_row(&self, r: &Record) -> (TargetKey, Doc) {
        self.target.row(r)
    }

    /// The target rows with these identities, by identity.
    pub async fn target_docs(&self, keys: &[TargetKey]) -> R<HashMap<String, Doc>> {
        let records = self.target.lookup(keys).await?;
        Ok(records
            .iter()
            .map(|r| {
                let (k, d) = self.target_row(r);
                (k.id, d)
            })
            .collect())
    }

    /// The source key a target row came from (`None`: its identity is no key of the source).
    pub fn source_key_for(&self, tk: &TargetKey) -> Option<Vec<Value>> {
        self.source.key_for(tk, &*self.target)
    }

    /// Which of these source keys are in the source now (by [`key_id`]), whatever the
    /// transforms do with their rows: read again just before anything is deleted.
    pub async fn source_has(&self, keys: &[Vec<Value>]) -> R<HashSet<String>> {
        let found = self.source_lookup(keys).await?;
        Ok(found.iter().map(|r| key_id(&self.source_key(r))).collect())
    }

    /// The source rows with these keys.
    pub async fn source_lookup(&self, keys: &[Vec<Value>]) -> R<Vec<Record>> {
        self.source.lookup(keys).await
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
                    let fields = diff_docs_with(&doc, t, &self.rules);
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
        let keys: Vec<Vec<Value>> = rows.iter().filter_map(|t| self.source_key_for(t)).collect();
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
