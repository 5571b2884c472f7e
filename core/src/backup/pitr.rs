//! Point-in-time restore: the newest backup taken before the target, then the archived log
//! segments after it, applied entry by entry by a writer of its own (the same apply code the
//! cluster runs, so the result is what the cluster held) up to a log index or up to the last
//! entry the leader stamped at or before a moment. The result is a backup file: `hiqlite serve
//! --restore FILE` starts a new cluster from it.

use std::path::Path;
use std::sync::Arc;

use openraft::EntryPayload;

use super::store::Destination;
use super::{codec, BackupConfig};
use crate::command::Command;
use crate::error::{Error, Result};
use crate::raft::log_store::archive::decode_segment;

/// How far a point-in-time restore goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Every entry up to and including this log index.
    Index(u64),
    /// Every entry the leader stamped at or before this moment (Unix milliseconds). An
    /// interactive transaction counts at the moment it began.
    Time(i64),
}

/// What a point-in-time restore produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    /// The backup it started from.
    pub backup: String,
    /// The last log index the result holds.
    pub index: u64,
    /// The stamp of the last applied entry that had one (Unix milliseconds).
    pub last_ts_ms: Option<i64>,
    /// False when the archive ended before the target: the result holds everything archived
    /// so far (newer entries are on the cluster, not yet in the destination).
    pub reached_target: bool,
}

/// The leader's stamp of a command (`None`: it has none).
fn stamp(cmd: &Command) -> Option<i64> {
    match cmd {
        Command::Execute { ts_ms, .. }
        | Command::Migrate { ts_ms, .. }
        | Command::Session { ts_ms, .. }
        | Command::Coord { ts_ms, .. } => Some(*ts_ms),
        Command::Batch(cmds) => cmds.iter().find_map(stamp),
    }
}

/// Rebuild the database of `cfg.destination` as of `target` into the backup file `out`.
pub async fn restore_to(cfg: &BackupConfig, target: Target, out: &Path) -> Result<Restored> {
    if out.exists() {
        return Err(Error::InvalidRequest(format!("{} exists; refusing to overwrite it", out.display())));
    }
    let dest = Destination::parse(cfg)?;
    let key = cfg.key()?;
    let base = dest
        .list()
        .await?
        .into_iter()
        .rfind(|b| match target {
            Target::Index(n) => b.index <= n,
            Target::Time(t) => i64::try_from(b.taken_ms).is_ok_and(|ms| ms <= t),
        })
        .ok_or_else(|| {
            Error::InvalidRequest(format!("no backup in {} was taken before {target:?}", dest.url))
        })?;
    let work = tempfile_dir(out)?;
    let r = rebuild(&dest, cfg, key.as_ref(), &base, target, work.path(), out).await;
    drop(work);
    r
}

fn tempfile_dir(out: &Path) -> Result<tempfile_like::Dir> {
    let parent = out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    tempfile_like::Dir::new(parent)
}

async fn rebuild(
    dest: &Destination,
    cfg: &BackupConfig,
    key: Option<&codec::BackupKey>,
    base: &super::BackupObject,
    target: Target,
    work: &Path,
    out: &Path,
) -> Result<Restored> {
    let backup = work.join("base.db");
    super::fetch_from(dest, cfg, base, &backup).await?;
    let db_dir = work.join("db");
    std::fs::create_dir_all(&db_dir)?;
    let db = db_dir.join("hiqlite.db");
    crate::sqlite::meta::seed_from(&backup, &db, false)?;
    let cache =
        Arc::new(crate::cache::QueryCache::new(crate::CacheConfig { enabled: false, ..Default::default() }));
    let writer = crate::sqlite::writer::Writer::start(&db, cache)?;
    let r = replay(dest, key, &writer, target, work).await;
    let r = match r {
        Ok((index, last_ts_ms, reached_target)) => {
            let pinned = writer.pin().await?;
            let out2 = out.to_path_buf();
            tokio::task::spawn_blocking(move || crate::sqlite::writer::copy_pinned(&pinned, &out2))
                .await
                .map_err(Error::storage)??;
            Ok(Restored { backup: base.name.clone(), index, last_ts_ms, reached_target })
        }
        Err(e) => Err(e),
    };
    writer.shutdown().await?;
    r
}

/// Apply the archived entries after the writer's position up to `target`.
async fn replay(
    dest: &Destination,
    key: Option<&codec::BackupKey>,
    writer: &crate::sqlite::writer::Writer,
    target: Target,
    work: &Path,
) -> Result<(u64, Option<i64>, bool)> {
    let mut applied = writer.applied().0.map_or(0, |p| p.index);
    let mut last_ts = None;
    for seg in dest.list_segments().await? {
        if seg.last <= applied {
            continue;
        }
        if seg.first > applied + 1 {
            return Err(Error::Storage(format!(
                "the archive in {} misses log entries {}..{}: restore to a point before them, or \
                 from a backup taken after them",
                dest.url,
                applied + 1,
                seg.first - 1
            )));
        }
        let (stored, plain) = (work.join("segment.download"), work.join("segment"));
        dest.download(&seg.name, &stored).await?;
        let (s, p, k) = (stored.clone(), plain.clone(), key.cloned());
        tokio::task::spawn_blocking(move || codec::decode(&s, &p, k.as_ref()))
            .await
            .map_err(Error::storage)??;
        let entries = decode_segment(&std::fs::read(&plain)?, Path::new(&seg.name))?;
        let mut run = Vec::new();
        let mut done = false;
        for e in entries {
            if e.log_id.index <= applied {
                continue;
            }
            let past = match (&e.payload, target) {
                (_, Target::Index(n)) => e.log_id.index > n,
                (EntryPayload::Normal(cmd), Target::Time(t)) => stamp(cmd).is_some_and(|ts| ts > t),
                _ => false,
            };
            if past {
                done = true;
                break;
            }
            if let EntryPayload::Normal(cmd) = &e.payload {
                last_ts = stamp(cmd).or(last_ts);
            }
            applied = e.log_id.index;
            run.push(crate::raft::state_machine::to_op(e)?);
        }
        if !run.is_empty() {
            writer.apply(run).await?;
        }
        if done {
            return Ok((applied, last_ts, true));
        }
    }
    let reached = matches!(target, Target::Index(n) if applied >= n);
    Ok((applied, last_ts, reached))
}

/// A directory beside the output removed when dropped (the work files are as large as the
/// database, so not in /tmp).
mod tempfile_like {
    use std::path::{Path, PathBuf};

    pub(super) struct Dir(PathBuf);

    impl Dir {
        pub(super) fn new(parent: &Path) -> crate::Result<Self> {
            let p = parent.join(format!(".hiqlite-restore-{}-{}", std::process::id(), crate::node::now_ms()));
            std::fs::create_dir_all(&p)?;
            Ok(Dir(p))
        }

        pub(super) fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}
