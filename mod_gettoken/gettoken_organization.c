/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_organization.c - several Apple Business/School Manager MDM
 * servers ("organisations") behind one check-in URL.
 *
 * A vhost has a default organisation (GetTokenServerUUID +
 * GetTokenSigningKey, named "default") and any number of
 * GetTokenOrganization ones.  Every key is loaded and checked at start-up
 * like the default's.  Per GetToken, with the enrollment binding (asked
 * together: gettoken_organization_query.c), GetTokenOrganizationSQL names
 * the device's organisation; its key signs and its server UUID is the iss
 * of both built-in token types.
 */
#include "gettoken_private.h"
#include "gettoken_dbd.h"

#include "apr_strings.h"
#include "http_core.h"
#include "http_main.h"
#include "http_protocol.h"

#include "core/gt_keys.h"
#include "core/gt_organization.h"
#include "jose/gt_jose.h"

/* ---- configuration ---------------------------------------------------- */

gettoken_organizations_conf *gettoken_organizations_create(apr_pool_t *p)
{
    gettoken_organizations_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->configured = apr_array_make(p, 2, sizeof(gettoken_organization));
    return conf;
}

gettoken_organizations_conf *gettoken_organizations_merge(
    apr_pool_t *p, const gettoken_organizations_conf *base,
    const gettoken_organizations_conf *add)
{
    gettoken_organizations_conf *conf = apr_pcalloc(p, sizeof(*conf));

    /* a vhost's organisations replace the main server's, never add to them */
    conf->configured = add->configured->nelts ? add->configured
                                              : base->configured;
    conf->sql = add->sql ? add->sql : base->sql;
    /* made at start-up, per vhost */
    conf->label = NULL;
    conf->by_name = NULL;
    conf->fallback = NULL;
    conf->joint_sql = NULL;
    conf->joint_label = NULL;
    conf->joint_org_params = 0;
    conf->joint_binding_params = 0;
    conf->joint_state = NULL;
    return conf;
}

const char *gettoken_set_organization_sql(cmd_parms *cmd, void *dirv,
                                          const char *arg)
{
    (void)dirv;
    return gettoken_parse_sql(cmd, arg,
                              &gettoken_server_config(cmd->server)->orgs->sql);
}

const char *gettoken_cmd_organization(cmd_parms *cmd, void *dirv, int argc,
                                      char *const argv[])
{
    gettoken_server_conf *conf = gettoken_server_config(cmd->server);
    gettoken_organization *org;
    int i;

    (void)dirv;
    if (argc < 3 || argc > 4)
        return "GetTokenOrganization takes <name> <server-uuid> <key> "
               "[<certificate>]";
    if (!gt_organization_name_ok(argv[0]))
        return apr_psprintf(cmd->pool, "GetTokenOrganization: the name must "
                            "be 1 to %d bytes without control characters",
                            GT_ORGANIZATION_MAX_NAME);
    if (!strcmp(argv[0], GT_ORGANIZATION_DEFAULT))
        return "GetTokenOrganization: the name '" GT_ORGANIZATION_DEFAULT "' "
               "is the vhost's own GetTokenServerUUID / GetTokenSigningKey; "
               "choose another";
    for (i = 0; i < conf->orgs->configured->nelts; i++)
        if (!strcmp(APR_ARRAY_IDX(conf->orgs->configured, i,
                                  gettoken_organization).name, argv[0]))
            return apr_psprintf(cmd->pool, "GetTokenOrganization: '%s' is "
                                "defined twice in this virtual host", argv[0]);
    if (!gt_is_uuid(argv[1]))
        return apr_psprintf(cmd->pool, "GetTokenOrganization %s: '%s' is not "
                            "a UUID (the server_uuid of AccountDetail, "
                            "8-4-4-4-12 hex digits)", argv[0], argv[1]);

    org = apr_array_push(conf->orgs->configured);
    memset(org, 0, sizeof(*org));
    org->name = argv[0];
    org->server_uuid = argv[1];
    org->signing.where = gettoken_key_location(cmd->pool, argv[2]);
    if (argc == 4)
        org->cert = ap_server_root_relative(cmd->pool, argv[3]);
    return NULL;
}

/* ---- start-up -------------------------------------------------------- */

static int refuse_startup(apr_pool_t *p, server_rec *s, const char *what)
{
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(01001) "%s in %s",
                 what, gettoken_vhost_name(s, p));
    return !OK;
}

/* What GetToken On needs when organisations are configured: either a
 * whole default organisation or none, and a way to choose the others. */
static int check_combination(apr_pool_t *p, server_rec *s,
                             const gettoken_server_conf *conf)
{
    int has_orgs = conf->orgs->configured->nelts > 0;

    if (!conf->in_use)
        return OK;
    if (has_orgs && !conf->keys->server_uuid != !conf->keys->signing.where)
        return refuse_startup(p, s, conf->keys->server_uuid
            ? "GetTokenServerUUID without GetTokenSigningKey (the default "
              "organisation needs both, or neither)"
            : "GetTokenSigningKey without GetTokenServerUUID (the default "
              "organisation needs both, or neither)");
    if (has_orgs && !conf->orgs->sql)
        return refuse_startup(p, s, "GetTokenOrganization needs "
                              "GetTokenOrganizationSQL (nothing would ever "
                              "choose the organisation)");
    if (conf->orgs->sql && !has_orgs)
        return refuse_startup(p, s, "GetTokenOrganizationSQL without any "
                              "GetTokenOrganization (every name it returns "
                              "would be undefined)");
    if (conf->orgs->sql)
        return gettoken_dbd_require(s, p, "GetTokenOrganizationSQL", "", "");
    return OK;
}

