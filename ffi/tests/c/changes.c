/* Change streams and live queries from C, on a one-node cluster and through a remote client on
 * its HTTP API: a few hundred changes reach an embedded and a remote stream in log order; a
 * stream stopped half way and resumed from its last cursor continues without gaps or repeats;
 * the tables filter and old values; a cursor older than the node keeps is HIQLITE_CURSOR_TOO_OLD;
 * a watch gives rows at once and again after a write; bad input gives clear codes.
 * Conditions are waited for with generous deadlines, never by sleeping for a time.
 *
 * usage: changes DATA_DIR */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "check.h"

#define N 300
#define MAX (N + 16)
#define DEADLINE_S 300

/* What one stream's callback saw, guarded by `m`. */
typedef struct {
    pthread_mutex_t m;
    pthread_cond_t cv;
    uint64_t index[MAX];
    uint32_t seq[MAX];
    char cursor[MAX][48];
    char json[MAX][256];
    char last[256]; /* the json of the latest event */
    int count;      /* change or rows events */
    int errors;     /* error events */
    int error_code; /* of the last error event */
    int bad;        /* a malformed event was seen */
    int stop_after; /* return nonzero after this many events (0: never) */
} seen_t;

static void seen_init(seen_t *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->m, NULL);
    pthread_cond_init(&s->cv, NULL);
}

static void seen_free(seen_t *s) {
    pthread_mutex_destroy(&s->m);
    pthread_cond_destroy(&s->cv);
}

static int on_event(void *user_data, const hiqlite_stream_event *ev) {
    seen_t *s = user_data;
    pthread_mutex_lock(&s->m);
    int stop = 0;
    if (ev->kind == HIQLITE_EVENT_CHANGE || ev->kind == HIQLITE_EVENT_ROWS) {
        if (ev->json == NULL || ev->error_message != NULL)
            s->bad = 1;
        if (ev->kind == HIQLITE_EVENT_CHANGE &&
            (ev->cursor == NULL || ev->table == NULL || ev->op == NULL))
            s->bad = 1;
        if (s->count < MAX && !s->bad) {
            s->index[s->count] = ev->index;
            s->seq[s->count] = ev->seq;
            if (ev->cursor != NULL)
                snprintf(s->cursor[s->count], sizeof s->cursor[0], "%s", ev->cursor);
            snprintf(s->json[s->count], sizeof s->json[0], "%s", ev->json);
        }
        if (ev->json != NULL)
            snprintf(s->last, sizeof s->last, "%s", ev->json);
        s->count++;
        if (s->stop_after != 0 && s->count >= s->stop_after)
            stop = 1;
    } else if (ev->kind == HIQLITE_EVENT_ERROR) {
        s->errors++;
        s->error_code = ev->error_code;
        if (ev->error_message == NULL || ev->error_code == HIQLITE_OK)
            s->bad = 1;
    } else {
        s->bad = 1;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->m);
    return stop;
}

#define WAIT_FOR(s, cond, what)                                                                    \
    do {                                                                                           \
        struct timespec until_;                                                                    \
        clock_gettime(CLOCK_REALTIME, &until_);                                                    \
        until_.tv_sec += DEADLINE_S;                                                               \
        pthread_mutex_lock(&(s)->m);                                                               \
        while (!(cond)) {                                                                          \
            if (pthread_cond_timedwait(&(s)->cv, &(s)->m, &until_) != 0 && !(cond)) {              \
                pthread_mutex_unlock(&(s)->m);                                                     \
                FAIL("timed out waiting until %s", what);                                          \
            }                                                                                      \
        }                                                                                          \
        pthread_mutex_unlock(&(s)->m);                                                             \
    } while (0)

static int count_of(seen_t *s) {
    pthread_mutex_lock(&s->m);
    int n = s->count;
    pthread_mutex_unlock(&s->m);
    return n;
}

/* (index, seq) of `s`'s event `i` orders strictly after that of event `j` of `t`. */
static int after(seen_t *s, int i, seen_t *t, int j) {
    return s->index[i] > t->index[j] || (s->index[i] == t->index[j] && s->seq[i] > t->seq[j]);
}

