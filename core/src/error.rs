//! The one error type of the engine. It crosses the peer HTTP boundary (a forwarded write returns
//! the leader's error), so it is serializable and carries plain data only.

use serde::{Deserialize, Serialize};

/// Result alias used across hiqlite.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, with variants a caller can match on.
#[derive(Debug, Clone, PartialEq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
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
    /// A remote server failed the request (an HTTP 5xx, or an error answer without a more
    /// precise meaning); whether it was applied is the server's to say, and it said "failed".
    #[error("server error: {0}")]
    Server(String),
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

    /// A change stream's cursor is older than the changes the node keeps: some changes after
    /// it are gone. Reload the state the stream follows, then follow it from now on.
    #[error("change cursor too old: {0}")]
    CursorTooOld(String),
}

impl Error {
    #[cfg(feature = "server")]
    pub(crate) fn storage(e: impl std::fmt::Display) -> Self {
        Error::Storage(e.to_string())
    }
    #[cfg(feature = "server")]
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
            Error::Server(_) => "HIQLITE_SERVER",
            Error::Raft(_) => "HIQLITE_RAFT",
            Error::InvalidRequest(_) => "HIQLITE_INVALID_REQUEST",
            Error::Decode(_) => "HIQLITE_DECODE",
            Error::Unauthorized(_) => "HIQLITE_UNAUTHORIZED",
            Error::ShutDown => "HIQLITE_SHUTDOWN",
            Error::CursorTooOld(_) => "HIQLITE_CURSOR_TOO_OLD",
        }
    }
}

/// SQLite's result codes by name, as plain numbers (the values of SQLite's `sqlite3.h`), so that
/// naming a code needs no SQLite: a remote client has none.
macro_rules! sqlite_codes {
    ($($name:ident = $value:literal),* $(,)?) => {
        /// SQLite's primary and extended result codes ([sqlite.org/rescode.html]).
        ///
        /// [sqlite.org/rescode.html]: https://sqlite.org/rescode.html
        pub(crate) mod codes {
            $(pub const $name: i32 = $value;)*
        }

        /// SQLite's symbolic name of a primary or extended result code; an extended code this
        /// table does not know is named by its primary code (the low byte).
        pub fn sqlite_code_name(code: i32) -> &'static str {
            match code {
                $(codes::$name => stringify!($name),)*
                _ if code > 0xff => sqlite_code_name(code & 0xff),
                _ => "SQLITE_ERROR",
            }
        }

        /// Every value of the table against the SQLite that hiqlite links.
        #[cfg(all(test, feature = "server"))]
        #[test]
        fn sqlite_codes_match_rusqlite() {
            $(assert_eq!(codes::$name, rusqlite::ffi::$name, stringify!($name));)*
        }
    };
}

