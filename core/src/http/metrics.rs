//! Request counters and the Prometheus text rendering of `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// (endpoint, status) -> (requests, seconds spent).
type Counters = BTreeMap<(&'static str, u16), (u64, f64)>;

/// Per-endpoint request counts and latency sums.
#[derive(Default)]
pub(crate) struct ApiMetrics {
    by_endpoint: Mutex<Counters>,
}

/// The route label of a path (bounded set, so metrics cannot grow without bound).
pub(crate) fn endpoint(path: &str) -> &'static str {
    match path {
        "/db/execute" => "execute",
        "/db/query" => "query",
        "/db/request" => "request",
        "/db/backup" => "backup",
        "/db/load" => "load",
        "/status" => "status",
        "/nodes" => "nodes",
        "/leader" => "leader",
        "/readyz" => "readyz",
        "/remove" => "remove",
        "/metrics" => "metrics",
        p if p == "/console" || p.starts_with("/console/") => "console",
        _ => "other",
    }
}

impl ApiMetrics {
    pub(crate) fn record(&self, endpoint: &'static str, status: u16, secs: f64) {
        let mut m = self.by_endpoint.lock().unwrap_or_else(|p| p.into_inner());
        let e = m.entry((endpoint, status)).or_insert((0, 0.0));
        e.0 += 1;
        e.1 += secs;
    }

    /// Prometheus text format, with node gauges first.
    pub(crate) fn render(&self, st: &crate::node::Status, cache: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let g = |out: &mut String, name: &str, help: &str, v: f64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let state_num = match st.state.as_str() {
            "Leader" => 3.0,
            "Candidate" => 2.0,
            "Follower" => 1.0,
            _ => 0.0,
        };
        g(&mut out, "hiqlite_raft_state", "0 learner/shutdown, 1 follower, 2 candidate, 3 leader", state_num);
        g(&mut out, "hiqlite_raft_term", "current Raft term", st.term as f64);
        g(
            &mut out,
            "hiqlite_raft_last_log_index",
            "last index in the log",
            st.last_log_index.unwrap_or(0) as f64,
        );
        g(
            &mut out,
            "hiqlite_raft_applied_index",
            "last index applied to SQLite",
            st.applied_index.unwrap_or(0) as f64,
        );
        g(
            &mut out,
            "hiqlite_raft_leader_id",
            "current leader's node id (0: none)",
            st.leader.unwrap_or(0) as f64,
        );
        g(&mut out, "hiqlite_healthy", "1 when the node runs normally", if st.healthy { 1.0 } else { 0.0 });
        g(&mut out, "hiqlite_snapshots_built", "snapshots built since start", st.snapshots_built as f64);
        g(
            &mut out,
            "hiqlite_snapshot_build_ms",
            "duration of the last snapshot build in milliseconds",
            st.snapshot_build_ms as f64,
        );
        g(
            &mut out,
            "hiqlite_snapshots_installed",
            "snapshots installed since start",
            st.snapshots_installed as f64,
        );
        if let Some(b) = &st.backup {
            g(&mut out, "hiqlite_backups_stored", "scheduled backups stored since start", b.stored as f64);
            g(
                &mut out,
                "hiqlite_backups_failed",
                "scheduled backup attempts that failed since start",
                b.failed as f64,
            );
            g(
                &mut out,
                "hiqlite_backup_consecutive_failures",
                "failed attempts since the last stored backup",
                b.consecutive_failures as f64,
            );
            g(
                &mut out,
                "hiqlite_backup_last_success_seconds",
                "Unix time of the last stored backup (0: none yet)",
                b.last_success_ms.unwrap_or(0) as f64 / 1000.0,
            );
            g(
                &mut out,
                "hiqlite_backup_last_index",
                "log index of the last stored backup",
                b.last_index.unwrap_or(0) as f64,
            );
            g(&mut out, "hiqlite_backup_last_bytes", "stored size of the last backup", b.last_bytes as f64);
            g(
                &mut out,
                "hiqlite_backups_pruned",
                "old backups deleted by retention since start",
                b.pruned as f64,
            );
        }
        let m = self.by_endpoint.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(out, "# HELP hiqlite_http_requests_total HTTP API requests\n# TYPE hiqlite_http_requests_total counter");
        for ((ep, status), (n, _)) in m.iter() {
            let _ = writeln!(out, "hiqlite_http_requests_total{{endpoint=\"{ep}\",status=\"{status}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "# HELP hiqlite_http_request_seconds_sum time spent serving HTTP API requests\n# TYPE hiqlite_http_request_seconds_sum counter"
        );
        for ((ep, status), (_, s)) in m.iter() {
            let _ = writeln!(
                out,
                "hiqlite_http_request_seconds_sum{{endpoint=\"{ep}\",status=\"{status}\"}} {s}"
            );
        }
        for (name, labels, v) in cache {
            let _ = writeln!(out, "{name}{labels} {v}");
        }
        out
    }
}
