//! The sink's bulk path (`LOAD DATA LOCAL INFILE` streamed from memory): every type arrives
//! exactly as the `INSERT` path writes it, replays stay idempotent, semantics that `REPLACE`
//! would change go through `INSERT`, a row the server would alter is refused as with
//! `INSERT`, and a server without local files gets multi-row `INSERT`s.

mod all_types;
mod common;

use std::sync::Arc;

use all_types::{ALL_TYPES, ROWS};
use common::*;
use datatrace_core::{
    Batch, Column, DataType, Outcome, Pipeline, PipelineConfig, PrepareContext, Record, Schema,
    Sink, Value,
};
use datatrace_mysql::{
    ConnectionConfig, MySqlConnection, MySqlSink, SinkOptions, SourceOptions, WriteMode, ZeroDate,
};

/// Copies `src.table` into `dst` with a sink of `opts`; returns the sink.
async fn copy_into(src: &str, table: &str, dst: &str, opts: SinkOptions) -> Arc<MySqlSink> {
    let s = source(
        src,
        table,
        SourceOptions {
            zero_date: ZeroDate::Keep,
            ..Default::default()
        },
    )
    .await;
    let k = sink(dst, opts).await;
    let report = Pipeline::new(format!("{src}.{table}"), s, k.clone())
        .config(PipelineConfig {
            batch_size: 2,
            ..Default::default()
        })
        .run()
        .await
        .expect("copy");
    assert_eq!(report.rejected, 0);
    k
}

const NASTY: &str = "
CREATE TABLE nasty (
  id INT NOT NULL PRIMARY KEY, t TEXT, v VARCHAR(40), b LONGBLOB, vb VARBINARY(300), j JSON,
  c CHAR(5), l VARCHAR(20) CHARACTER SET latin1
) DEFAULT CHARSET=utf8mb4;
INSERT INTO nasty VALUES
  (1, 'tab\\there\\nnewline\\rcr \\\\ backslash', '\\\\N', X'00', X'', '{\"k\":\"a\\\\tb\\\\\\\\c\\\\nd\"}', 'a  ', 'café'),
  (2, '\\\\N', '', X'5c4e', X'090a0d5c00', '[\"\\\\\\\\N\",null,1.5]', '', 'ÿ'),
  (3, CONCAT('nul', CHAR(0), 'byte'), 'trailing spaces   ', X'0a', X'ff', 'null', ' ', ''),
  (4, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
  (5, REPEAT('\\t\\\\\\n', 5000), 'x', X'5c', X'5c5c', '\"\\\\u0000\"', 'x', 'x');
";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_data_copies_every_type_exactly() {
    let src = db().create_database("ld_src");
    let bulk = db().create_database("ld_bulk");
    let plain = db().create_database("ld_plain");
    exec(&format!(
        "USE `{src}`; SET sql_mode=''; {ALL_TYPES}; {ROWS}; SET sql_mode=DEFAULT; {NASTY}"
    ));
    // Every 256 byte values, in a BLOB and in a text column's neighbour.
    exec(&format!(
        "USE `{src}`; INSERT INTO nasty (id, b, vb) SELECT 10 + seq, UNHEX(HEX(CHAR(seq USING binary))), \
         REPEAT(CHAR(seq USING binary), 3) FROM seq_0_to_255"
    ));
    for table in ["all_types", "nasty"] {
        let loaded = copy_into(
            &src,
            table,
            &bulk,
            SinkOptions {
                create_table: true,
                ..Default::default()
            },
        )
        .await;
        let inserted = copy_into(
            &src,
            table,
            &plain,
            SinkOptions {
                create_table: true,
                load_data: false,
                ..Default::default()
            },
        )
        .await;
        let n: u64 = exec(&format!("SELECT COUNT(*) FROM `{src}`.`{table}`"))
            .trim()
            .parse()
            .unwrap();
        assert_eq!(
            loaded.loaded_rows(),
            n,
            "{table}: every row through LOAD DATA"
        );
        assert_eq!(inserted.loaded_rows(), 0);
        assert_same(&src, &bulk, table, "id");
        assert_same(&plain, &bulk, table, "id");
    }
    // Byte for byte, not only equal under the collation.
    assert_eq!(
        exec(&format!(
            "SELECT HEX(t), HEX(v), HEX(c) FROM `{bulk}`.nasty WHERE id <= 3 ORDER BY id"
        )),
        exec(&format!(
            "SELECT HEX(t), HEX(v), HEX(c) FROM `{src}`.nasty WHERE id <= 3 ORDER BY id"
        ))
    );
}

fn schema() -> Arc<Schema> {
    Arc::new(
        Schema::new(
            "items",
            vec![
                Column::new("id", DataType::Int).not_null(),
                Column::new("name", DataType::String),
            ],
        )
        .with_primary_key(&["id"])
        .unwrap(),
    )
}

fn rows(range: std::ops::Range<i64>, name: &str) -> Vec<Record> {
    range
        .map(|i| {
            Record::read(
                schema(),
                vec![Value::Int(i), Value::from(format!("{name}{i}"))],
            )
        })
        .collect()
}

