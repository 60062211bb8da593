//! The alert evaluator of `datatrace serve`: every `--alert-check-secs` it reads the
//! enabled rules and every task's facts (status and error, the largest change lag, the least
//! binlog retention left, seconds without a write, dead letters waiting, the last drift
//! check), folds each (rule, task) into the [`Tracker`], and for each firing or resolution
//! records a history entry, writes a line to the task's log and delivers the alert to the
//! rule's channels (in the background, with retries: a slow channel never delays the next
//! round).
//!
//! Facts that need memory are kept here: `idle_secs` counts from the last round in which the
//! task's written total moved, and dead letters are "growing" when their count rose within
//! the last [`DLQ_WINDOW`]. Alerts still firing at a stop are restored at the next start
//! (from the history), so they resolve rather than fire twice. A rule that is changed,
//! disabled or deleted starts over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::channels::{Alert, AlertState};
use super::config::spec;
use super::deliver::{client, RetryPolicy};
use super::rules::{check, RuleSpec, TaskFacts, Tracker, Transition};
use super::send::{history_entry, send_recorded, state_name};
use crate::serve::crypto::MasterKey;
use crate::serve::manager::Manager;
use crate::serve::sql_store::alerts::RuleRow;
use crate::serve::sql_store::DriftRow;
use crate::serve::store::TaskRow;

/// How long dead letters count as growing after their count last rose.
pub const DLQ_WINDOW: Duration = Duration::from_secs(600);

/// What the evaluator remembers between rounds.
pub struct Evaluator {
    manager: Arc<Manager>,
    key: MasterKey,
    client: reqwest::Client,
    policy: RetryPolicy,
    tracker: Tracker,
    started: Instant,
    /// Per task: its written total and when (seconds) it last moved.
    written: HashMap<i64, (u64, f64)>,
    /// Per task: its dead letters and when (seconds) their count last rose.
    dead_letters: HashMap<i64, (u64, Option<f64>)>,
    /// Per rule: its `updated_at` when last seen (a change starts it over).
    versions: HashMap<i64, String>,
}

/// Evaluates the rules every `every` until the server closes; a finished check (the
/// manager's drift hook) starts a round at once.
pub async fn run(manager: Arc<Manager>, key: MasterKey, every: Duration) {
    let closing = manager.closing();
    let checked = Arc::new(tokio::sync::Notify::new());
    let tell = checked.clone();
    manager.set_drift_hook(Arc::new(move |_: &DriftRow, _: &str, _: bool| {
        tell.notify_one()
    }));
    let mut ev = Evaluator::new(manager, key, RetryPolicy::default());
    ev.restore().await;
    loop {
        ev.round().await;
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = checked.notified() => {}
            _ = closing.cancelled() => return,
        }
    }
}

impl Evaluator {
    /// An evaluator delivering with `policy`.
    pub fn new(manager: Arc<Manager>, key: MasterKey, policy: RetryPolicy) -> Evaluator {
        Evaluator {
            manager,
            key,
            client: client(),
            policy,
            tracker: Tracker::default(),
            started: Instant::now(),
            written: HashMap::new(),
            dead_letters: HashMap::new(),
            versions: HashMap::new(),
        }
    }

