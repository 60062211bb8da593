//! The built-in endpoints, for smoke tests and for benchmarking the CLI itself: the
//! `generator` source (the core's [`GeneratorSource`](datatrace_core::testing::GeneratorSource))
//! and the `discard` target (the core's [`DiscardSink`](datatrace_core::testing::DiscardSink)).
//!
//! ```toml
//! [source]
//! type = "generator"
//! units = ["a", "b"]   # one unit per name (default: one unit "generated")
//! rows = 100000        # rows per unit (default 10000)
//! columns = 10         # an `id` key and columns cycling int, string, float, decimal (default 10)
//! width = 16           # characters per string (default 16)
//!
//! [target]
//! type = "discard"     # counts the records and drops them
//! ```

use serde::Deserialize;

/// `[source] type = "generator"`: synthetic rows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorSpec {
    /// Unit names, one generated unit each.
    pub units: Vec<String>,
    /// Rows per unit.
    pub rows: u64,
    /// Columns per row, the `id` key included.
    pub columns: usize,
    /// Characters per string value.
    pub width: usize,
}

impl Default for GeneratorSpec {
    fn default() -> Self {
        GeneratorSpec {
            units: vec!["generated".into()],
            rows: 10_000,
            columns: 10,
            width: 16,
        }
    }
}

impl GeneratorSpec {
    /// Checks the values; returns the key (below `source`) and what is wrong.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.units.is_empty() {
            return Err(("units".into(), "expected at least one unit name".into()));
        }
        for (i, u) in self.units.iter().enumerate() {
            if u.trim().is_empty() {
                return Err((format!("units[{i}]"), "expected a non-empty name".into()));
            }
            if self.units[..i].contains(u) {
                return Err((format!("units[{i}]"), format!("unit {u:?} is listed twice")));
            }
        }
        if self.columns == 0 {
            return Err(("columns".into(), "must be at least 1 (the id)".into()));
        }
        Ok(())
    }
}

/// `[target] type = "discard"`: counts records and drops them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiscardSpec {}
