//! Index administration for the sink: creating indices with mappings and settings, and the
//! bulk-load settings (`refresh_interval: -1`, `number_of_replicas: 0`) with their restore.
//!
//! The values to restore are also written into the index's `_meta.datatrace_restore`, so a
//! load that crashed and is resumed still restores what the index had before the first run.

use bytes::Bytes;
use datatrace_core::Schema;
use elasticsearch::http::Method;
use serde_json::{json, Map, Value as Json};

use crate::client::{encode_path, EsClient};
use crate::config::{IndexSettings, MappingConfig};
use crate::errors::EsError;
use crate::mapping::schema_to_mapping_with_ids;

/// The settings body for a new index.
pub fn settings_body(s: &IndexSettings) -> Json {
    let mut index = Map::new();
    if let Some(n) = s.shards {
        index.insert("number_of_shards".into(), json!(n));
    }
    if let Some(n) = s.replicas {
        index.insert("number_of_replicas".into(), json!(n));
    }
    for (k, v) in &s.extra {
        index.insert(k.trim_start_matches("index.").to_string(), v.clone());
    }
    json!({ "index": index })
}

/// Creates `index` with the mapping derived from `schema` unless it exists. Returns whether
/// it created it. A concurrent creation by someone else counts as existing.
pub async fn ensure_index(
    client: &EsClient,
    index: &str,
    schema: Option<&Schema>,
    mapping: &MappingConfig,
    settings: &IndexSettings,
    id_separator: &str,
) -> Result<bool, EsError> {
    if client.index_exists(index).await? {
        return Ok(false);
    }
    let mut body = json!({ "settings": settings_body(settings) });
    if let Some(s) = schema {
        body["mappings"] = schema_to_mapping_with_ids(s, mapping, client.info(), id_separator)?;
    }
    let context = format!("creating index {index}");
    let path = format!("/{}", encode_path(index));
    let bytes = Bytes::from(serde_json::to_vec(&body).unwrap_or_default());
    let r = client
        .request_retry(&context, Method::Put, &path, &[], Some(bytes))
        .await?;
    if r.is_success() {
        tracing::info!(index, "created index");
        return Ok(true);
    }
    let err = client.status_error(&r, &context, None);
    if err
        .to_string()
        .contains("resource_already_exists_exception")
    {
        return Ok(false);
    }
    if let EsError::Http { reason, .. } = &err {
        if reason.contains("mapper_parsing_exception") || reason.contains("mapping") {
            return Err(EsError::Mapping {
                index: index.into(),
                reason: reason.clone(),
            });
        }
    }
    Err(err)
}

/// The settings a bulk load changes, as they were before.
#[derive(Debug, Clone, PartialEq)]
pub struct Restore {
    /// The index.
    pub index: String,
    /// `index.refresh_interval` before the load (`Null`: unset, i.e. the default).
    pub refresh_interval: Json,
    /// `index.number_of_replicas` before the load.
    pub number_of_replicas: Json,
}

async fn get_settings(client: &EsClient, index: &str) -> Result<Map<String, Json>, EsError> {
    let path = format!("/{}/_settings", encode_path(index));
    let v = client
        .json(
            &format!("reading the settings of index {index}"),
            Method::Get,
            &path,
            &[("flat_settings", "true")],
            None,
            Some(index),
        )
        .await?;
    Ok(v.as_object()
        .and_then(|m| m.values().next())
        .and_then(|i| i.get("settings"))
        .and_then(|s| s.as_object())
        .cloned()
        .unwrap_or_default())
}

async fn put_settings(client: &EsClient, index: &str, body: Json) -> Result<(), EsError> {
    let path = format!("/{}/_settings", encode_path(index));
    client
        .json(
            &format!("changing the settings of index {index}"),
            Method::Put,
            &path,
            &[],
            Some(&body),
            Some(index),
        )
        .await
        .map(|_| ())
}

async fn get_meta(client: &EsClient, index: &str) -> Result<Map<String, Json>, EsError> {
    let m = client.get_mapping(index).await?;
    Ok(m.as_object()
        .and_then(|m| m.values().next())
        .and_then(|i| i.pointer("/mappings/_meta"))
        .and_then(|s| s.as_object())
        .cloned()
        .unwrap_or_default())
}

async fn put_meta(client: &EsClient, index: &str, meta: Map<String, Json>) -> Result<(), EsError> {
    let path = format!("/{}/_mapping", encode_path(index));
    client
        .json(
            &format!("updating _meta of index {index}"),
            Method::Put,
            &path,
            &[],
            Some(&json!({ "_meta": meta })),
            Some(index),
        )
        .await
        .map(|_| ())
}

