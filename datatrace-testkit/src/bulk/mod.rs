//! [`BulkEndpoint`]: an Elasticsearch-compatible HTTP endpoint for throughput benchmarks.
//!
//! It parses every `_bulk` request fully, the way a cluster must before indexing: the NDJSON
//! is split into lines, every action line is decoded (action, `_index`, `_id`, version) and
//! every document body is parsed as JSON (validated with serde, without building a tree),
//! and the answer lists every item exactly like Elasticsearch 8 does (`_index`, `_id`,
//! `_version`, `result`, `_shards`, `_seq_no`, `_primary_term`, `status`). Nothing is stored,
//! so what a benchmark against it measures is the client's own cost.
//!
//! It also answers `GET /` as Elasticsearch 8.13 (so flavour detection works), index
//! `HEAD`/`GET`/`PUT`, `_mapping`, `_settings`, `_refresh`, `_count`, and - for read
//! benchmarks - point-in-time searches over a synthetic corpus ([`BulkEndpoint::with_corpus`]):
//! `POST /idx/_pit`, `POST /_search` with `pit`, `search_after`, `slice` and `size`, and
//! `DELETE /_pit`.
//!
//! For tests of client retry logic, [`BulkEndpoint::set_item_error_rate`] makes a share of
//! bulk items fail with a given status (429 `es_rejected_execution_exception`, 503, 400).
//!
//! Limits: gzip request bodies are not decompressed (they are answered with HTTP 400);
//! request bodies must carry `Content-Length` (chunked bodies close the connection).
//!
//! ```no_run
//! let ep = datatrace_testkit::bulk::BulkEndpoint::start();
//! // point an Elasticsearch client at ep.url() ...
//! println!("{} docs in {} requests", ep.stats().docs, ep.stats().requests);
//! ```

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use serde::de::IgnoredAny;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use request::{phrase, read_request, Request};
use search::{corpus_index, search};

mod request;
mod search;

/// What a [`BulkEndpoint`] has received so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BulkStats {
    /// `_bulk` requests answered.
    pub requests: u64,
    /// Bulk items (documents, deletes) parsed.
    pub docs: u64,
    /// Bulk request body bytes received.
    pub bytes: u64,
    /// Items answered with an injected error.
    pub failed_items: u64,
    /// Search pages answered.
    pub searches: u64,
    /// Point-in-times opened (`POST /idx/_pit`) and closed (`DELETE /_pit` with an `id`).
    pub pits_opened: u64,
    /// See `pits_opened`.
    pub pits_closed: u64,
}

#[derive(Default)]
struct Shared {
    requests: AtomicU64,
    docs: AtomicU64,
    bytes: AtomicU64,
    failed: AtomicU64,
    searches: AtomicU64,
    pits: [AtomicU64; 2],
    seq: AtomicU64,
    /// Injected item failures: status << 32 | millionths.
    item_error: AtomicU64,
    indices: Mutex<HashMap<String, serde_json::Value>>,
    corpus: (u64, usize),
}

/// An Elasticsearch-compatible endpoint on 127.0.0.1 (see the module docs), on its own
/// thread and runtime; dropping it stops it.
pub struct BulkEndpoint {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl BulkEndpoint {
    /// Starts an endpoint without a search corpus.
    pub fn start() -> BulkEndpoint {
        Self::with_corpus(0, 0)
    }

