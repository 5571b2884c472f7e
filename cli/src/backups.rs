//! `hiqlite backups`: list what a backup destination holds; and the destination half of
//! `hiqlite restore --from s3://...` (fetch a stored backup to a local file first).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use hiqlite::backup::BackupConfig;

#[derive(Args)]
pub struct BackupsArgs {
    /// The destination: `s3://BUCKET[/PREFIX]` (credentials, endpoint and region from the
    /// `AWS_*` variables) or a directory.
    pub destination: String,
}

/// Whether `from` names a backup destination rather than a local file.
pub fn is_destination(from: &str) -> bool {
    from.starts_with("s3://") || from.starts_with("file://") || Path::new(from).is_dir()
}

/// The destination `url` with the key from `HIQLITE_BACKUP_KEY`, S3 settings from `AWS_*`.
fn config(url: &str) -> BackupConfig {
    let mut cfg = BackupConfig::to(url);
    cfg.encryption_key = std::env::var("HIQLITE_BACKUP_KEY").ok();
    cfg.s3_allow_http = std::env::var("AWS_ALLOW_HTTP").is_ok_and(|v| v == "true" || v == "1");
    cfg
}

pub async fn list(a: BackupsArgs) -> anyhow::Result<()> {
    let all = hiqlite::backup::list(&config(&a.destination)).await?;
    if all.is_empty() {
        println!("no backups in {}", a.destination);
    }
    for b in all {
        println!(
            "{}  index {:>10}  {:>12} bytes{}",
            b.name,
            b.index,
            b.size,
            if b.encrypted { "  encrypted" } else { "" }
        );
    }
    Ok(())
}

/// Fetch the backup `name` (default: the newest) from the destination `url` into a file beside
/// the working directory; its path (the caller removes it).
pub async fn fetch(url: &str, name: Option<&str>) -> anyhow::Result<PathBuf> {
    let cfg = config(url);
    let to = std::env::temp_dir().join(format!("hiqlite-restore-{}.db", std::process::id()));
    let obj = match name {
        Some(n) => hiqlite::backup::fetch(&cfg, n, &to).await?,
        None => hiqlite::backup::fetch_newest(&cfg, &to).await?.context(format!("no backups in {url}"))?,
    };
    eprintln!("fetched {} (log index {}) from {url}", obj.name, obj.index);
    Ok(to)
}
