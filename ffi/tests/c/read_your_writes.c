/* Read-your-writes from C on a 3-node cluster in one process: a write's log index
 * (hiqlite_stmt_log_index, hiqlite_last_write_index) read with hiqlite_stmt_set_min_index on
 * another node; read-your-writes handles (hiqlite_open_read_your_writes on a follower, a remote
 * client with `read_your_writes = true`) whose local reads always see their own writes,
 * transactions included; NULL pointers and bad combinations answered with clear errors.
 *
 * usage: read_your_writes DATA_DIR */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <time.h>

#include "check.h"

#define TIMINGS                                                                                    \
    "heartbeat_ms = 200\nelection_timeout_min_ms = 4000\nelection_timeout_max_ms = 8000\n"        \
    "request_timeout_ms = 60000\n"

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static hiqlite_db *open_node(const char *dir, int id, const char *join) {
    char cfg[1024];
    char joins[300] = "";
    if (join != NULL)
        snprintf(joins, sizeof joins, "join = [\"%s\"]\n", join);
    snprintf(cfg, sizeof cfg,
             "node_id = %d\ndata_dir = \"%s/node-%d\"\nraft_addr = \"127.0.0.1:0\"\n"
             "api_addr = \"127.0.0.1:0\"\nsecret = \"c-test-secret\"\n%s" TIMINGS,
             id, dir, id, joins);
    hiqlite_db *db = NULL;
    OK(NULL, hiqlite_open_node(cfg, &db));
    CHECK(db != NULL);
    return db;
}

/* Wait (up to 5 minutes: valgrind is slow) until the node reports three voters. */
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

/* `SELECT count(*) FROM t WHERE id = ?` on `db`, at `min_index` (0: none) and local. */
static int64_t count_id(hiqlite_db *db, int64_t id, uint64_t min_index) {
    hiqlite_stmt *st = NULL;
    OK(db, hiqlite_prepare(db, "SELECT count(*) FROM t WHERE id = ?", &st));
    OK(db, hiqlite_stmt_set_consistency(st, HIQLITE_CONSISTENCY_LOCAL));
    OK(db, hiqlite_stmt_set_min_index(st, min_index));
    OK(db, hiqlite_bind_int64(st, 1, id));
    EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(st));
    int64_t n = hiqlite_column_int64(st, 0);
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(st));
    CHECK(hiqlite_stmt_log_index(st) == 0); /* a read has none */
    OK(db, hiqlite_finalize(st));
    return n;
}

static uint64_t last_index(hiqlite_db *db) {
    uint64_t i = UINT64_MAX;
    OK(db, hiqlite_last_write_index(db, &i));
    CHECK(i != UINT64_MAX);
    return i;
}

/* Writes through `w`, each read at its index on `r`. */
static void read_at_index(hiqlite_db *w, hiqlite_db *r) {
    hiqlite_stmt *ins = NULL;
    OK(w, hiqlite_prepare(w, "INSERT INTO t (id) VALUES (?)", &ins));
    CHECK(hiqlite_stmt_log_index(ins) == 0); /* not run yet */
    uint64_t prev = 0;
    for (int64_t i = 1; i <= 50; i++) {
        OK(w, hiqlite_bind_int64(ins, 1, i));
        EXPECT_RC(w, HIQLITE_DONE, hiqlite_step(ins));
        uint64_t at = hiqlite_stmt_log_index(ins);
        CHECK(at > prev);
        prev = at;
        CHECK(last_index(w) >= at);
        if (count_id(r, i, at) != 1)
            FAIL("write %lld at index %llu not seen at that index", (long long)i, (unsigned long long)at);
        OK(w, hiqlite_reset(ins));
    }
    OK(w, hiqlite_finalize(ins));
}

/* Writes through the read-your-writes handle `s` (plain, prepared, in a transaction), each
 * followed by a local read on `s` itself. */
