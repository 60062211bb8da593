//! What the benchmarks measure of a process, read from `/proc`: CPU seconds (user + system)
//! and peak resident memory (`VmHWM`), for this process, another by id, or the children this
//! process has waited for; and the median the benchmarks report over interleaved rounds.
//!
//! Linux only (as are the test servers). A value that cannot be read (the process is gone,
//! `/proc` is not mounted) reads as 0, so a benchmark prints a visible zero rather than
//! failing after minutes of work.
//!
//! ```no_run
//! use datatrace_testkit::procstat;
//!
//! let cpu0 = procstat::cpu_secs("self");
//! // ... the work being measured ...
//! println!(
//!     "{:.2} CPU s, peak RSS {:.0} MB",
//!     procstat::cpu_secs("self") - cpu0,
//!     procstat::peak_rss_mb()
//! );
//! ```

use std::thread::JoinHandle;
use std::time::Duration;

/// Clock ticks per second of `/proc/PID/stat` (`_SC_CLK_TCK`, 100 on every Linux build).
const TICKS: f64 = 100.0;

/// The fields of `/proc/PID/stat` after the command name (which may hold spaces): field 3
/// (state) is index 0.
fn stat_fields(pid: &str) -> Vec<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn ticks_sum(pid: &str, a: usize, b: usize) -> f64 {
    let f = stat_fields(pid);
    let tick = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (tick(a) + tick(b)) / TICKS
}

/// User + system CPU seconds of a process: `"self"` or a process id.
pub fn cpu_secs(pid: &str) -> f64 {
    ticks_sum(pid, 11, 12)
}

/// User + system CPU seconds of the children a process has waited for (`cutime + cstime`):
/// for a command run to completion by this process, the difference around it is that
/// command's CPU, its own children's included.
pub fn children_cpu_secs(pid: &str) -> f64 {
    ticks_sum(pid, 13, 14)
}

/// Peak resident set size (`VmHWM`) of a process, in kB; `None` once it is gone.
pub fn peak_rss_kb(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Peak resident set size of this process, in MB (1 MB = 1024 kB).
pub fn peak_rss_mb() -> f64 {
    peak_rss_kb("self").map_or(0.0, |kb| kb as f64 / 1024.0)
}

/// Watches a child process's peak resident memory until it exits: `VmHWM` only grows, so
/// polling it every few milliseconds and keeping the last value read gives the peak of the
/// whole run (up to the last poll's few milliseconds).
pub struct PeakWatch {
    thread: JoinHandle<u64>,
}

impl PeakWatch {
    /// Starts watching process `pid` (polled every 10 ms).
    pub fn start(pid: u32) -> PeakWatch {
        let pid = pid.to_string();
        let thread = std::thread::spawn(move || {
            let mut peak = 0;
            while let Some(kb) = peak_rss_kb(&pid) {
                peak = peak.max(kb);
                std::thread::sleep(Duration::from_millis(10));
            }
            peak
        });
        PeakWatch { thread }
    }

    /// Waits until the process is gone (reap it first: a zombie keeps its `/proc` entry but
    /// reports no memory) and returns its peak resident memory in MB.
    pub fn finish(self) -> f64 {
        self.finish_kb() as f64 / 1024.0
    }

    /// [`PeakWatch::finish`] in kB.
    pub fn finish_kb(self) -> u64 {
        self.thread.join().unwrap_or(0)
    }
}

/// The median of `values` (0 for none; the mean of the middle two for an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    match values.len() {
        0 => 0.0,
        n if n.is_multiple_of(2) => (values[n / 2 - 1] + values[n / 2]) / 2.0,
        n => values[n / 2],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_even_and_empty() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }

    #[test]
    fn this_process_has_cpu_and_memory() {
        // Work until a clock tick (10 ms of CPU) is counted, for at most 30 s of waiting.
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while cpu_secs("self") == 0.0 && t.elapsed() < Duration::from_secs(30) {
            for i in 0..1_000_000u64 {
                x = x.wrapping_mul(31).wrapping_add(i);
            }
        }
        std::hint::black_box(x);
        assert!(cpu_secs("self") > 0.0);
        assert!(peak_rss_mb() > 0.0);
        assert_eq!(peak_rss_kb("0"), None, "no process 0 in /proc");
    }

    #[test]
    fn a_child_is_watched_and_counted() {
        let before = children_cpu_secs("self");
        let mut child = std::process::Command::new("sh")
            .args([
                "-c",
                "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; sleep 0.2",
            ])
            .spawn()
            .expect("sh");
        let watch = PeakWatch::start(child.id());
        assert!(child.wait().expect("wait").success());
        assert!(watch.finish() > 0.0, "the shell's peak RSS was read");
        assert!(
            children_cpu_secs("self") > before,
            "the shell's CPU was counted"
        );
    }
}
