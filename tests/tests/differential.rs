//! Differential SQL tests: the scripts in `tests/differential/scripts` run against plain SQLite
//! (rusqlite, foreign keys on) and, each on a fresh 3-node cluster, through every face of
//! hiqlite — the embedded `Client` (on a follower), the remote `Client`, and the Python, Node
//! and C runners of `tests/differential/PROTOCOL.md` when their `HIQLITE_DIFF_*` variables say
//! where they are — and every result, change count, last insert id and error is compared.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use hiqlite::{Client, Consistency, ExecResult, Transaction, Value};
use hiqlite_tests::{init_logging, TestCluster};
use serde_json::{json, Value as J};

/// Deadline of conditions the tests wait for: generous, as they hold on a loaded machine.
const T: Duration = Duration::from_secs(60);

/// One step of the scripts.
#[derive(Debug, Clone)]
enum Step {
    Exec { sql: String, read: bool },
    Begin,
    Commit,
    Rollback,
}

/// What one step gave.
#[derive(Debug, Clone, PartialEq)]
enum Outcome {
    Ok { columns: Vec<String>, rows: Vec<Vec<Value>>, changes: u64, last_insert_id: i64 },
    Done,
    Err { code: i32, message: String },
}

/// What the reference learned about a statement while running it.
#[derive(Debug, Clone, Copy, Default)]
struct Wrote {
    changed: bool,
    inserted: bool,
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("differential/scripts")
}

/// The statements of every script, in file order, split where SQLite says a statement is
/// complete (so triggers with inner semicolons stay whole).
fn load_statements() -> Vec<(String, String)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(scripts_dir())
        .expect("scripts dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let text = std::fs::read_to_string(&f).expect("script");
        let mut buf = String::new();
        for line in text.lines() {
            if buf.is_empty() && (line.trim().is_empty() || line.trim_start().starts_with("--")) {
                continue;
            }
            buf.push_str(line);
            buf.push('\n');
            let c = std::ffi::CString::new(buf.clone()).expect("no NUL in scripts");
            // SAFETY: a valid NUL-terminated string; sqlite3_complete only reads it.
            if unsafe { rusqlite::ffi::sqlite3_complete(c.as_ptr()) } != 0 {
                let sql = buf.trim().trim_end_matches(';').trim().to_string();
                out.push((name.clone(), sql));
                buf.clear();
            }
        }
        assert!(buf.trim().is_empty(), "{name}: incomplete statement at the end: {buf}");
    }
    out
}

fn control(sql: &str) -> Option<Step> {
    match sql.to_ascii_uppercase().split_whitespace().collect::<Vec<_>>().as_slice() {
        ["BEGIN"] | ["BEGIN", "TRANSACTION"] | ["BEGIN", "DEFERRED"] | ["BEGIN", "IMMEDIATE"] => {
            Some(Step::Begin)
        }
        ["COMMIT"] | ["END"] | ["COMMIT", "TRANSACTION"] => Some(Step::Commit),
        ["ROLLBACK"] | ["ROLLBACK", "TRANSACTION"] => Some(Step::Rollback),
        _ => None,
    }
}

fn value_of(v: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef as R;
    match v {
        R::Null => Value::Null,
        R::Integer(i) => Value::Integer(i),
        R::Real(f) => Value::Real(f),
        R::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
        R::Blob(b) => Value::Blob(b.to_vec()),
    }
}

fn sqlite_err(e: rusqlite::Error) -> Outcome {
    match e {
        rusqlite::Error::SqliteFailure(f, msg) => {
            Outcome::Err { code: f.extended_code, message: msg.unwrap_or_else(|| f.to_string()) }
        }
        rusqlite::Error::SqlInputError { error, msg, .. } => {
            Outcome::Err { code: error.extended_code, message: msg }
        }
        other => Outcome::Err { code: 1, message: other.to_string() },
    }
}

