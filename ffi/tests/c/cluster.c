/* A 3-node cluster in one process, driven from C: nodes configured three ways (TOML, JSON, the
 * key/value builder), writes on one node, reads on all, every value type, prepared statements
 * reused, transactions and batches, errors with codes and messages, JSON, the query cache, and
 * remote clients talking to the nodes' HTTP APIs.
 *
 * usage: cluster DATA_DIR */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <time.h>

#include "check.h"

/* Generous Raft timings: the test also runs under valgrind, which slows everything down. */
#define TIMINGS                                                                                    \
    "heartbeat_ms = 200\nelection_timeout_min_ms = 4000\nelection_timeout_max_ms = 8000\n"        \
    "request_timeout_ms = 60000\n"

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static hiqlite_db *node1(const char *dir) {
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "node_id = 1\ndata_dir = \"%s/node-1\"\nraft_addr = \"127.0.0.1:0\"\n"
             "api_addr = \"127.0.0.1:0\"\nsecret = \"c-test-secret\"\n" TIMINGS,
             dir);
    hiqlite_db *db = NULL;
    OK(NULL, hiqlite_open_node(cfg, &db));
    CHECK(db != NULL);
    return db;
}

static hiqlite_db *node2(const char *dir, const char *join) {
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"node_id\": 2, \"data_dir\": \"%s/node-2\", \"raft_addr\": \"127.0.0.1:0\","
             " \"api_addr\": \"127.0.0.1:0\", \"join\": [\"%s\"], \"secret\": \"c-test-secret\","
             " \"heartbeat_ms\": 200, \"election_timeout_min_ms\": 4000,"
             " \"election_timeout_max_ms\": 8000, \"request_timeout_ms\": 60000}",
             dir, join);
    hiqlite_db *db = NULL;
    OK(NULL, hiqlite_open_node(cfg, &db));
    return db;
}

static hiqlite_db *node3(const char *dir, const char *join) {
    char data[512];
    snprintf(data, sizeof data, "%s/node-3", dir);
    hiqlite_config *cfg = hiqlite_config_new();
    CHECK(cfg != NULL);
    OK(NULL, hiqlite_config_set(cfg, "node_id", "3"));
    OK(NULL, hiqlite_config_set(cfg, "data_dir", data));
    OK(NULL, hiqlite_config_set(cfg, "raft_addr", "127.0.0.1:0"));
    OK(NULL, hiqlite_config_set(cfg, "api_addr", "127.0.0.1:0"));
    OK(NULL, hiqlite_config_set(cfg, "join", join));
    OK(NULL, hiqlite_config_set(cfg, "secret", "c-test-secret"));
    OK(NULL, hiqlite_config_set(cfg, "heartbeat_ms", "200"));
    OK(NULL, hiqlite_config_set(cfg, "election_timeout_min_ms", "4000"));
    OK(NULL, hiqlite_config_set(cfg, "election_timeout_max_ms", "8000"));
    OK(NULL, hiqlite_config_set(cfg, "request_timeout_ms", "60000"));
    OK(NULL, hiqlite_config_set(cfg, "cache.enabled", "true"));
    /* The default lifetime of cached results (used by json_and_cache): long enough that a
     * slow run cannot see an entry expire between two reads that expect a hit. */
    OK(NULL, hiqlite_config_set(cfg, "cache.ttl_ms", "3600000"));
    hiqlite_db *db = NULL;
    OK(NULL, hiqlite_open_node_config(cfg, &db));
    hiqlite_config_free(cfg);
    return db;
}

/* Wait (without a deadline that could fail a slow but correct run before 5 minutes) until the
 * node reports three voters. */
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

/* Wait until all three nodes name the same leader and exactly one of them says it is the
 * leader; return its id. The nodes' views are read one after the other, so an election between
 * two reads (a loaded machine can delay heartbeats) makes them disagree for a moment: look
 * again rather than fail, for up to 5 minutes. */
