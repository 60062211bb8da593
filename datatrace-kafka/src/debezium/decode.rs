//! Debezium change events (DataTrace's own or Debezium's) back into records and table
//! changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datatrace_core::{Column, Op, Position, Record, Schema, TableChange, TableChangeKind, Value};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use super::field::{decode, field_type, infer, FieldType};
use super::names::ordinal;

/// A message as read from Kafka: where it is and its bytes.
#[derive(Debug, Clone, Copy)]
pub struct MessageRef<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
    /// The key bytes, if any.
    pub key: Option<&'a [u8]>,
    /// The value bytes; `None` for a tombstone.
    pub value: Option<&'a [u8]>,
}

/// What a message means.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A row change (or a snapshot row).
    Change(Record),
    /// A change to a whole table, sent by DataTrace's sink to every partition of the table's
    /// topic (each partition carries it after the rows written before it).
    TableChange(TableChange),
    /// A change to a whole table written to one partition only (Debezium's own truncate and
    /// schema change events).
    OnePartitionTableChange(TableChange),
    /// Nothing to apply: a tombstone (the delete before it did the work) or a transaction
    /// metadata / heartbeat message.
    Skip,
}

/// A message that is not a change event DataTrace can apply; names the message by topic,
/// partition and offset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{topic}[{partition}]@{offset}: {reason}")]
pub struct DecodeError {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The offset.
    pub offset: i64,
    /// What is wrong with it.
    pub reason: String,
}

struct Shape {
    schema: Arc<Schema>,
    fields: Vec<FieldType>,
    /// No schema came with the events: each value is read by its JSON shape.
    inferred: bool,
}

/// A cached shape and what it was built from.
struct CachedShape {
    db: Option<String>,
    key: Arc<[String]>,
    /// The value schema's text, or without schemas the row's column names joined by NUL.
    text: Box<str>,
    shape: Arc<Shape>,
}

/// Shapes of one table name, and key column names by key schema text.
#[derive(Default)]
struct Cache {
    shapes: HashMap<String, Vec<CachedShape>>,
    keys: HashMap<Box<str>, Arc<[String]>>,
}

/// Decodes messages. Schemas are parsed once per distinct schema: table shapes are cached by
/// table name and found by comparing the message's schema text with the cached one (no
/// hashing, allocation or parsing of the schema per message); key column names are cached by
/// the key schema's text. Without schemas, shapes are cached by column names.
#[derive(Default)]
pub struct Decoder {
    cache: Mutex<Cache>,
}

#[derive(Deserialize)]
struct Payload<'a> {
    #[serde(default)]
    op: Option<String>,
    #[serde(default)]
    before: Option<Map<String, Json>>,
    #[serde(default)]
    after: Option<Map<String, Json>>,
    #[serde(default)]
    source: Option<Source>,
    #[serde(default)]
    ddl: Option<String>,
    #[serde(default, borrow, rename = "tableChanges")]
    table_changes: Option<&'a RawValue>,
    #[serde(default, rename = "databaseName")]
    database_name: Option<String>,
}

#[derive(Deserialize, Default)]
struct Source {
    #[serde(default)]
    db: Option<String>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    ts_ms: Option<i64>,
    #[serde(default)]
    file: Option<String>,
    #[serde(default)]
    pos: Option<u64>,
    #[serde(default)]
    gtid: Option<String>,
    #[serde(default)]
    row: Option<i64>,
    #[serde(default)]
    server_id: Option<i64>,
    #[serde(default)]
    ordinal: Option<u64>,
    #[serde(default)]
    version: Option<String>,
}

impl Source {
    /// Whether DataTrace's sink wrote the event (its table changes reach every partition).
    fn by_datatrace(&self) -> bool {
        self.version
            .as_deref()
            .is_some_and(|v| v.starts_with("datatrace-"))
    }

