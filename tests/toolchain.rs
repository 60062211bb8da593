//! The declared `rust-version`s stay true: every workspace crate declares at least the newest
//! `rust-version` of what it builds with from `Cargo.lock` (its dependencies of every kind,
//! and theirs), so a dependency update that needs a newer Rust fails here, not on a user's
//! machine. The crates' own code is held to the declared version by clippy's
//! `incompatible_msrv` lint (part of `cargo clippy -- -D warnings`).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

fn version(text: &str) -> (u64, u64, u64) {
    let mut parts = text.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    )
}

/// The dependency kinds an edge carries (`normal`, `build`, `dev`).
fn kinds(dep: &Value) -> Vec<String> {
    dep["dep_kinds"]
        .as_array()
        .map(|ks| {
            ks.iter()
                .map(|k| k["kind"].as_str().unwrap_or("normal").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn declared_rust_versions_cover_the_locked_dependencies() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Not `--offline`: metadata needs every locked package's manifest, also those of
    // platforms and features no build here fetched (a fresh machine has not downloaded them).
    let out = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        out.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let packages: BTreeMap<&str, &Value> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: BTreeMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let members: Vec<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    assert!(members.len() >= 7, "{members:?}");
    let mut wrong = Vec::new();
    for member in &members {
        let package = packages[member];
        let name = package["name"].as_str().unwrap();
        let declared = package["rust_version"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} declares no rust-version"));
        // Its own dependencies of every kind (tests need the dev ones), then theirs that are
        // built for it (normal and build).
        let mut todo: Vec<&str> = nodes[member]["deps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["pkg"].as_str().unwrap())
            .collect();
        let mut seen = BTreeSet::new();
        while let Some(id) = todo.pop() {
            if !seen.insert(id) {
                continue;
            }
            for d in nodes[id]["deps"].as_array().unwrap() {
                if kinds(d).iter().any(|k| k != "dev") {
                    todo.push(d["pkg"].as_str().unwrap());
                }
            }
        }
        for id in seen {
            let dep = packages[id];
            if let Some(needed) = dep["rust_version"].as_str() {
                if version(needed) > version(declared) {
                    wrong.push(format!(
                        "{name} declares rust-version {declared}, but {} {} needs {needed}",
                        dep["name"].as_str().unwrap(),
                        dep["version"].as_str().unwrap()
                    ));
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "raise rust-version in Cargo.toml ([workspace.package]) or pin older dependencies:\n{}",
        wrong.join("\n")
    );
}
