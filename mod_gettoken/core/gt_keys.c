/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_keys.c - key and certificate loading (files and PKCS#11).
 */
/* The pkcs11 engine is reached through the ENGINE API, deprecated but the
 * only PKCS#11 route OpenSSL 3.0 on Debian 12 offers (no pkcs11-provider). */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "gt_keys.h"

#include <stdio.h>
#include <string.h>

#include "apr_lib.h"
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

/* Percent-decodes s[0..n) (RFC 3986); `lower` folds ASCII to lowercase.
 * A '%' not followed by two hex digits is kept as it is. */
static char *pct_decode(apr_pool_t *pool, const char *s, apr_size_t n,
                        int lower)
{
    char *out = apr_palloc(pool, n + 1), *o = out;
    apr_size_t i;

    for (i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%' && i + 2 < n && apr_isxdigit(s[i + 1]) && apr_isxdigit(s[i + 2])) {
            char hex[3] = { s[i + 1], s[i + 2], '\0' };
            c = (char)strtol(hex, NULL, 16);
            i += 2;
        }
        *o++ = lower ? (char)apr_tolower(c) : c;
    }
    *o = '\0';
    return out;
}

/* 1 for an attribute that carries a PIN or says where one is: pin-value,
 * pin-source, and any other name with "pin" in it, whatever its case or
 * percent-encoding. */
static int is_pin_attribute(const char *name)
{
    return strstr(name, "pin") != NULL;
}

/*
 * Walks the attributes of a pkcs11: URI, path (';'-separated) and query
 * ('&'-separated).  For each, `visit` gets its decoded lowercase name, its
 * raw text and its raw value (NULL without '='), and returns the text to
 * keep (NULL to drop it).  Returns the URI rebuilt from what was kept.
 */
typedef const char *(*pkcs11_visit)(apr_pool_t *pool, void *ctx, int query,
                                    const char *name, const char *text,
                                    const char *value);

static const char *pkcs11_rebuild(apr_pool_t *pool, const char *uri,
                                  pkcs11_visit visit, void *ctx)
{
    const char *path = uri + 7, *q = strchr(path, '?');
    apr_size_t path_len = q ? (apr_size_t)(q - path) : strlen(path);
    char *out = apr_pstrmemdup(pool, uri, 7);
    int part;

    for (part = 0; part < 2; part++) {
        const char *a = part ? (q ? q + 1 : "") : path;
        const char *stop = part ? a + strlen(a) : path + path_len;
        char sep = part ? '&' : ';';
        int kept_any = 0;

        while (a < stop) {
            const char *end = memchr(a, sep, (apr_size_t)(stop - a));
            const char *eq, *text, *keep;
            apr_size_t n;

            if (!end)
                end = stop;
            n = (apr_size_t)(end - a);
            if (n > 0) {
                eq = memchr(a, '=', n);
                text = apr_pstrmemdup(pool, a, n);
                keep = visit(pool, ctx, part,
                             pct_decode(pool, a, eq ? (apr_size_t)(eq - a) : n, 1),
                             text, eq ? text + (eq - a) + 1 : NULL);
                if (keep) {
                    out = apr_pstrcat(pool, out, kept_any ? (part ? "&" : ";")
                                      : (part ? "?" : ""), keep, NULL);
                    kept_any = 1;
                }
            }
            a = end < stop ? end + 1 : stop;
        }
    }
    return out;
}

struct pkcs11_split {
    const char *module;
    const char *pin;
    const char *pin_source;
};

/* libp11 must not see module-path= (it takes it as the engine's
 * MODULE_PATH and refuses URIs carrying it) nor any PIN attribute, in the
 * path or the query: libp11's messages quote the URI.  The PIN goes to the
 * engine as its PIN (pin-source= read here); an attribute that only looks
 * like one ("pin-value%3D...") is dropped, never passed on. */
static const char *split_visit(apr_pool_t *pool, void *ctx, int query,
                               const char *name, const char *text,
                               const char *value)
{
    struct pkcs11_split *sp = ctx;

    if (value && query && strcmp(name, "module-path") == 0) {
        sp->module = pct_decode(pool, value, strlen(value), 0);
        return NULL;
    }
    if (!is_pin_attribute(name))
        return text;
    if (value && strcmp(name, "pin-value") == 0)
        sp->pin = pct_decode(pool, value, strlen(value), 0);
    else if (value && strcmp(name, "pin-source") == 0)
        sp->pin_source = pct_decode(pool, value, strlen(value), 0);
    return NULL;
}

