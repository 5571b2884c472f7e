//! Configuring a remote client: [`RemoteBuilder`] and the [`RetryPolicy`].

use std::time::Duration;

use super::Remote;
use crate::consistency::Consistency;
use crate::error::Result;

/// When and how often a remote client retries a request that was not applied.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included (1 = never retry). The client's timeout bounds
    /// the whole sequence too.
    pub max_attempts: u32,
    /// Pause before the first retry; doubled after each failed attempt.
    pub initial_backoff: Duration,
    /// Upper bound of the pause.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        // Enough to ride out a leader election (about a second with the default timings).
        RetryPolicy {
            max_attempts: 20,
            initial_backoff: Duration::from_millis(20),
            max_backoff: Duration::from_millis(500),
        }
    }
}

/// Builder of a remote [`Client`](super::Client); see [`Client::remote`](super::Client::remote).
#[derive(Debug, Clone)]
pub struct RemoteBuilder {
    pub(super) urls: Vec<String>,
    pub(super) auth: Option<(String, String)>,
    pub(super) ca_pem: Option<Vec<u8>>,
    pub(super) accept_invalid_certs: bool,
    pub(super) timeout: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) consistency: Consistency,
    pub(super) retry: RetryPolicy,
    pub(super) discover: bool,
    pub(super) read_your_writes: bool,
}

impl RemoteBuilder {
    pub(crate) fn new(urls: Vec<String>) -> Self {
        RemoteBuilder {
            urls,
            auth: None,
            ca_pem: None,
            accept_invalid_certs: false,
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            consistency: Consistency::Leader,
            retry: RetryPolicy::default(),
            discover: true,
            read_your_writes: false,
        }
    }

    /// HTTP Basic credentials (for servers started with a users file).
    pub fn basic_auth(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Some((user.into(), password.into()));
        self
    }

    /// Trust these PEM CA certificates (instead of none) for `https://` URLs.
    pub fn ca_cert_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.ca_pem = Some(pem.into());
        self
    }

    /// Accept any server certificate. For tests only: it disables authentication of the server.
    pub fn danger_accept_invalid_certs(mut self, yes: bool) -> Self {
        self.accept_invalid_certs = yes;
        self
    }

    /// Deadline of one call, retries included (default 10 s).
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Deadline of one TCP (and TLS) connect (default 2 s).
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Consistency of [`Client::query`](super::Client::query) and the other calls that take no
    /// level. Default: [`Consistency::Leader`] (rqlite's `weak`), so a client reads its own
    /// writes; [`Consistency::Local`] reads the nearest node instead.
    pub fn consistency(mut self, c: Consistency) -> Self {
        self.consistency = c;
        self
    }

    /// Retry policy (see [`RetryPolicy`]).
    pub fn retry(mut self, r: RetryPolicy) -> Self {
        self.retry = r;
        self
    }

    /// Learn the other nodes from `/nodes` (default on). Off: only the given URLs (and leaders
    /// named by redirects) are used, e.g. behind a load balancer.
    pub fn discover(mut self, yes: bool) -> Self {
        self.discover = yes;
        self
    }

    /// Read-your-writes mode (default off): the client remembers the log index of its writes
    /// and sends it with every `Local` read (`min_index`), so the node that answers waits until
    /// it applied them first. Same as [`Client::read_your_writes`](super::Client::read_your_writes)
    /// on the built client.
    pub fn read_your_writes(mut self, yes: bool) -> Self {
        self.read_your_writes = yes;
        self
    }

    /// Build the client. No connection is made until the first call.
    pub fn build(self) -> Result<crate::client::Client> {
        let ryw = self.read_your_writes;
        Ok(crate::client::Client::from_remote(Remote::new(self)?, ryw))
    }
}
