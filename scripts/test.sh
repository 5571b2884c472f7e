#!/usr/bin/env bash
# The whole test suite: formatting, lints, Rust unit/integration/end-to-end tests (real nodes on
# 127.0.0.1, real files, real processes of the `hiqlite` binary), the storage conformance suite,
# the C API's tests (C programs, also under valgrind), doctests, the quickstart example, the
# Python and Node.js packages, the web console in headless Chromium. Installs what it needs from
# the package registries only (crates.io, PyPI, npm, apt).
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# Build with both cores but keep test processes from starving the Raft tasks of each other.
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE=1

step "rustfmt"
cargo fmt --all -- --check

step "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "remote-only build: the remote client compiles without openraft, axum or SQLite"
cargo build --locked -q -p hiqlite --no-default-features --features remote
cargo clippy --locked -p hiqlite --no-default-features --features remote --all-targets -- -D warnings
cargo test --locked -q -p hiqlite --no-default-features --features remote --lib
if cargo tree --locked -p hiqlite --no-default-features --features remote -e normal | grep -E ' (openraft|axum|libsqlite3-sys|rusqlite) v'; then
    echo "the remote-only build pulls in server crates (above)" >&2
    exit 1
fi

step "system tools of the C API tests: a C++ compiler, pkg-config, valgrind"
missing=()
command -v c++ >/dev/null || missing+=(g++)
command -v pkg-config >/dev/null || missing+=(pkg-config)
command -v valgrind >/dev/null || missing+=(valgrind)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi

step "cargo test (unit, storage suite, cluster end-to-end, CLI processes, C API natively and under valgrind, doctests)"
cargo test --workspace --locked -- --test-threads=2

step "quickstart example"
cargo run --locked -q -p hiqlite --example quickstart

step "rqlite clients, unchanged: pyrqlite (PyPI) and rqlite-js (npm) against a hiqlite node"
cargo build --locked -q -p hiqlite-cli
export HIQLITE_BIN="${CARGO_TARGET_DIR:-$PWD/target}/debug/hiqlite"
if [ ! -x .venv-test/bin/python ]; then
    python3 -m venv .venv-test
fi
.venv-test/bin/pip install -q --disable-pip-version-check -r tests/clients/requirements.txt
.venv-test/bin/python -m pytest -q tests/clients
(cd tests/clients && npm ci --no-audit --no-fund --loglevel=error && node --test)

step "web console in headless Chromium: Debian's chromium + chromium-driver (apt), Selenium (PyPI)"
missing=()
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
fi
.venv-test/bin/pip install -q --disable-pip-version-check -r tests/console/requirements.txt
export HIQLITE_CONSOLE_SCREENSHOTS="${HIQLITE_CONSOLE_SCREENSHOTS:-$PWD/target/console-screenshots}"
.venv-test/bin/python -m pytest -q tests/console
echo "console screenshots: $HIQLITE_CONSOLE_SCREENSHOTS"

step "scheduled backups against a real S3-compatible server: moto[server] (PyPI) on 127.0.0.1"
.venv-test/bin/pip install -q --disable-pip-version-check -r tests/backup/requirements.txt
.venv-test/bin/python -m pytest -q tests/backup

step "Python package (pyo3 + maturin): DB-API 2.0, compliance suite, asyncio, threads, mypy --strict"
.venv-test/bin/pip install -q --disable-pip-version-check -r bindings/python/requirements-test.txt
VIRTUAL_ENV="$PWD/.venv-test" PATH="$PWD/.venv-test/bin:$PATH" \
    maturin develop --locked -q -m bindings/python/Cargo.toml
.venv-test/bin/python -m pytest -q bindings/python/tests
.venv-test/bin/python bindings/python/examples/quickstart.py
.venv-test/bin/mypy --strict bindings/python/examples/quickstart.py bindings/python/python/hiqlite

step "Node.js package (bindings/node): build the addon, node --test, tsc --strict on the shipped types"
(
    cd bindings/node
    npm ci --no-audit --no-fund --loglevel=error
    npx napi build --platform
    # index.js and index.d.ts are generated but committed: a stale copy fails here.
    if ! git diff --exit-code -- index.js index.d.ts; then
        echo "bindings/node/index.js or index.d.ts is stale: run 'npx napi build --platform' and commit" >&2
        exit 1
    fi
    node --test
    npx tsc --noEmit --strict -p tsconfig.json
)

step "differential SQL: every face (Rust embedded and remote, Python, Node, C) against plain SQLite"
HIQLITE_DIFF_PYTHON="$PWD/.venv-test/bin/python" HIQLITE_DIFF_NODE=1 HIQLITE_DIFF_C=1 \
    cargo test --locked -q -p hiqlite-tests --test differential -- --test-threads=1

echo
echo "all test suites passed"
