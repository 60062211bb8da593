//! A private MariaDB server for the tests of one test binary.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::binaries::{self, SETUP_HINT};
use crate::names::unique_name;
use crate::watchdog::{self, Guard, Server};

/// How long a starting server may take before the start counts as failed (the machine may be
/// busy compiling other crates).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A private `mariadbd` started by [`mariadb()`]: its own data directory in a temporary
/// directory, a free port on 127.0.0.1, user `root` with an empty password, and the binlog on
/// in ROW format with FULL row metadata and server id 1 (what CDC needs).
///
/// The server also runs with `utf8mb4` as its character set, UTC as its time zone and room for
/// many connections, so that parallel tests behave the same everywhere.
pub struct MariaDb {
    host: String,
    port: u16,
    dir: PathBuf,
    datadir: PathBuf,
    socket: PathBuf,
    client: PathBuf,
    // Dropped in this order: the server, then the guard deletes the directory.
    _server: Server,
    _guard: Guard,
}

/// The MariaDB server shared by every test of this test binary, started on first use.
///
/// Panics (in every test that calls it) when the server cannot be started, for instance when
/// `mariadbd` is not installed; the message names `scripts/test.sh`, which installs it.
///
/// ```
/// let db = datatrace_testkit::mariadb();
/// let name = db.create_database("orders");
/// db.exec(&format!("CREATE TABLE `{name}`.t (id INT PRIMARY KEY)"));
/// assert_eq!(db.exec(&format!("SELECT COUNT(*) FROM `{name}`.t")).trim(), "0");
/// let url = db.url_for(&name); // mysql://root@127.0.0.1:PORT/NAME
/// # let _ = url;
/// ```
pub fn mariadb() -> &'static MariaDb {
    static SERVER: OnceLock<Result<MariaDb, String>> = OnceLock::new();
    match SERVER.get_or_init(MariaDb::start) {
        Ok(server) => server,
        Err(message) => panic!("{message}"),
    }
}

