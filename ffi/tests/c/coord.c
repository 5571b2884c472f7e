/* Key/value entries and counters from C, on a one-node cluster and through a remote client
 * talking to its HTTP API: put/get of binary values, absent keys, TTL expiry (waited for as a
 * condition), compare-and-swap, get-and-delete, namespace limits, counters and their overflow,
 * locks with fencing tokens, and bad input.
 *
 * usage: coord DATA_DIR */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <time.h>

#include "check.h"

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* `key` in `ns` holds exactly the `want_len` bytes at `want` (want NULL: absent). */
static void expect_value(hiqlite_db *db, const char *ns, const char *key, const void *want,
                         size_t want_len) {
    void *v = (void *)1;
    size_t n = 99;
    OK(db, hiqlite_kv_get(db, ns, key, HIQLITE_CONSISTENCY_LINEARIZABLE, &v, &n));
    if (want == NULL) {
        if (v != NULL)
            FAIL("%s/%s: want absent, got %zu bytes", ns, key, n);
        CHECK(n == 0);
        return;
    }
    if (v == NULL)
        FAIL("%s/%s: want %zu bytes, got none", ns, key, want_len);
    if (n != want_len || memcmp(v, want, n) != 0)
        FAIL("%s/%s: wrong value (%zu bytes)", ns, key, n);
    hiqlite_free_bytes(v, n);
}

static void primitives(hiqlite_db *db) {
    const unsigned char bin[5] = {0, 1, 255, 0, 7};
    OK(db, hiqlite_kv_put(db, "c-ns", "bin", bin, sizeof bin, 0));
    expect_value(db, "c-ns", "bin", bin, sizeof bin);
    expect_value(db, "c-ns", "missing", NULL, 0);
    /* An empty value is a value, not an absence. */
    OK(db, hiqlite_kv_put(db, "c-ns", "empty", NULL, 0, 0));
    expect_value(db, "c-ns", "empty", "", 0);

    int swapped = -1;
    OK(db, hiqlite_kv_replace(db, "c-ns", "owner", NULL, 0, "a", 1, 0, &swapped));
    CHECK(swapped == 1);
    OK(db, hiqlite_kv_replace(db, "c-ns", "owner", NULL, 0, "b", 1, 0, &swapped));
    CHECK(swapped == 0);
    OK(db, hiqlite_kv_replace(db, "c-ns", "owner", "a", 1, "b", 1, 0, &swapped));
    CHECK(swapped == 1);
    expect_value(db, "c-ns", "owner", "b", 1);

    void *v = NULL;
    size_t n = 0;
    OK(db, hiqlite_kv_get_and_delete(db, "c-ns", "owner", &v, &n));
    CHECK(v != NULL && n == 1 && memcmp(v, "b", 1) == 0);
    hiqlite_free_bytes(v, n);
    OK(db, hiqlite_kv_get_and_delete(db, "c-ns", "owner", &v, &n));
    CHECK(v == NULL && n == 0);
    int deleted = -1;
    OK(db, hiqlite_kv_delete(db, "c-ns", "bin", &deleted));
    CHECK(deleted == 1);
    OK(db, hiqlite_kv_delete(db, "c-ns", "bin", &deleted));
    CHECK(deleted == 0);

    OK(db, hiqlite_kv_set_limit(db, "c-lru", 2));
    OK(db, hiqlite_kv_put(db, "c-lru", "k1", "1", 1, 0));
    OK(db, hiqlite_kv_put(db, "c-lru", "k2", "2", 1, 0));
    OK(db, hiqlite_kv_put(db, "c-lru", "k3", "3", 1, 0));
    expect_value(db, "c-lru", "k1", NULL, 0);
    expect_value(db, "c-lru", "k3", "3", 1);
    OK(db, hiqlite_kv_set_limit(db, "c-lru", -1));

    int64_t c = 0;
    OK(db, hiqlite_counter_add(db, "c-count", 5, &c));
    OK(db, hiqlite_counter_add(db, "c-count", -2, &c));
    CHECK(c == 3);
    OK(db, hiqlite_counter_get(db, "c-count", HIQLITE_CONSISTENCY_LINEARIZABLE, &c));
    CHECK(c == 3);
    OK(db, hiqlite_counter_set(db, "c-count", INT64_MAX));
    EXPECT_RC(db, HIQLITE_INVALID_REQUEST, hiqlite_counter_add(db, "c-count", 1, &c));
    OK(db, hiqlite_counter_get(db, "c-count", HIQLITE_CONSISTENCY_LINEARIZABLE, &c));
    CHECK(c == INT64_MAX);
    OK(db, hiqlite_counter_set(db, "c-count", 0));

    /* Locks: exclusive, tokens that grow, a timeout for a waiter that gives up. */
    hiqlite_lock *a = NULL, *b = NULL;
    OK(db, hiqlite_lock_acquire(db, "c-lock", 60000, 60000, &a));
    CHECK(a != NULL && hiqlite_lock_is_held(a) == 1);
    int64_t first = hiqlite_lock_token(a);
    CHECK(first > 0);
    OK(db, hiqlite_try_lock(db, "c-lock", 60000, &b));
    CHECK(b == NULL);
    EXPECT_RC(db, HIQLITE_TIMEOUT, hiqlite_lock_acquire(db, "c-lock", 60000, 10, &b));
    CHECK(b == NULL);
    int was_held = -1;
    OK(db, hiqlite_lock_release(a, &was_held));
    CHECK(was_held == 1);
    OK(db, hiqlite_try_lock(db, "c-lock", 60000, &b));
    CHECK(b != NULL && hiqlite_lock_token(b) > first);
    OK(db, hiqlite_lock_release(b, NULL));
    OK(NULL, hiqlite_lock_release(NULL, NULL));
    CHECK(hiqlite_lock_token(NULL) == 0 && hiqlite_lock_is_held(NULL) == 0);
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_lock_acquire(db, "c-lock", 60000, 0, NULL));
    EXPECT_RC(db, HIQLITE_INVALID_REQUEST, hiqlite_lock_acquire(db, "c-lock", 0, 0, &b));

    /* Bad input: clear codes, nothing stored. */
    EXPECT_RC(db, HIQLITE_INVALID_REQUEST, hiqlite_kv_put(db, "", "k", "v", 1, 0));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_kv_put(db, NULL, "k", "v", 1, 0));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_kv_put(db, "ns", "k", NULL, 3, 0));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_kv_get(db, "ns", "k", HIQLITE_CONSISTENCY_LOCAL, NULL, &n));
    EXPECT_RC(db, HIQLITE_INVALID_UTF8, hiqlite_kv_delete(db, "ns", "\xff", NULL));
}

