/* The C face's differential runner (tests/differential/PROTOCOL.md): reads one JSON document on
 * stdin ({"urls": [...], "steps": [...]}), runs the steps through libhiqlite as a remote client
 * of the cluster at `urls`, and writes {"results": [...]} on stdout, one result per step. Logs
 * go to stderr. Exit status 0 once the output is written; 2 for unusable input or a client that
 * cannot be opened.
 *
 * Build (as tests/tests/differential.rs does):
 *   cc ffi/tests/c/differential_runner.c -I include -L target/debug -lhiqlite -o runner
 *   LD_LIBRARY_PATH=target/debug ./runner < input.json
 *
 * - `exec` outside a transaction: `read: true` is a statement prepared with
 *   HIQLITE_PREPARE_READ at consistency linearizable; `read: false` one prepared with
 *   HIQLITE_PREPARE_WRITE (through Raft).
 * - `begin` / `commit` / `rollback`: hiqlite_begin / hiqlite_commit / hiqlite_rollback; every
 *   `exec` in between is a statement prepared on the transaction (hiqlite_tx_prepare), reads
 *   included. `begin` inside a transaction, and `commit`/`rollback` outside one, answer SQLite's
 *   own errors for BEGIN/COMMIT/ROLLBACK in those states.
 * - Errors: `code` is the return code when it is SQLite's (an SQL error), 0 for hiqlite's own
 *   codes (1000..1023); `message` is hiqlite's message. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hiqlite.h"

/* ---------------------------------------------------------------------------------------------
 * A small JSON reader: enough for the runner's input (objects, arrays, strings, numbers,
 * booleans, null), strict about syntax. */

enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

typedef struct jv {
    int type;
    int boolean;
    double num;
    char *str; /* J_STR: NUL-terminated UTF-8 (a \u0000 inside ends it early) */
    size_t n;  /* J_ARR / J_OBJ: number of items */
    struct jv *items;
    char **keys; /* J_OBJ: the key of each item */
} jv;

typedef struct {
    const char *p;
    const char *end;
    const char *error;
} reader;

static void *xrealloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (q == NULL) {
        fprintf(stderr, "differential_runner: out of memory\n");
        exit(2);
    }
    return q;
}

static void skip_ws(reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

static int hex4(reader *r, unsigned *out) {
    if (r->end - r->p < 4)
        return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = *r->p++;
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return 0;
    }
    *out = v;
    return 1;
}

/* Append the UTF-8 encoding of code point `cp`. */
static size_t put_utf8(char *o, unsigned cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xc0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xe0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (char)(0xf0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* At the opening quote; returns a malloc'ed string or NULL (r->error set). */
static char *parse_string(reader *r) {
    r->p++; /* the quote */
    /* The decoded text is never longer than the encoded one. */
    const char *q = r->p;
    while (q < r->end && *q != '"') {
        if (*q == '\\')
            q++;
        q++;
    }
    char *out = xrealloc(NULL, (size_t)(q - r->p) + 1);
    size_t len = 0;
    while (1) {
        if (r->p >= r->end) {
            r->error = "unterminated string";
            free(out);
            return NULL;
        }
        unsigned char c = (unsigned char)*r->p++;
        if (c == '"')
            break;
        if (c < 0x20) {
            r->error = "control character in a string";
            free(out);
            return NULL;
        }
        if (c != '\\') {
            out[len++] = (char)c;
            continue;
        }
        if (r->p >= r->end) {
            r->error = "unterminated escape";
            free(out);
            return NULL;
        }
        char e = *r->p++;
        switch (e) {
        case '"': out[len++] = '"'; break;
        case '\\': out[len++] = '\\'; break;
        case '/': out[len++] = '/'; break;
        case 'b': out[len++] = '\b'; break;
        case 'f': out[len++] = '\f'; break;
        case 'n': out[len++] = '\n'; break;
        case 'r': out[len++] = '\r'; break;
        case 't': out[len++] = '\t'; break;
        case 'u': {
            unsigned cp = 0, lo = 0;
            if (!hex4(r, &cp)) {
                r->error = "bad \\u escape";
                free(out);
                return NULL;
            }
            if (cp >= 0xd800 && cp < 0xdc00 && r->end - r->p >= 6 && r->p[0] == '\\' &&
                r->p[1] == 'u') {
                const char *save = r->p;
                r->p += 2;
                if (hex4(r, &lo) && lo >= 0xdc00 && lo < 0xe000)
                    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                else
                    r->p = save;
            }
            if (cp >= 0xd800 && cp < 0xe000)
                cp = 0xfffd; /* a lone surrogate: no UTF-8 for it */
            len += put_utf8(out + len, cp);
            break;
        }
        default:
            r->error = "bad escape";
            free(out);
            return NULL;
        }
    }
    out[len] = '\0';
    return out;
}

static void jv_free(jv *v) {
    if (v->type == J_STR)
        free(v->str);
    if (v->type == J_ARR || v->type == J_OBJ) {
        for (size_t i = 0; i < v->n; i++) {
            jv_free(&v->items[i]);
            if (v->keys)
                free(v->keys[i]);
        }
        free(v->items);
        free(v->keys);
    }
    memset(v, 0, sizeof *v);
}

static int parse_value(reader *r, jv *out, int depth);

static int parse_container(reader *r, jv *out, int depth, int object) {
    char close = object ? '}' : ']';
    out->type = object ? J_OBJ : J_ARR;
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return 1;
    }
    size_t cap = 0;
    while (1) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 8;
            out->items = xrealloc(out->items, cap * sizeof *out->items);
            if (object)
                out->keys = xrealloc(out->keys, cap * sizeof *out->keys);
        }
        jv *item = &out->items[out->n];
        memset(item, 0, sizeof *item);
        if (object) {
            skip_ws(r);
            if (r->p >= r->end || *r->p != '"') {
                r->error = "expected a key";
                return 0;
            }
            char *key = parse_string(r);
            if (key == NULL)
                return 0;
            out->keys[out->n] = key;
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':') {
                out->n++; /* so that the key is freed */
                r->error = "expected ':'";
                return 0;
            }
            r->p++;
        }
        out->n++;
        if (!parse_value(r, item, depth + 1))
            return 0;
        skip_ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            continue;
        }
        if (r->p < r->end && *r->p == close) {
            r->p++;
            return 1;
        }
        r->error = object ? "expected ',' or '}'" : "expected ',' or ']'";
        return 0;
    }
}

