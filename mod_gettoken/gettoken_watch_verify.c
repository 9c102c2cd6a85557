/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_watch_verify.c - com.apple.watch.pairing, the watch MDM's side.
 *
 * The optional function gettoken_watch_verify (mod_gettoken.h) checks a
 * pairing token against the GetTokenWatchPairingTrust keys of r->server,
 * its claims (core/gt_pairing.c), and single use: the jti is INSERTed
 * through mod_dbd into gettoken_pairing_jti, whose primary key makes the
 * second use fail atomically on every node sharing the database.  The
 * handler "gettoken-watch-verify" offers the same over HTTP:
 *   POST plist {TokenData, WatchUDID, SecurityToken}
 *     -> 200 plist {PhoneUDID, Issuer} | 400 | 403 | 503 + Retry-After
 */
#include "gettoken_private.h"
#include "gettoken_body.h"
#include "gettoken_dbd.h"
#include "gettoken_status.h"

#include "apr_dbd.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_dbd.h"

#include "core/gt_keys.h"
#include "core/gt_pairing.h"
#include "jose/gt_jose.h"

#define VERIFY_HANDLER "gettoken-watch-verify"

#define SQL_INSERT "INSERT INTO gettoken_pairing_jti (jti, expires_at) " \
                   "VALUES (%s, %lld)"
#define SQL_SEEN   "SELECT 1 FROM gettoken_pairing_jti WHERE jti = %s"
/* at most a bounded batch a minute (portable: MySQL wants the LIMIT in a
 * derived table), so that no request waits on a backlog */
#define SQL_PURGE  "DELETE FROM gettoken_pairing_jti WHERE jti IN (SELECT jti " \
                   "FROM (SELECT jti FROM gettoken_pairing_jti WHERE " \
                   "expires_at < %lld LIMIT 1000) AS expired)"

/* GetTokenWatchPairingTrust <issuer-uuid> <file>, as configured. */
typedef struct {
    const char *issuer;
    const char *file;
} trust_file;

/* The replay store of one vhost: mod_dbd labels of its statements. */
struct pairing_store {
    const char *insert_label;
    const char *seen_label;
    const char *purge_label;
    apr_uint32_t next_purge;    /* unix seconds (low 32 bits) */
};

/* The verifying side's part of a vhost's configuration. */
struct gettoken_watch_verify {
    apr_array_header_t *trust_files;    /* trust_file */
    apr_array_header_t *trust;          /* gt_pairing_trust, at start-up */
    struct pairing_store *store;        /* at start-up; NULL: not verifying */
};

static APR_OPTIONAL_FN_TYPE(gettoken_watch_verify) *verify_fn;

static const gt_plist_limits verify_limits = { 8, 256, GT_PLIST_MAX_EXPANDED };

struct gettoken_watch_verify *gettoken_watch_verify_create(apr_pool_t *p)
{
    struct gettoken_watch_verify *wv = apr_pcalloc(p, sizeof(*wv));

    wv->trust_files = apr_array_make(p, 2, sizeof(trust_file));
    return wv;
}

struct gettoken_watch_verify *gettoken_watch_verify_merge(
    apr_pool_t *p, const struct gettoken_watch_verify *base,
    const struct gettoken_watch_verify *add)
{
    struct gettoken_watch_verify *wv = apr_pcalloc(p, sizeof(*wv));

    wv->trust_files = add->trust_files->nelts ? add->trust_files
                                              : base->trust_files;
    /* loaded and prepared at start-up, per vhost */
    wv->trust = NULL;
    wv->store = NULL;
    return wv;
}

const char *gettoken_add_pairing_trust(cmd_parms *cmd, void *dirv,
                                       const char *issuer, const char *file)
{
    trust_file *t;

    (void)dirv;
    /* the one-argument form trusted a key for every issuer */
    if (!file || !gt_is_uuid(issuer))
        return apr_psprintf(cmd->pool, "GetTokenWatchPairingTrust takes "
                            "<issuer-uuid> <file>: the server UUID of the "
                            "phone organisation, then the certificates or "
                            "public keys that sign its pairing tokens "
                            "('%s' is not a UUID)", issuer);
    t = apr_array_push(gettoken_server_config(cmd->server)->watch_verify
                       ->trust_files);
    t->issuer = issuer;
    t->file = ap_server_root_relative(cmd->pool, file);
    return NULL;
}

int gettoken_watch_trust_configured(const gettoken_server_conf *conf)
{
    return conf->watch_verify->trust_files->nelts > 0;
}

