//! Checking and repairing an index of documents: every document is rebuilt from the source
//! (a page of tops per consistent snapshot, as the snapshot builds them) and compared with
//! the index, then every document of the index is looked up in the source to find extras.
//!
//! - **missing**: the source has the document, the index does not;
//! - **different**: its `_source` (numbers by value) or its `_routing` differs;
//! - **extra**: the index has a document the source does not (a deleted or filtered-out
//!   top, an orphaned child document), or a stale copy on another routing.
//!
//! An index document whose version is above the snapshot it is compared with was written
//! from a newer snapshot (a stream is running): it is not blamed. Keys that differ are
//! checked again after `recheck_delay` (up to [`RECHECK_MAX`] of them) and counted as
//! settled when they are equal by then. With `repair`, missing and different documents are
//! written as they are built, with the snapshot's version, and stale copies deleted; with
//! `delete_extra` extras are deleted too: a repair never overwrites a newer document, so it
//! is safe while a stream runs. Memory: a page of documents, plus the keys kept for the
//! recheck.

pub mod hits;

use std::time::{Duration, Instant};

use datatrace_core::Value;
use datatrace_es::EsSink;
use serde::Serialize;
use serde_json::Value as Json;

use crate::build::{self, Routing};
use crate::documents::Documents;
use crate::error::{InDocument, Result};

/// Keys kept for the recheck at most.
pub const RECHECK_MAX: usize = 10_000;

/// How to check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckOptions {
    /// Write missing and different documents, delete stale copies.
    pub repair: bool,
    /// With `repair`, delete extra documents too.
    pub delete_extra: bool,
    /// Differences shown in the report at most. Default 10.
    pub max_shown: usize,
    /// Wait before checking differing keys again. Default 2 s.
    pub recheck_delay: Duration,
    /// Tops per page (one snapshot and one search each). Default 500.
    pub page: usize,
}

impl Default for CheckOptions {
    fn default() -> Self {
        CheckOptions {
            repair: false,
            delete_extra: false,
            max_shown: 10,
            recheck_delay: Duration::from_secs(2),
            page: 500,
        }
    }
}

/// What kind of difference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DiffKind {
    /// In the source only.
    Missing,
    /// In the index only (or a stale copy on another routing).
    Extra,
    /// In both, not equal.
    Different,
}

/// One difference, for people.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Difference {
    /// The document id.
    pub id: String,
    /// What kind.
    pub kind: DiffKind,
    /// The document built from the source, with its routing.
    pub expected: Option<(Json, Routing)>,
    /// The document in the index, with its routing.
    pub found: Option<(Json, Routing)>,
}

/// The result of checking one kind of document.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KindCheck {
    /// The unit (`orders`, `orders.items`).
    pub unit: String,
    /// The index.
    pub index: String,
    /// Documents the source has.
    pub expected: u64,
    /// Documents of this kind in the index.
    pub found: u64,
    /// Missing documents.
    pub missing: u64,
    /// Extra documents (and stale copies).
    pub extra: u64,
    /// Different documents.
    pub different: u64,
    /// Documents that differed at first and were equal when checked again.
    pub settled: u64,
    /// The first differences (up to `max_shown`).
    pub shown: Vec<Difference>,
    /// Documents written by the repair.
    pub rewritten: u64,
    /// Documents deleted by the repair.
    pub deleted: u64,
    /// The index's refusals during the repair (the first `max_shown`).
    pub rejected: Vec<String>,
    /// How many writes the index refused.
    pub rejected_count: u64,
    /// Seconds the check took.
    pub seconds: f64,
}

impl KindCheck {
    /// No difference left.
    pub fn equal(&self) -> bool {
        self.missing == 0 && self.extra == 0 && self.different == 0
    }
}

mod pass;

/// Checks (and repairs) the documents of `unit` (see the module docs).
pub async fn check_unit(
    docs: &Documents,
    unit: &str,
    sink: &EsSink,
    opts: &CheckOptions,
) -> Result<KindCheck> {
    let started = Instant::now();
    let (def, kind) = docs.unit(unit)?;
    let clock = docs.clock(&def);
    let mut c = pass::Checker::new(&def, kind, unit, sink, opts)?;
    let client = sink.client().clone();
    let exists = hits::refresh(&client, &c.report.index)
        .await
        .in_doc(def.name())?;
    // The source's documents, a page at a time, against the index.
    let mut after: Option<Vec<Value>> = None;
    loop {
        let mut txn = clock.begin(None).await?;
        let (built, last, n) =
            build::page(&def, &mut txn, kind, after.as_deref(), None, opts.page).await?;
        let s = txn.version();
        txn.finish().await?;
        c.source_page(built, s, exists).await?;
        if n < opts.page {
            break;
        }
        after = last;
    }
    // The index's documents, looked up in the source.
    if exists {
        let k = &def.kinds[kind];
        let filter = k
            .joined
            .then(|| (def.spec.join_field.as_str(), k.name.as_str()));
        let index = c.report.index.clone();
        let mut scroll = hits::Scroll::start(&client, &index, filter, opts.page)
            .await
            .in_doc(def.name())?;
        while let Some(page) = scroll.next_page().await.in_doc(def.name())? {
            c.index_page(&clock, page).await?;
        }
    }
    c.recheck(&clock).await?;
    let mut report = c.report;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// JSON equality with numbers compared by value and `null` equal to absent.
fn json_eq(a: &Json, b: &Json) -> bool {
    match (a, b) {
        (Json::Number(x), Json::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(p), Some(q)) => p == q,
            _ => x.as_f64() == y.as_f64(),
        },
        (Json::Array(x), Json::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_eq(p, q))
        }
        (Json::Object(x), Json::Object(y)) => {
            let null = Json::Null;
            x.iter().all(|(k, v)| json_eq(v, y.get(k).unwrap_or(&null)))
                && y.iter().all(|(k, v)| x.contains_key(k) || v.is_null())
        }
        _ => a == b,
    }
}