static int literal(reader *r, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return 0;
    r->p += n;
    return 1;
}

static int parse_value(reader *r, jv *out, int depth) {
    memset(out, 0, sizeof *out);
    if (depth > 64) {
        r->error = "nested too deeply";
        return 0;
    }
    skip_ws(r);
    if (r->p >= r->end) {
        r->error = "unexpected end of input";
        return 0;
    }
    char c = *r->p;
    if (c == '{' || c == '[')
        return parse_container(r, out, depth, c == '{');
    if (c == '"') {
        out->str = parse_string(r);
        out->type = J_STR;
        return out->str != NULL;
    }
    if (literal(r, "null")) {
        out->type = J_NULL;
        return 1;
    }
    if (literal(r, "true")) {
        out->type = J_BOOL;
        out->boolean = 1;
        return 1;
    }
    if (literal(r, "false")) {
        out->type = J_BOOL;
        return 1;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        /* strtod needs a terminator: numbers are short, copy one. */
        char buf[64];
        size_t n = 0;
        while (r->p + n < r->end && n < sizeof buf - 1 && strchr("+-0123456789.eE", r->p[n]))
            n++;
        memcpy(buf, r->p, n);
        buf[n] = '\0';
        char *stop = NULL;
        out->num = strtod(buf, &stop);
        if (stop == buf) {
            r->error = "bad number";
            return 0;
        }
        r->p += stop - buf;
        out->type = J_NUM;
        return 1;
    }
    r->error = "unexpected character";
    return 0;
}

