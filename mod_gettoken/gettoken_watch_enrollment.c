/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_watch_enrollment.c - the watch MDM's gate at the enrollment
 * profile URL (GetTokenWatchEnrollment On).
 *
 * An Apple Watch POSTs its MachineInfo there.  Without PAIRING_TOKEN it is
 * answered 403 {"code":"com.apple.watch.pairing.token.missing",...} with a
 * fresh security token, recorded in gettoken_watch_security_token.  With
 * one, the pairing token must verify (gettoken_watch_verify.c: trusted
 * signature, claims, single-use jti), name this watch, and carry the hash
 * (sth) of a security token issued to it, unexpired and unused, which is
 * used up now.
 * Admitted, the request goes on to the location's handler, body intact,
 * with GetToken-Watch-Paired-Phone / GetToken-Watch-Pairing-Issuer.
 * Bodies that are not a watch's MachineInfo pass on untouched.
 */
#include "gettoken_private.h"

#include "apr_strings.h"
#include "http_protocol.h"
#include "http_request.h"

#include "core/gt_machineinfo.h"
#include "core/gt_pairing.h"
#include "jose/gt_jose.h"

APLOG_USE_MODULE(gettoken);

#define GT_DEFAULT_SECURITY_TOKEN_LIFETIME 600
#define PHONE_HEADER  "GetToken-Watch-Paired-Phone"
#define ISSUER_HEADER "GetToken-Watch-Pairing-Issuer"
#define TABLE         "gettoken_watch_security_token"

#define SQL_ISSUE   "INSERT INTO " TABLE " (security_token, sth, watch_udid, " \
                    "expires_at, used) VALUES (%s, %s, %s, %lld, 0)"
/* One statement decides, so that nodes sharing the database use a
 * security token up once between them. */
#define SQL_USE     "UPDATE " TABLE " SET used = 1 WHERE sth = %s AND " \
                    "watch_udid = %s AND used = 0 AND expires_at > %lld"
#define SQL_EXPLAIN "SELECT watch_udid, used, expires_at FROM " TABLE \
                    " WHERE sth = %s"
#define SQL_PURGE   "DELETE FROM " TABLE " WHERE expires_at < %lld"
enum { STMT_ISSUE, STMT_USE, STMT_EXPLAIN, STMT_PURGE, STMT_COUNT };
static const char *const statement_sql[STMT_COUNT] = {
    SQL_ISSUE, SQL_USE, SQL_EXPLAIN, SQL_PURGE
};

struct gettoken_watch_enrollment {
    int in_use;                    /* GetTokenWatchEnrollment On in this vhost */
    const char *ca_file;           /* GetTokenWatchEnrollmentCA */
    apr_int64_t lifetime;          /* GetTokenWatchSecurityTokenLifetime */
    int lifetime_set;
    X509_STORE *ca;                /* at start-up */
    const char *label[STMT_COUNT];  /* mod_dbd labels, at start-up */
    apr_uint32_t next_purge;
};

/* ---- configuration -------------------------------------------------------- */

struct gettoken_watch_enrollment *gettoken_watch_enrollment_create(apr_pool_t *p)
{
    struct gettoken_watch_enrollment *we = apr_pcalloc(p, sizeof(*we));

    we->lifetime = GT_DEFAULT_SECURITY_TOKEN_LIFETIME;
    return we;
}

struct gettoken_watch_enrollment *gettoken_watch_enrollment_merge(
    apr_pool_t *p, const struct gettoken_watch_enrollment *base,
    const struct gettoken_watch_enrollment *add)
{
    struct gettoken_watch_enrollment *we = gettoken_watch_enrollment_create(p);

    we->in_use = add->in_use || base->in_use;
    we->ca_file = add->ca_file ? add->ca_file : base->ca_file;
    GETTOKEN_MERGE_FLAGGED(we, base, add, lifetime, lifetime_set);
    /* loaded and prepared at start-up, per vhost */
    we->ca = NULL;
    memset(we->label, 0, sizeof(we->label));
    we->next_purge = 0;
    return we;
}

const char *gettoken_set_watch_enrollment(cmd_parms *cmd, void *dirv, int on)
{
    gettoken_dir_conf *dir = dirv;

    dir->watch_enrollment = on;
    if (on)
        gettoken_server_config(cmd->server)->watch_enrollment->in_use = 1;
    return NULL;
}

