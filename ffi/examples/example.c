/* A single-node hiqlite database from C: create a table, insert with a prepared statement,
 * read the rows back, run an interactive transaction, use key/value entries, counters and
 * listen/notify. Build (after `cargo build -p hiqlite-ffi`):
 *   cc -Wall -Wextra -I include ffi/examples/example.c -L target/debug -lhiqlite \
 *      -Wl,-rpath,$PWD/target/debug -o example
 *   ./example /tmp/hiqlite-example */
#include <pthread.h>
#include <stdio.h>

#include "hiqlite.h"

static int fail(hiqlite_db *db, const char *what, int rc) {
    fprintf(stderr, "%s failed (%d): %s\n", what, rc, hiqlite_errmsg(db));
    return 1;
}

/* A listener's callback runs on a thread of the library, one event at a time, in log order;
 * the event's pointers are valid during the call only. Return nonzero to stop. */
static pthread_mutex_t seen_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t seen_cond = PTHREAD_COND_INITIALIZER;
static int seen = 0;

static int on_order(void *user_data, const hiqlite_listen_event *ev) {
    (void)user_data;
    if (ev->kind == HIQLITE_EVENT_NOTIFICATION)
        printf("notification on %s: %.*s\n", ev->channel, (int)ev->payload_len,
               (const char *)ev->payload);
    else if (ev->kind == HIQLITE_EVENT_ERROR) /* the last event: listen again after ev->id */
        fprintf(stderr, "listener failed (%d): %s\n", ev->error_code, ev->error_message);
    /* HIQLITE_EVENT_LAGGED: it fell behind and goes on without gaps (unless ev->lost). */
    pthread_mutex_lock(&seen_lock);
    seen++;
    pthread_cond_signal(&seen_cond);
    pthread_mutex_unlock(&seen_lock);
    return 0;
}

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : "hiqlite-data";
    char config[512];
    snprintf(config, sizeof config,
             "node_id = 1\n"
             "data_dir = \"%s\"\n"
             "raft_addr = \"127.0.0.1:0\"\n" /* port 0: any free port */
             "api_addr = \"127.0.0.1:0\"\n",
             dir);

    hiqlite_db *db = NULL;
    int rc = hiqlite_open_node(config, &db);
    if (rc != HIQLITE_OK)
        return fail(NULL, "open", rc);
    if ((rc = hiqlite_wait_for_leader(db, 60000, NULL)) != HIQLITE_OK)
        return fail(db, "wait for leader", rc);

    rc = hiqlite_exec(db, "CREATE TABLE IF NOT EXISTS todo (id INTEGER PRIMARY KEY, title TEXT)",
                      NULL, NULL);
    if (rc != HIQLITE_OK)
        return fail(db, "create", rc);

    /* One prepared statement, run once per row: bind, step, reset. */
    hiqlite_stmt *ins = NULL;
    if ((rc = hiqlite_prepare(db, "INSERT INTO todo (title) VALUES (?)", &ins)) != HIQLITE_OK)
        return fail(db, "prepare", rc);
    const char *titles[] = {"write docs", "ship it"};
    for (int i = 0; i < 2; i++) {
        hiqlite_bind_text(ins, 1, titles[i], -1);
        if ((rc = hiqlite_step(ins)) != HIQLITE_DONE)
            return fail(db, "insert", rc);
        printf("inserted row %lld\n", (long long)hiqlite_stmt_last_insert_id(ins));
        hiqlite_reset(ins);
    }
    hiqlite_finalize(ins);

    /* Read back, linearizable (the default is this node's replica as it is). */
    hiqlite_stmt *sel = NULL;
    if ((rc = hiqlite_prepare(db, "SELECT id, title FROM todo ORDER BY id", &sel)) != HIQLITE_OK)
        return fail(db, "prepare", rc);
    hiqlite_stmt_set_consistency(sel, HIQLITE_CONSISTENCY_LINEARIZABLE);
    while ((rc = hiqlite_step(sel)) == HIQLITE_ROW)
        printf("%lld: %s\n", (long long)hiqlite_column_int64(sel, 0),
               hiqlite_column_text(sel, 1));
    hiqlite_finalize(sel);
    if (rc != HIQLITE_DONE)
        return fail(db, "select", rc);

    /* The same as rqlite-shaped JSON; the string is ours to free. */
    char *json = NULL;
    rc = hiqlite_query_json(db, "SELECT count(*) AS n FROM todo", NULL,
                            HIQLITE_CONSISTENCY_LOCAL, &json);
    if (rc != HIQLITE_OK)
        return fail(db, "query_json", rc);
    printf("%s\n", json);
    hiqlite_free(json);

    /* An interactive transaction: its reads see its writes; the commit applies it on every
     * node as one entry. Commit and rollback also free the handle. */
    hiqlite_tx *tx = NULL;
    if ((rc = hiqlite_begin(db, &tx)) != HIQLITE_OK)
        return fail(db, "begin", rc);
    hiqlite_stmt *count = NULL;
    rc = hiqlite_tx_exec(tx, "INSERT INTO todo (title) VALUES ('celebrate')", NULL, NULL);
    if (rc == HIQLITE_OK)
        rc = hiqlite_tx_prepare(tx, "SELECT count(*) FROM todo", &count);
    if (rc == HIQLITE_OK && (rc = hiqlite_step(count)) == HIQLITE_ROW) {
        printf("inside the transaction: %lld todos\n", (long long)hiqlite_column_int64(count, 0));
        rc = HIQLITE_OK;
    }
    hiqlite_finalize(count);
    if (rc != HIQLITE_OK) {
        hiqlite_rollback(tx);
        return fail(db, "transaction", rc);
    }
    if ((rc = hiqlite_commit(tx)) != HIQLITE_OK)
        return fail(db, "commit", rc);

    /* Replicated key/value entries (bytes, optional TTL in ms) and counters. */
    if ((rc = hiqlite_kv_put(db, "sessions", "s-42", "ada", 3, 30 * 60 * 1000)) != HIQLITE_OK)
        return fail(db, "kv_put", rc);
    void *who = NULL;
    size_t who_len = 0;
    rc = hiqlite_kv_get(db, "sessions", "s-42", HIQLITE_CONSISTENCY_LOCAL, &who, &who_len);
    if (rc != HIQLITE_OK)
        return fail(db, "kv_get", rc);
    printf("session s-42: %.*s\n", (int)who_len, who ? (const char *)who : "");
    hiqlite_free_bytes(who, who_len);
    int64_t hits = 0;
    if ((rc = hiqlite_counter_add(db, "hits", 1, &hits)) != HIQLITE_OK)
        return fail(db, "counter_add", rc);
    printf("hits: %lld\n", (long long)hits);

    /* listen/notify: every notification of the channel from now on (or after an id), in the
     * same order on every node. */
    hiqlite_listener *listener = NULL;
    rc = hiqlite_listen(db, "orders", HIQLITE_LISTEN_FROM_NOW, on_order, NULL, &listener);
    if (rc != HIQLITE_OK)
        return fail(db, "listen", rc);
    int64_t id = 0;
    if ((rc = hiqlite_notify(db, "orders", "order 42", 8, &id)) != HIQLITE_OK)
        return fail(db, "notify", rc);
    pthread_mutex_lock(&seen_lock);
    while (seen == 0)
        pthread_cond_wait(&seen_cond, &seen_lock);
    pthread_mutex_unlock(&seen_lock);
    hiqlite_listener_close(listener); /* returns once no callback runs any more */

    return hiqlite_close(db) == HIQLITE_OK ? 0 : 1;
}
