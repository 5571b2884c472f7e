//! SQLite's errors as hiqlite's [`Error`]: the one conversion from `rusqlite::Error` (SQLite's
//! extended code and message kept), so that the error type itself needs no SQLite.

use crate::error::Error;

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::Error as E;
        match e {
            E::SqliteFailure(err, msg) => {
                Error::Sql { code: err.extended_code, message: msg.unwrap_or_else(|| err.to_string()) }
            }
            E::InvalidParameterCount(given, expected) => Error::Sql {
                code: rusqlite::ffi::SQLITE_RANGE,
                message: format!("wrong number of parameters: statement expects {expected}, got {given}"),
            },
            E::InvalidParameterName(name) => Error::Sql {
                code: rusqlite::ffi::SQLITE_RANGE,
                message: format!("no parameter named {name} in statement"),
            },
            E::MultipleStatement => Error::Sql {
                code: rusqlite::ffi::SQLITE_MISUSE,
                message: "parameters given for a string with several statements; send them one by one".into(),
            },
            E::SqlInputError { error, msg, offset, .. } => Error::Sql {
                code: error.extended_code,
                message: if offset >= 0 { format!("{msg} (at offset {offset})") } else { msg },
            },
            other => Error::Sql { code: rusqlite::ffi::SQLITE_ERROR, message: other.to_string() },
        }
    }
}
