//! Fault injection in CI, bounded: each fault kind, with all three workloads at once (register,
//! bank, set), against three `hiqlite serve` processes behind controllable proxies. Every run
//! must end with zero anomalies. Longer runs: `hiqlite-torture` (see the README).

use std::time::Duration;

use hiqlite_tests::torture::{run, Fault, Options, Workload};

async fn torture(fault: Fault) {
    let secs: u64 = std::env::var("HIQLITE_TORTURE_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
    let dir = tempfile::tempdir().expect("tmp");
    let o = Options {
        bin: env!("CARGO_BIN_EXE_hiqlite").into(),
        dir: dir.path().to_path_buf(),
        nodes: 3,
        duration: Duration::from_secs(secs),
        faults: vec![fault],
        workloads: vec![Workload::Register, Workload::Bank, Workload::Set],
        seed,
        history_dir: Some(std::env::temp_dir()),
    };
    let s = run(&o).await.expect("torture run");
    println!("{fault:?} (seed {seed}):\n{s}");
    if !s.anomalies.is_empty() {
        // Keep data and node logs for the post-mortem.
        let kept = dir.keep();
        panic!("anomalies under {fault:?} (seed {seed}), data and logs in {}:\n{s}", kept.display());
    }
    assert!(s.ops[0] > 0, "no operation succeeded:\n{s}");
    assert!(s.faults.values().sum::<u64>() > 0, "no fault was injected:\n{s}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_partition_one_node() {
    torture(Fault::Partition).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_leader_isolated_from_majority() {
    torture(Fault::Leader).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_one_way_cut_around_leader() {
    torture(Fault::OneWay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_delayed_links() {
    torture(Fault::Delay).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_paused_nodes() {
    torture(Fault::Pause).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture_killed_and_restarted_nodes() {
    torture(Fault::Kill).await;
}
