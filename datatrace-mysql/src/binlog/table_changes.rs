//! DDL on streamed tables: the schema cache forgets the tables a statement names, and
//! `TRUNCATE`, `DROP TABLE` and `RENAME TABLE` become [`TableChange`]s, one per streamed
//! table (a rename when either name is streamed).

use std::sync::Arc;

use datatrace_core::{Emitter, Position, Schema, TableChange, TableChangeKind};

use super::ddl::{DdlChange, DdlKind};
use super::reader::{End, Reader};

impl Reader<'_> {
    /// A DDL statement: the schema cache forgets the tables it names, and `TRUNCATE`,
    /// `DROP TABLE` and `RENAME TABLE` of streamed tables are passed on as table changes
    /// (once: a reconnect replaying the event emits nothing again).
    pub(super) async fn ddl(
        &mut self,
        ddl: &DdlChange,
        pos: Position,
        out: &mut Emitter,
    ) -> Result<(), End> {
        let touched: Vec<&(String, String)> = ddl
            .tables
            .iter()
            .filter(|(d, t)| self.src.opts.matches(d, t))
            .collect();
        if touched.is_empty() {
            return Ok(());
        }
        tracing::info!(kind = ?ddl.kind, tables = ?touched, "DDL on streamed tables: their schema is read again");
        let changes = self.table_changes(ddl);
        for (d, t) in &ddl.tables {
            self.infos.remove(&(d.clone(), t.clone()));
        }
        self.decoders.clear();
        let ord = pos.ordinal.unwrap_or(0);
        if changes.is_empty() || ord <= self.emitted_upto {
            return Ok(());
        }
        for mut change in changes {
            change.position = Some(pos.clone());
            out.table_change(change).await?;
        }
        self.emitted_upto = ord;
        Ok(())
    }

    /// The table changes of a DDL statement, for the streamed tables it names (a rename
    /// counts when either name is streamed).
    fn table_changes(&self, ddl: &DdlChange) -> Vec<TableChange> {
        let o = &self.src.opts;
        let kind = match ddl.kind {
            DdlKind::Truncate => TableChangeKind::Truncate,
            DdlKind::Drop => TableChangeKind::Drop,
            DdlKind::Rename => {
                return ddl
                    .tables
                    .chunks_exact(2)
                    .filter(|p| p.iter().any(|(d, t)| o.matches(d, t)))
                    .map(|p| {
                        let from = self.table_schema(&p[0].0, &p[0].1);
                        let to = Arc::new(from.renamed(Some(p[1].0.clone()), p[1].1.clone()));
                        TableChange::new(
                            TableChangeKind::Rename {
                                to,
                                to_target: None,
                            },
                            from,
                        )
                    })
                    .collect();
            }
            DdlKind::Alter | DdlKind::Create => return Vec::new(),
        };
        ddl.tables
            .iter()
            .filter(|(d, t)| o.matches(d, t))
            .map(|(d, t)| TableChange::new(kind.clone(), self.table_schema(d, t)))
            .collect()
    }

    /// The table's schema as its records carry it (name = table, namespace = database):
    /// the cached one, or one without columns when no row of it was read.
    fn table_schema(&self, db: &str, table: &str) -> Arc<Schema> {
        match self.infos.get(&(db.to_string(), table.to_string())) {
            Some(i) => i.schema.clone(),
            None => Arc::new(Schema::new(table, Vec::new()).with_namespace(db)),
        }
    }
}
