/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* Unit tests of core/gt_machineinfo.c: a watch's MachineInfo, bare or in
 * a CMS SignedData, with and without a CA; the token-missing answer. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "apr_general.h"
#include "apr_pools.h"
#include "apr_strings.h"

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/rsa.h>
#include <openssl/cms.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <plist/plist.h>

#include "core/gt_machineinfo.h"
#include "unit.h"
#include "unit_cert.h"

static apr_pool_t *pool;
static unit_signers pair;
/* what the parse under test gives back */
static gt_machineinfo mi;
static const char *why;

static void setup(void)
{
    pool = unit_signers_make(&pair);
    why = NULL;
}

static void teardown(void) { unit_signers_free(&pair); }

/* A MachineInfo dict; token NULL: no PAIRING_TOKEN.  extra keys padding. */
static plist_t mi_dict(const char *product, const char *udid,
                       const char *token, int extra)
{
    plist_t d = plist_new_dict();
    int i;

    if (udid)
        plist_dict_set_item(d, "UDID", plist_new_string(udid));
    plist_dict_set_item(d, "SERIAL", plist_new_string("FH7Q2XXXXX"));
    if (product)
        plist_dict_set_item(d, "PRODUCT", plist_new_string(product));
    plist_dict_set_item(d, "VERSION", plist_new_string("21R5320"));
    if (token)
        plist_dict_set_item(d, "PAIRING_TOKEN",
                            plist_new_data(token, strlen(token)));
    for (i = 0; i < extra; i++)
        plist_dict_set_item(d, apr_psprintf(pool, "K%d", i),
                            plist_new_string("v"));
    return d;
}

/* DER CMS SignedData over content: attached unless detached. */
static const char *sign(const char *content, apr_size_t len, X509 *cert,
                        EVP_PKEY *key, int detached, apr_size_t *out_len)
{
    BIO *in = BIO_new_mem_buf(content, (int)len);
    CMS_ContentInfo *cms = CMS_sign(cert, key, NULL, in,
                                    CMS_BINARY | (detached ? CMS_DETACHED : 0));
    unsigned char *der = NULL;
    int n;
    const char *copy;

    ck_assert_ptr_nonnull(cms);
    n = i2d_CMS_ContentInfo(cms, &der);
    ck_assert_int_gt(n, 0);
    copy = apr_pmemdup(pool, der, (apr_size_t)n);
    OPENSSL_free(der);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    *out_len = (apr_size_t)n;
    return copy;
}

static gt_machineinfo_result parse(const char *buf, apr_size_t len,
                                   X509_STORE *ca)
{
    return gt_machineinfo_parse(pool, buf, len, ca, &mi, &why);
}

/* The plist d (freed), unsigned, as XML or binary, parsed without a CA. */
static gt_machineinfo_result parse_dict(plist_t d, int binary)
{
    apr_size_t len;
    const char *buf = unit_plist_bytes(pool, d, binary, &len);

    return parse(buf, len, NULL);
}

/* A CA file holding cert; its path (removed at teardown of the pool). */
static const char *ca_file(X509 *cert)
{
    char *path = apr_pstrdup(pool, "/tmp/gt-unit-ca-XXXXXX");
    int fd = mkstemp(path);
    FILE *f;

    ck_assert_int_ge(fd, 0);
    f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    if (cert)
        ck_assert_int_eq(PEM_write_X509(f, cert), 1);
    fclose(f);
    return path;
}

START_TEST(bare_watch_both_forms)
{
    int binary;

    for (binary = 0; binary < 2; binary++) {
        ck_assert_int_eq(parse_dict(mi_dict("Watch6,1", "00008301-AB", NULL, 0),
                                    binary), GT_MI_WATCH);
        ck_assert_str_eq(mi.udid, "00008301-AB");
        ck_assert_str_eq(mi.product, "Watch6,1");
        ck_assert_str_eq(mi.serial, "FH7Q2XXXXX");
        ck_assert_str_eq(mi.version, "21R5320");
        ck_assert_ptr_null(mi.pairing_token);
        ck_assert_int_eq(mi.is_signed, 0);

        ck_assert_int_eq(parse_dict(mi_dict("Watch7,3", "W2", "a.b.c", 0),
                                    binary), GT_MI_WATCH);
        ck_assert_str_eq(mi.pairing_token, "a.b.c");
    }
}
END_TEST

