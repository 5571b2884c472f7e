//! One-shot calls on a database handle: `hiqlite_exec`, `hiqlite_query_json`, and running
//! prepared statements together with `hiqlite_transaction` / `hiqlite_batch`.

use std::ffi::{c_char, c_int};

use crate::db::{consistency_from_c, hiqlite_db, put, with_db};
use crate::error::{cstr, to_c_string, FfiError, FfiResult, HIQLITE_OK};
use crate::runtime::block_on;
use crate::stmt::hiqlite_stmt;

/// Run SQL that writes, through Raft (without parameters; several statements separated by `;`
/// run as one transaction). `changes` receives the rows changed by the last statement and
/// `last_insert_id` the last inserted rowid; either may be NULL.
///
/// # Safety
/// `db` is NULL or a live handle; `sql` NULL or NUL-terminated; `changes` and `last_insert_id`
/// NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_exec(
    db: *const hiqlite_db,
    sql: *const c_char,
    changes: *mut i64,
    last_insert_id: *mut i64,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        unsafe {
            put(changes, 0);
            put(last_insert_id, 0);
        }
        // SAFETY: caller's contract.
        let sql = unsafe { cstr(sql, "sql") }?;
        let r = block_on(d.client.execute(sql, ()))??;
        // SAFETY: caller's contract.
        unsafe {
            put(changes, i64::try_from(r.rows_affected).unwrap_or(i64::MAX));
            put(last_insert_id, r.last_insert_id);
        }
        Ok(HIQLITE_OK)
    })
}

/// Run a read-only query and return its result as rqlite's `/db/query` does:
/// `{"results":[{"columns":[...],"types":[...],"values":[[...],...]}]}` (`values` left out when
/// there is no row; BLOBs base64-encoded).
///
/// `params_json` is NULL (no parameters), a JSON array (positional) or a JSON object (named; keys
/// with or without their `:`/`@`/`$` prefix); BLOB parameters are arrays of byte values.
/// `consistency` is one of `HIQLITE_CONSISTENCY_*`. A statement that writes is refused with
/// `HIQLITE_READONLY`. On success `*json` is a NUL-terminated string owned by the caller (free it
/// with `hiqlite_free`); on error it is NULL.
///
/// # Safety
/// `db` is NULL or a live handle; `sql` and `params_json` NULL or NUL-terminated; `json` NULL or
/// writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_query_json(
    db: *const hiqlite_db,
    sql: *const c_char,
    params_json: *const c_char,
    consistency: c_int,
    json: *mut *mut c_char,
) -> c_int {
    with_db(db, |d| {
        if json.is_null() {
            return Err(FfiError::misuse("json out-pointer is NULL"));
        }
        // SAFETY: non-NULL, writable per the contract.
        unsafe { *json = std::ptr::null_mut() };
        // SAFETY: caller's contract.
        let sql = unsafe { cstr(sql, "sql") }?;
        let params = if params_json.is_null() {
            engine::Params::None
        } else {
            // SAFETY: caller's contract.
            crate::json::params(unsafe { cstr(params_json, "params_json") }?)?
        };
        let level = consistency_from_c(consistency)?;
        let rows = block_on(d.client.query_with(sql, params, level))??;
        // SAFETY: as above.
        unsafe { *json = to_c_string(&crate::json::query_answer(&rows)) };
        Ok(HIQLITE_OK)
    })
}

