/* gt_jose and gt_maid: base64url, JSON strings, JWS signatures, UUIDs. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apr_pools.h"
#include "apr_strings.h"

#include <openssl/ec.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "core/gt_maid.h"
#include "jose/gt_jose.h"
#include "unit.h"

static apr_pool_t *pool;

static void setup(void) { ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS); }
static void teardown(void) { apr_pool_destroy(pool); }

START_TEST(b64url_round_trip)
{
    unsigned char data[64], *out = NULL;
    apr_size_t n, out_len = 0;
    int i;

    for (i = 0; i < 64; i++)
        data[i] = (unsigned char)(i * 37 + 250);
    for (n = 0; n <= sizeof(data); n++) {
        const char *enc = gt_b64url_encode(pool, data, n);
        ck_assert_ptr_null(strpbrk(enc, "+/="));
        ck_assert_int_eq(gt_b64url_decode(pool, enc, strlen(enc), &out, &out_len), 0);
        ck_assert_uint_eq(out_len, n);
        ck_assert_mem_eq(out, data, n);
    }
    ck_assert_str_eq(gt_b64url_encode(pool, (const unsigned char *)"\xfb\xff", 2), "-_8");
}
END_TEST

START_TEST(b64url_decoder_is_strict)
{
    unsigned char *out;
    apr_size_t n;
    ck_assert_int_eq(gt_b64url_decode(pool, "YQ==", 4, &out, &n), -1);   /* padding */
    ck_assert_int_eq(gt_b64url_decode(pool, "a+b/", 4, &out, &n), -1);   /* base64, not url */
    ck_assert_int_eq(gt_b64url_decode(pool, "YR", 2, &out, &n), -1);     /* stray bits */
    ck_assert_int_eq(gt_b64url_decode(pool, "Y", 1, &out, &n), -1);      /* impossible length */
    ck_assert_int_eq(gt_b64url_decode(pool, "YQ", 2, &out, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(out[0], 'a');
}
END_TEST

START_TEST(json_strings_are_escaped)
{
    ck_assert_str_eq(gt_json_string(pool, "plain"), "\"plain\"");
    ck_assert_str_eq(gt_json_string(pool, "a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\u000a\\u0001\"");
}
END_TEST

START_TEST(uuids_are_random_v4)
{
    char a[37], b[37];
    ck_assert_int_eq(gt_uuid_v4(a), 0);
    ck_assert_int_eq(gt_uuid_v4(b), 0);
    ck_assert(gt_is_uuid(a));
    ck_assert_int_eq(a[14], '4');
    ck_assert(strchr("89ab", a[19]) != NULL);
    ck_assert_str_ne(a, b);
    ck_assert(!gt_is_uuid("3f2b6c1e-8d4a-4b7e-9c2f-1a5d3e7b9f0"));
    ck_assert(!gt_is_uuid("3f2b6c1e-8d4a-4b7e-9c2f-1a5d3e7b9f000"));
    ck_assert(!gt_is_uuid("3f2b6c1e_8d4a-4b7e-9c2f-1a5d3e7b9f00"));
    ck_assert(gt_is_uuid("3F2B6C1E-8D4A-4B7E-9C2F-1A5D3E7B9F00"));
}
END_TEST

static EVP_PKEY *rsa_key(int bits)
{
    EVP_PKEY *k = EVP_RSA_gen((unsigned)bits);
    ck_assert_ptr_nonnull(k);
    return k;
}

static EVP_PKEY *ec_key(const char *curve)
{
    EVP_PKEY *k = EVP_EC_gen(curve);
    ck_assert_ptr_nonnull(k);
    return k;
}

START_TEST(alg_follows_the_key)
{
    const char *why = NULL;
    EVP_PKEY *k;

    k = rsa_key(2048);
    ck_assert_str_eq(gt_jws_alg_for_key(k, &why), "RS256");
    EVP_PKEY_free(k);
    k = rsa_key(1024);
    ck_assert_ptr_null(gt_jws_alg_for_key(k, &why));
    ck_assert_ptr_nonnull(strstr(why, "2048"));
    EVP_PKEY_free(k);
    k = ec_key("P-256");
    ck_assert_str_eq(gt_jws_alg_for_key(k, &why), "ES256");
    EVP_PKEY_free(k);
    k = ec_key("P-384");
    ck_assert_ptr_null(gt_jws_alg_for_key(k, &why));
    EVP_PKEY_free(k);
}
END_TEST

/* Splits a compact JWS and checks its signature with plain EVP calls. */
static void verify_compact(const char *token, EVP_PKEY *key, int es256,
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
    if (es256) {
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

static const gt_jws_signer *signer(EVP_PKEY *key, const char *alg)
{
    const char *why = NULL;
    const gt_jws_signer *s = gt_jws_signer_create(pool, key, &why);
    ck_assert_msg(s != NULL, "%s", why);
    ck_assert_str_eq(gt_jws_signer_alg(s), alg);
    return s;
}

START_TEST(signer_refuses_weak_or_foreign_keys)
{
    const char *why = NULL;
    EVP_PKEY *k = rsa_key(1024);

    ck_assert_ptr_null(gt_jws_signer_create(pool, k, &why));
    ck_assert_ptr_nonnull(strstr(why, "2048"));
    EVP_PKEY_free(k);
    k = ec_key("P-384");
    why = NULL;
    ck_assert_ptr_null(gt_jws_signer_create(pool, k, &why));
    ck_assert_ptr_nonnull(why);
    EVP_PKEY_free(k);
}
END_TEST

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

START_TEST(one_signer_serves_many_threads)
{
    EVP_PKEY *rsa = rsa_key(2048), *ec = ec_key("P-256");
    EVP_PKEY *keys[2] = { rsa, ec };
    static sign_job jobs[SIGN_THREADS];
    pthread_t th[SIGN_THREADS];
    int k, t, i;

    for (k = 0; k < 2; k++) {
        const gt_jws_signer *s = signer(keys[k], k ? "ES256" : "RS256");
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
                verify_compact(jobs[t].tokens[i], keys[k], k,
                               k ? "{\"alg\":\"ES256\",\"typ\":\"JWT\"}"
                                 : "{\"alg\":\"RS256\",\"typ\":\"JWT\"}",
                               jobs[t].claims[i]);
                free((void *)jobs[t].tokens[i]);
            }
    }
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
}
END_TEST

START_TEST(sign_rs256_and_es256)
{
    const char *why = NULL, *claims = "{\"a\":1}";
    EVP_PKEY *rsa = rsa_key(2048), *ec = ec_key("P-256");
    const char *t;

    t = gt_jws_sign(pool, signer(rsa, "RS256"), claims, &why);
    ck_assert_ptr_nonnull(t);
    verify_compact(t, rsa, 0, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", claims);
    t = gt_jws_sign(pool, signer(ec, "ES256"), claims, &why);
    ck_assert_ptr_nonnull(t);
    verify_compact(t, ec, 1, "{\"alg\":\"ES256\",\"typ\":\"JWT\"}", claims);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
}
END_TEST

START_TEST(maid_token_claims)
{
    const char *why = NULL;
    char jti[37];
    EVP_PKEY *rsa = rsa_key(2048);
    const char *uuid = "3f2b6c1e-8d4a-4b7e-9c2f-1a5d3e7b9f00";
    const char *t = gt_maid_token(pool, signer(rsa, "RS256"), uuid, 1700000000, jti, &why);
    char *want;

    ck_assert_ptr_nonnull(t);
    ck_assert(gt_is_uuid(jti));
    want = apr_psprintf(pool, "{\"iss\":\"%s\",\"iat\":1700000000,\"jti\":\"%s\","
                        "\"service_type\":\"com.apple.maid\"}", uuid, jti);
    verify_compact(t, rsa, 0, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", want);
    EVP_PKEY_free(rsa);
}
END_TEST

Suite *jose_suite(void)
{
    Suite *s = suite_create("jose");
    TCase *tc = tcase_create("jose");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, b64url_round_trip);
    tcase_add_test(tc, b64url_decoder_is_strict);
    tcase_add_test(tc, json_strings_are_escaped);
    tcase_add_test(tc, uuids_are_random_v4);
    tcase_add_test(tc, alg_follows_the_key);
    tcase_add_test(tc, signer_refuses_weak_or_foreign_keys);
    tcase_add_test(tc, one_signer_serves_many_threads);
    tcase_add_test(tc, sign_rs256_and_es256);
    tcase_add_test(tc, maid_token_claims);
    suite_add_tcase(s, tc);
    return s;
}
