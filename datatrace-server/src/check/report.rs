//! What a check found: [`CheckReport`] (serializable, `--format json`) and its text form.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

/// The result of [`crate::check::check_job`]: one entry per unit, and whether all are equal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckReport {
    /// The job's name.
    pub job: String,
    /// One entry per unit checked, in discovery order.
    pub units: Vec<UnitCheck>,
    /// Every unit equal (after repair, when repairing).
    pub equal: bool,
}

/// How a unit was compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// MySQL -> MySQL with the same column types and no transforms: per key-range checksums
    /// on both servers, rows compared only in ranges whose checksums differ.
    Checksum,
    /// Row by row (document by document): source rows through the job's transforms and
    /// type mapping against the target's rows or documents, looked up by key.
    Rows,
    /// Tables without a key: both sides read whole and compared as multisets of rows (the
    /// same rows, each as many times), by per-bucket counts and hash sums; the rows of
    /// buckets that differ are named.
    Multiset,
}

/// What differs in one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitCheck {
    /// The unit (source table or index).
    pub unit: String,
    /// The target table (`db.table`) or index.
    pub target: String,
    /// How it was compared.
    pub method: Method,
    /// Rows (documents) in the source (those the job's transforms keep are compared).
    pub source_rows: u64,
    /// Rows (documents) in the target.
    pub target_rows: u64,
    /// Key ranges checksummed (checksum method), and how many of them differed.
    pub chunks: u64,
    /// Key ranges whose checksums differed.
    pub chunks_differing: u64,
    /// Sub-ranges of the differing key ranges that still differed when checksummed in
    /// ever smaller parts (checksum method): only their rows were compared row by row.
    #[serde(default)]
    pub sub_ranges: u64,
    /// Rows read from either side to be compared row by row (checksum method: only those
    /// of the differing sub-ranges).
    #[serde(default)]
    pub rows_read: u64,
    /// Source rows absent from the target.
    pub missing: u64,
    /// Target rows absent from the source (or that the transforms drop).
    pub extra: u64,
    /// Rows present on both sides with different values.
    pub different: u64,
    /// Keys that differed at first but were equal when checked again after the recheck
    /// delay (changes still in flight on a live target).
    pub settled: u64,
    /// The first missing keys (up to `max_diffs_shown`, in key order).
    pub missing_keys: Vec<String>,
    /// The first extra keys (up to `max_diffs_shown`, in key order).
    pub extra_keys: Vec<String>,
    /// The first different rows, field by field (up to `max_diffs_shown`, in key order).
    pub diffs: Vec<RowDiff>,
    /// What `--repair` did, when repairing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repaired: Option<Repaired>,
    /// The check run after the repair.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_repair: Option<Box<UnitCheck>>,
    /// Seconds the check (of this pass) took.
    pub seconds: f64,
    /// No row missing, extra or different (after repair, when repairing).
    pub equal: bool,
}

impl UnitCheck {
    /// An empty result for a unit.
    pub fn new(unit: &str, target: &str, method: Method) -> Self {
        UnitCheck {
            unit: unit.to_owned(),
            target: target.to_owned(),
            method,
            source_rows: 0,
            target_rows: 0,
            chunks: 0,
            chunks_differing: 0,
            sub_ranges: 0,
            rows_read: 0,
            missing: 0,
            extra: 0,
            different: 0,
            settled: 0,
            missing_keys: Vec::new(),
            extra_keys: Vec::new(),
            diffs: Vec::new(),
            repaired: None,
            after_repair: None,
            seconds: 0.0,
            equal: true,
        }
    }

    /// Whether this pass found no difference.
    pub fn pass_equal(&self) -> bool {
        self.missing == 0 && self.extra == 0 && self.different == 0
    }
}

/// One row that differs, field by field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowDiff {
    /// The row's key (`42`, `7,eu` for composite keys) or document id.
    pub key: String,
    /// The fields that differ.
    pub fields: Vec<FieldDiff>,
}