/* The default organisation: the vhost's own server UUID and keys. */
static void add_default(apr_pool_t *pconf, gettoken_server_conf *conf)
{
    gettoken_organization *def = apr_pcalloc(pconf, sizeof(*def));

    def->name = GT_ORGANIZATION_DEFAULT;
    def->server_uuid = conf->keys->server_uuid;
    def->signing = conf->keys->signing;
    def->cert = conf->keys->signing_cert;
    def->pairing = conf->keys->pairing;  /* GetTokenWatchPairingKey, or signing */
    conf->orgs->fallback = def;
    apr_hash_set(conf->orgs->by_name, def->name, APR_HASH_KEY_STRING, def);
}

int gettoken_organizations_startup(const gettoken_startup *st, server_rec *s,
                                   gettoken_server_conf *conf)
{
    apr_pool_t *pconf = st->pconf;
    int i;

    if (check_combination(pconf, s, conf) != OK)
        return !OK;
    conf->orgs->by_name = apr_hash_make(pconf);
    conf->orgs->fallback = NULL;
    if (conf->keys->server_uuid && conf->keys->signing.signer)
        add_default(pconf, conf);
    /* a copy per vhost: vhosts that inherit the main server's organisations
     * load them into their own records (keys shared across vhosts) */
    for (i = 0; i < conf->orgs->configured->nelts; i++) {
        gettoken_organization *org = apr_pmemdup(pconf,
            &APR_ARRAY_IDX(conf->orgs->configured, i, gettoken_organization),
            sizeof(*org));
        const char *directive = apr_pstrcat(pconf, "GetTokenOrganization ",
                                            org->name, NULL);
        if (gettoken_key_load(st, s, directive, &org->signing) != OK)
            return !OK;
        if (org->cert && gettoken_certificate_check(pconf, s, directive,
                                                    org->cert,
                                                    org->signing.key) != OK)
            return !OK;
        org->pairing = org->signing;
        apr_hash_set(conf->orgs->by_name, org->name, APR_HASH_KEY_STRING, org);
    }
    if (conf->in_use && conf->orgs->sql)
        conf->orgs->label = gettoken_dbd_prepare(s, pconf, conf->orgs->sql,
                                                "organization");
    gettoken_organization_query_startup(pconf, conf);
    return OK;
}

static void announce(apr_pool_t *p, server_rec *s,
                     const gettoken_organization *org)
{
    const char *fp = gt_public_key_fingerprint(p, org->signing.key);

    ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, GTLOGNO(01002)
                 "organisation '%s' in %s: server UUID %s, %s, public key "
                 "SHA-256 %s", org->name, gettoken_vhost_name(s, p),
                 org->server_uuid, gt_jws_signer_alg(org->signing.signer),
                 fp ? fp : "(cannot be encoded)");
}

void gettoken_organizations_announce(apr_pool_t *p, server_rec *s,
                                     const gettoken_server_conf *conf)
{
    int i;

    /* the first of httpd's two start-up passes only checks: announce once */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return;
    if (!conf->in_use || !conf->orgs->by_name)
        return;
    if (conf->orgs->fallback)
        announce(p, s, conf->orgs->fallback);
    for (i = 0; i < conf->orgs->configured->nelts; i++) {
        const char *name = APR_ARRAY_IDX(conf->orgs->configured, i,
                                         gettoken_organization).name;
        announce(p, s, apr_hash_get(conf->orgs->by_name, name,
                                    APR_HASH_KEY_STRING));
    }
}

/* ---- per request ----------------------------------------------------- */

int gettoken_organization_choose(request_rec *r,
                                 const gettoken_server_conf *conf,
                                 gettoken_request *req)
{
    const gettoken_organization *org = conf->orgs->fallback;
    const char *name = NULL;
    int status = gettoken_organization_ask(r, conf, req, &name);

    if (status != OK)
        return status;
    if (name) {
        org = conf->orgs->by_name
              ? apr_hash_get(conf->orgs->by_name, name,
                             APR_HASH_KEY_STRING)
              : NULL;
        if (!org)
            return gettoken_refuse(r, GT_REFUSED_GETTOKEN,
                                   HTTP_INTERNAL_SERVER_ERROR, GTLOGNO(01003),
                                   "GetTokenOrganizationSQL names organisation "
                                   "'%s' for enrollment %s, which no "
                                   "GetTokenOrganization of the vhost defines",
                                   ap_escape_logitem(r->pool, apr_pstrndup(
                                       r->pool, name, 200)),
                                   ap_escape_logitem(r->pool,
                                                     req->enrollment_id));
    }
    else if (!org) {
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_FORBIDDEN,
                               GTLOGNO(01004), "GetTokenOrganizationSQL has "
                               "no organisation for the enrollment and the "
                               "vhost has no default organisation "
                               "(GetTokenServerUUID and GetTokenSigningKey)");
    }
    req->organization = org->name;
    req->organization_server_uuid = org->server_uuid;
    apr_table_setn(r->subprocess_env, "GETTOKEN_ORGANIZATION",
                   ap_escape_logitem(r->pool, org->name));
    return OK;
}

const gettoken_organization *gettoken_organization_of(
    const gettoken_request *req)
{
    const gettoken_server_conf *conf = gettoken_server_config(req->r->server);

    if (!req->organization || !conf->orgs->by_name)
        return NULL;
    return apr_hash_get(conf->orgs->by_name, req->organization,
                        APR_HASH_KEY_STRING);
}