static uint64_t agreed_leader(hiqlite_db *nodes[3]) {
    for (int attempt = 0; attempt < 3000; attempt++) {
        uint64_t leader_id = 0;
        int leaders = 0, agreed = 1;
        for (int i = 0; i < 3; i++) {
            uint64_t l = 0;
            char *api = NULL;
            OK(nodes[i], hiqlite_wait_for_leader(nodes[i], 120000, &l));
            OK(nodes[i], hiqlite_leader(nodes[i], &l, &api));
            CHECK(l >= 1 && l <= 3);
            CHECK(api != NULL && strchr(api, ':') != NULL);
            hiqlite_free(api);
            if (leader_id == 0)
                leader_id = l;
            agreed &= l == leader_id;
            int is = -1;
            OK(nodes[i], hiqlite_is_leader(nodes[i], &is));
            CHECK(is == 0 || is == 1);
            leaders += is;
        }
        if (agreed && leaders == 1)
            return leader_id;
        sleep_ms(100);
    }
    FAIL("the nodes never agreed on exactly one leader");
}

static int64_t count_rows(hiqlite_db *db, const char *table) {
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    hiqlite_stmt *st = NULL;
    OK(db, hiqlite_prepare(db, sql, &st));
    OK(db, hiqlite_stmt_set_consistency(st, HIQLITE_CONSISTENCY_LINEARIZABLE));
    EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(st));
    int64_t n = hiqlite_column_int64(st, 0);
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(st));
    OK(db, hiqlite_finalize(st));
    return n;
}

static const unsigned char BLOB[] = {0x00, 0xff, 0x10, 0x00, 0x7f};
static const char TEXT[] = "h\xc3\xa9llo \xe2\x9c\x93"; /* "héllo ✓" */
static const char TEXT_NUL[] = {'a', '\0', 'b'};      /* text with a NUL inside, 3 bytes */

/* Every value type, written once, must read back identically on `db`. */
static void check_values(hiqlite_db *db) {
    hiqlite_stmt *st = NULL;
    OK(db, hiqlite_prepare(db,
                           "SELECT i_min, i_max, r, t, t_nul, b, b_empty, n FROM vals WHERE id = 1",
                           &st));
    OK(db, hiqlite_stmt_set_consistency(st, HIQLITE_CONSISTENCY_LINEARIZABLE));
    EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(st));
    CHECK(hiqlite_column_count(st) == 8);
    CHECK_STR(hiqlite_column_name(st, 0), "i_min");
    CHECK_STR(hiqlite_column_name(st, 7), "n");
    CHECK(hiqlite_column_name(st, 8) == NULL);

    CHECK(hiqlite_column_type(st, 0) == HIQLITE_INTEGER);
    CHECK(hiqlite_column_int64(st, 0) == INT64_MIN);
    CHECK(hiqlite_column_type(st, 1) == HIQLITE_INTEGER);
    CHECK(hiqlite_column_int64(st, 1) == INT64_MAX);
    CHECK_STR(hiqlite_column_text(st, 1), "9223372036854775807");

    CHECK(hiqlite_column_type(st, 2) == HIQLITE_FLOAT);
    CHECK(hiqlite_column_double(st, 2) == -1.25e-300);

    CHECK(hiqlite_column_type(st, 3) == HIQLITE_TEXT);
    CHECK_STR(hiqlite_column_text(st, 3), TEXT);
    CHECK(hiqlite_column_bytes(st, 3) == (int)strlen(TEXT));

    CHECK(hiqlite_column_type(st, 4) == HIQLITE_TEXT);
    CHECK(hiqlite_column_bytes(st, 4) == 3);
    CHECK(memcmp(hiqlite_column_text(st, 4), TEXT_NUL, 3) == 0);

    CHECK(hiqlite_column_type(st, 5) == HIQLITE_BLOB);
    CHECK(hiqlite_column_bytes(st, 5) == (int)sizeof BLOB);
    CHECK(memcmp(hiqlite_column_blob(st, 5), BLOB, sizeof BLOB) == 0);

    CHECK(hiqlite_column_type(st, 6) == HIQLITE_BLOB);
    CHECK(hiqlite_column_bytes(st, 6) == 0);

    CHECK(hiqlite_column_type(st, 7) == HIQLITE_NULL);
    CHECK(hiqlite_column_text(st, 7) == NULL);
    CHECK(hiqlite_column_blob(st, 7) == NULL);
    CHECK(hiqlite_column_int64(st, 7) == 0);

    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(st));
    OK(db, hiqlite_finalize(st));
}

