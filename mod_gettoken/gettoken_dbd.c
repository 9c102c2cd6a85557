/*
 * gettoken_dbd.c - mod_dbd as the module's database features use it (the
 * enrollment binding, the watch pairing replay store): its optional
 * functions, statements prepared under labels of our own, and the pooled
 * connection of a request.  As in mod_authn_dbd, a statement is handed to
 * mod_dbd at start-up and prepared by mod_dbd on every pooled connection.
 */
#include "gettoken_private.h"

#include "apr_strings.h"
#include "mod_dbd.h"

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
