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
}

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