static void write_values(hiqlite_db *db) {
    OK(db, hiqlite_exec(db,
                        "CREATE TABLE vals (id INTEGER PRIMARY KEY, i_min INTEGER, i_max INTEGER, "
                        "r REAL, t TEXT, t_nul TEXT, b BLOB, b_empty BLOB, n)",
                        NULL, NULL));
    hiqlite_stmt *st = NULL;
    OK(db, hiqlite_prepare(db,
                           "INSERT INTO vals VALUES (1, ?, ?, ?, :t, :t_nul, @b, $b_empty, ?9)",
                           &st));
    CHECK(hiqlite_bind_parameter_count(st) == 9);
    CHECK(hiqlite_bind_parameter_index(st, ":t") == 4);
    CHECK(hiqlite_bind_parameter_index(st, "b") == 6);
    CHECK_STR(hiqlite_bind_parameter_name(st, 7), "$b_empty");
    CHECK(hiqlite_bind_parameter_name(st, 1) == NULL);
    OK(db, hiqlite_bind_int64(st, 1, INT64_MIN));
    OK(db, hiqlite_bind_int64(st, 2, INT64_MAX));
    OK(db, hiqlite_bind_double(st, 3, -1.25e-300));
    OK(db, hiqlite_bind_text_by_name(st, ":t", TEXT, -1));
    OK(db, hiqlite_bind_text_by_name(st, "t_nul", TEXT_NUL, 3));
    OK(db, hiqlite_bind_blob_by_name(st, "@b", BLOB, (int)sizeof BLOB));
    OK(db, hiqlite_bind_blob_by_name(st, "b_empty", NULL, 0));
    OK(db, hiqlite_bind_null(st, 9));
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(st));
    CHECK(hiqlite_stmt_changes(st) == 1);
    CHECK(hiqlite_stmt_last_insert_id(st) == 1);
    OK(db, hiqlite_finalize(st));
}

/* One prepared INSERT, bound and stepped many times. */
static void reuse_prepared(hiqlite_db *db) {
    OK(db, hiqlite_exec(db, "CREATE TABLE kv (k INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)", NULL,
                        NULL));
    hiqlite_stmt *ins = NULL;
    OK(db, hiqlite_prepare(db, "INSERT INTO kv (k, v) VALUES (?, ?)", &ins));
    for (int i = 1; i <= 20; i++) {
        char v[32];
        snprintf(v, sizeof v, "value-%d", i);
        OK(db, hiqlite_bind_int64(ins, 1, i));
        OK(db, hiqlite_bind_text(ins, 2, v, -1));
        EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(ins));
        CHECK(hiqlite_stmt_changes(ins) == 1);
        CHECK(hiqlite_stmt_last_insert_id(ins) == i);
        OK(db, hiqlite_reset(ins));
    }
    /* The bindings survive a reset: running again repeats the last insert and violates the key. */
    int rc = hiqlite_step(ins);
    CHECK((rc & 0xff) == 19 /* SQLITE_CONSTRAINT */);
    CHECK(rc == 1555 /* SQLITE_CONSTRAINT_PRIMARYKEY */);
    CHECK_CONTAINS(hiqlite_errmsg(db), "UNIQUE constraint failed: kv.k");
    CHECK_CONTAINS(hiqlite_stmt_errmsg(ins), "UNIQUE constraint failed: kv.k");
    /* A failed statement keeps reporting its error until it is reset. */
    CHECK(hiqlite_step(ins) == 1555);
    OK(db, hiqlite_finalize(ins));

    /* A reused read statement, with RETURNING rows from a write too. */
    hiqlite_stmt *get = NULL;
    OK(db, hiqlite_prepare_flags(db, "SELECT v FROM kv WHERE k = ?", HIQLITE_PREPARE_READ, &get));
    OK(db, hiqlite_stmt_set_consistency(get, HIQLITE_CONSISTENCY_LEADER));
    for (int i = 1; i <= 20; i += 7) {
        char want[32];
        snprintf(want, sizeof want, "value-%d", i);
        OK(db, hiqlite_bind_int64(get, 1, i));
        EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(get));
        CHECK_STR(hiqlite_column_text(get, 0), want);
        EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(get));
        OK(db, hiqlite_reset(get));
    }
    OK(db, hiqlite_finalize(get));

    hiqlite_stmt *ret = NULL;
    OK(db, hiqlite_prepare(db, "UPDATE kv SET v = v || '!' WHERE k <= :max RETURNING k, v", &ret));
    OK(db, hiqlite_bind_int64_by_name(ret, ":max", 2));
    int rows = 0;
    while ((rc = hiqlite_step(ret)) == HIQLITE_ROW) {
        rows++;
        CHECK(hiqlite_column_int64(ret, 0) <= 2);
        CHECK(hiqlite_column_text(ret, 1)[strlen(hiqlite_column_text(ret, 1)) - 1] == '!');
    }
    EXPECT_RC(db, HIQLITE_DONE, rc);
    CHECK(rows == 2);
    CHECK(hiqlite_stmt_changes(ret) == 2);
    OK(db, hiqlite_finalize(ret));
}

