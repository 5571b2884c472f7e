//! Moving whole databases over a node's HTTP API, with a progress bar when stderr is a
//! terminal: a backup downloaded from `GET /db/backup`, a database file or SQL text uploaded to
//! `POST /db/load`, and a dump read from `GET /db/backup?fmt=sql`. The remote `Client` has no
//! calls for loading or dumping; these are the server's own (rqlite-compatible) endpoints.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::AsyncWriteExt;

/// What can go wrong moving a database.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// The node could not be reached or the transfer broke.
    #[error("cannot reach {url}: {source}")]
    Network {
        /// The URL called.
        url: String,
        /// What failed.
        source: reqwest::Error,
    },
    /// The node answered with an error.
    #[error("{0}")]
    Refused(String),
    /// The HTTP client could not be set up (bad CA file, ...).
    #[error("HTTP client: {0}")]
    Setup(String),
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> TransferError + '_ {
    move |source| TransferError::File { path: path.to_path_buf(), source }
}

/// An HTTP client for a node's maintenance endpoints, with the shell's credentials and trust.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    auth: Option<(String, String)>,
}

impl Http {
    /// A client trusting `ca_pem` (when given) for `https://` URLs, sending `auth` as Basic
    /// credentials. `insecure` accepts any server certificate (testing only).
    pub fn new(
        ca_pem: Option<&[u8]>,
        insecure: bool,
        auth: Option<(String, String)>,
    ) -> Result<Http, TransferError> {
        hiqlite::install_crypto_provider();
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .tls_danger_accept_invalid_certs(insecure);
        if let Some(pem) = ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| TransferError::Setup(format!("CA certificate: {e}")))?;
            b = b.tls_certs_only(certs);
        }
        let client = b.build().map_err(|e| TransferError::Setup(e.to_string()))?;
        Ok(Http { client, auth })
    }

    fn request(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let r = self.client.request(method, url);
        match &self.auth {
            Some((u, p)) => r.basic_auth(u, Some(p)),
            None => r,
        }
    }

    async fn send(
        &self,
        req: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<reqwest::Response, TransferError> {
        let resp =
            req.send().await.map_err(|source| TransferError::Network { url: url.to_string(), source })?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let body = resp.text().await.unwrap_or_default();
        let msg = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["error"].as_str().map(str::to_owned))
            .unwrap_or_else(|| body.trim().to_string());
        Err(TransferError::Refused(format!("{url}: HTTP {status}: {msg}")))
    }

    /// Download a consistent backup (a SQLite file) from the node at `base` into `dest`
    /// (through `dest.partial`, synced, then renamed). Returns its size and the log index the
    /// node reports. Refuses to overwrite `dest`.
    pub async fn download(&self, base: &str, dest: &Path) -> Result<(u64, Option<String>), TransferError> {
        if dest.exists() {
            return Err(TransferError::Refused(format!(
                "{} exists; refusing to overwrite it",
                dest.display()
            )));
        }
        let url = format!("{base}/db/backup");
        let mut resp = self.send(self.request(reqwest::Method::GET, &url), &url).await?;
        let index =
            resp.headers().get("x-hiqlite-log-index").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let pb = progress(resp.content_length(), "backup");
        let tmp = dest.with_extension("partial");
        let mut file = tokio::fs::File::create(&tmp).await.map_err(file_err(&tmp))?;
        let mut n = 0u64;
        let r: Result<(), TransferError> = async {
            while let Some(chunk) =
                resp.chunk().await.map_err(|source| TransferError::Network { url: url.clone(), source })?
            {
                file.write_all(&chunk).await.map_err(file_err(&tmp))?;
                n += chunk.len() as u64;
                pb.set_position(n);
            }
            file.sync_all().await.map_err(file_err(&tmp))?;
            Ok(())
        }
        .await;
        pb.finish_and_clear();
        if let Err(e) = r {
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(e);
        }
        tokio::fs::rename(&tmp, dest).await.map_err(file_err(dest))?;
        Ok((n, index))
    }

    /// Upload `src` (a SQLite database file, which replaces every table, or SQL text such as a
    /// dump, applied as one transaction) to the node at `base`. Returns the bytes sent.
    pub async fn load(&self, base: &str, src: &Path) -> Result<u64, TransferError> {
        let file = tokio::fs::File::open(src).await.map_err(file_err(src))?;
        let len = file.metadata().await.map_err(file_err(src))?.len();
        let pb = progress(Some(len), "restore");
        let body = reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(
            pb.wrap_async_read(file),
            256 * 1024,
        ));
        let url = format!("{base}/db/load");
        let req = self
            .request(reqwest::Method::POST, &url)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, len)
            .body(body);
        let r = self.send(req, &url).await;
        pb.finish_and_clear();
        let text = r?.text().await.map_err(|source| TransferError::Network { url: url.clone(), source })?;
        // `{"results": [{"error": "..."}]}` when the load was refused as a whole.
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        if let Some(e) = v["results"].as_array().and_then(|r| r.iter().find_map(|x| x["error"].as_str())) {
            return Err(TransferError::Refused(e.to_string()));
        }
        if let Some(e) = v["error"].as_str() {
            return Err(TransferError::Refused(e.to_string()));
        }
        Ok(len)
    }

    /// The database as SQL text (the node's `.dump`), only `tables` when any are given.
    pub async fn dump(&self, base: &str, tables: &[String]) -> Result<String, TransferError> {
        let mut url = format!("{base}/db/backup?fmt=sql");
        if !tables.is_empty() {
            let list = tables.join(",");
            let enc = percent_encode(&list);
            url.push_str(&format!("&tables={enc}"));
        }
        let resp = self.send(self.request(reqwest::Method::GET, &url), &url).await?;
        resp.text().await.map_err(|source| TransferError::Network { url, source })
    }
}

/// Percent-encoding of a query value (unreserved characters kept).
fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b',') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A byte progress bar on stderr when it is a terminal; hidden otherwise.
pub fn progress(total: Option<u64>, what: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let pb = match total {
        Some(t) => ProgressBar::new(t),
        None => ProgressBar::new_spinner(),
    };
    let template = if total.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
    } else {
        "{msg} {spinner} {bytes} {bytes_per_sec}"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    // Drawn at once, not at the first update.
    pb.tick();
    pb
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_lists_are_encoded() {
        assert_eq!(super::percent_encode("a,b c,\"d\""), "a,b%20c,%22d%22");
    }
}
