/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_keys.h - loading signing keys and certificates at start-up.
 *
 * A key is a PEM or DER file, or an RFC 7512 "pkcs11:" URI naming a key
 * held in a hardware token or HSM (through OpenSSL's pkcs11 engine, from
 * libp11): the module then signs with it but never sees the private key.
 * Every EVP_PKEY / X509 returned is freed with `pool`.
 */
#ifndef GT_KEYS_H
#define GT_KEYS_H

#include "apr_pools.h"
#include "apr_tables.h"
#include <openssl/evp.h>
#include <openssl/x509.h>

int gt_key_is_pkcs11_uri(const char *where);

/* `where` fit for a log line: in a pkcs11: URI every PIN attribute
 * (pin-value, pin-source; path or query; any case or percent-encoding) is
 * replaced by its kind and "(hidden)". */
const char *gt_key_location_for_log(apr_pool_t *pool, const char *where);

/* A private key from a file or pkcs11: URI, or NULL with *why. */
EVP_PKEY *gt_private_key_load(apr_pool_t *pool, const char *where,
                              const char **why);

/* A certificate (PEM or DER) from a file, or NULL with *why. */
X509 *gt_certificate_load(apr_pool_t *pool, const char *path, const char **why);

/* 1 when the certificate's public key is the key's public half. */
int gt_certificate_matches_key(X509 *cert, EVP_PKEY *key);

/*
 * Public keys from a file holding PEM certificates and/or PEM public keys
 * (any number, in any order), appended to `keys` (EVP_PKEY *).  Returns
 * the number added, or -1 with *why.
 */
int gt_public_keys_load(apr_pool_t *pool, const char *path,
                        apr_array_header_t *keys, const char **why);

#endif
