//! Prepared statements: the `hiqlite_stmt` handle and its state; prepare, step, reset, finalize,
//! per-statement settings (consistency, cache) and results (changes, last rowid, errmsg, SQL).
//! Binding is in `bind.rs`, reading columns in `column.rs`.

use std::ffi::{c_char, c_int, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::{Client, Consistency, Error, ExecResult, Params, Rows, Statement, StatementKind, Value};

use crate::db::{consistency_from_c, hiqlite_db, with_db};
use crate::error::{
    cstr, guard, guard_value, FfiError, FfiResult, HIQLITE_DONE, HIQLITE_OK, HIQLITE_ROW, HIQLITE_SHUTDOWN,
};
use crate::params::{scan, ParamInfo};
use crate::runtime::block_on;
use crate::tx::TxShared;

/// `hiqlite_prepare_flags`: decide from the text whether the statement reads or writes (as
/// hiqlite's `statement_kind`: SELECT, VALUES, EXPLAIN, a WITH query, a PRAGMA without `=` read;
/// everything else writes). A read runs on a replica; should SQLite find that it writes after
/// all, it refuses it before running anything and it goes through Raft instead, which is
/// remembered for later runs.
pub const HIQLITE_PREPARE_AUTO: c_int = 0;
/// `hiqlite_prepare_flags`: the statement only reads; it runs on a replica at the statement's
/// consistency level (a write is refused with `HIQLITE_READONLY`).
pub const HIQLITE_PREPARE_READ: c_int = 1;
/// `hiqlite_prepare_flags`: the statement writes; it always goes through Raft (rows of a
/// `RETURNING` clause are stepped through as usual).
pub const HIQLITE_PREPARE_WRITE: c_int = 2;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Auto,
    Read,
    Write,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Cursor {
    Before,
    At(usize),
    Done,
}

pub(crate) enum State {
    /// Not run since prepare or reset; bindings may change.
    Ready,
    /// Ran; the result is buffered.
    Ran { rows: Rows, changes: u64, last_id: i64, log_index: Option<u64>, cursor: Cursor },
    /// Running failed; `hiqlite_step` reports the error again until a reset.
    Failed(c_int, String),
}

/// A prepared statement: SQL text, bound parameters and, once stepped, its buffered result.
///
/// Not thread-safe: use a statement from one thread at a time (it may move between threads).
/// Created by `hiqlite_prepare` (or `hiqlite_tx_prepare`, to run inside an interactive
/// transaction), released by `hiqlite_finalize`.
#[allow(non_camel_case_types)]
pub struct hiqlite_stmt {
    db_id: u64,
    client: Client,
    /// Set when the database handle is closed: the client may still answer, but from a node
    /// that is shutting down.
    closed: Arc<AtomicBool>,
    /// Prepared on an interactive transaction (`hiqlite_tx_prepare`): runs inside it.
    tx: Option<Arc<TxShared>>,
    sql: CString,
    pub(crate) params: ParamInfo,
    /// The names of `params`, NUL-terminated for `hiqlite_bind_parameter_name`.
    pub(crate) param_names: Vec<(usize, CString)>,
    pub(crate) values: Vec<Value>,
    kind: Kind,
    consistency: Consistency,
    /// `Some(ttl)`: reads go through the query cache (`None` TTL = the node's default).
    cache: Option<Option<Duration>>,
    /// Reads wait until the answering node applied this log index, then read locally.
    min_index: Option<u64>,
    pub(crate) state: State,
    /// NUL-terminated column names of the current result (built on first use).
    pub(crate) names: Vec<Vec<u8>>,
    /// NUL-terminated text of the current row's cells (built on first use).
    pub(crate) cells: Vec<Option<Vec<u8>>>,
    errmsg: CString,
}

/// Run `f` on a statement, recording its outcome for `hiqlite_errmsg` (of the statement's
/// database) and `hiqlite_stmt_errmsg`.
pub(crate) fn with_stmt(
    stmt: *mut hiqlite_stmt,
    f: impl FnOnce(&mut hiqlite_stmt) -> FfiResult<c_int>,
) -> c_int {
    // SAFETY: the caller passes NULL or a live statement used by one thread at a time.
    let Some(s) = (unsafe { stmt.as_mut() }) else {
        return guard(None, || Err(FfiError::misuse("statement handle is NULL")));
    };
    let db_id = s.db_id;
    let mut outcome = None;
    let code = guard(Some(db_id), || {
        let r = f(&mut *s);
        if let Err(e) = &r {
            outcome = Some(e.message.clone());
        }
        r
    });
    // A panic inside `f` leaves the statement memory-safe but its message unset; say so.
    s.errmsg = match (code, outcome) {
        (HIQLITE_OK | HIQLITE_ROW | HIQLITE_DONE, _) => c"not an error".to_owned(),
        (_, Some(m)) => CString::new(m.replace('\0', "")).unwrap_or_default(),
        (_, None) => c"internal error".to_owned(),
    };
    code
}

impl hiqlite_stmt {
    fn new(db: &hiqlite_db, sql: &str, kind: Kind) -> FfiResult<Self> {
        Self::build(db.id, db.client.clone(), db.closed.clone(), None, sql, kind)
    }

    /// A statement that runs inside an interactive transaction.
    pub(crate) fn on_tx(
        db_id: u64,
        client: Client,
        closed: Arc<AtomicBool>,
        tx: Arc<TxShared>,
        sql: &str,
    ) -> FfiResult<Self> {
        Self::build(db_id, client, closed, Some(tx), sql, Kind::Write)
    }

    fn build(
        db_id: u64,
        client: Client,
        closed: Arc<AtomicBool>,
        tx: Option<Arc<TxShared>>,
        sql: &str,
        kind: Kind,
    ) -> FfiResult<Self> {
        let params = scan(sql);
        let param_names =
            params.names.iter().filter_map(|(n, i)| CString::new(n.as_str()).ok().map(|c| (*i, c))).collect();
        // Writes known from their text skip the read probe: it would cost a round trip, and on a
        // lagging replica it could fail on a table the cluster already has.
        let kind = match (kind, engine::statement_kind(sql)) {
            (_, StatementKind::Empty) => return Err(FfiError::misuse("sql holds no statement")),
            (Kind::Auto, StatementKind::Read) => Kind::Auto,
            (Kind::Auto, _) => Kind::Write,
            (k, _) => k,
        };
        let consistency = client.default_consistency();
        Ok(hiqlite_stmt {
            db_id,
            client,
            closed,
            tx,
            sql: CString::new(sql).map_err(|_| FfiError::misuse("SQL contains a NUL byte"))?,
            values: vec![Value::Null; params.count],
            params,
            param_names,
            kind,
            consistency,
            cache: None,
            min_index: None,
            state: State::Ready,
            names: Vec::new(),
            cells: Vec::new(),
            errmsg: c"not an error".to_owned(),
        })
    }

    fn sql(&self) -> &str {
        // Built from a &str in `new`.
        self.sql.to_str().unwrap_or_default()
    }

    pub(crate) fn db_id(&self) -> u64 {
        self.db_id
    }

    pub(crate) fn on_a_transaction(&self) -> bool {
        self.tx.is_some()
    }

    pub(crate) fn is_ready(&self) -> bool {
        matches!(self.state, State::Ready)
    }

    fn params_value(&self) -> Params {
        if self.values.is_empty() {
            Params::None
        } else {
            Params::Positional(self.values.clone())
        }
    }

    /// The statement as the core runs it, with the values bound now.
    pub(crate) fn statement(&self) -> Statement {
        Statement::new(self.sql(), self.params_value())
    }

    /// Take the result of a run made elsewhere (transaction, batch).
    pub(crate) fn set_result(&mut self, r: Result<ExecResult, Error>) {
        self.names.clear();
        self.cells.clear();
        self.state = match r {
            Ok(e) => {
                if self.kind == Kind::Auto {
                    self.kind = Kind::Write;
                }
                State::Ran {
                    rows: e.rows,
                    changes: e.rows_affected,
                    last_id: e.last_insert_id,
                    log_index: e.log_index,
                    cursor: Cursor::Before,
                }
            }
            Err(e) => {
                let e = FfiError::from(e);
                State::Failed(e.code, e.message)
            }
        };
    }

    fn run(&mut self) -> FfiResult<()> {
        if self.closed.load(Ordering::Acquire) {
            let e = FfiError::new(HIQLITE_SHUTDOWN, "the statement's database handle was closed");
            self.state = State::Failed(e.code, e.message.clone());
            return Err(e);
        }
        if let Some(tx) = &self.tx {
            let r = tx.exec(self.sql(), self.params_value());
            self.names.clear();
            self.cells.clear();
            return match r {
                Ok(e) => {
                    self.state = State::Ran {
                        rows: e.rows,
                        changes: e.rows_affected,
                        last_id: e.last_insert_id,
                        log_index: e.log_index,
                        cursor: Cursor::Before,
                    };
                    Ok(())
                }
                Err(e) => {
                    self.state = State::Failed(e.code, e.message.clone());
                    Err(e)
                }
            };
        }
        let client = self.client.clone();
        let sql = self.sql().to_owned();
        let params = self.params_value();
        let (kind, consistency, cache, min_index) = (self.kind, self.consistency, self.cache, self.min_index);
        if min_index.is_some() && cache.is_some() && kind != Kind::Write {
            let e = FfiError::misuse(
                "a statement with a minimum log index (hiqlite_stmt_set_min_index) reads locally, not \
                 through the query cache (hiqlite_stmt_set_cache): set one or the other",
            );
            self.state = State::Failed(e.code, e.message.clone());
            return Err(e);
        }
        let read = |client: Client, sql: String, params: Params| async move {
            match (min_index, cache) {
                (Some(at), _) => client.query_at(&sql, params, at).await,
                (None, Some(ttl)) => client.query_cached_with(&sql, params, consistency, ttl).await,
                (None, None) => client.query_with(&sql, params, consistency).await,
            }
        };
        let write = |client: Client, sql: String, params: Params| async move {
            // A remote client's `execute` brings RETURNING rows back together with the counts.
            let e = client.execute(&sql, params).await?;
            Ok((Kind::Write, e.rows, e.rows_affected, e.last_insert_id, e.log_index))
        };
        let outcome = block_on(async move {
            match kind {
                Kind::Read => read(client, sql, params).await.map(|r| (Kind::Read, r, 0, 0, None)),
                Kind::Write => write(client, sql, params).await,
                Kind::Auto => match read(client.clone(), sql.clone(), params.clone()).await {
                    Ok(rows) => Ok((Kind::Read, rows, 0, 0, None)),
                    // The read path refuses a writing statement before running it.
                    Err(Error::Sql { code: 8, .. }) => write(client, sql, params).await,
                    Err(e) => Err(e),
                },
            }
        })?;
        self.names.clear();
        self.cells.clear();
        match outcome {
            Ok((learned, rows, changes, last_id, log_index)) => {
                self.kind = learned;
                self.state = State::Ran { rows, changes, last_id, log_index, cursor: Cursor::Before };
                Ok(())
            }
            Err(e) => {
                let e = FfiError::from(e);
                self.state = State::Failed(e.code, e.message.clone());
                Err(e)
            }
        }
    }

    fn step(&mut self) -> FfiResult<c_int> {
        if self.is_ready() {
            self.run()?;
        }
        match &mut self.state {
            State::Ready => Err(FfiError::misuse("statement did not run")),
            State::Failed(code, msg) => Err(FfiError::new(*code, msg.clone())),
            State::Ran { rows, cursor, .. } => {
                let next = match *cursor {
                    Cursor::Before => 0,
                    Cursor::At(i) => i + 1,
                    Cursor::Done => {
                        return Err(FfiError::misuse(
                            "statement already returned HIQLITE_DONE; call hiqlite_reset to run it again",
                        ))
                    }
                };
                self.cells.clear();
                if next < rows.rows.len() {
                    *cursor = Cursor::At(next);
                    Ok(HIQLITE_ROW)
                } else {
                    *cursor = Cursor::Done;
                    Ok(HIQLITE_DONE)
                }
            }
        }
    }
}

/// Prepare `sql` (one statement; `?`, `?NNN`, `:name`, `@name`, `$name` parameters) on `db`.
///
/// Nothing is sent to the cluster yet: syntax and schema errors are reported by the first
/// `hiqlite_step`; SQL with no statement (only whitespace or comments) is `HIQLITE_MISUSE`. The
/// statement stays valid after `hiqlite_close(db)`: finalize it; running it then fails with
/// `HIQLITE_SHUTDOWN`.
///
/// On success `*stmt` is a new statement owned by the caller (release it with
/// `hiqlite_finalize`); on error `*stmt` is NULL. Same as `hiqlite_prepare_flags` with
/// `HIQLITE_PREPARE_AUTO`.
///
/// # Safety
/// `db` is NULL or a live handle; `sql` is NULL or NUL-terminated; `stmt` is NULL or writable.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_prepare(
    db: *const hiqlite_db,
    sql: *const c_char,
    stmt: *mut *mut hiqlite_stmt,
) -> c_int {
    // SAFETY: forwarded caller contract.
    unsafe { hiqlite_prepare_flags(db, sql, HIQLITE_PREPARE_AUTO, stmt) }
}

