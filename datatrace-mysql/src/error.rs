//! [`MySqlError`]: what can go wrong talking to MySQL, classified so that callers know
//! whether to retry, fix the configuration, or fix the data.

use mysql_async::Error as DriverError;

/// An error of the MySQL connector. Every variant carries a `context` naming what was being
/// done (`connecting to 127.0.0.1:3306`, `reading shop.users`), and for data errors the
/// table, column and primary key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum MySqlError {
    /// Wrong user name or password (server error 1045).
    #[error("{context}: access denied (wrong user or password): {message}")]
    AccessDenied {
        /// What was being done.
        context: String,
        /// The server's message (never contains the password).
        message: String,
    },
    /// The database does not exist (1049).
    #[error("{context}: unknown database: {message}")]
    UnknownDatabase {
        /// What was being done.
        context: String,
        /// The server's message.
        message: String,
    },
    /// The table does not exist (1146), or no table matched a selection.
    #[error("{context}: table not found: {message}")]
    NoTable {
        /// What was being done.
        context: String,
        /// The server's message or which name matched nothing.
        message: String,
    },
    /// The user lacks a privilege (1142, 1143, 1227, 1044).
    #[error("{context}: missing privilege: {message}")]
    NoPrivilege {
        /// What was being done.
        context: String,
        /// The server's message.
        message: String,
    },
    /// Worth retrying: deadlock (1213), lock wait timeout (1205), lost connection (2006,
    /// 2013, I/O errors).
    #[error("{context}: transient failure: {message}")]
    Transient {
        /// What was being done.
        context: String,
        /// What happened.
        message: String,
    },
    /// A value that the server or the type mapping refused, naming table, column and key.
    #[error("{context}: {message}")]
    Data {
        /// Table (and key) concerned.
        context: String,
        /// What is wrong.
        message: String,
    },
    /// Invalid configuration; the message names the setting.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A change stream's position is no longer on the server (purged or reset binlogs);
    /// the message names what is missing and the way forward (see `binlog::gap`).
    #[error("{0}")]
    BinlogGap(String),
    /// TLS could not be set up: the server offers none under an `ssl-mode` that requires
    /// it, its certificate fails verification, a client certificate is refused. Not
    /// transient: retrying does not help, the message says what to change.
    #[error("{context}: TLS: {message}")]
    Tls {
        /// What was being done.
        context: String,
        /// What failed and how to fix it.
        message: String,
    },
    /// Any other server error.
    #[error("{context}: server error {code}: {message}")]
    Server {
        /// What was being done.
        context: String,
        /// The MySQL error number.
        code: u16,
        /// The server's message.
        message: String,
    },
    /// Any other driver error.
    #[error("{context}: {message}")]
    Driver {
        /// What was being done.
        context: String,
        /// The driver's message.
        message: String,
    },
}

/// Server error codes that mean "this row's data does not fit" (strict mode).
pub(crate) const DATA_ERRORS: &[u16] = &[
    1048, // column cannot be null
    1062, // duplicate entry (insert mode)
    1264, // out of range
    1265, // data truncated
    1292, // incorrect date/time value
    1366, // incorrect value for column
    1367, // illegal value
    1406, // data too long
    1416, // cannot get geometry object
    1452, // foreign key fails
    1690, // value out of range
    3140, // invalid JSON (MySQL)
    4025, // CHECK constraint failed (MariaDB, json_valid)
    3819, // CHECK constraint (MySQL)
    4078, // illegal parameter data type
];

impl MySqlError {
    /// Classifies a driver error; `context` says what was being done.
    pub fn from_driver(context: impl Into<String>, e: DriverError) -> Self {
        let context = context.into();
        match e {
            DriverError::Server(s) => Self::from_server(context, s.code, s.message),
            DriverError::Io(mysql_async::IoError::Tls(t)) => MySqlError::Tls {
                context,
                message: tls_message(&t.to_string()),
            },
            DriverError::Io(mysql_async::IoError::Io(io))
                if io
                    .get_ref()
                    .is_some_and(|inner| inner.downcast_ref::<rustls::Error>().is_some()) =>
            {
                MySqlError::Tls {
                    context,
                    message: tls_message(&io.to_string()),
                }
            }
            DriverError::Io(io) => MySqlError::Transient {
                context,
                message: format!("connection lost: {io}"),
            },
            DriverError::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => {
                MySqlError::Tls {
                    context,
                    message: "the server offers no TLS, but the ssl-mode requires it: enable TLS on the server (ssl_cert and ssl_key) or set ssl-mode=PREFERRED or DISABLED".into(),
                }
            }
            DriverError::Driver(d) => {
                let message = d.to_string();
                if matches!(d, mysql_async::DriverError::ConnectionClosed)
                    || message.contains("closed")
                    || message.contains("Pool was disconnect")
                {
                    MySqlError::Transient { context, message }
                } else {
                    MySqlError::Driver { context, message }
                }
            }
            DriverError::Url(u) => MySqlError::Config(format!("{context}: bad URL: {u}")),
            other => MySqlError::Driver {
                context,
                message: other.to_string(),
            },
        }
    }

