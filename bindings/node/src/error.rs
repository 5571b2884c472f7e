//! Errors as JavaScript sees them: every failure becomes a `HiqliteError` (defined by the
//! prelude, see `prelude.js`) with a string `code`: SQLite's symbolic name for SQL errors
//! (`SQLITE_CONSTRAINT_UNIQUE`), `HIQLITE_*` for the engine's own errors.

use std::borrow::Cow;

use napi::bindgen_prelude::{FnArgs, FunctionRef, Object, Unknown};
use napi::{Env, JsValue};
use rusqlite::ffi as f;

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
        use hiqlite::Error as E;
        let code = match &e {
            E::Sql { code, message } => {
                // SQLite's own message reads best alone, as in better-sqlite3.
                return Failure {
                    code: Cow::Borrowed(sqlite_code_name(*code)),
                    message: message.clone(),
                    sqlite_code: Some(*code),
                    leader: None,
                };
            }
            E::NotLeader { leader } => {
                return Failure { leader: *leader, ..Failure::new("HIQLITE_NOT_LEADER", e.to_string()) }
            }
            E::NoLeader(_) => "HIQLITE_NO_LEADER",
            E::Unreachable(_) => "HIQLITE_UNREACHABLE",
            E::OutcomeUnknown(_) => "HIQLITE_OUTCOME_UNKNOWN",
            E::Timeout(_) => "HIQLITE_TIMEOUT",
            E::Config(_) => "HIQLITE_CONFIG",
            E::Storage(_) => "HIQLITE_STORAGE",
            E::Raft(_) => "HIQLITE_RAFT",
            E::InvalidRequest(_) => "HIQLITE_INVALID_REQUEST",
            E::Decode(_) => "HIQLITE_DECODE",
            E::Unauthorized(_) => "HIQLITE_UNAUTHORIZED",
            E::ShutDown => "HIQLITE_SHUTDOWN",
        };
        Failure::new(code, e.to_string())
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

macro_rules! code_names {
    ($($name:ident),* $(,)?) => {
        /// SQLite's symbolic name of a primary or extended result code; an extended code this
        /// table does not know is named by its primary code (the low byte).
        pub(crate) fn sqlite_code_name(code: i32) -> &'static str {
            match code {
                $(f::$name => stringify!($name),)*
                _ if code > 0xff => sqlite_code_name(code & 0xff),
                _ => "SQLITE_ERROR",
            }
        }
    };
}

