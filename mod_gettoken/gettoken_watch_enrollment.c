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
 *
 * The gate fails closed: a body passes on untouched only when it was read
 * whole and parsed as a MachineInfo that is not a watch's (an iPhone's,
 * iPad's or Mac's); anything else is refused, 400 (413 over
 * GetTokenMaxBodySize), and never reaches the MDM.  A watch asking again
 * gets the security token it got before (one per window of half the
 * lifetime, a few at most), so no one can fill the table per request.
 */
#include "gettoken_private.h"
#include "gettoken_body.h"
#include "gettoken_dbd.h"
#include "gettoken_status.h"

#include "apr_atomic.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "http_request.h"

#include "core/gt_machineinfo.h"
#include "core/gt_pairing.h"
#include "jose/gt_jose.h"

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
#define SQL_FIND    "SELECT watch_udid, used, expires_at FROM " TABLE \
                    " WHERE security_token = %s"
/* A bounded batch, at most once a second per process, in SQL that SQLite,
 * PostgreSQL and MySQL all take (MySQL wants the LIMIT inside a derived
 * table).  A backlog drains over many requests; none waits on all of it. */
#define PURGE_BATCH 256
#define SQL_PURGE   "DELETE FROM " TABLE " WHERE security_token IN " \
                    "(SELECT security_token FROM (SELECT security_token FROM " \
                    TABLE " WHERE expires_at < %lld LIMIT " \
                    APR_STRINGIFY(PURGE_BATCH) ") AS expired)"
enum { STMT_ISSUE, STMT_USE, STMT_EXPLAIN, STMT_FIND, STMT_PURGE, STMT_COUNT };
static const char *const statement_sql[STMT_COUNT] = {
    SQL_ISSUE, SQL_USE, SQL_EXPLAIN, SQL_FIND, SQL_PURGE
};

/* Security tokens one watch may be handed per window (half the lifetime):
 * the next slot is used only when the previous one's token was used up. */
#define TOKEN_SLOTS 3
#define SECRET_LEN  32

struct gettoken_watch_enrollment {
    int in_use;                    /* GetTokenWatchEnrollment On in this vhost */
    const char *ca_file;           /* GetTokenWatchEnrollmentCA */
    apr_int64_t lifetime;          /* GetTokenWatchSecurityTokenLifetime */
    int lifetime_set;
    X509_STORE *ca;                /* at start-up */
    const char *label[STMT_COUNT];  /* mod_dbd labels, at start-up */
    unsigned char secret[SECRET_LEN];  /* keys the security tokens, at start-up */
    apr_uint32_t next_purge;           /* the second the next batch is due */
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
    memset(we->secret, 0, sizeof(we->secret));
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
        "watch_issue", "watch_use", "watch_explain", "watch_find", "watch_purge"
    };
    struct gettoken_watch_enrollment *we = conf->watch_enrollment;
    apr_pool_t *pconf = st->pconf;
    const char *why = NULL;
    int i;

    if (!we->in_use)
        return OK;
    if (!gettoken_watch_verify_ready(conf)) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(02001)
                     "GetTokenWatchEnrollment On in %s needs "
                     "GetTokenWatchPairingTrust (whose pairing tokens admit "
                     "a watch) and mod_dbd (DBDriver/DBDParams)",
                     gettoken_vhost_name(s, pconf));
        return !OK;
    }
    if (we->ca_file && !(we->ca = gt_machineinfo_ca_load(pconf, we->ca_file,
                                                         &why))) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(02002)
                     "GetTokenWatchEnrollmentCA %s in %s: %s", we->ca_file,
                     gettoken_vhost_name(s, pconf), why);
        return !OK;
    }
    if (apr_generate_random_bytes(we->secret, sizeof(we->secret))
        != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(02015)
                     "GetTokenWatchEnrollment in %s: no random bytes for the "
                     "security tokens' key", gettoken_vhost_name(s, pconf));
        return !OK;
    }
    for (i = 0; i < STMT_COUNT; i++)
        we->label[i] = gettoken_dbd_prepare(s, pconf, statement_sql[i],
                                            purpose[i]);
    return OK;
}

/* ---- the database --------------------------------------------------------- */

/* What the gate refuses, for the refusal log lines. */
#define GATE GT_REFUSED_WATCH_ENROLLMENT

