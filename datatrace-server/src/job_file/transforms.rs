//! `transforms = [...]` / `[[transforms]]`: the core's built-in transforms
//! ([`TransformSpec`]), read one by one so that errors name the exact key
//! (`transforms[1].fields: expected an array, found string "a"`).

use datatrace_core::transforms::TransformSpec;
use serde_json::Value;

use super::error::{from_value, join, kind_of, with_type_key, JobFileError};
use super::sections::take_type;

/// The transform types.
pub const TRANSFORM_TYPES: &[&str] = &[
    "rename", "keep", "drop", "set", "cast", "mask", "filter", "route",
];

/// Parses the `transforms` array.
pub fn parse_transforms(file: &str, value: Value) -> Result<Vec<TransformSpec>, JobFileError> {
    let items = match value {
        Value::Array(items) => items,
        other => {
            return Err(JobFileError::new(
                file,
                "transforms",
                format!(
                    "expected an array of tables ([[transforms]]), found {}",
                    kind_of(&other)
                ),
            ))
        }
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse_one(file, &format!("transforms[{i}]"), item))
        .collect()
}

fn parse_one(file: &str, at: &str, item: Value) -> Result<TransformSpec, JobFileError> {
    let (kind, map) = take_type(file, at, item, TRANSFORM_TYPES)?;
    let rest = Value::Object(map);
    let add_type = with_type_key;
    let spec = match kind.as_str() {
        "rename" => TransformSpec::Rename(from_value(file, at, rest).map_err(add_type)?),
        "keep" => TransformSpec::Keep(from_value(file, at, rest).map_err(add_type)?),
        "drop" => TransformSpec::Drop(from_value(file, at, rest).map_err(add_type)?),
        "set" => TransformSpec::Set(from_value(file, at, rest).map_err(add_type)?),
        "cast" => TransformSpec::Cast(from_value(file, at, rest).map_err(add_type)?),
        "mask" => TransformSpec::Mask(from_value(file, at, rest).map_err(add_type)?),
        "filter" => TransformSpec::Filter(from_value(file, at, rest).map_err(add_type)?),
        "route" => TransformSpec::Route(from_value(file, at, rest).map_err(add_type)?),
        other => {
            return Err(JobFileError::new(
                file,
                &join(at, "type"),
                format!(
                    "unknown transform {other:?}, expected one of: {}",
                    TRANSFORM_TYPES.join(", ")
                ),
            ))
        }
    };
    // What can be checked without a schema (a `set` with both `value` and `template`).
    spec.build().map_err(|e| JobFileError::new(file, at, e))?;
    Ok(spec)
}
