//! Coordination primitives in C: replicated key/value entries (`hiqlite_kv_*`) and counters
//! (`hiqlite_counter_*`). Values are byte buffers; one handed to the caller is released with
//! `hiqlite_free_bytes`.

use std::ffi::{c_char, c_int, c_void};
use std::time::Duration;

use crate::db::{consistency_from_c, hiqlite_db, put, with_db};
use crate::error::{cstr, FfiError, FfiResult, HIQLITE_OK};
use crate::runtime::block_on;

/// The bytes at `ptr` (NULL means none; a NULL pointer with a length is a misuse).
///
/// # Safety
/// `ptr` is NULL or points to `len` readable bytes.
pub(crate) unsafe fn bytes<'a>(ptr: *const c_void, len: usize, what: &str) -> FfiResult<Option<&'a [u8]>> {
    if ptr.is_null() {
        return if len == 0 {
            Ok(None)
        } else {
            Err(FfiError::misuse(format!("{what} is NULL with length {len}")))
        };
    }
    // SAFETY: non-NULL and `len` readable bytes per the contract.
    Ok(Some(unsafe { std::slice::from_raw_parts(ptr.cast::<u8>(), len) }))
}

fn ttl(ttl_ms: i64) -> Option<Duration> {
    u64::try_from(ttl_ms).ok().filter(|t| *t > 0).map(Duration::from_millis)
}

/// Hand `v` to the caller: `*out` NULL when absent (an empty value is a non-NULL pointer with
/// length 0), `*len` its length.
///
/// # Safety
/// `out` and `len` NULL or writable.
unsafe fn give(v: Option<Vec<u8>>, out: *mut *mut c_void, len: *mut usize) {
    let (p, n) = match v {
        None => (std::ptr::null_mut(), 0),
        Some(v) => {
            let n = v.len();
            (Box::into_raw(v.into_boxed_slice()).cast::<c_void>(), n)
        }
    };
    // SAFETY: caller's contract.
    unsafe {
        put(out, p);
        put(len, n);
    }
}

/// Release a value returned by `hiqlite_kv_get` or `hiqlite_kv_get_and_delete`, with the length
/// it came with. NULL is a no-op.
///
/// # Safety
/// `ptr` is NULL or a value from this library not yet freed, and `len` its length.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_free_bytes(ptr: *mut c_void, len: usize) {
    if !ptr.is_null() {
        crate::error::guard_value((), || {
            // SAFETY: made by Box::into_raw of a boxed slice of `len` bytes (`give`).
            drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(ptr.cast::<u8>(), len)) });
        })
    }
}

/// Set `key` in namespace `ns` to the `len` bytes at `value`, cluster-wide. `ttl_ms` > 0: the
/// entry expires that long after the leader applies it (the leader's clock decides, the same on
/// every node); 0 or less: never.
///
/// # Safety
/// `db` NULL or a live handle; `ns` and `key` NULL or NUL-terminated; `value` NULL (with `len`
/// 0) or `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_kv_put(
    db: *const hiqlite_db,
    ns: *const c_char,
    key: *const c_char,
    value: *const c_void,
    len: usize,
    ttl_ms: i64,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        let (ns, key, value) = unsafe { (cstr(ns, "ns")?, cstr(key, "key")?, bytes(value, len, "value")?) };
        block_on(d.client.kv_put(ns, key, value.unwrap_or_default(), ttl(ttl_ms)))??;
        Ok(HIQLITE_OK)
    })
}

/// The value of `key` in `ns` with `consistency` (`HIQLITE_CONSISTENCY_*`; LOCAL reads this
/// replica from memory). `*value` is NULL when there is none; otherwise free it with
/// `hiqlite_free_bytes(*value, *len)`.
///
/// # Safety
/// `db` NULL or a live handle; `ns` and `key` NULL or NUL-terminated; `value` and `len` writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_kv_get(
    db: *const hiqlite_db,
    ns: *const c_char,
    key: *const c_char,
    consistency: c_int,
    value: *mut *mut c_void,
    len: *mut usize,
) -> c_int {
    with_db(db, |d| {
        if value.is_null() || len.is_null() {
            return Err(FfiError::misuse("value or len out-pointer is NULL"));
        }
        // SAFETY: caller's contract.
        unsafe { give(None, value, len) };
        // SAFETY: caller's contract.
        let (ns, key) = unsafe { (cstr(ns, "ns")?, cstr(key, "key")?) };
        let v = block_on(d.client.kv_get_with(ns, key, consistency_from_c(consistency)?))??;
        // SAFETY: checked non-NULL above.
        unsafe { give(v, value, len) };
        Ok(HIQLITE_OK)
    })
}

/// Remove `key` from `ns`; `*deleted` (may be NULL) = 1 when it was there.
///
/// # Safety
/// `db` NULL or a live handle; `ns` and `key` NULL or NUL-terminated; `deleted` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_kv_delete(
    db: *const hiqlite_db,
    ns: *const c_char,
    key: *const c_char,
    deleted: *mut c_int,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        unsafe { put(deleted, 0) };
        // SAFETY: caller's contract.
        let (ns, key) = unsafe { (cstr(ns, "ns")?, cstr(key, "key")?) };
        let was = block_on(d.client.kv_delete(ns, key))??;
        // SAFETY: caller's contract.
        unsafe { put(deleted, c_int::from(was)) };
        Ok(HIQLITE_OK)
    })
}

