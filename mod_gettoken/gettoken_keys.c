/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_keys.c - the vhost's own (default) organisation: its server
 * UUID, signing key and certificate, and the key that signs its watch
 * pairing tokens.  Keys load at start-up, once per location across
 * vhosts, so that a misconfigured key stops the server, never a request.
 *
 * Keys load into a library context of the module's own, with the
 * providers GetTokenKeyProvider names.  A key held by such a provider (a
 * TPM, an HSM through pkcs11-provider) is a handle on a connection or a
 * session that fork() does not carry over: each child opens it again in
 * a library context of its own, and signs one thread at a time with it.
 * Every child signs one throwaway token with every key before it serves,
 * so a key that cannot sign is one line at child start.
 */
#include "gettoken_private.h"

#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include "http_core.h"

#include <unistd.h>

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
    /* set in the main server only (GLOBAL_ONLY); start-up reads it there */
    conf->providers = add->providers ? add->providers : base->providers;
    return conf;
}

static gettoken_keys_conf *cmd_keys(cmd_parms *cmd)
{
    return gettoken_server_config(cmd->server)->keys;
}

/* What this generation loaded (reset when pconf is cleared, at a
 * graceful restart): the parent's key store, and each key once. */
typedef struct {
    const char *where;
    const char *directive;      /* the first that named it */
    server_rec *s;              /* and its vhost */
    EVP_PKEY *key;
    gt_jws_signer *signer;      /* shared by every vhost and organisation */
    const char *file_copy;      /* an external key's file, for the children */
    apr_size_t file_len;
} loaded_key;
static gt_key_store *key_store;
static apr_array_header_t *loaded_keys;

static apr_status_t forget_loaded(void *data)
{
    (void)data;
    key_store = NULL;
    loaded_keys = NULL;
    return APR_SUCCESS;
}

const char *gettoken_key_location(apr_pool_t *p, const char *arg)
{
    return gt_key_is_uri(arg) ? arg : ap_server_root_relative(p, arg);
}

/* A GetTokenKeyProvider line: the provider and where it was asked for. */
typedef struct {
    const char *name;
    const char *defined_at;     /* "file:line" */
} key_provider;

const char *gettoken_add_key_provider(cmd_parms *cmd, void *dirv,
                                      const char *name)
{
    gettoken_keys_conf *keys = cmd_keys(cmd);
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    key_provider *kp;

    (void)dirv;
    if (err)
        return err;
    if (!keys->providers)
        keys->providers = apr_array_make(cmd->pool, 2, sizeof(key_provider));
    kp = apr_array_push(keys->providers);
    kp->name = name;
    kp->defined_at = apr_psprintf(cmd->pool, "%s:%d",
                                  cmd->directive->filename,
                                  cmd->directive->line_num);
    return NULL;
}

/* A key store with the default provider and GetTokenKeyProvider's; NULL
 * with *why, and *directive naming what failed and where it is. */
static gt_key_store *open_store(apr_pool_t *p, server_rec *main_server,
                                const char **directive, const char **why)
{
    const apr_array_header_t *providers =
        gettoken_server_config(main_server)->keys->providers;
    gt_key_store *store = gt_key_store_create(p, why);
    int i;

    *directive = "loading OpenSSL's providers for the keys";
    for (i = 0; store && providers && i < providers->nelts; i++) {
        const key_provider *kp = &APR_ARRAY_IDX(providers, i, key_provider);
        if (gt_key_store_add_provider(store, kp->name, why) != 0) {
            *directive = apr_psprintf(p, "GetTokenKeyProvider %s in the main "
                                      "server (%s)", kp->name, kp->defined_at);
            return NULL;
        }
    }
    return store;
}

int gettoken_keys_store_startup(apr_pool_t *pconf, server_rec *s)
{
    const char *why = NULL, *directive;

    key_store = open_store(pconf, s, &directive, &why);
    loaded_keys = apr_array_make(pconf, 4, sizeof(loaded_key));
    apr_pool_cleanup_register(pconf, NULL, forget_loaded,
                              apr_pool_cleanup_null);
    if (key_store)
        return OK;
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(00905) "%s: %s",
                 directive, why);
    return !OK;
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

/* For the children: each key once, and an external key's file as bytes
 * (the children may not be able to read a root-only file). */
static int remember_key(const gettoken_startup *st, server_rec *s,
                        const char *directive, const gettoken_key *k)
{
    loaded_key lk = { k->where, directive, s, k->key, k->signer, NULL, 0 };
    const char *why = NULL;

    if (gt_key_is_external(k->key) && !gt_key_is_uri(k->where)
        && !(lk.file_copy = gt_key_file_copy(st->pconf, k->where,
                                             &lk.file_len, &why))) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(00906)
                     "%s %s in %s: %s", directive, k->where,
                     gettoken_vhost_name(s, st->pconf), why);
        return !OK;
    }
    APR_ARRAY_PUSH(loaded_keys, loaded_key) = lk;
    return OK;
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
    k->key = gt_private_key_load(st->pconf, key_store, k->where, &why);
    if (k->key)
        k->signer = gt_jws_signer_create_ex(st->pconf, k->key,
                                            gt_key_store_libctx(key_store),
                                            &why);
    if (!k->key || !k->signer
        || gt_jws_signer_check(st->ptemp, k->signer, &why) != 0) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(00901)
                     "%s %s in %s: %s", directive,
                     gt_key_location_for_log(st->pconf, k->where),
                     gettoken_vhost_name(s, st->pconf), why);
        return !OK;
    }
    apr_hash_set(st->loaded_keys, k->where, APR_HASH_KEY_STRING,
                 apr_pmemdup(st->pconf, k, sizeof(*k)));
    return loaded_keys ? remember_key(st, s, directive, k) : OK;
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