static const jv *get(const jv *obj, const char *key) {
    if (obj == NULL || obj->type != J_OBJ)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return &obj->items[i];
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * The output, built in memory and written at the end. */

typedef struct {
    char *buf;
    size_t len, cap;
} out_buf;

static void put_bytes(out_buf *o, const char *s, size_t n) {
    if (o->len + n + 1 > o->cap) {
        o->cap = (o->len + n + 1) * 2;
        o->buf = xrealloc(o->buf, o->cap);
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void put(out_buf *o, const char *s) { put_bytes(o, s, strlen(s)); }

/* A JSON string of `n` bytes of UTF-8 (NUL bytes included). */
static void put_json_string(out_buf *o, const char *s, size_t n) {
    put(o, "\"");
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"')
            put(o, "\\\"");
        else if (c == '\\')
            put(o, "\\\\");
        else if (c == '\n')
            put(o, "\\n");
        else if (c == '\r')
            put(o, "\\r");
        else if (c == '\t')
            put(o, "\\t");
        else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            put(o, esc);
        } else
            put_bytes(o, (const char *)&s[i], 1);
    }
    put(o, "\"");
}

static void put_int(out_buf *o, long long v) {
    char num[32];
    snprintf(num, sizeof num, "%lld", v);
    put(o, num);
}

static void put_err(out_buf *o, int rc, const char *message) {
    /* hiqlite's own codes (1000..1023: unreachable, timeout, ...) are no SQL error: 0, as the
     * protocol asks. SQLite's extended codes (2067...) are kept. */
    int own = rc >= 1000 && rc <= 1023;
    put(o, "{\"err\": {\"code\": ");
    put_int(o, own ? 0 : rc);
    put(o, ", \"message\": ");
    put_json_string(o, message ? message : "", message ? strlen(message) : 0);
    put(o, "}}");
}

static void put_value(out_buf *o, hiqlite_stmt *st, int col) {
    switch (hiqlite_column_type(st, col)) {
    case HIQLITE_INTEGER: {
        char num[32];
        snprintf(num, sizeof num, "{\"int\": \"%lld\"}", (long long)hiqlite_column_int64(st, col));
        put(o, num);
        break;
    }
    case HIQLITE_FLOAT: {
        double d = hiqlite_column_double(st, col);
        if (!isfinite(d)) {
            /* JSON has no infinity or NaN: spelled as strings, as tests/tests/differential.rs
             * reads them. */
            put(o, isnan(d) ? "{\"real\": \"nan\"}" : d > 0 ? "{\"real\": \"inf\"}" : "{\"real\": \"-inf\"}");
            break;
        }
        char num[64];
        snprintf(num, sizeof num, "%.17g", d);
        put(o, "{\"real\": ");
        put(o, num);
        if (strpbrk(num, ".eE") == NULL)
            put(o, ".0"); /* keep it a float for any JSON reader */
        put(o, "}");
        break;
    }
    case HIQLITE_TEXT: {
        const char *t = hiqlite_column_text(st, col);
        put(o, "{\"text\": ");
        put_json_string(o, t ? t : "", t ? (size_t)hiqlite_column_bytes(st, col) : 0);
        put(o, "}");
        break;
    }
    case HIQLITE_BLOB: {
        const unsigned char *b = hiqlite_column_blob(st, col);
        int n = hiqlite_column_bytes(st, col);
        put(o, "{\"blob\": \"");
        for (int i = 0; b != NULL && i < n; i++) {
            char hex[3];
            snprintf(hex, sizeof hex, "%02x", b[i]);
            put(o, hex);
        }
        put(o, "\"}");
        break;
    }
    default:
        put(o, "null");
    }
}

/* ---------------------------------------------------------------------------------------------
 * The steps. */

static void run_exec(out_buf *o, hiqlite_db *db, hiqlite_tx *tx, const char *sql, int read) {
    hiqlite_stmt *st = NULL;
    int rc = tx ? hiqlite_tx_prepare(tx, sql, &st)
                : hiqlite_prepare_flags(db, sql, read ? HIQLITE_PREPARE_READ : HIQLITE_PREPARE_WRITE,
                                        &st);
    if (rc != HIQLITE_OK) {
        put_err(o, rc, hiqlite_errmsg(db));
        return;
    }
    if (!tx && read && (rc = hiqlite_stmt_set_consistency(st, HIQLITE_CONSISTENCY_LINEARIZABLE))) {
        put_err(o, rc, hiqlite_errmsg(db));
        hiqlite_finalize(st);
        return;
    }
    out_buf rows = {0};
    int nrows = 0;
    while ((rc = hiqlite_step(st)) == HIQLITE_ROW) {
        put(&rows, nrows++ ? ", [" : "[");
        for (int c = 0; c < hiqlite_column_count(st); c++) {
            if (c)
                put(&rows, ", ");
            put_value(&rows, st, c);
        }
        put(&rows, "]");
    }
    if (rc != HIQLITE_DONE) {
        put_err(o, rc, hiqlite_stmt_errmsg(st));
    } else {
        put(o, "{\"ok\": {\"columns\": [");
        for (int c = 0; c < hiqlite_column_count(st); c++) {
            const char *name = hiqlite_column_name(st, c);
            if (c)
                put(o, ", ");
            put_json_string(o, name ? name : "", name ? strlen(name) : 0);
        }
        put(o, "], \"rows\": [");
        if (rows.buf)
            put(o, rows.buf);
        put(o, "], \"changes\": ");
        put_int(o, (long long)hiqlite_stmt_changes(st));
        put(o, ", \"last_insert_id\": ");
        put_int(o, (long long)hiqlite_stmt_last_insert_id(st));
        put(o, "}}");
    }
    free(rows.buf);
    hiqlite_finalize(st);
}

static char *read_all(FILE *f, size_t *len) {
    size_t cap = 1 << 16, n = 0;
    char *buf = xrealloc(NULL, cap);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) {
            cap *= 2;
            buf = xrealloc(buf, cap);
        }
    }
    *len = n;
    return buf;
}

