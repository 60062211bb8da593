#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod check;
pub mod cli;
pub mod commands;
pub mod connectors;
pub mod job_file;
pub mod plan;
pub mod secrets;
pub mod serve;
pub mod ui;
