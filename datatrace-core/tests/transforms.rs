//! The built-in transforms: each one, its errors, the cast matrix, comparisons, configs.
//! Shared helpers live here; the tests are in `tests/transforms/`, one file per transform.

use std::sync::Arc;

use datatrace_core::testing::{CollectingSink, MemorySource};
use datatrace_core::transforms::*;
use datatrace_core::{
    Column, DataType, Decimal, ErrorPolicy, Op, Pipeline, PipelineConfig, Record, Schema,
    Transform, Value,
};

fn table(ns: Option<&str>, name: &str, cols: &[(&str, DataType)], pk: &[&str]) -> Arc<Schema> {
    let columns = cols.iter().map(|(n, t)| Column::new(*n, *t)).collect();
    let mut s = Schema::new(name, columns).with_primary_key(pk).unwrap();
    if let Some(ns) = ns {
        s = s.with_namespace(ns);
    }
    Arc::new(s)
}

fn ok(t: &dyn Transform, r: Record) -> Record {
    t.apply(r).unwrap().expect("record kept")
}

fn err(t: &dyn Transform, r: Record) -> String {
    t.apply(r).unwrap_err().message
}

fn dec(s: &str) -> Value {
    Value::Decimal(s.parse::<Decimal>().unwrap())
}

fn users() -> Arc<Schema> {
    table(
        Some("shop"),
        "users",
        &[
            ("id", DataType::Int),
            ("mail", DataType::String),
            ("name", DataType::String),
        ],
        &["id"],
    )
}

fn user(id: i64, mail: &str, name: &str) -> Record {
    Record::read(
        users(),
        vec![Value::Int(id), Value::from(mail), Value::from(name)],
    )
}

fn s(t: &str) -> Value {
    Value::from(t)
}
fn date(t: &str) -> Value {
    Value::Date(t.parse().unwrap())
}
fn dt(t: &str) -> Value {
    Value::DateTime(t.parse().unwrap())
}
fn ts(t: &str) -> Value {
    Value::Timestamp(t.parse().unwrap())
}
fn json(j: serde_json::Value) -> Value {
    Value::Json(j)
}

fn products() -> Arc<Schema> {
    Arc::new(
        Schema::new(
            "products",
            vec![
                Column::new("id", DataType::String).native("varchar(10)"),
                Column::new("price", DataType::String),
            ],
        )
        .with_namespace("shop"),
    )
}

#[path = "transforms/cast.rs"]
mod cast;
#[path = "transforms/filter.rs"]
mod filter;
#[path = "transforms/mask.rs"]
mod mask;
#[path = "transforms/route.rs"]
mod route;
#[path = "transforms/shape.rs"]
mod shape;
#[path = "transforms/spec.rs"]
mod spec;
