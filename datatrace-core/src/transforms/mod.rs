//! Built-in transforms: rename, keep/drop, set, cast, mask, filter and route.
//!
//! Every built-in implements [`crate::Transform`] and can be used from code through its
//! constructors or from a job file through [`TransformSpec`]:
//!
//! | transform | code | what it does |
//! |---|---|---|
//! | `rename` | [`Rename::new([("old", "new")])`](Rename) | renames fields; keys follow |
//! | `keep` | [`KeepFields::new(["id", "name"])`](KeepFields) | keeps only these fields |
//! | `drop` | [`DropFields::new(["password"])`](DropFields) | drops these fields |
//! | `set` | [`SetField::constant`], [`SetField::template`], [`SetField::computed`] | sets or adds a field |
//! | `cast` | [`Cast::new([("price", DataType::Float)])`](Cast) | converts exactly ([matrix](convert)) |
//! | `mask` | [`Mask::redact`], [`Mask::sha256`], [`Mask::keep_last`] | hides values |
//! | `filter` | [`Filter::new(Cond::field("total").gt(100))`](Filter) | keeps matching records |
//! | `route` | [`Route::new("{prefix}-{table}")`](Route) | sets the target table/index |
//!
//! Shape-changing transforms (rename, keep, drop, set, cast, mask of a non-string column)
//! derive their output schema once per input schema ([`SchemaCache`]); per record they swap
//! the `Arc<Schema>` and change values in place. Before-images of updates get the same
//! treatment as the values.
//!
//! ## Errors
//!
//! A field a schema does not have is a config error: every record of that table is rejected
//! with a message naming the transform, the field and the table (`rename: unknown field
//! "mail" in shop.users (fields: id, email)`), under the pipeline's error policy. To report
//! such errors before a run, call `check` on a transform or [`check_specs`] on a job's list.
//! Data errors (a value that cannot be cast, values that cannot be compared) reject the one
//! record with a message naming the field, the table and the value:
//! `cast of field "price" in shop.products: "abc" is not a decimal`.
//!
//! ## In job files
//!
//! A job lists transforms as tables tagged by `type`; literal values are JSON values (TOML
//! values map onto them), read against the column's type where it matters (`"2024-01-01"`
//! compared with a date column is a date, `"19.99"` set into a decimal column is exact):
//!
//! ```toml
//! transforms = [
//!   { type = "rename", fields = { mail = "email", cust_id = "customer_id" } },
//!   { type = "drop", fields = ["password_hash"] },          # or: type = "keep"
//!   { type = "cast", fields = { price = "decimal(10,2)", created = "timestamp" } },
//!   { type = "set", field = "origin", value = "crm" },
//!   { type = "set", field = "full_name", template = "{first} {last}" },
//!   { type = "set", field = "valid_from", value = "2024-01-01", as = "date" },
//!   { type = "mask", fields = ["email"], method = "sha256", salt = "pepper" },
//!   { type = "mask", fields = ["card"], method = "keep_last", n = 4 },
//!   { type = "mask", fields = ["notes"], method = "redact", with = "[removed]" },
//!   { type = "filter", where = { all = [
//!       { field = "status", op = "in", value = ["paid", "shipped"] },
//!       { any = [ { field = "total", op = ">", value = 100 },
//!                 { field = "vip", op = "=", value = true } ] },
//!       { not = { field = "deleted_at", op = "not_null" } },
//!   ] } },
//!   { type = "route", pattern = "{prefix}-{db}-{table}", vars = { prefix = "cdc" }, lowercase = true },
//! ]
//! ```
//!
//! `rename`, `keep`, `drop`, `cast` and `mask` take `ignore_missing = true` to skip fields a
//! table lacks instead of rejecting its records. The same in JSON, built and checked:
//!
//! ```
//! use std::sync::Arc;
//! use datatrace_core::transforms::{build_specs, check_specs, TransformSpec};
//! use datatrace_core::{Column, DataType, Schema};
//!
//! let specs: Vec<TransformSpec> = serde_json::from_str(r#"[
//!     {"type": "rename", "fields": {"mail": "email"}},
//!     {"type": "filter", "where": {"all": [
//!         {"field": "status", "op": "=", "value": "paid"},
//!         {"field": "total", "op": ">", "value": 100}]}},
//!     {"type": "route", "pattern": "{prefix}-{table}", "vars": {"prefix": "shop"}}
//! ]"#).unwrap();
//! let schema = Arc::new(Schema::new("orders", vec![
//!     Column::new("mail", DataType::String),
//!     Column::new("status", DataType::String),
//!     Column::new("total", DataType::Int),
//! ]));
//! let out = check_specs(&specs, &schema).unwrap();
//! assert_eq!(out.columns()[0].name, "email");
//! let transforms = build_specs(&specs).unwrap();
//! assert_eq!(transforms.len(), 3);
//!
//! let bad: Vec<TransformSpec> =
//!     serde_json::from_str(r#"[{"type": "drop", "fields": ["nope"]}]"#).unwrap();
//! assert_eq!(
//!     check_specs(&bad, &schema).unwrap_err(),
//!     "transform 1 (drop): drop: unknown field \"nope\" in orders (fields: mail, status, total)"
//! );
//! ```

mod cast;
mod compare;
pub mod convert;
mod filter;
mod mask;
mod plan;
mod rename;
mod route;
mod schema_cache;
mod select;
mod set;
mod spec;

pub use crate::template::TemplateError;
pub use cast::Cast;
pub use convert::{cast_value, json_to_value, literal_as, parse_data_type, CastError};
pub use filter::{CmpOp, Cond, FieldRef, Filter, Test};
pub use mask::{Mask, MaskMethod};
pub use rename::Rename;
pub use route::Route;
pub use schema_cache::SchemaCache;
pub use select::{DropFields, KeepFields};
pub use set::SetField;
pub use spec::{
    build_specs, check_specs, CastSpec, FieldsSpec, FilterSpec, MaskSpec, RenameSpec, RouteSpec,
    SetSpec, TransformSpec,
};
