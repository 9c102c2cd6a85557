/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* Unit tests of core/gt_identity.c: base64, Mdm-Signature (CMS detached
 * over the body), and the certificate forms TLS proxies forward. */
#include <stdlib.h>
#include <string.h>

#include "apr_general.h"
#include "apr_pools.h"
#include "apr_strings.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "core/gt_identity.h"
#include "unit.h"
#include "unit_cert.h"

static apr_pool_t *pool;
static unit_signers pair;
/* what the call under test gives back, fresh for each test */
static const unsigned char *der;
static apr_size_t der_len;
static const char *why;

static const char BODY[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">\n"
    "<dict>\n<key>MessageType</key>\n<string>GetToken</string>\n</dict>\n"
    "</plist>\n";

static void setup(void)
{
    pool = unit_signers_make(&pair);
    der = NULL;
    der_len = 0;
    why = NULL;
}

static void teardown(void) { unit_signers_free(&pair); }

static const char *b64(const unsigned char *bytes, int len)
{
    char *out = apr_palloc(pool, (apr_size_t)(len / 3 + 2) * 4 + 1);
    EVP_EncodeBlock((unsigned char *)out, bytes, len);
    return out;
}

static const char *cms_b64(CMS_ContentInfo *cms)
{
    unsigned char *der = NULL;
    int n = i2d_CMS_ContentInfo(cms, &der);
    const char *s;

    ck_assert_int_gt(n, 0);
    s = b64(der, n);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    return s;
}

/* A CMS SignedData over body by cert/key, with certs added. */
static CMS_ContentInfo *sign_cms(const char *body, X509 *cert, EVP_PKEY *key,
                                 STACK_OF(X509) *certs, unsigned int flags)
{
    BIO *in = BIO_new_mem_buf(body, (int)strlen(body));
    CMS_ContentInfo *cms = CMS_sign(cert, key, certs, in, flags);

    ck_assert_ptr_nonnull(cms);
    BIO_free(in);
    return cms;
}

/* What a device sends: detached, binary, SHA-256, signer cert included. */
static const char *sign(const char *body, X509 *cert, EVP_PKEY *key,
                        unsigned int extra_flags)
{
    return cms_b64(sign_cms(body, cert, key, NULL,
                            CMS_DETACHED | CMS_BINARY | extra_flags));
}

static void der_is(const unsigned char *got, apr_size_t len, X509 *cert)
{
    unsigned char *want = NULL;
    int n = i2d_X509(cert, &want);

    ck_assert_int_eq((int)len, n);
    ck_assert(memcmp(got, want, len) == 0);
    OPENSSL_free(want);
}

#define VERIFY(value, body) \
    gt_mdm_signature_verify(pool, (value), (body), strlen(body), &der, \
                            &der_len, &why)
#define REFUSED(call, rx) do { \
        X509 *got_ = (call); \
        ck_assert_msg(got_ == NULL, "accepted: %s", #call); \
        ck_assert_ptr_nonnull(why); \
        ck_assert_msg(strstr(why, rx) != NULL, "why '%s' lacks '%s'", why, rx); \
    } while (0)


/* ---- Mdm-Signature ------------------------------------------------------ */

START_TEST(mdm_signature_ec_and_rsa)
{
    X509 *got = VERIFY(sign(BODY, pair.cert_a, pair.key_a, 0), BODY);

    ck_assert_msg(got != NULL, "refused: %s", why);
    ck_assert_int_eq(X509_cmp(got, pair.cert_a), 0);
    der_is(der, der_len, pair.cert_a);
    X509_free(got);

    got = VERIFY(sign(BODY, pair.cert_b, pair.key_b, 0), BODY);
    ck_assert_msg(got != NULL, "refused: %s", why);
    ck_assert_int_eq(X509_cmp(got, pair.cert_b), 0);
    X509_free(got);
}
END_TEST

START_TEST(mdm_signature_other_bytes)
{
    const char *sig = sign(BODY, pair.cert_a, pair.key_a, 0);
    char *tampered = apr_pstrdup(pool, BODY);

    tampered[strlen(tampered) - 3] ^= 1;
    REFUSED(VERIFY(sig, tampered), "does not verify");
    REFUSED(VERIFY(sig, ""), "does not verify");
    /* without CMS_BINARY the signer hashes the body with CRLF line ends:
     * other bytes than those sent */
    REFUSED(VERIFY(cms_b64(sign_cms(BODY, pair.cert_a, pair.key_a, NULL,
                                    CMS_DETACHED)), BODY), "does not verify");
}
END_TEST

START_TEST(mdm_signature_garbage)
{
    const char *sig = sign(BODY, pair.cert_a, pair.key_a, 0);
    char *big = apr_palloc(pool, GT_IDENTITY_HEADER_MAX + 10);

    REFUSED(VERIFY("not base64!", BODY), "not base64");
    REFUSED(VERIFY("", BODY), "not base64");
    REFUSED(VERIFY(apr_pstrcat(pool, sig, ", ", sig, NULL), BODY), "not base64");
    REFUSED(VERIFY("aGVsbG8gd29ybGQ=", BODY), "not a DER CMS");
    /* a certificate is DER but not CMS */
    {
        unsigned char *c = NULL;
        int n = i2d_X509(pair.cert_a, &c);
        REFUSED(VERIFY(b64(c, n), BODY), "not a DER CMS");
        OPENSSL_free(c);
    }
    memset(big, 'A', GT_IDENTITY_HEADER_MAX + 8);
    big[GT_IDENTITY_HEADER_MAX + 8] = '\0';
    REFUSED(VERIFY(big, BODY), "over the");
}
END_TEST

START_TEST(mdm_signature_trailing_bytes)
{
    CMS_ContentInfo *cms = sign_cms(BODY, pair.cert_a, pair.key_a, NULL,
                                    CMS_DETACHED | CMS_BINARY);
    unsigned char *raw = NULL, *longer;
    int n = i2d_CMS_ContentInfo(cms, &raw);

    ck_assert_int_gt(n, 0);
    longer = apr_palloc(pool, (apr_size_t)n + 1);
    memcpy(longer, raw, (size_t)n);
    longer[n] = 0;
    REFUSED(VERIFY(b64(longer, n + 1), BODY), "follow");
    OPENSSL_free(raw);
    CMS_ContentInfo_free(cms);
}
END_TEST

START_TEST(mdm_signature_shapes)
{
    BIO *in;
    CMS_ContentInfo *cms;
    STACK_OF(X509) *certs = sk_X509_new_null();

    /* content inside the signature instead of the body */
    cms = sign_cms(BODY, pair.cert_a, pair.key_a, NULL, CMS_BINARY);
    REFUSED(VERIFY(cms_b64(cms), BODY), "not detached");

    /* two signers */
    in = BIO_new_mem_buf(BODY, (int)strlen(BODY));
    cms = CMS_sign(NULL, NULL, NULL, NULL,
                   CMS_DETACHED | CMS_BINARY | CMS_PARTIAL);
    ck_assert_ptr_nonnull(cms);
    ck_assert_ptr_nonnull(CMS_add1_signer(cms, pair.cert_a, pair.key_a,
                                          EVP_sha256(), 0));
    ck_assert_ptr_nonnull(CMS_add1_signer(cms, pair.cert_b, pair.key_b,
                                          EVP_sha256(), 0));
    ck_assert_int_eq(CMS_final(cms, in, NULL, CMS_DETACHED | CMS_BINARY), 1);
    BIO_free(in);
    REFUSED(VERIFY(cms_b64(cms), BODY), "2 signers");

    /* certificates only, no signer */
    ck_assert_int_gt(sk_X509_push(certs, pair.cert_a), 0);
    cms = CMS_sign(NULL, NULL, certs, NULL, CMS_DETACHED | CMS_PARTIAL);
    ck_assert_ptr_nonnull(cms);
    REFUSED(VERIFY(cms_b64(cms), BODY), "no signer");
    sk_X509_free(certs);

    /* the signer's certificate left out */
    REFUSED(VERIFY(sign(BODY, pair.cert_a, pair.key_a, CMS_NOCERTS), BODY),
            "does not verify");
    /* a certificate that is not the signer's */
    certs = sk_X509_new_null();
    ck_assert_int_gt(sk_X509_push(certs, pair.cert_b), 0);
    cms = sign_cms(BODY, pair.cert_a, pair.key_a, certs,
                   CMS_DETACHED | CMS_BINARY | CMS_NOCERTS);
    REFUSED(VERIFY(cms_b64(cms), BODY), "does not verify");
    sk_X509_free(certs);
}
END_TEST

/* A signer certificate whose RSA key has a public exponent over 2^32, and
 * one just within: the first is refused before any verification. */
START_TEST(mdm_signature_key_bounds)
{
    static const char *const exponents[] = { "100000001", "FFFFFFFF" };
    int i;

    for (i = 0; i < 2; i++) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
        BIGNUM *e = NULL;
        EVP_PKEY *key = NULL;
        X509 *cert, *got;

        ck_assert_int_gt(BN_hex2bn(&e, exponents[i]), 0);
        ck_assert(ctx && EVP_PKEY_keygen_init(ctx) == 1
                  && EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, 1024) == 1
                  && EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e) == 1
                  && EVP_PKEY_keygen(ctx, &key) == 1);
        cert = unit_cert(key, "big exponent", NULL, NULL, 0);
        got = VERIFY(sign(BODY, cert, key, 0), BODY);
        if (i == 0)
            REFUSED(got, "exponent is over 2^32");
        else {
            ck_assert_msg(got != NULL, "refused: %s", why);
            X509_free(got);
        }
        X509_free(cert);
        EVP_PKEY_free(key);
        BN_free(e);
        EVP_PKEY_CTX_free(ctx);
    }
}
END_TEST

