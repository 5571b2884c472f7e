/* Tiny assertion helpers shared by the C tests. A failed check prints where and why, with the
 * library's message, and exits non-zero. */
#ifndef HIQLITE_TEST_CHECK_H
#define HIQLITE_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hiqlite.h"

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                            \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        exit(1);                                                                                   \
    } while (0)

/* `call` must return `want`; on failure print the code and the handle's message. */
#define EXPECT_RC(db, want, call)                                                                  \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != (want))                                                                         \
            FAIL("%s returned %d, want %d: %s", #call, rc_, (int)(want), hiqlite_errmsg(db));     \
    } while (0)

#define OK(db, call) EXPECT_RC(db, HIQLITE_OK, call)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            FAIL("check failed: %s", #cond);                                                       \
    } while (0)

#define CHECK_STR(got, want)                                                                       \
    do {                                                                                           \
        const char *g_ = (got);                                                                    \
        const char *w_ = (want);                                                                   \
        if (g_ == NULL || strcmp(g_, w_) != 0)                                                     \
            FAIL("%s is \"%s\", want \"%s\"", #got, g_ ? g_ : "(null)", w_);                       \
    } while (0)

#define CHECK_CONTAINS(got, part)                                                                  \
    do {                                                                                           \
        const char *g_ = (got);                                                                    \
        if (g_ == NULL || strstr(g_, (part)) == NULL)                                              \
            FAIL("%s is \"%s\", want it to contain \"%s\"", #got, g_ ? g_ : "(null)", (part));     \
    } while (0)

#endif
