//! A private MariaDB server for the tests of one test binary.

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::binaries::{self, SETUP_HINT};
use crate::names::unique_name;
use crate::watchdog::{self, Guard, Server};

/// How long a starting server may take before the start counts as failed (the machine may be
/// busy compiling other crates).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A private `mariadbd` started by [`mariadb()`]: its own data directory in a temporary
/// directory, a free port on 127.0.0.1, user `root` with an empty password, and the binlog on
/// in ROW format with FULL row image and row metadata and server id 1 (what CDC needs).
///
/// The server also runs with `utf8mb4` as its character set, UTC as its time zone and room for
/// many connections, so that parallel tests behave the same everywhere.
///
/// A test that stops or restarts the server (a server restart in the middle of a change
/// stream) starts its own with [`MariaDb::dedicated`]: same configuration, its own port and
/// directory, and [`stop`](MariaDb::stop) / [`restart`](MariaDb::restart). Dropping it kills
/// the server and deletes its directory.
pub struct MariaDb {
    host: String,
    port: u16,
    dir: PathBuf,
    datadir: PathBuf,
    socket: PathBuf,
    client: PathBuf,
    /// The `mariadbd` binary and its arguments, to start it again.
    mariadbd: PathBuf,
    args: Vec<String>,
    /// Started by [`MariaDb::dedicated`]: only such a server may be stopped and restarted.
    dedicated: bool,
    // Dropped in this order: the server, then the guard deletes the directory.
    /// The running server (`None` while stopped) and how many times it was started.
    server: Mutex<(Option<Server>, u32)>,
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
    match SERVER.get_or_init(|| MariaDb::start(false, Vec::new())) {
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

    /// The server process's id, from its pid file, for measuring its CPU seconds
    /// ([`crate::procstat::cpu_secs`]); `None` while it is stopped.
    pub fn pid(&self) -> Option<String> {
        let dir = self.datadir.parent()?;
        let pid = std::fs::read_to_string(dir.join("mariadbd.pid")).ok()?;
        Some(pid.trim().to_string())
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

    /// Starts a new MariaDB server for the calling test alone, configured like the shared one
    /// of [`mariadb()`] (binlog in ROW format with FULL row image and metadata, server id 1,
    /// ...) but with its own port and data directory, so that the test may
    /// [`stop`](Self::stop) and [`restart`](Self::restart) it. Dropping it kills the server
    /// and deletes its directory (as for the shared server, the directory also goes away when
    /// the test process dies).
    ///
    /// Panics when the server cannot be started, like [`mariadb()`].
    ///
    /// ```
    /// let db = datatrace_testkit::MariaDb::dedicated();
    /// db.exec("CREATE DATABASE d; CREATE TABLE d.t (id INT PRIMARY KEY)");
    /// db.restart(); // clean shutdown, then the same port and data directory again
    /// assert_eq!(db.exec("SELECT COUNT(*) FROM d.t").trim(), "0");
    /// ```
    pub fn dedicated() -> MariaDb {
        Self::start(true, Vec::new()).unwrap_or_else(|message| panic!("{message}"))
    }

    /// A [`dedicated`](Self::dedicated) server started with these extra `mariadbd` options
    /// (e.g. `--version=...`), after the testkit's own.
    pub fn dedicated_with(options: &[&str]) -> MariaDb {
        let args = options.iter().map(|o| o.to_string()).collect();
        Self::start(true, args).unwrap_or_else(|message| panic!("{message}"))
    }

    /// A [`dedicated`](Self::dedicated) server that offers TLS with the server certificate
    /// of `pki` (`--ssl-ca`, `--ssl-cert`, `--ssl-key`); clients may still connect without
    /// TLS unless their user `REQUIRE`s it. The files must outlive the server.
    ///
    /// ```
    /// let pki = datatrace_testkit::TestPki::generate(&["localhost", "127.0.0.1"]);
    /// let db = datatrace_testkit::MariaDb::with_tls(&pki);
    /// assert_eq!(db.exec("SELECT @@have_ssl").trim(), "YES");
    /// ```
    pub fn with_tls(pki: &crate::TestPki) -> MariaDb {
        let args = vec![
            format!("--ssl-ca={}", pki.ca().display()),
            format!("--ssl-cert={}", pki.server_cert().display()),
            format!("--ssl-key={}", pki.server_key().display()),
        ];
        Self::start(true, args).unwrap_or_else(|message| panic!("{message}"))
    }

    /// Shuts a [`dedicated`](Self::dedicated) server down cleanly (the `SHUTDOWN` statement)
    /// and waits until its process has exited; nothing happens when it is already stopped.
    /// Clients lose their connections; new ones are refused until [`restart`](Self::restart).
    /// Keep reading from binlog streams meanwhile: the server waits for a dump thread blocked
    /// in a write to a client that does not read (up to its `net_write_timeout`, 60 s).
    ///
    /// Panics on the shared server of [`mariadb()`] (other tests use it), and when the server
    /// does not exit within a minute.
    pub fn stop(&self) {
        self.only_dedicated("stop");
        let mut state = self.server.lock().unwrap_or_else(|e| e.into_inner());
        let (running, starts) = &mut *state;
        let Some(server) = running.as_mut() else {
            return;
        };
        // The client may report the connection lost by the shutdown: what counts is the exit.
        let asked = self.exec_at(self.addr(), "SHUTDOWN");
        let deadline = Instant::now() + START_TIMEOUT;
        while server.is_running() {
            if Instant::now() > deadline {
                panic!(
                    "mariadbd on port {} did not shut down within {START_TIMEOUT:?} (SHUTDOWN: {asked:?}); its log:\n{}",
                    self.port,
                    self.log_text(*starts)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        *running = None;
    }

    /// Restarts a [`dedicated`](Self::dedicated) server: a clean shutdown as in
    /// [`stop`](Self::stop) (unless it is stopped already), then `mariadbd` again with the
    /// same port, data directory and configuration; returns once it accepts connections.
    /// MariaDB starts a new binlog file at every start.
    ///
    /// Panics on the shared server of [`mariadb()`], and when the server does not come back
    /// within a minute (for instance when another process took its port meanwhile).
    pub fn restart(&self) {
        self.only_dedicated("restart");
        self.stop();
        let mut state = self.server.lock().unwrap_or_else(|e| e.into_inner());
        let starts = state.1 + 1;
        let log = self.log_path(starts);
        let mut server = Server::spawn(&self.mariadbd, &self.args, &log)
            .unwrap_or_else(|e| panic!("cannot restart MariaDB on port {}: {e}", self.port));
        if let Err((message, _)) =
            wait_until_ready(&mut server, &self.mariadbd, self.port, &self.socket, &log)
        {
            panic!("restarting MariaDB: {message}");
        }
        *state = (Some(server), starts);
    }

    fn only_dedicated(&self, what: &str) {
        assert!(
            self.dedicated,
            "MariaDb::{what} on the shared server of mariadb(), which other tests use: start a MariaDb::dedicated() instead"
        );
    }

    /// The log file of the `starts`-th start (1 for the first).
    fn log_path(&self, starts: u32) -> PathBuf {
        if starts <= 1 {
            self.dir.join("mariadbd.log")
        } else {
            self.dir.join(format!("mariadbd-{starts}.log"))
        }
    }

    fn log_text(&self, starts: u32) -> String {
        std::fs::read_to_string(self.log_path(starts)).unwrap_or_default()
    }

    fn start(dedicated: bool, extra: Vec<String>) -> Result<MariaDb, String> {
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
            match Self::start_once(&mariadbd, &install_db, &client, dedicated, &extra) {
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
        dedicated: bool,
        extra: &[String],
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
            "--binlog-row-image=FULL".to_string(),
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
        args.extend(extra.iter().cloned());
        let mut server = Server::spawn(mariadbd, &args, &log).map_err(fatal)?;

        wait_until_ready(&mut server, mariadbd, port, &socket, &log)?;
        Ok(MariaDb {
            host: "127.0.0.1".to_string(),
            port,
            dir,
            datadir,
            socket,
            client: client.to_path_buf(),
            mariadbd: mariadbd.to_path_buf(),
            args,
            dedicated,
            server: Mutex::new((Some(server), 1)),
            _guard: guard,
        })
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

/// Waits until the just started `server` accepts connections on `port`; the error says
/// whether another port may help.
fn wait_until_ready(
    server: &mut Server,
    mariadbd: &Path,
    port: u16,
    socket: &Path,
    log: &Path,
) -> Result<(), (String, bool)> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        // Our socket file tells our server from anyone else who took the port meanwhile.
        if socket.exists() && answers(port) && server.is_running() {
            return Ok(());
        }
        if !server.is_running() {
            let log_text = std::fs::read_to_string(log).unwrap_or_default();
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
            let log_text = std::fs::read_to_string(log).unwrap_or_default();
            return Err((
                format!(
                    "mariadbd ({}) did not answer on port {port} within {START_TIMEOUT:?}; its log:\n{log_text}",
                    mariadbd.display()
                ),
                false,
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
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
