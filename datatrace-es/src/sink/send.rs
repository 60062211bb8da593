//! Sending request bodies and sorting the answers into per-record outcomes: item statuses
//! of a `200`, halving on `413`, whole-request retries on transient statuses, and the
//! failures no retry can fix; each answer also tells the in-flight limit whether the cluster
//! pushed back.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use datatrace_core::{Cause, Outcome, Record, SinkError};
use elasticsearch::http::Method;

use super::aimd::Signal;
use super::encode::{Chunk, Entry};
use super::EsSink;
use crate::bulk::{classify, parse_items};
use crate::client::RawResponse;
use crate::errors::{error_reason, is_retryable_status, EsError};

/// Every record of `chunk` gets `outcome`.
fn all(chunk: &Chunk, outcome: Outcome, out: &mut Vec<(usize, Outcome)>) {
    out.extend(chunk.entries.iter().map(|e| (e.record, outcome.clone())));
}

/// The two halves of a request the cluster found too large (`413`).
fn halve(chunk: &Chunk) -> [Chunk; 2] {
    let (a, b) = chunk.entries.split_at(chunk.entries.len() / 2);
    [a, b].map(|part| {
        let base = part[0].start;
        let end = part[part.len() - 1].end;
        Chunk {
            body: chunk.body.slice(base..end),
            entries: part
                .iter()
                .map(|e| Entry {
                    start: e.start - base,
                    end: e.end - base,
                    ..*e
                })
                .collect(),
        }
    })
}

impl EsSink {
    /// Sends one request; returns the outcome of each of its records. `Err` only for
    /// failures that no retry can fix (authentication, a refused request).
    pub(super) async fn send(
        &self,
        chunk: Chunk,
        records: &[Record],
        indices: &[Arc<str>],
    ) -> Result<Vec<(usize, Outcome)>, SinkError> {
        let mut pending = vec![chunk];
        let mut out = Vec::new();
        while let Some(chunk) = pending.pop() {
            let slot = self.gate.acquire().await;
            let answer = self.post(&chunk).await;
            let rtt = slot.elapsed();
            match answer {
                Ok(resp) => {
                    let pushed_back =
                        self.answer(chunk, &resp, records, indices, &mut out, &mut pending)?;
                    let signal = if pushed_back {
                        Signal::BackPressure
                    } else {
                        Signal::Ok
                    };
                    slot.finish(rtt, signal);
                }
                Err(e) => {
                    // No answer: an overloaded cluster as far as the limit can tell.
                    slot.finish(rtt, Signal::BackPressure);
                    all(&chunk, Outcome::Retryable(Cause::new(e)), &mut out);
                }
            }
        }
        Ok(out)
    }

    /// Posts one body to `_bulk` (under a slot of the gate, taken by the caller); `Err` is a
    /// request that got no answer (retryable).
    async fn post(&self, chunk: &Chunk) -> Result<RawResponse, EsError> {
        let c = &self.counters;
        c.requests.fetch_add(1, Ordering::Relaxed);
        c.docs
            .fetch_add(chunk.entries.len() as u64, Ordering::Relaxed);
        c.bytes
            .fetch_add(chunk.body.len() as u64, Ordering::Relaxed);
        // Only what the outcomes need comes back: smaller answers, cheaper parsing.
        let filter = ("filter_path", "errors,items.*.status,items.*.error");
        let with_refresh;
        let query: &[(&str, &str)] = match self.cfg.refresh.as_param() {
            Some(r) => {
                with_refresh = [("refresh", r), filter];
                &with_refresh
            }
            None => std::slice::from_ref(&filter),
        };
        self.client
            .request_with_type(
                Method::Post,
                "/_bulk",
                query,
                Some(chunk.body.clone()),
                "application/x-ndjson",
            )
            .await
    }

    /// Sorts an answer to `chunk` into outcomes (`out`) or requests to send again
    /// (`pending`, the halves of a too large request). Returns whether the cluster pushed
    /// back (a retryable status for the request or for one of its items).
    fn answer(
        &self,
        chunk: Chunk,
        resp: &RawResponse,
        records: &[Record],
        indices: &[Arc<str>],
        out: &mut Vec<(usize, Outcome)>,
        pending: &mut Vec<Chunk>,
    ) -> Result<bool, SinkError> {
        let n = chunk.entries.len();
        match resp.status {
            200 => return Ok(self.items(&chunk, &resp.body, records, indices, out)),
            // Too large for the cluster's http.max_content_length: halve it.
            413 if n > 1 => pending.extend(halve(&chunk)),
            413 => {
                let e = chunk.entries[0];
                let id = self.entry_id(&records[e.record], e.moved);
                out.push((
                    e.record,
                    Outcome::Rejected(format!(
                        "index {}, document {id}: too large for a request ({} bytes; see the cluster's http.max_content_length)",
                        indices[e.record],
                        e.end - e.start
                    ).into()),
                ));
            }
            s if is_retryable_status(s) => {
                let why = format!("bulk request: HTTP {s}: {}", error_reason(&resp.body));
                let mut cause = Cause::from(why);
                if let Some(delay) = resp.retry_after {
                    cause = cause.retry_after(delay);
                }
                all(&chunk, Outcome::Retryable(cause), out);
                return Ok(true);
            }
            _ => {
                let index = chunk
                    .entries
                    .first()
                    .map(|e| indices[e.record].to_string())
                    .unwrap_or_default();
                let err =
                    self.client
                        .status_error(resp, &format!("bulk request to index {index}"), None);
                return Err(SinkError::fatal(err));
            }
        }
        Ok(false)
    }

    /// The outcomes of the items of a `200` answer; returns whether an item was pushed
    /// back (429 `es_rejected_execution_exception`, 503).
    fn items(
        &self,
        chunk: &Chunk,
        body: &[u8],
        records: &[Record],
        indices: &[Arc<str>],
        out: &mut Vec<(usize, Outcome)>,
    ) -> bool {
        let n = chunk.entries.len();
        match parse_items(body) {
            Ok(items) if items.len() == n => {
                let external = self.cfg.version.is_some();
                let mut pushed_back = false;
                for (e, item) in chunk.entries.iter().zip(&items) {
                    pushed_back |= is_retryable_status(item.status);
                    let o = if (200..300).contains(&item.status) {
                        Outcome::Written
                    } else {
                        let id = self.entry_id(&records[e.record], e.moved);
                        classify(item, e.op, external, &indices[e.record], &id)
                    };
                    out.push((e.record, o));
                }
                pushed_back
            }
            Ok(items) => {
                let why = format!("bulk answer has {} items for {n} documents", items.len());
                all(chunk, Outcome::Retryable(why.into()), out);
                false
            }
            Err(why) => {
                all(chunk, Outcome::Retryable(why.into()), out);
                false
            }
        }
    }
}
