/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * mod_gettoken.c - the module record, its hooks, and the start-up driver.
 *
 * mod_gettoken answers the MDM check-in message GetToken (com.apple.maid,
 * com.apple.watch.pairing and any service another module adds through the
 * gettoken_generate_token hook) in front of whatever already serves the
 * check-in location.  README's "Layout of the source tree" lists the
 * files.  Start-up runs each part's step for each vhost, in the order of
 * the table below; the parts never call back here.
 */
#include "gettoken_private.h"
#include "gettoken_body.h"
#include "gettoken_dbd.h"
#include "gettoken_status.h"

#include "core/gt_cert.h"

#include "http_core.h"
#include "http_main.h"
#include "http_request.h"
#include "mod_status.h"

typedef int (*part_startup)(const gettoken_startup *st, server_rec *s,
                            gettoken_server_conf *conf);
typedef void (*part_notice)(apr_pool_t *p, server_rec *s,
                            const gettoken_server_conf *conf);

typedef struct {
    part_startup startup;
    int every_vhost;    /* 0: only where GetToken's keys or trust are set */
} startup_step;

/* Order matters: organisations copy the default organisation's loaded
 * keys; the identity check reads the binding's setting. */
static const startup_step startup_steps[] = {
    { gettoken_keys_startup, 0 },
    { gettoken_organizations_startup, 0 },
    { gettoken_binding_startup, 0 },
    { gettoken_audit_startup, 0 },
    { gettoken_pairing_eligibility_startup, 0 },
    { gettoken_identity_startup, 0 },
    { gettoken_watch_verify_startup, 0 },
    { gettoken_watch_enrollment_startup, 1 },
};

/* Notices once every vhost started, each part over every vhost. */
static const part_notice notices[] = {
    gettoken_binding_warn,
    gettoken_organizations_announce,
};

/* Whether the vhost has anything of GetToken's (a vhost that has not is
 * left alone, whatever it inherited). */
static int gettoken_configured(const gettoken_server_conf *conf)
{
    return conf->in_use || conf->keys->signing.where || conf->keys->pairing.where
           || gettoken_watch_trust_configured(conf)
           || conf->orgs->configured->nelts;
}

static int start_vhost(const gettoken_startup *st, server_rec *s,
                       gettoken_server_conf *conf)
{
    int configured = gettoken_configured(conf);
    apr_size_t i;

    conf->server = s;
    for (i = 0; i < sizeof(startup_steps) / sizeof(startup_steps[0]); i++)
        if ((configured || startup_steps[i].every_vhost)
            && startup_steps[i].startup(st, s, conf) != OK)
            return !OK;
    /* requests here may now use the keys and statements (the handler
     * declines on a vhost that never got this far) */
    conf->ready = conf->in_use;
    return OK;
}

/* Loads keys and prepares statements; logs and returns !OK on error. */
static int start_vhosts(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    gettoken_startup st;
    server_rec *vs;

    st.pconf = pconf;
    st.ptemp = ptemp;
    st.loaded_keys = apr_hash_make(ptemp);
    if (gettoken_keys_store_startup(pconf, s) != OK)
        return HTTP_INTERNAL_SERVER_ERROR;
    for (vs = s; vs; vs = vs->next)
        if (start_vhost(&st, vs, gettoken_server_config(vs)) != OK)
            return HTTP_INTERNAL_SERVER_ERROR;
    return OK;
}

static void log_notices(apr_pool_t *pconf, server_rec *s)
{
    apr_pool_t *p;
    apr_size_t i;
    server_rec *vs;

    if (apr_pool_create(&p, pconf) != APR_SUCCESS)
        return;
    for (i = 0; i < sizeof(notices) / sizeof(notices[0]); i++)
        for (vs = s; vs; vs = vs->next)
            notices[i](p, vs, gettoken_server_config(vs));
    apr_pool_destroy(p);
}

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
    return start_vhosts(pconf, ptemp, s);
}

static int gettoken_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                                apr_pool_t *ptemp, server_rec *s)
{
    (void)plog;
    gettoken_dbd_retrieve_fns();
    if (gt_digests_init(pconf) != 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(00101)
                     "OpenSSL has no SHA-256 implementation available");
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (start_vhosts(pconf, ptemp, s) != OK)
        return HTTP_INTERNAL_SERVER_ERROR;
    log_notices(pconf, s);
    gettoken_warnings_log(pconf, ptemp, s);
    return gettoken_status_init(pconf, s);
}

