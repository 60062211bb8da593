//! DataTrace's proof of exactness.
//!
//! - [`jobs`]: job files run in-process exactly as `datatrace run` runs them (planning and
//!   its checks included), change streams in the background until they have caught up.
//! - [`exact`]: tables read independently of the connectors under test, each cell in a
//!   canonical form in which two values compare equal only when they are the same value.
//! - [`docs`]: documents read as the engine stores them (`_id` and `_source`).
//! - [`gen`] and [`case`]: seeded generators of column types and edge values, key shapes
//!   and change streams; [`expect`]: what each target must hold, written independently of
//!   the connectors; [`differential`]: one seed through every direction and mode.
#![warn(missing_docs)]

pub mod case;
pub mod differential;
pub mod docs;
pub mod exact;
pub mod expect;
pub mod gen;
pub mod jobs;
