//! The `hiqlite` binary: run a node, a local demo cluster, or the benchmark.

mod backups;
mod bench;
mod bench_failover;
mod bench_kv;
mod bench_remote;
mod bench_scale;
mod bench_scale_io;
mod shell;
mod transfer;

// The engine allocates per statement and per log entry on several threads; mimalloc's thread
// caches measured 10-20% faster than glibc malloc on the bench. Built without transparent huge
// pages (see the workspace Cargo.toml).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use hiqlite::{Client, NodeConfig, Peer};

#[derive(Parser)]
#[command(name = "hiqlite", version, about = "Embeddable, highly available SQLite replicated with Raft")]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one node (default: a single-node cluster on 127.0.0.1:4001 with data in ./hiqlite-data).
    Serve(Box<ServeArgs>),
    /// Run a local N-node cluster in this process, for trying hiqlite out.
    Cluster(ClusterArgs),
    /// Measure throughput and latency against raw SQLite on the same disk.
    Bench(bench::BenchArgs),
    /// Download a consistent online backup (a SQLite file) from a running node.
    Backup(BackupArgs),
    /// List the backups a destination (S3 bucket or directory) holds.
    Backups(backups::BackupsArgs),
    /// Load a backup (a SQLite file, replacing every table; or the newest of a backup
    /// destination) or SQL text (e.g. a dump, run as one transaction) into a running cluster.
    Restore(RestoreArgs),
    /// Interactive SQL shell against a running cluster (hiqlite or rqlite).
    Shell(shell::ShellArgs),
    /// Quorum-loss recovery: give a STOPPED node a new set of voters, so that the survivors of a
    /// cluster that lost its majority for good form a new cluster with their data.
    Recover(RecoverArgs),
}

#[derive(Args)]
struct RecoverArgs {
    /// The stopped node's data directory.
    #[arg(long)]
    data_dir: PathBuf,
    /// The new voters, `ID=RAFT_ADDR/API_ADDR`, comma-separated or repeated; include this node.
    #[arg(long, value_delimiter = ',', required = true)]
    voters: Vec<String>,
}

#[derive(Args)]
struct BackupArgs {
    /// Where to write the backup.
    #[arg(long)]
    to: PathBuf,
    /// API address of the node to back up.
    #[arg(long, default_value = "127.0.0.1:4001")]
    api_addr: String,
}

#[derive(Args)]
struct RestoreArgs {
    /// The SQLite file or SQL text to load, or a backup destination (`s3://BUCKET[/PREFIX]`, a
    /// directory) to load the newest backup of (key from `HIQLITE_BACKUP_KEY`).
    #[arg(long)]
    from: PathBuf,
    /// With a destination: the backup to load (a name `hiqlite backups` lists).
    #[arg(long)]
    name: Option<String>,
    /// Point-in-time restore from a destination, as of this moment (RFC 3339, e.g.
    /// `2026-11-30T19:30:00Z`, or Unix milliseconds): writes a backup file to --out.
    #[arg(long, requires = "out", conflicts_with = "to_index")]
    to_time: Option<String>,
    /// Point-in-time restore from a destination, up to this log index: writes --out.
    #[arg(long, requires = "out")]
    to_index: Option<u64>,
    /// Where a point-in-time restore writes its backup file (start a new cluster from it with
    /// `hiqlite serve --restore FILE`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// API address of a node of the cluster.
    #[arg(long, default_value = "127.0.0.1:4001")]
    api_addr: String,
}

