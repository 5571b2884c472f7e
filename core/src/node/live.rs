//! Live queries on a node: `watch(sql, params)` runs a read, then runs it again each time a
//! committed run changes a table it reads (the query cache's table tracking, learned once per
//! SQL text with the authorizer), and yields the rows whenever they differ from the last rows
//! it yielded. Changes that arrive while a run or a delivery is in progress are coalesced into
//! the next run (the debounce), so a burst of writes costs one query.

use std::sync::Arc;

use tokio::sync::broadcast::error::TryRecvError;

use super::Node;
use crate::error::{Error, Result};
use crate::sqlite::writer::TablesChanged;
use crate::value::{Params, Rows};

impl Node {
    /// Watch the result of a read (see the module documentation).
    pub(crate) fn watch(&self, sql: &str, params: Params) -> Result<NodeWatch> {
        // Subscribed first: a write committed after this point is seen.
        let rx = self.inner.writer.table_feed.subscribe();
        if !self.is_read_only(sql) {
            // Preparing it again gives SQLite's own error for bad SQL.
            self.inner.reads.with(|c| c.prepare(sql).map(|_| ()).map_err(crate::error::Error::from))?;
            return Err(Error::InvalidRequest(format!("watch needs one read-only statement, not `{sql}`")));
        }
        let info = crate::sqlite::learn_query(self.inner.reads.path(), sql)?;
        if info.tables.is_empty() {
            return Err(Error::InvalidRequest(format!(
                "`{sql}` reads no table, so no write can change its result: nothing to watch"
            )));
        }
        Ok(NodeWatch {
            node: self.clone(),
            rx,
            stop: self.stop_signal(),
            sql: sql.to_owned(),
            params,
            tables: info.tables,
            last: None,
        })
    }
}

/// A live query on this node.
pub(crate) struct NodeWatch {
    node: Node,
    rx: tokio::sync::broadcast::Receiver<Arc<TablesChanged>>,
    stop: tokio::sync::watch::Receiver<bool>,
    sql: String,
    params: Params,
    tables: Vec<String>,
    /// The rows yielded last (`None`: nothing yet).
    last: Option<Rows>,
}

impl NodeWatch {
    fn touches(&self, t: &TablesChanged) -> bool {
        t.all || t.tables.iter().any(|x| self.tables.contains(x))
    }

    /// The query's rows: at once the first time, then the next time they change.
    pub(crate) async fn next(&mut self) -> Result<Rows> {
        loop {
            if self.last.is_some() {
                self.wait_for_change().await?;
            }
            let rows = self.node.query(&self.sql, &self.params, super::Consistency::Local).await?;
            if self.last.as_ref() != Some(&rows) {
                self.last = Some(rows.clone());
                return Ok(rows);
            }
        }
    }

    /// Wait until a committed run changed a table the query reads, then take every other
    /// change already queued (they are covered by the one run that follows).
    async fn wait_for_change(&mut self) -> Result<()> {
        loop {
            let hit = match super::recv_or_stop(&mut self.rx, &mut self.stop).await? {
                Some(t) => self.touches(&t),
                // Fell behind: something changed.
                None => true,
            };
            if hit {
                loop {
                    match self.rx.try_recv() {
                        Ok(_) | Err(TryRecvError::Lagged(_)) => {}
                        Err(TryRecvError::Empty) => return Ok(()),
                        Err(TryRecvError::Closed) => return Err(Error::ShutDown),
                    }
                }
            }
        }
    }
}
