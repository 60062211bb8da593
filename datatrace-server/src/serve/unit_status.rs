//! [`UnitStatus`]: a task unit's state as the server stores and shows it: core's
//! [`UnitState`] plus `stopped`, the state of a unit left mid-way by a run that ended (it
//! resumes from its checkpoint; nothing runs it now).

use std::fmt;
use std::str::FromStr;

use datatrace_core::UnitState;
use serde::{Serialize, Serializer};

/// A unit's state in the metadata store, the API and the live view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnitStatus {
    /// One of core's states, as the pipeline reported it.
    Job(UnitState),
    /// Left `running` by a run that ended (stopped, interrupted, crashed).
    Stopped,
}

impl UnitStatus {
    /// Not started.
    pub const PENDING: UnitStatus = UnitStatus::Job(UnitState::Pending);
    /// Being written.
    pub const RUNNING: UnitStatus = UnitStatus::Job(UnitState::Running);
    /// Finished.
    pub const DONE: UnitStatus = UnitStatus::Job(UnitState::Done);
    /// Stopped by an error.
    pub const FAILED: UnitStatus = UnitStatus::Job(UnitState::Failed);

    /// The name stored and shown: `pending`, `running`, `done`, `failed` or `stopped`.
    pub fn as_str(self) -> &'static str {
        match self {
            UnitStatus::Job(UnitState::Pending) => "pending",
            UnitStatus::Job(UnitState::Running) => "running",
            UnitStatus::Job(UnitState::Done) => "done",
            UnitStatus::Job(UnitState::Failed) => "failed",
            UnitStatus::Stopped => "stopped",
        }
    }
}

impl From<UnitState> for UnitStatus {
    fn from(s: UnitState) -> Self {
        UnitStatus::Job(s)
    }
}

impl fmt::Display for UnitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A stored state that is none of [`UnitStatus::as_str`]'s names.
#[derive(Debug, thiserror::Error)]
#[error("unknown unit state {0:?} (expected pending, running, done, failed or stopped)")]
pub struct UnknownUnitStatus(pub String);

impl FromStr for UnitStatus {
    type Err = UnknownUnitStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "pending" => UnitStatus::PENDING,
            "running" => UnitStatus::RUNNING,
            "done" => UnitStatus::DONE,
            "failed" => UnitStatus::FAILED,
            "stopped" => UnitStatus::Stopped,
            other => return Err(UnknownUnitStatus(other.to_owned())),
        })
    }
}

impl Serialize for UnitStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_named() {
        for st in [
            UnitStatus::PENDING,
            UnitStatus::RUNNING,
            UnitStatus::DONE,
            UnitStatus::FAILED,
            UnitStatus::Stopped,
        ] {
            assert_eq!(st.as_str().parse::<UnitStatus>().unwrap(), st);
            assert_eq!(
                serde_json::to_value(st).unwrap(),
                serde_json::json!(st.as_str())
            );
        }
        // Core's own names are the stored ones.
        assert_eq!(
            UnitStatus::from(UnitState::Done).as_str(),
            UnitState::Done.to_string()
        );
        let e = "halted".parse::<UnitStatus>().unwrap_err();
        assert!(e.to_string().contains("\"halted\""), "{e}");
    }
}
