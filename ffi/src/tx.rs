//! Interactive transactions: `hiqlite_begin`, statements prepared on a transaction,
//! `hiqlite_tx_exec`, `hiqlite_commit` and `hiqlite_rollback`.
//!
//! The handle (`hiqlite_tx`) is a box around an `Arc<TxShared>`: statements prepared on the
//! transaction and the database handle (which rolls open transactions back when it is closed)
//! hold the same `TxShared`, so ending the transaction never leaves them dangling: they find it
//! ended and answer an error code.

use std::ffi::{c_char, c_int};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use engine::{Client, ExecResult, Params, Transaction};

use crate::db::{hiqlite_db, with_db};
use crate::error::{cstr, guard, FfiError, FfiResult, HIQLITE_MISUSE, HIQLITE_OK, HIQLITE_SHUTDOWN};
use crate::runtime::block_on;
use crate::stmt::hiqlite_stmt;

/// How a transaction stopped being usable.
#[derive(Debug, Clone, Copy)]
enum Ended {
    Committed,
    RolledBack,
    /// `hiqlite_close` rolled it back.
    Closed,
}

enum TxState {
    Open(Transaction),
    Ended(Ended),
}

/// The transaction itself, shared by its handle, the statements prepared on it and its
/// database's list of open transactions.
pub(crate) struct TxShared {
    state: Mutex<TxState>,
}

fn ended_error(how: Ended) -> FfiError {
    match how {
        Ended::Committed | Ended::RolledBack => FfiError::new(
            HIQLITE_MISUSE,
            format!(
                "the statement's transaction has ended ({}); a statement prepared on a transaction \
                 can only be finalized after hiqlite_commit or hiqlite_rollback",
                if matches!(how, Ended::Committed) { "committed" } else { "rolled back" }
            ),
        ),
        Ended::Closed => FfiError::new(
            HIQLITE_SHUTDOWN,
            "the transaction's database handle was closed; the transaction was rolled back",
        ),
    }
}

impl TxShared {
    fn lock(&self) -> MutexGuard<'_, TxState> {
        // A panic caught at the boundary while the lock was held leaves the state as it was.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run one statement inside the transaction (its reads see its writes).
    pub(crate) fn exec(&self, sql: &str, params: Params) -> FfiResult<ExecResult> {
        let state = self.lock();
        match &*state {
            TxState::Open(tx) => Ok(block_on(tx.execute(sql, params))??),
            TxState::Ended(how) => Err(ended_error(*how)),
        }
    }

    /// End the transaction: commit or roll back.
    fn end(&self, commit: bool) -> FfiResult<()> {
        let mut state = self.lock();
        let now = if commit { Ended::Committed } else { Ended::RolledBack };
        match std::mem::replace(&mut *state, TxState::Ended(now)) {
            TxState::Open(tx) => {
                if commit {
                    block_on(tx.commit())??;
                } else {
                    block_on(tx.rollback())??;
                }
                Ok(())
            }
            // Closing the database rolled it back already: that is what a rollback asks for.
            TxState::Ended(Ended::Closed) if !commit => Ok(()),
            TxState::Ended(how) => {
                *state = TxState::Ended(how);
                Err(ended_error(how))
            }
        }
    }

    /// Roll back on behalf of `hiqlite_close`; errors are not reported (the server rolls an
    /// abandoned transaction back at its idle timeout anyway).
    pub(crate) fn close(&self) {
        let mut state = self.lock();
        if let TxState::Open(tx) = std::mem::replace(&mut *state, TxState::Ended(Ended::Closed)) {
            let _ = block_on(tx.rollback());
        }
    }
}

/// An open interactive transaction on a database (`hiqlite_begin`): SQLite's semantics as one
/// connection sees them. Its statements see its own writes; `SAVEPOINT`, `RELEASE` and
/// `ROLLBACK TO` work; a failed statement leaves it open; it commits as one replicated log entry
/// or not at all. Other writes to the cluster wait while it is open, so keep it short: the
/// leader rolls back a transaction idle for its `transaction_idle_timeout_ms` (default 30 s), and
/// a leader change fails it (`SQLITE_ABORT`, nothing applied). As in SQLite, a statement whose
/// conflict clause is ROLLBACK (or `RAISE(ROLLBACK)`) ends it; later statements then fail, and
/// the handle is released with `hiqlite_rollback`.
///
/// Used by one thread at a time (it may move between threads); statements prepared on it run
/// one at a time, in the order they are stepped. Owned by the caller from `hiqlite_begin` until
/// `hiqlite_commit` or `hiqlite_rollback`, which end the transaction and release the handle.
#[allow(non_camel_case_types)]
pub struct hiqlite_tx {
    /// The database handle's id: failures on the transaction are that handle's messages.
    db_id: u64,
    client: Client,
    closed: Arc<AtomicBool>,
    shared: Arc<TxShared>,
}

