/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* gt_cert: strict base64, PEM -> DER and the validity period read from the
 * DER, each checked against what OpenSSL itself encodes/decodes; and the
 * certificate hash (gt_sha256_hex). */
#include <string.h>

#include "apr_pools.h"
#include "apr_strings.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/gt_cert.h"
#include "unit.h"
#include "unit_cert.h"
#include "unit_keys.h"

static apr_pool_t *pool;
static EVP_PKEY *key;

static void setup(void)
{
    ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS);
    key = unit_p256;
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

static X509 *cert_with(const ASN1_TIME *nb, const ASN1_TIME *na, int v1)
{
    return unit_cert(key, "device", nb, na, v1);
}

static unsigned char *der_of(X509 *c, apr_size_t *len)
{
    unsigned char *der = NULL;
    int n = i2d_X509(c, &der);
    unsigned char *copy;

    ck_assert_int_gt(n, 0);
    copy = apr_pmemdup(pool, der, (apr_size_t)n);
    OPENSSL_free(der);
    *len = (apr_size_t)n;
    return copy;
}

/* Seconds since the epoch of an ASN1_TIME, the way OpenSSL reads it. */
static apr_int64_t openssl_epoch(const ASN1_TIME *t)
{
    ASN1_TIME *epoch = ASN1_TIME_set(NULL, 0);
    int days = 0, secs = 0;

    ck_assert_ptr_nonnull(epoch);
    ck_assert_int_eq(ASN1_TIME_diff(&days, &secs, epoch, t), 1);
    ASN1_TIME_free(epoch);
    return (apr_int64_t)days * 86400 + secs;
}

static ASN1_TIME *time_string(int type, const char *s)
{
    ASN1_TIME *t = ASN1_TIME_new();

    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(ASN1_STRING_set(t, s, (int)strlen(s)), 1);
    t->type = type;
    return t;
}

