//! How column types become Elasticsearch mappings.

use serde::{Deserialize, Serialize};

/// How a column type becomes an Elasticsearch mapping (see the README's type table).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MappingConfig {
    /// `auto` (scaled_float up to 15 digits of precision, keyword above: exact both ways),
    /// `scaled_float`, `keyword` (exact text) or `double`.
    pub decimal: DecimalMapping,
    /// `text_keyword` (text with a `keyword` subfield), `keyword` or `text`.
    pub string: StringMapping,
    /// `object` or `flattened` (`flat_object` on OpenSearch).
    pub json: JsonMapping,
    /// `auto` (`unsigned_long` where the cluster has it), `long` or `keyword`: see
    /// [`UnsignedMapping`].
    pub unsigned: UnsignedMapping,
    /// The index's `dynamic` setting (`true`, `false`, `strict`, `runtime`), if set.
    pub dynamic: Option<String>,
}

impl Default for MappingConfig {
    fn default() -> Self {
        MappingConfig {
            decimal: DecimalMapping::Auto,
            string: StringMapping::TextKeyword,
            json: JsonMapping::Object,
            unsigned: UnsignedMapping::Auto,
            dynamic: None,
        }
    }
}

/// Mapping of DECIMAL columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecimalMapping {
    /// `scaled_float` when the precision is 1..=15, else `keyword`.
    #[default]
    Auto,
    /// `scaled_float` with `scaling_factor` 10^scale, written as a JSON number with its exact
    /// digits.
    ScaledFloat,
    /// `keyword`, written as a string.
    Keyword,
    /// `double`, written as a JSON number with its exact digits.
    Double,
}

/// Mapping of unsigned integer columns (MySQL's `... UNSIGNED` and `BIT(n)`), and of
/// `unsigned_long` fields copied from another index, on clusters with or without the
/// `unsigned_long` field type (Elasticsearch 7.10+ with x-pack, OpenSearch 2.8+ have it;
/// Elasticsearch's OSS builds and older versions do not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnsignedMapping {
    /// `unsigned_long` where the cluster has it. Elsewhere `long` for columns whose type
    /// keeps them below 2^63 (`TINYINT` .. `INT UNSIGNED`, `BIT(1..63)`), and a 64-bit column
    /// (`BIGINT UNSIGNED`, `BIT(64)`, or one of unknown width) is refused before anything is
    /// written, naming the table, the column and the two settings below.
    #[default]
    Auto,
    /// `long`: for 64-bit columns whose values stay below 2^63. A larger value is rejected
    /// by the cluster, that record alone (it follows the error policy); none is changed.
    Long,
    /// `keyword`: every value up to 18446744073709551615 kept exactly, as its digits (the
    /// document holds the JSON number; term queries match exactly, but ranges and sorting
    /// compare text). Reading the index back gives the unsigned integers again.
    Keyword,
}

/// Mapping of string columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StringMapping {
    /// `text` with a `keyword` subfield (`ignore_above: 256`), like dynamic mapping.
    #[default]
    TextKeyword,
    /// `keyword`.
    Keyword,
    /// `text`.
    Text,
}

/// Mapping of JSON columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JsonMapping {
    /// `object` (dynamic sub-fields); the value must be a JSON object.
    #[default]
    Object,
    /// `flattened` (Elasticsearch) / `flat_object` (OpenSearch): one field for all keys.
    Flattened,
}