/// Run the statements on plain SQLite: the steps (with read/write classified by SQLite), the
/// reference outcomes, and what each statement wrote.
fn reference(stmts: &[(String, String)]) -> (Vec<Step>, Vec<Outcome>, Vec<Wrote>) {
    let dir = tempfile::tempdir().expect("tmp");
    let conn = rusqlite::Connection::open(dir.path().join("ref.db")).expect("open");
    conn.execute_batch("PRAGMA journal_mode=WAL; PRAGMA foreign_keys=ON;").expect("pragmas");
    let (mut steps, mut outs, mut wrote) = (Vec::new(), Vec::new(), Vec::new());
    for (_, sql) in stmts {
        if let Some(step) = control(sql) {
            let r = conn.execute_batch(sql);
            outs.push(r.map_or_else(sqlite_err, |()| Outcome::Done));
            steps.push(step);
            wrote.push(Wrote::default());
            continue;
        }
        let before = conn.total_changes();
        let last_before = conn.last_insert_rowid();
        let (read, out) = match conn.prepare(sql) {
            Err(e) => (false, sqlite_err(e)),
            Ok(mut st) => {
                let read = st.readonly();
                let columns: Vec<String> = st.column_names().map(str::to_owned).collect();
                let n = columns.len();
                let mut rows = Vec::new();
                let r: rusqlite::Result<()> = (|| {
                    let mut q = st.raw_query();
                    while let Some(row) = q.next()? {
                        rows.push(
                            (0..n).map(|i| row.get_ref(i).map(value_of)).collect::<rusqlite::Result<_>>()?,
                        );
                    }
                    Ok(())
                })();
                drop(st);
                match r {
                    Err(e) => (read, sqlite_err(e)),
                    Ok(()) => (
                        read,
                        Outcome::Ok {
                            columns,
                            rows,
                            changes: conn.changes(),
                            last_insert_id: conn.last_insert_rowid(),
                        },
                    ),
                }
            }
        };
        let changed = conn.total_changes() != before;
        let upper = sql.trim_start().to_ascii_uppercase();
        let inserts = upper.starts_with("INSERT") || upper.starts_with("REPLACE");
        wrote
            .push(Wrote { changed, inserted: changed && inserts && conn.last_insert_rowid() != last_before });
        steps.push(Step::Exec { sql: sql.clone(), read });
        outs.push(out);
    }
    (steps, outs, wrote)
}

fn from_exec(x: ExecResult) -> Outcome {
    Outcome::Ok {
        columns: x.rows.columns,
        rows: x.rows.rows,
        changes: x.rows_affected,
        last_insert_id: x.last_insert_id,
    }
}

fn from_err(e: hiqlite::Error) -> Outcome {
    match e {
        hiqlite::Error::Sql { code, message } => Outcome::Err { code, message },
        other => Outcome::Err { code: 0, message: other.to_string() },
    }
}

/// Run the steps through a Rust `Client` (embedded or remote).
async fn run_client(db: &Client, steps: &[Step]) -> Vec<Outcome> {
    let mut tx: Option<Transaction> = None;
    let mut out = Vec::new();
    for step in steps {
        let o = match (step, &tx) {
            (Step::Begin, _) => match db.begin().await {
                Ok(t) => {
                    tx = Some(t);
                    Outcome::Done
                }
                Err(e) => from_err(e),
            },
            (Step::Commit, _) => match tx.take() {
                Some(t) => t.commit().await.map_or_else(from_err, |()| Outcome::Done),
                None => Outcome::Err { code: 1, message: "cannot commit - no transaction is active".into() },
            },
            (Step::Rollback, _) => match tx.take() {
                Some(t) => t.rollback().await.map_or_else(from_err, |()| Outcome::Done),
                None => {
                    Outcome::Err { code: 1, message: "cannot rollback - no transaction is active".into() }
                }
            },
            (Step::Exec { sql, .. }, Some(t)) => t.execute(sql, ()).await.map_or_else(from_err, from_exec),
            (Step::Exec { sql, read: true }, None) => {
                db.query_with(sql, (), Consistency::Linearizable).await.map_or_else(from_err, |rows| {
                    Outcome::Ok { columns: rows.columns, rows: rows.rows, changes: 0, last_insert_id: 0 }
                })
            }
            (Step::Exec { sql, read: false }, None) => {
                db.execute(sql, ()).await.map_or_else(from_err, from_exec)
            }
        };
        out.push(o);
    }
    out
}

