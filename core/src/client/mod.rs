//! `Client`: the API applications use, the same for an embedded node and a remote cluster.

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;

#[cfg(feature = "server")]
use crate::command::Command;
use crate::command::{ExecMode, Migration};
#[cfg(feature = "server")]
use crate::config::NodeConfig;
use crate::consistency::Consistency;
use crate::error::{Error, Result};
#[cfg(feature = "server")]
use crate::node::Node;
use crate::status::{NodeInfo, Status};
use crate::value::{ExecResult, Params, Rows, Statement};

mod changes;
mod coord;
mod lock;
mod notify;
mod remote;
mod session;
mod shared_stream;
mod tx;
pub use changes::{ChangeOptions, ChangeStream, Watch};
pub use lock::LockGuard;
pub use notify::{ListenEvent, Listener, Notification};
use remote::Remote;
pub use remote::{RemoteBuilder, RetryPolicy};
use session::Session;
pub use shared_stream::{SharedChanges, SharedListener, SharedStream, SharedWatch, StreamSource};
pub use tx::Transaction;
use tx::TxHolder;

/// A handle to a hiqlite database: an embedded node, or a remote cluster reached over HTTP
/// ([`Client::remote`]). Both have the same methods. Cheap to clone; clones share the node or
/// the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Inner,
    /// The log index of this client's writes; in read-your-writes mode, what reads wait for.
    session: Session,
}

#[derive(Clone)]
enum Inner {
    #[cfg(feature = "server")]
    Embedded(Node),
    Remote(Arc<Remote>),
}

fn first_error(results: Vec<Result<ExecResult>>) -> Result<Vec<ExecResult>> {
    results.into_iter().collect()
}

impl Client {
    /// Start an embedded node with `config` and return a client for it.
    #[cfg(feature = "server")]
    pub async fn start(config: NodeConfig) -> Result<Client> {
        Ok(Client::from_node(Node::start(config).await?))
    }

    #[cfg(feature = "server")]
    /// A client for an already started node.
    pub fn from_node(node: Node) -> Client {
        Client { inner: Inner::Embedded(node), session: Session::default() }
    }

