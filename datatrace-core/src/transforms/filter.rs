//! [`Filter`] and its conditions, [`Cond`]: keep the records that match.

use std::cmp::Ordering;
use std::sync::Arc;

use serde::Deserialize;

use crate::record::Record;
use crate::schema::{DataType, Schema};
use crate::transform::{Transform, TransformError};
use crate::value::Value;

use super::compare::{compare, Cmp};
use super::convert::{cast_value, describe, json_to_value, TypeName};
use super::plan::{position, Plans};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    fn matches(self, o: Ordering) -> bool {
        match self {
            CmpOp::Eq => o == Ordering::Equal,
            CmpOp::Ne => o != Ordering::Equal,
            CmpOp::Lt => o == Ordering::Less,
            CmpOp::Le => o != Ordering::Greater,
            CmpOp::Gt => o == Ordering::Greater,
            CmpOp::Ge => o != Ordering::Less,
        }
    }
    fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// What a leaf condition tests on its field.
#[derive(Debug, Clone, PartialEq)]
pub enum Test {
    /// `field op value`.
    Cmp(CmpOp, Value),
    /// `field in (values...)`.
    In(Vec<Value>),
    /// `field is null`.
    IsNull,
    /// `field is not null`.
    NotNull,
}

/// A condition on a record: a tree of `all` / `any` / `not` over tests of single fields.
///
/// Build one with [`Cond::field`] (`Cond::field("total").gt(100)`), combine with
/// [`Cond::and`], [`Cond::or`], [`Cond::all`], [`Cond::any`] and `!`. In configs (JSON shown,
/// TOML alike):
///
/// ```json
/// {"all": [
///   {"field": "status", "op": "in", "value": ["paid", "shipped"]},
///   {"any": [{"field": "total", "op": ">", "value": 100}, {"field": "vip", "op": "=", "value": true}]},
///   {"not": {"field": "deleted_at", "op": "not_null"}}
/// ]}
/// ```
///
/// Operators: `=` (or `==`), `!=` (or `<>`), `<`, `<=`, `>`, `>=`, `in` (value is a list),
/// `is_null`, `not_null` (no value). See [`Filter`] for how values compare.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(try_from = "RawCond")]
pub enum Cond {
    /// Every condition holds (true when empty).
    All(Vec<Cond>),
    /// At least one condition holds (false when empty).
    Any(Vec<Cond>),
    /// The condition does not hold.
    Not(Box<Cond>),
    /// A test of one field.
    Test {
        /// The field name.
        field: String,
        /// The test.
        test: Test,
    },
}

/// A field, about to be tested: see [`Cond::field`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldRef(String);

impl FieldRef {
    fn test(self, test: Test) -> Cond {
        Cond::Test {
            field: self.0,
            test,
        }
    }
    fn cmp(self, op: CmpOp, v: impl Into<Value>) -> Cond {
        self.test(Test::Cmp(op, v.into()))
    }
    /// `field = value`.
    pub fn eq(self, v: impl Into<Value>) -> Cond {
        self.cmp(CmpOp::Eq, v)
    }
    /// `field != value`.
    pub fn ne(self, v: impl Into<Value>) -> Cond {
        self.cmp(CmpOp::Ne, v)
    }
    /// `field < value`.
    pub fn lt(self, v: impl Into<Value>) -> Cond {
        self.cmp(CmpOp::Lt, v)
    }
    /// `field <= value`.
    pub fn le(self, v: impl Into<Value>) -> Cond {
        self.cmp(CmpOp::Le, v)
    }
    /// `field > value`.
    pub fn gt(self, v: impl Into<Value>) -> Cond {
        self.cmp(CmpOp::Gt, v)
    }
    /// `field >= value`.
    pub fn ge(self, v: impl Into<Value>) -> Cond {
        self.cmp(CmpOp::Ge, v)
    }
    /// `field in (values...)`.
    pub fn is_in<I: IntoIterator<Item = V>, V: Into<Value>>(self, values: I) -> Cond {
        self.test(Test::In(values.into_iter().map(Into::into).collect()))
    }
    /// `field is null`.
    pub fn is_null(self) -> Cond {
        self.test(Test::IsNull)
    }
    /// `field is not null`.
    pub fn not_null(self) -> Cond {
        self.test(Test::NotNull)
    }
}