    /// Starts an endpoint whose every index holds `docs` synthetic documents of about
    /// `doc_bytes` bytes for searches (bulk writes are still not stored).
    pub fn with_corpus(docs: u64, doc_bytes: usize) -> BulkEndpoint {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("bulk endpoint: bind a free port");
        let addr = listener.local_addr().expect("bulk endpoint: local address");
        listener
            .set_nonblocking(true)
            .expect("bulk endpoint: non-blocking");
        let shared = Arc::new(Shared {
            corpus: (docs, doc_bytes),
            ..Default::default()
        });
        let (tx, rx) = oneshot::channel();
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("bulk-endpoint".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("bulk endpoint: runtime");
                rt.block_on(async move {
                    let listener =
                        TcpListener::from_std(listener).expect("bulk endpoint: listener");
                    tokio::select! {
                        _ = rx => {}
                        _ = accept_loop(listener, s) => {}
                    }
                });
            })
            .expect("bulk endpoint: thread");
        BulkEndpoint {
            addr,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// The address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What it received so far.
    pub fn stats(&self) -> BulkStats {
        let s = &self.shared;
        BulkStats {
            requests: s.requests.load(Ordering::Relaxed),
            docs: s.docs.load(Ordering::Relaxed),
            bytes: s.bytes.load(Ordering::Relaxed),
            failed_items: s.failed.load(Ordering::Relaxed),
            searches: s.searches.load(Ordering::Relaxed),
            pits_opened: s.pits[0].load(Ordering::Relaxed),
            pits_closed: s.pits[1].load(Ordering::Relaxed),
        }
    }

    /// Answers that share (0.0 to 1.0) of bulk items with `status` (429 and 503 as
    /// rejections, others as mapping errors); share 0 turns it off.
    pub fn set_item_error_rate(&self, status: u16, share: f64) {
        let m = (share.clamp(0.0, 1.0) * 1e6).round() as u64;
        let packed = if m == 0 {
            0
        } else {
            (u64::from(status) << 32) | m
        };
        self.shared.item_error.store(packed, Ordering::Relaxed);
    }
}

impl Drop for BulkEndpoint {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((sock, _)) = listener.accept().await else {
            continue;
        };
        let _ = sock.set_nodelay(true);
        let s = shared.clone();
        tokio::spawn(async move {
            let _ = serve(sock, &s).await;
        });
    }
}

/// Serves one keep-alive connection.
async fn serve(mut sock: TcpStream, shared: &Shared) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    loop {
        let Some(req) = read_request(&mut sock, &mut buf).await? else {
            return Ok(());
        };
        let (status, body) = if req.gzip {
            err(
                400,
                "illegal_argument_exception",
                "the bulk endpoint does not decompress gzip bodies",
            )
        } else {
            route(&req, shared)
        };
        let head = format!(
            "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-elastic-product: Elasticsearch\r\n{}\r\n",
            phrase(status),
            if req.method == "HEAD" { 0 } else { body.len() },
            if req.close { "connection: close\r\n" } else { "" }
        );
        sock.write_all(head.as_bytes()).await?;
        if req.method != "HEAD" {
            sock.write_all(&body).await?;
        }
        if req.close {
            return Ok(());
        }
    }
}

/// An Elasticsearch-style error answer.
fn err(status: u16, ty: &str, reason: &str) -> (u16, Vec<u8>) {
    (status, error_body(ty, reason, status))
}

fn error_body(ty: &str, reason: &str, status: u16) -> Vec<u8> {
    serde_json::json!({"error": {"root_cause": [{"type": ty, "reason": reason}], "type": ty, "reason": reason}, "status": status})
        .to_string()
        .into_bytes()
}

fn ok() -> Vec<u8> {
    br#"{"acknowledged":true}"#.to_vec()
}

