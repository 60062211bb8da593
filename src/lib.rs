//! # DataTrace
//!
//! Move data between MySQL and Elasticsearch: full copies, continuous change capture from the
//! MySQL binlog, or both with a gap-free handoff, in all four directions.
//!
//! This is the facade crate: it re-exports [`datatrace_core`] at its root, and the connector
//! crates as [`mysql`] and [`es`] behind the features of the same names.
#![warn(missing_docs)]

pub use datatrace_core::*;

/// The MySQL connector (feature `mysql`).
#[cfg(feature = "mysql")]
pub use datatrace_mysql as mysql;

/// The Elasticsearch / OpenSearch connector (feature `es`).
#[cfg(feature = "es")]
pub use datatrace_es as es;

/// The README's examples, compiled and run as doc tests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