    /// The event's version: DataTrace's `ordinal`; else, for Debezium's own events, the
    /// binlog point `(file sequence << 32) | pos` (the formula of DataTrace's ordinals); else
    /// the sequence number of the transaction's GTID (`0-1-48`, `uuid:48`).
    fn ordinal(&self) -> Option<u64> {
        if let Some(o) = self.ordinal {
            return Some(o);
        }
        if let Some(f) = self.file.as_deref().filter(|f| !f.is_empty()) {
            return Some(ordinal(f, self.pos.unwrap_or(0)));
        }
        self.gtid.as_deref().and_then(gtid_sequence)
    }

    /// The record's position state: where the message is in Kafka, and where its event was
    /// in the binlog (so that it can be written on as a Debezium event again).
    fn state(&self, m: &MessageRef<'_>) -> Json {
        let mut s = Map::new();
        s.insert("topic".into(), m.topic.into());
        s.insert("partition".into(), m.partition.into());
        s.insert("offset".into(), m.offset.into());
        if let Some(f) = self.file.as_deref().filter(|f| !f.is_empty()) {
            s.insert("file".into(), f.into());
            s.insert("pos".into(), self.pos.unwrap_or(0).into());
        }
        if let Some(g) = &self.gtid {
            s.insert("gtid".into(), g.as_str().into());
        }
        if let Some(r) = self.row {
            s.insert("row".into(), r.into());
        }
        if let Some(id) = self.server_id {
            s.insert("server_id".into(), id.into());
        }
        Json::Object(s)
    }
}

/// The sequence number of one GTID: MariaDB's `domain-server-seq`, MySQL's `uuid:gno`
/// (a set like `uuid:1-48` gives its last number).
fn gtid_sequence(gtid: &str) -> Option<u64> {
    let gtid = gtid.trim();
    if gtid.is_empty() || gtid.contains(',') {
        return None;
    }
    let last = match gtid.rsplit_once(':') {
        Some((_, n)) => n.rsplit('-').next()?,
        None => gtid.rsplit('-').next()?,
    };
    last.parse().ok()
}

impl Decoder {
    /// A decoder with an empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one message.
    pub fn decode(&self, m: &MessageRef<'_>) -> Result<Event, DecodeError> {
        let err = |reason: String| DecodeError {
            topic: m.topic.to_string(),
            partition: m.partition,
            offset: m.offset,
            reason,
        };
        let Some(value) = m.value else {
            return Ok(Event::Skip);
        };
        let (value_schema, payload) =
            unwrap(value).map_err(|e| err(format!("the value is not JSON: {e}")))?;
        let mut p: Payload<'_> = serde_json::from_str(payload.get())
            .map_err(|e| err(format!("not a Debezium change event: {e}")))?;
        let source = p.source.take().unwrap_or_default();
        let every_partition = source.by_datatrace();
        let position = Position {
            state: source.state(m),
            ordinal: source.ordinal(),
            ts_ms: source.ts_ms,
        };
        if let Some(ddl) = p.ddl.take() {
            return self
                .schema_change(&ddl, p.table_changes, p.database_name.take(), position)
                .map(|e| one_partition_unless(e, every_partition))
                .map_err(err);
        }
        let Some(op) = p.op.take() else {
            return Err(err(
                "not a Debezium change event: no `op` field (and no `ddl`)".into(),
            ));
        };
        let db = source.db.filter(|d| !d.is_empty());
        let table = source
            .table
            .filter(|t| !t.is_empty())
            .or_else(|| m.topic.rsplit('.').next().map(str::to_string))
            .unwrap_or_default();
        let key_names: Arc<[String]> = match m.key {
            Some(k) => self
                .key_columns(k)
                .map_err(|e| err(format!("the key: {e}")))?,
            None => Arc::from(Vec::new()),
        };
        if op == "t" {
            let schema = Arc::new(Schema::new(table, Vec::new()).with_namespace_opt(db));
            let mut change = TableChange::new(TableChangeKind::Truncate, schema);
            change.position = Some(position);
            return Ok(one_partition_unless(
                Event::TableChange(change),
                every_partition,
            ));
        }
        let Some(op) = parse_op(&op).map_err(&err)? else {
            return Ok(Event::Skip);
        };
        let ctx = RowContext {
            value_schema,
            table: &table,
            db: db.as_deref(),
            key: &key_names,
        };
        let mut record = self.record(op, &p, &ctx).map_err(&err)?;
        record.position = Some(position);
        Ok(Event::Change(record))
    }

