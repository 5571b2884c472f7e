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
fn c_example() {
    let out = run_checked(&compile("example", &["ffi/examples/example.c"]));
    assert!(out.contains("1: write docs\n2: ship it\n"), "{out}");
    assert!(out.contains(r#"{"results":[{"columns":["n"],"types":[""],"values":[[2]]}]}"#), "{out}");
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