START_TEST(not_a_watch)
{
    ck_assert_int_eq(parse_dict(mi_dict("iPhone15,2", "U", "a.b.c", 0), 0),
                     GT_MI_NOT_WATCH);
    ck_assert_str_eq(mi.product, "iPhone15,2");
    ck_assert_int_eq(parse_dict(mi_dict("Mac14,2", "U", NULL, 0), 1),
                     GT_MI_NOT_WATCH);
    ck_assert_int_eq(parse_dict(mi_dict("iPad13,4", "U", NULL, 0), 1),
                     GT_MI_NOT_WATCH);
}
END_TEST

/* "watch" in any case, anywhere in PRODUCT, is a watch */
START_TEST(product_case_insensitive)
{
    static const char *const products[] = {
        "watch6,1", "WATCH6,1", "wAtCh7,3", "AppleWatch6,1", "Watch"
    };
    apr_size_t i;
    int binary;

    for (i = 0; i < sizeof(products) / sizeof(products[0]); i++)
        for (binary = 0; binary < 2; binary++) {
            ck_assert_int_eq(parse_dict(mi_dict(products[i], "W", NULL, 0),
                                        binary), GT_MI_WATCH);
            ck_assert_str_eq(mi.product, products[i]);
        }
}
END_TEST

static gt_machineinfo_result parse_text(const char *text)
{
    return parse(text, strlen(text), NULL);
}

#define XML_HEAD "<?xml version=\"1.0\"?><plist version=\"1.0\"><dict>"
#define XML_TAIL "</dict></plist>"

/* The same watch written with every XML device libplist decodes: the gate
 * decides on the decoded value. */
START_TEST(xml_encodings_decoded)
{
    static const char *const watches[] = {
        "<key>PRODUCT</key><string>&#87;atch6,1</string>",
        "<key>PRODUCT</key><string>&#x57;atch6,1</string>",
        "<key>PRODUCT</key><string>&#119;&#x61;tch6,1</string>",
        "<key>PRODUCT</key><string><![CDATA[Watch]]>6,1</string>",
        "<key>PRODUCT</key><string>Wa<!-- - -->tch6,1</string>",
        "<key>PRO&#68;UCT</key><string>Watch6,1</string>",
    };
    apr_size_t i;

    for (i = 0; i < sizeof(watches) / sizeof(watches[0]); i++)
        ck_assert_int_eq(parse_text(apr_pstrcat(pool, XML_HEAD,
                                                "<key>UDID</key><string>W</string>",
                                                watches[i], XML_TAIL, NULL)),
                         GT_MI_WATCH);
}
END_TEST

/* Bodies that are no MachineInfo the gate can read: refused, not passed. */
START_TEST(unreadable_refused)
{
    static const char *const bodies[] = {
        "{\"PRODUCT\":\"iPhone15,2\",\"UDID\":\"X\"}", "a=1&b=2", "", "bplist0",
        "<html><body>hello</body></html>",
        /* no PRODUCT, no UDID, PRODUCT not a string or not printable */
        XML_HEAD "<key>UDID</key><string>U</string>" XML_TAIL,
        XML_HEAD "<key>PRODUCT</key><string>iPhone15,2</string>" XML_TAIL,
        XML_HEAD "<key>UDID</key><string>U</string>"
            "<key>PRODUCT</key><data>V2F0Y2g2LDE=</data>" XML_TAIL,
        XML_HEAD "<key>UDID</key><string>U</string>"
            "<key>PRODUCT</key><string> iPhone15,2</string>" XML_TAIL,
        XML_HEAD "<key>UDID</key><string>U</string>"
            "<key>PRODUCT</key><string>&#xff37;atch6,1</string>" XML_TAIL,
        /* keys a case-insensitive reader could take for PRODUCT or UDID */
        XML_HEAD "<key>UDID</key><string>U</string>"
            "<key>PRODUCT</key><string>iPhone15,2</string>"
            "<key>product</key><string>Watch6,1</string>" XML_TAIL,
        XML_HEAD "<key>UDID</key><string>U</string>"
            "<key>PRODUCT</key><string>iPhone15,2</string>"
            "<key>Product</key><string>iPhone15,2</string>" XML_TAIL,
        XML_HEAD "<key>UDID</key><string>U</string>"
            "<key>PRODUCT</key><string>iPhone15,2</string>"
            "<key>PRODUCT</key><string>Watch6,1</string>" XML_TAIL,
        XML_HEAD "<key>udid</key><string>U</string>"
            "<key>PRODUCT</key><string>iPhone15,2</string>" XML_TAIL,
        /* not a dict */
        "<?xml version=\"1.0\"?><plist version=\"1.0\"><array/></plist>",
    };
    apr_size_t i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        why = NULL;
        ck_assert_msg(parse_text(bodies[i]) == GT_MI_INVALID, "body %u",
                      (unsigned)i);
        ck_assert_ptr_nonnull(why);
        ck_assert(*why);
    }
}
END_TEST

