//! A pool of read-only connections. Queries run on the caller's thread: a point lookup costs
//! about a microsecond inside SQLite, far less than a hop to another thread on this class of
//! machine, so the pool only hands out connections.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use crate::error::Result;
use crate::value::{Params, Rows};

pub(crate) struct ReadPool {
    path: PathBuf,
    /// Idle connections with the database generation they were opened on.
    idle: Mutex<Vec<(u64, Connection)>>,
    max_idle: usize,
    /// The writer's database generation (see [`super::writer::Writer::generation`]).
    generation: Arc<AtomicU64>,
    /// The cluster's foreign-key setting, as the writer applied it.
    foreign_keys: super::writer::FkSetting,
}

impl ReadPool {
    pub(crate) fn new(
        path: PathBuf,
        max_idle: usize,
        foreign_keys: super::writer::FkSetting,
        generation: Arc<AtomicU64>,
    ) -> Self {
        ReadPool { path, idle: Mutex::new(Vec::new()), max_idle: max_idle.max(1), foreign_keys, generation }
    }

    /// A connection on the current database file: one opened before a received snapshot
    /// replaced the file still reads the old one, and is dropped.
    fn take(&self) -> Result<(u64, Connection)> {
        let now = self.generation.load(Ordering::Acquire);
        loop {
            let popped = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            match popped {
                Some((g, c)) if g == now => return Ok((g, c)),
                Some(_) => continue,
                None => return Ok((now, super::open_reader(&self.path)?)),
            }
        }
    }

    fn give(&self, generation: u64, conn: Connection) {
        if generation != self.generation.load(Ordering::Acquire) {
            return;
        }
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.max_idle {
            idle.push((generation, conn));
        }
    }

    /// The database file.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Run `f` with a pooled read-only connection.
    pub(crate) fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let (generation, conn) = self.take()?;
        let r = f(&conn);
        // A connection left inside a transaction (should not happen) is dropped, not reused.
        if conn.is_autocommit() {
            self.give(generation, conn);
        }
        r
    }

    pub(crate) fn query(&self, sql: &str, params: &Params) -> Result<Rows> {
        if params.is_empty() && crate::sqlkind::is_foreign_keys_query(sql) {
            // Enforcement is the writer's; a read connection's own flag means nothing.
            let on = self.foreign_keys.load(Ordering::Acquire) == super::writer::FK_ON;
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
