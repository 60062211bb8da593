//! Alerts: rules (what to watch on tasks, with a level), channels (webhook JSON, Slack,
//! DingTalk, WeCom) and delivery with retries; stored in the metadata store, evaluated by
//! [`evaluator`] while `datatrace serve` runs, each firing, resolution and test send kept in
//! the alert history with its deliveries' outcomes, managed through [`api`].
//!
//! `drift_found` rules read each task's drift figure (the rows differing at its latest
//! check, [`crate::serve::sql_store::SqlStore::drifts`]) at every round; the evaluator also
//! sets the manager's drift hook, so a finished check is evaluated at once.

pub mod api;
pub mod channels;
pub mod config;
pub mod deliver;
pub mod evaluator;
pub mod rules;
pub mod send;