    fn now(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Takes the alerts still open in the history as firing.
    pub async fn restore(&mut self) {
        match self.manager.store().open_alerts().await {
            Ok(open) => {
                let now = self.now();
                for (rule, task) in open {
                    self.tracker.restore(rule, task, now);
                }
            }
            Err(e) => eprintln!("error: alerts: {e}"),
        }
    }

    /// One look at every enabled rule over every task.
    pub async fn round(&mut self) {
        let store = self.manager.store().clone();
        let (rules, tasks, drifts) = match (
            store.alert_rules().await,
            store.tasks().await,
            store.drifts().await,
        ) {
            (Ok(r), Ok(t), Ok(d)) => (r, t, d),
            (r, t, d) => {
                let e = [r.err(), t.err(), d.err()].into_iter().flatten().next();
                if let Some(e) = e {
                    eprintln!("error: alerts: {e}");
                }
                return;
            }
        };
        let rules: Vec<(RuleRow, RuleSpec)> = rules
            .into_iter()
            .filter(|r| r.enabled)
            .filter_map(|r| spec(&r).map(|s| (r, s)))
            .collect();
        self.start_over_changed(&rules);
        let drift: HashMap<i64, u64> = drifts
            .into_iter()
            .map(|d| (d.task_id, d.rows_differing))
            .collect();
        for task in &tasks {
            let Some(facts) = self.facts(task, drift.get(&task.id).copied()).await else {
                continue;
            };
            for (row, spec) in &rules {
                let finding = check(spec, &facts);
                let now = self.now();
                match self.tracker.observe(spec, task.id, finding, now) {
                    Some(Transition::Firing(f)) => {
                        let alert =
                            self.alert(row, spec, &facts, AlertState::Firing, f.message, f.value);
                        self.raise(row, alert).await;
                    }
                    Some(Transition::Resolved) => {
                        let message = format!(
                            "task {}: {} ({}) no longer holds",
                            facts.name, row.name, row.kind
                        );
                        let alert =
                            self.alert(row, spec, &facts, AlertState::Resolved, message, None);
                        self.raise(row, alert).await;
                    }
                    None => {}
                }
            }
        }
    }

    /// Forgets the tracks of rules changed, disabled or deleted since the last round.
    fn start_over_changed(&mut self, rules: &[(RuleRow, RuleSpec)]) {
        let now: HashMap<i64, String> = rules
            .iter()
            .map(|(r, _)| (r.id, r.updated_at.clone()))
            .collect();
        for (id, version) in &self.versions {
            if now.get(id) != Some(version) {
                self.tracker.forget_rule(*id);
            }
        }
        self.versions = now;
    }

    /// What rules read about `task` now (`None` when its live state cannot be had).
    async fn facts(&mut self, task: &TaskRow, drift_rows: Option<u64>) -> Option<TaskFacts> {
        let hub = self.manager.hub(task.id).await.ok()?;
        let (status, error, lag_ms, retention, written, rejected) = hub.with(|l| {
            let units = l.units.values();
            (
                l.status.clone(),
                l.error.clone(),
                units.clone().filter_map(|u| u.lag_ms).max(),
                units.clone().filter_map(|u| u.retention_secs).min(),
                units.clone().map(|u| u.row.written).sum::<u64>(),
                units.map(|u| u.row.rejected).sum::<u64>(),
            )
        });
        // Dead letters waiting: the store's `new` ones (the run's rejected count if it
        // cannot be read).
        let counts = self.manager.store().dead_letter_counts(task.id).await.ok();
        let waiting = counts.as_ref().map_or(rejected, |c| c.new);
        // A dead letter rejected within the window counts as growth even when this
        // evaluator never saw the count lower (it started later, or the run was quicker
        // than a round).
        let window_us = i64::try_from(DLQ_WINDOW.as_micros()).unwrap_or(i64::MAX);
        let recent = counts.and_then(|c| c.newest_new_us).is_some_and(|at| {
            datatrace_core::Timestamp::now()
                .as_unix_micros()
                .saturating_sub(at)
                < window_us
        });
        let now = self.now();
        let idle_secs = if status == "running" {
            let seen = self.written.entry(task.id).or_insert((written, now));
            if seen.0 != written {
                *seen = (written, now);
            }
            Some(now - seen.1)
        } else {
            self.written.remove(&task.id);
            None
        };
        let dl = self.dead_letters.entry(task.id).or_insert((waiting, None));
        if waiting > dl.0 {
            dl.1 = Some(now);
        }
        dl.0 = waiting;
        let dlq_grew = recent || dl.1.is_some_and(|at| now - at < DLQ_WINDOW.as_secs_f64());
        Some(TaskFacts {
            id: task.id,
            name: task.name.clone(),
            status,
            error: error.map(|e| self.manager.scrub(&e)),
            lag_secs: lag_ms.map(|ms| ms as f64 / 1000.0),
            retention_secs: retention.map(|s| s as f64),
            idle_secs,
            dlq_new: waiting,
            dlq_grew,
            drift_rows,
        })
    }

    fn alert(
        &self,
        row: &RuleRow,
        spec: &RuleSpec,
        facts: &TaskFacts,
        state: AlertState,
        message: String,
        value: Option<f64>,
    ) -> Alert {
        let (default, counts) = spec.kind.default_threshold();
        Alert {
            rule_id: row.id,
            rule: row.name.clone(),
            kind: row.kind.clone(),
            level: spec.level,
            state,
            task_id: Some(facts.id),
            task: Some(facts.name.clone()),
            message: self.manager.scrub(&message),
            value,
            threshold: (!counts.is_empty()).then(|| spec.threshold.unwrap_or(default)),
            at: chrono::Utc::now(),
        }
    }

    /// Logs the alert in its task's log, records it and delivers it in the background.
    async fn raise(&self, row: &RuleRow, alert: Alert) {
        let state = state_name(alert.state);
        let level = match (alert.state, alert.level) {
            (AlertState::Resolved, _) => "info",
            (_, super::channels::Level::Critical) => "error",
            (_, super::channels::Level::Warning) => "warn",
            (_, super::channels::Level::Info) => "info",
        };
        self.manager
            .log(
                alert.task_id,
                "system",
                level,
                None,
                &format!("alert {state} ({}): {}", row.name, alert.message),
            )
            .await;
        let store = self.manager.store().clone();
        // Recorded now, in order; delivered in the background.
        let id = match store.add_alert_history(&history_entry(&alert, state)).await {
            Ok(id) => id,
            Err(e) => {
                eprintln!("error: alerts: {e}");
                return;
            }
        };
        let (client, key, policy) = (self.client.clone(), self.key.clone(), self.policy);
        let channels = row.channels.clone();
        tokio::spawn(async move {
            let entry = (id, state);
            if let Err(e) =
                send_recorded(&store, &client, &key, &alert, entry, &channels, policy).await
            {
                eprintln!("error: alerts: {e}");
            }
        });
    }
}
