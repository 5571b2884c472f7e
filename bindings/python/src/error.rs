//! `hiqlite::Error` → one native exception carrying `(kind, code, message)`; the Python package
//! turns it into the DB-API class (IntegrityError, OperationalError...).

use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    NativeError,
    pyo3::exceptions::PyException,
    "An error from the hiqlite core: args are (kind, sqlite_code, message)."
);

/// The error's kind name, SQLite's extended code (0 when not an SQL error) and message.
pub fn parts(e: &hiqlite::Error) -> (&'static str, i32, String) {
    use hiqlite::Error as E;
    let kind = match e {
        E::Sql { .. } => "sql",
        E::NoLeader(_) => "no_leader",
        E::NotLeader { .. } => "not_leader",
        E::Unreachable(_) => "unreachable",
        E::OutcomeUnknown(_) => "outcome_unknown",
        E::Timeout(_) => "timeout",
        E::Config(_) => "config",
        E::Storage(_) => "storage",
        E::Raft(_) => "raft",
        E::InvalidRequest(_) => "invalid_request",
        E::Decode(_) => "decode",
        E::Unauthorized(_) => "unauthorized",
        E::ShutDown => "shutdown",
    };
    match e {
        E::Sql { code, message } => (kind, *code, message.clone()),
        other => (kind, 0, other.to_string()),
    }
}

/// The Python exception for a core error.
pub fn to_py(e: hiqlite::Error) -> PyErr {
    NativeError::new_err(parts(&e))
}
