"""Scheduled backups against a real S3-compatible server: moto's server (`moto[server]` from PyPI),
started by the test on 127.0.0.1 with an OS-chosen port.

Real `hiqlite serve` processes. A three-node cluster backs up every second to the bucket with
`keep = 2`: backups appear, only the leader stores them, old ones are pruned, status and /metrics
report them; a new node with an empty data directory and `auto_restore` starts from the newest
backup with the same rows. An encrypted backup is neither readable nor restorable without its key
(nor with a wrong one) and restores with it. A directory destination works the same way.
Waits poll for conditions with generous deadlines; nothing sleeps for a fixed time.
"""

import base64
import contextlib
import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

import boto3
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
from ports import free_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("HIQLITE_BIN", os.path.join(ROOT, "target", "debug", "hiqlite"))
DEADLINE = 90  # seconds: a loaded 2-core machine is slow, never this slow
KEY = "5f" * 32
TIMINGS = {
    "HIQLITE_HEARTBEAT_MS": "200",
    "HIQLITE_ELECTION_TIMEOUT_MIN_MS": "2000",
    "HIQLITE_ELECTION_TIMEOUT_MAX_MS": "4000",
    "HIQLITE_REQUEST_TIMEOUT_MS": "60000",
}
AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def http(method, url, body=None):
    """One API call; (status, parsed JSON or text)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, method=method, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            text, code = r.read().decode(), r.status
    except urllib.error.HTTPError as e:
        text, code = e.read().decode(), e.code
    try:
        return code, json.loads(text)
    except ValueError:
        return code, text


def wait_for(what, fn, timeout=DEADLINE):
    """Poll `fn` until it returns something truthy; fail with `what` at the deadline."""
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = fn()
            if last:
                return last
        except (OSError, ValueError, KeyError, TypeError) as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server on an OS-chosen port; yields its endpoint URL."""
    moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
    proc = subprocess.Popen([moto, "-H", "127.0.0.1", "-p", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=dict(os.environ, **AWS))
    try:
        endpoint = None
        end = time.monotonic() + DEADLINE
        while endpoint is None and time.monotonic() < end:
            line = proc.stdout.readline()
            if not line:
                raise AssertionError("moto_server exited before serving")
            m = re.search(r"Running on (http://127\.0\.0\.1:\d+)", line)
            endpoint = m.group(1) if m else None
        assert endpoint, "moto_server did not say where it listens"
        yield endpoint
    finally:
        proc.kill()
        proc.wait(timeout=DEADLINE)


def bucket(endpoint, name):
    client = boto3.client("s3", endpoint_url=endpoint, **{k.lower(): v for k, v in AWS.items() if k != "AWS_REGION"},
                          region_name=AWS["AWS_REGION"])
    client.create_bucket(Bucket=name)
    return client


def objects(client, name, prefix):
    got = client.list_objects_v2(Bucket=name, Prefix=prefix).get("Contents", [])
    return sorted(o["Key"] for o in got)


class Node:
    """One `hiqlite serve` process, stopped by PID at the end."""

    def __init__(self, root, node_id, config, peers=None, extra=()):
        self.id, self.root = node_id, root
        self.api, self.raft = free_port(), free_port()
        self.dir = os.path.join(root, f"node-{node_id}")
        self.config_path = os.path.join(root, f"node-{node_id}.toml")
        with open(self.config_path, "w") as f:
            f.write(config)
        self.peers, self.extra, self.proc = peers, list(extra), None

    def start(self, env=None):
        args = [BINARY, "serve", "--config", self.config_path, "--node-id", str(self.id), "--data-dir", self.dir,
                "--api-addr", f"127.0.0.1:{self.api}", "--raft-addr", f"127.0.0.1:{self.raft}",
                "--secret", "backup-test-secret", *self.extra]
        if self.peers:
            args += ["--peers", self.peers]
        self.log = os.path.join(self.root, f"node-{self.id}.log")
        with open(self.log, "w") as log:
            self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=log,
                                         env=dict(os.environ, RUST_LOG="info,openraft=warn", **TIMINGS, **(env or {})))

    def url(self, path=""):
        return f"http://127.0.0.1:{self.api}{path}"

    def status(self):
        code, st = http("GET", self.url("/status"))
        assert code == 200, st
        return st["node"]

    def stop(self):
        if self.proc is not None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=DEADLINE)
            self.proc = None

    def tail(self):
        if os.path.exists(self.log):
            with open(self.log) as f:
                return f"--- node {self.id} log (tail) ---\n" + "".join(f.readlines()[-30:])
        return ""


