//! Transactions as one SQLite connection has them.
//!
//! Two things hold an interactive transaction of the core (`hiqlite::Transaction`):
//! - a `Transaction` object (`db.begin()`, `db.transaction(fn)`): its statements run inside it;
//! - the `Database` itself, once `BEGIN` (or `SAVEPOINT` outside a transaction) went through
//!   `exec`/`run`: the connection-level transaction. Until `COMMIT`/`ROLLBACK` every statement of
//!   that `Database` runs inside it, so its reads see its writes, as on one SQLite connection.
//!
//! Both are a [`Session`]: jobs run one at a time **in the order they were called** on the
//! JavaScript thread (a [`Queue`] of tickets taken when the call is made, not when its task first
//! runs), each against the open transaction or, for a `Database` with none open, as the plain
//! call it would have been. A `Database` has a session only while one may matter: from the first
//! transaction-control statement until it is idle with no transaction open; without one its calls
//! take the plain, concurrent path.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hiqlite::{Client, ExecResult, Params, Rows, StatementKind};
use tokio::sync::oneshot;

use crate::convert::ReadOptions;
use crate::error::Failure;
use crate::Shared;

/// A call's work, ready to run on the runtime.
pub(crate) type Job<T> = Pin<Box<dyn Future<Output = Result<T, Failure>> + Send + 'static>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Hands out tickets in call order; a ticket's turn comes when the previous ticket is dropped.
#[derive(Default)]
struct Queue {
    last: Mutex<Option<oneshot::Receiver<()>>>,
}

struct Ticket {
    prev: Option<oneshot::Receiver<()>>,
    _done: oneshot::Sender<()>,
}

impl Queue {
    fn ticket(&self) -> Ticket {
        let (done, next) = oneshot::channel();
        let prev = lock(&self.last).replace(next);
        Ticket { prev, _done: done }
    }
}

impl Ticket {
    async fn turn(&mut self) {
        if let Some(prev) = self.prev.take() {
            // Sent or dropped: either way the previous job is over.
            let _ = prev.await;
        }
    }
}

/// What a session knows about its transaction.
#[derive(Default)]
pub(crate) struct TxState {
    tx: Option<hiqlite::Transaction>,
    /// The open savepoints, outermost first.
    savepoints: Vec<String>,
    /// Begun by `SAVEPOINT` (not `BEGIN`): releasing its outermost savepoint commits it.
    implicit: bool,
    /// The runtime, for rolling back a transaction dropped on the JavaScript thread.
    handle: Option<tokio::runtime::Handle>,
}

impl TxState {
    pub(crate) fn open(tx: hiqlite::Transaction) -> TxState {
        let mut s = TxState::default();
        s.set(tx, false);
        s
    }

    fn set(&mut self, tx: hiqlite::Transaction, implicit: bool) {
        self.tx = Some(tx);
        self.implicit = implicit;
        self.savepoints.clear();
        self.handle = tokio::runtime::Handle::try_current().ok();
    }

    fn take(&mut self) -> Option<hiqlite::Transaction> {
        self.savepoints.clear();
        self.implicit = false;
        self.tx.take()
    }
}

impl Drop for TxState {
    fn drop(&mut self) {
        // The core's transaction rolls itself back when dropped inside the runtime; a
        // `Transaction` object collected by the garbage collector is dropped outside it.
        if let (Some(tx), Some(h)) = (self.tx.take(), self.handle.as_ref()) {
            let _entered = h.enter();
            drop(tx);
        }
    }
}

/// A transaction's holder: a `Transaction` object, or a `Database` between `BEGIN` and `COMMIT`.
#[derive(Default)]
pub(crate) struct Session {
    queue: Queue,
    state: tokio::sync::Mutex<TxState>,
    /// A transaction is open (as of the last job that finished).
    open: AtomicBool,
    /// Jobs queued or running on a `Database`'s session; changed under `Shared::conn`.
    pending: AtomicUsize,
}