fn steps_json(steps: &[Step], urls: &[String]) -> J {
    let steps: Vec<J> = steps
        .iter()
        .map(|s| match s {
            Step::Exec { sql, read } => json!({"op": "exec", "sql": sql, "read": read}),
            Step::Begin => json!({"op": "begin"}),
            Step::Commit => json!({"op": "commit"}),
            Step::Rollback => json!({"op": "rollback"}),
        })
        .collect();
    json!({ "urls": urls, "steps": steps })
}

fn value_from_json(v: &J) -> Value {
    match v {
        J::Null => Value::Null,
        J::Object(o) => {
            if let Some(i) = o.get("int").and_then(J::as_str) {
                Value::Integer(i.parse().expect("int as a decimal string"))
            } else if let Some(r) = o.get("real") {
                // JSON has no infinity or NaN: runners spell them as strings.
                Value::Real(match r.as_str() {
                    Some("inf") => f64::INFINITY,
                    Some("-inf") => f64::NEG_INFINITY,
                    Some("nan") => f64::NAN,
                    _ => r.as_f64().expect("real as a number"),
                })
            } else if let Some(t) = o.get("text").and_then(J::as_str) {
                Value::Text(t.to_string())
            } else if let Some(b) = o.get("blob").and_then(J::as_str) {
                Value::Blob(
                    (0..b.len())
                        .step_by(2)
                        .map(|i| u8::from_str_radix(&b[i..i + 2], 16).expect("hex"))
                        .collect(),
                )
            } else {
                panic!("unknown value {v}")
            }
        }
        other => panic!("unknown value {other}"),
    }
}

fn outcome_from_json(v: &J) -> Outcome {
    if let Some(e) = v.get("err") {
        return Outcome::Err {
            code: e["code"].as_i64().unwrap_or(0) as i32,
            message: e["message"].as_str().unwrap_or_default().to_string(),
        };
    }
    let ok = &v["ok"];
    if ok.as_object().is_some_and(|o| o.is_empty()) {
        return Outcome::Done;
    }
    Outcome::Ok {
        columns: ok["columns"].as_array().map_or_else(Vec::new, |a| {
            a.iter().map(|c| c.as_str().unwrap_or_default().to_string()).collect()
        }),
        rows: ok["rows"].as_array().map_or_else(Vec::new, |a| {
            a.iter().map(|r| r.as_array().expect("row").iter().map(value_from_json).collect()).collect()
        }),
        changes: ok["changes"].as_u64().unwrap_or(0),
        last_insert_id: ok["last_insert_id"].as_i64().unwrap_or(0),
    }
}

/// Run a runner program over the protocol.
fn run_runner(mut cmd: Command, input: &J) -> Vec<Outcome> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("runner starts");
    child.stdin.take().expect("stdin").write_all(input.to_string().as_bytes()).expect("write input");
    let out = child.wait_with_output().expect("runner finishes");
    assert!(out.status.success(), "runner failed: {:?}", out.status);
    let v: J = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("runner output is not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout))
    });
    v["results"].as_array().expect("results").iter().map(outcome_from_json).collect()
}

/// Every difference between a face's outcomes and SQLite's.
fn differences(
    face: &str,
    stmts: &[(String, String)],
    steps: &[Step],
    want: &[Outcome],
    wrote: &[Wrote],
    got: &[Outcome],
) -> Vec<String> {
    let mut diffs = Vec::new();
    if got.len() != want.len() {
        diffs.push(format!("{face}: {} results for {} steps", got.len(), want.len()));
    }
    for (i, (w, g)) in want.iter().zip(got).enumerate() {
        let (file, sql) = &stmts[i];
        let read = matches!(steps[i], Step::Exec { read: true, .. });
        let same = match (w, g) {
            (Outcome::Done, Outcome::Done) => true,
            (Outcome::Err { code: a, message: m }, Outcome::Err { code: b, message: n }) => {
                a == b && n.contains(m.as_str())
            }
            (
                Outcome::Ok { columns: c1, rows: r1, changes: ch1, last_insert_id: l1 },
                Outcome::Ok { columns: c2, rows: r2, changes: ch2, last_insert_id: l2 },
            ) => {
                // A statement that returns no rows has no columns a face must report.
                (c1 == c2 || r1.is_empty() && c2.is_empty())
                    && r1 == r2
                    && (read || !wrote[i].changed || ch1 == ch2)
                    && (!wrote[i].inserted || l1 == l2)
            }
            _ => false,
        };
        if !same {
            diffs.push(format!("{face}: {file}: `{sql}`\n    sqlite: {w:?}\n    {face}: {g:?}"));
        }
    }
    diffs
}