    /// A client for a remote hiqlite (or rqlite) cluster, given the API URLs of one or more of
    /// its nodes (`http://host:4001`; a missing scheme means `http`). The others are learned
    /// from the cluster. Configure it on the returned builder, then call
    /// [`RemoteBuilder::build`].
    ///
    /// ```no_run
    /// # async fn f() -> hiqlite::Result<()> {
    /// let db = hiqlite::Client::remote(["http://10.0.0.1:4001", "http://10.0.0.2:4001"])
    ///     .timeout(std::time::Duration::from_secs(5))
    ///     .build()?;
    /// db.execute("INSERT INTO t (v) VALUES (?)", hiqlite::params![1]).await?;
    /// # Ok(()) }
    /// ```
    pub fn remote<I, S>(urls: I) -> RemoteBuilder
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        RemoteBuilder::new(urls.into_iter().map(Into::into).collect())
    }

    pub(crate) fn from_remote(r: Remote, read_your_writes: bool) -> Client {
        Client { inner: Inner::Remote(Arc::new(r)), session: Session::new(read_your_writes) }
    }

    #[cfg(feature = "server")]
    /// The embedded node; `None` for a remote client.
    pub fn node(&self) -> Option<&Node> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => Some(n),
            Inner::Remote(_) => None,
        }
    }

    /// Remote: the node API URLs the client knows (given and discovered) and the leader's, if
    /// known. Embedded: nothing (the node routes by itself).
    pub fn endpoints(&self) -> (Vec<String>, Option<String>) {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(_) => (Vec::new(), None),
            Inner::Remote(r) => r.known_nodes(),
        }
    }

    /// True for a client of a remote cluster.
    pub fn is_remote(&self) -> bool {
        matches!(self.inner, Inner::Remote(_))
    }

    /// Consistency of the calls that take none: `Local` for an embedded node, the builder's
    /// choice (default `Leader`) for a remote client.
    pub fn default_consistency(&self) -> Consistency {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(_) => Consistency::Local,
            Inner::Remote(r) => r.consistency,
        }
    }

    async fn run(&self, stmts: Vec<Statement>, mode: ExecMode) -> Result<Vec<Result<ExecResult>>> {
        let results = match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                let resp = n.write(Command::Execute { stmts, mode, ts_ms: 0, seed: 0 }).await?;
                let mut results = resp.results;
                // Only the rqlite API reports rqlite's connection counters.
                for r in results.iter_mut().flatten() {
                    r.rqlite_counters = None;
                    r.log_index = Some(resp.log_index);
                }
                results
            }
            Inner::Remote(r) => r.execute(&stmts, mode == ExecMode::Transaction, false).await?,
        };
        self.session.note_results(&results);
        Ok(results)
    }

    /// Run one write statement through Raft; returns rows affected and the last insert id.
    /// Sent to the leader wherever it is called.
    pub async fn execute(&self, sql: &str, params: impl Into<Params>) -> Result<ExecResult> {
        let stmt = Statement::new(sql, params);
        let mut results = match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(_) => self.run(vec![stmt], ExecMode::Transaction).await?,
            // A `RETURNING` needs `/db/request` to bring its rows back; plain writes take
            // `/db/execute`, which spares the server a read-only check per request.
            Inner::Remote(r) => {
                let results = r.execute(&[stmt], false, crate::sqlkind::has_returning(sql)).await?;
                self.session.note_results(&results);
                results
            }
        };
        results.pop().unwrap_or_else(|| Ok(ExecResult::default()))
    }

    /// Begin an interactive transaction: its statements see its own writes, and it commits as
    /// one replicated entry or not at all. Other writers wait while it is open (up to their busy
    /// timeout), as with SQLite's single writer.
    ///
    /// ```no_run
    /// # async fn f(db: hiqlite::Client) -> hiqlite::Result<()> {
    /// let tx = db.begin().await?;
    /// let rows = tx.query("SELECT bal FROM acct WHERE id = 1", ()).await?;
    /// if let Some(hiqlite::Value::Integer(bal)) = rows.rows.first().and_then(|r| r.first()) {
    ///     tx.execute("UPDATE acct SET bal = ? WHERE id = 1", hiqlite::params![bal + 1]).await?;
    /// }
    /// tx.commit().await?;
    /// # Ok(()) }
    /// ```
    pub async fn begin(&self) -> Result<Transaction> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                let id = n.tx_begin().await?;
                Ok(Transaction::new(TxHolder::Embedded(n.clone()), id, self.session.clone()))
            }
            Inner::Remote(r) => {
                let (id, url) = r.tx_begin().await?;
                Ok(Transaction::new(TxHolder::Remote(r.clone(), url), id, self.session.clone()))
            }
        }
    }

    /// Run a write statement that returns rows (`INSERT ... RETURNING`).
    pub async fn execute_returning(&self, sql: &str, params: impl Into<Params>) -> Result<Rows> {
        Ok(self.execute(sql, params).await?.rows)
    }

    /// Run statements atomically: all are applied or, on the first error, none; that error is
    /// returned.
    pub async fn transaction<S: Into<Statement>>(
        &self,
        stmts: impl IntoIterator<Item = S>,
    ) -> Result<Vec<ExecResult>> {
        let stmts: Vec<Statement> = stmts.into_iter().map(Into::into).collect();
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        first_error(self.run(stmts, ExecMode::Transaction).await?)
    }

    /// Run statements in one log entry but independently (rqlite's default): each statement
    /// that fails is undone alone and reported in its slot; the others are applied.
    pub async fn batch<S: Into<Statement>>(
        &self,
        stmts: impl IntoIterator<Item = S>,
    ) -> Result<Vec<Result<ExecResult>>> {
        let stmts: Vec<Statement> = stmts.into_iter().map(Into::into).collect();
        if stmts.is_empty() {
            return Ok(Vec::new());
        }
        self.run(stmts, ExecMode::Independent).await
    }

    /// Read-your-writes: read on this node (or, remote, the nearest) once it has applied the
    /// write at `min_index` ([`ExecResult::log_index`], made through any node), without a
    /// linearizable read's quorum round. Waits up to the node's request timeout.
    pub async fn query_at(&self, sql: &str, params: impl Into<Params>, min_index: u64) -> Result<Rows> {
        self.read(sql, params.into(), Consistency::Local, Some(min_index), None).await
    }

    /// Read at the client's default consistency ([`Client::default_consistency`]).
    pub async fn query(&self, sql: &str, params: impl Into<Params>) -> Result<Rows> {
        self.query_with(sql, params, self.default_consistency()).await
    }

    /// Read with a chosen consistency. Remote: `Local` reads the nearest healthy node, the
    /// others go to the leader.
    pub async fn query_with(
        &self,
        sql: &str,
        params: impl Into<Params>,
        consistency: Consistency,
    ) -> Result<Rows> {
        self.read(sql, params.into(), consistency, None, None).await
    }

    /// Read rows into `T` via serde, matching fields to column names.
    pub async fn query_as<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: impl Into<Params>,
    ) -> Result<Vec<T>> {
        self.query(sql, params).await?.deserialize()
    }

    /// [`Client::query_as`] with a chosen consistency.
    pub async fn query_as_with<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: impl Into<Params>,
        consistency: Consistency,
    ) -> Result<Vec<T>> {
        self.query_with(sql, params, consistency).await?.deserialize()
    }

    /// Read through the query cache of the node that answers (default consistency and TTL). A
    /// cached result is never served after a write to a table it read has been applied there.
    pub async fn query_cached(&self, sql: &str, params: impl Into<Params>) -> Result<Rows> {
        self.query_cached_with(sql, params, self.default_consistency(), None).await
    }

    /// [`Client::query_cached`] with a consistency level and a TTL (`None`: the default).
    pub async fn query_cached_with(
        &self,
        sql: &str,
        params: impl Into<Params>,
        consistency: Consistency,
        ttl: Option<Duration>,
    ) -> Result<Rows> {
        self.read(sql, params.into(), consistency, None, Some(ttl)).await
    }

    /// [`Client::query_as`] through the query cache.
    pub async fn query_as_cached<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: impl Into<Params>,
    ) -> Result<Vec<T>> {
        self.query_cached(sql, params).await?.deserialize()
    }

    #[cfg(feature = "server")]
    /// Query cache counters of the embedded node (`None` for a remote client: see the
    /// server's `/metrics`).
    pub fn cache_stats(&self) -> Option<crate::CacheStats> {
        self.node().map(Node::cache_stats)
    }

    #[cfg(feature = "server")]
    /// Empty the embedded node's query cache (a remote client holds no cache of its own).
    pub fn cache_clear(&self) {
        if let Some(n) = self.node() {
            n.cache_clear()
        }
    }

    /// Apply ordered SQL migrations once, cluster-wide. Already applied migrations are skipped;
    /// a migration whose SQL changed after it was applied is an error. Returns how many were
    /// applied now. (Remote: needs a hiqlite server.)
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<usize> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                let resp =
                    n.write(Command::Migrate { migrations: migrations.to_vec(), ts_ms: 0, seed: 0 }).await?;
                self.session.note_index(resp.log_index);
                let results = first_error(resp.results)?;
                Ok(results.iter().filter(|r| r.rows_affected > 0).count())
            }
            Inner::Remote(r) => {
                let n = r.migrate(migrations).await?;
                self.session.note_unindexed();
                Ok(n)
            }
        }
    }

    /// Status of the embedded node, or of the node a remote client reads from.
    pub async fn status(&self) -> Result<Status> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => Ok(n.status()),
            Inner::Remote(r) => r.status().await,
        }
    }

    /// The cluster's members and whether they are reachable (as the answering node sees it).
    pub async fn nodes(&self) -> Result<Vec<NodeInfo>> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => Ok(n.nodes().await),
            Inner::Remote(r) => r.nodes().await,
        }
    }

    /// Wait until the cluster has a leader (up to `timeout`); returns its id.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<u64> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => n.wait_for_leader(timeout).await,
            Inner::Remote(r) => r.wait_for_leader(timeout).await,
        }
    }

    /// Add a node (by id and addresses) to the cluster: as learner, then voter. Embedded only:
    /// a remote client cannot vouch for a new node; start it with `join` instead.
    pub async fn add_node(&self, id: u64, raft_addr: &str, api_addr: &str) -> Result<()> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(node) => {
                let member =
                    crate::command::Member { raft_addr: raft_addr.into(), api_addr: api_addr.into() };
                node.add_node(id, member).await
            }
            Inner::Remote(_) => Err(Error::InvalidRequest(format!(
                "a remote client cannot add nodes (asked to add {id} at {raft_addr}/{api_addr}): start the \
                 new node with `join` pointing at the cluster"
            ))),
        }
    }

    /// Add a node (by id and addresses) as a read replica: a learner that is never promoted.
    /// Embedded only, as [`Client::add_node`]; a new node can also join as one by itself
    /// (`NodeConfig::learner` with `join`).
    pub async fn add_learner(&self, id: u64, raft_addr: &str, api_addr: &str) -> Result<()> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(node) => {
                let member =
                    crate::command::Member { raft_addr: raft_addr.into(), api_addr: api_addr.into() };
                node.add_learner(id, member).await
            }
            Inner::Remote(_) => Err(Error::InvalidRequest(format!(
                "a remote client cannot add nodes (asked to add learner {id} at {raft_addr}/{api_addr}): \
                 start the new node with `learner` and `join` pointing at the cluster"
            ))),
        }
    }

    /// Remove a node from the cluster.
    pub async fn remove_node(&self, id: u64) -> Result<()> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(node) => node.remove_node(id).await,
            Inner::Remote(r) => r.remove_node(id).await,
        }
    }

    /// Write a consistent online backup (a SQLite database file) to `dest`; returns the log
    /// index it reflects when known (embedded). Start a node from it with
    /// `NodeConfig::restore_from`.
    pub async fn backup(&self, dest: impl AsRef<std::path::Path>) -> Result<Option<u64>> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => n.backup(dest.as_ref()).await,
            Inner::Remote(r) => {
                // As embedded: a backup never replaces a file.
                if dest.as_ref().exists() {
                    return Err(Error::InvalidRequest(format!(
                        "{} exists; refusing to overwrite it",
                        dest.as_ref().display()
                    )));
                }
                r.backup(dest.as_ref()).await.map(|()| None)
            }
        }
    }

    /// Load a backup file (as [`Client::backup`] writes, or any SQLite database file) into the
    /// running cluster: every user table and view is replaced by the file's, in one replicated
    /// transaction (foreign keys checked once, at its end). To start a new cluster from a
    /// backup instead, use `NodeConfig::restore_from`.
    pub async fn restore(&self, src: impl AsRef<std::path::Path>) -> Result<()> {
        let src = src.as_ref();
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                let stmts = n.load_statements(src)?;
                let resp = n
                    .write(Command::Execute { stmts, mode: ExecMode::Transaction, ts_ms: 0, seed: 0 })
                    .await?;
                self.session.note_index(resp.log_index);
                first_error(resp.results).map(|_| ())
            }
            Inner::Remote(r) => {
                r.restore(src).await?;
                self.session.note_unindexed();
                Ok(())
            }
        }
    }

    /// Stop the embedded node gracefully. For a remote client there is nothing to stop; its
    /// pooled connections close when the last clone is dropped.
    pub async fn shutdown(&self) -> Result<()> {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => n.shutdown().await,
            Inner::Remote(_) => Ok(()),
        }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => f.debug_tuple("Client::Embedded").field(n).finish(),
            Inner::Remote(r) => {
                let (nodes, leader) = r.known_nodes();
                f.debug_struct("Client::Remote").field("nodes", &nodes).field("leader", &leader).finish()
            }
        }
    }
}

#[cfg(feature = "server")]
impl From<Node> for Client {
    fn from(node: Node) -> Self {
        Client::from_node(node)
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Client>();
    is::<Error>();
}
