//! `hiqlite::Error` → one native exception carrying `(code_name, code, message)`; the Python package
//! turns it into the DB-API class (IntegrityError, OperationalError...).

use pyo3::prelude::*;

pyo3::create_exception!(
    _native,
    NativeError,
    pyo3::exceptions::PyException,
    "An error from the hiqlite core: args are (code_name, sqlite_code, message)."
);

/// The error's symbolic name (`SQLITE_CONSTRAINT_UNIQUE`, `HIQLITE_NO_LEADER`...), SQLite's
/// extended code (0 when not an SQL error) and the message.
pub fn parts(e: &hiqlite::Error) -> (&'static str, i32, String) {
    match e {
        hiqlite::Error::Sql { code, message } => (e.code_name(), *code, message.clone()),
        other => (other.code_name(), 0, other.to_string()),
    }
}

/// The Python exception for a core error.
pub fn to_py(e: hiqlite::Error) -> PyErr {
    NativeError::new_err(parts(&e))
}
