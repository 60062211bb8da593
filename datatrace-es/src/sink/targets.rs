//! Where a batch's documents go: the index of each record (the index pattern applied to its
//! table), and what the sink knows of those indices (created, mapped for which schemas).

use std::collections::HashMap;
use std::sync::Arc;

use datatrace_core::{Record, Schema, SinkError};
use elasticsearch::http::Method;

use super::EsSink;
use crate::errors::EsError;
use crate::indices::ensure_index;
use crate::mapping::{
    check_column, column_mapping, schema_to_mapping, EXTRA_COLUMN, ID_COLUMN, ROUTING_COLUMN,
    SOURCE_COLUMN,
};

/// Whether a `GET _mapping` answer has the (dotted) field `name` in some index.
fn has_field(answer: &serde_json::Value, name: &str) -> bool {
    let Some(indices) = answer.as_object() else {
        return false;
    };
    indices.values().any(|idx| {
        let mut at = &idx["mappings"];
        for part in name.split('.') {
            at = &at["properties"][part];
        }
        !at.is_null()
    })
}

impl EsSink {
    /// The index a record goes to: the pattern applied to its routed target (or schema
    /// name), namespace and the prefix.
    pub fn index_for(&self, record: &Record) -> Result<String, EsError> {
        self.index_for_table(&record.schema, record.target.as_deref())
    }

    /// The index of a table: the pattern applied to `target` (a routed target) or else the
    /// schema's name, the schema's namespace and the prefix. Used for records and for table
    /// changes.
    pub fn index_for_table(
        &self,
        schema: &Schema,
        target: Option<&str>,
    ) -> Result<String, EsError> {
        self.pattern.render(
            target.unwrap_or(schema.name()),
            schema.namespace(),
            &self.cfg.prefix,
        )
    }

    /// The index of every record of a batch, rendered once per (schema, target) run of
    /// records.
    pub(super) fn batch_indices(&self, records: &[Record]) -> Result<Vec<Arc<str>>, SinkError> {
        let mut indices: Vec<Arc<str>> = Vec::with_capacity(records.len());
        let mut last: Option<(usize, Option<Arc<str>>, Arc<str>)> = None;
        for r in records {
            let name = match &last {
                Some((s, t, n)) if *s == Arc::as_ptr(&r.schema) as usize && *t == r.target => {
                    n.clone()
                }
                _ => {
                    let n: Arc<str> = self.index_for(r).map_err(SinkError::fatal)?.into();
                    last = Some((Arc::as_ptr(&r.schema) as usize, r.target.clone(), n.clone()));
                    n
                }
            };
            indices.push(name);
        }
        Ok(indices)
    }

    /// Makes sure every index of a batch exists (created from the schema of its first
    /// record), and that its mapping covers every schema of its records (change streams).
    pub(super) async fn ready_indices(
        &self,
        records: &[Record],
        indices: &[Arc<str>],
    ) -> Result<(), SinkError> {
        let mut first_schema: HashMap<Arc<str>, usize> = HashMap::new();
        for (i, name) in indices.iter().enumerate() {
            first_schema.entry(name.clone()).or_insert(i);
        }
        for (name, &i) in &first_schema {
            if !self.is_known(name) {
                self.ensure(name, Some(&records[i].schema)).await?;
            }
        }
        // Change streams: a schema not seen before for an index extends its mapping.
        let mut pairs: Vec<(&Arc<str>, &Arc<Schema>)> = Vec::new();
        for (r, name) in records.iter().zip(indices) {
            if !pairs
                .iter()
                .any(|(n, s)| *n == name && Arc::ptr_eq(s, &r.schema))
            {
                pairs.push((name, &r.schema));
            }
        }
        for (name, schema) in pairs {
            self.follow_schema(name, schema)
                .await
                .map_err(SinkError::fatal)?;
        }
        Ok(())
    }

