"""The web console in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium).

Three real `hiqlite serve` processes on 127.0.0.1 with Basic auth on (an admin and a read-only
user). The browser signs in on a follower's console, runs SQL and sees the rows, is refused a
write as the read-only user, browses the schema and the charts, sees three nodes with one leader,
and sees a new leader after the test kills the leader's process with SIGKILL. Every page is saved
as a PNG (the directory is printed). Waits have generous deadlines; there are no fixed sleeps.
"""

import base64
import json
import os
import pathlib
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "support"))
from ports import free_port  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEADLINE = 60  # seconds: a loaded 2-core machine is slow, never this slow
USERS = [
    {"username": "admin", "password": "admin-secret", "perms": ["all"]},
    {"username": "reader", "password": "reader-secret", "perms": ["query", "status"]},
    {"username": "*", "perms": ["ready"]},
]
# As cli/tests/common: elections with margin, so a busy machine does not flap leaders.
TIMINGS = {
    "HIQLITE_HEARTBEAT_MS": "200",
    "HIQLITE_ELECTION_TIMEOUT_MIN_MS": "2000",
    "HIQLITE_ELECTION_TIMEOUT_MAX_MS": "4000",
    "HIQLITE_REQUEST_TIMEOUT_MS": "60000",
}


def http(method, url, body=None, user=("admin", "admin-secret")):
    """One API call; (status, parsed JSON or text)."""
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if user:
        req.add_header("Authorization", "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            text = r.read().decode()
            code = r.status
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
        except (OSError, ValueError, KeyError) as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what} (last: {last!r})")


class Cluster:
    def __init__(self, binary, root):
        self.root = root
        self.nodes = []
        for i in (1, 2, 3):
            self.nodes.append({"id": i, "api": free_port(), "raft": free_port(), "proc": None})
        self.binary = binary

    def start(self):
        root = self.root
        peers = ",".join(f"{n['id']}=127.0.0.1:{n['raft']}/127.0.0.1:{n['api']}" for n in self.nodes)
        users = os.path.join(root, "users.json")
        with open(users, "w") as f:
            json.dump(USERS, f)
        env = dict(os.environ, RUST_LOG="info,openraft=warn", **TIMINGS)
        for n in self.nodes:
            log = open(os.path.join(root, f"node-{n['id']}.log"), "w")
            n["proc"] = subprocess.Popen(
                [self.binary, "serve", "--node-id", str(n["id"]), "--data-dir", os.path.join(root, f"node-{n['id']}"),
                 "--api-addr", f"127.0.0.1:{n['api']}", "--raft-addr", f"127.0.0.1:{n['raft']}",
                 "--peers", peers, "--secret", "console-test-secret", "--auth", users],
                stdout=subprocess.DEVNULL, stderr=log, env=env)
            log.close()

    def url(self, i, path=""):
        return f"http://127.0.0.1:{self.nodes[i]['api']}{path}"

    def running(self):
        return [i for i, n in enumerate(self.nodes) if n["proc"] is not None]

    def leader(self):
        """The leader's node id all running nodes agree on, or None."""
        seen = set()
        for i in self.running():
            code, st = http("GET", self.url(i, "/status"))
            if code != 200:
                return None
            seen.add(st["leader"])
        return seen.pop() if len(seen) == 1 and None not in seen else None

    def kill9(self, node_id):
        n = self.nodes[node_id - 1]
        os.kill(n["proc"].pid, signal.SIGKILL)
        n["proc"].wait(timeout=DEADLINE)
        n["proc"] = None

    def stop(self):
        for n in self.nodes:
            if n["proc"] is not None:
                n["proc"].kill()
                n["proc"].wait(timeout=DEADLINE)
                n["proc"] = None


@pytest.fixture(scope="module")
def cluster():
    binary = os.environ.get("HIQLITE_BIN", os.path.join(ROOT, "target", "debug", "hiqlite"))
    with tempfile.TemporaryDirectory(prefix="hiqlite-console-") as root:
        c = Cluster(binary, root)
        try:
            c.start()
            wait_for("a leader all three nodes agree on", c.leader)
            yield c
        except BaseException:
            for n in c.nodes:
                path = os.path.join(root, f"node-{n['id']}.log")
                if os.path.exists(path):
                    with open(path) as f:
                        print(f"--- node {n['id']} log (tail) ---\n" + "".join(f.readlines()[-30:]))
            raise
        finally:
            c.stop()


