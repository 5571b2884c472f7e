//! The replicated command and its answer: what one Raft log entry asks the state machine
//! (`Command`, with its `ExecMode` and `Migration`s), what it answers (`Response`), and what the
//! cluster records about each member (`Member`). Neutral data: neither consensus nor SQLite.

use serde::{Deserialize, Serialize};

#[cfg(feature = "server")]
use crate::error::Error;
#[cfg(feature = "server")]
use crate::value::{ExecResult, Statement};

/// What the cluster records about each member: where to reach it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// `host:port` of the peer (Raft) listener.
    pub raft_addr: String,
    /// `host:port` of the client API listener.
    pub api_addr: String,
}

/// How the statements of one [`Command::Execute`] are applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExecMode {
    /// All statements or none: the first error rolls the whole command back.
    Transaction,
    /// Each statement on its own (rqlite's default): an error undoes only that statement.
    Independent,
}

/// A numbered SQL migration (see `Client::migrate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Migration {
    /// Position in the ordered list; applied in increasing order, each once.
    pub id: u32,
    /// A human name, recorded with the migration.
    pub name: String,
    /// The SQL script (may hold several statements).
    pub sql: String,
}

impl Migration {
    /// The migrations of a folder of numbered SQL files, in order: `<id>_<name>.sql` (e.g.
    /// `1_init.sql`, `002_add_index.sql`); other files are ignored. Two files with one id, or a
    /// file that is not UTF-8, is an error naming it.
    pub fn from_dir(dir: impl AsRef<std::path::Path>) -> crate::Result<Vec<Migration>> {
        let dir = dir.as_ref();
        let bad =
            |why: String| crate::Error::InvalidRequest(format!("migrations in {}: {why}", dir.display()));
        let mut out: Vec<Migration> = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(|e| bad(e.to_string()))? {
            let path = entry.map_err(|e| bad(e.to_string()))?.path();
            let Some(file) = path.file_name().and_then(|f| f.to_str()) else { continue };
            let Some(stem) = file.strip_suffix(".sql") else { continue };
            let (num, name) = stem.split_once('_').unwrap_or((stem, ""));
            let Ok(id) = num.parse::<u32>() else { continue };
            let sql = std::fs::read_to_string(&path).map_err(|e| bad(format!("{file}: {e}")))?;
            if let Some(other) = out.iter().find(|m| m.id == id) {
                return Err(bad(format!("{file} and the migration `{}` both have id {id}", other.name)));
            }
            out.push(Migration { id, name: name.to_string(), sql });
        }
        out.sort_by_key(|m| m.id);
        Ok(out)
    }
}

#[cfg(feature = "server")]
/// The replicated log payload. `ts_ms` and `seed` are stamped by the leader, so that
/// `datetime('now')`, `random()` and friends give the same answer on every replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Command {
    /// Run statements.
    Execute {
        /// The statements, in order.
        #[serde(with = "crate::stmts_wire")]
        stmts: Vec<Statement>,
        /// Atomic or independent.
        mode: ExecMode,
        /// Unix time in milliseconds that `'now'` means while applying this entry.
        ts_ms: i64,
        /// Seed of `random()` / `randomblob()` while applying this entry.
        seed: u64,
    },
    /// Apply the migrations not applied yet, each atomically, in order.
    Migrate {
        /// All migrations, in order.
        migrations: Vec<Migration>,
        /// As in `Execute`.
        ts_ms: i64,
        /// As in `Execute`.
        seed: u64,
    },
    /// Several independent client commands proposed as one log entry (group commit at the
    /// proposer: one append, one fsync and one replication round for all of them). Each is
    /// applied in its own savepoint and answered in `Response::batch`.
    Batch(Vec<Command>),
    /// A committed interactive transaction: the statements its client ran, in order, replayed
    /// with the clock and seed the transaction ran with, so every replica reaches exactly the
    /// results the client saw. A statement's error is kept in its slot, as SQLite keeps the
    /// transaction open after a failed statement; savepoints are allowed.
    Session {
        /// The statements, in the order the client ran them (failed ones included).
        #[serde(with = "crate::stmts_wire")]
        stmts: Vec<Statement>,
        /// The transaction's `'now'`, fixed when it began.
        ts_ms: i64,
        /// The transaction's random seed, fixed when it began.
        seed: u64,
    },
    /// A coordination primitive (key/value, counter; `coord.rs`), applied outside the user's
    /// database.
    Coord {
        /// What to do.
        op: crate::coord::CoordOp,
        /// The leader's clock: expiry times are computed from it and compared with it.
        ts_ms: i64,
    },
}

#[cfg(feature = "server")]
impl Command {
    /// Stamp the leader's clock and a fresh seed into the command.
    pub(crate) fn stamp(&mut self) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let fresh = getrandom::u64().unwrap_or(now as u64 ^ 0x9E37_79B9_7F4A_7C15);
        self.stamp_with(now, fresh);
    }

    /// How many statements applying this command runs (migrations count as many), a measure of
    /// how long the apply may take.
    pub(crate) fn statement_count(&self) -> usize {
        match self {
            Command::Execute { stmts, .. } | Command::Session { stmts, .. } => stmts.len(),
            Command::Migrate { migrations, .. } => migrations.len() * 16,
            Command::Batch(cmds) => cmds.iter().map(Command::statement_count).sum(),
            Command::Coord { .. } => 1,
        }
    }

    fn stamp_with(&mut self, now: i64, seed_base: u64) {
        match self {
            Command::Execute { ts_ms, seed, .. } | Command::Migrate { ts_ms, seed, .. } => {
                *ts_ms = now;
                *seed = seed_base;
            }
            // Stamped when the transaction began: its statements already ran with it.
            Command::Session { .. } => {}
            Command::Coord { ts_ms, .. } => *ts_ms = now,
            Command::Batch(cmds) => {
                for (i, c) in cmds.iter_mut().enumerate() {
                    c.stamp_with(now, seed_base.wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
                }
            }
        }
    }
}

#[cfg(feature = "server")]
/// The state machine's answer to one log entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Response {
    /// One result per statement (for a rolled-back transaction: up to the failing statement).
    pub results: Vec<Result<ExecResult, Error>>,
    /// True when a transaction failed and nothing of it was applied.
    pub rolled_back: bool,
    /// For [`Command::Batch`]: one response per command, in order.
    pub batch: Vec<Response>,
    /// Index of the log entry this answer comes from.
    pub log_index: u64,
    /// For [`Command::Coord`]: its answer.
    pub coord: Option<crate::coord::CoordAnswer>,
}

#[cfg(feature = "server")]
impl Response {
    pub(crate) fn set_index(&mut self, index: u64) {
        self.log_index = index;
        for b in &mut self.batch {
            b.set_index(index);
        }
    }
}
