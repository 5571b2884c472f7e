//! `kill -9` at every step of a snapshot and of a snapshot install, as crash images: at each
//! step the database directory is copied as it is (what a killed process leaves is what its
//! files hold), then each copy is healed the way a restarting node heals. Every healed copy must
//! hold exactly the state at the position its base record names (nothing half-applied, nothing
//! lost before it), and replaying the log after that position must give the full state.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::checkpoint::{copy_frames, PHASE_HOOK};
use super::writer::{LogPos, Op, Writer};
use crate::command::{Command, ExecMode};
use crate::value::Statement;

fn pos(i: u64) -> LogPos {
    LogPos { index: i, term: 1, node_id: 1 }
}

/// Entry 1 makes the tables; entry `i > 1` adds row `i` (big enough to spread over pages) and
/// records `i` in a counter row, which rewrites an old page every time.
fn entry(i: u64) -> (LogPos, Op) {
    let stmts: Vec<Statement> = if i == 1 {
        vec![
            "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)".into(),
            "CREATE TABLE c (n INTEGER)".into(),
            "INSERT INTO c VALUES (1)".into(),
        ]
    } else {
        vec![
            Statement::new(
                "INSERT INTO t VALUES (?1, printf('%.*c', 1500, 'x') || ?1)",
                vec![crate::Value::Integer(i as i64)],
            ),
            Statement::new("UPDATE c SET n = ?1", vec![crate::Value::Integer(i as i64)]),
        ]
    };
    let cmd = Command::Execute { stmts, mode: ExecMode::Transaction, ts_ms: 0, seed: i };
    (pos(i), Op::Command(Arc::new(cmd)))
}

async fn apply(w: &Writer, from: u64, to: u64) {
    for i in from..=to {
        w.apply(vec![entry(i)]).await.expect("apply");
    }
}

/// The database at `db` holds exactly entries `1..=upto`.
fn check(db: &Path, upto: u64, what: &str) {
    let c =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).expect("open");
    let ok: String = c.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("check");
    assert_eq!(ok, "ok", "{what}: integrity");
    if upto == 0 {
        let tables: i64 =
            c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).expect("schema");
        assert_eq!(tables, 0, "{what}: nothing applied yet");
        return;
    }
    let (n, max): (i64, Option<i64>) =
        c.query_row("SELECT count(*), max(id) FROM t", [], |r| Ok((r.get(0)?, r.get(1)?))).expect("rows");
    let counter: i64 = c.query_row("SELECT n FROM c", [], |r| r.get(0)).expect("counter");
    assert_eq!((n, max.unwrap_or(1), counter), (upto as i64 - 1, upto as i64, upto as i64), "{what}");
}

fn cache() -> Arc<crate::cache::QueryCache> {
    Arc::new(crate::cache::QueryCache::new(crate::CacheConfig { enabled: false, ..Default::default() }))
}

/// Copy the directory of `db` (as a killed process leaves it) to `to`.
fn image(db: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("image dir");
    for e in std::fs::read_dir(db.parent().expect("dir")).expect("read dir").flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.ends_with("-shm") && e.path().is_file() {
            std::fs::copy(e.path(), to.join(&name)).expect("copy");
        }
    }
}

/// Take an image of `db`'s directory at every step the snapshot code names.
fn record_images(db: &Path, root: &Path) -> Arc<Mutex<Vec<(String, PathBuf)>>> {
    let images = Arc::new(Mutex::new(Vec::new()));
    let (db2, root2, seen) = (db.to_path_buf(), root.to_path_buf(), images.clone());
    let hook = move |phase: &'static str| {
        let mut seen = seen.lock().expect("images");
        let to = root2.join(format!("{}-{phase}", seen.len()));
        image(&db2, &to);
        seen.push((phase.to_string(), to));
    };
    PHASE_HOOK.lock().expect("hook").push((db.to_path_buf(), Box::new(hook)));
    images
}

fn forget_hook(db: &Path) {
    PHASE_HOOK.lock().expect("hook").retain(|(p, _)| p != db);
}

