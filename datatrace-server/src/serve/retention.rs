//! The retention guard of stopped tasks. A running change stream watches its own position
//! against the server's binlog retention (`datatrace_mysql::binlog::retention`); a stopped
//! one cannot, yet it is the stopped task whose binlogs the server purges while nobody
//! looks. So the server checks, every `--retention-check-secs`, the stream checkpoint of
//! every task that is not running and streams changes (through its source connector's
//! [`stopped_retention`](crate::connectors::SourceEndpoint::stopped_retention)): the time left before the binlog
//! at its checkpoint may be purged (0 once it is gone: a binlog gap) becomes the stream
//! unit's `retention_secs` in the task's units view and SSE, and the gauge
//! `datatrace_unit_binlog_retention_seconds`; below the source's `retention_warn_secs` (and
//! on a gap) a warning goes to the task's log, once an hour while it lasts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::checkpoints::job_name;
use super::live::Msg;
use super::manager::Manager;

/// How often a warning that still holds is repeated in a task's log.
const WARN_AGAIN: Duration = Duration::from_secs(3600);

/// Warnings already logged: task -> (when, whether it was a gap).
type Warned = HashMap<i64, (Instant, bool)>;

/// Checks stopped tasks every `every` until the server closes.
pub async fn guard_stopped(manager: Arc<Manager>, every: Duration) {
    let closing = manager.closing();
    let mut warned = Warned::new();
    loop {
        check_stopped(&manager, &mut warned).await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = closing.cancelled() => return,
        }
    }
}

/// One round over every stopped task.
pub async fn check_stopped(manager: &Arc<Manager>, warned: &mut Warned) {
    let tasks = match manager.store().tasks().await {
        Ok(t) => t,
        Err(e) => {
            tracing::debug!(error = %e, "retention guard: cannot list tasks");
            return;
        }
    };
    for t in tasks {
        if manager.is_running(t.id) {
            warned.remove(&t.id);
            continue;
        }
        let Ok((_, job)) = manager.build(t.id, &t.config).await else {
            continue;
        };
        let (store, name) = (manager.checkpoint_store(t.id).await, job_name(t.id));
        let retention = job
            .source
            .stopped_retention(job.ctx(), store.as_ref(), &name);
        let Some(r) = retention.await else {
            continue;
        };
        // Started meanwhile: its stream reports for itself.
        if manager.is_running(t.id) {
            continue;
        }
        let Ok(hub) = manager.hub(t.id).await else {
            continue;
        };
        let changed = hub.with(|l| {
            let u = l.units.get_mut(&r.unit)?;
            u.retention_secs = r.time_left_secs;
            Some((u.clone(), l.overall()))
        });
        if let Some((unit, overall)) = changed {
            hub.send(Msg::Progress {
                units: vec![unit],
                overall,
            });
        }
        let warn = r.warn_secs;
        let Some(left) = r
            .time_left_secs
            .filter(|&s| s < i64::try_from(warn).unwrap_or(i64::MAX))
        else {
            warned.remove(&t.id);
            continue;
        };
        let gap = left == 0;
        let again = match warned.get(&t.id) {
            None => true,
            Some((at, was_gap)) => *was_gap != gap || at.elapsed() >= WARN_AGAIN,
        };
        if !again {
            continue;
        }
        warned.insert(t.id, (Instant::now(), gap));
        // A gap's text says what to do already.
        let advice = if gap {
            ""
        } else {
            ": start the task before then, or raise the server's setting named above (binlog_expire_logs_seconds or max_binlog_total_size), else a binlog gap follows"
        };
        let text = format!("binlog retention of the stopped task: {}{advice}", r.text);
        manager
            .log(Some(t.id), "system", "warn", Some(&r.unit), &text)
            .await;
    }
}
