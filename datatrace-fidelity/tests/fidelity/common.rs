//! Helpers of the fidelity tests.

pub use datatrace_testkit::engine;
use datatrace_testkit::{mariadb, unique_name};

pub use datatrace_fidelity::jobs::{job, run, run_ok, workdir, Stream};
pub use datatrace_fidelity::{docs, exact};

/// A fresh database with `sql` run in it.
pub fn database(prefix: &str, sql: &str) -> String {
    let db = mariadb().create_database(prefix);
    if !sql.is_empty() {
        mariadb().exec(&format!("USE `{db}`; {sql}"));
    }
    db
}

/// `[source]` of a MySQL database.
pub fn mysql_source(db: &str, tables: &str, extra: &str) -> String {
    format!(
        "[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [{tables}]\n{extra}\n",
        mariadb().url_for(db)
    )
}

/// `[target]` of a MySQL database.
pub fn mysql_target(db: &str, extra: &str) -> String {
    format!(
        "[target]\ntype = \"mysql\"\nurl = \"{}\"\n{extra}\n",
        mariadb().url_for(db)
    )
}

/// `[source]` of indices of the test engine.
pub fn es_source(indices: &str, extra: &str) -> String {
    format!(
        "[source]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindices = [{indices}]\n{extra}\n",
        engine().url()
    )
}

/// `[target]` of the test engine, indices named `{prefix}-{table}`; returns it and the
/// prefix.
pub fn es_target(extra: &str) -> (String, String) {
    let prefix = unique_name("fid");
    (
        format!(
            "[target]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindex = \"{{prefix}}-{{table}}\"\nprefix = \"{prefix}\"\n{extra}\n",
            engine().url()
        ),
        prefix,
    )
}

/// A job file: name, source, target and settings.
pub fn job_text(name: &str, source: &str, target: &str, settings: &str) -> String {
    format!("name = \"{name}\"\n{source}\n{target}\n[settings]\n{settings}\n")
}

/// Settings of a quick change stream.
pub const STREAM_SETTINGS: &str = "linger = 20\ncheckpoint_interval = 50\nsink_concurrency = 3\n";

/// A `cdc` option line with a server id of its own.
pub fn cdc_line() -> String {
    format!(
        "cdc = {{ server_id = {}, heartbeat_secs = 1 }}",
        7000 + fastrand::u32(0..50_000)
    )
}

/// Runs `sql` in `db`.
pub fn exec(db: &str, sql: &str) -> String {
    mariadb().exec(&format!("USE `{db}`; {sql}"))
}

/// Logs to stderr when `FIDELITY_LOG` is set (`debug`, `info`, ...).
pub fn log() {
    if let Ok(level) = std::env::var("FIDELITY_LOG") {
        let level = level
            .parse()
            .unwrap_or(tracing_subscriber::filter::LevelFilter::INFO);
        let _ = tracing_subscriber::fmt()
            .with_max_level(level)
            .with_test_writer()
            .try_init();
    }
}
