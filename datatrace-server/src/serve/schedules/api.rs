//! The REST side of schedules, the run history and the drift figure: schedules listed,
//! created, changed, deleted and run by hand; runs listed per task and across tasks (newest
//! first, paged with `before`); a task's latest drift.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{apply, scheduler, Action, ScheduleInput, ScheduleView};
use crate::serve::http::{ApiError, Body, Id, QueryParams};
use crate::serve::manager::{Origin, Trigger};
use crate::serve::sql_store::{DriftRow, RunFilter, RunRow, ScheduleRow};
use crate::serve::AppState;

type ApiResult<T> = Result<T, ApiError>;

async fn task_name(app: &AppState, task: i64) -> ApiResult<String> {
    app.store()
        .task(task)
        .await?
        .map(|t| t.name)
        .ok_or_else(|| ApiError::not_found(format!("task {task}")))
}

async fn view(app: &AppState, row: ScheduleRow) -> ApiResult<ScheduleView> {
    let name = task_name(app, row.task_id).await?;
    Ok(ScheduleView::new(row, name, Utc::now()))
}

async fn schedule(app: &AppState, id: i64) -> ApiResult<ScheduleRow> {
    app.store()
        .schedule(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("schedule {id}")))
}

/// `GET /api/schedules`: every schedule with its next firings.
pub async fn list_schedules(State(app): State<AppState>) -> ApiResult<Json<Vec<ScheduleView>>> {
    let mut out = Vec::new();
    for row in app.store().schedules().await? {
        out.push(view(&app, row).await?);
    }
    Ok(Json(out))
}

/// `GET /api/tasks/{id}/schedules`
pub async fn task_schedules(
    State(app): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<Vec<ScheduleView>>> {
    let name = task_name(&app, id).await?;
    let now = Utc::now();
    Ok(Json(
        app.store()
            .task_schedules(id)
            .await?
            .into_iter()
            .map(|r| ScheduleView::new(r, name.clone(), now))
            .collect(),
    ))
}

/// `POST /api/schedules`
pub async fn create_schedule(
    State(app): State<AppState>,
    Body(input): Body<ScheduleInput>,
) -> ApiResult<impl IntoResponse> {
    let row = apply(input, None, Utc::now())?;
    if app.store().task(row.task_id).await?.is_none() {
        return Err(ApiError::bad("task_id", format!("no task {}", row.task_id)));
    }
    let id = app.store().save_schedule(&row).await?;
    let row = schedule(&app, id).await?;
    Ok((StatusCode::CREATED, Json(view(&app, row).await?)))
}

/// `GET /api/schedules/{id}`
pub async fn get_schedule(
    State(app): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<ScheduleView>> {
    let row = schedule(&app, id).await?;
    Ok(Json(view(&app, row).await?))
}

/// `PUT /api/schedules/{id}`: absent fields keep their value; the next firing is computed
/// again.
pub async fn update_schedule(
    State(app): State<AppState>,
    Id(id): Id,
    Body(input): Body<ScheduleInput>,
) -> ApiResult<Json<ScheduleView>> {
    let old = schedule(&app, id).await?;
    let row = apply(input, Some(&old), Utc::now())?;
    app.store().save_schedule(&row).await?;
    let row = schedule(&app, id).await?;
    Ok(Json(view(&app, row).await?))
}

/// `DELETE /api/schedules/{id}`
pub async fn delete_schedule(State(app): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    if app.store().delete_schedule(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("schedule {id}")))
    }
}

/// `POST /api/schedules/{id}/run`: runs the schedule's action now (its next firing stays);
/// answers the run as recorded (`running`, or `skipped` with the reason when the task is
/// busy).
pub async fn run_schedule(State(app): State<AppState>, Id(id): Id) -> ApiResult<impl IntoResponse> {
    let row = schedule(&app, id).await?;
    let trigger = Trigger {
        origin: Origin::Manual,
        schedule: Some(id),
    };
    let run = scheduler::fire(&app.manager, &row, trigger).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "run": run }))))
}

/// `?before=&limit=&kind=&task=` of run listings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunQuery {
    /// Only runs with a smaller id (the next page).
    #[serde(default)]
    pub before: Option<i64>,
    /// At most this many (default 50, at most 500).
    #[serde(default)]
    pub limit: Option<u32>,
    /// Only this kind (`sync`, `resume`, `retry`, `check`, `check_repair`, `drift_check`).
    #[serde(default)]
    pub kind: Option<String>,
    /// Only this task's (`GET /api/runs`).
    #[serde(default)]
    pub task: Option<i64>,
}

/// The kinds of runs.
pub const RUN_KINDS: [&str; 6] = [
    "sync",
    "resume",
    "retry",
    "check",
    "check_repair",
    "drift_check",
];

/// A page of runs, newest first.
#[derive(Debug, Serialize)]
pub struct RunPage {
    /// The runs.
    pub runs: Vec<RunRow>,
    /// `before` for the next page, when there may be one.
    pub next_before: Option<i64>,
}

async fn runs(app: &AppState, task: Option<i64>, q: RunQuery) -> ApiResult<Json<RunPage>> {
    if let Some(k) = q.kind.as_deref().filter(|k| !RUN_KINDS.contains(k)) {
        return Err(ApiError::bad(
            "kind",
            format!(
                "unknown kind {k:?}, expected one of {}",
                RUN_KINDS.join(", ")
            ),
        ));
    }
    let limit = q.limit.unwrap_or(50).clamp(1, 500);
    let filter = RunFilter {
        task: task.or(q.task),
        kind: q.kind,
        before: q.before,
        limit,
    };
    let runs = app.store().runs(&filter).await?;
    let next_before = (runs.len() as u32 == limit)
        .then(|| runs.last().map(|r| r.id))
        .flatten();
    Ok(Json(RunPage { runs, next_before }))
}

/// `GET /api/runs`: the runs of every task, newest first.
pub async fn list_runs(
    State(app): State<AppState>,
    QueryParams(q): QueryParams<RunQuery>,
) -> ApiResult<Json<RunPage>> {
    runs(&app, None, q).await
}

/// `GET /api/tasks/{id}/runs`
pub async fn task_runs(
    State(app): State<AppState>,
    Id(id): Id,
    QueryParams(q): QueryParams<RunQuery>,
) -> ApiResult<Json<RunPage>> {
    task_name(&app, id).await?;
    runs(&app, Some(id), q).await
}

/// `GET /api/tasks/{id}/drift`: the rows differing after the task's last check, and when
/// (`null` before any check).
pub async fn task_drift(
    State(app): State<AppState>,
    Id(id): Id,
) -> ApiResult<Json<Option<DriftRow>>> {
    task_name(&app, id).await?;
    Ok(Json(
        app.store()
            .drifts()
            .await?
            .into_iter()
            .find(|d| d.task_id == id),
    ))
}

/// The actions, for the OpenAPI document.
pub fn action_names() -> Vec<&'static str> {
    Action::ALL.iter().map(|a| a.as_str()).collect()
}
