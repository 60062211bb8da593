//! The real search engine the tests run against: one OpenSearch (or Elasticsearch) node per
//! test run, shared by every test binary of that run, or a per-binary osmem-server when asked.
//!
//! `DATATRACE_SEARCH_ENGINE` selects it: `opensearch` (the default: OpenSearch 2.19.6),
//! `elasticsearch` (Elasticsearch 7.17) or `osmem` (osmem-server, an in-memory
//! reimplementation of the OpenSearch API; quick, but not the real thing).
//!
//! The JVM engines are assembled from Maven Central jars by `scripts/search-engine.sh install`
//! (cached under `~/.cache/datatrace/engines/`) and started by [`shared`]: the first test process
//! of a run starts the node detached, under a small keeper process, and every test process
//! takes a lease; the keeper stops the node and deletes its data a few seconds after the last
//! leaseholder is gone, however it went (normal exit, panic, SIGKILL).

mod dedicated;
mod raw_bulk;
mod shared;

pub use dedicated::DedicatedEngine;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

use crate::client::{self, HttpReply};

/// Which search engine a [`SearchEngine`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EngineFlavor {
    /// OpenSearch (a real node; 2.19.x from Maven Central).
    OpenSearch,
    /// Elasticsearch (a real node; 7.17.x from Maven Central).
    Elasticsearch,
    /// osmem-server, an in-memory reimplementation of the OpenSearch REST API.
    Osmem,
}

impl EngineFlavor {
    /// The flavor `DATATRACE_SEARCH_ENGINE` selects (`opensearch` when unset or empty).
    ///
    /// Panics on any other value, naming the accepted ones.
    pub fn selected() -> EngineFlavor {
        let value = std::env::var("DATATRACE_SEARCH_ENGINE").unwrap_or_default();
        EngineFlavor::parse(&value).unwrap_or_else(|e| panic!("{e}"))
    }

    fn parse(value: &str) -> Result<EngineFlavor, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "opensearch" => Ok(EngineFlavor::OpenSearch),
            "elasticsearch" | "es" => Ok(EngineFlavor::Elasticsearch),
            "osmem" => Ok(EngineFlavor::Osmem),
            other => Err(format!(
                "DATATRACE_SEARCH_ENGINE={other}: expected opensearch, elasticsearch or osmem"
            )),
        }
    }

    /// The name used in settings and scripts: `opensearch`, `elasticsearch` or `osmem`.
    pub fn name(self) -> &'static str {
        match self {
            EngineFlavor::OpenSearch => "opensearch",
            EngineFlavor::Elasticsearch => "elasticsearch",
            EngineFlavor::Osmem => "osmem",
        }
    }

    /// True for the OpenSearch family (OpenSearch itself and osmem-server, which answers as
    /// OpenSearch 3.x).
    pub fn is_opensearch_family(self) -> bool {
        matches!(self, EngineFlavor::OpenSearch | EngineFlavor::Osmem)
    }
}

impl std::fmt::Display for EngineFlavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A running search engine: where it listens, what it is, and a way to talk to it.
pub struct SearchEngine {
    flavor: EngineFlavor,
    version: String,
    port: u16,
}

/// The search engine shared by the tests of this run, started on first use.
///
/// Which one: `DATATRACE_SEARCH_ENGINE` (see [`EngineFlavor::selected`]). A real node is shared
/// by every test binary of a `cargo test` run (its start takes seconds); osmem-server is
/// per test binary. Give every test its own indices ([`unique_name`](crate::unique_name)).
///
/// Real engines make writes visible on refresh: call [`SearchEngine::refresh`] (or write with
/// `?refresh=true`) before counting or searching what was just written.
///
/// Panics (in every test that calls it) when the engine cannot be started; the message names
/// `scripts/test.sh`, which installs everything.
///
/// ```
/// let es = datatrace_testkit::engine();
/// let index = datatrace_testkit::unique_name("products");
/// let reply = es.request("PUT", &format!("/{index}/_doc/1?refresh=true"), Some(r#"{"name":"x"}"#));
/// assert_eq!(reply.status, 201, "{}", reply.body);
/// assert_eq!(es.count(&index), 1);
/// println!("{} {} at {}", es.flavor(), es.version(), es.url());
/// ```
pub fn engine() -> &'static SearchEngine {
    static ENGINE: OnceLock<Result<SearchEngine, String>> = OnceLock::new();
    match ENGINE.get_or_init(SearchEngine::start) {
        Ok(engine) => engine,
        Err(message) => panic!("{message}"),
    }
}

