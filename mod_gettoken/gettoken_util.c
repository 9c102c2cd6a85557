/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_util.c - small things every part needs the same way: naming a
 * vhost in a log line, asking a client to come back later, sending a
 * whole answer, reading a number from a directive.
 */
#include "gettoken_private.h"

#include "apr_buckets.h"
#include "apr_strings.h"
#include "http_protocol.h"

const char *gettoken_vhost_name(server_rec *s, apr_pool_t *p)
{
    /* a vhost's port is in its address unless ServerName gives one */
    unsigned port = s->port ? s->port : s->addrs ? s->addrs->host_port : 0;

    return apr_psprintf(p, "%s:%u (%s:%u)",
                        s->server_hostname ? s->server_hostname : "*",
                        port, s->defn_name ? s->defn_name : "?",
                        s->defn_line_number);
}

int gettoken_retry_later(request_rec *r)
{
    apr_table_setn(r->err_headers_out, "Retry-After", GT_RETRY_AFTER);
    return HTTP_SERVICE_UNAVAILABLE;
}

int gettoken_send_answer(request_rec *r, const char *content_type,
                         const char *data, apr_size_t len)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool,
                                                r->connection->bucket_alloc);

    ap_set_content_type(r, content_type);
    ap_set_content_length(r, (apr_off_t)len);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(data, len,
                                                           bb->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(bb->bucket_alloc));
    if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS)
        r->connection->aborted = 1;   /* the client went away; nothing to add */
    return OK;
}

const char *gettoken_parse_number(cmd_parms *cmd, const char *arg,
                                  apr_int64_t max, apr_int64_t *out)
{
    char *end = NULL;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);

    if (!end || *end || end == arg || v <= 0 || v > max)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number "
                            "from 1 to %" APR_INT64_T_FMT,
                            cmd->cmd->name, arg, max);
    *out = v;
    return NULL;
}

const char *gettoken_parse_sql(cmd_parms *cmd, const char *arg,
                               const char **sql)
{
    if (!*arg)
        return apr_psprintf(cmd->pool, "%s needs an SQL statement",
                            cmd->cmd->name);
    *sql = arg;
    return NULL;
}
