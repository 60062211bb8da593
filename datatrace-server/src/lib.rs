#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

pub mod check;
pub mod cli;
pub mod commands;
pub mod job_file;
pub mod plan;
pub mod serve;
pub mod ui;
