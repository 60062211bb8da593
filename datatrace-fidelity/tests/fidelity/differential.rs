//! The randomized differential test (`datatrace_fidelity::differential`): seeds through
//! MySQL -> MySQL, MySQL -> Elasticsearch, Elasticsearch -> MySQL and Elasticsearch ->
//! Elasticsearch, as snapshot, CDC and snapshot+cdc, against the real servers.
//!
//! - default: the CI set, one seed per key shape (under 3 minutes here);
//! - `FIDELITY_SEED=S`: that seed alone (the reproducer a failure prints);
//! - `FIDELITY_SEEDS=N` (`scripts/fuzz-fidelity.sh N`): N seeds from `FIDELITY_FIRST` (a
//!   random start by default).

use datatrace_fidelity::differential::{reproducer, run_seed};

/// The CI set: seeds 0..7 cycle through the seven key shapes.
const CI_SEEDS: &[u64] = &[0, 1, 2, 3, 4, 5, 6];

fn seeds() -> Vec<u64> {
    if let Some(s) = std::env::var("FIDELITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return vec![s];
    }
    if let Some(n) = std::env::var("FIDELITY_SEEDS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    {
        let first = std::env::var("FIDELITY_FIRST")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| fastrand::u64(1_000..u64::MAX / 2));
        return (first..first + n).collect();
    }
    CI_SEEDS.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fidelity_differential_over_all_directions_and_modes() {
    crate::common::log();
    let started = std::time::Instant::now();
    let mut failed = Vec::new();
    let (mut runs, mut compared) = (0, 0);
    let seeds = seeds();
    for &seed in &seeds {
        let t = std::time::Instant::now();
        let o = run_seed(seed).await;
        runs += o.runs;
        compared += o.compared;
        eprintln!(
            "fidelity seed {seed}: {} runs, {} rows/documents compared, {} failure(s), {:.1} s: {}",
            o.runs,
            o.compared,
            o.failures.len(),
            t.elapsed().as_secs_f64(),
            o.case
        );
        if !o.failures.is_empty() {
            for f in o.failures.iter().take(20) {
                eprintln!("  {f}");
            }
            eprintln!("  reproduce: {}", reproducer(seed));
            failed.push(seed);
        }
    }
    eprintln!(
        "fidelity: {} seed(s), {runs} direction/mode runs, {compared} rows/documents compared, {} failing, {:.1} s",
        seeds.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failed.is_empty(),
        "failing seeds (reproduce each with its line above): {}",
        failed
            .iter()
            .map(|s| reproducer(*s))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// The CI set is bounded, yet covers every key shape, every column type of the catalog and
/// zero dates (before, seeds drew 5-10 types at random and the CI set missed some).
#[test]
fn fidelity_ci_seeds_cover_every_type_and_key_shape() {
    use datatrace_fidelity::case::{Case, SHAPES};
    use datatrace_fidelity::gen::CATALOG;
    let cases: Vec<Case> = CI_SEEDS.iter().map(|&s| Case::generate(s)).collect();
    for shape in SHAPES {
        assert!(cases.iter().any(|c| c.shape == shape), "{shape:?} missing");
    }
    for t in CATALOG {
        assert!(
            cases
                .iter()
                .any(|c| c.columns[c.key_len..].iter().any(|col| col.sql == t.sql)),
            "{} missing from the CI seeds",
            t.sql
        );
    }
    assert!(cases.iter().any(|c| c.zero_dates));
}
