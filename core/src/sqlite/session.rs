//! An interactive transaction on the writer connection: its statements run speculatively in an
//! open SQLite transaction (so its reads see its writes), are recorded with their outcomes, and
//! are rolled back when it ends — committing means proposing the recorded statements as one
//! `Command::Session` entry, which every replica (this one included) then applies. Work that
//! must see only committed state (applying entries, pinning snapshots) suspends the speculative
//! run and replays it afterwards; a replay that comes out differently aborts the transaction.

use std::sync::atomic::Ordering;

use super::det;
use super::writer::State;
use crate::command::Response;
use crate::error::{Error, Result};
use crate::value::{ExecResult, Statement};

/// An interactive transaction's state on the writer thread.
pub(crate) struct Session {
    ts_ms: i64,
    seed: u64,
    /// The statements run so far and whether each succeeded.
    stmts: Vec<(Statement, bool)>,
    /// Why the transaction can no longer commit (a statement rolled it back, or a replay came
    /// out differently).
    aborted: Option<Error>,
    /// The speculative SQLite transaction is open on the connection.
    open: bool,
}

/// What a finished session hands back for its commit.
pub(crate) struct Recorded {
    /// The statements, in order.
    pub stmts: Vec<Statement>,
    /// The session's clock.
    pub ts_ms: i64,
    /// The session's seed.
    pub seed: u64,
}

/// SQLite's own message when a statement needs a transaction that is gone.
fn no_transaction() -> Error {
    Error::Sql { code: rusqlite::ffi::SQLITE_ERROR, message: "no transaction is active".into() }
}

impl State {
    /// Start an interactive transaction with its clock and seed.
    pub(super) fn tx_begin(&mut self, ts_ms: i64, seed: u64) -> Result<()> {
        if self.session.is_some() {
            return Err(Error::Sql {
                code: rusqlite::ffi::SQLITE_BUSY,
                message: "database is locked: another transaction is open".into(),
            });
        }
        self.session = Some(Session { ts_ms, seed, stmts: Vec::new(), aborted: None, open: false });
        self.session_open()
    }

    /// Open the speculative SQLite transaction, nested as an applied entry is (so that its
    /// statements behave exactly as they will when the entry is applied).
    fn session_open(&mut self) -> Result<()> {
        let Some((ts, seed)) = self.session.as_ref().map(|s| (s.ts_ms, s.seed)) else { return Ok(()) };
        self.ctl("BEGIN")?;
        self.ctl("SAVEPOINT _hiqlite_entry")?;
        self.reset_connection_state()?;
        det::enter_entry(ts, seed);
        if let Some(s) = self.session.as_mut() {
            s.open = true;
        }
        Ok(())
    }

    /// Roll the speculative transaction back (nothing of it was committed).
    fn session_close(&mut self) {
        let Some(s) = self.session.as_mut() else { return };
        if !s.open {
            return;
        }
        s.open = false;
        det::leave_entry();
        if !self.conn.is_autocommit() {
            if let Err(e) = self.ctl("ROLLBACK") {
                tracing::error!("rolling back an interactive transaction failed: {e}");
            }
        }
        // Nothing was committed: the query cache keeps everything.
        self.changed.clear();
        self.changed_all = false;
    }

    fn session_exec(&mut self, stmt: &Statement) -> Result<ExecResult> {
        self.session_mode.store(true, Ordering::Relaxed);
        let r = self.user_exec(&stmt.sql, &stmt.params);
        self.session_mode.store(false, Ordering::Relaxed);
        r
    }

    /// Run one statement of the open transaction.
    pub(super) fn tx_exec(&mut self, stmt: Statement) -> Result<ExecResult> {
        match self.session.as_ref() {
            None => return Err(no_transaction()),
            Some(s) => {
                if let Some(e) = &s.aborted {
                    return Err(e.clone());
                }
            }
        }
        let r = self.session_exec(&stmt);
        let ended = self.conn.is_autocommit();
        if let Some(s) = self.session.as_mut() {
            s.stmts.push((stmt, r.is_ok()));
            if ended {
                // A ROLLBACK conflict clause (or RAISE(ROLLBACK)) ended the transaction, as in
                // SQLite: it is over, nothing of it stays.
                s.open = false;
                s.aborted = Some(no_transaction());
                det::leave_entry();
            }
        }
        r
    }

    /// Whether the open transaction may commit now: SQLite refuses a COMMIT while deferred
    /// foreign-key violations remain (and the transaction stays open).
    pub(super) fn tx_check_commit(&self) -> Result<()> {
        match self.session.as_ref() {
            None => Err(no_transaction()),
            Some(s) if s.aborted.is_some() => Err(s.aborted.clone().unwrap_or_else(no_transaction)),
            Some(_) => self.deferred_fk_violation().map_or(Ok(()), Err),
        }
    }

    /// End the transaction: roll the speculative work back and hand the statements over for a
    /// commit (an error if it cannot commit any more).
    pub(super) fn tx_end(&mut self) -> Result<Recorded> {
        self.session_close();
        let s = self.session.take().ok_or_else(no_transaction)?;
        if let Some(e) = s.aborted {
            return Err(e);
        }
        Ok(Recorded { stmts: s.stmts.into_iter().map(|(st, _)| st).collect(), ts_ms: s.ts_ms, seed: s.seed })
    }

    /// Put the speculative run aside before work that must see only committed state.
    pub(super) fn suspend_session(&mut self) {
        self.session_close();
    }

    /// Redo the speculative run after [`State::suspend_session`].
    pub(super) fn resume_session(&mut self) {
        let Some(s) = self.session.as_ref() else { return };
        if s.aborted.is_some() || s.open {
            return;
        }
        let stmts = s.stmts.clone();
        let diverged = match self.session_open() {
            Err(e) => Some(e),
            Ok(()) => {
                let mut why = None;
                for (st, ok) in &stmts {
                    let r = self.session_exec(st);
                    if r.is_ok() != *ok || self.conn.is_autocommit() {
                        why = Some(Error::Sql {
                            code: rusqlite::ffi::SQLITE_ABORT,
                            message: "the transaction was aborted: the data it read changed".into(),
                        });
                        break;
                    }
                }
                why
            }
        };
        if let Some(e) = diverged {
            self.session_close();
            if let Some(s) = self.session.as_mut() {
                s.aborted = Some(e);
            }
        }
    }

    /// Drop the transaction (restore, shutdown).
    pub(super) fn abort_session(&mut self) {
        self.session_close();
        self.session = None;
    }

    /// Apply a committed `Command::Session` inside the entry's savepoint.
    pub(super) fn apply_session(&mut self, stmts: &[Statement], ts_ms: i64, seed: u64) -> Result<Response> {
        self.reset_connection_state()?;
        det::enter_entry(ts_ms, seed);
        let mut resp = Response::default();
        for s in stmts {
            let r = self.session_exec(s);
            let ended = self.conn.is_autocommit();
            resp.results.push(r);
            if ended {
                break;
            }
        }
        det::leave_entry();
        // Checked before the commit was proposed, so this holds on every replica; should it not,
        // the entry is undone everywhere alike.
        if let Some(e) = self.deferred_fk_violation() {
            resp.results.push(Err(e));
            resp.rolled_back = true;
        }
        Ok(resp)
    }
}
