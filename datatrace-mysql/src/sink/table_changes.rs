//! Table changes of a change stream applied to the target table: `TRUNCATE`, `DROP TABLE`
//! and `RENAME TABLE`, each idempotent so that a change replayed after a crash does nothing
//! more (see the [`super`] module docs).

use datatrace_core::{SinkError, TableChange, TableChangeKind};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;

use super::{classify, to_sink_error, MySqlSink, Target};
use crate::error::MySqlError;

impl MySqlSink {
    /// Applies a table change to the target (see the module docs).
    pub(super) async fn apply_table_change(
        &self,
        change: &TableChange,
        from: &Target,
        to: Option<&Target>,
    ) -> Result<(), SinkError> {
        let mut c = self.conn.get().await.map_err(to_sink_error)?;
        let what = |verb: &str| format!("{change}: {verb} target table {}", from.name());
        match (&change.kind, to) {
            (TableChangeKind::Truncate, _) => {
                match c.query_drop(format!("TRUNCATE TABLE {}", from.sql)).await {
                    Ok(()) => {
                        tracing::info!(%change, target = %from.name(), "target table truncated")
                    }
                    Err(e) => match MySqlError::from_driver(what("truncating"), e) {
                        // Replayed after a later DROP, or never created: nothing to empty.
                        MySqlError::NoTable { .. } => {
                            tracing::info!(%change, target = %from.name(), "target table does not exist: nothing to truncate")
                        }
                        other => return Err(to_sink_error(other)),
                    },
                }
            }
            (TableChangeKind::Drop, _) => {
                c.query_drop(format!("DROP TABLE IF EXISTS {}", from.sql))
                    .await
                    .map_err(|e| classify(what("dropping"), e))?;
                tracing::info!(%change, target = %from.name(), "target table dropped");
            }
            (TableChangeKind::Rename { .. }, Some(to)) => {
                if to.sql == from.sql {
                    tracing::info!(%change, target = %from.name(), "both names have the same target table: nothing to rename");
                } else {
                    let old = table_exists(&mut c, from, change).await?;
                    let new = table_exists(&mut c, to, change).await?;
                    match (old, new) {
                        (true, false) => {
                            c.query_drop(format!("RENAME TABLE {} TO {}", from.sql, to.sql))
                                .await
                                .map_err(|e| {
                                    classify(format!("{change}: renaming target table {} to {}", from.name(), to.name()), e)
                                })?;
                            tracing::info!(%change, from = %from.name(), to = %to.name(), "target table renamed");
                        }
                        (true, true) => {
                            return Err(SinkError::Fatal(format!(
                                "{change}: both target tables {} and {} exist, and renaming would overwrite {}; drop or rename one of them by hand, then run again",
                                from.name(),
                                to.name(),
                                to.name()
                            ).into()))
                        }
                        // Already renamed (the change is replayed after a crash).
                        (false, true) => {
                            tracing::info!(%change, to = %to.name(), "target table already renamed")
                        }
                        (false, false) => {
                            tracing::info!(%change, from = %from.name(), to = %to.name(), "neither target table exists: nothing to rename")
                        }
                    }
                }
            }
            (TableChangeKind::Rename { .. }, None) => {}
        }
        Ok(())
    }

    /// Forgets what the sink knows of `t` (created, schemas compared).
    pub(super) async fn forget(&self, t: &Target) {
        self.created.lock().await.remove(&t.sql);
        self.followed.forget(&t.sql);
        self.bulk.forget(&t.sql);
        self.fresh
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&t.sql);
    }
}

/// Whether target table `t` exists.
async fn table_exists(c: &mut Conn, t: &Target, change: &TableChange) -> Result<bool, SinkError> {
    let n: Option<u64> = c
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?",
            (&t.db, &t.table),
        )
        .await
        .map_err(|e| classify(format!("{change}: looking up target table {}", t.name()), e))?;
    Ok(n.unwrap_or(0) > 0)
}
