//! Debezium's JSON change events: the envelope (`before`, `after`, `source`, `op`, `ts_ms`),
//! keys from the primary key, tombstones, truncate and schema change events, with or without
//! Kafka Connect's `{"schema": ..., "payload": ...}` wrapper.
//!
//! [`Encoder`] writes records as DataTrace's Kafka sink sends them; [`Decoder`] reads events
//! written by DataTrace or by Debezium itself back into records. See [`field`] for how each
//! type is encoded.

mod decode;
mod encode;
pub mod field;
mod names;

pub use decode::{DecodeError, Decoder, Event, MessageRef};
pub use encode::{Encoder, EnvelopeOptions, Message};
pub use field::FieldError;
