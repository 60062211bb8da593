//! The metadata store's schema: one definition for both backends (SQLite and MySQL), as
//! ordered migrations recorded in `schema_version`. The few places where the two dialects
//! differ are tokens that [`Dialect::render`] fills in:
//!
//! - `{id}`: an auto-increment primary key (`INTEGER PRIMARY KEY AUTOINCREMENT` /
//!   `BIGINT AUTO_INCREMENT PRIMARY KEY`);
//! - `{long}`: text that may be large (`TEXT` / `MEDIUMTEXT`: task configurations,
//!   checkpoints);
//! - `{table}`: table options (nothing / `ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`).
//!
//! Identifiers that MySQL reserves (`read`) are quoted with backticks, which SQLite accepts
//! too. A new version is a new entry at the end of [`MIGRATIONS`]; entries never change
//! once released.

/// The SQL dialect of a metadata database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// SQLite (the default, a file in the data directory).
    Sqlite,
    /// MySQL or MariaDB (`--metadata-url`).
    MySql,
}

impl Dialect {
    /// `sql` with the dialect's tokens filled in.
    pub fn render(self, sql: &str) -> String {
        let (id, long, table) = match self {
            Dialect::Sqlite => ("INTEGER PRIMARY KEY AUTOINCREMENT", "TEXT", ""),
            Dialect::MySql => (
                "BIGINT AUTO_INCREMENT PRIMARY KEY",
                "MEDIUMTEXT",
                " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
            ),
        };
        sql.replace("{id}", id)
            .replace("{long}", long)
            .replace("{table}", table)
    }

    /// An insert of `cols` into `table` (one `?` per column) that, when the unique key
    /// `key` already exists, applies `sets` to the existing row instead.
    pub fn upsert(self, table: &str, cols: &[&str], key: &str, sets: &[Set]) -> String {
        let new = |c: &str| match self {
            Dialect::Sqlite => format!("excluded.{c}"),
            Dialect::MySql => format!("VALUES({c})"),
        };
        let sets: Vec<String> = sets
            .iter()
            .map(|s| match s {
                Set::New(c) => format!("{c} = {}", new(c)),
                Set::Max(c) => match self {
                    Dialect::Sqlite => format!("{c} = MAX({c}, {})", new(c)),
                    Dialect::MySql => format!("{c} = GREATEST({c}, {})", new(c)),
                },
                Set::Add(c) => format!("{c} = {c} + {}", new(c)),
            })
            .collect();
        let marks = vec!["?"; cols.len()].join(", ");
        let head = format!("INSERT INTO {table} ({}) VALUES ({marks})", cols.join(", "));
        match self {
            Dialect::Sqlite => format!(
                "{head} ON CONFLICT({key}) DO UPDATE SET {}",
                sets.join(", ")
            ),
            Dialect::MySql => format!("{head} ON DUPLICATE KEY UPDATE {}", sets.join(", ")),
        }
    }
}