impl MariaDb {
    /// The host to connect to: `"127.0.0.1"`.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The TCP port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server's address, for [`FaultProxy::start`](crate::FaultProxy::start).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// A URL for user `root` (empty password) without a database: `mysql://root@127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("mysql://root@{}:{}", self.host, self.port)
    }

    /// A URL for user `root` and database `db`: `mysql://root@127.0.0.1:PORT/db`.
    pub fn url_for(&self, db: &str) -> String {
        format!("{}/{db}", self.url())
    }

    /// The server's Unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The server's data directory (it also holds the binlog files, `binlog.000001`, ...).
    pub fn datadir(&self) -> &Path {
        &self.datadir
    }

    /// Runs `sql` (one or more statements separated by `;`) as root with the `mariadb` command
    /// line client and returns its standard output: one line per row, columns separated by
    /// tabs, no header line, NULL as `NULL`.
    ///
    /// Panics with the client's error message when a statement fails.
    pub fn exec(&self, sql: &str) -> String {
        self.exec_at(self.addr(), sql)
            .unwrap_or_else(|e| panic!("MariaDB statement failed: {e}\nSQL: {sql}"))
    }

    /// Like [`exec`](Self::exec), but connects to `addr` (for instance a
    /// [`FaultProxy`](crate::FaultProxy) in front of this server) and returns the client's
    /// error message instead of panicking.
    pub fn exec_at(&self, addr: SocketAddr, sql: &str) -> Result<String, String> {
        let output = Command::new(&self.client)
            .args([
                "--no-defaults",
                "--default-character-set=utf8mb4",
                "--skip-ssl",
                "--connect-timeout=30",
                "-h",
            ])
            .arg(addr.ip().to_string())
            .arg("-P")
            .arg(addr.port().to_string())
            .args(["-uroot", "-N", "-B", "-e"])
            .arg(sql)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", self.client.display()))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(format!(
                "{} ({})",
                String::from_utf8_lossy(&output.stderr).trim(),
                output.status
            ))
        }
    }

    /// Creates a new, empty database with a unique name built from `prefix` (see
    /// [`unique_name`](crate::unique_name)) and returns the name.
    pub fn create_database(&self, prefix: &str) -> String {
        let name = unique_name(prefix);
        self.exec(&format!("CREATE DATABASE `{name}`"));
        name
    }

    fn start() -> Result<MariaDb, String> {
        let mariadbd = binaries::find(
            "MARIADBD_BIN",
            &["mariadbd", "mysqld"],
            &binaries::sbin_dirs(),
        )?;
        let install_db = binaries::find(
            "MARIADB_INSTALL_DB_BIN",
            &["mariadb-install-db", "mysql_install_db"],
            &binaries::sbin_dirs(),
        )?;
        let client = binaries::find(
            "MARIADB_CLIENT_BIN",
            &["mariadb", "mysql"],
            &binaries::sbin_dirs(),
        )?;
        // The port is free when chosen but another process may take it before mariadbd binds
        // it; then (and after a failed install) try again from scratch.
        let mut last_error = String::new();
        for _ in 0..3 {
            match Self::start_once(&mariadbd, &install_db, &client) {
                Ok(server) => return Ok(server),
                Err((message, retry)) => {
                    last_error = message;
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_error)
    }

    /// Starts a server; the error says whether another port may help.
    fn start_once(
        mariadbd: &Path,
        install_db: &Path,
        client: &Path,
    ) -> Result<MariaDb, (String, bool)> {
        let fatal = |m: String| (m, false);
        let dir = watchdog::temp_dir("mariadb").map_err(fatal)?;
        // From here on the directory, and every process using it, goes away with the guard:
        // when this function fails, or when the test process ends.
        let guard = Guard::new(&dir).map_err(fatal)?;
        let datadir = dir.join("data");
        let socket = dir.join("mariadbd.sock");
        let log = dir.join("mariadbd.log");
        // A private tmpdir: a starting mariadbd deletes every `#sql*` file in its tmpdir, so
        // with a shared /tmp parallel test binaries (and the system server) would delete each
        // other's temporary tables, making mariadb-install-db fail now and then.
        let tmpdir = dir.join("tmp");
        std::fs::create_dir(&tmpdir)
            .map_err(|e| fatal(format!("cannot create {}: {e}", tmpdir.display())))?;
        let root = watchdog::running_as_root();

        let mut install = Command::new(install_db);
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", datadir.display()))
            .arg(format!("--tmpdir={}", tmpdir.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"])
            .process_group(0);
        if root {
            install.arg("--user=root");
        }
        let installed = install.output().map_err(|e| {
            fatal(format!(
                "cannot run {}: {e}; {SETUP_HINT}",
                install_db.display()
            ))
        })?;
        if !installed.status.success() {
            // Worth another try in a fresh directory: the failure may be a passing one.
            return Err((
                format!(
                    "{} failed ({}):\n{}{}",
                    install_db.display(),
                    installed.status,
                    String::from_utf8_lossy(&installed.stdout),
                    String::from_utf8_lossy(&installed.stderr)
                ),
                true,
            ));
        }

        let port = watchdog::free_port().map_err(fatal)?;
        let mut args = vec![
            "--no-defaults".to_string(),
            format!("--datadir={}", datadir.display()),
            format!("--socket={}", socket.display()),
            format!("--tmpdir={}", tmpdir.display()),
            format!("--pid-file={}", dir.join("mariadbd.pid").display()),
            format!("--port={port}"),
            "--bind-address=127.0.0.1".to_string(),
            format!("--log-bin={}", datadir.join("binlog").display()),
            "--binlog-format=ROW".to_string(),
            "--binlog-row-metadata=FULL".to_string(),
            "--server-id=1".to_string(),
            "--character-set-server=utf8mb4".to_string(),
            "--collation-server=utf8mb4_general_ci".to_string(),
            "--default-time-zone=+00:00".to_string(),
            "--max-connections=1000".to_string(),
            "--max-connect-errors=1000000".to_string(),
            "--skip-name-resolve".to_string(),
            // Tests throw the data away: no fsync per commit.
            "--innodb-flush-log-at-trx-commit=2".to_string(),
        ];
        if root {
            args.push("--user=root".to_string());
        }
        let mut server = Server::spawn(mariadbd, &args, &log).map_err(fatal)?;

        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            // Our socket file tells our server from anyone else who took the port meanwhile.
            if socket.exists() && answers(port) && server.is_running() {
                return Ok(MariaDb {
                    host: "127.0.0.1".to_string(),
                    port,
                    dir,
                    datadir,
                    socket,
                    client: client.to_path_buf(),
                    _server: server,
                    _guard: guard,
                });
            }
            if !server.is_running() {
                let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                let retry = log_text.contains("Address already in use")
                    || log_text.contains("Can't start server");
                return Err((
                    format!(
                        "mariadbd ({}) exited during startup on port {port}; its log:\n{log_text}",
                        mariadbd.display()
                    ),
                    retry,
                ));
            }
            if Instant::now() > deadline {
                let log_text = std::fs::read_to_string(&log).unwrap_or_default();
                return Err(fatal(format!(
                    "mariadbd ({}) did not answer on port {port} within {START_TIMEOUT:?}; its log:\n{log_text}",
                    mariadbd.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl std::fmt::Debug for MariaDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MariaDb")
            .field("port", &self.port)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// True when something on `port` sends a MySQL protocol greeting (or any first packet).
fn answers(port: u16) -> bool {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut first = [0u8; 5];
    stream.read_exact(&mut first).is_ok()
}
