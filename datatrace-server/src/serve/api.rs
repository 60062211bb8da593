//! The REST handlers: data sources, tasks, their actions, units, logs and the SSE stream.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::datasources::{self, DataSourceInput, DataSourceView};
use super::http::{ApiError, Body, Id, QueryParams};
use super::live::{Live, Overall, UnitLive};
use super::manager::StartKind;
use super::store::{LogFilter, LogRow, TaskRow};
use super::AppState;

type ApiResult<T> = Result<T, ApiError>;

fn scrubber(app: &AppState) -> impl Fn(&str) -> String + '_ {
    move |s: &str| app.scrub(s)
}

// ---- connectors ----

/// `GET /api/connectors`: how each registered connector is offered (data source or inline,
/// URL schemes, fields, the keys naming units and targets, streaming modes).
pub async fn list_connectors() -> Json<Vec<crate::connectors::OfferedConnector>> {
    Json(crate::connectors::registry().offered())
}

// ---- data sources ----

/// `GET /api/datasources`
pub async fn list_datasources(State(app): State<AppState>) -> ApiResult<Json<Vec<DataSourceView>>> {
    Ok(Json(
        app.store()
            .datasources()
            .await?
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
    let id = app.store().save_datasource(&row).await?;
    app.remember_secrets().await?;
    let row = app
        .store()
        .datasource(id)
        .await?
        .ok_or_else(|| ApiError::not_found("data source"))?;
    Ok((StatusCode::CREATED, Json(DataSourceView::from(&row))))
}

/// `GET /api/datasources/{id}`
pub async fn get_datasource(
    State(app): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<DataSourceView>> {
    let row = app
        .store()
        .datasource(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("data source {id}")))?;
    Ok(Json(DataSourceView::from(&row)))
}

/// `PUT /api/datasources/{id}`
pub async fn update_datasource(
    State(app): State<AppState>,
    Id(id): Id,
    Body(input): Body<DataSourceInput>,
) -> ApiResult<Json<DataSourceView>> {
    let old = app
        .store()
        .datasource(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("data source {id}")))?;
    let busy = app.manager.running_users_of(id).await?;
    if !busy.is_empty() {
        return Err(ApiError::conflict(format!(
            "data source {id} is in use by running task(s) {}; stop them before changing it",
            busy.join(", ")
        )));
    }
    let row = datasources::to_row(input, Some(&old), &app.key)?;
    app.store().save_datasource(&row).await?;
    app.remember_secrets().await?;
    let row = app
        .store()
        .datasource(id)
        .await?
        .ok_or_else(|| ApiError::not_found("data source"))?;
    Ok(Json(DataSourceView::from(&row)))
}

/// `DELETE /api/datasources/{id}`
pub async fn delete_datasource(State(app): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    let users = app.store().tasks_using(id).await?;
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "data source {id} is used by task(s) {}; delete or change them first",
            users.join(", ")
        )));
    }
    if app.store().delete_datasource(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("data source {id}")))
    }
}

/// `POST /api/datasources/{id}/test`
pub async fn test_datasource(
    State(app): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<datasources::TestResult>> {
    let row = app
        .store()
        .datasource(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("data source {id}")))?;
    let scrub = scrubber(&app);
    Ok(Json(datasources::test(&row, &app.key, &scrub).await?))
}

/// `GET /api/datasources/{id}/units`: tables or indices, for the task wizard.
pub async fn datasource_units(
    State(app): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<Vec<String>>> {
    let row = app
        .store()
        .datasource(id)
        .await?
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

async fn task_view(app: &AppState, t: TaskRow) -> ApiResult<TaskView> {
    let hub = app.manager.hub(t.id).await?;
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
    let mut views = Vec::new();
    for t in app.store().tasks().await? {
        views.push(task_view(&app, t).await?);
    }
    Ok(Json(views))
}

/// `POST /api/tasks`
pub async fn create_task(
    State(app): State<AppState>,
    Body(config): Body<Value>,
) -> ApiResult<impl IntoResponse> {
    let (input, _) = app.manager.build(0, &config).await?;
    let id = app.store().save_task(0, input.name.trim(), &config).await?;
    let t = app
        .store()
        .task(id)
        .await?
        .ok_or_else(|| ApiError::not_found("task"))?;
    app.manager
        .log(Some(id), "system", "info", None, "created")
        .await;
    Ok((StatusCode::CREATED, Json(task_view(&app, t).await?)))
}

/// `GET /api/tasks/{id}`
pub async fn get_task(State(app): State<AppState>, Id(id): Id) -> ApiResult<Json<TaskView>> {
    let t = app
        .store()
        .task(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
    Ok(Json(task_view(&app, t).await?))
}

/// `PUT /api/tasks/{id}`
pub async fn update_task(
    State(app): State<AppState>,
    Id(id): Id,
    Body(config): Body<Value>,
) -> ApiResult<Json<TaskView>> {
    app.store()
        .task(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
    if app.manager.is_running(id) {
        return Err(ApiError::conflict("stop the task before changing it"));
    }
    let (input, _) = app.manager.build(id, &config).await?;
    app.store()
        .save_task(id, input.name.trim(), &config)
        .await?;
    let t = app
        .store()
        .task(id)
        .await?
        .ok_or_else(|| ApiError::not_found("task"))?;
    Ok(Json(task_view(&app, t).await?))
}

/// `DELETE /api/tasks/{id}`
pub async fn delete_task(State(app): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    if app.manager.is_running(id) {
        return Err(ApiError::conflict("stop the task before deleting it"));
    }
    if app.store().delete_task(id).await? {
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
    // Started by hand: earlier crashes are not held against it.
    app.manager.clear_crash_guard(id).await;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "started" }))))
}

