//! Test servers for DataTrace: a private MariaDB ([`mariadb()`]) and a private OpenSearch-compatible
//! `osmem-server` ([`osmem()`]), shared once per test binary, started lazily and synchronously
//! (so any test, with or without a tokio runtime, can use them) and removed when the test
//! process exits, however it exits. Plus [`unique_name`] for collision-free names in parallel
//! tests, a small blocking HTTP client ([`client::request`], [`Osmem::request`]), and a
//! fault-injecting TCP proxy ([`FaultProxy`]) for dropped connections, slow links and HTTP
//! 429/5xx answers.
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
//! use datatrace_testkit::{mariadb, osmem, unique_name, FaultProxy};
//!
//! let db = mariadb().create_database("orders");
//! let mysql_url = mariadb().url_for(&db);
//! let index = unique_name("orders");
//! let proxy = FaultProxy::start(osmem().addr());
//! proxy.set_http_error_rate(429, 0.2);
//! let es_url = proxy.url();
//! # let _ = (mysql_url, index, es_url);
//! ```
#![warn(missing_docs)]

mod binaries;
pub mod bulk;
pub mod client;
mod mariadb;
mod names;
mod osmem;
mod proxy;
mod watchdog;

pub use client::HttpReply;
pub use mariadb::{mariadb, MariaDb};
pub use names::unique_name;
pub use osmem::{osmem, Osmem};
pub use proxy::{FaultProxy, ProxyStats};
