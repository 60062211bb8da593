//! [`TransformSpec`]: the built-in transforms as job files write them.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Deserializer};

use crate::schema::{DataType, Schema};
use crate::transform::Transform;

use super::convert::parse_data_type;
use super::filter::{Cond, Filter};
use super::mask::{Mask, MaskMethod};
use super::rename::Rename;
use super::route::Route;
use super::select::{DropFields, KeepFields};
use super::set::SetField;
use crate::template::Template;

/// One built-in transform in a job file, tagged by `type` (see the [module docs](super) for
/// every form). Deserializing validates what can be checked without a schema (type names,
/// patterns, operators); [`TransformSpec::check`] checks the rest against a schema.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransformSpec {
    /// `{type = "rename", fields = {old = "new"}}`
    Rename(RenameSpec),
    /// `{type = "keep", fields = ["id", "name"]}`
    Keep(FieldsSpec),
    /// `{type = "drop", fields = ["password"]}`
    Drop(FieldsSpec),
    /// `{type = "set", field = "origin", value = "crm"}` or `template = "{first} {last}"`
    Set(SetSpec),
    /// `{type = "cast", fields = {price = "decimal(10,2)"}}`
    Cast(CastSpec),
    /// `{type = "mask", fields = ["email"], method = "sha256"}`
    Mask(MaskSpec),
    /// `{type = "filter", where = {field = "status", op = "=", value = "paid"}}`
    Filter(FilterSpec),
    /// `{type = "route", pattern = "{prefix}-{table}", vars = {prefix = "shop"}}`
    Route(RouteSpec),
}

/// The settings of `rename`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenameSpec {
    /// Old name to new name.
    pub fields: BTreeMap<String, String>,
    /// Skip fields a table does not have (default: reject its records).
    #[serde(default)]
    pub ignore_missing: bool,
}

/// The settings of `keep` and `drop`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldsSpec {
    /// The fields to keep or to drop.
    pub fields: Vec<String>,
    /// Ignore listed fields a table does not have (default: reject its records).
    #[serde(default)]
    pub ignore_missing: bool,
}

/// The settings of `set`: exactly one of `value` and `template`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetSpec {
    /// The field to set (overwritten in place, or appended).
    pub field: String,
    /// A constant, read as the column's type (or `as`).
    #[serde(default, deserialize_with = "present")]
    pub value: Option<serde_json::Value>,
    /// A pattern with `{field}` placeholders.
    #[serde(default, deserialize_with = "template")]
    pub template: Option<String>,
    /// The type of the field (`"date"`, `"decimal(10,2)"`, ...).
    #[serde(default, rename = "as", deserialize_with = "type_name")]
    pub as_type: Option<DataType>,
}

/// The settings of `cast`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CastSpec {
    /// Field name to type name.
    #[serde(deserialize_with = "type_map")]
    pub fields: BTreeMap<String, DataType>,
    /// Skip fields a table does not have (default: reject its records).
    #[serde(default)]
    pub ignore_missing: bool,
}

/// The settings of `mask`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawMaskSpec")]
pub struct MaskSpec {
    /// The fields to mask.
    pub fields: Vec<String>,
    /// How.
    pub method: MaskMethod,
    /// Skip fields a table does not have (default: reject its records).
    pub ignore_missing: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMaskSpec {
    fields: Vec<String>,
    method: String,
    with: Option<String>,
    salt: Option<String>,
    n: Option<usize>,
    #[serde(default)]
    ignore_missing: bool,
}

impl TryFrom<RawMaskSpec> for MaskSpec {
    type Error = String;
    fn try_from(r: RawMaskSpec) -> Result<Self, String> {
        let unexpected = |what: &str, method: &str| {
            Err(format!(
                "mask: `{what}` does not apply to method {method:?}"
            ))
        };
        let method = match r.method.as_str() {
            "redact" => {
                if r.salt.is_some() || r.n.is_some() {
                    return unexpected("salt`/`n", "redact");
                }
                MaskMethod::Redact(r.with.unwrap_or_else(|| "***".into()))
            }
            "sha256" | "hash" => {
                if r.with.is_some() || r.n.is_some() {
                    return unexpected("with`/`n", "sha256");
                }
                MaskMethod::Sha256 { salt: r.salt }
            }
            "keep_last" => {
                if r.with.is_some() || r.salt.is_some() {
                    return unexpected("with`/`salt", "keep_last");
                }
                let n = r
                    .n
                    .ok_or("mask: method \"keep_last\" needs `n`, the number of characters kept")?;
                MaskMethod::KeepLast(n)
            }
            other => {
                return Err(format!(
                    "mask: unknown method {other:?} (expected redact, sha256 or keep_last)"
                ))
            }
        };
        Ok(MaskSpec {
            fields: r.fields,
            method,
            ignore_missing: r.ignore_missing,
        })
    }
}

/// The settings of `filter`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilterSpec {
    /// The condition records must meet to be kept.
    #[serde(rename = "where")]
    pub condition: Cond,
}

/// The settings of `route`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// The target pattern: `{table}`, `{db}`, variables and fields in braces.
    #[serde(deserialize_with = "pattern")]
    pub pattern: String,
    /// Variables usable in the pattern, such as `prefix`.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Lowercase the target (for Elasticsearch index names).
    #[serde(default)]
    pub lowercase: bool,
}

/// `Some(v)` for any value present, including JSON `null`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
    serde_json::Value::deserialize(d).map(Some)
}

fn checked_pattern<E: serde::de::Error>(p: String) -> Result<String, E> {
    Template::parse(&p).map_err(E::custom)?;
    Ok(p)
}

fn pattern<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    checked_pattern(String::deserialize(d)?)
}

fn template<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    checked_pattern(String::deserialize(d)?).map(Some)
}

