//! Scheduled backups: every `backup.interval_secs` the leader writes an online backup, encodes
//! it (zstd, optionally sealed; `backup/codec.rs`), uploads it and applies the retention
//! policy. A failed attempt is retried with backoff until the next slot; nothing here touches
//! the write path beyond the read transaction an online backup holds.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{now_ms, Node};
use crate::backup::store::{expired, ArchivedSegment, BackupObject, Destination};
use crate::backup::{BackupConfig, BackupKey, BackupStatus};
use crate::error::{Error, Result};

/// Archived segments a node that is not the leader keeps at most, waiting to lead.
const MAX_PENDING_SEGMENTS: usize = 256;

impl Node {
    /// How scheduled backups are doing (`None`: none configured).
    pub(crate) fn backup_status(&self) -> Option<BackupStatus> {
        self.inner.backup_status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn note_backup(&self, f: impl FnOnce(&mut BackupStatus)) {
        if let Some(s) = self.inner.backup_status.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
            f(s);
        }
    }

    /// Start the schedule, if backups are configured.
    pub(crate) fn spawn_backups(&self) {
        let Some(cfg) = self.inner.config.backup.clone() else { return };
        let node = self.clone();
        let mut stop = self.inner.shutdown_tx.subscribe();
        tokio::spawn(async move {
            // Validated at start: these cannot fail here, but a failure is reported, not hidden.
            let prepared = Destination::parse(&cfg).and_then(|d| Ok((d, cfg.key()?, cfg.cron()?)));
            let (dest, key, cron) = match prepared {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("scheduled backups are off: {e}");
                    node.note_backup(|s| s.last_error = Some(e.to_string()));
                    return;
                }
            };
            // Archived log segments go up more often than backups: they are what a
            // point-in-time restore can reach.
            let tick = Duration::from_secs(cfg.interval_secs).min(Duration::from_secs(5));
            let mut next = Instant::now() + cfg.until_next(cron.as_ref());
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(tick) => {}
                }
                if let Err(e) = node.archive_segments(&dest, &cfg, key.as_ref()).await {
                    tracing::warn!("archiving log segments to {}: {e}", dest.url);
                    node.note_backup(|s| s.last_error = Some(e.to_string()));
                }
                if Instant::now() < next {
                    continue;
                }
                next = Instant::now() + cfg.until_next(cron.as_ref());
                if !node.is_leader() {
                    continue;
                }
                let mut wait = Duration::from_secs(1);
                loop {
                    match node.store_backup(&dest, &cfg, key.as_ref()).await {
                        Ok(obj) => {
                            tracing::info!(object = %obj.name, index = obj.index, bytes = obj.size, "backup stored");
                            node.note_backup(|s| {
                                s.last_success_ms = Some(obj.taken_ms);
                                s.last_index = Some(obj.index);
                                s.last_bytes = obj.size;
                                s.last_object = Some(obj.name.clone());
                                s.stored += 1;
                                s.consecutive_failures = 0;
                                s.last_error = None;
                            });
                            node.prune_backups(&dest, &cfg).await;
                            break;
                        }
                        Err(e) => {
                            tracing::warn!("backup to {} failed (retrying in {wait:?}): {e}", dest.url);
                            node.note_backup(|s| {
                                s.failed += 1;
                                s.consecutive_failures += 1;
                                s.last_error = Some(e.to_string());
                            });
                        }
                    }
                    if Instant::now() + wait >= next || !node.is_leader() {
                        break;
                    }
                    tokio::select! {
                        _ = stop.changed() => return,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(Duration::from_secs(60));
                }
            }
        });
    }

    /// Take, encode and upload one backup.
    async fn store_backup(
        &self,
        dest: &Destination,
        cfg: &BackupConfig,
        key: Option<&BackupKey>,
    ) -> Result<BackupObject> {
        let dir = self.inner.config.data_dir.join("backup-tmp");
        // Leftovers of an attempt cut short (a crash) are of no use.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let r = self.store_backup_in(&dir, dest, cfg, key).await;
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    async fn store_backup_in(
        &self,
        dir: &Path,
        dest: &Destination,
        cfg: &BackupConfig,
        key: Option<&BackupKey>,
    ) -> Result<BackupObject> {
        let plain = dir.join("backup.db");
        let index = self.backup(&plain).await?.unwrap_or(0);
        // Read after the copy's pin: every entry in it was stamped before this moment, which a
        // point-in-time restore relies on when it picks a backup older than its target.
        let taken_ms = now_ms();
        let name = BackupObject::name_for(taken_ms, index, key.is_some());
        let stored = dir.join(&name);
        let (p, s, level, k) = (plain.clone(), stored.clone(), cfg.compression_level, key.cloned());
        let size = tokio::task::spawn_blocking(move || crate::backup::encode(&p, &s, level, k.as_ref()))
            .await
            .map_err(Error::storage)??;
        dest.upload(&stored, &name).await?;
        Ok(BackupObject { name, taken_ms, index, size, encrypted: key.is_some() })
    }

    /// Upload the log segments purges moved aside (`raft/log_store/archive.rs`), oldest first,
    /// and drop them locally. Only the leader uploads; other nodes drop what the destination
    /// already holds and keep the rest, so a node that becomes leader fills the gap.
    async fn archive_segments(
        &self,
        dest: &Destination,
        cfg: &BackupConfig,
        key: Option<&BackupKey>,
    ) -> Result<()> {
        let dir = self.inner.log.dir().join(crate::raft::log_store::archive::ARCHIVE_DIR);
        let mut files: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(&dir)?
            .flatten()
            .filter_map(|d| {
                let first = crate::raft::log_store::archive::segment_first(&d.file_name().to_string_lossy())?;
                Some((first, d.path()))
            })
            .collect();
        if files.is_empty() {
            return Ok(());
        }
        files.sort();
        let have: std::collections::HashSet<u64> =
            dest.list_segments().await?.iter().map(|s| s.first).collect();
        let leader = self.is_leader();
        let mut kept = Vec::new();
        for (first, path) in files {
            if have.contains(&first) {
                std::fs::remove_file(&path)?;
            } else if leader {
                self.upload_segment(dest, cfg, key, first, &path).await?;
                std::fs::remove_file(&path)?;
            } else {
                kept.push(path);
            }
        }
        // A follower that never leads keeps a bounded number.
        let excess = kept.len().saturating_sub(MAX_PENDING_SEGMENTS);
        for path in kept.into_iter().take(excess) {
            std::fs::remove_file(path)?;
        }
        Ok(())
    }

    async fn upload_segment(
        &self,
        dest: &Destination,
        cfg: &BackupConfig,
        key: Option<&BackupKey>,
        first: u64,
        path: &Path,
    ) -> Result<()> {
        let entries = crate::raft::log_store::archive::decode_segment(&std::fs::read(path)?, path)?;
        let Some(last) = entries.last().map(|e| e.log_id.index) else { return Ok(()) };
        let name = ArchivedSegment::name_for(first, last, key.is_some());
        let stored = path.with_extension("upload");
        let (p, s, level, k) = (path.to_path_buf(), stored.clone(), cfg.compression_level, key.cloned());
        let r = async {
            tokio::task::spawn_blocking(move || crate::backup::encode(&p, &s, level, k.as_ref()))
                .await
                .map_err(Error::storage)??;
            dest.upload(&stored, &name).await
        }
        .await;
        let _ = std::fs::remove_file(&stored);
        r
    }

    /// Delete what the retention policy no longer keeps; a failure is reported and retried
    /// after the next backup.
    async fn prune_backups(&self, dest: &Destination, cfg: &BackupConfig) {
        let all = match dest.list().await {
            Ok(all) => all,
            Err(e) => {
                tracing::warn!("listing backups for retention: {e}");
                return;
            }
        };
        let gone = expired(&all, cfg.keep, cfg.max_age_secs.map(|s| s * 1000), now_ms());
        for name in &gone {
            match dest.delete(name).await {
                Ok(()) => self.note_backup(|s| s.pruned += 1),
                Err(e) => tracing::warn!("deleting old backup {name}: {e}"),
            }
        }
        // Log segments older than the oldest kept backup can no longer be replayed onto one.
        let Some(oldest) = all.iter().find(|b| !gone.contains(&b.name)).map(|b| b.index) else { return };
        match dest.list_segments().await {
            Ok(segs) => {
                for seg in segs.into_iter().filter(|s| s.last <= oldest) {
                    if let Err(e) = dest.delete(&seg.name).await {
                        tracing::warn!("deleting old log segment {}: {e}", seg.name);
                    }
                }
            }
            Err(e) => tracing::warn!("listing log segments for retention: {e}"),
        }
    }
}
