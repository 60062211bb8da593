//! Task configurations: a job file's shape where `source` and `target` name a data source
//! (`{"datasource": 3, "tables": ["shop.*"]}`), turned into a [`JobFile`] with the data
//! sources' connection keys (secrets decrypted in memory only).

use std::path::Path;

use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::checkpoints::job_name;
use super::crypto::MasterKey;
use super::datasources::connection;
use super::http::{parse_json, ApiError};
use super::sql_store::Store;
use crate::connectors::registry;
use crate::job_file::JobFile;

/// What a client sends to create or change a task.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskInput {
    /// A unique name.
    pub name: String,
    /// A free description.
    #[serde(default)]
    pub description: Option<String>,
    /// `full` (default), `incremental` (changes only) or `full+incremental` (the tables,
    /// then their changes with a gap-free handoff); the incremental modes need a source
    /// whose connector streams changes, and map to the `mode` values it names
    /// (MySQL: `cdc`, `snapshot+cdc`).
    #[serde(default)]
    pub mode: Mode,
    /// `{"datasource": ID, ...source keys}` (or an inline `generator`).
    pub source: Map<String, Value>,
    /// `{"datasource": ID, ...target keys}` (or an inline `discard`).
    pub target: Map<String, Value>,
    /// The core's built-in transforms, as in job files.
    #[serde(default)]
    pub transforms: Vec<Value>,
    /// Pipeline settings, as in job files (`concurrency`, `batch_size`, `error_policy`, ...).
    #[serde(default)]
    pub settings: Map<String, Value>,
}

/// How a task copies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
pub enum Mode {
    /// A one-off full copy.
    #[default]
    #[serde(rename = "full")]
    Full,
    /// Changes from the binlog only.
    #[serde(rename = "incremental")]
    Incremental,
    /// A full copy, then changes with a gap-free handoff.
    #[serde(rename = "full+incremental")]
    FullIncremental,
}

/// Connection keys that come from the data source only.
const CONNECTION_KEYS: &[&str] = &["type", "url", "urls", "username", "password", "api_key"];

/// Checks a task's configuration and builds its job file (`task-<id>`; `id` 0 to check a
/// new task). Errors name the field of the task (`source.tables[0]`, `settings.batch_size`).
pub async fn build(
    id: i64,
    config: &Value,
    store: &Store,
    key: &MasterKey,
    data_dir: &Path,
) -> Result<(TaskInput, JobFile), ApiError> {
    let input: TaskInput = parse_json(config.to_string().as_bytes())?;
    if input.name.trim().is_empty() {
        return Err(ApiError::bad("name", "the name must not be empty"));
    }
    if input.source.contains_key("mode") {
        return Err(ApiError::bad(
            "source.mode",
            "set the task's mode instead (full, incremental or full+incremental)",
        ));
    }
    let mut source = endpoint("source", &input.source, store, key).await?;
    if input.mode != Mode::Full {
        let reg = registry();
        let kind = source
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some((cdc, snapshot_cdc)) = reg.ui(kind).and_then(|u| u.stream_modes) else {
            let streaming: Vec<&str> = reg
                .uis()
                .into_iter()
                .filter(|u| u.stream_modes.is_some())
                .map(|u| u.label)
                .collect();
            return Err(ApiError::bad(
                "mode",
                format!(
                    "incremental modes read a change stream: they need a source that has one ({})",
                    streaming.join(", ")
                ),
            ));
        };
        let stream = if input.mode == Mode::Incremental {
            cdc
        } else {
            snapshot_cdc
        };
        source.insert("mode".into(), json!(stream));
    }
    let target = endpoint("target", &input.target, store, key).await?;
    let name = job_name(id);
    let job = json!({
        "name": name,
        "description": input.description,
        "source": source,
        "target": target,
        "transforms": input.transforms,
        "settings": input.settings,
        "checkpoints": { "dir": data_dir.join("checkpoints") },
        "dead_letters": { "path": data_dir.join("dead-letters").join(format!("{name}.ndjson")) },
    });
    let mut job = job;
    if input.description.is_none() {
        job.as_object_mut().map(|m| m.remove("description"));
    }
    let file = format!("task {:?}", input.name);
    let parsed = JobFile::parse(&file, &job.to_string(), Path::new(""), &|_| None)
        .map_err(|e| ApiError::bad(e.key.clone(), e.message))?;
    Ok((input, parsed))
}

/// One endpoint's job-file table: the data source's connection keys plus the task's keys.
async fn endpoint(
    at: &str,
    given: &Map<String, Value>,
    store: &Store,
    key: &MasterKey,
) -> Result<Map<String, Value>, ApiError> {
    let mut out = match given.get("datasource") {
        Some(v) => {
            let id = v.as_i64().ok_or_else(|| {
                ApiError::bad(
                    format!("{at}.datasource"),
                    "expected a data source id (a number)",
                )
            })?;
            let row = store.datasource(id).await?.ok_or_else(|| {
                ApiError::bad(
                    format!("{at}.datasource"),
                    format!("no data source with id {id}"),
                )
            })?;
            for k in given.keys() {
                if CONNECTION_KEYS.contains(&k.as_str()) {
                    return Err(ApiError::bad(
                        format!("{at}.{k}"),
                        "comes from the data source; change the data source instead",
                    ));
                }
            }
            connection(&row, key)?
        }
        None => {
            let kind = given
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let inline = registry().ui(kind).is_some_and(|u| !u.data_source);
            if !inline {
                return Err(ApiError::bad(
                    format!("{at}.datasource"),
                    "missing key \"datasource\" (the id of a data source)",
                ));
            }
            Map::new()
        }
    };
    for (k, v) in given {
        if k != "datasource" {
            out.insert(k.clone(), v.clone());
        }
    }
    Ok(out)
}