/* ---- proxy header forms -------------------------------------------------- */

static const char *cert_pem(X509 *cert)
{
    BIO *b = BIO_new(BIO_s_mem());
    char *data;
    long n;
    const char *s;

    ck_assert_int_eq(PEM_write_bio_X509(b, cert), 1);
    n = BIO_get_mem_data(b, &data);
    s = apr_pstrmemdup(pool, data, (apr_size_t)n);
    BIO_free(b);
    return s;
}

static const char *cert_b64(X509 *cert)
{
    unsigned char *der = NULL;
    int n = i2d_X509(cert, &der);
    const char *s = b64(der, n);

    OPENSSL_free(der);
    return s;
}

/* Every byte but [A-Za-z0-9] escaped (as nginx's escape_uri does more). */
static const char *url_escape(const char *in)
{
    char *out = apr_palloc(pool, strlen(in) * 3 + 1), *o = out;

    for (; *in; in++) {
        if ((*in >= 'a' && *in <= 'z') || (*in >= 'A' && *in <= 'Z')
            || (*in >= '0' && *in <= '9') || *in == '+' || *in == '/')
            *o++ = *in;
        else
            o += sprintf(o, "%%%02X", (unsigned char)*in);
    }
    *o = '\0';
    return out;
}

#define PARSE(value) gt_proxy_cert_parse(pool, (value), &der, &der_len, &why)
#define ACCEPTED(value, cert) do { \
        X509 *got_ = PARSE(value); \
        ck_assert_msg(got_ != NULL, "refused (%s): %.60s", why, (value)); \
        ck_assert_int_eq(X509_cmp(got_, (cert)), 0); \
        der_is(der, der_len, (cert)); \
        X509_free(got_); \
    } while (0)

