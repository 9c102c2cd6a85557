/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_keys.c - key and certificate loading: files and URIs through
 * OpenSSL 3's key store and providers, pkcs11: through the engine where
 * no provider opens it.
 */
#include "gt_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apr_lib.h"
#include "apr_strings.h"

#include <openssl/conf.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/ui.h>

struct gt_key_store {
    OSSL_LIB_CTX *libctx;
    apr_array_header_t *providers;      /* OSSL_PROVIDER *, loaded here */
};

static apr_status_t pkey_cleanup(void *data)
{
    EVP_PKEY_free(data);
    return APR_SUCCESS;
}

static apr_status_t x509_cleanup(void *data)
{
    X509_free(data);
    return APR_SUCCESS;
}

static apr_status_t store_cleanup(void *data)
{
    gt_key_store *store = data;
    int i;

    for (i = store->providers->nelts - 1; i >= 0; i--)
        OSSL_PROVIDER_unload(APR_ARRAY_IDX(store->providers, i,
                                           OSSL_PROVIDER *));
    OSSL_LIB_CTX_free(store->libctx);
    return APR_SUCCESS;
}

/* Never prompt: an encrypted key file or a PIN cannot be typed in by a
 * server that starts unattended. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

/* The reason of the latest OpenSSL error, from OpenSSL's or the
 * provider's fixed table (never the error's data, which may quote a URI),
 * as " (reason)", or "" when there is none.  Clears the queue. */
static const char *openssl_reason(apr_pool_t *pool)
{
    unsigned long code, last = 0;
    const char *reason;

    while ((code = ERR_get_error()) != 0)
        last = code;
    reason = last ? ERR_reason_error_string(last) : NULL;
    return reason ? apr_psprintf(pool, " (%s)", reason) : "";
}

/* Where OpenSSL looks for provider modules. */
static const char *modules_dir(void)
{
    const char *dir = getenv("OPENSSL_MODULES");

    if (!dir || !*dir)
        dir = OPENSSL_info(OPENSSL_INFO_MODULES_DIR);
    return dir ? dir : "OpenSSL's modules directory";
}

gt_key_store *gt_key_store_create(apr_pool_t *pool, const char **why)
{
    gt_key_store *store = apr_pcalloc(pool, sizeof(*store));
    char *cnf;
    OSSL_PROVIDER *def;

    store->providers = apr_array_make(pool, 4, sizeof(OSSL_PROVIDER *));
    store->libctx = OSSL_LIB_CTX_new();
    if (!store->libctx) {
        *why = "OpenSSL cannot create a library context (out of memory?)";
        return NULL;
    }
    apr_pool_cleanup_register(pool, store, store_cleanup,
                              apr_pool_cleanup_null);
    /* pkcs11-provider takes its module path and PIN from here */
    cnf = CONF_get1_default_config_file();
    if (cnf && access(cnf, R_OK) == 0
        && !OSSL_LIB_CTX_load_config(store->libctx, cnf)) {
        *why = apr_psprintf(pool, "OpenSSL's configuration %s does not "
                            "load%s", cnf, openssl_reason(pool));
        OPENSSL_free(cnf);
        return NULL;
    }
    OPENSSL_free(cnf);
    def = OSSL_PROVIDER_load(store->libctx, "default");
    if (!def) {
        *why = apr_psprintf(pool, "OpenSSL's default provider does not "
                            "load%s", openssl_reason(pool));
        return NULL;
    }
    APR_ARRAY_PUSH(store->providers, OSSL_PROVIDER *) = def;
    return store;
}

int gt_key_store_add_provider(gt_key_store *store, const char *name,
                              const char **why)
{
    OSSL_PROVIDER *prov = OSSL_PROVIDER_load(store->libctx, name);

    if (!prov) {
        apr_pool_t *p = store->providers->pool;
        *why = apr_psprintf(p, "OpenSSL cannot load the provider '%s'%s: no "
                            "%s.so in %s, or it failed to start (a TPM or HSM "
                            "it cannot reach, its settings in OpenSSL's "
                            "configuration or environment)", name,
                            openssl_reason(p), name, modules_dir());
        return -1;
    }
    APR_ARRAY_PUSH(store->providers, OSSL_PROVIDER *) = prov;
    return 0;
}

OSSL_LIB_CTX *gt_key_store_libctx(const gt_key_store *store)
{
    return store ? store->libctx : NULL;
}

/* The length of where's URI scheme (RFC 3986: a letter, then letters,
 * digits, '+', '-', '.'), followed by ':'; 0 for a path. */