    /// The record of a row event: its shape (from the value's schema, cached) and values,
    /// with the before image of an update.
    fn record(&self, op: Op, p: &Payload<'_>, ctx: &RowContext<'_>) -> Result<Record, String> {
        let row = match op {
            Op::Delete => p.before.as_ref().or(p.after.as_ref()),
            _ => p.after.as_ref(),
        };
        let Some(row) = row else {
            return Err(format!(
                "a {} event without its row ({} is null)",
                op_name(op),
                if op == Op::Delete { "before" } else { "after" }
            ));
        };
        let shape = self.shape(ctx.value_schema, ctx.table, ctx.db, row, ctx.key)?;
        let values = values_of(&shape, row)?;
        let mut record = Record::new(op, shape.schema.clone(), values);
        if op == Op::Update {
            if let Some(b) = &p.before {
                record.before = Some(values_of(&shape, b)?);
            }
        }
        Ok(record)
    }

    /// The key columns' names: the key's schema fields (cached by the schema's text), or the
    /// key object's fields.
    fn key_columns(&self, key: &[u8]) -> Result<Arc<[String]>, String> {
        let (schema, payload) = unwrap(key).map_err(|e| format!("not JSON: {e}"))?;
        if let Some(s) = schema {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(names) = cache.keys.get(s.get()) {
                return Ok(names.clone());
            }
            let names: Arc<[String]> = Arc::from(key_columns(Some(s), payload)?);
            if cache.keys.len() > 10_000 {
                cache.keys.clear();
            }
            cache.keys.insert(s.get().into(), names.clone());
            return Ok(names);
        }
        Ok(Arc::from(key_columns(None, payload)?))
    }

