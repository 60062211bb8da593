//! [`Checker`]: the state of one check: the report so far, the keys to check again, and the
//! comparison of built documents with the index's copies (see the [parent](super) docs).

use std::collections::HashMap;

use datatrace_core::{Batch, Op, Outcome, Position, Record, Sink, Value};
use datatrace_es::bulk::DocPlan;
use datatrace_es::EsSink;
use serde_json::Value as Json;

use super::hits::{self, Hit};
use super::{json_eq, CheckOptions, DiffKind, Difference, KindCheck, RECHECK_MAX};
use crate::build::{self, delete_record, Docs, Routing};
use crate::clock::Clock;
use crate::definition::Definition;
use crate::error::{DenormalError, InDocument, Result};
use datatrace_mysql::binlog::current_position;
use datatrace_mysql::binlog::position::ordinal;

/// A document as the source says it should be (`doc: None`: it should not exist).
struct Expected {
    id: String,
    key: Vec<Value>,
    doc: Option<(Json, Routing, Record)>,
}

/// What a comparison found.
enum Found {
    Missing,
    Different(Hit),
    /// A copy that must go: a stale routing, or a document that should not exist.
    Extra(Hit),
}

/// The state of one check.
pub struct Checker<'a> {
    def: &'a Definition,
    kind: usize,
    sink: &'a EsSink,
    opts: &'a CheckOptions,
    plan: DocPlan,
    /// The report so far.
    pub report: KindCheck,
    recheck: Vec<Vec<Value>>,
}

