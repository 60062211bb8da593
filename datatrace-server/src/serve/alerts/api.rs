//! The REST handlers of alerts: channels and rules (admins change them, viewers read them;
//! channels never with their URL or secret), a test send to a channel (operators), and the
//! alert history with filters.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::channels::{Alert, AlertState, Level};
use super::config::{channel_row, rule_row, ChannelInput, ChannelView, RuleInput};
use super::deliver::{client, RetryPolicy};
use super::send::record_and_send;
use crate::serve::http::{ApiError, Body, Id, QueryParams};
use crate::serve::sql_store::alerts::{HistoryFilter, HistoryRow, RuleRow};
use crate::serve::AppState;

type ApiResult<T> = Result<T, ApiError>;

async fn channel_or_404(
    app: &AppState,
    id: i64,
) -> ApiResult<crate::serve::sql_store::alerts::ChannelRow> {
    app.store()
        .alert_channel(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert channel {id}")))
}

async fn channel_view(app: &AppState, id: i64) -> ApiResult<ChannelView> {
    Ok(ChannelView::from(&channel_or_404(app, id).await?))
}

/// `GET /api/alerts/channels`
pub async fn list_channels(State(app): State<AppState>) -> ApiResult<Json<Vec<ChannelView>>> {
    Ok(Json(
        app.store()
            .alert_channels()
            .await?
            .iter()
            .map(ChannelView::from)
            .collect(),
    ))
}

/// `POST /api/alerts/channels`
pub async fn create_channel(
    State(app): State<AppState>,
    Body(input): Body<ChannelInput>,
) -> ApiResult<impl IntoResponse> {
    let row = channel_row(input, None, &app.key)?;
    let id = app.store().save_alert_channel(&row).await?;
    app.remember_secrets().await?;
    Ok((StatusCode::CREATED, Json(channel_view(&app, id).await?)))
}

/// `GET /api/alerts/channels/{id}`
pub async fn get_channel(State(app): State<AppState>, Id(id): Id) -> ApiResult<Json<ChannelView>> {
    Ok(Json(channel_view(&app, id).await?))
}

/// `PUT /api/alerts/channels/{id}`
pub async fn update_channel(
    State(app): State<AppState>,
    Id(id): Id,
    Body(input): Body<ChannelInput>,
) -> ApiResult<Json<ChannelView>> {
    let old = channel_or_404(&app, id).await?;
    let row = channel_row(input, Some(&old), &app.key)?;
    app.store().save_alert_channel(&row).await?;
    app.remember_secrets().await?;
    Ok(Json(channel_view(&app, id).await?))
}

/// `DELETE /api/alerts/channels/{id}`: refused while a rule sends to it.
pub async fn delete_channel(State(app): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    let users = app.store().rules_using_channel(id).await?;
    if !users.is_empty() {
        return Err(ApiError::conflict(format!(
            "alert channel {id} is used by rule(s) {}; change or delete them first",
            users.join(", ")
        )));
    }
    if app.store().delete_alert_channel(id).await? {
        app.remember_secrets().await?;
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("alert channel {id}")))
    }
}

/// `POST /api/alerts/channels/{id}/test`: sends a test alert (to a disabled channel too),
/// records it in the history (state `test`) and answers the delivery's outcome (`ok`,
/// `attempts`, `status`, `error`, `tries`).
pub async fn test_channel(State(app): State<AppState>, Id(id): Id) -> ApiResult<Json<Value>> {
    let channel = channel_or_404(&app, id).await?;
    let alert = Alert {
        rule_id: 0,
        rule: "test send".into(),
        kind: "test".into(),
        level: Level::Info,
        state: AlertState::Firing,
        task_id: None,
        task: None,
        message: format!(
            "A test message from DataTrace to the channel {}: alerts reach you here.",
            channel.name
        ),
        value: None,
        threshold: None,
        at: chrono::Utc::now(),
    };
    let outcomes = record_and_send(
        app.store(),
        &client(),
        &app.key,
        &alert,
        "test",
        &[id],
        RetryPolicy::default(),
    )
    .await?;
    let outcome = outcomes.into_iter().next().unwrap_or(Value::Null);
    Ok(Json(outcome))
}

