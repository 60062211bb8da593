//! The config form, checks, and built transforms in a pipeline.

use super::*;

#[test]
fn specs_parse_build_and_check() {
    let specs: Vec<TransformSpec> = serde_json::from_value(serde_json::json!([
        {"type": "rename", "fields": {"mail": "email"}},
        {"type": "cast", "fields": {"id": "string"}},
        {"type": "set", "field": "origin", "value": "crm"},
        {"type": "set", "field": "label", "template": "{name} <{email}>"},
        {"type": "mask", "fields": ["email"], "method": "keep_last", "n": 3},
        {"type": "filter", "where": {"field": "id", "op": "!=", "value": "2"}},
        {"type": "keep", "fields": ["id", "email", "origin", "label"]},
        {"type": "route", "pattern": "{prefix}-{table}", "vars": {"prefix": "x"}},
    ]))
    .unwrap();
    let out = check_specs(&specs, &users()).unwrap();
    let names: Vec<&str> = out.columns().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "email", "origin", "label"]);
    let chain = datatrace_core::Chain(specs.iter().map(|s| s.build().unwrap()).collect());
    let r = ok(&chain, user(1, "ann@x.io", "Ann"));
    assert_eq!(
        r.values,
        [
            Value::from("1"),
            Value::from("*****.io"),
            Value::from("crm"),
            Value::from("Ann <ann@x.io>")
        ]
    );
    assert_eq!(r.target_name(), "x-users");
    assert!(chain.apply(user(2, "b", "B")).unwrap().is_none());

    let e = check_specs(&specs[1..], &users()).unwrap_err();
    assert!(
        e.starts_with(r#"transform 3 (set): set: unknown field "email""#),
        "{e}"
    );

    for (bad, msg) in [
        (
            serde_json::json!({"type": "explode"}),
            "unknown variant `explode`",
        ),
        (
            serde_json::json!({"type": "drop", "fields": ["a"], "extra": 1}),
            "unknown field `extra`",
        ),
        (
            serde_json::json!({"type": "cast", "fields": {"a": "money"}}),
            r#"cast of "a": unknown type "money""#,
        ),
        (
            serde_json::json!({"type": "mask", "fields": ["a"], "method": "blur"}),
            "unknown method \"blur\"",
        ),
        (
            serde_json::json!({"type": "mask", "fields": ["a"], "method": "keep_last"}),
            "needs `n`",
        ),
        (
            serde_json::json!({"type": "mask", "fields": ["a"], "method": "redact", "n": 2}),
            "does not apply",
        ),
        (
            serde_json::json!({"type": "route", "pattern": "{x"}),
            "unclosed",
        ),
        (
            serde_json::json!({"type": "set", "field": "a", "as": "when"}),
            "unknown type",
        ),
    ] {
        let e = serde_json::from_value::<TransformSpec>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains(msg), "{e}");
    }
    let both: TransformSpec = serde_json::from_value(
        serde_json::json!({"type": "set", "field": "a", "value": 1, "template": "{b}"}),
    )
    .unwrap();
    assert!(both
        .build()
        .err()
        .unwrap()
        .contains("exactly one of `value` and `template`"));
    let salted: TransformSpec = serde_json::from_value(
        serde_json::json!({"type": "mask", "fields": ["a"], "method": "sha256", "salt": "pepper"}),
    )
    .unwrap();
    assert!(!format!("{salted:?}").contains("pepper"));
    let null_value: TransformSpec =
        serde_json::from_value(serde_json::json!({"type": "set", "field": "mail", "value": null}))
            .unwrap();
    assert_eq!(
        ok(&*null_value.build().unwrap(), user(1, "m", "n")).values[1],
        Value::Null
    );
}

#[tokio::test]
async fn built_transforms_run_in_a_pipeline_under_the_error_policy() {
    let schema = products();
    let rows: Vec<Record> = ["1.5", "abc", "20", "3.25", "x"]
        .iter()
        .enumerate()
        .map(|(i, p)| Record::read(schema.clone(), vec![i.to_string().into(), (*p).into()]))
        .collect();
    let specs: Vec<TransformSpec> = serde_json::from_value(serde_json::json!([
        {"type": "cast", "fields": {"price": "decimal(10,2)"}},
        {"type": "filter", "where": {"field": "price", "op": "<", "value": "10"}},
    ]))
    .unwrap();
    let sink = Arc::new(CollectingSink::new());
    let report = Pipeline::new("products", Arc::new(MemorySource::new(rows)), sink.clone())
        .transforms(build_specs(&specs).unwrap())
        .config(PipelineConfig {
            error_policy: ErrorPolicy::Skip,
            ..Default::default()
        })
        .run()
        .await
        .unwrap();
    assert_eq!(
        (report.written, report.filtered, report.rejected),
        (2, 1, 2)
    );
    let prices: Vec<String> = sink
        .records()
        .iter()
        .map(|r| r.values[1].to_string())
        .collect();
    assert_eq!(prices, ["1.50", "3.25"]);
}
