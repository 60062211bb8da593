//! Test servers for DataTrace.