impl Cond {
    /// Starts a test of `name`: `Cond::field("status").eq("paid")`.
    pub fn field(name: impl Into<String>) -> FieldRef {
        FieldRef(name.into())
    }
    /// All of these conditions.
    pub fn all(conds: impl IntoIterator<Item = Cond>) -> Cond {
        Cond::All(conds.into_iter().collect())
    }
    /// Any of these conditions.
    pub fn any(conds: impl IntoIterator<Item = Cond>) -> Cond {
        Cond::Any(conds.into_iter().collect())
    }
    /// This condition and `other`.
    pub fn and(self, other: Cond) -> Cond {
        match self {
            Cond::All(mut v) => {
                v.push(other);
                Cond::All(v)
            }
            c => Cond::All(vec![c, other]),
        }
    }
    /// This condition or `other`.
    pub fn or(self, other: Cond) -> Cond {
        match self {
            Cond::Any(mut v) => {
                v.push(other);
                Cond::Any(v)
            }
            c => Cond::Any(vec![c, other]),
        }
    }
}

impl std::ops::Not for Cond {
    type Output = Cond;
    fn not(self) -> Cond {
        Cond::Not(Box::new(self))
    }
}

/// The config form of a condition, validated into a [`Cond`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCond {
    all: Option<Vec<Cond>>,
    any: Option<Vec<Cond>>,
    not: Option<Box<Cond>>,
    field: Option<String>,
    op: Option<String>,
    value: Option<serde_json::Value>,
}

impl TryFrom<RawCond> for Cond {
    type Error = String;
    fn try_from(r: RawCond) -> Result<Cond, String> {
        let forms = [
            r.all.is_some(),
            r.any.is_some(),
            r.not.is_some(),
            r.field.is_some(),
        ];
        if forms.iter().filter(|&&f| f).count() != 1 {
            return Err(
                "a condition needs exactly one of `all`, `any`, `not` or `field` (with `op`)"
                    .into(),
            );
        }
        if r.field.is_none() && (r.op.is_some() || r.value.is_some()) {
            return Err("`op` and `value` belong with `field`".into());
        }
        if let Some(all) = r.all {
            return Ok(Cond::All(all));
        }
        if let Some(any) = r.any {
            return Ok(Cond::Any(any));
        }
        if let Some(not) = r.not {
            return Ok(Cond::Not(not));
        }
        let field = r.field.unwrap_or_default();
        let op =
            r.op.ok_or_else(|| format!("condition on {field:?}: missing `op`"))?;
        let cmp = match op.trim().to_ascii_lowercase().as_str() {
            "=" | "==" | "eq" => Some(CmpOp::Eq),
            "!=" | "<>" | "ne" => Some(CmpOp::Ne),
            "<" | "lt" => Some(CmpOp::Lt),
            "<=" | "le" => Some(CmpOp::Le),
            ">" | "gt" => Some(CmpOp::Gt),
            ">=" | "ge" => Some(CmpOp::Ge),
            _ => None,
        };
        let lower = op.trim().to_ascii_lowercase();
        let test = match (cmp, lower.as_str(), r.value) {
            (Some(_), _, None) => {
                return Err(format!(
                    "condition on {field:?}: `{op}` needs a non-null `value` \
                     (use op = \"is_null\" to test for null)"
                ))
            }
            (Some(c), _, Some(v)) => Test::Cmp(c, json_to_value(&v)),
            (None, "in", Some(serde_json::Value::Array(items))) => {
                Test::In(items.iter().map(json_to_value).collect())
            }
            (None, "in", _) => {
                return Err(format!("condition on {field:?}: `in` needs a list `value`"))
            }
            (None, "is_null" | "is null", None) => Test::IsNull,
            (None, "not_null" | "is_not_null" | "is not null", None) => Test::NotNull,
            (None, "is_null" | "is null" | "not_null" | "is_not_null" | "is not null", Some(_)) => {
                return Err(format!("condition on {field:?}: `{op}` takes no `value`"))
            }
            (None, _, _) => {
                return Err(format!(
                    "condition on {field:?}: unknown op {op:?} (expected =, !=, <, <=, >, >=, \
                     in, is_null or not_null)"
                ))
            }
        };
        Ok(Cond::Test { field, test })
    }
}

/// A condition tied to a schema: field positions and literals in the columns' types.
enum Node {
    All(Vec<Node>),
    Any(Vec<Node>),
    Not(Box<Node>),
    Test { index: usize, test: Test },
}

