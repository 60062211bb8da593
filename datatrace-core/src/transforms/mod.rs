//! Built-in transforms.

mod schema_cache;

pub use schema_cache::SchemaCache;
