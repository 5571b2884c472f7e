//! HTTP servers: the peer (Raft) API and the client API.

pub(crate) mod api;
pub(crate) mod peer;
pub(crate) mod rqlite;
