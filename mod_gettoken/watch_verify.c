/*
 * watch_verify.c - com.apple.watch.pairing, the watch MDM's side.
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

#include "apr_dbd.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "http_request.h"
#include "mod_dbd.h"

#include "core/gt_pairing.h"
#include "jose/gt_jose.h"

APLOG_USE_MODULE(gettoken);

#define VERIFY_HANDLER "gettoken-watch-verify"

#define SQL_INSERT "INSERT INTO gettoken_pairing_jti (jti, expires_at) " \
                   "VALUES (%s, %lld)"
#define SQL_SEEN   "SELECT 1 FROM gettoken_pairing_jti WHERE jti = %s"
#define SQL_PURGE  "DELETE FROM gettoken_pairing_jti WHERE expires_at < %lld"

/* The replay store of one vhost: mod_dbd labels of its statements. */
struct gettoken_pairing_store {
    const char *insert_label;
    const char *seen_label;
    const char *purge_label;
    apr_uint32_t next_purge;    /* unix seconds (low 32 bits) */
};

static APR_OPTIONAL_FN_TYPE(gettoken_watch_verify) *verify_fn;

static const gt_plist_limits verify_limits = { 8, 256, GT_PLIST_MAX_EXPANDED };

int gettoken_watch_prepare(server_rec *s, gettoken_server_conf *conf,
                           apr_pool_t *p)
{
    struct gettoken_pairing_store *st;
    int i;

    for (i = 0; i < conf->pairing_trust->nelts; i++) {
        const gt_pairing_trust *t = &APR_ARRAY_IDX(conf->pairing_trust, i,
                                                   gt_pairing_trust);
        int k;
        for (k = 0; k < t->keys->nelts; k++) {
            const char *why = NULL;
            if (!gt_jws_alg_for_key(APR_ARRAY_IDX(t->keys, k, EVP_PKEY *),
                                    &why)) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                             "GetTokenWatchPairingTrust %s in %s: key %d: %s",
                             t->issuer, gettoken_vhost_name(s, p), k + 1, why);
                return !OK;
            }
        }
    }
    if (!gettoken_dbd_loaded()) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                     "GetTokenWatchPairingTrust in %s needs mod_dbd to record "
                     "used pairing tokens: load it (LoadModule dbd_module) and "
                     "set DBDriver/DBDParams", gettoken_vhost_name(s, p));
        return !OK;
    }
    st = apr_pcalloc(p, sizeof(*st));
    st->insert_label = gettoken_dbd_prepare(s, p, SQL_INSERT, "pairing_insert");
    st->seen_label = gettoken_dbd_prepare(s, p, SQL_SEEN, "pairing_seen");
    st->purge_label = gettoken_dbd_prepare(s, p, SQL_PURGE, "pairing_purge");
    conf->pairing_store = st;
    return OK;
}

static int refuse(request_rec *r, const char *reason, const char *detail,
                  const gt_pairing_claims *c)
{
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                  "watch pairing token refused (403): %s: %s%s%s%s%s; vhost %s",
                  reason, detail,
                  c && c->iss ? "; iss " : "",
                  c && c->iss ? ap_escape_logitem(r->pool, c->iss) : "",
                  c && c->jti ? ", jti " : "",
                  c && c->jti ? ap_escape_logitem(r->pool, c->jti) : "",
                  gettoken_vhost_name(r->server, r->pool));
    return HTTP_FORBIDDEN;
}

static int unavailable(request_rec *r, const char *why, const char *detail)
{
    apr_table_setn(r->err_headers_out, "Retry-After", GT_RETRY_AFTER);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                  "watch pairing verification failed (503): %s%s%s; vhost %s",
                  why, detail ? ": " : "", detail ? detail : "",
                  gettoken_vhost_name(r->server, r->pool));
    return HTTP_SERVICE_UNAVAILABLE;
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

    q->nrows = 0;
    return apr_dbd_pvquery(dbd->driver, r->pool, dbd->handle, &q->nrows, stmt,
                           q->jti, q->expires, NULL);
}

/* Random access (synchronous): apr_dbd_pgsql reports errors of a
 * sequential select as "no more rows". */