@pytest.fixture(scope="module")
def shots():
    d = os.environ.get("HIQLITE_CONSOLE_SCREENSHOTS", os.path.join(ROOT, "target", "console-screenshots"))
    os.makedirs(d, exist_ok=True)
    print(f"\nconsole screenshots: {d}")
    return d


@pytest.fixture(scope="module")
def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1400,900", "--force-device-scale-factor=1", "--hide-scrollbars"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # The driver from apt, given by path: Selenium must not try to download one.
    service = Service(executable_path=os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver"))
    d = webdriver.Chrome(options=opts, service=service)
    try:
        yield d
    finally:
        d.quit()


def shot(driver, shots, name):
    """Save the page as a PNG, after checking the page logged no error of its own."""
    path = os.path.join(shots, name)
    driver.save_screenshot(path)
    print(f"saved {path}")
    # Refusals (401) are expected answers the page shows; anything else is a bug in it.
    errors = [e["message"] for e in driver.get_log("browser")
              if e["level"] == "SEVERE" and "status of 401" not in e["message"]]
    assert not errors, errors


# Read in one script call: the pages re-render parts of themselves every second, so an element
# found first and read later may be gone.
def text(driver, css):
    """The visible text of the first element matching `css` ("" when there is none)."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.innerText.trim() : ''", css)


def visible(driver, css):
    """Whether the first element matching `css` is shown."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]);"
        "return !!e && e.getClientRects().length > 0 && getComputedStyle(e).visibility !== 'hidden'", css)


def sign_in(driver, user, password):
    wait = WebDriverWait(driver, DEADLINE)
    wait.until(lambda d: visible(d, "#login-user"))
    u = driver.find_element(By.ID, "login-user")
    u.clear()
    u.send_keys(user)
    p = driver.find_element(By.ID, "login-pass")
    p.clear()
    p.send_keys(password)
    driver.find_element(By.ID, "login-submit").click()


def sign_out(driver):
    driver.find_element(By.ID, "logout").click()
    WebDriverWait(driver, DEADLINE).until(lambda d: visible(d, "#login-user"))


def run_sql(driver, sql):
    """Type `sql` into the editor and run it; returns once the results are shown."""
    ed = driver.find_element(By.ID, "sql-editor")
    ed.send_keys(Keys.CONTROL, "a")
    ed.send_keys(Keys.DELETE)
    ed.send_keys(sql)
    # The click handler says "Running…" before it sends anything; done when that is gone.
    driver.find_element(By.ID, "sql-run").click()
    WebDriverWait(driver, DEADLINE).until(
        lambda d: "Running" not in text(d, "#sql-status") and d.find_element(By.ID, "sql-run").is_enabled())


@pytest.fixture(scope="module")
def console_node(cluster):
    """A follower: its console stays up when the leader is killed."""
    leader = wait_for("a leader", cluster.leader)
    return next(i for i in range(3) if cluster.nodes[i]["id"] != leader)


def test_sign_in_run_sql_and_see_rows(cluster, browser, shots, console_node):
    d = browser
    d.get(cluster.url(console_node, "/console/"))
    sign_in(d, "admin", "wrong")
    WebDriverWait(d, DEADLINE).until(lambda d: visible(d, "#login-error"))
    assert "Wrong user name or password" in text(d, "#login-error")
    d.find_element(By.ID, "login-pass").clear()
    d.find_element(By.ID, "login-user").clear()
    shot(d, shots, "01-login.png")
    sign_in(d, "admin", "admin-secret")
    WebDriverWait(d, DEADLINE).until(lambda d: visible(d, "#sql-editor"))
    assert text(d, "#user-name") == "admin"
    run_sql(d, "CREATE TABLE fruit (id INTEGER PRIMARY KEY, name TEXT NOT NULL, price REAL, note TEXT);\n"
               "CREATE INDEX fruit_name ON fruit (name);\n"
               "INSERT INTO fruit (name, price, note) VALUES ('apple', 1.25, 'crisp'), ('banana', 0.5, NULL), "
               "('cherry', 4.0, 'a; semicolon inside');\n"
               "SELECT id, name, price, note FROM fruit ORDER BY id;")
    blocks = d.find_elements(By.CSS_SELECTOR, "#sql-results .result")
    assert len(blocks) == 4, text(d, "#sql-results")
    assert "3 rows affected" in blocks[2].text
    rows = [[c.text for c in r.find_elements(By.CSS_SELECTOR, "td:not(.fill)")]
            for r in blocks[3].find_elements(By.CSS_SELECTOR, "tbody tr")]
    assert rows == [["1", "apple", "1.25", "crisp"], ["2", "banana", "0.5", "NULL"],
                    ["3", "cherry", "4", "a; semicolon inside"]]
    assert "4 statements" in text(d, "#sql-status") and "ms" in text(d, "#sql-status")
    shot(d, shots, "02-query.png")


