//! Configuration of connections, sinks and sources, as they appear in job files.
//!
//! Every struct has defaults for every field (`#[serde(default)]`) and refuses unknown fields
//! (`deny_unknown_fields`), so a typo in a job file is an error naming the field.
//!
//! ```
//! use datatrace_es::{ConnectionConfig, SinkConfig};
//!
//! let conn: ConnectionConfig = serde_json::from_str(r#"{
//!     "urls": ["https://es1:9200", "https://es2:9200"],
//!     "username": "elastic", "password": "secret",
//!     "tls": {"ca_cert": "/etc/es/ca.pem"}
//! }"#).unwrap();
//! assert!(!format!("{conn:?}").contains("secret"));
//! let sink: SinkConfig = serde_json::from_str(r#"{"index": "{prefix}-{table}", "prefix": "shop"}"#).unwrap();
//! assert_eq!(sink.max_docs, 1000);
//! assert!(serde_json::from_str::<SinkConfig>(r#"{"indx": "x"}"#).is_err());
//! ```

mod connection;
mod mapping;
mod sink;
mod source;

pub use crate::secret::Secret;
pub use connection::{ConnectionConfig, TlsConfig};
pub use mapping::{DecimalMapping, JsonMapping, MappingConfig, StringMapping, UnsignedMapping};
pub use sink::{IndexSettings, RefreshPolicy, SinkConfig, VersionSource, WriteAction};
pub use source::{ReadMethod, SourceConfig, MAX_SLICES};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_file_sections_parse_with_defaults_and_refuse_typos() {
        let sink: SinkConfig = serde_json::from_str(
            r#"{"index": "{prefix}-{table}-{now:yyyy.MM}", "prefix": "dt", "action": "upsert",
                "max_docs": 500, "refresh": "wait_for", "version": null,
                "mapping": {"decimal": "keyword", "json": "flattened", "dynamic": "strict"},
                "settings": {"shards": 3, "replicas": 0, "extra": {"refresh_interval": "30s"}},
                "bulk_load": true}"#,
        )
        .unwrap();
        assert_eq!(sink.action, WriteAction::Upsert);
        assert_eq!(sink.mapping.decimal, DecimalMapping::Keyword);
        assert_eq!(sink.max_bytes, 5 * 1024 * 1024);
        sink.validate().unwrap();
        let v: SinkConfig =
            serde_json::from_str(r#"{"version": {"field": "updated_at"}}"#).unwrap();
        assert_eq!(v.version, Some(VersionSource::Field("updated_at".into())));
        let v: SinkConfig = serde_json::from_str(r#"{"version": "position"}"#).unwrap();
        assert_eq!(v.version, Some(VersionSource::Position));
        let bad = SinkConfig {
            action: WriteAction::Update,
            ..v
        };
        assert!(bad.validate().unwrap_err().to_string().contains("version"));
        assert!(
            serde_json::from_str::<SinkConfig>(r#"{"mapping": {"decimals": "keyword"}}"#).is_err()
        );
        assert!(SinkConfig {
            index: "{tabel}".into(),
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(SinkConfig {
            max_docs: 0,
            ..Default::default()
        }
        .validate()
        .is_err());

        let src: SourceConfig = serde_json::from_str(
            r#"{"index": "logs-*", "query": {"term": {"level": "error"}}, "slices": 4,
                "method": "scroll", "keep_alive": "10m", "extra_column": null}"#,
        )
        .unwrap();
        src.validate().unwrap();
        assert_eq!(src.extra_column, None);
        assert_eq!(src.page_size, 1000);
        // TOML has no null: false or "" switch the column off, true is the default name.
        for (text, want) in [
            (r#"{"extra_column": false}"#, None),
            (r#"{"extra_column": ""}"#, None),
            (r#"{"extra_column": true}"#, Some("_extra")),
            (r#"{"extra_column": "rest"}"#, Some("rest")),
            ("{}", Some("_extra")),
        ] {
            let src: SourceConfig = serde_json::from_str(text).unwrap();
            assert_eq!(src.extra_column.as_deref(), want, "{text}");
        }
        assert!(serde_json::from_str::<SourceConfig>(r#"{"extra_column": 1}"#).is_err());
        assert!(SourceConfig::new("x").validate().is_ok());
        assert!(SourceConfig {
            keep_alive: "5 minutes".into(),
            ..SourceConfig::new("x")
        }
        .validate()
        .is_err());
        assert!(SourceConfig {
            query: Some(serde_json::json!([1])),
            ..SourceConfig::new("x")
        }
        .validate()
        .is_err());
        assert!(SourceConfig::default().validate().is_err());
        for (slices, ok) in [
            (0, true),
            (MAX_SLICES, true),
            (MAX_SLICES + 1, false),
            (usize::MAX, false),
        ] {
            let cfg = SourceConfig {
                slices,
                ..SourceConfig::new("x")
            };
            assert_eq!(cfg.validate().is_ok(), ok, "slices = {slices}");
        }
        assert!(serde_json::from_str::<SourceConfig>(r#"{"index": "x", "page": 5}"#).is_err());

        let conn: ConnectionConfig = serde_json::from_str(
            r#"{"urls": ["https://a:9200"], "api_key": "id:key", "tls": {"verify": false},
                "retry": {"max_attempts": 3, "initial_backoff": 100, "max_backoff": 1000}}"#,
        )
        .unwrap();
        conn.validate().unwrap();
        assert!(!conn.tls.verify);
        let text = serde_json::to_string(&conn).unwrap();
        let back: ConnectionConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, conn);
    }

    #[test]
    fn numbers_have_upper_bounds_named_in_the_error() {
        for (key, wrong) in [
            ("max_docs", u64::MAX),
            ("max_bytes", u64::MAX),
            ("max_document_bytes", 1u64 << 40),
            ("max_in_flight", 5000),
        ] {
            let cfg: SinkConfig =
                serde_json::from_value(serde_json::json!({ key: wrong })).unwrap();
            let e = cfg.validate().unwrap_err().to_string();
            assert!(
                e.contains(&format!("{key} = {wrong} is out of range")),
                "{e}"
            );
        }
        let cfg: SinkConfig =
            serde_json::from_value(serde_json::json!({"settings": {"shards": 100000}})).unwrap();
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("settings.shards"));
        let conn = ConnectionConfig {
            timeout_ms: u64::MAX,
            ..serde_json::from_str(r#"{"urls": ["http://a:9200"]}"#).unwrap()
        };
        let e = conn.validate().unwrap_err().to_string();
        assert!(
            e.contains("timeout_ms") && e.contains("1 to 86400000"),
            "{e}"
        );
    }
}
