//! `hiqlite-torture`: run the fault-injection workloads for a while against real `hiqlite`
//! processes and print a summary; the history is saved when an anomaly is found.
//!
//!     cargo build --release -p hiqlite-cli -p hiqlite-tests
//!     target/release/hiqlite-torture --minutes 30 --faults all --seed 42

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use hiqlite_tests::torture::{run, Fault, Options, Workload};

#[derive(Parser)]
#[command(about = "Fault-injection runs against hiqlite processes, checked for linearizability")]
struct Args {
    /// Minutes to run (fractions allowed).
    #[arg(long, default_value_t = 1.0)]
    minutes: f64,
    /// Number of nodes (3 or 5).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Faults, comma-separated: partition, leader, oneway, delay, pause, kill, all, none.
    #[arg(long, value_delimiter = ',', default_value = "all")]
    faults: Vec<String>,
    /// Workloads, comma-separated: register, bank, set, lock.
    #[arg(long, value_delimiter = ',', default_value = "register,bank,set")]
    workloads: Vec<String>,
    /// Seed of the fault schedule and the clients (default: from the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// The `hiqlite` binary (default: next to this one).
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Working directory (default: a temporary one, removed unless an anomaly is found).
    #[arg(long)]
    dir: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let mut faults = Vec::new();
    for f in &a.faults {
        match f.as_str() {
            "all" => faults.extend(Fault::ALL),
            "none" => {}
            other => {
                faults.push(Fault::parse(other).ok_or_else(|| anyhow::anyhow!("unknown fault {other}"))?)
            }
        }
    }
    let mut workloads = Vec::new();
    for w in &a.workloads {
        workloads.push(match w.as_str() {
            "register" => Workload::Register,
            "bank" => Workload::Bank,
            "set" => Workload::Set,
            "lock" => Workload::Lock,
            other => anyhow::bail!("unknown workload {other}"),
        });
    }
    anyhow::ensure!(a.nodes == 3 || a.nodes == 5, "--nodes must be 3 or 5");
    anyhow::ensure!(a.minutes > 0.0 && a.minutes.is_finite(), "--minutes must be positive");
    let bin = match a.bin {
        Some(b) => b,
        None => std::env::current_exe()?.with_file_name("hiqlite"),
    };
    anyhow::ensure!(
        bin.exists(),
        "{} not found: build it (cargo build --release -p hiqlite-cli) or pass --bin",
        bin.display()
    );
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64)
    });
    let tmp = tempfile::tempdir()?;
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_path_buf());
    println!(
        "hiqlite-torture: {} nodes, {:.1} min, faults {:?}, workloads {:?}, seed {seed}",
        a.nodes, a.minutes, faults, workloads
    );
    let o = Options {
        bin,
        dir: dir.clone(),
        nodes: a.nodes,
        duration: Duration::from_secs_f64(a.minutes * 60.0),
        faults,
        workloads,
        seed,
        history_dir: Some(std::env::current_dir()?),
    };
    let s = run(&o).await?;
    print!("{s}");
    if !s.anomalies.is_empty() {
        // Keep the data and logs for the post-mortem.
        let kept = tmp.keep();
        println!(
            "  data and node logs kept in {}",
            if a.dir.is_some() { dir.display().to_string() } else { kept.display().to_string() }
        );
        std::process::exit(1);
    }
    Ok(())
}