#[derive(Args, Default)]
struct ServeArgs {
    /// TOML config file; flags and HIQLITE_* variables override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Node id (> 0).
    #[arg(long)]
    node_id: Option<u64>,
    /// Data directory.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Listen address of the peer (Raft) API.
    #[arg(long)]
    raft_addr: Option<String>,
    /// Listen address of the client HTTP API.
    #[arg(long)]
    api_addr: Option<String>,
    /// Initial voters, `ID=RAFT_ADDR/API_ADDR`, repeatable or comma-separated; include this node.
    #[arg(long, value_delimiter = ',')]
    peers: Vec<String>,
    /// Raft address of a member of a running cluster to join through (repeatable).
    #[arg(long, value_delimiter = ',')]
    join: Vec<String>,
    /// Join as a read replica: replicate and serve reads, never vote, never be promoted.
    #[arg(long)]
    learner: bool,
    /// Row changes of the last N log entries kept for change streams (0: no capture).
    #[arg(long, value_name = "N")]
    change_retention: Option<u64>,
    /// POST committed row changes to this URL (the leader sends, retries, at least once).
    #[arg(long, value_name = "URL")]
    change_webhook: Option<String>,
    /// Cluster secret shared by all nodes.
    #[arg(long)]
    secret: Option<String>,
    /// Take a snapshot every N log entries.
    #[arg(long)]
    snapshot_every: Option<u64>,
    /// Start a new cluster from this backup file (empty data directory, no --peers/--join).
    #[arg(long)]
    restore: Option<PathBuf>,
    /// Scheduled backups to `s3://BUCKET[/PREFIX]` or a directory (only the leader takes
    /// them); the key to encrypt them with comes from `HIQLITE_BACKUP_KEY`.
    #[arg(long)]
    backup_to: Option<String>,
    /// Seconds between scheduled backups.
    #[arg(long)]
    backup_interval_secs: Option<u64>,
    /// Scheduled backups kept (the newest).
    #[arg(long)]
    backup_keep: Option<usize>,
    /// With an empty data directory: start from the newest backup of --backup-to.
    #[arg(long)]
    auto_restore: bool,
    /// Raft address announced to other nodes (when it differs from --raft-addr).
    #[arg(long)]
    raft_advertise: Option<String>,
    /// API address announced to clients (when it differs from --api-addr).
    #[arg(long)]
    api_advertise: Option<String>,
    /// rqlite-style users file (JSON) enabling Basic auth on the client API.
    #[arg(long)]
    auth: Option<PathBuf>,
    /// PEM certificate: serve both listeners over TLS (needs --tls-key).
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) trusted for peer connections (default: --tls-cert).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// Skip verification of peers' certificates (testing only).
    #[arg(long)]
    tls_insecure: bool,
    /// Foreign-key enforcement of a new cluster (`PRAGMA foreign_keys` changes it later).
    /// Default true; false when started with rqlited's command line unless `-fk` is given.
    #[arg(long)]
    foreign_keys: Option<bool>,
    /// Serve the web console at /console (`--console=false`: never). Default: only when the
    /// API listens on a loopback address.
    #[arg(long, num_args = 0..=1, default_missing_value = "true", require_equals = true)]
    console: Option<bool>,
}

#[derive(Args)]
struct ClusterArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u64,
    /// Base directory; node N keeps its data in BASE/node-N.
    #[arg(long, default_value = "hiqlite-cluster")]
    data_dir: PathBuf,
    /// API port of node 1; node N uses BASE+10*(N-1) for the API and that +1 for Raft.
    #[arg(long, default_value_t = 4001)]
    base_port: u16,
}

