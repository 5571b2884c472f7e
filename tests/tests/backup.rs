//! Point-in-time restore from a backup destination (a directory here; the S3 path is the same
//! code, tested against moto's server in `tests/backup`): 10,000 rows written across many
//! snapshots, log purges and segment rolls while the node backs up every second and archives
//! purged segments; a restore to a moment between two writes holds exactly the rows written up
//! to it, a restore to a log index exactly the rows up to that entry, and a new cluster starts
//! from the result.

use std::time::{Duration, Instant};

use hiqlite::backup::{restore_to, BackupConfig, Target};
use hiqlite::{params, Client, Value};
use hiqlite_tests::{init_logging, Embedded, TestCluster};

/// Deadline of conditions the tests wait for: generous, as they hold on a loaded machine.
const T: Duration = Duration::from_secs(120);

const WRITES: i64 = 1000;
const ROWS_PER_WRITE: i64 = 10;

/// Restore to `target` into `out`, retrying until the archive reaches the target (segments go
/// up as the log is purged behind snapshots, a few seconds behind the writes).
async fn restore_when_archived(
    cfg: &BackupConfig,
    target: Target,
    out: &std::path::Path,
) -> hiqlite::backup::Restored {
    let deadline = Instant::now() + T;
    loop {
        let _ = std::fs::remove_file(out);
        let r = restore_to(cfg, target, out).await.expect("point-in-time restore");
        if r.reached_target {
            return r;
        }
        assert!(Instant::now() < deadline, "the archive never reached {target:?}: {r:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn ids(c: &Client) -> Vec<i64> {
    let r = c.query("SELECT id FROM t ORDER BY id", ()).await.expect("rows");
    r.rows.iter().map(|row| if let Value::Integer(i) = row[0] { i } else { panic!("id {row:?}") }).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn point_in_time_restore_gives_exactly_the_rows_written_before() {
    init_logging();
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("backups");
    // Every second by a cron expression (with seconds); `interval_secs` then only paces how
    // often archived segments go up.
    let backup = BackupConfig {
        schedule: Some("* * * * * *".into()),
        interval_secs: 1,
        keep: 0,
        ..BackupConfig::to(dest.to_string_lossy())
    };
    let b2 = backup.clone();
    let mut c = TestCluster::configure(1, move |cfg| {
        cfg.snapshot_every = 100;
        cfg.log_keep_after_snapshot = 0;
        cfg.log_segment_bytes = 16 * 1024;
        cfg.backup = Some(b2.clone());
    });
    c.start(0).await;
    c.leader(T).await;
    let db = c.node(0).clone();
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, ms INTEGER NOT NULL)", ()).await.expect("create");
    // Each row records the leader's stamp of its write ('now' is the entry's stamp).
    let insert = "WITH RECURSIVE s(x) AS (SELECT ?1 UNION ALL SELECT x + 1 FROM s WHERE x < ?2) \
                  INSERT INTO t (id, ms) \
                  SELECT x, CAST(round((julianday('now') - 2440587.5) * 86400000.0) AS INTEGER) FROM s";
    let mut index_after = Vec::new();
    for w in 0..WRITES {
        let first = w * ROWS_PER_WRITE + 1;
        db.execute(insert, params![first, first + ROWS_PER_WRITE - 1]).await.expect("insert");
        index_after.push(db.st().applied_index.expect("applied"));
        if w == WRITES / 10 {
            // Let a backup land early: the restore needs one from before its target.
            let deadline = Instant::now() + T;
            while db.st().backup.and_then(|b| b.last_index).is_none() {
                assert!(Instant::now() < deadline, "no backup stored: {:?}", db.st().backup);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let st = db.st();
    assert!(st.snapshots_built >= 5, "writes spanned several snapshots: {st:?}");

    // A moment between two writes in the second half.
    let stamps = db.query("SELECT DISTINCT ms FROM t ORDER BY ms", ()).await.expect("stamps").rows;
    let stamp = |i: usize| if let Value::Integer(v) = stamps[i][0] { v } else { panic!("stamp") };
    let mid = stamps.len() * 6 / 10;
    let at = stamp(mid) + (stamp(mid + 1) - stamp(mid)) / 2;
    let expected = db.query("SELECT count(*) FROM t WHERE ms <= ?1", params![at]).await.expect("count").rows;
    let Value::Integer(expected) = expected[0][0] else { panic!("count") };
    assert!(expected > 0 && expected < WRITES * ROWS_PER_WRITE);

    let out = dir.path().join("at-time.db");
    let r = restore_when_archived(&backup, Target::Time(at), &out).await;
    assert!(r.last_ts_ms.is_some_and(|t| t <= at), "{r:?}");
    // The backup it started from is older: archived log entries carried it to the moment.
    let base_index: u64 =
        r.backup.split(['-', '.']).nth(2).and_then(|i| i.parse().ok()).expect("backup name");
    assert!(r.index > base_index, "nothing replayed after the backup: {r:?}");

    // A new cluster from the result holds exactly the rows written up to that moment.
    let mut fresh = TestCluster::configure(1, |_| {});
    fresh.configs[0].restore_from = Some(out.clone());
    fresh.start(0).await;
    fresh.leader(T).await;
    let got = ids(fresh.node(0)).await;
    assert_eq!(got, (1..=expected).collect::<Vec<_>>(), "restored to {at} ms");
    let late = fresh.node(0).query("SELECT count(*) FROM t WHERE ms > ?1", params![at]).await.expect("count");
    assert_eq!(late.rows[0][0], Value::Integer(0));
    fresh.stop_all().await;

    // Up to a log index: exactly the writes up to that entry.
    let k = (WRITES * 3 / 10) as usize;
    let out = dir.path().join("at-index.db");
    let r = restore_when_archived(&backup, Target::Index(index_after[k]), &out).await;
    assert_eq!(r.index, index_after[k]);
    let mut fresh = TestCluster::configure(1, |_| {});
    fresh.configs[0].restore_from = Some(out);
    fresh.start(0).await;
    fresh.leader(T).await;
    assert_eq!(ids(fresh.node(0)).await, (1..=(k as i64 + 1) * ROWS_PER_WRITE).collect::<Vec<_>>());
    fresh.stop_all().await;

    // Before the first backup there is nothing to start from.
    let none = restore_to(&backup, Target::Time(0), &dir.path().join("never.db")).await;
    assert!(matches!(none, Err(hiqlite::Error::InvalidRequest(m)) if m.contains("no backup")));
    c.stop_all().await;
}

/// `Client::backup` then `Client::restore` (embedded and remote) bring the tables back;
/// migrations load from a folder of numbered SQL files.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_a_backup_into_a_running_cluster_and_migrate_from_a_folder() {
    init_logging();
    let dir = tempfile::tempdir().expect("tmp");
    let sql = dir.path().join("migrations");
    std::fs::create_dir_all(&sql).expect("dir");
    std::fs::write(sql.join("1_init.sql"), "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);")
        .expect("write");
    std::fs::write(sql.join("002_seed.sql"), "INSERT INTO t (v) VALUES ('a'), ('b');").expect("write");
    std::fs::write(sql.join("README.md"), "not a migration").expect("write");
    let migrations = hiqlite::Migration::from_dir(&sql).expect("folder");
    assert_eq!(
        migrations.iter().map(|m| (m.id, m.name.as_str())).collect::<Vec<_>>(),
        [(1, "init"), (2, "seed")]
    );
    std::fs::write(sql.join("2_again.sql"), "SELECT 1").expect("write");
    assert!(hiqlite::Migration::from_dir(&sql).is_err_and(|e| e.to_string().contains("both have id 2")));

    let mut c = TestCluster::configure(1, |_| {});
    c.start(0).await;
    c.leader(T).await;
    let db = c.node(0).clone();
    assert_eq!(db.migrate(&migrations).await.expect("migrate"), 2);
    assert_eq!(db.migrate(&migrations).await.expect("again"), 0);
    let file = dir.path().join("b.db");
    db.backup(&file).await.expect("backup");
    db.execute("DELETE FROM t", ()).await.expect("delete");
    db.execute("CREATE TABLE extra (x)", ()).await.expect("create");
    db.restore(&file).await.expect("restore");
    assert_eq!(ids(&db).await, vec![1, 2]);
    let tables = db.query("SELECT name FROM sqlite_master WHERE name = 'extra'", ()).await.expect("schema");
    assert!(tables.rows.is_empty(), "the backup replaced every table");

    let remote = Client::remote([format!("http://{}", c.configs[0].api_addr)]).build().expect("remote");
    db.execute("DELETE FROM t WHERE id = 1", ()).await.expect("delete");
    remote.restore(&file).await.expect("remote restore");
    assert_eq!(ids(&db).await, vec![1, 2]);
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"not a database").expect("write");
    assert!(db.restore(&junk).await.is_err() && remote.restore(&junk).await.is_err());
    assert!(remote.restore(dir.path().join("missing.db")).await.is_err());
    assert_eq!(ids(&db).await, vec![1, 2]);
    c.stop_all().await;
}
