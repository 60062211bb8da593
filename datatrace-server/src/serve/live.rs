//! The live state of each task (status, units with their counters), the SSE messages, and
//! the hub that fans them out to subscribers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;

use super::store::{LogRow, UnitRow, UnitStatus};

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
    /// Seconds until the source may purge data the unit still has to read, at least (a
    /// MySQL stream: its binlog; see `datatrace_mysql::binlog::retention`); `None` when not
    /// at risk. Alert rules compare it with a threshold (metric
    /// `datatrace_unit_binlog_retention_seconds`).
    pub retention_secs: Option<i64>,
    /// The first record rejected by the current run: its key and the reason.
    pub first_rejection: Option<String>,
    /// Where a change stream's last checkpoint stands (the source's position state, e.g.
    /// `{"file": "binlog.000003", "pos": 1234, "gtid": "0-1-48"}`); streams only.
    pub position: Option<serde_json::Value>,
    /// A Kafka source's assigned partitions, each with its end, the offset committed behind
    /// written records and the lag between them (metric `datatrace_partition_lag_messages`);
    /// empty for other sources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<datatrace_core::PartitionLag>,
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
            retention_secs: None,
            first_rejection: None,
            position: None,
            partitions: Vec::new(),
            percent: None,
        };
        u.update_percent();
        u
    }

    /// Recomputes `percent`.
    pub fn update_percent(&mut self) {
        self.percent = if self.row.state == UnitStatus::DONE {
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
            if r.state == UnitStatus::DONE {
                o.units_done += 1;
                done_rows += total;
            } else {
                done_rows += r.written.min(total);
            }
            if r.state == UnitStatus::FAILED {
                o.units_failed += 1;
            }
            if r.state == UnitStatus::RUNNING {
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
        unit: Box<UnitLive>,
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
    Log(Box<LogRow>),
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

/// Messages kept for replay to a subscriber that reconnects (`Last-Event-ID`).
pub const REPLAY: usize = 512;

/// A message with its event id (`<boot>.<seq>`: unique across restarts of the server).
#[derive(Debug, Clone)]
pub struct Numbered {
    /// The sequence number within this process.
    pub seq: u64,
    /// The message.
    pub msg: Arc<Msg>,
}

/// One task's live state and its subscribers.
pub struct Hub {
    /// The state.
    pub live: Mutex<Live>,
    tx: broadcast::Sender<Numbered>,
    recent: Mutex<(u64, VecDeque<Numbered>)>,
}

/// This process's start, in milliseconds since the epoch: the first part of event ids.
pub fn boot_id() -> u64 {
    static BOOT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    })
}

/// The event id of sequence number `seq`.
pub fn event_id(seq: u64) -> String {
    format!("{}.{seq}", boot_id())
}

/// The sequence number of an event id of this process (`None`: another process's).
pub fn parse_event_id(id: &str) -> Option<u64> {
    let (boot, seq) = id.trim().split_once('.')?;
    (boot.parse::<u64>().ok()? == boot_id())
        .then(|| seq.parse().ok())
        .flatten()
}

/// What a subscriber gets first: the messages it missed, or a fresh snapshot.
pub enum Catchup {
    /// Everything after its last event id, in order.
    Replay(Vec<Numbered>),
    /// The state now (the last id is unknown or too old).
    Snapshot(Numbered),
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
            recent: Mutex::new((0, VecDeque::new())),
        })
    }

    /// Runs `f` on the state.
    pub fn with<T>(&self, f: impl FnOnce(&mut Live) -> T) -> T {
        let mut l = self.live.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut l)
    }

    /// Numbers `msg`, keeps it for replay and sends it to every subscriber (none is fine).
    pub fn send(&self, msg: Msg) {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        recent.0 += 1;
        let n = Numbered {
            seq: recent.0,
            msg: Arc::new(msg),
        };
        if recent.1.len() == REPLAY {
            recent.1.pop_front();
        }
        recent.1.push_back(n.clone());
        // Sent under the lock, so subscribers see the order of the sequence numbers.
        let _ = self.tx.send(n);
    }

    fn snapshot_msg(&self) -> Msg {
        let l = self.live.lock().unwrap_or_else(|e| e.into_inner());
        Msg::Snapshot {
            status: l.status.clone(),
            error: l.error.clone(),
            units: l.units.values().cloned().collect(),
            overall: l.overall(),
        }
    }

    /// What a subscriber whose last event was `last` (its sequence number) needs first, and
    /// a receiver of what follows.
    pub fn subscribe(&self, last: Option<u64>) -> (Catchup, broadcast::Receiver<Numbered>) {
        let recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        let rx = self.tx.subscribe();
        let covered =
            last.filter(|&l| l <= recent.0 && recent.1.front().is_none_or(|f| f.seq <= l + 1));
        let first = match covered {
            Some(l) => Catchup::Replay(recent.1.iter().filter(|n| n.seq > l).cloned().collect()),
            None => Catchup::Snapshot(Numbered {
                seq: recent.0,
                msg: Arc::new(self.snapshot_msg()),
            }),
        };
        (first, rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log(n: i64) -> Msg {
        Msg::Log(Box::new(LogRow {
            id: n,
            task_id: Some(1),
            category: "system".into(),
            level: "info".into(),
            unit: None,
            message: format!("line {n}"),
            ts: String::new(),
        }))
    }

    #[test]
    fn a_reconnecting_subscriber_gets_what_it_missed() {
        let hub = Hub::new("idle".into(), None, Vec::new());
        for n in 1..=5 {
            hub.send(log(n));
        }
        let (first, _) = hub.subscribe(Some(3));
        let Catchup::Replay(missed) = first else {
            panic!("expected a replay")
        };
        assert_eq!(missed.iter().map(|n| n.seq).collect::<Vec<_>>(), [4, 5]);
        // Unknown or too old: a snapshot.
        assert!(matches!(hub.subscribe(None).0, Catchup::Snapshot(_)));
        assert!(matches!(hub.subscribe(Some(99)).0, Catchup::Snapshot(_)));
        for n in 6..=(REPLAY as i64 + 10) {
            hub.send(log(n));
        }
        assert!(matches!(hub.subscribe(Some(2)).0, Catchup::Snapshot(_)));
        assert_eq!(parse_event_id(&event_id(7)), Some(7));
        assert_eq!(parse_event_id("1.7"), None, "another process's id");
    }
}
