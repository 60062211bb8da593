//! # datatrace-denormal
//!
//! Denormalized documents: one MySQL row (the root) with its related rows, objects for
//! `many_to_one` and `one_to_one` relations, arrays (optionally `nested`) for `one_to_many`
//! and `many_to_many` (through a join table), scalar arrays, at any depth, written as one
//! Elasticsearch / OpenSearch document, and kept exact under change data capture.
//!
//! - [`spec`]: the definition as written ([`DocumentSpec`], [`RelationSpec`]), in job
//!   files or code; [`validate`] and [`resolve`] check it (errors name the relation);
//!   [`fanout`] measures how many documents a shared row reaches.
//! - [`snapshot`]: [`DocumentSource`], a snapshot of the documents, in batches of roots
//!   (one query per relation per batch), parallel over key ranges of the root table.
//! - [`stream`]: [`DocumentStream`], the binlog change stream turned into rebuilt
//!   documents; its module docs hold the argument for why the index ends up equal to a
//!   fresh snapshot after any stream of changes.
//! - [`check`]: compares the index with documents rebuilt from the source, and repairs it.
//! - [`Documents`]: the definitions of a job resolved together: the sources, the stream,
//!   and the check in one place.
//!
//! ```no_run
//! # async fn f() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use datatrace_core::Pipeline;
//! use datatrace_denormal::{DocumentSpec, Documents, RelationSpec};
//! use datatrace_es::{ConnectionConfig as EsConfig, EsSink, SinkConfig};
//! use datatrace_mysql::{ConnectionConfig, MySqlConnection};
//!
//! let mysql = MySqlConnection::connect(&ConnectionConfig::new("mysql://root@127.0.0.1:3306/shop")).await?;
//! let sink = Arc::new(EsSink::connect(&EsConfig::new(["http://127.0.0.1:9200"]), Documents::sink_config("shop-{table}")).await?);
//! let orders = DocumentSpec::new("orders", "orders")
//!     .relation(RelationSpec::many_to_one("customer", "customers", ["customer_id"]))
//!     .relation(RelationSpec::one_to_many("items", "order_items", ["order_id"]).nested());
//! let docs = Documents::resolve(&mysql, vec![orders], &sink).await?;
//! let source = docs.snapshot("orders")?;
//! Pipeline::new("orders", Arc::new(source), sink.clone()).run().await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

pub mod build;
pub mod check;
pub mod clock;
pub mod definition;
pub mod documents;
pub mod error;
pub mod fanout;
pub mod fetch;
pub mod keys;
pub mod mapping;
pub mod query;
pub mod resolve;
pub mod snapshot;
pub mod spec;
pub mod stream;
pub mod validate;

pub use clock::{Clock, ReadTxn};
pub use definition::{Definition, DocKind, IndexShape, Link, Node};
pub use documents::Documents;
pub use error::{DenormalError, Result};
pub use snapshot::DocumentSource;
pub use spec::{DocumentSpec, RelationKind, RelationSpec, ThroughSpec};
pub use stream::{DocumentStream, StreamStats};
