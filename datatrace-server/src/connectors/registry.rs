//! [`Registry`]: the connectors the server knows, in one place.

use std::sync::{Arc, OnceLock, RwLock};

use serde::Serialize;

use super::api::{Connector, ConnectorUi};

/// The connectors known to this process, in the order they are listed in messages.
#[derive(Clone)]
pub struct Registry {
    connectors: Vec<Arc<dyn Connector>>,
}

impl Registry {
    /// The connectors of this build: MySQL, Elasticsearch / OpenSearch, Kafka, and the
    /// built-in `generator` source and `discard` target.
    pub fn builtin() -> Registry {
        Registry {
            connectors: vec![
                Arc::new(super::mysql::MySqlConnector),
                Arc::new(super::es::EsConnector),
                Arc::new(super::kafka::KafkaConnector),
                Arc::new(super::builtin::GeneratorConnector),
                Arc::new(super::builtin::DiscardConnector),
            ],
        }
    }

    /// An empty registry (for tests of the registry itself).
    pub fn empty() -> Registry {
        Registry {
            connectors: Vec::new(),
        }
    }

    /// Adds a connector; one answering to a `type` already known replaces it.
    pub fn with(mut self, connector: Arc<dyn Connector>) -> Registry {
        let types = connector.types();
        self.connectors
            .retain(|c| !c.types().iter().any(|t| types.contains(t)));
        self.connectors.push(connector);
        self
    }

    /// The connector answering to `kind`.
    pub fn find(&self, kind: &str) -> Option<&Arc<dyn Connector>> {
        self.connectors.iter().find(|c| c.types().contains(&kind))
    }

    /// Every `type` a `[source]` may have.
    pub fn source_types(&self) -> Vec<&'static str> {
        self.types(|c| c.reads())
    }

    /// Every `type` a `[target]` may have.
    pub fn target_types(&self) -> Vec<&'static str> {
        self.types(|c| c.writes())
    }

    fn types(&self, keep: impl Fn(&dyn Connector) -> bool) -> Vec<&'static str> {
        self.connectors
            .iter()
            .filter(|c| keep(&***c))
            .flat_map(|c| c.types().iter().copied())
            .collect()
    }

    /// How the server offers each connector (those it offers).
    pub fn uis(&self) -> Vec<ConnectorUi> {
        self.connectors.iter().filter_map(|c| c.ui()).collect()
    }

    /// What `GET /api/connectors` shows: each offered connector with its `type` names and
    /// whether it reads and writes.
    pub fn offered(&self) -> Vec<OfferedConnector> {
        self.connectors
            .iter()
            .filter_map(|c| {
                c.ui().map(|ui| OfferedConnector {
                    types: c.types(),
                    reads: c.reads(),
                    writes: c.writes(),
                    ui,
                })
            })
            .collect()
    }

    /// How the server offers the connector answering to `kind`.
    pub fn ui(&self, kind: &str) -> Option<ConnectorUi> {
        self.find(kind).and_then(|c| c.ui())
    }
}

/// A connector as the server's API shows it (`GET /api/connectors`).
#[derive(Debug, Clone, Serialize)]
pub struct OfferedConnector {
    /// Every `type` it answers to, the canonical one first.
    pub types: &'static [&'static str],
    /// Whether it can be a task's source.
    pub reads: bool,
    /// Whether it can be a task's target.
    pub writes: bool,
    /// How the UI offers it.
    #[serde(flatten)]
    pub ui: ConnectorUi,
}

fn global() -> &'static RwLock<Arc<Registry>> {
    static REGISTRY: OnceLock<RwLock<Arc<Registry>>> = OnceLock::new();
    REGISTRY.get_or_init(|| RwLock::new(Arc::new(Registry::builtin())))
}

/// The registry of this process: the built-in connectors and those [`register`]ed.
pub fn registry() -> Arc<Registry> {
    global().read().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Adds a connector to this process's registry (before job files naming its `type` are
/// read): a program embedding the server registers its own connectors, then runs the
/// command line ([`crate::commands::main`]) or the server.
pub fn register(connector: Arc<dyn Connector>) {
    let mut g = global().write().unwrap_or_else(|e| e.into_inner());
    let next = (**g).clone().with(connector);
    *g = Arc::new(next);
}
