//! What a cluster is: its flavour (Elasticsearch or OpenSearch), version and the features
//! that follow from them (point-in-time API, `unsigned_long`, flattened objects).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::errors::EsError;

/// Which server implementation answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// Elasticsearch.
    Elasticsearch,
    /// OpenSearch (`version.distribution == "opensearch"`).
    OpenSearch,
}

/// What `GET /` says about the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterInfo {
    /// Elasticsearch or OpenSearch.
    pub flavor: Flavor,
    /// The version text (`8.13.4`, `2.11.0`).
    pub version: String,
    /// Major, minor and patch numbers parsed from `version`.
    pub semver: (u32, u32, u32),
    /// The cluster name.
    pub cluster_name: String,
    /// Elasticsearch 7's `version.build_flavor`: `default` (with the x-pack modules, among
    /// them the `unsigned_long` and `flattened` field types), `oss` (without), or `unknown`
    /// (a node assembled outside the distribution, such as the testkit's). Empty elsewhere.
    #[serde(default)]
    pub build_flavor: String,
}

/// Which point-in-time API the cluster has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PitApi {
    /// Elasticsearch 7.15+: `POST /idx/_pit`, `DELETE /_pit`.
    Elasticsearch,
    /// OpenSearch 2.4+: `POST /idx/_search/point_in_time`, `DELETE /_search/point_in_time`.
    OpenSearch,
}

impl ClusterInfo {
    /// Parses the body of `GET /`.
    pub fn parse(body: &[u8]) -> Result<ClusterInfo, EsError> {
        let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| EsError::Protocol {
            context: "GET /".into(),
            reason: format!("not JSON: {e}"),
        })?;
        let version = v
            .pointer("/version/number")
            .and_then(|n| n.as_str())
            .ok_or_else(|| EsError::Protocol {
                context: "GET /".into(),
                reason: "no version.number: is this Elasticsearch or OpenSearch?".into(),
            })?
            .to_string();
        let flavor = match v.pointer("/version/distribution").and_then(|d| d.as_str()) {
            Some("opensearch") => Flavor::OpenSearch,
            _ => Flavor::Elasticsearch,
        };
        let mut nums = version
            .split(|c: char| !c.is_ascii_digit())
            .map(|p| p.parse::<u32>().unwrap_or(0));
        let semver = (
            nums.next().unwrap_or(0),
            nums.next().unwrap_or(0),
            nums.next().unwrap_or(0),
        );
        let cluster_name = v
            .get("cluster_name")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string();
        let build_flavor = v
            .pointer("/version/build_flavor")
            .and_then(|n| n.as_str())
            .unwrap_or("")
            .to_string();
        Ok(ClusterInfo {
            flavor,
            version,
            semver,
            cluster_name,
            build_flavor,
        })
    }

    /// The point-in-time API, if this version has one usable for sliced `search_after`
    /// reads: Elasticsearch 7.15+ (`_pit` exists since 7.10, the `_shard_doc` tiebreaker since
    /// 7.12 and slicing under a point-in-time since 7.15; older versions read with scroll)
    /// and OpenSearch 2.4+.
    pub fn pit_api(&self) -> Option<PitApi> {
        let (ma, mi, _) = self.semver;
        match self.flavor {
            Flavor::Elasticsearch if (ma, mi) >= (7, 15) => Some(PitApi::Elasticsearch),
            Flavor::OpenSearch if (ma, mi) >= (2, 4) => Some(PitApi::OpenSearch),
            _ => None,
        }
    }

    /// Whether Elasticsearch's x-pack field types are there: always in 8.x, and in 7.x
    /// unless the node says it is an `oss` (or `unknown`) build.
    fn has_xpack_mappers(&self) -> bool {
        self.semver.0 >= 8 || !matches!(self.build_flavor.as_str(), "oss" | "unknown")
    }

    /// Whether `unsigned_long` exists (Elasticsearch 7.10+ with x-pack, OpenSearch 2.8+).
    pub fn has_unsigned_long(&self) -> bool {
        let v = (self.semver.0, self.semver.1);
        match self.flavor {
            Flavor::Elasticsearch => v >= (7, 10) && self.has_xpack_mappers(),
            Flavor::OpenSearch => v >= (2, 8),
        }
    }

    /// The name of the flattened field type: `flattened` (Elasticsearch with x-pack),
    /// OpenSearch's `flat_object`, or `None` where neither exists.
    pub fn flattened_type(&self) -> Option<&'static str> {
        match self.flavor {
            Flavor::Elasticsearch if self.has_xpack_mappers() => Some("flattened"),
            Flavor::Elasticsearch => None,
            Flavor::OpenSearch => Some("flat_object"),
        }
    }
}

impl fmt::Display for ClusterInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.flavor {
            Flavor::Elasticsearch => "Elasticsearch",
            Flavor::OpenSearch => "OpenSearch",
        };
        write!(f, "{name} {}", self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_flavour_and_pit_api() {
        let os =
            br#"{"version":{"distribution":"opensearch","number":"2.11.1"},"cluster_name":"c"}"#;
        let i = ClusterInfo::parse(os).unwrap();
        assert_eq!(i.flavor, Flavor::OpenSearch);
        assert_eq!(i.semver, (2, 11, 1));
        assert_eq!(i.pit_api(), Some(PitApi::OpenSearch));
        assert_eq!(i.flattened_type(), Some("flat_object"));
        let old_os = br#"{"version":{"distribution":"opensearch","number":"1.3.0"}}"#;
        assert_eq!(ClusterInfo::parse(old_os).unwrap().pit_api(), None);
        // Elasticsearch 7 without x-pack (an oss build, or a node assembled from Maven jars
        // like the testkit's): no unsigned_long, no flattened.
        for flavor in ["oss", "unknown"] {
            let body = format!(r#"{{"version":{{"number":"7.17.29","build_flavor":"{flavor}"}}}}"#);
            let i = ClusterInfo::parse(body.as_bytes()).unwrap();
            assert!(!i.has_unsigned_long(), "{flavor}");
            assert_eq!(i.flattened_type(), None, "{flavor}");
            assert_eq!(i.pit_api(), Some(PitApi::Elasticsearch));
        }
        let es7 = br#"{"version":{"number":"7.17.29","build_flavor":"default"}}"#;
        let i = ClusterInfo::parse(es7).unwrap();
        assert!(i.has_unsigned_long());
        assert_eq!(i.flattened_type(), Some("flattened"));
        let es8 = br#"{"version":{"number":"8.13.4","build_flavor":"default"}}"#;
        let i = ClusterInfo::parse(es8).unwrap();
        assert_eq!(i.flavor, Flavor::Elasticsearch);
        assert_eq!(i.pit_api(), Some(PitApi::Elasticsearch));
        assert_eq!(i.to_string(), "Elasticsearch 8.13.4");
        let es7 = br#"{"version":{"number":"7.11.2"}}"#;
        assert_eq!(ClusterInfo::parse(es7).unwrap().pit_api(), None);
        let es714 = br#"{"version":{"number":"7.14.2"}}"#;
        assert_eq!(ClusterInfo::parse(es714).unwrap().pit_api(), None);
        let es715 = br#"{"version":{"number":"7.15.0"}}"#;
        assert_eq!(
            ClusterInfo::parse(es715).unwrap().pit_api(),
            Some(PitApi::Elasticsearch)
        );
        assert!(ClusterInfo::parse(b"{}").is_err());
    }
}
