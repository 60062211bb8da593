//! The REST handlers: data sources, tasks, their actions, units, logs and the SSE stream.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use axum::Json;
use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::datasources::{self, DataSourceInput, DataSourceView};
use super::http::{ApiError, Body};
use super::live::{Live, Overall, UnitLive};
use super::manager::StartKind;
use super::store::{LogRow, TaskRow};
use super::AppState;

type ApiResult<T> = Result<T, ApiError>;

fn scrubber(app: &AppState) -> impl Fn(&str) -> String + '_ {
    move |s: &str| app.scrub(s)
}

// ---- data sources ----

/// `GET /api/datasources`
pub async fn list_datasources(State(app): State<AppState>) -> ApiResult<Json<Vec<DataSourceView>>> {
    Ok(Json(
        app.store()
            .datasources()?
            .iter()
            .map(DataSourceView::from)
            .collect(),
    ))
}

/// `POST /api/datasources`
pub async fn create_datasource(
    State(app): State<AppState>,
    Body(input): Body<DataSourceInput>,
) -> ApiResult<impl IntoResponse> {
    let row = datasources::to_row(input, None, &app.key)?;
    let id = app.store().save_datasource(&row)?;
    app.remember_secrets()?;
    let row = app
        .store()
        .datasource(id)?
        .ok_or_else(|| ApiError::not_found("data source"))?;
    Ok((StatusCode::CREATED, Json(DataSourceView::from(&row))))
}

/// `GET /api/datasources/{id}`
pub async fn get_datasource(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<DataSourceView>> {
    let row = app
        .store()
        .datasource(id)?
        .ok_or_else(|| ApiError::not_found(format!("data source {id}")))?;
    Ok(Json(DataSourceView::from(&row)))
}

/// `PUT /api/datasources/{id}`
pub async fn update_datasource(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    Body(input): Body<DataSourceInput>,
) -> ApiResult<Json<DataSourceView>> {
    let old = app
        .store()
        .datasource(id)?
        .ok_or_else(|| ApiError::not_found(format!("data source {id}")))?;
    let row = datasources::to_row(input, Some(&old), &app.key)?;
    app.store().save_datasource(&row)?;
    app.remember_secrets()?;
    let row = app
        .store()
        .datasource(id)?
        .ok_or_else(|| ApiError::not_found("data source"))?;
    Ok(Json(DataSourceView::from(&row)))
}

/// `DELETE /api/datasources/{id}`
pub async fn delete_datasource(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let users = app.store().tasks_using(id)?;
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "data source {id} is used by task(s) {}; delete or change them first",
            users.join(", ")
        )));
    }
    if app.store().delete_datasource(id)? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("data source {id}")))
    }
}

