//! Job file parsing and validation: every error names the file, the key path and what is
//! expected; asserted exactly.

use std::path::Path;

use datatrace_core::ErrorPolicy;
use datatrace_server::connectors::GeneratorSpec;
use datatrace_server::job_file::JobFile;

fn env(name: &str) -> Option<String> {
    match name {
        "DT_PASSWORD" => Some("hunter2-secret".into()),
        "DT_ROWS_NAME" => Some("orders".into()),
        _ => None,
    }
}

fn parse(text: &str) -> Result<JobFile, String> {
    JobFile::parse("job.toml", text, Path::new("/jobs"), &env).map_err(|e| e.to_string())
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(j) => panic!("expected an error, parsed {j:?}"),
        Err(e) => e,
    }
}

const BASE: &str = r#"
name = "smoke"
[source]
type = "generator"
[target]
type = "discard"
"#;

fn with(extra: &str) -> String {
    format!("{BASE}{extra}")
}

#[test]
fn a_good_file_has_defaults_and_resolved_paths() {
    let job = parse(&with(
        r#"
[settings]
concurrency = 3
batch_size = 500
error_policy = "dead-letter"
rate_limit = { records_per_sec = 1000 }
retry = { max_attempts = 3 }
[[transforms]]
type = "drop"
fields = ["c2"]
"#,
    ))
    .unwrap();
    assert_eq!(job.name, "smoke");
    let g = job.source.get::<GeneratorSpec>().expect("a generator");
    assert_eq!(g.units, ["generated"]);
    assert_eq!(job.settings.concurrency, 3);
    let cfg = job.settings.pipeline_config();
    assert_eq!(cfg.batch_size, 500);
    assert_eq!(cfg.error_policy, ErrorPolicy::DeadLetter);
    assert_eq!(cfg.rate_limit.records_per_sec, Some(1000.0));
    assert_eq!(cfg.retry.max_attempts, 3);
    assert_eq!(cfg.retry.initial_backoff.as_millis(), 100, "default kept");
    assert_eq!(job.transforms.len(), 1);
    assert_eq!(job.checkpoint_dir, Path::new("/jobs/.datatrace"));
    assert_eq!(
        job.dead_letter_path,
        Path::new("/jobs/.datatrace/smoke/dead-letters.ndjson")
    );
}

#[test]
fn json_is_accepted() {
    let job = JobFile::parse(
        "job.json",
        r#"{"name": "j", "source": {"type": "generator", "units": ["x", "y"], "rows": 5},
            "target": {"type": "discard"}, "checkpoints": {"dir": "/tmp/cp"}}"#,
        Path::new("."),
        &env,
    )
    .unwrap();
    let g = job.source.get::<GeneratorSpec>().expect("a generator");
    assert_eq!((g.units.len(), g.rows), (2, 5));
    assert_eq!(job.checkpoint_dir, Path::new("/tmp/cp"));
    let e = JobFile::parse("job.json", r#"{"name": 5}"#, Path::new("."), &env)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "job.json: name: expected a string, found integer `5`");
}

#[test]
fn unknown_keys_list_the_allowed_ones() {
    assert_eq!(
        err(&BASE.replace("name = \"smoke\"", "name = \"smoke\"\ncolour = 1")),
        "job.toml: colour: unknown key, expected one of: name, description, source, target, \
         transforms, settings, checkpoints, dead_letters"
    );
    assert_eq!(
        err(&with("[settings]\nbatchsize = 10\n")),
        "job.toml: settings.batchsize: unknown key, expected one of: concurrency, batch_size, \
         max_batch_bytes, linger, channel_capacity, max_parts, read_parallelism, sink_concurrency, \
         partition_by_key, rate_limit, retry, error_policy, checkpoint_interval, progress_interval"
    );
    assert_eq!(
        err(&with("[settings.retry]\nattempts = 3\n")),
        "job.toml: settings.retry.attempts: unknown key, expected one of: max_attempts, \
         initial_backoff, max_backoff, max_elapsed"
    );
    assert_eq!(
        err(&BASE.replace("type = \"generator\"", "type = \"generator\"\nrowz = 5")),
        "job.toml: source.rowz: unknown key, expected one of: type, units, rows, columns, width"
    );
    assert_eq!(
        err(&BASE.replace("type = \"discard\"", "type = \"discard\"\nspeed = 5")),
        "job.toml: target.speed: unknown key, expected one of: type"
    );
    assert_eq!(
        err(&with("[[transforms]]\ntype = \"drop\"\nfields = [\"a\"]\nfeilds = 1\n")),
        "job.toml: transforms[0].feilds: unknown key, expected one of: type, fields, ignore_missing"
    );
}

