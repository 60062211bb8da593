//! Document ids of composite keys are injective: keys whose parts contain the separator (or
//! the escape) never share a document. Before, ('a_b', 'c') and ('a', 'b_c') both became
//! the document `a_b_c`: one row silently overwrote the other.

use datatrace_core::doc_id;
use datatrace_core::{DataType, Value};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fidelity_composite_keys_with_separators_are_distinct_documents() {
    let db = database(
        "fid_ids",
        "CREATE TABLE pairs (a VARCHAR(10) NOT NULL, b VARCHAR(10) NOT NULL, v INT, PRIMARY KEY (a, b));
         INSERT INTO pairs VALUES ('a_b','c',1), ('a','b_c',2), ('a\\\\','_c',3), ('a\\\\_','c',4), ('_','',5), ('','_',6), ('x','y',7);",
    );
    let dir = workdir("ids");
    let (target, prefix) = es_target("");
    let j = job(
        &dir,
        &job_text("ids", &mysql_source(&db, "\"pairs\"", ""), &target, ""),
    )
    .unwrap();
    run_ok(&j).await;
    let found = docs::read(&format!("{prefix}-pairs"));
    assert_eq!(found.len(), 7, "{found:#?}");
    let types = [DataType::String, DataType::String];
    for (id, doc) in &found {
        let key = doc_id::decode(id, &types, "_").unwrap();
        assert_eq!(key[0], Value::from(doc["a"].as_str().unwrap()), "{id}");
        assert_eq!(key[1], Value::from(doc["b"].as_str().unwrap()), "{id}");
    }
    // Keys without the separator keep the ids they always had.
    assert!(found.contains_key("x_y"), "{found:#?}");
}
