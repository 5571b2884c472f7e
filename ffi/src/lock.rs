//! Distributed locks in C: `hiqlite_lock_acquire` / `hiqlite_try_lock` hand out a `hiqlite_lock` handle
//! holding the lock (with its fencing token) and renewing its lease in the library's runtime
//! until `hiqlite_lock_release`, which releases the lock and frees the handle.

use std::ffi::{c_char, c_int};
use std::time::Duration;

use engine::LockGuard;

use crate::db::{hiqlite_db, with_db};
use crate::error::{cstr, guard, FfiError, HIQLITE_OK};
use crate::runtime::block_on;

/// A held lock. Errors of calls on it are reported on the database it came from.
#[allow(non_camel_case_types)]
pub struct hiqlite_lock {
    db: u64,
    guard: LockGuard,
}

fn give(db: &hiqlite_db, g: LockGuard, out: *mut *mut hiqlite_lock) {
    // SAFETY: checked non-NULL by the callers.
    unsafe { *out = Box::into_raw(Box::new(hiqlite_lock { db: db.id, guard: g })) };
}

/// Take lock `name` with a lease of `lease_ms`, waiting in line (FIFO) up to `wait_ms`:
/// `HIQLITE_TIMEOUT` after that. On success `*lock` is a new handle: the library renews the
/// lease until `hiqlite_lock_release`.
///
/// # Safety
/// `db` NULL or a live handle; `name` NULL or NUL-terminated; `lock` writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_lock_acquire(
    db: *const hiqlite_db,
    name: *const c_char,
    lease_ms: u64,
    wait_ms: u64,
    lock: *mut *mut hiqlite_lock,
) -> c_int {
    with_db(db, |d| {
        if lock.is_null() {
            return Err(FfiError::misuse("lock out-pointer is NULL"));
        }
        // SAFETY: non-NULL, writable per the contract.
        unsafe { *lock = std::ptr::null_mut() };
        // SAFETY: caller's contract.
        let name = unsafe { cstr(name, "name") }?;
        let g =
            block_on(d.client.lock(name, Duration::from_millis(lease_ms), Duration::from_millis(wait_ms)))??;
        give(d, g, lock);
        Ok(HIQLITE_OK)
    })
}

/// Take lock `name` only if it is free and nobody waits for it: `*lock` is a new handle, or
/// NULL (still `HIQLITE_OK`) when the lock is busy.
///
/// # Safety
/// As `hiqlite_lock_acquire`.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_try_lock(
    db: *const hiqlite_db,
    name: *const c_char,
    lease_ms: u64,
    lock: *mut *mut hiqlite_lock,
) -> c_int {
    with_db(db, |d| {
        if lock.is_null() {
            return Err(FfiError::misuse("lock out-pointer is NULL"));
        }
        // SAFETY: non-NULL, writable per the contract.
        unsafe { *lock = std::ptr::null_mut() };
        // SAFETY: caller's contract.
        let name = unsafe { cstr(name, "name") }?;
        if let Some(g) = block_on(d.client.try_lock(name, Duration::from_millis(lease_ms)))?? {
            give(d, g, lock);
        }
        Ok(HIQLITE_OK)
    })
}

/// The lock's fencing token (strictly greater than every earlier holder's); 0 for NULL.
///
/// # Safety
/// `lock` NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_lock_token(lock: *const hiqlite_lock) -> i64 {
    // SAFETY: caller's contract.
    unsafe { lock.as_ref() }.map_or(0, |l| l.guard.token())
}

/// 1 while the lock is held, 0 once a renewal found it lost (its lease ended or someone else
/// holds it now: stop acting on it) or for NULL.
///
/// # Safety
/// `lock` NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_lock_is_held(lock: *const hiqlite_lock) -> c_int {
    // SAFETY: caller's contract.
    unsafe { lock.as_ref() }.map_or(0, |l| c_int::from(l.guard.is_held()))
}

/// Release the lock (the next waiter gets it) and free the handle, whatever the outcome;
/// `*was_held` (may be NULL) = 1 when it was still held. NULL is a no-op.
///
/// # Safety
/// `lock` NULL or a live handle, not used again; `was_held` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_lock_release(lock: *mut hiqlite_lock, was_held: *mut c_int) -> c_int {
    if lock.is_null() {
        return HIQLITE_OK;
    }
    // SAFETY: a live handle made by `give`, per the contract; it is not used again.
    let l = unsafe { Box::from_raw(lock) };
    let db = l.db;
    guard(Some(db), move || {
        // SAFETY: caller's contract.
        unsafe { crate::db::put(was_held, 0) };
        let held = block_on(l.guard.release())??;
        // SAFETY: caller's contract.
        unsafe { crate::db::put(was_held, c_int::from(held)) };
        Ok(HIQLITE_OK)
    })
}