impl<'a> Checker<'a> {
    /// A checker of `kind` of `def`, written by `sink`.
    pub fn new(
        def: &'a Definition,
        kind: usize,
        unit: &str,
        sink: &'a EsSink,
        opts: &'a CheckOptions,
    ) -> Result<Checker<'a>> {
        let schema = &def.kinds[kind].schema;
        let index = sink.index_for_table(schema, None).in_doc(def.name())?;
        Ok(Checker {
            def,
            kind,
            sink,
            opts,
            plan: DocPlan::new(schema, &sink.config().mapping),
            report: KindCheck {
                unit: unit.to_string(),
                index,
                ..Default::default()
            },
            recheck: Vec::new(),
        })
    }

    /// The documents of a build as the sink would write them.
    fn expected(&self, built: Docs, s: Option<u64>) -> Vec<Expected> {
        let routed = self.def.kinds[self.kind].routed;
        let nulls = self.sink.config().write_nulls;
        let mut out = Vec::with_capacity(built.docs.len() + built.absent.len());
        for (key, mut rec) in built.docs {
            let mut buf = Vec::new();
            // A document that cannot be written is compared as null (the sink rejects it).
            let _ = self
                .plan
                .write_doc(&mut buf, &rec.schema, &rec.values, nulls);
            let json: Json = serde_json::from_slice(&buf).unwrap_or(Json::Null);
            let routing = match rec.values.get(1) {
                Some(Value::String(r)) if routed => Some(r.clone()),
                _ => None,
            };
            rec.op = Op::Update;
            rec.position = Some(Position {
                state: Json::Null,
                ordinal: s,
                ts_ms: None,
            });
            out.push(Expected {
                id: self.def.doc_id(self.kind, &key),
                key,
                doc: Some((json, routing, rec)),
            });
        }
        for (key, _) in built.absent {
            out.push(Expected {
                id: self.def.doc_id(self.kind, &key),
                key,
                doc: None,
            });
        }
        out
    }

    /// What differs between `e` and the index's copies of its id. A copy written from a
    /// snapshot newer than `s` is not judged here (`true` is returned: check it again).
    fn compare(e: &Expected, copies: &[&Hit], s: Option<u64>) -> (Vec<Found>, bool) {
        let newer = |h: &Hit| s.is_some_and(|s| h.version > s);
        if copies.iter().any(|h| newer(h)) {
            return (Vec::new(), true);
        }
        let mut out = Vec::new();
        match &e.doc {
            None => out.extend(copies.iter().map(|h| Found::Extra((*h).clone()))),
            Some((doc, routing, _)) => {
                let mut main = false;
                for h in copies {
                    if &h.routing == routing {
                        main = true;
                        if !json_eq(doc, &h.source) {
                            out.push(Found::Different((*h).clone()));
                        }
                    } else {
                        out.push(Found::Extra((*h).clone()));
                    }
                }
                if !main {
                    out.push(Found::Missing);
                }
            }
        }
        (out, false)
    }

    /// Compares a page of the source's documents with the index.
    pub async fn source_page(&mut self, built: Docs, s: Option<u64>, exists: bool) -> Result<()> {
        let expected = self.expected(built, s);
        self.report.expected += expected.iter().filter(|e| e.doc.is_some()).count() as u64;
        // Absent tops are the index pass's business (extras), present ones are compared.
        let present: Vec<Expected> = expected.into_iter().filter(|e| e.doc.is_some()).collect();
        let found = if exists {
            let ids: Vec<String> = present.iter().map(|e| e.id.clone()).collect();
            hits::by_ids(self.sink.client(), &self.report.index, &ids)
                .await
                .in_doc(self.def.name())?
        } else {
            Vec::new()
        };
        self.settle(present, &found, s, true).await.map(|_| ())
    }

    /// Looks up a page of the index's documents in the source: extras.
    pub async fn index_page(&mut self, clock: &Clock, page: Vec<Hit>) -> Result<()> {
        self.report.found += page.len() as u64;
        let mut keys = Vec::new();
        let mut foreign = Vec::new();
        for h in &page {
            match hits::key_of(self.def, self.kind, &h.id) {
                Some(k) => keys.push(k),
                None => foreign.push(h),
            }
        }
        let mut txn = clock.begin(None).await?;
        let built = build::by_keys(self.def, &mut txn, self.kind, &keys).await?;
        let s = txn.version();
        txn.finish().await?;
        // Ids that are none of this kind's: nothing builds them.
        let mut fixes = Vec::new();
        for h in foreign {
            self.record(&h.id, DiffKind::Extra, None, Some(h));
            let mut del = delete_record(self.def, self.kind, &[], h.routing.clone());
            del.values[0] = Value::String(h.id.clone());
            del.position = Some(Position {
                state: Json::Null,
                ordinal: s,
                ts_ms: None,
            });
            fixes.push(del);
        }
        if self.opts.repair && self.opts.delete_extra && !fixes.is_empty() {
            self.repair(fixes).await?;
        }
        let absent: Vec<Expected> = self
            .expected(built, s)
            .into_iter()
            .filter(|e| e.doc.is_none())
            .collect();
        self.settle(absent, &page, s, true).await.map(|_| ())
    }

    /// Compares `expected` with `found`, records (or keeps for the recheck) what differs,
    /// and repairs when asked; returns how many documents differ.
    async fn settle(
        &mut self,
        expected: Vec<Expected>,
        found: &[Hit],
        s: Option<u64>,
        first: bool,
    ) -> Result<u64> {
        let mut differing = 0;
        let mut by_id: HashMap<&str, Vec<&Hit>> = HashMap::new();
        for h in found {
            by_id.entry(h.id.as_str()).or_default().push(h);
        }
        let mut fixes: Vec<Record> = Vec::new();
        for e in &expected {
            let copies = by_id.get(e.id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            let (diffs, newer) = Self::compare(e, copies, s);
            if newer {
                // Written from a newer snapshot (a stream runs): judged by the recheck.
                if self.recheck.len() < RECHECK_MAX {
                    self.recheck.push(e.key.clone());
                }
                continue;
            }
            if diffs.is_empty() {
                continue;
            }
            differing += 1;
            if first && self.recheck.len() < RECHECK_MAX && !self.opts.repair {
                self.recheck.push(e.key.clone());
                continue;
            }
            let exp = e.doc.as_ref();
            for d in diffs {
                match d {
                    Found::Missing | Found::Different(_) => {
                        let (kind, hit) = match &d {
                            Found::Different(h) => (DiffKind::Different, Some(h)),
                            _ => (DiffKind::Missing, None),
                        };
                        self.record(
                            &e.id,
                            kind,
                            exp.map(|(j, r, _)| (j.clone(), r.clone())),
                            hit,
                        );
                        if let Some((_, _, rec)) = exp {
                            fixes.push(rec.clone());
                        }
                    }
                    Found::Extra(h) => {
                        self.record(&e.id, DiffKind::Extra, None, Some(&h));
                        let stale_copy = exp.is_some();
                        if stale_copy || self.opts.delete_extra {
                            let mut del =
                                delete_record(self.def, self.kind, &e.key, h.routing.clone());
                            del.position = Some(Position {
                                state: Json::Null,
                                ordinal: s,
                                ts_ms: None,
                            });
                            fixes.push(del);
                        }
                    }
                }
            }
        }
        if self.opts.repair && !fixes.is_empty() {
            self.repair(fixes).await?;
        }
        Ok(differing)
    }

    fn record(
        &mut self,
        id: &str,
        kind: DiffKind,
        expected: Option<(Json, Routing)>,
        found: Option<&Hit>,
    ) {
        match kind {
            DiffKind::Missing => self.report.missing += 1,
            DiffKind::Extra => self.report.extra += 1,
            DiffKind::Different => self.report.different += 1,
        }
        if self.report.shown.len() < self.opts.max_shown {
            self.report.shown.push(Difference {
                id: id.to_string(),
                kind,
                expected,
                found: found.map(|h| (h.source.clone(), h.routing.clone())),
            });
        }
    }

    async fn repair(&mut self, fixes: Vec<Record>) -> Result<()> {
        let mut pending = fixes;
        // 5 attempts, 0.2 s to 3.2 s apart.
        let mut retry = datatrace_core::RetryPolicy::new(
            5,
            std::time::Duration::from_millis(200),
            std::time::Duration::from_millis(3200),
        )
        .start();
        loop {
            let outcomes = self
                .sink
                .write(&Batch::new(pending.clone()))
                .await
                .map_err(|e| DenormalError::Data {
                    document: self.def.name().to_string(),
                    context: format!("repairing {}", self.report.index),
                    message: e.to_string(),
                })?;
            let mut again = Vec::new();
            for (r, o) in pending.into_iter().zip(outcomes) {
                match o {
                    Outcome::Written if r.op == Op::Delete => self.report.deleted += 1,
                    Outcome::Written => self.report.rewritten += 1,
                    Outcome::Rejected(why) => {
                        self.report.rejected_count += 1;
                        if self.report.rejected.len() < self.opts.max_shown {
                            self.report.rejected.push(why.into());
                        }
                    }
                    Outcome::Retryable(_) => again.push(r),
                }
            }
            if again.is_empty() {
                return Ok(());
            }
            pending = again;
            let Some(delay) = retry.failed(None) else {
                break;
            };
            tokio::time::sleep(delay).await;
        }
        self.report.rejected_count += pending.len() as u64;
        Ok(())
    }

    /// Checks the kept keys again after the delay; those equal by then are settled.
    pub async fn recheck(&mut self, clock: &Clock) -> Result<()> {
        if self.recheck.is_empty() {
            return Ok(());
        }
        tokio::time::sleep(self.opts.recheck_delay).await;
        let keys = std::mem::take(&mut self.recheck);
        let client = self.sink.client().clone();
        let _ = hits::refresh(&client, &self.report.index).await;
        let now = current_position(clock.connection())
            .await
            .in_doc(self.def.name())?;
        let now = ordinal(&now.file, now.pos);
        for chunk in keys.chunks(self.opts.page.max(1)) {
            // The index first, then a snapshot at least as new as every copy found that a
            // build could have written (a version above the binlog's end is not ours).
            let ids: Vec<String> = chunk
                .iter()
                .map(|k| self.def.doc_id(self.kind, k))
                .collect();
            let found = hits::by_ids(&client, &self.report.index, &ids)
                .await
                .in_doc(self.def.name())?;
            let need = found.iter().map(|h| h.version).filter(|&v| v <= now).max();
            let mut txn = clock.begin(need).await?;
            let built = build::by_keys(self.def, &mut txn, self.kind, chunk).await?;
            let s = txn.version();
            txn.finish().await?;
            let expected = self.expected(built, s);
            let n = expected.len() as u64;
            let differing = self.settle(expected, &found, None, false).await?;
            self.report.settled += n.saturating_sub(differing);
        }
        Ok(())
    }
}
