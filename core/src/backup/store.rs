//! Where backups live: an S3-compatible bucket or a directory (both through `object_store`),
//! how backup objects are named, and moving whole files in and out.
//!
//! A backup object is named `PREFIX/hiqlite-<unix ms, 13 digits>-<log index, 12 digits>.db.zst`
//! (`.enc` added when encrypted), so names sort by time and carry the log index they hold.

use std::path::Path;
use std::sync::Arc;

use futures::StreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::config::BackupConfig;
use crate::error::{Error, Result};

/// Objects up to this size go up in one request; larger ones in parts of this size.
const PART: usize = 8 << 20;

/// One backup in the destination.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BackupObject {
    /// Object name, relative to the destination's prefix.
    pub name: String,
    /// When it was taken (Unix milliseconds).
    pub taken_ms: u64,
    /// The log index it holds.
    pub index: u64,
    /// Stored size in bytes.
    pub size: u64,
    /// Whether it is encrypted.
    pub encrypted: bool,
}

impl BackupObject {
    fn parse(name: &str, size: u64) -> Option<Self> {
        let rest = name.strip_prefix("hiqlite-")?;
        let (stem, encrypted) = match rest.strip_suffix(".db.zst.enc") {
            Some(s) => (s, true),
            None => (rest.strip_suffix(".db.zst")?, false),
        };
        let (ms, index) = stem.split_once('-')?;
        Some(BackupObject {
            name: name.to_owned(),
            taken_ms: ms.parse().ok()?,
            index: index.parse().ok()?,
            size,
            encrypted,
        })
    }

    /// The name of a backup taken at `taken_ms` holding `index`.
    pub(crate) fn name_for(taken_ms: u64, index: u64, encrypted: bool) -> String {
        format!("hiqlite-{taken_ms:013}-{index:012}.db.zst{}", if encrypted { ".enc" } else { "" })
    }
}

/// Whether `url` names a destination this build can use: `s3://BUCKET[/PREFIX]` or a directory.
pub(crate) fn check(url: &str) -> Result<()> {
    let url = url.trim();
    let bad = |why: &str| Err(Error::Config(format!("backup destination `{url}`: {why}")));
    match url.strip_prefix("s3://") {
        Some(rest) if rest.split('/').next().is_none_or(str::is_empty) => {
            bad("no bucket (s3://BUCKET[/PREFIX])")
        }
        Some(_) => Ok(()),
        None if url.strip_prefix("file://").unwrap_or(url).contains("://") => {
            bad("only s3://BUCKET[/PREFIX] and directories are supported")
        }
        None if url.is_empty() => bad("empty"),
        None => Ok(()),
    }
}

/// A log segment archived for point-in-time restore: `PREFIX/log/<first>-<last>.seg.zst[.enc]`
/// (indexes with 20 digits).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ArchivedSegment {
    /// Object name, relative to the destination's prefix (`log/...`).
    pub name: String,
    pub first: u64,
    pub last: u64,
}

impl ArchivedSegment {
    pub(crate) fn name_for(first: u64, last: u64, encrypted: bool) -> String {
        format!("log/{first:020}-{last:020}.seg.zst{}", if encrypted { ".enc" } else { "" })
    }

    fn parse(file: &str) -> Option<Self> {
        let stem = file.strip_suffix(".seg.zst.enc").or_else(|| file.strip_suffix(".seg.zst"))?;
        let (first, last) = stem.split_once('-')?;
        Some(ArchivedSegment {
            name: format!("log/{file}"),
            first: first.parse().ok()?,
            last: last.parse().ok()?,
        })
    }
}

/// An opened destination.
#[derive(Clone)]
pub(crate) struct Destination {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// How the destination was given, for messages and status.
    pub(crate) url: String,
}

fn store_err(what: &str, url: &str, e: impl std::fmt::Display) -> Error {
    Error::Storage(format!("backup destination {url}: {what}: {e}"))
}