/* `s` saw events `[0, n)` as inserts of items first..first+n-1, in log order. */
static void check_items(seen_t *s, int first, int n, const char *who) {
    pthread_mutex_lock(&s->m);
    if (s->count != n)
        FAIL("%s saw %d changes, want %d", who, s->count, n);
    for (int i = 0; i < n; i++) {
        char want[64];
        snprintf(want, sizeof want, "\"new\":{\"id\":%d,\"v\":\"item-%d\"}", first + i, first + i);
        if (strstr(s->json[i], want) == NULL || strstr(s->json[i], "\"table\":\"items\"") == NULL ||
            strstr(s->json[i], "\"op\":\"insert\"") == NULL)
            FAIL("%s: change %d is %s, want it to contain %s", who, i, s->json[i], want);
        char cur[48];
        snprintf(cur, sizeof cur, "%llu.%u", (unsigned long long)s->index[i], s->seq[i] + 1);
        if (strcmp(cur, s->cursor[i]) != 0)
            FAIL("%s: change %d has cursor %s, want %s", who, i, s->cursor[i], cur);
        if (i > 0 && !after(s, i, s, i - 1))
            FAIL("%s: change %d is not after change %d", who, i, i - 1);
    }
    if (s->bad || s->errors)
        FAIL("%s: bad %d, errors %d", who, s->bad, s->errors);
    pthread_mutex_unlock(&s->m);
}

static void insert_item(hiqlite_db *db, int i) {
    char sql[128];
    snprintf(sql, sizeof sql, "INSERT INTO items (id, v) VALUES (%d, 'item-%d')", i, i);
    OK(db, hiqlite_exec(db, sql, NULL, NULL));
}

