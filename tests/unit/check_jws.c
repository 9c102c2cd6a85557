/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* gt_jws: signing with RS256 and ES256 keys, checked with plain OpenSSL
 * calls, and strict verification. */

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_pools.h"
#include "apr_strings.h"
#include "apr_tables.h"

#include <openssl/bn.h>
#include <openssl/evp.h>

#include "jose/gt_b64url.h"
#include "jose/gt_jws.h"
#include "unit.h"
#include "unit_keys.h"

static apr_pool_t *pool;

static void setup(void) { ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS); }
static void teardown(void) { apr_pool_destroy(pool); }

static gt_jws_result verify(const char *tok, apr_array_header_t *k,
                            const char **payload)
{
    const char *why = NULL, *p = NULL;
    apr_size_t n = 0;
    gt_jws_result res = gt_jws_verify(pool, tok, strlen(tok), k, &p, &n, &why);
    if (res != GT_JWS_VALID)
        ck_assert_ptr_nonnull(why);
    if (payload)
        *payload = p;
    return res;
}

/* A token with `header` (JSON) over the parts of `tok` after its header. */
static const char *with_header(const char *tok, const char *header)
{
    return apr_pstrcat(pool, gt_b64url_encode(pool, (const unsigned char *)header,
                                              strlen(header)),
                       strchr(tok, '.'), NULL);
}

/* One signer (one prepared context), shared by threads as httpd's workers
 * share it: every token must carry its own claims and verify. */
#define SIGN_THREADS 4
#define SIGN_ROUNDS 25
typedef struct {
    const gt_jws_signer *signer;
    int id;
    const char *tokens[SIGN_ROUNDS];
    char claims[SIGN_ROUNDS][32];
} sign_job;

static void *sign_many(void *arg)
{
    sign_job *job = arg;
    apr_pool_t *p;
    int i;

    if (apr_pool_create_unmanaged(&p) != APR_SUCCESS)
        return NULL;
    for (i = 0; i < SIGN_ROUNDS; i++) {
        const char *why = NULL;
        snprintf(job->claims[i], sizeof(job->claims[i]), "{\"t\":%d,\"i\":%d}",
                 job->id, i);
        job->tokens[i] = gt_jws_sign(p, job->signer, job->claims[i], &why);
        if (job->tokens[i])
            job->tokens[i] = strdup(job->tokens[i]);
    }
    apr_pool_destroy(p);
    return NULL;
}


START_TEST(alg_follows_the_key)
{
    const char *why = NULL;
    EVP_PKEY *k;

    k = unit_rsa2048;
    ck_assert_str_eq(gt_jws_alg_for_key(k, &why), "RS256");
    k = unit_rsa1024;
    ck_assert_ptr_null(gt_jws_alg_for_key(k, &why));
    ck_assert_ptr_nonnull(strstr(why, "2048"));
    k = unit_p256;
    ck_assert_str_eq(gt_jws_alg_for_key(k, &why), "ES256");
    k = unit_p384;
    ck_assert_ptr_null(gt_jws_alg_for_key(k, &why));
}
END_TEST

