//! The `[settings]` section: the core's [`PipelineConfig`] keys (durations in milliseconds)
//! plus `concurrency`, the number of units run at the same time.

use std::time::Duration;

use datatrace_core::{ErrorPolicy, PipelineConfig, RateLimit, RetryPolicy};
use serde::Deserialize;

/// `[settings]` of a job file. Every key is optional; the defaults are the core's.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Units (tables, indices) run at the same time. Default 1.
    pub concurrency: usize,
    /// Records per sink batch.
    pub batch_size: usize,
    /// Also close a batch once its records' estimated memory reaches this many bytes.
    pub max_batch_bytes: Option<usize>,
    /// Milliseconds a partly filled batch waits for more records.
    pub linger: u64,
    /// Chunks / batches each channel holds.
    pub channel_capacity: usize,
    /// Parts a source may split a unit into.
    pub max_parts: usize,
    /// Parts of a unit read at the same time (readers per unit); 0: from the cores.
    pub read_parallelism: usize,
    /// Sink workers per unit (writers per unit); 0: from the cores for snapshots and
    /// partitioned streams, 1 for a change stream.
    pub sink_concurrency: usize,
    /// Send all changes of one key to the same worker, in order.
    pub partition_by_key: bool,
    /// Rate limits over all workers of a unit.
    pub rate_limit: RateLimitSettings,
    /// Retries of transient failures.
    pub retry: RetrySettings,
    /// `fail`, `skip` or `dead-letter`.
    pub error_policy: ErrorPolicy,
    /// Least milliseconds between two checkpoint saves.
    pub checkpoint_interval: u64,
    /// Milliseconds between two progress events.
    pub progress_interval: u64,
}

/// `[settings.rate_limit]`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitSettings {
    /// Records per second.
    pub records_per_sec: Option<f64>,
    /// Bytes per second (estimated record size).
    pub bytes_per_sec: Option<f64>,
}

/// `[settings.retry]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySettings {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Milliseconds before the first retry.
    pub initial_backoff: u64,
    /// Milliseconds, upper bound of a retry delay.
    pub max_backoff: u64,
    /// Milliseconds a batch (or a table change) may keep retrying after its first failure;
    /// 0 for no time limit (attempts alone then bound it).
    pub max_elapsed: u64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        let r = RetryPolicy::default();
        RetrySettings {
            max_attempts: r.max_attempts,
            initial_backoff: r.initial_backoff.as_millis() as u64,
            max_backoff: r.max_backoff.as_millis() as u64,
            max_elapsed: r.max_elapsed.map_or(0, |d| d.as_millis() as u64),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        let c = PipelineConfig::default();
        Settings {
            concurrency: 1,
            batch_size: c.batch_size,
            max_batch_bytes: c.max_batch_bytes,
            linger: c.linger.as_millis() as u64,
            channel_capacity: c.channel_capacity,
            max_parts: c.max_parts,
            read_parallelism: c.read_parallelism,
            sink_concurrency: c.sink_concurrency,
            partition_by_key: c.partition_by_key,
            rate_limit: RateLimitSettings::default(),
            retry: RetrySettings::default(),
            error_policy: c.error_policy,
            checkpoint_interval: c.checkpoint_interval.as_millis() as u64,
            progress_interval: c.progress_interval.as_millis() as u64,
        }
    }
}

impl Settings {
    /// The core's pipeline settings.
    pub fn pipeline_config(&self) -> PipelineConfig {
        PipelineConfig {
            batch_size: self.batch_size,
            max_batch_bytes: self.max_batch_bytes,
            linger: Duration::from_millis(self.linger),
            channel_capacity: self.channel_capacity,
            max_parts: self.max_parts,
            read_parallelism: self.read_parallelism,
            sink_concurrency: self.sink_concurrency,
            partition_by_key: self.partition_by_key,
            rate_limit: RateLimit {
                records_per_sec: self.rate_limit.records_per_sec,
                bytes_per_sec: self.rate_limit.bytes_per_sec,
            },
            retry: RetryPolicy {
                max_attempts: self.retry.max_attempts,
                initial_backoff: Duration::from_millis(self.retry.initial_backoff),
                max_backoff: Duration::from_millis(self.retry.max_backoff),
                max_elapsed: (self.retry.max_elapsed > 0)
                    .then(|| Duration::from_millis(self.retry.max_elapsed)),
            },
            error_policy: self.error_policy,
            checkpoint_interval: Duration::from_millis(self.checkpoint_interval),
            progress_interval: Duration::from_millis(self.progress_interval),
        }
    }

    /// Checks the numbers; returns the key (below `settings`) and what is wrong.
    pub fn check(&self) -> Result<(), (String, String)> {
        if self.concurrency == 0 {
            return Err(("concurrency".into(), "must be at least 1".into()));
        }
        // Every number has a sane upper bound, so no setting can ask for absurd amounts of
        // tasks, memory or time.
        const HOUR_MS: u64 = 3_600_000;
        let bounded: [(&str, u64, u64); 8] = [
            ("concurrency", self.concurrency as u64, 1024),
            ("linger", self.linger, HOUR_MS),
            (
                "checkpoint_interval",
                self.checkpoint_interval,
                24 * HOUR_MS,
            ),
            ("progress_interval", self.progress_interval, HOUR_MS),
            (
                "max_batch_bytes",
                self.max_batch_bytes.unwrap_or(0) as u64,
                1 << 30,
            ),
            (
                "retry.initial_backoff",
                self.retry.initial_backoff,
                24 * HOUR_MS,
            ),
            ("retry.max_backoff", self.retry.max_backoff, 24 * HOUR_MS),
            (
                "retry.max_elapsed",
                self.retry.max_elapsed,
                30 * 24 * HOUR_MS,
            ),
        ];
        for (key, v, max) in bounded {
            if v > max {
                return Err((key.into(), format!("must be at most {max}")));
            }
        }
        self.pipeline_config().validate().map_err(|e| {
            let text = e.to_string();
            let text = text
                .strip_prefix("invalid configuration: ")
                .unwrap_or(&text)
                .to_owned();
            match text.split_once(' ') {
                Some((key, rest)) => (key.to_owned(), rest.to_owned()),
                None => (String::new(), text),
            }
        })
    }
}