/// `hiqlite_prepare` with `flags`: `HIQLITE_PREPARE_AUTO`, `HIQLITE_PREPARE_READ` or
/// `HIQLITE_PREPARE_WRITE` (another value is `HIQLITE_MISUSE`).
///
/// # Safety
/// As `hiqlite_prepare`.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_prepare_flags(
    db: *const hiqlite_db,
    sql: *const c_char,
    flags: c_int,
    stmt: *mut *mut hiqlite_stmt,
) -> c_int {
    with_db(db, |d| {
        if stmt.is_null() {
            return Err(FfiError::misuse("stmt out-pointer is NULL"));
        }
        // SAFETY: non-NULL and writable per the contract.
        unsafe { *stmt = std::ptr::null_mut() };
        let kind = match flags {
            HIQLITE_PREPARE_AUTO => Kind::Auto,
            HIQLITE_PREPARE_READ => Kind::Read,
            HIQLITE_PREPARE_WRITE => Kind::Write,
            other => return Err(FfiError::misuse(format!("unknown prepare flags {other}"))),
        };
        // SAFETY: caller's contract.
        let sql = unsafe { cstr(sql, "sql") }?;
        let s = Box::new(hiqlite_stmt::new(d, sql, kind)?);
        // SAFETY: as above.
        unsafe { *stmt = Box::into_raw(s) };
        Ok(HIQLITE_OK)
    })
}