int gettoken_watch_verify_ready(const gettoken_server_conf *conf)
{
    return conf->watch_verify->store != NULL;
}

/* Each issuer's keys, from its file(s). */
static int load_trust(apr_pool_t *pconf, server_rec *s,
                      struct gettoken_watch_verify *wv)
{
    const char *why = NULL;
    int i;

    wv->trust = apr_array_make(pconf, 2, sizeof(gt_pairing_trust));
    for (i = 0; i < wv->trust_files->nelts; i++) {
        const trust_file *f = &APR_ARRAY_IDX(wv->trust_files, i, trust_file);
        apr_array_header_t *keys = (apr_array_header_t *)
            gt_pairing_trusted_keys(wv->trust, f->issuer);

        if (!keys) {
            gt_pairing_trust *t = apr_array_push(wv->trust);
            t->issuer = f->issuer;
            t->keys = keys = apr_array_make(pconf, 2, sizeof(EVP_PKEY *));
        }
        if (gt_public_keys_load(pconf, f->file, keys, &why) < 0) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(01901)
                         "GetTokenWatchPairingTrust %s %s in %s: %s",
                         f->issuer, f->file, gettoken_vhost_name(s, pconf), why);
            return !OK;
        }
    }
    return OK;
}

/* Every trusted key is of a kind a pairing token may be signed with. */
static int check_trust_algs(apr_pool_t *p, server_rec *s,
                            const apr_array_header_t *trust)
{
    int i, k;

    for (i = 0; i < trust->nelts; i++) {
        const gt_pairing_trust *t = &APR_ARRAY_IDX(trust, i, gt_pairing_trust);
        for (k = 0; k < t->keys->nelts; k++) {
            const char *why = NULL;
            if (!gt_jws_alg_for_key(APR_ARRAY_IDX(t->keys, k, EVP_PKEY *),
                                    &why)) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(01902)
                             "GetTokenWatchPairingTrust %s in %s: key %d: %s",
                             t->issuer, gettoken_vhost_name(s, p), k + 1, why);
                return !OK;
            }
        }
    }
    return OK;
}

int gettoken_watch_verify_startup(const gettoken_startup *st, server_rec *s,
                                  gettoken_server_conf *conf)
{
    struct gettoken_watch_verify *wv = conf->watch_verify;
    apr_pool_t *p = st->pconf;
    struct pairing_store *store;

    if (load_trust(p, s, wv) != OK)
        return !OK;
    if (!wv->trust->nelts)
        return OK;
    if (check_trust_algs(p, s, wv->trust) != OK
        || gettoken_dbd_require(s, p, "GetTokenWatchPairingTrust",
                                " to record used pairing tokens", "") != OK)
        return !OK;
    store = apr_pcalloc(p, sizeof(*store));
    store->insert_label = gettoken_dbd_prepare(s, p, SQL_INSERT,
                                               "pairing_insert");
    store->seen_label = gettoken_dbd_prepare(s, p, SQL_SEEN, "pairing_seen");
    store->purge_label = gettoken_dbd_prepare(s, p, SQL_PURGE, "pairing_purge");
    wv->store = store;
    return OK;
}

/* A token refused (403), naming the issuer and jti when they are known:
 * `what` asked for the check; `id` is the call site's GTLOGNO(). */
static int refuse_token(request_rec *r, gettoken_refused what, const char *id,
                        const char *reason, const char *detail,
                        const gt_pairing_claims *c)
{
    return gettoken_refuse(r, what, HTTP_FORBIDDEN, id,
                           "pairing token: %s: %s%s%s%s%s", reason, detail,
                           c && c->iss ? "; iss " : "",
                           c && c->iss ? ap_escape_logitem(r->pool, c->iss)
                                       : "",
                           c && c->jti ? ", jti " : "",
                           c && c->jti ? ap_escape_logitem(r->pool, c->jti)
                                       : "");
}

/* The parameters and results of the replay store's queries. */
struct jti_query {
    const char *jti;
    const char *expires;        /* unix seconds */
    int nrows;
    int found;
};

static int jti_insert(request_rec *r, ap_dbd_t *dbd, apr_dbd_prepared_t *stmt,
                      void *ctx)
{
    struct jti_query *q = ctx;
    const char *args[2];

    args[0] = q->jti;
    args[1] = q->expires;
    return gettoken_dbd_change(r, dbd, stmt, 2, args, &q->nrows);
}

