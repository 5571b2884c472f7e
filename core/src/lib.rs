//! # hiqlite
//!
//! An embeddable, highly available SQL database: SQLite replicated with Raft. Every process that
//! embeds the crate is a node; writes are agreed by the cluster and applied in the same order on
//! every replica; reads are local.
//!
//! ```
//! # #[tokio::main(flavor = "multi_thread")]
//! # async fn main() -> hiqlite::Result<()> {
//! use hiqlite::{params, Client, NodeConfig, Value};
//! let dir = tempfile::tempdir()?;
//! let db = Client::start(NodeConfig {
//!     data_dir: dir.path().into(),
//!     raft_addr: "127.0.0.1:0".into(),
//!     api_addr: "127.0.0.1:0".into(),
//!     ..Default::default()
//! })
//! .await?;
//! db.wait_for_leader(std::time::Duration::from_secs(10)).await?;
//! db.execute("CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT)", ()).await?;
//! db.execute("INSERT INTO kv VALUES (?, ?)", params!["a", "1"]).await?;
//! let rows = db.query("SELECT v FROM kv WHERE k = ?", params!["a"]).await?;
//! assert_eq!(rows.rows[0][0], Value::Text("1".into()));
//! db.shutdown().await?;
//! # Ok(()) }
//! ```

#![warn(missing_docs, missing_debug_implementations)]

#[cfg(not(feature = "remote"))]
compile_error!("hiqlite needs feature `server` (the default: embedded node and remote client) or `remote` (the remote client only)");

// Everywhere: the API's types, the rqlite wire format and the routing rule.
mod changes;
mod client;
mod command;
mod consistency;
mod de;
mod error;
mod routing;
mod rqlite;
mod sqlkind;
mod status;
mod tls;
mod value;

#[doc(hidden)]
pub mod breakdown;

// The embedded node (feature `server`).
#[cfg(feature = "server")]
pub mod backup;
#[cfg(feature = "server")]
mod blocking;
#[cfg(feature = "server")]
mod cache;
#[cfg(feature = "server")]
mod config;
#[cfg(feature = "server")]
mod coord;
#[cfg(feature = "server")]
mod fsx;
#[cfg(feature = "server")]
mod http;
#[cfg(feature = "server")]
mod node;
#[cfg(feature = "server")]
mod peer;
#[cfg(feature = "server")]
mod raft;
#[cfg(feature = "server")]
mod sqlite;
#[cfg(feature = "server")]
mod stmts_wire;

#[cfg(feature = "server")]
pub use cache::{CacheConfig, CacheStats};
pub use changes::{Change, ChangeCursor, ChangeOp};
pub use client::{
    ChangeOptions, ChangeStream, Client, ListenEvent, Listener, LockGuard, Notification, RemoteBuilder,
    RetryPolicy, SharedChanges, SharedListener, SharedStream, SharedWatch, StreamSource, Transaction, Watch,
};
pub use command::{ExecMode, Member, Migration};
#[cfg(feature = "server")]
pub use config::{NodeConfig, Peer};
pub use consistency::Consistency;
pub use error::{sqlite_code_name, Error, Result};
#[cfg(feature = "server")]
pub use node::{recover, Node, Recovered};
pub use sqlkind::{statement_kind, StatementKind};
pub use status::{BackupStatus, NodeInfo, Status};
pub use tls::install_crypto_provider;
pub use value::{ExecResult, Params, Rows, Statement, Value};

/// Building blocks for storage tests (`openraft::testing::Suite`) and tools.
#[cfg(feature = "server")]
pub mod storage {
    pub use crate::raft::log_store::LogStore;
    pub use crate::raft::state_machine::StateMachine;
    pub use crate::raft::{StorageError, TypeConfig};

    /// Open a log store and a state machine in `dir`, as a node does (without the heal step).
    pub fn open(dir: &std::path::Path) -> crate::Result<(LogStore, StateMachine)> {
        let log = LogStore::open(dir.join("log"), 64 * 1024 * 1024)?;
        std::fs::create_dir_all(dir.join("db"))?;
        let cache = std::sync::Arc::new(crate::cache::QueryCache::new(crate::CacheConfig {
            enabled: false,
            ..Default::default()
        }));
        let db = dir.join("db").join("hiqlite.db");
        let writer = crate::sqlite::writer::Writer::start(&db, cache)?;
        let snaps =
            std::sync::Arc::new(crate::raft::snapshot::SnapshotStore::new(db, writer.opened_point.clone()));
        Ok((log, StateMachine::new(writer, snaps, 0, 64 << 20)))
    }
}

/// Every path of the peer protocol (for tests that check each route demands the cluster
/// secret).
#[doc(hidden)]
#[cfg(feature = "server")]
pub fn peer_paths() -> Vec<&'static str> {
    peer::PATHS.iter().copied().chain([peer::stream::PATH]).collect()
}

/// Compiles the README's Rust example as a doctest so that it cannot go stale.
#[doc = include_str!("../../README.md")]
#[cfg(all(doctest, feature = "server"))]
pub struct ReadmeDoctests;
