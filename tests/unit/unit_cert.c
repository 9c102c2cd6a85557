/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* Test certificates shared by the unit test programs. */
#include <check.h>
#include <stdlib.h>

#include "apr_strings.h"

#include "unit_cert.h"
#include "unit_keys.h"

X509 *unit_cert(EVP_PKEY *key, const char *cn, const ASN1_TIME *not_before,
                const ASN1_TIME *not_after, int v1)
{
    X509 *c = X509_new();
    X509_NAME *name = X509_NAME_new();

    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(name);
    if (!v1)
        ck_assert_int_eq(X509_set_version(c, 2), 1);
    ck_assert_int_eq(ASN1_INTEGER_set(X509_get_serialNumber(c), 4242), 1);
    if (not_before)
        ck_assert_int_eq(X509_set1_notBefore(c, not_before), 1);
    else
        ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notBefore(c), -60));
    if (not_after)
        ck_assert_int_eq(X509_set1_notAfter(c, not_after), 1);
    else
        ck_assert_ptr_nonnull(X509_gmtime_adj(X509_getm_notAfter(c), 86400));
    ck_assert_int_eq(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                     (const unsigned char *)cn, -1, -1, 0), 1);
    ck_assert_int_eq(X509_set_subject_name(c, name), 1);
    ck_assert_int_eq(X509_set_issuer_name(c, name), 1);
    ck_assert_int_eq(X509_set_pubkey(c, key), 1);
    ck_assert_int_gt(X509_sign(c, key, EVP_sha256()), 0);
    X509_NAME_free(name);
    return c;
}

const char *unit_plist_bytes(apr_pool_t *pool, plist_t d, int binary,
                             apr_size_t *len)
{
    char *out = NULL;
    uint32_t n = 0;
    const char *copy;

    if (binary)
        plist_to_bin(d, &out, &n);
    else
        plist_to_xml(d, &out, &n);
    ck_assert_ptr_nonnull(out);
    copy = apr_pmemdup(pool, out, n);
    free(out);
    plist_free(d);
    *len = n;
    return copy;
}

apr_pool_t *unit_signers_make(unit_signers *s)
{
    ck_assert_int_eq(apr_pool_create(&s->pool, NULL), APR_SUCCESS);
    s->key_a = unit_p256;
    s->key_b = unit_rsa2048;
    s->cert_a = unit_cert(s->key_a, "signer a", NULL, NULL, 0);
    s->cert_b = unit_cert(s->key_b, "signer b", NULL, NULL, 0);
    return s->pool;
}

void unit_signers_free(unit_signers *s)
{
    X509_free(s->cert_a);
    X509_free(s->cert_b);
    apr_pool_destroy(s->pool);
}
