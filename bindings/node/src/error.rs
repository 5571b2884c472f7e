//! Errors as JavaScript sees them: every failure becomes a `HiqliteError` (defined by the
//! prelude, see `prelude.js`) with a string `code`: SQLite's symbolic name for SQL errors
//! (`SQLITE_CONSTRAINT_UNIQUE`), `HIQLITE_*` for the engine's own errors.

use std::borrow::Cow;

use napi::bindgen_prelude::{FnArgs, FunctionRef, Object, Unknown};
use napi::{Env, JsValue};

/// A failure on its way to JavaScript: what the `HiqliteError` will carry.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Failure {
    pub code: Cow<'static, str>,
    pub message: String,
    /// SQLite's extended result code, for SQL errors.
    pub sqlite_code: Option<i32>,
    /// The leader's node id, for `HIQLITE_NOT_LEADER` when it is known.
    pub leader: Option<u64>,
}

impl Failure {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Failure { code: Cow::Borrowed(code), message: message.into(), sqlite_code: None, leader: None }
    }

    /// The caller passed something the binding cannot use (wrong type, bad option).
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Failure::new("HIQLITE_INVALID_REQUEST", message)
    }

    /// A call on a database after `close()`.
    pub(crate) fn closed() -> Self {
        Failure::new("HIQLITE_SHUTDOWN", "the database is closed")
    }
}

impl From<hiqlite::Error> for Failure {
    fn from(e: hiqlite::Error) -> Self {
        let code = Cow::Borrowed(e.code_name());
        match e {
            // SQLite's own message reads best alone, as in better-sqlite3.
            hiqlite::Error::Sql { code: c, message } => {
                Failure { code, message, sqlite_code: Some(c), leader: None }
            }
            hiqlite::Error::NotLeader { leader } => {
                Failure { code, message: e.to_string(), sqlite_code: None, leader }
            }
            other => Failure { code, message: other.to_string(), sqlite_code: None, leader: None },
        }
    }
}

impl From<napi::Error> for Failure {
    /// napi's own conversion failures are always about what the caller passed.
    fn from(e: napi::Error) -> Self {
        Failure::invalid(e.reason.clone())
    }
}

/// The `HiqliteError` constructor of this JavaScript environment, kept as instance data so that
/// errors can be built on the JS thread when a promise settles.
pub(crate) struct ErrorClass(pub FunctionRef<FnArgs<(String, String)>, Unknown<'static>>);

/// Build the `HiqliteError` object for `failure`.
pub(crate) fn error_value<'env>(env: &'env Env, failure: &Failure) -> napi::Result<Unknown<'env>> {
    let class = env
        .get_instance_data::<ErrorClass>()?
        .ok_or_else(|| napi::Error::from_reason("hiqlite: HiqliteError class is not installed"))?;
    let ctor = class.0.borrow_back(env)?;
    let value = ctor.new_instance(FnArgs::from((failure.message.clone(), failure.code.to_string())))?;
    let mut obj = Object::from_raw(env.raw(), value.raw());
    if let Some(code) = failure.sqlite_code {
        obj.set("sqliteCode", code)?;
    }
    if let Some(leader) = failure.leader {
        obj.set("leader", leader as f64)?;
    }
    Ok(value)
}

/// `failure` as a napi error that throws (or rejects with) the `HiqliteError` object. Should
/// building the object fail, a plain `Error` with the same message and code is thrown instead.
pub(crate) fn to_napi(env: &Env, failure: &Failure) -> napi::Error {
    match error_value(env, failure) {
        Ok(v) => napi::Error::from(v),
        Err(_) => {
            napi::Error::new(napi::Status::GenericFailure, format!("{}: {}", failure.code, failure.message))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use hiqlite::sqlite_code_name;

    #[test]
    fn sqlite_codes_have_their_names() {
        assert_eq!(sqlite_code_name(1), "SQLITE_ERROR");
        assert_eq!(sqlite_code_name(2067), "SQLITE_CONSTRAINT_UNIQUE");
        assert_eq!(sqlite_code_name(1299), "SQLITE_CONSTRAINT_NOTNULL");
        assert_eq!(sqlite_code_name(1555), "SQLITE_CONSTRAINT_PRIMARYKEY");
        assert_eq!(sqlite_code_name(787), "SQLITE_CONSTRAINT_FOREIGNKEY");
        assert_eq!(sqlite_code_name(19), "SQLITE_CONSTRAINT");
        assert_eq!(sqlite_code_name(25), "SQLITE_RANGE");
        assert_eq!(sqlite_code_name(8), "SQLITE_READONLY");
        assert_eq!(sqlite_code_name(266), "SQLITE_IOERR_READ");
        // An extended code SQLite may add later falls back to its primary name.
        assert_eq!(sqlite_code_name(19 | (60 << 8)), "SQLITE_CONSTRAINT");
        assert_eq!(sqlite_code_name(-5), "SQLITE_ERROR");
    }

    #[test]
    fn engine_errors_have_codes() {
        let f = Failure::from(hiqlite::Error::Sql {
            code: 2067,
            message: "UNIQUE constraint failed: t.k".into(),
        });
        assert_eq!(f.code, "SQLITE_CONSTRAINT_UNIQUE");
        assert_eq!(f.message, "UNIQUE constraint failed: t.k");
        assert_eq!(f.sqlite_code, Some(2067));
        let f = Failure::from(hiqlite::Error::NotLeader { leader: Some(3) });
        assert_eq!((f.code.as_ref(), f.leader), ("HIQLITE_NOT_LEADER", Some(3)));
        for (e, code) in [
            (hiqlite::Error::NoLeader("x".into()), "HIQLITE_NO_LEADER"),
            (hiqlite::Error::Unreachable("x".into()), "HIQLITE_UNREACHABLE"),
            (hiqlite::Error::OutcomeUnknown("x".into()), "HIQLITE_OUTCOME_UNKNOWN"),
            (hiqlite::Error::Timeout("x".into()), "HIQLITE_TIMEOUT"),
            (hiqlite::Error::Config("x".into()), "HIQLITE_CONFIG"),
            (hiqlite::Error::Storage("x".into()), "HIQLITE_STORAGE"),
            (hiqlite::Error::Server("x".into()), "HIQLITE_SERVER"),
            (hiqlite::Error::InvalidRequest("x".into()), "HIQLITE_INVALID_REQUEST"),
            (hiqlite::Error::Decode("x".into()), "HIQLITE_DECODE"),
            (hiqlite::Error::Unauthorized("x".into()), "HIQLITE_UNAUTHORIZED"),
            (hiqlite::Error::ShutDown, "HIQLITE_SHUTDOWN"),
        ] {
            assert_eq!(Failure::from(e).code, code);
        }
    }
}