START_TEST(proxy_forms)
{
    const char *pem = cert_pem(pair.cert_b);
    char *spaced = apr_pstrdup(pool, pem), *p;

    ACCEPTED(apr_pstrcat(pool, ":", cert_b64(pair.cert_a), ":", NULL),
             pair.cert_a);
    ACCEPTED(apr_pstrcat(pool, "  :", cert_b64(pair.cert_b), ":  ", NULL),
             pair.cert_b);
    ACCEPTED(cert_b64(pair.cert_a), pair.cert_a);
    ACCEPTED(pem, pair.cert_b);
    ACCEPTED(url_escape(pem), pair.cert_b);
    /* '+' and '/' left as they are, the rest %-escaped */
    ACCEPTED(url_escape(cert_pem(pair.cert_a)), pair.cert_a);
    for (p = spaced; *p; p++)
        if (*p == '\n')
            *p = ' ';
    ACCEPTED(spaced, pair.cert_b);
}
END_TEST

START_TEST(proxy_refused)
{
    const char *b = cert_b64(pair.cert_a), *pem = cert_pem(pair.cert_a);
    unsigned char *raw = NULL, *longer;
    int n = i2d_X509(pair.cert_a, &raw);

    REFUSED(PARSE(""), "empty");
    REFUSED(PARSE(apr_pstrcat(pool, ":", b, NULL)), "RFC 9440");
    REFUSED(PARSE(apr_pstrcat(pool, ":", b, ":, :", b, ":", NULL)), "RFC 9440");
    REFUSED(PARSE("::"), "RFC 9440");
    REFUSED(PARSE(":aGVsbG8=:"), "not a DER X.509");
    REFUSED(PARSE("hello world"), "neither");
    REFUSED(PARSE(apr_pstrcat(pool, pem, pem, NULL)), "more than one");
    REFUSED(PARSE(url_escape(apr_pstrcat(pool, pem, pem, NULL))), "more than one");
    REFUSED(PARSE(apr_pstrcat(pool, pem, "junk", NULL)), "follows");
    REFUSED(PARSE("-----BEGIN CERTIFICATE-----\nAAAA\n"), "END");
    REFUSED(PARSE("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----"),
            "not base64");
    REFUSED(PARSE("-----BEGIN%20CERTIFICATE%2"), "escape");
    REFUSED(PARSE("-----BEGIN%zzCERTIFICATE"), "escape");
    REFUSED(PARSE("x%00y"), "escape");
    longer = apr_palloc(pool, (apr_size_t)n + 2);
    memcpy(longer, raw, (size_t)n);
    longer[n] = 0x05;
    longer[n + 1] = 0x00;
    REFUSED(PARSE(b64(longer, n + 2)), "follow");
    OPENSSL_free(raw);
}
END_TEST

Suite *identity_suite(void)
{
    UNIT_SUITE("identity", setup, teardown, 30,
               mdm_signature_ec_and_rsa, mdm_signature_other_bytes,
               mdm_signature_garbage, mdm_signature_trailing_bytes,
               mdm_signature_shapes, mdm_signature_key_bounds, proxy_forms,
               proxy_refused);
}