const char *gettoken_set_watch_enrollment_ca(cmd_parms *cmd, void *dirv,
                                             const char *arg)
{
    (void)dirv;
    gettoken_server_config(cmd->server)->watch_enrollment->ca_file =
        ap_server_root_relative(cmd->pool, arg);
    return NULL;
}

const char *gettoken_set_watch_security_token_lifetime(cmd_parms *cmd,
                                                       void *dirv,
                                                       const char *arg)
{
    struct gettoken_watch_enrollment *we =
        gettoken_server_config(cmd->server)->watch_enrollment;
    /* a day: a watch being set up asks again within minutes */
    const char *err = gettoken_parse_number(cmd, arg, 86400, &we->lifetime);

    (void)dirv;
    we->lifetime_set = 1;
    return err;
}

int gettoken_watch_enrollment_startup(const gettoken_startup *st,
                                      server_rec *s,
                                      gettoken_server_conf *conf)
{
    static const char *const purpose[STMT_COUNT] = {
        "watch_issue", "watch_use", "watch_explain", "watch_purge"
    };
    struct gettoken_watch_enrollment *we = conf->watch_enrollment;
    apr_pool_t *pconf = st->pconf;
    const char *why = NULL;
    int i;

    if (!we->in_use)
        return OK;
    if (!gettoken_watch_verify_ready(conf)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                     "GetTokenWatchEnrollment On in %s needs "
                     "GetTokenWatchPairingTrust (whose pairing tokens admit "
                     "a watch) and mod_dbd (DBDriver/DBDParams)",
                     gettoken_vhost_name(s, pconf));
        return !OK;
    }
    if (we->ca_file && !(we->ca = gt_machineinfo_ca_load(pconf, we->ca_file,
                                                         &why))) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                     "GetTokenWatchEnrollmentCA %s in %s: %s", we->ca_file,
                     gettoken_vhost_name(s, pconf), why);
        return !OK;
    }
    for (i = 0; i < STMT_COUNT; i++)
        we->label[i] = gettoken_dbd_prepare(s, pconf, statement_sql[i],
                                            purpose[i]);
    return OK;
}

/* ---- refusals ------------------------------------------------------------- */

static int refuse(request_rec *r, int status, const char *why)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                  "watch enrollment refused (%d) in %s: %s", status,
                  gettoken_vhost_name(r->server, r->pool), why);
    return status;
}

static int unavailable(request_rec *r, const char *why, const char *err)
{
    refuse(r, HTTP_SERVICE_UNAVAILABLE,
           apr_pstrcat(r->pool, why, err ? ": " : "", err, NULL));
    return gettoken_retry_later(r);
}

/* ---- the database --------------------------------------------------------- */

static int no_connection(request_rec *r)
{
    return unavailable(r, GETTOKEN_DBD_NO_CONNECTION " for " TABLE " "
                       GETTOKEN_DBD_CHECK_SETUP, NULL);
}

/* The parameters and results of the gate's queries. */
struct token_query {
    const char *args[4];        /* in the statement's order; NULL-ended */
    int nrows;
    apr_int64_t now;
    const char *udid;
    const char *why;            /* explain: what the row says */
};

static int change_rows(request_rec *r, ap_dbd_t *dbd, apr_dbd_prepared_t *stmt,
                       void *ctx)
{
    struct token_query *q = ctx;
    int nargs = 0;

    while (nargs < 4 && q->args[nargs])
        nargs++;
    return gettoken_dbd_change(r, dbd, stmt, nargs, q->args, &q->nrows);
}

/* Why no security token could be used up, from the row of that sth. */
static void explain(request_rec *r, const ap_dbd_t *dbd, apr_dbd_row_t *row,
                    void *ctx)
{
    struct token_query *q = ctx;
    const char *owner = apr_dbd_get_entry(dbd->driver, row, 0);
    const char *used = apr_dbd_get_entry(dbd->driver, row, 1);
    const char *exp = apr_dbd_get_entry(dbd->driver, row, 2);

    (void)r;
    if (owner && strcmp(owner, q->udid) != 0)
        q->why = "the security token was issued to another watch";
    else if (used && strcmp(used, "0") != 0)
        q->why = "the security token was used before";
    else if (exp && apr_atoi64(exp) <= q->now)
        q->why = "the security token has expired";
    else
        q->why = "the security token could not be used up";
}

