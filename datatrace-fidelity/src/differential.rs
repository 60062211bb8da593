//! The randomized differential test: one seed's [`Case`] through every direction and mode
//! against the real servers, compared row by row after each.
//!
//! For each mode (`snapshot`, `cdc`, `snapshot+cdc`) the case gets a source table of its own:
//!
//! - `snapshot`: the first rows and the whole change stream are applied, then the table is
//!   copied (`mode = "full"`);
//! - `cdc`: the streams start on the empty table, then the rows and changes are applied;
//! - `snapshot+cdc`: the first rows are applied, the streams start, and the changes are
//!   applied while the snapshots read.
//!
//! Each mode runs MySQL -> MySQL and MySQL -> Elasticsearch (the real engine of the test
//! run). Elasticsearch sources have no change stream, so the two directions out of
//! Elasticsearch read each mode's index once the stream caught up: Elasticsearch -> MySQL
//! (`id_column = false`: the table comes back in its own shape, key columns decoded from the
//! document ids) and Elasticsearch -> Elasticsearch (`raw`). Every target is compared with
//! the source table ([`crate::expect`]); a difference is a failure naming the direction,
//! mode, table, row and column.

use std::time::Duration;

use datatrace_testkit::{engine, mariadb, unique_name};

use crate::case::{Case, KeyShape};
use crate::expect::{compare_documents, compare_tables, Leeway};
use crate::jobs::{job, run, workdir, Stream};
use crate::{docs, exact};

/// The modes of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A copy of the table after all changes.
    Snapshot,
    /// A change stream from an empty table.
    Cdc,
    /// A copy and a stream, changes applied while it copies.
    SnapshotCdc,
}

impl Mode {
    fn job_mode(self) -> &'static str {
        match self {
            Mode::Snapshot => "full",
            Mode::Cdc => "cdc",
            Mode::SnapshotCdc => "snapshot+cdc",
        }
    }
}

/// What one seed found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The case, described.
    pub case: String,
    /// Differences and errors, each naming direction and mode.
    pub failures: Vec<String>,
    /// Directions and modes run.
    pub runs: usize,
    /// Rows and documents compared.
    pub compared: usize,
}

/// The one-line reproducer of a seed.
pub fn reproducer(seed: u64) -> String {
    format!("FIDELITY_SEED={seed} cargo test -p datatrace-fidelity --test fidelity fidelity_differential -- --nocapture")
}

fn exec(db: &str, sql: &str) -> Result<String, String> {
    mariadb()
        .exec_at(mariadb().addr(), &format!("USE `{db}`; {sql}"))
        .map_err(|e| {
            let one_line: Vec<&str> = e
                .split_whitespace()
                .filter(|w| !w.starts_with("---"))
                .collect();
            one_line.join(" ")
        })
}

struct Names {
    src: String,
    my_dst: String,
    es_prefix: String,
}

fn server_id() -> u32 {
    10_000 + fastrand::u32(0..1_000_000)
}

fn job_text(name: &str, source: &str, target: &str) -> String {
    format!(
        "name = \"{name}\"\n{source}\n{target}\n[settings]\nlinger = 20\ncheckpoint_interval = 50\nsink_concurrency = 3\nbatch_size = 7\n"
    )
}

impl Case {
    fn mysql_source(&self, db: &str, mode: Mode, for_es: bool) -> String {
        let zero = if self.zero_dates && !for_es {
            "keep"
        } else {
            "null"
        };
        let mut s = format!(
            "[source]\ntype = \"mysql\"\nurl = \"{}\"\ntables = [\"t\"]\nmode = \"{}\"\nzero_date = \"{zero}\"\nchunk_rows = 5\npage_rows = 3\n",
            mariadb().url_for(db),
            mode.job_mode()
        );
        if mode != Mode::Snapshot {
            s.push_str(&format!(
                "cdc = {{ server_id = {}, heartbeat_secs = 1 }}\n",
                server_id()
            ));
        }
        if for_es && self.shape == KeyShape::KeyedBySetting {
            s.push_str("key = { t = [\"u\"] }\n");
        }
        s
    }
}

