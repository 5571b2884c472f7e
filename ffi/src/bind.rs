//! Binding parameters of a prepared statement: `hiqlite_bind_*` by index and by name, and the
//! parameter count, index and name lookups.

use std::ffi::{c_char, c_double, c_int, c_void};

use engine::Value;

use crate::error::{cstr, guard_value, FfiError, FfiResult, HIQLITE_INVALID_UTF8, HIQLITE_OK, HIQLITE_RANGE};
use crate::stmt::{hiqlite_stmt, with_stmt};

impl hiqlite_stmt {
    pub(crate) fn bind(&mut self, index: c_int, v: Value) -> FfiResult<c_int> {
        if !self.is_ready() {
            return Err(FfiError::misuse("bind on a statement that ran; call hiqlite_reset first"));
        }
        let i =
            usize::try_from(index).ok().filter(|i| (1..=self.values.len()).contains(i)).ok_or_else(|| {
                FfiError::new(
                    HIQLITE_RANGE,
                    format!("parameter index {index} out of range (the statement has {})", self.values.len()),
                )
            })?;
        self.values[i - 1] = v;
        Ok(HIQLITE_OK)
    }

    pub(crate) fn index_by_name(&self, name: *const c_char) -> FfiResult<c_int> {
        // SAFETY: caller's contract: NULL or a NUL-terminated string.
        let name = unsafe { cstr(name, "parameter name") }?;
        self.params.index_of(name).and_then(|i| c_int::try_from(i).ok()).ok_or_else(|| {
            FfiError::new(HIQLITE_RANGE, format!("no parameter named {name} in the statement"))
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Binding. Indexes are 1-based, as in SQLite. Values are copied: the caller keeps ownership of
// what it passes. Binding is allowed after prepare or reset (else HIQLITE_MISUSE); an index out
// of range or an unknown name is HIQLITE_RANGE. Unbound parameters are NULL.

/// Set every parameter back to NULL. Only on a statement that is not running (after prepare
/// or reset), else `HIQLITE_MISUSE`.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_clear_bindings(stmt: *mut hiqlite_stmt) -> c_int {
    with_stmt(stmt, |s| {
        if !s.is_ready() {
            return Err(FfiError::misuse("clear_bindings on a statement that ran; call hiqlite_reset first"));
        }
        s.values.iter_mut().for_each(|v| *v = Value::Null);
        Ok(HIQLITE_OK)
    })
}

/// The number of parameters (the largest index), as `sqlite3_bind_parameter_count`. 0 for NULL.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_parameter_count(stmt: *const hiqlite_stmt) -> c_int {
    guard_value(0, || {
        // SAFETY: caller's contract.
        unsafe { stmt.as_ref() }.map_or(0, |s| c_int::try_from(s.values.len()).unwrap_or(c_int::MAX))
    })
}

/// The index of the parameter named `name` (with its prefix, `:id`; without one `:`, `@` and `$`
/// are tried), or 0 when there is none (or `stmt`/`name` is NULL or not UTF-8).
///
/// # Safety
/// `stmt` is NULL or a live statement; `name` is NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_parameter_index(
    stmt: *const hiqlite_stmt,
    name: *const c_char,
) -> c_int {
    guard_value(0, || {
        // SAFETY: caller's contract.
        unsafe { stmt.as_ref() }.and_then(|s| s.index_by_name(name).ok()).unwrap_or(0)
    })
}

/// The name of parameter `index` with its prefix (`:id`, `?3`), or NULL for a nameless `?` or an
/// index out of range. Owned by the statement, valid until `hiqlite_finalize`.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_parameter_name(
    stmt: *const hiqlite_stmt,
    index: c_int,
) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: caller's contract.
        let Some(s) = (unsafe { stmt.as_ref() }) else { return std::ptr::null() };
        let Ok(i) = usize::try_from(index) else { return std::ptr::null() };
        s.param_names.iter().find(|(k, _)| *k == i).map_or(std::ptr::null(), |(_, n)| n.as_ptr())
    })
}

/// Bind NULL to parameter `index`.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_null(stmt: *mut hiqlite_stmt, index: c_int) -> c_int {
    with_stmt(stmt, |s| s.bind(index, Value::Null))
}

/// Bind a 64-bit integer to parameter `index`.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_int64(stmt: *mut hiqlite_stmt, index: c_int, value: i64) -> c_int {
    with_stmt(stmt, |s| s.bind(index, Value::Integer(value)))
}

/// Bind a double to parameter `index`.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_double(
    stmt: *mut hiqlite_stmt,
    index: c_int,
    value: c_double,
) -> c_int {
    with_stmt(stmt, |s| s.bind(index, Value::Real(value)))
}