static apr_size_t uri_scheme_length(const char *where)
{
    apr_size_t n = 0;

    if (!apr_isalpha(where[0]))
        return 0;
    while (apr_isalnum(where[n]) || where[n] == '+' || where[n] == '-'
           || where[n] == '.')
        n++;
    return where[n] == ':' && n > 1 ? n : 0;
}

int gt_key_is_uri(const char *where)
{
    return uri_scheme_length(where) > 0;
}

/* 1 when a provider loaded into libctx has a key store for the scheme. */
static int scheme_has_store(OSSL_LIB_CTX *libctx, const char *scheme)
{
    OSSL_STORE_LOADER *loader = OSSL_STORE_LOADER_fetch(libctx, scheme, NULL);

    ERR_clear_error();
    if (!loader)
        return 0;
    OSSL_STORE_LOADER_free(loader);
    return 1;
}

/* Bounds the objects looked at in one location (a token or a file may
 * hold certificates and public keys before the private key). */
#define MAX_STORE_OBJECTS 64

/* The first private key the key store finds at `where`, or in `bio` when
 * given (read as a file); NULL with *why. */
static EVP_PKEY *store_key_load(apr_pool_t *pool, OSSL_LIB_CTX *libctx,
                                const char *where, BIO *bio, const char *none,
                                const char **why)
{
    UI_METHOD *ui = UI_UTIL_wrap_read_pem_callback(no_passphrase, 0);
    OSSL_STORE_CTX *ctx;
    EVP_PKEY *key = NULL;
    int n;

    if (!ui) {
        *why = "out of memory preparing the key store";
        return NULL;
    }
    ctx = bio ? OSSL_STORE_attach(bio, "file", libctx, NULL, ui, NULL, NULL,
                                  NULL, NULL)
              : OSSL_STORE_open_ex(where, libctx, NULL, ui, NULL, NULL, NULL,
                                   NULL);
    if (!ctx) {
        *why = apr_pstrcat(pool, "the key store cannot open the location",
                           openssl_reason(pool), NULL);
        UI_destroy_method(ui);
        return NULL;
    }
    (void)OSSL_STORE_expect(ctx, OSSL_STORE_INFO_PKEY);
    for (n = 0; !key && n < MAX_STORE_OBJECTS && !OSSL_STORE_eof(ctx); n++) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(ctx);

        if (!info)
            continue;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            key = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    if (!key)
        *why = apr_pstrcat(pool, none, openssl_reason(pool), NULL);
    OSSL_STORE_close(ctx);
    UI_destroy_method(ui);
    ERR_clear_error();
    return key;
}

static EVP_PKEY *file_key_load(apr_pool_t *pool, OSSL_LIB_CTX *libctx,
                               const char *path, const char **why)
{
    FILE *f;

    if (strncmp(path, "file:", 5) == 0)      /* the key store reads the URI */
        return store_key_load(pool, libctx, path, NULL, "the file cannot be read "
                              "or holds no unencrypted private key", why);
    f = fopen(path, "rb");
    if (!f) {
        *why = "the key file cannot be read";
        return NULL;
    }
    fclose(f);
    return store_key_load(pool, libctx, path, NULL, "the file holds no "
                          "unencrypted private key (PEM or DER)", why);
}

static EVP_PKEY *uri_key_load(apr_pool_t *pool, OSSL_LIB_CTX *libctx,
                              const char *where, const char **why)
{
    const char *scheme = apr_pstrmemdup(pool, where,
                                        uri_scheme_length(where));

    if (!scheme_has_store(libctx, scheme)) {
#if GT_HAVE_ENGINE
        if (gt_key_is_pkcs11_uri(where))
            return gt_pkcs11_engine_load(pool, where, why);
#endif
        *why = apr_psprintf(pool, "no loaded OpenSSL provider opens %s: "
                            "locations (GetTokenKeyProvider names the "
                            "provider that does, e.g. %s)", scheme,
                            gt_key_is_pkcs11_uri(where) ? "pkcs11"
                                                        : "tpm2 for handle:");
        return NULL;
    }
    return store_key_load(pool, libctx, where, NULL, "no private key at this "
                          "location (no such handle or object, or a wrong "
                          "PIN?)", why);
}

EVP_PKEY *gt_private_key_load(apr_pool_t *pool, gt_key_store *store,
                              const char *where, const char **why)
{
    OSSL_LIB_CTX *libctx = gt_key_store_libctx(store);
    EVP_PKEY *key = gt_key_is_uri(where) && strncmp(where, "file:", 5) != 0
                    ? uri_key_load(pool, libctx, where, why)
                    : file_key_load(pool, libctx, where, why);

    if (key)
        apr_pool_cleanup_register(pool, key, pkey_cleanup,
                                  apr_pool_cleanup_null);
    return key;
}