/// What an upsert does to a column of an existing row.
#[derive(Debug, Clone, Copy)]
pub enum Set {
    /// Takes the inserted value.
    New(&'static str),
    /// Keeps the larger of the stored and the inserted value.
    Max(&'static str),
    /// Adds the inserted value to the stored one (a count).
    Add(&'static str),
}

/// The schema: one list of statements per version, applied in order.
pub const MIGRATIONS: &[&[&str]] = &[
    // 1: data sources, tasks, their units (state, counters, checkpoints), logs.
    &[
        "CREATE TABLE meta (k VARCHAR(191) NOT NULL PRIMARY KEY, value TEXT NOT NULL){table}",
        "CREATE TABLE datasources (id {id}, name VARCHAR(191) NOT NULL UNIQUE,
           kind VARCHAR(32) NOT NULL, url TEXT NOT NULL, username TEXT, options TEXT NOT NULL,
           password_enc TEXT, api_key_enc TEXT, created_at VARCHAR(40) NOT NULL,
           updated_at VARCHAR(40) NOT NULL){table}",
        "CREATE TABLE tasks (id {id}, name VARCHAR(191) NOT NULL UNIQUE, config {long} NOT NULL,
           status VARCHAR(16) NOT NULL DEFAULT 'idle', error TEXT,
           created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL,
           started_at VARCHAR(40), finished_at VARCHAR(40)){table}",
        "CREATE TABLE task_units (seq {id}, task_id BIGINT NOT NULL, unit VARCHAR(191) NOT NULL,
           target TEXT, state VARCHAR(16) NOT NULL DEFAULT 'pending',
           `read` BIGINT NOT NULL DEFAULT 0, written BIGINT NOT NULL DEFAULT 0,
           rejected BIGINT NOT NULL DEFAULT 0, estimated_total BIGINT, checkpoint {long},
           error TEXT, started_at VARCHAR(40), updated_at VARCHAR(40) NOT NULL,
           CONSTRAINT task_unit UNIQUE (task_id, unit)){table}",
        "CREATE TABLE logs (id {id}, task_id BIGINT, category VARCHAR(16) NOT NULL,
           level VARCHAR(8) NOT NULL, unit VARCHAR(191), message TEXT NOT NULL,
           ts VARCHAR(40) NOT NULL){table}",
        "CREATE INDEX logs_task ON logs (task_id, id)",
    ],
    // 2: users with roles, their browser sessions and API tokens (secrets kept as
    // digests, passwords as Argon2id hashes), and the audit log.
    &[
        "CREATE TABLE users (id {id}, username VARCHAR(64) NOT NULL UNIQUE,
           role VARCHAR(16) NOT NULL, password_hash VARCHAR(255) NOT NULL,
           created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL){table}",
        "CREATE TABLE sessions (id VARCHAR(64) NOT NULL PRIMARY KEY, user_id BIGINT NOT NULL,
           csrf VARCHAR(64) NOT NULL, created_at VARCHAR(40) NOT NULL,
           expires_at BIGINT NOT NULL){table}",
        "CREATE INDEX sessions_user ON sessions (user_id)",
        "CREATE TABLE api_tokens (id {id}, user_id BIGINT NOT NULL, name VARCHAR(191) NOT NULL,
           digest VARCHAR(64) NOT NULL UNIQUE, created_at VARCHAR(40) NOT NULL,
           last_used_at VARCHAR(40), revoked_at VARCHAR(40)){table}",
        "CREATE INDEX api_tokens_user ON api_tokens (user_id)",
        "CREATE TABLE audit_log (id {id}, ts VARCHAR(40) NOT NULL, actor VARCHAR(191) NOT NULL,
           action VARCHAR(64) NOT NULL, target VARCHAR(191), detail TEXT,
           outcome VARCHAR(16) NOT NULL){table}",
        "CREATE INDEX audit_action ON audit_log (action, id)",
    ],
    // 3: schedules of tasks (a cron expression in a time zone and an action; `next_fire`
    // is claimed before a firing runs, so a restart never fires it twice) and the run
    // history of tasks (every start, scheduled run and check, with counters and result).
    &[
        "CREATE TABLE schedules (id {id}, task_id BIGINT NOT NULL, cron VARCHAR(191) NOT NULL,
           timezone VARCHAR(64) NOT NULL, action VARCHAR(32) NOT NULL,
           repair_drift INTEGER NOT NULL DEFAULT 0, delete_extra INTEGER NOT NULL DEFAULT 0,
           enabled INTEGER NOT NULL DEFAULT 1, next_fire VARCHAR(40), last_fire VARCHAR(40),
           created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL){table}",
        "CREATE INDEX schedules_task ON schedules (task_id, id)",
        "CREATE TABLE task_runs (id {id}, task_id BIGINT NOT NULL, schedule_id BIGINT,
           kind VARCHAR(16) NOT NULL, origin VARCHAR(16) NOT NULL, result VARCHAR(16) NOT NULL,
           started_at VARCHAR(40) NOT NULL, finished_at VARCHAR(40), rows_read BIGINT,
           rows_written BIGINT, bytes_written BIGINT, rejected BIGINT, diff_found BIGINT,
           diff_left BIGINT, error TEXT, detail {long}){table}",
        "CREATE INDEX task_runs_task ON task_runs (task_id, id)",
    ],
    // 4: dead letters of the tasks: one row per (task, unit, key), counted when the same
    // key is rejected again; new / replayed / discarded.
    &[
        "CREATE TABLE dead_letters (id {id}, task_id BIGINT NOT NULL, unit VARCHAR(191) NOT NULL,
           key_digest VARCHAR(64) NOT NULL, key_text TEXT NOT NULL, stage VARCHAR(16) NOT NULL,
           error TEXT NOT NULL, entry {long} NOT NULL, state VARCHAR(16) NOT NULL,
           hits BIGINT NOT NULL, attempts BIGINT NOT NULL, first_at VARCHAR(40) NOT NULL,
           last_at VARCHAR(40) NOT NULL, last_us BIGINT NOT NULL, state_at VARCHAR(40),
           state_us BIGINT, state_by VARCHAR(191),
           CONSTRAINT dead_letter_key UNIQUE (task_id, unit, key_digest)){table}",
        "CREATE INDEX dead_letters_task ON dead_letters (task_id, state, id)",
    ],
    // 5: alert channels (their URL and signing secret encrypted), alert rules, and the
    // alert history (firings, resolutions, test sends, with each delivery's outcome).
    &[
        "CREATE TABLE alert_channels (id {id}, name VARCHAR(191) NOT NULL UNIQUE,
           kind VARCHAR(16) NOT NULL, endpoint VARCHAR(255) NOT NULL, url_enc TEXT NOT NULL,
           secret_enc TEXT, enabled BIGINT NOT NULL DEFAULT 1,
           created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL){table}",
        "CREATE TABLE alert_rules (id {id}, name VARCHAR(191) NOT NULL UNIQUE,
           kind VARCHAR(32) NOT NULL, task_id BIGINT, threshold DOUBLE,
           for_secs BIGINT NOT NULL DEFAULT 0, level VARCHAR(16) NOT NULL,
           channels TEXT NOT NULL, enabled BIGINT NOT NULL DEFAULT 1,
           created_at VARCHAR(40) NOT NULL, updated_at VARCHAR(40) NOT NULL){table}",
        "CREATE TABLE alert_history (id {id}, ts VARCHAR(40) NOT NULL, rule_id BIGINT NOT NULL,
           rule VARCHAR(191) NOT NULL, kind VARCHAR(32) NOT NULL, level VARCHAR(16) NOT NULL,
           state VARCHAR(16) NOT NULL, task_id BIGINT, task VARCHAR(191), message TEXT NOT NULL,
           value DOUBLE, threshold DOUBLE, deliveries {long}){table}",
        "CREATE INDEX alert_history_rule ON alert_history (rule_id, id)",
        "CREATE INDEX alert_history_task ON alert_history (task_id, id)",
    ],
];