#[test]
fn wrong_types_name_the_key_and_the_expected_type() {
    assert_eq!(
        err(&with("[settings]\nbatch_size = \"big\"\n")),
        "job.toml: settings.batch_size: expected a non-negative integer, found string \"big\""
    );
    assert_eq!(
        err(&with("[settings]\nbatch_size = -1\n")),
        "job.toml: settings.batch_size: expected a non-negative integer, found integer `-1`"
    );
    assert_eq!(
        err(&BASE.replace(
            "type = \"generator\"",
            "type = \"generator\"\nunits = [\"a\", 7]"
        )),
        "job.toml: source.units[1]: expected a string, found integer `7`"
    );
    assert_eq!(
        err(&with("[settings]\nerror_policy = \"ignore\"\n")),
        "job.toml: settings.error_policy: unknown value \"ignore\", expected one of: fail, skip, \
         dead-letter"
    );
    assert_eq!(
        err(&with("[settings]\nbatch_size = 0\n")),
        "job.toml: settings.batch_size: must be at least 1"
    );
    assert_eq!(
        err(&with("[settings]\nrate_limit = { records_per_sec = 0 }\n")),
        "job.toml: settings.rate_limit.records_per_sec: must be above 0"
    );
    assert_eq!(
        err(&with("[[transforms]]\ntype = \"drop\"\nfields = \"c2\"\n")),
        "job.toml: transforms[0].fields: expected an array, found string \"c2\""
    );
    assert_eq!(
        err(&BASE.replace("name = \"smoke\"", "name = \"smoke\"\ntransforms = 3")),
        "job.toml: transforms: expected an array of tables ([[transforms]]), found integer `3`"
    );
}

#[test]
fn types_and_sections_are_checked() {
    assert_eq!(
        err(&BASE.replace("\"generator\"", "\"mongodb\"")),
        "job.toml: source.type: unknown type \"mongodb\", expected one of: mysql, elasticsearch, opensearch, kafka, generator"
    );
    assert_eq!(
        err(&BASE.replace("type = \"discard\"", "")),
        "job.toml: target: missing key \"type\" (one of: mysql, elasticsearch, opensearch, kafka, discard)"
    );
    assert_eq!(
        err("name = \"x\"\n[target]\ntype = \"discard\"\n"),
        "job.toml: missing section [source]"
    );
    assert_eq!(
        err(&BASE.replace("name = \"smoke\"", "name = \"my job\"")),
        "job.toml: name: expected a name of letters, digits, \".\", \"_\" and \"-\" (it names \
         the checkpoint directory), found \"my job\""
    );
    assert_eq!(
        err(&with("[[transforms]]\ntype = \"uppercase\"\n")),
        "job.toml: transforms[0].type: unknown transform \"uppercase\", expected one of: rename, \
         keep, drop, set, cast, mask, filter, route"
    );
    assert_eq!(
        err(&BASE
            .replace("units", "x")
            .replace("type = \"generator\"", "type = \"generator\"\nunits = []")),
        "job.toml: source.units: expected at least one unit name"
    );
    assert_eq!(
        err("name = \"x\"\n[source\n"),
        "job.toml: invalid TOML at line 2, column 8: unclosed table, expected `]`"
    );
}

#[test]
fn bad_patterns_are_reported_before_the_run() {
    assert_eq!(
        err(&with("[[transforms]]\ntype = \"route\"\npattern = \"{prefix-{table}\"\n")),
        "job.toml: transforms[0].pattern: invalid pattern \"{prefix-{table}\": '{' inside a placeholder"
    );
    assert_eq!(
        err(&with(
            "[[transforms]]\ntype = \"cast\"\nfields = { c1 = \"integer(4)\" }\n"
        )),
        "job.toml: transforms[0].fields: cast of \"c1\": unknown type \"integer(4)\": expected \
         bool, int, uint, float, decimal, decimal(p,s), string, bytes, date, time, datetime, \
         timestamp or json"
    );
}

#[test]
fn environment_variables_are_substituted_and_unset_ones_named() {
    let job = parse(&BASE.replace(
        "type = \"generator\"",
        "type = \"generator\"\nunits = [\"${DT_ROWS_NAME}\", \"b\"]",
    ))
    .unwrap();
    let g = job.source.get::<GeneratorSpec>().expect("a generator");
    assert_eq!(g.units, ["orders", "b"]);
    assert_eq!(
        err(&BASE.replace(
            "type = \"generator\"",
            "type = \"generator\"\nunits = [\"a\", \"${DT_MISSING}\"]"
        )),
        "job.toml: source.units[1]: environment variable DT_MISSING is not set"
    );
}

