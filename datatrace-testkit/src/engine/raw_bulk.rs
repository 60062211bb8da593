//! The engine's own indexing ceiling, for benchmarks: documents read back from an index and
//! pre-built into `_bulk` bodies, then sent over parallel connections with nothing else to do
//! on the client side; and the engine's process CPU seconds, to charge each run its share.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use super::SearchEngine;

impl SearchEngine {
    /// Every document of `index` (scrolled in `_doc` order) as `_bulk` bodies of `docs_per_body`
    /// index actions each (`_id` and `_source` as stored), built before any clock starts.
    pub fn bulk_bodies(&self, index: &str, docs_per_body: usize) -> Vec<String> {
        let mut bodies = Vec::new();
        let mut body = String::new();
        let mut n = 0;
        let first = json!({"size": docs_per_body, "sort": ["_doc"]}).to_string();
        let mut page = self
            .request("POST", &format!("/{index}/_search?scroll=5m"), Some(&first))
            .json();
        loop {
            let hits = page["hits"]["hits"].as_array().cloned().unwrap_or_default();
            let scroll_id = page["_scroll_id"].as_str().unwrap_or_default().to_string();
            if hits.is_empty() {
                let clear = json!({"scroll_id": [scroll_id]}).to_string();
                self.request("DELETE", "/_search/scroll", Some(&clear));
                break;
            }
            for h in hits {
                body.push_str(&json!({"index": {"_id": h["_id"]}}).to_string());
                body.push('\n');
                body.push_str(&h["_source"].to_string());
                body.push('\n');
                n += 1;
                if n == docs_per_body {
                    bodies.push(std::mem::take(&mut body));
                    n = 0;
                }
            }
            let next = json!({"scroll": "5m", "scroll_id": scroll_id}).to_string();
            page = self.request("POST", "/_search/scroll", Some(&next)).json();
        }
        if !body.is_empty() {
            bodies.push(body);
        }
        bodies
    }

    /// Sends `bodies` to `index`'s `_bulk` over `connections` parallel connections (each body
    /// once, a 429 waited out and resent, as any client must); returns the seconds taken.
    /// Panics on any other failure or on an item error.
    pub fn send_bulk(&self, index: &str, bodies: &[String], connections: usize) -> f64 {
        let next = AtomicUsize::new(0);
        let path = format!("/{index}/_bulk");
        let t0 = Instant::now();
        std::thread::scope(|s| {
            for _ in 0..connections.max(1) {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(i) else { break };
                    let mut r = self.request("POST", &path, Some(body));
                    while r.status == 429 {
                        std::thread::sleep(Duration::from_millis(50));
                        r = self.request("POST", &path, Some(body));
                    }
                    let head = &r.body[..r.body.len().min(300)];
                    assert_eq!(r.status, 200, "{head}");
                    assert_eq!(r.json()["errors"], false, "{head}");
                });
            }
        });
        t0.elapsed().as_secs_f64()
    }

    /// The engine's process CPU seconds so far (`_nodes/_local/stats/process`).
    pub fn process_cpu_secs(&self) -> f64 {
        let v = self
            .request("GET", "/_nodes/_local/stats/process", None)
            .json();
        v["nodes"]
            .as_object()
            .and_then(|n| n.values().next())
            .and_then(|n| n["process"]["cpu"]["total_in_millis"].as_f64())
            .unwrap_or(0.0)
            / 1000.0
    }
}