def test_read_only_user_is_refused_a_write(cluster, browser, shots, console_node):
    d = browser
    sign_out(d)
    sign_in(d, "reader", "reader-secret")
    WebDriverWait(d, DEADLINE).until(lambda d: visible(d, "#sql-editor"))
    assert visible(d, "#user-ro"), "the read-only badge is shown"
    run_sql(d, "INSERT INTO fruit (name) VALUES ('durian');")
    err = text(d, "#sql-results .result-error")
    assert "Refused by the node" in err and "execute" in err, err
    shot(d, shots, "03-read-only-refused.png")
    run_sql(d, "SELECT count(*) AS n FROM fruit;")
    assert [c.text for c in d.find_elements(By.CSS_SELECTOR, "#sql-results tbody td:not(.fill)")] == ["3"]
    code, r = http("GET", cluster.url(console_node, "/db/query?q=SELECT+count(*)+FROM+fruit&level=linearizable"))
    assert code == 200 and r["results"][0]["values"] == [[3]], r
    sign_out(d)
    sign_in(d, "admin", "admin-secret")
    WebDriverWait(d, DEADLINE).until(lambda d: visible(d, "#sql-editor"))


def test_schema_browser(cluster, browser, shots):
    d = browser
    d.get(d.current_url.split("#")[0] + "#/schema")
    wait = WebDriverWait(d, DEADLINE)
    wait.until(lambda d: visible(d, "#schema-title") and text(d, "#schema-title") == "fruit")
    wait.until(lambda d: visible(d, "#schema-count") and text(d, "#schema-count") == "3 rows")
    detail = text(d, "#schema-detail")
    for want in ("price", "REAL", "fruit_name", "CREATE TABLE fruit"):
        assert want in detail, detail
    shot(d, shots, "04-schema.png")


def test_metrics_charts(cluster, browser, shots):
    d = browser
    d.get(d.current_url.split("#")[0] + "#/metrics")
    # Reads keep the charts moving; the series has a point a second.
    WebDriverWait(d, DEADLINE).until(lambda d: text(d, "#v-reads") not in ("", "–"))
    assert len(d.find_elements(By.CSS_SELECTOR, ".chart-card canvas")) == 4
    shot(d, shots, "05-metrics.png")


def test_cluster_page_follows_a_leader_change(cluster, browser, shots, console_node):
    d = browser
    d.get(d.current_url.split("#")[0] + "#/cluster")
    wait = WebDriverWait(d, DEADLINE)

    def roles():
        return d.execute_script(
            "const o = {}; document.querySelectorAll('#cluster-table tbody tr')"
            ".forEach((r) => { o[r.dataset.nodeId] = r.dataset.role; }); return o;")

    leader = wait_for("a leader", cluster.leader)
    if leader == cluster.nodes[console_node]["id"]:
        # Leadership moved to the console's node since the start: hand it on, keep this page.
        http("POST", cluster.url(console_node, "/leader"), {})
        old = leader
        leader = wait_for("another leader", lambda: next((l for l in [cluster.leader()] if l and l != old), None))
    wait.until(lambda d: len(roles()) == 3 and list(roles().values()).count("Leader") == 1
               and roles().get(str(leader)) == "Leader")
    assert text(d, "#cluster-leader") == f"node {leader}"
    assert all(r in ("Leader", "Follower") for r in roles().values()), roles()
    shot(d, shots, "06-cluster.png")

    cluster.kill9(leader)
    wait.until(lambda d: roles().get(str(leader)) == "Unreachable"
               and list(roles().values()).count("Leader") == 1
               and text(d, "#cluster-leader") not in ("none", f"node {leader}"))
    new = wait_for("a new leader", cluster.leader)
    assert new != leader
    assert text(d, "#cluster-leader") == f"node {new}"
    assert "Leader changed" in text(d, "#cluster-events") or "lost" in text(d, "#cluster-events")
    shot(d, shots, "07-cluster-after-leader-killed.png")
