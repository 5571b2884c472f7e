//! rqlite requests that hold transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`, savepoints) as
//! statements of their own: run as SQLite would run them on one connection, in one interactive
//! session on the leader, committed as one log entry or not at all.

use std::time::{Duration, Instant};

use axum::response::Response;

use super::api::{answer, service_error, with_timeout, Api, Flags};
use crate::error::Error;
use crate::rqlite;
use crate::value::Statement;

/// Whether a request holds transaction control (`BEGIN`, `COMMIT`/`END`, `ROLLBACK`, `SAVEPOINT`,
/// `RELEASE`, `ROLLBACK TO`) as statements of their own.
pub(super) fn has_tx_control(stmts: &[Statement]) -> bool {
    use crate::sqlkind::{statement_kind, StatementKind as K};
    stmts.iter().any(|s| matches!(statement_kind(&s.sql), K::Begin | K::Commit | K::Rollback | K::Savepoint))
}

/// The savepoint that stands for the request's own `BEGIN` inside the session.
const REQUEST_TX: &str = "hiqlite_rqlite_request_tx";

fn sql_error(message: &str) -> Error {
    Error::Sql { code: rusqlite::ffi::SQLITE_ERROR, message: message.into() }
}

/// The savepoint name a `SAVEPOINT`/`RELEASE`/`ROLLBACK TO` statement names (its last word).
fn savepoint_name(sql: &str) -> String {
    let t = sql.trim().trim_end_matches(';').trim();
    let w = t.rsplit(|c: char| c.is_whitespace()).next().unwrap_or("");
    let w = w.trim_matches(|c| c == '"' || c == '`' || c == '\'' || c == '[' || c == ']');
    w.to_ascii_lowercase()
}

/// A request with transaction control, run as SQLite runs it on one connection (rqlite runs each
/// statement with `ExecContext` on its single read-write connection, so `BEGIN` opens a
/// transaction that the following statements run in: rqlite/rqlite `db/db.go`,
/// `executeWithConn`). The whole request is one interactive session on the leader and commits
/// as one log entry, so nothing of it is applied unless all of it is: `BEGIN` becomes a
/// savepoint, `COMMIT`/`END` releases it, `ROLLBACK` rolls back to it; a transaction a
/// `SAVEPOINT` began ends with the `RELEASE` of that savepoint; one left open at the end of the
/// request is rolled back (rqlite would leave its connection inside it).
pub(super) async fn run_session(
    api: &Api,
    stmts: Vec<Statement>,
    flags: &Flags,
    request: bool,
    timeout: Option<Duration>,
) -> Response {
    use crate::sqlkind::{statement_kind, StatementKind as K};
    enum Open {
        Begin,
        Savepoint(String),
    }
    let node = &api.node;
    let f = flags.format();
    let started = Instant::now();
    let id = match with_timeout(timeout, node.tx_begin()).await {
        Ok(id) => id,
        Err(e) => return service_error(e),
    };
    let marker = |verb: &str| Statement::from(format!("{verb} {REQUEST_TX}").as_str());
    let work = async {
        let mut open: Option<Open> = None;
        let mut results = Vec::with_capacity(stmts.len());
        for s in stmts {
            let t = Instant::now();
            let kind = statement_kind(&s.sql);
            let r: crate::Result<Option<crate::value::ExecResult>> = match kind {
                K::Begin if open.is_some() => {
                    Err(sql_error("cannot start a transaction within a transaction"))
                }
                K::Begin => {
                    node.tx_exec(id, marker("SAVEPOINT")).await?;
                    open = Some(Open::Begin);
                    Ok(None)
                }
                K::Commit | K::Rollback if open.is_none() => Err(sql_error(if kind == K::Commit {
                    "cannot commit - no transaction is active"
                } else {
                    "cannot rollback - no transaction is active"
                })),
                K::Commit => {
                    node.tx_exec(id, marker("RELEASE")).await?;
                    open = None;
                    Ok(None)
                }
                K::Rollback => {
                    node.tx_exec(id, marker("ROLLBACK TO")).await?;
                    node.tx_exec(id, marker("RELEASE")).await?;
                    open = None;
                    Ok(None)
                }
                K::Savepoint => {
                    let verb = s.sql.trim_start().get(..7).unwrap_or("").to_ascii_uppercase();
                    let name = savepoint_name(&s.sql);
                    if verb.starts_with("SAVEPOI") && open.is_none() {
                        node.tx_exec(id, marker("SAVEPOINT")).await?;
                        open = Some(Open::Savepoint(name.clone()));
                    }
                    match node.tx_exec(id, s).await {
                        Ok(x) => {
                            if verb.starts_with("RELEASE") {
                                if let Some(Open::Savepoint(first)) = &open {
                                    if *first == name {
                                        node.tx_exec(id, marker("RELEASE")).await?;
                                        open = None;
                                    }
                                }
                            }
                            Ok(Some(x))
                        }
                        Err(e) => Err(e),
                    }
                }
                _ => node.tx_exec(id, s).await.map(Some),
            };
            match r {
                Ok(Some(x)) => results.push(rqlite::exec_result(&x, f, t.elapsed().as_secs_f64(), request)),
                Ok(None) => results.push(rqlite::exec_result(
                    &Default::default(),
                    f,
                    t.elapsed().as_secs_f64(),
                    request,
                )),
                // A failed statement is that statement's error, as on a SQLite connection.
                Err(e @ Error::Sql { .. }) => results.push(rqlite::error_result(&e, f)),
                Err(e) => return Err(e),
            }
        }
        if open.is_some() {
            node.tx_exec(id, marker("ROLLBACK TO")).await?;
            node.tx_exec(id, marker("RELEASE")).await?;
        }
        Ok(results)
    };
    match with_timeout(timeout, work).await {
        Ok(results) => match node.tx_commit(id).await {
            Ok(()) => {
                answer(rqlite::envelope(results, f, started.elapsed().as_secs_f64()), flags.has("pretty"))
            }
            Err(e) => service_error(e),
        },
        Err(e) => {
            let _ = node.tx_rollback(id).await;
            service_error(e)
        }
    }
}