    fn shape(
        &self,
        value_schema: Option<&RawValue>,
        table: &str,
        db: Option<&str>,
        row: &Map<String, Json>,
        key: &Arc<[String]>,
    ) -> Result<Arc<Shape>, String> {
        let names;
        let text: &str = match value_schema {
            Some(s) => s.get(),
            None => {
                names = row
                    .keys()
                    .map(String::as_str)
                    .collect::<Vec<_>>()
                    .join("\u{0}");
                &names
            }
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = cache.shapes.get(table).and_then(|entries| {
            entries
                .iter()
                .find(|e| e.db.as_deref() == db && e.key[..] == key[..] && &*e.text == text)
        }) {
            return Ok(found.shape.clone());
        }
        let (columns, fields): (Vec<Column>, Vec<FieldType>) = match value_schema {
            Some(s) => row_fields(s)?,
            None => row
                .iter()
                .map(|(name, v)| {
                    let value = infer(v);
                    let ty = value_type(&value);
                    (
                        Column::new(name.clone(), ty),
                        FieldType {
                            data_type: ty,
                            wire: super::field::Wire::Plain,
                        },
                    )
                })
                .unzip(),
        };
        let mut schema = Schema::new(table, columns);
        if let Some(db) = db {
            schema = schema.with_namespace(db);
        }
        if !key.is_empty() {
            schema = schema
                .with_primary_key(&key[..])
                .map_err(|e| format!("the key names a column the row does not have: {e}"))?;
        }
        let shape = Arc::new(Shape {
            schema: Arc::new(schema),
            fields,
            inferred: value_schema.is_none(),
        });
        let entries = cache.shapes.entry(table.to_string()).or_default();
        // a table's schema changes now and then; keep the latest few
        if entries.len() >= 8 {
            entries.remove(0);
        }
        entries.push(CachedShape {
            db: db.map(str::to_string),
            key: key.clone(),
            text: text.into(),
            shape: shape.clone(),
        });
        if cache.shapes.len() > 10_000 {
            cache.shapes.clear();
        }
        Ok(shape)
    }

    fn schema_change(
        &self,
        ddl: &str,
        changes: Option<&RawValue>,
        db: Option<String>,
        position: Position,
    ) -> Result<Event, String> {
        let changes: Vec<Json> = match changes {
            Some(raw) => {
                serde_json::from_str(raw.get()).map_err(|e| format!("tableChanges: {e}"))?
            }
            None => Vec::new(),
        };
        for c in &changes {
            let kind = c["type"].as_str().unwrap_or("");
            let id = c["id"].as_str().unwrap_or("");
            let (cdb, name) = parse_id(id, db.as_deref());
            let schema = Arc::new(Schema::new(name, Vec::new()).with_namespace_opt(cdb));
            let change_kind = match (kind, c["previousId"].as_str()) {
                ("DROP", _) => TableChangeKind::Drop,
                ("ALTER", Some(prev)) => {
                    let (pdb, pname) = parse_id(prev, db.as_deref());
                    let from = Arc::new(Schema::new(pname, Vec::new()).with_namespace_opt(pdb));
                    let mut change = TableChange::new(
                        TableChangeKind::Rename {
                            to: schema,
                            to_target: None,
                        },
                        from,
                    );
                    change.position = Some(position);
                    return Ok(Event::TableChange(change));
                }
                // CREATE and column changes need no event: the rows after them carry the
                // new schema.
                _ => continue,
            };
            let mut change = TableChange::new(change_kind, schema);
            change.position = Some(position);
            return Ok(Event::TableChange(change));
        }
        let _ = ddl;
        Ok(Event::Skip)
    }
}

/// What a row event needs besides its payload.
struct RowContext<'a> {
    value_schema: Option<&'a RawValue>,
    table: &'a str,
    db: Option<&'a str>,
    key: &'a Arc<[String]>,
}

/// Debezium's op letter as a row operation; `None` for events that carry no row (`m`,
/// logical decoding messages). Truncates (`t`) are handled before.
fn parse_op(op: &str) -> Result<Option<Op>, String> {
    Ok(Some(match op {
        "c" => Op::Insert,
        "u" => Op::Update,
        "d" => Op::Delete,
        "r" => Op::Read,
        "m" => return Ok(None),
        other => return Err(format!("unknown op {other:?} (expected c, u, d, r or t)")),
    }))
}

/// A table change event as written: to every partition (DataTrace), or else to one.
fn one_partition_unless(e: Event, every_partition: bool) -> Event {
    match e {
        Event::TableChange(c) if !every_partition => Event::OnePartitionTableChange(c),
        other => other,
    }
}

trait WithNamespaceOpt {
    fn with_namespace_opt(self, ns: Option<String>) -> Self;
}

impl WithNamespaceOpt for Schema {
    fn with_namespace_opt(self, ns: Option<String>) -> Self {
        match ns {
            Some(ns) if !ns.is_empty() => self.with_namespace(ns),
            _ => self,
        }
    }
}

/// `"db"."table"` (Debezium's table id) into its parts.
fn parse_id(id: &str, default_db: Option<&str>) -> (Option<String>, String) {
    let parts: Vec<String> = id
        .split("\".\"")
        .map(|p| p.trim_matches('"').to_string())
        .collect();
    match parts.as_slice() {
        [db, table] => (Some(db.clone()), table.clone()),
        [table] => (default_db.map(str::to_string), table.clone()),
        _ => (
            default_db.map(str::to_string),
            parts.last().cloned().unwrap_or_default(),
        ),
    }
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Read => "read",
        Op::Insert => "create",
        Op::Update => "update",
        Op::Delete => "delete",
    }
}

