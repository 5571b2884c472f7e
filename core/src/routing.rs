//! The one rule for requests sent toward the leader: how every way such a request can fail is
//! classified, once, into "certainly not applied: try again (maybe elsewhere)" or "final". A
//! write that may have been applied is never re-sent: it ends as [`Error::OutcomeUnknown`].
//! Reads change nothing, so a read is retried after any transport failure.
//!
//! The embedded node (forwarding to the leader over the peer protocol) and the remote client
//! (rqlite's HTTP API) both describe what happened as a [`Failure`] and ask [`classify`].

use crate::error::Error;

/// What a request does to the database, which decides whether it may be sent twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Changes data (writes, migrations, membership changes): never re-sent once it may have
    /// reached the leader.
    Write,
    /// Changes nothing: safe to send again.
    Read,
}

/// How one attempt to reach the leader (or a node) failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Failure {
    /// No connection was made (refused, no route, unknown host): the request never left.
    ConnectFailed(String),
    /// The connection was not made within its deadline: the request never left.
    ConnectTimeout(String),
    /// The connection broke after the request was (maybe) sent, before a whole answer came.
    ConnectionLost(String),
    /// The request was (maybe) sent and no answer came within the deadline.
    TimedOut(String),
    /// A follower redirected the request to the leader (HTTP 301): it did not run it.
    Redirect(String),
    /// An HTTP error status, with the error the answer's body names (the body's exact hiqlite
    /// error when it carries one, else what the status means).
    Status(u16, Error),
    /// The node answered with an error of hiqlite's own (the peer protocol's typed answers).
    #[cfg_attr(not(feature = "server"), allow(dead_code))]
    Answer(Error),
    /// An answer arrived but could not be decoded.
    Decode(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::ConnectFailed(m) => write!(f, "cannot connect: {m}"),
            Failure::ConnectTimeout(m) => write!(f, "connect timed out: {m}"),
            Failure::ConnectionLost(m) => write!(f, "connection lost: {m}"),
            Failure::TimedOut(m) => write!(f, "no answer in time: {m}"),
            Failure::Redirect(to) => write!(f, "redirected to {to}"),
            Failure::Status(code, e) => write!(f, "HTTP {code}: {e}"),
            Failure::Answer(e) => write!(f, "{e}"),
            Failure::Decode(m) => write!(f, "undecodable answer: {m}"),
        }
    }
}

/// What to do about a [`Failure`].
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Verdict {
    /// Certainly not applied (or only a read): try again, on whichever node now leads.
    Retry(Error),
    /// Report this error to the caller.
    Fail(Error),
}

fn unknown(what: &str, why: &str) -> Error {
    Error::OutcomeUnknown(format!(
        "{what}; the write may or may not have been applied, so it was not sent again: {why}"
    ))
}

/// The table. Each row is one kind of failure; the columns are writes and reads.
pub(crate) fn classify(kind: Kind, failure: Failure) -> Verdict {
    use Verdict::{Fail, Retry};
    let write = kind == Kind::Write;
    match failure {
        // Never sent: retry, writes included.
        Failure::ConnectFailed(m) => Retry(Error::Unreachable(m)),
        Failure::ConnectTimeout(m) => Retry(Error::Unreachable(format!("connect timed out: {m}"))),
        // A follower refused and named the leader: nothing ran.
        Failure::Redirect(_) => Retry(Error::NotLeader { leader: None }),
        // Sent, then silence or a broken connection: a write may have been applied.
        Failure::ConnectionLost(m) if write => Fail(unknown("the connection broke before the answer", &m)),
        Failure::ConnectionLost(m) => Retry(Error::Unreachable(m)),
        Failure::TimedOut(m) if write => Fail(unknown("no answer in time", &m)),
        Failure::TimedOut(m) => Retry(Error::Timeout(m)),
        // An answer that cannot be read: a write was delivered and probably ran; a read would
        // fail the same way again.
        Failure::Decode(m) if write => Fail(unknown("the answer could not be decoded", &m)),
        Failure::Decode(m) => Fail(Error::Decode(m)),
        Failure::Answer(e) => answered(write, None, e),
        Failure::Status(code, e) => answered(write, Some(code), e),
    }
}

/// An error the node itself reported (typed, or as an HTTP status).
fn answered(write: bool, status: Option<u16>, e: Error) -> Verdict {
    use Verdict::{Fail, Retry};
    match e {
        // Refused before anything was proposed: no leader, not the leader, or the answering
        // node could not reach the leader.
        Error::NoLeader(_) | Error::NotLeader { .. } | Error::Unreachable(_) => Retry(e),
        // The node may have proposed the write before it gave up or stopped.
        Error::Timeout(m) if write => Fail(unknown("the leader did not confirm the write in time", &m)),
        Error::OutcomeUnknown(_) if write => Fail(e),
        Error::ShutDown if write => Fail(unknown("the node shut down while the write was in flight", "")),
        Error::Timeout(_) | Error::OutcomeUnknown(_) | Error::ShutDown => Retry(e),
        // Not the routing layer's business: bad SQL, bad request, wrong credentials...
        e @ (Error::Sql { .. }
        | Error::InvalidRequest(_)
        | Error::Unauthorized(_)
        | Error::Decode(_)
        | Error::CursorTooOld(_)
        | Error::Config(_)) => Fail(e),
        // Any other server failure (HTTP 5xx, a storage or Raft error on the node).
        e if write => Fail(unknown("the server failed the request", &e.to_string())),
        e if status.is_some_and(|s| s >= 500) || status.is_none() => Retry(e),
        e => Fail(e),
    }
}

