//! Table changes of a change stream (`TRUNCATE`, `DROP TABLE`, `RENAME TABLE`) applied to
//! the table's index under [`crate::SinkConfig::table_changes`].

use datatrace_core::{SinkError, TableChange, TableChangeKind, TableChanges};

use super::EsSink;
use crate::errors::EsError;
use crate::indices::{drop_index, rename_index, truncate_index, Renamed};

impl EsSink {
    /// The index (and for a rename the new name's index) of a change, then what
    /// `table_changes` says to do with it.
    pub(super) async fn on_table_change(&self, change: &TableChange) -> Result<(), SinkError> {
        let fatal = |e: EsError| SinkError::fatal(e).context(change);
        let index = self
            .index_for_table(&change.schema, change.target.as_deref())
            .map_err(fatal)?;
        let to = match &change.kind {
            TableChangeKind::Rename { to, to_target } => Some(
                self.index_for_table(to, to_target.as_deref())
                    .map_err(fatal)?,
            ),
            _ => None,
        };
        let indices = match &to {
            Some(to) => format!("index {index} (new name's index {to})"),
            None => format!("index {index}"),
        };
        match self.cfg.table_changes {
            TableChanges::Apply => self.apply_table_change(change, &index, to.as_deref()).await,
            TableChanges::Fail => Err(SinkError::Fatal(format!(
                "{change}: {indices} left as it is because the sink has table_changes = \"fail\"; deal with the index, then resume (or set table_changes = \"apply\" or \"ignore\")"
            ).into())),
            TableChanges::Ignore => {
                tracing::warn!(change = %change, "{indices} left as it is (table_changes = \"ignore\"): its documents may no longer match the source");
                Ok(())
            }
        }
    }

    /// Why a `TRUNCATE`/`DROP TABLE` (or a `RENAME` between two indices) cannot be applied
    /// under this sink's naming, if it cannot.
    fn table_change_refusal(&self, change: &TableChange, index: &str) -> Option<String> {
        let remedy = "set table_changes = \"ignore\" to leave the index as it is, or \"fail\" to stop at such changes";
        if self.pattern.is_time_based() {
            return Some(format!(
                "{change}: index pattern {:?} is time-based, so the table's documents are spread over several indices and {index} is only the current one; {remedy}",
                self.cfg.index
            ));
        }
        if !self.pattern.has_table() {
            return Some(format!(
                "{change}: index {index} is not per table (index pattern {:?} has no {{table}}), so it may hold the documents of other tables too; {remedy}",
                self.cfg.index
            ));
        }
        None
    }

    /// Applies a table change under `table_changes = "apply"`.
    async fn apply_table_change(
        &self,
        change: &TableChange,
        index: &str,
        to: Option<&str>,
    ) -> Result<(), SinkError> {
        if to == Some(index) {
            tracing::info!(change = %change, index, "table change: both names map to the same index, nothing to do");
            return Ok(());
        }
        if let Some(why) = self.table_change_refusal(change, index) {
            return Err(SinkError::fatal(why));
        }
        match (&change.kind, to) {
            (TableChangeKind::Rename { .. }, Some(to)) => self.rename(change, index, to).await,
            (TableChangeKind::Truncate, _) => {
                // The index keeps its mapping and settings: what the sink knows stays true.
                match truncate_index(&self.client, index, &change.to_string()).await? {
                    Some(deleted) => {
                        tracing::info!(change = %change, index, deleted, "table change: documents deleted")
                    }
                    None => {
                        tracing::info!(change = %change, index, "table change: the index does not exist, nothing to do")
                    }
                }
                Ok(())
            }
            (TableChangeKind::Drop, _) | (TableChangeKind::Rename { .. }, None) => {
                let r = drop_index(&self.client, index, &change.to_string()).await;
                self.forget_index(index);
                if r? {
                    tracing::info!(change = %change, index, "table change: index deleted");
                } else {
                    tracing::info!(change = %change, index, "table change: the index does not exist, nothing to do");
                }
                Ok(())
            }
        }
    }

    /// `RENAME TABLE`: the documents move to the new name's index.
    async fn rename(&self, change: &TableChange, index: &str, to: &str) -> Result<(), SinkError> {
        let r = rename_index(
            &self.client,
            index,
            to,
            self.cfg.version.is_some(),
            &change.to_string(),
        )
        .await;
        // Whatever happened, the sink's view of both indices may be stale.
        self.move_index(index, to);
        match r? {
            Renamed::Moved { documents } => {
                tracing::info!(change = %change, from = index, to, documents, "table change: documents moved to the new index, old index deleted")
            }
            Renamed::AlreadyDone => {
                tracing::info!(change = %change, from = index, to, "table change: already applied")
            }
            Renamed::NothingToDo => {
                tracing::info!(change = %change, from = index, to, "table change: neither index exists, nothing to do")
            }
        }
        Ok(())
    }
}
