/* listen/notify from C, on a one-node cluster and through a remote client on its HTTP API:
 * every notification reaches the callbacks in order (embedded and remote at once), binary and
 * empty payloads, resuming after an id, a callback that stops by returning nonzero, close
 * waiting for a running callback, close from inside the callback, the callback calling the
 * library, the error event when the node goes away, and bad input.
 * Conditions are waited for with generous deadlines, never by sleeping for a time.
 *
 * usage: listen DATA_DIR */
#define _POSIX_C_SOURCE 200809L
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "check.h"

#define N 300
#define DEADLINE_S 300

/* What one listener's callback saw, guarded by `m`. */
typedef struct {
    pthread_mutex_t m;
    pthread_cond_t cv;
    int64_t ids[N + 8];
    unsigned char pay[N + 8][16]; /* payloads (at most 16 bytes here) */
    size_t plen[N + 8];
    int count;      /* notifications */
    int lagged;     /* lag markers (allowed; never `lost` here) */
    int lost;
    int errors;     /* error events */
    int error_code; /* of the last error event */
    int bad;        /* a wrong channel or payload was seen */
    int64_t stop_at;          /* return nonzero after this id (0: never) */
    hiqlite_db *call_db;      /* call the library from the callback on the first event */
    int call_rc;
    hiqlite_listener *self;   /* close this from inside the callback on the first event */
    int self_close_rc;
    int block;                /* block in the callback until `release` */
    int entered, release, finished;
} seen_t;

static void seen_init(seen_t *s) {
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->m, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->call_rc = -1;
    s->self_close_rc = -1;
}

static void seen_free(seen_t *s) {
    pthread_mutex_destroy(&s->m);
    pthread_cond_destroy(&s->cv);
}

static void payload_of(int i, char *buf, size_t n) { snprintf(buf, n, "msg-%d", i); }

static int on_event(void *user_data, const hiqlite_listen_event *ev) {
    seen_t *s = user_data;
    pthread_mutex_lock(&s->m);
    int stop = 0;
    if (strcmp(ev->channel, "c-ch") != 0 && strcmp(ev->channel, "c-bin") != 0)
        s->bad = 1;
    if (ev->kind == HIQLITE_EVENT_NOTIFICATION) {
        if (ev->payload == NULL || ev->payload_len > sizeof s->pay[0])
            s->bad = 1;
        else if (s->count < N + 8) {
            memcpy(s->pay[s->count], ev->payload, ev->payload_len);
            s->plen[s->count] = ev->payload_len;
        }
        if (s->count < N + 8)
            s->ids[s->count] = ev->id;
        s->count++;
        if (s->stop_at != 0 && ev->id >= s->stop_at)
            stop = 1;
    } else if (ev->kind == HIQLITE_EVENT_LAGGED) {
        s->lagged++;
        s->lost += ev->lost;
    } else if (ev->kind == HIQLITE_EVENT_ERROR) {
        s->errors++;
        s->error_code = ev->error_code;
        if (ev->error_message == NULL || ev->error_code == HIQLITE_OK)
            s->bad = 1;
    } else {
        s->bad = 1;
    }
    hiqlite_db *call_db = s->call_db;
    s->call_db = NULL;
    hiqlite_listener *self = s->self;
    s->self = NULL;
    if (s->block) {
        s->entered = 1;
        pthread_cond_broadcast(&s->cv);
        while (!s->release)
            pthread_cond_wait(&s->cv, &s->m);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->m);

    /* Outside the lock: calls into the library from the callback's thread. */
    if (call_db != NULL) {
        int rc = hiqlite_counter_add(call_db, "c-listen-calls", 1, NULL);
        pthread_mutex_lock(&s->m);
        s->call_rc = rc;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->m);
    }
    if (self != NULL) {
        int rc = hiqlite_listener_close(self);
        pthread_mutex_lock(&s->m);
        s->self_close_rc = rc;
        pthread_cond_broadcast(&s->cv);
        pthread_mutex_unlock(&s->m);
    }
    if (s->block) {
        pthread_mutex_lock(&s->m);
        s->finished = 1;
        pthread_mutex_unlock(&s->m);
    }
    return stop;
}

/* Wait until `cond` holds for `s` (checked under its lock), or fail after the deadline. */
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

/* Publish one more notification on `ch` and wait until the sentinel listener saw it: every
 * listener of the node has been offered it by then, in log order. */
static void barrier(hiqlite_db *db, seen_t *sentinel) {
    int before = count_of(sentinel);
    OK(db, hiqlite_notify(db, "c-ch", "barrier", 7, NULL));
    WAIT_FOR(sentinel, sentinel->count > before, "the sentinel saw the barrier");
}

