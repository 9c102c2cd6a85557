/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_audit.c - what happens after a parsed GetToken was answered:
 * the server-status counters, and the optional audit row
 * (GetTokenAuditSQL), so that a security team can say which device got
 * which token and an operator can list the enrollments that never asked.
 *
 * The audit statement runs on the request's pooled mod_dbd connection
 * once the answer is decided; its failure -- preparing it included -- is
 * logged and changes nothing.  A refusal before any identity was found
 * (400, 401) writes no row, and the values a client chose are cut to
 * AUDIT_MAX_VALUE bytes.
 */
#include "gettoken_private.h"
#include "gettoken_dbd.h"
#include "gettoken_status.h"

#include "apr_dbd.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "mod_dbd.h"

gettoken_audit_conf *gettoken_audit_create(apr_pool_t *p)
{
    return apr_pcalloc(p, sizeof(gettoken_audit_conf));
}

gettoken_audit_conf *gettoken_audit_merge(apr_pool_t *p,
                                          const gettoken_audit_conf *base,
                                          const gettoken_audit_conf *add)
{
    gettoken_audit_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->sql = add->sql ? add->sql : base->sql;
    conf->label = NULL;         /* named at start-up, per vhost */
    return conf;
}

const char *gettoken_set_audit_sql(cmd_parms *cmd, void *dirv, const char *arg)
{
    (void)dirv;
    return gettoken_parse_sql(cmd, arg,
                              &gettoken_server_config(cmd->server)->audit->sql);
}

int gettoken_audit_startup(const gettoken_startup *st, server_rec *s,
                           gettoken_server_conf *conf)
{
    if (!conf->in_use || !conf->audit->sql)
        return OK;
    if (gettoken_dbd_require(s, st->pconf, "GetTokenAuditSQL", "", "") != OK)
        return !OK;
    /* not handed to mod_dbd, which fails a connection on which any of its
     * statements does not prepare (MySQL checks the INSERT privilege when
     * preparing): a table the httpd user may not write costs audit rows,
     * never answers.  Prepared on each connection on first use. */
    conf->audit->label = gettoken_dbd_label(st->pconf, "audit");
    return OK;
}

/*
 * The organisation that signed, for the audit row.  Organisations set
 * GETTOKEN_ORGANIZATION when one of them signs; a token signed without it
 * came from the vhost's own (default) organisation, and a refusal before
 * any signing belongs to none.
 */
static const char *audit_organisation(request_rec *r, int status)
{
    const char *org = apr_table_get(r->subprocess_env, "GETTOKEN_ORGANIZATION");

    if (org)
        return org;
    return status == OK ? "default" : "";
}

static void audit_failed(request_rec *r, const char *why, const char *detail)
{
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, GTLOGNO(01801)
                  "GetTokenAuditSQL in %s: %s%s%s (the answer stands)",
                  gettoken_vhost_name(r->server, r->pool), why,
                  detail ? ": " : "", detail ? detail : "");
}

/* The most bytes a client-chosen value takes in a row. */
#define AUDIT_MAX_VALUE 255
#define AUDIT_CUT_MARK  "[...]"

/* A client's value as it goes into a row: at most AUDIT_MAX_VALUE bytes,
 * a longer one cut at a UTF-8 character boundary and marked. */
static const char *audit_value(apr_pool_t *p, const char *v)
{
    apr_size_t keep = AUDIT_MAX_VALUE - (sizeof(AUDIT_CUT_MARK) - 1);

    if (!v || strlen(v) <= AUDIT_MAX_VALUE)
        return v;
    while (keep > 0 && ((unsigned char)v[keep] & 0xc0) == 0x80)
        keep--;
    return apr_pstrcat(p, apr_pstrmemdup(p, v, keep), AUDIT_CUT_MARK, NULL);
}

struct audit_row {
    const char *args[6];
    int nrows;
};

static int audit_query(request_rec *r, ap_dbd_t *dbd, apr_dbd_prepared_t *stmt,
                       void *ctx)
{
    struct audit_row *q = ctx;

    return gettoken_dbd_change(r, dbd, stmt, 6, q->args, &q->nrows);
}

static void run_audit(request_rec *r, const gettoken_server_conf *conf,
                      const gt_checkin *msg, int status)
{
    const char *jti = apr_table_get(r->subprocess_env, "GETTOKEN_JTI");
    const char *identity = apr_table_get(r->notes, GT_NOTE_IDENTITY);
    ap_dbd_t *dbd = gettoken_dbd_acquire(r);
    struct audit_row q;
    const char *err = NULL;

    if (!dbd) {
        audit_failed(r, GETTOKEN_DBD_NO_CONNECTION, NULL);
        return;
    }
    q.args[0] = audit_value(r->pool, gt_checkin_enrollment(msg));
    q.args[1] = audit_organisation(r, status);
    q.args[2] = audit_value(r->pool, msg->service_type);
    q.args[3] = jti ? jti : "";
    q.args[4] = apr_itoa(r->pool, status == OK ? HTTP_OK : status);
    q.args[5] = identity ? identity : "";
    if (gettoken_dbd_run_unregistered(r, dbd, conf->audit->label,
                                      conf->audit->sql, audit_query, &q,
                                      &err) != 0)
        audit_failed(r, "the statement failed", err);
}

void gettoken_answered(request_rec *r, const gettoken_server_conf *conf,
                       const gt_checkin *msg, int status)
{
    const char *claimed = apr_table_get(r->subprocess_env, "GETTOKEN_ENROLLMENT");

    /* an access log must not present an enrollment that the identity was
     * never bound to as the one refused */
    if (status != OK && claimed && !apr_table_get(r->notes, GT_NOTE_BOUND))
        apr_table_setn(r->subprocess_env, "GETTOKEN_ENROLLMENT",
                       apr_pstrcat(r->pool, "claimed:", claimed, NULL));
    if (status == OK)
        gettoken_status_count(GT_STAT_ISSUED, msg->service_type, 0);
    else
        gettoken_status_count(GT_STAT_REFUSED, NULL, status);
    /* a 503 is a database that could not be reached: it was logged; a
     * request refused before any identity was found is nobody's (a row
     * per such request would let anyone fill the table) */
    if (conf->audit->sql && conf->audit->label
        && status != HTTP_SERVICE_UNAVAILABLE
        && !((status == HTTP_BAD_REQUEST || status == HTTP_UNAUTHORIZED)
             && !apr_table_get(r->notes, GT_NOTE_IDENTITY)))
        run_audit(r, conf, msg, status);
}