    /// Classifies a server error by its code.
    pub fn from_server(context: String, code: u16, message: String) -> Self {
        match code {
            1045 | 1698 => MySqlError::AccessDenied { context, message },
            1049 => MySqlError::UnknownDatabase { context, message },
            1146 => MySqlError::NoTable { context, message },
            1142 | 1143 | 1227 | 1044 | 1370 => MySqlError::NoPrivilege { context, message },
            1213 | 1205 | 2006 | 2013 | 1053 | 1927 | 1040 => {
                MySqlError::Transient { context, message }
            }
            c if DATA_ERRORS.contains(&c) => MySqlError::Data {
                context,
                message: format!("error {c}: {message}"),
            },
            code => MySqlError::Server {
                context,
                code,
                message,
            },
        }
    }

    /// Whether retrying the same operation may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, MySqlError::Transient { .. })
    }

    /// Whether this is a data error of one row (strict-mode refusals and mapping errors).
    pub fn is_data(&self) -> bool {
        matches!(self, MySqlError::Data { .. })
    }
}

/// A rustls error explained: what to check for the usual ones.
fn tls_message(raw: &str) -> String {
    let hint = if raw.contains("UnknownIssuer") || raw.contains("unknown issuer") {
        "the server's certificate is not signed by a trusted CA: give the CA that signed it in ssl-ca, or use ssl-mode=REQUIRED to encrypt without checking"
    } else if raw.contains("not valid for name") || raw.contains("NotValidForName") {
        "the server's certificate is not issued for the host connected to: connect by a name the certificate carries, or use ssl-mode=VERIFY_CA to check only the CA"
    } else if raw.contains("xpired") {
        "the server's certificate has expired"
    } else if raw.contains("certificate required") || raw.contains("CertificateRequired") {
        "the server requires a client certificate: give ssl-cert and ssl-key"
    } else if raw.contains("BadCertificate")
        || raw.contains("bad certificate")
        || raw.contains("UnknownCA")
        || raw.contains("unknown ca")
    {
        "the server refused the client certificate (ssl-cert): is it signed by a CA the server trusts?"
    } else {
        "check ssl-mode, ssl-ca, ssl-cert and ssl-key"
    };
    format!("{hint} ({raw})")
}

/// For `?` in code that returns the core's errors: configuration errors stay configuration
/// errors, the rest become source errors of unit `mysql` (sources and sinks of this crate name
/// their table themselves).
impl From<MySqlError> for datatrace_core::Error {
    fn from(e: MySqlError) -> Self {
        if let MySqlError::Config(_) = e {
            return datatrace_core::Error::Config(e.to_string());
        }
        datatrace_core::Error::source("mysql", e)
    }
}

/// `Result` with [`MySqlError`].
pub type Result<T, E = MySqlError> = std::result::Result<T, E>;

/// Extension to attach context to driver results.
pub(crate) trait Context<T> {
    /// Classifies the error with `context`.
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, DriverError> {
    fn ctx(self, context: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|e| MySqlError::from_driver(context(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_server_codes() {
        let c = |code| MySqlError::from_server("ctx".into(), code, "m".into());
        assert!(matches!(c(1045), MySqlError::AccessDenied { .. }));
        assert!(matches!(c(1049), MySqlError::UnknownDatabase { .. }));
        assert!(matches!(c(1146), MySqlError::NoTable { .. }));
        assert!(matches!(c(1142), MySqlError::NoPrivilege { .. }));
        assert!(matches!(c(1227), MySqlError::NoPrivilege { .. }));
        for code in [1213, 1205, 2006, 2013] {
            assert!(c(code).is_transient(), "{code}");
        }
        for code in [1406, 1264, 1366, 1292, 1048] {
            assert!(c(code).is_data(), "{code}");
        }
        assert!(matches!(c(1064), MySqlError::Server { code: 1064, .. }));
        let io = DriverError::Io(mysql_async::IoError::Io(std::io::Error::other("reset")));
        assert!(MySqlError::from_driver("x", io).is_transient());
    }
}
