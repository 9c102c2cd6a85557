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

#include "apr_buckets.h"
#include "http_protocol.h"
#include "http_request.h"
#include "util_filter.h"

APLOG_USE_MODULE(gettoken);

#define REPLAY_FILTER_NAME "GETTOKEN_REPLAY"

typedef struct {
    apr_bucket_brigade *kept;   /* bytes read and not yet handed on */
    int complete;               /* the client's body ended within kept */
} replay_ctx;

static ap_filter_rec_t *replay_filter_handle;

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

static apr_status_t replay_filter(ap_filter_t *f, apr_bucket_brigade *bb,
                                  ap_input_mode_t mode, apr_read_type_e block,
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

void gettoken_body_register(apr_pool_t *p)
{
    replay_filter_handle = ap_register_input_filter(REPLAY_FILTER_NAME,
                                                    replay_filter, NULL,
                                                    AP_FTYPE_RESOURCE);
}

int gettoken_body_read(request_rec *r, apr_size_t max_body,
                       gettoken_body_state *state, const char **buf,
                       apr_size_t *len)
{
    replay_ctx *ctx = apr_pcalloc(r->pool, sizeof(*ctx));
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_off_t total = 0;
    apr_status_t rv;

    ctx->kept = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    ap_set_module_config(r->request_config, &gettoken_module, ctx);

    while (!ctx->complete && total <= (apr_off_t)max_body) {
        apr_bucket *e;
        apr_off_t got = 0;

        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                            APR_BLOCK_READ, (apr_off_t)max_body + 1 - total);
        if (rv != APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_INFO, rv, r, GT_LOG_PREFIX
                          "reading the check-in body failed");
            return ap_map_http_request_error(rv, HTTP_BAD_REQUEST);
        }
        for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
             e = APR_BUCKET_NEXT(e)) {
            if (APR_BUCKET_IS_EOS(e)) {
                /* the replay filter gives the end of the body back itself */
                ctx->complete = 1;
                while (e != APR_BRIGADE_SENTINEL(bb)) {
                    apr_bucket *next = APR_BUCKET_NEXT(e);
                    apr_bucket_delete(e);
                    e = next;
                }
                break;
            }
        }
        if (apr_brigade_length(bb, 1, &got) != APR_SUCCESS
            || ap_save_brigade(NULL, &ctx->kept, &bb, r->pool) != APR_SUCCESS)
            return HTTP_INTERNAL_SERVER_ERROR;
        apr_brigade_cleanup(bb);
        total += got;
    }

    if (!ctx->complete) {
        *state = GT_BODY_TOO_LARGE;
        *buf = NULL;
        *len = (apr_size_t)total;
        return OK;
    }
    *state = GT_BODY_COMPLETE;
    if (APR_BRIGADE_EMPTY(ctx->kept)) {
        *buf = "";
        *len = 0;
        return OK;
    }
    if (APR_BRIGADE_FIRST(ctx->kept) == APR_BRIGADE_LAST(ctx->kept)) {
        /* one bucket (the usual case): parse it in place */
        rv = apr_bucket_read(APR_BRIGADE_FIRST(ctx->kept), buf, len,
                             APR_BLOCK_READ);
        return rv == APR_SUCCESS ? OK : HTTP_INTERNAL_SERVER_ERROR;
    }
    {
        char *flat;
        rv = apr_brigade_pflatten(ctx->kept, &flat, len, r->pool);
        *buf = flat;
        return rv == APR_SUCCESS ? OK : HTTP_INTERNAL_SERVER_ERROR;
    }
}

void gettoken_body_replay(request_rec *r)
{
    replay_ctx *ctx = request_ctx(r);

    if (ctx)
        ap_add_input_filter_handle(replay_filter_handle, ctx, r, r->connection);
}
