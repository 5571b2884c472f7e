//! The peer listener's routes: each route of [`crate::peer`] decoded from postcard, handed to
//! the node, and its answer encoded; and the follower's end of append streams
//! ([`crate::peer::stream`]). Every request must carry the cluster secret (compared in constant
//! time).

use std::future::Future;

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, post};
use axum::Router;
use subtle::ConstantTimeEq;

use crate::node::Node;
use crate::peer::{self, stream, Route, POSTCARD, SECRET_HEADER};

/// Serve route `R` with `handler`.
fn serve<R, F, Fut>(router: Router<Node>, handler: F) -> Router<Node>
where
    R: Route,
    F: Fn(Node, R::Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = R::Resp> + Send + 'static,
{
    router.route(
        R::PATH,
        post(move |State(node): State<Node>, body: Bytes| async move {
            match postcard::from_bytes::<R::Req>(&body) {
                Ok(req) => encode(&handler(node, req).await),
                Err(e) => (StatusCode::BAD_REQUEST, format!("undecodable peer request: {e}")).into_response(),
            }
        }),
    )
}

pub(crate) fn router(node: Node) -> Router {
    let limit = node.config().max_body_bytes;
    let r = Router::new();
    let r = r.route(stream::PATH, any(append_stream));
    let r = serve::<peer::Vote, _, _>(r, |n, req| async move { n.vote(req).await });
    let r = serve::<peer::Snapshot, _, _>(r, |n, req| async move { n.install_snapshot(req).await });
    let r = serve::<peer::Write, _, _>(r, |n, cmd| async move { n.write_forwarded(cmd).await });
    let r = serve::<peer::Query, _, _>(r, |n, q| async move { n.query_as_leader(&q.sql, &q.params) });
    let r = serve::<peer::ReadIndex, _, _>(r, |n, ()| async move { n.read_index_as_leader().await });
    let r = serve::<peer::Join, _, _>(r, |n, j| async move { n.add_node(j.id, j.member).await });
    let r = serve::<peer::JoinLearner, _, _>(r, |n, j| async move { n.add_learner(j.id, j.member).await });
    let r = serve::<peer::Remove, _, _>(r, |n, id| async move { n.remove_node(id).await });
    let r = serve::<peer::Info, _, _>(r, |n, ()| async move { n.cluster_info().await });
    let r = serve::<peer::NodeStatus, _, _>(r, |n, ()| async move { n.status() });
    let r = serve::<peer::Elect, _, _>(r, |n, ()| async move { n.elect().await });
    let r = serve::<peer::TxBegin, _, _>(r, |n, ()| async move { n.tx_begin_forwarded().await });
    let r = serve::<peer::TxExec, _, _>(r, |n, (id, st)| async move { n.tx_exec_forwarded(id, st).await });
    let r = serve::<peer::TxCommit, _, _>(r, |n, id| async move { n.tx_commit_forwarded(id).await });
    let r = serve::<peer::TxRollback, _, _>(r, |n, id| async move { n.tx_rollback_forwarded(id).await });
    r.layer(middleware::from_fn_with_state(node.clone(), require_secret))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(node)
}

async fn require_secret(State(node): State<Node>, headers: HeaderMap, req: Request, next: Next) -> Response {
    let given = headers.get(SECRET_HEADER).map(|v| v.as_bytes()).unwrap_or(b"");
    let expected = node.config().secret.as_bytes();
    if given.ct_eq(expected).into() {
        next.run(req).await
    } else {
        (StatusCode::UNAUTHORIZED, "missing or wrong cluster secret").into_response()
    }
}

fn encode<T: serde::Serialize>(v: &T) -> Response {
    match postcard::to_stdvec(v) {
        Ok(b) => ([(axum::http::header::CONTENT_TYPE, POSTCARD)], b).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("cannot encode answer: {e}")).into_response(),
    }
}

/// Accept an append stream: answer `101 Switching Protocols`, then serve the connection.
async fn append_stream(State(node): State<Node>, req: Request) -> Response {
    use axum::http::header::{CONNECTION, UPGRADE};
    let asked = req.headers().get(UPGRADE).is_some_and(|v| v.as_bytes() == stream::PROTOCOL.as_bytes());
    if !asked {
        let msg = format!("{} takes an HTTP/1.1 upgrade to {}", stream::PATH, stream::PROTOCOL);
        return (StatusCode::UPGRADE_REQUIRED, [(UPGRADE, stream::PROTOCOL)], msg).into_response();
    }
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(io) => serve_appends(node, hyper_util::rt::TokioIo::new(io)).await,
            Err(e) => tracing::debug!("append stream not upgraded: {e}"),
        }
    });
    (StatusCode::SWITCHING_PROTOCOLS, [(CONNECTION, "upgrade"), (UPGRADE, stream::PROTOCOL)]).into_response()
}

/// Answer the appends of one stream, in order, until the leader closes it or the node stops.
/// A frame over the body limit or one that does not decode ends the stream (the leader opens
/// another).
async fn serve_appends<T>(node: Node, io: T)
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use futures::{SinkExt, StreamExt};
    let mut io = tokio_util::codec::Framed::new(io, stream::codec(node.config().max_body_bytes));
    let mut stop = node.stop_signal();
    loop {
        let frame = tokio::select! {
            f = io.next() => f,
            _ = stop.wait_for(|v| *v) => return,
        };
        let req = match frame.map(|f| f.map(|b| postcard::from_bytes::<stream::Req>(&b))) {
            None => return,
            Some(Ok(Ok(req))) => req,
            Some(Ok(Err(e))) => {
                tracing::warn!("undecodable append on a stream, closing it: {e}");
                return;
            }
            Some(Err(e)) => {
                tracing::warn!("append stream failed, closing it: {e}");
                return;
            }
        };
        let answer: stream::Resp = node.append_entries(req).await;
        let sent = match stream::encode(&answer) {
            Ok(b) => io.send(b).await,
            Err(e) => {
                tracing::error!("cannot encode an append's answer: {e}");
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}