START_TEST(udid_validated)
{
    static const char *const bad[] = {
        "", "a\x01" "b", "tab\there", "del\x7f", "\xc2\x85" "nel",
        "\xff\xfe", "\xc0\xaf", "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "abc\xe2\x82",
    };
    char longest[GT_MI_MAX_UDID + 2];
    apr_size_t i;
    int binary;

    ck_assert_int_eq(gt_machineinfo_udid_ok("00008301-001A2B3C4D5E6F70"), 1);
    {
        /* raw bytes in a binary plist's ASCII string object */
        apr_size_t len;
        char *b = (char *)unit_plist_bytes(pool, mi_dict("Watch6,1", "ZZ", NULL, 0),
                                           1, &len);
        char *zz = memmem(b, len, "ZZ", 2);

        ck_assert_ptr_nonnull(zz);
        ck_assert_int_eq(parse(b, len, NULL), GT_MI_WATCH);
        memcpy(zz, "\xff\xfe", 2);
        ck_assert_int_eq(parse(b, len, NULL), GT_MI_INVALID);
    }
    ck_assert_int_eq(gt_machineinfo_udid_ok("\xc3\xa9t\xc3\xa9-\xe2\x82\xac-\xf0\x9f\x98\x80"), 1);
    memset(longest, 'A', sizeof(longest));
    longest[GT_MI_MAX_UDID] = '\0';
    ck_assert_int_eq(gt_machineinfo_udid_ok(longest), 1);
    longest[GT_MI_MAX_UDID] = 'A';
    longest[GT_MI_MAX_UDID + 1] = '\0';
    ck_assert_int_eq(gt_machineinfo_udid_ok(longest), 0);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(gt_machineinfo_udid_ok(bad[i]) == 0, "udid %u", (unsigned)i);
        /* a watch or not, such a UDID is not read */
        for (binary = 0; binary < 2; binary++) {
            /* libplist writes what is not UTF-8 as UTF-16 of something */
            if (!*bad[i] || (binary && (unsigned char)bad[i][0] >= 0x80))
                continue;
            ck_assert_msg(parse_dict(mi_dict("Watch6,1", bad[i], NULL, 0),
                                     binary) == GT_MI_INVALID, "udid %u %d",
                          (unsigned)i, binary);
            ck_assert_int_eq(parse_dict(mi_dict("iPhone15,2", bad[i], NULL, 0),
                                        binary), GT_MI_INVALID);
        }
    }
}
END_TEST

/* A watch's MachineInfo with key set to value: refused, the reason naming
 * why_has unless NULL. */
static void watch_value_refused(const char *key, plist_t value, int binary,
                                const char *why_has)
{
    plist_t d = mi_dict("Watch6,1", "W", NULL, 0);

    plist_dict_set_item(d, key, value);
    ck_assert_int_eq(parse_dict(d, binary), GT_MI_REFUSED);
    if (why_has)
        ck_assert_ptr_nonnull(strstr(why, why_has));
}

START_TEST(watch_values_refused)
{
    char big[GT_MI_MAX_TOKEN + 2];

    ck_assert_int_eq(parse_dict(mi_dict("Watch6,1", NULL, NULL, 0), 0),
                     GT_MI_INVALID);
    ck_assert_ptr_nonnull(strstr(why, "UDID"));

    watch_value_refused("PAIRING_TOKEN", plist_new_string("a.b.c"), 0,
                        "PAIRING_TOKEN");
    watch_value_refused("PAIRING_TOKEN", plist_new_data("a\0b", 3), 1, NULL);

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    ck_assert_int_eq(parse_dict(mi_dict("Watch6,1", "W", big, 0), 1),
                     GT_MI_REFUSED);

    watch_value_refused("SERIAL", plist_new_uint(7), 0, NULL);
}
END_TEST

START_TEST(over_bounds)
{
    int binary;

    for (binary = 0; binary < 2; binary++) {
        ck_assert_int_eq(parse_dict(mi_dict("Watch6,1", "W", NULL,
                                            GT_MI_MAX_OBJECTS), binary),
                         GT_MI_INVALID);
        ck_assert_ptr_nonnull(strstr(why, "objects"));
        /* nobody can tell what a reader behind the gate makes of it */
        ck_assert_int_eq(parse_dict(mi_dict("iPhone15,2", "P", NULL,
                                            GT_MI_MAX_OBJECTS), binary),
                         GT_MI_INVALID);
    }
}
END_TEST

/* A CMS built by OpenSSL from content, with `flags` and the content type
 * `econtent` (NID, or NID_undef for id-data), DER-encoded, or BER with
 * indefinite lengths when `streamed`. */