/// Collect the statements of a transaction or batch: all non-NULL, distinct, of `db`, and ready
/// to run (freshly prepared or reset).
///
/// # Safety
/// `stmts` is NULL (only with `n == 0`) or readable for `n` pointers, each NULL or a live
/// statement not used by another thread.
unsafe fn stmts_arg<'a>(
    db: &hiqlite_db,
    stmts: *const *mut hiqlite_stmt,
    n: usize,
) -> FfiResult<Vec<&'a mut hiqlite_stmt>> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if stmts.is_null() {
        return Err(FfiError::misuse("stmts is NULL"));
    }
    // SAFETY: readable for n pointers per the contract.
    let ptrs = unsafe { std::slice::from_raw_parts(stmts, n) };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(n);
    for (i, p) in ptrs.iter().enumerate() {
        if p.is_null() {
            return Err(FfiError::misuse(format!("stmts[{i}] is NULL")));
        }
        // Two &mut to one statement would be undefined behaviour; refuse the call instead.
        if !seen.insert(*p as usize) {
            return Err(FfiError::misuse(format!("stmts[{i}] appears twice")));
        }
        // SAFETY: non-NULL, live, distinct (checked above), single-threaded per the contract.
        let s = unsafe { &mut **p };
        if s.db_id() != db.id {
            return Err(FfiError::misuse(format!("stmts[{i}] was prepared on another handle")));
        }
        if s.on_a_transaction() {
            return Err(FfiError::misuse(format!(
                "stmts[{i}] was prepared on an interactive transaction (hiqlite_tx_prepare); step it instead"
            )));
        }
        if !s.is_ready() {
            return Err(FfiError::misuse(format!("stmts[{i}] already ran; call hiqlite_reset first")));
        }
        out.push(s);
    }
    Ok(out)
}

/// Run prepared (and bound) statements as one transaction through Raft: all are applied or, on
/// the first error, none; that error is returned. On success each statement holds its own
/// result: `hiqlite_stmt_changes`, `hiqlite_stmt_last_insert_id`, and its `RETURNING` rows through
/// `hiqlite_step` (which returns `HIQLITE_DONE` at once for a statement without rows); reset a
/// statement before running it again (a remote client gets counts, not RETURNING rows, here).
/// On failure the statements are left ready to run.
///
/// # Safety
/// `db` is NULL or a live handle; `stmts` NULL (with `n == 0`) or an array of `n` live statements
/// of `db`, all different.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_transaction(
    db: *const hiqlite_db,
    stmts: *const *mut hiqlite_stmt,
    n: usize,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        let mut list = unsafe { stmts_arg(d, stmts, n) }?;
        let statements: Vec<engine::Statement> = list.iter().map(|s| s.statement()).collect();
        let results = block_on(d.client.transaction(statements))??;
        for (s, r) in list.iter_mut().zip(results) {
            s.set_result(Ok(r));
        }
        Ok(HIQLITE_OK)
    })
}

/// Run prepared statements in one Raft log entry but independently (rqlite's default): a
/// statement that fails is undone alone, the others are applied. Returns `HIQLITE_OK` when the
/// batch was applied, whatever its statements did; `codes` (NULL or room for `n` ints) receives
/// each statement's code (`HIQLITE_OK` or its error). Each statement holds its result as after
/// `hiqlite_transaction`; a failed one returns its error from `hiqlite_step` (message in
/// `hiqlite_stmt_errmsg` after that step).
///
/// # Safety
/// As `hiqlite_transaction`; `codes` NULL or writable for `n` ints.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_batch(
    db: *const hiqlite_db,
    stmts: *const *mut hiqlite_stmt,
    n: usize,
    codes: *mut c_int,
) -> c_int {
    with_db(db, |d| {
        // SAFETY: caller's contract.
        let mut list = unsafe { stmts_arg(d, stmts, n) }?;
        let statements: Vec<engine::Statement> = list.iter().map(|s| s.statement()).collect();
        let results = block_on(d.client.batch(statements))??;
        for (i, (s, r)) in list.iter_mut().zip(results).enumerate() {
            let code = match &r {
                Ok(_) => HIQLITE_OK,
                Err(e) => FfiError::from(e.clone()).code,
            };
            if !codes.is_null() {
                // SAFETY: writable for n ints per the contract.
                unsafe { *codes.add(i) = code };
            }
            s.set_result(r);
        }
        Ok(HIQLITE_OK)
    })
}