int main(int argc, char **argv) {
    if (argc != 2)
        FAIL("usage: %s DATA_DIR", argv[0]);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "node_id = 1\ndata_dir = \"%s/node-1\"\nraft_addr = \"127.0.0.1:0\"\n"
             "api_addr = \"127.0.0.1:0\"\nsecret = \"c-coord-secret\"\n"
             "heartbeat_ms = 200\nelection_timeout_min_ms = 4000\nelection_timeout_max_ms = 8000\n"
             "request_timeout_ms = 120000\n",
             argv[1]);
    hiqlite_db *db = NULL;
    OK(NULL, hiqlite_open_node(cfg, &db));
    OK(db, hiqlite_wait_for_leader(db, 120000, NULL));
    primitives(db);

    /* Expiry: the key goes away by itself (the leader's clock), waited for as a condition. */
    OK(db, hiqlite_kv_put(db, "c-ttl", "k", "v", 1, 50));
    for (int i = 0;; i++) {
        void *v = NULL;
        size_t n = 0;
        OK(db, hiqlite_kv_get(db, "c-ttl", "k", HIQLITE_CONSISTENCY_LOCAL, &v, &n));
        if (v == NULL)
            break;
        hiqlite_free_bytes(v, n);
        if (i > 6000)
            FAIL("a key with a 50 ms TTL still exists after minutes");
        sleep_ms(20);
    }

    /* The same calls through a remote client on the node's HTTP API. */
    char *api = NULL;
    OK(db, hiqlite_node_info(db, NULL, NULL, &api));
    char url[256];
    snprintf(url, sizeof url, "http://%s", api);
    hiqlite_free(api);
    hiqlite_db *remote = NULL;
    OK(NULL, hiqlite_open_remote_with(url, "timeout_ms = 300000", &remote));
    primitives(remote);
    OK(NULL, hiqlite_close(remote));
    OK(NULL, hiqlite_close(db));
    printf("coord: ok\n");
    return 0;
}
