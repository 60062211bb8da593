//! Change data capture from the binary log (see the crate README's "Change data capture").
//!
//! - [`BinlogSource`]: one unit streaming the changes of many tables, checkpointing at
//!   transaction ends, reconnecting on its own.
//! - [`check_prerequisites`]: binlog on, ROW format, FULL image, replication privileges.
//! - [`handoff`]: `snapshot+cdc` without a gap: the stream starts at a position taken before
//!   the snapshots, and replays what happened during them.

pub mod config;
pub mod ddl;
pub mod decode;
pub mod gtid;
pub mod handoff;
pub mod position;
pub mod source;
pub mod stream;

pub use config::{CdcOptions, StartAt};
pub use source::{BinlogSource, StreamStats};
pub use stream::{check_prerequisites, current_position, Prerequisites};