static int explain_row(request_rec *r, ap_dbd_t *dbd, apr_dbd_prepared_t *stmt,
                       void *ctx)
{
    struct token_query *q = ctx;

    q->why = "the pairing token's sth matches no security token issued here";
    return gettoken_dbd_select(r, dbd, stmt, 1, q->args, explain, q);
}

static int run(request_rec *r, ap_dbd_t *dbd,
               const struct gettoken_watch_enrollment *we, int which,
               gettoken_dbd_query query, struct token_query *q,
               const char **err)
{
    return gettoken_dbd_run(r, dbd, we->label[which], statement_sql[which],
                            query, q, err);
}

static const char *seconds(request_rec *r, apr_int64_t t)
{
    return apr_psprintf(r->pool, "%" APR_INT64_T_FMT, t);
}

/* ---- the gate ------------------------------------------------------------- */

static int send_token_missing(request_rec *r, const char *security_token)
{
    int as_plist = gt_machineinfo_wants_plist(
        apr_table_get(r->headers_in, "Accept"));
    apr_size_t len;
    const char *doc = gt_machineinfo_token_missing(r->pool, security_token,
                                                   as_plist, &len);

    r->status = HTTP_FORBIDDEN;
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    return gettoken_send_answer(r, as_plist ? "application/x-apple-plist"
                                            : "application/json", doc, len);
}

/* A watch without PAIRING_TOKEN: a fresh security token, recorded. */
static int issue_security_token(request_rec *r,
                                struct gettoken_watch_enrollment *we,
                                const gt_machineinfo *mi)
{
    ap_dbd_t *dbd = gettoken_dbd_acquire(r);
    apr_int64_t now = apr_time_sec(apr_time_now());
    char *token = apr_palloc(r->pool, GT_UUID_SIZE);
    struct token_query q;
    const char *err = NULL;

    if (!dbd)
        return no_connection(r);
    memset(&q, 0, sizeof(q));
    if (gt_uuid_v4(token) != 0 || !(q.args[1] = gt_pairing_sth(r->pool, token)))
        return refuse(r, HTTP_INTERNAL_SERVER_ERROR,
                      "no random security token could be made");
    q.args[0] = token;
    q.args[2] = mi->udid;
    q.args[3] = seconds(r, now + we->lifetime);
    if (run(r, dbd, we, STMT_ISSUE, change_rows, &q, &err) != 0 || q.nrows != 1)
        return unavailable(r, "recording a security token in " TABLE " failed",
                           err ? err : "no row inserted");
    gettoken_dbd_purge_maybe(r, dbd, we->label[STMT_PURGE], SQL_PURGE,
                             &we->next_purge, now, TABLE);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, GT_LOG_PREFIX
                  "watch %s (%s) brought no PAIRING_TOKEN: 403 with a new "
                  "security token",
                  ap_escape_logitem(r->pool, mi->udid),
                  ap_escape_logitem(r->pool, mi->product));
    return send_token_missing(r, token);
}

/* Uses up the security token whose hash the pairing token carries: OK,
 * 403 (why, from the row) or 503. */
static int use_security_token(request_rec *r,
                              const struct gettoken_watch_enrollment *we,
                              const gt_machineinfo *mi,
                              const gt_pairing_claims *claims)
{
    ap_dbd_t *dbd = gettoken_dbd_acquire(r);
    struct token_query q;
    const char *err = NULL;

    if (!dbd)
        return no_connection(r);
    memset(&q, 0, sizeof(q));
    q.now = apr_time_sec(apr_time_now());
    q.udid = mi->udid;
    q.args[0] = claims->sth;
    q.args[1] = mi->udid;
    q.args[2] = seconds(r, q.now);
    if (run(r, dbd, we, STMT_USE, change_rows, &q, &err) != 0)
        return unavailable(r, "using up the security token failed", err);
    if (q.nrows == 1)
        return OK;
    if (run(r, dbd, we, STMT_EXPLAIN, explain_row, &q, &err) != 0)
        q.why = "no unexpired, unused security token of this watch matches "
                "the pairing token's sth";
    return refuse(r, HTTP_FORBIDDEN, apr_psprintf(r->pool, "watch %s, jti %s: "
                  "%s", ap_escape_logitem(r->pool, mi->udid), claims->jti,
                  q.why));
}

