//! The table printed when a run ends: per unit, rows read / written / rejected, duration and
//! rate, then a total, the errors and what to do next.

use datatrace_core::{JobReport, RunStatus, UnitResult, UnitState};

use super::human;

/// What the summary says about the units' states before the run.
pub fn state_text(u: &UnitResult) -> String {
    match (&u.report, u.state) {
        (Some(r), _) if r.status == RunStatus::AlreadyDone => "done before".into(),
        (Some(r), UnitState::Done) if r.resumed => "done (resumed)".into(),
        (Some(_), UnitState::Done) => "done".into(),
        (Some(r), UnitState::Running) if r.status == RunStatus::Stopped => "stopped".into(),
        (_, UnitState::Failed) => "failed".into(),
        (None, UnitState::Done) => "done before".into(),
        (None, UnitState::Running) => "not resumed".into(),
        (_, s) => s.to_string(),
    }
}

/// The summary of `report` as text (ending with a newline). `job_file` is how the user
/// named the file, for the hints.
pub fn render(report: &JobReport, job_file: &str, dead_letter_path: &str) -> String {
    let header = [
        "unit", "state", "read", "written", "rejected", "duration", "rows/s",
    ];
    let mut rows: Vec<[String; 7]> = Vec::new();
    let (mut read, mut written, mut rejected, mut dead) = (0u64, 0u64, 0u64, 0u64);
    for u in &report.units {
        let state = state_text(u);
        let row = match &u.report {
            Some(r) if r.status != RunStatus::AlreadyDone => {
                read += r.read;
                written += r.written;
                rejected += r.rejected;
                dead += r.dead_lettered;
                [
                    u.unit.clone(),
                    state,
                    human::count(r.read),
                    human::count(r.written),
                    human::count(r.rejected),
                    human::duration(r.duration),
                    human::rate(r.rows_per_sec()),
                ]
            }
            _ => [
                u.unit.clone(),
                state,
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ],
        };
        rows.push(row);
    }
    let secs = report.duration.as_secs_f64().max(1e-9);
    rows.push([
        "total".into(),
        overall_state(report),
        human::count(read),
        human::count(written),
        human::count(rejected),
        human::duration(report.duration),
        human::rate(written as f64 / secs),
    ]);
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w.saturating_sub(cell.chars().count());
            if i < 2 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
            out.push_str(if i + 1 < cells.len() { "  " } else { "\n" });
        }
    };
    line(&header.map(String::from), &mut out);
    let n = rows.len();
    for (i, r) in rows.iter().enumerate() {
        if i + 1 == n {
            let total: usize = widths.iter().sum::<usize>() + 2 * (widths.len() - 1);
            out.push_str(&"-".repeat(total));
            out.push('\n');
        }
        line(r, &mut out);
    }
    for u in &report.units {
        if let Some(e) = &u.error {
            out.push_str(&format!("unit {} failed: {e}\n", u.unit));
        }
    }
    if dead > 0 {
        out.push_str(&format!(
            "{} record(s) went to the dead-letter queue {dead_letter_path}: \
             see `datatrace dlq list {job_file}`\n",
            human::count(dead)
        ));
    }
    if !report.is_complete() && !report.has_failures() {
        out.push_str(&format!(
            "stopped before the end: run `datatrace run {job_file}` again to resume\n"
        ));
    } else if report.has_failures() {
        out.push_str(&format!(
            "fix the cause and run `datatrace run {job_file}` again: finished units are skipped, \
             the others resume from their checkpoints\n"
        ));
    }
    out
}

fn overall_state(report: &JobReport) -> String {
    if report.has_failures() {
        "failed".into()
    } else if report.is_complete() {
        "done".into()
    } else {
        "stopped".into()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use datatrace_core::RunReport;

    use super::*;

    fn report(unit: &str, status: RunStatus, resumed: bool, written: u64) -> RunReport {
        RunReport {
            unit: unit.into(),
            status,
            resumed,
            read: written + 1,
            written,
            rejected: 1,
            dead_lettered: 1,
            filtered: 0,
            retried: 0,
            bytes: 0,
            duration: Duration::from_secs(2),
        }
    }

    #[test]
    fn renders_a_table_with_totals_and_hints() {
        let r = JobReport {
            job: "j".into(),
            units: vec![
                UnitResult {
                    unit: "shop.orders".into(),
                    state: UnitState::Done,
                    report: Some(report("shop.orders", RunStatus::Completed, true, 2000)),
                    error: None,
                    cause: None,
                },
                UnitResult {
                    unit: "shop.users".into(),
                    state: UnitState::Done,
                    report: Some(report("shop.users", RunStatus::AlreadyDone, false, 0)),
                    error: None,
                    cause: None,
                },
                UnitResult {
                    unit: "shop.items".into(),
                    state: UnitState::Failed,
                    report: None,
                    error: Some("unit shop.items: sink failed: boom".into()),
                    cause: None,
                },
            ],
            duration: Duration::from_secs(4),
        };
        let text = render(&r, "job.toml", "dl.ndjson");
        assert_eq!(
            text,
            "unit         state            read  written  rejected  duration  rows/s\n\
             shop.orders  done (resumed)  2,001    2,000         1      2.0s    1000\n\
             shop.users   done before         -        -         -         -       -\n\
             shop.items   failed              -        -         -         -       -\n\
             -----------------------------------------------------------------------\n\
             total        failed          2,001    2,000         1      4.0s     500\n\
             unit shop.items failed: unit shop.items: sink failed: boom\n\
             1 record(s) went to the dead-letter queue dl.ndjson: see `datatrace dlq list job.toml`\n\
             fix the cause and run `datatrace run job.toml` again: finished units are skipped, \
             the others resume from their checkpoints\n"
        );
    }
}
