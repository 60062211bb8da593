//! Alert rules and their evaluation: what each kind of rule measures on a task, and the
//! tracker that turns "the condition holds" over time into `firing` and `resolved` alerts
//! (a condition must hold for the rule's `for_secs` before it fires; it fires once, and
//! resolves once when it stops holding).

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::channels::Level;

/// What a rule watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// The task failed.
    TaskFailed,
    /// A change stream's lag is above `threshold` seconds.
    Lag,
    /// New dead letters: more than `threshold` not yet replayed or discarded, and growing.
    DlqGrowing,
    /// The last drift check found more than `threshold` rows differing.
    DriftFound,
    /// A stream's binlog may be purged in less than `threshold` seconds.
    BinlogRetention,
    /// A running task wrote nothing for `threshold` seconds.
    TaskIdle,
}

impl RuleKind {
    /// Every kind, for documents and forms.
    pub const ALL: [RuleKind; 6] = [
        RuleKind::TaskFailed,
        RuleKind::Lag,
        RuleKind::DlqGrowing,
        RuleKind::DriftFound,
        RuleKind::BinlogRetention,
        RuleKind::TaskIdle,
    ];

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::TaskFailed => "task_failed",
            RuleKind::Lag => "lag",
            RuleKind::DlqGrowing => "dlq_growing",
            RuleKind::DriftFound => "drift_found",
            RuleKind::BinlogRetention => "binlog_retention",
            RuleKind::TaskIdle => "task_idle",
        }
    }

    /// Parses a name of [`RuleKind::as_str`].
    pub fn parse(s: &str) -> Option<RuleKind> {
        RuleKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The threshold used when a rule gives none, and what it counts.
    pub fn default_threshold(self) -> (f64, &'static str) {
        match self {
            RuleKind::TaskFailed => (0.0, ""),
            RuleKind::Lag => (60.0, "seconds of lag"),
            RuleKind::DlqGrowing => (0.0, "dead letters"),
            RuleKind::DriftFound => (0.0, "rows differing"),
            RuleKind::BinlogRetention => (3600.0, "seconds of binlog left"),
            RuleKind::TaskIdle => (600.0, "seconds without a write"),
        }
    }
}

/// What alert rules read about one task.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskFacts {
    /// The task.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: String,
    /// Its error, when failed.
    pub error: Option<String>,
    /// The largest lag of its change streams, seconds.
    pub lag_secs: Option<f64>,
    /// The least time left before a binlog it reads may be purged, seconds.
    pub retention_secs: Option<f64>,
    /// Seconds since it last wrote, while running.
    pub idle_secs: Option<f64>,
    /// Dead letters not yet replayed or discarded.
    pub dlq_new: u64,
    /// Whether that number grew since the previous look.
    pub dlq_grew: bool,
    /// Rows differing at the last drift check.
    pub drift_rows: Option<u64>,
}

/// A rule as the evaluator needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// Its id.
    pub id: i64,
    /// What it watches.
    pub kind: RuleKind,
    /// Only this task (`None`: every task).
    pub task_id: Option<i64>,
    /// The threshold ([`RuleKind::default_threshold`] when absent).
    pub threshold: Option<f64>,
    /// Seconds the condition must hold before it fires.
    pub for_secs: u64,
    /// How bad.
    pub level: Level,
}

/// A condition that holds: the value measured and a sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    /// The value measured.
    pub value: Option<f64>,
    /// What is wrong.
    pub message: String,
}

/// Whether `rule` holds for `t`.
pub fn check(rule: &RuleSpec, t: &TaskFacts) -> Option<Finding> {
    if rule.task_id.is_some_and(|id| id != t.id) {
        return None;
    }
    let limit = rule
        .threshold
        .unwrap_or_else(|| rule.kind.default_threshold().0);
    let name = &t.name;
    match rule.kind {
        RuleKind::TaskFailed => (t.status == "failed").then(|| Finding {
            value: None,
            message: format!(
                "task {name} failed: {}",
                t.error.as_deref().unwrap_or("(no error given)")
            ),
        }),
        RuleKind::Lag => t.lag_secs.filter(|&l| l > limit).map(|l| Finding {
            value: Some(l),
            message: format!("task {name}: change lag {l:.0} s, above {limit:.0} s"),
        }),
        RuleKind::DlqGrowing => (t.dlq_new as f64 > limit && t.dlq_grew).then(|| Finding {
            value: Some(t.dlq_new as f64),
            message: format!(
                "task {name}: {} dead letter(s) waiting, and growing",
                t.dlq_new
            ),
        }),
        RuleKind::DriftFound => t.drift_rows.filter(|&d| d as f64 > limit).map(|d| Finding {
            value: Some(d as f64),
            message: format!("task {name}: the drift check found {d} row(s) differing"),
        }),
        RuleKind::BinlogRetention => t.retention_secs.filter(|&s| s < limit).map(|s| Finding {
            value: Some(s),
            message: format!(
                "task {name}: the binlog it still has to read may be purged in {s:.0} s \
                 (below {limit:.0} s)"
            ),
        }),
        RuleKind::TaskIdle => t
            .idle_secs
            .filter(|&s| s >= limit && t.status == "running")
            .map(|s| Finding {
                value: Some(s),
                message: format!("task {name}: nothing written for {s:.0} s"),
            }),
    }
}