START_TEST(signer_refuses_weak_or_foreign_keys)
{
    const char *why = NULL;
    EVP_PKEY *k = unit_rsa1024;

    ck_assert_ptr_null(gt_jws_signer_create(pool, k, &why));
    ck_assert_ptr_nonnull(strstr(why, "2048"));
    k = unit_p384;
    why = NULL;
    ck_assert_ptr_null(gt_jws_signer_create(pool, k, &why));
    ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(one_signer_serves_many_threads)
{
    EVP_PKEY *rsa = unit_rsa2048, *ec = unit_p256;
    EVP_PKEY *keys[2] = { rsa, ec };
    static sign_job jobs[SIGN_THREADS];
    pthread_t th[SIGN_THREADS];
    int k, t, i;

    for (k = 0; k < 2; k++) {
        const gt_jws_signer *s = unit_signer(pool, keys[k], k ? "ES256" : "RS256");
        for (t = 0; t < SIGN_THREADS; t++) {
            memset(&jobs[t], 0, sizeof(jobs[t]));
            jobs[t].signer = s;
            jobs[t].id = t;
            ck_assert_int_eq(pthread_create(&th[t], NULL, sign_many, &jobs[t]), 0);
        }
        for (t = 0; t < SIGN_THREADS; t++)
            ck_assert_int_eq(pthread_join(th[t], NULL), 0);
        for (t = 0; t < SIGN_THREADS; t++)
            for (i = 0; i < SIGN_ROUNDS; i++) {
                ck_assert_ptr_nonnull(jobs[t].tokens[i]);
                unit_verify_compact(pool, jobs[t].tokens[i], keys[k],
                               k ? "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"
                                 : "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
                               jobs[t].claims[i]);
                free((void *)jobs[t].tokens[i]);
            }
    }
}
END_TEST

START_TEST(sign_rs256_and_es256)
{
    const char *why = NULL, *claims = "{\"a\":1}";
    EVP_PKEY *rsa = unit_rsa2048, *ec = unit_p256;
    const char *t;

    t = gt_jws_sign(pool, unit_signer(pool, rsa, "RS256"), claims, &why);
    ck_assert_ptr_nonnull(t);
    unit_verify_compact(pool, t, rsa, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", claims);
    t = gt_jws_sign(pool, unit_signer(pool, ec, "ES256"), claims, &why);
    ck_assert_ptr_nonnull(t);
    unit_verify_compact(pool, t, ec, "{\"alg\":\"ES256\",\"typ\":\"JWT\"}", claims);
}
END_TEST

START_TEST(jws_round_trip)
{
    const char *p = NULL;
    const char *rs = unit_sign(pool, unit_rsa2048, "RS256", "{\"x\":1}");
    const char *es = unit_sign(pool, unit_p256, "ES256", "{\"y\":2}");

    ck_assert_int_eq(verify(rs, unit_key_list(pool, unit_rsa2048, NULL), &p), GT_JWS_VALID);
    ck_assert_str_eq(p, "{\"x\":1}");
    ck_assert_int_eq(verify(es, unit_key_list(pool, unit_rsa2048, unit_p256), &p), GT_JWS_VALID);
    ck_assert_str_eq(p, "{\"y\":2}");
    /* the second trusted key of the same type is tried too */
    ck_assert_int_eq(verify(rs, unit_key_list(pool, unit_rsa2048_b, unit_rsa2048), NULL), GT_JWS_VALID);
}
END_TEST

START_TEST(jws_untrusted_and_tampered)
{
    const char *rs = unit_sign(pool, unit_rsa2048, "RS256", "{\"x\":1}");
    const char *es = unit_sign(pool, unit_p256, "ES256", "{\"y\":2}");
    char *t;
    size_t i, n;

    /* another organisation's key */
    ck_assert_int_eq(verify(rs, unit_key_list(pool, unit_rsa2048_b, NULL), NULL), GT_JWS_BAD_SIGNATURE);
    /* no key of the alg's type */
    ck_assert_int_eq(verify(es, unit_key_list(pool, unit_rsa2048, NULL), NULL), GT_JWS_NO_KEY);
    ck_assert_int_eq(verify(rs, unit_key_list(pool, NULL, NULL), NULL), GT_JWS_NO_KEY);
    /* the header says RS256 on an ES256 signature */
    ck_assert_int_ne(verify(with_header(es, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"),
                            unit_key_list(pool, unit_rsa2048, unit_p256), NULL), GT_JWS_VALID);
    /* a changed payload, same signature */
    t = apr_pstrdup(pool, rs);
    {
        const char *other = gt_b64url_encode(pool, (const unsigned char *)"{\"x\":2}", 7);
        char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
        t = apr_pstrcat(pool, apr_pstrndup(pool, t, (apr_size_t)(d1 - t + 1)),
                        other, d2, NULL);
    }
    ck_assert_int_eq(verify(t, unit_key_list(pool, unit_rsa2048, NULL), NULL), GT_JWS_BAD_SIGNATURE);
    /* every byte of the signature, altered in turn (ES256: all 86 chars) */
    n = strlen(es);
    for (i = (size_t)(strrchr(es, '.') - es) + 1; i < n; i++) {
        t = apr_pstrdup(pool, es);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        ck_assert_msg(verify(t, unit_key_list(pool, unit_p256, NULL), NULL) != GT_JWS_VALID,
                      "altered signature char %zu accepted", i);
    }
    /* truncated anywhere */
    for (i = 0; i < n; i += 7)
        ck_assert_int_ne(verify(apr_pstrndup(pool, rs, i), unit_key_list(pool, unit_rsa2048, NULL),
                                NULL), GT_JWS_VALID);
    ck_assert_int_ne(verify(apr_pstrndup(pool, rs, strlen(rs) - 1),
                            unit_key_list(pool, unit_rsa2048, NULL), NULL), GT_JWS_VALID);
}
END_TEST

START_TEST(jws_header_refusals)
{
    const char *rs = unit_sign(pool, unit_rsa2048, "RS256", "{\"x\":1}");
    apr_array_header_t *k = unit_key_list(pool, unit_rsa2048, unit_p256);

    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"none\"}"), k, NULL),
                     GT_JWS_ALG_REFUSED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"),
                            k, NULL), GT_JWS_ALG_REFUSED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"PS256\"}"), k, NULL),
                     GT_JWS_ALG_REFUSED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"rs256\"}"), k, NULL),
                     GT_JWS_ALG_REFUSED);
    ck_assert_int_eq(verify(with_header(rs, "{\"typ\":\"JWT\"}"), k, NULL),
                     GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"RS256\",\"crit\":\"b64\"}"),
                            k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"RS256\",\"jku\":\"http://x\"}"),
                            k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"RS256\",\"typ\":\"JOSE\"}"),
                            k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"RS256\",\"alg\":\"none\"}"),
                            k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":256}"), k, NULL),
                     GT_JWS_MALFORMED);
    /* a kid is allowed, but the signature covers the original header */
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"RS256\",\"kid\":\"1\"}"),
                            k, NULL), GT_JWS_BAD_SIGNATURE);
    /* "none" with an empty signature */
    ck_assert_int_ne(verify(apr_pstrcat(pool, "eyJhbGciOiJub25lIn0.",
                                        "eyJ4IjoxfQ.", NULL), k, NULL),
                     GT_JWS_VALID);
}
END_TEST

