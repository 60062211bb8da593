//! # datatrace-es
//!
//! The Elasticsearch / OpenSearch connector of DataTrace: a bulk [`EsSink`] and a parallel
//! point-in-time / scroll [`EsSource`], with mappings derived from source schemas and
//! schemas inferred from mappings. It speaks to Elasticsearch 7.x/8.x and OpenSearch; the
//! flavour and version come from `GET /` ([`EsClient::connect`]) and pick the right APIs
//! (`_pit` vs `_search/point_in_time`, `flattened` vs `flat_object`).
//!
//! - [`config`]: the settings as they appear in job files ([`ConnectionConfig`],
//!   [`SinkConfig`], [`SourceConfig`]).
//! - [`EsClient`]: the connection (several nodes or an Elastic Cloud `cloud_id`, basic auth,
//!   API keys or bearer tokens whose [`Secret`]s may come from environment variables or
//!   files, https with a CA file and client certificates, timeouts).
//! - [`EsSink`], [`bulk`]: `_bulk` requests cut by documents and bytes, several in flight,
//!   per-item outcomes; index creation and bulk-load settings.
//! - [`EsSource`]: sliced point-in-time / scroll reads, resumable.
//! - [`types`], [`mapping`], [`naming`]: value and type mapping, index name patterns (for
//!   connectors built on this one, such as denormalized documents).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use datatrace_core::Pipeline;
//! use datatrace_es::{ConnectionConfig, EsSink, EsSource, SinkConfig, SourceConfig};
//!
//! let conn = ConnectionConfig::new(["http://127.0.0.1:9200"]);
//! let source = EsSource::connect(&conn, SourceConfig::new("products")).await?;
//! let sink = EsSink::connect(&conn, SinkConfig { index: "products-copy".into(), ..Default::default() }).await?;
//! let report = Pipeline::new("products", Arc::new(source), Arc::new(sink)).run().await?;
//! println!("{} documents copied", report.written);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod auth;
pub mod bulk;
mod client;
mod cloud;
pub mod config;
mod contexts;
mod errors;
mod hits;
mod indices;
pub mod inferred;
pub mod mapping;
pub mod naming;
mod secret;
mod sink;
mod source;
mod tls;
pub mod types;
pub mod unsigned;

pub use client::{encode_path, ClusterInfo, EsClient, Flavor, PitApi, RawResponse};
pub use config::{
    ConnectionConfig, DecimalMapping, IndexSettings, JsonMapping, MappingConfig, ReadMethod,
    RefreshPolicy, Secret, SinkConfig, SourceConfig, StringMapping, TlsConfig, UnsignedMapping,
    VersionSource, WriteAction,
};
pub use errors::{is_retryable_status, EsError};
pub use indices::refresh;
pub use sink::{EsSink, SinkStats};
pub use source::EsSource;
