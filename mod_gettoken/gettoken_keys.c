/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_keys.c - the vhost's own (default) organisation: its server
 * UUID, signing key and certificate, and the key that signs its watch
 * pairing tokens.  Keys load at start-up, once per location across
 * vhosts, so that a misconfigured key stops the server, never a request.
 */
#include "gettoken_private.h"

#include "apr_strings.h"
#include "http_core.h"

#include "core/gt_keys.h"
#include "jose/gt_jose.h"

gettoken_keys_conf *gettoken_keys_create(apr_pool_t *p)
{
    return apr_pcalloc(p, sizeof(gettoken_keys_conf));
}

gettoken_keys_conf *gettoken_keys_merge(apr_pool_t *p,
                                        const gettoken_keys_conf *base,
                                        const gettoken_keys_conf *add)
{
    gettoken_keys_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->server_uuid = add->server_uuid ? add->server_uuid : base->server_uuid;
    conf->signing_cert = add->signing_cert ? add->signing_cert
                                           : base->signing_cert;
    /* only the locations merge: keys load per vhost at start-up */
    conf->signing.where = add->signing.where ? add->signing.where
                                             : base->signing.where;
    conf->pairing.where = add->pairing.where ? add->pairing.where
                                             : base->pairing.where;
    return conf;
}

static gettoken_keys_conf *cmd_keys(cmd_parms *cmd)
{
    return gettoken_server_config(cmd->server)->keys;
}

const char *gettoken_key_location(apr_pool_t *p, const char *arg)
{
    return gt_key_is_pkcs11_uri(arg) ? arg : ap_server_root_relative(p, arg);
}

const char *gettoken_set_server_uuid(cmd_parms *cmd, void *dirv,
                                     const char *arg)
{
    (void)dirv;
    if (!gt_is_uuid(arg))
        return apr_psprintf(cmd->pool, "GetTokenServerUUID: '%s' is not a UUID "
                            "(the server_uuid of AccountDetail, "
                            "8-4-4-4-12 hex digits)", arg);
    cmd_keys(cmd)->server_uuid = arg;
    return NULL;
}

GETTOKEN_TAKE1(gettoken_set_key)
{
    gettoken_key *k = (gettoken_key *)((char *)cmd_keys(cmd)
                                       + (apr_size_t)cmd->info);

    (void)dirv;
    k->where = gettoken_key_location(cmd->pool, arg);
    return NULL;
}

const char *gettoken_set_signing_cert(cmd_parms *cmd, void *dirv,
                                      const char *arg)
{
    (void)dirv;
    cmd_keys(cmd)->signing_cert = ap_server_root_relative(cmd->pool, arg);
    return NULL;
}

int gettoken_key_load(const gettoken_startup *st, server_rec *s,
                      const char *directive, gettoken_key *k)
{
    const char *why = NULL;
    gettoken_key *seen = apr_hash_get(st->loaded_keys, k->where,
                                      APR_HASH_KEY_STRING);

    /* vhosts that inherit a key share the EVP_PKEY */
    if (seen) {
        *k = *seen;
        return OK;
    }
    k->key = gt_private_key_load(st->pconf, k->where, &why);
    if (k->key)
        k->signer = gt_jws_signer_create(st->pconf, k->key, &why);
    if (!k->key || !k->signer) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(00901)
                     "%s %s in %s: %s", directive,
                     gt_key_location_for_log(st->pconf, k->where),
                     gettoken_vhost_name(s, st->pconf), why);
        return !OK;
    }
    apr_hash_set(st->loaded_keys, k->where, APR_HASH_KEY_STRING,
                 apr_pmemdup(st->pconf, k, sizeof(*k)));
    return OK;
}

int gettoken_certificate_check(apr_pool_t *pconf, server_rec *s,
                               const char *directive, const char *cert_path,
                               EVP_PKEY *key)
{
    const char *why = NULL;
    X509 *cert = gt_certificate_load(pconf, cert_path, &why);

    if (cert && gt_certificate_matches_key(cert, key))
        return OK;
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(00902)
                 "%s %s in %s: %s", directive, cert_path,
                 gettoken_vhost_name(s, pconf),
                 cert ? "the certificate does not match its key" : why);
    return !OK;
}

/* Without organisations GetToken On needs the default one whole (with
 * them it is optional: the organisations part checks the combination). */
static int check_default_needed(apr_pool_t *p, server_rec *s,
                                const gettoken_server_conf *conf)
{
    if (!conf->in_use || conf->orgs->configured->nelts)
        return OK;
    if (!conf->keys->signing.where) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(00903)
                     "GetToken On in %s needs GetTokenSigningKey",
                     gettoken_vhost_name(s, p));
        return !OK;
    }
    if (!conf->keys->server_uuid) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(00904)
                     "GetToken On in %s needs GetTokenServerUUID (the "
                     "server_uuid of AccountDetail)", gettoken_vhost_name(s, p));
        return !OK;
    }
    return OK;
}

int gettoken_keys_startup(const gettoken_startup *st, server_rec *s,
                          gettoken_server_conf *conf)
{
    gettoken_keys_conf *keys = conf->keys;

    if (check_default_needed(st->pconf, s, conf) != OK)
        return !OK;
    if (keys->signing.where
        && gettoken_key_load(st, s, "GetTokenSigningKey", &keys->signing) != OK)
        return !OK;
    if (keys->signing.key && keys->signing_cert
        && gettoken_certificate_check(st->pconf, s, "GetTokenSigningCertificate",
                                      keys->signing_cert,
                                      keys->signing.key) != OK)
        return !OK;
    if (!keys->pairing.where) {
        keys->pairing = keys->signing;   /* the documented default */
        return OK;
    }
    return gettoken_key_load(st, s, "GetTokenWatchPairingKey", &keys->pairing);
}