/// What a reqwest error says happened: never connected, connect timed out, timed out after
/// sending, or lost the connection after sending.
pub(crate) fn transport_failure(addr: &str, e: &reqwest::Error) -> Failure {
    let m = format!("{addr}: {}", error_chain(e));
    match (e.is_connect(), e.is_timeout()) {
        (true, true) => Failure::ConnectTimeout(m),
        (true, false) => Failure::ConnectFailed(m),
        (false, true) => Failure::TimedOut(m),
        (false, false) => Failure::ConnectionLost(m),
    }
}

/// An error and its sources, each once.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        let m = x.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        src = x.source();
    }
    s
}

impl Verdict {
    /// The error, whether or not a retry could follow.
    pub(crate) fn into_error(self) -> Error {
        match self {
            Verdict::Retry(e) | Verdict::Fail(e) => e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(v: &Verdict) -> (&'static str, &'static str) {
        match v {
            Verdict::Retry(e) => ("retry", e.code_name()),
            Verdict::Fail(e) => ("fail", e.code_name()),
        }
    }

    /// Every row of the table, for writes and for reads: the verdict and the error's kind.
    #[test]
    fn the_table() {
        let m = || "x".to_string();
        type Row = (&'static str, Failure, (&'static str, &'static str), (&'static str, &'static str));
        let rows: Vec<Row> = vec![
            (
                "connect refused",
                Failure::ConnectFailed(m()),
                ("retry", "HIQLITE_UNREACHABLE"),
                ("retry", "HIQLITE_UNREACHABLE"),
            ),
            (
                "timeout before send (connect)",
                Failure::ConnectTimeout(m()),
                ("retry", "HIQLITE_UNREACHABLE"),
                ("retry", "HIQLITE_UNREACHABLE"),
            ),
            (
                "connection reset after send",
                Failure::ConnectionLost(m()),
                ("fail", "HIQLITE_OUTCOME_UNKNOWN"),
                ("retry", "HIQLITE_UNREACHABLE"),
            ),
            (
                "timeout after send",
                Failure::TimedOut(m()),
                ("fail", "HIQLITE_OUTCOME_UNKNOWN"),
                ("retry", "HIQLITE_TIMEOUT"),
            ),
            (
                "503 no leader",
                Failure::Status(503, Error::NoLeader(m())),
                ("retry", "HIQLITE_NO_LEADER"),
                ("retry", "HIQLITE_NO_LEADER"),
            ),
            (
                "503 not leader",
                Failure::Status(503, Error::NotLeader { leader: Some(2) }),
                ("retry", "HIQLITE_NOT_LEADER"),
                ("retry", "HIQLITE_NOT_LEADER"),
            ),
            (
                "301 redirect",
                Failure::Redirect("http://h:1".into()),
                ("retry", "HIQLITE_NOT_LEADER"),
                ("retry", "HIQLITE_NOT_LEADER"),
            ),
            (
                "401 unauthorized",
                Failure::Status(401, Error::Unauthorized(m())),
                ("fail", "HIQLITE_UNAUTHORIZED"),
                ("fail", "HIQLITE_UNAUTHORIZED"),
            ),
            (
                "500 server error",
                Failure::Status(500, Error::Storage(m())),
                ("fail", "HIQLITE_OUTCOME_UNKNOWN"),
                ("retry", "HIQLITE_STORAGE"),
            ),
            (
                "504 leader timed out",
                Failure::Status(504, Error::Timeout(m())),
                ("fail", "HIQLITE_OUTCOME_UNKNOWN"),
                ("retry", "HIQLITE_TIMEOUT"),
            ),
            (
                "503 shutting down",
                Failure::Status(503, Error::ShutDown),
                ("fail", "HIQLITE_OUTCOME_UNKNOWN"),
                ("retry", "HIQLITE_SHUTDOWN"),
            ),
            (
                "undecodable answer",
                Failure::Decode(m()),
                ("fail", "HIQLITE_OUTCOME_UNKNOWN"),
                ("fail", "HIQLITE_DECODE"),
            ),
            (
                "400 bad request",
                Failure::Status(400, Error::InvalidRequest(m())),
                ("fail", "HIQLITE_INVALID_REQUEST"),
                ("fail", "HIQLITE_INVALID_REQUEST"),
            ),
            (
                "peer answer: SQL error",
                Failure::Answer(Error::Sql { code: 2067, message: m() }),
                ("fail", "SQLITE_CONSTRAINT_UNIQUE"),
                ("fail", "SQLITE_CONSTRAINT_UNIQUE"),
            ),
            (
                "peer answer: not leader",
                Failure::Answer(Error::NotLeader { leader: None }),
                ("retry", "HIQLITE_NOT_LEADER"),
                ("retry", "HIQLITE_NOT_LEADER"),
            ),
            (
                "peer answer: leader unreachable from the follower",
                Failure::Answer(Error::Unreachable(m())),
                ("retry", "HIQLITE_UNREACHABLE"),
                ("retry", "HIQLITE_UNREACHABLE"),
            ),
            (
                "peer answer: outcome unknown",
                Failure::Answer(Error::OutcomeUnknown(m())),
                ("fail", "HIQLITE_OUTCOME_UNKNOWN"),
                ("retry", "HIQLITE_OUTCOME_UNKNOWN"),
            ),
            (
                "peer answer: raft failure",
                Failure::Answer(Error::Raft(m())),
                ("fail", "HIQLITE_OUTCOME_UNKNOWN"),
                ("retry", "HIQLITE_RAFT"),
            ),
        ];
        for (name, failure, write, read) in rows {
            assert_eq!(kind_of(&classify(Kind::Write, failure.clone())), write, "{name}, write");
            assert_eq!(kind_of(&classify(Kind::Read, failure)), read, "{name}, read");
        }
    }
}