fn serve_config(a: ServeArgs) -> anyhow::Result<NodeConfig> {
    let mut cfg = match &a.config {
        Some(p) => NodeConfig::from_toml_file(p)?,
        None => NodeConfig::default(),
    }
    .with_env()?;
    if let Some(v) = a.node_id {
        cfg.node_id = v;
    }
    if let Some(v) = a.data_dir {
        cfg.data_dir = v;
    }
    if let Some(v) = a.raft_addr {
        cfg.raft_addr = v;
    }
    if let Some(v) = a.api_addr {
        cfg.api_addr = v;
    }
    if !a.peers.is_empty() {
        cfg.peers = a.peers.iter().map(|p| Peer::parse(p)).collect::<hiqlite::Result<_>>()?;
    }
    if !a.join.is_empty() {
        cfg.join = a.join;
    }
    cfg.learner |= a.learner;
    if let Some(v) = a.change_retention {
        cfg.change_retention = v;
    }
    if let Some(v) = a.change_webhook {
        cfg.change_webhook = Some(v);
    }
    if let Some(v) = a.secret {
        cfg.secret = v;
    }
    if let Some(v) = a.snapshot_every {
        cfg.snapshot_every = v;
    }
    if let Some(v) = a.restore {
        cfg.restore_from = Some(v);
    }
    if let Some(v) = a.backup_to {
        let b = cfg.backup.get_or_insert_with(Default::default);
        b.destination = v;
        if b.encryption_key.is_none() {
            b.encryption_key = std::env::var("HIQLITE_BACKUP_KEY").ok();
        }
    }
    if let Some(b) = cfg.backup.as_mut() {
        if let Some(v) = a.backup_interval_secs {
            b.interval_secs = v;
        }
        if let Some(v) = a.backup_keep {
            b.keep = v;
        }
        b.auto_restore |= a.auto_restore;
    }
    if a.raft_advertise.is_some() {
        cfg.raft_advertise = a.raft_advertise;
    }
    if a.api_advertise.is_some() {
        cfg.api_advertise = a.api_advertise;
    }
    if a.auth.is_some() {
        cfg.auth_file = a.auth;
    }
    if a.tls_cert.is_some() {
        cfg.tls_cert = a.tls_cert;
    }
    if a.tls_key.is_some() {
        cfg.tls_key = a.tls_key;
    }
    if a.tls_ca.is_some() {
        cfg.tls_ca = a.tls_ca;
    }
    cfg.tls_insecure |= a.tls_insecure;
    if let Some(v) = a.foreign_keys {
        cfg.foreign_keys = v;
    }
    if a.console.is_some() {
        cfg.console = a.console;
    }
    Ok(cfg)
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(a: ServeArgs) -> anyhow::Result<()> {
    let cfg = serve_config(a)?;
    if cfg.secret == NodeConfig::default().secret {
        tracing::warn!(
            "using the built-in default cluster secret: set --secret or HIQLITE_SECRET in production"
        );
    }
    let settings = cfg.clone();
    let client = Client::start(cfg).await?;
    let st = client.status().await?;
    println!("hiqlite node {} serving: API http://{}  raft {}", st.id, st.api_addr, st.raft_addr);
    if st.api_addr.parse().is_ok_and(|a| settings.console_on(a)) {
        println!("web console: http://{}/console/", st.api_addr);
    }
    println!("try: curl -s -XPOST 'http://{}/db/execute' -H 'Content-Type: application/json' -d '[\"CREATE TABLE t (x)\"]'", st.api_addr);
    wait_for_signal().await;
    println!("stopping...");
    client.shutdown().await?;
    Ok(())
}

/// Start one in-process node per peer (data in `dir/node-N`) and wait for a leader; returns
/// the clients and the leader's id. Used by `cluster` and `bench`.
pub(crate) async fn start_local(
    dir: &std::path::Path,
    peers: &[Peer],
    secret: Option<&str>,
) -> anyhow::Result<(Vec<Client>, u64)> {
    anyhow::ensure!(!peers.is_empty(), "at least one node is needed");
    let mut clients = Vec::new();
    for p in peers {
        let mut cfg = NodeConfig {
            node_id: p.id,
            data_dir: dir.join(format!("node-{}", p.id)),
            raft_addr: p.raft_addr.clone(),
            api_addr: p.api_addr.clone(),
            peers: peers.to_vec(),
            ..NodeConfig::default()
        };
        // Settings such as HIQLITE_CHANGE_RETENTION apply to a bench's nodes too.
        let env = NodeConfig::default().with_env()?;
        cfg.change_retention = env.change_retention;
        if let Some(s) = secret {
            cfg.secret = s.to_owned();
        }
        clients.push(Client::start(cfg).await?);
    }
    let leader = clients[0].wait_for_leader(Duration::from_secs(30)).await?;
    Ok((clients, leader))
}

async fn cluster(a: ClusterArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.nodes >= 1, "--nodes must be at least 1");
    let port = |n: u64, off: u16| -> anyhow::Result<u16> {
        u16::try_from(u64::from(a.base_port) + 10 * (n - 1) + u64::from(off)).context("port out of range")
    };
    let mut peers = Vec::new();
    for n in 1..=a.nodes {
        peers.push(Peer {
            id: n,
            raft_addr: format!("127.0.0.1:{}", port(n, 1)?),
            api_addr: format!("127.0.0.1:{}", port(n, 0)?),
        });
    }
    let (clients, leader) = start_local(&a.data_dir, &peers, None).await?;
    println!("hiqlite cluster of {} nodes is up; leader is node {leader}", a.nodes);
    for p in &peers {
        println!("  node {}: API http://{}  raft {}", p.id, p.api_addr, p.raft_addr);
    }
    println!("web console: http://{}/console/", peers[0].api_addr);
    println!(
        "try: curl -s -XPOST 'http://{}/db/execute' -H 'Content-Type: application/json' -d '[\"CREATE TABLE t (x)\", [\"INSERT INTO t VALUES (?)\", 42]]'",
        peers[0].api_addr
    );
    println!("     curl -s 'http://{}/db/query?q=SELECT+*+FROM+t'", peers[peers.len() - 1].api_addr);
    println!("Ctrl-C stops the cluster.");
    wait_for_signal().await;
    println!("stopping...");
    for c in clients {
        c.shutdown().await?;
    }
    Ok(())
}