static int jti_seen(request_rec *r, ap_dbd_t *dbd, apr_dbd_prepared_t *stmt,
                    void *ctx)
{
    struct jti_query *q = ctx;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv = apr_dbd_pvselect(dbd->driver, r->pool, dbd->handle, &res, stmt, 1,
                              q->jti, NULL);

    q->found = 0;
    if (rv != 0)
        return rv;
    while ((rv = apr_dbd_get_row(dbd->driver, r->pool, res, &row, -1)) == 0)
        q->found = 1;
    return rv == -1 ? 0 : rv;
}

/* Records the jti: OK the first time, HTTP_FORBIDDEN for a replay,
 * HTTP_SERVICE_UNAVAILABLE when the database cannot say. */
static int record_jti(request_rec *r, struct gettoken_pairing_store *st,
                      const gt_pairing_claims *c, apr_int64_t now)
{
    ap_dbd_t *dbd = gettoken_dbd_acquire(r);
    struct jti_query q = { c->jti, NULL, 0, 0 };
    const char *insert_err = NULL, *seen_err = NULL;

    if (!dbd)
        return unavailable(r, "no database connection for the replay store "
                           "(mod_dbd: check DBDriver/DBDParams and that the "
                           "database is up)", NULL);
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
        return refuse(r, "replayed", "the token was used before", c);
    return unavailable(r, "recording the jti failed (is the table "
                       "gettoken_pairing_jti there? conf/schema/)", insert_err);
}

int gettoken_watch_check_token(request_rec *r, const char *token,
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
    if (!conf || !conf->pairing_trust || !conf->pairing_trust->nelts
        || !conf->pairing_store)
        return refuse(r, "untrusted issuer", "no GetTokenWatchPairingTrust is "
                      "configured for this virtual host", NULL);

    /* only the keys listed for the issuer the token names may verify it */
    claimed_iss = gt_pairing_claimed_issuer(r->pool, token, strlen(token),
                                            &why);
    if (!claimed_iss)
        return refuse(r, "malformed token", why, NULL);
    keys = gt_pairing_trusted_keys(conf->pairing_trust, claimed_iss);
    if (!keys)
        return refuse(r, "untrusted issuer", apr_pstrcat(r->pool, "iss ",
                      ap_escape_logitem(r->pool, claimed_iss), " is not listed "
                      "in GetTokenWatchPairingTrust", NULL), NULL);

    /* claims->iss names the issuer whose keys were tried in the log line */
    claims->iss = claimed_iss;
    switch (gt_jws_verify(r->pool, token, strlen(token), keys, &payload,
                          &payload_len, &why)) {
    case GT_JWS_VALID:
        break;
    case GT_JWS_MALFORMED:
        return refuse(r, "malformed token", why, NULL);
    case GT_JWS_ALG_REFUSED:
    case GT_JWS_NO_KEY:
    case GT_JWS_BAD_SIGNATURE:
        return refuse(r, "bad signature", why, claims);
    }

    pres = gt_pairing_check(r->pool, payload, payload_len,
                            apr_time_sec(apr_time_now()), watch_udid,
                            security_token, claims, &why);
    if (pres != GT_PAIRING_OK)
        return refuse(r, gt_pairing_reason(pres), why, claims);
    apr_table_setn(r->subprocess_env, "GETTOKEN_SERVICE",
                   GETTOKEN_SERVICE_WATCH_PAIRING);
    apr_table_setn(r->subprocess_env, "GETTOKEN_JTI", claims->jti);
    return OK;
}

int gettoken_watch_use_jti(request_rec *r, const gt_pairing_claims *claims)
{
    const gettoken_server_conf *conf = gettoken_server_config(r->server);

    return record_jti(r, conf->pairing_store, claims,
                      apr_time_sec(apr_time_now()));
}

static int gettoken_watch_verify(request_rec *r, const char *token,
                                 const char *watch_udid,
                                 const char *security_token,
                                 const char **phone_udid, const char **issuer)
{
    gt_pairing_claims claims;
    int status;

    if (!token || !watch_udid || !security_token || !phone_udid || !issuer)
        return refuse(r, "malformed request", "token, WatchUDID or "
                      "SecurityToken missing", NULL);
    status = gettoken_watch_check_token(r, token, watch_udid, security_token,
                                        &claims);
    if (status == OK)
        status = gettoken_watch_use_jti(r, &claims);
    if (status != OK)
        return status;
    *phone_udid = claims.phone_udid;
    *issuer = claims.iss;
    gettoken_status_count(GT_STAT_WATCH_ADMITTED, NULL, 0);
    ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, GT_LOG_PREFIX
                  "watch pairing token accepted: iss %s, jti %s, phone %s",
                  ap_escape_logitem(r->pool, claims.iss), claims.jti,
                  ap_escape_logitem(r->pool, claims.phone_udid));
    return OK;
}