impl Session {
    pub(crate) fn with(state: TxState) -> Session {
        let open = state.tx.is_some();
        Session { state: tokio::sync::Mutex::new(state), open: AtomicBool::new(open), ..Default::default() }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    /// Roll back whatever is open (closing the database).
    pub(crate) async fn abandon(&self) {
        let tx = self.state.lock().await.take();
        self.open.store(false, Ordering::Release);
        if let Some(tx) = tx {
            let _ = tx.rollback().await;
        }
    }
}

/// One call of the API, as a session or the plain path runs it.
pub(crate) enum Op {
    /// `get`/`all`/`iterate`/`query`: rows.
    Read { sql: Arc<str>, params: Params, opts: ReadOptions, kind: Arc<AtomicU8> },
    /// `run`/`execute`.
    Write { sql: Arc<str>, params: Params },
    /// `exec`: SQL text without parameters, possibly several statements.
    Script { sql: String },
    /// `batch`.
    Batch { stmts: Vec<hiqlite::Statement>, transaction: bool },
    /// `db.begin()`: a transaction of its own.
    Begin,
    /// `tx.commit()` / `tx.rollback()`.
    End { commit: bool },
}

/// What a job resolves to.
pub(crate) enum Out {
    Rows(Rows),
    Exec(ExecResult),
    Batch(Vec<Result<ExecResult, hiqlite::Error>>),
    Tx(TxState),
    Done,
}

impl Out {
    pub(crate) fn rows(self) -> Result<Rows, Failure> {
        match self {
            Out::Rows(r) => Ok(r),
            Out::Exec(r) => Ok(r.rows),
            _ => Ok(Rows::default()),
        }
    }

    pub(crate) fn exec(self) -> Result<ExecResult, Failure> {
        match self {
            Out::Exec(r) => Ok(r),
            Out::Rows(rows) => Ok(ExecResult { rows, ..Default::default() }),
            _ => Ok(ExecResult::default()),
        }
    }

    pub(crate) fn batch(self) -> Result<Vec<Result<ExecResult, hiqlite::Error>>, Failure> {
        match self {
            Out::Batch(b) => Ok(b),
            _ => Err(Failure::invalid("internal: a batch answered with something else")),
        }
    }

    pub(crate) fn tx(self) -> Result<TxState, Failure> {
        match self {
            Out::Tx(t) => Ok(t),
            _ => Err(Failure::invalid("internal: begin answered with something else")),
        }
    }
}

fn is_control(kind: StatementKind) -> bool {
    matches!(
        kind,
        StatementKind::Begin | StatementKind::Commit | StatementKind::Rollback | StatementKind::Savepoint
    )
}

/// A quick look for the words of transaction control before splitting a script.
fn mentions_control(sql: &str) -> bool {
    let b = sql.as_bytes();
    ["BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"]
        .iter()
        .any(|w| b.windows(w.len()).any(|x| x.eq_ignore_ascii_case(w.as_bytes())))
}

/// Split SQL text into its statements where SQLite itself would (`sqlite3_complete` decides
/// whether a `;` ends one, which keeps trigger bodies, literals and comments whole).
pub(crate) fn split_statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in sql.match_indices(';') {
        let piece = &sql[start..=i];
        let Ok(c) = std::ffi::CString::new(piece) else { break };
        // SAFETY: `c` is a NUL-terminated string that outlives the call.
        if unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) } != 0 {
            out.push(piece);
            start = i + 1;
        }
    }
    if !sql[start..].trim().is_empty() {
        out.push(&sql[start..]);
    }
    out
}

impl Op {
    /// Does this call open, end or nest a transaction?
    fn is_control(&self) -> bool {
        match self {
            Op::Read { sql, .. } | Op::Write { sql, .. } => is_control(hiqlite::statement_kind(sql)),
            Op::Script { sql } => {
                mentions_control(sql)
                    && split_statements(sql).iter().any(|s| is_control(hiqlite::statement_kind(s)))
            }
            _ => false,
        }
    }
}

pub(crate) fn sql_error(message: impl Into<String>) -> Failure {
    Failure::from(hiqlite::Error::Sql { code: rusqlite::ffi::SQLITE_ERROR, message: message.into() })
}

fn ended() -> Failure {
    Failure::invalid("the transaction has already ended")
}

