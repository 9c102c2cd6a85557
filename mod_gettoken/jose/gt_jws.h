/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_jws.h - compact JWS: signing with RS256 or ES256 keys prepared once at
 * start-up, and strict verification against a set of trusted public keys.
 */
#ifndef GT_JWS_H
#define GT_JWS_H

#include "apr_pools.h"
#include "apr_tables.h"
#include "apr_thread_mutex.h"
#include <openssl/evp.h>

/* The JWS alg for a key: "RS256" (RSA >= 2048 bits), "ES256" (EC P-256),
 * NULL for anything else (*why says what). */
const char *gt_jws_alg_for_key(EVP_PKEY *key, const char **why);

/*
 * A key made ready to sign once, at start-up: its alg, the encoded JWS
 * header, and a signing context on which EVP_DigestSignInit has already
 * run (in OpenSSL 3 that init looks up the digest and signature methods
 * under global locks, ~5-15 µs a token).  Each signature works on a copy
 * of that context, so one signer serves every thread.  The signature is
 * fetched from the key's own provider in `libctx`, the library context
 * the key was loaded in (NULL: OpenSSL's default).  NULL with *why for a
 * key gt_jws_alg_for_key refuses.  Lives as long as `pool`.
 */
typedef struct gt_jws_signer gt_jws_signer;
gt_jws_signer *gt_jws_signer_create_ex(apr_pool_t *pool, EVP_PKEY *key,
                                       OSSL_LIB_CTX *libctx,
                                       const char **why);
gt_jws_signer *gt_jws_signer_create(apr_pool_t *pool, EVP_PKEY *key,
                                    const char **why);
const char *gt_jws_signer_alg(const gt_jws_signer *signer);

/*
 * After fork(): the same key opened again in this process (a provider's
 * handle that cannot cross fork()).  It must be of the same alg and have
 * the same public key as before; -1 with *why otherwise, and the signer
 * refuses to sign from then on.  Not while other threads sign.
 */
int gt_jws_signer_rekey(apr_pool_t *pool, gt_jws_signer *signer,
                        EVP_PKEY *key, OSSL_LIB_CTX *libctx, const char **why);
/* Signing holds `lock` (a provider that is not thread-safe: tpm2). */
void gt_jws_signer_serialise(gt_jws_signer *signer, apr_thread_mutex_t *lock);
/* From now on gt_jws_sign fails with `why`. */
void gt_jws_signer_disable(gt_jws_signer *signer, const char *why);
/* Signs a throwaway token and verifies it with the key's public half in
 * OpenSSL's default provider: 0, or -1 with *why. */
int gt_jws_signer_check(apr_pool_t *pool, const gt_jws_signer *signer,
                        const char **why);

/*
 * Signs `claims_json` (a complete JSON object) as a compact JWS with
 * header {"alg":<alg>,"typ":"JWT"}.  Returns the token from `pool`, or
 * NULL with *why set (no key material in it).
 */
const char *gt_jws_sign(apr_pool_t *pool, const gt_jws_signer *signer,
                        const char *claims_json, const char **why);

/*
 * Strict compact JWS verification against a set of trusted public keys
 * (EVP_PKEY *).  The header must be a flat JSON object with "alg" RS256 or
 * ES256 and at most "typ" ("JWT") and "kid" besides; "none", HS*, any other
 * alg and any other header member (crit, jwk, jku, x5u, ...) are refused.
 * RS256 is tried only with RSA keys of >= 2048 bits, ES256 only with EC
 * P-256 keys (signature r||s, 64 bytes, low-s: s <= n/2, as gt_jws_sign
 * makes them, so that no token has a second valid signature).  Sizes are
 * bounded.  On
 * GT_JWS_VALID, *payload (NUL-terminated, from pool) and *payload_len hold
 * the decoded payload; otherwise *why says why (no token bytes in it).
 */
#define GT_JWS_MAX_TOKEN   8192
#define GT_JWS_MAX_HEADER  512
#define GT_JWS_MAX_PAYLOAD 4096
typedef enum {
    GT_JWS_VALID = 0,
    GT_JWS_MALFORMED,      /* not a well-formed compact JWS */
    GT_JWS_ALG_REFUSED,    /* alg other than RS256 / ES256 */
    GT_JWS_NO_KEY,         /* no trusted key of the alg's type */
    GT_JWS_BAD_SIGNATURE   /* no trusted key verifies the signature */
} gt_jws_result;
gt_jws_result gt_jws_verify(apr_pool_t *pool, const char *token,
                            apr_size_t len, const apr_array_header_t *keys,
                            const char **payload, apr_size_t *payload_len,
                            const char **why);

#endif
