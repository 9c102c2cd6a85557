/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_cms.c - a SignedData's shape and keys (see gt_cms.h).
 */
#include "gt_cms.h"
#include "gt_cert.h"

#include <string.h>

#include "apr_strings.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#define TAG_INTEGER      0x02
#define TAG_OCTET_STRING 0x04
#define TAG_OID          0x06
#define TAG_SEQUENCE     0x30
#define TAG_SET          0x31
#define TAG_CONTEXT_0    0xa0     /* [0], constructed */
#define TAG_CONTEXT_1    0xa1     /* [1], constructed */

/* 1.2.840.113549.1.7.2 and .1, contents octets */
static const unsigned char oid_signed_data[] = {
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02
};
static const unsigned char oid_data[] = {
    0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01
};

/* The next element of [*p, end) must have `tag`; its content. */
static int expect(const unsigned char **p, const unsigned char *end,
                  unsigned char tag, const unsigned char **c, apr_size_t *n)
{
    unsigned char got;

    return gt_der_next(p, end, &got, c, n) == 0 && got == tag ? 0 : -1;
}

static int is_oid(const unsigned char *c, apr_size_t n,
                  const unsigned char *oid, apr_size_t oid_len)
{
    return n == oid_len && memcmp(c, oid, oid_len) == 0;
}

/* The whole of [p, end) is one element of `tag`; its content. */
static int only(const unsigned char *p, const unsigned char *end,
                unsigned char tag, const unsigned char **c, apr_size_t *n)
{
    return expect(&p, end, tag, c, n) == 0 && p == end ? 0 : -1;
}

int gt_cms_attached_data(const unsigned char *der, apr_size_t len,
                         const unsigned char **content,
                         apr_size_t *content_len, const char **why)
{
    const unsigned char *p, *end, *c, *e, *sd_end;
    apr_size_t n, en;
    unsigned char tag;

    *why = "not a DER CMS ContentInfo filling the body";
    if (only(der, der + len, TAG_SEQUENCE, &c, &n) != 0)
        return -1;
    p = c;
    end = c + n;
    *why = "a CMS structure other than SignedData";
    if (expect(&p, end, TAG_OID, &c, &n) != 0
        || !is_oid(c, n, oid_signed_data, sizeof(oid_signed_data))
        || only(p, end, TAG_CONTEXT_0, &c, &n) != 0
        || only(c, c + n, TAG_SEQUENCE, &c, &n) != 0)
        return -1;
    p = c;
    sd_end = c + n;
    *why = "a SignedData without version and digest algorithms";
    if (expect(&p, sd_end, TAG_INTEGER, &c, &n) != 0
        || expect(&p, sd_end, TAG_SET, &c, &n) != 0)
        return -1;
    /* encapContentInfo { eContentType, [0] EXPLICIT eContent } */
    *why = "a SignedData whose content is not attached id-data";
    if (expect(&p, sd_end, TAG_SEQUENCE, &c, &n) != 0)
        return -1;
    e = c;
    end = c + n;
    if (expect(&e, end, TAG_OID, &c, &en) != 0
        || !is_oid(c, en, oid_data, sizeof(oid_data))
        || only(e, end, TAG_CONTEXT_0, &c, &en) != 0
        || only(c, c + en, TAG_OCTET_STRING, content, content_len) != 0)
        return -1;
    /* certificates [0], crls [1], both optional; then signerInfos */
    *why = "a SignedData with elements out of place or missing signerInfos";
    if (gt_der_next(&p, sd_end, &tag, &c, &n) != 0)
        return -1;
    if (tag == TAG_CONTEXT_0 && gt_der_next(&p, sd_end, &tag, &c, &n) != 0)
        return -1;
    if (tag == TAG_CONTEXT_1 && gt_der_next(&p, sd_end, &tag, &c, &n) != 0)
        return -1;
    if (tag != TAG_SET || p != sd_end)
        return -1;
    *why = NULL;
    return 0;
}

/* ---- keys ----------------------------------------------------------------- */

#define MAX_CERTS 16

static const char *rsa_bounded(apr_pool_t *pool, EVP_PKEY *key)
{
    BIGNUM *e = NULL, *limit = BN_new();
    int bits = EVP_PKEY_get_bits(key), ok;

    if (bits <= 0 || bits > GT_CMS_MAX_RSA_BITS) {
        BN_free(limit);
        return apr_psprintf(pool, "a %d-bit RSA key (at most %d accepted)",
                            bits, GT_CMS_MAX_RSA_BITS);
    }
    ok = limit && BN_set_word(limit, 1) && BN_lshift(limit, limit, 32)
         && EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &e) == 1
         && BN_cmp(e, limit) <= 0;
    BN_free(e);
    BN_free(limit);
    return ok ? NULL : "an RSA key whose public exponent is over 2^32";
}

static const char *key_bounded(apr_pool_t *pool, EVP_PKEY *key)
{
    if (!key)
        return "a certificate whose public key cannot be read";
    switch (EVP_PKEY_get_base_id(key)) {
    case EVP_PKEY_RSA:
    case EVP_PKEY_RSA_PSS:
        return rsa_bounded(pool, key);
    case EVP_PKEY_EC:
        return EVP_PKEY_get_bits(key) > 0 && EVP_PKEY_get_bits(key) <= 521
               ? NULL : "an EC key on a curve over 521 bits";
    case EVP_PKEY_ED25519:
    case EVP_PKEY_ED448:
        return NULL;
    default:
        return "a key that is neither RSA, EC nor EdDSA";
    }
}

int gt_cms_keys_bounded(apr_pool_t *pool, CMS_ContentInfo *cms,
                        const char **why)
{
    STACK_OF(X509) *certs = CMS_get1_certs(cms);
    int i, n = certs ? sk_X509_num(certs) : 0;

    *why = NULL;
    if (n > MAX_CERTS)
        *why = apr_psprintf(pool, "%d certificates (at most %d accepted)", n,
                            MAX_CERTS);
    for (i = 0; i < n && !*why; i++)
        *why = key_bounded(pool, X509_get0_pubkey(sk_X509_value(certs, i)));
    sk_X509_pop_free(certs, X509_free);
    ERR_clear_error();
    return *why ? -1 : 0;
}
