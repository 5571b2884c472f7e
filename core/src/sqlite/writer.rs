//! The state machine's writer: one SQLite connection owned by one thread, fed through a channel.
//! It applies committed log entries (one SQLite transaction per run of entries, one savepoint per
//! entry), pins consistent read snapshots for snapshot building, restores received snapshots, and
//! writes `last_applied` + membership into the database at snapshots and clean shutdown only.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use openraft::{EntryPayload, StorageIOError};
use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;
use tokio::sync::oneshot;

use super::{det, exec};
use crate::error::{Error, Result};
use crate::raft::{
    Command, Entry, ExecMode, LogId, Migration, Response, SnapshotMeta, StorageError, StoredMembership,
};
use crate::value::ExecResult;

/// `last_applied` and membership as the writer last committed them.
pub(crate) type Applied = (Option<LogId>, StoredMembership);

/// What the authorizer saw while one user statement was prepared: the tables it writes (also
/// through triggers) and whether it changes the schema.
#[derive(Default)]
struct WriteSeen {
    fired: bool,
    tables: HashSet<String>,
    ddl: bool,
}

fn note_write(seen: &mut WriteSeen, action: &AuthAction<'_>) {
    seen.fired = true;
    match action {
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. } => {
            seen.tables.insert(table_name.to_ascii_lowercase());
        }
        AuthAction::CreateIndex { .. }
        | AuthAction::CreateTable { .. }
        | AuthAction::CreateTrigger { .. }
        | AuthAction::CreateView { .. }
        | AuthAction::DropIndex { .. }
        | AuthAction::DropTable { .. }
        | AuthAction::DropTrigger { .. }
        | AuthAction::DropView { .. }
        | AuthAction::AlterTable { .. }
        | AuthAction::CreateVtable { .. }
        | AuthAction::DropVtable { .. }
        | AuthAction::Reindex { .. }
        | AuthAction::Analyze { .. } => seen.ddl = true,
        _ => {}
    }
}

/// Where a command sits in a run: entry position, and position inside a batch entry.
type Pos = (usize, Option<usize>);

/// Why applying a command stopped early.
enum Step {
    /// This machine cannot apply (disk full, I/O error...): stop, never skip.
    Fatal(Error),
    /// The command ended the enclosing transaction; re-apply the run without it.
    Poisoned(Pos, Error),
}

/// A read-only connection holding an open read transaction at exactly `applied`.
pub(crate) struct Pinned {
    pub conn: Connection,
    pub applied: Applied,
}

enum Msg {
    Apply(Vec<Entry>, oneshot::Sender<Result<Vec<Response>, StorageError>>),
    Pin(oneshot::Sender<Result<Pinned>>),
    Restore(PathBuf, SnapshotMeta, oneshot::Sender<Result<()>>),
    Shutdown(oneshot::Sender<Result<()>>),
}

/// Handle to the writer thread.
pub(crate) struct Writer {
    tx: Mutex<Option<mpsc::Sender<Msg>>>,
    applied: Arc<Mutex<Applied>>,
    /// Log entries applied since the database was opened.
    pub(crate) entries_applied: Arc<AtomicU64>,
    /// The applied log id found in the database when it was opened.
    pub(crate) applied_at_open: Option<LogId>,
    /// Odd while a commit is on its way to being reported applied, even otherwise (a seqlock:
    /// readers that see the same even value before and after read one applied state).
    pub(crate) apply_seq: Arc<AtomicU64>,
}

const META_DDL: &str =
    "CREATE TABLE IF NOT EXISTS _hiqlite_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);";
const MIGRATIONS_DDL: &str = "CREATE TABLE IF NOT EXISTS _hiqlite_migrations (\
     id INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum INTEGER NOT NULL, applied_at INTEGER NOT NULL);";

const DENY_TX: &str = "transaction control (BEGIN, COMMIT, ROLLBACK, SAVEPOINT, RELEASE) is not allowed in \
     replicated writes: every write already runs in a transaction; use Client::transaction for several statements";
