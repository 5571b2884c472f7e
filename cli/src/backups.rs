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

/// Fetch the backup `name` (default: the newest) from the destination `url` into a file in the
/// temporary directory; its path (the caller removes it).
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

/// `hiqlite restore --from DEST --to-time T | --to-index N --out FILE`.
pub async fn point_in_time(
    url: &str,
    time: Option<&str>,
    index: Option<u64>,
    out: &Path,
) -> anyhow::Result<()> {
    use hiqlite::backup::Target;
    let target = match (time, index) {
        (Some(t), _) => Target::Time(parse_time(t)?),
        (None, Some(n)) => Target::Index(n),
        (None, None) => anyhow::bail!("--out needs --to-time or --to-index"),
    };
    let r = hiqlite::backup::restore_to(&config(url), target, out).await?;
    println!(
        "restored {} from {} up to log index {}{}",
        out.display(),
        r.backup,
        r.index,
        r.last_ts_ms.map(|t| format!(" (last write stamped {} ms after the epoch)", t)).unwrap_or_default()
    );
    if !r.reached_target {
        eprintln!(
            "warning: the archive ends before the target; the file holds everything archived so far \
             (newer writes are on the cluster and reach the destination as segments are archived)"
        );
    }
    println!("start a new cluster from it: hiqlite serve --restore {}", out.display());
    Ok(())
}

/// Unix milliseconds, or an RFC 3339 moment.
fn parse_time(t: &str) -> anyhow::Result<i64> {
    if let Ok(ms) = t.trim().parse::<i64>() {
        return Ok(ms);
    }
    let at = humantime::parse_rfc3339_weak(t.trim())
        .with_context(|| format!("`{t}` is neither Unix milliseconds nor an RFC 3339 time"))?;
    let ms = at.duration_since(std::time::UNIX_EPOCH).context("a time before 1970")?.as_millis();
    Ok(i64::try_from(ms)?)
}
