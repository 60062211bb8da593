//! `validate` predicts the failures a run would meet, before any data moves, naming the
//! table, column and setting with the fix. Before, these jobs validated and then failed
//! (or did not do what their README said).

use datatrace_server::plan::{file_store, plan, predict};
use datatrace_testkit::unique_name;

use crate::common::*;

/// What `datatrace validate` says: planning, then the data checks.
async fn validate(j: &datatrace_server::job_file::JobFile) -> Result<(), String> {
    let p = plan(j, file_store(j)).await.map_err(|e| e.to_string())?;
    predict::data_checks(j, &p).await.map_err(|e| e.to_string())
}

fn index_with(docs: &[&str]) -> String {
    let index = unique_name("fid-val");
    let mut bulk = String::new();
    for (i, d) in docs.iter().enumerate() {
        bulk.push_str(&format!("{{\"index\": {{\"_id\": \"{i}\"}}}}\n{d}\n"));
    }
    let r = engine().request("POST", &format!("/{index}/_bulk?refresh=true"), Some(&bulk));
    assert!(r.status < 300, "{}", r.body);
    index
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fidelity_validate_names_target_columns_the_rows_lack_and_the_switches_work() {
    let index = index_with(&[r#"{"name": "a", "n": 1}"#, r#"{"name": "b", "n": 2}"#]);
    let dst = database(
        "fid_val_cols",
        "CREATE TABLE docs (name VARCHAR(10) PRIMARY KEY, n BIGINT);",
    );
    let dir = workdir("valcols");
    let j = job(
        &dir,
        &job_text(
            "valcols",
            &es_source(&format!("\"{index}\""), ""),
            &mysql_target(&dst, "table = \"docs\""),
            "",
        ),
    )
    .unwrap();
    let e = validate(&j).await.unwrap_err();
    assert!(
        e.contains("target.table") && e.contains("_id") && e.contains("id_column = false"),
        "{e}"
    );
    assert!(e.contains(&format!("{dst}.docs")), "{e}");
    // Both switched off from the job file: the copy fits the table.
    let j = job(
        &dir,
        &job_text(
            "valcols2",
            &es_source(
                &format!("\"{index}\""),
                "id_column = false\nextra_column = false",
            ),
            &mysql_target(&dst, "table = \"docs\""),
            "",
        ),
    )
    .unwrap();
    validate(&j).await.unwrap();
    let report = run(&j, false).await.unwrap();
    assert!(report.is_complete(), "{report:#?}");
    assert_eq!(
        exec(&dst, "SELECT name, n FROM docs ORDER BY n"),
        "a\t1\nb\t2\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fidelity_validate_reads_the_data_the_index_would_refuse() {
    let db = database(
        "fid_val_data",
        "CREATE TABLE j (id INT PRIMARY KEY, doc JSON);
         INSERT INTO j VALUES (1, '{\"a\": [1, 2], \"b\": \"x\"}'), (2, '{\"a\": [3, \"four\"]}');
         CREATE TABLE z (id INT PRIMARY KEY, d DATE);
         SET SESSION sql_mode = ''; INSERT INTO z VALUES (1, '2024-01-01'), (2, '0000-00-00');
         CREATE TABLE b (id INT PRIMARY KEY, flag BOOLEAN);
         INSERT INTO b VALUES (1, 1), (2, 7);",
    );
    let dir = workdir("valdata");
    let (target, _) = es_target("");
    let j = job(
        &dir,
        &job_text("vj", &mysql_source(&db, "\"j\"", ""), &target, ""),
    )
    .unwrap();
    let e = validate(&j).await.unwrap_err();
    assert!(
        e.contains("target.mapping.json") && e.contains("column doc") && e.contains("key 2"),
        "{e}"
    );
    assert!(e.contains("doc.a") && e.contains("flattened"), "{e}");
    let (flat, _) = es_target("mapping = { json = \"flattened\" }");
    let j = job(
        &dir,
        &job_text("vj2", &mysql_source(&db, "\"j\"", ""), &flat, ""),
    )
    .unwrap();
    validate(&j).await.unwrap();

    let j = job(
        &dir,
        &job_text(
            "vz",
            &mysql_source(&db, "\"z\"", "zero_date = \"keep\""),
            &target,
            "",
        ),
    )
    .unwrap();
    let e = validate(&j).await.unwrap_err();
    assert!(
        e.contains("source.zero_date")
            && e.contains("column d")
            && e.contains("zero_date = \"null\""),
        "{e}"
    );

    let j = job(
        &dir,
        &job_text("vb", &mysql_source(&db, "\"b\"", ""), &target, ""),
    )
    .unwrap();
    let e = validate(&j).await.unwrap_err();
    assert!(e.contains("column flag") && e.contains("holds 7"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fidelity_validate_refuses_nullable_keys_and_creates_a_missing_database() {
    let db = database(
        "fid_val_keys",
        "CREATE TABLE bag (a INT, b INT NOT NULL, v VARCHAR(5)); INSERT INTO bag VALUES (1, 1, 'x');",
    );
    let dir = workdir("valkeys");
    let (target, prefix) = es_target("");
    let j = job(
        &dir,
        &job_text(
            "vk",
            &mysql_source(&db, "\"bag\"", "key = { bag = [\"a\"] }"),
            &target,
            "",
        ),
    )
    .unwrap();
    let e = validate(&j).await.unwrap_err();
    assert!(
        e.contains("source.key") && e.contains("key column a is nullable"),
        "{e}"
    );
    let j = job(
        &dir,
        &job_text(
            "vk2",
            &mysql_source(&db, "\"bag\"", "key = { bag = [\"b\"] }"),
            &target,
            "",
        ),
    )
    .unwrap();
    validate(&j).await.unwrap();
    run_ok(&j).await;
    assert_eq!(docs::read(&format!("{prefix}-bag")).len(), 1);
    // A target database that does not exist yet is created (create_table is on).
    let missing = unique_name("fid_val_newdb");
    let j = job(
        &dir,
        &job_text(
            "vk3",
            &mysql_source(&db, "\"bag\"", "key = { bag = [\"b\"] }"),
            &mysql_target(&missing, ""),
            "",
        ),
    )
    .unwrap();
    run_ok(&j).await;
    assert_eq!(exec(&missing, "SELECT b, v FROM bag"), "1\tx\n");
}
