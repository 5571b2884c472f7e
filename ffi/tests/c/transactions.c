/* Interactive transactions from C on a 3-node cluster in one process: reads see the
 * transaction's own writes, rollback, savepoints, a failed statement leaving the transaction
 * open, RETURNING, a commit visible on every node, other writers waiting (SQLITE_BUSY), remote
 * clients, closing a database with a transaction open, and misuse returning error codes.
 *
 * usage: transactions DATA_DIR */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <time.h>

#include "check.h"

/* Generous timings: the test also runs under valgrind. A transaction is never rolled back for
 * being idle here (idle timeout of 10 minutes); the busy timeout is what a plain write waits
 * for an open transaction before SQLITE_BUSY, which one check relies on (the transaction it
 * waits for stays open until that write has failed, whatever the speed of the machine). */
#define NODE_CONFIG                                                                                \
    "raft_addr = \"127.0.0.1:0\"\napi_addr = \"127.0.0.1:0\"\nsecret = \"c-tx-secret\"\n"         \
    "heartbeat_ms = 200\nelection_timeout_min_ms = 4000\nelection_timeout_max_ms = 8000\n"        \
    "request_timeout_ms = 300000\nbusy_timeout_ms = 2000\n"                                       \
    "transaction_idle_timeout_ms = 600000\n"

#define SQLITE_BUSY 5
#define SQLITE_CONSTRAINT_UNIQUE 2067

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static hiqlite_db *open_node(const char *dir, int id, const char *join) {
    char cfg[2048];
    snprintf(cfg, sizeof cfg, "node_id = %d\ndata_dir = \"%s/node-%d\"\n%s%s%s%s" NODE_CONFIG, id,
             dir, id, join ? "join = [\"" : "", join ? join : "", join ? "\"]" : "",
             join ? "\n" : "");
    hiqlite_db *db = NULL;
    OK(NULL, hiqlite_open_node(cfg, &db));
    CHECK(db != NULL);
    return db;
}

/* Wait for conditions, never for durations: up to 5 minutes of polling. */
static void wait_for_voters(hiqlite_db *db) {
    for (int i = 0; i < 3000; i++) {
        char *status = NULL;
        OK(db, hiqlite_status_json(db, &status));
        int done = strstr(status, "\"voters\":[1,2,3]") != NULL;
        hiqlite_free(status);
        if (done)
            return;
        sleep_ms(100);
    }
    FAIL("the cluster never had three voters");
}

static uint64_t agreed_leader(hiqlite_db *nodes[3]) {
    for (int attempt = 0; attempt < 3000; attempt++) {
        uint64_t leader_id = 0;
        int leaders = 0, agreed = 1;
        for (int i = 0; i < 3; i++) {
            uint64_t l = 0;
            OK(nodes[i], hiqlite_wait_for_leader(nodes[i], 120000, &l));
            if (leader_id == 0)
                leader_id = l;
            agreed &= l == leader_id;
            int is = 0;
            OK(nodes[i], hiqlite_is_leader(nodes[i], &is));
            leaders += is;
        }
        if (agreed && leaders == 1)
            return leader_id;
        sleep_ms(100);
    }
    FAIL("the nodes never agreed on exactly one leader");
}

/* A linearizable single integer read outside any transaction. */
static int64_t read_int(hiqlite_db *db, const char *sql) {
    hiqlite_stmt *st = NULL;
    OK(db, hiqlite_prepare_flags(db, sql, HIQLITE_PREPARE_READ, &st));
    OK(db, hiqlite_stmt_set_consistency(st, HIQLITE_CONSISTENCY_LINEARIZABLE));
    EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(st));
    int64_t n = hiqlite_column_int64(st, 0);
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(st));
    OK(db, hiqlite_finalize(st));
    return n;
}

/* A single integer read inside a transaction. */
static int64_t tx_int(hiqlite_db *db, hiqlite_tx *tx, const char *sql) {
    hiqlite_stmt *st = NULL;
    OK(db, hiqlite_tx_prepare(tx, sql, &st));
    EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(st));
    int64_t n = hiqlite_column_int64(st, 0);
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(st));
    OK(db, hiqlite_finalize(st));
    return n;
}

