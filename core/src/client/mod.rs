//! `Client`: the API applications use. Today it drives an embedded node; the same type will
//! also speak to remote clusters over HTTP.

use serde::de::DeserializeOwned;

use crate::config::NodeConfig;
use crate::error::{Error, Result};
use crate::node::{Consistency, Node, Status};
use crate::raft::{Command, ExecMode, Migration};
use crate::value::{ExecResult, Params, Rows, Statement};

/// A handle to a hiqlite database. Cheap to clone; clones share the node.
#[derive(Clone)]
pub struct Client {
    node: Node,
}

fn first_error(results: Vec<Result<ExecResult>>) -> Result<Vec<ExecResult>> {
    results.into_iter().collect()
}

impl Client {
    /// Start an embedded node with `config` and return a client for it.
    pub async fn start(config: NodeConfig) -> Result<Client> {
        Ok(Client { node: Node::start(config).await? })
    }

    /// A client for an already started node.
    pub fn from_node(node: Node) -> Client {
        Client { node }
    }

    /// The embedded node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    async fn run(&self, stmts: Vec<Statement>, mode: ExecMode) -> Result<crate::raft::Response> {
        self.node.write(Command::Execute { stmts, mode, ts_ms: 0, seed: 0 }).await
    }

    /// Run one write statement through Raft; returns rows affected and the last insert id.
    /// On a follower the write is forwarded to the leader.
    pub async fn execute(&self, sql: &str, params: impl Into<Params>) -> Result<ExecResult> {
        let mut resp = self.run(vec![Statement::new(sql, params)], ExecMode::Transaction).await?;
        resp.results.pop().unwrap_or_else(|| Ok(ExecResult::default()))
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
        let resp = self.run(stmts, ExecMode::Transaction).await?;
        first_error(resp.results)
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
        Ok(self.run(stmts, ExecMode::Independent).await?.results)
    }

    /// Read from this node's replica (`Consistency::Local`).
    pub async fn query(&self, sql: &str, params: impl Into<Params>) -> Result<Rows> {
        self.node.query(sql, &params.into(), Consistency::Local).await
    }

    /// Read with a chosen consistency.
    pub async fn query_with(
        &self,
        sql: &str,
        params: impl Into<Params>,
        consistency: Consistency,
    ) -> Result<Rows> {
        self.node.query(sql, &params.into(), consistency).await
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

    /// Read through this node's query cache (`Consistency::Local`, default TTL). A cached
    /// result is never served after a write to a table it read has been applied here.
    pub async fn query_cached(&self, sql: &str, params: impl Into<Params>) -> Result<Rows> {
        self.node.query_cached(sql, &params.into(), Consistency::Local, None).await
    }

    /// [`Client::query_cached`] with a consistency level and a TTL (`None`: the default).
    pub async fn query_cached_with(
        &self,
        sql: &str,
        params: impl Into<Params>,
        consistency: Consistency,
        ttl: Option<std::time::Duration>,
    ) -> Result<Rows> {
        self.node.query_cached(sql, &params.into(), consistency, ttl).await
    }

    /// [`Client::query_as`] through the query cache.
    pub async fn query_as_cached<T: DeserializeOwned>(
        &self,
        sql: &str,
        params: impl Into<Params>,
    ) -> Result<Vec<T>> {
        self.query_cached(sql, params).await?.deserialize()
    }

    /// Query cache counters of this node.
    pub fn cache_stats(&self) -> crate::CacheStats {
        self.node.cache_stats()
    }

    /// Empty this node's query cache.
    pub fn cache_clear(&self) {
        self.node.cache_clear()
    }

    /// Apply ordered SQL migrations once, cluster-wide. Already applied migrations are skipped;
    /// a migration whose SQL changed after it was applied is an error. Returns how many were
    /// applied now.
    pub async fn migrate(&self, migrations: &[Migration]) -> Result<usize> {
        let resp =
            self.node.write(Command::Migrate { migrations: migrations.to_vec(), ts_ms: 0, seed: 0 }).await?;
        let results = first_error(resp.results)?;
        Ok(results.iter().filter(|r| r.rows_affected > 0).count())
    }

    /// This node's status.
    pub fn status(&self) -> Status {
        self.node.status()
    }

    /// Add a node (by id and addresses) to the cluster: as learner, then voter.
    pub async fn add_node(&self, id: u64, raft_addr: &str, api_addr: &str) -> Result<()> {
        let member = crate::raft::Member { raft_addr: raft_addr.into(), api_addr: api_addr.into() };
        let req = crate::node::JoinRequest { id, member: member.clone() };
        let node = self.node.clone();
        self.node.via_leader("/cluster/join", &req, || node.add_member(id, member.clone())).await
    }

    /// Remove a node from the cluster.
    pub async fn remove_node(&self, id: u64) -> Result<()> {
        let node = self.node.clone();
        self.node.via_leader("/cluster/remove", &id, || node.remove_member(id)).await
    }

    /// Write a consistent online backup (a SQLite database file) to `dest`; returns the log
    /// index it reflects. Start a node from it with `NodeConfig::restore_from`.
    pub async fn backup(&self, dest: impl AsRef<std::path::Path>) -> Result<Option<u64>> {
        self.node.backup(dest.as_ref()).await
    }

    /// Stop the embedded node gracefully.
    pub async fn shutdown(&self) -> Result<()> {
        self.node.shutdown().await
    }
}

impl From<Node> for Client {
    fn from(node: Node) -> Self {
        Client { node }
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Client>();
    is::<Error>();
}
