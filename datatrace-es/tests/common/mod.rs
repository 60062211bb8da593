//! Helpers shared by the integration tests (all against the test run's search engine,
//! `datatrace_testkit::engine()`).
#![allow(dead_code)]

use std::collections::BTreeMap;

use datatrace_es::{ConnectionConfig, EsClient};
use datatrace_testkit::engine;
use serde_json::Value as Json;

/// A connection to `url` with quick retries.
pub fn conn(url: &str) -> ConnectionConfig {
    let mut c = ConnectionConfig::new([url]);
    c.timeout_ms = 20_000;
    c.retry.initial_backoff = std::time::Duration::from_millis(10);
    c.retry.max_backoff = std::time::Duration::from_millis(200);
    c.retry.max_attempts = 20;
    c
}

/// A client of the test run's search engine.
pub async fn client() -> EsClient {
    EsClient::connect(&conn(&engine().url()))
        .await
        .expect("connect to the search engine")
}

/// Sends a request to the search engine and panics on an error status.
pub fn os(method: &str, path: &str, body: Option<&str>) -> Json {
    let r = engine().request(method, path, body);
    assert!(r.status < 300, "{method} {path}: {} {}", r.status, r.body);
    if r.body.is_empty() {
        Json::Null
    } else {
        r.json()
    }
}

/// Indexes documents (id, source) with refresh.
pub fn load(index: &str, docs: &[(String, Json)]) {
    for chunk in docs.chunks(500) {
        let mut body = String::new();
        for (id, d) in chunk {
            body.push_str(&serde_json::json!({"index": {"_index": index, "_id": id}}).to_string());
            body.push('\n');
            body.push_str(&d.to_string());
            body.push('\n');
        }
        let r = os("POST", "/_bulk?refresh=true", Some(&body));
        assert_eq!(
            r["errors"],
            false,
            "{}",
            &r.to_string()[..r.to_string().len().min(600)]
        );
    }
}

/// Every document of an index: id -> _source (a scroll in index order: the test engine, like
/// Elasticsearch 8, refuses to sort on `_id`).
pub fn all_docs(index: &str) -> BTreeMap<String, Json> {
    os("POST", &format!("/{index}/_refresh"), None);
    let mut out = BTreeMap::new();
    let body = serde_json::json!({"size": 1000, "sort": ["_doc"]}).to_string();
    let mut r = os("POST", &format!("/{index}/_search?scroll=1m"), Some(&body));
    loop {
        let hits = r["hits"]["hits"].as_array().cloned().unwrap_or_default();
        let scroll_id = r["_scroll_id"].as_str().unwrap_or_default().to_string();
        if hits.is_empty() {
            let clear = serde_json::json!({"scroll_id": [scroll_id]}).to_string();
            engine().request("DELETE", "/_search/scroll", Some(&clear));
            return out;
        }
        for h in &hits {
            out.insert(h["_id"].as_str().unwrap().to_string(), h["_source"].clone());
        }
        let next = serde_json::json!({"scroll": "1m", "scroll_id": scroll_id}).to_string();
        r = os("POST", "/_search/scroll", Some(&next));
    }
}

/// The document count of an index.
pub fn count(index: &str) -> u64 {
    os("POST", &format!("/{index}/_refresh"), None);
    os("GET", &format!("/{index}/_count"), None)["count"]
        .as_u64()
        .unwrap()
}

/// Ids of every open point-in-time on the server (OpenSearch lists them; Elasticsearch has no
/// such API, so there the list is empty and tests rely on the source's own history).
pub fn open_pits() -> Vec<String> {
    if engine().flavor() == datatrace_testkit::EngineFlavor::Elasticsearch {
        return Vec::new();
    }
    let r = os("GET", "/_search/point_in_time/_all", None);
    r["pits"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p["pit_id"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}
