//! Search answers decoded straight into records: each hit's `_source` is visited field by
//! field into the record's values (keys borrowed from the answer, no intermediate map of
//! the whole document).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use datatrace_core::{doc_id, DataType, Record, Schema, Value};
use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value as Json};

use crate::inferred::IdKey;
use crate::types::{json_to_value, number_from_text};

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
    /// The column of the document id, if any.
    pub id: Option<usize>,
    /// Without an id column: the key columns the id decodes into.
    pub id_key: Option<&'s IdKey>,
    /// The column for fields outside the mapping.
    pub extra: Option<usize>,
}

impl Decoder<'_> {
    /// The record of a hit.
    pub fn record(&self, hit: Hit<'_>) -> Result<Record, serde_json::Error> {
        let mut values = vec![Value::Null; self.schema.len()];
        let doc_id = hit.id;
        let Some(raw) = hit.source else {
            self.place_id(&mut values, doc_id)?;
            return Ok(Record::read(self.schema.clone(), values));
        };
        if self.raw {
            let source: Map<String, Json> = serde_json::from_str(raw.get())?;
            values[1] = Value::Json(Json::Object(source));
            self.place_id(&mut values, doc_id)?;
            return Ok(Record::read(self.schema.clone(), values));
        }
        let mut extra = Map::new();
        let mut de = serde_json::Deserializer::from_str(raw.get());
        de.deserialize_map(SourceVisitor {
            schema: self.schema,
            objects: self.objects,
            id: self.id,
            values: &mut values,
            extra: &mut extra,
        })?;
        de.end()?;
        if let Some(i) = self.extra {
            if !extra.is_empty() {
                values[i] = Value::Json(Json::Object(extra));
            }
        }
        self.place_id(&mut values, doc_id)?;
        Ok(Record::read(self.schema.clone(), values))
    }

    /// Puts the document id into its column, or (without one) decodes it into the key
    /// columns the document's `_source` left empty.
    fn place_id(&self, values: &mut [Value], id: String) -> Result<(), serde_json::Error> {
        if let Some(i) = self.id {
            values[i] = Value::String(id);
            return Ok(());
        }
        let Some(k) = self.id_key else {
            return Ok(());
        };
        if k.columns.iter().all(|&i| !values[i].is_null()) {
            return Ok(());
        }
        let key = doc_id::decode(&id, &k.types, &k.separator).map_err(|e| {
            de::Error::custom(format!("its id does not decode into the key columns: {e}"))
        })?;
        for (&i, v) in k.columns.iter().zip(key) {
            if values[i].is_null() {
                values[i] = v;
            }
        }
        Ok(())
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
    /// The id column, which no field fills.
    id: Option<usize>,
    values: &'a mut [Value],
    extra: &'a mut Map<String, Json>,
}

/// Whether a column's values are read from a number's text.
fn numeric(ty: DataType) -> bool {
    matches!(
        ty,
        DataType::Int | DataType::UInt | DataType::Float | DataType::Decimal { .. }
    )
}

impl<'de> Visitor<'de> for SourceVisitor<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a _source object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<Key<'de>>()? {
            let k = key.as_str();
            let column = self.schema.index_of(k).filter(|&i| Some(i) != self.id);
            if let Some(i) = column {
                let ty = self.schema.columns()[i].data_type;
                if numeric(ty) {
                    // Numbers from their text: no digit lost to a float on the way.
                    let raw: &'de RawValue = map.next_value()?;
                    self.values[i] = match number_from_text(raw.get(), ty) {
                        Some(v) => v,
                        None => json_to_value(
                            serde_json::from_str(raw.get()).map_err(de::Error::custom)?,
                            ty,
                        ),
                    };
                    continue;
                }
            }
            let v: Json = map.next_value()?;
            match column {
                Some(i) => self.values[i] = json_to_value(v, self.schema.columns()[i].data_type),
                None => match v {
                    Json::Object(m) if self.objects.contains(k) => place(
                        self.schema,
                        self.objects,
                        self.id,
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
    id: Option<usize>,
    prefix: &str,
    source: Map<String, Json>,
    values: &mut [Value],
    extra: &mut Map<String, Json>,
) {
    for (k, v) in source {
        let full = format!("{prefix}{k}");
        if let Some(i) = schema.index_of(&full).filter(|&i| Some(i) != id) {
            values[i] = json_to_value(v, schema.columns()[i].data_type);
        } else if objects.contains(&full) && v.is_object() {
            let Json::Object(m) = v else { continue };
            place(schema, objects, id, &format!("{full}."), m, values, extra);
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
            id: Some(0),
            id_key: None,
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

    #[test]
    fn ids_decode_into_the_key_columns_source_lacks() {
        let schema = Arc::new(Schema::new(
            "i",
            vec![
                Column::new("a", DataType::String),
                Column::new("v", DataType::String),
                Column::new("n", DataType::Int),
            ],
        ));
        let objects = HashSet::new();
        let key = IdKey {
            columns: vec![0, 2],
            types: vec![DataType::String, DataType::Int],
            separator: "_".into(),
        };
        let d = Decoder {
            schema: &schema,
            objects: &objects,
            raw: false,
            id: None,
            id_key: Some(&key),
            extra: None,
        };
        let body = br#"{"hits":{"hits":[
            {"_id":"a\\_b\\\\_-7","_source":{"v":"x"}},
            {"_id":"ignored_1","_source":{"a":"kept","v":"y","n":3}},
            {"_id":"p_9","_source":{"a":"from source","v":"z"}},
            {"_id":"q_5"},
            {"_id":"no separator","_source":{"v":"w"}}]}}"#;
        let answer: SearchAnswer = serde_json::from_slice(body).unwrap();
        let mut hits = answer.hits.hits.into_iter();
        let mut next = || d.record(hits.next().unwrap());
        let r = next().unwrap();
        assert_eq!(
            r.values,
            [Value::from("a_b\\"), Value::from("x"), Value::Int(-7)]
        );
        let r = next().unwrap();
        assert_eq!(
            r.values,
            [Value::from("kept"), Value::from("y"), Value::Int(3)]
        );
        let r = next().unwrap();
        assert_eq!(
            r.values,
            [Value::from("from source"), Value::from("z"), Value::Int(9)]
        );
        let r = next().unwrap();
        assert_eq!(r.values, [Value::from("q"), Value::Null, Value::Int(5)]);
        let e = next().unwrap_err().to_string();
        assert!(e.contains("does not decode into the key columns"), "{e}");
    }
}
