/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* Test keys and JWS helpers shared by the unit tests. */
#ifndef UNIT_KEYS_H
#define UNIT_KEYS_H

#include "apr_pools.h"
#include "apr_tables.h"
#include <openssl/evp.h>

#include "jose/gt_jws.h"

/* Made once by the runner before the tests fork (key generation is the
 * slow part of the suite); tests never free them. */
extern EVP_PKEY *unit_rsa2048, *unit_rsa2048_b, *unit_rsa1024;
extern EVP_PKEY *unit_p256, *unit_p384, *unit_ed25519;
int unit_keys_make(void);

/* A signer for `key`; fails the running test unless its alg is `alg`. */
const gt_jws_signer *unit_signer(apr_pool_t *pool, EVP_PKEY *key,
                                 const char *alg);

/* `claims` signed by a signer for `key` (whose alg must be `alg`). */
const char *unit_sign(apr_pool_t *pool, EVP_PKEY *key, const char *alg,
                      const char *claims);

/* A list of trusted keys: a and b, each left out when NULL. */
apr_array_header_t *unit_key_list(apr_pool_t *pool, EVP_PKEY *a, EVP_PKEY *b);

/*
 * Splits a compact JWS and checks, with plain EVP calls rather than the
 * module's verifier, that its header and claims (unless NULL) are the ones
 * given and that `key` verifies its signature, and no longer does once the
 * signed part changes.
 */
void unit_verify_compact(apr_pool_t *pool, const char *token, EVP_PKEY *key,
                         const char *want_header, const char *want_claims);

#endif
