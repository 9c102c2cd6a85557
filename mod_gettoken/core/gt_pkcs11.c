/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_pkcs11.c - RFC 7512 pkcs11: URIs: the form fit for a log line (no
 * PIN in any spelling), and the ENGINE route to a key (libp11's pkcs11
 * engine) for OpenSSL builds that still have the ENGINE API.
 */
/* The ENGINE API is deprecated in OpenSSL 3 and gone in OpenSSL 4; it is
 * compiled only where the headers still declare it (GT_HAVE_ENGINE). */
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include "gt_pkcs11.h"

#include <stdio.h>
#include <string.h>

#include "apr_lib.h"
#include "apr_strings.h"

#include <openssl/err.h>
#if GT_HAVE_ENGINE
#include <openssl/engine.h>
#endif

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

#if GT_HAVE_ENGINE
static apr_status_t engine_cleanup(void *data)
{
    ENGINE_finish(data);
    ENGINE_free(data);
    return APR_SUCCESS;
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

EVP_PKEY *gt_pkcs11_engine_load(apr_pool_t *pool, const char *uri,
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
#endif /* GT_HAVE_ENGINE */