static const char *cms_made(const char *content, apr_size_t len, X509 *cert,
                            EVP_PKEY *key, int econtent, int streamed,
                            apr_size_t *out_len)
{
    BIO *in = BIO_new_mem_buf(content, (int)len), *out = BIO_new(BIO_s_mem());
    int flags = CMS_BINARY | CMS_PARTIAL | (streamed ? CMS_STREAM : 0);
    CMS_ContentInfo *cms = CMS_sign(cert, key, NULL, in, flags);
    char *data = NULL;
    long n;

    ck_assert_ptr_nonnull(cms);
    if (econtent != NID_undef)
        ck_assert_int_eq(CMS_set1_eContentType(cms, OBJ_nid2obj(econtent)), 1);
    if (streamed)
        ck_assert_int_eq(i2d_CMS_bio_stream(out, cms, in, flags), 1);
    else {
        ck_assert_int_eq(CMS_final(cms, in, NULL, flags), 1);
        ck_assert_int_eq(i2d_CMS_bio(out, cms), 1);
    }
    n = BIO_get_mem_data(out, &data);
    ck_assert_int_gt(n, 0);
    *out_len = (apr_size_t)n;
    data = apr_pmemdup(pool, data, (apr_size_t)n);
    CMS_ContentInfo_free(cms);
    BIO_free(in);
    BIO_free(out);
    return data;
}

START_TEST(signed_watch)
{
    const char *plist, *der;
    apr_size_t len, der_len;
    char *bad;

    plist = unit_plist_bytes(pool, mi_dict("Watch6,1", "W1", "t.o.k", 0), 0,
                             &len);
    der = sign(plist, len, pair.cert_a, pair.key_a, 0, &der_len);
    ck_assert_int_eq(parse(der, der_len, NULL), GT_MI_WATCH);
    ck_assert_int_eq(mi.is_signed, 1);
    ck_assert_str_eq(mi.udid, "W1");
    ck_assert_str_eq(mi.pairing_token, "t.o.k");

    /* one byte of the content changed: W1 -> W2 */
    bad = apr_pmemdup(pool, der, der_len);
    *((char *)memmem(bad, der_len, "W1<", 3) + 1) = '2';
    ck_assert_int_eq(parse(bad, der_len, NULL), GT_MI_REFUSED);
    ck_assert_ptr_nonnull(strstr(why, "does not verify"));

    /* a signed iPhone, whatever its signature, is not the gate's */
    plist = unit_plist_bytes(pool, mi_dict("iPhone15,2", "P", NULL, 0), 0,
                             &len);
    der = sign(plist, len, pair.cert_b, pair.key_b, 0, &der_len);
    ck_assert_int_eq(parse(der, der_len, NULL), GT_MI_NOT_WATCH);
    ck_assert_int_eq(mi.is_signed, 1);
    bad = apr_pmemdup(pool, der, der_len);
    *((char *)memmem(bad, der_len, "P<", 2)) = 'Q';
    ck_assert_int_eq(parse(bad, der_len, NULL), GT_MI_NOT_WATCH);
}
END_TEST

/* Every other CMS shape is refused, for a watch and for an iPhone alike. */
START_TEST(other_cms_shapes_refused)
{
    const char *products[] = { "Watch6,1", "iPhone15,2" };
    int i;

    for (i = 0; i < 2; i++) {
        apr_size_t len, der_len;
        const char *plist = unit_plist_bytes(pool, mi_dict(products[i], "U1",
                                                           NULL, 0), 0, &len);
        const char *der = sign(plist, len, pair.cert_a, pair.key_a, 0, &der_len);
        const char *x;
        char *bad;
        apr_size_t x_len;

        ck_assert_int_eq(parse(der, der_len, NULL),
                         i ? GT_MI_NOT_WATCH : GT_MI_WATCH);
        /* one byte after the ContentInfo */
        bad = apr_palloc(pool, der_len + 1);
        memcpy(bad, der, der_len);
        bad[der_len] = '\0';
        ck_assert_int_eq(parse(bad, der_len + 1, NULL), GT_MI_INVALID);
        /* cut short */
        ck_assert_int_eq(parse(der, der_len - 1, NULL), GT_MI_INVALID);
        /* detached */
        x = sign(plist, len, pair.cert_a, pair.key_a, 1, &x_len);
        ck_assert_int_eq(parse(x, x_len, NULL), GT_MI_INVALID);
        ck_assert_ptr_nonnull(strstr(why, "attached id-data"));
        /* another eContentType */
        x = cms_made(plist, len, pair.cert_a, pair.key_a, NID_id_smime_ct_TSTInfo,
                     0, &x_len);
        ck_assert_int_eq(parse(x, x_len, NULL), GT_MI_INVALID);
        /* the same as id-data, DER: fine; BER with indefinite lengths: not */
        x = cms_made(plist, len, pair.cert_a, pair.key_a, NID_undef, 0, &x_len);
        ck_assert_int_eq(parse(x, x_len, NULL), i ? GT_MI_NOT_WATCH : GT_MI_WATCH);
        x = cms_made(plist, len, pair.cert_a, pair.key_a, NID_undef, 1, &x_len);
        ck_assert_int_eq(parse(x, x_len, NULL), GT_MI_INVALID);
    }
}
END_TEST