/// Release a statement and everything it handed out (column pointers). `NULL` is a harmless
/// no-op returning `HIQLITE_OK`. Finalizing the same statement twice is undefined behaviour, as
/// with `sqlite3_finalize` (the pointer is dangling after the first call).
///
/// # Safety
/// `stmt` is NULL or a live statement not in use by another thread.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_finalize(stmt: *mut hiqlite_stmt) -> c_int {
    if stmt.is_null() {
        return HIQLITE_OK;
    }
    guard(None, || {
        // SAFETY: a live statement created by Box::into_raw in hiqlite_prepare_flags.
        drop(unsafe { Box::from_raw(stmt) });
        Ok(HIQLITE_OK)
    })
}

/// Rewind a statement so the next `hiqlite_step` runs it again (a write is applied again). The
/// bindings are kept. `NULL` is a no-op returning `HIQLITE_OK`.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_reset(stmt: *mut hiqlite_stmt) -> c_int {
    if stmt.is_null() {
        return HIQLITE_OK;
    }
    with_stmt(stmt, |s| {
        s.state = State::Ready;
        s.names.clear();
        s.cells.clear();
        Ok(HIQLITE_OK)
    })
}

/// Run the statement (on the first step after prepare or reset, blocking until the cluster
/// answers) and move to the next row of its result.
///
/// Returns `HIQLITE_ROW` when a row is available for the `hiqlite_column_*` functions,
/// `HIQLITE_DONE` when there is none left (a write without `RETURNING` returns `HIQLITE_DONE`
/// at once; see `hiqlite_stmt_changes`), or an error code. A failed statement keeps failing with
/// the same error until `hiqlite_reset`. Stepping again after `HIQLITE_DONE` is `HIQLITE_MISUSE`
/// (call `hiqlite_reset` to run the statement again).
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_step(stmt: *mut hiqlite_stmt) -> c_int {
    with_stmt(stmt, |s| s.step())
}

