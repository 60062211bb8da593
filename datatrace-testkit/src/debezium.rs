//! Real Debezium: Kafka Connect (standalone worker, connect-runtime 4.3) running Debezium's
//! MySQL connector 3.6.1.Final from Maven Central jars, capturing a MariaDB into the testkit's
//! Kafka broker; the other side of DataTrace's Debezium interop test.
//!
//! Debezium's MySQL connector on MariaDB: the MariaDB connector is not served by the package
//! registry this project reaches, and the MySQL connector refuses MariaDB 10.11 as it is: it asks
//! for `SHOW BINARY LOG STATUS` (MySQL 8.4's statement), and after that fails it reads the
//! version (`10.11` counts as newer than 8.4) and gives up; with a MySQL 8.0 version string
//! MySQL's JDBC driver asks for `@@transaction_isolation`, which MariaDB 10.11 does not have.
//! So [`debezium_mariadb`] starts a dedicated MariaDB that reports version
//! `5.7.19-MariaDB-datatrace` (`--version`): Debezium then uses `SHOW MASTER STATUS` and the
//! driver `@@tx_isolation`, both of which MariaDB has, and everything else (the binlog in ROW
//! format, the snapshot, the binlog client) is MariaDB's real behaviour.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::binaries::workspace_root;
use crate::watchdog::{free_port, temp_dir, Guard, Server};
use crate::{Kafka, MariaDb};

/// The version string the MariaDB of [`debezium_mariadb`] reports (see the module docs).
pub const DEBEZIUM_MARIADB_VERSION: &str = "5.7.19-MariaDB-datatrace";

/// A dedicated MariaDB (configured like [`mariadb()`](crate::mariadb): binlog in ROW format,
/// FULL row image) that Debezium's MySQL connector accepts: it reports the version
/// [`DEBEZIUM_MARIADB_VERSION`]. Dropping it stops it.
pub fn debezium_mariadb() -> MariaDb {
    MariaDb::dedicated_with(&[&format!("--version={DEBEZIUM_MARIADB_VERSION}")])
}

/// The name of the connector in the worker (and of its REST resource).
const CONNECTOR: &str = "datatrace-interop";

/// A running Kafka Connect standalone worker with one Debezium MySQL connector. Dropping it
/// stops the worker and deletes its directory (offsets file, configuration, log); so does the
/// end of the test process, however it ends.
pub struct DebeziumConnect {
    dir: PathBuf,
    rest: SocketAddr,
    server: Mutex<Option<Server>>,
    _guard: Guard,
}