/// SQLite files written before the schema was shared (version 1 with `meta.key` and
/// units ordered by `rowid`) are brought to the shared version 1 by these statements, once.
pub const SQLITE_V1_ADOPTION: &[&str] = &[
    "ALTER TABLE meta RENAME COLUMN key TO k",
    "CREATE TABLE task_units_shared (seq {id}, task_id BIGINT NOT NULL,
       unit VARCHAR(191) NOT NULL, target TEXT, state VARCHAR(16) NOT NULL DEFAULT 'pending',
       `read` BIGINT NOT NULL DEFAULT 0, written BIGINT NOT NULL DEFAULT 0,
       rejected BIGINT NOT NULL DEFAULT 0, estimated_total BIGINT, checkpoint {long},
       error TEXT, started_at VARCHAR(40), updated_at VARCHAR(40) NOT NULL,
       CONSTRAINT task_unit UNIQUE (task_id, unit))",
    "INSERT INTO task_units_shared (task_id, unit, target, state, `read`, written, rejected,
       estimated_total, checkpoint, error, started_at, updated_at)
     SELECT task_id, unit, target, state, `read`, written, rejected, estimated_total,
       checkpoint, error, started_at, updated_at FROM task_units ORDER BY rowid",
    "DROP TABLE task_units",
    "ALTER TABLE task_units_shared RENAME TO task_units",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_filled_per_dialect() {
        let s = Dialect::Sqlite.render(MIGRATIONS[0][1]);
        assert!(s.contains("id INTEGER PRIMARY KEY AUTOINCREMENT") && !s.contains('{'));
        let m = Dialect::MySql.render(MIGRATIONS[0][2]);
        assert!(m.contains("BIGINT AUTO_INCREMENT PRIMARY KEY") && m.contains("MEDIUMTEXT"));
        assert!(m.ends_with("DEFAULT CHARSET=utf8mb4"));
    }

    #[test]
    fn upserts_per_dialect() {
        let cols = ["task_id", "unit", "written"];
        let up = [Set::Max("written"), Set::New("unit")];
        assert_eq!(
            Dialect::Sqlite.upsert("t", &cols, "task_id, unit", &up),
            "INSERT INTO t (task_id, unit, written) VALUES (?, ?, ?) ON CONFLICT(task_id, unit) \
             DO UPDATE SET written = MAX(written, excluded.written), unit = excluded.unit"
        );
        assert_eq!(
            Dialect::MySql.upsert("t", &cols, "task_id, unit", &up),
            "INSERT INTO t (task_id, unit, written) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE \
             written = GREATEST(written, VALUES(written)), unit = VALUES(unit)"
        );
    }
}