/// Run `f` on a transaction handle, recording its outcome as the database's message.
fn with_tx(tx: *mut hiqlite_tx, f: impl FnOnce(&hiqlite_tx) -> FfiResult<c_int>) -> c_int {
    // SAFETY: the caller passes NULL or a live handle.
    let t = unsafe { tx.as_ref() };
    guard(t.map(|t| t.db_id), || match t {
        Some(t) => f(t),
        None => Err(FfiError::misuse("transaction handle is NULL")),
    })
}

/// Begin an interactive transaction on `db` (an embedded node or a remote client: the
/// transaction runs on the cluster's leader either way).
///
/// Waits while another transaction is open, up to the leader's `busy_timeout_ms` (default 5 s),
/// then fails with SQLite's `SQLITE_BUSY` (5). On success `*tx` is a new handle owned by the
/// caller: end it with `hiqlite_commit` or `hiqlite_rollback`, which also release it (there is
/// no other way to free it). On error `*tx` is NULL.
///
/// Messages of failed calls on the transaction and on statements prepared on it are the
/// database's: `hiqlite_errmsg(db)` on the calling thread (or `hiqlite_errmsg(NULL)`).
///
/// Closing `db` (`hiqlite_close`) while the transaction is open rolls it back; the handle stays
/// valid only to be released: `hiqlite_rollback` then returns `HIQLITE_OK`, `hiqlite_commit`
/// returns `HIQLITE_SHUTDOWN` (both release it), any other call `HIQLITE_SHUTDOWN`.
///
/// # Safety
/// `db` is NULL or a live handle; `tx` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_begin(db: *const hiqlite_db, tx: *mut *mut hiqlite_tx) -> c_int {
    // NULL on every error, a NULL `db` included.
    if !tx.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { *tx = std::ptr::null_mut() };
    }
    with_db(db, |d| {
        if tx.is_null() {
            return Err(FfiError::misuse("tx out-pointer is NULL"));
        }
        let t = block_on(d.client.begin())??;
        let shared = Arc::new(TxShared { state: Mutex::new(TxState::Open(t)) });
        d.register_tx(&shared);
        let handle =
            Box::new(hiqlite_tx { db_id: d.id, client: d.client.clone(), closed: d.closed.clone(), shared });
        // SAFETY: as above.
        unsafe { *tx = Box::into_raw(handle) };
        Ok(HIQLITE_OK)
    })
}

/// Prepare `sql` (one statement, with parameters as `hiqlite_prepare`) to run inside `tx`.
///
/// Stepping it runs it in the transaction, whatever it does: writes, reads (which see the
/// transaction's writes), `SAVEPOINT`/`RELEASE`/`ROLLBACK TO`. Its rows are read with the usual
/// `hiqlite_column_*` functions; `hiqlite_stmt_changes` and `hiqlite_stmt_last_insert_id` give
/// what a write did (for a remote client, a statement that returns rows, e.g. with
/// `RETURNING`, reports them only when the server sends its counts along with the rows; else
/// 0). Consistency and cache settings are ignored (a transaction always reads its own
/// state), and such a statement cannot be passed to `hiqlite_transaction` or `hiqlite_batch`.
///
/// On success `*stmt` is a new statement owned by the caller (release it with
/// `hiqlite_finalize`, before or after the transaction ends). Once the transaction has ended,
/// the statement is only good for `hiqlite_finalize`: running it (`hiqlite_step` after prepare
/// or reset) returns `HIQLITE_MISUSE`, or `HIQLITE_SHUTDOWN` when closing the database ended
/// the transaction. Rows it already returned stay readable until then. On error `*stmt` is NULL.
///
/// # Safety
/// `tx` is NULL or a live transaction; `sql` NULL or NUL-terminated; `stmt` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_tx_prepare(
    tx: *mut hiqlite_tx,
    sql: *const c_char,
    stmt: *mut *mut hiqlite_stmt,
) -> c_int {
    // NULL on every error, a NULL `tx` included.
    if !stmt.is_null() {
        // SAFETY: non-NULL and writable per the contract.
        unsafe { *stmt = std::ptr::null_mut() };
    }
    with_tx(tx, |t| {
        if stmt.is_null() {
            return Err(FfiError::misuse("stmt out-pointer is NULL"));
        }
        // SAFETY: caller's contract.
        let sql = unsafe { cstr(sql, "sql") }?;
        let s = hiqlite_stmt::on_tx(t.db_id, t.client.clone(), t.closed.clone(), t.shared.clone(), sql)?;
        // SAFETY: as above.
        unsafe { *stmt = Box::into_raw(Box::new(s)) };
        Ok(HIQLITE_OK)
    })
}

