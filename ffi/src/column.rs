//! Reading the current row of a prepared statement: `hiqlite_column_*`, and the text forms of
//! values.

use std::ffi::{c_char, c_double, c_int, c_void};

use engine::{Rows, Value};

use crate::error::guard_value;
use crate::stmt::{hiqlite_stmt, Cursor, State};

/// Storage class of a value: a 64-bit signed integer (as SQLite's `SQLITE_INTEGER`).
pub const HIQLITE_INTEGER: c_int = 1;
/// Storage class of a value: a 64-bit float (as `SQLITE_FLOAT`).
pub const HIQLITE_FLOAT: c_int = 2;
/// Storage class of a value: UTF-8 text (as `SQLITE_TEXT`).
pub const HIQLITE_TEXT: c_int = 3;
/// Storage class of a value: bytes (as `SQLITE_BLOB`).
pub const HIQLITE_BLOB: c_int = 4;
/// Storage class of a value: NULL (as `SQLITE_NULL`).
pub const HIQLITE_NULL: c_int = 5;

impl hiqlite_stmt {
    pub(crate) fn result(&self) -> Option<&Rows> {
        match &self.state {
            State::Ran { rows, .. } => Some(rows),
            _ => None,
        }
    }

    pub(crate) fn cell(&self, col: c_int) -> Option<&Value> {
        let State::Ran { rows, cursor: Cursor::At(i), .. } = &self.state else { return None };
        rows.rows.get(*i)?.get(usize::try_from(col).ok()?)
    }

    /// The NUL-terminated text of a cell, kept until the cursor moves.
    pub(crate) fn cell_text(&mut self, col: c_int) -> Option<&[u8]> {
        let i = usize::try_from(col).ok()?;
        if self.cells.get(i).is_some_and(Option::is_some) {
            return self.cells[i].as_deref();
        }
        let v = self.cell(col)?;
        if matches!(v, Value::Null) {
            return None;
        }
        let text = value_text(v);
        if self.cells.len() <= i {
            self.cells.resize(i + 1, None);
        }
        Some(self.cells[i].insert(text).as_slice())
    }
}

pub(crate) fn value_text(v: &Value) -> Vec<u8> {
    let mut b = match v {
        Value::Null => Vec::new(),
        Value::Integer(i) => i.to_string().into_bytes(),
        Value::Real(f) => real_text(*f).into_bytes(),
        Value::Text(s) => s.as_bytes().to_vec(),
        Value::Blob(b) => b.clone(),
    };
    b.push(0);
    b
}

fn real_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        format!("{f:.1}")
    } else {
        format!("{f}")
    }
}

fn text_to_i64(s: &str) -> i64 {
    let t = s.trim();
    t.parse::<i64>().ok().or_else(|| t.parse::<f64>().ok().map(|f| f as i64)).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// Columns. Valid after a step that returned HIQLITE_ROW; columns are 0-based. An index out of
// range, or no current row, reads as NULL (type HIQLITE_NULL, 0, 0.0, NULL pointer), as SQLite
// does. Pointers returned are owned by the statement and stay valid until the next
// hiqlite_step, hiqlite_reset or hiqlite_finalize on it; never free them.

/// The number of columns of the result, or 0 before the statement ran (unlike SQLite, the column
/// count is known only once the statement has run) and for a write without `RETURNING`.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_column_count(stmt: *const hiqlite_stmt) -> c_int {
    guard_value(0, || {
        // SAFETY: caller's contract.
        unsafe { stmt.as_ref() }
            .and_then(|s| s.result())
            .map_or(0, |r| c_int::try_from(r.columns.len()).unwrap_or(c_int::MAX))
    })
}

/// The name of column `col` (UTF-8, NUL-terminated), or NULL when out of range or before the
/// statement ran. Valid until the statement is reset, re-run or finalized.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_column_name(stmt: *mut hiqlite_stmt, col: c_int) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: caller's contract (one thread at a time).
        let Some(s) = (unsafe { stmt.as_mut() }) else { return std::ptr::null() };
        let Some(rows) = s.result() else { return std::ptr::null() };
        if s.names.len() != rows.columns.len() {
            s.names = rows
                .columns
                .iter()
                .map(|c| {
                    let mut b: Vec<u8> = c.bytes().filter(|b| *b != 0).collect();
                    b.push(0);
                    b
                })
                .collect();
        }
        usize::try_from(col)
            .ok()
            .and_then(|i| s.names.get(i))
            .map_or(std::ptr::null(), |n| n.as_ptr().cast::<c_char>())
    })
}

