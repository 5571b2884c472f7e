//! The one error type of the engine. It crosses the peer HTTP boundary (a forwarded write returns
//! the leader's error), so it is serializable and carries plain data only.

use serde::{Deserialize, Serialize};

/// Result alias used across hiqlite.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, with variants a caller can match on.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
pub enum Error {
    /// SQLite refused the statement: syntax error, constraint violation, wrong parameters...
    /// `code` is SQLite's extended result code (e.g. 2067 = SQLITE_CONSTRAINT_UNIQUE).
    #[error("SQL error: {message}")]
    Sql {
        /// SQLite's extended result code.
        code: i32,
        /// SQLite's own message.
        message: String,
    },
    /// The cluster has no leader right now (election in progress or no quorum). Retry later.
    #[error("no leader available: {0}")]
    NoLeader(String),
    /// This node is not the leader; `leader` is the current leader's id if known.
    #[error("not the leader (current leader: {leader:?})")]
    NotLeader {
        /// The leader's node id, if one is known.
        leader: Option<u64>,
    },
    /// A peer could not be reached before the request was sent; nothing was applied.
    #[error("node unreachable: {0}")]
    Unreachable(String),
    /// The request was sent but no answer came back: it may or may not have been applied.
    #[error("outcome unknown (the write may or may not have been applied): {0}")]
    OutcomeUnknown(String),
    /// The operation did not finish in time.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The configuration is invalid; the message says which setting.
    #[error("configuration error: {0}")]
    Config(String),
    /// Local storage (log, state machine, snapshot files) failed.
    #[error("storage error: {0}")]
    Storage(String),
    /// Raft refused or failed the operation.
    #[error("raft error: {0}")]
    Raft(String),
    /// The request itself is malformed (bad parameters, bad encoding...).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A result could not be decoded into the requested type.
    #[error("decode error: {0}")]
    Decode(String),
    /// The peer secret or credentials were rejected.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The node is shutting down or has stopped.
    #[error("node is shut down")]
    ShutDown,
}

impl Error {
    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        Error::Storage(e.to_string())
    }
    pub(crate) fn raft(e: impl std::fmt::Display) -> Self {
        Error::Raft(e.to_string())
    }
    /// SQLite's extended result code when this is an SQL error.
    pub fn sqlite_code(&self) -> Option<i32> {
        match self {
            Error::Sql { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// A stable symbolic name for the error, the same in every language binding: SQLite's name
    /// of the code for SQL errors (`SQLITE_CONSTRAINT_UNIQUE`), `HIQLITE_*` for the others.
    pub fn code_name(&self) -> &'static str {
        match self {
            Error::Sql { code, .. } => sqlite_code_name(*code),
            Error::NoLeader(_) => "HIQLITE_NO_LEADER",
            Error::NotLeader { .. } => "HIQLITE_NOT_LEADER",
            Error::Unreachable(_) => "HIQLITE_UNREACHABLE",
            Error::OutcomeUnknown(_) => "HIQLITE_OUTCOME_UNKNOWN",
            Error::Timeout(_) => "HIQLITE_TIMEOUT",
            Error::Config(_) => "HIQLITE_CONFIG",
            Error::Storage(_) => "HIQLITE_STORAGE",
            Error::Raft(_) => "HIQLITE_RAFT",
            Error::InvalidRequest(_) => "HIQLITE_INVALID_REQUEST",
            Error::Decode(_) => "HIQLITE_DECODE",
            Error::Unauthorized(_) => "HIQLITE_UNAUTHORIZED",
            Error::ShutDown => "HIQLITE_SHUTDOWN",
        }
    }
}

macro_rules! code_names {
    ($($name:ident),* $(,)?) => {
        /// SQLite's symbolic name of a primary or extended result code; an extended code this
        /// table does not know is named by its primary code (the low byte).
        pub fn sqlite_code_name(code: i32) -> &'static str {
            match code {
                $(rusqlite::ffi::$name => stringify!($name),)*
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

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names() {
        assert_eq!(sqlite_code_name(1), "SQLITE_ERROR");
        assert_eq!(sqlite_code_name(2067), "SQLITE_CONSTRAINT_UNIQUE");
        assert_eq!(sqlite_code_name(19 | (99 << 8)), "SQLITE_CONSTRAINT", "unknown extended: its primary");
        assert_eq!(
            Error::Sql { code: 1299, message: String::new() }.code_name(),
            "SQLITE_CONSTRAINT_NOTNULL"
        );
        assert_eq!(Error::OutcomeUnknown(String::new()).code_name(), "HIQLITE_OUTCOME_UNKNOWN");
    }
}
