//! Clear errors: missing table, missing privilege, wrong password, unknown database, and
//! values that do not fit the target (named by table, column and key; dead-lettered by
//! policy while the good rows land).

mod common;

use std::sync::Arc;

use common::*;
use datatrace_core::{
    DeadLetterQueue, ErrorPolicy, MemoryDeadLetterQueue, Pipeline, PipelineConfig, RunStatus,
};
use datatrace_mysql::{
    discover_tables, table_info, ConnectionConfig, MySqlConnection, MySqlError, SinkOptions,
    SourceOptions, TableSelector,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_table_is_named() {
    let d = db().create_database("err_tab");
    let conn = connect(&d).await;
    let e = discover_tables(&conn, &TableSelector::include([format!("{d}.nope")]))
        .await
        .unwrap_err();
    assert!(matches!(e, MySqlError::NoTable { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains(&format!("{d}.nope")), "{msg}");
    let e = table_info(&conn, &d, "missing")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("table not found") && e.contains(&format!("{d}.missing")),
        "{e}"
    );
    // Patterns that match nothing are not errors.
    let none = discover_tables(&conn, &TableSelector::include([format!("{d}.x*")]))
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_database_is_named() {
    let name = datatrace_testkit::unique_name("no_such_db");
    let e = MySqlConnection::connect(&ConnectionConfig::new(db().url_for(&name)))
        .await
        .unwrap_err();
    assert!(matches!(e, MySqlError::UnknownDatabase { .. }), "{e:?}");
    assert!(e.to_string().contains(&name), "{e}");
}

fn create_user(user: &str, password: &str, grants: &[String]) {
    let mut sql = String::new();
    for host in ["%", "localhost", "127.0.0.1"] {
        sql.push_str(&format!(
            "CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}';"
        ));
        for g in grants {
            sql.push_str(&format!("GRANT {g} TO '{user}'@'{host}';"));
        }
    }
    exec(&sql);
}

fn url_as(user: &str, password: &str, database: &str) -> String {
    format!(
        "mysql://{user}:{password}@{}:{}/{database}",
        db().host(),
        db().port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_is_access_denied_without_leaking_it() {
    let d = db().create_database("err_pw");
    let user = datatrace_testkit::unique_name("u");
    create_user(&user, "right-pw", &[format!("ALL ON `{d}`.* ")]);
    let cfg = ConnectionConfig::new(url_as(&user, "wrong-pw-123", &d));
    let e = MySqlConnection::connect(&cfg).await.unwrap_err();
    assert!(matches!(e, MySqlError::AccessDenied { .. }), "{e:?}");
    let text = format!("{e} {e:?} {cfg:?}");
    assert!(
        text.contains("access denied") && text.contains(&user),
        "{text}"
    );
    assert!(!text.contains("wrong-pw-123"), "{text}");
    // The password given separately works and is never shown either.
    let cfg = ConnectionConfig::new(format!(
        "mysql://{user}@{}:{}/{d}",
        db().host(),
        db().port()
    ))
    .password("right-pw");
    assert!(!format!("{cfg:?}").contains("right-pw"));
    MySqlConnection::connect(&cfg)
        .await
        .expect("right password");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_privilege_is_named() {
    let d = db().create_database("err_priv");
    exec(&format!(
        "USE `{d}`; CREATE TABLE open_t (id INT PRIMARY KEY); CREATE TABLE secret (id INT PRIMARY KEY);
         CREATE TABLE ro (id INT PRIMARY KEY);"
    ));
    let user = datatrace_testkit::unique_name("ro");
    create_user(
        &user,
        "pw",
        &[
            format!("SELECT ON `{d}`.`open_t`"),
            format!("SELECT ON `{d}`.`ro`"),
        ],
    );
    let conn = MySqlConnection::connect(&ConnectionConfig::new(url_as(&user, "pw", &d)))
        .await
        .unwrap();
    let e = discover_tables(&conn, &TableSelector::include([format!("{d}.secret")]))
        .await
        .unwrap_err();
    assert!(matches!(e, MySqlError::NoPrivilege { .. }), "{e:?}");
    assert!(e.to_string().contains("secret"), "{e}");
    let ok = discover_tables(&conn, &TableSelector::include([format!("{d}.*")]))
        .await
        .unwrap();
    assert_eq!(ok.len(), 2);
    // Writing without INSERT privilege fails the unit with a message naming the table.
    exec(&format!("INSERT INTO `{d}`.open_t VALUES (1), (2)"));
    let source = source(&d, "open_t", SourceOptions::default()).await;
    let sink = Arc::new(
        datatrace_mysql::MySqlSink::new(
            conn,
            SinkOptions {
                table: Some("ro".into()),
                ..Default::default()
            },
        )
        .unwrap(),
    );
    let err = Pipeline::new("priv", source, sink).run().await.unwrap_err();
    // The connector's typed error reaches the run's error.
    assert!(
        matches!(
            err.find_source::<MySqlError>(),
            Some(MySqlError::NoPrivilege { .. })
        ),
        "{err:?}"
    );
    let e = err.to_string();
    assert!(
        e.contains(&format!("writing {d}.ro: missing privilege")),
        "{e}"
    );
    assert!(e.contains("INSERT") && e.contains("`ro`"), "{e}");
}

const BAD_DATA: &str = "
CREATE TABLE src (id INT PRIMARY KEY, name VARCHAR(50), n INT, d DATETIME);
INSERT INTO src VALUES (1, 'ok', 1, '2024-01-01'), (2, 'far too long a name', 2, '2024-01-01'),
  (3, 'ok', 1000, '2024-01-01'), (4, 'ok', 4, NULL), (5, 'fine', 5, '2024-01-02');
CREATE TABLE dst (id INT PRIMARY KEY, name VARCHAR(5), n TINYINT, d DATETIME NOT NULL);";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn value_that_does_not_fit_names_table_column_and_key() {
    let d = db().create_database("err_fit");
    exec(&format!("USE `{d}`; {BAD_DATA}"));
    let source = source(&d, "src", SourceOptions::default()).await;
    let sink = sink(
        &d,
        SinkOptions {
            table: Some("dst".into()),
            ..Default::default()
        },
    )
    .await;
    let err = Pipeline::new("fit", source, sink).run().await.unwrap_err();
    assert!(
        matches!(err.find_source::<MySqlError>(), Some(e) if e.is_data()),
        "{err:?}"
    );
    let e = err.to_string();
    assert!(e.contains("record with key 2 rejected"), "{e}");
    assert!(
        e.contains(&format!("table {d}.dst, column name, key 2")),
        "{e}"
    );
    assert!(e.contains("Data too long"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rows_go_to_the_dead_letter_queue_and_the_rest_lands() {
    let d = db().create_database("err_dlq");
    exec(&format!("USE `{d}`; {BAD_DATA}"));
    let source = source(&d, "src", SourceOptions::default()).await;
    let sink = sink(
        &d,
        SinkOptions {
            table: Some("dst".into()),
            ..Default::default()
        },
    )
    .await;
    let dlq = Arc::new(MemoryDeadLetterQueue::new());
    let report = Pipeline::new("dlq", source, sink)
        .config(PipelineConfig {
            error_policy: ErrorPolicy::DeadLetter,
            ..Default::default()
        })
        .dead_letters(dlq.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(report.status, RunStatus::Completed);
    assert_eq!(report.written, 2);
    assert_eq!(report.dead_lettered, 3);
    assert_eq!(
        exec(&format!("SELECT id, name FROM `{d}`.dst ORDER BY id")),
        "1\tok\n5\tfine\n"
    );
    let letters = dlq.list().await.unwrap();
    let mut errors: Vec<(String, String)> = letters
        .iter()
        .map(|l| (l.record.key_string(","), l.error.clone()))
        .collect();
    errors.sort();
    let e = |i: usize| errors[i].1.as_str();
    assert!(
        e(0).contains(&format!("table {d}.dst, column name, key 2"))
            && e(0).contains("Data too long"),
        "{errors:?}"
    );
    assert!(
        e(1).contains("column n, key 3") && e(1).contains("Out of range"),
        "{errors:?}"
    );
    assert!(
        e(2).contains("column d, key 4") && e(2).contains("cannot be null"),
        "{errors:?}"
    );
}
