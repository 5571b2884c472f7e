/* Misuse of the API on a single-node cluster: NULL handles and arguments, invalid UTF-8,
 * parameters out of range, calls in the wrong order, bad configurations. Every one must return
 * an error code with a message; none may crash. Also: error messages are per thread, and one
 * handle is used from several threads at once.
 *
 * usage: misuse DATA_DIR */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>

#include "check.h"

static const char BAD_UTF8[] = "SELECT '\xff\xfe'";

static void without_a_database(const char *dir) {
    hiqlite_db *db = (hiqlite_db *)&db; /* must be overwritten with NULL on failure */
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_open_node(NULL, &db));
    CHECK(db == NULL);
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "config is NULL");
    CHECK(hiqlite_errcode(NULL) == HIQLITE_MISUSE);
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_open_node("node_id = 1", NULL));

    db = (hiqlite_db *)&db;
    EXPECT_RC(NULL, HIQLITE_CONFIG, hiqlite_open_node("node_id = [", &db));
    CHECK(db == NULL);
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "invalid TOML config");
    EXPECT_RC(NULL, HIQLITE_CONFIG, hiqlite_open_node("no_such_key = 1", &db));
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "no_such_key");
    EXPECT_RC(NULL, HIQLITE_CONFIG, hiqlite_open_node("{\"node_id\": \"one\"}", &db));
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "invalid JSON config");
    EXPECT_RC(NULL, HIQLITE_CONFIG, hiqlite_open_node("node_id = 0", &db));
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "node_id must be > 0");
    EXPECT_RC(NULL, HIQLITE_INVALID_UTF8, hiqlite_open_node("data_dir = \"\xc3\x28\"", &db));
    CHECK(db == NULL);

    hiqlite_config *cfg = hiqlite_config_new();
    EXPECT_RC(NULL, HIQLITE_CONFIG, hiqlite_config_set(cfg, "nodeid", "1"));
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "unknown configuration key `nodeid`");
    EXPECT_RC(NULL, HIQLITE_CONFIG, hiqlite_config_set(cfg, "node_id", "one"));
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "not a number");
    EXPECT_RC(NULL, HIQLITE_CONFIG, hiqlite_config_set(cfg, "cache.enabled", "maybe"));
    EXPECT_RC(NULL, HIQLITE_CONFIG, hiqlite_config_set(cfg, "cache.nope", "1"));
    EXPECT_RC(NULL, HIQLITE_CONFIG, hiqlite_config_set(cfg, "peers", "1=no-slash"));
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_config_set(cfg, NULL, "1"));
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_config_set(cfg, "node_id", NULL));
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_config_set(NULL, "node_id", "1"));
    EXPECT_RC(NULL, HIQLITE_INVALID_UTF8, hiqlite_config_set(cfg, "data_dir", "\xff"));
    /* An address that cannot be listened on (TEST-NET-1, not ours) fails the open, not the
     * process. */
    OK(NULL, hiqlite_config_set(cfg, "data_dir", dir));
    OK(NULL, hiqlite_config_set(cfg, "raft_addr", "127.0.0.1:0"));
    OK(NULL, hiqlite_config_set(cfg, "api_addr", "192.0.2.1:1"));
    EXPECT_RC(NULL, HIQLITE_CONFIG, hiqlite_open_node_config(cfg, &db));
    CHECK(db == NULL);
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "api_addr");
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_open_node_config(NULL, &db));
    hiqlite_config_free(cfg);
    hiqlite_config_free(NULL);

    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_open_remote(NULL, &db));
    EXPECT_RC(NULL, HIQLITE_CONFIG, hiqlite_open_remote(" , ", &db));
    EXPECT_RC(NULL, HIQLITE_CONFIG, hiqlite_open_remote_with("http://127.0.0.1:1", "colour = 1", &db));
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "colour");
    EXPECT_RC(NULL, HIQLITE_CONFIG,
              hiqlite_open_remote_with("http://127.0.0.1:1", "{\"consistency\": \"strong\"}", &db));
    EXPECT_RC(NULL, HIQLITE_INVALID_UTF8, hiqlite_open_remote("http://\xff", &db));
    CHECK(db == NULL);

    /* Nobody listens on port 1: every connect is refused at once, so the write was certainly
     * not applied, and the code says so. The deadline is far beyond what the client's retries
     * of a refused connect take (they stop after their attempt count, in about 8 s), so the
     * answer is UNREACHABLE however slow the machine (valgrind, load): with a short deadline a
     * slow first attempt could run out the clock and make the answer TIMEOUT instead. */
    OK(NULL, hiqlite_open_remote_with("http://127.0.0.1:1", "timeout_ms = 300000", &db));
    EXPECT_RC(db, HIQLITE_UNREACHABLE, hiqlite_exec(db, "CREATE TABLE t (x)", NULL, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(db), "unreachable");
    OK(NULL, hiqlite_close(db));

    /* NULL handles everywhere. */
    int64_t changes = 7;
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_exec(NULL, "SELECT 1", &changes, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "database handle is NULL");
    hiqlite_stmt *st = (hiqlite_stmt *)&st;
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_prepare(NULL, "SELECT 1", &st));
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_step(NULL));
    CHECK_CONTAINS(hiqlite_errmsg(NULL), "statement handle is NULL");
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_bind_int64(NULL, 1, 1));
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_transaction(NULL, NULL, 0));
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_is_leader(NULL, NULL));
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_leader(NULL, NULL, NULL));
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_status_json(NULL, NULL));
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_query_json(NULL, "SELECT 1", NULL, 0, NULL));
    OK(NULL, hiqlite_close(NULL));
    OK(NULL, hiqlite_finalize(NULL));
    OK(NULL, hiqlite_reset(NULL));
    hiqlite_free(NULL);
    CHECK(hiqlite_column_count(NULL) == 0);
    CHECK(hiqlite_column_type(NULL, 0) == HIQLITE_NULL);
    CHECK(hiqlite_column_text(NULL, 0) == NULL);
    CHECK(hiqlite_column_blob(NULL, 0) == NULL);
    CHECK(hiqlite_column_name(NULL, 0) == NULL);
    CHECK(hiqlite_column_int64(NULL, 0) == 0);
    CHECK(hiqlite_column_double(NULL, 0) == 0.0);
    CHECK(hiqlite_column_bytes(NULL, 0) == 0);
    CHECK(hiqlite_bind_parameter_count(NULL) == 0);
    CHECK(hiqlite_bind_parameter_index(NULL, ":a") == 0);
    CHECK(hiqlite_bind_parameter_name(NULL, 1) == NULL);
    CHECK(hiqlite_stmt_changes(NULL) == 0);
    CHECK(hiqlite_sql(NULL) == NULL);
    CHECK(hiqlite_stmt_errmsg(NULL) != NULL);

    CHECK_STR(hiqlite_errstr(HIQLITE_OK), "not an error");
    CHECK_STR(hiqlite_errstr(HIQLITE_NO_LEADER), "no leader available");
    CHECK_STR(hiqlite_errstr(2067), "constraint failed");
    CHECK_STR(hiqlite_errstr(123456), "unknown error");
    CHECK(hiqlite_libversion()[0] != '\0');
}