/* ---- SetHandler gettoken-watch-verify ------------------------------------ */

/* Reads the body, at most `cap` bytes: OK, or an HTTP status. */
static int read_body(request_rec *r, apr_size_t cap, char **buf,
                     apr_size_t *len)
{
    apr_size_t used = 0, size = 8192;
    char *b = apr_palloc(r->pool, size);
    int status = ap_setup_client_block(r, REQUEST_CHUNKED_DECHUNK);

    if (status != OK)
        return status;
    if (ap_should_client_block(r)) {
        for (;;) {
            long n;
            if (used == size) {
                char *nb;
                if (size > cap)
                    break;
                nb = apr_palloc(r->pool, size * 2);
                memcpy(nb, b, used);
                b = nb;
                size *= 2;
            }
            n = ap_get_client_block(r, b + used, size - used);
            if (n < 0)
                return HTTP_BAD_REQUEST;
            if (n == 0)
                break;
            used += (apr_size_t)n;
            if (used > cap)
                break;
        }
    }
    if (used > cap) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                      "watch pairing verify refused (413): the body is over "
                      "%" APR_SIZE_T_FMT " bytes (GetTokenMaxBodySize)", cap);
        return HTTP_REQUEST_ENTITY_TOO_LARGE;
    }
    *buf = b;
    *len = used;
    return OK;
}

static int watch_verify_handler(request_rec *r)
{
    const gettoken_server_conf *conf;
    const char *token, *watch, *secret, *phone = NULL, *issuer = NULL;
    const char *why = NULL, *xml;
    char *body = NULL;
    apr_size_t len = 0, xml_len;
    apr_bucket_brigade *bb;
    int status;

    if (!r->handler || strcmp(r->handler, VERIFY_HANDLER) != 0)
        return DECLINED;
    r->allowed |= (AP_METHOD_BIT << M_POST);
    if (r->method_number != M_POST) {
        ap_allow_methods(r, REPLACE_ALLOW, "POST", NULL);
        return HTTP_METHOD_NOT_ALLOWED;
    }
    conf = gettoken_server_config(r->server);
    status = read_body(r, conf ? conf->max_body : GT_DEFAULT_MAX_BODY,
                       &body, &len);
    if (status != OK)
        return status;
    if (gt_pairing_parse_verify_request(r->pool, body, len, &verify_limits,
                                        &token, &watch, &secret, &why) != 0) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                      "watch pairing verify refused (400): %s", why);
        return HTTP_BAD_REQUEST;
    }
    if (!verify_fn) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                      "watch pairing verify failed (500): the optional "
                      "function gettoken_watch_verify is not registered");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    status = verify_fn(r, token, watch, secret, &phone, &issuer);
    if (status != OK)
        return status;      /* logged by the verifier */

    xml = gt_pairing_verify_response_xml(r->pool, phone, issuer, &xml_len);
    ap_set_content_type(r, "application/xml");
    ap_set_content_length(r, (apr_off_t)xml_len);
    bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(xml, xml_len,
                                                           bb->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(bb->bucket_alloc));
    if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS)
        r->connection->aborted = 1;
    return OK;
}

static void retrieve_verify_fn(void)
{
    /* the handler uses the function the way another module would */
    verify_fn = APR_RETRIEVE_OPTIONAL_FN(gettoken_watch_verify);
}

void gettoken_watch_register(void)
{
    APR_REGISTER_OPTIONAL_FN(gettoken_watch_verify);
    ap_hook_optional_fn_retrieve(retrieve_verify_fn, NULL, NULL,
                                 APR_HOOK_MIDDLE);
    ap_hook_handler(watch_verify_handler, NULL, NULL, APR_HOOK_MIDDLE);
}
