//! The index side of a check: documents by id (across every shard, whatever their routing),
//! every document of a kind a page at a time (scroll), and document ids back to top keys.

use datatrace_core::Value;
use datatrace_es::{EsClient, EsError};
use datatrace_mysql::types::ColumnKind;
use elasticsearch::http::Method;
use serde_json::{json, Value as Json};

use crate::definition::Definition;

/// One document found in the index.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// `_id`.
    pub id: String,
    /// `_routing`.
    pub routing: Option<String>,
    /// `_version` (the external version it was written with).
    pub version: u64,
    /// `_source`.
    pub source: Json,
}

fn hits(answer: &Json) -> Vec<Hit> {
    answer["hits"]["hits"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|h| Hit {
                    id: h["_id"].as_str().unwrap_or_default().to_string(),
                    routing: h["_routing"].as_str().map(str::to_string),
                    version: h["_version"].as_u64().unwrap_or(0),
                    source: h["_source"].clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Makes recent writes visible to searches; `false` when the index does not exist.
pub async fn refresh(client: &EsClient, index: &str) -> Result<bool, EsError> {
    if !client.index_exists(index).await? {
        return Ok(false);
    }
    let path = format!("/{}/_refresh", datatrace_es::encode_path(index));
    client
        .json(
            "refreshing the index",
            Method::Post,
            &path,
            &[],
            None,
            Some(index),
        )
        .await?;
    Ok(true)
}

/// The documents with these ids, on every shard (a stale copy on another routing shows up
/// as a second hit of the same id).
pub async fn by_ids(client: &EsClient, index: &str, ids: &[String]) -> Result<Vec<Hit>, EsError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let body = json!({
        "size": ids.len() * 2 + 10,
        "version": true,
        "query": {"ids": {"values": ids}},
    });
    let path = format!("/{}/_search", datatrace_es::encode_path(index));
    let answer = client
        .json(
            "reading documents by id",
            Method::Post,
            &path,
            &[],
            Some(&body),
            Some(index),
        )
        .await?;
    Ok(hits(&answer))
}

/// Every document of an index (only those whose join field names a kind, when asked), a
/// page at a time.
pub struct Scroll<'a> {
    client: &'a EsClient,
    index: &'a str,
    id: Option<String>,
    first: Option<Json>,
    done: bool,
}

impl<'a> Scroll<'a> {
    /// Starts scrolling `index`; `kind` is `(join field, kind name)`.
    pub async fn start(
        client: &'a EsClient,
        index: &'a str,
        kind: Option<(&str, &str)>,
        page: usize,
    ) -> Result<Scroll<'a>, EsError> {
        let query = match kind {
            Some((field, name)) => json!({"term": {field: name}}),
            None => json!({"match_all": {}}),
        };
        let body = json!({"size": page, "version": true, "sort": ["_doc"], "query": query});
        let path = format!("/{}/_search", datatrace_es::encode_path(index));
        let answer = client
            .json(
                "scanning the index",
                Method::Post,
                &path,
                &[("scroll", "2m")],
                Some(&body),
                Some(index),
            )
            .await?;
        Ok(Scroll {
            client,
            index,
            id: answer["_scroll_id"].as_str().map(str::to_string),
            first: Some(answer),
            done: false,
        })
    }

    /// The next page, or `None` at the end (the scroll is then closed).
    pub async fn next_page(&mut self) -> Result<Option<Vec<Hit>>, EsError> {
        if self.done {
            return Ok(None);
        }
        let answer = match self.first.take() {
            Some(a) => a,
            None => {
                let Some(id) = self.id.clone() else {
                    self.done = true;
                    return Ok(None);
                };
                let body = json!({"scroll": "2m", "scroll_id": id});
                let a = self
                    .client
                    .json(
                        "scanning the index",
                        Method::Post,
                        "/_search/scroll",
                        &[],
                        Some(&body),
                        Some(self.index),
                    )
                    .await?;
                if let Some(next) = a["_scroll_id"].as_str() {
                    self.id = Some(next.to_string());
                }
                a
            }
        };
        let page = hits(&answer);
        if page.is_empty() {
            self.done = true;
            if let Some(id) = self.id.take() {
                let body = json!({"scroll_id": [id]});
                let _ = self
                    .client
                    .json(
                        "closing a scroll",
                        Method::Delete,
                        "/_search/scroll",
                        &[],
                        Some(&body),
                        None,
                    )
                    .await;
            }
            return Ok(None);
        }
        Ok(Some(page))
    }
}

/// The top key of a kind's document id, or `None` when the id is not one of its ids.
/// Composite keys split at the id separator; a key value containing the separator makes
/// the id ambiguous (it is then not recognized, and reported as extra).
pub fn key_of(def: &Definition, kind: usize, id: &str) -> Option<Vec<Value>> {
    let k = &def.kinds[kind];
    let rest = match &k.id_prefix {
        Some(p) => id.strip_prefix(p.as_str())?,
        None => id,
    };
    let top = &def.nodes[k.top];
    let n = top.key().len();
    let parts: Vec<&str> = if n == 1 {
        vec![rest]
    } else {
        rest.splitn(n, def.shape.id_separator.as_str()).collect()
    };
    if parts.len() != n {
        return None;
    }
    top.key()
        .iter()
        .zip(parts)
        .map(|(&c, text)| parse(top.table.kinds[c], text))
        .collect()
}

fn parse(kind: ColumnKind, text: &str) -> Option<Value> {
    Some(match kind {
        ColumnKind::Int { unsigned: false } | ColumnKind::Year => Value::Int(text.parse().ok()?),
        ColumnKind::Int { unsigned: true } => Value::UInt(text.parse().ok()?),
        ColumnKind::Decimal { .. } => Value::Decimal(text.parse().ok()?),
        ColumnKind::Date => Value::Date(text.parse().ok()?),
        ColumnKind::DateTime => Value::DateTime(text.parse().ok()?),
        _ => Value::String(text.to_string()),
    })
}