async fn recover(a: RecoverArgs) -> anyhow::Result<()> {
    let voters = a.voters.iter().map(|p| Peer::parse(p)).collect::<hiqlite::Result<Vec<_>>>()?;
    let segment = hiqlite::NodeConfig::default().log_segment_bytes;
    let r = hiqlite::recover(&a.data_dir, &voters, segment).await.context("recovery failed")?;
    match r.last_log {
        Some((term, index)) => println!("last log entry before recovery: term {term}, index {index}"),
        None => println!("the log had no entry"),
    }
    println!(
        "wrote a membership of voters {:?} at index {} (term {}); start the node as before: it \
         forms a cluster of these voters with its data, and other nodes can --join it",
        r.voters, r.index, r.term
    );
    Ok(())
}

async fn backup(a: BackupArgs) -> anyhow::Result<()> {
    // Streamed to disk, with a progress bar on a terminal.
    let http = transfer::Http::new(None, false, None)?;
    let base = format!("http://{}", a.api_addr);
    let (n, index) = http.download(&base, &a.to).await.context("backup failed")?;
    println!(
        "backup of {n} bytes written to {} (log index {})",
        a.to.display(),
        index.as_deref().unwrap_or("none")
    );
    Ok(())
}

async fn restore(a: RestoreArgs) -> anyhow::Result<()> {
    // Streamed from disk, with a progress bar on a terminal; the node forwards to the leader.
    let http = transfer::Http::new(None, false, None)?;
    let base = format!("http://{}", a.api_addr);
    let from = a.from.to_string_lossy().into_owned();
    if let Some(out) = &a.out {
        return backups::point_in_time(&from, a.to_time.as_deref(), a.to_index, out).await;
    }
    let fetched = if backups::is_destination(&from) {
        Some(backups::fetch(&from, a.name.as_deref()).await?)
    } else {
        None
    };
    let file = fetched.as_ref().unwrap_or(&a.from);
    let r = http.load(&base, file).await.context("restore failed");
    if let Some(f) = &fetched {
        let _ = std::fs::remove_file(f);
    }
    let n = r?;
    println!("{n} bytes from {from} loaded into the cluster at {}", a.api_addr);
    Ok(())
}

