//! The C API from C: builds libhiqlite, compiles the C tests and the example with
//! `cc -Wall -Wextra -Werror` (and the header as C++), runs them, and runs them again under
//! valgrind. `HIQLITE_NO_VALGRIND=1` skips the valgrind runs (CI installs valgrind; see
//! scripts/test.sh).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The directory with libhiqlite.{so,a}: cargo does not build a cdylib for integration tests, so
/// build it here, into the target directory and profile this test runs from.
fn lib_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // <target>/<profile>/deps/c_api-HASH
        let profile_dir = exe.parent().and_then(Path::parent).expect("profile dir").to_path_buf();
        let target_dir = profile_dir.parent().expect("target dir");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") => "dev".to_owned(),
            Some(other) => other.to_owned(),
            None => panic!("unexpected target layout: {}", exe.display()),
        };
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        // Cargo gives this test the package's CARGO_PKG_*/CARGO_MANIFEST_* variables; build
        // scripts (ring's) watch some of them, so passing them on would rebuild those crates
        // here and again in the next `cargo test`.
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            let test_only = ["CARGO_PKG_", "CARGO_MANIFEST_", "CARGO_BIN_", "CARGO_CRATE_", "CARGO_PRIMARY_"]
                .iter()
                .any(|p| k.starts_with(p))
                || k == "CARGO_TARGET_TMPDIR"
                || k == "CARGO_RUSTC_CURRENT_DIR";
            if test_only {
                cmd.env_remove(&*k);
            }
        }
        let status = cmd
            .args(["build", "--locked", "-p", "hiqlite-ffi", "--lib", "--profile", &profile, "--target-dir"])
            .arg(target_dir)
            .current_dir(workspace())
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building libhiqlite failed");
        assert!(profile_dir.join("libhiqlite.so").exists(), "no libhiqlite.so in {}", profile_dir.display());
        profile_dir
    })
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{cmd:?} failed ({})\n--- stdout\n{stdout}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Compile C sources into an executable linked against libhiqlite.so.
fn compile(name: &str, sources: &[&str]) -> PathBuf {
    let lib = lib_dir();
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("c-{name}"));
    let ws = workspace();
    let mut cc = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()));
    cc.args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-g"])
        .arg("-I")
        .arg(ws.join("include"))
        .arg("-I")
        .arg(ws.join("ffi/tests/c"));
    for s in sources {
        cc.arg(ws.join(s));
    }
    cc.arg("-L")
        .arg(lib)
        .arg(format!("-Wl,-rpath,{}", lib.display()))
        .args(["-lhiqlite", "-lpthread", "-o"])
        .arg(&out);
    run(&mut cc);
    out
}

/// Run a C test program natively, then under valgrind (unless `HIQLITE_NO_VALGRIND` is set), each
/// time with a fresh data directory; returns the native run's output.
///
/// Under valgrind, invalid reads/writes, uses of uninitialised memory and definite leaks are
/// errors. The library's runtime lives in a static and its worker threads are still running at
/// exit, so what they hold is "still reachable" or "possibly lost": not counted.
fn run_checked(exe: &Path) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(Command::new(exe).arg(dir.path().join("data")));
    if std::env::var_os("HIQLITE_NO_VALGRIND").is_some() {
        eprintln!("HIQLITE_NO_VALGRIND is set: not running {} under valgrind", exe.display());
        return out;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let vg = run(Command::new("valgrind")
        .args([
            "--error-exitcode=99",
            "--leak-check=full",
            "--errors-for-leak-kinds=definite",
            "--show-leak-kinds=definite",
            "--quiet",
        ])
        .arg(exe)
        .arg(dir.path().join("data")));
    assert_eq!(vg.lines().last(), out.lines().last(), "valgrind run printed something else");
    out
}