/* ---- each child ------------------------------------------------------ */

/* disabled: the signer refuses from now on (no key in this child). */
static void child_key_failed(apr_pool_t *p, const loaded_key *lk,
                             const char *why, int disabled)
{
    ap_log_error(APLOG_MARK, APLOG_ERR, 0, lk->s, GTLOGNO(00907)
                 "%s %s in %s cannot sign in this child (pid %ld): %s%s",
                 lk->directive, gt_key_location_for_log(p, lk->where),
                 gettoken_vhost_name(lk->s, p), (long)getpid(), why,
                 disabled ? "; the GetTokens it signs get 500 in this child"
                 : "");
}

/* One lock per provider instance: the tpm2 provider keeps one TPM
 * connection for all its keys and is not thread-safe. */
static apr_thread_mutex_t *provider_lock(apr_pool_t *pchild, apr_hash_t *locks,
                                         EVP_PKEY *key)
{
    const OSSL_PROVIDER *prov = EVP_PKEY_get0_provider(key);
    apr_thread_mutex_t *lock = apr_hash_get(locks, &prov, sizeof(prov));

    if (!lock && apr_thread_mutex_create(&lock, APR_THREAD_MUTEX_DEFAULT,
                                         pchild) == APR_SUCCESS) {
        const OSSL_PROVIDER **k = apr_pmemdup(pchild, &prov, sizeof(prov));
        apr_hash_set(locks, k, sizeof(prov), lock);
    }
    return lock;
}

/* The key opened again in the child's own store; -1 with *why. */
static int reopen_key(apr_pool_t *pchild, gt_key_store *store,
                      apr_hash_t *locks, const loaded_key *lk,
                      const char **why)
{
    EVP_PKEY *key = lk->file_copy
        ? gt_private_key_from_bytes(pchild, store, lk->file_copy, lk->file_len,
                                    why)
        : gt_private_key_load(pchild, store, lk->where, why);
    apr_thread_mutex_t *lock;

    if (!key) {
        gt_jws_signer_disable(lk->signer, *why);
        return -1;
    }
    if (gt_jws_signer_rekey(pchild, lk->signer, key,
                            gt_key_store_libctx(store), why) != 0)
        return -1;
    lock = provider_lock(pchild, locks, key);
    if (!lock) {
        *why = "no lock can be made to serialise its signatures";
        gt_jws_signer_disable(lk->signer, *why);
        return -1;
    }
    gt_jws_signer_serialise(lk->signer, lock);
    return 0;
}

void gettoken_keys_child_init(apr_pool_t *pchild, server_rec *s)
{
    gt_key_store *store = NULL;
    const char *store_why = NULL, *directive;
    apr_hash_t *locks = apr_hash_make(pchild);
    apr_pool_t *scratch;
    int i, store_tried = 0;

    if (!loaded_keys || apr_pool_create(&scratch, pchild) != APR_SUCCESS)
        return;
    for (i = 0; i < loaded_keys->nelts; i++) {
        const loaded_key *lk = &APR_ARRAY_IDX(loaded_keys, i, loaded_key);
        const char *why = NULL;
        int external = gt_key_is_external(lk->key);

        if (external) {
            if (!store_tried) {
                store_tried = 1;
                store = open_store(pchild, s, &directive, &store_why);
                if (!store)
                    store_why = apr_pstrcat(pchild, directive, ": ",
                                            store_why, NULL);
            }
            if (!store) {
                gt_jws_signer_disable(lk->signer, store_why);
                child_key_failed(scratch, lk, store_why, 1);
                continue;
            }
            if (reopen_key(pchild, store, locks, lk, &why) != 0) {
                child_key_failed(scratch, lk, why, 1);
                continue;
            }
        }
        if (gt_jws_signer_check(scratch, lk->signer, &why) != 0)
            child_key_failed(scratch, lk, why, 0);
        else if (external)
            ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, lk->s, GTLOGNO(00908)
                         "%s %s in %s: opened again in this child (pid %ld), "
                         "held by %s; a test signature verified",
                         lk->directive, gt_key_location_for_log(scratch, lk->where),
                         gettoken_vhost_name(lk->s, scratch), (long)getpid(),
                         gt_key_holder(lk->key));
        apr_pool_clear(scratch);
    }
    apr_pool_destroy(scratch);
}

int gettoken_signed_answer(request_rec *r, gettoken_token *tok,
                           const char *token, const char *jti,
                           const gettoken_key *key, const char *id,
                           const char *signing, const char *why)
{
    if (!token)
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN,
                               HTTP_INTERNAL_SERVER_ERROR, id,
                               "%s with %s failed: %s", signing,
                               gt_key_location_for_log(r->pool, key->where),
                               why);
    tok->data = token;
    tok->len = strlen(token);
    tok->jti = jti;
    return OK;
}
