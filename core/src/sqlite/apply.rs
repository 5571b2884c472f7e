//! The apply loop: runs a batch of committed log entries in one SQLite transaction with a
//! savepoint per entry (and per command of a batch entry), re-applies a run without a command
//! that ended the transaction (poisoning), stops on environmental errors, and tells the query
//! cache what the committed run changed.

use std::collections::HashMap;
use std::sync::atomic::Ordering;

use super::authorize::WriteSeen;
use super::meta::{LogPos, MembershipBlob};
use super::writer::State;
use super::{det, exec};
use crate::command::{Command, ExecMode, Migration, Response};
use crate::error::{Error, Result};
use crate::value::ExecResult;

/// What one log entry asks the writer to do.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// Nothing (a blank entry): it only moves the applied position.
    Blank,
    /// Record a new cluster membership (opaque, encoded by the consensus layer).
    Membership(MembershipBlob),
    /// Run a command (shared with the log's cache: a big one is not copied).
    Command(std::sync::Arc<Command>),
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

/// SQLite result codes that describe this machine (disk full, I/O error, corruption...), not
/// the statement: applying must stop instead of recording a per-statement error, or this
/// replica would silently differ from the others.
pub(super) fn is_environmental(e: &Error) -> bool {
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

impl State {
    pub(super) fn ctl(&self, sql: &str) -> Result<()> {
        self.conn.prepare_cached(sql)?.execute([])?;
        Ok(())
    }

    /// A refused statement's error names the statement and says why it was refused.
    fn user_err(&self, e: Error, sql: &str) -> Error {
        let reason = self.denied.lock().unwrap_or_else(|p| p.into_inner()).take();
        match (reason, e) {
            (Some(why), Error::Sql { code, .. }) => {
                let mut stmt: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
                if stmt.len() > 80 {
                    let cut = (0..=77).rev().find(|&i| stmt.is_char_boundary(i)).unwrap_or(0);
                    stmt.truncate(cut);
                    stmt.push_str("...");
                }
                Error::Sql { code, message: format!("`{stmt}` refused: {why}") }
            }
            (_, e) => e,
        }
    }

    pub(super) fn user_exec(&mut self, sql: &str, params: &crate::value::Params) -> Result<ExecResult> {
        *self.seen.lock().unwrap_or_else(|p| p.into_inner()) = WriteSeen::default();
        self.user_mode.store(true, Ordering::Relaxed);
        let total_before = self.conn.total_changes();
        let changes_before = self.conn.changes();
        let mut r = exec::execute(&self.conn, sql, params);
        self.user_mode.store(false, Ordering::Relaxed);
        if self.capture.is_on() {
            if r.is_err() {
                // SQLite undid the failed statement's changes (a FAIL conflict clause keeps its
                // earlier rows, which is not reported: a documented gap).
                self.capture.discard();
            } else if let Err(e) = self.pending_changes.resolve(&self.conn, &self.capture) {
                r = Err(Error::Storage(format!("capturing changes: {e}")));
            }
        }
        if let Ok(x) = &mut r {
            x.rqlite_counters = Some(self.rqlite_counters(sql, total_before, changes_before));
        }
        if self.cache.enabled() || self.table_feed.receiver_count() > 0 {
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
                // Statements of a run mostly repeat: copy a name only the first time.
                for t in tables {
                    if !self.changed.contains(t) {
                        self.changed.insert(t.clone());
                    }
                }
                self.changed_all |= *ddl;
            } else if r.is_ok() {
                // Not seen and not learned: assume the worst.
                self.changed_all = true;
            }
        }
        r.map_err(|e| self.user_err(e, sql))
    }

    /// Tell the query cache what the committed run changed. Runs after COMMIT and before the
    /// run is reported applied.
    pub(super) fn invalidate_changed(&mut self) {
        if (self.changed_all || !self.changed.is_empty()) && self.table_feed.receiver_count() > 0 {
            let tables = self.changed.iter().cloned().collect();
            // No receiver is not an error: the last watch may have ended meanwhile.
            let _ = self
                .table_feed
                .send(std::sync::Arc::new(super::writer::TablesChanged { tables, all: self.changed_all }));
        }
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

    /// The counters rqlite's connection would hold after `sql` ran: rqlite reports
    /// `sqlite3_last_insert_rowid` and `sqlite3_changes` of its one connection after each
    /// statement (rqlite/go-sqlite3 `sqlite3.go`, `_sqlite3_step_row_internal`; a text of several
    /// statements reports the last one's), so DDL reports what an earlier write left. The
    /// connection is reset before every command, so a zero rowid or no INSERT/UPDATE/DELETE since
    /// the reset means "what the previous commands left", which is carried here.
    fn rqlite_counters(&self, sql: &str, total_before: u64, changes_before: u64) -> (i64, u64) {
        let (mut lid, mut changes) = self.rq_counters.get();
        let dml = self.dml_since_reset.get()
            || self.conn.total_changes() != total_before
            || self.conn.changes() != changes_before
            || crate::sqlkind::is_dml(sql);
        self.dml_since_reset.set(dml);
        if self.conn.last_insert_rowid() != 0 {
            lid = self.conn.last_insert_rowid();
        }
        if dml {
            changes = self.conn.changes();
        }
        self.rq_counters.set((lid, changes));
        (lid, changes)
    }

    /// Connection state that SQL can observe (`last_insert_rowid()`, `changes()`) must not leak
    /// from one entry into the next: replicas apply entries in differently sized runs, and a
    /// restart or snapshot starts from a fresh connection.
    pub(super) fn reset_connection_state(&self) -> Result<()> {
        // SAFETY: the handle belongs to this open connection and is used on its own thread.
        unsafe { rusqlite::ffi::sqlite3_set_last_insert_rowid(self.conn.handle(), 0) };
        self.conn.prepare_cached("DELETE FROM hiqlite_state._hiqlite_state_meta WHERE 0")?.execute([])?;
        self.dml_since_reset.set(false);
        // `defer_foreign_keys` ends with the user's transaction in SQLite; here many commands
        // share one, so it ends with each command. Setting a flag PRAGMA expires every prepared
        // statement of the connection (re-preparing them was a quarter of a write's CPU), so it
        // is only set when a command turned it on.
        let deferred: i64 =
            self.conn.prepare_cached("PRAGMA defer_foreign_keys")?.query_row([], |r| r.get(0))?;
        if deferred != 0 {
            self.conn.prepare_cached("PRAGMA defer_foreign_keys=OFF")?.execute([])?;
        }
        Ok(())
    }

    /// SQLite checks deferred foreign keys at COMMIT; the user's COMMIT is the end of a command
    /// (or of an independent statement), so check there: a violation fails it with
    /// `SQLITE_CONSTRAINT_FOREIGNKEY`, as SQLite's COMMIT would.
    pub(super) fn deferred_fk_violation(&self) -> Option<Error> {
        let (mut cur, mut hi) = (0, 0);
        // SAFETY: the handle belongs to this open connection and is used on its own thread.
        let rc = unsafe {
            rusqlite::ffi::sqlite3_db_status(
                self.conn.handle(),
                rusqlite::ffi::SQLITE_DBSTATUS_DEFERRED_FKS,
                &mut cur,
                &mut hi,
                0,
            )
        };
        (rc == rusqlite::ffi::SQLITE_OK && cur > 0).then(|| Error::Sql {
            code: rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY,
            message: "FOREIGN KEY constraint failed".into(),
        })
    }

    /// Apply a run of entries: in one transaction, except that a command SQLite only honours
    /// outside a transaction (VACUUM, a `foreign_keys` assignment: [`sqlkind::runs_alone`]) is
    /// applied on its own between the transactions of what precedes and follows it. Every
    /// replica splits the same way, since the split depends on the entries alone.
    pub(super) fn apply(&mut self, entries: &[(LogPos, Op)]) -> Result<Vec<Response>> {
        self.capture.set_on(self.change_retention > 0);
        let r = self.apply_split(entries);
        self.capture.set_on(false);
        self.capture.discard();
        self.pending_changes.clear();
        r
    }

    fn apply_split(&mut self, entries: &[(LogPos, Op)]) -> Result<Vec<Response>> {
        let mut out = Vec::with_capacity(entries.len());
        let mut start = 0;
        for (i, (pos, op)) in entries.iter().enumerate() {
            if let Op::Command(cmd) = op {
                if matches!(**cmd, Command::Execute { .. }) && crate::sqlkind::runs_alone(cmd) {
                    if start < i {
                        out.extend(self.apply_run(&entries[start..i])?);
                    }
                    out.push(self.apply_alone(*pos, cmd)?);
                    start = i + 1;
                }
            }
        }
        if start < entries.len() {
            out.extend(self.apply_run(&entries[start..])?);
        }
        Ok(out)
    }

    /// Apply a run of entries in one transaction, a savepoint per entry. An error stops the
    /// writer's progress: nothing of the run is committed.
    fn apply_run(&mut self, entries: &[(LogPos, Op)]) -> Result<Vec<Response>> {
        let Some(&(last_pos, _)) = entries.last() else {
            return Ok(Vec::new());
        };
        // A statement with a ROLLBACK conflict clause (or RAISE(ROLLBACK) in a trigger) ends the
        // whole transaction, taking earlier entries of this run with it. Such a command is
        // remembered as poisoned and the run is applied again without it; every replica makes
        // the same decision because the outcome is a function of the entry alone.
        let mut poisoned: HashMap<Pos, Error> = HashMap::new();
        loop {
            self.ctl("BEGIN")?;
            self.kv_pending.clear();
            self.locks_changed = false;
            self.notes_pending.clear();
            self.pending_changes.clear();
            let mut out = Vec::with_capacity(entries.len());
            let mut membership = self.applied.1.clone();
            let mut restarted = false;
            for (i, (pos, op)) in entries.iter().enumerate() {
                let resp = match op {
                    Op::Blank => Response::default(),
                    Op::Membership(m) => {
                        membership = Some(m.clone());
                        Response::default()
                    }
                    Op::Command(cmd) => {
                        let mark = self.pending_changes.mark();
                        self.ctl("SAVEPOINT _hiqlite_entry")?;
                        match self.apply_command(cmd, (i, None), &poisoned) {
                            Err(Step::Fatal(e)) => {
                                let _ = self.ctl("ROLLBACK");
                                return Err(e);
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
                                    self.ctl("ROLLBACK TO _hiqlite_entry")?;
                                    self.pending_changes.cut(mark);
                                }
                                self.ctl("RELEASE _hiqlite_entry")?;
                                self.pending_changes.end_entry(pos.index);
                                resp
                            }
                        }
                    }
                };
                let mut resp = resp;
                resp.set_index(pos.index);
                out.push(resp);
            }
            if restarted {
                if !self.conn.is_autocommit() {
                    self.ctl("ROLLBACK")?;
                }
                continue;
            }
            let feed = if self.change_retention > 0 {
                match self.pending_changes.store(&self.conn, self.change_retention) {
                    Ok(f) => f,
                    Err(e) => {
                        let _ = self.ctl("ROLLBACK");
                        return Err(e);
                    }
                }
            } else {
                Vec::new()
            };
            self.apply_seq.fetch_add(1, Ordering::AcqRel);
            let committed = self.ctl("COMMIT");
            self.invalidate_changed();
            let changes = std::mem::take(&mut self.kv_pending);
            if committed.is_ok() {
                self.kv_mirror.apply(changes);
                if std::mem::take(&mut self.locks_changed) {
                    self.lock_epoch.send_modify(|e| *e += 1);
                }
                for note in self.notes_pending.drain(..) {
                    // No receiver is not an error: nobody listens on this node.
                    let _ = self.notes.send(note);
                }
                if !feed.is_empty() {
                    let _ = self.change_feed.send(super::changes::Feed::Run(std::sync::Arc::new(feed)));
                }
            }
            if committed.is_ok() {
                self.applied = (Some(last_pos), membership);
                self.entries_applied.fetch_add(entries.len() as u64, Ordering::Relaxed);
                *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = self.applied.clone();
            }
            self.apply_seq.fetch_add(1, Ordering::AcqRel);
            committed?;
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
                    let mark = self.pending_changes.mark();
                    self.ctl("SAVEPOINT _hiqlite_sub").map_err(Step::Fatal)?;
                    let r = self.apply_command(c, (pos.0, Some(j)), poisoned)?;
                    if r.rolled_back {
                        self.ctl("ROLLBACK TO _hiqlite_sub").map_err(Step::Fatal)?;
                        self.pending_changes.cut(mark);
                    }
                    self.ctl("RELEASE _hiqlite_sub").map_err(Step::Fatal)?;
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
            Command::Session { stmts, ts_ms, seed } => {
                let r = self.apply_session(stmts, *ts_ms, *seed).map_err(Step::Fatal)?;
                self.settle(Ok(r), pos)
            }
            Command::Migrate { migrations, ts_ms, seed } => {
                self.reset_connection_state().map_err(Step::Fatal)?;
                det::enter_entry(*ts_ms, *seed);
                let r = self.run_migrations(migrations, *ts_ms);
                det::leave_entry();
                self.settle(r, pos)
            }
            Command::Coord { op, ts_ms } => {
                let r = self.apply_coord(op, *ts_ms);
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
        // One allocation, not a doubling series (fresh memory is zeroed by the kernel).
        resp.results.reserve_exact(stmts.len());
        let independent = mode == ExecMode::Independent && stmts.len() > 1;
        for s in stmts {
            let mark = self.pending_changes.mark();
            if independent {
                self.ctl("SAVEPOINT _hiqlite_stmt")?;
            }
            let mut r = self.user_exec(&s.sql, &s.params);
            if self.conn.is_autocommit() {
                resp.results.push(r);
                return Ok(resp);
            }
            if independent && r.is_ok() {
                if let Some(e) = self.deferred_fk_violation() {
                    r = Err(e);
                }
            }
            let failed = r.is_err();
            resp.results.push(r);
            if independent {
                if failed {
                    self.ctl("ROLLBACK TO _hiqlite_stmt")?;
                    self.pending_changes.cut(mark);
                }
                self.ctl("RELEASE _hiqlite_stmt")?;
            } else if failed {
                resp.rolled_back = true;
                return Ok(resp);
            }
        }
        if !independent {
            if let Some(e) = self.deferred_fk_violation() {
                if let Some(last) = resp.results.last_mut() {
                    *last = Err(e);
                }
                resp.rolled_back = true;
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
                let mut st = self.conn.prepare_cached(
                    "SELECT checksum FROM hiqlite_state._hiqlite_state_migrations WHERE id = ?1",
                )?;
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
                    let mut r = self.user_exec(&m.sql, &crate::value::Params::None);
                    if r.is_ok() {
                        if let Some(e) = self.deferred_fk_violation() {
                            r = Err(e);
                        }
                    }
                    if self.conn.is_autocommit() {
                        resp.results.push(r);
                        return Ok(resp);
                    }
                    match r {
                        Ok(_) => {
                            self.conn
                                .prepare_cached(
                                    "INSERT INTO hiqlite_state._hiqlite_state_migrations (id, name, checksum, applied_at) \
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
}
