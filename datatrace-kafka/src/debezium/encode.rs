//! Records and table changes into Debezium change events (key and value JSON).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use datatrace_core::{Op, Position, Record, Schema, TableChange, TableChangeKind};
use serde_json::{json, Value as Json};

use super::field::{column_schema, encode, FieldError};
use super::names::{ordinal_parts, source_schema, CONNECTOR, VERSION};

/// How events are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeOptions {
    /// Wrap keys and values in `{"schema": ..., "payload": ...}` (Kafka Connect's
    /// `schemas.enable=true`, the default): consumers then know every column's exact type.
    pub schemas: bool,
    /// The logical server name (Debezium's `topic.prefix`), written as `source.name`.
    pub server_name: String,
    /// Follow every delete with a tombstone (a null value under the same key), so that log
    /// compaction can drop the key.
    pub tombstones: bool,
}

impl Default for EnvelopeOptions {
    fn default() -> Self {
        EnvelopeOptions {
            schemas: true,
            server_name: "datatrace".into(),
            tombstones: true,
        }
    }
}

/// One Kafka message to send: a key (`None` for keyless tables), a value (`None` for a
/// tombstone), and, for table changes, the partition marker that must reach every partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The message key: the primary key as JSON.
    pub key: Option<Vec<u8>>,
    /// The message value: the event, or `None` for a tombstone.
    pub value: Option<Vec<u8>>,
}

/// What is written the same way for every event of a table: built once per table schema.
struct TableCodec {
    schema: Arc<Schema>,
    /// The envelope schema JSON (with the wrapper), or empty without.
    value_schema: String,
    /// `{"schema":KEY_SCHEMA,"payload":` (or nothing without schemas).
    key_prefix: Vec<u8>,
    /// `{"schema":VALUE_SCHEMA,"payload":` (or nothing without schemas).
    value_prefix: Vec<u8>,
    /// Each column's name as a JSON string followed by `:`.
    names: Vec<Vec<u8>>,
    /// The start of the `source` block up to its `ts_ms` value.
    source_head: Vec<u8>,
    /// The `source` block's fields from `db` up to `server_id`'s value.
    source_table: Vec<u8>,
}

/// Encodes records into Debezium events; caches the JSON schemas per table.
pub struct Encoder {
    options: EnvelopeOptions,
    cache: Mutex<HashMap<String, Arc<TableCodec>>>,
}

