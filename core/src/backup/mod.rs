//! Backups to object storage: the stored form (`codec`), destinations and names (`store`),
//! settings (`config`), and fetching one back. The leader's schedule is `node/backups.rs`.

mod codec;
mod config;
mod pitr;
pub(crate) mod store;

use std::path::Path;

pub use crate::status::BackupStatus;
pub use codec::BackupKey;
pub use config::BackupConfig;
pub use pitr::{restore_to, Restored, Target};
pub use store::BackupObject;

use crate::error::{Error, Result};
pub(crate) use codec::encode;
use store::Destination;

/// The backups in `cfg.destination`, oldest first.
pub async fn list(cfg: &BackupConfig) -> Result<Vec<BackupObject>> {
    Destination::parse(cfg)?.list().await
}

/// Fetch the newest backup of `cfg.destination` (decrypted with `cfg`'s key, decompressed) into
/// the backup file `to` (the form `Client::backup` writes and `restore_from` reads). `None`:
/// the destination holds no backup.
pub async fn fetch_newest(cfg: &BackupConfig, to: &Path) -> Result<Option<BackupObject>> {
    let dest = Destination::parse(cfg)?;
    let Some(newest) = dest.list().await?.pop() else { return Ok(None) };
    fetch_from(&dest, cfg, &newest, to).await?;
    Ok(Some(newest))
}

/// Fetch the backup named `name` of `cfg.destination` into the backup file `to`.
pub async fn fetch(cfg: &BackupConfig, name: &str, to: &Path) -> Result<BackupObject> {
    let dest = Destination::parse(cfg)?;
    let found = dest.list().await?.into_iter().find(|b| b.name == name);
    let obj =
        found.ok_or_else(|| Error::InvalidRequest(format!("no backup named {name} in {}", dest.url)))?;
    fetch_from(&dest, cfg, &obj, to).await?;
    Ok(obj)
}

async fn fetch_from(dest: &Destination, cfg: &BackupConfig, obj: &BackupObject, to: &Path) -> Result<()> {
    let key = cfg.key()?;
    let stored = {
        let mut p = to.as_os_str().to_owned();
        p.push(".download");
        std::path::PathBuf::from(p)
    };
    dest.download(&obj.name, &stored).await?;
    let (s, t) = (stored.clone(), to.to_path_buf());
    let r = tokio::task::spawn_blocking(move || codec::decode(&s, &t, key.as_ref()))
        .await
        .map_err(Error::storage);
    let _ = std::fs::remove_file(&stored);
    r??;
    Ok(())
}
