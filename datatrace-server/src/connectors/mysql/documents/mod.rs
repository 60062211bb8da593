//! Denormalized documents of a MySQL source (`[[source.documents]]`): their job-file
//! settings ([`spec`]), planning ([`plan`]: one unit per kind of document and a stream
//! unit) and `check` ([`check`]), built on `datatrace_denormal` and written through the
//! Elasticsearch connector.

pub mod check;
pub mod plan;
pub mod spec;

use std::sync::Arc;

use datatrace_denormal::{DenormalError, DocumentSpec, Documents};

use crate::connectors::api::{JobCtx, SourceSpec};
use crate::connectors::mysql::spec::MySqlSourceSpec;
use crate::job_file::error::JobFileError;

/// The stream unit of a documents job.
pub const STREAM_UNIT: &str = "documents";

/// A documents job's resolved definitions and the sink its units write with.
#[derive(Clone)]
pub struct PlannedDocuments {
    /// The definitions.
    pub docs: Arc<Documents>,
    /// The Elasticsearch sink of every unit.
    pub sink: Arc<datatrace_es::EsSink>,
}

/// The key of the job file a document error points at: the document, or its relation.
pub fn error(job: JobCtx<'_>, e: &DenormalError) -> JobFileError {
    let documents = of(job.source);
    let mut key = "source.documents".to_string();
    if let DenormalError::Definition {
        document, relation, ..
    } = e
    {
        if let Some(i) = documents.iter().position(|d| &d.name == document) {
            key = format!("source.documents[{i}]");
            let rel = relation.as_deref().and_then(|r| r.rsplit('.').next());
            if let Some(j) =
                rel.and_then(|r| documents[i].relations.iter().position(|x| x.name() == r))
            {
                key = format!("{key}.relations[{j}]");
            }
        }
    }
    JobFileError::new(job.file, &key, job.scrub(&e.to_string()))
}

/// The documents of a job's source, if it has some.
pub fn of(source: &SourceSpec) -> &[DocumentSpec] {
    match source.get::<MySqlSourceSpec>() {
        Some(m) => &m.documents,
        None => &[],
    }
}