/* An RSA key made with exponent e and `bits`. */
static EVP_PKEY *rsa_key(unsigned bits, const char *e_hex)
{
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_RSA, NULL);
    BIGNUM *e = NULL;
    EVP_PKEY *key = NULL;

    ck_assert_ptr_nonnull(ctx);
    ck_assert_int_gt(BN_hex2bn(&e, e_hex), 0);
    ck_assert_int_eq(EVP_PKEY_keygen_init(ctx), 1);
    ck_assert_int_eq(EVP_PKEY_CTX_set_rsa_keygen_bits(ctx, (int)bits), 1);
    ck_assert_int_eq(EVP_PKEY_CTX_set1_rsa_keygen_pubexp(ctx, e), 1);
    ck_assert_int_eq(EVP_PKEY_keygen(ctx, &key), 1);
    BN_free(e);
    EVP_PKEY_CTX_free(ctx);
    return key;
}

/* A 4104-bit RSA key for this test only, made once with openssl genpkey
 * (making one takes seconds, too long for a unit test under load). */
static const char rsa4104_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIJRgIBADANBgkqhkiG9w0BAQEFAASCCTAwggksAgEAAoICAgDZViSrqUvkd+a5\n"
    "brYdvvXqZRRhXXrJnbOA2uhCG15wq3vioZmnmnRhLo0YJ8DG5F0bgg8vwUfmTv/1\n"
    "eywzNJJ7V9pnnRfQXj6K5gG97zpDbY3TvisVUtdqHVHTDpyEJeMdagiz7WvftN2r\n"
    "yXjiv2e9zwmJOdX0icwabfpmVlpFss3oSZ/9/uUlG2WhdmhLD0W9Q+MzKEpFFGS/\n"
    "+H7JojDx963fJFZhPEtUZpJQ4u8IfLeRKDD8eAMn40DNO194bjqKr98ZNoDeqBKe\n"
    "yyybPOcxQMFuVEP53X8aKnN310MEklCOoTefaM8ss/F4gXu9k8Ydbty0deqqB4jD\n"
    "bxF5olRzU1Cb6I85Wm0TvJfhvdBO5wiEbhSfRbBH/N1T9F4sXl5DsfruPyPYESzc\n"
    "VCSR0F48y1nsx8htHQihn6LK8IyQeiS46j5MNPe5t4M3Vt9+m02UAXrVywm+L5ZQ\n"
    "6RJLuQohc4N02DRSQu/M0TFxfoPUPttxYqoFMexyu89c/3JgU1BUE9xYOW+FDqyY\n"
    "oCjUNpFPkkYIR+c1fQTiPFGk598IBQpPocB4RJYB6a2hXU+PsuRe0oaTLCXelpdG\n"
    "xkZORaxuV+1p0hbH+qSx30Mzpwpwa+oiO0iSqvo2pN6ZOCHJ+jWKhJFNNBLy7+yc\n"
    "1RUH+UYPk35NTj6BUQLxZAcXzj71nKkCAwEAAQKCAgEtrffmJp6fZf4WAml/pgfM\n"
    "3LLkZf/tSVqVni0L2/HFD53pu9puSj3kwSKBrbVMeGoDYporiN3CT99napyXJJkX\n"
    "GJd8iJ2dO3m8uuwpzhK6YlfZZdJrWG6TTJdKm3sVIVtzbrpmiuPN8JdYyG9ChUVa\n"
    "NR5Fe+T20VGXSn9DLCosFRFHHdZlTcI+wtvhDGCOSib3yUGDGphFnawxVxra6V6N\n"
    "NOgUCvCm3kPc+PQO0Su5ZnE0rrRhFB5hr1eK60w9JTnjtWRYScbbRYsoWf7FoA7d\n"
    "oMUnGcnxxfa1eq+rRBC/cLtCxyrINAC7XhTGJbzq0xjkTc1QlqocU5oQrZMINDC4\n"
    "yFl4ST/+yTiUJ+xhd/2E1IOXU+RB5Y9n9mx9pYFgoRuqLsl8QZLiW52uS34NNbq5\n"
    "LmPdfAXSBLH9XTuNHEgqEp7gBcVdV/cRbN5kSWpIk1GHyr4V+cm16mDtU0dkJNGW\n"
    "kYmJtz3e5hzdKA3gzJA8RaGHZxlLrPKmgGwnov6Xto8NEVEZuI3sCX35ZFOEeZ89\n"
    "Di1Xgesq2PjckJVnZBlFvW6BA7Kc3YfOzzoUbOf9htsoa0i0N2rnpVkRs8N6uK2D\n"
    "JXixKmi1Bjo24159RbVcRTVleEdFuH0KEhXVM+6Ujv3O3OdOrCOhKeSdy9BRtEYu\n"
    "hpKOIKfBGnrdoam5YjyGSjsCggEBD285XiYqvwaRVouaYbk8LgVA/ZS11vMMaKaG\n"
    "Q+TZgNy/sepuXmYza5hSnj6ZKrRTHhi0MJUqb97zf1SyrnS4uwL5mwTl8EaBzl0a\n"
    "FS4gden0wbQW5Rd9gyo4VFocN32xRamQrSiOJf/DR3cxivMFtHxfKfDOmuWfymmx\n"
    "KRcXKwTUdiVcZxaMpCNcTfIyoLSbIxoRVMXVFNQnhDH/OU0aQnk+Hp2bbA16RFmy\n"
    "WaV4EAFhOVXIu3CKiWe2Y7LQh26KrTucqs5nNrzfCjGAjOBtHyex8OUVcv88H/fP\n"
    "CSYmC8YE5t+aW14H/Nj3MZ98jwNLbd6JxsDhghxD1yqT92jV2NsCggEBDhTMSR2l\n"
    "wV9Klm76DFnjyRcdf5RxZ4EEReD+ssAJkObwL1BZA/KVf/2/6SGDmjnRkeDLdhES\n"
    "jNMcHiaYWXyTlwH0c2SSChE7G8mMaH9FmkJmMnsjOQcCJHTysQLfAD0Zw/hUM/l3\n"
    "aaumBDiYBJICMz+PQA+XbqUAn6qaJp8IpVSQz0mN2dgNqRV7DwoTwpoJcaU88g74\n"
    "8PtaNT+HxOpgydtV2IXdOWLcZKBCeuhkBhS/PL8FtK5SEUehd8TfOmndZ2aozvgG\n"
    "1VV7i8WcFxhZIjl5APRcGGGFRd8/iLTXOY8XZLDJWqEZt+pPcTi5gRqd7AvJKBiE\n"
    "RSPNWUf913ORJcsCggEBB8FovzFIe3JuZ2GAsqgkYC+Np54o/Rhl3NQIVWdSD5lc\n"
    "zaaxzMdoASGqKg/kYPv5Y/8f0+WwTERocEv7+QN3q6jkCYwdim2zXiGUMJ5b+0QT\n"
    "E55NftId5GG7qk8ZLJ0BDbMVmpztSJTK6EcxYtOYw0dXfjidaGIHt+sB9Va/8oLb\n"
    "y34cf0RqaTPHdvdDj1MRPUMlAEbkOjIcpSWGTKG8lzhbCYFCjrn6/QthPgCSYuB+\n"
    "nRPI6L61LjQqBtDcTaEzF7cDkyRh4rRnErUrFh7TVjtZA2XpMD6mVJ3tr3g21+Wp\n"
    "ouUqp8yJEPloxMuSCD6skUmoS3GyHvHa+OxRK5nHEs8CggEBCLvbraoG6na5Y683\n"
    "xrtmbo64zC39XO6IAPO55pL4G/kxlpcmby1ijv2LsAUKhHlCRFICwJt8Pv6eHRFh\n"
    "Q3fibzJWNdB2SGpBmE2dmh7+w9xVWRBJW5C+QnCLK0GVoadEOOnpCEe+SjueAFY9\n"
    "6+/ID5NnvZsuGQGc7mu5qyTPDwTxwLBlnG3Go05ggoaElRpHq0aLE7Q3sfilDgv2\n"
    "oSuilvFFQMRe374y5vMD6QoFKERsDTiKSHQrEO619vyUXL3XBtCE+cKbMm0P8TTD\n"
    "SQvgFTtCk1X9XV33dMwwsxE/wULAhsKkUWNE+W8KkTZW0P36X7M7tHPobp3zO2JM\n"
    "zvquV5sCggEBAO0/n4Da+IpU/pEFim2Z6hZJb0O/49+0zhQhvaKvLmdowNR0qR4G\n"
    "og/3bke/k5hzPEOUpyh+jW/v7soRU+lmWFJQJkG0Q5PS9koZxLuoo4oJfZEMA20c\n"
    "dQr/azqEkfDG/OKVESUw5GNObImBTbbwobAR/EVxfCjBimZZ5o0IfGxVNAbkpJh+\n"
    "G3208R2vNXyAkq2lERg0Qv76VkvdjKMuhjTfedo5AWiiQGAb8QPRFpvveRbAX0S8\n"
    "pZWI4r4Bj9N5jX/+Vy2pAiS1JVYHAE/D2TO91YmzEcquri/beteFOj0F2qh1ETSE\n"
    "ZVQnRxKxktd4ekfczsrDihfjXTPM0GQvPL8=\n"
    "-----END PRIVATE KEY-----\n";

