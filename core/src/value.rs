//! Values, parameters, statements and results: the data model every interface shares.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// One SQLite value. INTEGER is always 64-bit; REAL is `f64`; TEXT is UTF-8.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// SQL NULL.
    Null,
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Blob(Vec<u8>),
}

impl Value {
    /// SQLite's name of the value's storage class.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Integer(_) => "integer",
            Value::Real(_) => "real",
            Value::Text(_) => "text",
            Value::Blob(_) => "blob",
        }
    }

    /// Approximate heap + inline size, used for cache and batch accounting.
    pub fn size(&self) -> usize {
        16 + match self {
            Value::Text(s) => s.len(),
            Value::Blob(b) => b.len(),
            _ => 0,
        }
    }

    /// The value as JSON: blobs become arrays of bytes, NaN/inf become null.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Integer(i) => (*i).into(),
            Value::Real(f) => serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into),
            Value::Text(s) => s.clone().into(),
            Value::Blob(b) => b.iter().map(|x| serde_json::Value::from(*x)).collect(),
        }
    }

    /// A parameter from JSON as rqlite's API takes it: null, bool (stored as 0/1), integer,
    /// float, string, or an array of bytes for a BLOB. The error says what was wrong.
    pub fn from_json(v: &serde_json::Value) -> std::result::Result<Value, String> {
        use serde_json::Value as J;
        Ok(match v {
            J::Null => Value::Null,
            J::Bool(b) => Value::Integer(i64::from(*b)),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Integer(i),
                None => Value::Real(n.as_f64().ok_or_else(|| format!("number {n} is out of range"))?),
            },
            J::String(s) => Value::Text(s.clone()),
            J::Array(a) => Value::Blob(
                a.iter()
                    .map(|x| x.as_u64().filter(|b| *b < 256).map(|b| b as u8))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or("an array parameter must be a byte array (integers 0..255)")?,
            ),
            J::Object(_) => return Err("an object is only allowed as the map of named parameters".into()),
        })
    }
}

macro_rules! from_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Integer(i64::from(v)) }
        }
    )*};
}
from_int!(i8, i16, i32, i64, u8, u16, u32, bool);

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Real(f64::from(v))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(v.clone())
    }
}
impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Blob(v)
    }
}
impl From<&[u8]> for Value {
    fn from(v: &[u8]) -> Self {
        Value::Blob(v.to_vec())
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Statement parameters: positional (`?`, `?NNN`) or named (`:name`, `@name`, `$name`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub enum Params {
    /// No parameters.
    #[default]
    None,
    /// Bound in order to `?` / `?1`, `?2`...
    Positional(Vec<Value>),
    /// Bound by name. A name may carry its prefix (`:id`) or not (`id`, then `:`, `@`, `$` are tried).
    Named(Vec<(String, Value)>),
}

impl Params {
    /// True when no parameter is given.
    pub fn is_empty(&self) -> bool {
        match self {
            Params::None => true,
            Params::Positional(v) => v.is_empty(),
            Params::Named(v) => v.is_empty(),
        }
    }
}

impl From<Vec<Value>> for Params {
    fn from(v: Vec<Value>) -> Self {
        Params::Positional(v)
    }
}
impl From<()> for Params {
    fn from(_: ()) -> Self {
        Params::None
    }
}

/// Positional parameters: `params![1, "a", None::<i64>]`.
#[macro_export]
macro_rules! params {
    () => { $crate::Params::None };
    ($($v:expr),+ $(,)?) => { $crate::Params::Positional(vec![$($crate::Value::from($v)),+]) };
}

/// Named parameters: `named_params!{":id" => 1, "name" => "a"}`.
#[macro_export]
macro_rules! named_params {
    () => { $crate::Params::None };
    ($($k:expr => $v:expr),+ $(,)?) => {
        $crate::Params::Named(vec![$((String::from($k), $crate::Value::from($v))),+])
    };
}

/// One SQL statement with its parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Statement {
    /// The SQL text. Without parameters it may hold several statements separated by `;`.
    pub sql: String,
    /// The parameters.
    pub params: Params,
}

impl Statement {
    /// A statement with parameters.
    pub fn new(sql: impl Into<String>, params: impl Into<Params>) -> Self {
        Statement { sql: sql.into(), params: params.into() }
    }
}

impl From<&str> for Statement {
    fn from(sql: &str) -> Self {
        Statement { sql: sql.to_owned(), params: Params::None }
    }
}
impl From<String> for Statement {
    fn from(sql: String) -> Self {
        Statement { sql, params: Params::None }
    }
}
impl<P: Into<Params>> From<(&str, P)> for Statement {
    fn from((sql, p): (&str, P)) -> Self {
        Statement { sql: sql.to_owned(), params: p.into() }
    }
}

/// A result set: column names, declared types and rows of values.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Rows {
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Declared column types (`""` for expressions).
    pub types: Vec<String>,
    /// The rows; each has one value per column.
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }
    /// True when there is no row.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
    /// Index of a column by name.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
    #[cfg(feature = "server")]
    /// The rows as rqlite's `/db/query` renders one result: `{"columns", "types", "values"}`,
    /// `values` left out when there is no row, BLOBs base64.
    pub fn to_rqlite_json(&self) -> serde_json::Value {
        crate::rqlite::query_result(self, Default::default(), 0.0)
    }
    /// Rows as JSON objects keyed by column name (blobs as byte arrays).
    pub fn to_json_objects(&self) -> Vec<serde_json::Map<String, serde_json::Value>> {
        self.rows
            .iter()
            .map(|r| self.columns.iter().cloned().zip(r.iter().map(Value::to_json)).collect())
            .collect()
    }
    /// Map every row into `T` through serde, by column name (or by position for tuples).
    pub fn deserialize<T: serde::de::DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.rows
            .iter()
            .map(|r| {
                T::deserialize(crate::de::RowDe { columns: &self.columns, values: r })
                    .map_err(|e| Error::Decode(e.to_string()))
            })
            .collect()
    }
    /// Approximate memory size.
    pub fn size(&self) -> usize {
        self.columns.iter().map(|c| c.len() + 24).sum::<usize>()
            + self.rows.iter().map(|r| 24 + r.iter().map(Value::size).sum::<usize>()).sum::<usize>()
    }
}

/// What a write statement did.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ExecResult {
    /// Rows changed by the statement (SQLite's `changes()`).
    pub rows_affected: u64,
    /// The rowid of the last inserted row on this connection.
    pub last_insert_id: i64,
    /// Rows returned by the statement (`RETURNING`), empty otherwise.
    pub rows: Rows,
    /// What rqlite would report for this statement: its connection's `last_insert_rowid()` and
    /// `changes()` after the statement (text), carried across statements and commands as one
    /// long-lived connection keeps them. Filled by the node's writer for its rqlite API only;
    /// hiqlite's own faces clear it and report SQLite's per-statement values above.
    #[doc(hidden)]
    #[serde(default)]
    pub rqlite_counters: Option<(i64, u64)>,
    /// The log index of the write (`None` when unknown: a statement that failed, or a server
    /// that does not say). Read-your-writes: [`crate::Client::query_at`] with it, on any node.
    #[serde(default)]
    pub log_index: Option<u64>,
}
