/*
 * mod_gettoken.c - the module record and its hooks.
 *
 * mod_gettoken answers the MDM check-in message GetToken (com.apple.maid,
 * com.apple.watch.pairing and any service another module adds through the
 * gettoken_generate_token hook) in front of whatever already serves the
 * check-in location.  The parts:
 *   gettoken_config.c    directives, merging, start-up checks
 *   gettoken_handler.c   the request flow and the public hook
 *   gettoken_body.c      reading the body once, replaying it intact
 *   gettoken_identity.c  the device identity certificate
 *   gettoken_binding.c   identity <-> enrollment through mod_dbd
 *   service_*.c          the built-in token services (hook providers)
 *   core/, jose/         parsing, tokens and crypto, free of httpd
 */
#include "gettoken_private.h"

#include "http_request.h"


/* check_config runs for "apachectl -t" as well as at start-up, so every
 * misconfiguration is reported by the config test, not the first request. */
static int gettoken_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp, server_rec *s)
{
    gettoken_binding_retrieve_fns();
    return gettoken_config_finish(pconf, ptemp, s);
}

static int gettoken_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp, server_rec *s)
{
    gettoken_config_warn(pconf, s);
    return OK;
}

static void gettoken_register_hooks(apr_pool_t *p)
{
    /* statements are handed to mod_dbd here, before its post_config
     * groups them into connection pools */
    ap_hook_check_config(gettoken_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(gettoken_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    /* ahead of mod_proxy, mod_cgi and every other content handler */
    ap_hook_handler(gettoken_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
    gettoken_body_register(p);

    gettoken_hook_generate_token(gettoken_maid_generate, NULL, NULL,
                                 APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(gettoken) = {
    STANDARD20_MODULE_STUFF,
    gettoken_create_dir_conf,
    gettoken_merge_dir_conf,
    gettoken_create_server_conf,
    gettoken_merge_server_conf,
    gettoken_directives,
    gettoken_register_hooks
};
