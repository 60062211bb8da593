//! Documents read as the engine stores them: `_id` and the `_source` text, parsed with every
//! number exact (`float_roundtrip`).

use std::collections::BTreeMap;

use datatrace_testkit::engine;
use serde_json::Value as Json;

/// Every document of `index` (at most 10,000): id -> `_source`.
pub fn read(index: &str) -> BTreeMap<String, Json> {
    let engine = engine();
    let r = engine.request("POST", &format!("/{index}/_refresh"), None);
    assert!(r.status < 300, "refresh {index}: {}", r.body);
    let r = engine.request(
        "POST",
        &format!("/{index}/_search"),
        Some(r#"{"size": 10000, "query": {"match_all": {}}}"#),
    );
    assert!(r.status < 300, "search {index}: {}", r.body);
    let answer: Json = serde_json::from_str(&r.body).expect("a search answer");
    answer["hits"]["hits"]
        .as_array()
        .map(|hits| {
            hits.iter()
                .map(|h| {
                    (
                        h["_id"].as_str().unwrap_or_default().to_string(),
                        h["_source"].clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The number of documents of `index`.
pub fn count(index: &str) -> u64 {
    let engine = engine();
    engine.request("POST", &format!("/{index}/_refresh"), None);
    let r = engine.request("GET", &format!("/{index}/_count"), None);
    r.json()["count"].as_u64().unwrap_or(u64::MAX)
}
