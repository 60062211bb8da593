//! Connectors: everything the server knows about a kind of source or target, behind one
//! trait, registered in one place ([`Registry`]).
//!
//! A [`Connector`] answers to the `type` of job-file sections (`type = "mysql"`) and parses
//! them into endpoints: a [`SourceEndpoint`] finds a job's units and reads them, a
//! [`TargetEndpoint`] connects and gives each unit its sink. The endpoints also provide
//! `check` support (each side of a unit, looked up by key) and `datatrace serve`'s data
//! sources (test connection, list units), and the connector a [`ConnectorUi`] telling the
//! web UI how to offer it. The server's generic code (job files, planning, `check`,
//! `validate`, the server and its UI) names no connector.
//!
//! Built in: `mysql` (tables, change streams, denormalized documents), `elasticsearch` /
//! `opensearch`, `kafka`, and `generator` / `discard`. A program embedding the server adds
//! its own with [`register`] before reading job files; its `type` then works in job files,
//! `validate` and `run` like a built-in one (`datatrace-server/examples/custom_source.rs`).

mod api;
mod builtin;
mod es;
mod kafka;
mod mysql;
mod registry;

pub use api::{
    CheckSourceConn, CheckTargetConn, Connector, ConnectorUi, JobCtx, JobExtra, JobPlan,
    SourceEndpoint, SourceSpec, SourceUnit, SourceUnits, StoppedRetention, Target, TargetEndpoint,
    TargetSpec, TaskField, TestResult,
};
pub use builtin::{DiscardSpec, GeneratorSpec};
pub use es::{EsSourceSpec, EsTargetSpec};
pub use kafka::{KafkaSourceSpec, KafkaTargetSpec};
pub use mysql::{MySqlSourceSpec, MySqlTargetSpec, SourceMode};
pub use registry::{register, registry, OfferedConnector, Registry};