fn route(req: &Request, shared: &Shared) -> (u16, Vec<u8>) {
    let segs: Vec<&str> = req
        .path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let m = req.method.as_str();
    match (m, segs.as_slice()) {
        ("GET" | "HEAD", []) => (200, root_body()),
        ("POST" | "PUT", ["_bulk"]) => bulk(req, None, shared),
        ("POST" | "PUT", [index, "_bulk"]) => bulk(req, Some(index), shared),
        ("POST", [_, "_pit"]) => {
            shared.pits[0].fetch_add(1, Ordering::Relaxed);
            (200, br#"{"id":"cGl0LWJ1bGstZW5kcG9pbnQ="}"#.to_vec())
        }
        ("DELETE", ["_pit"]) => {
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            if body.get("id").and_then(|i| i.as_str()).is_none() {
                return err(400, "action_request_validation_exception", "id is missing");
            }
            shared.pits[1].fetch_add(1, Ordering::Relaxed);
            (200, br#"{"succeeded":true,"num_freed":1}"#.to_vec())
        }
        ("POST" | "GET", ["_search"]) => search(req, shared),
        ("POST" | "GET", [_, "_count"]) => (
            200,
            format!("{{\"count\":{}}}", shared.corpus.0).into_bytes(),
        ),
        ("POST", [_, "_refresh"]) => (
            200,
            br#"{"_shards":{"total":1,"successful":1,"failed":0}}"#.to_vec(),
        ),
        ("PUT", [index]) => {
            let mut idx = shared.indices.lock().unwrap_or_else(|e| e.into_inner());
            if idx.contains_key(*index) {
                return err(
                    400,
                    "resource_already_exists_exception",
                    &format!("index [{index}] already exists"),
                );
            }
            let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap_or_default();
            idx.insert(index.to_string(), body);
            (
                200,
                format!(
                    "{{\"acknowledged\":true,\"shards_acknowledged\":true,\"index\":\"{index}\"}}"
                )
                .into_bytes(),
            )
        }
        ("PUT", [_, "_settings" | "_mapping"]) => (200, ok()),
        ("GET" | "HEAD", [index]) | ("GET", [index, "_mapping" | "_settings"]) => {
            let idx = shared.indices.lock().unwrap_or_else(|e| e.into_inner());
            let known = idx
                .get(*index)
                .cloned()
                .or_else(|| (shared.corpus.0 > 0).then(corpus_index));
            match known {
                None => err(
                    404,
                    "index_not_found_exception",
                    &format!("no such index [{index}]"),
                ),
                Some(def) => {
                    let mappings = def
                        .get("mappings")
                        .cloned()
                        .unwrap_or_else(|| serde_json::json!({}));
                    let mut settings = serde_json::json!({"index.number_of_shards": "1", "index.number_of_replicas": "1"});
                    if let Some(s) = def.pointer("/settings/index/number_of_shards") {
                        settings["index.number_of_shards"] = serde_json::json!(s.to_string());
                    }
                    let body =
                        serde_json::json!({ *index: {"mappings": mappings, "settings": settings} });
                    (200, body.to_string().into_bytes())
                }
            }
        }
        _ => err(
            400,
            "illegal_argument_exception",
            &format!("no handler for {m} {}", req.path),
        ),
    }
}

fn root_body() -> Vec<u8> {
    br#"{"name":"bulk-endpoint","cluster_name":"datatrace-bench","cluster_uuid":"bench","version":{"number":"8.13.4","build_flavor":"default","build_type":"tar","lucene_version":"9.10.0","minimum_wire_compatibility_version":"7.17.0","minimum_index_compatibility_version":"7.0.0"},"tagline":"You Know, for Search"}"#.to_vec()
}

#[derive(Deserialize)]
struct ActionMeta {
    #[serde(default)]
    _index: Option<String>,
    #[serde(default)]
    _id: Option<String>,
    #[serde(default)]
    version: Option<u64>,
}

#[derive(Deserialize)]
struct Action {
    #[serde(default)]
    index: Option<ActionMeta>,
    #[serde(default)]
    create: Option<ActionMeta>,
    #[serde(default)]
    update: Option<ActionMeta>,
    #[serde(default)]
    delete: Option<ActionMeta>,
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *out, s);
}

/// Parses a bulk body and answers item by item.
fn bulk(req: &Request, default_index: Option<&str>, shared: &Shared) -> (u16, Vec<u8>) {
    let started = Instant::now();
    let body = &req.body;
    shared.requests.fetch_add(1, Ordering::Relaxed);
    shared.bytes.fetch_add(body.len() as u64, Ordering::Relaxed);
    let inject = shared.item_error.load(Ordering::Relaxed);
    let mut items: Vec<u8> = Vec::with_capacity(body.len() / 6 + 64);
    let mut errors = false;
    let mut n = 0u64;
    let mut lines = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.iter().all(u8::is_ascii_whitespace));
    while let Some(line) = lines.next() {
        let action: Action = match serde_json::from_slice(line) {
            Ok(a) => a,
            Err(e) => {
                let reason = format!("Malformed action/metadata line [{}]: {e}", n + 1);
                return err(400, "illegal_argument_exception", &reason);
            }
        };
        let (name, meta) = match action {
            Action { index: Some(m), .. } => ("index", m),
            Action {
                create: Some(m), ..
            } => ("create", m),
            Action {
                update: Some(m), ..
            } => ("update", m),
            Action {
                delete: Some(m), ..
            } => ("delete", m),
            _ => return err(400, "illegal_argument_exception", "Unknown action"),
        };
        let mut parse_error = None;
        if name != "delete" {
            let Some(doc) = lines.next() else {
                return err(
                    400,
                    "illegal_argument_exception",
                    "The bulk request must be terminated by a newline [\\n]",
                );
            };
            if let Err(e) = serde_json::from_slice::<IgnoredAny>(doc) {
                parse_error = Some(e.to_string());
            }
        }
        n += 1;
        let index = meta._index.as_deref().or(default_index).unwrap_or("index");
        let seq = shared.seq.fetch_add(1, Ordering::Relaxed);
        let id = meta._id.unwrap_or_else(|| format!("auto-{seq:016x}"));
        if n > 1 {
            items.push(b',');
        }
        let injected = inject != 0 && fastrand::u64(0..1_000_000) < (inject & 0xffff_ffff);
        // The item: (status, error) for failures, else the success fields.
        let failure = if let Some(e) = parse_error {
            let err = serde_json::json!({"type": "document_parsing_exception", "reason": format!("failed to parse: {e}")});
            Some((400, err.to_string()))
        } else if injected {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            let status = (inject >> 32) as u16;
            let (ty, reason) = match status {
                429 => (
                    "es_rejected_execution_exception",
                    "rejected execution of coordinating operation",
                ),
                503 => (
                    "unavailable_shards_exception",
                    "primary shard is not active",
                ),
                _ => (
                    "document_parsing_exception",
                    "failed to parse field [x] (injected)",
                ),
            };
            Some((
                status,
                format!("{{\"type\":\"{ty}\",\"reason\":\"{reason}\"}}"),
            ))
        } else {
            None
        };
        items.extend_from_slice(b"{\"");
        items.extend_from_slice(name.as_bytes());
        items.extend_from_slice(b"\":{");
        if !req.filtered {
            items.extend_from_slice(b"\"_index\":");
            push_json_str(&mut items, index);
            items.extend_from_slice(b",\"_id\":");
            push_json_str(&mut items, &id);
            items.push(b',');
        }
        match failure {
            Some((status, err)) => {
                errors = true;
                items.extend_from_slice(
                    format!("\"status\":{status},\"error\":{err}}}}}").as_bytes(),
                );
            }
            None if req.filtered => {
                let status = if name == "index" || name == "create" {
                    201
                } else {
                    200
                };
                items.extend_from_slice(format!("\"status\":{status}}}}}").as_bytes());
            }
            None => {
                let (result, status) = match name {
                    "delete" => ("deleted", 200),
                    "update" => ("updated", 200),
                    _ => ("created", 201),
                };
                let version = meta.version.unwrap_or(1);
                items.extend_from_slice(
                    format!(
                        "\"_version\":{version},\"result\":\"{result}\",\"_shards\":{{\"total\":2,\"successful\":1,\"failed\":0}},\"_seq_no\":{seq},\"_primary_term\":1,\"status\":{status}}}}}"
                    )
                    .as_bytes(),
                );
            }
        }
    }
    shared.docs.fetch_add(n, Ordering::Relaxed);
    let took = started.elapsed().as_millis();
    let mut out = Vec::with_capacity(items.len() + 64);
    if req.filtered {
        out.extend_from_slice(format!("{{\"errors\":{errors},\"items\":[").as_bytes());
    } else {
        out.extend_from_slice(
            format!("{{\"took\":{took},\"errors\":{errors},\"items\":[").as_bytes(),
        );
    }
    out.extend_from_slice(&items);
    out.extend_from_slice(b"]}");
    (200, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn send(ep: &BulkEndpoint, method: &str, path: &str, body: Option<&str>) -> crate::HttpReply {
        crate::client::request(ep.addr(), method, path, body).expect("request")
    }

    #[test]
    fn answers_bulk_item_by_item_like_elasticsearch() {
        let ep = BulkEndpoint::start();
        let root = send(&ep, "GET", "/", None).json();
        assert_eq!(root["version"]["number"], "8.13.4");
        let body = "{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{\"x\":1}\n{\"create\":{\"_id\":\"2\"}}\n{\"y\":[1,{\"z\":null}]}\n{\"delete\":{\"_index\":\"a\",\"_id\":\"3\"}}\n{\"index\":{\"_index\":\"a\"}}\n{broken\n";
        let r = send(&ep, "POST", "/b/_bulk", Some(body)).json();
        assert_eq!(r["errors"], true);
        let items = r["items"].as_array().unwrap();
        assert_eq!(items.len(), 4);
        assert_eq!(items[0]["index"]["status"], 201);
        assert_eq!(items[1]["create"]["_index"], "b");
        assert_eq!(items[2]["delete"]["result"], "deleted");
        assert_eq!(items[3]["index"]["status"], 400);
        assert!(items[3]["index"]["_id"]
            .as_str()
            .unwrap()
            .starts_with("auto-"));
        let s = ep.stats();
        assert_eq!((s.requests, s.docs), (1, 4));
        ep.set_item_error_rate(429, 1.0);
        let r = send(
            &ep,
            "POST",
            "/_bulk",
            Some("{\"index\":{\"_index\":\"a\",\"_id\":\"1\"}}\n{}\n"),
        )
        .json();
        assert_eq!(r["items"][0]["index"]["status"], 429);
        assert_eq!(ep.stats().failed_items, 1);
        ep.set_item_error_rate(0, 0.0);
        let f = send(
            &ep,
            "POST",
            "/_bulk?filter_path=errors,items.*.status,items.*.error",
            Some("{\"delete\":{\"_index\":\"a\",\"_id\":\"1\"}}\n"),
        )
        .json();
        assert_eq!(
            f,
            serde_json::json!({"errors": false, "items": [{"delete": {"status": 200}}]})
        );
        let bad = send(&ep, "POST", "/_bulk", Some("nope\n"));
        assert_eq!(bad.status, 400);
    }

    #[test]
    fn serves_indices_and_corpus_searches() {
        let ep = BulkEndpoint::with_corpus(25, 300);
        assert_eq!(send(&ep, "PUT", "/idx", Some("{}")).status, 200);
        assert_eq!(send(&ep, "PUT", "/idx", Some("{}")).status, 400);
        assert_eq!(send(&ep, "HEAD", "/idx", None).status, 200);
        let page = send(
            &ep,
            "POST",
            "/_search",
            Some(r#"{"size":10,"pit":{"id":"x"},"slice":{"id":1,"max":2},"search_after":[3]}"#),
        )
        .json();
        let hits = page["hits"]["hits"].as_array().unwrap();
        assert_eq!(hits.len(), 10);
        assert_eq!(hits[0]["_id"], "5");
        assert_eq!(hits[9]["sort"][0], 23);
        assert!(hits[0]["_source"]["text"].as_str().unwrap().len() > 100);
        assert_eq!(send(&ep, "GET", "/x/_count", None).json()["count"], 25);
    }
}