static void note_found(request_rec *r, const ap_dbd_t *dbd, apr_dbd_row_t *row,
                       void *found)
{
    (void)r;
    (void)dbd;
    (void)row;
    *(int *)found = 1;
}

static int jti_seen(request_rec *r, ap_dbd_t *dbd, apr_dbd_prepared_t *stmt,
                    void *ctx)
{
    struct jti_query *q = ctx;

    q->found = 0;
    return gettoken_dbd_select(r, dbd, stmt, 1, &q->jti, note_found, &q->found);
}

/* Records the jti: OK the first time, HTTP_FORBIDDEN for a replay,
 * HTTP_SERVICE_UNAVAILABLE when the database cannot say. */
static int record_jti(request_rec *r, gettoken_refused what,
                      struct pairing_store *st,
                      const gt_pairing_claims *c, apr_int64_t now)
{
    ap_dbd_t *dbd = gettoken_dbd_acquire(r);
    struct jti_query q = { c->jti, NULL, 0, 0 };
    const char *insert_err = NULL, *seen_err = NULL;

    if (!dbd)
        return gettoken_no_connection(r, what, GTLOGNO(01903),
                                      "the pairing tokens' replay store");
    q.expires = apr_psprintf(r->pool, "%" APR_INT64_T_FMT,
                             c->exp + GT_PAIRING_SKEW);
    if (gettoken_dbd_run(r, dbd, st->insert_label, SQL_INSERT, jti_insert, &q,
                         &insert_err) == 0) {
        if (q.nrows == 1) {
            gettoken_dbd_purge_maybe(r, dbd, st->purge_label, SQL_PURGE,
                                     &st->next_purge, now,
                                     "gettoken_pairing_jti");
            return OK;
        }
        insert_err = "no row inserted";
    }
    /* a unique-key violation, or a real failure?  Ask for the row. */
    if (gettoken_dbd_run(r, dbd, st->seen_label, SQL_SEEN, jti_seen, &q,
                         &seen_err) == 0 && q.found)
        return refuse_token(r, what, GTLOGNO(01904), "replayed",
                            "the token was used before", c);
    return gettoken_refuse(r, what, HTTP_SERVICE_UNAVAILABLE, GTLOGNO(01905),
                           "pairing token: recording the jti failed (is the "
                           "table gettoken_pairing_jti there? conf/schema/)"
                           "%s%s", insert_err ? ": " : "",
                           insert_err ? insert_err : "");
}

int gettoken_watch_check_token(request_rec *r, gettoken_refused what,
                               const char *token,
                               const char *watch_udid,
                               const char *security_token,
                               gt_pairing_claims *claims)
{
    const gettoken_server_conf *conf = gettoken_server_config(r->server);
    const char *payload = NULL, *why = NULL, *claimed_iss;
    const apr_array_header_t *keys;
    apr_size_t payload_len = 0;
    gt_pairing_result pres;

    memset(claims, 0, sizeof(*claims));
    if (!conf || !conf->watch_verify->trust
        || !conf->watch_verify->trust->nelts || !conf->watch_verify->store)
        return refuse_token(r, what, GTLOGNO(01906), "untrusted issuer",
                            "no GetTokenWatchPairingTrust is configured for "
                            "this virtual host", NULL);

    /* only the keys listed for the issuer the token names may verify it */
    claimed_iss = gt_pairing_claimed_issuer(r->pool, token, strlen(token),
                                            &why);
    if (!claimed_iss)
        return refuse_token(r, what, GTLOGNO(01907), "malformed token", why,
                            NULL);
    keys = gt_pairing_trusted_keys(conf->watch_verify->trust, claimed_iss);
    if (!keys)
        return refuse_token(r, what, GTLOGNO(01908), "untrusted issuer",
                            apr_pstrcat(r->pool, "iss ",
                                        ap_escape_logitem(r->pool,
                                                          claimed_iss),
                                        " is not listed in "
                                        "GetTokenWatchPairingTrust", NULL),
                            NULL);

    /* claims->iss names the issuer whose keys were tried in the log line */
    claims->iss = claimed_iss;
    switch (gt_jws_verify(r->pool, token, strlen(token), keys, &payload,
                          &payload_len, &why)) {
    case GT_JWS_VALID:
        break;
    case GT_JWS_MALFORMED:
        return refuse_token(r, what, GTLOGNO(01909), "malformed token", why,
                            NULL);
    case GT_JWS_ALG_REFUSED:
    case GT_JWS_NO_KEY:
    case GT_JWS_BAD_SIGNATURE:
        return refuse_token(r, what, GTLOGNO(01910), "bad signature", why,
                            claims);
    }

    pres = gt_pairing_check(r->pool, payload, payload_len,
                            apr_time_sec(apr_time_now()), watch_udid,
                            security_token, claims, &why);
    if (pres != GT_PAIRING_OK)
        return refuse_token(r, what, GTLOGNO(01911), gt_pairing_reason(pres),
                            why, claims);
    apr_table_setn(r->subprocess_env, "GETTOKEN_SERVICE",
                   GETTOKEN_SERVICE_WATCH_PAIRING);
    apr_table_setn(r->subprocess_env, "GETTOKEN_JTI", claims->jti);
    return OK;
}

