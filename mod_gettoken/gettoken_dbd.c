/*
 * gettoken_dbd.c - mod_dbd as the module's database features use it (the
 * enrollment binding, the watch pairing replay store): its optional
 * functions, statements prepared under labels of our own, and the pooled
 * connection of a request.  As in mod_authn_dbd, a statement is handed to
 * mod_dbd at start-up and prepared by mod_dbd on every pooled connection.
 */
#include "gettoken_private.h"

#include "apr_atomic.h"
#include "apr_strings.h"
#include "mod_dbd.h"

APLOG_USE_MODULE(gettoken);

static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *dbd_prepare;
static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;

void gettoken_dbd_retrieve_fns(void)
{
    dbd_prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
}

int gettoken_dbd_loaded(void)
{
    return dbd_prepare && dbd_acquire;
}

const char *gettoken_dbd_prepare(server_rec *s, apr_pool_t *p,
                                 const char *sql, const char *purpose)
{
    /* labels are global in mod_dbd: one per statement and vhost */
    static unsigned label_num = 0;
    const char *label;

    if (!gettoken_dbd_loaded())
        return NULL;
    label = apr_psprintf(p, "gettoken_%s_%u", purpose, label_num++);
    dbd_prepare(s, sql, label);
    return label;
}

ap_dbd_t *gettoken_dbd_acquire(request_rec *r)
{
    return dbd_acquire ? dbd_acquire(r) : NULL;
}

apr_dbd_prepared_t *gettoken_dbd_statement(ap_dbd_t *dbd, const char *label)
{
    return label ? apr_hash_get(dbd->prepared, label, APR_HASH_KEY_STRING)
                 : NULL;
}

/*
 * mod_dbd re-opens a broken connection in place (apr_dbd_check_conn: for
 * pgsql PQreset, for mysql a reconnecting ping) without preparing its
 * statements again, so after a database restart they are gone for good on
 * that connection.  Puts them back; returns how many were prepared.  Not
 * for SQLite, whose statements live in the client and cannot vanish.  A
 * subpool of the connection's pool holds them, freed at once on failure.
 */
int gettoken_dbd_reprepare(request_rec *r, ap_dbd_t *dbd,
                           const gettoken_dbd_sql *stmts, int n,
                           const char *what)
{
    const char *name = apr_dbd_name(dbd->driver);
    apr_pool_t *sub = NULL;
    int i, done = 0;

    if (!name || strncmp(name, "sqlite", 6) == 0
        || apr_pool_create(&sub, dbd->pool) != APR_SUCCESS)
        return 0;
    for (i = 0; i < n; i++) {
        apr_dbd_prepared_t *stmt = NULL;
        int rv = apr_dbd_prepare(dbd->driver, sub, dbd->handle, stmts[i].sql,
                                 stmts[i].label, &stmt);
        if (rv == 0 && stmt) {
            apr_hash_set(dbd->prepared, stmts[i].label, APR_HASH_KEY_STRING,
                         stmt);
            done++;
        }
        else
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, GT_LOG_PREFIX
                          "preparing %s again failed: %s", stmts[i].label,
                          apr_dbd_error(dbd->driver, dbd->handle, rv));
    }
    if (!done)
        apr_pool_destroy(sub);
    else
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, GT_LOG_PREFIX
                      "prepared the statements of %s again on a re-opened "
                      "database connection", what);
    return done;
}

void gettoken_dbd_purge_maybe(request_rec *r, ap_dbd_t *dbd, const char *label,
                              apr_uint32_t *next_purge, apr_int64_t now,
                              const char *table)
{
    apr_uint32_t due = apr_atomic_read32(next_purge);
    apr_dbd_prepared_t *stmt = gettoken_dbd_statement(dbd, label);
    int nrows = 0, rv;

    if ((apr_uint32_t)now < due || !stmt
        || apr_atomic_cas32(next_purge,
                            (apr_uint32_t)now + GETTOKEN_PURGE_INTERVAL,
                            due) != due)
        return;     /* not yet, or another thread does it */
    rv = apr_dbd_pvquery(dbd->driver, r->pool, dbd->handle, &nrows, stmt,
                         apr_psprintf(r->pool, "%" APR_INT64_T_FMT, now), NULL);
    if (rv != 0)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, GT_LOG_PREFIX
                      "purging expired rows of %s failed: %s", table,
                      apr_dbd_error(dbd->driver, dbd->handle, rv));
    else if (nrows > 0)
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, GT_LOG_PREFIX
                      "purged %d expired rows of %s", nrows, table);
}
