//! Reads: local (this replica as it is), leader (on the node that leads), linearizable (read
//! index confirmed by a quorum, then local once applied that far), and reads through the query
//! cache.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::RaftError;

use super::leader::Here;
use super::{Consistency, Node};
use crate::error::{Error, Result};
use crate::peer::{self, QueryRequest};
use crate::raft::LogId;
use crate::routing::Kind;
use crate::value::{Params, Rows};

impl Node {
    /// Read with the requested consistency.
    pub(crate) async fn query(&self, sql: &str, params: &Params, consistency: Consistency) -> Result<Rows> {
        self.activity().read();
        match consistency {
            Consistency::Local => {
                // A local read never waits on anything; without this a tight loop of reads
                // would never yield and could starve the Raft tasks on the same worker.
                tokio::task::consume_budget().await;
                self.inner.reads.query(sql, params)
            }
            Consistency::Linearizable => {
                self.wait_linearizable().await?;
                self.inner.reads.query(sql, params)
            }
            Consistency::Leader => {
                let req = QueryRequest { sql: sql.to_owned(), params: params.clone() };
                self.on_leader::<peer::Query, _, _, _>(
                    Kind::Read,
                    req,
                    self.timeout(),
                    "serve the read",
                    |q| {
                        let r = self.inner.reads.query(&q.sql, &q.params);
                        async move { Here::Done(r) }
                    },
                )
                .await
            }
        }
    }

    /// A `Leader` read forwarded by a follower: answered only while this node leads.
    pub(crate) fn query_as_leader(&self, sql: &str, params: &Params) -> Result<Rows> {
        if !self.is_leader() {
            return Err(Error::NotLeader { leader: self.leader() });
        }
        self.inner.reads.query(sql, params)
    }

    /// Wait until this node has applied the entry at `index` (read-your-writes: a write's
    /// `raft_index`, then a read on any node), bounded by the node's request timeout.
    pub(crate) async fn wait_applied(&self, index: u64) -> Result<()> {
        if self.inner.writer.applied().0.is_some_and(|a| a.index >= index) {
            return Ok(());
        }
        self.inner
            .raft
            .wait(Some(self.timeout()))
            .applied_index_at_least(Some(index), "read after an index")
            .await
            .map(|_| ())
            .map_err(|e| Error::Timeout(format!("this node did not apply index {index} in time: {e}")))
    }

    /// Wait until this node has applied everything committed before now (read index).
    pub(super) async fn wait_linearizable(&self) -> Result<()> {
        if let Some(l) = self.read_index().await? {
            let applied = self.inner.writer.applied().0;
            if applied.is_none_or(|a| a.index < l.index) {
                self.inner
                    .raft
                    .wait(Some(self.timeout()))
                    .applied_index_at_least(Some(l.index), "linearizable read")
                    .await
                    .map_err(|e| Error::Timeout(format!("waiting to apply the read index: {e}")))?;
            }
        }
        Ok(())
    }

    /// The read index of this node as leader: leadership confirmed by a quorum. `NotLeader`
    /// when it does not lead.
    pub(crate) async fn read_index_as_leader(&self) -> Result<Option<LogId>> {
        if !self.is_leader() {
            return Err(Error::NotLeader { leader: self.leader() });
        }
        match self.inner.raft.get_read_log_id().await {
            Ok((read, _applied)) => Ok(read),
            Err(RaftError::APIError(_)) => Err(Error::NotLeader { leader: self.leader() }),
            Err(e) => Err(Error::raft(e)),
        }
    }

    /// The leader's read index, asked of the leader when this node is a follower.
    pub(crate) async fn read_index(&self) -> Result<Option<LogId>> {
        let what = "confirm a linearizable read";
        self.on_leader::<peer::ReadIndex, _, _, _>(Kind::Read, (), self.timeout(), what, |()| async move {
            match self.read_index_as_leader().await {
                Err(e @ Error::NotLeader { .. }) => Here::Refused((), e),
                r => Here::Done(r),
            }
        })
        .await
    }

    /// Read through the query cache: consistency is established first (a linearizable read
    /// still waits for the read index), then a live cached result is served, else SQLite is
    /// read and the result stored. Non-cacheable queries and reads forwarded to the leader
    /// bypass the cache.
    pub(crate) async fn query_cached(
        &self,
        sql: &str,
        params: &Params,
        consistency: Consistency,
        ttl: Option<Duration>,
    ) -> Result<Rows> {
        let cache = &self.inner.cache;
        if !cache.enabled() || (consistency == Consistency::Leader && !self.is_leader()) {
            return self.query(sql, params, consistency).await;
        }
        self.activity().read();
        if consistency == Consistency::Linearizable {
            self.wait_linearizable().await?;
        } else {
            tokio::task::consume_budget().await;
        }
        // The epoch comes first: anything learned or read after it is checked against it.
        let epoch = cache.epoch();
        let info = match cache.info(sql) {
            Some(i) => i,
            None => {
                let i = crate::sqlite::learn_query(self.inner.reads.path(), sql)?;
                cache.learn(sql, i.clone(), epoch);
                i
            }
        };
        if !info.cacheable {
            return self.inner.reads.query(sql, params);
        }
        if let Some(rows) = cache.get(sql, params) {
            return Ok((*rows).clone());
        }
        let rows = self.inner.reads.query(sql, params)?;
        cache.put(
            sql,
            params,
            &info.tables,
            Arc::new(rows.clone()),
            ttl.unwrap_or(cache.default_ttl()),
            epoch,
        );
        Ok(rows)
    }

    /// True when `sql` is one statement that only reads (checked by preparing it).
    pub(crate) fn is_read_only(&self, sql: &str) -> bool {
        // The statement cache makes the check free for the repeated SQL of an application.
        self.inner
            .reads
            .with(|c| Ok(c.prepare_cached(sql).map(|s| s.readonly()).unwrap_or(false)))
            .unwrap_or(false)
    }
}
