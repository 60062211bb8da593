//! Fidelity: every key shape and value survives every direction exactly, or is refused
//! before any data moves. One module per way data used to be lost or corrupted (each test
//! failed before its fix), and the randomized differential test over all four directions.
//! `cargo test fidelity` runs them all.

mod check;
mod common;
mod differential;
mod ids;
mod json_text;
mod key_changes;
mod keyless;
mod numbers;
mod validate;