/* The parameters and results of the gate's queries. */
struct token_query {
    const char *args[4];        /* in the statement's order; NULL-ended */
    int nrows;
    apr_int64_t now;
    const char *udid;
    int found;                  /* select_row: a row, and what it says */
    int other_watch, used, expired;
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

/* A row (watch_udid, used, expires_at) of the table, read into q. */
static void note_row(request_rec *r, const ap_dbd_t *dbd, apr_dbd_row_t *row,
                     void *ctx)
{
    struct token_query *q = ctx;
    const char *owner = apr_dbd_get_entry(dbd->driver, row, 0);
    const char *used = apr_dbd_get_entry(dbd->driver, row, 1);
    const char *exp = apr_dbd_get_entry(dbd->driver, row, 2);

    (void)r;
    q->found = 1;
    q->other_watch = !owner || strcmp(owner, q->udid) != 0;
    q->used = !used || strcmp(used, "0") != 0;
    q->expired = !exp || apr_atoi64(exp) <= q->now;
}

static int select_row(request_rec *r, ap_dbd_t *dbd, apr_dbd_prepared_t *stmt,
                      void *ctx)
{
    struct token_query *q = ctx;

    q->found = 0;
    return gettoken_dbd_select(r, dbd, stmt, 1, q->args, note_row, q);
}

/* The row read is this watch's security token, unused and unexpired. */
static int usable(const struct token_query *q)
{
    return q->found && !q->other_watch && !q->used && !q->expired;
}

/* Why no security token could be used up, from the row of that sth. */
static const char *explain(const struct token_query *q)
{
    if (!q->found)
        return "the pairing token's sth matches no security token issued here";
    if (q->other_watch)
        return "the security token was issued to another watch";
    if (q->used)
        return "the security token was used before";
    if (q->expired)
        return "the security token has expired";
    return "the security token could not be used up";
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

/* Up to PURGE_BATCH expired rows, when a batch is due (another thread may
 * be purging): each is one short statement, never the whole backlog. */
static void purge_batch(request_rec *r, ap_dbd_t *dbd,
                        struct gettoken_watch_enrollment *we, apr_int64_t now)
{
    apr_uint32_t due = apr_atomic_read32(&we->next_purge);
    struct token_query q;
    const char *err = NULL;

    if ((apr_uint32_t)now < due
        || apr_atomic_cas32(&we->next_purge, (apr_uint32_t)now + 1, due) != due)
        return;
    memset(&q, 0, sizeof(q));
    q.args[0] = seconds(r, now);
    if (run(r, dbd, we, STMT_PURGE, change_rows, &q, &err) != 0)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, GTLOGNO(02016)
                      "purging expired rows of " TABLE " failed: %s", err);
}

/* A watch without PAIRING_TOKEN: its security token for this window, the
 * one recorded before or a new one. */
static int issue_security_token(request_rec *r,
                                struct gettoken_watch_enrollment *we,
                                const gt_machineinfo *mi)
{
    ap_dbd_t *dbd = gettoken_dbd_acquire(r);
    apr_int64_t half = we->lifetime > 1 ? we->lifetime / 2 : 1;
    char *token = apr_palloc(r->pool, GT_UUID_SIZE);
    struct token_query q;
    const char *err = NULL, *again = NULL;
    int slot, fresh = 0;

    if (!dbd)
        return gettoken_no_connection(r, GATE, GTLOGNO(02003), TABLE);
    memset(&q, 0, sizeof(q));
    q.now = apr_time_sec(apr_time_now());
    q.udid = mi->udid;
    for (slot = 0; slot < TOKEN_SLOTS; slot++) {
        if (gt_machineinfo_security_token(we->secret, sizeof(we->secret),
                                          mi->udid, q.now / half, slot,
                                          token) != 0
            || !(q.args[1] = gt_pairing_sth(r->pool, token)))
            return gettoken_refuse(r, GATE, HTTP_INTERNAL_SERVER_ERROR,
                                   GTLOGNO(02004), "no security token could "
                                   "be made");
        q.args[0] = token;
        q.args[2] = NULL;
        if (run(r, dbd, we, STMT_FIND, select_row, &q, &err) != 0)
            return gettoken_refuse(r, GATE, HTTP_SERVICE_UNAVAILABLE,
                                   GTLOGNO(02017), "reading " TABLE
                                   " failed: %s", err);
        if (usable(&q))
            break;
        if (q.found)
            continue;       /* used up (the watch enrolled): the next slot */
        q.args[2] = mi->udid;
        q.args[3] = seconds(r, q.now + we->lifetime);
        if (run(r, dbd, we, STMT_ISSUE, change_rows, &q, &err) == 0
            && q.nrows == 1) {
            fresh = 1;
            break;
        }
        /* another request of this watch may have recorded it just now */
        q.args[2] = NULL;
        if (run(r, dbd, we, STMT_FIND, select_row, &q, &again) == 0
            && usable(&q))
            break;
        return gettoken_refuse(r, GATE, HTTP_SERVICE_UNAVAILABLE,
                               GTLOGNO(02005), "recording a security token "
                               "in " TABLE " failed: %s",
                               err ? err : "no row inserted");
    }
    if (slot == TOKEN_SLOTS) {
        apr_table_setn(r->err_headers_out, "Retry-After",
                       seconds(r, half - q.now % half));
        return gettoken_refuse(r, GATE, HTTP_TOO_MANY_REQUESTS,
                               GTLOGNO(02018), "watch %s used up %d security "
                               "tokens within %" APR_INT64_T_FMT " seconds",
                               ap_escape_logitem(r->pool, mi->udid),
                               TOKEN_SLOTS, half);
    }
    if (fresh) {
        gettoken_status_count(GT_STAT_WATCH_SECURITY_TOKEN, NULL, 0);
        purge_batch(r, dbd, we, q.now);
    }
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, GTLOGNO(02006)
                  "watch %s (%s) brought no PAIRING_TOKEN: 403 with its "
                  "security token (%s)",
                  ap_escape_logitem(r->pool, mi->udid),
                  ap_escape_logitem(r->pool, mi->product),
                  fresh ? "new" : "issued before");
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
        return gettoken_no_connection(r, GATE, GTLOGNO(02007), TABLE);
    memset(&q, 0, sizeof(q));
    q.now = apr_time_sec(apr_time_now());
    q.udid = mi->udid;
    q.args[0] = claims->sth;
    q.args[1] = mi->udid;
    q.args[2] = seconds(r, q.now);
    if (run(r, dbd, we, STMT_USE, change_rows, &q, &err) != 0)
        return gettoken_refuse(r, GATE, HTTP_SERVICE_UNAVAILABLE,
                               GTLOGNO(02008), "using up the security token "
                               "failed%s%s", err ? ": " : "", err ? err : "");
    if (q.nrows == 1)
        return OK;
    return gettoken_refuse(r, GATE, HTTP_FORBIDDEN, GTLOGNO(02009),
                           "watch %s, jti %s: %s",
                           ap_escape_logitem(r->pool, mi->udid), claims->jti,
                           run(r, dbd, we, STMT_EXPLAIN, select_row, &q,
                               &err) == 0 ? explain(&q)
                           : "no unexpired, unused security token of this "
                             "watch matches the pairing token's sth");
}