sqlite_codes!(
    SQLITE_OK = 0,
    SQLITE_ERROR = 1,
    SQLITE_INTERNAL = 2,
    SQLITE_PERM = 3,
    SQLITE_ABORT = 4,
    SQLITE_BUSY = 5,
    SQLITE_LOCKED = 6,
    SQLITE_NOMEM = 7,
    SQLITE_READONLY = 8,
    SQLITE_INTERRUPT = 9,
    SQLITE_IOERR = 10,
    SQLITE_CORRUPT = 11,
    SQLITE_NOTFOUND = 12,
    SQLITE_FULL = 13,
    SQLITE_CANTOPEN = 14,
    SQLITE_PROTOCOL = 15,
    SQLITE_EMPTY = 16,
    SQLITE_SCHEMA = 17,
    SQLITE_TOOBIG = 18,
    SQLITE_CONSTRAINT = 19,
    SQLITE_MISMATCH = 20,
    SQLITE_MISUSE = 21,
    SQLITE_NOLFS = 22,
    SQLITE_AUTH = 23,
    SQLITE_FORMAT = 24,
    SQLITE_RANGE = 25,
    SQLITE_NOTADB = 26,
    SQLITE_NOTICE = 27,
    SQLITE_WARNING = 28,
    SQLITE_ROW = 100,
    SQLITE_DONE = 101,
    SQLITE_ERROR_MISSING_COLLSEQ = 257,
    SQLITE_ERROR_RETRY = 513,
    SQLITE_ERROR_SNAPSHOT = 769,
    SQLITE_IOERR_READ = 266,
    SQLITE_IOERR_SHORT_READ = 522,
    SQLITE_IOERR_WRITE = 778,
    SQLITE_IOERR_FSYNC = 1034,
    SQLITE_IOERR_DIR_FSYNC = 1290,
    SQLITE_IOERR_TRUNCATE = 1546,
    SQLITE_IOERR_FSTAT = 1802,
    SQLITE_IOERR_UNLOCK = 2058,
    SQLITE_IOERR_RDLOCK = 2314,
    SQLITE_IOERR_DELETE = 2570,
    SQLITE_IOERR_BLOCKED = 2826,
    SQLITE_IOERR_NOMEM = 3082,
    SQLITE_IOERR_ACCESS = 3338,
    SQLITE_IOERR_CHECKRESERVEDLOCK = 3594,
    SQLITE_IOERR_LOCK = 3850,
    SQLITE_IOERR_CLOSE = 4106,
    SQLITE_IOERR_DIR_CLOSE = 4362,
    SQLITE_IOERR_SHMOPEN = 4618,
    SQLITE_IOERR_SHMSIZE = 4874,
    SQLITE_IOERR_SHMLOCK = 5130,
    SQLITE_IOERR_SHMMAP = 5386,
    SQLITE_IOERR_SEEK = 5642,
    SQLITE_IOERR_DELETE_NOENT = 5898,
    SQLITE_IOERR_MMAP = 6154,
    SQLITE_IOERR_GETTEMPPATH = 6410,
    SQLITE_IOERR_CONVPATH = 6666,
    SQLITE_IOERR_VNODE = 6922,
    SQLITE_IOERR_AUTH = 7178,
    SQLITE_IOERR_BEGIN_ATOMIC = 7434,
    SQLITE_IOERR_COMMIT_ATOMIC = 7690,
    SQLITE_IOERR_ROLLBACK_ATOMIC = 7946,
    SQLITE_IOERR_DATA = 8202,
    SQLITE_IOERR_CORRUPTFS = 8458,
    SQLITE_LOCKED_SHAREDCACHE = 262,
    SQLITE_LOCKED_VTAB = 518,
    SQLITE_BUSY_RECOVERY = 261,
    SQLITE_BUSY_SNAPSHOT = 517,
    SQLITE_BUSY_TIMEOUT = 773,
    SQLITE_CANTOPEN_NOTEMPDIR = 270,
    SQLITE_CANTOPEN_ISDIR = 526,
    SQLITE_CANTOPEN_FULLPATH = 782,
    SQLITE_CANTOPEN_CONVPATH = 1038,
    SQLITE_CANTOPEN_SYMLINK = 1550,
    SQLITE_CORRUPT_VTAB = 267,
    SQLITE_CORRUPT_SEQUENCE = 523,
    SQLITE_CORRUPT_INDEX = 779,
    SQLITE_READONLY_RECOVERY = 264,
    SQLITE_READONLY_CANTLOCK = 520,
    SQLITE_READONLY_ROLLBACK = 776,
    SQLITE_READONLY_DBMOVED = 1032,
    SQLITE_READONLY_CANTINIT = 1288,
    SQLITE_READONLY_DIRECTORY = 1544,
    SQLITE_ABORT_ROLLBACK = 516,
    SQLITE_CONSTRAINT_CHECK = 275,
    SQLITE_CONSTRAINT_COMMITHOOK = 531,
    SQLITE_CONSTRAINT_FOREIGNKEY = 787,
    SQLITE_CONSTRAINT_FUNCTION = 1043,
    SQLITE_CONSTRAINT_NOTNULL = 1299,
    SQLITE_CONSTRAINT_PRIMARYKEY = 1555,
    SQLITE_CONSTRAINT_TRIGGER = 1811,
    SQLITE_CONSTRAINT_UNIQUE = 2067,
    SQLITE_CONSTRAINT_VTAB = 2323,
    SQLITE_CONSTRAINT_ROWID = 2579,
    SQLITE_CONSTRAINT_PINNED = 2835,
    SQLITE_CONSTRAINT_DATATYPE = 3091,
    SQLITE_NOTICE_RECOVER_WAL = 283,
    SQLITE_NOTICE_RECOVER_ROLLBACK = 539,
    SQLITE_WARNING_AUTOINDEX = 284,
    SQLITE_AUTH_USER = 279,
);

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
