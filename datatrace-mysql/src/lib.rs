//! # datatrace-mysql
//!
//! The MySQL (and MariaDB) connector of DataTrace: a snapshot [`MySqlSource`] that reads a
//! table in primary-key chunks, in parallel, streaming with constant memory and resuming
//! from the last acknowledged key; a [`MySqlSink`] that writes batches as multi-row
//! statements in one transaction each; schema discovery from `information_schema`; and the
//! exact type mapping in [`types`].
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use datatrace_core::Pipeline;
//! use datatrace_mysql::*;
//!
//! let src = MySqlConnection::connect(&ConnectionConfig::new("mysql://root@127.0.0.1:3306/shop")).await?;
//! let dst = MySqlConnection::connect(&ConnectionConfig::new("mysql://root@127.0.0.1:3306/copy")).await?;
//! let sink = Arc::new(MySqlSink::new(dst, SinkOptions { create_table: true, ..Default::default() })?);
//! for table in discover_tables(&src, &TableSelector::include(["shop.*"])).await? {
//!     let unit = table.qualified_name();
//!     let source = Arc::new(MySqlSource::new(src.clone(), table, SourceOptions::default())?);
//!     Pipeline::new(unit, source, sink.clone()).run().await?;
//! }
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod binlog;
mod bulk_load;
pub mod checksum;
pub mod chunk;
mod config;
mod connect;
pub mod ddl;
mod error;
mod load_data;
pub mod narrow;
pub mod schema;
pub mod schema_change;
mod sink;
mod snapshot;
mod source;
pub mod sql;
pub mod tls;
pub mod types;
mod write;

pub use binlog::SnapshotCdc;
pub use config::{
    ConnectionConfig, SinkOptions, SourceOptions, TableSelector, WriteMode, ZeroDate,
};
pub use connect::{MySqlConnection, ServerInfo};
pub use error::MySqlError;
pub use schema::{discover_tables, table_info, KeySource, TableInfo};
pub use sink::MySqlSink;
pub use snapshot::BinlogPosition;
pub use source::MySqlSource;
pub use tls::SslMode;