/// Run one statement without parameters inside `tx` (rows it returns are dropped: read them
/// through `hiqlite_tx_prepare`). `changes` receives the rows it changed and `last_insert_id`
/// the last inserted rowid; either may be NULL. A failed statement returns its SQLite code and
/// leaves the transaction open, as in SQLite.
///
/// # Safety
/// `tx` is NULL or a live transaction; `sql` NULL or NUL-terminated; `changes` and
/// `last_insert_id` NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_tx_exec(
    tx: *mut hiqlite_tx,
    sql: *const c_char,
    changes: *mut i64,
    last_insert_id: *mut i64,
) -> c_int {
    with_tx(tx, |t| {
        let put = |out: *mut i64, v: i64| {
            if !out.is_null() {
                // SAFETY: non-NULL and writable per the contract.
                unsafe { *out = v };
            }
        };
        put(changes, 0);
        put(last_insert_id, 0);
        // SAFETY: caller's contract.
        let sql = unsafe { cstr(sql, "sql") }?;
        if engine::statement_kind(sql) == engine::StatementKind::Empty {
            return Err(FfiError::misuse("sql holds no statement"));
        }
        let r = t.shared.exec(sql, Params::None)?;
        put(changes, i64::try_from(r.rows_affected).unwrap_or(i64::MAX));
        put(last_insert_id, r.last_insert_id);
        Ok(HIQLITE_OK)
    })
}

/// End the handle: commit or roll back, then release it whatever the outcome.
///
/// # Safety
/// `tx` is NULL or a live transaction, given up by the caller.
unsafe fn end(tx: *mut hiqlite_tx, commit: bool) -> c_int {
    if tx.is_null() {
        return guard(None, || Err(FfiError::misuse("transaction handle is NULL")));
    }
    // SAFETY: created by Box::into_raw in hiqlite_begin; the caller gives it up.
    let handle = unsafe { Box::from_raw(tx) };
    guard(Some(handle.db_id), || {
        handle.shared.end(commit)?;
        Ok(HIQLITE_OK)
    })
}

/// Commit `tx` and release the handle (also when the commit fails: the handle is dangling after
/// this call, whatever it returns). On success every statement of the transaction is applied on
/// every node as one log entry, with the results the transaction saw. On an error nothing of it
/// is applied, except `HIQLITE_OUTCOME_UNKNOWN` (the entry may or may not commit). After
/// `hiqlite_close` of its database: `HIQLITE_SHUTDOWN` (it was rolled back). The message is in
/// `hiqlite_errmsg(db)` (or `hiqlite_errmsg(NULL)`) on this thread.
///
/// Statements prepared on the transaction are not released: finalize them (before or after);
/// after this call they can only be finalized. A NULL `tx` is `HIQLITE_MISUSE`; ending a
/// transaction twice is undefined behaviour (the pointer is dangling after the first call).
///
/// # Safety
/// `tx` is NULL or a live transaction not in use by another thread; it is dangling afterwards.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_commit(tx: *mut hiqlite_tx) -> c_int {
    // SAFETY: forwarded caller contract.
    unsafe { end(tx, true) }
}

/// Roll `tx` back (nothing of it is applied) and release the handle (also when the rollback
/// fails to reach the cluster: the leader then rolls it back at its idle timeout). Returns
/// `HIQLITE_OK` as well when closing the database already rolled it back. Statements prepared on
/// it, NULL and double calls: as `hiqlite_commit`.
///
/// # Safety
/// `tx` is NULL or a live transaction not in use by another thread; it is dangling afterwards.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_rollback(tx: *mut hiqlite_tx) -> c_int {
    // SAFETY: forwarded caller contract.
    unsafe { end(tx, false) }
}

#[allow(dead_code)]
fn _assert_send() {
    fn is<T: Send>() {}
    is::<hiqlite_tx>();
    fn shared<T: Send + Sync>() {}
    shared::<TxShared>();
}
