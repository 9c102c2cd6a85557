/*
 * gettoken_binding.c - is this identity certificate the one enrolled for
 * the enrollment the message speaks for?  Asked of the MDM's database
 * through mod_dbd's connection pool with one prepared statement
 * (GetTokenEnrollmentSQL), the way mod_authn_dbd asks for passwords.
 */
#include "gettoken_private.h"

#include "apr_dbd.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "mod_dbd.h"

APLOG_USE_MODULE(gettoken);

int gettoken_binding_prepare(server_rec *s, gettoken_server_conf *conf,
                             apr_pool_t *p)
{
    if (!gettoken_dbd_loaded()) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                     "GetTokenEnrollmentSQL in %s needs mod_dbd: load it "
                     "(LoadModule dbd_module) and set DBDriver/DBDParams, or "
                     "set GetTokenEnrollmentSQL none", gettoken_vhost_name(s, p));
        return !OK;
    }
    /* one label per vhost: vhosts may use different SQL or databases */
    conf->enrollment_label = gettoken_dbd_prepare(s, p, conf->enrollment_sql,
                                                  "enrollment");
    return OK;
}

static int unavailable(request_rec *r, const char *why, apr_status_t rv,
                       const char *detail)
{
    apr_table_setn(r->err_headers_out, "Retry-After", GT_RETRY_AFTER);
    ap_log_rerror(APLOG_MARK, APLOG_ERR, rv, r, GT_LOG_PREFIX
                  "GetToken refused (503): %s%s%s", why,
                  detail ? ": " : "", detail ? detail : "");
    return HTTP_SERVICE_UNAVAILABLE;
}

struct binding_query {
    const gettoken_request *req;
    int found;
};

/*
 * GetTokenEnrollmentSQL once, reading every row so the connection is clean
 * for the next request.  The select is synchronous (seek 1): with pgsql's
 * asynchronous mode a failed query looks like an empty result -- a 403
 * instead of a 503.
 */
static int binding_query(request_rec *r, ap_dbd_t *dbd,
                         apr_dbd_prepared_t *stmt, void *ctx)
{
    struct binding_query *q = ctx;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv;

    q->found = 0;
    rv = apr_dbd_pvselect(dbd->driver, r->pool, dbd->handle, &res, stmt, 1,
                          q->req->enrollment_id, q->req->identity_sha256,
                          NULL);
    if (rv != 0)
        return rv;
    while ((rv = apr_dbd_get_row(dbd->driver, r->pool, res, &row, -1)) == 0)
        q->found = 1;
    return rv == -1 ? 0 : rv;
}

int gettoken_binding_check(request_rec *r, const gettoken_server_conf *conf,
                           const gettoken_request *req)
{
    struct binding_query q = { req, 0 };
    ap_dbd_t *dbd;
    const char *err = NULL;

    if (!conf->enrollment_sql)
        return OK;   /* "none": mod_ssl's chain verification stands alone */

    /* mod_dbd blocks here while the pool (DBDMax) is exhausted, until a
     * request gives a connection back; a database that is down fails at
     * once (or after connect_timeout in DBDParams) */
    dbd = gettoken_dbd_acquire(r);
    if (!dbd)
        return unavailable(r, "no database connection (mod_dbd: check "
                           "DBDriver/DBDParams and that the database is up)",
                           0, NULL);
    if (gettoken_dbd_run(r, dbd, conf->enrollment_label, conf->enrollment_sql,
                         binding_query, &q, &err) != 0)
        return unavailable(r, "GetTokenEnrollmentSQL failed", 0, err);
    if (!q.found) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                      "GetToken refused (403): the identity certificate "
                      "(sha256 %s, from %s) is not bound to enrollment %s",
                      req->identity_sha256, req->identity_source,
                      ap_escape_logitem(r->pool, req->enrollment_id));
        return HTTP_FORBIDDEN;
    }
    return OK;
}
