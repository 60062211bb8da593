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
//! - [`client`]: the connection (several nodes, basic auth or API key, TLS, timeouts).
//! - [`sink`], [`bulk`]: `_bulk` requests cut by documents and bytes, several in flight,
//!   per-item outcomes; [`indices`]: index creation and bulk-load settings.
//! - [`source`], [`contexts`]: sliced point-in-time / scroll reads, resumable.
//! - [`types`], [`mapping`], [`naming`]: value and type mapping, index name patterns.
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

pub mod bulk;
pub mod client;
pub mod config;
pub mod contexts;
pub mod errors;
mod hits;
pub mod indices;
pub mod mapping;
pub mod naming;
pub mod sink;
pub mod source;
pub mod types;

pub use client::{ClusterInfo, EsClient, Flavor, PitApi};
pub use config::{
    ConnectionConfig, DecimalMapping, IndexSettings, JsonMapping, MappingConfig, ReadMethod,
    RefreshPolicy, Secret, SinkConfig, SourceConfig, StringMapping, TlsConfig, VersionSource,
    WriteAction,
};
pub use errors::EsError;
pub use sink::{EsSink, SinkStats};
pub use source::EsSource;