/// Switches `index` to bulk-load settings and returns what to restore. The previous values
/// are kept in `_meta.datatrace_restore` (or read from there when an earlier, interrupted
/// load already switched them).
pub async fn start_bulk_load(client: &EsClient, index: &str) -> Result<Restore, EsError> {
    let mut meta = get_meta(client, index).await?;
    let restore = match meta.get("datatrace_restore") {
        Some(saved) => Restore {
            index: index.into(),
            refresh_interval: saved.get("refresh_interval").cloned().unwrap_or(Json::Null),
            number_of_replicas: saved
                .get("number_of_replicas")
                .cloned()
                .unwrap_or(Json::Null),
        },
        None => {
            let s = get_settings(client, index).await?;
            let r = Restore {
                index: index.into(),
                refresh_interval: s
                    .get("index.refresh_interval")
                    .cloned()
                    .unwrap_or(Json::Null),
                number_of_replicas: s
                    .get("index.number_of_replicas")
                    .cloned()
                    .unwrap_or(Json::Null),
            };
            meta.insert(
                "datatrace_restore".into(),
                json!({"refresh_interval": r.refresh_interval, "number_of_replicas": r.number_of_replicas}),
            );
            put_meta(client, index, meta).await?;
            r
        }
    };
    put_settings(
        client,
        index,
        json!({"index": {"refresh_interval": "-1", "number_of_replicas": 0}}),
    )
    .await?;
    tracing::info!(
        index,
        "bulk-load settings on (refresh_interval -1, replicas 0)"
    );
    Ok(restore)
}

/// Restores the settings a bulk load changed, refreshes the index, and removes the saved
/// values from `_meta`.
pub async fn finish_bulk_load(client: &EsClient, r: &Restore) -> Result<(), EsError> {
    let replicas = if r.number_of_replicas.is_null() {
        json!(1)
    } else {
        r.number_of_replicas.clone()
    };
    put_settings(
        client,
        &r.index,
        json!({"index": {"refresh_interval": r.refresh_interval, "number_of_replicas": replicas}}),
    )
    .await?;
    let mut meta = get_meta(client, &r.index).await?;
    if meta.remove("datatrace_restore").is_some() {
        put_meta(client, &r.index, meta).await?;
    }
    refresh(client, &r.index).await?;
    tracing::info!(index = %r.index, "bulk-load settings restored");
    Ok(())
}

/// `POST index/_refresh`.
pub async fn refresh(client: &EsClient, index: &str) -> Result<(), EsError> {
    let path = format!("/{}/_refresh", encode_path(index));
    client
        .json(
            &format!("refreshing index {index}"),
            Method::Post,
            &path,
            &[],
            None,
            Some(index),
        )
        .await
        .map(|_| ())
}

/// `POST index/_refresh`, for the by-query operations (`_delete_by_query`, `_reindex`): they
/// read through a searcher, which sees only refreshed documents, so without it the documents
/// the sink wrote since the last refresh would be left behind (a truncate keeping rows, a
/// rename losing them). Returns false when the index does not exist.
async fn refresh_for_query(client: &EsClient, index: &str, context: &str) -> Result<bool, EsError> {
    let context = format!("{context}: refreshing index {index}");
    let path = format!("/{}/_refresh", encode_path(index));
    let r = client
        .request_retry(&context, Method::Post, &path, &[], None)
        .await?;
    if index_missing(&r) {
        return Ok(false);
    }
    client.check(r, &context)?;
    Ok(true)
}

/// Whether an answer is a 404 for a missing index (not a missing document or endpoint).
fn index_missing(r: &crate::client::RawResponse) -> bool {
    r.status == 404 && crate::errors::error_reason(&r.body).contains("index_not_found")
}

/// The counters of a `_delete_by_query` or `_reindex` answer, or an error naming its first
/// failure.
fn by_query_result(context: &str, body: &[u8]) -> Result<Json, EsError> {
    let v: Json = serde_json::from_slice(body).map_err(|e| EsError::Protocol {
        context: context.to_string(),
        reason: format!("not JSON: {e}"),
    })?;
    if let Some(first) = v
        .get("failures")
        .and_then(|f| f.as_array())
        .and_then(|f| f.first())
    {
        let reason = first
            .get("cause")
            .map(crate::errors::describe_error)
            .unwrap_or_else(|| first.to_string());
        let status = first
            .get("status")
            .and_then(|s| s.as_u64())
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(500);
        return Err(EsError::Http {
            context: context.to_string(),
            status,
            reason,
        });
    }
    if v.get("timed_out").and_then(|t| t.as_bool()) == Some(true) {
        return Err(EsError::Http {
            context: context.to_string(),
            status: 504,
            reason: "the request timed out on the cluster".into(),
        });
    }
    Ok(v)
}

