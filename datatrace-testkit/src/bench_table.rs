//! The benchmarks' table: 10 columns of the common types (BIGINT key, INT, BIGINT,
//! VARCHAR(64) with a non-ASCII letter, DECIMAL(18,4), DATETIME(6), ~200-byte TEXT, INT
//! UNSIGNED, VARCHAR(32), DOUBLE), about 330 MB of InnoDB data per million rows, generated
//! by the server itself (`INSERT .. SELECT FROM seq_1_to_N`), the same rows every time.

use crate::MariaDb;

/// The column list and options, after `CREATE TABLE name`.
pub const DDL: &str = "(
    id BIGINT NOT NULL PRIMARY KEY, a INT NOT NULL, b BIGINT, c VARCHAR(64), d DECIMAL(18,4),
    e DATETIME(6), f TEXT, g INT UNSIGNED, h VARCHAR(32), i DOUBLE) DEFAULT CHARSET=utf8mb4";

/// The `SELECT` that makes row `seq`, before `FROM seq_1_to_N`.
pub const FILL: &str = "SELECT seq, seq % 1000, seq * 7919, CONCAT('name-', seq, ' ü'),
    seq / 3, '2024-01-01' + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND,
    RPAD(CONCAT('text ', MD5(seq)), 200, ' lorem ipsum'), seq % 65536, LEFT(SHA1(seq), 20), seq / 7";

/// Creates `database.table` with `rows` rows (none: an empty table of the same shape).
pub fn create(db: &MariaDb, database: &str, table: &str, rows: u64) {
    db.exec(&format!("CREATE TABLE `{database}`.`{table}` {DDL}"));
    if rows > 0 {
        // `USE`: the sequence engine's `seq_1_to_N` is found in the current database.
        db.exec(&format!(
            "USE `{database}`; INSERT INTO `{table}` {FILL} FROM seq_1_to_{rows}; \
             ANALYZE TABLE `{table}`"
        ));
    }
}