/* A watch with PAIRING_TOKEN: OK when it is admitted. */
static int admit(request_rec *r, struct gettoken_watch_enrollment *we,
                 const gt_machineinfo *mi)
{
    gt_pairing_claims claims;
    int status;

    status = gettoken_watch_check_token(r, GT_REFUSED_WATCH_ENROLLMENT,
                                        mi->pairing_token, mi->udid, NULL,
                                        &claims);
    if (status == OK)
        status = use_security_token(r, we, mi, &claims);
    /* the security token is spent; a replayed jti still ends here */
    if (status == OK)
        status = gettoken_watch_use_jti(r, GT_REFUSED_WATCH_ENROLLMENT,
                                        &claims);
    if (status != OK)
        return status;

    apr_table_setn(r->headers_in, PHONE_HEADER, claims.phone_udid);
    apr_table_setn(r->headers_in, ISSUER_HEADER, claims.iss);
    gettoken_status_count(GT_STAT_WATCH_ADMITTED, NULL, 0);
    apr_table_setn(r->subprocess_env, "GETTOKEN_WATCH_PHONE", claims.phone_udid);
    apr_table_setn(r->subprocess_env, "GETTOKEN_WATCH_ISSUER", claims.iss);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, GTLOGNO(02010)
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

/* 1 when a request header name is GetToken-Watch-... in any spelling a
 * backend may fold into that name: any case, and '_' (or any other
 * punctuation: CGI and WSGI/Rack turn it into '_' as they do '-') for '-'. */
static int is_watch_header(const char *name)
{
    static const char prefix[] = "gettoken-watch-";
    apr_size_t i;

    for (i = 0; prefix[i]; i++) {
        if (!name[i])
            return 0;
        if (prefix[i] == '-' ? apr_isalnum(name[i])
                             : apr_tolower(name[i]) != prefix[i])
            return 0;
    }
    return 1;
}

static int collect_watch_header(void *names, const char *key, const char *value)
{
    (void)value;
    if (is_watch_header(key))
        APR_ARRAY_PUSH((apr_array_header_t *)names, const char *) = key;
    return 1;
}

/* header_parser: the first phase that knows the location.  The MDM must
 * only ever see the GetToken-Watch-* headers this module sets. */
int gettoken_watch_enrollment_strip_headers(request_rec *r)
{
    apr_array_header_t *names;
    int i;

    if (!gate_enabled(r))
        return DECLINED;
    names = apr_array_make(r->pool, 2, sizeof(const char *));
    apr_table_do(collect_watch_header, names, r->headers_in, NULL);
    for (i = 0; i < names->nelts; i++)
        apr_table_unset(r->headers_in, APR_ARRAY_IDX(names, i, const char *));
    return DECLINED;
}

/* Only a body as it was sent can be shown not to be a watch's: any
 * Content-Encoding but identity is refused.  NULL when there is none. */
static const char *encoded(request_rec *r)
{
    const char *ce = apr_table_get(r->headers_in, "Content-Encoding");
    apr_size_t n;

    if (!ce)
        return NULL;
    while (apr_isspace(*ce))
        ce++;
    n = strlen(ce);
    while (n && apr_isspace(ce[n - 1]))
        n--;
    if (n == 8 && strncasecmp(ce, "identity", 8) == 0)
        return NULL;
    return apr_psprintf(r->pool, "a body with Content-Encoding %s cannot be "
                        "read as a MachineInfo", ap_escape_logitem(r->pool,
                        apr_pstrmemdup(r->pool, ce, n > 64 ? 64 : n)));
}

int gettoken_watch_enrollment_handler(request_rec *r)
{
    const gettoken_server_conf *conf;
    struct gettoken_watch_enrollment *we;
    const char *body = NULL, *why = NULL;
    apr_size_t len = 0;
    gt_machineinfo mi;
    int status;

    if (r->main || !gate_enabled(r))
        return DECLINED;
    if (!ap_request_has_body(r)) {
        /* a GET (or any bodiless request but a POST or PUT) carries no
         * MachineInfo: nothing to decide */
        if (r->method_number != M_POST && r->method_number != M_PUT)
            return DECLINED;
        return gettoken_refuse(r, GATE, HTTP_BAD_REQUEST, GTLOGNO(02019),
                               "a %s without a body is no MachineInfo",
                               r->method);
    }
    conf = gettoken_server_config(r->server);
    we = conf->watch_enrollment;
    if ((why = encoded(r)) != NULL)
        return gettoken_refuse(r, GATE, HTTP_BAD_REQUEST, GTLOGNO(02020), "%s",
                               why);
    /* a body that cannot be read whole cannot be shown not to be a watch's */
    status = gettoken_body_read_whole(r, conf->max_body, GATE, GTLOGNO(02011),
                                      &body, &len);
    if (status != OK)
        return status;

    switch (gt_machineinfo_parse(r->pool, body, len, we->ca, &mi, &why)) {
    case GT_MI_NOT_WATCH:
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, GTLOGNO(02013)
                      "not a watch's MachineInfo (%s): passed on",
                      ap_escape_logitem(r->pool, mi.product));
        gettoken_body_replay(r);
        return DECLINED;
    case GT_MI_INVALID:
        return gettoken_refuse(r, GATE, HTTP_BAD_REQUEST, GTLOGNO(02021),
                               "not a MachineInfo the gate can read: %s", why);
    case GT_MI_REFUSED:
        return gettoken_refuse(r, GATE, HTTP_FORBIDDEN, GTLOGNO(02014), "%s",
                               why);
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