static void misuse_on_a_database(hiqlite_db *db) {
    int64_t changes = -1, id = -1;
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_exec(db, NULL, &changes, &id));
    CHECK(changes == 0 && id == 0);
    CHECK_CONTAINS(hiqlite_errmsg(db), "sql is NULL");
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_exec(db, BAD_UTF8, NULL, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(db), "not valid UTF-8");

    hiqlite_stmt *st = (hiqlite_stmt *)&st;
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_prepare(db, NULL, &st));
    CHECK(st == NULL);
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_prepare(db, BAD_UTF8, &st));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_prepare(db, "   ", &st));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_prepare(db, "SELECT 1", NULL));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_prepare_flags(db, "SELECT 1", 42, &st));

    char *json = (char *)&json;
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_query_json(db, "SELECT 1", NULL, 7, &json));
    CHECK(json == NULL);
    EXPECT_RC(db, HIQLITE_INVALID_REQUEST, hiqlite_query_json(db, "SELECT ?", "[{}]", 0, &json));
    EXPECT_RC(db, HIQLITE_INVALID_REQUEST, hiqlite_query_json(db, "SELECT ?", "[1", 0, &json));
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_query_json(db, "SELECT ?", "[\"\xff\"]", 0, &json));
    EXPECT_RC(db, 25 /* SQLITE_RANGE */, hiqlite_query_json(db, "SELECT ?", "[1, 2]", 0, &json));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_query_json(db, "SELECT 1", NULL, 0, NULL));

    OK(db, hiqlite_exec(db, "CREATE TABLE t (id INTEGER PRIMARY KEY, v)", NULL, NULL));
    OK(db, hiqlite_prepare(db, "INSERT INTO t (id, v) VALUES (?1, :v)", &st));
    CHECK_STR(hiqlite_sql(st), "INSERT INTO t (id, v) VALUES (?1, :v)");
    CHECK(hiqlite_bind_parameter_count(st) == 2);
    EXPECT_RC(db, HIQLITE_RANGE, hiqlite_bind_int64(st, 0, 1));
    CHECK_CONTAINS(hiqlite_errmsg(db), "out of range");
    CHECK_CONTAINS(hiqlite_stmt_errmsg(st), "out of range");
    EXPECT_RC(db, HIQLITE_RANGE, hiqlite_bind_int64(st, 3, 1));
    EXPECT_RC(db, HIQLITE_RANGE, hiqlite_bind_null(st, -1));
    EXPECT_RC(db, HIQLITE_RANGE, hiqlite_bind_double(st, 99, 1.0));
    EXPECT_RC(db, HIQLITE_RANGE, hiqlite_bind_int64_by_name(st, ":nope", 1));
    CHECK_CONTAINS(hiqlite_errmsg(db), "no parameter named :nope");
    EXPECT_RC(db, HIQLITE_RANGE, hiqlite_bind_text_by_name(st, "@v", "x", -1));
    CHECK(hiqlite_bind_parameter_index(st, ":nope") == 0);
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_bind_int64_by_name(st, NULL, 1));
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_bind_int64_by_name(st, ":\xff", 1));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_bind_text(st, 2, NULL, 3));
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_bind_text(st, 2, "\xc3\x28", -1));
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_bind_text(st, 2, "ok\xe2\x82", 5));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_bind_blob(st, 2, NULL, 4));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_bind_blob(st, 2, "abc", -1));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_stmt_set_consistency(st, -1));
    /* The statement is still usable after all that. */
    OK(db, hiqlite_bind_int64(st, 1, 1));
    OK(db, hiqlite_bind_text_by_name(st, "v", "first", -1));
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(st));
    /* Stepping past DONE and binding a statement that ran are misuse; reset fixes both. */
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_step(st));
    CHECK_CONTAINS(hiqlite_errmsg(db), "hiqlite_reset");
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_bind_int64(st, 1, 2));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_clear_bindings(st));
    /* No current row: columns read as NULL. */
    CHECK(hiqlite_column_type(st, 0) == HIQLITE_NULL);
    CHECK(hiqlite_column_text(st, 0) == NULL);
    OK(db, hiqlite_reset(st));
    OK(db, hiqlite_clear_bindings(st));
    OK(db, hiqlite_bind_int64(st, 1, 2));
    EXPECT_RC(db, HIQLITE_DONE, hiqlite_step(st)); /* v is NULL after clear_bindings */
    OK(db, hiqlite_finalize(st));

    /* Transactions: NULL, repeated and not-ready statements are refused before anything runs. */
    hiqlite_stmt *a = NULL, *b = NULL;
    OK(db, hiqlite_prepare(db, "INSERT INTO t (v) VALUES ('tx')", &a));
    OK(db, hiqlite_prepare(db, "SELECT count(*) FROM t", &b));
    hiqlite_stmt *dup[] = {a, a};
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_transaction(db, dup, 2));
    CHECK_CONTAINS(hiqlite_errmsg(db), "appears twice");
    hiqlite_stmt *with_null[] = {a, NULL};
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_transaction(db, with_null, 2));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_batch(db, NULL, 1, NULL));
    OK(db, hiqlite_transaction(db, NULL, 0));
    EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(b));
    CHECK(hiqlite_column_int64(b, 0) == 2);
    hiqlite_stmt *ran[] = {a, b};
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_transaction(db, ran, 2));
    CHECK_CONTAINS(hiqlite_errmsg(db), "already ran");
    /* Columns out of range read as NULL; a read-only statement refuses to write. */
    CHECK(hiqlite_column_type(b, 1) == HIQLITE_NULL);
    CHECK(hiqlite_column_type(b, -1) == HIQLITE_NULL);
    CHECK(hiqlite_column_name(b, 5) == NULL);
    OK(db, hiqlite_finalize(b));
    OK(db, hiqlite_finalize(a));
    OK(db, hiqlite_prepare_flags(db, "DELETE FROM t", HIQLITE_PREPARE_READ, &st));
    EXPECT_RC(db, HIQLITE_READONLY, hiqlite_step(st));
    OK(db, hiqlite_finalize(st));

    /* Out-pointers that are not needed may be NULL. */
    OK(db, hiqlite_leader(db, NULL, NULL));
    OK(db, hiqlite_node_info(db, NULL, NULL, NULL));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_is_leader(db, NULL));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_cache_stats(db, NULL));
}

