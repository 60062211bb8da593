//! # DataTrace
//!
//! Move data between MySQL and Elasticsearch: full copies, continuous change capture from the
//! MySQL binlog, or both with a gap-free handoff, in all four directions.
//!
//! This is the facade crate: it re-exports [`datatrace_core`] at its root, and the connector
//! crates as [`mysql`] and [`es`] behind the features of the same names, and denormalized
//! documents (a MySQL row with its related rows as one Elasticsearch document, kept exact
//! under change data capture) as [`denormal`] (feature `denormal`, on by default), and the
//! Kafka connector as `kafka` (feature `kafka`).
#![warn(missing_docs)]

pub use datatrace_core::*;

/// The MySQL connector (feature `mysql`).
#[cfg(feature = "mysql")]
pub use datatrace_mysql as mysql;

/// The Elasticsearch / OpenSearch connector (feature `es`).
#[cfg(feature = "es")]
pub use datatrace_es as es;

/// Denormalized documents (feature `denormal`).
#[cfg(feature = "denormal")]
pub use datatrace_denormal as denormal;

/// The Kafka connector: Debezium change events, a Kafka sink and a consumer-group source
/// (feature `kafka`).
#[cfg(feature = "kafka")]
pub use datatrace_kafka as kafka;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
