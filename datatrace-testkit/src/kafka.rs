//! A real Apache Kafka broker (KRaft, single node, from Maven Central jars on the machine's
//! Java), shared by every test binary of a run through the [`lease`](crate::lease) directory.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use crate::lease::{shared, ServerSpec};

/// A running Kafka broker: where it listens and what version it is.
#[derive(Debug)]
pub struct Kafka {
    port: u16,
    version: String,
    start_ms: Option<u64>,
}

/// The Kafka broker shared by the tests of this run, started on first use.
///
/// One broker (Apache Kafka 4.x, KRaft mode, broker and controller in one JVM with a 512 MB
/// heap) serves every test binary of a `cargo test` run; it is stopped and its data deleted a
/// few seconds after the last test process is gone, however it went. Give every test its own
/// topics and consumer groups ([`unique_name`](crate::unique_name)). Topics are not created
/// automatically (`auto.create.topics.enable=false`), so a misspelt topic is an error.
///
/// Panics (in every test that calls it) when the broker cannot be started; the message names
/// `scripts/test.sh`, which installs everything.
///
/// ```no_run
/// let kafka = datatrace_testkit::kafka();
/// println!("Kafka {} at {}", kafka.version(), kafka.bootstrap());
/// ```
pub fn kafka() -> &'static Kafka {
    static KAFKA: OnceLock<Result<Kafka, String>> = OnceLock::new();
    match KAFKA.get_or_init(Kafka::start) {
        Ok(k) => k,
        Err(message) => panic!("{message}"),
    }
}

fn serves(ready: &serde_json::Value) -> bool {
    let Some(port) = ready["port"].as_u64().and_then(|p| u16::try_from(p).ok()) else {
        return false;
    };
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
}

impl Kafka {
    fn start() -> Result<Kafka, String> {
        let jit = if std::env::var_os("DATATRACE_KAFKA_JIT").is_none() {
            "c1"
        } else {
            ""
        };
        let env = [("DATATRACE_KAFKA_JIT", jit)];
        let env: &[(&str, &str)] = if jit.is_empty() { &[] } else { &env };
        let ready = shared(&ServerSpec {
            name: "kafka",
            script: "kafka.sh",
            args: &[],
            settings: &[],
            keeper_var: "DATATRACE_KAFKA_KEEPER_PID",
            env,
            serves,
        })?;
        let port = ready["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| {
                format!("the Kafka launcher wrote a ready file without a port: {ready}")
            })?;
        Ok(Kafka {
            port,
            version: ready["version"].as_str().unwrap_or_default().to_string(),
            start_ms: ready["start_ms"].as_u64(),
        })
    }

    /// The bootstrap servers setting for clients: `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The broker's address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The Kafka version the broker runs (e.g. `4.4.0`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// How long the broker's JVM took from its start to serving (milliseconds).
    pub fn start_ms(&self) -> Option<u64> {
        self.start_ms
    }
}
