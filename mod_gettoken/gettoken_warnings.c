/*
 * gettoken_warnings.c - start-up warnings for what the config test cannot see.
 */
#include "gettoken_private.h"

APLOG_USE_MODULE(gettoken);

void gettoken_warnings_log(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    (void)pconf; (void)ptemp; (void)s;
}
