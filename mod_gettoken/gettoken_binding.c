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
    (void)rv;
    gettoken_log_refusal(r, HTTP_SERVICE_UNAVAILABLE, "%s%s%s", why,
                         detail ? ": " : "", detail ? detail : "");
    return HTTP_SERVICE_UNAVAILABLE;
}

/* A driver's error message on one line (libpq's end with a newline). */
static const char *db_error(request_rec *r, const ap_dbd_t *dbd, int rv)
{
    const char *msg = apr_dbd_error(dbd->driver, dbd->handle, rv);
    char *line, *p;
    apr_size_t n;

    if (!msg || !*msg)
        return "no message from the driver";
    line = apr_pstrdup(r->pool, msg);
    for (p = line; *p; p++)
        if (*p == '\n' || *p == '\r' || *p == '\t')
            *p = ' ';
    n = strlen(line);
    while (n && line[n - 1] == ' ')
        line[--n] = '\0';
    return line;
}

/*
 * Runs GetTokenEnrollmentSQL once.  Returns 0 with *found set, or the
 * driver's error with *err.
 *
 * PostgreSQL gets an unnamed statement, sent with its parameters each time
 * (PQexecParams: one round trip, no state on the server).  mod_dbd's named
 * statement is prepared once per connection, and a pooled connection that
 * apr_dbd_check_conn() re-opened (PQreset, after a server restart) no
 * longer has it: every query on it would fail for as long as it lives.
 * Other drivers use the statement mod_dbd prepared (SQLite keeps per-call
 * statements until the connection closes).
 *
 * The select is synchronous (seek 1): with pgsql's asynchronous mode a
 * failed query looks like an empty result -- a 403 instead of a 503.
 */
static int run_query(request_rec *r, const gettoken_server_conf *conf,
                     ap_dbd_t *dbd, int pgsql, const gettoken_request *req,
                     int *found, const char **err)
{
    apr_dbd_prepared_t *stmt = NULL;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    int rv;

    *found = 0;
    if (pgsql) {
        rv = apr_dbd_prepare(dbd->driver, r->pool, dbd->handle,
                             conf->enrollment_sql, NULL, &stmt);
        if (rv != 0) {
            *err = apr_pstrcat(r->pool, "preparing it: ",
                               db_error(r, dbd, rv), NULL);
            return rv;
        }
    }
    else {
        stmt = apr_hash_get(dbd->prepared, conf->enrollment_label,
                            APR_HASH_KEY_STRING);
        if (!stmt) {
            *err = "it is not prepared on this connection";
            return -1;
        }
    }
    rv = apr_dbd_pvselect(dbd->driver, r->pool, dbd->handle, &res, stmt, 1,
                          req->enrollment_id, req->identity_sha256, NULL);
    if (rv != 0) {
        *err = db_error(r, dbd, rv);
        return rv;
    }
    /* read every row so the connection is clean for the next request */
    while ((rv = apr_dbd_get_row(dbd->driver, r->pool, res, &row, -1)) == 0)
        *found = 1;
    if (rv != -1) {
        *err = apr_pstrcat(r->pool, "reading the result: ",
                           db_error(r, dbd, rv), NULL);
        return rv;
    }
    return 0;
}

int gettoken_binding_check(request_rec *r, const gettoken_server_conf *conf,
                           const gettoken_request *req)
{
    ap_dbd_t *dbd;
    const char *err = NULL;
    int rv, found = 0, pgsql;

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
    pgsql = strcmp(apr_dbd_name(dbd->driver), "pgsql") == 0;
    rv = run_query(r, conf, dbd, pgsql, req, &found, &err);
    if (rv != 0 && pgsql && strncmp(err, "ERROR:", 6) != 0) {
        /* A pooled connection the server dropped (restart, idle timeout,
         * pg_terminate_backend) fails its first query; libpq then knows,
         * and apr_dbd_check_conn() re-opens it.  One retry, so a restart
         * costs no request a 503.  Not after an error of severity ERROR:
         * the server answered and the session lives on (statement_timeout,
         * a missing table); the same query would only fail again. */
        const char *first = err;
        apr_status_t st = apr_dbd_check_conn(dbd->driver, r->pool,
                                             dbd->handle);
        if (st != APR_SUCCESS)
            return unavailable(r, "GetTokenEnrollmentSQL failed and the "
                               "database connection cannot be re-opened", 0,
                               apr_pstrcat(r->pool, first, "; ",
                                           db_error(r, dbd, 0), NULL));
        rv = run_query(r, conf, dbd, pgsql, req, &found, &err);
        if (rv != 0)
            return unavailable(r, "GetTokenEnrollmentSQL failed (twice)", 0,
                               apr_pstrcat(r->pool, first, "; then: ", err,
                                           NULL));
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, GT_LOG_PREFIX
                      "GetTokenEnrollmentSQL failed (%s); the connection "
                      "was checked and the query retried", first);
    }
    if (rv != 0)
        return unavailable(r, "GetTokenEnrollmentSQL failed", 0, err);
    if (!found) {
        gettoken_log_refusal(r, HTTP_FORBIDDEN, "the identity certificate "
                             "(sha256 %s, from %s) is not bound to the "
                             "enrollment", req->identity_sha256,
                             req->identity_source);
        return HTTP_FORBIDDEN;
    }
    return OK;
}
