//! `[[source.documents]]` of a MySQL source: denormalized documents (see
//! `datatrace_denormal::spec` for every key), written to an Elasticsearch target.
//!
//! ```toml
//! [source]
//! type = "mysql"
//! url = "mysql://reader@db1:3306/shop"
//! mode = "snapshot+cdc"
//!
//! [[source.documents]]
//! name = "orders"                       # the unit, and {table} in the target's index pattern
//! table = "orders"                      # the root table
//! routing = "customer_id"               # optional: _routing from a root column
//!
//! [[source.documents.relations]]
//! field = "customer"
//! table = "customers"
//! kind = "many_to_one"                  # one_to_one | many_to_one | one_to_many | many_to_many
//! foreign_key = ["customer_id"]
//! columns = ["id", "name"]
//!
//! [[source.documents.relations]]
//! field = "items"
//! table = "order_items"
//! kind = "one_to_many"
//! foreign_key = ["order_id"]
//! nested = true
//!
//! [target]
//! type = "elasticsearch"
//! url = "http://es:9200"
//! index = "shop-{table}"
//! ```
//!
//! What a documents job cannot have, refused here with the key at fault: a target other than
//! Elasticsearch, job-level `[[transforms]]` (documents have their own, in the definition,
//! where a `filter` decides whether a document exists), a target `version` (documents carry
//! the binlog position of the snapshot they were built from) and an `action` other than
//! `index` (a rebuilt document replaces the old one whole).

use datatrace_core::transforms::TransformSpec;
use datatrace_denormal::DocumentSpec;
use datatrace_es::WriteAction;
use serde_json::Value;

use crate::connectors::api::TargetSpec;
use crate::connectors::es::EsTargetSpec;
use crate::job_file::error::{from_value, JobFileError};

/// Parses `documents` (absent: none), checking each definition without the database.
pub fn parse(
    file: &str,
    at: &str,
    value: Option<Value>,
) -> Result<Vec<DocumentSpec>, JobFileError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let specs: Vec<DocumentSpec> = from_value(file, at, value)?;
    if specs.is_empty() {
        return Err(JobFileError::new(
            file,
            at,
            "expected at least one document ([[source.documents]])",
        ));
    }
    for (i, s) in specs.iter().enumerate() {
        s.check()
            .map_err(|e| JobFileError::new(file, &format!("{at}[{i}]"), e.to_string()))?;
        if specs[..i].iter().any(|o| o.name == s.name) {
            return Err(JobFileError::new(
                file,
                &format!("{at}[{i}].name"),
                format!(
                    "two documents are named {:?}: each names its unit and index",
                    s.name
                ),
            ));
        }
    }
    Ok(specs)
}

/// What the rest of a job must be for its documents (see the module docs).
pub fn check_job(
    file: &str,
    documents: &[DocumentSpec],
    target: &TargetSpec,
    transforms: &[TransformSpec],
) -> Result<(), JobFileError> {
    if documents.is_empty() {
        return Ok(());
    }
    let Some(es) = target.get::<EsTargetSpec>() else {
        return Err(JobFileError::new(
            file,
            "target.type",
            format!(
                "documents are written to Elasticsearch or OpenSearch (type = \"elasticsearch\"), not {}",
                target.kind()
            ),
        ));
    };
    if !transforms.is_empty() {
        return Err(JobFileError::new(
            file,
            "transforms",
            "a job with documents takes transforms inside its definitions (`transforms` of a document or of a relation), where a filter decides whether a document exists",
        ));
    }
    if es.options.version.is_some() {
        return Err(JobFileError::new(
            file,
            "target.version",
            "documents carry their own external versions (the binlog position of the snapshot they were built from): leave out `version`",
        ));
    }
    if es.options.action != WriteAction::Index {
        return Err(JobFileError::new(
            file,
            "target.action",
            "documents are rebuilt whole: leave `action` at \"index\"",
        ));
    }
    Ok(())
}
