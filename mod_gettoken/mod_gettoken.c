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
 *   watch_verify.c       watch pairing tokens, the verifying side
 *   gettoken_status.c    server-status counters (shared memory)
 *   gettoken_audit.c     after an answer: counters, GetTokenAuditSQL
 *   gettoken_refusal.c   refusal log lines, repeats grouped
 *   gettoken_warnings.c  start-up warnings the config test cannot give
 *   gettoken_watch_enrollment.c  the watch MDM's gate (MachineInfo)
 *   core/, jose/         parsing, tokens and crypto, free of httpd
 */
#include "gettoken_private.h"

#include "core/gt_cert.h"
#include "core/gt_keys.h"

#include "http_core.h"
#include "http_main.h"
#include "http_request.h"


/*
 * Keys are loaded and statements prepared in post_config, like mod_ssl's
 * certificates: "httpd -k stop" reads the configuration too, and must not
 * fail because a key or an HSM is unavailable at that moment.  The config
 * test (apachectl -t) runs no post_config, so there the same checks run
 * in check_config: every misconfiguration is reported by the config test
 * and by start-up, never by the first request.
 */
static int gettoken_check_config(apr_pool_t *pconf, apr_pool_t *plog,
                                 apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    if (ap_state_query(AP_SQ_RUN_MODE) != AP_SQ_RM_CONFIG_TEST)
        return OK;
    gettoken_dbd_retrieve_fns();
    return gettoken_config_finish(pconf, ptemp, s);
}

static int gettoken_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    gettoken_dbd_retrieve_fns();
    if (gt_digests_init(pconf) != 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                     "OpenSSL has no SHA-256 implementation available");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (gettoken_config_finish(pconf, ptemp, s) != OK)
        return HTTP_INTERNAL_SERVER_ERROR;
    gettoken_config_warn(pconf, s);
    gettoken_organizations_announce(pconf, s);
    gettoken_warnings_log(pconf, ptemp, s);
    return gettoken_status_init(pconf, s);
}

static void gettoken_register_hooks(apr_pool_t *p)
{
    /* statements go to mod_dbd before its post_config groups them into
     * connection pools */
    static const char *const before_dbd[] = { "mod_dbd.c", NULL };
    /* its connection pools exist once its child_init ran */
    static const char *const after_dbd[] = { "mod_dbd.c", NULL };

    (void)p;
    ap_hook_check_config(gettoken_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(gettoken_post_config, NULL, before_dbd, APR_HOOK_MIDDLE);
    /* ahead of mod_proxy, mod_cgi and every other content handler */
    ap_hook_handler(gettoken_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
    gettoken_body_register();
    /* internal redirects after a decline take the body replay along */
    ap_hook_insert_filter(gettoken_body_insert_filter, NULL, NULL,
                          APR_HOOK_MIDDLE);

    gettoken_hook_generate_token(gettoken_maid_generate, NULL, NULL,
                                 APR_HOOK_MIDDLE);
    gettoken_hook_generate_token(gettoken_watch_pairing_generate, NULL, NULL,
                                 APR_HOOK_MIDDLE);
    gettoken_watch_register();
    gettoken_status_register();
    ap_hook_child_init(gettoken_refusal_child_init, NULL, NULL,
                       APR_HOOK_MIDDLE);
    ap_hook_child_init(gettoken_warnings_child_init, after_dbd, NULL,
                       APR_HOOK_MIDDLE);
    gettoken_watch_enrollment_register();
}

AP_DECLARE_MODULE(gettoken) = {
    STANDARD20_MODULE_STUFF,
    gettoken_create_dir_conf,
    gettoken_merge_dir_conf,
    gettoken_create_server_conf,
    gettoken_merge_server_conf,
    gettoken_directives,
    gettoken_register_hooks,
    AP_MODULE_FLAG_NONE
};