/* `s` saw exactly the notifications `ids[first..first+n)`, "msg-<i>" each, in that order. */
static void check_in_order(seen_t *s, const int64_t *ids, int first, int n, const char *who) {
    pthread_mutex_lock(&s->m);
    if (s->count != n)
        FAIL("%s saw %d notifications, want %d", who, s->count, n);
    for (int i = 0; i < n; i++) {
        char want[32];
        payload_of(first + i, want, sizeof want);
        if (s->ids[i] != ids[first + i])
            FAIL("%s: notification %d has id %lld, want %lld", who, i, (long long)s->ids[i],
                 (long long)ids[first + i]);
        if (s->plen[i] != strlen(want) || memcmp(s->pay[i], want, s->plen[i]) != 0)
            FAIL("%s: notification %d has payload %.*s, want %s", who, i, (int)s->plen[i],
                 (const char *)s->pay[i], want);
    }
    if (s->bad || s->lost || s->errors)
        FAIL("%s: bad %d, lost %d, errors %d", who, s->bad, s->lost, s->errors);
    pthread_mutex_unlock(&s->m);
}

int main(int argc, char **argv) {
    if (argc != 2)
        FAIL("usage: %s DATA_DIR", argv[0]);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "node_id = 1\ndata_dir = \"%s/node-1\"\nraft_addr = \"127.0.0.1:0\"\n"
             "api_addr = \"127.0.0.1:0\"\nsecret = \"c-listen-secret\"\n"
             "heartbeat_ms = 200\nelection_timeout_min_ms = 4000\nelection_timeout_max_ms = 8000\n"
             "request_timeout_ms = 120000\n",
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

    /* Every notification, in order, embedded and remote; the callback may call the library. */
    seen_t local, far;
    seen_init(&local);
    seen_init(&far);
    local.call_db = db;
    hiqlite_listener *l_local = NULL, *l_far = NULL;
    OK(db, hiqlite_listen(db, "c-ch", HIQLITE_LISTEN_FROM_NOW, on_event, &local, &l_local));
    OK(remote, hiqlite_listen(remote, "c-ch", HIQLITE_LISTEN_FROM_NOW, on_event, &far, &l_far));
    CHECK(l_local != NULL && l_far != NULL);
    int64_t ids[N];
    for (int i = 0; i < N; i++) {
        char p[32];
        payload_of(i, p, sizeof p);
        OK(db, hiqlite_notify(i % 2 ? db : remote, "c-ch", p, strlen(p), &ids[i]));
        if (i > 0 && ids[i] <= ids[i - 1])
            FAIL("ids do not grow: %lld after %lld", (long long)ids[i], (long long)ids[i - 1]);
    }
    WAIT_FOR(&local, local.count >= N, "the embedded listener saw every notification");
    WAIT_FOR(&far, far.count >= N, "the remote listener saw every notification");
    check_in_order(&local, ids, 0, N, "embedded");
    check_in_order(&far, ids, 0, N, "remote");
    WAIT_FOR(&local, local.call_rc != -1, "the callback's own call returned");
    CHECK(local.call_rc == HIQLITE_OK);
    OK(db, hiqlite_listener_close(l_far));

    /* Binary and empty payloads come back exactly. */
    seen_t bin;
    seen_init(&bin);
    hiqlite_listener *l_bin = NULL;
    OK(db, hiqlite_listen(db, "c-bin", HIQLITE_LISTEN_FROM_NOW, on_event, &bin, &l_bin));
    const unsigned char raw[4] = {0, 255, 0, 7};
    int64_t bin_ids[2];
    OK(db, hiqlite_notify(db, "c-bin", raw, sizeof raw, &bin_ids[0]));
    OK(db, hiqlite_notify(db, "c-bin", NULL, 0, &bin_ids[1]));
    WAIT_FOR(&bin, bin.count == 2, "both binary notifications arrived");
    CHECK(bin.ids[0] == bin_ids[0] && bin.ids[1] == bin_ids[1] && !bin.bad);
    CHECK(bin.plen[0] == sizeof raw && memcmp(bin.pay[0], raw, sizeof raw) == 0);
    CHECK(bin.plen[1] == 0);
    OK(db, hiqlite_listener_close(l_bin));
    seen_free(&bin);

    /* Resume after an id: exactly what followed it; the callback stops after the last one by
     * returning nonzero, and is not called again. */
    seen_t resumed;
    seen_init(&resumed);
    resumed.stop_at = ids[N - 1];
    hiqlite_listener *l_res = NULL;
    OK(db, hiqlite_listen(db, "c-ch", ids[N / 2 - 1], on_event, &resumed, &l_res));
    WAIT_FOR(&resumed, resumed.count >= N - N / 2, "the resumed listener caught up");
    barrier(db, &local);
    check_in_order(&resumed, ids, N / 2, N - N / 2, "resumed");
    OK(db, hiqlite_listener_close(l_res));
    seen_free(&resumed);

    /* Close waits for a running callback, and no callback follows it. */
    seen_t slow;
    seen_init(&slow);
    slow.block = 1;
    hiqlite_listener *l_slow = NULL;
    OK(db, hiqlite_listen(db, "c-ch", HIQLITE_LISTEN_FROM_NOW, on_event, &slow, &l_slow));
    OK(db, hiqlite_notify(db, "c-ch", "one", 3, NULL));
    OK(db, hiqlite_notify(db, "c-ch", "two", 3, NULL));
    WAIT_FOR(&slow, slow.entered, "the slow callback runs");
    pthread_mutex_lock(&slow.m);
    slow.release = 1; /* it returns soon, maybe before close begins, maybe while close waits */
    pthread_cond_broadcast(&slow.cv);
    pthread_mutex_unlock(&slow.m);
    OK(db, hiqlite_listener_close(l_slow));
    pthread_mutex_lock(&slow.m);
    CHECK(slow.finished == 1);
    int after_close = slow.count;
    pthread_mutex_unlock(&slow.m);
    barrier(db, &local);
    CHECK(count_of(&slow) == after_close);
    seen_free(&slow);

    /* Close from inside the callback: allowed, returns at once, no further callback. */
    seen_t inside;
    seen_init(&inside);
    hiqlite_listener *l_in = NULL;
    pthread_mutex_lock(&inside.m); /* the handle is stored before the first event is handled */
    OK(db, hiqlite_listen(db, "c-ch", HIQLITE_LISTEN_FROM_NOW, on_event, &inside, &l_in));
    inside.self = l_in;
    pthread_mutex_unlock(&inside.m);
    OK(db, hiqlite_notify(db, "c-ch", "x", 1, NULL));
    WAIT_FOR(&inside, inside.self_close_rc != -1, "the callback closed its own listener");
    CHECK(inside.self_close_rc == HIQLITE_OK);
    barrier(db, &local);
    barrier(db, &local);
    CHECK(count_of(&inside) == 1);
    seen_free(&inside);

    /* Bad input: clear codes, no handle. */
    hiqlite_listener *none = (hiqlite_listener *)&none;
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_listen(NULL, "c-ch", -1, on_event, NULL, &none));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_listen(db, NULL, -1, on_event, NULL, &none));
    CHECK(none == NULL);
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_listen(db, "c-ch", -1, NULL, NULL, &none));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_listen(db, "c-ch", -1, on_event, NULL, NULL));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_listen(db, "c-ch", -2, on_event, NULL, &none));
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_listen(db, "\xff", -1, on_event, NULL, &none));
    EXPECT_RC(db, HIQLITE_INVALID_REQUEST, hiqlite_listen(db, "", -1, on_event, NULL, &none));
    EXPECT_RC(remote, HIQLITE_INVALID_REQUEST, hiqlite_listen(remote, "", -1, on_event, NULL, &none));
    CHECK(none == NULL);
    int64_t id = 99;
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_notify(db, NULL, "x", 1, &id));
    CHECK(id == 0);
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_notify(db, "c-ch", NULL, 3, NULL));
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_notify(db, "\xff", "x", 1, NULL));
    EXPECT_RC(db, HIQLITE_INVALID_REQUEST, hiqlite_notify(db, "", "x", 1, NULL));
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_notify(NULL, "c-ch", "x", 1, NULL));
    OK(NULL, hiqlite_listener_close(NULL));

    /* The node goes away: its listeners get an error event (embedded: HIQLITE_SHUTDOWN; remote:
     * the stream it read ended) as their last callback, and close returns that error. */
    hiqlite_listener *l_gone = NULL;
    seen_t gone;
    seen_init(&gone);
    OK(remote, hiqlite_listen(remote, "c-ch", HIQLITE_LISTEN_FROM_NOW, on_event, &gone, &l_gone));
    barrier(db, &local);
    WAIT_FOR(&gone, gone.count == 1, "the remote listener saw the barrier");
    OK(NULL, hiqlite_close(db));
    WAIT_FOR(&local, local.errors == 1, "the embedded listener got its error event");
    CHECK(local.error_code == HIQLITE_SHUTDOWN);
    WAIT_FOR(&gone, gone.errors == 1, "the remote listener got its error event");
    CHECK(gone.error_code == HIQLITE_UNREACHABLE);
    EXPECT_RC(NULL, HIQLITE_SHUTDOWN, hiqlite_listener_close(l_local));
    CHECK(strstr(hiqlite_errmsg(NULL), "shut") != NULL);
    EXPECT_RC(NULL, HIQLITE_UNREACHABLE, hiqlite_listener_close(l_gone));
    CHECK(local.errors == 1 && gone.errors == 1);
    seen_free(&gone);
    seen_free(&local);
    seen_free(&far);
    OK(NULL, hiqlite_close(remote));
    printf("listen: ok\n");
    return 0;
}
