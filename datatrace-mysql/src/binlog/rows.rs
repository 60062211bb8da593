//! Rows events into records: `Insert`, `Update` with its before-image, `Delete` with the
//! deleted row, each carrying the event's position (ordinal and commit time).

use std::sync::atomic::Ordering;

use datatrace_core::{Emitter, Op, Position, Record};
use mysql_async::binlog::events::RowsEventData;
use mysql_async::BinlogStream;

use super::decode::TableDecoder;
use super::reader::{End, Reader};
use crate::error::MySqlError;

impl Reader<'_> {
    /// Emits the rows of a rows event of a streamed table.
    pub(super) async fn rows(
        &mut self,
        stream: &BinlogStream,
        re: &RowsEventData<'_>,
        pos: Position,
        out: &mut Emitter,
    ) -> Result<(), End> {
        let op = match re {
            RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => Op::Insert,
            RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => Op::Delete,
            _ => Op::Update,
        };
        if !self.src.opts.ops.contains(&op) {
            return Ok(());
        }
        let Some(dec) = self.decoder(stream, re.table_id()).await? else {
            return Ok(());
        };
        // Decoded first, emitted after: each row gets an ordinal of its own (below).
        let records = decode_rows(&dec, re, op, &pos)?;
        let end = pos.ordinal.unwrap_or(0);
        let n = records.len() as u64;
        let floor = self.floors.get(&dec.name).copied();
        for (i, mut rec) in records.into_iter().enumerate() {
            let ordinal = row_ordinal(end, i as u64, n);
            if floor.is_some_and(|f| ordinal <= f) {
                // Already in the snapshot of this table (taken at that point exactly).
                continue;
            }
            rec.position = Some(Position {
                ordinal: pos.ordinal.map(|_| ordinal),
                ..pos.clone()
            });
            out.emit(rec).await?;
            self.src.stats.rows.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// The records of a rows event, in event order (an update's before image with it).
fn decode_rows(
    dec: &TableDecoder,
    re: &RowsEventData<'_>,
    op: Op,
    pos: &Position,
) -> Result<Vec<Record>, End> {
    let w = dec.width();
    // Which columns each image holds, as flags for the table map's columns.
    let before_bits: Option<Vec<bool>> = re
        .columns_before_image()
        .map(|b| (0..w).map(|i| b.get(i).is_some_and(|x| *x)).collect());
    let after_bits: Option<Vec<bool>> = re
        .columns_after_image()
        .map(|b| (0..w).map(|i| b.get(i).is_some_and(|x| *x)).collect());
    if matches!(re, RowsEventData::PartialUpdateRowsEvent(_)) {
        return Err(End::Fatal(MySqlError::Config(
            "partial JSON updates in the binlog: set binlog_row_value_options='' on the server"
                .into(),
        )));
    }
    let data = re.rows_data();
    let mut at = 0usize;
    let fail = |m: String| {
        End::Fatal(MySqlError::Data {
            context: format!(
                "decoding binlog rows of {} at ordinal {:?}",
                dec.name, pos.ordinal
            ),
            message: m,
        })
    };
    let mut records = Vec::new();
    while at < data.len() {
        let mut image = |bits: &Option<Vec<bool>>| match bits {
            Some(b) => {
                let (v, used) = dec.decode_image(&data[at..], b).map_err(fail)?;
                at += used;
                Ok::<_, End>(Some(v))
            }
            None => Ok(None),
        };
        let before = image(&before_bits)?;
        let after = image(&after_bits)?;
        let rec = match (op, before, after) {
            (Op::Delete, Some(b), _) => Record::new(Op::Delete, dec.schema.clone(), b),
            (Op::Update, b, Some(a)) => {
                let mut r = Record::new(Op::Update, dec.schema.clone(), a);
                r.before = b;
                r
            }
            (_, _, Some(a)) => Record::new(Op::Insert, dec.schema.clone(), a),
            _ => return Err(fail("a row without an image".into())),
        };
        records.push(rec);
    }
    Ok(records)
}

/// The ordinal of row `i` of `n` of a rows event ending at ordinal `end`: the last row gets
/// `end`, each earlier row one less. Every row is at least one byte of the event, so these
/// stay above the previous event's end: ordinals grow row by row, and two rows of one
/// statement (a key-changing `UPDATE` of several rows whose new keys are old keys of the
/// others) never share an external version.
pub(crate) fn row_ordinal(end: u64, i: u64, n: u64) -> u64 {
    end.saturating_sub(n.saturating_sub(1).saturating_sub(i))
}

#[cfg(test)]
mod tests {
    use super::row_ordinal;

    #[test]
    fn rows_of_one_event_get_growing_ordinals_ending_at_the_event() {
        let ords: Vec<u64> = (0..4).map(|i| row_ordinal(1000, i, 4)).collect();
        assert_eq!(ords, [997, 998, 999, 1000]);
        assert_eq!(row_ordinal(1000, 0, 1), 1000);
    }
}