static void all_nodes_count(hiqlite_db *nodes[3], const char *sql, int64_t want) {
    for (int i = 0; i < 3; i++) {
        int64_t got = read_int(nodes[i], sql);
        if (got != want)
            FAIL("node %d: %s = %lld, want %lld", i + 1, sql, (long long)got, (long long)want);
    }
}

/* Begun on a follower (the transaction runs on the leader, reached over the peer protocol):
 * prepared statements with parameters, hiqlite_tx_exec, reads seeing the transaction's writes
 * while no one else does, and a commit every node then shows. */
static void read_own_writes(hiqlite_db *nodes[3], hiqlite_db *via, hiqlite_db *other) {
    hiqlite_tx *tx = NULL;
    OK(via, hiqlite_begin(via, &tx));
    CHECK(tx != NULL);

    hiqlite_stmt *ins = NULL;
    OK(via, hiqlite_tx_prepare(tx, "INSERT INTO t (v) VALUES (?)", &ins));
    OK(via, hiqlite_bind_text(ins, 1, "a", -1));
    EXPECT_RC(via, HIQLITE_DONE, hiqlite_step(ins));
    CHECK(hiqlite_stmt_changes(ins) == 1);
    CHECK(hiqlite_stmt_last_insert_id(ins) == 1);
    /* Reused with new bindings, as any statement. */
    OK(via, hiqlite_reset(ins));
    OK(via, hiqlite_bind_text(ins, 1, "b", -1));
    EXPECT_RC(via, HIQLITE_DONE, hiqlite_step(ins));
    CHECK(hiqlite_stmt_last_insert_id(ins) == 2);
    OK(via, hiqlite_finalize(ins));

    int64_t changes = -1, id = -1;
    OK(via, hiqlite_tx_exec(tx, "UPDATE t SET v = v || '!' WHERE id <= 2", &changes, &id));
    CHECK(changes == 2);
    OK(via, hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('c')", &changes, &id));
    CHECK(changes == 1 && id == 3);
    OK(via, hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('d')", NULL, NULL));

    /* Reads inside see every write, rows through the usual accessors. */
    hiqlite_stmt *sel = NULL;
    OK(via, hiqlite_tx_prepare(tx, "SELECT id, v FROM t WHERE id <= :max ORDER BY id", &sel));
    OK(via, hiqlite_bind_int64_by_name(sel, ":max", 3));
    const char *want[] = {"a!", "b!", "c"};
    for (int i = 0; i < 3; i++) {
        EXPECT_RC(via, HIQLITE_ROW, hiqlite_step(sel));
        CHECK(hiqlite_column_count(sel) == 2);
        CHECK_STR(hiqlite_column_name(sel, 1), "v");
        CHECK(hiqlite_column_int64(sel, 0) == i + 1);
        CHECK_STR(hiqlite_column_text(sel, 1), want[i]);
    }
    EXPECT_RC(via, HIQLITE_DONE, hiqlite_step(sel));
    OK(via, hiqlite_finalize(sel));
    CHECK(tx_int(via, tx, "SELECT count(*) FROM t") == 4);

    /* Nobody else sees them before the commit (reads do not wait for the transaction). */
    CHECK(read_int(other, "SELECT count(*) FROM t") == 0);

    /* RETURNING rows inside the transaction, with the counts. */
    hiqlite_stmt *ret = NULL;
    OK(via, hiqlite_tx_prepare(tx, "DELETE FROM t WHERE v = 'd' RETURNING id, v", &ret));
    EXPECT_RC(via, HIQLITE_ROW, hiqlite_step(ret));
    CHECK(hiqlite_column_int64(ret, 0) == 4);
    CHECK_STR(hiqlite_column_text(ret, 1), "d");
    EXPECT_RC(via, HIQLITE_DONE, hiqlite_step(ret));
    CHECK(hiqlite_stmt_changes(ret) == 1);
    OK(via, hiqlite_finalize(ret));

    OK(via, hiqlite_commit(tx));
    all_nodes_count(nodes, "SELECT count(*) FROM t", 3);
    all_nodes_count(nodes, "SELECT count(*) FROM t WHERE v IN ('a!', 'b!', 'c')", 3);
}

static void rollback(hiqlite_db *nodes[3], hiqlite_db *db) {
    hiqlite_tx *tx = NULL;
    OK(db, hiqlite_begin(db, &tx));
    OK(db, hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('gone')", NULL, NULL));
    OK(db, hiqlite_tx_exec(tx, "DELETE FROM t WHERE v = 'a!'", NULL, NULL));
    CHECK(tx_int(db, tx, "SELECT count(*) FROM t WHERE v = 'gone'") == 1);
    CHECK(tx_int(db, tx, "SELECT count(*) FROM t WHERE v = 'a!'") == 0);
    OK(db, hiqlite_rollback(tx));
    all_nodes_count(nodes, "SELECT count(*) FROM t WHERE v = 'gone'", 0);
    all_nodes_count(nodes, "SELECT count(*) FROM t WHERE v = 'a!'", 1);
    /* The database is free again: a plain write goes through. */
    OK(db, hiqlite_exec(db, "INSERT INTO t (v) VALUES ('after rollback')", NULL, NULL));
}

static void savepoints(hiqlite_db *nodes[3], hiqlite_db *db) {
    hiqlite_tx *tx = NULL;
    OK(db, hiqlite_begin(db, &tx));
    OK(db, hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('sp-kept')", NULL, NULL));
    OK(db, hiqlite_tx_exec(tx, "SAVEPOINT s1", NULL, NULL));
    OK(db, hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('sp-undone')", NULL, NULL));
    /* Savepoints nest; ROLLBACK TO undoes back to one and keeps it. */
    hiqlite_stmt *sp = NULL;
    OK(db, hiqlite_tx_prepare(tx, "SAVEPOINT s2", &sp));
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(sp));
    OK(db, hiqlite_finalize(sp));
    OK(db, hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('sp-undone-2')", NULL, NULL));
    CHECK(tx_int(db, tx, "SELECT count(*) FROM t WHERE v LIKE 'sp-%'") == 3);
    OK(db, hiqlite_tx_exec(tx, "ROLLBACK TO s1", NULL, NULL));
    CHECK(tx_int(db, tx, "SELECT count(*) FROM t WHERE v LIKE 'sp-%'") == 1);
    OK(db, hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('sp-after')", NULL, NULL));
    OK(db, hiqlite_tx_exec(tx, "RELEASE s1", NULL, NULL));
    /* s2 went with the ROLLBACK TO: SQLite's own error and message. */
    EXPECT_RC(db, 1, hiqlite_tx_exec(tx, "RELEASE s2", NULL, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(db), "no such savepoint: s2");
    OK(db, hiqlite_commit(tx));
    all_nodes_count(nodes, "SELECT count(*) FROM t WHERE v LIKE 'sp-%'", 2);
    all_nodes_count(nodes, "SELECT count(*) FROM t WHERE v IN ('sp-kept', 'sp-after')", 2);
}

/* A failed statement returns SQLite's code and message and leaves the transaction open. */
static void error_inside(hiqlite_db *nodes[3], hiqlite_db *db) {
    hiqlite_tx *tx = NULL;
    OK(db, hiqlite_begin(db, &tx));
    OK(db, hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('err-1')", NULL, NULL));
    int64_t changes = -1, id = -1;
    EXPECT_RC(db, SQLITE_CONSTRAINT_UNIQUE,
              hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('err-1')", &changes, &id));
    CHECK(changes == 0 && id == 0);
    CHECK(hiqlite_errcode(db) == SQLITE_CONSTRAINT_UNIQUE);
    CHECK_CONTAINS(hiqlite_errmsg(db), "UNIQUE constraint failed: t.v");
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "UNIQUE constraint failed: t.v");

    hiqlite_stmt *st = NULL;
    OK(db, hiqlite_tx_prepare(tx, "INSERT INTO t (v) VALUES (?)", &st));
    OK(db, hiqlite_bind_text(st, 1, "err-1", -1));
    EXPECT_RC(db, SQLITE_CONSTRAINT_UNIQUE, hiqlite_step(st));
    CHECK_CONTAINS(hiqlite_stmt_errmsg(st), "UNIQUE constraint failed: t.v");
    /* As any statement: it keeps its error until it is reset. */
    EXPECT_RC(db, SQLITE_CONSTRAINT_UNIQUE, hiqlite_step(st));
    OK(db, hiqlite_reset(st));
    OK(db, hiqlite_bind_text(st, 1, "err-2", -1));
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(st));
    OK(db, hiqlite_finalize(st));

    EXPECT_RC(db, 1, hiqlite_tx_exec(tx, "SELECT * FROM nowhere", NULL, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(db), "no such table: nowhere");
    CHECK(tx_int(db, tx, "SELECT count(*) FROM t WHERE v LIKE 'err-%'") == 2);
    OK(db, hiqlite_commit(tx));
    CHECK_STR(hiqlite_errmsg(db), "not an error");
    all_nodes_count(nodes, "SELECT count(*) FROM t WHERE v LIKE 'err-%'", 2);
}

/* While a transaction is open, a plain write through another node waits for it, up to the busy
 * timeout, then fails with SQLITE_BUSY; nothing of it is applied. */
static void writers_wait(hiqlite_db *nodes[3], hiqlite_db *a, hiqlite_db *b) {
    hiqlite_tx *tx = NULL;
    OK(a, hiqlite_begin(a, &tx));
    OK(a, hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('busy-tx')", NULL, NULL));
    int rc = hiqlite_exec(b, "INSERT INTO t (v) VALUES ('busy-plain')", NULL, NULL);
    if (rc != SQLITE_BUSY)
        FAIL("a write during a transaction returned %d, want SQLITE_BUSY: %s", rc, hiqlite_errmsg(b));
    CHECK_CONTAINS(hiqlite_errmsg(b), "database is locked");
    OK(a, hiqlite_commit(tx));
    OK(b, hiqlite_exec(b, "INSERT INTO t (v) VALUES ('busy-plain')", NULL, NULL));
    all_nodes_count(nodes, "SELECT count(*) FROM t WHERE v LIKE 'busy-%'", 2);
}

static void misuse(hiqlite_db *db) {
    hiqlite_tx *tx = (hiqlite_tx *)&tx; /* must be overwritten with NULL on failure */
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_begin(NULL, &tx));
    CHECK(tx == NULL);
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "database handle is NULL");
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_begin(db, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(db), "tx out-pointer is NULL");
    hiqlite_stmt *st = (hiqlite_stmt *)&st;
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_tx_prepare(NULL, "SELECT 1", &st));
    CHECK(st == NULL);
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "transaction handle is NULL");
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_tx_exec(NULL, "SELECT 1", NULL, NULL));
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_commit(NULL));
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "transaction handle is NULL");
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_rollback(NULL));

    OK(db, hiqlite_begin(db, &tx));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_tx_prepare(tx, NULL, &st));
    CHECK_CONTAINS(hiqlite_errmsg(db), "sql is NULL");
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_tx_prepare(tx, "SELECT 1", NULL));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_tx_prepare(tx, "  -- nothing\n", &st));
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_tx_prepare(tx, "SELECT '\xff'", &st));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_tx_exec(tx, NULL, NULL, NULL));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_tx_exec(tx, "", NULL, NULL));
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_tx_exec(tx, "SELECT '\xc3\x28'", NULL, NULL));

    /* A statement of the transaction cannot go into a one-shot transaction or batch. */
    OK(db, hiqlite_tx_prepare(tx, "INSERT INTO t (v) VALUES ('misuse')", &st));
    hiqlite_stmt *list[] = {st};
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_transaction(db, list, 1));
    CHECK_CONTAINS(hiqlite_errmsg(db), "interactive transaction");
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_batch(db, list, 1, NULL));

    /* After the transaction ends its statements are only good for finalize; rows already read
     * stay readable. */
    hiqlite_stmt *sel = NULL;
    OK(db, hiqlite_tx_prepare(tx, "SELECT 42", &sel));
    EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(sel));
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(st));
    OK(db, hiqlite_rollback(tx));
    CHECK(hiqlite_column_int64(sel, 0) == 42);
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(sel));
    OK(db, hiqlite_reset(sel));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_step(sel));
    CHECK_CONTAINS(hiqlite_errmsg(db), "transaction has ended (rolled back)");
    CHECK_CONTAINS(hiqlite_stmt_errmsg(sel), "only be finalized");
    OK(db, hiqlite_finalize(sel));
    OK(db, hiqlite_reset(st));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_step(st));
    OK(db, hiqlite_finalize(st));
    CHECK(read_int(db, "SELECT count(*) FROM t WHERE v = 'misuse'") == 0);

    /* The same after a commit. */
    OK(db, hiqlite_begin(db, &tx));
    OK(db, hiqlite_tx_prepare(tx, "INSERT INTO t (v) VALUES ('committed-once')", &st));
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(st));
    OK(db, hiqlite_commit(tx));
    OK(db, hiqlite_reset(st));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_step(st));
    CHECK_CONTAINS(hiqlite_errmsg(db), "transaction has ended (committed)");
    OK(db, hiqlite_finalize(st));
    CHECK(read_int(db, "SELECT count(*) FROM t WHERE v = 'committed-once'") == 1);

    /* A transaction that was never used commits as nothing. */
    OK(db, hiqlite_begin(db, &tx));
    OK(db, hiqlite_commit(tx));
}

