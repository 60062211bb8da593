//! Test servers for DataTrace: the real search engine of the test run ([`engine()`]: OpenSearch
//! 2.19 by default, Elasticsearch 7.17 or osmem-server on request, shared by every test binary of
//! a run), a private MariaDB ([`mariadb()`]) and a private OpenSearch-compatible
//! `osmem-server` ([`osmem()`]), shared once per test binary, all started lazily and synchronously
//! (so any test, with or without a tokio runtime, can use them) and removed when the test
//! process exits, however it exits; and a real Apache Kafka broker ([`kafka()`], KRaft, from
//! Maven Central jars) shared by every test binary of a run and stopped a few seconds after the
//! last one. Plus [`unique_name`] for collision-free names in parallel tests, [`procstat`]
//! (the CPU seconds and peak memory benchmarks report) and [`child`] (a benchmark re-run as its
//! own child, so that they are one run's alone), a small blocking HTTP client
//! ([`client::request`], [`Osmem::request`]), and a fault-injecting TCP proxy
//! ([`FaultProxy`]) for dropped connections, slow links and HTTP 429/5xx answers.
//!
//! Servers are real, never mocks. When a binary is missing the servers panic with a message
//! naming `scripts/test.sh`, which installs everything; tests never skip themselves.
//!
//! Binaries are found through environment variables first: `MARIADBD_BIN`,
//! `MARIADB_INSTALL_DB_BIN`, `MARIADB_CLIENT_BIN` and `OSMEM_SERVER_BIN`; then `PATH`,
//! `/usr/sbin` (for `mariadbd`) and the workspace's `.venv` (for osmem-server, whose PyPI
//! package bundles the binary under `site-packages/osmem_server/bin`).
//!
//! Cleanup: statics are never dropped, so nothing here relies on destructors. MariaDB's
//! temporary directory is watched by a small guard process that kills every process using it
//! and deletes it as soon as the test process is gone (normal exit, panic, SIGKILL, crash;
//! see the `watchdog` module); osmem-server keeps no files and exits by itself when its stdin
//! closes or the test process id disappears.
//!
//! ```no_run
//! use datatrace_testkit::{engine, mariadb, unique_name, FaultProxy};
//!
//! let db = mariadb().create_database("orders");
//! let mysql_url = mariadb().url_for(&db);
//! let index = unique_name("orders");
//! let proxy = FaultProxy::start(engine().addr());
//! proxy.set_http_error_rate(429, 0.2);
//! let es_url = proxy.url();
//! # let _ = (mysql_url, index, es_url);
//! ```
#![warn(missing_docs)]

pub mod bench_table;
mod binaries;
pub mod bulk;
pub mod child;
pub mod client;
mod debezium;
mod engine;
mod kafka;
mod lease;
mod mariadb;
mod names;
mod osmem;
pub mod procstat;
mod proxy;
mod statement_log;
pub mod tls;
mod watchdog;

pub use client::HttpReply;
pub use debezium::{debezium_mariadb, DebeziumConnect, DEBEZIUM_MARIADB_VERSION};
pub use engine::{engine, DedicatedEngine, EngineFlavor, SearchEngine};
pub use kafka::{kafka, Kafka};
pub use mariadb::{mariadb, MariaDb};
pub use names::unique_name;
pub use osmem::{osmem, Osmem};
pub use proxy::{FaultProxy, ProxyStats};
pub use tls::{ClientAuth, TestPki, TlsTerminator};
