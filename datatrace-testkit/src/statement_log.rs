//! The statements a test server received, from its general log: for tests that count what a
//! component sends (session setups, loads, session settings). The log is global, so use it on
//! a [`MariaDb::dedicated`] server.
//!
//! ```no_run
//! use datatrace_testkit::MariaDb;
//!
//! let m = MariaDb::dedicated();
//! m.log_statements();
//! // ... the work that sends statements ...
//! assert_eq!(m.take_statements("SET NAMES utf8mb4"), 1);
//! ```

use crate::MariaDb;

impl MariaDb {
    /// Logs every statement the server receives into `mysql.general_log`, from now on.
    pub fn log_statements(&self) {
        self.exec("SET GLOBAL log_output = 'TABLE'; SET GLOBAL general_log = 1");
    }

    /// Logged statements that start with `prefix` (as SQL text inside quotes: quotes doubled;
    /// `%` and `_` match as in `LIKE`), kept in the log.
    pub fn statements(&self, prefix: &str) -> u64 {
        self.exec(&format!(
            "SELECT COUNT(*) FROM mysql.general_log WHERE argument LIKE '{prefix}%'"
        ))
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("counting logged statements {prefix:?}: {e}"))
    }

    /// Logged statements that start with `prefix` (see [`MariaDb::statements`]) since the
    /// last call; empties the log.
    pub fn take_statements(&self, prefix: &str) -> u64 {
        let n = self.statements(prefix);
        self.exec("TRUNCATE TABLE mysql.general_log");
        n
    }
}