START_TEST(jws_shape_refusals)
{
    const char *rs = unit_sign(pool, unit_rsa2048, "RS256", "{\"x\":1}");
    apr_array_header_t *k = unit_key_list(pool, unit_rsa2048, NULL);
    char *big = apr_palloc(pool, GT_JWS_MAX_TOKEN + 2);

    ck_assert_int_eq(verify("", k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify("a.b", k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify("a.b.c.d", k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(apr_pstrcat(pool, rs, ".", NULL), k, NULL),
                     GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(apr_pstrcat(pool, rs, "=", NULL), k, NULL),
                     GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(apr_pstrcat(pool, " ", rs, NULL), k, NULL),
                     GT_JWS_MALFORMED);
    memset(big, 'A', GT_JWS_MAX_TOKEN + 1);
    big[GT_JWS_MAX_TOKEN + 1] = '\0';
    big[10] = '.';
    big[20] = '.';
    ck_assert_int_eq(verify(big, k, NULL), GT_JWS_MALFORMED);
}
END_TEST

/* (r, n - s) of an ES256 token: the same signature's high-s twin when s is
 * low.  *low says whether the token's s was low (s <= n/2). */
static const char *es256_twin(const char *tok, int *low)
{
    const char *dot = strrchr(tok, '.');
    unsigned char *sig = NULL, raw[64];
    apr_size_t n = 0;
    BIGNUM *order = NULL, *half, *s;

    ck_assert_int_eq(gt_b64url_decode(pool, dot + 1, strlen(dot + 1), &sig, &n), 0);
    ck_assert_uint_eq(n, 64);
    ck_assert_int_gt(BN_hex2bn(&order, "FFFFFFFF00000000FFFFFFFFFFFFFFFF"
                                       "BCE6FAADA7179E84F3B9CAC2FC632551"), 0);
    half = BN_new();
    s = BN_bin2bn(sig + 32, 32, NULL);
    ck_assert(half && s && BN_rshift1(half, order));
    *low = BN_cmp(s, half) <= 0;
    ck_assert(BN_sub(s, order, s));
    memcpy(raw, sig, 32);
    ck_assert_int_eq(BN_bn2binpad(s, raw + 32, 32), 32);
    BN_free(order);
    BN_free(half);
    BN_free(s);
    return apr_pstrcat(pool, apr_pstrndup(pool, tok, (apr_size_t)(dot - tok + 1)),
                       gt_b64url_encode(pool, raw, 64), NULL);
}

/* Both (r, s) and (r, n - s) verify as ECDSA: only the low-s one is
 * accepted, and the signer makes only that one. */
START_TEST(es256_low_s_only)
{
    int i, low;

    for (i = 0; i < 24; i++) {
        const char *es = unit_sign(pool, unit_p256, "ES256", "{\"y\":2}");
        const char *twin = es256_twin(es, &low), *why = NULL, *p = NULL;
        apr_size_t n = 0;

        ck_assert_msg(low, "gt_jws_sign made a high-s signature");
        ck_assert_int_eq(verify(es, unit_key_list(pool, unit_p256, NULL), NULL),
                         GT_JWS_VALID);
        ck_assert_int_eq(gt_jws_verify(pool, twin, strlen(twin),
                                       unit_key_list(pool, unit_p256, NULL),
                                       &p, &n, &why), GT_JWS_BAD_SIGNATURE);
        ck_assert_ptr_nonnull(strstr(why, "low-s"));
        /* it is a valid ECDSA signature all the same */
        unit_verify_compact(pool, twin, unit_p256, "{\"alg\":\"ES256\",\"typ\":\"JWT\"}",
                            "{\"y\":2}");
    }
}
END_TEST

Suite *jws_suite(void)
{
    UNIT_SUITE("jws", setup, teardown, 60,
               alg_follows_the_key, signer_refuses_weak_or_foreign_keys,
               one_signer_serves_many_threads, sign_rs256_and_es256,
               jws_round_trip, jws_untrusted_and_tampered,
               jws_header_refusals, jws_shape_refusals, es256_low_s_only);
}

