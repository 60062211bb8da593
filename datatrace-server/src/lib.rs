//! # datatrace-server
//!
//! The `datatrace` command line as a library, so that tests (and other programs) can call
//! each step: [`job_file`] reads and checks a job file, [`plan`] turns it into a core
//! [`Job`](datatrace_core::Job) with one unit per table or index, [`ui`] draws progress and
//! the summary, and [`cli`] ties them into the `run`, `validate`, `dlq` and `serve`
//! commands.
#![warn(missing_docs)]

pub mod cli;
pub mod commands;
pub mod job_file;
pub mod plan;
pub mod ui;
