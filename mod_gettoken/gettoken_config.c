/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_config.c - the module's configuration records: creating and
 * merging them (each part merges its own sub-struct), and the directive
 * table, made of every part's directives.  Nothing here acts on a
 * setting: the parts check and load what they were told at start-up.
 */
#include "gettoken_private.h"

APLOG_USE_MODULE(gettoken);

void *gettoken_create_server_conf(apr_pool_t *p, server_rec *s)
{
    gettoken_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->server = s;
    conf->max_body = GT_DEFAULT_MAX_BODY;
    conf->binding.sql = GT_DEFAULT_ENROLLMENT_SQL;
    conf->pairing.lifetime = GT_DEFAULT_PAIRING_LIFETIME;
    gettoken_organizations_init(p, &conf->orgs);
    conf->watch_verify = gettoken_watch_verify_create(p);
    conf->watch_enrollment = gettoken_watch_enrollment_create(p);
    return conf;
}

void *gettoken_merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    gettoken_server_conf *base = basev, *add = addv;
    gettoken_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->server = add->server;
    conf->in_use = add->in_use || base->in_use;
    conf->ready = 0;            /* decided at start-up, per vhost */
    GETTOKEN_MERGE_FLAGGED(conf, base, add, max_body, max_body_set);
    gettoken_keys_merge(&conf->keys, &base->keys, &add->keys);
    gettoken_identity_merge(&conf->identity, &base->identity, &add->identity);
    gettoken_binding_merge(&conf->binding, &base->binding, &add->binding);
    gettoken_organizations_merge(&conf->orgs, &base->orgs, &add->orgs);
    gettoken_pairing_merge(&conf->pairing, &base->pairing, &add->pairing);
    gettoken_audit_merge(&conf->audit, &base->audit, &add->audit);
    conf->watch_verify = gettoken_watch_verify_merge(p, base->watch_verify,
                                                     add->watch_verify);
    conf->watch_enrollment = gettoken_watch_enrollment_merge(
        p, base->watch_enrollment, add->watch_enrollment);
    return conf;
}

void *gettoken_create_dir_conf(apr_pool_t *p, char *dir)
{
    gettoken_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void)dir;
    conf->enabled = -1;
    conf->watch_enrollment = -1;
    return conf;
}

void *gettoken_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    gettoken_dir_conf *base = basev, *add = addv;
    gettoken_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->enabled = add->enabled != -1 ? add->enabled : base->enabled;
    conf->services = add->services ? add->services : base->services;
    conf->watch_enrollment = add->watch_enrollment != -1 ? add->watch_enrollment
                                                         : base->watch_enrollment;
    return conf;
}

const command_rec gettoken_directives[] = {
    GETTOKEN_HANDLER_DIRECTIVES,
    GETTOKEN_KEYS_DIRECTIVES,
    GETTOKEN_IDENTITY_DIRECTIVES,
    GETTOKEN_BINDING_DIRECTIVES,
    GETTOKEN_PAIRING_DIRECTIVES,
    GETTOKEN_WATCH_VERIFY_DIRECTIVES,
    GETTOKEN_ORGANIZATION_DIRECTIVES,
    GETTOKEN_SERVICES_DIRECTIVES,
    GETTOKEN_AUDIT_DIRECTIVES,
    GETTOKEN_WATCH_ENROLLMENT_DIRECTIVES,
    { NULL }
};
