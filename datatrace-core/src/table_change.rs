//! [`TableChange`]: a change to a whole table that a change stream carries between its rows
//! (`TRUNCATE`, `DROP TABLE`, `RENAME TABLE`).
//!
//! Column changes (`ADD`/`MODIFY`/`DROP COLUMN`) need no event of their own: the records
//! after them carry the new [`Schema`]. A table change does, because it changes rows the
//! stream never mentions (`TRUNCATE` deletes them all) or the name the rows live under.
//!
//! The runner applies a table change as a barrier: every record read before it is written
//! first, then [`crate::Sink::table_change`] runs alone, then records read after it flow
//! again. Its position is committed only once the sink has applied it, so a crash replays it;
//! sinks apply table changes idempotently (a second `TRUNCATE` of an empty table, a `DROP`
//! of a missing table, a `RENAME` already done are no-ops).

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::record::Position;
use crate::schema::Schema;

/// What happened to the table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TableChangeKind {
    /// All rows were deleted (`TRUNCATE TABLE`).
    Truncate,
    /// The table is gone (`DROP TABLE`).
    Drop,
    /// The table now has another name (`RENAME TABLE`, `ALTER TABLE ... RENAME TO`).
    Rename {
        /// The table under its new name (same columns).
        to: Arc<Schema>,
        /// The target chosen for the new name by a routing transform; sinks use their
        /// configured naming when it is absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to_target: Option<Arc<str>>,
    },
}

/// A change to a whole table from a change stream (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableChange {
    /// What happened.
    pub kind: TableChangeKind,
    /// The table it happened to: its name and namespace (the database), and its columns when
    /// the source knows them (they may be empty for a table no row was read from).
    pub schema: Arc<Schema>,
    /// The target chosen by a routing transform; sinks use their configured naming when it
    /// is absent (as for [`crate::Record::target`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Arc<str>>,
    /// Where in the source the change happened (ordinal and commit time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
}

impl TableChange {
    /// A change of `kind` to the table `schema`, without target or position.
    pub fn new(kind: TableChangeKind, schema: Arc<Schema>) -> Self {
        TableChange {
            kind,
            schema,
            target: None,
            position: None,
        }
    }

    /// The target name: the routed target if set, else the schema's name.
    pub fn target_name(&self) -> &str {
        self.target.as_deref().unwrap_or(self.schema.name())
    }

    /// The statement's verb, for messages: `TRUNCATE`, `DROP TABLE`, `RENAME TABLE`.
    pub fn verb(&self) -> &'static str {
        match self.kind {
            TableChangeKind::Truncate => "TRUNCATE",
            TableChangeKind::Drop => "DROP TABLE",
            TableChangeKind::Rename { .. } => "RENAME TABLE",
        }
    }
}

impl fmt::Display for TableChange {
    /// `TRUNCATE shop.orders`, `RENAME TABLE shop.a TO shop.b`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb(), self.schema.qualified_name())?;
        if let TableChangeKind::Rename { to, .. } = &self.kind {
            write!(f, " TO {}", to.qualified_name())?;
        }
        Ok(())
    }
}

/// What a sink does with the [`TableChange`]s of a change stream; sinks that support them
/// take this as a setting (`table_changes` in job files).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableChanges {
    /// Apply the change to the target (truncate, drop or rename it).
    #[default]
    Apply,
    /// Stop the unit with an error naming the change; nothing after it is written and its
    /// position is not committed, so the stream resumes at it once the target is dealt with.
    Fail,
    /// Leave the target as it is (logged as a warning).
    Ignore,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, DataType};

    #[test]
    fn display_and_serde() {
        let a = Arc::new(
            Schema::new("a", vec![Column::new("id", DataType::Int)]).with_namespace("shop"),
        );
        let b = Arc::new(Schema::new("b", a.columns().to_vec()).with_namespace("shop"));
        let c = TableChange::new(
            TableChangeKind::Rename {
                to: b,
                to_target: None,
            },
            a.clone(),
        );
        assert_eq!(c.to_string(), "RENAME TABLE shop.a TO shop.b");
        assert_eq!(c.target_name(), "a");
        let back: TableChange = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        let t = TableChange::new(TableChangeKind::Truncate, a);
        assert_eq!(t.to_string(), "TRUNCATE shop.a");
        let p: TableChanges = serde_json::from_str("\"fail\"").unwrap();
        assert_eq!(p, TableChanges::Fail);
    }
}