const DENY_ATTACH: &str = "ATTACH and DETACH are not allowed: replicas must not depend on local files";
const DENY_TEMP: &str =
    "temporary tables, views, indexes and triggers are not allowed in replicated writes: \
     they would live on one connection of one node only";
const DENY_PRAGMA: &str =
    "this PRAGMA is not allowed in replicated writes: it changes connection state that \
     replicas and restarts would not share";
const DENY_INTERNAL: &str = "tables named _hiqlite_* belong to hiqlite and cannot be changed";

/// Pragmas that only read (or change state stored in the database file itself) and so behave
/// the same on every replica.
const SAFE_PRAGMAS: &[&str] = &[
    "table_info",
    "table_xinfo",
    "table_list",
    "index_list",
    "index_info",
    "index_xinfo",
    "foreign_key_list",
    "foreign_key_check",
    "integrity_check",
    "quick_check",
    "collation_list",
    "function_list",
    "pragma_list",
    "compile_options",
    "user_version",
    "application_id",
    "data_version",
    "schema_version",
    "page_count",
    "page_size",
    "freelist_count",
    "encoding",
];

/// Why a user statement in a replicated write must be refused, if it must.
fn authorize(action: &AuthAction<'_>) -> Option<&'static str> {
    let internal = |t: &str| t.starts_with("_hiqlite_");
    match action {
        AuthAction::Transaction { .. } | AuthAction::Savepoint { .. } => Some(DENY_TX),
        AuthAction::Attach { .. } | AuthAction::Detach { .. } => Some(DENY_ATTACH),
        AuthAction::CreateTempIndex { .. }
        | AuthAction::CreateTempTable { .. }
        | AuthAction::CreateTempTrigger { .. }
        | AuthAction::CreateTempView { .. } => Some(DENY_TEMP),
        AuthAction::Pragma { pragma_name, .. } => {
            let name = pragma_name.to_ascii_lowercase();
            (!SAFE_PRAGMAS.contains(&name.as_str())).then_some(DENY_PRAGMA)
        }
        AuthAction::Insert { table_name }
        | AuthAction::Delete { table_name }
        | AuthAction::Update { table_name, .. }
        | AuthAction::DropTable { table_name }
        | AuthAction::AlterTable { table_name, .. }
            if internal(table_name) =>
        {
            Some(DENY_INTERNAL)
        }
        _ => None,
    }
}

/// SQLite result codes that describe this machine (disk full, I/O error, corruption...), not
/// the statement: applying must stop instead of recording a per-statement error, or this
/// replica would silently differ from the others.
fn is_environmental(e: &Error) -> bool {
    use rusqlite::ffi as f;
    match e {
        Error::Sql { code, .. } => matches!(
            code & 0xff,
            f::SQLITE_NOMEM
                | f::SQLITE_IOERR
                | f::SQLITE_CORRUPT
                | f::SQLITE_FULL
                | f::SQLITE_CANTOPEN
                | f::SQLITE_PROTOCOL
                | f::SQLITE_NOTADB
                | f::SQLITE_BUSY
                | f::SQLITE_LOCKED
                | f::SQLITE_READONLY
                | f::SQLITE_INTERRUPT
                | f::SQLITE_PERM
        ),
        Error::Storage(_) => true,
        _ => false,
    }
}

/// Read `last_applied` and membership from the database's meta table.
pub(crate) fn read_meta(conn: &Connection) -> Result<Applied> {
    conn.execute_batch(META_DDL)?;
    let get = |k: &str| -> Result<Option<String>> {
        let mut st = conn.prepare("SELECT value FROM _hiqlite_meta WHERE key = ?1")?;
        let mut rows = st.query([k])?;
        Ok(match rows.next()? {
            Some(r) => Some(r.get::<_, String>(0)?),
            None => None,
        })
    };
    let last: Option<LogId> = match get("last_applied")? {
        Some(s) => {
            serde_json::from_str(&s).map_err(|e| Error::Storage(format!("bad last_applied meta: {e}")))?
        }
        None => None,
    };
    let membership: StoredMembership = match get("membership")? {
        Some(s) => {
            serde_json::from_str(&s).map_err(|e| Error::Storage(format!("bad membership meta: {e}")))?
        }
        None => StoredMembership::default(),
    };
    Ok((last, membership))
}

fn write_meta(conn: &Connection, applied: &Applied) -> Result<()> {
    let last = serde_json::to_string(&applied.0).map_err(Error::storage)?;
    let mem = serde_json::to_string(&applied.1).map_err(Error::storage)?;
    conn.execute_batch(META_DDL)?;
    let tx = conn.unchecked_transaction()?;
    tx.execute("INSERT OR REPLACE INTO _hiqlite_meta (key, value) VALUES ('last_applied', ?1)", [last])?;
    tx.execute("INSERT OR REPLACE INTO _hiqlite_meta (key, value) VALUES ('membership', ?1)", [mem])?;
    tx.commit()?;
    Ok(())
}

struct State {
    conn: Connection,
    path: PathBuf,
    applied: Applied,
    shared: Arc<Mutex<Applied>>,
    entries_applied: Arc<AtomicU64>,
    /// True while user SQL runs: the authorizer then refuses transaction control and ATTACH.
    user_mode: Arc<AtomicBool>,
    denied: Arc<Mutex<Option<&'static str>>>,
    seen: Arc<Mutex<WriteSeen>>,
    /// Tables each SQL text writes (and whether it is DDL), learned when it was first prepared:
    /// later runs reuse the cached statement and the authorizer does not see them again.
    learned: HashMap<String, (Vec<String>, bool)>,
    /// Tables changed by the current run of entries (for the query cache).
    changed: HashSet<String>,
    changed_all: bool,
    cache: Arc<crate::cache::QueryCache>,
    apply_seq: Arc<AtomicU64>,
}

impl Writer {
    /// Open the database at `path` (already healed by the caller) and start the writer thread.
    pub(crate) fn start(path: &Path, cache: Arc<crate::cache::QueryCache>) -> Result<Arc<Writer>> {
        let mut conn = super::open_writer(path)?;
        conn.execute_batch(META_DDL)?;
        conn.execute_batch(MIGRATIONS_DDL)?;
        let applied = read_meta(&conn)?;
        let user_mode = Arc::new(AtomicBool::new(false));
        let denied: Arc<Mutex<Option<&'static str>>> = Arc::new(Mutex::new(None));
        let seen: Arc<Mutex<WriteSeen>> = Arc::new(Mutex::new(WriteSeen::default()));
        {
            let (um, dn, sn) = (user_mode.clone(), denied.clone(), seen.clone());
            conn.authorizer(Some(move |ctx: AuthContext<'_>| {
                if !um.load(Ordering::Relaxed) {
                    return Authorization::Allow;
                }
                note_write(&mut sn.lock().unwrap_or_else(|p| p.into_inner()), &ctx.action);
                match authorize(&ctx.action) {
                    None => Authorization::Allow,
                    Some(why) => {
                        *dn.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
                        Authorization::Deny
                    }
                }
            }))?;
        }
        let shared = Arc::new(Mutex::new(applied.clone()));
        let entries_applied = Arc::new(AtomicU64::new(0));
        let applied_at_open = applied.0;
        let apply_seq = Arc::new(AtomicU64::new(0));
        let state = State {
            apply_seq: apply_seq.clone(),
            seen,
            learned: HashMap::new(),
            changed: HashSet::new(),
            changed_all: false,
            cache,
            entries_applied: entries_applied.clone(),
            conn,
            path: path.to_path_buf(),
            applied,
            shared: shared.clone(),
            user_mode,
            denied,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("hiqlite-sqlite-writer".into())
            .spawn(move || state.run(rx))
            .map_err(Error::storage)?;
        Ok(Arc::new(Writer {
            tx: Mutex::new(Some(tx)),
            applied: shared,
            entries_applied,
            applied_at_open,
            apply_seq,
        }))
    }

    /// What the writer last committed.
    pub(crate) fn applied(&self) -> Applied {
        self.applied.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn send(&self, m: Msg) -> bool {
        match self.tx.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            Some(tx) => tx.send(m).is_ok(),
            None => false,
        }
    }

    pub(crate) async fn apply(&self, entries: Vec<Entry>) -> Result<Vec<Response>, StorageError> {
        let stopped = || {
            StorageError::from(StorageIOError::write_state_machine(&crate::raft::io_err("writer stopped")))
        };
        let (tx, rx) = oneshot::channel();
        if !self.send(Msg::Apply(entries, tx)) {
            return Err(stopped());
        }
        rx.await.map_err(|_| stopped())?
    }

    pub(crate) async fn pin(&self) -> Result<Pinned> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Msg::Pin(tx)) {
            return Err(Error::ShutDown);
        }
        rx.await.map_err(|_| Error::ShutDown)?
    }

    pub(crate) async fn restore(&self, path: PathBuf, meta: SnapshotMeta) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        if !self.send(Msg::Restore(path, meta, tx)) {
            return Err(Error::ShutDown);
        }
        rx.await.map_err(|_| Error::ShutDown)?
    }

    /// Persist `last_applied` + membership and close the database. Idempotent.
    pub(crate) async fn shutdown(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let sent = self.send(Msg::Shutdown(tx));
        self.tx.lock().unwrap_or_else(|p| p.into_inner()).take();
        if !sent {
            return Ok(());
        }
        rx.await.map_err(|_| Error::ShutDown)?
    }
}

