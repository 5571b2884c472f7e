//! serde mapping of result rows: a row is a map from column name to value; each value
//! deserializes into what the target type asks for (INTEGER 0/1 into `bool`, INTEGER into
//! floats, BLOB into `Vec<u8>`, NULL into `None`, JSON text into nested structs).

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};

use crate::value::Value;

/// Error raised while mapping a row.
#[derive(Debug)]
pub(crate) struct DeError(pub String);

impl std::fmt::Display for DeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for DeError {}
impl de::Error for DeError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

pub(crate) struct RowDe<'de> {
    pub columns: &'de [String],
    pub values: &'de [Value],
}

impl<'de> de::Deserializer<'de> for RowDe<'de> {
    type Error = DeError;
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_map(RowMap { row: self, i: 0 })
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        v.visit_seq(de::value::SeqDeserializer::new(self.values.iter().map(ValueDe)))
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }
    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf option
        unit unit_struct newtype_struct tuple_struct map struct enum identifier ignored_any
    }
}

struct RowMap<'de> {
    row: RowDe<'de>,
    i: usize,
}

impl<'de> MapAccess<'de> for RowMap<'de> {
    type Error = DeError;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, DeError> {
        match self.row.columns.get(self.i) {
            None => Ok(None),
            Some(c) => seed.deserialize(c.as_str().into_deserializer()).map(Some),
        }
    }
    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, DeError> {
        let v = self.row.values.get(self.i).unwrap_or(&Value::Null);
        self.i += 1;
        seed.deserialize(ValueDe(v))
    }
}

pub(crate) struct ValueDe<'de>(pub &'de Value);

impl<'de> IntoDeserializer<'de, DeError> for ValueDe<'de> {
    type Deserializer = Self;
    fn into_deserializer(self) -> Self {
        self
    }
}

impl<'de> de::Deserializer<'de> for ValueDe<'de> {
    type Error = DeError;
    fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => v.visit_none(),
            Value::Integer(i) => v.visit_i64(*i),
            Value::Real(f) => v.visit_f64(*f),
            Value::Text(s) => v.visit_str(s),
            Value::Blob(b) => v.visit_bytes(b),
        }
    }
    fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Integer(i) => v.visit_bool(*i != 0),
            Value::Text(s) if s.eq_ignore_ascii_case("true") => v.visit_bool(true),
            Value::Text(s) if s.eq_ignore_ascii_case("false") => v.visit_bool(false),
            _ => self.deserialize_any(v),
        }
    }
    fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Integer(i) => v.visit_f64(*i as f64),
            _ => self.deserialize_any(v),
        }
    }
    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }
    fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Null => v.visit_none(),
            _ => v.visit_some(self),
        }
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Blob(b) => v.visit_bytes(b),
            Value::Text(s) => v.visit_bytes(s.as_bytes()),
            _ => self.deserialize_any(v),
        }
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_bytes(v)
    }
    fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            // Vec<u8> asks for a sequence.
            Value::Blob(b) => v.visit_seq(de::value::SeqDeserializer::new(b.iter().copied())),
            Value::Text(s) => json(s, |d| d.deserialize_seq(v)),
            _ => self.deserialize_any(v),
        }
    }
    fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Text(s) => json(s, |d| d.deserialize_map(v)),
            _ => self.deserialize_any(v),
        }
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Text(s) => json(s, |d| d.deserialize_struct(name, fields, v)),
            _ => self.deserialize_any(v),
        }
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        match self.0 {
            Value::Text(s) if s.starts_with('{') || s.starts_with('"') => {
                json(s, |d| d.deserialize_enum(name, variants, v))
            }
            Value::Text(s) => v.visit_enum(s.as_str().into_deserializer()),
            _ => self.deserialize_any(v),
        }
    }
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _n: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        v.visit_newtype_struct(self)
    }
    serde::forward_to_deserialize_any! {
        i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 char str string
        unit unit_struct tuple tuple_struct identifier ignored_any
    }
}

fn json<'de, T>(
    text: &'de str,
    f: impl FnOnce(&mut serde_json::Deserializer<serde_json::de::StrRead<'de>>) -> Result<T, serde_json::Error>,
) -> Result<T, DeError> {
    let mut d = serde_json::Deserializer::from_str(text);
    f(&mut d).map_err(|e| DeError(format!("column holds text that is not the expected JSON: {e}")))
}