static void transactions_and_batches(hiqlite_db *db) {
    hiqlite_stmt *a = NULL, *b = NULL;
    OK(db, hiqlite_prepare(db, "INSERT INTO kv (k, v) VALUES (?, ?)", &a));
    OK(db, hiqlite_prepare(db, "INSERT INTO kv (k, v) VALUES (?, ?) RETURNING k * 10", &b));
    OK(db, hiqlite_bind_int64(a, 1, 100));
    OK(db, hiqlite_bind_text(a, 2, "tx-a", -1));
    OK(db, hiqlite_bind_int64(b, 1, 101));
    OK(db, hiqlite_bind_text(b, 2, "tx-b", -1));
    hiqlite_stmt *both[] = {a, b};
    OK(db, hiqlite_transaction(db, both, 2));
    CHECK(hiqlite_stmt_changes(a) == 1 && hiqlite_stmt_last_insert_id(a) == 100);
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(a));
    EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(b));
    CHECK(hiqlite_column_int64(b, 0) == 1010);
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(b));
    CHECK(count_rows(db, "kv") == 22);

    /* All or nothing: the second statement's duplicate value fails the whole transaction. */
    OK(db, hiqlite_reset(a));
    OK(db, hiqlite_reset(b));
    OK(db, hiqlite_bind_int64(a, 1, 200));
    OK(db, hiqlite_bind_text(a, 2, "tx-c", -1));
    OK(db, hiqlite_bind_int64(b, 1, 201));
    OK(db, hiqlite_bind_text(b, 2, "tx-a", -1));
    EXPECT_RC(db, 2067 /* SQLITE_CONSTRAINT_UNIQUE */, hiqlite_transaction(db, both, 2));
    CHECK_CONTAINS(hiqlite_errmsg(db), "UNIQUE constraint failed: kv.v");
    CHECK(count_rows(db, "kv") == 22);

    /* A batch applies each statement on its own. */
    int codes[2] = {-1, -1};
    OK(db, hiqlite_batch(db, both, 2, codes));
    CHECK(codes[0] == HIQLITE_OK);
    CHECK(codes[1] == 2067);
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(a));
    EXPECT_RC(db, 2067, hiqlite_step(b));
    CHECK_CONTAINS(hiqlite_stmt_errmsg(b), "UNIQUE constraint failed: kv.v");
    CHECK(count_rows(db, "kv") == 23);
    OK(db, hiqlite_finalize(a));
    OK(db, hiqlite_finalize(b));
}

