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
    static const char *const others[] = {
        "{\"PRODUCT\":\"Watch6,1\",\"UDID\":\"X\"}",     /* JSON mentions Watch */
        "a=1&b=2", "", "bplist0", "<html><body>hello</body></html>",
    };
    apr_size_t i;

    ck_assert_int_eq(parse_dict(mi_dict("iPhone15,2", "U", "a.b.c", 0), 0),
                     GT_MI_NOT_WATCH);
    ck_assert_int_eq(parse_dict(mi_dict("Mac14,2", "U", NULL, 0), 1),
                     GT_MI_NOT_WATCH);
    ck_assert_int_eq(parse_dict(mi_dict(NULL, "U", NULL, 0), 0), GT_MI_NOT_WATCH);
    /* case counts */
    ck_assert_int_eq(parse_dict(mi_dict("watch6,1", "U", NULL, 0), 0),
                     GT_MI_NOT_WATCH);
    for (i = 1; i < sizeof(others) / sizeof(others[0]); i++)
        ck_assert_int_eq(parse(others[i], strlen(others[i]), NULL),
                         GT_MI_NOT_WATCH);
    /* not a plist, yet it names a watch: another parser might disagree */
    ck_assert_int_eq(parse(others[0], strlen(others[0]), NULL),
                     GT_MI_REFUSED);
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
                     GT_MI_REFUSED);
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
                         GT_MI_REFUSED);
        ck_assert_ptr_nonnull(strstr(why, "objects"));
        ck_assert_int_eq(parse_dict(mi_dict("iPhone15,2", "P", NULL,
                                            GT_MI_MAX_OBJECTS), binary),
                         GT_MI_NOT_WATCH);
    }
}
END_TEST

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

    /* bytes after the structure: not a SignedData we read, and naming a
     * watch it cannot pass unchecked */
    bad = apr_pstrcat(pool, apr_pstrmemdup(pool, der, der_len), "x", NULL);
    ck_assert_int_eq(parse(bad, der_len + 1, NULL), GT_MI_REFUSED);

    /* detached: no MachineInfo inside */
    der = sign(plist, len, pair.cert_a, pair.key_a, 1, &der_len);
    ck_assert_int_eq(parse(der, der_len, NULL), GT_MI_NOT_WATCH);

    /* a signed iPhone, whatever its signature, is not the gate's */
    plist = unit_plist_bytes(pool, mi_dict("iPhone15,2", "P", NULL, 0), 0,
                             &len);
    der = sign(plist, len, pair.cert_b, pair.key_b, 0, &der_len);
    ck_assert_int_eq(parse(der, der_len, NULL), GT_MI_NOT_WATCH);
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
    tcase_add_test(tc, watch_values_refused);
    tcase_add_test(tc, over_bounds);
    tcase_add_test(tc, signed_watch);
    tcase_add_test(tc, signed_with_ca);
    tcase_add_test(tc, ca_load_refused);
    tcase_add_test(tc, token_missing_documents);
    tcase_add_test(tc, accept_preference);
    suite_add_tcase(s, tc);
    return s;
}