const char *gt_key_file_copy(apr_pool_t *pool, const char *path,
                             apr_size_t *len, const char **why)
{
    FILE *f = fopen(path, "rb");
    char *data;

    if (!f) {
        *why = "the key file cannot be read";
        return NULL;
    }
    data = apr_palloc(pool, GT_KEY_FILE_MAX);
    *len = fread(data, 1, GT_KEY_FILE_MAX, f);
    if (ferror(f) || !feof(f)) {
        fclose(f);
        *why = "the key file cannot be read whole (or is over 64 KiB)";
        return NULL;
    }
    fclose(f);
    return data;
}

EVP_PKEY *gt_private_key_from_bytes(apr_pool_t *pool, gt_key_store *store,
                                    const char *data, apr_size_t len,
                                    const char **why)
{
    BIO *bio = BIO_new_mem_buf(data, (int)len);
    EVP_PKEY *key;

    if (!bio) {
        *why = "out of memory reading the key";
        return NULL;
    }
    key = store_key_load(pool, gt_key_store_libctx(store), NULL, bio,
                         "the copy of the key file holds no private key", why);
    BIO_free(bio);
    if (key)
        apr_pool_cleanup_register(pool, key, pkey_cleanup,
                                  apr_pool_cleanup_null);
    return key;
}

const char *gt_key_holder(const EVP_PKEY *key)
{
    const OSSL_PROVIDER *prov = EVP_PKEY_get0_provider(key);

    return prov ? OSSL_PROVIDER_get0_name(prov) : "engine";
}

int gt_key_is_external(const EVP_PKEY *key)
{
    static const char *const builtin[] = { "default", "fips", "base",
                                           "legacy", NULL };
    const OSSL_PROVIDER *prov = EVP_PKEY_get0_provider(key);
    const char *name;
    int i;

    if (!prov)
        return 0;       /* an ENGINE key: libp11 reopens its session itself */
    name = OSSL_PROVIDER_get0_name(prov);
    for (i = 0; builtin[i]; i++)
        if (strcmp(name, builtin[i]) == 0)
            return 0;
    return 1;
}

X509 *gt_certificate_load(apr_pool_t *pool, const char *path, const char **why)
{
    BIO *bio = BIO_new_file(path, "rb");
    X509 *cert;

    if (!bio) {
        ERR_clear_error();
        *why = "the certificate file cannot be read";
        return NULL;
    }
    cert = PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    if (!cert) {
        (void)BIO_reset(bio);
        cert = d2i_X509_bio(bio, NULL);
    }
    BIO_free(bio);
    ERR_clear_error();
    if (!cert) {
        *why = "the file holds no certificate (PEM or DER)";
        return NULL;
    }
    apr_pool_cleanup_register(pool, cert, x509_cleanup, apr_pool_cleanup_null);
    return cert;
}

int gt_certificate_matches_key(X509 *cert, EVP_PKEY *key)
{
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    int rc = pub ? EVP_PKEY_eq(pub, key) : 0;
    ERR_clear_error();
    return rc == 1;
}

int gt_public_keys_load(apr_pool_t *pool, const char *path,
                        apr_array_header_t *keys, const char **why)
{
    BIO *bio = BIO_new_file(path, "rb");
    int added = 0;
    char *name = NULL, *header = NULL;
    unsigned char *data = NULL;
    long len = 0;

    if (!bio) {
        ERR_clear_error();
        *why = "the file cannot be read";
        return -1;
    }
    while (PEM_read_bio(bio, &name, &header, &data, &len) == 1) {
        const unsigned char *p = data;
        EVP_PKEY *key = NULL;

        if (strcmp(name, PEM_STRING_X509) == 0) {
            X509 *cert = d2i_X509(NULL, &p, len);
            if (cert) {
                key = X509_get_pubkey(cert);
                X509_free(cert);
            }
        }
        else if (strcmp(name, PEM_STRING_PUBLIC) == 0)
            key = d2i_PUBKEY(NULL, &p, len);
        OPENSSL_free(name);
        OPENSSL_free(header);
        OPENSSL_free(data);
        if (key) {
            apr_pool_cleanup_register(pool, key, pkey_cleanup,
                                      apr_pool_cleanup_null);
            APR_ARRAY_PUSH(keys, EVP_PKEY *) = key;
            added++;
        }
    }
    BIO_free(bio);
    ERR_clear_error();
    if (added == 0) {
        *why = "the file holds no PEM certificate or public key";
        return -1;
    }
    return added;
}