#[test]
fn secrets_never_appear_in_messages_or_debug() {
    // A password (from the environment) in a key where the type is wrong: the message
    // names the key, not the value.
    let e = err(&with("[settings]\nerror_policy = \"${DT_PASSWORD}\"\n"));
    assert!(!e.contains("hunter2"), "{e}");
    let e = err(&BASE.replace(
        "type = \"generator\"",
        "type = \"generator\"\npassword = \"hunter2-secret\"\nrows = \"hunter2-secret\"",
    ));
    assert!(!e.contains("hunter2"), "{e}");
    let job = parse(BASE).unwrap();
    assert!(!format!("{job:?}").contains("hunter2"));
}

#[test]
fn connector_sections_are_split_and_checked() {
    let mysql = "name = \"j\"\n[source]\ntype = \"mysql\"\nurl = \"mysql://u@h:3306/db\"\n";
    assert_eq!(
        err(&format!("{mysql}[target]\ntype = \"discard\"\n")),
        "job.toml: source: missing key \"tables\" (a list of table patterns such as \"shop.*\"; or [[source.documents]] for documents)"
    );
    assert_eq!(
        err(&format!(
            "{mysql}tables = [\"a\"]\nchunk_rowz = 5\n[target]\ntype = \"discard\"\n"
        )),
        "job.toml: source.chunk_rowz: unknown key, expected one of: type, url, password, \
         max_connections, connect_timeout_secs, ssl_mode, ssl_ca, ssl_cert, ssl_key, tables, \
         exclude, documents, chunk_rows, page_rows, checkpoint_rows, checkpoint_interval_ms, \
         reconnect, consistent_snapshot, snapshot_connections, zero_date, filter, key_columns, \
         key, mode, cdc"
    );
    assert_eq!(
        err(&format!(
            "{mysql}tables = [\"a\", 3]\n[target]\ntype = \"discard\"\n"
        )),
        "job.toml: source.tables[1]: expected a string, found integer `3`"
    );
    assert_eq!(
        err(&format!(
            "{mysql}tables = \"a\"\nzero_date = \"zero\"\n[target]\ntype = \"discard\"\n"
        )),
        "job.toml: source.zero_date: unknown value \"zero\", expected one of: null, error, keep"
    );
    assert_eq!(
        err("name = \"j\"\n[source]\ntype = \"generator\"\n[target]\ntype = \"elasticsearch\"\nurls = [\"ftp://x\"]\n"),
        "job.toml: target.urls: \"ftp://x\" must start with http:// or https://"
    );
    assert_eq!(
        err("name = \"j\"\n[source]\ntype = \"generator\"\n[target]\ntype = \"elasticsearch\"\n"),
        "job.toml: target: missing key \"url\" (or \"urls\", or \"cloud_id\"): the cluster's node URL(s)"
    );
    assert_eq!(
        err("name = \"j\"\n[source]\ntype = \"elasticsearch\"\nurl = \"http://x:9200\"\nindices = [\"a\"]\nindex = \"b\"\n[target]\ntype = \"discard\"\n")
            .split(", expected one of: ")
            .next()
            .unwrap(),
        "job.toml: source.index: unknown key"
    );
    // Secrets from the file never show in Debug output.
    let job = parse(
        "name = \"j\"\n[source]\ntype = \"mysql\"\nurl = \"mysql://u:pw-in-url@h/db\"\npassword = \"${DT_PASSWORD}\"\ntables = [\"a\"]\n\
         [target]\ntype = \"elasticsearch\"\nurl = \"http://x:9200\"\nusername = \"u\"\npassword = \"es-secret-1\"\n",
    )
    .unwrap();
    let debug = format!("{job:?}");
    for secret in ["pw-in-url", "hunter2", "es-secret-1"] {
        assert!(!debug.contains(secret), "{debug}");
    }
    assert_eq!(job.scrub("x es-secret-1 hunter2-secret y"), "x *** *** y");
}

