//! Commands the writer applies outside its apply transaction, in SQLite's autocommit mode
//! (VACUUM, a `foreign_keys` assignment): each statement commits on its own, between the
//! transactions of what precedes and follows it in the run.

use std::sync::atomic::Ordering;

use super::apply::is_environmental;
use super::meta::LogPos;
use super::writer::State;
use super::{det, exec};
use crate::command::{Command, ExecMode, Response};
use crate::error::{Error, Result};
use crate::value::ExecResult;

impl State {
    /// Apply one command outside the apply transaction, in SQLite's autocommit mode: each
    /// statement of it commits on its own (as `sqlite3_exec` would run the text), VACUUM runs
    /// between transactions, and a `foreign_keys` assignment takes effect on the connection and
    /// is recorded as the cluster's setting. Reported applied once it is done.
    pub(super) fn apply_alone(&mut self, pos: LogPos, cmd: &Command) -> Result<Response> {
        let Command::Execute { stmts, mode, ts_ms, seed } = cmd else {
            return Err(Error::Storage("only Execute commands are applied alone".into()));
        };
        self.reset_connection_state()?;
        det::enter_entry(*ts_ms, *seed);
        let mut resp = Response::default();
        let mut fatal = None;
        for s in stmts {
            let r = self.run_text_alone(&s.sql, &s.params);
            if let Err(e) = &r {
                if is_environmental(e) {
                    fatal = Some(e.clone());
                    break;
                }
            }
            let failed = r.is_err();
            resp.results.push(r);
            if failed && *mode == ExecMode::Transaction {
                break;
            }
        }
        det::leave_entry();
        if !self.conn.is_autocommit() {
            let _ = self.ctl("ROLLBACK");
        }
        let mut feed = Vec::new();
        if fatal.is_none() && self.change_retention > 0 {
            // Its statements committed one by one; their changes are stored after them (a crash
            // in between replays the entry from the last base record, as for its statements).
            self.pending_changes.end_entry(pos.index);
            self.ctl("BEGIN")?;
            match self.pending_changes.store(&self.conn, self.change_retention) {
                Ok(f) => {
                    self.ctl("COMMIT")?;
                    feed = f;
                }
                Err(e) => {
                    let _ = self.ctl("ROLLBACK");
                    return Err(e);
                }
            }
        }
        self.apply_seq.fetch_add(1, Ordering::AcqRel);
        self.invalidate_changed();
        if fatal.is_none() {
            self.applied = (Some(pos), self.applied.1.clone());
            self.entries_applied.fetch_add(1, Ordering::Relaxed);
            *self.shared.lock().unwrap_or_else(|p| p.into_inner()) = self.applied.clone();
        }
        self.apply_seq.fetch_add(1, Ordering::AcqRel);
        if !feed.is_empty() {
            // No receiver is not an error: nobody follows changes on this node.
            let _ = self.change_feed.send(super::changes::Feed::Run(std::sync::Arc::new(feed)));
        }
        if let Some(e) = fatal {
            return Err(e);
        }
        resp.set_index(pos.index);
        Ok(resp)
    }

    /// One statement text (maybe several statements) in autocommit mode; results are summed as
    /// [`exec::execute`] sums them, and the first error ends the text.
    fn run_text_alone(&mut self, sql: &str, params: &crate::value::Params) -> Result<ExecResult> {
        if !params.is_empty() {
            return self.run_one_alone(sql, params);
        }
        let mut total = ExecResult::default();
        let mut any = false;
        for piece in split_statements(sql) {
            exec::add_up(&mut total, self.run_one_alone(piece, params)?);
            any = true;
        }
        if !any {
            total.last_insert_id = self.conn.last_insert_rowid();
        }
        Ok(total)
    }