fn value_type(v: &Value) -> datatrace_core::DataType {
    use datatrace_core::DataType as T;
    match v {
        Value::Bool(_) => T::Bool,
        Value::Int(_) => T::Int,
        Value::UInt(_) => T::UInt,
        Value::Float(_) => T::Float,
        Value::Decimal(_) => T::Decimal {
            precision: 0,
            scale: 0,
        },
        Value::Json(_) => T::Json,
        _ => T::String,
    }
}

/// The schema and payload of a message, with or without the `{"schema","payload"}` wrapper.
/// A wrapped message is scanned once.
fn unwrap(bytes: &[u8]) -> Result<(Option<&RawValue>, &RawValue), serde_json::Error> {
    // only `schema` and `payload`: an envelope without the wrapper fails at its first field
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Wrapped<'a> {
        #[serde(borrow, default)]
        schema: Option<&'a RawValue>,
        #[serde(borrow)]
        payload: Option<&'a RawValue>,
    }
    let text = std::str::from_utf8(bytes).map_err(serde::de::Error::custom)?;
    if let Ok(Wrapped {
        schema,
        payload: Some(payload),
    }) = serde_json::from_str::<Wrapped<'_>>(text)
    {
        return Ok((schema, payload));
    }
    let whole: &RawValue = serde_json::from_str(text)?;
    Ok((None, whole))
}

/// The key columns' names: the key schema's fields, or the key object's fields.
fn key_columns(schema: Option<&RawValue>, payload: &RawValue) -> Result<Vec<String>, String> {
    if let Some(s) = schema {
        let s: Json = serde_json::from_str(s.get()).map_err(|e| e.to_string())?;
        if let Some(fields) = s["fields"].as_array() {
            return Ok(fields
                .iter()
                .filter_map(|f| f["field"].as_str().map(str::to_string))
                .collect());
        }
    }
    let p: Json = serde_json::from_str(payload.get()).map_err(|e| e.to_string())?;
    match p {
        Json::Object(m) => Ok(m.keys().cloned().collect()),
        Json::Null => Ok(Vec::new()),
        other => Err(format!(
            "expected a JSON object of the key columns, got {other}"
        )),
    }
}

/// The columns of the `after` (or `before`) struct of an envelope schema.
fn row_fields(schema: &RawValue) -> Result<(Vec<Column>, Vec<FieldType>), String> {
    let s: Json = serde_json::from_str(schema.get()).map_err(|e| format!("the schema: {e}"))?;
    let fields = s["fields"]
        .as_array()
        .ok_or_else(|| format!("the schema has no fields: {}", s))?;
    let row = fields
        .iter()
        .find(|f| f["field"] == "after")
        .or_else(|| fields.iter().find(|f| f["field"] == "before"))
        .ok_or_else(|| "the schema has neither an `after` nor a `before` field".to_string())?;
    let cols = row["fields"]
        .as_array()
        .ok_or_else(|| "the `after` schema has no fields".to_string())?;
    let mut columns = Vec::with_capacity(cols.len().min(4096));
    let mut types = Vec::with_capacity(cols.len().min(4096));
    for c in cols {
        let (col, ft) = field_type(c).map_err(|e| e.0)?;
        columns.push(col);
        types.push(ft);
    }
    Ok((columns, types))
}

fn values_of(shape: &Shape, row: &Map<String, Json>) -> Result<Vec<Value>, String> {
    let mut out = Vec::with_capacity(shape.fields.len());
    for (col, ft) in shape.schema.columns().iter().zip(&shape.fields) {
        let v = row.get(&col.name).unwrap_or(&Json::Null);
        if shape.inferred {
            out.push(infer(v));
            continue;
        }
        out.push(decode(ft, v).map_err(|e| {
            format!(
                "table {}, column {}: {}",
                shape.schema.qualified_name(),
                col.name,
                e.0
            )
        })?);
    }
    Ok(out)
}

#[cfg(test)]
#[path = "decode_tests.rs"]
mod tests;
