//! A pool of read-only connections. Queries run on the caller's thread: a point lookup costs
//! about a microsecond inside SQLite, far less than a hop to another thread on this class of
//! machine, so the pool only hands out connections.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::Connection;

use crate::error::Result;
use crate::value::{Params, Rows};

pub(crate) struct ReadPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
    /// The cluster's foreign-key setting, as the writer applied it.
    foreign_keys: super::writer::FkSetting,
}

impl ReadPool {
    pub(crate) fn new(path: PathBuf, max_idle: usize, foreign_keys: super::writer::FkSetting) -> Self {
        ReadPool { path, idle: Mutex::new(Vec::new()), max_idle: max_idle.max(1), foreign_keys }
    }

    fn take(&self) -> Result<Connection> {
        let popped = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        match popped {
            Some(c) => Ok(c),
            None => super::open_reader(&self.path),
        }
    }

    fn give(&self, conn: Connection) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push(conn);
        }
    }

    /// The database file.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Run `f` with a pooled read-only connection.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.take()?;
        let r = f(&conn);
        // A connection left inside a transaction (should not happen) is dropped, not reused.
        if conn.is_autocommit() {
            self.give(conn);
        }
        r
    }

    pub(crate) fn query(&self, sql: &str, params: &Params) -> Result<Rows> {
        if params.is_empty() && crate::sqlkind::is_foreign_keys_query(sql) {
            // Enforcement is the writer's; a read connection's own flag means nothing.
            let on = self.foreign_keys.load(std::sync::atomic::Ordering::Acquire) == super::writer::FK_ON;
            return Ok(Rows {
                columns: vec!["foreign_keys".into()],
                types: vec![String::new()],
                rows: vec![vec![crate::Value::Integer(i64::from(on))]],
            });
        }
        self.with(|c| super::exec::query(c, sql, params))
    }

    /// Drop idle connections (after the database file was replaced).
    pub(crate) fn clear(&self) {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
    }
}
