/*
 * gettoken_pairing_eligibility.c - may this phone vouch for watches?
 *
 * The message-shape rules (a device-channel device enrollment asking for
 * its own UDID) cannot tell a supervised iPhone from a user enrollment
 * that sends its EnrollmentID as UDID, nor from an enrollment the MDM has
 * disabled.  GetTokenWatchPairingSQL asks the MDM's database, through
 * mod_dbd, the way the enrollment binding does: a row means yes.
 */
#include "gettoken_private.h"

#include "apr_dbd.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "mod_dbd.h"

APLOG_USE_MODULE(gettoken);

const char *gettoken_set_watch_pairing_sql(cmd_parms *cmd, void *dirv,
                                           const char *arg)
{
    (void)dirv;
    if (!*arg)
        return "GetTokenWatchPairingSQL needs an SQL statement";
    gettoken_server_config(cmd->server)->watch_pairing_sql = arg;
    return NULL;
}

int gettoken_pairing_eligibility_prepare(server_rec *s,
                                         gettoken_server_conf *conf,
                                         apr_pool_t *p)
{
    /* no label without mod_dbd: the statement could never run */
    conf->watch_pairing_label = gettoken_dbd_prepare(s, p,
                                                     conf->watch_pairing_sql,
                                                     "watch_pairing");
    if (conf->watch_pairing_label)
        return OK;
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                 "GetTokenWatchPairingSQL in %s needs mod_dbd: load it "
                 "(LoadModule dbd_module) and set DBDriver/DBDParams",
                 gettoken_vhost_name(s, p));
    return !OK;
}

struct eligibility_query {
    const char *phone_udid;
    const char *identity_sha256;
    int rows;
};

/* Counts the rows, reading them all so the pooled connection is clean for
 * its next request.  Synchronous (seek 1): pgsql's asynchronous mode would
 * report a failed query as an empty result, a 403 instead of a 503. */
static int eligibility_query(request_rec *r, ap_dbd_t *dbd,
                             apr_dbd_prepared_t *stmt, void *ctx)
{
    struct eligibility_query *q = ctx;
    const char *args[2];
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row;
    int rv;

    args[0] = q->phone_udid;
    args[1] = q->identity_sha256;
    q->rows = 0;
    rv = apr_dbd_pselect(dbd->driver, r->pool, dbd->handle, &res, stmt, 1,
                         2, args);
    if (rv != 0)
        return rv;
    row = NULL;
    while ((rv = apr_dbd_get_row(dbd->driver, r->pool, res, &row, -1)) == 0)
        q->rows++;
    return rv == -1 ? 0 : rv;   /* -1: no more rows, the normal end */
}

static int unavailable(request_rec *r, const char *why)
{
    apr_table_setn(r->err_headers_out, "Retry-After", GT_RETRY_AFTER);
    gettoken_log_refusal(r, HTTP_SERVICE_UNAVAILABLE,
                         GETTOKEN_SERVICE_WATCH_PAIRING ": %s", why);
    return HTTP_SERVICE_UNAVAILABLE;
}

int gettoken_pairing_eligibility_check(const gettoken_request *req)
{
    request_rec *r = req->r;
    const gettoken_server_conf *conf = gettoken_server_config(r->server);
    struct eligibility_query q;
    ap_dbd_t *dbd;
    const char *err = NULL;

    if (!conf->watch_pairing_sql)
        return OK;      /* the message-shape rules stand alone */
    q.phone_udid = req->udid;
    q.identity_sha256 = req->identity_sha256 ? req->identity_sha256 : "";
    q.rows = 0;
    dbd = gettoken_dbd_acquire(r);
    if (!dbd)
        return unavailable(r, "no database connection for "
                           "GetTokenWatchPairingSQL (mod_dbd: check "
                           "DBDriver/DBDParams and that the database is up)");
    if (gettoken_dbd_run(r, dbd, conf->watch_pairing_label,
                         conf->watch_pairing_sql, eligibility_query, &q,
                         &err) != 0)
        return unavailable(r, apr_pstrcat(r->pool, "GetTokenWatchPairingSQL "
                                          "failed: ", err, NULL));
    if (q.rows == 0) {
        gettoken_log_refusal(r, HTTP_FORBIDDEN, GETTOKEN_SERVICE_WATCH_PAIRING
                             ": GetTokenWatchPairingSQL has no row for phone "
                             "%s with identity sha256 %s: this enrollment "
                             "may not vouch for watches",
                             ap_escape_logitem(r->pool, req->udid),
                             q.identity_sha256);
        return HTTP_FORBIDDEN;
    }
    return OK;
}