#[test]
fn table_changes_are_a_target_setting() {
    use datatrace_core::TableChanges;
    use datatrace_server::connectors::{EsTargetSpec, MySqlTargetSpec};
    let src = "name = \"j\"\n[source]\ntype = \"mysql\"\nurl = \"mysql://u@h:3306/db\"\ntables = [\"a\"]\nmode = \"cdc\"\n";
    let mysql = |extra: &str| {
        parse(&format!(
            "{src}[target]\ntype = \"mysql\"\nurl = \"mysql://u@h2:3306/copy\"\n{extra}"
        ))
    };
    let es = |extra: &str| {
        parse(&format!(
            "{src}[target]\ntype = \"elasticsearch\"\nurl = \"http://x:9200\"\n{extra}"
        ))
    };
    let policy = |job: JobFile| {
        if let Some(t) = job.target.get::<MySqlTargetSpec>() {
            t.table_changes
        } else if let Some(t) = job.target.get::<EsTargetSpec>() {
            t.options.table_changes
        } else {
            panic!("{:?}", job.target)
        }
    };
    assert_eq!(policy(mysql("").unwrap()), TableChanges::Apply);
    assert_eq!(
        policy(mysql("table_changes = \"fail\"\n").unwrap()),
        TableChanges::Fail
    );
    assert_eq!(policy(es("").unwrap()), TableChanges::Apply);
    assert_eq!(
        policy(es("table_changes = \"ignore\"\n").unwrap()),
        TableChanges::Ignore
    );
    assert_eq!(
        mysql("table_changes = \"drop\"\n").unwrap_err(),
        "job.toml: target.table_changes: unknown value \"drop\", expected one of: apply, fail, ignore"
    );
    assert_eq!(
        es("table_changes = true\n").unwrap_err(),
        "job.toml: target.table_changes: expected string or map, found boolean `true`"
    );
}

#[test]
fn kafka_endpoints_are_parsed_and_their_settings_checked() {
    let ok = JobFile::parse(
        "job.toml",
        "name = \"w\"\n[source]\ntype = \"kafka\"\nbrokers = \"127.0.0.1:9092\"\ngroup = \"g\"\n\
         topics = [\"shop.inventory.orders\"]\nbad_messages = \"dead-letter\"\n\
         properties = { \"session.timeout.ms\" = \"6000\" }\n\
         [target]\ntype = \"kafka\"\nbrokers = \"127.0.0.1:9092\"\ntopic_prefix = \"shop\"\npartitions = 3\n",
        Path::new("."),
        &|_| None,
    )
    .unwrap();
    assert_eq!(ok.source.kind(), "kafka");
    assert_eq!(ok.target.kind(), "kafka");
    assert!(
        ok.source.describe().contains("group g"),
        "{}",
        ok.source.describe()
    );
    assert!(
        ok.target.describe().contains("shop.{db}.{table}"),
        "{}",
        ok.target.describe()
    );
    let err = |text: &str| {
        JobFile::parse("job.toml", text, Path::new("."), &|_| None)
            .unwrap_err()
            .to_string()
    };
    let e = err("name = \"w\"\n[source]\ntype = \"kafka\"\nbrokers = \"b:1\"\ngroup = \"\"\ntopics = [\"t\"]\n[target]\ntype = \"discard\"\n");
    assert!(
        e.contains("source.group") && e.contains("consumer group"),
        "{e}"
    );
    let e = err("name = \"w\"\n[source]\ntype = \"kafka\"\nbrokers = \"b:1\"\ngroup = \"g\"\ntopic = [\"t\"]\n[target]\ntype = \"discard\"\n");
    assert!(
        e.contains("source.topic") && e.contains("unknown key"),
        "{e}"
    );
    let e = err("name = \"w\"\n[source]\ntype = \"generator\"\n[target]\ntype = \"kafka\"\nbrokers = \"b:1\"\ntopic = \"all\"\n");
    assert!(e.contains("target.topic") && e.contains("{table}"), "{e}");
    let e = err("name = \"w\"\n[source]\ntype = \"kafka\"\nbrokers = \"b:1\"\ngroup = \"g\"\ntopics = [\"t\"]\nbad_messages = \"ignore\"\n[target]\ntype = \"discard\"\n");
    assert!(e.contains("source.bad_messages"), "{e}");
}

#[test]
fn es_source_extra_column_switches_off_in_toml() {
    let extra = |setting: &str| {
        let job = parse(&format!(
            "name = \"j\"\n[source]\ntype = \"elasticsearch\"\nurl = \"http://x:9200\"\nindices = [\"a\"]\n{setting}\n[target]\ntype = \"discard\"\n"
        ))
        .unwrap();
        let es = job
            .source
            .get::<datatrace_server::connectors::EsSourceSpec>()
            .expect("an Elasticsearch source");
        es.options.extra_column.clone()
    };
    assert_eq!(extra(""), Some("_extra".into()));
    assert_eq!(extra("extra_column = false"), None);
    assert_eq!(extra("extra_column = \"\""), None);
    assert_eq!(extra("extra_column = \"rest\""), Some("rest".into()));
}
