/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* Test certificates shared by the unit test programs. */
#ifndef UNIT_CERT_H
#define UNIT_CERT_H

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

/*
 * A certificate for `key`, self-signed, subject and issuer CN=`cn`, valid
 * from not_before to not_after (NULL: a minute ago / a day from now);
 * version 1 (no version field in the DER) when v1, else version 3.
 * Fails the running test on any error.
 */
X509 *unit_cert(EVP_PKEY *key, const char *cn, const ASN1_TIME *not_before,
                const ASN1_TIME *not_after, int v1);

/* The plist d as XML or binary bytes copied into pool (*len set); frees d.
 * Fails the running test on any error. */
#include "apr_pools.h"
#include <plist/plist.h>
const char *unit_plist_bytes(apr_pool_t *pool, plist_t d, int binary,
                             apr_size_t *len);

/*
 * The fixture of the CMS tests: a fresh pool and two self-signed signers,
 * a (EC P-256) and b (RSA-2048).  unit_signers_make returns the pool;
 * unit_signers_free frees the certificates and the pool.
 */
typedef struct {
    apr_pool_t *pool;
    EVP_PKEY *key_a, *key_b;
    X509 *cert_a, *cert_b;
} unit_signers;
apr_pool_t *unit_signers_make(unit_signers *s);
void unit_signers_free(unit_signers *s);

#endif