    /// Schema changes (change streams): when records of `index` come with a schema not seen
    /// for it before, its columns are added to the index mapping (`PUT _mapping`; existing
    /// fields are left as they are, fields of dropped columns stay in the mapping and in
    /// documents not rewritten since). A field whose type changed cannot be remapped:
    /// logged, and documents that do not fit are rejected per item.
    async fn follow_schema(&self, index: &str, schema: &Arc<Schema>) -> Result<(), EsError> {
        let remember = || {
            let mut m = self.mapped.lock().unwrap_or_else(|e| e.into_inner());
            if m.len() >= 256 {
                m.remove(0);
            }
            m.push((index.to_string(), schema.clone()));
        };
        {
            let m = self.mapped.lock().unwrap_or_else(|e| e.into_inner());
            if m.iter().any(|(i, s)| i == index && Arc::ptr_eq(s, schema)) {
                return Ok(());
            }
            let first = !m.iter().any(|(i, _)| i == index);
            if first || !self.cfg.create_index {
                drop(m);
                remember();
                return Ok(());
            }
        }
        let properties = match schema_to_mapping(schema, &self.cfg.mapping, self.client.info()) {
            Ok(mapping) => mapping.get("properties").cloned().unwrap_or_default(),
            Err(_) => self.properties_held(index, schema).await?,
        };
        remember();
        let body = serde_json::json!({ "properties": properties });
        let path = format!("/{}/_mapping", crate::client::encode_path(index));
        match self
            .client
            .json(
                "extending the mapping",
                Method::Put,
                &path,
                &[],
                Some(&body),
                Some(index),
            )
            .await
        {
            Ok(_) => {
                tracing::info!(%index, table = %schema.qualified_name(), "schema change: index mapping extended");
                Ok(())
            }
            Err(e) => {
                tracing::warn!(%index, error = %e, "schema change: the mapping could not be extended (a field changed type?)");
                Ok(())
            }
        }
    }

    /// The properties to add for `schema` when some of its columns have no mapping on this
    /// cluster as configured (a 64-bit unsigned column without `unsigned_long`): a column the
    /// index already holds keeps its field (the user's mapping, or one made earlier); a new
    /// one stops the stream here, before any record carrying it is written (and the schema is
    /// not remembered: every later batch with it is refused too).
    async fn properties_held(
        &self,
        index: &str,
        schema: &Schema,
    ) -> Result<serde_json::Value, EsError> {
        let (cfg, info) = (&self.cfg.mapping, self.client.info());
        let table = schema.qualified_name();
        let mut existing: Option<serde_json::Value> = None;
        let mut properties = serde_json::Map::new();
        for c in schema.columns() {
            if let Err(refused) = check_column(&table, c, cfg, info) {
                if existing.is_none() {
                    existing = Some(self.client.get_mapping(index).await?);
                }
                if !existing.as_ref().is_some_and(|m| has_field(m, &c.name)) {
                    return Err(refused);
                }
                continue;
            }
            if !matches!(
                c.name.as_str(),
                ID_COLUMN | EXTRA_COLUMN | ROUTING_COLUMN | SOURCE_COLUMN
            ) {
                properties.insert(c.name.clone(), column_mapping(c, cfg, info));
            }
        }
        Ok(serde_json::Value::Object(properties))
    }

    /// Makes sure `index` exists (creating it from `schema` when configured).
    pub(super) async fn ensure(&self, index: &str, schema: Option<&Schema>) -> Result<(), EsError> {
        if self.is_known(index) {
            return Ok(());
        }
        let _guard = self.creating.lock().await;
        if self.is_known(index) {
            return Ok(());
        }
        if self.cfg.create_index {
            ensure_index(
                &self.client,
                index,
                schema,
                &self.cfg.mapping,
                &self.cfg.settings,
                &self.cfg.id_separator,
            )
            .await?;
        }
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(index.to_string());
        Ok(())
    }

    fn is_known(&self, index: &str) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(index)
    }

    /// Drops what the sink remembers about `index` (it was deleted): it is created again,
    /// from the schema of the next records, when they come.
    pub(super) fn forget_index(&self, index: &str) {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(index);
        self.mapped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(i, _)| i != index);
        self.restores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|r| r.index != index);
    }

    /// `from` was renamed to `to` (with its mapping and settings): what the sink knows of
    /// `from` now holds for `to`.
    pub(super) fn move_index(&self, from: &str, to: &str) {
        {
            let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
            known.remove(from);
            known.remove(to);
        }
        {
            let mut mapped = self.mapped.lock().unwrap_or_else(|e| e.into_inner());
            mapped.retain(|(i, _)| i != to);
            for (i, _) in mapped.iter_mut() {
                if i == from {
                    *i = to.to_string();
                }
            }
        }
        let mut restores = self.restores.lock().unwrap_or_else(|e| e.into_inner());
        if restores.iter().any(|r| r.index == to) {
            restores.retain(|r| r.index != from);
        } else {
            for r in restores.iter_mut() {
                if r.index == from {
                    r.index = to.to_string();
                }
            }
        }
    }
}