#[test]
fn header_compiles_as_c_and_cpp() {
    let header = workspace().join("include/hiqlite.h");
    run(Command::new("cc")
        .args(["-x", "c", "-std=c99", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg(&header));
    run(Command::new("c++")
        .args(["-x", "c++", "-std=c++11", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-pedantic"])
        .arg(&header));
}

#[test]
fn c_misuse() {
    let out = run_checked(&compile("misuse", &["ffi/tests/c/misuse.c"]));
    assert!(out.ends_with("misuse: ok\n"), "{out}");
}

#[test]
fn c_cluster() {
    let out = run_checked(&compile("cluster", &["ffi/tests/c/cluster.c"]));
    assert!(out.ends_with("cluster: ok\n"), "{out}");
}

#[test]
fn c_coord() {
    let out = run_checked(&compile("coord", &["ffi/tests/c/coord.c"]));
    assert!(out.ends_with("coord: ok\n"), "{out}");
}

#[test]
fn c_maintenance() {
    let out = run_checked(&compile("maintenance", &["ffi/tests/c/maintenance.c"]));
    assert!(out.ends_with("maintenance: ok\n"), "{out}");
}

#[test]
fn c_changes() {
    let out = run_checked(&compile("changes", &["ffi/tests/c/changes.c"]));
    assert!(out.ends_with("changes: ok\n"), "{out}");
}

#[test]
fn c_listen() {
    let out = run_checked(&compile("listen", &["ffi/tests/c/listen.c"]));
    assert!(out.ends_with("listen: ok\n"), "{out}");
}

#[test]
fn c_transactions() {
    let out = run_checked(&compile("transactions", &["ffi/tests/c/transactions.c"]));
    assert!(out.ends_with("transactions: ok\n"), "{out}");
}

#[test]
fn c_read_your_writes() {
    let out = run_checked(&compile("read_your_writes", &["ffi/tests/c/read_your_writes.c"]));
    assert!(out.ends_with("read_your_writes: ok\n"), "{out}");
}

#[test]
fn c_example() {
    let out = run_checked(&compile("example", &["ffi/examples/example.c"]));
    assert!(out.contains("1: write docs\n2: ship it\n"), "{out}");
    assert!(out.contains(r#"{"results":[{"columns":["n"],"types":["integer"],"values":[[2]]}]}"#), "{out}");
    assert!(out.contains("inside the transaction: 3 todos\n"), "{out}");
    assert!(out.contains("session s-42: ada\nhits: 1\nnotification on orders: order 42\n"), "{out}");
}

/// The pkg-config file, installed into a prefix holding only the static library, builds the
/// example statically, and that binary runs.
#[test]
fn pkg_config_links_the_static_library() {
    let lib = lib_dir();
    let prefix = tempfile::tempdir().expect("tempdir");
    let p = prefix.path();
    std::fs::create_dir_all(p.join("include")).expect("mkdir");
    std::fs::create_dir_all(p.join("lib/pkgconfig")).expect("mkdir");
    std::fs::copy(workspace().join("include/hiqlite.h"), p.join("include/hiqlite.h")).expect("copy header");
    std::fs::copy(lib.join("libhiqlite.a"), p.join("lib/libhiqlite.a")).expect("copy libhiqlite.a");
    let pc = std::fs::read_to_string(workspace().join("ffi/hiqlite.pc.in")).expect("hiqlite.pc.in");
    let pc = pc.replace("@PREFIX@", &p.display().to_string()).replace("@VERSION@", env!("CARGO_PKG_VERSION"));
    std::fs::write(p.join("lib/pkgconfig/hiqlite.pc"), pc).expect("write hiqlite.pc");

    let flags = run(Command::new("pkg-config")
        .args(["--cflags", "--libs", "--static", "hiqlite"])
        .env("PKG_CONFIG_PATH", p.join("lib/pkgconfig")));
    let version = run(Command::new("pkg-config")
        .args(["--modversion", "hiqlite"])
        .env("PKG_CONFIG_PATH", p.join("lib/pkgconfig")));
    assert_eq!(version.trim(), env!("CARGO_PKG_VERSION"));
    let exe = p.join("example-static");
    run(Command::new("cc")
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror"])
        .arg(workspace().join("ffi/examples/example.c"))
        .args(flags.split_whitespace())
        .arg("-o")
        .arg(&exe));
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(Command::new(&exe).arg(dir.path().join("data")));
    assert!(out.contains("2: ship it"), "{out}");
}

/// The README's C example is the example the tests build and run.
#[test]
fn readme_shows_the_example() {
    let readme = std::fs::read_to_string(workspace().join("README.md")).expect("README.md");
    let example = std::fs::read_to_string(workspace().join("ffi/examples/example.c")).expect("example.c");
    assert!(
        readme.contains(&format!("```c\n{example}```")),
        "README's C example differs from ffi/examples/example.c"
    );
}

/// The differential runner (tests/differential/PROTOCOL.md), built with the very command
/// tests/tests/differential.rs uses (no warning flags, no rpath: it runs with
/// LD_LIBRARY_PATH), and warning-free under `-Wall -Wextra -Werror`; then run on a small script
/// against a single-node cluster started here, natively and under valgrind.
#[test]
fn c_differential_runner() {
    let lib = lib_dir();
    let ws = workspace();
    let tmp = tempfile::tempdir().expect("tempdir");
    let exe = tmp.path().join("runner");
    run(Command::new("cc")
        .current_dir(&ws)
        .args(["ffi/tests/c/differential_runner.c", "-I", "include", "-L"])
        .arg(lib)
        .args(["-lhiqlite", "-o"])
        .arg(&exe));
    run(Command::new("cc")
        .current_dir(&ws)
        .args(["-std=c11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-fsyntax-only"])
        .args(["ffi/tests/c/differential_runner.c", "-I", "include"]));

    let rt =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let data = tmp.path().join("node");
    let config = engine::NodeConfig::from_toml_str(&format!(
        "node_id = 1\ndata_dir = \"{}\"\nraft_addr = \"127.0.0.1:0\"\napi_addr = \"127.0.0.1:0\"\n\
         request_timeout_ms = 300000\ntransaction_idle_timeout_ms = 600000\n",
        data.display()
    ))
    .expect("config");
    let (node, api) = rt.block_on(async {
        let node = engine::Client::start(config).await.expect("start the node");
        node.wait_for_leader(std::time::Duration::from_secs(300)).await.expect("a leader");
        let api = node.status().await.expect("status").api_addr;
        (node, api)
    });

    let steps = serde_json::json!([
        {"op": "exec", "sql": "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE, r REAL, b BLOB)", "read": false},
        {"op": "exec", "sql": "INSERT INTO t (v, r, b) VALUES ('a\"\\\n\u{e9}', 1.0, x'00ff')", "read": false},
        {"op": "exec", "sql": "SELECT id, v, r, b, NULL AS n FROM t", "read": true},
        {"op": "exec", "sql": "INSERT INTO t (v) VALUES ('a\"\\\n\u{e9}')", "read": false},
        {"op": "begin"},
        {"op": "exec", "sql": "INSERT INTO t (v) VALUES ('tx')", "read": false},
        {"op": "exec", "sql": "SELECT count(*) AS n FROM t", "read": true},
        {"op": "exec", "sql": "INSERT INTO t (v) VALUES ('tx')", "read": false},
        {"op": "commit"},
        {"op": "begin"},
        {"op": "exec", "sql": "DELETE FROM t", "read": false},
        {"op": "rollback"},
        {"op": "rollback"},
        {"op": "exec", "sql": "SELECT v FROM t WHERE id > 1", "read": true}
    ]);
    let input = serde_json::json!({"urls": [format!("http://{api}")], "steps": steps}).to_string();
    let ok = |v: serde_json::Value| serde_json::json!({"ok": v});
    let text = |s: &str| serde_json::json!({"text": s});
    let int = |s: &str| serde_json::json!({"int": s});
    let unique = "UNIQUE constraint failed: t.v";
    let want = [
        ok(serde_json::json!({"columns": [], "rows": [], "changes": 0, "last_insert_id": 0})),
        ok(serde_json::json!({"columns": [], "rows": [], "changes": 1, "last_insert_id": 1})),
        ok(serde_json::json!({"columns": ["id", "v", "r", "b", "n"],
            "rows": [[int("1"), text("a\"\\\n\u{e9}"), {"real": 1.0}, {"blob": "00ff"}, null]],
            "changes": 0, "last_insert_id": 0})),
        serde_json::json!({"err": {"code": 2067, "message": unique}}),
        ok(serde_json::json!({})),
        ok(serde_json::json!({"columns": [], "rows": [], "changes": 1, "last_insert_id": 2})),
        ok(serde_json::json!({"columns": ["n"], "rows": [[int("2")]], "changes": 1, "last_insert_id": 2})),
        serde_json::json!({"err": {"code": 2067, "message": unique}}),
        ok(serde_json::json!({})),
        ok(serde_json::json!({})),
        ok(serde_json::json!({"columns": [], "rows": [], "changes": 2, "last_insert_id": 0})),
        ok(serde_json::json!({})),
        serde_json::json!({"err": {"code": 1, "message": "cannot rollback - no transaction is active"}}),
        ok(serde_json::json!({"columns": ["v"], "rows": [[text("tx")]], "changes": 0, "last_insert_id": 0})),
    ];

    let runs: &[&[&str]] = if std::env::var_os("HIQLITE_NO_VALGRIND").is_some() {
        &[&[]]
    } else {
        &[
            &[],
            &[
                "valgrind",
                "--error-exitcode=99",
                "--leak-check=full",
                "--errors-for-leak-kinds=definite",
                "--quiet",
            ],
        ]
    };
    for prefix in runs {
        let mut cmd = match prefix.split_first() {
            Some((first, rest)) => {
                let mut c = Command::new(first);
                c.args(rest).arg(&exe);
                c
            }
            None => Command::new(&exe),
        };
        cmd.env("LD_LIBRARY_PATH", lib).stdin(std::process::Stdio::piped());
        let out = rt
            .block_on(rt.spawn_blocking({
                let input = input.clone();
                move || {
                    let mut child = cmd
                        .stdout(std::process::Stdio::piped())
                        .stderr(std::process::Stdio::piped())
                        .spawn()
                        .expect("spawn the runner");
                    use std::io::Write;
                    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
                    child.wait_with_output().expect("runner output")
                }
            }))
            .expect("join");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "runner {prefix:?} failed ({})\n--- stdout\n{stdout}\n--- stderr\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        let got: serde_json::Value =
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
        let results = got["results"].as_array().unwrap_or_else(|| panic!("no results: {stdout}"));
        assert_eq!(results.len(), want.len(), "{stdout}");
        for (i, (g, w)) in results.iter().zip(&want).enumerate() {
            // As the differential harness: changes are compared for writes, last insert ids
            // for statements that insert.
            let mut g = g.clone();
            let sql = steps[i]["sql"].as_str().unwrap_or_default();
            let exec = g.get_mut("ok").and_then(|o| o.as_object_mut()).filter(|_| steps[i]["op"] == "exec");
            if let Some(ok) = exec {
                if steps[i]["read"] == true {
                    ok.insert("changes".into(), w["ok"]["changes"].clone());
                }
                if !sql.starts_with("INSERT") {
                    ok.insert("last_insert_id".into(), w["ok"]["last_insert_id"].clone());
                }
            }
            assert_eq!(&g, w, "step {i} ({}) of runner {prefix:?}: {stdout}", steps[i]);
        }
        // Input it cannot use: a non-zero exit, not a crash or a hang.
        let bad = Command::new(&exe)
            .env("LD_LIBRARY_PATH", lib)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run the runner on empty input");
        assert_eq!(bad.status.code(), Some(2), "{bad:?}");
        // The next run starts from an empty database again.
        rt.block_on(node.execute("DROP TABLE t", ())).expect("drop the table");
    }
    rt.block_on(node.shutdown()).expect("shutdown");
}
