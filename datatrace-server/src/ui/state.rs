//! What the progress display knows about each unit, folded from progress events.

use std::collections::BTreeMap;

use datatrace_core::{ProgressEvent, ProgressKind, UnitProgress, UnitState};

use super::human;

/// What is known of a unit before the run starts.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitInfo {
    /// The unit.
    pub name: String,
    /// Records the source expects, if known.
    pub estimated_rows: Option<u64>,
    /// Its state in the checkpoint store before this run.
    pub state_before: UnitState,
}

/// One unit's latest known state and counters.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitView {
    /// Its state.
    pub state: UnitState,
    /// The latest counters.
    pub progress: UnitProgress,
    /// The error, for failed units.
    pub error: Option<String>,
    /// Whether anything changed since the last plain log line.
    pub dirty: bool,
}

impl UnitView {
    /// Records handled: written (over all runs), rejected and filtered.
    pub fn processed(&self) -> u64 {
        self.progress.written + self.progress.rejected + self.progress.filtered
    }

    /// `45,000/100,000 rows (45%), 12.3k rows/s, ETA 4.1s` (parts that are unknown are left out).
    pub fn describe(&self) -> String {
        let p = &self.progress;
        let done = self.processed();
        let mut s = match p.estimated_total {
            Some(t) if t > 0 => format!(
                "{}/{} rows ({}%)",
                human::count(done),
                human::count(t),
                (done.min(t) * 100) / t
            ),
            _ => format!("{} rows", human::count(done)),
        };
        if self.state == UnitState::Running {
            s.push_str(&format!(", {} rows/s", human::rate(p.rate)));
            if let Some(t) = p.estimated_total {
                if let Some(eta) = human::eta(t.saturating_sub(done), p.rate) {
                    s.push_str(&format!(", ETA {}", human::duration(eta)));
                }
            }
            // Change streams: seconds between the source commit and the sink write.
            if let Some(lag) = p.lag_ms {
                s.push_str(&format!(", lag {:.1}s", lag as f64 / 1000.0));
            }
        }
        if p.rejected > 0 {
            s.push_str(&format!(", {} rejected", human::count(p.rejected)));
        }
        s
    }
}

/// All units' views, in name order.
#[derive(Debug, Default)]
pub struct Board {
    /// By unit name.
    pub units: BTreeMap<String, UnitView>,
    estimates: BTreeMap<String, Option<u64>>,
}

/// The figures over all units of a job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overall {
    /// Units in all.
    pub units: usize,
    /// Units done (before or during this run).
    pub done: usize,
    /// Records handled (written, rejected, filtered).
    pub processed: u64,
    /// Records expected in all, when every unit's estimate is known.
    pub total: Option<u64>,
    /// Records per second of the running units.
    pub rate: f64,
}

/// What an event changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The unit's state changed to this.
    State(UnitState),
    /// New counters.
    Counters,
}

impl Board {
    /// A board for these units.
    pub fn new(units: &[UnitInfo]) -> Self {
        let mut b = Board::default();
        for u in units {
            b.estimates.insert(u.name.clone(), u.estimated_rows);
            if u.state_before == UnitState::Done {
                // Skipped by this run: counts as finished for the overall figures.
                let total = u.estimated_rows.unwrap_or(0);
                b.units.insert(
                    u.name.clone(),
                    UnitView {
                        state: UnitState::Done,
                        progress: UnitProgress {
                            written: total,
                            estimated_total: u.estimated_rows,
                            ..Default::default()
                        },
                        error: None,
                        dirty: false,
                    },
                );
            }
        }
        b
    }

    /// Folds an event in; returns the unit and what changed.
    pub fn apply(&mut self, ev: &ProgressEvent) -> (String, Change) {
        let name = ev.unit.to_string();
        let estimate = self.estimates.get(&name).copied().flatten();
        let view = self.units.entry(name.clone()).or_insert_with(|| UnitView {
            state: UnitState::Pending,
            progress: UnitProgress {
                estimated_total: estimate,
                ..Default::default()
            },
            error: None,
            dirty: true,
        });
        view.dirty = true;
        match &ev.kind {
            ProgressKind::State { state, error } => {
                view.state = *state;
                view.error = error.clone();
                (name, Change::State(*state))
            }
            ProgressKind::Progress(p) => {
                view.progress = p.clone();
                if view.progress.estimated_total.is_none() {
                    view.progress.estimated_total = estimate;
                }
                (name, Change::Counters)
            }
        }
    }

    /// The figures over all units.
    pub fn overall(&self) -> Overall {
        let total_units = self.estimates.len();
        let done = self
            .units
            .values()
            .filter(|u| u.state == UnitState::Done)
            .count();
        let processed = self.units.values().map(UnitView::processed).sum();
        let total = self.estimates.values().copied().sum::<Option<u64>>();
        let rate = self
            .units
            .values()
            .filter(|u| u.state == UnitState::Running)
            .map(|u| u.progress.rate)
            .sum();
        Overall {
            units: total_units,
            done,
            processed,
            total,
            rate,
        }
    }

    /// `2/3 units done, 245,000/300,000 rows (81%), 50.1k rows/s, ETA 1.1s`.
    pub fn describe_overall(&self) -> String {
        let Overall {
            units,
            done,
            processed,
            total,
            rate,
        } = self.overall();
        let mut s = format!("{done}/{units} units done, ");
        match total {
            Some(t) if t > 0 => s.push_str(&format!(
                "{}/{} rows ({}%)",
                human::count(processed),
                human::count(t),
                (processed.min(t) * 100) / t
            )),
            _ => s.push_str(&format!("{} rows", human::count(processed))),
        }
        if done < units {
            s.push_str(&format!(", {} rows/s", human::rate(rate)));
            if let Some(eta) = total.and_then(|t| human::eta(t.saturating_sub(processed), rate)) {
                s.push_str(&format!(", ETA {}", human::duration(eta)));
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(unit: &str, kind: ProgressKind) -> ProgressEvent {
        ProgressEvent {
            job: "j".into(),
            unit: unit.into(),
            kind,
        }
    }

    #[test]
    fn folds_events_and_counts_units_done_before() {
        let mut board = Board::new(&[
            UnitInfo {
                name: "a".into(),
                estimated_rows: Some(1000),
                state_before: UnitState::Done,
            },
            UnitInfo {
                name: "b".into(),
                estimated_rows: Some(3000),
                state_before: UnitState::Pending,
            },
        ]);
        let (unit, change) = board.apply(&event(
            "b",
            ProgressKind::State {
                state: UnitState::Running,
                error: None,
            },
        ));
        assert_eq!(
            (unit.as_str(), change),
            ("b", Change::State(UnitState::Running))
        );
        board.apply(&event(
            "b",
            ProgressKind::Progress(UnitProgress {
                written: 1000,
                rejected: 500,
                rate: 500.0,
                estimated_total: Some(3000),
                ..Default::default()
            }),
        ));
        assert_eq!(
            board.units["b"].describe(),
            "1,500/3,000 rows (50%), 500 rows/s, ETA 3.0s, 500 rejected"
        );
        assert_eq!(
            board.describe_overall(),
            "1/2 units done, 2,500/4,000 rows (62%), 500 rows/s, ETA 3.0s"
        );
    }
}