impl Destination {
    /// Open the destination `cfg.destination` (nothing is contacted yet).
    pub(crate) fn parse(cfg: &BackupConfig) -> Result<Self> {
        check(&cfg.destination)?;
        let url = cfg.destination.trim().to_owned();
        let bad = |why: &str| Error::Config(format!("backup destination `{url}`: {why}"));
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            crate::tls::install_crypto_provider();
            let mut b = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(bucket);
            if let Some(v) = &cfg.s3_endpoint {
                b = b.with_endpoint(v);
            }
            if let Some(v) = &cfg.s3_region {
                b = b.with_region(v);
            }
            if let Some(v) = &cfg.s3_access_key_id {
                b = b.with_access_key_id(v);
            }
            if let Some(v) = &cfg.s3_secret_access_key {
                b = b.with_secret_access_key(v);
            }
            if cfg.s3_allow_http {
                b = b.with_allow_http(true);
            }
            let store = b.build().map_err(|e| bad(&e.to_string()))?;
            return Ok(Destination {
                store: Arc::new(store),
                prefix: prefix.trim_matches('/').to_owned(),
                url,
            });
        }
        let dir = url.strip_prefix("file://").unwrap_or(&url);
        std::fs::create_dir_all(dir).map_err(|e| bad(&format!("cannot create the directory: {e}")))?;
        let store =
            object_store::local::LocalFileSystem::new_with_prefix(dir).map_err(|e| bad(&e.to_string()))?;
        Ok(Destination { store: Arc::new(store), prefix: String::new(), url })
    }

    fn path(&self, name: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(name)
        } else {
            ObjPath::from(format!("{}/{name}", self.prefix))
        }
    }

    /// Every backup in the destination, oldest first.
    pub(crate) async fn list(&self) -> Result<Vec<BackupObject>> {
        let prefix = (!self.prefix.is_empty()).then(|| ObjPath::from(self.prefix.as_str()));
        let mut listing = self.store.list(prefix.as_ref());
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| store_err("listing", &self.url, e))?;
            // Only objects directly under the prefix.
            let Some(name) = meta.location.filename() else { continue };
            if meta.location != self.path(name) {
                continue;
            }
            if let Some(b) = BackupObject::parse(name, meta.size) {
                out.push(b);
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Every archived log segment, in index order.
    pub(crate) async fn list_segments(&self) -> Result<Vec<ArchivedSegment>> {
        let dir = self.path("log");
        let mut listing = self.store.list(Some(&dir));
        let mut out = Vec::new();
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| store_err("listing", &self.url, e))?;
            if let Some(s) = meta.location.filename().and_then(ArchivedSegment::parse) {
                out.push(s);
            }
        }
        out.sort_by_key(|s| (s.first, s.last));
        Ok(out)
    }

    /// Upload the file `src` as `name`.
    pub(crate) async fn upload(&self, src: &Path, name: &str) -> Result<()> {
        let mut file = tokio::fs::File::open(src).await?;
        let len = file.metadata().await?.len();
        let to = self.path(name);
        if len <= PART as u64 {
            let mut data = Vec::with_capacity(len as usize);
            file.read_to_end(&mut data).await?;
            self.store
                .put(&to, PutPayload::from(data))
                .await
                .map_err(|e| store_err("uploading", &self.url, e))?;
            return Ok(());
        }
        let upload = self.store.put_multipart(&to).await.map_err(|e| store_err("uploading", &self.url, e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; PART];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(4).await.map_err(|e| store_err("uploading", &self.url, e))?;
            w.write(&buf[..n]);
        }
        w.finish().await.map_err(|e| store_err("uploading", &self.url, e))?;
        Ok(())
    }

    /// Download `name` into the file `dst`.
    pub(crate) async fn download(&self, name: &str, dst: &Path) -> Result<()> {
        let got =
            self.store.get(&self.path(name)).await.map_err(|e| store_err("downloading", &self.url, e))?;
        let mut out = tokio::fs::File::create(dst).await?;
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            out.write_all(&chunk.map_err(|e| store_err("downloading", &self.url, e))?).await?;
        }
        out.sync_all().await?;
        Ok(())
    }

    /// Delete `name`.
    pub(crate) async fn delete(&self, name: &str) -> Result<()> {
        self.store.delete(&self.path(name)).await.map_err(|e| store_err("deleting", &self.url, e))
    }
}

/// The backups a retention policy deletes from `all` (oldest first): beyond the newest `keep`
/// (0: no count limit), and older than `max_age_ms` at `now_ms`; never the newest.
pub(crate) fn expired(
    all: &[BackupObject],
    keep: usize,
    max_age_ms: Option<u64>,
    now_ms: u64,
) -> Vec<String> {
    let n = all.len();
    all.iter()
        .enumerate()
        .filter(|(i, b)| {
            let newest = *i + 1 == n;
            let by_count = keep > 0 && n - i > keep;
            let by_age = max_age_ms.is_some_and(|age| now_ms.saturating_sub(b.taken_ms) > age);
            !newest && (by_count || by_age)
        })
        .map(|(_, b)| b.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_retention_keeps_the_newest() {
        let name = BackupObject::name_for(1_700_000_000_123, 42, true);
        assert_eq!(name, "hiqlite-1700000000123-000000000042.db.zst.enc");
        let b = BackupObject::parse(&name, 7).expect("parses");
        assert_eq!((b.taken_ms, b.index, b.encrypted, b.size), (1_700_000_000_123, 42, true, 7));
        assert!(BackupObject::parse("notes.txt", 1).is_none());
        let all: Vec<BackupObject> = (1..=5u64)
            .map(|i| BackupObject::parse(&BackupObject::name_for(i * 1000, i, false), 1).expect("parses"))
            .collect();
        assert_eq!(expired(&all, 2, None, 0).len(), 3);
        assert_eq!(expired(&all, 0, Some(2500), 5000), vec![all[0].name.clone(), all[1].name.clone()]);
        // Everything too old: the newest stays.
        assert_eq!(expired(&all, 0, Some(1), 1_000_000).len(), 4);
        assert!(expired(&all, 0, None, 0).is_empty());
    }
}
