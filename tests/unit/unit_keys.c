/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* Test keys and JWS helpers shared by the unit tests. */
#include <string.h>

#include <check.h>

#include "apr_strings.h"

#include <openssl/ecdsa.h>

#include "jose/gt_b64url.h"
#include "unit_keys.h"

EVP_PKEY *unit_rsa2048, *unit_rsa2048_b, *unit_rsa1024;
EVP_PKEY *unit_p256, *unit_p384, *unit_ed25519;

int unit_keys_make(void)
{
    unit_rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    unit_rsa2048_b = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    unit_rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    unit_p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    unit_p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    unit_ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return unit_rsa2048 && unit_rsa2048_b && unit_rsa1024 && unit_p256
           && unit_p384 && unit_ed25519 ? 0 : -1;
}

const gt_jws_signer *unit_signer(apr_pool_t *pool, EVP_PKEY *key,
                                 const char *alg)
{
    const char *why = NULL;
    const gt_jws_signer *s = gt_jws_signer_create(pool, key, &why);

    ck_assert_msg(s != NULL, "%s", why);
    ck_assert_str_eq(gt_jws_signer_alg(s), alg);
    return s;
}

const char *unit_sign(apr_pool_t *pool, EVP_PKEY *key, const char *alg,
                      const char *claims)
{
    const char *why = NULL;
    const char *t = gt_jws_sign(pool, unit_signer(pool, key, alg), claims, &why);

    ck_assert_msg(t != NULL, "%s", why);
    return t;
}

apr_array_header_t *unit_key_list(apr_pool_t *pool, EVP_PKEY *a, EVP_PKEY *b)
{
    apr_array_header_t *k = apr_array_make(pool, 2, sizeof(EVP_PKEY *));

    if (a)
        APR_ARRAY_PUSH(k, EVP_PKEY *) = a;
    if (b)
        APR_ARRAY_PUSH(k, EVP_PKEY *) = b;
    return k;
}

void unit_verify_compact(apr_pool_t *pool, const char *token, EVP_PKEY *key,
                         const char *want_header, const char *want_claims)
{
    const char *dot1 = strchr(token, '.'), *dot2;
    unsigned char *part, *sig;
    apr_size_t n, sig_len;
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    ck_assert_ptr_nonnull(dot1);
    dot2 = strchr(dot1 + 1, '.');
    ck_assert_ptr_nonnull(dot2);
    ck_assert_ptr_null(strchr(dot2 + 1, '.'));
    ck_assert_int_eq(gt_b64url_decode(pool, token, (apr_size_t)(dot1 - token), &part, &n), 0);
    ck_assert_str_eq(apr_pstrmemdup(pool, (char *)part, n), want_header);
    ck_assert_int_eq(gt_b64url_decode(pool, dot1 + 1, (apr_size_t)(dot2 - dot1 - 1), &part, &n), 0);
    if (want_claims)
        ck_assert_str_eq(apr_pstrmemdup(pool, (char *)part, n), want_claims);
    ck_assert_int_eq(gt_b64url_decode(pool, dot2 + 1, strlen(dot2 + 1), &sig, &sig_len), 0);
    if (EVP_PKEY_is_a(key, "EC")) {
        /* JWS form is r||s: rebuild the DER that EVP wants */
        ECDSA_SIG *es = ECDSA_SIG_new();
        unsigned char *der = NULL;
        int der_len;
        ck_assert_uint_eq(sig_len, 64);
        ck_assert(ECDSA_SIG_set0(es, BN_bin2bn(sig, 32, NULL), BN_bin2bn(sig + 32, 32, NULL)));
        der_len = i2d_ECDSA_SIG(es, &der);
        ck_assert_int_gt(der_len, 0);
        sig = apr_pmemdup(pool, der, (apr_size_t)der_len);
        sig_len = (apr_size_t)der_len;
        OPENSSL_free(der);
        ECDSA_SIG_free(es);
    }
    ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    ck_assert_int_eq(EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)token,
                                      (size_t)(dot2 - token)), 1);
    /* and a flipped bit in the signed part fails */
    {
        char *bad = apr_pstrdup(pool, token);
        bad[dot1 - token + 2] ^= 1;
        ck_assert_int_eq(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
        ck_assert_int_ne(EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)bad,
                                          (size_t)(dot2 - token)), 1);
    }
    EVP_MD_CTX_free(md);
}