int gettoken_watch_use_jti(request_rec *r, gettoken_refused what,
                           const gt_pairing_claims *claims)
{
    const gettoken_server_conf *conf = gettoken_server_config(r->server);

    return record_jti(r, what, conf->watch_verify->store, claims,
                      apr_time_sec(apr_time_now()));
}

int gettoken_watch_verify(request_rec *r, const char *token,
                          const char *watch_udid, const char *security_token,
                          const char **phone_udid, const char **issuer)
{
    gt_pairing_claims claims;
    int status;

    if (!token || !watch_udid || !security_token || !phone_udid || !issuer)
        return refuse_token(r, GT_REFUSED_PAIRING_VERIFY, GTLOGNO(01912),
                            "malformed request", "token, WatchUDID or "
                            "SecurityToken missing", NULL);
    status = gettoken_watch_check_token(r, GT_REFUSED_PAIRING_VERIFY, token,
                                        watch_udid, security_token, &claims);
    if (status == OK)
        status = gettoken_watch_use_jti(r, GT_REFUSED_PAIRING_VERIFY, &claims);
    if (status != OK)
        return status;
    *phone_udid = claims.phone_udid;
    *issuer = claims.iss;
    gettoken_status_count(GT_STAT_WATCH_ADMITTED, NULL, 0);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, GTLOGNO(01913)
                  "watch pairing token accepted: iss %s, jti %s, phone %s",
                  ap_escape_logitem(r->pool, claims.iss), claims.jti,
                  ap_escape_logitem(r->pool, claims.phone_udid));
    return OK;
}

/* ---- SetHandler gettoken-watch-verify ------------------------------------ */

int gettoken_watch_verify_handler(request_rec *r)
{
    const gettoken_server_conf *conf;
    gt_pairing_verify_request req;
    const char *phone = NULL, *issuer = NULL;
    const char *why = NULL, *xml, *body = NULL;
    apr_size_t len = 0, xml_len;
    int status;

    if (!r->handler || strcmp(r->handler, VERIFY_HANDLER) != 0)
        return DECLINED;
    r->allowed |= (AP_METHOD_BIT << M_POST);
    if (r->method_number != M_POST) {
        ap_allow_methods(r, REPLACE_ALLOW, "POST", NULL);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    conf = gettoken_server_config(r->server);
    status = gettoken_body_read_whole(r, conf ? conf->max_body
                                              : GT_DEFAULT_MAX_BODY,
                                      GT_REFUSED_PAIRING_VERIFY,
                                      GTLOGNO(01914), &body, &len);
    if (status != OK)
        return status;
    if (gt_pairing_parse_verify_request(r->pool, body, len, &verify_limits,
                                        &req, &why) != 0)
        return gettoken_refuse(r, GT_REFUSED_PAIRING_VERIFY, HTTP_BAD_REQUEST,
                               GTLOGNO(01915), "%s", why);
    if (!verify_fn)
        return gettoken_refuse(r, GT_REFUSED_PAIRING_VERIFY,
                               HTTP_INTERNAL_SERVER_ERROR, GTLOGNO(01916),
                               "the optional function gettoken_watch_verify "
                               "is not registered");
    status = verify_fn(r, req.token, req.watch_udid, req.security_token,
                       &phone, &issuer);
    if (status != OK)
        return status;      /* logged by the verifier */

    xml = gt_pairing_verify_response_xml(r->pool, phone, issuer, &xml_len);
    return gettoken_send_answer(r, "application/xml", xml, xml_len);
}

void gettoken_watch_verify_retrieve(void)
{
    /* the handler uses the function the way another module would */
    verify_fn = APR_RETRIEVE_OPTIONAL_FN(gettoken_watch_verify);
}