static void errors(hiqlite_db *db) {
    EXPECT_RC(db, 1 /* SQLITE_ERROR */, hiqlite_exec(db, "CREATE TABLE (oops", NULL, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(db), "syntax error");
    CHECK(hiqlite_errcode(db) == 1);
    EXPECT_RC(db, 1, hiqlite_exec(db, "INSERT INTO nowhere VALUES (1)", NULL, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(db), "no such table: nowhere");

    hiqlite_stmt *st = NULL;
    OK(db, hiqlite_prepare(db, "SELECT * FROM missing", &st));
    EXPECT_RC(db, 1, hiqlite_step(st));
    CHECK_CONTAINS(hiqlite_stmt_errmsg(st), "no such table: missing");
    OK(db, hiqlite_finalize(st));

    /* After a success the handle's message is cleared. */
    OK(db, hiqlite_exec(db, "UPDATE kv SET v = v WHERE k = 1", NULL, NULL));
    CHECK_STR(hiqlite_errmsg(db), "not an error");
    CHECK(hiqlite_errcode(db) == HIQLITE_OK);
}

static void json_and_cache(hiqlite_db *db) {
    char *json = NULL;
    OK(db, hiqlite_query_json(db, "SELECT k, v, x'0102' AS b FROM kv WHERE k = ?", "[3]",
                              HIQLITE_CONSISTENCY_LINEARIZABLE, &json));
    CHECK_STR(json, "{\"results\":[{\"columns\":[\"k\",\"v\",\"b\"],\"types\":[\"integer\",\"text\",\"blob\"],"
                    "\"values\":[[3,\"value-3\",\"AQI=\"]]}]}");
    hiqlite_free(json);
    OK(db, hiqlite_query_json(db, "SELECT k FROM kv WHERE v = :v", "{\"v\": \"nothing\"}",
                              HIQLITE_CONSISTENCY_LOCAL, &json));
    CHECK_STR(json, "{\"results\":[{\"columns\":[\"k\"],\"types\":[\"integer\"]}]}");
    hiqlite_free(json);
    EXPECT_RC(db, HIQLITE_READONLY,
              hiqlite_query_json(db, "DELETE FROM kv", NULL, HIQLITE_CONSISTENCY_LOCAL, &json));
    CHECK(json == NULL);

    /* A cached read: the second run is served from the node's cache; a write invalidates it. */
    hiqlite_cache_counters before, after;
    OK(db, hiqlite_cache_stats(db, &before));
    hiqlite_stmt *st = NULL;
    OK(db, hiqlite_prepare(db, "SELECT count(*) FROM kv", &st));
    OK(db, hiqlite_stmt_set_cache(st, 1, 0));
    /* Linearizable: this node must see its own write below before reading (or hitting) again. */
    OK(db, hiqlite_stmt_set_consistency(st, HIQLITE_CONSISTENCY_LINEARIZABLE));
    for (int i = 0; i < 2; i++) {
        EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(st));
        CHECK(hiqlite_column_int64(st, 0) == 23);
        OK(db, hiqlite_reset(st));
    }
    OK(db, hiqlite_cache_stats(db, &after));
    CHECK(after.hits == before.hits + 1);
    CHECK(after.misses == before.misses + 1);
    OK(db, hiqlite_exec(db, "DELETE FROM kv WHERE k = 1", NULL, NULL));
    EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(st));
    CHECK(hiqlite_column_int64(st, 0) == 22);
    OK(db, hiqlite_finalize(st));
}

