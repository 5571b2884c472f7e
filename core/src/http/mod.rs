//! HTTP servers: the peer (Raft) API and the client API (with the web console).

pub(crate) mod admin;
pub(crate) mod api;
pub(crate) mod auth;
mod changes;
mod console;
mod coord;
pub(crate) mod metrics;
mod notify;
pub(crate) mod peer;
mod queue;
mod server;
mod session;
mod tls;
mod tx;