struct thread_arg {
    hiqlite_db *db;
    int index;
    int failures;
};

/* Each thread writes through the shared handle and makes its own error: it must see its own
 * message, whatever the other threads do meanwhile. */
static void *worker(void *p) {
    struct thread_arg *arg = p;
    hiqlite_stmt *st = NULL;
    if (hiqlite_prepare(arg->db, "INSERT INTO threads (who, n) VALUES (?, ?)", &st) != HIQLITE_OK) {
        arg->failures++;
        return NULL;
    }
    for (int i = 0; i < 10; i++) {
        hiqlite_bind_int64(st, 1, arg->index);
        hiqlite_bind_int64(st, 2, i);
        if (hiqlite_step(st) != HIQLITE_DONE)
            arg->failures++;
        hiqlite_reset(st);
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT * FROM missing_%d", arg->index);
        if (hiqlite_exec(arg->db, sql, NULL, NULL) != 1)
            arg->failures++;
        char want[64];
        snprintf(want, sizeof want, "no such table: missing_%d", arg->index);
        if (strstr(hiqlite_errmsg(arg->db), want) == NULL)
            arg->failures++;
    }
    hiqlite_finalize(st);
    return NULL;
}

static void threads(hiqlite_db *db) {
    OK(db, hiqlite_exec(db, "CREATE TABLE threads (who INTEGER, n INTEGER)", NULL, NULL));
    pthread_t tids[4];
    struct thread_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct thread_arg){db, i, 0};
        CHECK(pthread_create(&tids[i], NULL, worker, &args[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        CHECK(pthread_join(tids[i], NULL) == 0);
        CHECK(args[i].failures == 0);
    }
    hiqlite_stmt *st = NULL;
    OK(db, hiqlite_prepare(db, "SELECT count(*), count(DISTINCT who) FROM threads", &st));
    EXPECT_RC(db, HIQLITE_ROW, hiqlite_step(st));
    CHECK(hiqlite_column_int64(st, 0) == 40);
    CHECK(hiqlite_column_int64(st, 1) == 4);
    OK(db, hiqlite_finalize(st));
}

int main(int argc, char **argv) {
    if (argc != 2)
        FAIL("usage: %s DATA_DIR", argv[0]);
    char bad_dir[512];
    snprintf(bad_dir, sizeof bad_dir, "%s/unused", argv[1]);
    without_a_database(bad_dir);

    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "data_dir = \"%s/node\"\nraft_addr = \"127.0.0.1:0\"\napi_addr = \"127.0.0.1:0\"\n"
             "heartbeat_ms = 200\nelection_timeout_min_ms = 1000\nelection_timeout_max_ms = 2000\n"
             /* Writes wait for the node, never for a clock: a loaded box under valgrind may be
              * slow, and no check here is about a timeout. */
             "request_timeout_ms = 300000\n",
             argv[1]);
    hiqlite_db *db = NULL;
    OK(NULL, hiqlite_open_node(cfg, &db));
    OK(db, hiqlite_wait_for_leader(db, 120000, NULL));
    int is_leader = 0;
    OK(db, hiqlite_is_leader(db, &is_leader));
    CHECK(is_leader == 1);

    misuse_on_a_database(db);
    threads(db);

    /* A statement outlives its closed database: running it fails, finalizing it is fine. */
    hiqlite_stmt *st = NULL;
    OK(db, hiqlite_prepare(db, "INSERT INTO t (v) VALUES (1)", &st));
    OK(NULL, hiqlite_close(db));
    EXPECT_RC(NULL, HIQLITE_SHUTDOWN, hiqlite_step(st));
    CHECK_CONTAINS(hiqlite_stmt_errmsg(st), "handle was closed");
    OK(NULL, hiqlite_finalize(st));
    printf("misuse: ok\n");
    return 0;
}