/// Remove `key` from `ns` and hand back the value it had (`*value` NULL when there was none;
/// free it with `hiqlite_free_bytes`), atomically.
///
/// # Safety
/// As `hiqlite_kv_get`.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_kv_get_and_delete(
    db: *const hiqlite_db,
    ns: *const c_char,
    key: *const c_char,
    value: *mut *mut c_void,
    len: *mut usize,
) -> c_int {
    with_db(db, |d| {
        if value.is_null() || len.is_null() {
            return Err(FfiError::misuse("value or len out-pointer is NULL"));
        }
        // SAFETY: caller's contract.
        unsafe { give(None, value, len) };
        // SAFETY: caller's contract.
        let (ns, key) = unsafe { (cstr(ns, "ns")?, cstr(key, "key")?) };
        let v = block_on(d.client.kv_get_and_delete(ns, key))??;
        // SAFETY: checked non-NULL above.
        unsafe { give(v, value, len) };
        Ok(HIQLITE_OK)
    })
}

/// Compare and swap: when `key` holds the `expected_len` bytes at `expected` (`expected` NULL:
/// the key is absent), set it to the `new_len` bytes at `new_value` (`new_value` NULL: delete
/// it), with `ttl_ms` as in `hiqlite_kv_put`. `*swapped` (may be NULL) = 1 when it swapped.
///
/// # Safety
/// `db` NULL or a live handle; `ns` and `key` NULL or NUL-terminated; `expected` and `new_value`
/// NULL (with length 0) or readable for their lengths; `swapped` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_kv_replace(
    db: *const hiqlite_db,
    ns: *const c_char,
    key: *const c_char,
    expected: *const c_void,
    expected_len: usize,
    new_value: *const c_void,
    new_len: usize,
    ttl_ms: i64,
    swapped: *mut c_int,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        unsafe { put(swapped, 0) };
        // SAFETY: caller's contract.
        let (ns, key, expected, new) = unsafe {
            (
                cstr(ns, "ns")?,
                cstr(key, "key")?,
                bytes(expected, expected_len, "expected")?,
                bytes(new_value, new_len, "new_value")?,
            )
        };
        let did = block_on(d.client.kv_replace(ns, key, expected, new, ttl(ttl_ms)))??;
        // SAFETY: caller's contract.
        unsafe { put(swapped, c_int::from(did)) };
        Ok(HIQLITE_OK)
    })
}

/// Keep at most `max_entries` keys in `ns` (evicting the least recently written, on every node
/// alike); a negative `max_entries` removes the limit.
///
/// # Safety
/// `db` NULL or a live handle; `ns` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_kv_set_limit(
    db: *const hiqlite_db,
    ns: *const c_char,
    max_entries: i64,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        let ns = unsafe { cstr(ns, "ns") }?;
        block_on(d.client.kv_set_limit(ns, u64::try_from(max_entries).ok()))??;
        Ok(HIQLITE_OK)
    })
}

/// A counter's value (0 when never set) with `consistency` (`HIQLITE_CONSISTENCY_*`).
///
/// # Safety
/// `db` NULL or a live handle; `name` NULL or NUL-terminated; `value` writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_counter_get(
    db: *const hiqlite_db,
    name: *const c_char,
    consistency: c_int,
    value: *mut i64,
) -> c_int {
    with_db(db, |d| {
        if value.is_null() {
            return Err(FfiError::misuse("value out-pointer is NULL"));
        }
        // SAFETY: caller's contract.
        let name = unsafe { cstr(name, "name") }?;
        let v = block_on(d.client.counter_get_with(name, consistency_from_c(consistency)?))??;
        // SAFETY: non-NULL, writable per the contract.
        unsafe { *value = v };
        Ok(HIQLITE_OK)
    })
}

/// Add `delta` to a counter atomically, cluster-wide; `*value` (may be NULL) receives the new
/// value. An overflow is `HIQLITE_INVALID_REQUEST` and changes nothing.
///
/// # Safety
/// `db` NULL or a live handle; `name` NULL or NUL-terminated; `value` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_counter_add(
    db: *const hiqlite_db,
    name: *const c_char,
    delta: i64,
    value: *mut i64,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        let name = unsafe { cstr(name, "name") }?;
        let v = block_on(d.client.counter_add(name, delta))??;
        // SAFETY: caller's contract.
        unsafe { put(value, v) };
        Ok(HIQLITE_OK)
    })
}

/// Set a counter, cluster-wide.
///
/// # Safety
/// `db` NULL or a live handle; `name` NULL or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_counter_set(
    db: *const hiqlite_db,
    name: *const c_char,
    value: i64,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        let name = unsafe { cstr(name, "name") }?;
        block_on(d.client.counter_set(name, value))??;
        Ok(HIQLITE_OK)
    })
}