impl Encoder {
    /// An encoder with these options.
    pub fn new(options: EnvelopeOptions) -> Self {
        Encoder {
            options,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The options.
    pub fn options(&self) -> &EnvelopeOptions {
        &self.options
    }

    fn codec(&self, schema: &Arc<Schema>) -> Arc<TableCodec> {
        let name = schema.qualified_name();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(&name) {
            if Arc::ptr_eq(&c.schema, schema) || *c.schema == **schema {
                return c.clone();
            }
        }
        let c = Arc::new(self.build_codec(schema));
        cache.insert(name, c.clone());
        c
    }

    fn build_codec(&self, schema: &Arc<Schema>) -> TableCodec {
        let (key_schema, value_schema) = if self.options.schemas {
            self.connect_schemas(schema)
        } else {
            (String::new(), String::new())
        };
        let prefix = |s: &str| {
            if self.options.schemas {
                format!("{{\"schema\":{s},\"payload\":").into_bytes()
            } else {
                Vec::new()
            }
        };
        let text = |s: &str| Json::from(s).to_string();
        let names = schema
            .columns()
            .iter()
            .map(|c| format!("{}:", text(&c.name)).into_bytes())
            .collect();
        let source_head = format!(
            "{{\"version\":{},\"connector\":{},\"name\":{},\"ts_ms\":",
            text(VERSION),
            text(CONNECTOR),
            text(&self.options.server_name)
        )
        .into_bytes();
        let source_table = format!(
            ",\"db\":{},\"sequence\":null,\"table\":{},\"server_id\":",
            text(schema.namespace().unwrap_or("")),
            text(schema.name())
        )
        .into_bytes();
        TableCodec {
            schema: schema.clone(),
            key_prefix: prefix(&key_schema),
            value_prefix: prefix(&value_schema),
            value_schema,
            names,
            source_head,
            source_table,
        }
    }

    /// The Connect schemas of a table's keys and envelopes, as JSON text.
    fn connect_schemas(&self, schema: &Arc<Schema>) -> (String, String) {
        let base = format!("{}.{}", self.options.server_name, schema.qualified_name());
        let cols = schema.columns();
        let key_fields: Vec<Json> = schema
            .primary_key()
            .iter()
            .map(|&i| {
                let mut s = column_schema(&cols[i]);
                s["optional"] = Json::Bool(false);
                s
            })
            .collect();
        let key_schema = json!({
            "type": "struct", "name": format!("{base}.Key"), "optional": false, "fields": key_fields,
        });
        let row = |field: &str| {
            json!({
                "type": "struct", "name": format!("{base}.Value"), "optional": true,
                "field": field, "fields": cols.iter().map(column_schema).collect::<Vec<_>>(),
            })
        };
        let mut source = source_schema();
        source["field"] = Json::from("source");
        let value_schema = json!({
            "type": "struct", "name": format!("{base}.Envelope"), "optional": false, "version": 2,
            "fields": [
                row("before"),
                row("after"),
                source,
                {"type": "string", "optional": false, "field": "op"},
                {"type": "int64", "optional": true, "field": "ts_ms"},
                {"type": "struct", "optional": true, "name": "event.block", "version": 1, "field": "transaction",
                 "fields": [
                    {"type": "string", "optional": false, "field": "id"},
                    {"type": "int64", "optional": false, "field": "total_order"},
                    {"type": "int64", "optional": false, "field": "data_collection_order"}
                 ]}
            ],
        });
        (key_schema.to_string(), value_schema.to_string())
    }

    /// The messages for one record: its event, and for deletes a tombstone after it when
    /// [`EnvelopeOptions::tombstones`] is set. An update that changes the primary key becomes
    /// a delete of the old key (and its tombstone) and a create of the new one, as Debezium
    /// writes it, so that each key's partition sees its own history.
    pub fn record(&self, r: &Record) -> Result<Vec<Message>, FieldError> {
        let codec = self.codec(&r.schema);
        let mut out = Vec::with_capacity(2);
        let key = self.key(&codec, &r.values)?;
        if let (Op::Update, Some(before)) = (r.op, &r.before) {
            let old_key = self.key(&codec, before)?;
            if r.has_key() && old_key != key {
                let value = self.envelope(&codec, r, "d", Some(before), None)?;
                out.push(Message {
                    key: old_key.clone(),
                    value: Some(value),
                });
                if self.options.tombstones {
                    out.push(Message {
                        key: old_key,
                        value: None,
                    });
                }
                let value = self.envelope(&codec, r, "c", None, Some(&r.values))?;
                out.push(Message {
                    key,
                    value: Some(value),
                });
                return Ok(out);
            }
        }
        let (op, before, after) = match r.op {
            Op::Read => ("r", None, Some(&r.values)),
            Op::Insert => ("c", None, Some(&r.values)),
            Op::Update => ("u", r.before.as_ref(), Some(&r.values)),
            Op::Delete => ("d", Some(&r.values), None),
        };
        let value = self.envelope(&codec, r, op, before, after)?;
        out.push(Message {
            key: key.clone(),
            value: Some(value),
        });
        if r.op == Op::Delete && self.options.tombstones && key.is_some() {
            out.push(Message { key, value: None });
        }
        Ok(out)
    }

    fn key(
        &self,
        codec: &TableCodec,
        values: &[datatrace_core::Value],
    ) -> Result<Option<Vec<u8>>, FieldError> {
        let schema = &codec.schema;
        if schema.primary_key().is_empty() {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(codec.key_prefix.len() + 64);
        out.extend_from_slice(&codec.key_prefix);
        out.push(b'{');
        for (n, &i) in schema.primary_key().iter().enumerate() {
            if n > 0 {
                out.push(b',');
            }
            self.field(codec, &mut out, i, values)?;
        }
        out.push(b'}');
        if self.options.schemas {
            out.push(b'}');
        }
        Ok(Some(out))
    }

    /// `"name":value` of column `i`.
    fn field(
        &self,
        codec: &TableCodec,
        out: &mut Vec<u8>,
        i: usize,
        values: &[datatrace_core::Value],
    ) -> Result<(), FieldError> {
        let col = &codec.schema.columns()[i];
        let v = values.get(i).unwrap_or(&datatrace_core::Value::Null);
        out.extend_from_slice(&codec.names[i]);
        let json = encode(&col.data_type, v).map_err(|e| in_column(&codec.schema, &col.name, e))?;
        write_json(out, &json);
        Ok(())
    }

    fn row(
        &self,
        codec: &TableCodec,
        out: &mut Vec<u8>,
        values: Option<&Vec<datatrace_core::Value>>,
    ) -> Result<(), FieldError> {
        let Some(values) = values else {
            out.extend_from_slice(b"null");
            return Ok(());
        };
        out.push(b'{');
        for i in 0..codec.schema.columns().len() {
            if i > 0 {
                out.push(b',');
            }
            self.field(codec, out, i, values)?;
        }
        out.push(b'}');
        Ok(())
    }

    /// The event, written straight into one buffer: the table's fixed parts (schema, column
    /// names, the `source` block's constant fields) are copied from the codec.
    fn envelope(
        &self,
        codec: &TableCodec,
        r: &Record,
        op: &str,
        before: Option<&Vec<datatrace_core::Value>>,
        after: Option<&Vec<datatrace_core::Value>>,
    ) -> Result<Vec<u8>, FieldError> {
        let mut out = Vec::with_capacity(codec.value_prefix.len() + 512);
        out.extend_from_slice(&codec.value_prefix);
        out.extend_from_slice(b"{\"before\":");
        self.row(codec, &mut out, before)?;
        out.extend_from_slice(b",\"after\":");
        self.row(codec, &mut out, after)?;
        out.extend_from_slice(b",\"source\":");
        self.write_source(codec, &mut out, r.position.as_ref(), r.op == Op::Read);
        out.extend_from_slice(b",\"op\":\"");
        out.extend_from_slice(op.as_bytes());
        out.extend_from_slice(b"\",\"ts_ms\":");
        out.extend_from_slice(itoa::Buffer::new().format(now_ms()).as_bytes());
        out.extend_from_slice(b",\"transaction\":null}");
        if self.options.schemas {
            out.push(b'}');
        }
        Ok(out)
    }

    /// The `source` block (see [`Encoder::source`]), written from the codec's fixed parts.
    fn write_source(
        &self,
        codec: &TableCodec,
        out: &mut Vec<u8>,
        pos: Option<&Position>,
        snapshot: bool,
    ) {
        let f = Fields::of(pos);
        let mut n = itoa::Buffer::new();
        out.extend_from_slice(&codec.source_head);
        out.extend_from_slice(n.format(pos.and_then(|p| p.ts_ms).unwrap_or(0)).as_bytes());
        out.extend_from_slice(if snapshot {
            b",\"snapshot\":\"true\"".as_slice()
        } else {
            b",\"snapshot\":\"false\"".as_slice()
        });
        out.extend_from_slice(&codec.source_table);
        out.extend_from_slice(n.format(f.server_id).as_bytes());
        out.extend_from_slice(b",\"gtid\":");
        match f.gtid {
            Some(g) => write_json(out, &Json::from(g)),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"file\":");
        write_json(out, &Json::from(f.file));
        out.extend_from_slice(b",\"pos\":");
        out.extend_from_slice(n.format(f.pos).as_bytes());
        out.extend_from_slice(b",\"row\":");
        out.extend_from_slice(n.format(f.row).as_bytes());
        out.extend_from_slice(b",\"thread\":null,\"query\":null,\"ordinal\":");
        match f.ordinal {
            Some(o) => out.extend_from_slice(n.format(o).as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        out.push(b'}');
    }

    /// The `source` block as JSON (for table change events).
    fn source(&self, schema: &Schema, pos: Option<&Position>, snapshot: bool) -> Json {
        let f = Fields::of(pos);
        json!({
            "version": VERSION,
            "connector": CONNECTOR,
            "name": self.options.server_name,
            "ts_ms": pos.and_then(|p| p.ts_ms).unwrap_or(0),
            "snapshot": if snapshot { "true" } else { "false" },
            "db": schema.namespace().unwrap_or(""),
            "sequence": null,
            "table": schema.name(),
            "server_id": f.server_id,
            "gtid": f.gtid,
            "file": f.file,
            "pos": f.pos,
            "row": f.row,
            "thread": null,
            "query": null,
            "ordinal": f.ordinal,
        })
    }

    /// The message a table change becomes on its table's topic (it is sent to every
    /// partition, so that it follows every row written before it whatever its key): a
    /// Debezium truncate event (`op` `t`) for `TRUNCATE`, and a Debezium schema change event
    /// (`ddl`, `tableChanges`) for `DROP TABLE` and `RENAME TABLE`.
    pub fn table_change(&self, c: &TableChange) -> Result<Message, FieldError> {
        let schema = &c.schema;
        let codec = self.codec(schema);
        let db = schema.namespace().unwrap_or("");
        let value = match &c.kind {
            TableChangeKind::Truncate => {
                let payload = json!({
                    "before": null, "after": null,
                    "source": self.source(schema, c.position.as_ref(), false),
                    "op": "t", "ts_ms": now_ms(), "transaction": null,
                });
                self.wrap(&codec.value_schema, &payload)
            }
            TableChangeKind::Drop | TableChangeKind::Rename { .. } => {
                let id =
                    |s: &Schema| format!("\"{}\".\"{}\"", s.namespace().unwrap_or(""), s.name());
                let (ddl, change) = match &c.kind {
                    TableChangeKind::Rename { to, .. } => (
                        format!("RENAME TABLE {} TO {}", quoted(schema), quoted(to)),
                        json!({"type": "ALTER", "id": id(to), "previousId": id(schema), "table": null}),
                    ),
                    _ => (
                        format!("DROP TABLE {}", quoted(schema)),
                        json!({"type": "DROP", "id": id(schema), "table": null}),
                    ),
                };
                let payload = json!({
                    "source": self.source(schema, c.position.as_ref(), false),
                    "ts_ms": now_ms(),
                    "databaseName": db,
                    "schemaName": null,
                    "ddl": ddl,
                    "tableChanges": [change],
                });
                // Schema change events carry their payload without a Connect schema here: their
                // shape is fixed and consumers recognise them by the `ddl` field.
                serde_json::to_vec(&if self.options.schemas {
                    json!({"schema": null, "payload": payload})
                } else {
                    payload
                })
                .unwrap_or_default()
            }
        };
        Ok(Message {
            key: None,
            value: Some(value),
        })
    }

    fn wrap(&self, schema: &str, payload: &Json) -> Vec<u8> {
        if !self.options.schemas {
            return serde_json::to_vec(payload).unwrap_or_default();
        }
        let body = serde_json::to_string(payload).unwrap_or_default();
        let mut out = Vec::with_capacity(schema.len() + body.len() + 24);
        out.extend_from_slice(b"{\"schema\":");
        out.extend_from_slice(schema.as_bytes());
        out.extend_from_slice(b",\"payload\":");
        out.extend_from_slice(body.as_bytes());
        out.push(b'}');
        out
    }
}

/// The variable fields of a `source` block, from a record's position: a binlog source's records
/// carry where their event is (`file`, `pos`, their transaction's `gtid`); otherwise `pos` is
/// what the ordinal says.
struct Fields<'a> {
    file: &'a str,
    pos: u64,
    gtid: Option<&'a str>,
    row: i64,
    server_id: i64,
    ordinal: Option<u64>,
}

impl<'a> Fields<'a> {
    fn of(pos: Option<&'a Position>) -> Self {
        let ordinal = pos.and_then(|p| p.ordinal);
        let field = |name: &str| pos.and_then(|p| p.state.get(name));
        Fields {
            file: field("file").and_then(Json::as_str).unwrap_or_default(),
            pos: field("pos")
                .and_then(Json::as_u64)
                .unwrap_or_else(|| ordinal.map_or(0, |o| ordinal_parts(o).1)),
            gtid: field("gtid").and_then(Json::as_str),
            row: field("row").and_then(Json::as_i64).unwrap_or(0),
            server_id: field("server_id").and_then(Json::as_i64).unwrap_or(0),
            ordinal,
        }
    }
}

fn write_json(out: &mut Vec<u8>, v: &Json) {
    // writing JSON into a Vec cannot fail
    let _ = serde_json::to_writer(&mut *out, v);
}

fn quoted(s: &Schema) -> String {
    match s.namespace() {
        Some(db) => format!(
            "`{}`.`{}`",
            db.replace('`', "``"),
            s.name().replace('`', "``")
        ),
        None => format!("`{}`", s.name().replace('`', "``")),
    }
}

fn in_column(schema: &Schema, column: &str, e: FieldError) -> FieldError {
    FieldError(format!(
        "table {}, column {column}: {}",
        schema.qualified_name(),
        e.0
    ))
}

fn now_ms() -> i64 {
    datatrace_core::Timestamp::now().as_unix_micros() / 1000
}
