/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_pkcs11.h - RFC 7512 pkcs11: URIs naming a key in a token or HSM.
 */
#ifndef GT_PKCS11_H
#define GT_PKCS11_H

#include "apr_pools.h"
#include <openssl/evp.h>
#include <openssl/opensslconf.h>

/* 1 where OpenSSL's headers still declare the ENGINE API (OpenSSL 3
 * built with engines, deprecated API not switched off); OpenSSL 4 has no
 * ENGINE, and then only a provider's key store opens pkcs11: URIs. */
#if !defined(OPENSSL_NO_ENGINE) && !defined(OPENSSL_NO_DEPRECATED_3_0)
#define GT_HAVE_ENGINE 1
#else
#define GT_HAVE_ENGINE 0
#endif

int gt_key_is_pkcs11_uri(const char *where);

/* `where` fit for a log line: in a pkcs11: URI every PIN attribute
 * (pin-value, pin-source; path or query; any case or percent-encoding) is
 * replaced by its kind and "(hidden)". */
const char *gt_key_location_for_log(apr_pool_t *pool, const char *where);

#if GT_HAVE_ENGINE
/* The key a pkcs11: URI names, through libp11's pkcs11 engine (the
 * URI's module-path and PIN go to the engine, never into its messages).
 * NULL with *why.  The engine stays initialised as long as `pool`. */
EVP_PKEY *gt_pkcs11_engine_load(apr_pool_t *pool, const char *uri,
                                const char **why);
#endif

#endif
