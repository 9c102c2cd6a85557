/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_body.c - read a check-in body once, and hand it on intact.
 *
 * The handler reads at most GetTokenMaxBodySize bytes to see whether the
 * message is a GetToken.  When it is not, the bytes read are put back in
 * front of the rest of the body by an input filter, so that the handler
 * that really serves the location (mod_proxy, CGI, another module) reads
 * the very same bytes: what was read first, then the remainder streamed
 * from the client.  Memory held is bounded by the cap.
 */
#include "gettoken_private.h"
#include "gettoken_body.h"

#include <stdlib.h>
#include <string.h>

#include "apr_buckets.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"

typedef struct {
    apr_bucket_brigade *kept;   /* bytes read and not yet handed on */
    int complete;               /* the client's body ended within kept */
    int replaying;              /* declined: kept goes to whoever reads next */
} replay_ctx;

ap_filter_rec_t *gettoken_body_replay_filter_handle;

static replay_ctx *request_ctx(request_rec *r)
{
    return ap_get_module_config(r->request_config, &gettoken_module);
}

/* Moves up to readbytes bytes of ctx->kept to the end of bb. */
static apr_status_t move_kept(replay_ctx *ctx, apr_bucket_brigade *bb,
                              apr_off_t readbytes, int copy)
{
    apr_bucket *end, *e;
    apr_status_t rv = apr_brigade_partition(ctx->kept, readbytes, &end);

    if (rv != APR_SUCCESS && rv != APR_INCOMPLETE)
        return rv;
    for (e = APR_BRIGADE_FIRST(ctx->kept); e != end; ) {
        apr_bucket *next = APR_BUCKET_NEXT(e);
        if (copy) {
            apr_bucket *dup;
            rv = apr_bucket_copy(e, &dup);
            if (rv != APR_SUCCESS)
                return rv;
            APR_BRIGADE_INSERT_TAIL(bb, dup);
        }
        else {
            APR_BUCKET_REMOVE(e);
            APR_BRIGADE_INSERT_TAIL(bb, e);
        }
        e = next;
    }
    return APR_SUCCESS;
}

apr_status_t gettoken_body_replay_filter(ap_filter_t *f,
                                        apr_bucket_brigade *bb,
                                        ap_input_mode_t mode,
                                        apr_read_type_e block,
                                        apr_off_t readbytes)
{
    replay_ctx *ctx = f->ctx;
    apr_status_t rv;

    if (APR_BRIGADE_EMPTY(ctx->kept)) {
        if (!ctx->complete)
            return ap_get_brigade(f->next, bb, mode, block, readbytes);
        if (mode == AP_MODE_EATCRLF)
            return APR_SUCCESS;
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(bb->bucket_alloc));
        return APR_SUCCESS;
    }

    switch (mode) {
    case AP_MODE_READBYTES:
        return move_kept(ctx, bb, readbytes, 0);
    case AP_MODE_SPECULATIVE:
        return move_kept(ctx, bb, readbytes, 1);
    case AP_MODE_GETLINE:
        rv = apr_brigade_split_line(bb, ctx->kept, block, HUGE_STRING_LEN);
        return rv;
    case AP_MODE_EXHAUSTIVE:
        APR_BRIGADE_CONCAT(bb, ctx->kept);
        return APR_SUCCESS;
    default:   /* EATCRLF, INIT: nothing of the body to give */
        return APR_SUCCESS;
    }
}

/*
 * What has been read is copied into one buffer that grows by doubling (up to
 * the cap + 1), and becomes a single heap bucket for the replay.
 *
 * Why not keep the buckets HTTP_IN hands out: each one costs a bucket and a
 * separate allocation whatever its size, and a chunked body sent in 1-byte
 * chunks gives one bucket per byte: ~500 bytes of memory per body byte, i.e.
 * tens of MB held for a 64 KB cap.  One
 * buffer costs at most twice the bytes read, however they were framed, and
 * a complete body is parsed in place (no second, flattened copy).
 *
 * The buffer is malloc()ed so that it can become a heap bucket that frees it
 * when the last reader is done with it; until then a cleanup on r->pool owns it
 * (a client that goes away mid-body leaves nothing behind).
 */
typedef struct {
    char *data;
    apr_size_t len;
    apr_size_t size;
} read_buf;

static apr_status_t read_buf_cleanup(void *p)
{
    read_buf *b = p;

    free(b->data);
    b->data = NULL;
    return APR_SUCCESS;
}

/* Appends n bytes; the buffer never grows past limit (the caller never asks
 * for more: it reads at most limit bytes in all). */