static EVP_PKEY *rsa4104(void)
{
    BIO *in = BIO_new_mem_buf(rsa4104_pem, -1);
    EVP_PKEY *key = PEM_read_bio_PrivateKey(in, NULL, NULL, NULL);

    ck_assert_ptr_nonnull(key);
    BIO_free(in);
    return key;
}

/* Keys that make verification expensive are refused before it. */
START_TEST(signer_keys_bounded)
{
    static const struct { unsigned bits; const char *e; int ok; } keys[] = {
        { 1024, "10001", 1 },
        { 1024, "100000001", 0 },          /* 2^32 + 1 */
        { 1024, "FFFFFFFF", 1 },           /* 2^32 - 1 */
        { 4104, "10001", 0 },
    };
    apr_size_t len, der_len, i;
    const char *plist = unit_plist_bytes(pool, mi_dict("Watch6,1", "W1", NULL,
                                                       0), 0, &len);

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        EVP_PKEY *key = keys[i].bits > 4096 ? rsa4104()
                                            : rsa_key(keys[i].bits, keys[i].e);
        X509 *cert = unit_cert(key, "rsa signer", NULL, NULL, 0);
        const char *der = sign(plist, len, cert, key, 0, &der_len);

        ck_assert_int_eq(parse(der, der_len, NULL),
                         keys[i].ok ? GT_MI_WATCH : GT_MI_REFUSED);
        if (!keys[i].ok)
            ck_assert_ptr_nonnull(strstr(why, keys[i].bits > 4096
                                              ? "4096" : "exponent"));
        X509_free(cert);
        EVP_PKEY_free(key);
    }
}
END_TEST