/// `POST /api/datasources/{id}/test`
pub async fn test_datasource(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<datasources::TestResult>> {
    let row = app
        .store()
        .datasource(id)?
        .ok_or_else(|| ApiError::not_found(format!("data source {id}")))?;
    let scrub = scrubber(&app);
    Ok(Json(datasources::test(&row, &app.key, &scrub).await?))
}

/// `GET /api/datasources/{id}/units`: tables or indices, for the task wizard.
pub async fn datasource_units(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<String>>> {
    let row = app
        .store()
        .datasource(id)?
        .ok_or_else(|| ApiError::not_found(format!("data source {id}")))?;
    let scrub = scrubber(&app);
    Ok(Json(datasources::list_units(&row, &app.key, &scrub).await?))
}

// ---- tasks ----

/// A task as the API shows it.
#[derive(Debug, Serialize)]
pub struct TaskView {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// The configuration as given.
    pub config: Value,
    /// idle, queued, running, stopping, stopped, done, failed.
    pub status: String,
    /// The error that stopped it.
    pub error: Option<String>,
    /// Totals over its units.
    pub overall: Overall,
    /// Created.
    pub created_at: String,
    /// Changed.
    pub updated_at: String,
    /// Last start.
    pub started_at: Option<String>,
    /// Last end.
    pub finished_at: Option<String>,
}

fn task_view(app: &AppState, t: TaskRow) -> ApiResult<TaskView> {
    let hub = app.manager.hub(t.id)?;
    let (status, error, overall) =
        hub.with(|l: &mut Live| (l.status.clone(), l.error.clone(), l.overall()));
    Ok(TaskView {
        id: t.id,
        name: t.name,
        config: t.config,
        status,
        error,
        overall,
        created_at: t.created_at,
        updated_at: t.updated_at,
        started_at: t.started_at,
        finished_at: t.finished_at,
    })
}

/// `GET /api/tasks`
pub async fn list_tasks(State(app): State<AppState>) -> ApiResult<Json<Vec<TaskView>>> {
    let tasks = app.store().tasks()?;
    Ok(Json(
        tasks
            .into_iter()
            .map(|t| task_view(&app, t))
            .collect::<ApiResult<_>>()?,
    ))
}

/// `POST /api/tasks`
pub async fn create_task(
    State(app): State<AppState>,
    Body(config): Body<Value>,
) -> ApiResult<impl IntoResponse> {
    let (input, _) = app.manager.build(0, &config)?;
    let id = app.store().save_task(0, input.name.trim(), &config)?;
    let t = app
        .store()
        .task(id)?
        .ok_or_else(|| ApiError::not_found("task"))?;
    app.manager.log(Some(id), "system", "info", None, "created");
    Ok((StatusCode::CREATED, Json(task_view(&app, t)?)))
}

/// `GET /api/tasks/{id}`
pub async fn get_task(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<TaskView>> {
    let t = app
        .store()
        .task(id)?
        .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
    Ok(Json(task_view(&app, t)?))
}

/// `PUT /api/tasks/{id}`
pub async fn update_task(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    Body(config): Body<Value>,
) -> ApiResult<Json<TaskView>> {
    app.store()
        .task(id)?
        .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
    if app.manager.is_running(id) {
        return Err(ApiError::conflict("stop the task before changing it"));
    }
    let (input, _) = app.manager.build(id, &config)?;
    app.store().save_task(id, input.name.trim(), &config)?;
    let t = app
        .store()
        .task(id)?
        .ok_or_else(|| ApiError::not_found("task"))?;
    Ok(Json(task_view(&app, t)?))
}

/// `DELETE /api/tasks/{id}`
pub async fn delete_task(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    if app.manager.is_running(id) {
        return Err(ApiError::conflict("stop the task before deleting it"));
    }
    if app.store().delete_task(id)? {
        app.manager.forget(id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("task {id}")))
    }
}

async fn start_kind(
    app: &AppState,
    id: i64,
    kind: StartKind,
) -> ApiResult<(StatusCode, Json<Value>)> {
    app.manager.start(id, kind).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "started" }))))
}

/// `POST /api/tasks/{id}/start`: copies every unit afresh.
pub async fn start_task(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    start_kind(&app, id, StartKind::Fresh).await
}

/// `POST /api/tasks/{id}/resume`: continues from the checkpoints.
pub async fn resume_task(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    start_kind(&app, id, StartKind::Resume).await
}

/// `POST /api/tasks/{id}/retry`: runs the failed units again from their checkpoints.
pub async fn retry_task(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    start_kind(&app, id, StartKind::Retry).await
}

/// `POST /api/tasks/{id}/stop`
pub async fn stop_task(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<impl IntoResponse> {
    app.store()
        .task(id)?
        .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
    app.manager.stop(id)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "stopping" }))))
}