static apr_status_t read_buf_append(read_buf *b, const char *data, apr_size_t n,
                                    apr_size_t limit)
{
    if (n > limit - b->len)
        return APR_ENOSPC;
    if (b->len + n > b->size) {
        apr_size_t size = b->size ? b->size : 8192;
        char *grown;

        while (size < b->len + n)
            size = size > limit / 2 ? limit : size * 2;
        if (size > limit)
            size = limit;
        grown = realloc(b->data, size);
        if (!grown)
            return APR_ENOMEM;
        b->data = grown;
        b->size = size;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return APR_SUCCESS;
}

/* Reads into rb until the body ends or `limit` bytes are in: OK or an
 * HTTP status. */
static int read_into(request_rec *r, replay_ctx *ctx, read_buf *rb,
                     apr_size_t limit)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_status_t rv;

    while (!ctx->complete && rb->len < limit) {
        apr_bucket *e;

        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                            APR_BLOCK_READ, (apr_off_t)(limit - rb->len));
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r, GTLOGNO(00601)
                          "reading the check-in body failed");
            apr_brigade_destroy(bb);
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        }
        for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
             e = APR_BUCKET_NEXT(e)) {
            const char *data;
            apr_size_t n;

            if (APR_BUCKET_IS_EOS(e)) {
                /* the replay filter gives the end of the body back itself */
                ctx->complete = 1;
                break;
            }
            if (APR_BUCKET_IS_METADATA(e))
                continue;   /* nothing of the body (a FLUSH): not replayed */
            rv = apr_bucket_read(e, &data, &n, APR_BLOCK_READ);
            if (rv == APR_SUCCESS)
                rv = read_buf_append(rb, data, n, limit);
            if (rv != APR_SUCCESS) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, GTLOGNO(00602)
                              "keeping the check-in body failed");
                apr_brigade_destroy(bb);
                return HTTP_INTERNAL_SERVER_ERROR;
            }
        }
        apr_brigade_cleanup(bb);
    }
    apr_brigade_destroy(bb);
    return OK;
}

int gettoken_body_read(request_rec *r, apr_size_t max_body,
                       gettoken_body_state *state, const char **buf,
                       apr_size_t *len)
{
    replay_ctx *ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    read_buf *rb = apr_pcalloc(r->pool, sizeof(*rb));
    apr_size_t limit = max_body + 1;    /* one byte more tells "too large" */
    int status;

    ctx->kept = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    ap_set_module_config(r->request_config, &gettoken_module, ctx);
    apr_pool_cleanup_register(r->pool, rb, read_buf_cleanup,
                              apr_pool_cleanup_null);
    status = read_into(r, ctx, rb, limit);
    if (status != OK)
        return status;
    if (rb->len) {
        /* the heap bucket owns the buffer from now on */
        APR_BRIGADE_INSERT_TAIL(ctx->kept,
                                apr_bucket_heap_create(rb->data, rb->len, free,
                                                       ctx->kept->bucket_alloc));
        *buf = rb->data;
        rb->data = NULL;
    }
    else {
        *buf = "";
    }
    *len = rb->len;
    *state = ctx->complete ? GT_BODY_COMPLETE : GT_BODY_TOO_LARGE;
    if (!ctx->complete)
        *buf = NULL;
    return OK;
}

apr_off_t gettoken_body_announced(request_rec *r)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_off_t n;

    if (!cl || apr_table_get(r->headers_in, "Transfer-Encoding"))
        return -1;
    if (apr_strtoff(&n, cl, NULL, 10) != APR_SUCCESS || n < 0)
        return -1;
    return n;
}

int gettoken_body_read_whole(request_rec *r, apr_size_t cap,
                             gettoken_refused what, const char *id,
                             const char **buf, apr_size_t *len)
{
    gettoken_body_state state = GT_BODY_TOO_LARGE;
    int status = OK;

    /* a body announced too large is refused unread */
    if (gettoken_body_announced(r) <= (apr_off_t)cap)
        status = gettoken_body_read(r, cap, &state, buf, len);
    if (status != OK)
        return status;
    if (state == GT_BODY_TOO_LARGE)
        return gettoken_refuse(r, what, HTTP_REQUEST_ENTITY_TOO_LARGE, id,
                               "the body is over %" APR_SIZE_T_FMT " bytes "
                               "(GetTokenMaxBodySize)", cap);
    return OK;
}

int gettoken_body_was_read(request_rec *r)
{
    return request_ctx(r) != NULL;
}

void gettoken_body_replay(request_rec *r)
{
    replay_ctx *ctx = request_ctx(r);

    if (ctx) {
        ctx->replaying = 1;
        ap_add_input_filter_handle(gettoken_body_replay_filter_handle, ctx, r,
                                   r->connection);
    }
}

/*
 * insert_filter hook.  An internal redirect made after the decline (mod_actions'
 * Action, as in PHP-CGI set-ups, or any handler's ap_internal_redirect*) starts
 * the new request with the protocol input filters only, leaving the replay
 * filter behind on the old request: the handler that finally reads the body
 * would miss the bytes kept here.  So
 * the new request takes the replay over (the same context: both requests live
 * in the same pool), and is marked as looked at so that a GetToken On at the
 * new location does not try to read the body again.
 */
void gettoken_body_insert_filter(request_rec *r)
{
    request_rec *prev;
    replay_ctx *ctx = NULL;

    if (request_ctx(r))
        return;
    for (prev = r->prev; prev && !ctx; prev = prev->prev)
        ctx = request_ctx(prev);
    if (!ctx)
        return;
    ap_set_module_config(r->request_config, &gettoken_module, ctx);
    if (ctx->replaying)
        ap_add_input_filter_handle(gettoken_body_replay_filter_handle, ctx, r,
                                   r->connection);
}