@pytest.fixture
def nodes():
    started = []
    try:
        yield started
    except BaseException:
        raise
    finally:
        for n in started:
            print(n.tail())
            n.stop()


def s3_config(endpoint, prefix, **more):
    lines = [
        "[backup]",
        f'destination = "s3://backups/{prefix}"',
        f's3_endpoint = "{endpoint}"',
        "s3_allow_http = true",
        f's3_access_key_id = "{AWS["AWS_ACCESS_KEY_ID"]}"',
        f's3_secret_access_key = "{AWS["AWS_SECRET_ACCESS_KEY"]}"',
        f's3_region = "{AWS["AWS_REGION"]}"',
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in more.items()]
    return "\n".join(lines) + "\n"


def rows(node):
    code, r = http("POST", node.url("/db/query?level=strong"), ["SELECT id, v FROM t ORDER BY id"])
    assert code == 200, r
    return r["results"][0].get("values", [])


def leader_of(cluster):
    ids = {n.status()["leader"] for n in cluster}
    return next(n for n in cluster if n.id == ids.pop()) if len(ids) == 1 and None not in ids else None


def test_scheduled_s3_backups_are_pruned_and_auto_restored(s3, nodes, tmp_path):
    client = bucket(s3, "backups")
    # pytest's tmp_path outlives the test, so the node processes (stopped by the `nodes`
    # fixture afterwards) never write into a directory being removed.
    with contextlib.nullcontext(str(tmp_path)) as root:
        config = s3_config(s3, "prod", interval_secs=1, keep=2)
        cluster = [Node(root, i, config) for i in (1, 2, 3)]
        peers = ",".join(f"{n.id}=127.0.0.1:{n.raft}/127.0.0.1:{n.api}" for n in cluster)
        for n in cluster:
            n.peers = peers
            nodes.append(n)
            n.start()
        leader = wait_for("a leader all three nodes agree on", lambda: leader_of(cluster))
        code, r = http("POST", leader.url("/db/execute"),
                       ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"] +
                       [["INSERT INTO t (v) VALUES (?)", f"row {i}"] for i in range(200)])
        assert code == 200 and "error" not in json.dumps(r), r
        written = leader.status()["applied_index"]

        # Backups keep coming and the bucket keeps only the newest two.
        wait_for("four backups stored, the last holding every write",
                 lambda: (b := leader.status().get("backup")) and b["stored"] >= 4 and b["last_index"] >= written)
        wait_for("old backups pruned to two", lambda: len(objects(client, "backups", "prod/")) == 2)
        st = leader.status()["backup"]
        assert st["pruned"] >= 2 and st["consecutive_failures"] == 0 and st["last_error"] is None, st
        assert st["destination"] == "s3://backups/prod"
        for key in objects(client, "backups", "prod/"):
            assert re.fullmatch(r"prod/hiqlite-\d{13}-\d{12}\.db\.zst", key), key
        # Only the leader uploads.
        for n in cluster:
            if n is not leader:
                assert n.status()["backup"]["stored"] == 0
        code, metrics = http("GET", leader.url("/metrics"))
        assert code == 200 and re.search(r"^hiqlite_backups_stored [1-9]", metrics, re.M), metrics

        # A new node, empty data directory, no peers: starts from the newest backup.
        fresh = Node(root, 7, s3_config(s3, "prod", interval_secs=3600, auto_restore=True))
        nodes.append(fresh)
        fresh.start()
        wait_for("the restored node serving the rows", lambda: len(rows(fresh)) == 200)
        assert rows(fresh) == rows(leader)
        assert fresh.status()["startup"] == "restored"