/// A change of an alert's state.
#[derive(Debug, Clone, PartialEq)]
pub enum Transition {
    /// Started to hold (for long enough).
    Firing(Finding),
    /// Stopped holding.
    Resolved,
}

#[derive(Debug, Clone, Copy)]
struct Track {
    since: f64,
    firing: bool,
}

/// Remembers, per rule and task, since when a condition holds and whether it fired.
#[derive(Debug, Default)]
pub struct Tracker {
    tracks: HashMap<(i64, i64), Track>,
}

impl Tracker {
    /// Folds in one look at (`rule`, task `task`) at time `now` (seconds); returns what
    /// changed.
    pub fn observe(
        &mut self,
        rule: &RuleSpec,
        task: i64,
        finding: Option<Finding>,
        now: f64,
    ) -> Option<Transition> {
        let key = (rule.id, task);
        match finding {
            Some(f) => {
                let t = self.tracks.entry(key).or_insert(Track {
                    since: now,
                    firing: false,
                });
                if !t.firing && now - t.since >= rule.for_secs as f64 {
                    t.firing = true;
                    return Some(Transition::Firing(f));
                }
                None
            }
            None => match self.tracks.remove(&key) {
                Some(t) if t.firing => Some(Transition::Resolved),
                _ => None,
            },
        }
    }

    /// Takes (`rule`, `task`) as firing since `now` (an alert still open at the last
    /// stop): it resolves when the condition no longer holds instead of firing again.
    pub fn restore(&mut self, rule: i64, task: i64, now: f64) {
        self.tracks.insert(
            (rule, task),
            Track {
                since: now,
                firing: true,
            },
        );
    }

    /// Forgets a rule (deleted or changed).
    pub fn forget_rule(&mut self, rule: i64) {
        self.tracks.retain(|(r, _), _| *r != rule);
    }

    /// Whether (`rule`, `task`) is firing.
    pub fn is_firing(&self, rule: i64, task: i64) -> bool {
        self.tracks.get(&(rule, task)).is_some_and(|t| t.firing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: RuleKind, threshold: Option<f64>, for_secs: u64) -> RuleSpec {
        RuleSpec {
            id: 1,
            kind,
            task_id: None,
            threshold,
            for_secs,
            level: Level::Warning,
        }
    }

    fn facts() -> TaskFacts {
        TaskFacts {
            id: 5,
            name: "orders".into(),
            status: "running".into(),
            ..Default::default()
        }
    }

    #[test]
    fn each_kind_measures_its_fact() {
        let mut t = facts();
        assert!(check(&rule(RuleKind::TaskFailed, None, 0), &t).is_none());
        t.status = "failed".into();
        t.error = Some("boom".into());
        let f = check(&rule(RuleKind::TaskFailed, None, 0), &t).unwrap();
        assert!(f.message.contains("boom"));

        let mut t = facts();
        t.lag_secs = Some(30.0);
        assert!(
            check(&rule(RuleKind::Lag, None, 0), &t).is_none(),
            "60 s by default"
        );
        assert!(check(&rule(RuleKind::Lag, Some(10.0), 0), &t).is_some());

        t.retention_secs = Some(1200.0);
        assert!(check(&rule(RuleKind::BinlogRetention, None, 0), &t).is_some());
        assert!(check(&rule(RuleKind::BinlogRetention, Some(600.0), 0), &t).is_none());

        t.dlq_new = 3;
        assert!(
            check(&rule(RuleKind::DlqGrowing, None, 0), &t).is_none(),
            "not growing"
        );
        t.dlq_grew = true;
        assert_eq!(
            check(&rule(RuleKind::DlqGrowing, None, 0), &t)
                .unwrap()
                .value,
            Some(3.0)
        );

        t.drift_rows = Some(0);
        assert!(check(&rule(RuleKind::DriftFound, None, 0), &t).is_none());
        t.drift_rows = Some(4);
        assert!(check(&rule(RuleKind::DriftFound, None, 0), &t).is_some());

        t.idle_secs = Some(700.0);
        assert!(check(&rule(RuleKind::TaskIdle, None, 0), &t).is_some());
        t.status = "stopped".into();
        assert!(check(&rule(RuleKind::TaskIdle, None, 0), &t).is_none());

        let mut only = rule(RuleKind::DriftFound, None, 0);
        only.task_id = Some(6);
        assert!(check(&only, &t).is_none(), "another task's rule");
    }

    #[test]
    fn fires_after_for_secs_once_and_resolves_once() {
        let r = rule(RuleKind::Lag, Some(10.0), 30);
        let mut tr = Tracker::default();
        let f = Some(Finding {
            value: Some(20.0),
            message: "lag".into(),
        });
        assert_eq!(tr.observe(&r, 5, f.clone(), 0.0), None);
        assert_eq!(tr.observe(&r, 5, f.clone(), 20.0), None);
        assert!(matches!(
            tr.observe(&r, 5, f.clone(), 30.0),
            Some(Transition::Firing(_))
        ));
        assert_eq!(tr.observe(&r, 5, f.clone(), 40.0), None, "fires once");
        assert!(tr.is_firing(1, 5));
        assert_eq!(tr.observe(&r, 5, None, 50.0), Some(Transition::Resolved));
        assert_eq!(tr.observe(&r, 5, None, 60.0), None, "resolves once");
        // A blip shorter than for_secs never fires nor resolves.
        assert_eq!(tr.observe(&r, 5, f, 70.0), None);
        assert_eq!(tr.observe(&r, 5, None, 80.0), None);
    }
}