/* Remote clients over the nodes' HTTP APIs: the same calls, the same codes. */
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
    /* Opening without options works (and makes no connection)... */
    OK(NULL, hiqlite_open_remote(urls, &rc));
    OK(NULL, hiqlite_close(rc));
    /* ...but the calls below get a deadline no slow run (valgrind, a loaded machine) can reach:
     * no check here is about a timeout. */
    rc = NULL;
    OK(NULL, hiqlite_open_remote_with(urls, "timeout_ms = 300000", &rc));
    int64_t changes = 0, id = 0;
    OK(rc, hiqlite_exec(rc, "INSERT INTO kv (k, v) VALUES (500, 'remote')", &changes, &id));
    CHECK(changes == 1 && id == 500);

    /* A remote client reads at the leader by default, so it sees its own write. */
    hiqlite_stmt *st = NULL;
    OK(rc, hiqlite_prepare(rc, "SELECT v, k * 1.5, x'00ff' FROM kv WHERE k = ?", &st));
    for (int round = 0; round < 2; round++) {
        OK(rc, hiqlite_bind_int64(st, 1, 500));
        EXPECT_RC(rc, HIQLITE_ROW, hiqlite_step(st));
        CHECK_STR(hiqlite_column_text(st, 0), "remote");
        CHECK(hiqlite_column_type(st, 1) == HIQLITE_FLOAT && hiqlite_column_double(st, 1) == 750.0);
        CHECK(hiqlite_column_type(st, 2) == HIQLITE_BLOB && hiqlite_column_bytes(st, 2) == 2);
        CHECK(memcmp(hiqlite_column_blob(st, 2), "\x00\xff", 2) == 0);
        EXPECT_RC(rc, HIQLITE_DONE, hiqlite_step(st));
        OK(rc, hiqlite_reset(st));
    }
    OK(rc, hiqlite_finalize(st));

    /* RETURNING rows come back over HTTP too. */
    OK(rc, hiqlite_prepare(rc, "UPDATE kv SET v = 'remote!' WHERE k = ? RETURNING v", &st));
    OK(rc, hiqlite_bind_int64(st, 1, 500));
    EXPECT_RC(rc, HIQLITE_ROW, hiqlite_step(st));
    CHECK_STR(hiqlite_column_text(st, 0), "remote!");
    EXPECT_RC(rc, HIQLITE_DONE, hiqlite_step(st));
    OK(rc, hiqlite_finalize(st));

    /* Errors keep SQLite's codes and messages across the wire. */
    EXPECT_RC(rc, 1, hiqlite_exec(rc, "INSERT INTO nowhere VALUES (1)", NULL, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(rc), "no such table: nowhere");
    EXPECT_RC(rc, 2067, hiqlite_exec(rc, "INSERT INTO kv (k, v) VALUES (501, 'remote!')", NULL, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(rc), "UNIQUE constraint failed: kv.v");

    /* A transaction through a second client, built with options. */
    hiqlite_db *rc2 = NULL;
    OK(NULL, hiqlite_open_remote_with(urls,
                                      "timeout_ms = 300000\nconsistency = \"linearizable\"\n"
                                      "username = \"nobody\"\npassword = \"unused\"\n",
                                      &rc2));
    hiqlite_stmt *a = NULL, *b = NULL;
    OK(rc2, hiqlite_prepare(rc2, "INSERT INTO kv (k, v) VALUES (600, 'tx-r1')", &a));
    OK(rc2, hiqlite_prepare(rc2, "INSERT INTO kv (k, v) VALUES (601, 'tx-r2')", &b));
    hiqlite_stmt *both[] = {a, b};
    OK(rc2, hiqlite_transaction(rc2, both, 2));
    CHECK(hiqlite_stmt_last_insert_id(b) == 601);
    OK(rc2, hiqlite_finalize(a));
    OK(rc2, hiqlite_finalize(b));
    char *json = NULL;
    OK(rc2, hiqlite_query_json(rc2, "SELECT count(*) AS n FROM kv WHERE k >= ?", "[500]",
                               HIQLITE_CONSISTENCY_LINEARIZABLE, &json));
    CHECK_STR(json, "{\"results\":[{\"columns\":[\"n\"],\"types\":[\"integer\"],\"values\":[[3]]}]}");
    hiqlite_free(json);

    /* Status through the node a client talks to. */
    /* Three calls, three reads of the cluster's state: if an election falls between them (a
     * loaded machine can delay heartbeats), read again; a stable cluster agrees at once. */
    for (int attempt = 0;; attempt++) {
        uint64_t leader = 0, via = 0;
        OK(rc, hiqlite_leader(rc, &leader, NULL));
        CHECK(leader >= 1 && leader <= 3);
        OK(rc, hiqlite_node_info(rc, &via, NULL, NULL));
        CHECK(via >= 1 && via <= 3);
        int is = -1;
        OK(rc, hiqlite_is_leader(rc, &is));
        CHECK(is == 0 || is == 1);
        if (is == (via == leader))
            break;
        if (attempt == 3000)
            FAIL("is_leader never agreed with leader and node_info");
        sleep_ms(100);
    }
    hiqlite_cache_counters stats;
    EXPECT_RC(rc, HIQLITE_MISUSE, hiqlite_cache_stats(rc, &stats));

    OK(NULL, hiqlite_close(rc2));
    OK(NULL, hiqlite_close(rc));
    for (int i = 0; i < 3; i++)
        CHECK(count_rows(nodes[i], "kv") == 25);
}

int main(int argc, char **argv) {
    if (argc != 2)
        FAIL("usage: %s DATA_DIR", argv[0]);
    const char *dir = argv[1];
    hiqlite_db *nodes[3];
    nodes[0] = node1(dir);
    OK(nodes[0], hiqlite_wait_for_leader(nodes[0], 120000, NULL));
    char *raft = NULL;
    uint64_t id = 0;
    OK(nodes[0], hiqlite_node_info(nodes[0], &id, &raft, NULL));
    CHECK(id == 1);
    nodes[1] = node2(dir, raft);
    nodes[2] = node3(dir, raft);
    hiqlite_free(raft);
    wait_for_voters(nodes[0]);

    uint64_t leader_id = agreed_leader(nodes);

    /* Write through a follower (forwarded to the leader); read everywhere. */
    hiqlite_db *follower = nodes[leader_id == 3 ? 1 : 2];
    write_values(follower);
    for (int i = 0; i < 3; i++)
        check_values(nodes[i]);

    reuse_prepared(nodes[0]);
    transactions_and_batches(nodes[1]);
    errors(nodes[2]);
    json_and_cache(nodes[2]);
    for (int i = 0; i < 3; i++)
        CHECK(count_rows(nodes[i], "kv") == 22);
    remote(nodes);

    for (int i = 2; i >= 0; i--)
        OK(NULL, hiqlite_close(nodes[i]));
    printf("cluster: ok\n");
    return 0;
}