/// A literal for a column of type `dt`, converted once per schema: text is read as the
/// column's type (`"2024-01-01"` for a date, `"12.50"` for a decimal; failing is a config
/// error), `true`/`false` against an integer column as 1/0, 0/1 against a bool column as
/// false/true, numbers against a decimal column as decimals (so rows compare without
/// converting per record). Other literals compare as they are.
fn literal_for(v: &Value, dt: DataType, field: &str, schema: &Schema) -> Result<Value, String> {
    let decimal = DataType::Decimal {
        precision: 0,
        scale: 0,
    };
    match (v, dt) {
        (Value::String(_), DataType::String | DataType::Json) => Ok(v.clone()),
        (Value::String(_), dt) => cast_value(v, dt).map_err(|e| {
            format!(
                "filter on field {field:?} in {} (a {} column): {e}",
                schema.qualified_name(),
                TypeName(dt)
            )
        }),
        (Value::Bool(_), DataType::Int | DataType::UInt)
        | (Value::Int(_) | Value::UInt(_), DataType::Bool) => {
            Ok(cast_value(v, dt).unwrap_or_else(|_| v.clone()))
        }
        (Value::Int(_) | Value::UInt(_) | Value::Float(_), DataType::Decimal { .. }) => {
            Ok(cast_value(v, decimal).unwrap_or_else(|_| v.clone()))
        }
        _ => Ok(v.clone()),
    }
}

fn compile(cond: &Cond, schema: &Schema) -> Result<Node, String> {
    let many = |cs: &[Cond]| -> Result<Vec<Node>, String> {
        cs.iter().map(|c| compile(c, schema)).collect()
    };
    Ok(match cond {
        Cond::All(cs) => Node::All(many(cs)?),
        Cond::Any(cs) => Node::Any(many(cs)?),
        Cond::Not(c) => Node::Not(Box::new(compile(c, schema)?)),
        Cond::Test { field, test } => {
            let index = position("filter", field, schema)?;
            let dt = schema.columns()[index].data_type;
            let test = match test {
                Test::Cmp(op, v) => Test::Cmp(*op, literal_for(v, dt, field, schema)?),
                Test::In(vs) => Test::In(
                    vs.iter()
                        .map(|v| literal_for(v, dt, field, schema))
                        .collect::<Result<_, _>>()?,
                ),
                Test::IsNull => Test::IsNull,
                Test::NotNull => Test::NotNull,
            };
            Node::Test { index, test }
        }
    })
}

fn mismatch(record: &Record, index: usize, value: &Value, literal: &Value, op: &str) -> String {
    let field = record
        .schema
        .columns()
        .get(index)
        .map_or("?", |c| c.name.as_str());
    format!(
        "filter: cannot compare field {field:?} in {} ({}) {op} {}",
        record.schema.qualified_name(),
        describe(value),
        describe(literal)
    )
}

fn is_null(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Json(serde_json::Value::Null))
}