async fn checked_rule(app: &AppState, input: RuleInput, id: i64) -> ApiResult<RuleRow> {
    let channels: Vec<i64> = app
        .store()
        .alert_channels()
        .await?
        .iter()
        .map(|c| c.id)
        .collect();
    let task_exists = match input.task_id {
        Some(t) => app.store().task(t).await?.is_some(),
        None => false,
    };
    rule_row(input, id, &channels, task_exists)
}

async fn rule_or_404(app: &AppState, id: i64) -> ApiResult<RuleRow> {
    app.store()
        .alert_rule(id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("alert rule {id}")))
}

/// `GET /api/alerts/rules`
pub async fn list_rules(State(app): State<AppState>) -> ApiResult<Json<Vec<RuleRow>>> {
    Ok(Json(app.store().alert_rules().await?))
}

/// `POST /api/alerts/rules`
pub async fn create_rule(
    State(app): State<AppState>,
    Body(input): Body<RuleInput>,
) -> ApiResult<impl IntoResponse> {
    let row = checked_rule(&app, input, 0).await?;
    let id = app.store().save_alert_rule(&row).await?;
    Ok((StatusCode::CREATED, Json(rule_or_404(&app, id).await?)))
}

/// `GET /api/alerts/rules/{id}`
pub async fn get_rule(State(app): State<AppState>, Id(id): Id) -> ApiResult<Json<RuleRow>> {
    Ok(Json(rule_or_404(&app, id).await?))
}

/// `PUT /api/alerts/rules/{id}`: the whole rule; a change starts its evaluation over.
pub async fn update_rule(
    State(app): State<AppState>,
    Id(id): Id,
    Body(input): Body<RuleInput>,
) -> ApiResult<Json<RuleRow>> {
    rule_or_404(&app, id).await?;
    let row = checked_rule(&app, input, id).await?;
    app.store().save_alert_rule(&row).await?;
    Ok(Json(rule_or_404(&app, id).await?))
}

/// `DELETE /api/alerts/rules/{id}` (its history stays).
pub async fn delete_rule(State(app): State<AppState>, Id(id): Id) -> ApiResult<StatusCode> {
    if app.store().delete_alert_rule(id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("alert rule {id}")))
    }
}

/// `?rule=&level=&task=&state=&before=&limit=` of the history.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only this rule.
    #[serde(default)]
    pub rule: Option<i64>,
    /// Only this level.
    #[serde(default)]
    pub level: Option<String>,
    /// Only this task.
    #[serde(default)]
    pub task: Option<i64>,
    /// Only this state: `firing`, `resolved` or `test`.
    #[serde(default)]
    pub state: Option<String>,
    /// Only entries older than this id (the next page).
    #[serde(default)]
    pub before: Option<i64>,
    /// At most this many (default 100, at most 1000).
    #[serde(default)]
    pub limit: Option<u32>,
}

/// `GET /api/alerts/history`: newest first.
pub async fn history(
    State(app): State<AppState>,
    QueryParams(q): QueryParams<HistoryQuery>,
) -> ApiResult<Json<Vec<HistoryRow>>> {
    let empty = |s: Option<String>| s.filter(|v| !v.trim().is_empty());
    let level = empty(q.level);
    if let Some(l) = &level {
        if Level::parse(l).is_none() {
            return Err(ApiError::bad(
                "level",
                format!("unknown level {l:?}: expected info, warning or critical"),
            ));
        }
    }
    let state = empty(q.state);
    if let Some(s) = &state {
        if !matches!(s.as_str(), "firing" | "resolved" | "test") {
            return Err(ApiError::bad(
                "state",
                format!("unknown state {s:?}: expected firing, resolved or test"),
            ));
        }
    }
    let filter = HistoryFilter {
        rule: q.rule,
        level,
        task: q.task,
        state,
        before: q.before,
        limit: q.limit.unwrap_or(100).clamp(1, 1000),
    };
    Ok(Json(app.store().alert_history(&filter).await?))
}