/// Read with this consistency level: `HIQLITE_CONSISTENCY_LOCAL`, `HIQLITE_CONSISTENCY_LEADER` or
/// `HIQLITE_CONSISTENCY_LINEARIZABLE`. The default is `LOCAL` for an embedded node and the
/// client's consistency (default `LEADER`, so a client reads its own writes) for a remote client.
/// Writes are unaffected, and so are statements prepared on a transaction (they read the
/// transaction's own state).
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_stmt_set_consistency(stmt: *mut hiqlite_stmt, level: c_int) -> c_int {
    with_stmt(stmt, |s| {
        s.consistency = consistency_from_c(level)?;
        Ok(HIQLITE_OK)
    })
}

/// Read through the node's query cache (`enable` non-zero) or not (0, the default). `ttl_ms` is
/// the lifetime of a cached result; 0 takes the node's default (`cache.ttl_ms`). A cached result
/// is never served after a write to a table it read has been applied on that node.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_stmt_set_cache(
    stmt: *mut hiqlite_stmt,
    enable: c_int,
    ttl_ms: u64,
) -> c_int {
    with_stmt(stmt, |s| {
        s.cache = (enable != 0).then(|| (ttl_ms > 0).then(|| Duration::from_millis(ttl_ms)));
        Ok(HIQLITE_OK)
    })
}