/// SQL three-valued logic: `None` is unknown (a comparison with `NULL`).
fn eval(node: &Node, record: &Record) -> Result<Option<bool>, String> {
    match node {
        Node::All(ns) => {
            let mut unknown = false;
            for n in ns {
                match eval(n, record)? {
                    Some(false) => return Ok(Some(false)),
                    None => unknown = true,
                    Some(true) => {}
                }
            }
            Ok((!unknown).then_some(true))
        }
        Node::Any(ns) => {
            let mut unknown = false;
            for n in ns {
                match eval(n, record)? {
                    Some(true) => return Ok(Some(true)),
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            Ok((!unknown).then_some(false))
        }
        Node::Not(n) => Ok(eval(n, record)?.map(|b| !b)),
        Node::Test { index, test } => {
            let value = record.values.get(*index).unwrap_or(&Value::Null);
            match test {
                Test::IsNull => Ok(Some(is_null(value))),
                Test::NotNull => Ok(Some(!is_null(value))),
                Test::Cmp(op, lit) => match compare(value, lit) {
                    Ok(Cmp::Unknown) => Ok(None),
                    Ok(Cmp::Ord(o)) => Ok(Some(op.matches(o))),
                    Ok(Cmp::Eq(eq)) if *op == CmpOp::Eq => Ok(Some(eq)),
                    Ok(Cmp::Eq(eq)) if *op == CmpOp::Ne => Ok(Some(!eq)),
                    Ok(Cmp::Eq(_)) | Err(()) => {
                        Err(mismatch(record, *index, value, lit, op.symbol()))
                    }
                },
                Test::In(lits) => {
                    let mut unknown = is_null(value);
                    for lit in lits {
                        match compare(value, lit) {
                            Ok(Cmp::Ord(Ordering::Equal)) | Ok(Cmp::Eq(true)) => {
                                return Ok(Some(true))
                            }
                            Ok(Cmp::Unknown) => unknown = true,
                            Ok(_) => {}
                            Err(()) => return Err(mismatch(record, *index, value, lit, "in")),
                        }
                    }
                    Ok((!unknown).then_some(false))
                }
            }
        }
    }
}

/// Keeps the records whose values match a [`Cond`] and drops the others (`Ok(None)`).
///
/// - Numbers compare by value across int, uint, float and decimal, exactly where no float is
///   involved (`Decimal 1.50 = Int` never goes through `f64`); a float compares exactly
///   against integers and through its shortest decimal text against decimals.
/// - Strings compare by bytes (lexicographically), booleans `false < true`, bytes by bytes;
///   dates, times, date-times and timestamps by value (dates as midnight, date-times as UTC
///   when mixed with timestamps). A text literal against a date/time column, or against a
///   decimal, bool or number column, is read as the column's type once per schema (a literal
///   that does not parse is a config error naming the field); text in a value compared with
///   a date or time is parsed likewise. `true`/`false` against an integer column mean 1/0
///   (MySQL's `TINYINT(1)` flags), 0/1 against a bool column false/true. A number literal
///   never becomes text: `name = 5` on a string column is a comparison error. JSON scalars
///   compare like the matching values; JSON arrays and objects only with `=` and `!=`.
/// - `NULL` is SQL-like: `=`, `!=`, `<`, ..., `in` never match a `NULL` field (a NaN
///   float behaves the same), `not` of an unknown stays unknown, and only records whose
///   condition is true are kept. Use `is_null` / `not_null` to test for `NULL`.
/// - Values that cannot be compared (`"abc" < 5`) reject the record with a message naming
///   the field, the table and both values; an unknown field rejects every record of that
///   table (see [`Filter::check`]).
///
/// The condition sees `values` (the after-image; for deletes, the deleted row).
///
/// ```
/// use std::sync::Arc;
/// use datatrace_core::transforms::{Cond, Filter};
/// use datatrace_core::{Column, DataType, Record, Schema, Transform, Value};
///
/// let schema = Arc::new(Schema::new("orders", vec![
///     Column::new("status", DataType::String),
///     Column::new("total", DataType::Decimal { precision: 10, scale: 2 }),
/// ]));
/// let paid_big = Filter::new(Cond::field("status").eq("paid").and(Cond::field("total").gt(100)));
/// let row = |s: &str, t: &str| Record::read(schema.clone(), vec![Value::from(s), Value::Decimal(t.parse().unwrap())]);
/// assert!(paid_big.apply(row("paid", "100.01")).unwrap().is_some());
/// assert!(paid_big.apply(row("paid", "100.00")).unwrap().is_none());
/// assert!(paid_big.apply(row("open", "500.00")).unwrap().is_none());
/// ```
#[derive(Debug)]
pub struct Filter {
    cond: Cond,
    plans: Plans<Node>,
}

impl Filter {
    /// Keeps the records matching `cond`.
    pub fn new(cond: Cond) -> Self {
        Filter {
            cond,
            plans: Plans::new(),
        }
    }

    /// The condition.
    pub fn condition(&self) -> &Cond {
        &self.cond
    }

    /// Checks that every field exists in `schema` and every text literal parses as its
    /// column's type.
    pub fn check(&self, schema: &Arc<Schema>) -> Result<(), String> {
        self.plans
            .get(schema, |s| compile(&self.cond, s))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

impl Transform for Filter {
    fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        self.check(input).map(|_| input.clone())
    }

    fn apply(&self, record: Record) -> Result<Option<Record>, TransformError> {
        let (record, node) = self.plans.for_record(record, |s| compile(&self.cond, s))?;
        match eval(&node, &record) {
            Ok(Some(true)) => Ok(Some(record)),
            Ok(_) => Ok(None),
            Err(message) => Err(TransformError::new(record, message)),
        }
    }
}
