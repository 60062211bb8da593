//! Test servers for DataTrace.

pub mod bulk;
