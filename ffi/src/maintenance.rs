//! Backups, restores and migrations in C: `hiqlite_backup` writes a consistent online copy,
//! `hiqlite_restore` loads one into the running cluster, `hiqlite_migrate` and
//! `hiqlite_migrate_dir` apply ordered migrations once, cluster-wide.

use std::ffi::{c_char, c_int};

use engine::Migration;

use crate::db::{hiqlite_db, put, with_db};
use crate::error::{cstr, FfiError, HIQLITE_OK};
use crate::runtime::block_on;

/// Write a consistent online backup (a SQLite database file that also carries hiqlite's state)
/// to `path`, which must not exist. `*index` (may be NULL) is the log index the copy holds, or
/// -1 when the node cannot tell (a remote client). Start a new cluster from the file with the
/// config key `restore_from`, or load it into a running one with `hiqlite_restore`.
///
/// # Safety
/// `db` is NULL or a live handle; `path` NULL or a NUL-terminated string; `index` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_backup(
    db: *const hiqlite_db,
    path: *const c_char,
    index: *mut i64,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        unsafe { put(index, -1) };
        // SAFETY: caller's contract.
        let path = unsafe { cstr(path, "path") }?;
        let at = block_on(d.client.backup(path))??;
        // SAFETY: caller's contract.
        unsafe { put(index, at.and_then(|i| i64::try_from(i).ok()).unwrap_or(-1)) };
        Ok(HIQLITE_OK)
    })
}

/// Load the backup (or any SQLite database file) at `path` into the running cluster: every
/// table and view is replaced by the file's, in one replicated transaction.
///
/// # Safety
/// `db` is NULL or a live handle; `path` NULL or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_restore(db: *const hiqlite_db, path: *const c_char) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        let path = unsafe { cstr(path, "path") }?;
        block_on(d.client.restore(path))??;
        Ok(HIQLITE_OK)
    })
}

/// Apply migrations given as a JSON array of `{"id": N, "name": "...", "sql": "..."}`, in id
/// order, each once and atomically. `*applied` (may be NULL): how many were applied now.
///
/// # Safety
/// `db` is NULL or a live handle; `migrations_json` NULL or a NUL-terminated string; `applied`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_migrate(
    db: *const hiqlite_db,
    migrations_json: *const c_char,
    applied: *mut c_int,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        unsafe { put(applied, 0) };
        // SAFETY: caller's contract.
        let text = unsafe { cstr(migrations_json, "migrations_json") }?;
        let list: Vec<Migration> = serde_json::from_str(text).map_err(|e| {
            FfiError::misuse(format!("migrations_json is not an array of {{\"id\", \"name\", \"sql\"}}: {e}"))
        })?;
        let n = block_on(d.client.migrate(&list))??;
        // SAFETY: caller's contract.
        unsafe { put(applied, c_int::try_from(n).unwrap_or(c_int::MAX)) };
        Ok(HIQLITE_OK)
    })
}

/// Apply the migrations of a folder of numbered SQL files (`1_init.sql`, `002_more.sql`, ...;
/// other files are ignored), as `hiqlite_migrate` does.
///
/// # Safety
/// `db` is NULL or a live handle; `dir` NULL or a NUL-terminated string; `applied` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_migrate_dir(
    db: *const hiqlite_db,
    dir: *const c_char,
    applied: *mut c_int,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        unsafe { put(applied, 0) };
        // SAFETY: caller's contract.
        let dir = unsafe { cstr(dir, "dir") }?;
        let list = Migration::from_dir(dir)?;
        let n = block_on(d.client.migrate(&list))??;
        // SAFETY: caller's contract.
        unsafe { put(applied, c_int::try_from(n).unwrap_or(c_int::MAX)) };
        Ok(HIQLITE_OK)
    })
}