impl SearchEngine {
    fn start() -> Result<SearchEngine, String> {
        let flavor =
            EngineFlavor::parse(&std::env::var("DATATRACE_SEARCH_ENGINE").unwrap_or_default())?;
        let port = match flavor {
            EngineFlavor::Osmem => crate::osmem().port(),
            _ => shared::node(flavor)?,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let root = client::request(addr, "GET", "/", None)
            .map_err(|e| format!("{flavor} on port {port} does not answer GET /: {e}"))?;
        let info: serde_json::Value = serde_json::from_str(&root.body)
            .map_err(|e| format!("{flavor} answered GET / with {}: {e}", root.body))?;
        let version = info["version"]["number"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(SearchEngine {
            flavor,
            version,
            port,
        })
    }

    /// Which engine this is.
    pub fn flavor(&self) -> EngineFlavor {
        self.flavor
    }

    /// The version the engine reports on `GET /` (e.g. `2.19.6`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The major version (e.g. `2` for OpenSearch 2.19.6, `7` for Elasticsearch 7.17).
    pub fn major(&self) -> u32 {
        self.version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(0)
    }

    /// The TCP port the engine listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The engine's address, for [`FaultProxy::start`](crate::FaultProxy::start).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The base URL: `http://127.0.0.1:PORT` (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends one request (`path` starts with `/`; a body is sent as JSON, or as NDJSON for
    /// paths containing `_bulk`) and returns the reply, whatever its status.
    ///
    /// Panics only when the engine cannot be reached.
    pub fn request(&self, method: &str, path: &str, body: Option<&str>) -> HttpReply {
        client::request(self.addr(), method, path, body)
            .unwrap_or_else(|e| panic!("{} {method} {path}: {e}", self.flavor))
    }

    /// Makes everything written to `index` (a name, a pattern or a comma list) visible to
    /// searches and counts. Panics unless the engine answers 200.
    pub fn refresh(&self, index: &str) {
        let reply = self.request("POST", &format!("/{index}/_refresh"), None);
        assert_eq!(reply.status, 200, "refresh {index}: {}", reply.body);
    }

    /// The number of documents in `index` after a refresh. Panics unless the index exists.
    pub fn count(&self, index: &str) -> u64 {
        self.refresh(index);
        let reply = self.request("GET", &format!("/{index}/_count"), None);
        assert_eq!(reply.status, 200, "count {index}: {}", reply.body);
        reply.json()["count"]
            .as_u64()
            .unwrap_or_else(|| panic!("count {index}: {}", reply.body))
    }
}

impl std::fmt::Debug for SearchEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchEngine")
            .field("flavor", &self.flavor)
            .field("version", &self.version)
            .field("port", &self.port)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::EngineFlavor;

    #[test]
    fn parses_the_selection() {
        assert_eq!(EngineFlavor::parse(""), Ok(EngineFlavor::OpenSearch));
        assert_eq!(
            EngineFlavor::parse("Elasticsearch"),
            Ok(EngineFlavor::Elasticsearch)
        );
        assert_eq!(EngineFlavor::parse("osmem"), Ok(EngineFlavor::Osmem));
        let err = EngineFlavor::parse("solr").unwrap_err();
        assert!(err.contains("opensearch, elasticsearch or osmem"), "{err}");
    }
}
