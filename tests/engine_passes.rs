//! `scripts/test.sh` runs the Elasticsearch-side tests twice: with the whole suite on
//! OpenSearch, then once more on Elasticsearch 7.17, naming the test binaries of that second
//! pass. This keeps the list whole: every test binary of the workspace that talks to the search
//! engine (the testkit's `engine`, directly or through its `common` module) is in the second pass, or
//! is below with the reason it is left to the first one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Test binaries that use the engine but are not run on Elasticsearch, and why.
const FIRST_PASS_ONLY: [(&str, &str); 5] = [
    (
        "kafka_debezium",
        "Debezium's events through Kafka; its engine side is the sink the other binaries run \
         on both families, and a second Debezium Connect start costs minutes",
    ),
    (
        "serve_api",
        "the REST API's own behaviour; the engine is only a data source there",
    ),
    ("serve_browser", "the web UI in a browser"),
    (
        "engine_lifecycle",
        "the testkit's node lifecycle, the same code for both flavors",
    ),
    (
        "smoke",
        "the testkit's own servers, the same code for both flavors",
    ),
];

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn uses_engine(text: &str) -> bool {
    // Spelled in two pieces so that this file does not count itself.
    text.contains(concat!("engine", "()"))
}

/// The test binaries of one `tests` directory that use the engine.
fn engine_binaries(tests: &Path, out: &mut BTreeSet<String>) {
    let common = tests.join("common");
    let common_uses = ["mod.rs", ""]
        .iter()
        .map(|f| {
            if f.is_empty() {
                tests.join("common.rs")
            } else {
                common.join(f)
            }
        })
        .any(|p| p.exists() && uses_engine(&read(&p)));
    let Ok(entries) = std::fs::read_dir(tests) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        let (name, files): (String, Vec<PathBuf>) = if path.is_dir() {
            if !path.join("main.rs").exists() {
                continue;
            }
            let files = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "rs"))
                .collect();
            (path.file_name().unwrap().to_string_lossy().into(), files)
        } else if path.extension().is_some_and(|x| x == "rs") {
            (
                path.file_stem().unwrap().to_string_lossy().into(),
                vec![path.clone()],
            )
        } else {
            continue;
        };
        let texts: Vec<String> = files.iter().map(|f| read(f)).collect();
        let direct = texts.iter().any(|t| uses_engine(t));
        let through_common = common_uses && texts.iter().any(|t| t.contains("mod common;"));
        if direct || through_common {
            out.insert(name);
        }
    }
}

/// The binaries `scripts/test.sh` runs with `DATATRACE_SEARCH_ENGINE=elasticsearch`.
fn second_pass(script: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let list = script
        .split_once("ES_SIDE=(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(list, _)| list)
        .expect("scripts/test.sh has an ES_SIDE=( ... ) list");
    for line in list.lines() {
        let line = line.split('#').next().unwrap_or("");
        names.extend(line.split_whitespace().map(String::from));
    }
    for line in script
        .lines()
        .filter(|l| l.contains("DATATRACE_SEARCH_ENGINE=elasticsearch"))
        .chain(script.lines().filter(|l| l.trim_start().starts_with("--")))
    {
        for word in line.split_whitespace() {
            if let Some(name) = word.strip_prefix("--test=") {
                names.insert(name.to_string());
            }
        }
    }
    names
}

#[test]
fn every_engine_test_binary_runs_on_both_engine_families() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut binaries = BTreeSet::new();
    engine_binaries(&root.join("tests"), &mut binaries);
    for entry in std::fs::read_dir(root).unwrap() {
        let path = entry.unwrap().path();
        if path.join("Cargo.toml").exists() && path != root {
            engine_binaries(&path.join("tests"), &mut binaries);
        }
    }
    // The scan finds what it should (a scan that finds nothing proves nothing).
    for known in ["roundtrip", "check_es", "examples", "serve_api"] {
        assert!(binaries.contains(known), "{known} not found: {binaries:?}");
    }
    let script = read(&root.join("scripts/test.sh"));
    let second = second_pass(&script);
    let skipped: BTreeSet<String> = FIRST_PASS_ONLY.iter().map(|(n, _)| n.to_string()).collect();
    let missing: Vec<&String> = binaries
        .iter()
        .filter(|b| !second.contains(*b) && !skipped.contains(*b))
        .collect();
    assert!(
        missing.is_empty(),
        "test binaries using the search engine but not in scripts/test.sh's Elasticsearch pass \
         (add them to ES_SIDE, or to FIRST_PASS_ONLY here with the reason): {missing:?}"
    );
    let stale: Vec<&String> = second.iter().filter(|n| !binaries.contains(*n)).collect();
    assert!(
        stale.is_empty(),
        "scripts/test.sh's Elasticsearch pass names binaries that do not use the engine: {stale:?}"
    );
}