/* Remote clients: the same calls over HTTP; closing a client with a transaction open rolls it
 * back (a plain write then goes through at once instead of waiting for the idle timeout). */
static void remote(hiqlite_db *nodes[3]) {
    char urls[512] = "";
    for (int i = 0; i < 3; i++) {
        char *api = NULL;
        OK(nodes[i], hiqlite_node_info(nodes[i], NULL, NULL, &api));
        strcat(urls, i ? ",http://" : "http://");
        strcat(urls, api);
        hiqlite_free(api);
    }
    hiqlite_db *rc = NULL;
    OK(NULL, hiqlite_open_remote_with(urls, "timeout_ms = 300000", &rc));
    hiqlite_tx *tx = NULL;
    OK(rc, hiqlite_begin(rc, &tx));
    int64_t changes = -1, id = -1;
    OK(rc, hiqlite_tx_exec(tx, "INSERT INTO t (id, v) VALUES (100, 'remote-1')", &changes, &id));
    CHECK(changes == 1 && id == 100);
    hiqlite_stmt *st = NULL;
    OK(rc, hiqlite_tx_prepare(tx, "INSERT INTO t (v) VALUES (?)", &st));
    OK(rc, hiqlite_bind_text(st, 1, "remote-2", -1));
    EXPECT_RC(rc, HIQLITE_DONE, hiqlite_step(st));
    CHECK(hiqlite_stmt_changes(st) == 1 && hiqlite_stmt_last_insert_id(st) == 101);
    OK(rc, hiqlite_finalize(st));
    /* Over HTTP a statement answers rows or counts: RETURNING gives its rows. */
    OK(rc, hiqlite_tx_prepare(tx, "UPDATE t SET v = v || '' WHERE id = ? RETURNING id", &st));
    OK(rc, hiqlite_bind_int64(st, 1, 101));
    EXPECT_RC(rc, HIQLITE_ROW, hiqlite_step(st));
    CHECK(hiqlite_column_int64(st, 0) == 101);
    EXPECT_RC(rc, HIQLITE_DONE, hiqlite_step(st));
    OK(rc, hiqlite_finalize(st));
    CHECK(tx_int(rc, tx, "SELECT count(*) FROM t WHERE v LIKE 'remote-%'") == 2);
    EXPECT_RC(rc, SQLITE_CONSTRAINT_UNIQUE,
              hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('remote-1')", NULL, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(rc), "UNIQUE constraint failed: t.v");
    OK(rc, hiqlite_commit(tx));
    all_nodes_count(nodes, "SELECT count(*) FROM t WHERE v LIKE 'remote-%'", 2);

    /* Close with a transaction open, then roll it back: OK, the handle is released. */
    OK(rc, hiqlite_begin(rc, &tx));
    OK(rc, hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('remote-closed')", NULL, NULL));
    OK(rc, hiqlite_tx_prepare(tx, "SELECT count(*) FROM t", &st));
    OK(NULL, hiqlite_close(rc));
    EXPECT_RC(NULL, HIQLITE_SHUTDOWN, hiqlite_tx_exec(tx, "SELECT 1", NULL, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "rolled back");
    EXPECT_RC(NULL, HIQLITE_SHUTDOWN, hiqlite_step(st));
    OK(NULL, hiqlite_finalize(st));
    OK(NULL, hiqlite_rollback(tx));
    /* The leader's write gate is free again: this write does not wait for the idle timeout
     * (it would fail with SQLITE_BUSY after the busy timeout if the transaction were open). */
    OK(nodes[0], hiqlite_exec(nodes[0], "INSERT INTO t (v) VALUES ('remote-after-close')", NULL, NULL));

    /* Close with a transaction open, then commit: HIQLITE_SHUTDOWN, nothing applied. */
    OK(NULL, hiqlite_open_remote_with(urls, "timeout_ms = 300000", &rc));
    OK(rc, hiqlite_begin(rc, &tx));
    OK(rc, hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('remote-closed')", NULL, NULL));
    OK(NULL, hiqlite_close(rc));
    EXPECT_RC(NULL, HIQLITE_SHUTDOWN, hiqlite_commit(tx));
    OK(nodes[1], hiqlite_exec(nodes[1], "INSERT INTO t (v) VALUES ('remote-after-close-2')", NULL, NULL));
    all_nodes_count(nodes, "SELECT count(*) FROM t WHERE v = 'remote-closed'", 0);
    all_nodes_count(nodes, "SELECT count(*) FROM t WHERE v LIKE 'remote-after-close%'", 2);
}

int main(int argc, char **argv) {
    if (argc != 2)
        FAIL("usage: %s DATA_DIR", argv[0]);
    const char *dir = argv[1];
    hiqlite_db *nodes[3];
    nodes[0] = open_node(dir, 1, NULL);
    OK(nodes[0], hiqlite_wait_for_leader(nodes[0], 120000, NULL));
    char *raft = NULL;
    OK(nodes[0], hiqlite_node_info(nodes[0], NULL, &raft, NULL));
    nodes[1] = open_node(dir, 2, raft);
    nodes[2] = open_node(dir, 3, raft);
    hiqlite_free(raft);
    wait_for_voters(nodes[0]);
    uint64_t leader_id = agreed_leader(nodes);
    hiqlite_db *leader = nodes[leader_id - 1];
    hiqlite_db *follower = nodes[leader_id % 3];
    hiqlite_db *other_follower = nodes[(leader_id + 1) % 3];

    OK(leader, hiqlite_exec(leader, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)", NULL,
                            NULL));
    read_own_writes(nodes, follower, leader);
    rollback(nodes, leader);
    savepoints(nodes, other_follower);
    error_inside(nodes, follower);
    writers_wait(nodes, follower, other_follower);
    misuse(leader);
    remote(nodes);

    /* Closing embedded nodes with a transaction open (begun on a follower, held by the leader):
     * the close rolls it back first; the handle is then only released. */
    hiqlite_tx *tx = NULL;
    OK(follower, hiqlite_begin(follower, &tx));
    OK(follower, hiqlite_tx_exec(tx, "INSERT INTO t (v) VALUES ('never')", NULL, NULL));
    /* The follower first: its close rolls the transaction back on the leader, still running. */
    OK(NULL, hiqlite_close(follower));
    EXPECT_RC(NULL, HIQLITE_SHUTDOWN, hiqlite_commit(tx));
    CHECK(read_int(leader, "SELECT count(*) FROM t WHERE v = 'never'") == 0);
    /* ...and the leader is free for writes again. */
    OK(leader, hiqlite_exec(leader, "INSERT INTO t (v) VALUES ('last')", NULL, NULL));
    OK(NULL, hiqlite_close(other_follower));
    OK(NULL, hiqlite_close(leader));
    printf("transactions: ok\n");
    return 0;
}
