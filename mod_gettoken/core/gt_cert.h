/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_cert.h - what the module needs of a certificate, read straight from
 * its text and DER: strict base64, the DER inside a PEM block, the validity
 * period, and SHA-256.  No X509 decode: in OpenSSL 3 decoding a certificate decodes its
 * public key through the provider machinery, which costs most of an
 * RSA-2048 signature per request, while the module only needs the DER's
 * SHA-256 and two dates.
 */
#ifndef GT_CERT_H
#define GT_CERT_H

#include "apr_pools.h"

#include "gt_limits.h"

/*
 * Strict base64 (RFC 4648 section 4 alphabet).  '=' padding is optional
 * but, when present, must be correct; with skip_ws, spaces, tabs, CR and
 * LF are ignored (PEM bodies); any other character fails.  Returns 0 and
 * *out (from pool, NUL-terminated for convenience) / *out_len, or -1.
 */
int gt_base64_decode(apr_pool_t *pool, const char *in, apr_size_t len,
                     int skip_ws, unsigned char **out, apr_size_t *out_len);

#define GT_PEM_CERT_BEGIN "-----BEGIN CERTIFICATE-----"
#define GT_PEM_CERT_END   "-----END CERTIFICATE-----"

/* Where the first PEM CERTIFICATE block in pem[0..len) lies: its BEGIN
 * line, its base64 body [body, body_end), and what follows its END line.
 * Returns 0; -1 with begin NULL when there is no BEGIN line, or with
 * body_end NULL when no END line follows it. */
typedef struct gt_pem_block {
    const char *begin;
    const char *body;
    const char *body_end;
    const char *after;
} gt_pem_block;
int gt_pem_cert_find(const char *pem, apr_size_t len, gt_pem_block *block);

/*
 * The DER of the first "-----BEGIN CERTIFICATE-----" block in `pem`
 * (strict base64, whitespace ignored).  Returns 0 and *der (from pool) /
 * *der_len, or -1.
 */
int gt_pem_cert_to_der(apr_pool_t *pool, const char *pem,
                       const unsigned char **der, apr_size_t *der_len);

/*
 * One DER element at *p: its tag (low tag numbers only) and its content.
 * Definite lengths only (of at most 4 length bytes), never past `end`.
 * Moves *p past the element.  0, or -1.
 */
int gt_der_next(const unsigned char **p, const unsigned char *end,
                unsigned char *tag, const unsigned char **content,
                apr_size_t *len);

/*
 * notBefore / notAfter of a DER X.509 certificate, in seconds since the
 * epoch, found by walking Certificate -> tbsCertificate -> Validity.
 * Times are UTCTime (years 1950-2049) or GeneralizedTime; besides RFC
 * 5280's "...SSZ" forms, seconds may be missing, GeneralizedTime may have
 * a fraction and either may end in a +hhmm / -hhmm offset, as OpenSSL
 * accepts.  Returns 0, or -1 when the DER does not have a certificate's
 * shape up to the Validity field or a time is malformed.
 */
int gt_cert_validity(const unsigned char *der, apr_size_t der_len,
                     apr_int64_t *not_before, apr_int64_t *not_after);

/* Lowercase hex of `len` bytes, from `pool`. */
const char *gt_hex(apr_pool_t *pool, const unsigned char *data,
                   apr_size_t len);

/* Fetches the digest gt_sha256_hex uses once, for the life of `pool`
 * (call it before any thread hashes: at start-up).  0, or -1. */
int gt_digests_init(apr_pool_t *pool);

/* Lowercase hex SHA-256 of `len` bytes, from `pool`; NULL on failure. */
const char *gt_sha256_hex(apr_pool_t *pool, const unsigned char *data,
                          apr_size_t len);

#endif
