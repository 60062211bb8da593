//! Stopping with the server and starting again: a graceful stop (SIGTERM, Ctrl-C) marks the
//! running tasks `interrupted` and the next start resumes them; after a crash the tasks
//! still marked running resume too, unless the same task was running, without writing
//! anything, through [`CRASHES_BEFORE_HOLD`] crashes in a row: then it is held (failed,
//! with the reason) instead of taking the server down again.

use std::sync::Arc;
use std::time::Duration;

use super::{Manager, Origin, StartKind, Trigger, INTERRUPTED};
use crate::serve::live::Msg;
use crate::serve::store::UnitStatus;

/// Crashes in a row, while a task ran without writing, after which it is not resumed.
pub const CRASHES_BEFORE_HOLD: u32 = 2;

fn guard_key(id: i64) -> String {
    format!("crash_guard.task.{id}")
}

impl Manager {
    /// Stops every task and waits (up to `grace`) for them to finish and record their end;
    /// tasks stopped this way end `interrupted`, and resume at the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.closing.cancel();
        let tokens: Vec<_> = self
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        tokens.iter().for_each(|t| t.cancel());
        let deadline = tokio::time::Instant::now() + grace;
        // A run leaves `running` before it records its status and last line (`ending` counts
        // those): wait for both.
        let busy = || {
            !self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_empty()
                || self.ending.load(std::sync::atomic::Ordering::SeqCst) > 0
        };
        while busy() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Counts a crash of the server while task `id` ran; returns the crashes in a row.
    async fn count_crash(&self, id: i64) -> u32 {
        let n = self
            .store
            .meta(&guard_key(id))
            .await
            .ok()
            .flatten()
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
            + 1;
        if let Err(e) = self.store.set_meta(&guard_key(id), &n.to_string()).await {
            eprintln!("error: {e}");
        }
        n
    }

    /// The task wrote something (or ended by itself): a later crash is not its doing.
    pub async fn clear_crash_guard(&self, id: i64) {
        if let Ok(Some(v)) = self.store.meta(&guard_key(id)).await {
            if v != "0" {
                let _ = self.store.set_meta(&guard_key(id), "0").await;
            }
        }
    }

    /// Units left `running` by a run that ended (stopped, interrupted, crashed) show
    /// `stopped`: they resume from their checkpoints, nothing runs them now.
    pub(super) async fn settle_units(&self, id: i64) {
        let Ok(hub) = self.hub(id).await else { return };
        let (changed, overall) = hub.with(|l| {
            let mut changed = Vec::new();
            for u in l.units.values_mut() {
                if u.row.state == UnitStatus::RUNNING {
                    u.row.state = UnitStatus::Stopped;
                    u.rate = 0.0;
                    u.lag_ms = None;
                    u.partitions.clear();
                    changed.push(u.clone());
                }
            }
            (changed, l.overall())
        });
        for u in changed {
            if let Err(e) = self.store.update_unit(id, &u.row, false).await {
                eprintln!("error: {e}");
            }
            hub.send(Msg::Unit {
                unit: Box::new(u),
                overall: overall.clone(),
            });
        }
    }

    /// Resumes the tasks that were running when the server last stopped: those it
    /// interrupted on a graceful stop, and those still marked running after a crash (the
    /// crash guard may hold one back).
    pub async fn resume_interrupted(self: &Arc<Self>) {
        let tasks = match self.store.tasks().await {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {e}");
                return;
            }
        };
        for t in tasks {
            let crashed = matches!(t.status.as_str(), "running" | "queued" | "stopping");
            if !crashed && t.status != INTERRUPTED {
                continue;
            }
            self.settle_units(t.id).await;
            if crashed {
                let n = self.count_crash(t.id).await;
                if n >= CRASHES_BEFORE_HOLD {
                    let why = format!(
                        "not resumed: the server stopped unexpectedly {n} times in a row while \
                         this task ran without writing anything (a crash, or killed for \
                         memory?); check its settings, then resume it"
                    );
                    self.set_status(t.id, "failed", Some(&why), false, true)
                        .await;
                    self.log(Some(t.id), "error", "error", None, &why).await;
                    continue;
                }
            }
            let why = if crashed {
                "server restarted after a crash: resuming from the checkpoints"
            } else {
                "server restarted: resuming from the checkpoints"
            };
            self.log(Some(t.id), "system", "info", None, why).await;
            let trigger = Trigger {
                origin: Origin::Restart,
                schedule: None,
            };
            if let Err(e) = self.start_as(t.id, StartKind::Resume, trigger).await {
                self.set_status(t.id, "failed", Some(&e.message), false, true)
                    .await;
                self.log(
                    Some(t.id),
                    "error",
                    "error",
                    None,
                    &format!("cannot resume: {}", e.message),
                )
                .await;
            }
        }
    }
}
