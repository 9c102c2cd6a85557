/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * apr_pool_shim.c - the APR pool calls the core makes, replaced for the fuzz
 * binaries: every allocation is its own malloc, remembered by its pool and
 * freed (after the cleanups) when the pool is destroyed.
 *
 * A real pool carves allocations out of 8 KiB blocks, so an overflow of one
 * allocation lands in the next and AddressSanitizer never sees it; here each
 * allocation has redzones of its own.  libapr's own functions (apr_array_*,
 * apr_table_*) allocate through apr_palloc's PLT entry, so this definition
 * serves them too.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_pools.h"
#include "apr_strings.h"

typedef struct shim_cleanup {
    struct shim_cleanup *next;
    const void *data;
    apr_status_t (*fn)(void *);
} shim_cleanup;

struct apr_pool_t {
    void **blocks;
    apr_size_t nblocks, cap;
    shim_cleanup *cleanups;
};

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "apr_pool_shim: out of memory\n");
        abort();
    }
    return p;
}

apr_status_t apr_pool_create_ex(apr_pool_t **newpool, apr_pool_t *parent,
                                apr_abortfunc_t abort_fn,
                                apr_allocator_t *allocator)
{
    (void)parent; (void)abort_fn; (void)allocator;
    *newpool = must(calloc(1, sizeof(**newpool)));
    return APR_SUCCESS;
}

static void run_cleanups(apr_pool_t *p)
{
    while (p->cleanups) {
        shim_cleanup *c = p->cleanups;
        p->cleanups = c->next;
        c->fn((void *)c->data);
        free(c);
    }
}

void apr_pool_clear(apr_pool_t *p)
{
    apr_size_t i;

    run_cleanups(p);
    for (i = 0; i < p->nblocks; i++)
        free(p->blocks[i]);
    p->nblocks = 0;
}

void apr_pool_destroy(apr_pool_t *p)
{
    apr_pool_clear(p);
    free(p->blocks);
    free(p);
}

void *apr_palloc(apr_pool_t *p, apr_size_t size)
{
    /* malloc(0) may return NULL; APR never does */
    void *mem = must(malloc(size ? size : 1));

    if (p->nblocks == p->cap) {
        p->cap = p->cap ? p->cap * 2 : 64;
        p->blocks = must(realloc(p->blocks, p->cap * sizeof(*p->blocks)));
    }
    p->blocks[p->nblocks++] = mem;
    return mem;
}

#undef apr_pcalloc
void *apr_pcalloc(apr_pool_t *p, apr_size_t size)
{
    return memset(apr_palloc(p, size), 0, size);
}

void apr_pool_cleanup_register(apr_pool_t *p, const void *data,
                               apr_status_t (*plain_cleanup)(void *),
                               apr_status_t (*child_cleanup)(void *))
{
    shim_cleanup *c = must(malloc(sizeof(*c)));

    (void)child_cleanup;
    c->data = data;
    c->fn = plain_cleanup;
    c->next = p->cleanups;
    p->cleanups = c;
}

apr_status_t apr_pool_cleanup_null(void *data)
{
    (void)data;
    return APR_SUCCESS;
}

char *apr_pstrmemdup(apr_pool_t *p, const char *s, apr_size_t n)
{
    char *out;

    if (!s)
        return NULL;
    out = apr_palloc(p, n + 1);
    memcpy(out, s, n);
    out[n] = '\0';
    return out;
}

char *apr_pstrdup(apr_pool_t *p, const char *s)
{
    return s ? apr_pstrmemdup(p, s, strlen(s)) : NULL;
}

char *apr_pstrndup(apr_pool_t *p, const char *s, apr_size_t n)
{
    return s ? apr_pstrmemdup(p, s, strnlen(s, n)) : NULL;
}

void *apr_pmemdup(apr_pool_t *p, const void *m, apr_size_t n)
{
    return m ? memcpy(apr_palloc(p, n), m, n) : NULL;
}

char *apr_pvsprintf(apr_pool_t *p, const char *fmt, va_list ap)
{
    va_list again;
    int n;
    char *out;

    va_copy(again, ap);
    n = vsnprintf(NULL, 0, fmt, ap);
    if (n < 0)
        abort();
    out = apr_palloc(p, (apr_size_t)n + 1);
    vsnprintf(out, (size_t)n + 1, fmt, again);
    va_end(again);
    return out;
}

char *apr_psprintf(apr_pool_t *p, const char *fmt, ...)
{
    va_list ap;
    char *out;

    va_start(ap, fmt);
    out = apr_pvsprintf(p, fmt, ap);
    va_end(ap);
    return out;
}

char *apr_pstrcat(apr_pool_t *p, ...)
{
    va_list ap;
    const char *s;
    apr_size_t len = 0;
    char *out, *o;

    va_start(ap, p);
    while ((s = va_arg(ap, const char *)) != NULL)
        len += strlen(s);
    va_end(ap);
    o = out = apr_palloc(p, len + 1);
    va_start(ap, p);
    while ((s = va_arg(ap, const char *)) != NULL) {
        apr_size_t n = strlen(s);
        memcpy(o, s, n);
        o += n;
    }
    va_end(ap);
    *o = '\0';
    return out;
}
