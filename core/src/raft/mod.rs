//! Raft glue: the openraft type configuration and aliases, storage adapters and network.
//! The replicated payload types live in `crate::command` and are re-exported here.

pub mod log_store;
pub mod network;
pub mod snapshot;
pub mod state_machine;

pub use crate::command::{Command, Member, Response};

openraft::declare_raft_types!(
    /// openraft's type configuration for hiqlite.
    pub TypeConfig:
        // Shared: an entry is cloned for every replication request and for the apply, and
        // a big transaction's statements should not be copied each time. `Arc<T>` encodes
        // exactly as `T` (serde `rc`), so the log and the wire format are unchanged.
        D = std::sync::Arc<Command>,
        R = Response,
        NodeId = u64,
        Node = Member,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = snapshot::SnapData,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The Raft handle type.
pub type Raft = openraft::Raft<TypeConfig>;
/// Log id with our node id type.
pub type LogId = openraft::LogId<u64>;
/// One log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// Storage error with our node id type.
pub type StorageError = openraft::StorageError<u64>;
/// Stored membership with our types.
pub type StoredMembership = openraft::StoredMembership<u64, Member>;
/// Snapshot metadata with our types.
pub type SnapshotMeta = openraft::SnapshotMeta<u64, Member>;

pub(crate) fn io_err(e: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
