//! `_search` on the bulk endpoint's synthetic corpus: point-in-time pages (sliced, after
//! `search_after`) of documents made on the fly, the read side of benchmarks.

use std::sync::atomic::Ordering;

use super::request::Request;
use super::{err, Shared};

/// The mapping of the synthetic corpus.
pub(super) fn corpus_index() -> serde_json::Value {
    serde_json::json!({"mappings": {"properties": {
        "id": {"type": "long"}, "name": {"type": "keyword"}, "price": {"type": "double"},
        "active": {"type": "boolean"}, "text": {"type": "text"},
        "tags": {"type": "keyword"}, "meta": {"properties": {"a": {"type": "long"}, "b": {"type": "keyword"}}}
    }}})
}

/// Appends the `_source` of synthetic document `i` (about `bytes` long).
fn corpus_doc(out: &mut Vec<u8>, i: u64, bytes: usize) {
    let filler = bytes.saturating_sub(150);
    let mut text = String::with_capacity(filler);
    for k in 0..filler {
        text.push((b'a' + ((i as usize + k) % 26) as u8) as char);
    }
    let doc = serde_json::json!({
        "id": i, "name": format!("item-{i}"), "price": i as f64 * 0.25, "active": i.is_multiple_of(2),
        "text": text, "tags": ["x", "y"], "meta": {"a": i, "b": "z"}
    });
    let _ = serde_json::to_writer(&mut *out, &doc);
}

/// A point-in-time search page (a `pit.id` is required) over the corpus: documents `i` with `i % max == slice`,
/// sorted by `i` (the sort value), after `search_after`.
pub(super) fn search(req: &Request, shared: &Shared) -> (u16, Vec<u8>) {
    shared.searches.fetch_add(1, Ordering::Relaxed);
    let q: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
    if q.pointer("/pit/id").and_then(|i| i.as_str()).is_none() {
        return err(
            400,
            "illegal_argument_exception",
            "this endpoint searches only with a pit",
        );
    }
    let size = q.get("size").and_then(|s| s.as_u64()).unwrap_or(10);
    let (slice, max) = (
        q.pointer("/slice/id").and_then(|s| s.as_u64()).unwrap_or(0),
        q.pointer("/slice/max")
            .and_then(|s| s.as_u64())
            .unwrap_or(1)
            .max(1),
    );
    let after = q.pointer("/search_after/0").and_then(|s| s.as_u64());
    let (total, bytes) = shared.corpus;
    let mut i = match after {
        Some(a) => a + 1,
        None => 0,
    };
    while i % max != slice {
        i += 1;
    }
    let mut out = Vec::with_capacity((size as usize) * (bytes + 100) + 200);
    out.extend_from_slice(br#"{"pit_id":"cGl0LWJ1bGstZW5kcG9pbnQ=","took":1,"timed_out":false,"_shards":{"total":1,"successful":1,"skipped":0,"failed":0},"hits":{"total":{"value":0,"relation":"gte"},"max_score":null,"hits":["#);
    let mut n = 0;
    while i < total && n < size {
        if n > 0 {
            out.push(b',');
        }
        out.extend_from_slice(
            format!("{{\"_index\":\"corpus\",\"_id\":\"{i}\",\"_score\":null,\"_source\":")
                .as_bytes(),
        );
        corpus_doc(&mut out, i, bytes);
        out.extend_from_slice(format!(",\"sort\":[{i}]}}").as_bytes());
        n += 1;
        i += max;
    }
    out.extend_from_slice(b"]}}");
    (200, out)
}