/* A watch with PAIRING_TOKEN: OK when it is admitted. */
static int admit(request_rec *r, struct gettoken_watch_enrollment *we,
                 const gt_machineinfo *mi)
{
    gt_pairing_claims claims;
    int status;

    status = gettoken_watch_check_token(r, mi->pairing_token, mi->udid, NULL,
                                        &claims);
    if (status == OK)
        status = use_security_token(r, we, mi, &claims);
    /* the security token is spent; a replayed jti still ends here */
    if (status == OK)
        status = gettoken_watch_use_jti(r, &claims);
    if (status != OK)
        return status;

    apr_table_setn(r->headers_in, PHONE_HEADER, claims.phone_udid);
    apr_table_setn(r->headers_in, ISSUER_HEADER, claims.iss);
    gettoken_status_count(GT_STAT_WATCH_ADMITTED, NULL, 0);
    apr_table_setn(r->subprocess_env, "GETTOKEN_WATCH_PHONE", claims.phone_udid);
    apr_table_setn(r->subprocess_env, "GETTOKEN_WATCH_ISSUER", claims.iss);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, GT_LOG_PREFIX
                  "watch enrollment admitted: watch %s (%s), phone %s, iss %s, "
                  "jti %s", ap_escape_logitem(r->pool, mi->udid),
                  ap_escape_logitem(r->pool, mi->product),
                  ap_escape_logitem(r->pool, claims.phone_udid),
                  ap_escape_logitem(r->pool, claims.iss), claims.jti);
    return OK;
}

static int gate_enabled(request_rec *r)
{
    const gettoken_dir_conf *dir = ap_get_module_config(r->per_dir_config,
                                                        &gettoken_module);
    return dir && dir->watch_enrollment == 1;
}

/* header_parser: the first phase that knows the location.  The MDM must
 * only ever see the headers this module sets. */
static int strip_headers(request_rec *r)
{
    if (gate_enabled(r)) {
        apr_table_unset(r->headers_in, PHONE_HEADER);
        apr_table_unset(r->headers_in, ISSUER_HEADER);
    }
    return DECLINED;
}

static int watch_enrollment_handler(request_rec *r)
{
    const gettoken_server_conf *conf;
    struct gettoken_watch_enrollment *we;
    gettoken_body_state state;
    const char *body = NULL, *why = NULL, *cl;
    apr_size_t len = 0;
    gt_machineinfo mi;
    int status;

    if (r->main || !gate_enabled(r) || !ap_request_has_body(r))
        return DECLINED;
    conf = gettoken_server_config(r->server);
    we = conf->watch_enrollment;
    /* a body that cannot be read whole cannot be shown not to be a watch's */
    cl = apr_table_get(r->headers_in, "Content-Length");
    if (cl && !apr_table_get(r->headers_in, "Transfer-Encoding")
        && apr_atoi64(cl) > (apr_int64_t)conf->max_body)
        return refuse(r, HTTP_REQUEST_ENTITY_TOO_LARGE,
                      "the body is over GetTokenMaxBodySize");
    status = gettoken_body_read(r, conf->max_body, &state, &body, &len);
    if (status != OK)
        return status;
    if (state == GT_BODY_TOO_LARGE)
        return refuse(r, HTTP_REQUEST_ENTITY_TOO_LARGE,
                      "the body is over GetTokenMaxBodySize");

    switch (gt_machineinfo_parse(r->pool, body, len, we->ca, &mi, &why)) {
    case GT_MI_NOT_WATCH:
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, GT_LOG_PREFIX
                      "not a watch's MachineInfo (%s): passed on", why);
        gettoken_body_replay(r);
        return DECLINED;
    case GT_MI_INVALID:
        return refuse(r, HTTP_BAD_REQUEST, why);
    case GT_MI_REFUSED:
        return refuse(r, HTTP_FORBIDDEN, why);
    case GT_MI_WATCH:
        break;
    }
    if (!mi.pairing_token)
        return issue_security_token(r, we, &mi);
    status = admit(r, we, &mi);
    if (status != OK)
        return status;
    gettoken_body_replay(r);
    return DECLINED;
}

void gettoken_watch_enrollment_register(void)
{
    ap_hook_header_parser(strip_headers, NULL, NULL, APR_HOOK_REALLY_FIRST);
    /* ahead of mod_proxy, mod_cgi and every other content handler */
    ap_hook_handler(watch_enrollment_handler, NULL, NULL,
                    APR_HOOK_REALLY_FIRST);
}
