//! The decoder of a table map: the table's shape from `information_schema` (cached until a
//! DDL statement names the table), reconciled with the event's columns when the table
//! changed since the event was written (see [`super::shape`]).

use std::sync::Arc;

use mysql_async::binlog::events::TableMapEvent;
use mysql_async::BinlogStream;

use super::decode::TableDecoder;
use super::reader::{End, Reader};
use super::shape::{
    event_shape, map_shape, missing_columns, narrow, table_map_names, with_map_key,
};
use crate::error::MySqlError;
use crate::schema::{table_info, TableInfo};

impl Reader<'_> {
    /// The decoder of the table of `table_id`; `None` for a table that is not streamed (or
    /// no longer exists and cannot be described).
    pub(super) async fn decoder(
        &mut self,
        stream: &BinlogStream,
        table_id: u64,
    ) -> Result<Option<Arc<TableDecoder>>, End> {
        if let Some(d) = self.decoders.get(&table_id) {
            return Ok(d.clone());
        }
        let Some(tme) = stream.get_tme(table_id) else {
            return Err(End::Fatal(MySqlError::Data {
                context: "reading the binlog".into(),
                message: format!("rows event for table id {table_id} without a table map"),
            }));
        };
        let (db, table) = (
            tme.database_name().into_owned(),
            tme.table_name().into_owned(),
        );
        if !self.src.opts.matches(&db, &table) {
            self.decoders.insert(table_id, None);
            return Ok(None);
        }
        let key = (db.clone(), table.clone());
        let (info, fresh) = match self.infos.get(&key) {
            Some(i) => (i.clone(), false),
            None => match self.load(tme, &db, &table).await? {
                Some(i) => (i, true),
                // Renamed or dropped since the event (a stream behind the server): the table
                // map describes the rows (FULL row metadata).
                None => match map_shape(tme, &db, &table) {
                    Some(shape) => (shape, true),
                    None => {
                        tracing::warn!(table = %format!("{db}.{table}"), "a streamed table no longer exists and the binlog has no column names (binlog_row_metadata=FULL): its changes from this point of the binlog are skipped");
                        self.decoders.insert(table_id, None);
                        return Ok(None);
                    }
                },
            },
        };
        let d = self.reconcile(tme, info, fresh, &db, &table).await?;
        let d = Arc::new(d);
        self.decoders.insert(table_id, Some(d.clone()));
        Ok(Some(d))
    }

    /// A decoder for the event's columns: the table's shape when it fits, else the shape
    /// read again (`fresh`: it was just read), else the shape the event was written with.
    async fn reconcile(
        &mut self,
        tme: &TableMapEvent<'_>,
        info: TableInfo,
        fresh: bool,
        db: &str,
        table: &str,
    ) -> Result<TableDecoder, End> {
        let zero = self.src.opts.zero_date;
        let built = match TableDecoder::new(tme, &info, zero, false) {
            Ok(d) => Ok(d),
            Err(_) => {
                // The cached shape may be old: read it again, then adapt to the event.
                let info = if fresh {
                    info
                } else {
                    match self.load(tme, db, table).await? {
                        Some(i) => i,
                        None => info,
                    }
                };
                match TableDecoder::new(tme, &info, zero, false) {
                    Ok(d) => Ok(d),
                    // The table changed since the event: decode with the event's columns.
                    Err(_) => match event_shape(tme, &info) {
                        Some(shape) => TableDecoder::new(tme, &shape, zero, false),
                        None => {
                            let names = table_map_names(tme).unwrap_or_default();
                            let narrowed = narrow(&info, &missing_columns(&info, &names));
                            TableDecoder::new(tme, &narrowed, zero, true)
                        }
                    },
                }
            }
        };
        built.map_err(|m| {
            End::Fatal(MySqlError::Data {
                context: format!("decoding binlog rows of {db}.{table}"),
                message: m.0,
            })
        })
    }

    /// The table's shape (with the table map's primary key if `information_schema` showed
    /// none: see [`with_map_key`]); `None` when it no longer exists.
    async fn load(
        &mut self,
        tme: &TableMapEvent<'_>,
        db: &str,
        table: &str,
    ) -> Result<Option<TableInfo>, End> {
        match table_info(&self.src.conn, db, table).await {
            Ok(i) => {
                let i = with_map_key(tme, i);
                let opts = &self.src.opts;
                let i = i
                    .with_key_settings(&opts.key_columns, &opts.key)
                    .map_err(End::Fatal)?
                    .with_zero_dates(opts.zero_date);
                self.infos
                    .insert((db.to_string(), table.to_string()), i.clone());
                Ok(Some(i))
            }
            Err(MySqlError::NoTable { .. }) => Ok(None),
            Err(e @ MySqlError::Transient { .. }) => Err(End::Lost(e)),
            Err(e) => Err(End::Fatal(e)),
        }
    }
}