code_names!(
    SQLITE_OK,
    SQLITE_ERROR,
    SQLITE_INTERNAL,
    SQLITE_PERM,
    SQLITE_ABORT,
    SQLITE_BUSY,
    SQLITE_LOCKED,
    SQLITE_NOMEM,
    SQLITE_READONLY,
    SQLITE_INTERRUPT,
    SQLITE_IOERR,
    SQLITE_CORRUPT,
    SQLITE_NOTFOUND,
    SQLITE_FULL,
    SQLITE_CANTOPEN,
    SQLITE_PROTOCOL,
    SQLITE_EMPTY,
    SQLITE_SCHEMA,
    SQLITE_TOOBIG,
    SQLITE_CONSTRAINT,
    SQLITE_MISMATCH,
    SQLITE_MISUSE,
    SQLITE_NOLFS,
    SQLITE_AUTH,
    SQLITE_FORMAT,
    SQLITE_RANGE,
    SQLITE_NOTADB,
    SQLITE_NOTICE,
    SQLITE_WARNING,
    SQLITE_ROW,
    SQLITE_DONE,
    SQLITE_ERROR_MISSING_COLLSEQ,
    SQLITE_ERROR_RETRY,
    SQLITE_ERROR_SNAPSHOT,
    SQLITE_IOERR_READ,
    SQLITE_IOERR_SHORT_READ,
    SQLITE_IOERR_WRITE,
    SQLITE_IOERR_FSYNC,
    SQLITE_IOERR_DIR_FSYNC,
    SQLITE_IOERR_TRUNCATE,
    SQLITE_IOERR_FSTAT,
    SQLITE_IOERR_UNLOCK,
    SQLITE_IOERR_RDLOCK,
    SQLITE_IOERR_DELETE,
    SQLITE_IOERR_BLOCKED,
    SQLITE_IOERR_NOMEM,
    SQLITE_IOERR_ACCESS,
    SQLITE_IOERR_CHECKRESERVEDLOCK,
    SQLITE_IOERR_LOCK,
    SQLITE_IOERR_CLOSE,
    SQLITE_IOERR_DIR_CLOSE,
    SQLITE_IOERR_SHMOPEN,
    SQLITE_IOERR_SHMSIZE,
    SQLITE_IOERR_SHMLOCK,
    SQLITE_IOERR_SHMMAP,
    SQLITE_IOERR_SEEK,
    SQLITE_IOERR_DELETE_NOENT,
    SQLITE_IOERR_MMAP,
    SQLITE_IOERR_GETTEMPPATH,
    SQLITE_IOERR_CONVPATH,
    SQLITE_IOERR_VNODE,
    SQLITE_IOERR_AUTH,
    SQLITE_IOERR_BEGIN_ATOMIC,
    SQLITE_IOERR_COMMIT_ATOMIC,
    SQLITE_IOERR_ROLLBACK_ATOMIC,
    SQLITE_IOERR_DATA,
    SQLITE_IOERR_CORRUPTFS,
    SQLITE_LOCKED_SHAREDCACHE,
    SQLITE_LOCKED_VTAB,
    SQLITE_BUSY_RECOVERY,
    SQLITE_BUSY_SNAPSHOT,
    SQLITE_BUSY_TIMEOUT,
    SQLITE_CANTOPEN_NOTEMPDIR,
    SQLITE_CANTOPEN_ISDIR,
    SQLITE_CANTOPEN_FULLPATH,
    SQLITE_CANTOPEN_CONVPATH,
    SQLITE_CANTOPEN_SYMLINK,
    SQLITE_CORRUPT_VTAB,
    SQLITE_CORRUPT_SEQUENCE,
    SQLITE_CORRUPT_INDEX,
    SQLITE_READONLY_RECOVERY,
    SQLITE_READONLY_CANTLOCK,
    SQLITE_READONLY_ROLLBACK,
    SQLITE_READONLY_DBMOVED,
    SQLITE_READONLY_CANTINIT,
    SQLITE_READONLY_DIRECTORY,
    SQLITE_ABORT_ROLLBACK,
    SQLITE_CONSTRAINT_CHECK,
    SQLITE_CONSTRAINT_COMMITHOOK,
    SQLITE_CONSTRAINT_FOREIGNKEY,
    SQLITE_CONSTRAINT_FUNCTION,
    SQLITE_CONSTRAINT_NOTNULL,
    SQLITE_CONSTRAINT_PRIMARYKEY,
    SQLITE_CONSTRAINT_TRIGGER,
    SQLITE_CONSTRAINT_UNIQUE,
    SQLITE_CONSTRAINT_VTAB,
    SQLITE_CONSTRAINT_ROWID,
    SQLITE_CONSTRAINT_PINNED,
    SQLITE_CONSTRAINT_DATATYPE,
    SQLITE_NOTICE_RECOVER_WAL,
    SQLITE_NOTICE_RECOVER_ROLLBACK,
    SQLITE_WARNING_AUTOINDEX,
    SQLITE_AUTH_USER,
);

#[cfg(test)]
mod tests {
    use super::*;

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
            (hiqlite::Error::InvalidRequest("x".into()), "HIQLITE_INVALID_REQUEST"),
            (hiqlite::Error::Decode("x".into()), "HIQLITE_DECODE"),
            (hiqlite::Error::Unauthorized("x".into()), "HIQLITE_UNAUTHORIZED"),
            (hiqlite::Error::ShutDown, "HIQLITE_SHUTDOWN"),
        ] {
            assert_eq!(Failure::from(e).code, code);
        }
    }
}
