/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_keys.h - loading signing keys and certificates.
 *
 * A key location is a PEM or DER file, or a URI that a key store of
 * OpenSSL 3 opens (OSSL_STORE): "pkcs11:" with pkcs11-provider,
 * "handle:0x81000001" with the TPM 2.0 provider, any scheme of a loaded
 * provider.  A pkcs11: URI that no loaded provider opens goes through
 * libp11's pkcs11 engine where OpenSSL still has ENGINE (gt_pkcs11.h).
 * The module then signs with the key but never sees it.  Every EVP_PKEY /
 * X509 returned is freed with `pool`.
 */
#ifndef GT_KEYS_H
#define GT_KEYS_H

#include "apr_pools.h"
#include "apr_tables.h"
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "gt_pkcs11.h"

/*
 * A library context of the module's own with the default provider and the
 * ones asked for, OpenSSL's configuration file loaded into it (where
 * pkcs11-provider reads its module path and PIN).  A child process makes
 * its own: a provider's session (a TPM connection, an HSM login) does not
 * survive fork().  Freed with `pool`, after every key loaded into it from
 * the same pool.
 */
typedef struct gt_key_store gt_key_store;
gt_key_store *gt_key_store_create(apr_pool_t *pool, const char **why);
/* Loads the provider `name` into the store; -1 with *why. */
int gt_key_store_add_provider(gt_key_store *store, const char *name,
                              const char **why);
OSSL_LIB_CTX *gt_key_store_libctx(const gt_key_store *store);

/* 1 when `where` is a URI (a scheme, then ':'), not a file path. */
int gt_key_is_uri(const char *where);

/* A private key from a file or URI, or NULL with *why (no PIN, no key
 * material in it).  store NULL: OpenSSL's default library context. */
EVP_PKEY *gt_private_key_load(apr_pool_t *pool, gt_key_store *store,
                              const char *where, const char **why);

/*
 * A key file's bytes (at most GT_KEY_FILE_MAX), read once by the parent,
 * and the key in them, decoded in a child's store: a key file that a
 * provider decodes into a handle (a TPM-wrapped "TSS2 PRIVATE KEY") is
 * opened again in each child, which runs as a user who may not read the
 * file.  NULL with *why.
 */
#define GT_KEY_FILE_MAX 65536
const char *gt_key_file_copy(apr_pool_t *pool, const char *path,
                             apr_size_t *len, const char **why);
EVP_PKEY *gt_private_key_from_bytes(apr_pool_t *pool, gt_key_store *store,
                                    const char *data, apr_size_t len,
                                    const char **why);

/* Who holds a key: the provider's name, or "engine" for an ENGINE key. */
const char *gt_key_holder(const EVP_PKEY *key);

/* 1 when the key lives in a provider other than OpenSSL's own (tpm2,
 * pkcs11, ...): such a handle must be opened again after fork(), and the
 * provider may not be safe to call from two threads at once. */
int gt_key_is_external(const EVP_PKEY *key);

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
