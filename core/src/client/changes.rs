//! Change streams and live queries on [`Client`]: `changes(options)` yields every committed row
//! change (table, op, rowid and key, new and optionally old values) in log order from any node,
//! each with a cursor to resume at; `watch(sql, params)` yields a read's rows again whenever a
//! committed write changes them.

use super::{Client, Inner};
use crate::changes::{Change, ChangeCursor};
use crate::error::Result;
use crate::value::{Params, Rows, Statement};

/// What a change stream delivers, and from where.
///
/// ```
/// # use hiqlite::{ChangeCursor, ChangeOptions};
/// let opts = ChangeOptions::new().from(ChangeCursor::from_index(1)).tables(["orders"]).old_values(true);
/// ```
#[derive(Debug, Clone, Default)]
pub struct ChangeOptions {
    from: Option<ChangeCursor>,
    tables: Vec<String>,
    old: bool,
}

impl ChangeOptions {
    /// Every table's changes, from now on, without old values.
    pub fn new() -> Self {
        Self::default()
    }

    /// Start at `cursor` (a [`Change::cursor`] resumes after that change;
    /// [`ChangeCursor::from_index`] starts at a log index) instead of now. A cursor older than
    /// the changes a node keeps fails with [`crate::Error::CursorTooOld`].
    pub fn from(mut self, cursor: ChangeCursor) -> Self {
        self.from = Some(cursor);
        self
    }

    /// Only changes of these tables (names compare case-insensitively).
    pub fn tables<S: Into<String>>(mut self, tables: impl IntoIterator<Item = S>) -> Self {
        self.tables = tables.into_iter().map(Into::into).collect();
        self
    }

    /// Also deliver the old values of updated and deleted rows.
    pub fn old_values(mut self, yes: bool) -> Self {
        self.old = yes;
        self
    }
}

/// A stream of committed row changes (see [`Client::changes`]).
pub struct ChangeStream {
    inner: StreamInner,
}

enum StreamInner {
    #[cfg(feature = "server")]
    Embedded(crate::node::NodeChanges),
    Remote(super::remote::RemoteChanges),
}

impl std::fmt::Debug for ChangeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match &self.inner {
            #[cfg(feature = "server")]
            StreamInner::Embedded(s) => s.describe(),
            StreamInner::Remote(s) => s.describe(),
        };
        f.debug_struct("ChangeStream").field("state", &state).finish()
    }
}

impl ChangeStream {
    /// The next change, waiting for it.
    pub async fn next(&mut self) -> Result<Change> {
        match &mut self.inner {
            #[cfg(feature = "server")]
            StreamInner::Embedded(s) => s.next().await,
            StreamInner::Remote(s) => s.next().await,
        }
    }

    /// Where the stream is: the cursor after the last change it delivered (or where it started;
    /// `None` for a remote stream that started now and delivered nothing yet).
    pub fn cursor(&self) -> Option<ChangeCursor> {
        match &self.inner {
            #[cfg(feature = "server")]
            StreamInner::Embedded(s) => Some(s.cursor()),
            StreamInner::Remote(s) => s.cursor(),
        }
    }
}

/// A live query (see [`Client::watch`]).
pub struct Watch {
    inner: WatchInner,
}

enum WatchInner {
    #[cfg(feature = "server")]
    Embedded(crate::node::NodeWatch),
    Remote(super::remote::RemoteWatch),
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch").finish_non_exhaustive()
    }
}

impl Watch {
    /// The query's rows: the first call at once, then each time they changed.
    pub async fn next(&mut self) -> Result<Rows> {
        match &mut self.inner {
            #[cfg(feature = "server")]
            WatchInner::Embedded(w) => w.next().await,
            WatchInner::Remote(w) => w.next().await,
        }
    }
}

impl Client {
    /// Follow committed row changes in log order (inserts, updates, deletes; triggers and
    /// foreign-key actions included), on this node or, remote, the nearest one. Each change
    /// carries its log index; [`Change::cursor`] resumes after it, across restarts, snapshots
    /// and nodes, without duplicates or gaps.
    ///
    /// ```no_run
    /// # async fn f(db: hiqlite::Client) -> hiqlite::Result<()> {
    /// use hiqlite::ChangeOptions;
    /// let mut changes = db.changes(ChangeOptions::new().tables(["orders"])).await?;
    /// while let Ok(c) = changes.next().await {
    ///     println!("{} {:?} {:?} -> resume at {}", c.table, c.op, c.key, c.cursor());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn changes(&self, opts: ChangeOptions) -> Result<ChangeStream> {
        let inner = match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => {
                let tables =
                    (!opts.tables.is_empty()).then(|| opts.tables.iter().map(|t| t.to_lowercase()).collect());
                StreamInner::Embedded(
                    n.changes(opts.from, crate::node::ChangeFilter { tables, old: opts.old })?,
                )
            }
            Inner::Remote(r) => StreamInner::Remote(r.changes(opts.from, &opts.tables, opts.old).await?),
        };
        Ok(ChangeStream { inner })
    }

    /// A live query: `next()` gives the rows of `sql` at once, then again each time a committed
    /// write changed them (writes that arrive together are coalesced into one run of the query).
    /// Reads locally on this node (remote: the nearest one).
    ///
    /// ```no_run
    /// # async fn f(db: hiqlite::Client) -> hiqlite::Result<()> {
    /// let mut w = db.watch("SELECT count(*) FROM orders WHERE open", ()).await?;
    /// loop {
    ///     let rows = w.next().await?;
    ///     println!("open orders: {:?}", rows.rows[0][0]);
    /// }
    /// # }
    /// ```
    pub async fn watch(&self, sql: &str, params: impl Into<Params>) -> Result<Watch> {
        let stmt = Statement::new(sql, params);
        let inner = match &self.inner {
            #[cfg(feature = "server")]
            Inner::Embedded(n) => WatchInner::Embedded(n.watch(&stmt.sql, stmt.params)?),
            Inner::Remote(r) => WatchInner::Remote(r.watch(&stmt).await?),
        };
        Ok(Watch { inner })
    }
}
