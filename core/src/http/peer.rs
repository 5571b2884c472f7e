//! Peer routes: Raft RPCs and requests forwarded from followers. Bodies are postcard; every
//! request must carry the cluster secret (compared in constant time).

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::de::DeserializeOwned;
use serde::Serialize;
use subtle::ConstantTimeEq;

use crate::error::Error;
use crate::node::{ClusterInfo, JoinRequest, Node, QueryRequest};
use crate::raft::network::{POSTCARD, SECRET_HEADER};
use crate::raft::Command;

pub(crate) fn router(node: Node) -> Router {
    let limit = node.inner.config.max_body_bytes;
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/cluster/write", post(write))
        .route("/cluster/query", post(query))
        .route("/cluster/read_index", post(read_index))
        .route("/cluster/join", post(join))
        .route("/cluster/remove", post(remove))
        .route("/cluster/info", post(info))
        .route("/cluster/elect", post(elect))
        .layer(middleware::from_fn_with_state(node.clone(), require_secret))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(node)
}

async fn require_secret(State(node): State<Node>, headers: HeaderMap, req: Request, next: Next) -> Response {
    let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or(b"");
    let expected = node.inner.config.secret.as_bytes();
    if given.ct_eq(expected).into() {
        next.run(req).await
    } else {
        (StatusCode::UNAUTHORIZED, "missing or wrong cluster secret").into_response()
    }
}

fn decode<T: DeserializeOwned>(body: &Bytes) -> Result<T, Response> {
    postcard::from_bytes(body)
        .map_err(|e| (StatusCode::BAD_REQUEST, format!("undecodable peer request: {e}")).into_response())
}

fn encode<T: Serialize>(v: &T) -> Response {
    match postcard::to_stdvec(v) {
        Ok(b) => ([(axum::http::header::CONTENT_TYPE, POSTCARD)], b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode answer: {e}")).into_response(),
    }
}

macro_rules! body {
    ($t:ty, $b:expr) => {
        match decode::<$t>(&$b) {
            Ok(v) => v,
            Err(resp) => return resp,
        }
    };
}

async fn append(State(node): State<Node>, body: Bytes) -> Response {
    let req = body!(openraft::raft::AppendEntriesRequest<crate::raft::TypeConfig>, body);
    let r = node.inner.raft.append_entries(req).await;
    if matches!(&r, Ok(resp) if resp.is_success()) {
        node.inner.last_leader_contact_ms.store(crate::node::now_ms(), std::sync::atomic::Ordering::Relaxed);
    }
    encode(&r)
}

async fn vote(State(node): State<Node>, body: Bytes) -> Response {
    let req = body!(openraft::raft::VoteRequest<u64>, body);
    encode(&node.inner.raft.vote(req).await)
}

async fn snapshot(State(node): State<Node>, body: Bytes) -> Response {
    let req = body!(openraft::raft::InstallSnapshotRequest<crate::raft::TypeConfig>, body);
    encode(&node.inner.raft.install_snapshot(req).await)
}

async fn write(State(node): State<Node>, body: Bytes) -> Response {
    let cmd = body!(Command, body);
    let r = if node.is_leader() {
        node.write_as_leader(cmd).await
    } else {
        Err(Error::NotLeader { leader: node.leader() })
    };
    encode(&r)
}

async fn query(State(node): State<Node>, body: Bytes) -> Response {
    let req = body!(QueryRequest, body);
    let r = if node.is_leader() {
        node.inner.reads.query(&req.sql, &req.params)
    } else {
        Err(Error::NotLeader { leader: node.leader() })
    };
    encode(&r)
}

async fn read_index(State(node): State<Node>) -> Response {
    let r = if node.is_leader() {
        match node.inner.raft.get_read_log_id().await {
            Ok((read, _)) => Ok(read),
            Err(openraft::error::RaftError::APIError(_)) => Err(Error::NotLeader { leader: node.leader() }),
            Err(e) => Err(Error::raft(e)),
        }
    } else {
        Err(Error::NotLeader { leader: node.leader() })
    };
    encode(&r)
}

async fn join(State(node): State<Node>, body: Bytes) -> Response {
    let req = body!(JoinRequest, body);
    let r = node.via_leader("/cluster/join", &req, || node.add_member(req.id, req.member.clone())).await;
    encode(&r)
}

async fn remove(State(node): State<Node>, body: Bytes) -> Response {
    let id = body!(u64, body);
    let r = node.via_leader("/cluster/remove", &id, || node.remove_member(id)).await;
    encode(&r)
}

async fn info(State(node): State<Node>) -> Response {
    let initialized = node.inner.raft.is_initialized().await.unwrap_or(false);
    encode(&ClusterInfo { initialized, leader: node.leader() })
}

/// Campaign for leadership now (leadership transfer, `POST /leader`).
async fn elect(State(node): State<Node>) -> Response {
    let r = node.inner.raft.trigger().elect().await.map_err(Error::raft);
    encode(&r)
}
