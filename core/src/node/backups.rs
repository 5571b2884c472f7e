//! Scheduled backups: every `backup.interval_secs` the leader writes an online backup, encodes
//! it (zstd, optionally sealed; `backup/codec.rs`), uploads it and applies the retention
//! policy. A failed attempt is retried with backoff until the next slot; nothing here touches
//! the write path beyond the read transaction an online backup holds.

use std::path::Path;
use std::time::{Duration, Instant};

use super::{now_ms, Node};
use crate::backup::store::{expired, BackupObject, Destination};
use crate::backup::{BackupConfig, BackupKey, BackupStatus};
use crate::error::{Error, Result};

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
            let prepared = Destination::parse(&cfg).and_then(|d| Ok((d, cfg.key()?)));
            let (dest, key) = match prepared {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!("scheduled backups are off: {e}");
                    node.note_backup(|s| s.last_error = Some(e.to_string()));
                    return;
                }
            };
            let interval = Duration::from_secs(cfg.interval_secs);
            let mut next = Instant::now() + interval;
            loop {
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep_until(next.into()) => {}
                }
                next = (next + interval).max(Instant::now());
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
        let taken_ms = now_ms();
        let plain = dir.join("backup.db");
        let index = self.backup(&plain).await?.unwrap_or(0);
        let name = BackupObject::name_for(taken_ms, index, key.is_some());
        let stored = dir.join(&name);
        let (p, s, level, k) = (plain.clone(), stored.clone(), cfg.compression_level, key.cloned());
        let size = tokio::task::spawn_blocking(move || crate::backup::encode(&p, &s, level, k.as_ref()))
            .await
            .map_err(Error::storage)??;
        dest.upload(&stored, &name).await?;
        Ok(BackupObject { name, taken_ms, index, size, encrypted: key.is_some() })
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
        for name in expired(&all, cfg.keep, cfg.max_age_secs.map(|s| s * 1000), now_ms()) {
            match dest.delete(&name).await {
                Ok(()) => self.note_backup(|s| s.pruned += 1),
                Err(e) => tracing::warn!("deleting old backup {name}: {e}"),
            }
        }
    }
}