/* Every hook, handler, filter and optional function of the module. */
static void gettoken_register_hooks(apr_pool_t *p)
{
    /* statements go to mod_dbd before its post_config groups them into
     * connection pools */
    static const char *const before_dbd[] = { "mod_dbd.c", NULL };
    /* its connection pools exist once its child_init ran */
    static const char *const after_dbd[] = { "mod_dbd.c", NULL };

    (void)p;
    /* start-up */
    ap_hook_check_config(gettoken_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(gettoken_post_config, NULL, before_dbd, APR_HOOK_MIDDLE);
    ap_hook_child_init(gettoken_refusal_child_init, NULL, NULL,
                       APR_HOOK_MIDDLE);
    /* before any request: keys that cannot cross fork() open again */
    ap_hook_child_init(gettoken_keys_child_init, NULL, NULL,
                       APR_HOOK_REALLY_FIRST);
    ap_hook_child_init(gettoken_warnings_child_init, after_dbd, NULL,
                       APR_HOOK_MIDDLE);

    /* requests.  The watch gate takes its headers away from the client
     * before any other module can read them. */
    ap_hook_header_parser(gettoken_watch_enrollment_strip_headers, NULL, NULL,
                          APR_HOOK_REALLY_FIRST);
    /* Both content handlers run ahead of mod_proxy, mod_cgi and every
     * other one, so that they see the body first.  Within
     * APR_HOOK_REALLY_FIRST, hooks run in the order they are registered
     * here: GetToken first, then the watch gate.  Each declines outside
     * its own directive (GetToken On, GetTokenWatchEnrollment On), and a
     * body either passes on is replayed to whatever reads it next. */
    ap_hook_handler(gettoken_handler, NULL, NULL, APR_HOOK_REALLY_FIRST);
    ap_hook_handler(gettoken_watch_enrollment_handler, NULL, NULL,
                    APR_HOOK_REALLY_FIRST);
    ap_hook_handler(gettoken_watch_verify_handler, NULL, NULL,
                    APR_HOOK_MIDDLE);
    /* One below AP_FTYPE_RESOURCE, i.e. on top of the request's input
     * filters.  The kept bytes were read from the top of the chain: they
     * have been through every input filter of the request already
     * (SetInputFilter Sed, an ext_filter, ...).  At AP_FTYPE_RESOURCE
     * itself the replay would be inserted below the filters of that type
     * already there, which would filter the kept bytes a second time,
     * behind the output they still buffer from the first pass (a Sed
     * filter's output would come twice).  Filters added after the decline
     * (by the handler that serves the location) go below it, as they
     * should: they have not seen any of the body. */
    gettoken_body_replay_filter_handle = ap_register_input_filter(
        GETTOKEN_REPLAY_FILTER, gettoken_body_replay_filter, NULL,
        AP_FTYPE_RESOURCE - 1);
    /* internal redirects after a decline take the body replay along */
    ap_hook_insert_filter(gettoken_body_insert_filter, NULL, NULL,
                          APR_HOOK_MIDDLE);

    /* the token services of the public hook */
    gettoken_hook_generate_token(gettoken_maid_generate, NULL, NULL,
                                 APR_HOOK_MIDDLE);
    gettoken_hook_generate_token(gettoken_watch_pairing_generate, NULL, NULL,
                                 APR_HOOK_MIDDLE);

    /* for other modules: verifying a watch's pairing token */
    APR_REGISTER_OPTIONAL_FN(gettoken_watch_verify);
    ap_hook_optional_fn_retrieve(gettoken_watch_verify_retrieve, NULL, NULL,
                                 APR_HOOK_MIDDLE);
    /* mod_status may be absent or loaded after us: an optional hook */
    APR_OPTIONAL_HOOK(ap, status_hook, gettoken_status_hook, NULL, NULL,
                      APR_HOOK_MIDDLE);
}

/* Not AP_DECLARE_MODULE(): its APLOG_USE_MODULE() is in gettoken_private.h,
 * once for every file. */
module AP_MODULE_DECLARE_DATA gettoken_module = {
    STANDARD20_MODULE_STUFF,
    gettoken_create_dir_conf,
    gettoken_merge_dir_conf,
    gettoken_create_server_conf,
    gettoken_merge_server_conf,
    gettoken_directives,
    gettoken_register_hooks,
    AP_MODULE_FLAG_NONE
};
