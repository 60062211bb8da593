//! Statements of a batch: each record's rows grouped into multi-row statements per table,
//! operation and write mode ([`crate::write::Builder`]), with a statement of its own for a
//! row of a table without a key; records that cannot be written get their reason.

use datatrace_core::{Op, Outcome, Record};

use super::{MySqlSink, Target};
use crate::config::WriteMode;
use crate::write::{actions, delete_row, key_term, row_tuple, update_row, Action, Builder, Group};

impl MySqlSink {
    /// Builds statements for the records not yet resolved; records that cannot be rendered
    /// get their outcome set.
    pub(super) fn build(
        &self,
        records: &[Record],
        targets: &[Option<Target>],
        outcomes: &mut [Option<Outcome>],
        single: Option<usize>,
    ) -> Builder {
        let mut b = Builder::new(self.limit);
        let range: Vec<usize> = match single {
            Some(i) => vec![i],
            None => (0..records.len()).collect(),
        };
        for i in range {
            if outcomes[i].is_some() {
                continue;
            }
            let (r, Some(t)) = (&records[i], &targets[i]) else {
                continue;
            };
            if let Err(why) = self.build_record(&mut b, r, t, i) {
                outcomes[i] = Some(Outcome::Rejected(why.into()));
            }
            if single.is_some() {
                b.close();
            }
        }
        b.close();
        b
    }

    /// Adds record `i`'s statements to `b`: pieces of grouped statements, or statements of
    /// their own for rows of tables without a key; the reason when it cannot be written.
    fn build_record(
        &self,
        b: &mut Builder,
        r: &Record,
        t: &Target,
        i: usize,
    ) -> Result<(), String> {
        for action in actions(r) {
            let delete = matches!(action, Action::Delete(_));
            let piece = match &action {
                Action::Write => row_tuple(&r.values),
                Action::Delete(key) => {
                    let cols: Vec<String> = r
                        .schema
                        .primary_key_names()
                        .iter()
                        .map(|s| s.to_string())
                        .collect();
                    key_term(&cols, key)
                }
                // Rows of tables without a key: a statement each.
                Action::DeleteRow(_) | Action::UpdateRow(_) => {
                    self.keyless_statement(b, r, t, &action, i)?;
                    continue;
                }
            };
            let piece = piece
                .map_err(|why| format!("table {}, key {}: {why}", t.name(), r.key_string(",")))?;
            // Updates are upserts even in insert modes (the row exists by definition).
            let mode = match (r.op, self.opts.mode) {
                (Op::Update, WriteMode::Insert | WriteMode::InsertIgnore) => WriteMode::Upsert,
                (_, m) => m,
            };
            let group = Group {
                table: t.sql.clone(),
                delete,
                mode,
                schema: r.schema.clone(),
            };
            if !b.push(&group, &piece, i) {
                return Err(format!(
                    "table {}, key {}: the row needs a statement of {} bytes, above the limit of {} (max_allowed_packet)",
                    t.name(),
                    r.key_string(","),
                    piece.len(),
                    self.limit
                ));
            }
        }
        Ok(())
    }

    /// The statement of its own that deletes or updates a row of a table without a key.
    fn keyless_statement(
        &self,
        b: &mut Builder,
        r: &Record,
        t: &Target,
        action: &Action,
        i: usize,
    ) -> Result<(), String> {
        let sql = match action {
            Action::DeleteRow(row) => delete_row(&t.sql, &r.schema, row),
            _ => match &r.before {
                Some(before) => update_row(&t.sql, &r.schema, before, &r.values),
                None => Err("an update without its before-image".into()),
            },
        };
        let why = match sql.map(|sql| b.single(sql, i)) {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(len)) => format!(
                "the row needs a statement of {len} bytes, above the limit of {} (max_allowed_packet)",
                self.limit
            ),
            Err(why) => why,
        };
        Err(format!(
            "table {} (no primary key), row {}: {why}",
            t.name(),
            r.key_string(",")
        ))
    }
}