START_TEST(signed_with_ca)
{
    const char *plist, *der;
    apr_size_t len, der_len;
    const char *path = ca_file(pair.cert_a);
    X509_STORE *ca = gt_machineinfo_ca_load(pool, path, &why);

    unlink(path);
    ck_assert_ptr_nonnull(ca);
    plist = unit_plist_bytes(pool, mi_dict("Watch6,1", "W1", NULL, 0), 1,
                             &len);
    der = sign(plist, len, pair.cert_a, pair.key_a, 0, &der_len);
    ck_assert_int_eq(parse(der, der_len, ca), GT_MI_WATCH);
    der = sign(plist, len, pair.cert_b, pair.key_b, 0, &der_len);
    ck_assert_int_eq(parse(der, der_len, ca), GT_MI_REFUSED);
    ck_assert_ptr_nonnull(strstr(why, "GetTokenWatchEnrollmentCA"));
    /* unsigned: the CA cannot be satisfied */
    ck_assert_int_eq(parse(plist, len, ca), GT_MI_REFUSED);
    ck_assert_ptr_nonnull(strstr(why, "not signed"));
}
END_TEST

START_TEST(ca_load_refused)
{
    const char *empty = ca_file(NULL);

    ck_assert_ptr_null(gt_machineinfo_ca_load(pool, empty, &why));
    ck_assert_ptr_nonnull(strstr(why, "no PEM certificate"));
    unlink(empty);
    ck_assert_ptr_null(gt_machineinfo_ca_load(pool, "/nonexistent/ca.pem", &why));
}
END_TEST

/* The same inputs give the same token, any other input another one; each
 * is a UUID v4. */