/// The storage class of column `col` in the current row: `HIQLITE_INTEGER`, `HIQLITE_FLOAT`,
/// `HIQLITE_TEXT`, `HIQLITE_BLOB` or `HIQLITE_NULL`.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_column_type(stmt: *const hiqlite_stmt, col: c_int) -> c_int {
    guard_value(HIQLITE_NULL, || {
        // SAFETY: caller's contract.
        match unsafe { stmt.as_ref() }.and_then(|s| s.cell(col)) {
            Some(Value::Integer(_)) => HIQLITE_INTEGER,
            Some(Value::Real(_)) => HIQLITE_FLOAT,
            Some(Value::Text(_)) => HIQLITE_TEXT,
            Some(Value::Blob(_)) => HIQLITE_BLOB,
            Some(Value::Null) | None => HIQLITE_NULL,
        }
    })
}

/// Column `col` of the current row as a 64-bit integer (REAL truncated, TEXT parsed, else 0).
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_column_int64(stmt: *const hiqlite_stmt, col: c_int) -> i64 {
    guard_value(0, || {
        // SAFETY: caller's contract.
        match unsafe { stmt.as_ref() }.and_then(|s| s.cell(col)) {
            Some(Value::Integer(i)) => *i,
            Some(Value::Real(f)) => *f as i64,
            Some(Value::Text(t)) => text_to_i64(t),
            _ => 0,
        }
    })
}

/// Column `col` of the current row as a double (INTEGER converted, TEXT parsed, else 0.0).
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_column_double(stmt: *const hiqlite_stmt, col: c_int) -> c_double {
    guard_value(0.0, || {
        // SAFETY: caller's contract.
        match unsafe { stmt.as_ref() }.and_then(|s| s.cell(col)) {
            Some(Value::Integer(i)) => *i as f64,
            Some(Value::Real(f)) => *f,
            Some(Value::Text(t)) => t.trim().parse().unwrap_or(0.0),
            _ => 0.0,
        }
    })
}

/// Column `col` of the current row as NUL-terminated UTF-8 text (numbers are formatted; a BLOB's
/// bytes are returned as they are), or NULL for SQL NULL. Its length without the terminator is
/// `hiqlite_column_bytes`. Owned by the statement: valid until the next step, reset or finalize.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_column_text(stmt: *mut hiqlite_stmt, col: c_int) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: caller's contract (one thread at a time).
        unsafe { stmt.as_mut() }
            .and_then(|s| s.cell_text(col))
            .map_or(std::ptr::null(), |t| t.as_ptr().cast::<c_char>())
    })
}

/// Column `col` of the current row as bytes (TEXT as its UTF-8 bytes, numbers as their text), or
/// NULL for SQL NULL and for a zero-length value. Its length is `hiqlite_column_bytes`. Owned by
/// the statement: valid until the next step, reset or finalize.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_column_blob(stmt: *mut hiqlite_stmt, col: c_int) -> *const c_void {
    guard_value(std::ptr::null(), || {
        // SAFETY: caller's contract (one thread at a time).
        let Some(s) = (unsafe { stmt.as_mut() }) else { return std::ptr::null() };
        match s.cell(col) {
            Some(Value::Blob(b)) if !b.is_empty() => b.as_ptr().cast::<c_void>(),
            Some(Value::Blob(_)) | Some(Value::Null) | None => std::ptr::null(),
            Some(_) => match s.cell_text(col) {
                Some(t) if t.len() > 1 => t.as_ptr().cast::<c_void>(),
                _ => std::ptr::null(),
            },
        }
    })
}

/// The size in bytes of column `col` of the current row as `hiqlite_column_text` or
/// `hiqlite_column_blob` return it (without a terminator); 0 for NULL.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_column_bytes(stmt: *const hiqlite_stmt, col: c_int) -> c_int {
    guard_value(0, || {
        // SAFETY: caller's contract.
        let len = match unsafe { stmt.as_ref() }.and_then(|s| s.cell(col)) {
            Some(Value::Text(t)) => t.len(),
            Some(Value::Blob(b)) => b.len(),
            Some(Value::Integer(i)) => i.to_string().len(),
            Some(Value::Real(f)) => real_text(*f).len(),
            Some(Value::Null) | None => 0,
        };
        c_int::try_from(len).unwrap_or(c_int::MAX)
    })
}