/// The name a `SAVEPOINT`, `RELEASE` or `ROLLBACK TO` statement names: its last token, unquoted.
fn savepoint_name(sql: &str) -> String {
    let s = sql.trim_end_matches(|c: char| c.is_whitespace() || c == ';');
    // Drop a trailing `-- comment` line or `/* comment */` the statement may carry.
    let s = match s.rfind("--") {
        Some(i) if !s[i..].contains(['"', '\'', '`', ']']) => s[..i].trim_end(),
        _ => s,
    };
    let s = match s.strip_suffix("*/").and_then(|t| t.rfind("/*").map(|i| &t[..i])) {
        Some(t) => t.trim_end(),
        None => s,
    };
    let (close, open, unescape) = match s.chars().last() {
        Some('"') => ('"', '"', "\"\""),
        Some('\'') => ('\'', '\'', "''"),
        Some('`') => ('`', '`', "``"),
        Some(']') => (']', '[', "]]"),
        _ => {
            let start =
                s.rfind(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$')).map_or(0, |i| i + 1);
            return s[start..].to_string();
        }
    };
    // Walk back to the opening quote, skipping doubled quotes.
    let body = &s[..s.len() - close.len_utf8()];
    let mut i = body.len();
    let bytes = body.as_bytes();
    while i > 0 {
        i -= 1;
        if bytes[i] == open as u8 {
            if open == close && i > 0 && bytes[i - 1] == open as u8 {
                i -= 1;
                continue;
            }
            return body[i + 1..].replace(unescape, &close.to_string());
        }
    }
    body.to_string()
}

/// What a savepoint statement does.
enum SavepointOp {
    Push,
    Release,
    RollbackTo,
}

fn savepoint_op(sql: &str) -> SavepointOp {
    let first = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .split(|c: char| !c.is_ascii_alphanumeric())
        .next()
        .unwrap_or("");
    if first.eq_ignore_ascii_case("SAVEPOINT") {
        SavepointOp::Push
    } else if first.eq_ignore_ascii_case("RELEASE") {
        SavepointOp::Release
    } else {
        SavepointOp::RollbackTo
    }
}

/// `sql` (any statements but transaction control) inside the open transaction, or plain.
async fn write_text(state: &TxState, client: Option<&Client>, sql: &str) -> Result<ExecResult, Failure> {
    match (&state.tx, client) {
        (Some(tx), _) => Ok(tx.execute(sql, Params::None).await?),
        (None, Some(c)) => Ok(c.execute(sql, Params::None).await?),
        (None, None) => Err(ended()),
    }
}

/// Run SQL text that may open, end or nest a transaction, statement by statement, with
/// SQLite's semantics (and its messages for misuse).
async fn script(state: &mut TxState, client: Option<&Client>, sql: &str) -> Result<ExecResult, Failure> {
    let pieces = split_statements(sql);
    if !pieces.iter().any(|s| is_control(hiqlite::statement_kind(s))) {
        return write_text(state, client, sql).await;
    }
    let mut last = ExecResult::default();
    for piece in pieces {
        match hiqlite::statement_kind(piece) {
            StatementKind::Empty => continue,
            StatementKind::Begin => {
                if state.tx.is_some() {
                    return Err(sql_error("cannot start a transaction within a transaction"));
                }
                let c = client.ok_or_else(ended)?;
                state.set(c.begin().await?, false);
                last = ExecResult::default();
            }
            StatementKind::Commit => {
                let tx = state.take().ok_or_else(|| sql_error("cannot commit - no transaction is active"))?;
                tx.commit().await?;
                last = ExecResult::default();
            }
            StatementKind::Rollback => {
                let tx =
                    state.take().ok_or_else(|| sql_error("cannot rollback - no transaction is active"))?;
                tx.rollback().await?;
                last = ExecResult::default();
            }
            StatementKind::Savepoint => {
                savepoint(state, client, piece).await?;
                last = ExecResult::default();
            }
            _ => last = write_text(state, client, piece).await?,
        }
    }
    Ok(last)
}

async fn savepoint(state: &mut TxState, client: Option<&Client>, sql: &str) -> Result<(), Failure> {
    let name = savepoint_name(sql);
    let op = savepoint_op(sql);
    let Some(tx) = &state.tx else {
        return match op {
            // As in SQLite: a SAVEPOINT outside a transaction begins one, which releasing it
            // commits.
            SavepointOp::Push => {
                let c = client.ok_or_else(ended)?;
                let tx = c.begin().await?;
                if let Err(e) = tx.execute(sql, Params::None).await {
                    let _ = tx.rollback().await;
                    return Err(e.into());
                }
                state.set(tx, true);
                state.savepoints.push(name);
                Ok(())
            }
            _ => Err(sql_error(format!("no such savepoint: {name}"))),
        };
    };
    tx.execute(sql, Params::None).await?;
    let found = state.savepoints.iter().rposition(|s| s.eq_ignore_ascii_case(&name));
    match (op, found) {
        (SavepointOp::Push, _) => state.savepoints.push(name),
        (SavepointOp::Release, Some(i)) => {
            state.savepoints.truncate(i);
            if state.savepoints.is_empty() && state.implicit {
                if let Some(tx) = state.take() {
                    tx.commit().await?;
                }
            }
        }
        (SavepointOp::RollbackTo, Some(i)) => state.savepoints.truncate(i + 1),
        // SQLite accepted a name this side does not know (it cannot, but stay safe).
        (_, None) => {}
    }
    Ok(())
}

/// A call on the plain path: no transaction involved.
pub(crate) async fn plain(client: Client, op: Op) -> Result<Out, Failure> {
    Ok(match op {
        Op::Read { sql, params, opts, kind } => {
            Out::Exec(crate::read(client, sql, params, opts, kind).await?)
        }
        Op::Write { sql, params } => Out::Exec(client.execute(&sql, params).await?),
        Op::Script { sql } => Out::Exec(client.execute(&sql, Params::None).await?),
        Op::Batch { stmts, transaction } => Out::Batch(if transaction {
            client.transaction(stmts).await?.into_iter().map(Ok).collect()
        } else {
            client.batch(stmts).await?
        }),
        Op::Begin => Out::Tx(TxState::open(client.begin().await?)),
        Op::End { .. } => return Err(ended()),
    })
}

const BATCH_SAVEPOINT: &str = "hiqlite_node_batch";

/// A batch inside a transaction: `transaction: true` in a savepoint (all or none).
async fn batch_in(
    tx: &hiqlite::Transaction,
    stmts: Vec<hiqlite::Statement>,
    transaction: bool,
) -> Result<Vec<Result<ExecResult, hiqlite::Error>>, Failure> {
    let mut out = Vec::with_capacity(stmts.len());
    if !transaction {
        for s in stmts {
            out.push(tx.execute(&s.sql, s.params).await);
        }
        return Ok(out);
    }
    tx.execute(&format!("SAVEPOINT {BATCH_SAVEPOINT}"), Params::None).await?;
    for s in stmts {
        match tx.execute(&s.sql, s.params).await {
            Ok(r) => out.push(Ok(r)),
            Err(e) => {
                let _ = tx.execute(&format!("ROLLBACK TO {BATCH_SAVEPOINT}"), Params::None).await;
                let _ = tx.execute(&format!("RELEASE {BATCH_SAVEPOINT}"), Params::None).await;
                return Err(e.into());
            }
        }
    }
    tx.execute(&format!("RELEASE {BATCH_SAVEPOINT}"), Params::None).await?;
    Ok(out)
}

/// A call in a session: inside its transaction when one is open, else on `client` (a
/// `Database`'s session) or refused (a `Transaction` object that has ended).
async fn in_session(state: &mut TxState, client: Option<&Client>, op: Op) -> Result<Out, Failure> {
    if op.is_control() {
        let sql = match &op {
            Op::Read { sql, .. } | Op::Write { sql, .. } => sql.to_string(),
            Op::Script { sql } => sql.clone(),
            _ => unreachable!("only statements are transaction control"),
        };
        let r = script(state, client, &sql).await?;
        return Ok(match op {
            Op::Read { .. } => Out::Rows(Rows::default()),
            _ => Out::Exec(r),
        });
    }
    if let Op::End { commit } = op {
        let tx = state.take().ok_or_else(ended)?;
        if commit {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        return Ok(Out::Done);
    }
    let Some(tx) = &state.tx else {
        return match client {
            Some(c) => plain(c.clone(), op).await,
            None => Err(ended()),
        };
    };
    Ok(match op {
        Op::Begin => return Err(sql_error("cannot start a transaction within a transaction")),
        Op::Read { sql, params, .. } | Op::Write { sql, params } => {
            Out::Exec(tx.execute(&sql, params).await?)
        }
        Op::Script { sql } => Out::Exec(tx.execute(&sql, Params::None).await?),
        Op::Batch { stmts, transaction } => Out::Batch(batch_in(tx, stmts, transaction).await?),
        Op::End { .. } => unreachable!("handled above"),
    })
}

/// Where a statement runs: a `Database` (its session when it has one) or a `Transaction`.
#[derive(Clone)]
pub(crate) enum Source {
    Db(Arc<Shared>),
    Tx(Arc<Session>),
}

/// Keeps a `Database`'s session counted while a job of it is queued or running; the last one
/// out with no transaction open retires the session, so the plain path is concurrent again.
struct Turn {
    shared: Arc<Shared>,
    session: Arc<Session>,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let mut conn = lock(&self.shared.conn);
        let last = self.session.pending.fetch_sub(1, Ordering::AcqRel) == 1;
        if last && !self.session.is_open() && conn.as_ref().is_some_and(|s| Arc::ptr_eq(s, &self.session)) {
            *conn = None;
        }
    }
}

impl Source {
    /// Take this call's place now (on the JavaScript thread) and return its work.
    pub(crate) fn submit(&self, op: Op) -> Job<Out> {
        match self {
            Source::Tx(session) => {
                let session = session.clone();
                let mut ticket = session.queue.ticket();
                Box::pin(async move {
                    ticket.turn().await;
                    let mut st = session.state.lock().await;
                    let r = in_session(&mut st, None, op).await;
                    session.open.store(st.tx.is_some(), Ordering::Release);
                    r
                })
            }
            Source::Db(shared) => {
                let client = match shared.client() {
                    Ok(c) => c,
                    Err(f) => return Box::pin(async move { Err(f) }),
                };
                let (session, mut ticket) = {
                    let mut conn = lock(&shared.conn);
                    let session = match &*conn {
                        Some(s) => s.clone(),
                        None if op.is_control() => conn.insert(Arc::new(Session::default())).clone(),
                        None => return Box::pin(plain(client, op)),
                    };
                    session.pending.fetch_add(1, Ordering::AcqRel);
                    let ticket = session.queue.ticket();
                    (session, ticket)
                };
                let turn = Turn { shared: shared.clone(), session: session.clone() };
                Box::pin(async move {
                    ticket.turn().await;
                    let mut st = session.state.lock().await;
                    let r = in_session(&mut st, Some(&client), op).await;
                    session.open.store(st.tx.is_some(), Ordering::Release);
                    drop(st);
                    drop(turn);
                    drop(ticket);
                    r
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_where_sqlite_would() {
        assert_eq!(
            split_statements("BEGIN; INSERT INTO t VALUES ('a;b'); COMMIT"),
            vec!["BEGIN;", " INSERT INTO t VALUES ('a;b');", " COMMIT"]
        );
        let trig = "CREATE TRIGGER g AFTER INSERT ON t BEGIN UPDATE t SET x = 1; DELETE FROM u; END;";
        let text = format!("{trig} SELECT 1; -- done;");
        let pieces = split_statements(&text);
        // A trailing comment is a piece of its own, which the script skips as empty.
        assert_eq!(pieces, vec![trig, " SELECT 1;", " -- done;"]);
        assert_eq!(hiqlite::statement_kind(pieces[2]), StatementKind::Empty);
        assert_eq!(split_statements("  "), Vec::<&str>::new());
    }

    #[test]
    fn control_is_found() {
        assert!(mentions_control("begin"));
        assert!(!mentions_control("SELECT 1"));
        let op = Op::Script { sql: "CREATE TRIGGER g AFTER INSERT ON t BEGIN SELECT 1; END".into() };
        assert!(!op.is_control());
        assert!(Op::Script { sql: "INSERT INTO t VALUES (1); savepoint a".into() }.is_control());
    }

    #[test]
    fn savepoint_names() {
        for (sql, name) in [
            ("SAVEPOINT a", "a"),
            ("savepoint Sp_1;", "Sp_1"),
            ("RELEASE SAVEPOINT \"my \"\"sp\"\"\"", "my \"sp\""),
            ("ROLLBACK TRANSACTION TO SAVEPOINT [x y]", "x y"),
            ("RELEASE `q`  -- note", "q"),
            ("SAVEPOINT 'lit' /* c */", "lit"),
        ] {
            assert_eq!(savepoint_name(sql), name, "{sql}");
        }
    }
}