/// Heal the image like a restarting node; it must hold exactly its recorded position, and the
/// log replayed after it must give entries `1..=last`.
async fn heal_and_replay(dir: &Path, last: u64, what: &str) -> u64 {
    let db = dir.join("hiqlite.db");
    let w = Writer::start(&db, cache()).expect("heal");
    let at = w.applied().0.map_or(0, |p| p.index);
    check(&db, at, &format!("{what}: healed at {at}"));
    apply(&w, at + 1, last).await;
    check(&db, last, &format!("{what}: after replay from {at}"));
    w.shutdown().await.expect("stop");
    at
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_every_step_of_a_snapshot_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    let dir = tmp.path().join("db");
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("hiqlite.db");
    let images = record_images(&db, &tmp.path().join("images"));

    let w = Writer::start(&db, cache()).expect("start");
    apply(&w, 1, 200).await;
    // Step 1 copies up to the pin while entries keep coming; step 2 settles the rest.
    let pin = w.pin_frames().await.expect("pin").expect("frames to copy");
    apply(&w, 201, 260).await;
    let copied = copy_frames(&db, pin).expect("copy");
    w.note_backfill(copied.salt, copied.frames).await.expect("note");
    // Entries after the pin rewrote pages the pinned frames hold too: SQLite's checkpoint
    // skipped those, so the main file alone is no snapshot yet.
    assert!(copied.point.is_none(), "a copy that skipped pages offered a snapshot");
    apply(&w, 261, 300).await;
    let point = w.settle().await.expect("settle").expect("nothing holds frames back");
    assert_eq!(point.applied.0.map(|p| p.index), Some(300));
    apply(&w, 301, 350).await;
    // A second build on top of the first: the WAL was restarted in between.
    let pin = w.pin_frames().await.expect("pin").expect("frames to copy");
    apply(&w, 351, 380).await;
    let copied = copy_frames(&db, pin).expect("copy");
    w.note_backfill(copied.salt, copied.frames).await.expect("note");
    w.settle().await.expect("settle").expect("settled");
    apply(&w, 381, 400).await;
    w.shutdown().await.expect("stop");
    forget_hook(&db);
    check(&db, 400, "after a clean stop");

    let images = images.lock().expect("images").clone();
    let phases: Vec<&str> = images.iter().map(|(p, _)| p.as_str()).collect();
    for want in ["pinned", "recorded", "copied", "settle-recorded", "settle-copied", "settled"] {
        assert!(phases.contains(&want), "no image at {want}: {phases:?}");
    }
    let mut positions = Vec::new();
    for (phase, path) in &images {
        positions.push((phase.clone(), heal_and_replay(path, 420, phase).await));
    }
    // Killed in the middle of step 1's copy: some pages of the main file are new, some old.
    let recorded = images.iter().find(|(p, _)| p == "recorded").expect("recorded").1.clone();
    let copied = images.iter().find(|(p, _)| p == "copied").expect("copied").1.clone();
    let torn = tmp.path().join("torn");
    image(&recorded.join("hiqlite.db"), &torn);
    let new = std::fs::read(copied.join("hiqlite.db")).expect("copied main");
    let mut old = std::fs::read(torn.join("hiqlite.db")).expect("recorded main");
    let page = 4096;
    old.resize(old.len().max(new.len()), 0);
    for (i, chunk) in new.chunks(page).enumerate() {
        if i % 2 == 1 {
            old[i * page..i * page + chunk.len()].copy_from_slice(chunk);
        }
    }
    std::fs::write(torn.join("hiqlite.db"), &old).expect("torn main");
    heal_and_replay(&torn, 420, "torn copy").await;
    // Where each heal starts: the base record in force at that step. Before step 1 records the
    // pin, the previous snapshot (here the empty database settled at open); from then on, the
    // pinned position; once settled, the settled one.
    let want = [
        ("settled", 0),
        ("pinned", 0),
        ("recorded", 200),
        ("copied", 200),
        ("settle-recorded", 300),
        ("settle-copied", 300),
        ("settled", 300),
        ("pinned", 300),
        ("recorded", 350),
        ("copied", 350),
        ("settle-recorded", 380),
        ("settle-copied", 380),
        ("settled", 380),
        ("settle-recorded", 400),
        ("settle-copied", 400),
        ("settled", 400),
    ];
    let got: Vec<(&str, u64)> = positions.iter().map(|(p, a)| (p.as_str(), *a)).collect();
    assert_eq!(got, want);
}