START_TEST(base64_strict)
{
    unsigned char *out;
    apr_size_t n;

    ck_assert_int_eq(gt_base64_decode(pool, "aGVsbG8=", 8, 0, &out, &n), 0);
    ck_assert_uint_eq(n, 5);
    ck_assert(memcmp(out, "hello", 5) == 0);
    ck_assert_int_eq(gt_base64_decode(pool, "aGVsbG8", 7, 0, &out, &n), 0);
    ck_assert_uint_eq(n, 5);
    ck_assert_int_eq(gt_base64_decode(pool, "aGk=", 4, 0, &out, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_int_eq(gt_base64_decode(pool, "", 0, 0, &out, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_int_eq(gt_base64_decode(pool, "aGVs\nbG8=", 9, 1, &out, &n), 0);
    ck_assert_uint_eq(n, 5);
    /* refused: whitespace when not asked, bad characters, bad padding */
    ck_assert_int_eq(gt_base64_decode(pool, "aGVs\nbG8=", 9, 0, &out, &n), -1);
    ck_assert_int_eq(gt_base64_decode(pool, "aGVs*G8=", 8, 0, &out, &n), -1);
    ck_assert_int_eq(gt_base64_decode(pool, "aGVsbG8==", 9, 0, &out, &n), -1);
    ck_assert_int_eq(gt_base64_decode(pool, "aGk=aGk=", 8, 0, &out, &n), -1);
    ck_assert_int_eq(gt_base64_decode(pool, "a", 1, 0, &out, &n), -1);
    ck_assert_int_eq(gt_base64_decode(pool, "aGl=", 4, 0, &out, &n), -1);
    ck_assert_int_eq(gt_base64_decode(pool, "aGVsbG8-", 8, 0, &out, &n), -1);
}
END_TEST

START_TEST(pem_to_der_matches_i2d)
{
    X509 *c = cert_with(X509_gmtime_adj(NULL, 0), X509_gmtime_adj(NULL, 3600), 0);
    BIO *b = BIO_new(BIO_s_mem());
    char *pem, *crlf;
    long n;
    const unsigned char *der;
    apr_size_t len, want_len;
    unsigned char *want = der_of(c, &want_len);

    ck_assert_int_eq(PEM_write_bio_X509(b, c), 1);
    n = BIO_get_mem_data(b, &pem);
    pem = apr_pstrmemdup(pool, pem, (apr_size_t)n);
    ck_assert_int_eq(gt_pem_cert_to_der(pool, pem, &der, &len), 0);
    ck_assert_uint_eq(len, want_len);
    ck_assert_mem_eq(der, want, len);

    /* CRLF line ends, as some proxies and mod_ssl on other platforms */
    crlf = apr_pstrdup(pool, "");
    for (char *p = pem; *p; p++)
        crlf = apr_pstrcat(pool, crlf, *p == '\n' ? "\r\n" : apr_pstrndup(pool, p, 1), NULL);
    ck_assert_int_eq(gt_pem_cert_to_der(pool, crlf, &der, &len), 0);
    ck_assert_mem_eq(der, want, want_len);

    /* not base64 inside, no markers, empty body */
    {
        char *bad = apr_pstrdup(pool, pem);
        bad[40] = '*';
        ck_assert_int_eq(gt_pem_cert_to_der(pool, bad, &der, &len), -1);
    }
    ck_assert_int_eq(gt_pem_cert_to_der(pool, "MIIB", &der, &len), -1);
    ck_assert_int_eq(gt_pem_cert_to_der(pool, "-----BEGIN CERTIFICATE-----\n"
                                        "-----END CERTIFICATE-----\n", &der, &len), -1);
    ck_assert_int_eq(gt_pem_cert_to_der(pool, "-----BEGIN CERTIFICATE-----\nMIIB",
                                        &der, &len), -1);
    BIO_free(b);
    X509_free(c);
}
END_TEST

/* Times ASN1_TIME_set encodes as UTCTime (1950-2049) and GeneralizedTime
 * (other years), around leap days and the ends of each range. */
START_TEST(validity_equals_openssl_times)
{
    static const apr_int64_t times[] = {
        -631152000,          /* 1950-01-01: first UTCTime year */
        -631152001,          /* 1949-12-31 23:59:59: GeneralizedTime */
        0, 951782400,        /* epoch, 2000-02-29 */
        1700000000, 1709208000,   /* 2023-11-14, 2024-02-29 12:00 */
        2524607999,          /* 2049-12-31 23:59:59: last UTCTime */
        2524608000,          /* 2050-01-01: GeneralizedTime */
        4102444800,          /* 2100-01-01 (not a leap year) */
        253402214400         /* 9999-12-31 00:00:00 (+86399: the last second) */
    };
    unsigned i;

    for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
        ASN1_TIME *nb = ASN1_TIME_set(NULL, (time_t)times[i]);
        ASN1_TIME *na = ASN1_TIME_set(NULL, (time_t)(times[i] + 86399));
        X509 *c;
        apr_size_t len;
        unsigned char *der;
        apr_int64_t got_nb = 0, got_na = 0;

        ck_assert_ptr_nonnull(nb);
        ck_assert_ptr_nonnull(na);
        c = cert_with(nb, na, i % 2);
        der = der_of(c, &len);
        ck_assert_msg(gt_cert_validity(der, len, &got_nb, &got_na) == 0,
                      "time %" APR_INT64_T_FMT " (v%d)", times[i], i % 2 ? 1 : 3);
        ck_assert_int_eq(got_nb, times[i]);
        ck_assert_int_eq(got_na, times[i] + 86399);
        ck_assert_int_eq(got_nb, openssl_epoch(X509_get0_notBefore(c)));
        X509_free(c);
        ASN1_TIME_free(nb);
        ASN1_TIME_free(na);
    }
}
END_TEST

/* Forms OpenSSL accepts beyond RFC 5280's: no seconds, offsets, fractions. */
/* gt_cert_validity of a certificate whose notBefore is the string s of
 * ASN.1 type `type`, as it stands (notAfter: 2033-05-18). */
static int validity_with_not_before(int type, const char *s, apr_int64_t *nb)
{
    ASN1_TIME *not_before = time_string(type, s);
    ASN1_TIME *not_after = ASN1_TIME_set(NULL, 2000000000);
    X509 *c = cert_with(not_before, not_after, 0);
    apr_size_t len;
    unsigned char *der = der_of(c, &len);
    apr_int64_t na = 0;
    int rc = gt_cert_validity(der, len, nb, &na);

    ck_assert(rc != 0 || na == 2000000000);
    X509_free(c);
    ASN1_TIME_free(not_before);
    ASN1_TIME_free(not_after);
    return rc;
}

START_TEST(validity_other_time_forms)
{
    static const struct { int type; const char *s; } forms[] = {
        { V_ASN1_UTCTIME, "2401020304Z" },
        { V_ASN1_UTCTIME, "240102030405+0130" },
        { V_ASN1_UTCTIME, "240102030405-0945" },
        { V_ASN1_GENERALIZEDTIME, "20240102030405.25Z" },
        { V_ASN1_GENERALIZEDTIME, "20240102030405+1200" },
        { V_ASN1_GENERALIZEDTIME, "202401020304Z" },
    };
    unsigned i;

    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
        ASN1_TIME *t = time_string(forms[i].type, forms[i].s);
        apr_int64_t got = 0;

        ck_assert_msg(ASN1_TIME_check(t) == 1, "OpenSSL refuses %s", forms[i].s);
        ck_assert_msg(validity_with_not_before(forms[i].type, forms[i].s, &got) == 0,
                      "%s", forms[i].s);
        ck_assert_msg(got == openssl_epoch(t), "%s: %" APR_INT64_T_FMT " vs %"
                      APR_INT64_T_FMT, forms[i].s, got, openssl_epoch(t));
        ASN1_TIME_free(t);
    }
}
END_TEST

START_TEST(validity_refuses_bad_times)
{
    static const struct { int type; const char *s; } bad[] = {
        { V_ASN1_UTCTIME, "241301000000Z" },           /* month 13 */
        { V_ASN1_UTCTIME, "230229000000Z" },           /* 2023 is no leap year */
        { V_ASN1_UTCTIME, "240101240000Z" },           /* hour 24 */
        { V_ASN1_UTCTIME, "240101000000" },            /* no zone */
        { V_ASN1_UTCTIME, "2401010000001Z" },          /* stray digit */
        { V_ASN1_UTCTIME, "240101000000.5Z" },         /* UTCTime has no fraction */
        { V_ASN1_GENERALIZEDTIME, "20240101000000.Z" },
        { V_ASN1_GENERALIZEDTIME, "2024010100000Z" },
        { V_ASN1_GENERALIZEDTIME, "20240101000000+01" },
        { V_ASN1_UTCTIME, "24O101000000Z" },
    };
    unsigned i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        apr_int64_t got = 0;
        ck_assert_msg(validity_with_not_before(bad[i].type, bad[i].s, &got) == -1,
                      "%s", bad[i].s);
    }
}
END_TEST

/* Every truncation and a few corruptions of a real certificate: -1, never
 * a read past the buffer (run under valgrind/ASan to see the latter). */
START_TEST(validity_refuses_broken_der)
{
    X509 *c = cert_with(X509_gmtime_adj(NULL, 0), X509_gmtime_adj(NULL, 60), 0);
    apr_size_t len, cut;
    unsigned char *der = der_of(c, &len), *copy;
    apr_int64_t nb, na;

    for (cut = 0; cut < len; cut++) {
        copy = apr_pmemdup(pool, der, cut);     /* exactly cut bytes */
        ck_assert_int_eq(gt_cert_validity(copy, cut, &nb, &na), -1);
    }
    ck_assert_int_eq(gt_cert_validity(der, len, &nb, &na), 0);
    copy = apr_pmemdup(pool, der, len);
    copy[0] = 0x31;                               /* SET, not SEQUENCE */
    ck_assert_int_eq(gt_cert_validity(copy, len, &nb, &na), -1);
    copy = apr_pmemdup(pool, der, len);
    copy[1] = 0x80;                               /* indefinite length */
    ck_assert_int_eq(gt_cert_validity(copy, len, &nb, &na), -1);
    copy = apr_pmemdup(pool, der, len);
    copy[1] = 0x85;                               /* 5 length bytes */
    ck_assert_int_eq(gt_cert_validity(copy, len, &nb, &na), -1);
    ck_assert_int_eq(gt_cert_validity((const unsigned char *)"\x30\x00", 2, &nb, &na), -1);
    X509_free(c);
}
END_TEST

/* The identity's SHA-256 (what the enrollment table holds), before and
 * after the digest is fetched once at start-up: FIPS 180-2 test vectors. */
START_TEST(sha256_hex_known_answers)
{
    static const char abc[] =
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    static const char empty[] =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    apr_pool_t *life;

    ck_assert_str_eq(gt_sha256_hex(pool, (const unsigned char *)"abc", 3), abc);
    ck_assert_int_eq(apr_pool_create(&life, pool), APR_SUCCESS);
    ck_assert_int_eq(gt_digests_init(life), 0);
    ck_assert_str_eq(gt_sha256_hex(pool, (const unsigned char *)"abc", 3), abc);
    ck_assert_str_eq(gt_sha256_hex(pool, (const unsigned char *)"", 0), empty);
    apr_pool_destroy(life);     /* back to the implicit fetch */
    ck_assert_str_eq(gt_sha256_hex(pool, (const unsigned char *)"abc", 3), abc);
}
END_TEST

Suite *cert_suite(void)
{
    UNIT_SUITE("cert", setup, teardown, 0,
               base64_strict, pem_to_der_matches_i2d,
               validity_equals_openssl_times, validity_other_time_forms,
               validity_refuses_bad_times, validity_refuses_broken_der,
               sha256_hex_known_answers);
}
