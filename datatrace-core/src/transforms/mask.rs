//! [`Mask`]: hide sensitive values (redact, SHA-256 hash, keep the last characters).

use std::fmt::{self, Write as _};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::record::Record;
use crate::schema::{DataType, Schema};
use crate::transform::{Transform, TransformError};
use crate::value::Value;

use super::plan::{position, Plans};

/// How [`Mask`] hides a value. `NULL` stays `NULL` with every method.
#[derive(Clone, PartialEq, Eq)]
pub enum MaskMethod {
    /// Replace the value by this text (`"***"` by default).
    Redact(String),
    /// The lowercase hex SHA-256 of the optional salt followed by the value's content: the
    /// UTF-8 bytes of a string, the raw bytes of a bytes value, the text of anything else.
    /// Equal inputs give equal hashes, so hashed columns still join.
    Sha256 {
        /// Prepended to the content before hashing; never shown in `Debug` output.
        salt: Option<String>,
    },
    /// Replace every character but the last `n` by `*` (counted in Unicode scalar values, so
    /// multi-byte characters and emoji are never cut; a value of at most `n` characters stays
    /// as it is).
    KeepLast(usize),
}

impl fmt::Debug for MaskMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MaskMethod::Redact(with) => f.debug_tuple("Redact").field(with).finish(),
            MaskMethod::Sha256 { salt } => f
                .debug_struct("Sha256")
                .field("salt", &salt.as_ref().map(|_| "<redacted>"))
                .finish(),
            MaskMethod::KeepLast(n) => f.debug_tuple("KeepLast").field(n).finish(),
        }
    }
}

impl MaskMethod {
    /// Masks one value; `NULL` stays `NULL`.
    pub fn mask(&self, value: &Value) -> Value {
        match (self, value) {
            (_, Value::Null) => Value::Null,
            (MaskMethod::Redact(with), _) => Value::String(with.clone()),
            (MaskMethod::Sha256 { salt }, v) => {
                let mut h = Sha256::new();
                if let Some(salt) = salt {
                    h.update(salt.as_bytes());
                }
                match v {
                    Value::String(s) => h.update(s.as_bytes()),
                    Value::Bytes(b) => h.update(b),
                    other => h.update(other.to_string().as_bytes()),
                }
                let mut hex = String::with_capacity(64);
                for byte in h.finalize() {
                    let _ = write!(hex, "{byte:02x}");
                }
                Value::String(hex)
            }
            (MaskMethod::KeepLast(n), Value::String(s)) => Value::String(keep_last(s, *n)),
            (MaskMethod::KeepLast(n), v) => Value::String(keep_last(&v.to_string(), *n)),
        }
    }
}

fn keep_last(s: &str, n: usize) -> String {
    let count = s.chars().count();
    if count <= n {
        return s.to_string();
    }
    let hidden = count - n;
    let tail = s.char_indices().nth(hidden).map_or("", |(i, _)| &s[i..]);
    let mut out = String::with_capacity(hidden + tail.len());
    out.extend(std::iter::repeat_n('*', hidden));
    out.push_str(tail);
    out
}

struct MaskPlan {
    indices: Vec<usize>,
    schema: Arc<Schema>,
}

/// Hides the values of some fields: [redact](Mask::redact), [hash](Mask::sha256) or
/// [keep the last characters](Mask::keep_last). Masking works in place; a masked column
/// becomes a string column (a non-string value is masked through its text: `Display`, e.g.
/// `4111` or `2024-01-31`; bytes are hashed raw). Before-images of updates are masked too.
/// A field the schema does not have is an error unless [`Mask::ignore_missing`] is set.
///
/// ```
/// use std::sync::Arc;
/// use datatrace_core::transforms::Mask;
/// use datatrace_core::{Column, DataType, Record, Schema, Transform, Value};
///
/// let schema = Arc::new(Schema::new("users", vec![
///     Column::new("email", DataType::String),
///     Column::new("card", DataType::String),
///     Column::new("pin", DataType::Int),
/// ]));
/// let row = Record::read(schema, vec![
///     Value::from("ann@example.com"),
///     Value::from("4111111111111111"),
///     Value::Int(1234),
/// ]);
/// let row = Mask::sha256("email").apply(row).unwrap().unwrap();
/// let row = Mask::keep_last("card", 4).apply(row).unwrap().unwrap();
/// let row = Mask::redact("pin").apply(row).unwrap().unwrap();
/// assert_eq!(row.values[0].as_str().unwrap().len(), 64);
/// assert_eq!(row.values[1], Value::from("************1111"));
/// assert_eq!(row.values[2], Value::from("***"));
/// assert_eq!(row.schema.columns()[2].data_type, DataType::String);
/// ```
#[derive(Debug)]
pub struct Mask {
    fields: Vec<String>,
    method: MaskMethod,
    ignore_missing: bool,
    plans: Plans<MaskPlan>,
}