impl DebeziumConnect {
    /// Starts a worker whose connector captures `databases` of `db` (as `root`) into topics
    /// `{topic_prefix}.{db}.{table}` of `kafka`, snapshot first, then the binlog. Topics are
    /// created by Connect with `partitions` partitions; `settings` are more connector settings
    /// (`key=value`, Debezium's names, e.g. `("bigint.unsigned.handling.mode", "precise")`),
    /// overriding the defaults here. Returns once the worker runs; see
    /// [`wait_streaming`](Self::wait_streaming).
    ///
    /// Panics when the worker cannot be started (the message names `scripts/test.sh`, which
    /// installs the jars).
    pub fn start(
        kafka: &Kafka,
        db: &MariaDb,
        topic_prefix: &str,
        databases: &[&str],
        partitions: u32,
        settings: &[(&str, &str)],
    ) -> DebeziumConnect {
        Self::try_start(kafka, db, topic_prefix, databases, partitions, settings)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn try_start(
        kafka: &Kafka,
        db: &MariaDb,
        topic_prefix: &str,
        databases: &[&str],
        partitions: u32,
        settings: &[(&str, &str)],
    ) -> Result<DebeziumConnect, String> {
        let dir = temp_dir("debezium")?;
        let guard = Guard::new(&dir)?;
        let port = free_port()?;
        let worker = format!(
            "bootstrap.servers={kafka}\n\
             key.converter=org.apache.kafka.connect.json.JsonConverter\n\
             value.converter=org.apache.kafka.connect.json.JsonConverter\n\
             key.converter.schemas.enable=true\n\
             value.converter.schemas.enable=true\n\
             offset.storage.file.filename={offsets}\n\
             offset.flush.interval.ms=1000\n\
             listeners=http://127.0.0.1:{port}\n\
             plugin.discovery=service_load\n",
            kafka = kafka.bootstrap(),
            offsets = dir.join("offsets").display(),
        );
        let mut connector: Vec<(String, String)> = [
            ("name", CONNECTOR.to_string()),
            (
                "connector.class",
                "io.debezium.connector.mysql.MySqlConnector".to_string(),
            ),
            ("tasks.max", "1".to_string()),
            ("database.hostname", db.host().to_string()),
            ("database.port", db.port().to_string()),
            ("database.user", "root".to_string()),
            ("database.password", String::new()),
            ("database.server.id", (5400 + port % 1000).to_string()),
            ("database.ssl.mode", "disabled".to_string()),
            ("topic.prefix", topic_prefix.to_string()),
            ("database.include.list", databases.join(",")),
            (
                "schema.history.internal.kafka.bootstrap.servers",
                kafka.bootstrap(),
            ),
            (
                "schema.history.internal.kafka.topic",
                format!("{topic_prefix}.schema-history"),
            ),
            ("topic.creation.default.replication.factor", "1".to_string()),
            ("topic.creation.default.partitions", partitions.to_string()),
            ("snapshot.locking.mode", "none".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        for (k, v) in settings {
            connector.retain(|(key, _)| key != k);
            connector.push((k.to_string(), v.to_string()));
        }
        let connector: String = connector
            .iter()
            .map(|(k, v)| format!("{k}={v}\n"))
            .collect();
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text)
                .map_err(|e| format!("cannot write {}: {e}", dir.join(name).display()))
        };
        write("worker.properties", &worker)?;
        write("connector.properties", &connector)?;
        let script = workspace_root().join("scripts").join("debezium.sh");
        let log = dir.join("connect.log");
        let server = Server::spawn(
            Path::new("bash"),
            &[
                script.display().to_string(),
                "run".to_string(),
                dir.display().to_string(),
            ],
            &log,
        )?;
        let me = DebeziumConnect {
            dir,
            rest: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            server: Mutex::new(Some(server)),
            _guard: guard,
        };
        // the worker answers on its REST port once it runs the connector
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            if me.connector_state().is_some() {
                return Ok(me);
            }
            if !me.running() {
                return Err(format!(
                    "Kafka Connect with Debezium stopped while starting (run scripts/test.sh, which installs its jars):\n{}",
                    me.log_tail(60)
                ));
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Kafka Connect with Debezium did not start within 180 s:\n{}",
                    me.log_tail(60)
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    fn running(&self) -> bool {
        self.server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_mut()
            .is_some_and(Server::is_running)
    }

    /// The connector's and its task's states from the worker's REST API
    /// (`GET /connectors/NAME/status`), e.g. `RUNNING`/`RUNNING`; `None` before it answers.
    pub fn connector_state(&self) -> Option<String> {
        let reply = crate::client::request(
            self.rest,
            "GET",
            &format!("/connectors/{CONNECTOR}/status"),
            None,
        )
        .ok()?;
        if reply.status != 200 {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&reply.body).ok()?;
        let tasks: Vec<String> = v["tasks"]
            .as_array()
            .map(|t| {
                t.iter()
                    .map(|t| t["state"].as_str().unwrap_or("?").to_string())
                    .collect()
            })
            .unwrap_or_default();
        Some(format!(
            "{}/{}",
            v["connector"]["state"].as_str().unwrap_or("?"),
            tasks.join(",")
        ))
    }

    /// Waits until the connector has finished its snapshot and reads the binlog; panics with
    /// the worker's log when it fails or takes longer than `timeout`.
    pub fn wait_streaming(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.log();
            if log.contains("Connected to binlog at") {
                return;
            }
            let state = self.connector_state().unwrap_or_default();
            if state.contains("FAILED") || !self.running() {
                panic!("Debezium failed ({state}):\n{}", self.log_tail(80));
            }
            if Instant::now() > deadline {
                panic!(
                    "Debezium did not reach the binlog within {timeout:?} ({state}):\n{}",
                    self.log_tail(80)
                );
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The worker's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("connect.log")).unwrap_or_default()
    }

    /// The last `lines` lines of the worker's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The worker's REST address.
    pub fn rest_addr(&self) -> SocketAddr {
        self.rest
    }
}

impl Drop for DebeziumConnect {
    fn drop(&mut self) {
        // the worker first, then the guard deletes the directory
        drop(self.server.lock().unwrap_or_else(|e| e.into_inner()).take());
    }
}