/// Accept rqlited's command line (`-node-id 1 -http-addr A -raft-addr B -join C data/`) by
/// rewriting it into `hiqlite serve ...`, so tools that start rqlited can start hiqlite.
fn rqlited_args(args: Vec<String>) -> anyhow::Result<Vec<String>> {
    const SUBCOMMANDS: &[&str] = &[
        "serve",
        "cluster",
        "bench",
        "backup",
        "backups",
        "restore",
        "shell",
        "recover",
        "help",
        "--help",
        "-h",
        "--version",
        "-V",
    ];
    let Some(first) = args.get(1) else { return Ok(args) };
    if SUBCOMMANDS.contains(&first.as_str()) {
        return Ok(args);
    }
    let map = |flag: &str| -> Option<&'static str> {
        Some(match flag {
            "node-id" => "--node-id",
            "http-addr" => "--api-addr",
            "raft-addr" => "--raft-addr",
            "http-adv-addr" => "--api-advertise",
            "raft-adv-addr" => "--raft-advertise",
            "join" => "--join",
            "auth" => "--auth",
            "http-cert" | "node-cert" => "--tls-cert",
            "http-key" | "node-key" => "--tls-key",
            "node-ca-cert" | "http-ca-cert" => "--tls-ca",
            _ => return None,
        })
    };
    let mut out = vec![args[0].clone(), "serve".to_string()];
    let mut seen = std::collections::HashSet::new();
    // rqlite enforces foreign keys only with -fk.
    let mut fk = false;
    let mut it = args.into_iter().skip(1).peekable();
    while let Some(a) = it.next() {
        if let Some(flag) = a.strip_prefix('-').filter(|f| !f.starts_with('-')) {
            let (name, inline) = match flag.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (flag, None),
            };
            if name == "fk" {
                fk = inline.as_deref() != Some("false");
                continue;
            }
            if name == "raft-non-voter" {
                if inline.as_deref() != Some("false") && seen.insert("--learner") {
                    out.push("--learner".to_string());
                }
                continue;
            }
            if matches!(name, "node-no-verify" | "http-no-verify") {
                if inline.as_deref() != Some("false") && seen.insert("--tls-insecure") {
                    out.push("--tls-insecure".to_string());
                }
                continue;
            }
            let target = map(name).with_context(|| format!("unsupported rqlited flag -{name}"))?;
            let value = match inline {
                Some(v) => v,
                None => it.next().with_context(|| format!("-{name} needs a value"))?,
            };
            let value = if name == "join" {
                // rqlite accepts URLs or host:port lists; hiqlite joins through Raft addresses.
                value
                    .split(',')
                    .map(|v| {
                        v.trim_start_matches("http://").trim_start_matches("https://").trim_end_matches('/')
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            } else {
                value
            };
            // rqlited takes separate HTTP and node certificates; hiqlite serves one for both.
            if seen.insert(target) {
                out.push(target.to_string());
                out.push(value);
            }
        } else if a.starts_with("--") {
            out.push(a);
        } else {
            out.push("--data-dir".to_string());
            out.push(a);
        }
    }
    out.push("--foreign-keys".to_string());
    out.push(fk.to_string());
    Ok(out)
}

fn main() -> anyhow::Result<()> {
    hiqlite::install_crypto_provider();
    let cli = Cli::parse_from(rqlited_args(std::env::args().collect())?);
    // The shell reports errors itself; library logs would only clutter its screen.
    let default_filter = match cli.cmd {
        Some(Cmd::Shell(_)) => "off",
        Some(Cmd::Bench(_)) => "warn",
        _ => "info,openraft=warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter)),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let cmd = match cli.cmd {
        // The shell is synchronous (line editing) and calls into the runtime itself.
        Some(Cmd::Shell(a)) => {
            let code = shell::run(a, &rt);
            drop(rt);
            std::process::exit(code);
        }
        other => other,
    };
    rt.block_on(async move {
        match cmd {
            None => serve(ServeArgs::default()).await,
            Some(Cmd::Serve(a)) => serve(*a).await,
            Some(Cmd::Cluster(a)) => cluster(a).await,
            Some(Cmd::Bench(a)) => bench::run(a).await,
            Some(Cmd::Backup(a)) => backup(a).await,
            Some(Cmd::Restore(a)) => restore(a).await,
            Some(Cmd::Backups(a)) => backups::list(a).await,
            Some(Cmd::Shell(_)) => Ok(()),
            Some(Cmd::Recover(a)) => recover(a).await,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::rqlited_args;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn rqlited_command_lines_become_serve() {
        let got = rqlited_args(args(
            "hiqlite -node-id 2 -http-addr=0.0.0.0:4001 -raft-addr 0.0.0.0:4002 -http-adv-addr h:4001 \
             -join http://a:4002,b:4002 -http-cert c.pem -node-cert c.pem -http-key k.pem -node-no-verify data",
        ))
        .expect("mapped");
        assert_eq!(
            got,
            args(
                "hiqlite serve --node-id 2 --api-addr 0.0.0.0:4001 --raft-addr 0.0.0.0:4002 --api-advertise h:4001 \
                 --join a:4002,b:4002 --tls-cert c.pem --tls-key k.pem --tls-insecure --data-dir data \
                 --foreign-keys false"
            )
        );
        assert_eq!(
            rqlited_args(args("hiqlite -node-id 1 -fk data")).expect("mapped"),
            args("hiqlite serve --node-id 1 --data-dir data --foreign-keys true")
        );
        assert_eq!(
            rqlited_args(args("hiqlite serve --node-id 1")).expect("as is"),
            args("hiqlite serve --node-id 1")
        );
        assert!(rqlited_args(args("hiqlite -bogus 1")).is_err());
        assert!(rqlited_args(args("hiqlite -node-id")).is_err());
    }
}
