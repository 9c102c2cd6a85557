/*
 * gt_keys.c - key and certificate loading (files and PKCS#11).
 */
/* The pkcs11 engine is reached through the ENGINE API, deprecated but the
 * only PKCS#11 route OpenSSL 3.0 on Debian 12 offers (no pkcs11-provider). */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "gt_keys.h"

#include <string.h>

#include "apr_strings.h"

#include <openssl/bio.h>
#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/pem.h>

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

static apr_status_t engine_cleanup(void *data)
{
    ENGINE_finish(data);
    ENGINE_free(data);
    return APR_SUCCESS;
}

/* Never prompt: an encrypted key file cannot be used unattended. */
static int no_passphrase(char *buf, int size, int rwflag, void *u)
{
    (void)buf; (void)size; (void)rwflag; (void)u;
    return -1;
}

int gt_key_is_pkcs11_uri(const char *where)
{
    return strncasecmp(where, "pkcs11:", 7) == 0;
}

/*
 * Splits the query attributes libp11 must not see in the URI: RFC 7512's
 * module-path= (libp11 takes it as the engine's MODULE_PATH and refuses
 * URIs carrying it) and pin-value= (handed over as the engine's PIN, so
 * that no message of libp11's, which quote the URI, shows the PIN).
 * Returns the URI without them.
 */
static const char *pkcs11_split_uri(apr_pool_t *pool, const char *uri,
                                    const char **module, const char **pin)
{
    const char *q = strchr(uri, '?'), *attr;
    char *kept;

    *module = *pin = NULL;
    if (!q)
        return uri;
    kept = apr_pstrmemdup(pool, uri, (apr_size_t)(q - uri));
    for (attr = q + 1; *attr; ) {
        apr_size_t n = strcspn(attr, "&");
        if (n > 12 && strncmp(attr, "module-path=", 12) == 0)
            *module = apr_pstrmemdup(pool, attr + 12, n - 12);
        else if (n > 10 && strncmp(attr, "pin-value=", 10) == 0)
            *pin = apr_pstrmemdup(pool, attr + 10, n - 10);
        else if (n > 0)
            kept = apr_pstrcat(pool, kept, strchr(kept, '?') ? "&" : "?",
                               apr_pstrmemdup(pool, attr, n), NULL);
        attr += n;
        if (*attr == '&')
            attr++;
    }
    return kept;
}

const char *gt_key_location_for_log(apr_pool_t *pool, const char *where)
{
    const char *module, *pin;
    const char *uri;

    if (!gt_key_is_pkcs11_uri(where))
        return where;
    uri = pkcs11_split_uri(pool, where, &module, &pin);
    return pin ? apr_pstrcat(pool, uri, strchr(uri, '?') ? "&" : "?",
                             "pin-value=(hidden)", NULL)
               : uri;
}

static EVP_PKEY *pkcs11_key_load(apr_pool_t *pool, const char *uri,
                                 const char **why)
{
    ENGINE *e;
    EVP_PKEY *key;
    const char *module, *pin;

    uri = pkcs11_split_uri(pool, uri, &module, &pin);

    ENGINE_load_builtin_engines();
    e = ENGINE_by_id("pkcs11");
    if (!e) {
        ERR_clear_error();
        *why = "OpenSSL's pkcs11 engine is not installed "
               "(Debian package libengine-pkcs11-openssl)";
        return NULL;
    }
    if (module && !ENGINE_ctrl_cmd_string(e, "MODULE_PATH", module, 0)) {
        ENGINE_free(e);
        ERR_clear_error();
        *why = "the pkcs11 engine refused the URI's module-path";
        return NULL;
    }
    if (!ENGINE_init(e)) {
        ENGINE_free(e);
        ERR_clear_error();
        *why = "the pkcs11 engine could not be initialised (module missing?)";
        return NULL;
    }
    apr_pool_cleanup_register(pool, e, engine_cleanup, apr_pool_cleanup_null);
    if (pin && !ENGINE_ctrl_cmd_string(e, "PIN", pin, 0)) {
        ERR_clear_error();
        *why = "the pkcs11 engine refused the PIN";
        return NULL;
    }
    key = ENGINE_load_private_key(e, uri, NULL, NULL);
    if (!key) {
        ERR_clear_error();
        *why = "no private key matches the pkcs11 URI (token, object, PIN?)";
        return NULL;
    }
    return key;
}

static EVP_PKEY *file_key_load(const char *path, const char **why)
{
    BIO *bio = BIO_new_file(path, "rb");
    EVP_PKEY *key;

    if (!bio) {
        ERR_clear_error();
        *why = "the key file cannot be read";
        return NULL;
    }
    key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
    if (!key) {
        (void)BIO_reset(bio);
        key = d2i_PrivateKey_bio(bio, NULL);
    }
    BIO_free(bio);
    ERR_clear_error();
    if (!key)
        *why = "the file holds no unencrypted private key (PEM or DER)";
    return key;
}

EVP_PKEY *gt_private_key_load(apr_pool_t *pool, const char *where,
                              const char **why)
{
    EVP_PKEY *key = gt_key_is_pkcs11_uri(where)
                    ? pkcs11_key_load(pool, where, why)
                    : file_key_load(where, why);
    if (key)
        apr_pool_cleanup_register(pool, key, pkey_cleanup,
                                  apr_pool_cleanup_null);
    return key;
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

/* SHA-256 fetched once (gt_digests_init); EVP_sha256() makes OpenSSL 3
 * look the implementation up again on every call, under a lock. */
static EVP_MD *sha256_fetched;

static apr_status_t digests_cleanup(void *unused)
{
    (void)unused;
    EVP_MD_free(sha256_fetched);
    sha256_fetched = NULL;
    return APR_SUCCESS;
}

int gt_digests_init(apr_pool_t *pool)
{
    if (sha256_fetched)
        return 0;
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!sha256_fetched)
        return -1;
    apr_pool_cleanup_register(pool, NULL, digests_cleanup,
                              apr_pool_cleanup_null);
    return 0;
}

const char *gt_sha256_hex(apr_pool_t *pool, const unsigned char *data,
                          apr_size_t len)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0, i;
    char *out;

    if (EVP_Digest(data, len, md, &md_len,
                   sha256_fetched ? sha256_fetched : EVP_sha256(), NULL) != 1)
        return NULL;
    out = apr_palloc(pool, md_len * 2 + 1);
    for (i = 0; i < md_len; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 0x0f];
    }
    out[2 * md_len] = '\0';
    return out;
}
