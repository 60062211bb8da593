//! [`Route`]: choose the target table or index of each record by a pattern.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::record::Record;
use crate::schema::Schema;
use crate::table_change::{TableChange, TableChangeKind};
use crate::transform::{Transform, TransformError};

use super::plan::{unknown_field, Plans};
use crate::template::{Compiled, Piece, Template, TemplateError};

enum RoutePlan {
    /// The pattern uses no field: one target per schema, shared by its records.
    Static(Arc<str>),
    /// The pattern uses fields: rendered per record.
    PerRecord(Compiled),
}

/// Sets [`Record::target`] from a pattern such as `"{prefix}-{table}"` or
/// `"logs-{db}-{region}"`. Sinks write the record to that table or index.
///
/// Placeholders are resolved in this order: variables given with [`Route::var`] (like
/// `prefix`), then `{table}` (the schema's name) and `{db}` (its namespace; an error for a
/// schema without one), then fields of the record (their text; a `NULL` field rejects the
/// record, naming the field). A pattern that uses no field is rendered once per schema and
/// shared, so routing costs no allocation per record. [`Route::lowercase`] lowers the result
/// (Elasticsearch index names must be lowercase). `{{` and `}}` are literal braces.
///
/// ```
/// use std::sync::Arc;
/// use datatrace_core::transforms::Route;
/// use datatrace_core::{Column, DataType, Record, Schema, Transform, Value};
///
/// let schema = Arc::new(Schema::new("Orders", vec![Column::new("region", DataType::String)])
///     .with_namespace("shop"));
/// let route = Route::new("{prefix}-{db}-{table}-{region}").unwrap().var("prefix", "cdc").lowercase(true);
/// let out = route.apply(Record::read(schema, vec![Value::from("EU")])).unwrap().unwrap();
/// assert_eq!(out.target_name(), "cdc-shop-orders-eu");
/// ```
#[derive(Debug)]
pub struct Route {
    pattern: Template,
    vars: BTreeMap<String, String>,
    lowercase: bool,
    plans: Plans<RoutePlan>,
}

impl Route {
    /// Routes by `pattern`; the error names what is wrong with the pattern's syntax.
    pub fn new(pattern: &str) -> Result<Self, TemplateError> {
        Ok(Route {
            pattern: Template::parse(pattern)?,
            vars: BTreeMap::new(),
            lowercase: false,
            plans: Plans::new(),
        })
    }

    /// Defines `{name}` as `value` (takes precedence over `table`, `db` and fields).
    pub fn var(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }

    /// Lowercases the rendered target.
    pub fn lowercase(mut self, yes: bool) -> Self {
        self.lowercase = yes;
        self
    }

    /// The target of every record of `schema` when the pattern uses no field (`None` when it
    /// depends on field values), or the config error (unknown placeholder, missing `{db}`).
    pub fn static_target(&self, schema: &Arc<Schema>) -> Result<Option<Arc<str>>, String> {
        match self.plans.get(schema, |s| self.derive(s)) {
            Ok(plan) => Ok(match &*plan {
                RoutePlan::Static(t) => Some(t.clone()),
                RoutePlan::PerRecord(_) => None,
            }),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Checks that every placeholder resolves for `schema`.
    pub fn check(&self, schema: &Arc<Schema>) -> Result<(), String> {
        self.static_target(schema).map(|_| ())
    }

    fn derive(&self, schema: &Schema) -> Result<RoutePlan, String> {
        let compiled = self.pattern.compile(|name| {
            if let Some(v) = self.vars.get(name) {
                return Ok(Piece::Text(v.clone()));
            }
            match name {
                "table" => Ok(Piece::Text(schema.name().to_string())),
                "db" => schema
                    .namespace()
                    .map(|ns| Piece::Text(ns.to_string()))
                    .ok_or_else(|| {
                        format!(
                            "route: pattern {:?} uses {{db}} but {} has no namespace",
                            self.pattern.source(),
                            schema.qualified_name()
                        )
                    }),
                field => schema
                    .index_of(field)
                    .map(Piece::Field)
                    .ok_or_else(|| unknown_field("route", field, schema)),
            }
        })?;
        Ok(match compiled.as_static() {
            Some(t) => RoutePlan::Static(self.finish(t.to_string()).into()),
            None => RoutePlan::PerRecord(compiled),
        })
    }

    fn finish(&self, target: String) -> String {
        if self.lowercase {
            target.to_lowercase()
        } else {
            target
        }
    }
}

impl Route {
    /// The one target of every record of `schema`, or why a table change of it cannot be
    /// routed (the pattern depends on field values).
    fn table_target(&self, schema: &Arc<Schema>, change: &TableChange) -> Result<Arc<str>, String> {
        self.static_target(schema)?.ok_or_else(|| {
            format!(
                "{change}: route pattern {:?} depends on field values, so the change cannot be mapped to one target; leave the table out of the stream or route by {{db}} and {{table}} only",
                self.pattern.source()
            )
        })
    }
}

impl Transform for Route {
    fn output_schema(&self, input: &Arc<Schema>) -> Result<Arc<Schema>, String> {
        self.check(input).map(|_| input.clone())
    }

    fn table_change(&self, mut change: TableChange) -> Result<Option<TableChange>, String> {
        change.target = Some(self.table_target(&change.schema, &change)?);
        if let TableChangeKind::Rename { to, .. } = &change.kind {
            let target = self.table_target(to, &change)?;
            if let TableChangeKind::Rename { to_target, .. } = &mut change.kind {
                *to_target = Some(target);
            }
        }
        Ok(Some(change))
    }

    fn apply(&self, record: Record) -> Result<Option<Record>, TransformError> {
        let (mut record, plan) = self.plans.for_record(record, |s| self.derive(s))?;
        let target = match &*plan {
            RoutePlan::Static(t) => t.clone(),
            RoutePlan::PerRecord(c) => match c.render(&record.values, false) {
                Ok(t) => self.finish(t).into(),
                Err(i) => {
                    let field = record
                        .schema
                        .columns()
                        .get(i)
                        .map_or("?", |c| c.name.as_str());
                    let message = format!(
                        "route: field {field:?} in {} is NULL; pattern {:?} needs a value",
                        record.schema.qualified_name(),
                        self.pattern.source()
                    );
                    return Err(TransformError::new(record, message));
                }
            },
        };
        record.target = Some(target);
        Ok(Some(record))
    }
}