/// `POST /api/tasks/{id}/start`: copies every unit afresh.
pub async fn start_task(State(app): State<AppState>, Id(id): Id) -> ApiResult<impl IntoResponse> {
    start_kind(&app, id, StartKind::Fresh).await
}

/// `POST /api/tasks/{id}/resume`: continues from the checkpoints.
pub async fn resume_task(State(app): State<AppState>, Id(id): Id) -> ApiResult<impl IntoResponse> {
    start_kind(&app, id, StartKind::Resume).await
}

/// `POST /api/tasks/{id}/retry`: runs the failed units again from their checkpoints.
pub async fn retry_task(State(app): State<AppState>, Id(id): Id) -> ApiResult<impl IntoResponse> {
    start_kind(&app, id, StartKind::Retry).await
}

/// `POST /api/tasks/{id}/stop`
pub async fn stop_task(State(app): State<AppState>, Id(id): Id) -> ApiResult<impl IntoResponse> {
    app.store()
        .task(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
    app.manager.stop(id).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "status": "stopping" }))))
}

/// `GET /api/tasks/{id}/units`
pub async fn task_units(State(app): State<AppState>, Id(id): Id) -> ApiResult<Json<Vec<UnitLive>>> {
    let hub = app.manager.hub(id).await?;
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
    /// Only lines with a larger id (what came since), oldest first.
    #[serde(default)]
    pub after: Option<i64>,
    /// Only lines containing this text (case-insensitive).
    #[serde(default)]
    pub q: Option<String>,
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

async fn logs(app: &AppState, task: Option<i64>, q: LogQuery) -> ApiResult<Json<LogPage>> {
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
    let filter = LogFilter {
        category: category.map(str::to_owned),
        before: q.before,
        after: q.after,
        search: q.q.map(|s| s.chars().take(200).collect()),
        limit,
    };
    let lines = app.store().logs(task, &filter).await?;
    let next_before = (lines.len() as u32 == limit && q.after.is_none())
        .then(|| lines.last().map(|l| l.id))
        .flatten();
    Ok(Json(LogPage { lines, next_before }))
}

/// `GET /api/tasks/{id}/logs?category=&before=&limit=`
pub async fn task_logs(
    State(app): State<AppState>,
    Id(id): Id,
    QueryParams(q): QueryParams<LogQuery>,
) -> ApiResult<Json<LogPage>> {
    app.store()
        .task(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
    logs(&app, Some(id), q).await
}

/// `GET /api/logs?category=&before=&limit=`: the server's own lines.
pub async fn server_logs(
    State(app): State<AppState>,
    QueryParams(q): QueryParams<LogQuery>,
) -> ApiResult<Json<LogPage>> {
    logs(&app, None, q).await
}

/// `POST /api/tasks/{id}/verify`: compares the target with the source (`datatrace check`,
/// without repair) and returns the report; the check is recorded in the run history (its
/// figure is the task's drift, see `GET /api/tasks/{id}/drift`).
pub async fn verify_task(
    State(app): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<crate::check::CheckReport>> {
    use super::manager::Trigger;
    use super::schedules::checks::{self, CheckHow};
    let t = app
        .store()
        .task(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {id}")))?;
    let begun = checks::begin(&app.manager, id, CheckHow::VERIFY, Trigger::MANUAL).await?;
    let report = checks::finish(&app.manager, &t, CheckHow::VERIFY, begun).await?;
    Ok(Json(report))
}