int main(void) {
    size_t len = 0;
    char *input = read_all(stdin, &len);
    reader r = {input, input + len, NULL};
    jv doc;
    int parsed = parse_value(&r, &doc, 0);
    skip_ws(&r);
    if (parsed && r.p != r.end) {
        parsed = 0;
        r.error = "trailing characters after the document";
    }
    if (!parsed) {
        fprintf(stderr, "differential_runner: invalid JSON input at byte %ld: %s\n",
                (long)(r.p - input), r.error);
        jv_free(&doc);
        free(input);
        return 2;
    }
    const jv *urls = get(&doc, "urls");
    const jv *steps = get(&doc, "steps");
    if (urls == NULL || urls->type != J_ARR || urls->n == 0 || steps == NULL ||
        steps->type != J_ARR) {
        fprintf(stderr, "differential_runner: the input needs \"urls\" (non-empty) and \"steps\"\n");
        jv_free(&doc);
        free(input);
        return 2;
    }
    out_buf url_list = {0};
    for (size_t i = 0; i < urls->n; i++) {
        if (urls->items[i].type != J_STR) {
            fprintf(stderr, "differential_runner: urls[%zu] is not a string\n", i);
            return 2;
        }
        if (i)
            put(&url_list, ",");
        put(&url_list, urls->items[i].str);
    }

    hiqlite_db *db = NULL;
    int rc = hiqlite_open_remote_with(url_list.buf, "timeout_ms = 300000", &db);
    free(url_list.buf);
    if (rc != HIQLITE_OK) {
        fprintf(stderr, "differential_runner: cannot open a client (%d): %s\n", rc,
                hiqlite_errmsg(NULL));
        jv_free(&doc);
        free(input);
        return 2;
    }

    out_buf o = {0};
    put(&o, "{\"results\": [");
    hiqlite_tx *tx = NULL;
    for (size_t i = 0; i < steps->n; i++) {
        const jv *step = &steps->items[i];
        const jv *op = get(step, "op");
        const char *name = op && op->type == J_STR ? op->str : "";
        if (i)
            put(&o, ",\n ");
        if (strcmp(name, "exec") == 0) {
            const jv *sql = get(step, "sql");
            const jv *read = get(step, "read");
            if (sql == NULL || sql->type != J_STR) {
                fprintf(stderr, "differential_runner: steps[%zu] has no \"sql\" string\n", i);
                put_err(&o, HIQLITE_MISUSE, "the step has no sql");
                continue;
            }
            run_exec(&o, db, tx, sql->str, read && read->type == J_BOOL && read->boolean);
        } else if (strcmp(name, "begin") == 0) {
            if (tx != NULL) {
                put_err(&o, 1, "cannot start a transaction within a transaction");
            } else if ((rc = hiqlite_begin(db, &tx)) != HIQLITE_OK) {
                put_err(&o, rc, hiqlite_errmsg(db));
            } else {
                put(&o, "{\"ok\": {}}");
            }
        } else if (strcmp(name, "commit") == 0 || strcmp(name, "rollback") == 0) {
            int commit = name[0] == 'c';
            if (tx == NULL) {
                put_err(&o, 1,
                        commit ? "cannot commit - no transaction is active"
                               : "cannot rollback - no transaction is active");
                continue;
            }
            /* Both end the transaction and release the handle, whatever they return. */
            rc = commit ? hiqlite_commit(tx) : hiqlite_rollback(tx);
            tx = NULL;
            if (rc != HIQLITE_OK)
                put_err(&o, rc, hiqlite_errmsg(db));
            else
                put(&o, "{\"ok\": {}}");
        } else {
            fprintf(stderr, "differential_runner: steps[%zu]: unknown op \"%s\"\n", i, name);
            put_err(&o, HIQLITE_MISUSE, "unknown op");
        }
    }
    put(&o, "]}\n");
    if (tx != NULL)
        hiqlite_rollback(tx);
    hiqlite_close(db);
    fwrite(o.buf, 1, o.len, stdout);
    fflush(stdout);
    free(o.buf);
    jv_free(&doc);
    free(input);
    return 0;
}
