/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* Unit tests of core/gt_organization.c: names and key fingerprints. */
#include <string.h>

#include "apr_pools.h"
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "core/gt_organization.h"
#include "unit.h"
#include "unit_keys.h"

START_TEST(names_accepted)
{
    char longest[GT_ORGANIZATION_MAX_NAME + 1];

    memset(longest, 'a', GT_ORGANIZATION_MAX_NAME);
    longest[GT_ORGANIZATION_MAX_NAME] = '\0';
    ck_assert_int_eq(gt_organization_name_ok("acme-eu"), 1);
    ck_assert_int_eq(gt_organization_name_ok("Acme School District 7"), 1);
    ck_assert_int_eq(gt_organization_name_ok("\xc3\xa9" "cole"), 1);  /* UTF-8 */
    ck_assert_int_eq(gt_organization_name_ok(longest), 1);
}
END_TEST

START_TEST(names_refused)
{
    char too_long[GT_ORGANIZATION_MAX_NAME + 2];

    memset(too_long, 'a', GT_ORGANIZATION_MAX_NAME + 1);
    too_long[GT_ORGANIZATION_MAX_NAME + 1] = '\0';
    ck_assert_int_eq(gt_organization_name_ok(NULL), 0);
    ck_assert_int_eq(gt_organization_name_ok(""), 0);
    ck_assert_int_eq(gt_organization_name_ok(too_long), 0);
    ck_assert_int_eq(gt_organization_name_ok("two\nlines"), 0);
    ck_assert_int_eq(gt_organization_name_ok("tab\there"), 0);
    ck_assert_int_eq(gt_organization_name_ok("del\x7f"), 0);
}
END_TEST

/* The expected value computed here from the DER SPKI with the one-shot
 * SHA256(), independently of the function's EVP_Digest path. */
static void expect_fingerprint(apr_pool_t *p, EVP_PKEY *key)
{
    unsigned char *der = NULL, md[SHA256_DIGEST_LENGTH];
    char want[2 * SHA256_DIGEST_LENGTH + 1];
    int len = i2d_PUBKEY(key, &der), i;
    const char *got;

    ck_assert_int_gt(len, 0);
    SHA256(der, (size_t)len, md);
    OPENSSL_free(der);
    for (i = 0; i < SHA256_DIGEST_LENGTH; i++)
        snprintf(want + 2 * i, 3, "%02x", md[i]);
    got = gt_public_key_fingerprint(p, key);
    ck_assert_ptr_nonnull(got);
    ck_assert_str_eq(got, want);
}

START_TEST(fingerprint_is_sha256_of_spki)
{
    apr_pool_t *p;
    EVP_PKEY *ec = unit_p256, *ec2 = unit_p384, *rsa = unit_rsa2048;

    apr_pool_create(&p, NULL);
    expect_fingerprint(p, ec);
    expect_fingerprint(p, rsa);
    /* another key, another fingerprint */
    ck_assert_str_ne(gt_public_key_fingerprint(p, ec),
                     gt_public_key_fingerprint(p, ec2));
    ck_assert_ptr_null(gt_public_key_fingerprint(p, NULL));
    apr_pool_destroy(p);
}
END_TEST

START_TEST(fingerprint_same_for_public_half)
{
    apr_pool_t *p;
    EVP_PKEY *key = unit_p256, *pub;
    unsigned char *der = NULL;
    const unsigned char *q;
    int len = i2d_PUBKEY(key, &der);

    q = der;
    pub = d2i_PUBKEY(NULL, &q, len);
    ck_assert_ptr_nonnull(pub);
    apr_pool_create(&p, NULL);
    /* an operator checks it against the certificate's or the .pub's key */
    ck_assert_str_eq(gt_public_key_fingerprint(p, key),
                     gt_public_key_fingerprint(p, pub));
    OPENSSL_free(der);
    EVP_PKEY_free(pub);
    apr_pool_destroy(p);
}
END_TEST

Suite *organization_suite(void)
{
    UNIT_SUITE("organization", NULL, NULL, 0,
               names_accepted, names_refused, fingerprint_is_sha256_of_spki,
               fingerprint_same_for_public_half);
}