/// The main file alone (no WAL beside it) holds exactly entries `1..=upto`.
fn check_main_alone(db: &Path, upto: u64, what: &str) {
    let tmp = tempfile::tempdir().expect("tmp");
    let copy = tmp.path().join("alone.db");
    std::fs::copy(db, &copy).expect("copy the main file");
    check(&copy, upto, what);
}

/// A snapshot point names the main file alone: that file is what a leader sends. Step 1 offers
/// one only when its copy is exact; otherwise step 2 settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_point_is_the_main_file_alone() {
    let tmp = tempfile::tempdir().expect("tmp");
    let db = tmp.path().join("hiqlite.db");
    let w = Writer::start(&db, cache()).expect("start");
    apply(&w, 1, 200).await;
    // Nothing written after the pin: step 1 alone is the snapshot.
    let pin = w.pin_frames().await.expect("pin").expect("frames to copy");
    let copied = copy_frames(&db, pin).expect("copy");
    w.note_backfill(copied.salt, copied.frames).await.expect("note");
    let point = copied.point.expect("an exact copy is a snapshot");
    assert_eq!(point.applied.0.map(|p| p.index), Some(200));
    assert_eq!(std::fs::metadata(&db).expect("main").len(), point.db_len);
    check_main_alone(&db, 200, "exact copy");
    // Entries keep coming while step 1 copies, rewriting pages it copies (the counter row).
    for round in 0..3u64 {
        let from = 201 + round * 100;
        apply(&w, from, from + 49).await;
        let pin = w.pin_frames().await.expect("pin").expect("frames to copy");
        apply(&w, from + 50, from + 99).await;
        let copied = copy_frames(&db, pin).expect("copy");
        w.note_backfill(copied.salt, copied.frames).await.expect("note");
        if let Some(point) = copied.point {
            check_main_alone(&db, point.applied.0.map_or(0, |p| p.index), "copy under writes");
        }
        let point = w.settle().await.expect("settle").expect("nothing holds frames back");
        assert_eq!(point.applied.0.map(|p| p.index), Some(from + 99));
        assert!(std::fs::metadata(&db).expect("main").len() >= point.db_len);
        check_main_alone(&db, from + 99, "settled");
    }
    w.shutdown().await.expect("stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_at_every_step_of_a_snapshot_install_loses_nothing() {
    let tmp = tempfile::tempdir().expect("tmp");
    // The leader's database, snapshotted into the wire format (pages, then state).
    let src_dir = tmp.path().join("leader");
    std::fs::create_dir_all(&src_dir).expect("dir");
    let src = Writer::start(&src_dir.join("hiqlite.db"), cache()).expect("leader");
    apply(&src, 1, 500).await;
    let pinned = src.pin().await.expect("pin");

    let dir = tmp.path().join("db");
    std::fs::create_dir_all(&dir).expect("dir");
    let db = dir.join("hiqlite.db");
    let incoming = dir.join("hiqlite.db.incoming-test");
    super::writer::copy_pinned(&pinned, &incoming).expect("snapshot file");
    drop(pinned);
    src.shutdown().await.expect("stop leader");

    let images = record_images(&db, &tmp.path().join("images"));
    let w = Writer::start(&db, cache()).expect("follower");
    apply(&w, 1, 120).await;
    let state = super::meta::take_state(&incoming).expect("trailer");
    assert!(state.is_some(), "the snapshot carries hiqlite's state");
    let applied = (Some(pos(500)), None);
    w.install(incoming, applied, state, "test".into()).await.expect("install");
    check(&db, 500, "installed");
    apply(&w, 501, 520).await;
    w.shutdown().await.expect("stop");
    forget_hook(&db);

    let images = images.lock().expect("images").clone();
    for want in ["install-recorded", "install-renamed"] {
        let (_, path) =
            images.iter().find(|(p, _)| p == want).unwrap_or_else(|| panic!("no image at {want}"));
        let at = heal_and_replay(path, 540, want).await;
        assert_eq!(at, 500, "{want}: a recorded install is finished by the heal");
    }
}
