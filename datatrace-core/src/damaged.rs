//! [`DamagedCheckpoint`]: a part's spec or a resume position its source cannot read.

/// A part's spec or a resume position that its source cannot read: the checkpoint is damaged,
/// or was written by another kind of source (or another read method). Reading on as if there
/// were no checkpoint would silently copy the unit again from its start, so sources refuse
/// it with this error instead ([`crate::Part::spec_as`], [`crate::Position::state_as`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("damaged checkpoint: {what} {value} is not {expected} ({reason}); clear the unit's checkpoint to read it again from its start")]
pub struct DamagedCheckpoint {
    /// `the spec of part slice-2`, `the resume position of part chunk-0007`.
    pub what: String,
    /// The value found (JSON, shortened).
    pub value: String,
    /// What the source reads (`an Elasticsearch slice`).
    pub expected: String,
    /// Why it is not one.
    pub reason: String,
}

impl DamagedCheckpoint {
    /// `value` (JSON) is not `expected`.
    pub fn new(
        what: impl Into<String>,
        value: &serde_json::Value,
        expected: impl Into<String>,
        reason: impl std::fmt::Display,
    ) -> Self {
        let mut value = value.to_string();
        if value.len() > 200 {
            let mut cut = 200;
            while !value.is_char_boundary(cut) {
                cut -= 1;
            }
            value.truncate(cut);
            value.push('…');
        }
        DamagedCheckpoint {
            what: what.into(),
            value,
            expected: expected.into(),
            reason: reason.to_string(),
        }
    }
}