/// One field that differs. Values are in the normalized JSON form both sides are compared
/// in; an absent value means the field is missing on that side.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDiff {
    /// The field, nested fields as paths: `a.b[2].c`.
    pub field: String,
    /// The source's value (after transforms and type mapping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Json>,
    /// The target's value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Json>,
    /// What kind of difference it is, when the values alone do not say (`JSON-equal, text
    /// differs`: the same JSON document written differently, where the text should be
    /// copied byte for byte).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// What a repair wrote.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Repaired {
    /// Rows rewritten from the source (missing and different ones).
    pub rewritten: u64,
    /// Extra rows deleted (only with `delete_extra`).
    pub deleted: u64,
    /// Extra rows not deleted: the source, read again by key just before, has their key
    /// (the transforms drop or change those rows), or their id maps to no source key.
    #[serde(default)]
    pub kept: u64,
    /// Rows the target refused, with its reason (the first `max_diffs_shown`).
    pub rejected: Vec<String>,
    /// How many rows the target refused.
    pub rejected_count: u64,
}

fn show(v: &Option<Json>) -> String {
    match v {
        None => "(absent)".into(),
        Some(j) => j.to_string(),
    }
}

fn list(out: &mut String, what: &str, keys: &[String], total: u64) {
    if keys.is_empty() {
        return;
    }
    let more = total.saturating_sub(keys.len() as u64);
    let _ = write!(out, "  {what}: {}", keys.join(", "));
    if more > 0 {
        let _ = write!(out, " (and {more} more)");
    }
    out.push('\n');
}

fn render_pass(out: &mut String, u: &UnitCheck) {
    let how = match u.method {
        Method::Checksum => format!(
            "checksum, {} chunk(s), {} differing, narrowed to {} sub-range(s), {} row(s) read",
            u.chunks, u.chunks_differing, u.sub_ranges, u.rows_read
        ),
        Method::Rows => "row by row".to_owned(),
        Method::Multiset => format!(
            "as multisets (no key), {} of {} bucket(s) differing",
            u.chunks_differing, u.chunks
        ),
    };
    let _ = writeln!(
        out,
        "  source rows {}, target rows {} ({how}, {:.1} s)",
        u.source_rows, u.target_rows, u.seconds
    );
    if u.pass_equal() {
        let _ = writeln!(out, "  equal");
    } else {
        let _ = writeln!(
            out,
            "  {} missing, {} extra, {} different",
            u.missing, u.extra, u.different
        );
    }
    if u.settled > 0 {
        let _ = writeln!(
            out,
            "  {} row(s) differed at first and were equal when checked again",
            u.settled
        );
    }
    list(out, "missing", &u.missing_keys, u.missing);
    list(out, "extra", &u.extra_keys, u.extra);
    for d in &u.diffs {
        let _ = writeln!(out, "  different {}:", d.key);
        for f in &d.fields {
            let note = f
                .note
                .as_deref()
                .map_or(String::new(), |n| format!(" ({n})"));
            let _ = writeln!(
                out,
                "    {}: source {} / target {}{note}",
                f.field,
                show(&f.source),
                show(&f.target)
            );
        }
    }
    let more = u.different.saturating_sub(u.diffs.len() as u64);
    if more > 0 {
        let _ = writeln!(out, "  (and {more} more different rows)");
    }
}

/// The report for people: per unit what differs, then a verdict line.
pub fn render(report: &CheckReport) -> String {
    let mut out = String::new();
    for u in &report.units {
        let _ = writeln!(out, "{} -> {}", u.unit, u.target);
        render_pass(&mut out, u);
        if let Some(r) = &u.repaired {
            let _ = writeln!(
                out,
                "  repair: {} row(s) rewritten, {} deleted, {} refused",
                r.rewritten, r.deleted, r.rejected_count
            );
            if r.kept > 0 {
                let _ = writeln!(
                    out,
                    "  {} extra row(s) not deleted: their key is in the source, or their id maps to no source key",
                    r.kept
                );
            }
            for m in &r.rejected {
                let _ = writeln!(out, "    refused: {m}");
            }
        }
        if let Some(a) = &u.after_repair {
            let _ = writeln!(out, "  after repair:");
            render_pass(&mut out, a);
        }
    }
    let differ = report.units.iter().filter(|u| !u.equal).count();
    if report.equal {
        let _ = writeln!(
            out,
            "[{}] equal: {} unit(s) checked",
            report.job,
            report.units.len()
        );
    } else {
        let _ = writeln!(
            out,
            "[{}] NOT equal: {differ} of {} unit(s) differ",
            report.job,
            report.units.len()
        );
    }
    out
}
