//! # libhiqlite: the C API of hiqlite
//!
//! C and C++ programs run an embedded node of a hiqlite cluster, or a client of a remote one,
//! through functions shaped like sqlite3's. The header is `include/hiqlite.h`, generated from
//! this crate by cbindgen (`ffi/cbindgen.toml`).
//!
//! Conventions of every function:
//! - Functions return an `int` result code: `HIQLITE_OK` (0), `HIQLITE_ROW`/`HIQLITE_DONE` from
//!   `hiqlite_step`, SQLite's (extended) code for an SQL error, or one of hiqlite's own codes
//!   (1000..=1023). `hiqlite_errmsg` gives the message.
//! - A NULL handle or argument, and text that is not UTF-8, are errors (`HIQLITE_MISUSE`,
//!   `HIQLITE_INVALID_UTF8`), never crashes. No Rust panic crosses the boundary
//!   (`HIQLITE_PANIC`).
//! - Calls block the calling thread; a Tokio runtime owned by the library does the work.
//! - Ownership is stated per function: strings returned through `char **` belong to the caller
//!   and are freed with `hiqlite_free`; `const char *` results belong to the library.
//! - `hiqlite_db` is thread-safe; `hiqlite_stmt`, `hiqlite_tx` and `hiqlite_config` are used by
//!   one thread at a time.
//! - A listener (`hiqlite_listen`), change stream (`hiqlite_changes`) and live query
//!   (`hiqlite_watch`) call their C callback on a thread of the library.

mod bind;
mod calls;
mod changes;
mod cluster;
mod column;
mod coord;
mod db;
mod error;
mod json;
mod listen;
mod lock;
mod maintenance;
mod params;
mod runtime;
mod stmt;
mod tx;

use std::ffi::{c_char, c_int, c_void};

pub use bind::*;
pub use calls::*;
pub use cluster::*;
pub use column::*;
pub use db::*;
pub use error::{
    HIQLITE_CONFIG, HIQLITE_CURSOR_TOO_OLD, HIQLITE_DECODE, HIQLITE_DONE, HIQLITE_ERROR,
    HIQLITE_INVALID_REQUEST, HIQLITE_INVALID_UTF8, HIQLITE_MISUSE, HIQLITE_NOT_LEADER, HIQLITE_NO_LEADER,
    HIQLITE_OK, HIQLITE_OUTCOME_UNKNOWN, HIQLITE_PANIC, HIQLITE_RAFT, HIQLITE_RANGE, HIQLITE_READONLY,
    HIQLITE_ROW, HIQLITE_SERVER, HIQLITE_SHUTDOWN, HIQLITE_STORAGE, HIQLITE_TIMEOUT, HIQLITE_UNAUTHORIZED,
    HIQLITE_UNREACHABLE,
};
pub use stmt::*;
pub use tx::*;

/// The message of this thread's most recent call on `db` (or, for a NULL `db`, of this thread's
/// most recent call of any kind: use it after a failed `hiqlite_open_*`). "not an error" after a
/// success. Never NULL. The string is owned by the library and valid until this thread's next
/// call on the same handle (NULL: any next call); other threads do not disturb it.
///
/// # Safety
/// `db` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_errmsg(db: *const hiqlite_db) -> *const c_char {
    error::guard_value(c"internal error".as_ptr(), || {
        // SAFETY: caller's contract.
        let id = unsafe { db.as_ref() }.map(|d| d.id);
        error::last(id).1
    })
}

/// The result code that goes with `hiqlite_errmsg(db)`.
///
/// # Safety
/// `db` is NULL or a live handle.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_errcode(db: *const hiqlite_db) -> c_int {
    error::guard_value(HIQLITE_PANIC, || {
        // SAFETY: caller's contract.
        let id = unsafe { db.as_ref() }.map(|d| d.id);
        error::last(id).0
    })
}

/// A short English description of a result code (static; never NULL, never to be freed).
#[no_mangle]
pub extern "C" fn hiqlite_errstr(code: c_int) -> *const c_char {
    error::guard_value(c"unknown error".as_ptr(), || error::code_str(code).as_ptr())
}

/// Free a string the library handed to the caller through a `char **` out-parameter
/// (`hiqlite_query_json`, `hiqlite_leader`, `hiqlite_node_info`, `hiqlite_status_json`). NULL is
/// a no-op. Nothing else may be passed: not `const char *` results, not memory from `malloc`.
///
/// # Safety
/// `ptr` is NULL or a string returned by this library through a `char **` and not yet freed.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_free(ptr: *mut c_void) {
    if !ptr.is_null() {
        error::guard_value((), || {
            // SAFETY: made by CString::into_raw (error::to_c_string), per the contract.
            drop(unsafe { std::ffi::CString::from_raw(ptr.cast::<c_char>()) });
        })
    }
}

/// The library's version, e.g. "0.1.0" (static).
#[no_mangle]
pub extern "C" fn hiqlite_libversion() -> *const c_char {
    error::guard_value(std::ptr::null(), || {
        concat!(env!("CARGO_PKG_VERSION"), "\0").as_ptr().cast::<c_char>()
    })
}
