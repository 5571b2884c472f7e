/* Backups, restores and migrations from C, on a one-node cluster and through a remote client:
 * migrations from JSON and from a folder of numbered .sql files (applied once), a backup with
 * its log index, a restore that brings the rows back and drops a table added since, and bad
 * input (NULL, a missing file, malformed JSON, a file that is not a database).
 *
 * usage: maintenance DATA_DIR */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <sys/stat.h>

#include "check.h"

static void write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (f == NULL)
        FAIL("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

/* The JSON answer of `sql` contains `part`. */
static void expect_query(hiqlite_db *db, const char *sql, const char *part) {
    char *json = NULL;
    OK(db, hiqlite_query_json(db, sql, NULL, HIQLITE_CONSISTENCY_LEADER, &json));
    CHECK_CONTAINS(json, part);
    hiqlite_free(json);
}

static void round_trip(hiqlite_db *db, const char *dir, const char *name) {
    char backup[1024];
    snprintf(backup, sizeof backup, "%s/%s.db", dir, name);
    int64_t index = -2;
    OK(db, hiqlite_backup(db, backup, &index));
    CHECK(index >= -1);
    /* It refuses to overwrite a file. */
    EXPECT_RC(db, HIQLITE_INVALID_REQUEST, hiqlite_backup(db, backup, NULL));
    CHECK_CONTAINS(hiqlite_errmsg(db), "exists");
    OK(db, hiqlite_exec(db, "DELETE FROM t", NULL, NULL));
    OK(db, hiqlite_exec(db, "CREATE TABLE added_later (x)", NULL, NULL));
    expect_query(db, "SELECT count(*) FROM t", "[[0]]");
    OK(db, hiqlite_restore(db, backup));
    expect_query(db, "SELECT count(*) FROM t", "[[3]]");
    expect_query(db, "SELECT count(*) FROM sqlite_master WHERE name = 'added_later'", "[[0]]");
}

int main(int argc, char **argv) {
    if (argc != 2)
        FAIL("usage: %s DATA_DIR", argv[0]);
    char cfg[1024];
    snprintf(cfg, sizeof cfg,
             "node_id = 1\ndata_dir = \"%s/node-1\"\nraft_addr = \"127.0.0.1:0\"\n"
             "api_addr = \"127.0.0.1:0\"\nsecret = \"c-maint-secret\"\n"
             "heartbeat_ms = 200\nelection_timeout_min_ms = 4000\nelection_timeout_max_ms = 8000\n"
             "request_timeout_ms = 120000\n",
             argv[1]);
    hiqlite_db *db = NULL;
    OK(NULL, hiqlite_open_node(cfg, &db));
    OK(db, hiqlite_wait_for_leader(db, 120000, NULL));

    const char *migrations =
        "[{\"id\": 1, \"name\": \"init\", \"sql\": \"CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)\"},"
        " {\"id\": 2, \"name\": \"seed\", \"sql\": \"INSERT INTO t (v) VALUES ('a'), ('b')\"}]";
    int applied = -1;
    OK(db, hiqlite_migrate(db, migrations, &applied));
    CHECK(applied == 2);
    OK(db, hiqlite_migrate(db, migrations, &applied));
    CHECK(applied == 0);

    char folder[1024], path[1100];
    snprintf(folder, sizeof folder, "%s/migrations", argv[1]);
    mkdir(folder, 0700);
    snprintf(path, sizeof path, "%s/1_init.sql", folder);
    write_file(path, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)");
    snprintf(path, sizeof path, "%s/002_seed.sql", folder);
    write_file(path, "INSERT INTO t (v) VALUES ('a'), ('b')");
    snprintf(path, sizeof path, "%s/003_more.sql", folder);
    write_file(path, "INSERT INTO t (v) VALUES ('c');");
    snprintf(path, sizeof path, "%s/notes.txt", folder);
    write_file(path, "not a migration");
    OK(db, hiqlite_migrate_dir(db, folder, &applied));
    CHECK(applied == 1);
    expect_query(db, "SELECT count(*) FROM t", "[[3]]");

    round_trip(db, argv[1], "embedded");

    /* Bad input: a clear error, never a crash. */
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_backup(db, NULL, NULL));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_restore(db, NULL));
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_migrate(db, "{not json", &applied));
    CHECK_CONTAINS(hiqlite_errmsg(db), "migrations_json");
    EXPECT_RC(db, HIQLITE_MISUSE, hiqlite_migrate_dir(db, NULL, &applied));
    CHECK(hiqlite_migrate_dir(db, "/no/such/folder", &applied) != HIQLITE_OK);
    CHECK(hiqlite_restore(db, "/no/such/file.db") != HIQLITE_OK);
    snprintf(path, sizeof path, "%s/junk.db", argv[1]);
    write_file(path, "this is not a database");
    CHECK(hiqlite_restore(db, path) != HIQLITE_OK);
    expect_query(db, "SELECT count(*) FROM t", "[[3]]");
    EXPECT_RC(NULL, HIQLITE_MISUSE, hiqlite_backup(NULL, "x", NULL));

    /* The same through a remote client on the node's HTTP API. */
    char *api = NULL;
    OK(db, hiqlite_node_info(db, NULL, NULL, &api));
    char url[256];
    snprintf(url, sizeof url, "http://%s", api);
    hiqlite_free(api);
    hiqlite_db *remote = NULL;
    OK(NULL, hiqlite_open_remote_with(url, "timeout_ms = 300000", &remote));
    OK(remote, hiqlite_migrate(remote, migrations, &applied));
    CHECK(applied == 0);
    round_trip(remote, argv[1], "remote");
    OK(NULL, hiqlite_close(remote));
    OK(NULL, hiqlite_close(db));
    printf("maintenance: ok\n");
    return 0;
}
