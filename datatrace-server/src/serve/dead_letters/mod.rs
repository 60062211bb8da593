//! Dead letters in the server: the records a task's target (or a transform) rejected,
//! kept per task in the metadata store ([`queue::DbDeadLetterQueue`], one entry per key
//! with a count), listed and filtered, inspected with their values and error, replayed
//! through the task's target or discarded ([`replay`]), and removed once decided and past
//! `--dead-letter-days`. Viewers read them, operators replay and discard; the records may
//! hold user data, so they never go to a log.

pub mod queue;
pub mod replay;

use axum::extract::State;
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::auth::Principal;
use super::http::{ApiError, Id, PathParams, QueryParams};
use super::sql_store::dead_letters::{DeadLetterCounts, DeadLetterFilter, DeadLetterRow, STATES};
use super::AppState;
use datatrace_core::{DeadLetter, Timestamp};
use replay::Outcomes;

type ApiResult<T> = Result<T, ApiError>;

/// `?unit=&q=&state=&since=&until=&before=&limit=` of the dead-letter routes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeadLetterQuery {
    /// One unit (table or index).
    #[serde(default)]
    pub unit: Option<String>,
    /// Only those whose error or key contains this text (case-insensitive).
    #[serde(default)]
    pub q: Option<String>,
    /// `new`, `replayed` or `discarded` (listing only; replay and discard take `new` ones).
    #[serde(default)]
    pub state: Option<String>,
    /// Last rejected at or after this instant (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    /// Last rejected before this instant (RFC 3339).
    #[serde(default)]
    pub until: Option<String>,
    /// Only ids below this (the next page).
    #[serde(default)]
    pub before: Option<i64>,
    /// At most this many (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<u32>,
}

fn instant(field: &str, v: Option<&str>) -> ApiResult<Option<i64>> {
    v.filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<Timestamp>()
                .map(|t| t.as_unix_micros())
                .map_err(|_| {
                    ApiError::bad(
                        field,
                        "expected an RFC 3339 instant such as 2026-12-07T10:00:00Z",
                    )
                })
        })
        .transpose()
}

impl DeadLetterQuery {
    /// The store's filter.
    pub fn filter(&self) -> ApiResult<DeadLetterFilter> {
        if let Some(s) = self.state.as_deref().filter(|s| !s.is_empty()) {
            if !STATES.contains(&s) {
                return Err(ApiError::bad(
                    "state",
                    format!("unknown state {s:?}, expected new, replayed or discarded"),
                ));
            }
        }
        let text = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(200).collect::<String>())
        };
        Ok(DeadLetterFilter {
            unit: text(&self.unit),
            search: text(&self.q),
            state: text(&self.state),
            since_us: instant("since", self.since.as_deref())?,
            until_us: instant("until", self.until.as_deref())?,
            before: self.before,
            after: None,
            limit: self.limit.unwrap_or(50).clamp(1, 500),
        })
    }
}

/// A page of dead letters, newest first.
#[derive(Debug, Serialize)]
pub struct DeadLetterPage {
    /// The entries (without their records).
    pub dead_letters: Vec<DeadLetterRow>,
    /// `before` for the next page, when there may be one.
    pub next_before: Option<i64>,
    /// How many pass the filter.
    pub total: u64,
    /// The task's dead letters per state.
    pub counts: DeadLetterCounts,
}

async fn task_exists(app: &AppState, id: i64) -> ApiResult<()> {
    app.store()
        .task(id)
        .await?
        .map(|_| ())
        .ok_or_else(|| ApiError::not_found(format!("task {id}")))
}

/// `GET /api/tasks/{id}/dead-letters`
pub async fn list(
    State(app): State<AppState>,
    Id(id): Id,
    QueryParams(q): QueryParams<DeadLetterQuery>,
) -> ApiResult<Json<DeadLetterPage>> {
    task_exists(&app, id).await?;
    let filter = q.filter()?;
    let rows = app.store().dead_letters(id, &filter).await?;
    let next_before = (rows.len() as u32 == filter.limit)
        .then(|| rows.last().map(|r| r.id))
        .flatten();
    Ok(Json(DeadLetterPage {
        total: app.store().count_dead_letters(id, &filter).await?,
        counts: app.store().dead_letter_counts(id).await?,
        dead_letters: rows,
        next_before,
    }))
}

