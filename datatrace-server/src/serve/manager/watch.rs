//! Feeding a running task's progress events to its live state, the store and SSE
//! (coalesced), and noting its first rejected record and its first progress.

use std::collections::HashSet;
use std::sync::Arc;

use datatrace_core::{ProgressEvent, ProgressKind, UnitState};
use tokio::sync::broadcast;

use super::{Manager, PROGRESS_EVERY};
use crate::job_file::JobFile;
use crate::serve::live::{Hub, Msg, UnitLive};

/// What one run's watcher remembers.
#[derive(Default)]
pub(super) struct RunNotes {
    /// Units whose first rejected record was logged.
    pub rejections_logged: HashSet<String>,
    /// Whether the run has written something (the crash guard is then cleared).
    pub progressed: bool,
}

impl Manager {
    /// Feeds progress events to the live state, the store and SSE.
    pub(super) async fn watch(
        self: Arc<Self>,
        id: i64,
        job: JobFile,
        mut rx: broadcast::Receiver<ProgressEvent>,
    ) {
        let Ok(hub) = self.hub(id).await else { return };
        let mut dirty: HashSet<String> = HashSet::new();
        let mut notes = RunNotes::default();
        let written_at_start = hub.with(|l| l.overall().written);
        let mut tick = tokio::time::interval(PROGRESS_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = rx.recv() => match ev {
                    Ok(ev) => self.event(id, &job, &hub, ev, &mut dirty, &mut notes).await,
                    Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                _ = tick.tick() => {
                    self.flush(id, &hub, &mut dirty).await;
                    if !notes.progressed && hub.with(|l| l.overall().written) > written_at_start {
                        notes.progressed = true;
                        self.clear_crash_guard(id).await;
                    }
                }
            }
        }
        self.flush(id, &hub, &mut dirty).await;
    }

    async fn event(
        &self,
        id: i64,
        job: &JobFile,
        hub: &Hub,
        ev: ProgressEvent,
        dirty: &mut HashSet<String>,
        notes: &mut RunNotes,
    ) {
        let unit = ev.unit.to_string();
        match ev.kind {
            ProgressKind::Progress(p) => {
                let first = p.first_rejection.clone();
                let rejected = p.rejected;
                hub.with(|l| {
                    if let Some(u) = l.units.get_mut(&unit) {
                        u.row.read = p.read;
                        u.row.written = p.written;
                        u.row.rejected = p.rejected;
                        if p.estimated_total.is_some() {
                            u.row.estimated_total = p.estimated_total;
                        }
                        u.rate = p.rate;
                        u.lag_ms = p.lag_ms;
                        u.retention_secs = p.retention_secs;
                        u.partitions = p.partitions.clone();
                        if first.is_some() {
                            u.first_rejection = first.as_ref().map(|f| job.scrub(f));
                        }
                        u.update_percent();
                    }
                });
                if let Some(first) = first {
                    if notes.rejections_logged.insert(unit.clone()) {
                        self.log(
                            Some(id),
                            "error",
                            "warn",
                            Some(&unit),
                            &format!(
                                "records rejected ({rejected} so far); the first: {}",
                                job.scrub(&first)
                            ),
                        )
                        .await;
                    }
                }
                dirty.insert(unit);
            }
            ProgressKind::State { state, error } => {
                let error = error.map(|e| job.scrub(&e));
                let snapshot = hub.with(|l| {
                    let u = l.units.get_mut(&unit)?;
                    u.row.state = state.into();
                    u.row.error = error.clone();
                    if state != UnitState::Running {
                        u.rate = 0.0;
                    }
                    u.update_percent();
                    Some((u.clone(), l.overall()))
                });
                dirty.remove(&unit);
                if let Some((u, overall)) = snapshot {
                    if let Err(e) = self
                        .store
                        .update_unit(id, &u.row, state == UnitState::Running)
                        .await
                    {
                        eprintln!("error: {e}");
                    }
                    hub.send(Msg::Unit {
                        unit: Box::new(u.clone()),
                        overall,
                    });
                    match (&state, &error) {
                        (UnitState::Failed, Some(e)) => {
                            self.log(
                                Some(id),
                                "error",
                                "error",
                                Some(&unit),
                                &format!("failed: {e}"),
                            )
                            .await
                        }
                        _ => {
                            self.log(
                                Some(id),
                                "system",
                                "info",
                                Some(&unit),
                                &format!("{state} ({} written)", u.row.written),
                            )
                            .await
                        }
                    }
                }
            }
        }
    }

    pub(super) async fn flush(&self, id: i64, hub: &Hub, dirty: &mut HashSet<String>) {
        if dirty.is_empty() {
            return;
        }
        let (units, overall) = hub.with(|l| {
            let units: Vec<UnitLive> = dirty
                .iter()
                .filter_map(|u| l.units.get(u).cloned())
                .collect();
            (units, l.overall())
        });
        dirty.clear();
        for u in &units {
            if let Err(e) = self.store.update_unit(id, &u.row, false).await {
                eprintln!("error: {e}");
            }
        }
        hub.send(Msg::Progress { units, overall });
    }
}