/// `GET /api/tasks/{id}/units`
pub async fn task_units(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<UnitLive>>> {
    let hub = app.manager.hub(id)?;
    Ok(Json(hub.with(|l| l.units.values().cloned().collect())))
}

/// `?category=&before=&limit=` of log queries.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// `realtime` (everything, the default), `error`, `system` or `progress`.
    #[serde(default)]
    pub category: Option<String>,
    /// Only lines with a smaller id (the next page).
    #[serde(default)]
    pub before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// A page of log lines, newest first.
#[derive(Debug, Serialize)]
pub struct LogPage {
    /// The lines.
    pub lines: Vec<LogRow>,
    /// `before` for the next page, when there may be one.
    pub next_before: Option<i64>,
}

fn logs(app: &AppState, task: Option<i64>, q: LogQuery) -> ApiResult<Json<LogPage>> {
    let category = match q.category.as_deref() {
        None | Some("realtime") | Some("all") | Some("") => None,
        Some(c @ ("error" | "system" | "progress")) => Some(c),
        Some(other) => {
            return Err(ApiError::bad(
                "category",
                format!("unknown category {other:?}, expected realtime, error or system"),
            ))
        }
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let lines = app.store().logs(task, category, q.before, limit)?;
    let next_before = (lines.len() as u32 == limit)
        .then(|| lines.last().map(|l| l.id))
        .flatten();
    Ok(Json(LogPage { lines, next_before }))
}

fn query<T: serde::de::DeserializeOwned>(raw: Option<String>) -> ApiResult<T> {
    let raw = raw.unwrap_or_default();
    serde_urlencoded_lite(&raw)
}

/// Parses a query string into `T` (numbers from text), naming the wrong parameter.
fn serde_urlencoded_lite<T: serde::de::DeserializeOwned>(raw: &str) -> ApiResult<T> {
    let mut m = serde_json::Map::new();
    for kv in raw.split('&').filter(|s| !s.is_empty()) {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        let v = match v.parse::<i64>() {
            Ok(n) => json!(n),
            Err(_) => json!(v),
        };
        m.insert(k.to_owned(), v);
    }
    super::http::parse_json(Value::Object(m).to_string().as_bytes())
}

/// `GET /api/tasks/{id}/logs?category=&before=&limit=`
pub async fn task_logs(
    State(app): State<AppState>,
    Path(id): Path<i64>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<LogPage>> {
    app.store()
        .task(id)?
        .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
    logs(&app, Some(id), query(raw)?)
}

/// `GET /api/logs?category=&before=&limit=`: the server's own lines.
pub async fn server_logs(
    State(app): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<LogPage>> {
    logs(&app, None, query(raw)?)
}

/// `GET /api/tasks/{id}/events`: SSE: a `snapshot`, then `progress` (at most one per
/// 250 ms), `unit`, `status` and `log` events.
pub async fn task_events(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let hub = app.manager.hub(id)?;
    let (first, mut rx) = hub.subscribe();
    let closing = app.manager.closing();
    let stream = async_stream(first, move |tx| async move {
        loop {
            let next = tokio::select! {
                m = rx.recv() => m,
                _ = closing.cancelled() => break,
            };
            match next {
                Ok(msg) => {
                    if tx.send(event(&msg)).await.is_err() {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    let (snap, _) = hub.subscribe();
                    if tx.send(event(&snap)).await.is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

fn event(msg: &super::live::Msg) -> Event {
    Event::default()
        .event(msg.name())
        .data(serde_json::to_string(msg).unwrap_or_default())
}

/// A stream fed by a spawned producer through a small channel.
fn async_stream<F, Fut>(
    first: super::live::Msg,
    produce: F,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    let first = event(&first);
    let _ = tx.try_send(first);
    tokio::spawn(produce(tx));
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}

/// `POST /api/tasks/{id}/verify`: compares the target with the source (`datatrace check`,
/// without repair) and returns the report.
pub async fn verify_task(
    State(app): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<crate::check::CheckReport>> {
    let t = app
        .store()
        .task(id)?
        .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
    if app.manager.is_running(id) {
        return Err(ApiError::conflict(
            "the task is running; verify it when it has stopped or finished",
        ));
    }
    let (_, job) = app.manager.build(id, &t.config)?;
    let opts = crate::check::CheckOptions::default();
    let report = crate::check::check_job(&job, &opts).await.map_err(|e| {
        let message = app.scrub(&job.scrub(&e.to_string()));
        match e {
            crate::check::CheckError::Unit { .. } => ApiError {
                status: StatusCode::BAD_GATEWAY,
                message,
                field: None,
            },
            _ => ApiError::bad("", message),
        }
    })?;
    let summary = if report.equal {
        "verified: the target equals the source".to_owned()
    } else {
        let (m, x, d) = report.units.iter().fold((0, 0, 0), |a, u| {
            (a.0 + u.missing, a.1 + u.extra, a.2 + u.different)
        });
        format!("verified: differences found ({m} missing, {x} extra, {d} different)")
    };
    let level = if report.equal { "info" } else { "warn" };
    app.manager.log(Some(id), "system", level, None, &summary);
    Ok(Json(report))
}
