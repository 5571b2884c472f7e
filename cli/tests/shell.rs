//! `hiqlite shell` as a user runs it: a real `hiqlite serve` process on 127.0.0.1, the shell
//! driven through a pseudo-terminal (line editing, completion, history), and non-interactive
//! runs with `-c` and piped standard input (exit codes).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use rexpect::session::{spawn_with_options, Options, PtySession};

mod common;

use common::ProcCluster;

/// Generous: the tests wait for answers, never for time to pass.
const PATIENCE: Duration = Duration::from_secs(60);

/// A one-node cluster, killed (by PID) when dropped; returns it and its API URL.
fn node() -> (ProcCluster, String) {
    let mut c = ProcCluster::new(1, &[]);
    c.start_all();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(c.leader(PATIENCE));
    let url = format!("http://127.0.0.1:{}", c.nodes[0].api);
    (c, url)
}

/// The shell's command with a private home (history file) and a terminal type.
fn shell(home: &Path, url: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hiqlite"));
    cmd.args(["shell", url])
        .env("HOME", home)
        .env_remove("HIQLITE_HISTORY")
        .env("TERM", "xterm")
        .env("NO_COLOR", "1");
    cmd
}

fn pty(cmd: Command) -> PtySession {
    let opts = Options::new().timeout_ms(Some(PATIENCE.as_millis() as u64));
    spawn_with_options(cmd, opts).expect("spawn the shell on a pty")
}

/// What the line editor writes once per entry, when it is reading the terminal (it turns
/// bracketed paste on). Keys typed before it may be dropped with the previous entry's
/// read-ahead, and the prompt is no marker: the editor redraws it on every key.
const READY: &str = "\x1b[?2004h";

/// Wait until the shell reads a new entry, then type `text` and press Enter.
fn enter(p: &mut PtySession, text: &str) {
    expect(p, READY);
    more(p, text);
}

/// Type `text` and press Enter within the current entry.
fn more(p: &mut PtySession, text: &str) {
    p.send(text).expect("type");
    p.send("\r").expect("enter");
    p.flush().expect("flush");
}

fn expect(p: &mut PtySession, needle: &str) -> String {
    match p.exp_string(needle) {
        Ok(before) => before,
        Err(e) => panic!("waiting for {needle:?}: {e}"),
    }
}