def test_encrypted_backups_need_their_key(s3, nodes, tmp_path):
    client = bucket(s3, "sealed")
    # pytest's tmp_path outlives the test, so the node processes (stopped by the `nodes`
    # fixture afterwards) never write into a directory being removed.
    with contextlib.nullcontext(str(tmp_path)) as root:
        config = s3_config(s3, "enc", interval_secs=1, keep=3, encryption_key=KEY).replace("s3://backups/", "s3://sealed/")
        node = Node(root, 1, config)
        nodes.append(node)
        node.start()
        wait_for("a leader", lambda: node.status()["leader"] == 1)
        secret = "a secret nobody may read from the bucket"
        code, r = http("POST", node.url("/db/execute"),
                       ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"] +
                       [["INSERT INTO t (v) VALUES (?)", f"{secret} {i}"] for i in range(100)])
        assert code == 200, r
        written = node.status()["applied_index"]
        wait_for("an encrypted backup holding every write",
                 lambda: (b := node.status()["backup"]) and (b["last_index"] or 0) >= written)
        key = objects(client, "sealed", "enc/")[-1]
        assert key.endswith(".db.zst.enc"), key
        body = client.get_object(Bucket="sealed", Key=key)["Body"].read()
        assert body.startswith(b"HQBKENC1") and b"SQLite format" not in body and b"secret" not in body

        target = Node(root, 2, "")
        nodes.append(target)
        target.start()
        wait_for("the target node leading", lambda: target.status()["leader"] == 2)
        dest = "s3://sealed/enc"
        env = dict(os.environ, AWS_ENDPOINT=s3, AWS_ALLOW_HTTP="true", **AWS)
        env.pop("HIQLITE_BACKUP_KEY", None)

        def restore(extra_env):
            return subprocess.run([BINARY, "restore", "--from", dest, "--api-addr", f"127.0.0.1:{target.api}"],
                                  capture_output=True, text=True, timeout=DEADLINE, env=dict(env, **extra_env))

        no_key = restore({})
        assert no_key.returncode != 0 and "encrypted" in no_key.stderr, no_key.stderr
        wrong = restore({"HIQLITE_BACKUP_KEY": "00" * 32})
        assert wrong.returncode != 0 and "wrong key" in wrong.stderr, wrong.stderr
        assert http("POST", target.url("/db/query"), ["SELECT count(*) FROM t"])[1]["results"][0].get("error")
        ok = restore({"HIQLITE_BACKUP_KEY": KEY})
        assert ok.returncode == 0, ok.stderr
        assert rows(target) == rows(node)
        listing = subprocess.run([BINARY, "backups", dest], capture_output=True, text=True, timeout=DEADLINE, env=env)
        # Backups go on meanwhile (and old ones are pruned): the listing names what the bucket holds.
        listed = re.findall(r"^(hiqlite-\d{13}-\d{12}\.db\.zst\.enc) +index +\d+ +\d+ bytes +encrypted$",
                            listing.stdout, re.M)
        assert listing.returncode == 0 and listed, listing.stdout
        assert set(listed) & {k.split("/")[-1] for k in objects(client, "sealed", "enc/")}, listing.stdout


def test_directory_destination(nodes, tmp_path):
    # pytest's tmp_path outlives the test, so the node processes (stopped by the `nodes`
    # fixture afterwards) never write into a directory being removed.
    with contextlib.nullcontext(str(tmp_path)) as root:
        dest = os.path.join(root, "backups")
        node = Node(root, 1, "", extra=["--backup-to", dest, "--backup-interval-secs", "1", "--backup-keep", "1"])
        nodes.append(node)
        node.start()
        wait_for("a leader", lambda: node.status()["leader"] == 1)
        code, r = http("POST", node.url("/db/execute"),
                       ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)", ["INSERT INTO t (v) VALUES (?)", "x"]])
        assert code == 200, r
        written = node.status()["applied_index"]
        wait_for("two backups stored", lambda: node.status()["backup"]["stored"] >= 2)
        wait_for("a backup holding every write", lambda: node.status()["backup"]["last_index"] >= written)
        wait_for("one backup kept", lambda: len(os.listdir(dest)) == 1)
        fresh = Node(root, 2, "", extra=["--backup-to", dest, "--auto-restore"])
        nodes.append(fresh)
        fresh.start()
        wait_for("the restored node serving the row", lambda: rows(fresh) == [[1, "x"]])