    fn run_one_alone(&mut self, sql: &str, params: &crate::value::Params) -> Result<ExecResult> {
        use crate::sqlkind::Special;
        match crate::sqlkind::special_statement(sql) {
            Some(Special::VacuumInto) => Err(Error::Sql {
                code: rusqlite::ffi::SQLITE_AUTH,
                message: format!(
                    "`{}` is not allowed in replicated writes: VACUUM INTO writes a file on every node's \
                     disk; take a backup instead (Client::backup, /db/backup)",
                    sql.trim().trim_end_matches(';')
                ),
            }),
            Some(Special::Vacuum(schema)) if schema.as_deref().is_some_and(|s| s != "main") => {
                Err(Error::Sql {
                    code: rusqlite::ffi::SQLITE_ERROR,
                    message: format!("`{}`: only the main database can be vacuumed", sql.trim()),
                })
            }
            Some(Special::Vacuum(_)) => {
                // SQLite's own statement, outside any transaction; it keeps changes() as it was.
                let r = exec::execute(&self.conn, sql, params);
                // Rowids of tables without an INTEGER PRIMARY KEY may be renumbered.
                self.changed_all = true;
                r
            }
            Some(Special::ForeignKeys) => {
                if sql.contains(super::INITIAL_FK_MARK)
                    && self.foreign_keys.load(Ordering::Acquire) != super::writer::FK_UNSET
                {
                    // A new cluster's initial setting, and the cluster has one already.
                    return Ok(ExecResult::default());
                }
                let r = self.user_exec(sql, params)?;
                // SQLite parsed the value (ON/1/yes/true...): read back what it made of it.
                let on: bool = self.conn.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
                let before = self.foreign_keys.load(Ordering::Acquire);
                if before != if on { super::writer::FK_ON } else { super::writer::FK_OFF } {
                    super::meta::write_fk(&self.conn, on)?;
                    super::writer::sync_fk(&self.conn, &self.foreign_keys)?;
                    // What a statement writes now includes foreign-key actions (or no longer).
                    self.learned.clear();
                    self.changed_all = true;
                }
                Ok(r)
            }
            None => {
                self.ctl("BEGIN")?;
                let mut r = self.user_exec(sql, params);
                if self.conn.is_autocommit() {
                    // A ROLLBACK conflict ended the transaction: the statement failed alone.
                    return r;
                }
                if r.is_ok() {
                    if let Some(e) = self.deferred_fk_violation() {
                        r = Err(e);
                    }
                }
                if r.is_ok() {
                    self.ctl("COMMIT")?;
                } else {
                    self.ctl("ROLLBACK")?;
                }
                r
            }
        }
    }
}

/// The statements of `sql`, split where SQLite itself would end them (`sqlite3_complete`, which
/// knows string literals, comments and trigger bodies).
fn split_statements(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, b) in sql.bytes().enumerate() {
        if b != b';' {
            continue;
        }
        let piece = &sql[start..=i];
        let Ok(c) = std::ffi::CString::new(piece) else { break };
        // SAFETY: a valid NUL-terminated string, read only during the call.
        if unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) } != 0 {
            if !piece.trim_matches(|c: char| c.is_whitespace() || c == ';').is_empty() {
                out.push(piece);
            }
            start = i + 1;
        }
    }
    let rest = &sql[start..];
    if crate::sqlkind::statement_kind(rest) != crate::sqlkind::StatementKind::Empty {
        out.push(rest);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn statements_split_as_sqlite_ends_them() {
        let sql = "CREATE TABLE t (a); INSERT INTO t VALUES ('x;y'); -- c;\n\
                   CREATE TRIGGER g AFTER INSERT ON t BEGIN DELETE FROM t; SELECT 1; END; VACUUM";
        let got = super::split_statements(sql);
        assert_eq!(got.len(), 4, "{got:?}");
        assert!(got[2].trim_start().starts_with("-- c;\n") && got[2].trim_end().ends_with("END;"), "{got:?}");
        assert_eq!(got[3].trim(), "VACUUM");
    }
}
