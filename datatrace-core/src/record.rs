//! [`Record`], [`Op`], [`Position`] and [`Batch`]: what flows through a pipeline.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::damaged::DamagedCheckpoint;
use crate::schema::Schema;
use crate::value::Value;

/// What a record means for the target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Op {
    /// A row read by a snapshot: write it (upsert).
    Read,
    /// A row inserted at the source.
    Insert,
    /// A row changed at the source; `values` is the after-image.
    Update,
    /// A row deleted at the source; `values` is the deleted row (at least its key).
    Delete,
}

/// Where something is in its source: what a source needs to resume reading after it.
///
/// The runner never looks inside `state`; sources define it (a MySQL chunk's last key, a
/// binlog file and offset or GTID set, an Elasticsearch `search_after` array). `ordinal`, when
/// the source has one, grows with every change of the stream (binlog sources derive it from the
/// file number and offset) and gives sinks an external version; `ts_ms` is the commit time at
/// the source, from which the lag is measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    /// Source-specific resume state.
    pub state: serde_json::Value,
    /// A monotonically increasing number for this point of the stream, if there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ordinal: Option<u64>,
    /// When the change was committed at the source, in milliseconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts_ms: Option<i64>,
}

impl Position {
    /// A position holding only source state.
    pub fn new(state: serde_json::Value) -> Self {
        Position {
            state,
            ordinal: None,
            ts_ms: None,
        }
    }

    /// A position whose state is `state` (a source's own type, stored as JSON).
    pub fn of(state: &impl Serialize) -> Self {
        Position::new(serde_json::to_value(state).unwrap_or(serde_json::Value::Null))
    }

    /// The state read back as the source's type; a [`DamagedCheckpoint`] naming `part` and
    /// `expected` (what the source resumes from, for the message) when it is not one.
    ///
    /// ```
    /// use datatrace_core::Position;
    /// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
    /// struct After { read: u64 }
    /// let p = Position::of(&After { read: 500 });
    /// assert_eq!(p.state_as::<After>("slice-0", "a scroll position").unwrap(), After { read: 500 });
    /// assert!(Position::new(serde_json::json!({"after": [1]})).state_as::<After>("slice-0", "a scroll position").is_err());
    /// ```
    pub fn state_as<T: DeserializeOwned>(
        &self,
        part: &str,
        expected: &str,
    ) -> Result<T, DamagedCheckpoint> {
        T::deserialize(&self.state).map_err(|e| {
            DamagedCheckpoint::new(
                format!("the resume position of part {part}"),
                &self.state,
                expected,
                e,
            )
        })
    }
}

/// One row or document, or one change to it.
///
/// Values are in the order of [`Record::schema`]'s columns; the schema is shared, so a record
/// costs its values and nothing per field name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// What happened.
    pub op: Op,
    /// The shape of `values`.
    pub schema: Arc<Schema>,
    /// The cells, in schema order (for deletes: the deleted row or at least its key).
    pub values: Vec<Value>,
    /// For updates, the row before the change, when the source has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Vec<Value>>,
    /// Where in the source this record came from, when the source tracks it per record (CDC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// The target (table or index) chosen by a routing transform; sinks use their configured
    /// naming when it is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Arc<str>>,
}

impl Record {
    /// A snapshot row (`Op::Read`).
    pub fn read(schema: Arc<Schema>, values: Vec<Value>) -> Self {
        Record::new(Op::Read, schema, values)
    }

    /// A record of any op, without before-image, position or target.
    pub fn new(op: Op, schema: Arc<Schema>, values: Vec<Value>) -> Self {
        Record {
            op,
            schema,
            values,
            before: None,
            position: None,
            target: None,
        }
    }

    /// The value of a column by name.
    pub fn get(&self, column: &str) -> Option<&Value> {
        self.schema
            .index_of(column)
            .and_then(|i| self.values.get(i))
    }

