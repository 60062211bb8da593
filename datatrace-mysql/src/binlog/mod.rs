//! Change data capture from the binary log (see the crate README's "Change data capture").
//!
//! - [`BinlogSource`]: one unit streaming the changes of many tables, checkpointing at
//!   transaction ends, reconnecting on its own.
//! - [`check_prerequisites`]: binlog on, ROW format, FULL image, replication privileges.
//! - [`SnapshotCdc`]: `snapshot+cdc` as a library feature: the units of a job that copies
//!   tables and then streams their changes, on the job's own checkpoint store.
//! - [`handoff`]: `snapshot+cdc` without a gap: the stream starts at a position taken before
//!   the snapshots, and replays what happened during them.
//! - [`checkpoint`]: the checkpoints a stream resumes from, decoded in one place; a damaged
//!   one is refused.
//! - [`retention`]: the time left before the server may purge the binlog a stream needs.
//! - [`gap`]: a position the server no longer has (purged binlogs), found at start and on
//!   every reconnect; `on_binlog_gap` fails or copies the tables again (`resnapshot`).
//!
//! How a stream is read, file by file: `source` (the [`Source`](datatrace_core::Source)
//! implementation) starts a reader, which reconnects with backoff (`reconnect`) around the
//! stream loop of one connection (`reader`, over a dump opened by `stream`). Each event is
//! dispatched (`dispatch`): GTIDs are kept per transaction (`gtid_state`, over the types of
//! `gtid`), rows events are decoded into records (`rows`) by the decoder of their table
//! map (`tables`, `decode`), which reconciles the table's current shape with the event's
//! (`shape`), and DDL statements ([`ddl`]) become table changes (`table_changes`).

pub mod checkpoint;
mod config;
pub mod ddl;
mod decode;
mod dispatch;
pub mod gap;
pub mod gtid;
mod gtid_state;
pub mod handoff;
pub mod position;
mod read;
mod reader;
mod reconnect;
mod resnapshot;
pub mod retention;
mod rows;
mod shape;
pub mod snapshot_cdc;
mod source;
mod stats;
mod stream;
mod table_changes;
mod tables;

pub use config::{CdcOptions, StartAt};
pub use gap::{BinlogGap, OnBinlogGap};
pub use snapshot_cdc::SnapshotCdc;
pub use source::BinlogSource;
pub use stats::StreamStats;
pub use stream::{check_prerequisites, current_position, Prerequisites};