/// Reads of this statement wait until the node that answers has applied the Raft log entry
/// `index` (a write's `hiqlite_stmt_log_index` or `hiqlite_last_write_index`, made through any
/// node), then read locally: read-your-writes on any node without a linearizable read. The
/// statement's consistency level does not apply then; with the query cache enabled as well,
/// `hiqlite_step` fails with `HIQLITE_MISUSE`. 0 (the default) turns it off. The wait is bounded
/// by the node's request timeout (`HIQLITE_TIMEOUT`). Writes are unaffected, and so are statements
/// prepared on a transaction.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_stmt_set_min_index(stmt: *mut hiqlite_stmt, index: u64) -> c_int {
    with_stmt(stmt, |s| {
        s.min_index = (index > 0).then_some(index);
        Ok(HIQLITE_OK)
    })
}

/// The Raft log index of the statement's last run if it was a write applied through the log,
/// else 0 (a read, a statement not run yet or failed, a statement inside an interactive
/// transaction: its commit is one later entry). Pass it to `hiqlite_stmt_set_min_index` of a
/// read on any node to see the write there.
///
/// # Safety
/// `stmt` is NULL (returns 0) or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_stmt_log_index(stmt: *const hiqlite_stmt) -> u64 {
    guard_value(0, || {
        // SAFETY: caller's contract.
        match unsafe { stmt.as_ref() }.map(|s| &s.state) {
            Some(State::Ran { log_index, .. }) => log_index.unwrap_or(0),
            _ => 0,
        }
    })
}

/// Rows changed by the statement's last run if it was a write (SQLite's `changes()`), else 0.
/// (For a remote client, a statement with RETURNING reports its counts only when the server
/// sends them along with the rows; else 0 here.)
///
/// # Safety
/// `stmt` is NULL (returns 0) or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_stmt_changes(stmt: *const hiqlite_stmt) -> i64 {
    guard_value(0, || {
        // SAFETY: caller's contract.
        match unsafe { stmt.as_ref() }.map(|s| &s.state) {
            Some(State::Ran { changes, .. }) => i64::try_from(*changes).unwrap_or(i64::MAX),
            _ => 0,
        }
    })
}

/// The rowid of the last row inserted by the statement's last run if it was a write, else 0
/// (for a remote client's statement with RETURNING, as `hiqlite_stmt_changes`).
///
/// # Safety
/// `stmt` is NULL (returns 0) or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_stmt_last_insert_id(stmt: *const hiqlite_stmt) -> i64 {
    guard_value(0, || {
        // SAFETY: caller's contract.
        match unsafe { stmt.as_ref() }.map(|s| &s.state) {
            Some(State::Ran { last_id, .. }) => *last_id,
            _ => 0,
        }
    })
}

/// The message of the statement's last failed call, or "not an error". The string is owned by
/// the statement and valid until the next call on it. Never NULL (for a NULL `stmt` a static
/// text).
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_stmt_errmsg(stmt: *const hiqlite_stmt) -> *const c_char {
    guard_value(c"internal error".as_ptr(), || {
        // SAFETY: caller's contract.
        match unsafe { stmt.as_ref() } {
            Some(s) => s.errmsg.as_ptr(),
            None => c"statement handle is NULL".as_ptr(),
        }
    })
}

/// The statement's SQL text, owned by the statement (valid until `hiqlite_finalize`). NULL for a
/// NULL `stmt`.
///
/// # Safety
/// `stmt` is NULL or a live statement.
#[no_mangle]
pub unsafe extern "C" fn hiqlite_sql(stmt: *const hiqlite_stmt) -> *const c_char {
    guard_value(std::ptr::null(), || {
        // SAFETY: caller's contract.
        unsafe { stmt.as_ref() }.map_or(std::ptr::null(), |s| s.sql.as_ptr())
    })
}

#[allow(dead_code)]
fn _assert_send() {
    fn is<T: Send>() {}
    is::<hiqlite_stmt>();
}
