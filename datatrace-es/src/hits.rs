//! Search answers decoded straight into records: each hit's `_source` is visited field by
//! field into the record's values (keys borrowed from the answer, no intermediate map of
//! the whole document).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use datatrace_core::{Record, Schema, Value};
use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use crate::types::json_to_value;

/// A page of a search or scroll answer, borrowing from the answer's bytes.
#[derive(Deserialize)]
pub(crate) struct SearchAnswer<'a> {
    #[serde(default)]
    pub pit_id: Option<String>,
    #[serde(default, rename = "_scroll_id")]
    pub scroll_id: Option<String>,
    #[serde(borrow)]
    pub hits: Hits<'a>,
}

#[derive(Deserialize)]
pub(crate) struct Hits<'a> {
    #[serde(default, borrow)]
    pub hits: Vec<Hit<'a>>,
}

/// One hit; its `_source` is decoded later, with the schema.
#[derive(Deserialize)]
pub(crate) struct Hit<'a> {
    #[serde(rename = "_id")]
    pub id: String,
    #[serde(default, borrow, rename = "_source")]
    pub source: Option<&'a RawValue>,
    #[serde(default)]
    pub sort: Option<Vec<Json>>,
}

/// Turns hits into records of one schema.
pub(crate) struct Decoder<'s> {
    pub schema: &'s Arc<Schema>,
    pub objects: &'s HashSet<String>,
    /// `_id` + `_source` records.
    pub raw: bool,
    /// The column for fields outside the mapping.
    pub extra: Option<usize>,
}

impl Decoder<'_> {
    /// The record of a hit.
    pub fn record(&self, hit: Hit<'_>) -> Result<Record, serde_json::Error> {
        let mut values = vec![Value::Null; self.schema.len()];
        values[0] = Value::String(hit.id);
        let Some(raw) = hit.source else {
            return Ok(Record::read(self.schema.clone(), values));
        };
        if self.raw {
            let source: Map<String, Json> = serde_json::from_str(raw.get())?;
            values[1] = Value::Json(Json::Object(source));
            return Ok(Record::read(self.schema.clone(), values));
        }
        let mut extra = Map::new();
        let mut de = serde_json::Deserializer::from_str(raw.get());
        de.deserialize_map(SourceVisitor {
            schema: self.schema,
            objects: self.objects,
            values: &mut values,
            extra: &mut extra,
        })?;
        de.end()?;
        if let Some(i) = self.extra {
            if !extra.is_empty() {
                values[i] = Value::Json(Json::Object(extra));
            }
        }
        Ok(Record::read(self.schema.clone(), values))
    }
}

/// A map key, borrowed when it has no escapes.
enum Key<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl Key<'_> {
    fn as_str(&self) -> &str {
        match self {
            Key::Borrowed(s) => s,
            Key::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key::Borrowed(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v.to_string()))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key::Owned(v))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Visits a `_source` object, putting each field into its column.
struct SourceVisitor<'a> {
    schema: &'a Schema,
    objects: &'a HashSet<String>,
    values: &'a mut [Value],
    extra: &'a mut Map<String, Json>,
}

impl<'de> Visitor<'de> for SourceVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a _source object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let k = key.as_str();
            let v: Json = map.next_value()?;
            match self.schema.index_of(k).filter(|&i| i > 0) {
                Some(i) => self.values[i] = json_to_value(v, self.schema.columns()[i].data_type),
                None => match v {
                    Json::Object(m) if self.objects.contains(k) => place(
                        self.schema,
                        self.objects,
                        &format!("{k}."),
                        m,
                        self.values,
                        self.extra,
                    ),
                    v => {
                        self.extra.insert(k.to_string(), v);
                    }
                },
            }
        }
        Ok(())
    }
}

/// Puts the fields of a flattened object into their `a.b` columns; what has no column goes
/// to `extra` under its dotted path.
fn place(
    schema: &Schema,
    objects: &HashSet<String>,
    prefix: &str,
    source: Map<String, Json>,
    values: &mut [Value],
    extra: &mut Map<String, Json>,
) {
    for (k, v) in source {
        let full = format!("{prefix}{k}");
        if let Some(i) = schema.index_of(&full).filter(|&i| i > 0) {
            values[i] = json_to_value(v, schema.columns()[i].data_type);
        } else if objects.contains(&full) && v.is_object() {
            let Json::Object(m) = v else { continue };
            place(schema, objects, &format!("{full}."), m, values, extra);
        } else {
            extra.insert(full, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datatrace_core::{Column, DataType};
    use serde_json::json;

    #[test]
    fn hits_decode_into_columns_and_extra() {
        let schema = Arc::new(Schema::new(
            "i",
            vec![
                Column::new("_id", DataType::String),
                Column::new("n", DataType::Int),
                Column::new("o.x", DataType::String),
                Column::new("_extra", DataType::Json),
            ],
        ));
        let objects: HashSet<String> = ["o".to_string()].into();
        let body = br#"{"hits":{"hits":[{"_id":"a","_source":{"n":5,"o":{"x":"y","w":1},"z\"q":[1],"n2":null},"sort":[1]}]}}"#;
        let answer: SearchAnswer = serde_json::from_slice(body).unwrap();
        let d = Decoder {
            schema: &schema,
            objects: &objects,
            raw: false,
            extra: Some(3),
        };
        let hit = answer.hits.hits.into_iter().next().unwrap();
        let r = d.record(hit).unwrap();
        assert_eq!(r.values[0], Value::from("a"));
        assert_eq!(r.values[1], Value::Int(5));
        assert_eq!(r.values[2], Value::from("y"));
        assert_eq!(
            r.values[3],
            Value::Json(json!({"o.w": 1, "z\"q": [1], "n2": null}))
        );
    }
}
