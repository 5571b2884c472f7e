//! Values and parameters meet SQLite: `Value` as `ToSql`, and binding `Params` to a prepared
//! statement with exact counts.

use rusqlite::types::{ToSqlOutput, ValueRef};

use crate::error::{Error, Result};
use crate::value::{Params, Value};

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Value::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Value::Integer(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
            Value::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
            Value::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

impl Value {
    /// A value read from SQLite.
    pub(crate) fn from_ref(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(i) => Value::Integer(i),
            ValueRef::Real(f) => Value::Real(f),
            // SQLite may hold invalid UTF-8 in TEXT (written as such by C code); keep it lossless
            // where possible and never panic.
            ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
            ValueRef::Blob(b) => Value::Blob(b.to_vec()),
        }
    }
}

impl Params {
    /// Bind these parameters to a prepared statement, checking the count exactly so that a
    /// missing or extra parameter is an error instead of a silent NULL.
    pub(crate) fn bind(&self, stmt: &mut rusqlite::Statement<'_>) -> Result<()> {
        let expected = stmt.parameter_count();
        match self {
            Params::None => {
                if expected != 0 {
                    return Err(rusqlite::Error::InvalidParameterCount(0, expected).into());
                }
            }
            Params::Positional(values) => {
                if values.len() != expected {
                    return Err(rusqlite::Error::InvalidParameterCount(values.len(), expected).into());
                }
                for (i, v) in values.iter().enumerate() {
                    stmt.raw_bind_parameter(i + 1, v)?;
                }
            }
            Params::Named(pairs) => {
                if pairs.len() != expected {
                    return Err(rusqlite::Error::InvalidParameterCount(pairs.len(), expected).into());
                }
                for (name, v) in pairs {
                    let idx = if name.starts_with([':', '@', '$']) {
                        stmt.parameter_index(name)?
                    } else {
                        let mut found = None;
                        for p in [":", "@", "$"] {
                            if let Some(i) = stmt.parameter_index(&format!("{p}{name}"))? {
                                found = Some(i);
                                break;
                            }
                        }
                        found
                    };
                    let idx = idx.ok_or_else(|| Error::Sql {
                        code: rusqlite::ffi::SQLITE_RANGE,
                        message: format!("no parameter named {name} in statement"),
                    })?;
                    stmt.raw_bind_parameter(idx, v)?;
                }
            }
        }
        Ok(())
    }
}
