//! The key names a connector's config struct accepts, asked from its `Deserialize` impl, so
//! that a flat `[source]` table can be split between the connection, table selection and
//! read settings without repeating the connector's field lists here.

use serde::de::{self, DeserializeOwned, Deserializer, Visitor};

/// The field names `T` deserializes from (empty if `T` is not a plain struct).
pub fn struct_fields<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut fields = None;
    let _ = T::deserialize(Grab(&mut fields));
    fields.unwrap_or(&[])
}

struct Grab<'a>(&'a mut Option<&'static [&'static str]>);

impl<'de> Deserializer<'de> for Grab<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("only the field names are wanted"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(fields);
        Err(de::Error::custom("only the field names are wanted"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_fields() {
        assert_eq!(
            struct_fields::<datatrace_mysql::ConnectionConfig>(),
            [
                "url",
                "password",
                "max_connections",
                "connect_timeout_secs",
                "ssl_mode",
                "ssl_ca",
                "ssl_cert",
                "ssl_key"
            ]
        );
        assert!(struct_fields::<datatrace_es::SinkConfig>().contains(&"create_index"));
        assert!(struct_fields::<String>().is_empty());
    }
}