async fn prepared(d: &str, opts: SinkOptions) -> Arc<MySqlSink> {
    let s = sink(d, opts).await;
    s.prepare(&PrepareContext {
        unit: "u".into(),
        schema: Some(schema()),
        resumed: false,
    })
    .await
    .unwrap();
    s
}

fn all_written(o: &[Outcome]) -> bool {
    o.iter().all(|o| matches!(o, Outcome::Written))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_data_replays_are_idempotent() {
    let d = db().create_database("ld_replay");
    let s = prepared(
        &d,
        SinkOptions {
            create_table: true,
            ..Default::default()
        },
    )
    .await;
    assert!(all_written(
        &s.write(&Batch::new(rows(0..100, "a"))).await.unwrap()
    ));
    // A resumed chunk overlaps what was written: rows are replaced, never doubled. (The
    // table is fresh, loaded without REPLACE: the duplicate keys make the server warn, and
    // the batch goes through INSERT .. ON DUPLICATE KEY UPDATE.)
    assert!(all_written(
        &s.write(&Batch::new(rows(50..150, "b"))).await.unwrap()
    ));
    assert_eq!(s.loaded_rows(), 100);
    assert_eq!(
        exec(&format!(
            "SELECT COUNT(*), SUM(name LIKE 'a%'), SUM(name LIKE 'b%') FROM `{d}`.items"
        ))
        .trim(),
        "150\t50\t100"
    );
    // REPLACE mode too; INSERT IGNORE keeps the old rows (the server warns about each
    // duplicate, so such a batch goes through INSERT IGNORE).
    for (mode, expect, loaded) in [
        (WriteMode::Replace, "c", 150),
        (WriteMode::InsertIgnore, "c", 0),
    ] {
        let s = prepared(
            &d,
            SinkOptions {
                mode,
                ..Default::default()
            },
        )
        .await;
        let name = if mode == WriteMode::Replace { "c" } else { "d" };
        assert!(all_written(
            &s.write(&Batch::new(rows(0..150, name))).await.unwrap()
        ));
        assert_eq!(s.loaded_rows(), loaded, "{mode:?}");
        assert_eq!(
            exec(&format!(
                "SELECT COUNT(*), SUM(name LIKE '{expect}%') FROM `{d}`.items"
            ))
            .trim(),
            "150\t150",
            "{mode:?}"
        );
    }
    let s = prepared(
        &d,
        SinkOptions {
            mode: WriteMode::InsertIgnore,
            ..Default::default()
        },
    )
    .await;
    assert!(all_written(
        &s.write(&Batch::new(rows(150..160, "e"))).await.unwrap()
    ));
    assert_eq!(s.loaded_rows(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_data_keeps_upsert_semantics_where_replace_differs() {
    let d = db().create_database("ld_upsert");
    // A column the records do not carry: an upsert keeps it, REPLACE would reset it.
    exec(&format!(
        "USE `{d}`; CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT, note TEXT DEFAULT 'none');
         INSERT INTO items VALUES (1, 'old', 'kept')"
    ));
    let s = prepared(&d, SinkOptions::default()).await;
    assert!(all_written(
        &s.write(&Batch::new(rows(1..3, "n"))).await.unwrap()
    ));
    assert_eq!(s.loaded_rows(), 0);
    assert_eq!(
        exec(&format!(
            "SELECT id, name, note FROM `{d}`.items ORDER BY id"
        )),
        "1\tn1\tkept\n2\tn2\tnone\n"
    );
    // A delete trigger (REPLACE would fire it), a second unique key, a foreign key
    // referring to the table: upserts go through INSERT.
    let cases = [
        "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT);
         CREATE TABLE log (n INT); CREATE TRIGGER gone AFTER DELETE ON items FOR EACH ROW INSERT INTO log VALUES (1)",
        "CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(20), UNIQUE KEY (name))",
        "CREATE TABLE items (id BIGINT PRIMARY KEY, name TEXT) ENGINE=InnoDB;
         CREATE TABLE child (id BIGINT PRIMARY KEY, item BIGINT, FOREIGN KEY (item) REFERENCES items (id) ON DELETE CASCADE)",
    ];
    for ddl in cases {
        // Found empty (fresh): the first batch loads plainly, its replay goes through
        // INSERT; with a row there from the start, both do.
        for (seed, loaded) in [("", 2), ("INSERT INTO items VALUES (7, 'seed')", 0)] {
            let d = db().create_database("ld_differs");
            exec(&format!("USE `{d}`; {ddl}; {seed}"));
            let s = prepared(&d, SinkOptions::default()).await;
            for _ in 0..2 {
                assert!(all_written(
                    &s.write(&Batch::new(rows(1..3, "n"))).await.unwrap()
                ));
            }
            assert_eq!(s.loaded_rows(), loaded, "{ddl} {seed}");
            let want = if seed.is_empty() { "2" } else { "3" };
            assert_eq!(
                exec(&format!("SELECT COUNT(*) FROM `{d}`.items")).trim(),
                want
            );
            if ddl.contains("TRIGGER") {
                // No row was deleted (REPLACE would have fired the trigger).
                assert_eq!(exec(&format!("SELECT COUNT(*) FROM `{d}`.log")).trim(), "0");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_data_refuses_what_the_server_would_change() {
    let d = db().create_database("ld_bad");
    exec(&format!(
        "USE `{d}`; CREATE TABLE items (id BIGINT PRIMARY KEY, name VARCHAR(3) CHARACTER SET latin1)"
    ));
    let s = prepared(&d, SinkOptions::default()).await;
    let mut batch = rows(1..4, "");
    batch[1].values[1] = Value::from("toolong");
    let out = s.write(&Batch::new(batch)).await.unwrap();
    assert!(matches!(out[0], Outcome::Written) && matches!(out[2], Outcome::Written));
    match &out[1] {
        Outcome::Rejected(why) => {
            let why = why.to_string();
            assert!(
                why.contains("column name") && why.contains("key 2"),
                "{why}"
            );
        }
        other => panic!("{other:?}"),
    }
    // A character latin1 cannot hold: refused, not stored as '?'.
    let mut batch = rows(10..12, "");
    batch[0].values[1] = Value::from("✓");
    let out = s.write(&Batch::new(batch)).await.unwrap();
    assert!(matches!(out[0], Outcome::Rejected(_)), "{out:?}");
    assert_eq!(s.loaded_rows(), 0);
    assert_eq!(
        exec(&format!("SELECT id, name FROM `{d}`.items ORDER BY id")),
        "1\t1\n3\t3\n11\t11\n"
    );
    // Insert mode: a duplicate is a rejected row, as with INSERT.
    let s = prepared(
        &d,
        SinkOptions {
            mode: WriteMode::Insert,
            ..Default::default()
        },
    )
    .await;
    let out = s.write(&Batch::new(rows(3..5, ""))).await.unwrap();
    match &out[0] {
        Outcome::Rejected(why) => assert!(why.to_string().contains("Duplicate"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(out[1], Outcome::Written));
    // Clean batches take the bulk path.
    s.write(&Batch::new(rows(20..30, ""))).await.unwrap();
    assert_eq!(s.loaded_rows(), 10);
}

/// Asserts equal text, showing the first differing line (shortened).
fn same(got: &str, want: &str, what: &str) {
    if got == want {
        return;
    }
    let short = |l: &str| l.chars().take(400).collect::<String>();
    for (i, (g, w)) in got.lines().zip(want.lines()).enumerate() {
        if g != w {
            panic!(
                "{what}: line {i} differs:\n got: {}\nwant: {}",
                short(g),
                short(w)
            );
        }
    }
    panic!(
        "{what}: {} lines, want {}",
        got.lines().count(),
        want.lines().count()
    );
}

/// A server of its own: another time zone, then local files switched off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_data_off_on_the_server_writes_inserts() {
    let server = datatrace_testkit::MariaDb::dedicated();
    server.exec("SET GLOBAL time_zone = '+05:30'");
    let src = server.create_database("ld_tz_src");
    let dst = server.create_database("ld_tz_dst");
    let off = server.create_database("ld_off");
    server.exec(&format!(
        "USE `{src}`; SET time_zone = '+05:30'; SET sql_mode=''; {ALL_TYPES}; {ROWS}"
    ));
    let copy = |to: String| {
        let (server, src) = (&server, src.clone());
        async move {
            let conn = |d: &str| {
                let cfg = ConnectionConfig::new(server.url_for(d));
                async move { MySqlConnection::connect(&cfg).await }
            };
            let s_conn = conn(&src).await.unwrap();
            let info = datatrace_mysql::table_info(&s_conn, &src, "all_types")
                .await
                .unwrap();
            let source = Arc::new(
                datatrace_mysql::MySqlSource::new(
                    s_conn,
                    info,
                    SourceOptions {
                        zero_date: ZeroDate::Keep,
                        ..Default::default()
                    },
                )
                .unwrap(),
            );
            let sink = Arc::new(
                MySqlSink::new(
                    conn(&to).await.unwrap(),
                    SinkOptions {
                        create_table: true,
                        ..Default::default()
                    },
                )
                .unwrap(),
            );
            Pipeline::new("tz", source, sink.clone())
                .run()
                .await
                .expect("copy");
            sink.loaded_rows()
        }
    };
    assert_eq!(copy(dst.clone()).await, 5);
    server.exec("SET GLOBAL local_infile = 0");
    assert_eq!(copy(off.clone()).await, 0);
    let dump = |d: &str| {
        server.exec(&format!(
            "SET time_zone = '+00:00'; SELECT * FROM `{d}`.all_types ORDER BY id; CHECKSUM TABLE `{d}`.all_types"
        ))
        .replace(d, "db")
    };
    let want = dump(&src);
    same(&dump(&dst), &want, "LOAD DATA into another time zone");
    same(&dump(&off), &want, "INSERT with local_infile off");
    server.stop();
}