#[test]
fn interactive_session_through_a_terminal() {
    let (_cluster, url) = node();
    let home = tempfile::tempdir().expect("home");
    let mut p = pty(shell(home.path(), &url));
    expect(&mut p, "connected to");

    // Writes report their counts, so their output differs from their echo.
    enter(&mut p, ".changes on");
    enter(&mut p, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL);");
    expect(&mut p, "changes: 0");
    // A statement over two lines runs when its `;` arrives.
    enter(&mut p, "INSERT INTO users (name, score)");
    more(&mut p, "VALUES ('alice', 2.5), ('bob', NULL);");
    expect(&mut p, "changes: 2");

    // Completion of a dot-command.
    expect(&mut p, READY);
    p.send(".tab\t").expect("tab");
    more(&mut p, "");
    expect(&mut p, "users");
    enter(&mut p, ".schema users");
    expect(&mut p, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, score REAL);");

    // An error keeps the session; the next statement runs.
    enter(&mut p, "SELEC name FROM users;");
    expect(&mut p, "syntax error");
    enter(&mut p, "SELECT upper(name) AS shout, score FROM users ORDER BY id;");
    expect(&mut p, "ALICE");
    expect(&mut p, "2.5");
    expect(&mut p, "BOB");
    expect(&mut p, "NULL");

    enter(&mut p, ".mode json");
    enter(&mut p, "SELECT id, upper(name) AS n FROM users ORDER BY id;");
    expect(&mut p, r#"[{"id":1,"n":"ALICE"},"#);
    expect(&mut p, r#"{"id":2,"n":"BOB"}]"#);

    // History: Up recalls the last entry, Enter runs it again.
    enter(&mut p, ".mode list");
    enter(&mut p, "SELECT 6 * 7 AS answer;");
    expect(&mut p, "42");
    expect(&mut p, READY);
    p.send("\x1b[A").expect("up");
    more(&mut p, "");
    expect(&mut p, "42");

    // Transactions: the prompt shows one is open; a rollback undoes it.
    enter(&mut p, "BEGIN;");
    expect(&mut p, READY);
    expect(&mut p, "hiqlite*> ");
    more(&mut p, "DELETE FROM users;");
    expect(&mut p, "changes: 2");
    enter(&mut p, "ROLLBACK;");
    enter(&mut p, "SELECT 'rows:' || count(*) FROM users;");
    expect(&mut p, "rows:2");

    // Long work shows a progress bar on a terminal: `.read` of a large file, `.backup`.
    let big = home.path().join("big.sql");
    let mut sql = String::from("CREATE TABLE big (id INTEGER PRIMARY KEY, v TEXT);\n");
    for i in 0..12_000 {
        sql.push_str(&format!("INSERT INTO big (v) VALUES ('{i:0>80}');\n"));
    }
    assert!(sql.len() > 1 << 20);
    std::fs::write(&big, sql).expect("write big.sql");
    enter(&mut p, &format!(".read {}", big.display()));
    expect(&mut p, "read [");
    enter(&mut p, "SELECT 'big:' || count(*) FROM big;");
    expect(&mut p, "big:12000");
    enter(&mut p, &format!(".backup {}", home.path().join("b.db").display()));
    expect(&mut p, "backup [");
    expect(&mut p, "bytes written to");

    enter(&mut p, ".quit");
    p.exp_eof().expect("the shell exits");
    let status = p.process().wait().expect("wait");
    assert!(matches!(status, rexpect::process::WaitStatus::Exited(_, 0)), "{status:?}");
    let history = std::fs::read_to_string(home.path().join(".hiqlite_history")).expect("history file");
    assert!(history.contains("SELECT 6 * 7 AS answer;"), "{history}");
}

/// Run the shell without a terminal: `args` after the URL, `stdin` piped in.
fn run(url: &str, args: &[&str], stdin: &str) -> (i32, String, String) {
    let home = tempfile::tempdir().expect("home");
    let mut child = shell(home.path(), url)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("write stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn non_interactive_runs_and_exit_codes() {
    let (_cluster, url) = node();

    // -c: statements and dot-commands in order; exact values.
    let (code, out, err) = run(
        &url,
        &[
            "-c",
            "CREATE TABLE t (i INTEGER, r REAL, s TEXT, b BLOB); \
             INSERT INTO t VALUES (1, 1.0, 'a', x'00ff'), (2, 0.1, NULL, NULL), (3, 1e20, 'c', x'');",
            "-c",
            ".mode csv",
            "-c",
            "SELECT * FROM t ORDER BY i",
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "i,r,s,b\n1,1.0,a,X'00FF'\n2,0.1,,\n3,1.0e+20,c,X''\n", "{err}");

    // -c stops at the first error, exit code 1, SQLite's message.
    let (code, out, err) = run(&url, &["-c", "SELECT nope FROM t", "-c", "SELECT 'not reached'"], "");
    assert_eq!(code, 1);
    assert!(err.contains("no such column: nope"), "{err}");
    assert!(!out.contains("not reached"), "{out}");

    // Piped input: batched writes, errors reported by line, the rest still runs, exit code 1.
    let script = "INSERT INTO t (i) VALUES (10);\nINSERT INTO t (i) VALUES (11);\nINSERT INTO nope VALUES (1);\n\
                  INSERT INTO t (i)\n  VALUES (12);\n.mode list\n.headers off\nSELECT count(*) FROM t WHERE i >= 10;\n";
    let (code, out, err) = run(&url, &[], script);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("near line 3: no such table: nope"), "{err}");
    assert_eq!(out, "3\n", "{err}");

    // Inside BEGIN ... COMMIT, writes go in chunks; a failing one is reported alone and the
    // others are applied, as one at a time would.
    let script = "CREATE TABLE e (a UNIQUE);\nBEGIN;\nINSERT INTO e VALUES (1);\nINSERT INTO e VALUES (1);\n\
                  INSERT INTO e VALUES (2);\nINSERT INTO nope VALUES (3);\nINSERT INTO e VALUES (4);\nCOMMIT;\n\
                  .mode list\n.headers off\nSELECT group_concat(a) FROM e;\n";
    let (code, out, err) = run(&url, &[], script);
    assert_eq!((code, out.as_str()), (1, "1,2,4\n"), "{err}");
    assert!(err.contains("near line 4: UNIQUE constraint failed: e.a"), "{err}");
    assert!(err.contains("near line 6: no such table: nope"), "{err}");

    // --bail stops piped input at the first error.
    let (code, out, err) = run(&url, &["--bail"], "SELECT 1;\nSELEC 2;\nSELECT 3;\n");
    assert_eq!(code, 1);
    assert!(err.contains("near line 2") && err.contains("syntax error"), "{err}");
    assert!(out.contains('1') && !out.contains('3'), "{out}");

    // Cluster views and session settings.
    let port = url.rsplit(':').next().expect("port");
    let outfile = tempfile::tempdir().expect("dir");
    let target = outfile.path().join("out.txt");
    let (code, out, err) = run(
        &url,
        &[
            "-c",
            ".nodes",
            "-c",
            ".leader",
            "-c",
            ".status",
            "-c",
            ".consistency linearizable",
            "-c",
            ".consistency",
            "-c",
            "CREATE INDEX t_s ON t (s)",
            "-c",
            ".indexes t",
            "-c",
            ".nullvalue (none)",
            "-c",
            ".timer on",
            "-c",
            ".mode list",
            "-c",
            &format!(".output {}", target.display()),
            "-c",
            "SELECT s FROM t WHERE i = 2",
            "-c",
            ".output",
            "-c",
            ".exit 3",
            "-c",
            "SELECT 'not reached'",
        ],
        "",
    );
    assert_eq!(code, 3, "{out}{err}");
    assert!(out.contains(&format!("http://127.0.0.1:{port}")) && out.contains("yes"), "{out}");
    assert!(out.contains(&format!("node 1 at http://127.0.0.1:{port}")), "{out}");
    assert!(out.contains("state = Leader") && out.contains("healthy = yes"), "{out}");
    assert!(out.contains("\nlinearizable\n") && out.contains("t_s"), "{out}");
    assert!(!out.contains("not reached"), "{out}");
    let written = std::fs::read_to_string(&target).expect("output file");
    assert!(written.starts_with("s\n(none)\nRun Time: real "), "{written}");

    // Clean piped input exits 0.
    let (code, out, _) = run(&url, &["--mode", "list", "--no-headers"], "SELECT 'ok';\n");
    assert_eq!((code, out.as_str()), (0, "ok\n"));
}

#[test]
fn dump_backup_restore_and_read() {
    let (_cluster, url) = node();
    let dir = tempfile::tempdir().expect("dir");
    let setup = "CREATE TABLE kv (k TEXT PRIMARY KEY, v);\n\
                 CREATE INDEX kv_v ON kv (v);\n\
                 CREATE TRIGGER kv_t AFTER INSERT ON kv BEGIN\n  UPDATE kv SET v = v || '!' WHERE k = new.k;\nEND;\n\
                 INSERT INTO kv VALUES ('a', 'x'), ('b', 'y;z');\n";
    std::fs::write(dir.path().join("setup.sql"), setup).expect("write");
    let read = format!(".read {}", dir.path().join("setup.sql").display());
    let (code, _, err) = run(&url, &["-c", &read], "");
    assert_eq!(code, 0, "{err}");

    let (code, out, err) = run(&url, &["-c", ".dump"], "");
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("PRAGMA foreign_keys=OFF;\nBEGIN TRANSACTION;\n"), "{out}");
    assert!(out.contains("INSERT INTO \"kv\" VALUES('b','y;z!');"), "{out}");
    assert!(out.contains("CREATE TRIGGER kv_t"), "{out}");
    std::fs::write(dir.path().join("dump.sql"), &out).expect("write dump");

    let backup = dir.path().join("b.db");
    let (code, _, err) = run(&url, &["-c", &format!(".backup {}", backup.display())], "");
    assert_eq!(code, 0, "{err}");
    assert!(std::fs::read(&backup).expect("backup").starts_with(b"SQLite format 3\0"));

    // Change the data, then restore the backup file: the old rows are back.
    let (code, _, err) = run(&url, &["-c", "DELETE FROM kv WHERE k = 'a'"], "");
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(&url, &["-c", &format!(".restore {}", backup.display())], "");
    assert_eq!(code, 0, "{err}");
    let (code, out, err) =
        run(&url, &["--mode", "list", "-c", "SELECT group_concat(k || '=' || v, ' ') FROM kv"], "");
    assert_eq!((code, out.trim()), (0, "group_concat(k || '=' || v, ' ')\na=x! b=y;z!"), "{err}");

    // The dump recreates the database: `hiqlite restore` loads it as one transaction.
    let (code, _, err) = run(&url, &["-c", "DROP TABLE kv"], "");
    assert_eq!(code, 0, "{err}");
    let api = url.trim_start_matches("http://");
    let out = Command::new(env!("CARGO_BIN_EXE_hiqlite"))
        .args(["restore", "--api-addr", api, "--from"])
        .arg(dir.path().join("dump.sql"))
        .output()
        .expect("run restore");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (code, out, err) = run(&url, &["-c", ".dump"], "");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, std::fs::read_to_string(dir.path().join("dump.sql")).expect("dump"), "same dump again");
}

#[test]
fn tls_and_basic_auth() {
    let dir = tempfile::tempdir().expect("dir");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .expect("certificate");
    let (cert_path, key_path, users) =
        (dir.path().join("cert.pem"), dir.path().join("key.pem"), dir.path().join("users.json"));
    std::fs::write(&cert_path, cert.cert.pem()).expect("cert");
    std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("key");
    std::fs::write(&users, r#"[{"username": "app", "password": "pw", "perms": ["all"]}]"#).expect("users");
    let (c, k, u) =
        (cert_path.display().to_string(), key_path.display().to_string(), users.display().to_string());
    let mut cluster = ProcCluster::new(1, &["--tls-cert", &c, "--tls-key", &k, "--auth", &u]);
    cluster.start_all();
    let url = format!("https://127.0.0.1:{}", cluster.nodes[0].api);
    let ok = ["--ca", &c, "--user", "app", "--password", "pw"];

    // Wait for the node through the shell itself: a read at leader consistency needs a leader.
    let deadline = std::time::Instant::now() + PATIENCE;
    loop {
        let (code, out, err) = run(&url, &[&ok[..], &["-c", "SELECT 'tls' || '-ok'"]].concat(), "");
        if code == 0 {
            assert!(out.contains("tls-ok"), "{out}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no answer over TLS: {err}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // The maintenance endpoints get the same trust and credentials.
    let (code, out, err) = run(
        &url,
        &[&ok[..], &["-c", "CREATE TABLE t (x); INSERT INTO t VALUES (7);", "-c", ".dump t"]].concat(),
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("INSERT INTO \"t\" VALUES(7);"), "{out}");
    let backup = dir.path().join("b.db");
    let (code, _, err) =
        run(&url, &[&ok[..], &["-c", &format!(".backup {}", backup.display())]].concat(), "");
    assert_eq!(code, 0, "{err}");

    let (code, _, err) =
        run(&url, &["--ca", &c, "--user", "app", "--password", "nope", "-c", "SELECT 1"], "");
    assert_eq!(code, 1);
    assert!(err.contains("unauthorized"), "{err}");
    let (code, _, err) = run(&url, &["--user", "app", "--password", "pw", "-c", "SELECT 1"], "");
    assert_eq!(code, 1, "an unknown CA is refused: {err}");
}
