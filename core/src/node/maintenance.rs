//! Copies of the data: online backups, snapshots on demand, SQL dumps, and turning an uploaded
//! SQLite file into the statements that load it.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::Node;
use crate::error::{Error, Result};
use crate::value::Statement;

impl Node {
    /// Write a consistent online copy of the database to `dest`: a standalone SQLite file of the
    /// user's objects, followed by hiqlite's state (applied log id, membership, foreign-key
    /// setting, migrations; see `sqlite/meta.rs`), which SQLite ignores. Writes go on meanwhile.
    /// Returns the log index the copy reflects.
    pub async fn backup(&self, dest: &Path) -> Result<Option<u64>> {
        if dest.exists() {
            return Err(Error::InvalidRequest(format!(
                "{} exists; refusing to overwrite it",
                dest.display()
            )));
        }
        let pinned = self.inner.writer.pin().await?;
        let index = pinned.applied.0.map(|l| l.index);
        let tmp = dest.with_extension("partial");
        let tmp2 = tmp.clone();
        tokio::task::spawn_blocking(move || crate::sqlite::writer::copy_pinned(&pinned, &tmp2))
            .await
            .map_err(Error::storage)??;
        std::fs::rename(&tmp, dest)?;
        Ok(index)
    }

    /// Trigger a snapshot now and wait until it is built.
    pub async fn snapshot(&self) -> Result<()> {
        let before = self.inner.snapshots.built.load(Ordering::Relaxed);
        self.inner.raft.trigger().snapshot().await.map_err(Error::raft)?;
        let deadline = Instant::now() + self.timeout();
        while self.inner.snapshots.built.load(Ordering::Relaxed) == before {
            if Instant::now() >= deadline {
                return Err(Error::Timeout("snapshot not built in time".into()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// This replica as SQL text (`.dump` style).
    pub(crate) fn dump_sql(&self, tables: Option<&[String]>) -> Result<String> {
        self.inner.reads.with(|c| crate::sqlite::dump::dump(c, tables))
    }

    /// The statements that replace every user table and view with the contents of the SQLite
    /// database file `path` (for `/db/load`).
    pub(crate) fn load_statements(&self, path: &Path) -> Result<Vec<Statement>> {
        let src = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        let mut all = self.inner.reads.with(|c| {
            let mut st = c.prepare(
                "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') \
                 AND name NOT LIKE 'sqlite_%'",
            )?;
            let drops = st
                .query_map([], |r| {
                    let (kind, name): (String, String) = (r.get(0)?, r.get(1)?);
                    Ok(format!("DROP {} IF EXISTS \"{}\";", kind.to_uppercase(), name.replace('"', "\"\"")))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(drops)
        })?;
        // A file of an earlier hiqlite version holds its state in `_hiqlite_*` tables: not data.
        let legacy = crate::sqlite::meta::bundled_state(path)?.is_none();
        // Rows arrive table by table, children possibly before parents: foreign keys are
        // checked once, at the end of the load (the command).
        all.insert(0, "PRAGMA defer_foreign_keys=ON".to_string());
        all.extend(crate::sqlite::dump::statements(&src, legacy)?);
        Ok(all.into_iter().map(Statement::from).collect())
    }
}