impl State {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        while let Ok(msg) = rx.recv() {
            match msg {
                Msg::Apply(entries, done) => {
                    let r = self.apply(&entries);
                    let _ = done.send(r);
                }
                Msg::Pin(done) => {
                    let _ = done.send(self.pin());
                }
                Msg::Restore(path, meta, done) => {
                    let _ = done.send(self.restore(&path, &meta));
                }
                Msg::Shutdown(done) => {
                    // A clean stop is trusted at the next start (no rebuild), so make it durable:
                    // meta committed with a synced WAL, then checkpointed into the synced file.
                    let r = self
                        .conn
                        .execute_batch("PRAGMA synchronous=FULL;")
                        .map_err(Error::from)
                        .and_then(|_| write_meta(&self.conn, &self.applied))
                        .and_then(|_| {
                            self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
                            std::fs::File::open(&self.path)?.sync_all()?;
                            Ok(())
                        });
                    if let Err(e) = &r {
                        tracing::error!("could not persist last applied log id at shutdown: {e}");
                    }
                    let _ = done.send(r);
                    break;
                }
            }
        }
        // Dropping the connection checkpoints the WAL.
        drop(self.conn);
    }

    fn ctl(&self, sql: &str) -> Result<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    fn user_err(&self, e: Error) -> Error {
        let reason = self.denied.lock().unwrap_or_else(|p| p.into_inner()).take();
        match (reason, e) {
            (Some(why), Error::Sql { code, .. }) => Error::Sql { code, message: why.to_string() },
            (_, e) => e,
        }
    }

    fn user_exec(&mut self, sql: &str, params: &crate::value::Params) -> Result<ExecResult> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = WriteSeen::default();
        self.user_mode.store(true, Ordering::Relaxed);
        let r = exec::execute(&self.conn, sql, params);
        self.user_mode.store(false, Ordering::Relaxed);
        if self.cache.enabled() {
            let seen = std::mem::take(&mut *self.seen.lock().unwrap_or_else(|p| p.into_inner()));
            if seen.fired {
                let tables: Vec<String> = seen.tables.into_iter().collect();
                if self.learned.len() >= 10_000 {
                    self.learned.clear();
                }
                self.changed.extend(tables.iter().cloned());
                self.changed_all |= seen.ddl;
                self.learned.insert(sql.to_owned(), (tables, seen.ddl));
            } else if let Some((tables, ddl)) = self.learned.get(sql) {
                self.changed.extend(tables.iter().cloned());
                self.changed_all |= *ddl;
            } else if r.is_ok() {
                // Not seen and not learned: assume the worst.
                self.changed_all = true;
            }
        }
        r.map_err(|e| self.user_err(e))
    }

    /// Tell the query cache what the committed run changed. Runs after COMMIT and before the
    /// run is reported applied.
    fn invalidate_changed(&mut self) {
        if self.changed_all {
            self.cache.invalidate_all();
            // A schema change can change what a statement writes (a new trigger, say): forget
            // what was learned and let every statement be prepared, and so authorized, afresh.
            self.learned.clear();
            self.conn.flush_prepared_statement_cache();
        } else if !self.changed.is_empty() {
            self.cache.invalidate_tables(self.changed.iter());
        }
        self.changed.clear();
        self.changed_all = false;
    }

    /// Connection state that SQL can observe (`last_insert_rowid()`, `changes()`) must not leak
    /// from one entry into the next: replicas apply entries in differently sized runs, and a
    /// restart or snapshot starts from a fresh connection.
    fn reset_connection_state(&self) -> Result<()> {
        // SAFETY: the handle belongs to this open connection and is used on its own thread.
        unsafe { rusqlite::ffi::sqlite3_set_last_insert_rowid(self.conn.handle(), 0) };
        self.conn.prepare_cached("DELETE FROM _hiqlite_meta WHERE 0")?.execute([])?;
        Ok(())
    }

    fn apply(&mut self, entries: &[Entry]) -> Result<Vec<Response>, StorageError> {
        let Some(last) = entries.last() else {
            return Ok(Vec::new());
        };
        let last_id = last.log_id;
        let fail = |e: Error| StorageError::from(StorageIOError::apply(last_id, &crate::raft::io_err(e)));
        // A statement with a ROLLBACK conflict clause (or RAISE(ROLLBACK) in a trigger) ends the
        // whole transaction, taking earlier entries of this run with it. Such a command is
        // remembered as poisoned and the run is applied again without it; every replica makes
        // the same decision because the outcome is a function of the entry alone.
        let mut poisoned: HashMap<Pos, Error> = HashMap::new();
        loop {
            self.ctl("BEGIN").map_err(fail)?;
            let mut out = Vec::with_capacity(entries.len());
            let mut membership = self.applied.1.clone();
            let mut restarted = false;
            for (i, entry) in entries.iter().enumerate() {
                let resp = match &entry.payload {
                    EntryPayload::Blank => Response::default(),
                    EntryPayload::Membership(m) => {
                        membership = StoredMembership::new(Some(entry.log_id), m.clone());
                        Response::default()
                    }
                    EntryPayload::Normal(cmd) => {
                        self.ctl("SAVEPOINT entry").map_err(fail)?;
                        match self.apply_command(cmd, (i, None), &poisoned) {
                            Err(Step::Fatal(e)) => {
                                let _ = self.ctl("ROLLBACK");
                                return Err(fail(e));
                            }
                            Err(Step::Poisoned(pos, err)) => {
                                tracing::debug!(
                                    ?pos,
                                    "a command rolled back the apply transaction; re-applying the run"
                                );
                                poisoned.insert(pos, err);
                                restarted = true;
                                break;
                            }
                            Ok(resp) => {
                                if resp.rolled_back {
                                    self.ctl("ROLLBACK TO entry").map_err(fail)?;
                                }
                                self.ctl("RELEASE entry").map_err(fail)?;
                                resp
                            }
                        }
                    }
                };
                let mut resp = resp;
                resp.set_index(entry.log_id.index);
                out.push(resp);
            }
            if restarted {
                if !self.conn.is_autocommit() {
                    self.ctl("ROLLBACK").map_err(fail)?;
                }
                continue;
            }
            self.apply_seq.fetch_add(1, Ordering::AcqRel);
            let committed = self.ctl("COMMIT");
            self.invalidate_changed();
            if committed.is_ok() {
                self.applied = (Some(last_id), membership);
                self.entries_applied.fetch_add(entries.len() as u64, Ordering::Relaxed);
                *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = self.applied.clone();
            }
            self.apply_seq.fetch_add(1, Ordering::AcqRel);
            committed.map_err(fail)?;
            return Ok(out);
        }
    }

    /// Apply one command inside the savepoint its caller opened.
    fn apply_command(
        &mut self,
        cmd: &Command,
        pos: Pos,
        poisoned: &HashMap<Pos, Error>,
    ) -> Result<Response, Step> {
        if let Some(err) = poisoned.get(&pos) {
            return Ok(Response { results: vec![Err(err.clone())], rolled_back: true, ..Default::default() });
        }
        match cmd {
            Command::Batch(cmds) => {
                let mut out = Response::default();
                for (j, c) in cmds.iter().enumerate() {
                    self.ctl("SAVEPOINT sub").map_err(Step::Fatal)?;
                    let r = self.apply_command(c, (pos.0, Some(j)), poisoned)?;
                    if r.rolled_back {
                        self.ctl("ROLLBACK TO sub").map_err(Step::Fatal)?;
                    }
                    self.ctl("RELEASE sub").map_err(Step::Fatal)?;
                    out.batch.push(r);
                }
                Ok(out)
            }
            Command::Execute { stmts, mode, ts_ms, seed } => {
                self.reset_connection_state().map_err(Step::Fatal)?;
                det::enter_entry(*ts_ms, *seed);
                let r = self.run_statements(stmts, *mode);
                det::leave_entry();
                self.settle(r, pos)
            }
            Command::Migrate { migrations, ts_ms, seed } => {
                self.reset_connection_state().map_err(Step::Fatal)?;
                det::enter_entry(*ts_ms, *seed);
                let r = self.run_migrations(migrations, *ts_ms);
                det::leave_entry();
                self.settle(r, pos)
            }
        }
    }

    /// Turn a command's outcome into a response, or into a fatal stop / a poisoned restart.
    fn settle(&self, r: Result<Response>, pos: Pos) -> Result<Response, Step> {
        if self.conn.is_autocommit() {
            let err = match &r {
                Ok(resp) => resp.results.iter().rev().find_map(|x| x.as_ref().err().cloned()),
                Err(e) => Some(e.clone()),
            }
            .unwrap_or_else(|| Error::Sql {
                code: rusqlite::ffi::SQLITE_CONSTRAINT,
                message: "the statement aborted its transaction (ROLLBACK)".into(),
            });
            return Err(Step::Poisoned(pos, err));
        }
        match r {
            Err(e) => Err(Step::Fatal(e)),
            Ok(resp) => {
                match resp.results.iter().find_map(|r| r.as_ref().err().filter(|e| is_environmental(e))) {
                    Some(e) => Err(Step::Fatal(e.clone())),
                    None => Ok(resp),
                }
            }
        }
    }

    fn run_statements(&mut self, stmts: &[crate::value::Statement], mode: ExecMode) -> Result<Response> {
        let mut resp = Response::default();
        let independent = mode == ExecMode::Independent && stmts.len() > 1;
        for s in stmts {
            if independent {
                self.ctl("SAVEPOINT stmt")?;
            }
            let r = self.user_exec(&s.sql, &s.params);
            if self.conn.is_autocommit() {
                resp.results.push(r);
                return Ok(resp);
            }
            let failed = r.is_err();
            resp.results.push(r);
            if independent {
                if failed {
                    self.ctl("ROLLBACK TO stmt")?;
                }
                self.ctl("RELEASE stmt")?;
            } else if failed {
                resp.rolled_back = true;
                return Ok(resp);
            }
        }
        Ok(resp)
    }

    fn run_migrations(&mut self, migrations: &[Migration], ts_ms: i64) -> Result<Response> {
        let mut resp = Response::default();
        let mut sorted: Vec<&Migration> = migrations.iter().collect();
        sorted.sort_by_key(|m| m.id);
        for m in sorted {
            let sum = i64::from(crc32fast::hash(m.sql.as_bytes()));
            let existing: Option<i64> = {
                let mut st =
                    self.conn.prepare_cached("SELECT checksum FROM _hiqlite_migrations WHERE id = ?1")?;
                let mut rows = st.query([m.id])?;
                match rows.next()? {
                    Some(r) => Some(r.get(0)?),
                    None => None,
                }
            };
            match existing {
                Some(prev) if prev == sum => resp.results.push(Ok(ExecResult::default())),
                Some(_) => {
                    resp.results.push(Err(Error::InvalidRequest(format!(
                        "migration {} ({}) was changed after it was applied",
                        m.id, m.name
                    ))));
                    resp.rolled_back = true;
                    return Ok(resp);
                }
                None => {
                    let r = self.user_exec(&m.sql, &crate::value::Params::None);
                    if self.conn.is_autocommit() {
                        resp.results.push(r);
                        return Ok(resp);
                    }
                    match r {
                        Ok(_) => {
                            self.conn
                                .prepare_cached(
                                    "INSERT INTO _hiqlite_migrations (id, name, checksum, applied_at) \
                                     VALUES (?1, ?2, ?3, ?4)",
                                )?
                                .execute(rusqlite::params![m.id, m.name, sum, ts_ms])?;
                            resp.results.push(Ok(ExecResult { rows_affected: 1, ..Default::default() }));
                        }
                        Err(Error::Sql { code, message }) => {
                            resp.results.push(Err(Error::Sql {
                                code,
                                message: format!("migration {} ({}): {message}", m.id, m.name),
                            }));
                            resp.rolled_back = true;
                            return Ok(resp);
                        }
                        Err(e) => {
                            resp.results.push(Err(e));
                            resp.rolled_back = true;
                            return Ok(resp);
                        }
                    }
                }
            }
        }
        Ok(resp)
    }

    fn pin(&mut self) -> Result<Pinned> {
        write_meta(&self.conn, &self.applied)?;
        let conn = super::open_reader(&self.path)?;
        // Opening a read transaction fixes the WAL snapshot this connection sees until it ends;
        // the writer goes on while the copy is made from it.
        conn.execute_batch("BEGIN")?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))?;
        Ok(Pinned { conn, applied: self.applied.clone() })
    }

    fn restore(&mut self, path: &Path, meta: &SnapshotMeta) -> Result<()> {
        let src = super::open_reader(path)?;
        {
            let backup = rusqlite::backup::Backup::new(&src, &mut self.conn)?;
            backup_all(&backup)?;
        }
        self.conn.flush_prepared_statement_cache();
        self.conn.execute_batch(META_DDL)?;
        self.conn.execute_batch(MIGRATIONS_DDL)?;
        self.applied = (meta.last_log_id, meta.last_membership.clone());
        self.learned.clear();
        self.apply_seq.fetch_add(1, Ordering::AcqRel);
        self.cache.invalidate_all();
        let r = write_meta(&self.conn, &self.applied);
        *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = self.applied.clone();
        self.apply_seq.fetch_add(1, Ordering::AcqRel);
        r?;
        Ok(())
    }
}

/// Copy every page in one step (one step keeps the source's read transaction, so the copy is
/// one consistent state); anything but `Done` is an error, never a silent partial copy.
fn backup_all(b: &rusqlite::backup::Backup<'_, '_>) -> Result<()> {
    match b.step(-1)? {
        rusqlite::backup::StepResult::Done => Ok(()),
        other => Err(Error::Storage(format!("database copy did not complete: {other:?}"))),
    }
}

/// Copy the pinned read snapshot into a standalone database file at `dest`.
pub(crate) fn copy_pinned(pinned: &Pinned, dest: &Path) -> Result<()> {
    let mut dst = Connection::open(dest)?;
    {
        let backup = rusqlite::backup::Backup::new(&pinned.conn, &mut dst)?;
        backup_all(&backup)?;
    }
    // A snapshot travels as one file: make sure nothing is left in a WAL beside it.
    dst.execute_batch("PRAGMA journal_mode=DELETE;")?;
    drop(dst);
    std::fs::File::open(dest)?.sync_all()?;
    Ok(())
}