int main(int argc, char **argv) {
    if (argc != 2)
        FAIL("usage: %s DATA_DIR", argv[0]);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "node_id = 1\ndata_dir = \"%s/node-1\"\nraft_addr = \"127.0.0.1:0\"\n"
             "api_addr = \"127.0.0.1:0\"\nsecret = \"c-changes-secret\"\n"
             "heartbeat_ms = 200\nelection_timeout_min_ms = 4000\nelection_timeout_max_ms = 8000\n"
             "request_timeout_ms = 120000\nchange_retention = 250\n",
             argv[1]);
    hiqlite_db *db = NULL;
    OK(NULL, hiqlite_open_node(cfg, &db));
    OK(db, hiqlite_wait_for_leader(db, 120000, NULL));
    char *api = NULL;
    OK(db, hiqlite_node_info(db, NULL, NULL, &api));
    char url[256];
    snprintf(url, sizeof url, "http://%s", api);
    hiqlite_free(api);
    hiqlite_db *remote = NULL;
    OK(NULL, hiqlite_open_remote_with(url, "timeout_ms = 300000\ndiscover = false", &remote));
    OK(db, hiqlite_exec(db, "CREATE TABLE items (id INTEGER PRIMARY KEY, v TEXT)", NULL, NULL));
    OK(db, hiqlite_exec(db, "CREATE TABLE other (x INTEGER)", NULL, NULL));

    /* A watch: the rows at once (count 0), then again after a write that changes them. */
    seen_t watch;
    seen_init(&watch);
    hiqlite_listener *l_watch = NULL;
    OK(db, hiqlite_watch(db, "SELECT count(*) AS n FROM items WHERE v LIKE ?", "[\"item-%\"]", on_event,
                         &watch, &l_watch));
    WAIT_FOR(&watch, watch.count >= 1, "the watch gave its first rows");
    CHECK_CONTAINS(watch.json[0], "\"columns\":[\"n\"]");
    CHECK_CONTAINS(watch.json[0], "\"values\":[[0]]");

    /* Every insert reaches an embedded stream (items only, stopping half way by returning
     * nonzero) and a remote one (every table), in log order. */
    seen_t first, far;
    seen_init(&first);
    seen_init(&far);
    first.stop_after = N / 2;
    hiqlite_listener *l_first = NULL, *l_far = NULL;
    OK(db, hiqlite_changes(db, NULL, " items , ", 0, on_event, &first, &l_first));
    OK(remote, hiqlite_changes(remote, NULL, NULL, 0, on_event, &far, &l_far));
    for (int i = 0; i < N; i++) {
        insert_item(i % 2 ? db : remote, i);
        if (i % 50 == 0)
            OK(db, hiqlite_exec(db, "INSERT INTO other (x) VALUES (1)", NULL, NULL));
    }
    WAIT_FOR(&watch, strstr(watch.last, "\"values\":[[300]]") != NULL,
             "the watch saw every insert");
    WAIT_FOR(&first, first.count >= N / 2, "the first stream saw half the inserts");
    WAIT_FOR(&far, far.count >= N + N / 50, "the remote stream saw every change");
    OK(db, hiqlite_listener_close(l_first));
    check_items(&first, 0, N / 2, "first half");

    /* Resumed at the first stream's last cursor: exactly the rest, no gap, no repeat. */
    seen_t rest;
    seen_init(&rest);
    hiqlite_listener *l_rest = NULL;
    OK(db, hiqlite_changes(db, first.cursor[N / 2 - 1], "ITEMS", 0, on_event, &rest, &l_rest));
    WAIT_FOR(&rest, rest.count >= N - N / 2, "the resumed stream caught up");
    check_items(&rest, N / 2, N - N / 2, "resumed");
    CHECK(after(&rest, 0, &first, N / 2 - 1));

    /* The remote stream saw the inserts and the other table's rows, in the same order. */
    pthread_mutex_lock(&far.m);
    CHECK(far.count == N + N / 50 && !far.bad && far.errors == 0);
    int items = 0;
    for (int i = 0; i < far.count; i++) {
        if (i > 0 && !after(&far, i, &far, i - 1))
            FAIL("remote: change %d is not after change %d", i, i - 1);
        if (strstr(far.json[i], "\"table\":\"items\"") != NULL)
            items++;
        else
            CHECK_CONTAINS(far.json[i], "\"table\":\"other\"");
    }
    CHECK(items == N);
    pthread_mutex_unlock(&far.m);
    OK(remote, hiqlite_listener_close(l_far));

    /* Old values, and the update and delete ops, on a stream that started at a cursor. */
    seen_t old;
    seen_init(&old);
    hiqlite_listener *l_old = NULL;
    OK(db, hiqlite_changes(db, rest.cursor[rest.count - 1], "items", 1, on_event, &old, &l_old));
    OK(db, hiqlite_exec(db, "UPDATE items SET v = 'changed' WHERE id = 7", NULL, NULL));
    OK(db, hiqlite_exec(db, "DELETE FROM items WHERE id = 8", NULL, NULL));
    WAIT_FOR(&old, old.count >= 2, "the old-values stream saw the update and the delete");
    CHECK_CONTAINS(old.json[0], "\"op\":\"update\"");
    CHECK_CONTAINS(old.json[0], "\"old\":{\"id\":7,\"v\":\"item-7\"}");
    CHECK_CONTAINS(old.json[0], "\"new\":{\"id\":7,\"v\":\"changed\"}");
    CHECK_CONTAINS(old.json[1], "\"op\":\"delete\"");
    CHECK_CONTAINS(old.json[1], "\"key\":[8]");
    CHECK_CONTAINS(old.json[1], "\"new\":null");
    OK(db, hiqlite_listener_close(l_old));
    OK(db, hiqlite_listener_close(l_rest));
    WAIT_FOR(&watch, strstr(watch.last, "\"values\":[[298]]") != NULL,
             "the watch saw the update and the delete");
    OK(db, hiqlite_listener_close(l_watch));
    CHECK(watch.errors == 0 && !watch.bad);

    /* A remote watch with named parameters. */
    seen_t rw;
    seen_init(&rw);
    hiqlite_listener *l_rw = NULL;
    OK(remote, hiqlite_watch(remote, "SELECT v FROM items WHERE id = :id", "{\"id\": 7}", on_event, &rw,
                             &l_rw));
    WAIT_FOR(&rw, rw.count >= 1, "the remote watch gave its first rows");
    CHECK_CONTAINS(rw.json[0], "\"values\":[[\"changed\"]]");
    OK(db, hiqlite_exec(db, "UPDATE items SET v = 'again' WHERE id = 7", NULL, NULL));
    WAIT_FOR(&rw, strstr(rw.last, "\"again\"") != NULL, "the remote watch saw the update");
    OK(remote, hiqlite_listener_close(l_rw));

    /* A cursor older than the node keeps (retention: 250 entries), embedded and remote. */
    hiqlite_listener *none = (hiqlite_listener *)&none;
    EXPECT_RC(db, HIQLITE_CURSOR_TOO_OLD, hiqlite_changes(db, "1", NULL, 0, on_event, NULL, &none));
    CHECK_CONTAINS(hiqlite_errmsg(db), "too old");
    CHECK(none == NULL);
    EXPECT_RC(remote, HIQLITE_CURSOR_TOO_OLD, hiqlite_changes(remote, "1.0", NULL, 0, on_event, NULL, &none));
    CHECK_STR(hiqlite_errstr(HIQLITE_CURSOR_TOO_OLD), "change cursor too old");

    /* Bad input: clear codes, no handle. */
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_changes(NULL, NULL, NULL, 0, on_event, NULL, &none));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_changes(db, NULL, NULL, 0, NULL, NULL, &none));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_changes(db, NULL, NULL, 0, on_event, NULL, NULL));
    const char *bad_cursors[] = {"", "x", "1.", "-1", "1.2.3", "1.-2", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad_cursors / sizeof bad_cursors[0]; i++) {
        EXPECT_RC(db, HIQLITE_INVALID_REQUEST, hiqlite_changes(db, bad_cursors[i], NULL, 0, on_event, NULL, &none));
        CHECK_CONTAINS(hiqlite_errmsg(db), "not a change cursor");
    }
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_changes(db, "\xff", NULL, 0, on_event, NULL, &none));
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_changes(db, NULL, "\xff", 0, on_event, NULL, &none));
    EXPECT_RC(db, HIQLITE_INVALID_REQUEST, hiqlite_changes(db, NULL, " , ", 0, on_event, NULL, &none));
    CHECK(none == NULL);
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_watch(NULL, "SELECT 1", NULL, on_event, NULL, &none));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_watch(db, NULL, NULL, on_event, NULL, &none));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_watch(db, "SELECT 1", NULL, NULL, NULL, &none));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_watch(db, "SELECT 1", NULL, on_event, NULL, NULL));
    EXPECT_RC(db, HIQLITE_INVALID_REQUEST, hiqlite_watch(db, "SELECT ?", "[1", on_event, NULL, &none));
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_watch(db, "SELECT '\xff'", NULL, on_event, NULL, &none));
    int rc = hiqlite_watch(db, "SELECT * FROM no_such_table", NULL, on_event, NULL, &none);
    if (rc == HIQLITE_OK)
        FAIL("watching a missing table succeeded");
    CHECK_CONTAINS(hiqlite_errmsg(db), "no_such_table");
    CHECK(none == NULL);

    /* The node goes away: an embedded stream gets an error event (HIQLITE_SHUTDOWN) with the
     * cursor to resume at, and close returns that error. */
    seen_t gone;
    seen_init(&gone);
    hiqlite_listener *l_gone = NULL;
    OK(db, hiqlite_changes(db, NULL, NULL, 0, on_event, &gone, &l_gone));
    OK(NULL, hiqlite_close(db));
    WAIT_FOR(&gone, gone.errors == 1, "the embedded stream got its error event");
    CHECK(gone.error_code == HIQLITE_SHUTDOWN);
    EXPECT_RC(NULL, HIQLITE_SHUTDOWN, hiqlite_listener_close(l_gone));
    CHECK(count_of(&gone) == 0);

    seen_free(&gone);
    seen_free(&rw);
    seen_free(&old);
    seen_free(&rest);
    seen_free(&far);
    seen_free(&first);
    seen_free(&watch);
    OK(NULL, hiqlite_close(remote));
    printf("changes: ok\n");
    return 0;
}
