//! Settings of scheduled backups (`[backup]` in a node's TOML config, `HIQLITE_BACKUP_*`).

use serde::{Deserialize, Serialize};

use super::codec::BackupKey;
use crate::error::{Error, Result};

/// Scheduled backups: where, how often, how many are kept, and how they are sealed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackupConfig {
    /// Where backups go: `s3://BUCKET[/PREFIX]` (any S3-compatible service), or a directory
    /// (`file:///ABS/PATH` or a plain path).
    pub destination: String,
    /// Seconds between two backups. Only the leader takes them.
    pub interval_secs: u64,
    /// A cron expression (UTC; `min hour day month weekday`, or with seconds first) that
    /// replaces `interval_secs`, e.g. `"0 3 * * *"` for every day at 03:00.
    pub schedule: Option<String>,
    /// How many backups are kept (the newest; 0: no limit by count).
    pub keep: usize,
    /// Backups older than this many seconds are deleted (the newest is always kept).
    pub max_age_secs: Option<u64>,
    /// Encrypt backups with this key (64 hex digits). `HIQLITE_BACKUP_KEY` sets it too; without
    /// a key backups are only compressed.
    pub encryption_key: Option<String>,
    /// zstd compression level (1-22).
    pub compression_level: i32,
    /// Restore the newest backup when this node starts with an empty data directory, no other
    /// peers and nothing to join: it then starts a new cluster from it (others join it).
    pub auto_restore: bool,
    /// S3 endpoint, for S3-compatible services (default: AWS; `AWS_ENDPOINT` sets it too).
    pub s3_endpoint: Option<String>,
    /// S3 region (default `us-east-1`, or `AWS_REGION`).
    pub s3_region: Option<String>,
    /// S3 access key id (default `AWS_ACCESS_KEY_ID`).
    pub s3_access_key_id: Option<String>,
    /// S3 secret access key (default `AWS_SECRET_ACCESS_KEY`).
    pub s3_secret_access_key: Option<String>,
    /// Allow an `http://` endpoint (a local S3-compatible server).
    pub s3_allow_http: bool,
}

impl Default for BackupConfig {
    fn default() -> Self {
        BackupConfig {
            destination: String::new(),
            interval_secs: 3600,
            schedule: None,
            keep: 24,
            max_age_secs: None,
            encryption_key: None,
            compression_level: 3,
            auto_restore: false,
            s3_endpoint: None,
            s3_region: None,
            s3_access_key_id: None,
            s3_secret_access_key: None,
            s3_allow_http: false,
        }
    }
}

impl BackupConfig {
    /// Backups to `destination` with every other setting at its default.
    pub fn to(destination: impl Into<String>) -> Self {
        BackupConfig { destination: destination.into(), ..BackupConfig::default() }
    }

    /// Fill unset fields from `HIQLITE_BACKUP_KEY`, `HIQLITE_BACKUP_DESTINATION`,
    /// `HIQLITE_BACKUP_INTERVAL_SECS`.
    pub(crate) fn with_vars(mut self, get: &impl Fn(&str) -> Option<String>) -> Result<Self> {
        if let Some(v) = get("HIQLITE_BACKUP_DESTINATION") {
            self.destination = v;
        }
        if let Some(v) = get("HIQLITE_BACKUP_INTERVAL_SECS") {
            self.interval_secs = v.trim().parse().map_err(|_| {
                Error::Config(format!("HIQLITE_BACKUP_INTERVAL_SECS={v} is not a valid number"))
            })?;
        }
        if self.encryption_key.is_none() {
            self.encryption_key = get("HIQLITE_BACKUP_KEY");
        }
        Ok(self)
    }

    /// The encryption key, if one is set.
    pub fn key(&self) -> Result<Option<BackupKey>> {
        self.encryption_key.as_deref().map(BackupKey::from_hex).transpose()
    }

    /// The parsed `schedule`, if one is set.
    pub(crate) fn cron(&self) -> Result<Option<croner::Cron>> {
        self.schedule
            .as_deref()
            .map(|s| {
                croner::parser::CronParser::builder()
                    .seconds(croner::parser::Seconds::Optional)
                    .build()
                    .parse(s)
                    .map_err(|e| {
                        Error::Config(format!("backup.schedule `{s}` is not a cron expression: {e}"))
                    })
            })
            .transpose()
    }

    /// How long from now until the next backup is due.
    pub(crate) fn until_next(&self, cron: Option<&croner::Cron>) -> std::time::Duration {
        let interval = std::time::Duration::from_secs(self.interval_secs);
        let Some(cron) = cron else { return interval };
        let now = chrono::Utc::now();
        match cron.find_next_occurrence(&now, false) {
            Ok(next) => (next - now).to_std().unwrap_or_default(),
            Err(_) => interval,
        }
    }

    /// Check the settings; the message names the offending one.
    pub fn validate(&self) -> Result<()> {
        if self.destination.trim().is_empty() {
            return Err(Error::Config("backup.destination is empty".into()));
        }
        if self.interval_secs == 0 {
            return Err(Error::Config("backup.interval_secs must be > 0".into()));
        }
        if !(1..=22).contains(&self.compression_level) {
            return Err(Error::Config("backup.compression_level must be 1..=22".into()));
        }
        self.cron()?;
        self.key()?;
        super::store::check(&self.destination)
    }
}