/// `TRUNCATE`: deletes every document of `index` (`_delete_by_query` with `match_all`,
/// `conflicts=proceed`, `refresh=true`) and keeps its mappings and settings. Returns how
/// many documents were deleted, `None` when the index does not exist (nothing to do).
pub async fn truncate_index(
    client: &EsClient,
    index: &str,
    context: &str,
) -> Result<Option<u64>, EsError> {
    if !refresh_for_query(client, index, context).await? {
        return Ok(None);
    }
    let context = format!("{context}: deleting every document of index {index}");
    let path = format!("/{}/_delete_by_query", encode_path(index));
    let body = Bytes::from_static(br#"{"query":{"match_all":{}}}"#);
    let r = client
        .request_retry(
            &context,
            Method::Post,
            &path,
            &[
                ("conflicts", "proceed"),
                ("refresh", "true"),
                ("wait_for_completion", "true"),
            ],
            Some(body),
        )
        .await?;
    if index_missing(&r) {
        return Ok(None);
    }
    let r = client.check(r, &context)?;
    let v = by_query_result(&context, &r.body)?;
    Ok(Some(v.get("deleted").and_then(|d| d.as_u64()).unwrap_or(0)))
}

/// `DROP TABLE`: deletes `index`. Returns whether it existed (a missing index is already
/// dropped).
pub async fn drop_index(client: &EsClient, index: &str, context: &str) -> Result<bool, EsError> {
    let context = format!("{context}: deleting index {index}");
    let path = format!("/{}", encode_path(index));
    let r = client
        .request_retry(&context, Method::Delete, &path, &[], None)
        .await?;
    if index_missing(&r) {
        return Ok(false);
    }
    client.check(r, &context)?;
    Ok(true)
}

/// Index settings that belong to one index and cannot be given to a new one.
fn copyable_setting(key: &str) -> bool {
    const SKIP: [&str; 12] = [
        "index.creation_date",
        "index.uuid",
        "index.version.",
        "index.provided_name",
        "index.history.uuid",
        "index.resize.",
        "index.routing.allocation.initial_recovery.",
        "index.blocks.",
        "index.verified_before_close",
        "index.frozen",
        "index.shrink.",
        "index.search.throttled",
    ];
    !SKIP
        .iter()
        .any(|s| key == *s || (s.ends_with('.') && key.starts_with(s)))
}

/// What [`rename_index`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renamed {
    /// The documents were copied into the new index and the old index deleted.
    Moved {
        /// Documents copied.
        documents: u64,
    },
    /// The old index is gone and the new one exists: an earlier run did it.
    AlreadyDone,
    /// Neither index exists: no document was ever written under either name.
    NothingToDo,
}

/// `RENAME TABLE`: moves the documents of index `from` into index `to` and deletes `from`.
///
/// `to` is created, unless it exists, with the mappings and settings of `from` (without
/// the settings that belong to one index: uuid, creation date, version, blocks); the
/// documents are copied with `_reindex` (`conflicts: proceed`, keeping external versions
/// when `external_versions`), then `from` is deleted. Each step can be redone, so a rename
/// interrupted anywhere is finished by applying it again: `from` missing and `to` present
/// means done.
pub async fn rename_index(
    client: &EsClient,
    from: &str,
    to: &str,
    external_versions: bool,
    context: &str,
) -> Result<Renamed, EsError> {
    let from_exists = client.index_exists(from).await?;
    let to_exists = client.index_exists(to).await?;
    match (from_exists, to_exists) {
        (false, true) => return Ok(Renamed::AlreadyDone),
        (false, false) => return Ok(Renamed::NothingToDo),
        _ => {}
    }
    if !to_exists {
        let settings: Map<String, Json> = get_settings(client, from)
            .await?
            .into_iter()
            .filter(|(k, _)| copyable_setting(k))
            .collect();
        let mappings = client
            .get_mapping(from)
            .await?
            .as_object()
            .and_then(|m| m.values().next())
            .and_then(|i| i.get("mappings"))
            .cloned()
            .unwrap_or_else(|| json!({}));
        let create = format!("{context}: creating index {to} like index {from}");
        let body = json!({ "settings": settings, "mappings": mappings });
        let r = client
            .request_retry(
                &create,
                Method::Put,
                &format!("/{}", encode_path(to)),
                &[],
                Some(Bytes::from(serde_json::to_vec(&body).unwrap_or_default())),
            )
            .await?;
        if !r.is_success() {
            let err = client.status_error(&r, &create, None);
            if !err
                .to_string()
                .contains("resource_already_exists_exception")
            {
                return Err(err);
            }
        }
    }
    refresh_for_query(client, from, context).await?;
    let copy = format!("{context}: copying the documents of index {from} into index {to}");
    let mut dest = json!({ "index": to });
    if external_versions {
        dest["version_type"] = json!("external");
    }
    let body = json!({ "conflicts": "proceed", "source": { "index": from }, "dest": dest });
    let r = client
        .request_retry(
            &copy,
            Method::Post,
            "/_reindex",
            &[("refresh", "true"), ("wait_for_completion", "true")],
            Some(Bytes::from(serde_json::to_vec(&body).unwrap_or_default())),
        )
        .await?;
    let documents = if index_missing(&r) {
        // Deleted by someone else in between: the documents are gone with it.
        0
    } else {
        let r = client.check(r, &copy)?;
        let v = by_query_result(&copy, &r.body)?;
        v.get("total").and_then(|d| d.as_u64()).unwrap_or(0)
    };
    drop_index(client, from, context).await?;
    Ok(Renamed::Moved { documents })
}