    /// The primary key values, in key order (empty when the schema has no key).
    pub fn key(&self) -> impl ExactSizeIterator<Item = &Value> + '_ {
        self.schema
            .primary_key()
            .iter()
            .map(move |&i| self.values.get(i).unwrap_or(&Value::Null))
    }

    /// Whether the schema has a primary key.
    pub fn has_key(&self) -> bool {
        !self.schema.primary_key().is_empty()
    }

    /// The primary key as text for messages and document ids: the key values joined by
    /// `separator` (`42`, `7|eu-west`). Records without a key give the whole row in
    /// parentheses so a message still points at something.
    pub fn key_string(&self, separator: &str) -> String {
        let mut out = String::new();
        if !self.has_key() {
            out.push('(');
            for (i, v) in self.values.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{v}");
            }
            out.push(')');
            return out;
        }
        for (i, v) in self.key().enumerate() {
            if i > 0 {
                out.push_str(separator);
            }
            let _ = write!(out, "{v}");
        }
        out
    }

    /// The document id of the record's key ([`crate::doc_id`]: plain for one key column,
    /// escaped parts joined by `separator` for several): injective, and decodable back into
    /// the key with the key columns' types.
    pub fn doc_id(&self, separator: &str) -> Result<String, crate::doc_id::DocIdError> {
        // A key that is the id column of an index read (`_id`) is an id already.
        if let [i] = self.schema.primary_key() {
            if self.schema.columns()[*i].name == crate::doc_id::ID_COLUMN {
                if let Some(Value::String(id)) = self.values.get(*i) {
                    return Ok(id.clone());
                }
            }
        }
        crate::doc_id::encode_iter(self.key(), separator)
    }

    /// The document id of the before-image's key (updates), when there is one.
    pub fn before_doc_id(
        &self,
        separator: &str,
    ) -> Option<Result<String, crate::doc_id::DocIdError>> {
        let before = self.before.as_ref()?;
        if let [i] = self.schema.primary_key() {
            if self.schema.columns()[*i].name == crate::doc_id::ID_COLUMN {
                if let Some(Value::String(id)) = before.get(*i) {
                    return Some(Ok(id.clone()));
                }
            }
        }
        let key = self
            .schema
            .primary_key()
            .iter()
            .map(move |&i| before.get(i).unwrap_or(&Value::Null));
        Some(crate::doc_id::encode_iter(key, separator))
    }

    /// Whether this is an update whose before-image has another key than its after-image
    /// (the row moved to a new key: the old one must be deleted).
    pub fn changes_key(&self) -> bool {
        match (&self.before, self.op) {
            (Some(b), Op::Update) if self.has_key() => self
                .schema
                .primary_key()
                .iter()
                .any(|&i| b.get(i) != self.values.get(i)),
            _ => false,
        }
    }

    /// A stable hash of the table and primary key (of the table alone when it has no key),
    /// used to send all changes of one key (of a keyless table: of the table) to the same
    /// sink worker.
    pub fn key_hash(&self) -> u64 {
        self.hash_of(&self.values)
    }

    /// The [`Record::key_hash`] of the before-image (updates that have one).
    pub fn before_key_hash(&self) -> Option<u64> {
        self.before.as_ref().map(|b| self.hash_of(b))
    }

    fn hash_of(&self, values: &[Value]) -> u64 {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.schema.name().hash(&mut h);
        // Rows without a key are found by their values, which an update changes: every
        // change of such a table goes to one worker, in order.
        for &i in self.schema.primary_key() {
            hash_value(values.get(i).unwrap_or(&Value::Null), &mut h);
        }
        h.finish()
    }

    /// A cheap estimate of the record's size in bytes (see [`Value::approx_size`]).
    pub fn approx_size(&self) -> usize {
        self.values.iter().map(Value::approx_size).sum::<usize>() + 8
    }

    /// A cheap estimate of the memory the record holds: its values' sizes
    /// ([`Record::approx_size`], the before image's included) plus the record itself and one
    /// [`Value`] slot per value. The runner closes batches on it
    /// ([`crate::PipelineConfig::max_batch_bytes`]), so that a row of many small values counts
    /// for the memory it takes, not only for its data.
    pub fn footprint(&self) -> usize {
        self.sizes().1
    }

    /// [`Record::approx_size`] and [`Record::footprint`] from one pass over the values.
    pub(crate) fn sizes(&self) -> (usize, usize) {
        let data: usize = self.values.iter().map(Value::approx_size).sum();
        let before = self.before.as_deref().map_or(0, |values| {
            std::mem::size_of_val(values) + values.iter().map(Value::approx_size).sum::<usize>()
        });
        let memory =
            std::mem::size_of::<Record>() + std::mem::size_of_val(&self.values[..]) + data + before;
        (data + 8, memory)
    }

    /// The target name: the routed target if set, else the schema's name.
    pub fn target_name(&self) -> &str {
        self.target.as_deref().unwrap_or(self.schema.name())
    }
}

fn hash_value<H: Hasher>(v: &Value, h: &mut H) {
    // Integers hash by numeric value so that Int(5) and UInt(5) land on the same worker.
    match v {
        Value::Int(i) => (*i as i128).hash(h),
        Value::UInt(u) => (*u as i128).hash(h),
        Value::Float(f) => f.to_bits().hash(h),
        Value::String(s) => s.hash(h),
        Value::Bytes(b) => b.hash(h),
        Value::Null => 0u8.hash(h),
        Value::Bool(b) => b.hash(h),
        other => other.to_string().hash(h),
    }
}

/// A group of records written to a sink in one go.
///
/// Checkpoints do not travel inside batches: with parallel source parts, several sink workers
/// and batches finishing out of order, the runner tracks which records each batch covers and
/// commits a checkpoint only when everything before it has been acknowledged.
#[derive(Debug, Clone, Default)]
pub struct Batch {
    /// The records, in source order for any one key.
    pub records: Vec<Record>,
}

impl Batch {
    /// A batch of these records.
    pub fn new(records: Vec<Record>) -> Self {
        Batch { records }
    }
    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }
    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
    /// The summed [`Record::approx_size`] of the records.
    pub fn approx_size(&self) -> usize {
        self.records.iter().map(Record::approx_size).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, DataType};

    fn schema() -> Arc<Schema> {
        Arc::new(
            Schema::new(
                "t",
                vec![
                    Column::new("a", DataType::Int),
                    Column::new("b", DataType::String),
                ],
            )
            .with_primary_key(&["b", "a"])
            .unwrap(),
        )
    }

    #[test]
    fn keys_follow_key_order() {
        let r = Record::read(schema(), vec![Value::Int(7), Value::from("eu")]);
        assert_eq!(r.key_string("|"), "eu|7");
        let r2 = Record::read(schema(), vec![Value::UInt(7), Value::from("eu")]);
        assert_eq!(r.key_hash(), r2.key_hash());
        let keyless = Arc::new(Schema::new("n", vec![Column::new("a", DataType::Int)]));
        assert_eq!(
            Record::read(keyless, vec![Value::Int(1)]).key_string("|"),
            "(1)"
        );
    }

    #[test]
    fn serde_round_trip() {
        let mut r = Record::new(Op::Update, schema(), vec![Value::Int(1), Value::from("x")]);
        r.before = Some(vec![Value::Int(1), Value::from("y")]);
        r.position = Some(Position {
            state: serde_json::json!({"file": "binlog.000001", "pos": 4}),
            ordinal: Some(4),
            ts_ms: Some(1),
        });
        let back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
