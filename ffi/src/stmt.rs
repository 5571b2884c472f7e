//! Prepared statements: SQL plus bound values, run on the first `hiqlite_step`, then a cursor over
//! the buffered result.

use std::ffi::{c_char, c_double, c_int, c_void, CString};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use engine::{Client, Consistency, Error, ExecResult, Params, Rows, Statement, StatementKind, Value};

use crate::db::{consistency_from_c, hiqlite_db, with_db};
use crate::error::{
    cstr, guard, guard_value, FfiError, FfiResult, HIQLITE_DONE, HIQLITE_INVALID_UTF8, HIQLITE_OK,
    HIQLITE_RANGE, HIQLITE_ROW, HIQLITE_SHUTDOWN,
};
use crate::params::{scan, ParamInfo};
use crate::runtime::block_on;
use crate::tx::TxShared;

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
enum Cursor {
    Before,
    At(usize),
    Done,
}

enum State {
    /// Not run since prepare or reset; bindings may change.
    Ready,
    /// Ran; the result is buffered.
    Ran { rows: Rows, changes: u64, last_id: i64, cursor: Cursor },
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
    params: ParamInfo,
    /// The names of `params`, NUL-terminated for `hiqlite_bind_parameter_name`.
    param_names: Vec<(usize, CString)>,
    values: Vec<Value>,
    kind: Kind,
    consistency: Consistency,
    /// `Some(ttl)`: reads go through the query cache (`None` TTL = the node's default).
    cache: Option<Option<Duration>>,
    state: State,
    /// NUL-terminated column names of the current result (built on first use).
    names: Vec<Vec<u8>>,
    /// NUL-terminated text of the current row's cells (built on first use).
    cells: Vec<Option<Vec<u8>>>,
    errmsg: CString,
}

/// Run `f` on a statement, recording its outcome for `hiqlite_errmsg` (of the statement's
/// database) and `hiqlite_stmt_errmsg`.
fn with_stmt(stmt: *mut hiqlite_stmt, f: impl FnOnce(&mut hiqlite_stmt) -> FfiResult<c_int>) -> c_int {
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

fn value_text(v: &Value) -> Vec<u8> {
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
                    cursor: Cursor::Before,
                }
            }
            Err(e) => {
                let e = FfiError::from(e);
                State::Failed(e.code, e.message)
            }
        };
    }

    fn bind(&mut self, index: c_int, v: Value) -> FfiResult<c_int> {
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

    fn index_by_name(&self, name: *const c_char) -> FfiResult<c_int> {
        // SAFETY: caller's contract: NULL or a NUL-terminated string.
        let name = unsafe { cstr(name, "parameter name") }?;
        self.params.index_of(name).and_then(|i| c_int::try_from(i).ok()).ok_or_else(|| {
            FfiError::new(HIQLITE_RANGE, format!("no parameter named {name} in the statement"))
        })
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
        let (kind, consistency, cache) = (self.kind, self.consistency, self.cache);
        let read = |client: Client, sql: String, params: Params| async move {
            match cache {
                Some(ttl) => client.query_cached_with(&sql, params, consistency, ttl).await,
                None => client.query_with(&sql, params, consistency).await,
            }
        };
        let write = |client: Client, sql: String, params: Params| async move {
            // A remote client's `execute` brings RETURNING rows back together with the counts.
            let e = client.execute(&sql, params).await?;
            Ok((Kind::Write, e.rows, e.rows_affected, e.last_insert_id))
        };
        let outcome = block_on(async move {
            match kind {
                Kind::Read => read(client, sql, params).await.map(|r| (Kind::Read, r, 0, 0)),
                Kind::Write => write(client, sql, params).await,
                Kind::Auto => match read(client.clone(), sql.clone(), params.clone()).await {
                    Ok(rows) => Ok((Kind::Read, rows, 0, 0)),
                    // The read path refuses a writing statement before running it.
                    Err(Error::Sql { code: 8, .. }) => write(client, sql, params).await,
                    Err(e) => Err(e),
                },
            }
        })?;
        self.names.clear();
        self.cells.clear();
        match outcome {
            Ok((learned, rows, changes, last_id)) => {
                self.kind = learned;
                self.state = State::Ran { rows, changes, last_id, cursor: Cursor::Before };
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

    fn result(&self) -> Option<&Rows> {
        match &self.state {
            State::Ran { rows, .. } => Some(rows),
            _ => None,
        }
    }

    fn cell(&self, col: c_int) -> Option<&Value> {
        let State::Ran { rows, cursor: Cursor::At(i), .. } = &self.state else { return None };
        rows.rows.get(*i)?.get(usize::try_from(col).ok()?)
    }

    /// The NUL-terminated text of a cell, kept until the cursor moves.
    fn cell_text(&mut self, col: c_int) -> Option<&[u8]> {
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

// ---------------------------------------------------------------------------------------------
// Binding. Indexes are 1-based, as in SQLite. Values are copied: the caller keeps ownership of
// what it passes. Binding is allowed after prepare or reset (else HIQLITE_MISUSE); an index out
// of range or an unknown name is HIQLITE_RANGE. Unbound parameters are NULL.

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

#[allow(dead_code)]
fn _assert_send() {
    fn is<T: Send>() {}
    is::<hiqlite_stmt>();
}
