//! rqlite's wire format, both sides: request bodies and query-string words (levels, cache
//! flags, Go durations), results rendered exactly as rqlite renders them (the server), and
//! answers decoded back into hiqlite's types (the remote client). Pure functions over JSON and
//! plain status codes: no axum, reqwest, SQLite or Raft in here.

mod client;
#[cfg(feature = "server")]
pub(crate) mod gotime;
mod level;
#[cfg(feature = "server")]
mod server;

pub(crate) use client::{
    encode_statements, error_from_status, parse_nodes, parse_results, parse_status, Answer,
};
#[cfg(feature = "server")]
pub(crate) use level::parse_cache;
pub(crate) use level::{cache_param, Level};
#[cfg(feature = "server")]
pub(crate) use server::{
    envelope, error_result, exec_result, parse_duration, parse_statements, query_result, Format,
};