fn type_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DataType>, D::Error> {
    let t = String::deserialize(d)?;
    parse_data_type(&t)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn type_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, DataType>, D::Error> {
    BTreeMap::<String, String>::deserialize(d)?
        .into_iter()
        .map(|(f, t)| {
            parse_data_type(&t)
                .map(|dt| (f.clone(), dt))
                .map_err(|e| serde::de::Error::custom(format!("cast of {f:?}: {e}")))
        })
        .collect()
}

/// A built transform that can also check itself against a schema.
enum Built {
    Rename(Rename),
    Keep(KeepFields),
    Drop(DropFields),
    Set(SetField),
    Cast(super::cast::Cast),
    Mask(Mask),
    Filter(Filter),
    Route(Route),
}

impl Built {
    fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        match self {
            Built::Rename(t) => t.output_schema(input),
            Built::Keep(t) => t.output_schema(input),
            Built::Drop(t) => t.output_schema(input),
            Built::Set(t) => t.output_schema(input),
            Built::Cast(t) => t.output_schema(input),
            Built::Mask(t) => t.output_schema(input),
            Built::Filter(t) => t.check(input).map(|_| input.clone()),
            Built::Route(t) => t.check(input).map(|_| input.clone()),
        }
    }

    fn boxed(self) -> Box<dyn Transform> {
        match self {
            Built::Rename(t) => Box::new(t),
            Built::Keep(t) => Box::new(t),
            Built::Drop(t) => Box::new(t),
            Built::Set(t) => Box::new(t),
            Built::Cast(t) => Box::new(t),
            Built::Mask(t) => Box::new(t),
            Built::Filter(t) => Box::new(t),
            Built::Route(t) => Box::new(t),
        }
    }
}

impl TransformSpec {
    /// The `type` name: `rename`, `keep`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            TransformSpec::Rename(_) => "rename",
            TransformSpec::Keep(_) => "keep",
            TransformSpec::Drop(_) => "drop",
            TransformSpec::Set(_) => "set",
            TransformSpec::Cast(_) => "cast",
            TransformSpec::Mask(_) => "mask",
            TransformSpec::Filter(_) => "filter",
            TransformSpec::Route(_) => "route",
        }
    }

    fn built(&self) -> Result<Built, String> {
        Ok(match self {
            TransformSpec::Rename(s) => {
                Built::Rename(Rename::new(s.fields.clone()).ignore_missing(s.ignore_missing))
            }
            TransformSpec::Keep(s) => {
                Built::Keep(KeepFields::new(s.fields.clone()).ignore_missing(s.ignore_missing))
            }
            TransformSpec::Drop(s) => {
                Built::Drop(DropFields::new(s.fields.clone()).ignore_missing(s.ignore_missing))
            }
            TransformSpec::Set(s) => {
                let t = match (&s.value, &s.template) {
                    (Some(v), None) => SetField::literal(s.field.clone(), v.clone()),
                    (None, Some(p)) => {
                        SetField::template(s.field.clone(), p).map_err(|e| e.to_string())?
                    }
                    _ => {
                        return Err(format!(
                            "set of field {:?}: give exactly one of `value` and `template`",
                            s.field
                        ))
                    }
                };
                Built::Set(match s.as_type {
                    Some(dt) => t.as_type(dt),
                    None => t,
                })
            }
            TransformSpec::Cast(s) => Built::Cast(
                super::cast::Cast::new(s.fields.iter().map(|(f, t)| (f.clone(), *t)))
                    .ignore_missing(s.ignore_missing),
            ),
            TransformSpec::Mask(s) => Built::Mask(
                Mask::new(s.fields.clone(), s.method.clone()).ignore_missing(s.ignore_missing),
            ),
            TransformSpec::Filter(s) => Built::Filter(Filter::new(s.condition.clone())),
            TransformSpec::Route(s) => {
                let mut r = Route::new(&s.pattern)
                    .map_err(|e| e.to_string())?
                    .lowercase(s.lowercase);
                for (k, v) in &s.vars {
                    r = r.var(k.clone(), v.clone());
                }
                Built::Route(r)
            }
        })
    }

    /// Builds the transform. The error (a `set` with both or neither of `value` and
    /// `template`) names the setting.
    pub fn build(&self) -> Result<Box<dyn Transform>, String> {
        self.built().map(Built::boxed)
    }

    /// The schema this transform's records get from `input` records, or the config error
    /// naming the unknown field, the table and what is wrong.
    pub fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        self.built()?.output_schema(input)
    }

    /// Checks this transform against `schema` (use [`check_specs`] for a chain).
    pub fn check(&self, schema: &Arc<Schema>) -> Result<(), String> {
        self.output_schema(schema).map(|_| ())
    }
}

/// Checks a chain of transforms against the schema of a unit before a run: each transform
/// sees the schema the previous ones produce. Returns the final schema, or the first error
/// prefixed with the transform's position and type (`transform 2 (cast): ...`).
pub fn check_specs(specs: &[TransformSpec], schema: &Arc<Schema>) -> Result<Arc<Schema>, String> {
    let mut current = schema.clone();
    for (i, spec) in specs.iter().enumerate() {
        current = spec
            .output_schema(&current)
            .map_err(|e| format!("transform {} ({}): {e}", i + 1, spec.kind()))?;
    }
    Ok(current)
}

/// Builds a chain of transforms (for [`crate::Pipeline::transforms`] or a unit).
pub fn build_specs(specs: &[TransformSpec]) -> Result<Vec<Arc<dyn Transform>>, String> {
    specs
        .iter()
        .enumerate()
        .map(|(i, s)| {
            s.build()
                .map(Arc::from)
                .map_err(|e| format!("transform {} ({}): {e}", i + 1, s.kind()))
        })
        .collect()
}