async fn fresh_cluster() -> TestCluster {
    let mut c = TestCluster::configure(3, |cfg| cfg.busy_timeout_ms = 30_000);
    c.start_in_order(&[0, 1, 2]).await;
    c.leader(T).await;
    c
}

fn urls(c: &TestCluster) -> Vec<String> {
    c.configs.iter().map(|cfg| format!("http://{}", cfg.api_addr)).collect()
}

/// The C runner, compiled against the library this test run built.
fn c_runner() -> Command {
    let exe = std::env::current_exe().expect("test exe");
    let target = exe.parent().and_then(Path::parent).expect("target dir").to_path_buf();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("workspace").to_path_buf();
    let out = tempfile::tempdir().expect("tmp").keep().join("differential_runner");
    let status = Command::new("cc")
        .arg(root.join("ffi/tests/c/differential_runner.c"))
        .args(["-Wall", "-Wextra", "-Werror", "-I"])
        .arg(root.join("include"))
        .arg("-L")
        .arg(&target)
        .args(["-lhiqlite", "-o"])
        .arg(&out)
        .status()
        .expect("cc runs");
    assert!(status.success(), "the C runner did not compile");
    let mut cmd = Command::new(out);
    cmd.env("LD_LIBRARY_PATH", &target);
    cmd
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_face_answers_what_sqlite_answers() {
    init_logging();
    let stmts = load_statements();
    let (steps, want, wrote) = reference(&stmts);
    let mut diffs = Vec::new();

    let mut faces: Vec<(&str, Option<Command>)> = vec![("embedded", None), ("remote", None)];
    if let Ok(py) = std::env::var("HIQLITE_DIFF_PYTHON") {
        let mut cmd = Command::new(py);
        cmd.arg(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/python/tests/differential_runner.py"),
        );
        faces.push(("python", Some(cmd)));
    }
    if std::env::var("HIQLITE_DIFF_NODE").is_ok() {
        let mut cmd = Command::new("node");
        cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../bindings/node/test/differential_runner.mjs"));
        faces.push(("node", Some(cmd)));
    }
    if std::env::var("HIQLITE_DIFF_C").is_ok() {
        faces.push(("c", Some(c_runner())));
    }
    for (face, runner) in faces {
        let mut c = fresh_cluster().await;
        let got = match (face, runner) {
            ("embedded", _) => {
                let li = c.leader(T).await;
                run_client(c.node((li + 1) % 3), &steps).await
            }
            ("remote", _) => {
                let db = Client::remote(urls(&c))
                    .timeout(Duration::from_secs(120))
                    .consistency(Consistency::Linearizable)
                    .build()
                    .expect("remote client");
                run_client(&db, &steps).await
            }
            (_, Some(cmd)) => {
                let input = steps_json(&steps, &urls(&c));
                tokio::task::spawn_blocking(move || run_runner(cmd, &input)).await.expect("runner task")
            }
            (_, None) => unreachable!("foreign faces have a runner"),
        };
        let found = differences(face, &stmts, &steps, &want, &wrote, &got);
        println!("{face}: {} steps, {} differences from SQLite", steps.len(), found.len());
        diffs.extend(found);
        c.stop_all().await;
    }
    assert!(diffs.is_empty(), "{} differences from SQLite:\n{}", diffs.len(), diffs.join("\n"));
}
