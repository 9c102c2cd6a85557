/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * fuzz_common.h - helpers shared by the libFuzzer targets.
 */
#ifndef FUZZ_COMMON_H
#define FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_pools.h"

#include <openssl/err.h>

/* A property the code under test promised and broke: a finding, reported
 * as a crash so libFuzzer saves the input. */
#define FUZZ_ASSERT(cond, what)                                           \
    do {                                                                  \
        if (!(cond)) {                                                    \
            fprintf(stderr, "fuzz: broken promise at %s:%d: %s\n",        \
                    __FILE__, __LINE__, (what));                          \
            abort();                                                      \
        }                                                                 \
    } while (0)

static inline apr_pool_t *fuzz_pool(void)
{
    apr_pool_t *pool = NULL;
    apr_pool_create(&pool, NULL);
    return pool;
}

/* The input as a NUL-terminated string in a buffer of exactly len + 1
 * bytes, as httpd hands over a header value (cut at the first NUL). */
static inline char *fuzz_cstring(const uint8_t *data, size_t len)
{
    char *s = malloc(len + 1);
    if (!s)
        abort();
    memcpy(s, data, len);
    s[len] = '\0';
    return s;
}

/* The end of a run through OpenSSL-backed code: each call must leave the
 * thread's error queue as it found it (a stale error would be blamed on the
 * next request's operation), then the request pool goes. */
static inline void fuzz_end_openssl(apr_pool_t *pool)
{
    FUZZ_ASSERT(ERR_peek_error() == 0, "the OpenSSL error queue was left dirty");
    apr_pool_destroy(pool);
}

#endif