impl Mask {
    /// Masks these fields with `method`.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(fields: I, method: MaskMethod) -> Self {
        Mask {
            fields: fields.into_iter().map(Into::into).collect(),
            method,
            ignore_missing: false,
            plans: Plans::new(),
        }
    }
    /// Replaces `field` by `***`.
    pub fn redact(field: impl Into<String>) -> Self {
        Mask::new([field.into()], MaskMethod::Redact("***".into()))
    }
    /// Replaces `field` by `with`.
    pub fn redact_with(field: impl Into<String>, with: impl Into<String>) -> Self {
        Mask::new([field.into()], MaskMethod::Redact(with.into()))
    }
    /// Replaces `field` by its SHA-256 in hex.
    pub fn sha256(field: impl Into<String>) -> Self {
        Mask::new([field.into()], MaskMethod::Sha256 { salt: None })
    }
    /// Replaces `field` by the SHA-256 of `salt` followed by the value.
    pub fn sha256_salted(field: impl Into<String>, salt: impl Into<String>) -> Self {
        let salt = Some(salt.into());
        Mask::new([field.into()], MaskMethod::Sha256 { salt })
    }
    /// Replaces all but the last `n` characters of `field` by `*`.
    pub fn keep_last(field: impl Into<String>, n: usize) -> Self {
        Mask::new([field.into()], MaskMethod::KeepLast(n))
    }
    /// Masks one more field the same way.
    pub fn and(mut self, field: impl Into<String>) -> Self {
        self.fields.push(field.into());
        self
    }
    /// Skips fields a schema does not have instead of rejecting its records.
    pub fn ignore_missing(mut self, yes: bool) -> Self {
        self.ignore_missing = yes;
        self
    }

    /// The schema records of `input` get, or the config error naming the unknown field.
    pub fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        self.plans
            .get(input, |s| self.derive(s))
            .map(|p| p.schema.clone())
            .map_err(|e| e.to_string())
    }

    /// Checks that every field exists in `schema`.
    pub fn check(&self, schema: &Arc<Schema>) -> Result<(), String> {
        self.output_schema(schema).map(|_| ())
    }

    fn derive(&self, schema: &Schema) -> Result<MaskPlan, String> {
        let mut columns = schema.columns().to_vec();
        let mut indices = Vec::with_capacity(self.fields.len());
        for field in &self.fields {
            let i = match position("mask", field, schema) {
                Ok(i) => i,
                Err(_) if self.ignore_missing => continue,
                Err(e) => return Err(e),
            };
            if columns[i].data_type != DataType::String {
                columns[i].data_type = DataType::String;
                columns[i].native_type = None;
            }
            indices.push(i);
        }
        Ok(MaskPlan {
            indices,
            schema: Arc::new(schema.derive(columns)),
        })
    }

    fn mask_values(&self, plan: &MaskPlan, values: &mut [Value]) {
        for &i in &plan.indices {
            if let Some(v) = values.get_mut(i) {
                *v = self.method.mask(v);
            }
        }
    }
}

impl Transform for Mask {
    fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        Mask::output_schema(self, input)
    }

    fn apply(&self, record: Record) -> Result<Option<Record>, TransformError> {
        let (mut record, plan) = self.plans.for_record(record, |s| self.derive(s))?;
        self.mask_values(&plan, &mut record.values);
        if let Some(before) = record.before.as_mut() {
            self.mask_values(&plan, before);
        }
        record.schema = plan.schema.clone();
        Ok(Some(record))
    }
}
