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

static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *dbd_prepare;
static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;

void gettoken_binding_retrieve_fns(void)
{
    dbd_prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
}

int gettoken_binding_prepare(server_rec *s, gettoken_server_conf *conf,
                             apr_pool_t *p)
{
    static unsigned label_num = 0;

    if (!dbd_prepare || !dbd_acquire) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                     "GetTokenEnrollmentSQL in %s needs mod_dbd: load it "
                     "(LoadModule dbd_module) and set DBDriver/DBDParams, or "
                     "set GetTokenEnrollmentSQL none", gettoken_vhost_name(s, p));
        return !OK;
    }
    /* one label per vhost: vhosts may use different SQL or databases */
    conf->enrollment_label = apr_psprintf(p, "gettoken_enrollment_%u",
                                          label_num++);
    dbd_prepare(s, conf->enrollment_sql, conf->enrollment_label);
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

int gettoken_binding_check(request_rec *r, const gettoken_server_conf *conf,
                           const gettoken_request *req)
{
    ap_dbd_t *dbd;
    apr_dbd_prepared_t *stmt;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv, found = 0;

    if (!conf->enrollment_sql)
        return OK;   /* "none": mod_ssl's chain verification stands alone */

    dbd = dbd_acquire(r);
    if (!dbd)
        return unavailable(r, "no database connection (mod_dbd: check "
                           "DBDriver/DBDParams and that the database is up)",
                           0, NULL);
    stmt = apr_hash_get(dbd->prepared, conf->enrollment_label,
                        APR_HASH_KEY_STRING);
    if (!stmt)
        return unavailable(r, "GetTokenEnrollmentSQL is not prepared on this "
                           "connection", 0, NULL);
    rv = apr_dbd_pvselect(dbd->driver, r->pool, dbd->handle, &res, stmt, 0,
                          req->enrollment_id, req->identity_sha256, NULL);
    if (rv != 0)
        return unavailable(r, "GetTokenEnrollmentSQL failed", 0,
                           apr_dbd_error(dbd->driver, dbd->handle, rv));
    /* read every row so the connection is clean for the next request */
    while ((rv = apr_dbd_get_row(dbd->driver, r->pool, res, &row, -1)) == 0)
        found = 1;
    if (rv != -1)
        return unavailable(r, "reading the GetTokenEnrollmentSQL result failed",
                           0, apr_dbd_error(dbd->driver, dbd->handle, rv));
    if (!found) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                      "GetToken refused (403): the identity certificate "
                      "(sha256 %s, from %s) is not bound to enrollment %s",
                      req->identity_sha256, req->identity_source,
                      ap_escape_logitem(r->pool, req->enrollment_id));
        return HTTP_FORBIDDEN;
    }
    return OK;
}