START_TEST(security_tokens_derived)
{
    static const unsigned char key[32] = { 1, 2, 3 }, other_key[32] = { 9 };
    char a[GT_UUID_SIZE], b[GT_UUID_SIZE];
    int i;

    ck_assert_int_eq(gt_machineinfo_security_token(key, sizeof(key), "W1", 100, 0, a), 0);
    ck_assert_int_eq(gt_machineinfo_security_token(key, sizeof(key), "W1", 100, 0, b), 0);
    ck_assert_str_eq(a, b);
    ck_assert_uint_eq(strlen(a), GT_UUID_LEN);
    ck_assert(a[8] == '-' && a[13] == '-' && a[18] == '-' && a[23] == '-');
    ck_assert(a[14] == '4' && strchr("89ab", a[19]));
    for (i = 0; i < GT_UUID_LEN; i++)
        ck_assert(strchr("0123456789abcdef-", a[i]));
    ck_assert_int_eq(gt_machineinfo_security_token(key, sizeof(key), "W1", 100, 1, b), 0);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(gt_machineinfo_security_token(key, sizeof(key), "W1", 101, 0, b), 0);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(gt_machineinfo_security_token(key, sizeof(key), "W2", 100, 0, b), 0);
    ck_assert_str_ne(a, b);
    ck_assert_int_eq(gt_machineinfo_security_token(other_key, sizeof(other_key), "W1", 100, 0,
                                                   b), 0);
    ck_assert_str_ne(a, b);
    /* the UDID ends where the window starts: "W1" + "0..." is not "W10" + "..." */
    ck_assert_int_eq(gt_machineinfo_security_token(key, sizeof(key), "W10", 0, 0, a), 0);
    ck_assert_int_eq(gt_machineinfo_security_token(key, sizeof(key), "W1", 0, 0, b), 0);
    ck_assert_str_ne(a, b);
}
END_TEST

START_TEST(token_missing_documents)
{
    static const char *const token = "0f8e2a4c-3b1d-4e5f-9a6b-7c8d9e0f1a2b";
    apr_size_t len;
    const char *json = gt_machineinfo_token_missing(pool, token, 0, &len);
    const char *xml;
    plist_t root = NULL, details;
    char *s = NULL;

    ck_assert_str_eq(json, "{\"code\":\"com.apple.watch.pairing.token.missing\","
                           "\"details\":{\"security-token\":"
                           "\"0f8e2a4c-3b1d-4e5f-9a6b-7c8d9e0f1a2b\"}}");
    ck_assert_uint_eq(len, strlen(json));

    xml = gt_machineinfo_token_missing(pool, token, 1, &len);
    plist_from_xml(xml, (uint32_t)len, &root);
    ck_assert_ptr_nonnull(root);
    plist_get_string_val(plist_dict_get_item(root, "code"), &s);
    ck_assert_str_eq(s, "com.apple.watch.pairing.token.missing");
    free(s);
    details = plist_dict_get_item(root, "details");
    ck_assert_ptr_nonnull(details);
    plist_get_string_val(plist_dict_get_item(details, "security-token"), &s);
    ck_assert_str_eq(s, token);
    free(s);
    plist_free(root);
}
END_TEST

START_TEST(accept_preference)
{
    ck_assert_int_eq(gt_machineinfo_wants_plist(NULL), 0);
    ck_assert_int_eq(gt_machineinfo_wants_plist("application/json"), 0);
    ck_assert_int_eq(gt_machineinfo_wants_plist("*/*"), 0);
    ck_assert_int_eq(gt_machineinfo_wants_plist("application/json, application/xml"), 0);
    ck_assert_int_eq(gt_machineinfo_wants_plist("application/x-apple-plist"), 1);
    ck_assert_int_eq(gt_machineinfo_wants_plist(" Application/XML;q=1, */*"), 1);
    ck_assert_int_eq(gt_machineinfo_wants_plist("text/xml"), 1);
    ck_assert_int_eq(gt_machineinfo_wants_plist("application/xml-dtd"), 0);
}
END_TEST

Suite *machineinfo_suite(void)
{
    Suite *s = suite_create("machineinfo");
    TCase *tc = tcase_create("machineinfo");

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, bare_watch_both_forms);
    tcase_add_test(tc, not_a_watch);
    tcase_add_test(tc, product_case_insensitive);
    tcase_add_test(tc, xml_encodings_decoded);
    tcase_add_test(tc, unreadable_refused);
    tcase_add_test(tc, udid_validated);
    tcase_add_test(tc, watch_values_refused);
    tcase_add_test(tc, over_bounds);
    tcase_add_test(tc, signed_watch);
    tcase_add_test(tc, other_cms_shapes_refused);
    tcase_add_test(tc, signer_keys_bounded);
    tcase_add_test(tc, signed_with_ca);
    tcase_add_test(tc, ca_load_refused);
    tcase_add_test(tc, security_tokens_derived);
    tcase_add_test(tc, token_missing_documents);
    tcase_add_test(tc, accept_preference);
    suite_add_tcase(s, tc);
    return s;
}