def test_point_in_time_restore_from_s3_with_the_cli(s3, nodes, tmp_path):
    """Encrypted backups and archived log segments in the bucket; `hiqlite restore --to-time`
    rebuilds the database as of a moment between two writes; a new cluster starts from it."""
    bucket(s3, "pitr")
    # pytest's tmp_path outlives the test, so the node processes (stopped by the `nodes`
    # fixture afterwards) never write into a directory being removed.
    with contextlib.nullcontext(str(tmp_path)) as root:
        config = ("snapshot_every = 40\nlog_keep_after_snapshot = 0\nlog_segment_bytes = 4096\n" +
                  s3_config(s3, "db", interval_secs=1, keep=0, encryption_key=KEY).replace("s3://backups/", "s3://pitr/"))
        node = Node(root, 1, config)
        nodes.append(node)
        node.start()
        wait_for("a leader", lambda: node.status()["leader"] == 1)
        code, r = http("POST", node.url("/db/execute"), ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"])
        assert code == 200, r
        at_ms = None
        for i in range(1, 401):
            if i == 301:
                # The moment: after write 300 was acknowledged (the leader stamped it earlier)
                # and before write 301 is sent (the leader stamps it later), on this machine's
                # clock, which the node shares.
                at_ms = int(time.time() * 1000) + 2
                while time.time() * 1000 < at_ms + 2:
                    pass
            code, r = http("POST", node.url("/db/execute"), [["INSERT INTO t (id, v) VALUES (?, ?)", i, f"row {i}"]])
            assert code == 200 and "error" not in r["results"][0], r
            if i == 40:
                wait_for("a first backup", lambda: (node.status()["backup"]["last_index"] or 0) > 0)
        out = os.path.join(root, "restored.db")
        env = dict(os.environ, AWS_ENDPOINT=s3, AWS_ALLOW_HTTP="true", HIQLITE_BACKUP_KEY=KEY, **AWS)

        def restored():
            if os.path.exists(out):
                os.remove(out)
            p = subprocess.run([BINARY, "restore", "--from", "s3://pitr/db", "--to-time", str(at_ms), "--out", out],
                               capture_output=True, text=True, timeout=DEADLINE, env=env)
            assert p.returncode == 0, p.stderr
            return "warning" not in p.stderr and p
        done = wait_for("the archive reaching the moment", restored)
        assert "serve --restore" in done.stdout, done.stdout
        fresh = Node(root, 2, "", extra=["--restore", out])
        nodes.append(fresh)
        fresh.start()
        wait_for("the new cluster serving the rows", lambda: fresh.status()["leader"] == 2 and rows(fresh))
        assert rows(fresh) == [[i, f"row {i}"] for i in range(1, 301)]


def test_failed_uploads_are_reported_and_retried_without_slowing_writes(s3, nodes, tmp_path):
    """The bucket does not exist yet: every attempt fails, status and /metrics say so, writes go
    on; once the bucket exists the retries succeed and the failure streak resets."""
    # pytest's tmp_path outlives the test, so the node processes (stopped by the `nodes`
    # fixture afterwards) never write into a directory being removed.
    with contextlib.nullcontext(str(tmp_path)) as root:
        node = Node(root, 1, s3_config(s3, "late", interval_secs=1).replace("s3://backups/", "s3://not-yet/"))
        nodes.append(node)
        node.start()
        wait_for("a leader", lambda: node.status()["leader"] == 1)
        code, r = http("POST", node.url("/db/execute"), ["CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"])
        assert code == 200, r
        st = wait_for("failures reported", lambda: (b := node.status()["backup"]) and b["consecutive_failures"] >= 2 and b)
        assert st["stored"] == 0 and st["failed"] >= 2 and "not-yet" in (st["last_error"] or ""), st
        code, metrics = http("GET", node.url("/metrics"))
        assert re.search(r"^hiqlite_backups_failed [1-9]", metrics, re.M), metrics
        assert re.search(r"^hiqlite_backup_consecutive_failures [1-9]", metrics, re.M), metrics
        # Writes are not held up by the failing uploads.
        for i in range(20):
            code, r = http("POST", node.url("/db/execute"), [["INSERT INTO t (v) VALUES (?)", f"row {i}"]])
            assert code == 200 and "error" not in r["results"][0], r
        client = bucket(s3, "not-yet")
        st = wait_for("a backup stored once the bucket exists",
                      lambda: (b := node.status()["backup"]) and b["stored"] >= 1 and b)
        assert st["consecutive_failures"] == 0 and st["last_error"] is None, st
        assert objects(client, "not-yet", "late/"), "nothing in the bucket"