fn es_target(prefix: &str, extra: &str) -> String {
    format!(
        "[target]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindex = \"{{prefix}}-{{table}}\"\nprefix = \"{prefix}\"\nmapping = {{ json = \"flattened\" }}\n{extra}\n",
        engine().url()
    )
}

fn mysql_target(db: &str) -> String {
    format!(
        "[target]\ntype = \"mysql\"\nurl = \"{}\"\n",
        mariadb().url_for(db)
    )
}

/// Runs one seed through every direction and mode.
pub async fn run_seed(seed: u64) -> Outcome {
    let case = Case::generate(seed);
    let mut out = Outcome {
        case: case.describe(),
        ..Default::default()
    };
    for mode in [Mode::Snapshot, Mode::Cdc, Mode::SnapshotCdc] {
        if let Err(e) = run_mode(&case, mode, &mut out).await {
            out.failures.push(format!("{mode:?}: {e}"));
        }
    }
    out
}

async fn run_mode(case: &Case, mode: Mode, out: &mut Outcome) -> Result<(), String> {
    let names = Names {
        src: mariadb().create_database("fd_src"),
        my_dst: mariadb().create_database("fd_dst"),
        es_prefix: unique_name("fd"),
    };
    let dir = workdir(&format!("fd-{}-{mode:?}", case.seed));
    exec(&names.src, &format!("{};", case.create_sql()))?;
    let to_es = case.shape != KeyShape::Keyless;
    for sub in ["my", "es", "back", "copy"] {
        std::fs::create_dir_all(dir.join(sub)).map_err(|e| e.to_string())?;
    }
    let my_job = job(
        &dir.join("my"),
        &job_text(
            "my",
            &case.mysql_source(&names.src, mode, false),
            &mysql_target(&names.my_dst),
        ),
    )?;
    let es_job = job(
        &dir.join("es"),
        &job_text(
            "es",
            &case.mysql_source(&names.src, mode, true),
            &es_target(&names.es_prefix, ""),
        ),
    )?;
    let apply = |sql: &[String]| -> Result<(), String> {
        for s in sql {
            exec(&names.src, s).map_err(|e| format!("applying the case's SQL: {e}"))?;
        }
        Ok(())
    };
    match mode {
        Mode::Snapshot => {
            apply(&case.initial)?;
            apply(&case.changes)?;
            let r = run(&my_job, false).await?;
            if !r.is_complete() {
                return Err(format!("MySQL -> MySQL: {r:?}"));
            }
            if to_es {
                let r = run(&es_job, false).await?;
                if !r.is_complete() {
                    return Err(format!("MySQL -> Elasticsearch: {r:?}"));
                }
            }
        }
        Mode::Cdc | Mode::SnapshotCdc => {
            if mode == Mode::SnapshotCdc {
                apply(&case.initial)?;
            }
            let mut my = Stream::start(&my_job).await?;
            let mut es = if to_es {
                Some(Stream::start(&es_job).await?)
            } else {
                None
            };
            if mode == Mode::Cdc {
                let wait = Duration::from_secs(30);
                my.started(wait).await?;
                if let Some(s) = es.as_mut() {
                    s.started(wait).await?;
                }
                apply(&case.initial)?;
            }
            apply(&case.changes)?;
            let wait = Duration::from_secs(90);
            let caught = my.caught_up(wait).await;
            let caught_es = match es.as_mut() {
                Some(s) => s.caught_up(wait).await,
                None => Ok(()),
            };
            let r = my.stop().await?;
            if r.has_failures() {
                return Err(format!("MySQL -> MySQL stream: {r:?}"));
            }
            caught.map_err(|e| format!("MySQL -> MySQL stream: {e}"))?;
            if let Some(s) = es {
                let r = s.stop().await?;
                if r.has_failures() {
                    return Err(format!("MySQL -> Elasticsearch stream: {r:?}"));
                }
                caught_es.map_err(|e| format!("MySQL -> Elasticsearch stream: {e}"))?;
            }
        }
    }
    let src = exact::read(&names.src, "t").await;
    out.compared += src.rows.len();
    // MySQL -> MySQL: exact, JSON text byte for byte, zero dates kept.
    out.runs += 1;
    let dst = exact::read(&names.my_dst, "t").await;
    for d in compare_tables(&src, &dst, &[], Leeway::default()) {
        out.failures.push(format!("MySQL -> MySQL ({mode:?}): {d}"));
    }
    if !to_es {
        // An index needs a key: the job is refused before it starts, naming the setting.
        let e = match tokio::time::timeout(Duration::from_secs(30), run(&es_job, false)).await {
            Ok(r) => r.err().unwrap_or_default(),
            Err(_) => "the job ran (it was not refused)".to_string(),
        };
        if !(e.contains("source.key") && e.contains(".t")) {
            out.failures.push(format!(
                "MySQL -> Elasticsearch ({mode:?}) of a table without key: expected a refusal naming source.key, got {e:?}"
            ));
        }
        return Ok(());
    }
    let index = format!("{}-t", names.es_prefix);
    engine().refresh(&index);
    let es_leeway = Leeway {
        json_as_documents: true,
        zero_dates_null: true,
    };
    // MySQL -> Elasticsearch: documents of the documented form under the documented ids.
    out.runs += 1;
    let key = case.key_names();
    let found = docs::read(&index);
    out.compared += found.len();
    for d in compare_documents(&src, &key, &found, es_leeway) {
        out.failures
            .push(format!("MySQL -> Elasticsearch ({mode:?}): {d}"));
    }
    // Elasticsearch -> MySQL: the table back in its own shape.
    out.runs += 1;
    let back = mariadb().create_database("fd_back");
    let back_job = job(
        &dir.join("back"),
        &job_text(
            "back",
            &format!(
                "[source]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindices = [\"{index}\"]\nid_column = false\nextra_column = false\npage_size = 7\n",
                engine().url()
            ),
            &format!("{}table = \"t\"\n", mysql_target(&back)),
        ),
    )?;
    let r = run(&back_job, false).await?;
    if !r.is_complete() {
        out.failures
            .push(format!("Elasticsearch -> MySQL ({mode:?}): {r:?}"));
    } else {
        let dst = exact::read(&back, "t").await;
        for d in compare_tables(&src, &dst, &[], es_leeway) {
            out.failures
                .push(format!("Elasticsearch -> MySQL ({mode:?}): {d}"));
        }
    }
    // Elasticsearch -> Elasticsearch (raw): the same documents under the same ids.
    out.runs += 1;
    let copy_prefix = unique_name("fdcopy");
    let copy_job = job(
        &dir.join("copy"),
        &job_text(
            "copy",
            &format!(
                "[source]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindices = [\"{index}\"]\nraw = true\npage_size = 7\n",
                engine().url()
            ),
            &format!(
                "[target]\ntype = \"elasticsearch\"\nurl = \"{}\"\nindex = \"{copy_prefix}-{{table}}\"\n",
                engine().url()
            ),
        ),
    )?;
    let r = run(&copy_job, false).await?;
    if !r.is_complete() {
        out.failures
            .push(format!("Elasticsearch -> Elasticsearch ({mode:?}): {r:?}"));
    } else {
        let copied = docs::read(&format!("{copy_prefix}-{index}"));
        if copied != found {
            let missing: Vec<&String> = found
                .keys()
                .filter(|k| copied.get(*k) != found.get(*k))
                .collect();
            out.failures.push(format!(
                "Elasticsearch -> Elasticsearch ({mode:?}): {} of {} documents differ (first: {:?})",
                missing.len().max(copied.len().abs_diff(found.len())),
                found.len(),
                missing.first()
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