/// A record's fields for display: name, type and value as text.
fn fields(e: &DeadLetter) -> Value {
    let cols = e.record.schema.columns();
    let key = e.record.schema.primary_key();
    Value::Array(
        e.record
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let c = cols.get(i);
                json!({
                    "name": c.map(|c| c.name.clone()).unwrap_or_else(|| format!("#{i}")),
                    "type": c.map(|c| c.native_type.clone().unwrap_or_else(|| format!("{:?}", c.data_type).to_lowercase())),
                    "key": key.contains(&i),
                    "null": matches!(v, datatrace_core::value::Value::Null),
                    "value": v.to_string(),
                })
            })
            .collect(),
    )
}

/// `GET /api/tasks/{id}/dead-letters/{letter}`: one entry with its error and the record's
/// values.
pub async fn inspect(
    State(app): State<AppState>,
    PathParams((id, letter)): PathParams<(i64, i64)>,
) -> ApiResult<Json<Value>> {
    task_exists(&app, id).await?;
    let (row, entry) = app
        .store()
        .dead_letter(id, letter)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("dead letter {letter} of task {id}")))?;
    let e: DeadLetter = serde_json::from_str(&entry).map_err(|e| {
        ApiError::internal(format!("dead letter {letter} cannot be read back: {e}"))
    })?;
    let mut v = serde_json::to_value(&row).map_err(|e| ApiError::internal(e.to_string()))?;
    v["record"] = json!({
        "op": e.record.op,
        "table": e.record.schema.name(),
        "target": e.record.target.as_deref(),
        "fields": fields(&e),
        "before": e.record.before.as_ref().map(|b| b.iter().map(|x| x.to_string()).collect::<Vec<_>>()),
    });
    Ok(Json(v))
}

async fn one_new(app: &AppState, id: i64, letter: i64) -> ApiResult<()> {
    task_exists(app, id).await?;
    let (row, _) = app
        .store()
        .dead_letter(id, letter)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("dead letter {letter} of task {id}")))?;
    if row.state != "new" {
        return Err(ApiError::conflict(format!(
            "dead letter {letter} is {} already",
            row.state
        )));
    }
    Ok(())
}

/// `POST /api/tasks/{id}/dead-letters/{letter}/replay`
pub async fn replay_one(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    PathParams((id, letter)): PathParams<(i64, i64)>,
) -> ApiResult<Json<Outcomes>> {
    one_new(&app, id, letter).await?;
    Ok(Json(replay::replay(&app, id, &[letter], &p.actor()).await?))
}

/// `POST /api/tasks/{id}/dead-letters/{letter}/discard`
pub async fn discard_one(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    PathParams((id, letter)): PathParams<(i64, i64)>,
) -> ApiResult<Json<Outcomes>> {
    one_new(&app, id, letter).await?;
    let done = app
        .store()
        .set_dead_letter_state(id, &[letter], "discarded", &p.actor())
        .await?;
    Ok(Json(Outcomes { done, refused: 0 }))
}

/// The `new` entries a bulk action applies to (`state` may only be `new`).
async fn selected(app: &AppState, id: i64, q: &DeadLetterQuery) -> ApiResult<Vec<i64>> {
    task_exists(app, id).await?;
    if q.state
        .as_deref()
        .is_some_and(|s| !s.is_empty() && s != "new")
    {
        return Err(ApiError::bad(
            "state",
            "only new dead letters are replayed or discarded",
        ));
    }
    if q.before.is_some() || q.limit.is_some() {
        return Err(ApiError::bad(
            if q.before.is_some() {
                "before"
            } else {
                "limit"
            },
            "a bulk action takes every matching entry: filter with unit, q, since and until",
        ));
    }
    replay::new_ids(app, id, &q.filter()?).await
}

/// `POST /api/tasks/{id}/dead-letters/replay?unit=&q=&since=&until=`: every matching
/// `new` entry.
pub async fn replay_all(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    Id(id): Id,
    QueryParams(q): QueryParams<DeadLetterQuery>,
) -> ApiResult<Json<Outcomes>> {
    let ids = selected(&app, id, &q).await?;
    Ok(Json(replay::replay(&app, id, &ids, &p.actor()).await?))
}

/// `POST /api/tasks/{id}/dead-letters/discard?unit=&q=&since=&until=`: every matching
/// `new` entry.
pub async fn discard_all(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    Id(id): Id,
    QueryParams(q): QueryParams<DeadLetterQuery>,
) -> ApiResult<Json<Outcomes>> {
    let ids = selected(&app, id, &q).await?;
    let done = app
        .store()
        .set_dead_letter_state(id, &ids, "discarded", &p.actor())
        .await?;
    Ok(Json(Outcomes { done, refused: 0 }))
}