/// Read `n` bytes of text (`n < 0`: up to the NUL terminator). NULL text is a misuse; invalid
/// UTF-8 is `HIQLITE_INVALID_UTF8`.
///
/// # Safety
/// `text` is NULL, or NUL-terminated when `n < 0`, or readable for `n` bytes.
unsafe fn text_arg(text: *const c_char, n: c_int) -> FfiResult<String> {
    if text.is_null() {
        return Err(FfiError::misuse("text is NULL (bind NULL with hiqlite_bind_null)"));
    }
    let bytes: &[u8] = match usize::try_from(n) {
        // SAFETY: NUL-terminated per the contract.
        Err(_) => unsafe { std::ffi::CStr::from_ptr(text) }.to_bytes(),
        // SAFETY: readable for n bytes per the contract.
        Ok(n) => unsafe { std::slice::from_raw_parts(text.cast::<u8>(), n) },
    };
    String::from_utf8(bytes.to_vec())
        .map_err(|e| FfiError::new(HIQLITE_INVALID_UTF8, format!("text is not valid UTF-8: {e}")))
}

/// # Safety
/// `data` is NULL (only with `n == 0`) or readable for `n` bytes.
unsafe fn blob_arg(data: *const c_void, n: c_int) -> FfiResult<Vec<u8>> {
    let n = usize::try_from(n).map_err(|_| FfiError::misuse("blob length is negative"))?;
    if n == 0 {
        return Ok(Vec::new());
    }
    if data.is_null() {
        return Err(FfiError::misuse("blob is NULL but its length is not 0"));
    }
    // SAFETY: readable for n bytes per the contract.
    Ok(unsafe { std::slice::from_raw_parts(data.cast::<u8>(), n) }.to_vec())
}

/// Bind UTF-8 text to parameter `index`: `n` bytes, or up to the NUL terminator when `n < 0`.
/// The text is copied.
///
/// # Safety
/// `stmt` is NULL or a live statement; `text` as described.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_text(
    stmt: *mut hiqlite_stmt,
    index: c_int,
    text: *const c_char,
    n: c_int,
) -> c_int {
    with_stmt(stmt, |s| {
        // SAFETY: caller's contract.
        let t = unsafe { text_arg(text, n) }?;
        s.bind(index, Value::Text(t))
    })
}

/// Bind `n` bytes at `data` as a BLOB to parameter `index` (`data` may be NULL when `n` is 0: an
/// empty blob). The bytes are copied.
///
/// # Safety
/// `stmt` is NULL or a live statement; `data` readable for `n` bytes.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_blob(
    stmt: *mut hiqlite_stmt,
    index: c_int,
    data: *const c_void,
    n: c_int,
) -> c_int {
    with_stmt(stmt, |s| {
        // SAFETY: caller's contract.
        let b = unsafe { blob_arg(data, n) }?;
        s.bind(index, Value::Blob(b))
    })
}

/// `hiqlite_bind_null` by parameter name (see `hiqlite_bind_parameter_index`).
///
/// # Safety
/// `stmt` is NULL or a live statement; `name` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_null_by_name(stmt: *mut hiqlite_stmt, name: *const c_char) -> c_int {
    with_stmt(stmt, |s| {
        let i = s.index_by_name(name)?;
        s.bind(i, Value::Null)
    })
}

/// `hiqlite_bind_int64` by parameter name.
///
/// # Safety
/// As `hiqlite_bind_null_by_name`.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_int64_by_name(
    stmt: *mut hiqlite_stmt,
    name: *const c_char,
    value: i64,
) -> c_int {
    with_stmt(stmt, |s| {
        let i = s.index_by_name(name)?;
        s.bind(i, Value::Integer(value))
    })
}

/// `hiqlite_bind_double` by parameter name.
///
/// # Safety
/// As `hiqlite_bind_null_by_name`.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_double_by_name(
    stmt: *mut hiqlite_stmt,
    name: *const c_char,
    value: c_double,
) -> c_int {
    with_stmt(stmt, |s| {
        let i = s.index_by_name(name)?;
        s.bind(i, Value::Real(value))
    })
}

/// `hiqlite_bind_text` by parameter name.
///
/// # Safety
/// As `hiqlite_bind_null_by_name` and `hiqlite_bind_text`.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_text_by_name(
    stmt: *mut hiqlite_stmt,
    name: *const c_char,
    text: *const c_char,
    n: c_int,
) -> c_int {
    with_stmt(stmt, |s| {
        let i = s.index_by_name(name)?;
        // SAFETY: caller's contract.
        let t = unsafe { text_arg(text, n) }?;
        s.bind(i, Value::Text(t))
    })
}

/// `hiqlite_bind_blob` by parameter name.
///
/// # Safety
/// As `hiqlite_bind_null_by_name` and `hiqlite_bind_blob`.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_bind_blob_by_name(
    stmt: *mut hiqlite_stmt,
    name: *const c_char,
    data: *const c_void,
    n: c_int,
) -> c_int {
    with_stmt(stmt, |s| {
        let i = s.index_by_name(name)?;
        // SAFETY: caller's contract.
        let b = unsafe { blob_arg(data, n) }?;
        s.bind(i, Value::Blob(b))
    })
}