static void session_round_trips(hiqlite_db *s, int64_t base) {
    uint64_t last = last_index(s);
    for (int64_t i = base + 1; i <= base + 30; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t (id) VALUES (%lld)", (long long)i);
        if (i % 3 == 0) {
            OK(s, hiqlite_exec(s, sql, NULL, NULL));
        } else if (i % 3 == 1) {
            hiqlite_stmt *st = NULL;
            OK(s, hiqlite_prepare(s, sql, &st));
            EXPECT_RC(s, HIQLITE_DONE, hiqlite_step(st));
            CHECK(hiqlite_stmt_log_index(st) > 0);
            OK(s, hiqlite_finalize(st));
        } else {
            /* The commit tells no index: the next local read is linearizable. */
            hiqlite_tx *tx = NULL;
            OK(s, hiqlite_begin(s, &tx));
            hiqlite_stmt *st = NULL;
            OK(s, hiqlite_tx_prepare(tx, sql, &st));
            EXPECT_RC(s, HIQLITE_DONE, hiqlite_step(st));
            CHECK(hiqlite_stmt_log_index(st) == 0); /* inside the transaction */
            OK(s, hiqlite_finalize(st));
            OK(s, hiqlite_commit(tx));
        }
        if (count_id(s, i, 0) != 1)
            FAIL("write %lld not seen by its read-your-writes handle", (long long)i);
        uint64_t now = last_index(s);
        CHECK(now >= last);
        last = now;
    }
    CHECK(last > 0);
}

static void misuse(hiqlite_db *db) {
    uint64_t i = 7;
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_last_write_index(NULL, &i));
    CHECK(i == 7);
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_last_write_index(db, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(db), "NULL");
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_stmt_set_min_index(NULL, 1));
    CHECK(hiqlite_stmt_log_index(NULL) == 0);
    hiqlite_db *s = (hiqlite_db *)&i; /* not NULL: must be overwritten */
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_open_read_your_writes(NULL, &s));
    CHECK(s == NULL);
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_open_read_your_writes(db, NULL));
    /* A minimum index and the query cache do not go together. */
    hiqlite_stmt *st = NULL;
    OK(db, hiqlite_prepare(db, "SELECT count(*) FROM t", &st));
    OK(db, hiqlite_stmt_set_min_index(st, 1));
    OK(db, hiqlite_stmt_set_cache(st, 1, 0));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_step(st));
    CHECK_CONTAINS(hiqlite_stmt_errmsg(st), "query cache");
    OK(db, hiqlite_reset(st));
    OK(db, hiqlite_stmt_set_cache(st, 0, 0));
    EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(st));
    OK(db, hiqlite_finalize(st));
    /* A bad remote option value is a configuration error. */
    hiqlite_db *r = NULL;
    EXPECT_RC(NULL, HIQLITE_CONFIG,
              hiqlite_open_remote_with("http://127.0.0.1:1", "read_your_writes = \"yes\"", &r));
    CHECK(r == NULL);
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "read_your_writes");
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

    uint64_t before = 1;
    OK(nodes[0], hiqlite_last_write_index(nodes[0], &before));
    CHECK(before == 0);
    OK(nodes[0], hiqlite_exec(nodes[0], "CREATE TABLE t (id INTEGER PRIMARY KEY)", NULL, NULL));
    CHECK(last_index(nodes[0]) > 0);

    read_at_index(nodes[0], nodes[1]);

    /* A read-your-writes handle on a follower (any node not leading now). */
    hiqlite_db *follower = NULL;
    for (int i = 0; i < 3 && follower == NULL; i++) {
        int is = 0;
        OK(nodes[i], hiqlite_is_leader(nodes[i], &is));
        if (!is)
            follower = nodes[i];
    }
    CHECK(follower != NULL);
    hiqlite_db *session = NULL;
    OK(follower, hiqlite_open_read_your_writes(follower, &session));
    CHECK(session != NULL && session != follower);
    session_round_trips(session, 1000);
    OK(NULL, hiqlite_close(session));
    /* The node is still running: the follower's handle owns it. */
    CHECK(count_id(follower, 1001, 0) <= 1);

    /* A remote client in read-your-writes mode, on a follower's API. */
    char *api = NULL;
    OK(follower, hiqlite_node_info(follower, NULL, NULL, &api));
    char url[300];
    snprintf(url, sizeof url, "http://%s", api);
    hiqlite_free(api);
    hiqlite_db *remote = NULL;
    OK(NULL, hiqlite_open_remote_with(
                 url, "{\"consistency\": \"local\", \"read_your_writes\": true, \"timeout_ms\": 300000}",
                 &remote));
    CHECK(last_index(remote) == 0);
    session_round_trips(remote, 2000);
    OK(NULL, hiqlite_close(remote));

    misuse(nodes[2]);

    for (int i = 2; i >= 0; i--)
        OK(NULL, hiqlite_close(nodes[i]));
    printf("read_your_writes: ok\n");
    return 0;
}
