//! The live state of each task (status, units with their counters), the SSE messages, and
//! the hub that fans them out to subscribers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use super::store::{LogRow, UnitRow};

/// A unit as the API and SSE show it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UnitLive {
    /// Stored state and counters.
    #[serde(flatten)]
    pub row: UnitRow,
    /// Written records per second (latest).
    pub rate: f64,
    /// Change lag in ms (change streams only).
    pub lag_ms: Option<i64>,
    /// Share done, 0..100, when it can be told.
    pub percent: Option<f64>,
}

impl UnitLive {
    /// A unit from its stored row.
    pub fn from_row(row: UnitRow) -> Self {
        let mut u = UnitLive {
            row,
            rate: 0.0,
            lag_ms: None,
            percent: None,
        };
        u.update_percent();
        u
    }

    /// Recomputes `percent`.
    pub fn update_percent(&mut self) {
        self.percent = if self.row.state == "done" {
            Some(100.0)
        } else {
            self.row
                .estimated_total
                .filter(|&t| t > 0)
                .map(|t| (self.row.written as f64 * 100.0 / t as f64).min(99.9))
        };
    }
}

/// Totals over a task's units.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Overall {
    /// Records read.
    pub read: u64,
    /// Records written.
    pub written: u64,
    /// Records rejected.
    pub rejected: u64,
    /// Records expected (known estimates, or written when larger).
    pub total: u64,
    /// Share done, 0..100.
    pub percent: f64,
    /// Units done.
    pub units_done: usize,
    /// Units failed.
    pub units_failed: usize,
    /// Units.
    pub units_total: usize,
    /// Written records per second over running units.
    pub rate: f64,
}

/// A task's live state.
#[derive(Debug, Clone, Serialize)]
pub struct Live {
    /// The task's status.
    pub status: String,
    /// The error that stopped it.
    pub error: Option<String>,
    /// Its units by name.
    pub units: BTreeMap<String, UnitLive>,
}

impl Live {
    /// Totals.
    pub fn overall(&self) -> Overall {
        let mut o = Overall {
            read: 0,
            written: 0,
            rejected: 0,
            total: 0,
            percent: 0.0,
            units_done: 0,
            units_failed: 0,
            units_total: self.units.len(),
            rate: 0.0,
        };
        let mut done_rows = 0u64;
        for u in self.units.values() {
            let r = &u.row;
            o.read += r.read;
            o.written += r.written;
            o.rejected += r.rejected;
            let total = r.estimated_total.unwrap_or(0).max(r.written);
            o.total += total;
            if r.state == "done" {
                o.units_done += 1;
                done_rows += total;
            } else {
                done_rows += r.written.min(total);
            }
            if r.state == "failed" {
                o.units_failed += 1;
            }
            if r.state == "running" {
                o.rate += u.rate;
            }
        }
        o.percent = if o.units_total > 0 && o.units_done == o.units_total {
            100.0
        } else if o.total > 0 {
            (done_rows as f64 * 100.0 / o.total as f64).min(99.9)
        } else {
            0.0
        };
        o
    }
}

/// What SSE subscribers receive.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Msg {
    /// Everything (first message of a stream).
    Snapshot {
        /// Status.
        status: String,
        /// Error.
        error: Option<String>,
        /// Units.
        units: Vec<UnitLive>,
        /// Totals.
        overall: Overall,
    },
    /// New counters of some units (at most one such message per 250 ms).
    Progress {
        /// The units that changed.
        units: Vec<UnitLive>,
        /// Totals.
        overall: Overall,
    },
    /// A unit changed state.
    Unit {
        /// The unit.
        unit: UnitLive,
        /// Totals.
        overall: Overall,
    },
    /// The task changed status.
    Status {
        /// Status.
        status: String,
        /// Error.
        error: Option<String>,
        /// Totals.
        overall: Overall,
    },
    /// A log line.
    Log(LogRow),
}

impl Msg {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            Msg::Snapshot { .. } => "snapshot",
            Msg::Progress { .. } => "progress",
            Msg::Unit { .. } => "unit",
            Msg::Status { .. } => "status",
            Msg::Log(_) => "log",
        }
    }
}

/// One task's live state and its subscribers.
pub struct Hub {
    /// The state.
    pub live: Mutex<Live>,
    tx: broadcast::Sender<Arc<Msg>>,
}

impl Hub {
    /// A hub starting from stored state.
    pub fn new(status: String, error: Option<String>, units: Vec<UnitRow>) -> Arc<Hub> {
        let (tx, _) = broadcast::channel(256);
        Arc::new(Hub {
            live: Mutex::new(Live {
                status,
                error,
                units: units
                    .into_iter()
                    .map(|r| (r.unit.clone(), UnitLive::from_row(r)))
                    .collect(),
            }),
            tx,
        })
    }

    /// Runs `f` on the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut Live) -> T) -> T {
        let mut l = self.live.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut l)
    }

    /// Sends to every subscriber (none is fine).
    pub fn send(&self, msg: Msg) {
        let _ = self.tx.send(Arc::new(msg));
    }

    /// A snapshot message and a receiver of what follows.
    pub fn subscribe(&self) -> (Msg, broadcast::Receiver<Arc<Msg>>) {
        let l = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        let msg = Msg::Snapshot {
            status: l.status.clone(),
            error: l.error.clone(),
            units: l.units.values().cloned().collect(),
            overall: l.overall(),
        };
        (msg, rx)
    }
}
