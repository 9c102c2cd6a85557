/*
 * gettoken_audit.c - what happens after a parsed GetToken was answered:
 * the server-status counters, and the optional audit row
 * (GetTokenAuditSQL), so that a security team can say which device got
 * which token and an operator can list the enrollments that never asked.
 *
 * The audit statement runs on the request's pooled mod_dbd connection
 * once the answer is decided; its failure is logged and changes nothing.
 */
#include "gettoken_private.h"

#include "apr_dbd.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "mod_dbd.h"

APLOG_USE_MODULE(gettoken);

const char *gettoken_set_audit_sql(cmd_parms *cmd, void *dirv, const char *arg)
{
    (void)dirv;
    if (!*arg)
        return "GetTokenAuditSQL needs an SQL statement";
    gettoken_server_config(cmd->server)->audit_sql = arg;
    return NULL;
}

int gettoken_audit_prepare(server_rec *s, gettoken_server_conf *conf,
                           apr_pool_t *p)
{
    if (!gettoken_dbd_loaded()) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                     "GetTokenAuditSQL in %s needs mod_dbd: load it "
                     "(LoadModule dbd_module) and set DBDriver/DBDParams",
                     gettoken_vhost_name(s, p));
        return !OK;
    }
    conf->audit_label = gettoken_dbd_prepare(s, p, conf->audit_sql, "audit");
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
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, GT_LOG_PREFIX
                  "GetTokenAuditSQL in %s: %s%s%s (the answer stands)",
                  gettoken_vhost_name(r->server, r->pool), why,
                  detail ? ": " : "", detail ? detail : "");
}

static void run_audit(request_rec *r, const gettoken_server_conf *conf,
                      const gt_checkin *msg, int status)
{
    const char *jti = apr_table_get(r->subprocess_env, "GETTOKEN_JTI");
    const char *identity = apr_table_get(r->notes, GT_NOTE_IDENTITY);
    const char *http_status = apr_itoa(r->pool, status == OK ? HTTP_OK : status);
    apr_dbd_prepared_t *stmt = NULL;
    ap_dbd_t *dbd = gettoken_dbd_acquire(r);
    int nrows = 0, rv;

    if (!dbd) {
        audit_failed(r, "no database connection", NULL);
        return;
    }
    if (strcmp(apr_dbd_name(dbd->driver), "pgsql") == 0) {
        /* unnamed, sent with its parameters: a connection that mod_dbd
         * re-opened in place has lost its named statements */
        rv = apr_dbd_prepare(dbd->driver, r->pool, dbd->handle,
                             conf->audit_sql, NULL, &stmt);
        if (rv != 0) {
            audit_failed(r, "preparing it failed",
                         apr_dbd_error(dbd->driver, dbd->handle, rv));
            return;
        }
    }
    else
        stmt = apr_hash_get(dbd->prepared, conf->audit_label,
                            APR_HASH_KEY_STRING);
    if (!stmt) {
        audit_failed(r, "it is not prepared on this connection", NULL);
        return;
    }
    rv = apr_dbd_pvquery(dbd->driver, r->pool, dbd->handle, &nrows, stmt,
                         gt_checkin_enrollment(msg),
                         audit_organisation(r, status),
                         msg->service_type, jti ? jti : "", http_status,
                         identity ? identity : "", NULL);
    if (rv != 0)
        audit_failed(r, "the statement failed",
                     apr_dbd_error(dbd->driver, dbd->handle, rv));
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
    /* a 503 is a database that could not be reached: it was logged */
    if (conf->audit_sql && conf->audit_label
        && status != HTTP_SERVICE_UNAVAILABLE)
        run_audit(r, conf, msg, status);
}
