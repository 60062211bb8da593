//! Replaying a task's dead letters through its target (the sink `datatrace dlq replay`
//! uses), discarding them, and removing decided ones after the retention period.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use datatrace_core::sink::Outcome;
use datatrace_core::{Batch, DeadLetter, Timestamp};
use serde::Serialize;

use crate::serve::http::ApiError;
use crate::serve::manager::Manager;
use crate::serve::sql_store::dead_letters::DeadLetterFilter;
use crate::serve::AppState;

/// Records written per call of the sink.
const REPLAY_BATCH: usize = 500;

/// What a replay or discard did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Outcomes {
    /// Written to the target (now `replayed`), or marked `discarded`.
    pub done: u64,
    /// Refused by the target again: still `new`, with the new reason.
    pub refused: u64,
}

/// The ids of the `new` dead letters of `task` passing `filter`, oldest first.
pub async fn new_ids(
    app: &AppState,
    task: i64,
    filter: &DeadLetterFilter,
) -> Result<Vec<i64>, ApiError> {
    let mut ids = Vec::new();
    let mut after = 0;
    loop {
        let f = DeadLetterFilter {
            state: Some("new".into()),
            before: None,
            after: Some(after),
            limit: 1000,
            ..filter.clone()
        };
        let page = app.store().dead_letters(task, &f).await?;
        ids.extend(page.iter().map(|r| r.id));
        match page.last() {
            Some(r) if page.len() == 1000 => after = r.id,
            _ => return Ok(ids),
        }
    }
}

/// Writes the dead letters `ids` of task `task` (each `new`) to the task's target: those
/// written become `replayed` by `by`, those refused stay `new` with the new reason. The
/// task must not run meanwhile (an old row written over a newer change); it cannot start
/// until the replay is over.
pub async fn replay(
    app: &AppState,
    task: i64,
    ids: &[i64],
    by: &str,
) -> Result<Outcomes, ApiError> {
    let t = app
        .store()
        .task(task)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("task {task}")))?;
    if app.manager.is_running(task) {
        return Err(ApiError::conflict(
            "the task is running: stop it first (a replayed record could overwrite a newer change)",
        ));
    }
    let _busy = app.manager.begin_check(task).map_err(|_| {
        ApiError::conflict(
            "the task is being verified or its dead letters replayed; try again when that is done",
        )
    })?;
    let (_, job) = app.manager.build(task, &t.config).await?;
    let sink = crate::plan::target_sink(&job).await.map_err(|e| ApiError {
        status: StatusCode::BAD_GATEWAY,
        message: app.scrub(&job.scrub(&e.message)),
        field: None,
    })?;
    let mut out = Outcomes::default();
    for chunk in ids.chunks(REPLAY_BATCH) {
        let mut entries: Vec<(i64, DeadLetter)> = Vec::with_capacity(chunk.len());
        for (id, json) in app.store().dead_letter_entries(task, chunk).await? {
            let e: DeadLetter = serde_json::from_str(&json).map_err(|e| {
                ApiError::internal(format!("dead letter {id} cannot be read back: {e}"))
            })?;
            entries.push((id, e));
        }
        if entries.is_empty() {
            continue;
        }
        let batch = Batch::new(entries.iter().map(|(_, e)| e.record.clone()).collect());
        let outcomes = sink.write(&batch).await.map_err(|e| ApiError {
            status: StatusCode::BAD_GATEWAY,
            message: format!(
                "the target refused the replay ({} written before): {}",
                out.done,
                app.scrub(&job.scrub(&e.to_string()))
            ),
            field: None,
        })?;
        if outcomes.len() != entries.len() {
            return Err(ApiError::internal(format!(
                "the target answered {} outcomes for {} records",
                outcomes.len(),
                entries.len()
            )));
        }
        let mut written = Vec::new();
        for ((id, mut e), outcome) in entries.into_iter().zip(outcomes) {
            match outcome {
                Outcome::Written => written.push(id),
                Outcome::Rejected(why) | Outcome::Retryable(why) => {
                    e.attempts += 1;
                    e.error = app.scrub(&job.scrub(&why.to_string()));
                    e.time = Timestamp::now();
                    let json = serde_json::to_string(&e)
                        .map_err(|err| ApiError::internal(err.to_string()))?;
                    app.store()
                        .dead_letter_refused(task, id, &e.error, &json)
                        .await?;
                    out.refused += 1;
                }
            }
        }
        out.done += app
            .store()
            .set_dead_letter_state(task, &written, "replayed", by)
            .await?;
    }
    sink.finish().await.map_err(|e| ApiError {
        status: StatusCode::BAD_GATEWAY,
        message: app.scrub(&job.scrub(&e.to_string())),
        field: None,
    })?;
    Ok(out)
}

/// How often decided dead letters past the retention are removed.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Removes replayed and discarded dead letters decided more than `keep` ago, now and every
/// hour, until the server closes; `new` ones are kept whatever their age.
pub async fn prune_decided(manager: Arc<Manager>, keep: Duration) {
    let closing = manager.closing();
    loop {
        prune_once(&manager, keep).await;
        tokio::select! {
            _ = tokio::time::sleep(PRUNE_EVERY) => {}
            _ = closing.cancelled() => return,
        }
    }
}

/// One round of [`prune_decided`]; how many went.
pub async fn prune_once(manager: &Manager, keep: Duration) -> u64 {
    let keep_us = i64::try_from(keep.as_micros()).unwrap_or(i64::MAX);
    let cutoff = Timestamp::now().as_unix_micros().saturating_sub(keep_us);
    match manager.store().prune_dead_letters(cutoff).await {
        Ok(0) => 0,
        Ok(n) => {
            manager
                .log(
                    None,
                    "system",
                    "info",
                    None,
                    &format!("removed {n} replayed or discarded dead letter(s) past the retention"),
                )
                .await;
            n
        }
        Err(e) => {
            eprintln!("error: {e}");
            0
        }
    }
}
