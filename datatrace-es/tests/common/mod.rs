//! Helpers shared by the integration tests (all against osmem-server).
#![allow(dead_code)]

use std::collections::BTreeMap;

use datatrace_es::{ConnectionConfig, EsClient};
use datatrace_testkit::osmem;
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

/// A client of the shared osmem-server.
pub async fn client() -> EsClient {
    EsClient::connect(&conn(&osmem().url()))
        .await
        .expect("connect to osmem")
}

/// Sends a request to osmem and panics on an error status.
pub fn os(method: &str, path: &str, body: Option<&str>) -> Json {
    let r = osmem().request(method, path, body);
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

/// Every document of an index: id -> _source.
pub fn all_docs(index: &str) -> BTreeMap<String, Json> {
    os("POST", &format!("/{index}/_refresh"), None);
    let mut out = BTreeMap::new();
    let mut after: Option<Json> = None;
    loop {
        let mut body = serde_json::json!({"size": 1000, "sort": [{"_id": "asc"}]});
        if let Some(a) = &after {
            body["search_after"] = a.clone();
        }
        let r = os(
            "POST",
            &format!("/{index}/_search"),
            Some(&body.to_string()),
        );
        let hits = r["hits"]["hits"].as_array().cloned().unwrap_or_default();
        if hits.is_empty() {
            return out;
        }
        for h in &hits {
            out.insert(h["_id"].as_str().unwrap().to_string(), h["_source"].clone());
        }
        after = hits.last().map(|h| h["sort"].clone());
    }
}

/// The document count of an index.
pub fn count(index: &str) -> u64 {
    os("POST", &format!("/{index}/_refresh"), None);
    os("GET", &format!("/{index}/_count"), None)["count"]
        .as_u64()
        .unwrap()
}

/// Ids of every open point-in-time on the server.
pub fn open_pits() -> Vec<String> {
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