/* The PIN in a pin-source file ("file:" URI or path): its first line. */
static const char *read_pin_source(apr_pool_t *pool, const char *source)
{
    char buf[256];
    FILE *f;
    size_t n;

    if (strncmp(source, "file:", 5) == 0)
        source += 5;
    f = fopen(source, "r");
    if (!f)
        return NULL;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    buf[strcspn(buf, "\r\n")] = '\0';
    return apr_pstrdup(pool, buf);
}

static const char *pkcs11_split_uri(apr_pool_t *pool, const char *uri,
                                    const char **module, const char **pin,
                                    const char **pin_source)
{
    struct pkcs11_split sp = { NULL, NULL, NULL };
    const char *kept = pkcs11_rebuild(pool, uri, split_visit, &sp);

    *module = sp.module;
    *pin = sp.pin;
    *pin_source = sp.pin_source;
    return kept;
}

/* A PIN attribute is logged by its kind only: its raw text could hold the
 * PIN even in the name (an encoded '=' in "pin-value%3D..."). */
static const char *log_visit(apr_pool_t *pool, void *ctx, int query,
                             const char *name, const char *text,
                             const char *value)
{
    (void)pool; (void)ctx; (void)query; (void)value;
    if (!is_pin_attribute(name))
        return text;
    return strcmp(name, "pin-source") == 0 ? "pin-source=(hidden)"
                                           : "pin-value=(hidden)";
}

const char *gt_key_location_for_log(apr_pool_t *pool, const char *where)
{
    if (!where || !gt_key_is_pkcs11_uri(where))
        return where;
    return pkcs11_rebuild(pool, where, log_visit, NULL);
}

static EVP_PKEY *pkcs11_key_load(apr_pool_t *pool, const char *uri,
                                 const char **why)
{
    ENGINE *e;
    EVP_PKEY *key;
    const char *module, *pin, *pin_source;

    uri = pkcs11_split_uri(pool, uri, &module, &pin, &pin_source);
    if (!pin && pin_source && !(pin = read_pin_source(pool, pin_source))) {
        *why = "the URI's pin-source cannot be read";
        return NULL;
    }

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

/* A private key (is_key) or a certificate from a file, read as PEM, else
 * as DER.  NULL with *why: `unreadable` or `empty`. */
static void *file_object_load(const char *path, int is_key,
                              const char *unreadable, const char *empty,
                              const char **why)
{
    BIO *bio = BIO_new_file(path, "rb");
    void *obj;

    if (!bio) {
        ERR_clear_error();
        *why = unreadable;
        return NULL;
    }
    obj = is_key ? (void *)PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL)
                 : (void *)PEM_read_bio_X509(bio, NULL, no_passphrase, NULL);
    if (!obj) {
        (void)BIO_reset(bio);
        obj = is_key ? (void *)d2i_PrivateKey_bio(bio, NULL)
                     : (void *)d2i_X509_bio(bio, NULL);
    }
    BIO_free(bio);
    ERR_clear_error();
    if (!obj)
        *why = empty;
    return obj;
}

EVP_PKEY *gt_private_key_load(apr_pool_t *pool, const char *where,
                              const char **why)
{
    EVP_PKEY *key = gt_key_is_pkcs11_uri(where)
                    ? pkcs11_key_load(pool, where, why)
                    : file_object_load(where, 1, "the key file cannot be read",
                                       "the file holds no unencrypted "
                                       "private key (PEM or DER)", why);
    if (key)
        apr_pool_cleanup_register(pool, key, pkey_cleanup,
                                  apr_pool_cleanup_null);
    return key;
}

X509 *gt_certificate_load(apr_pool_t *pool, const char *path, const char **why)
{
    X509 *cert = file_object_load(path, 0, "the certificate file cannot be "
                                  "read", "the file holds no certificate "
                                  "(PEM or DER)", why);

    if (!cert)
        return NULL;
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
