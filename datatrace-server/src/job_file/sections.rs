//! Splitting a flat `[source]` / `[target]` table between the structs of a connector
//! (connection, selection, read or write settings), with unknown keys reported against all
//! of them.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::kind_of;
use super::error::{from_value, join, unknown_key_message, JobFileError};
use super::fields::struct_fields;

/// One group of keys of a section.
pub struct Group {
    keys: Vec<&'static str>,
    map: Map<String, Value>,
}

impl Group {
    /// A group of `T`'s fields.
    pub fn of<T: DeserializeOwned>() -> Group {
        Group::keys(struct_fields::<T>())
    }

    /// A group of these keys.
    pub fn keys(keys: &[&'static str]) -> Group {
        Group {
            keys: keys.to_vec(),
            map: Map::new(),
        }
    }

    /// Leaves a key out of this group (it is handled elsewhere or not allowed here).
    pub fn without(mut self, key: &str) -> Group {
        self.keys.retain(|k| *k != key);
        self
    }

    /// Deserializes the group's keys into `T`, with key paths below `at`.
    pub fn parse<T: DeserializeOwned>(self, file: &str, at: &str) -> Result<T, JobFileError> {
        from_value(file, at, Value::Object(self.map))
    }

    /// Takes out one key's value.
    pub fn take(&mut self, key: &str) -> Option<Value> {
        self.map.remove(key)
    }

    /// Sets a key's value.
    pub fn insert(&mut self, key: &str, value: Value) {
        self.map.insert(key.to_owned(), value);
    }

    /// Whether the group got `key`.
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Whether the group got any key.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// Distributes the keys of `map` (the section at `at`, without its `type`) over `groups`;
/// a key no group takes is an error listing every allowed key.
pub fn split<const N: usize>(
    file: &str,
    at: &str,
    map: Map<String, Value>,
    mut groups: [Group; N],
) -> Result<[Group; N], JobFileError> {
    for (k, v) in map {
        match groups.iter_mut().find(|g| g.keys.contains(&k.as_str())) {
            Some(g) => {
                g.map.insert(k, v);
            }
            None => {
                let mut allowed: Vec<String> = vec!["type".into()];
                for g in &groups {
                    for key in &g.keys {
                        if !allowed.iter().any(|a| a == key) {
                            allowed.push((*key).to_owned());
                        }
                    }
                }
                return Err(JobFileError::new(
                    file,
                    &join(at, &k),
                    unknown_key_message(&allowed),
                ));
            }
        }
    }
    Ok(groups)
}

/// A list of strings (`tables = ["shop.*"]`), or one string; at least one when `required`.
pub fn string_list(
    file: &str,
    at: &str,
    value: Option<Value>,
    what: &str,
    required: bool,
) -> Result<Vec<String>, JobFileError> {
    let list: Vec<String> = match value {
        None if required => {
            let (parent, key) = at.rsplit_once('.').unwrap_or(("", at));
            return Err(JobFileError::new(
                file,
                parent,
                format!("missing key {key:?} (a list of {what})"),
            ));
        }
        None => Vec::new(),
        Some(Value::String(s)) => vec![s],
        Some(v @ Value::Array(_)) => from_value(file, at, v)?,
        Some(other) => {
            return Err(JobFileError::new(
                file,
                at,
                format!("expected a list of {what}, found {}", kind_of(&other)),
            ))
        }
    };
    if required && list.is_empty() {
        return Err(JobFileError::new(
            file,
            at,
            format!("expected at least one of {what}"),
        ));
    }
    for (i, p) in list.iter().enumerate() {
        if p.trim().is_empty() {
            return Err(JobFileError::new(
                file,
                &format!("{at}[{i}]"),
                "expected a pattern, found an empty string",
            ));
        }
    }
    Ok(list)
}

/// Splits off the `type` key of the table at `at` (`types` are named when it is missing).
pub fn take_type(
    file: &str,
    at: &str,
    value: Value,
    types: &[&str],
) -> Result<(String, Map<String, Value>), JobFileError> {
    let mut map = match value {
        Value::Object(m) => m,
        other => {
            return Err(JobFileError::new(
                file,
                at,
                format!("expected a table, found {}", kind_of(&other)),
            ))
        }
    };
    let expected = types.join(", ");
    match map.remove("type") {
        None => Err(JobFileError::new(
            file,
            at,
            format!("missing key \"type\" (one of: {expected})"),
        )),
        Some(Value::String(t)) => Ok((t, map)),
        Some(other) => Err(JobFileError::new(
            file,
            &join(at, "type"),
            format!("expected a string, found {}", kind_of(&other)),
        )),
    }
}
