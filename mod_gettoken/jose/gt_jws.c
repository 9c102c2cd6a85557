/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_jws.c - compact JWS signing (RS256, ES256) and strict verification.
 */
#include "gt_jws.h"

#include <string.h>

#include "apr_strings.h"

#include "gt_b64url.h"
#include "gt_json.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/ecdsa.h>
#include <openssl/provider.h>
#include <openssl/x509.h>

const char *gt_jws_alg_for_key(EVP_PKEY *key, const char **why)
{
    if (EVP_PKEY_is_a(key, "RSA")) {
        if (EVP_PKEY_get_bits(key) < 2048) {
            *why = "RSA key is shorter than 2048 bits";
            return NULL;
        }
        return "RS256";
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        char group[64];
        size_t glen = 0;
        if (!EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                            group, sizeof(group), &glen)
            || strcmp(group, "prime256v1") != 0) {
            *why = "EC key is not on curve P-256";
            return NULL;
        }
        return "ES256";
    }
    *why = "key is neither RSA nor EC P-256";
    return NULL;
}

/* ES256 signatures are r||s, 32 bytes each (RFC 7518 §3.4), not DER. */
#define ES256_SIG_LEN 64

/* P-256's group order n and n / 2 (rounded down), big-endian.  (r, s) and
 * (r, n - s) both verify; only the low-s one (s <= n / 2) is accepted, so
 * a token has exactly one valid signature, and the signer makes that one. */
static const unsigned char p256_order[32] = {
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
    0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51
};
static const unsigned char p256_half_order[32] = {
    0x7f, 0xff, 0xff, 0xff, 0x80, 0x00, 0x00, 0x00, 0x7f, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xde, 0x73, 0x7d, 0x56, 0xd3, 0x8b, 0xcf, 0x42,
    0x79, 0xdc, 0xe5, 0x61, 0x7e, 0x31, 0x92, 0xa8
};

static int es256_s_is_low(const unsigned char *s)
{
    return memcmp(s, p256_half_order, 32) <= 0;
}

/* s := n - s (s < n), big-endian. */
static void es256_s_negate(unsigned char *s)
{
    int i, borrow = 0;

    for (i = 31; i >= 0; i--) {
        int d = (int)p256_order[i] - (int)s[i] - borrow;
        borrow = d < 0;
        s[i] = (unsigned char)(d + (borrow ? 256 : 0));
    }
}

static int ecdsa_der_to_raw(const unsigned char *der, size_t der_len,
                            unsigned char raw[ES256_SIG_LEN])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    const BIGNUM *r, *s;
    int ok;

    if (!sig)
        return -1;
    ECDSA_SIG_get0(sig, &r, &s);
    ok = BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32;
    ECDSA_SIG_free(sig);
    if (ok && !es256_s_is_low(raw + 32))
        es256_s_negate(raw + 32);
    return ok ? 0 : -1;
}

struct gt_jws_signer {
    EVP_PKEY *key;
    const char *alg;
    const char *header_b64;     /* base64url of the JWS header, with '.' */
    size_t sig_max;             /* EVP_PKEY_get_size */
    OSSL_LIB_CTX *libctx;       /* where the key was loaded */
    const char *propq;          /* the key's own provider */
    EVP_MD_CTX *prepared;       /* after EVP_DigestSignInit; never signed on */
    EVP_PKEY *public_key;       /* its public half, in OpenSSL's default
                                 * provider: verifies the start-up test */
    apr_thread_mutex_t *lock;   /* held while signing, or NULL */
    const char *unusable;       /* why this process cannot sign, or NULL */
};

static apr_status_t prepared_cleanup(void *data)
{
    EVP_MD_CTX_free(data);
    return APR_SUCCESS;
}

static apr_status_t public_key_cleanup(void *data)
{
    EVP_PKEY_free(data);
    return APR_SUCCESS;
}

/* A signing context for the key: the signature (and the digest, when the
 * signature wants one fetched) come from the key's own provider in the
 * library context it was loaded in; OpenSSL 3.0 would otherwise take the
 * default provider's, which has no access to a key held in a TPM or HSM
 * ("missing private key").  An ENGINE key keeps OpenSSL's legacy route. */
static int sign_init(const gt_jws_signer *signer, EVP_MD_CTX *md)
{
    return EVP_DigestSignInit_ex(md, NULL, "SHA256", signer->libctx,
                                 signer->propq, signer->key, NULL) == 1;
}

/* The public half as a plain default-provider key (DER round trip). */
static EVP_PKEY *public_half(EVP_PKEY *key)
{
    unsigned char *der = NULL;
    const unsigned char *p;
    int n = i2d_PUBKEY(key, &der);
    EVP_PKEY *pub;

    if (n <= 0)
        return NULL;
    p = der;
    pub = d2i_PUBKEY(NULL, &p, n);
    OPENSSL_free(der);
    return pub;
}

/* Points the signer at `key`: its provider, a prepared context and its
 * public half, each freed with `pool`.  -1 with *why. */
static int signer_use_key(apr_pool_t *pool, gt_jws_signer *signer,
                          EVP_PKEY *key, OSSL_LIB_CTX *libctx,
                          const char **why)
{
    const OSSL_PROVIDER *prov = EVP_PKEY_get0_provider(key);

    signer->key = key;
    signer->libctx = prov ? libctx : NULL;
    signer->propq = prov ? apr_pstrcat(pool, "?provider=",
                                       OSSL_PROVIDER_get0_name(prov), NULL)
                         : NULL;
    signer->sig_max = (size_t)EVP_PKEY_get_size(key);
    signer->prepared = EVP_MD_CTX_new();
    if (signer->prepared)
        apr_pool_cleanup_register(pool, signer->prepared, prepared_cleanup,
                                  apr_pool_cleanup_null);
    signer->public_key = public_half(key);
    if (signer->public_key)
        apr_pool_cleanup_register(pool, signer->public_key,
                                  public_key_cleanup, apr_pool_cleanup_null);
    if (!signer->prepared || signer->sig_max == 0 || !signer->public_key
        || !sign_init(signer, signer->prepared)) {
        ERR_clear_error();
        *why = signer->public_key
               ? "the key cannot be prepared for signing (EVP_DigestSignInit)"
               : "the key's public half cannot be read (i2d_PUBKEY)";
        return -1;
    }
    signer->unusable = NULL;
    return 0;
}

gt_jws_signer *gt_jws_signer_create_ex(apr_pool_t *pool, EVP_PKEY *key,
                                       OSSL_LIB_CTX *libctx,
                                       const char **why)
{
    gt_jws_signer *signer;
    const char *alg = gt_jws_alg_for_key(key, why), *header;

    if (!alg)
        return NULL;
    signer = apr_pcalloc(pool, sizeof(*signer));
    signer->alg = alg;
    header = apr_pstrcat(pool, "{\"alg\":\"", alg, "\",\"typ\":\"JWT\"}", NULL);
    signer->header_b64 = apr_pstrcat(pool,
        gt_b64url_encode(pool, (const unsigned char *)header, strlen(header)),
        ".", NULL);
    if (signer_use_key(pool, signer, key, libctx, why) != 0)
        return NULL;
    return signer;
}

gt_jws_signer *gt_jws_signer_create(apr_pool_t *pool, EVP_PKEY *key,
                                    const char **why)
{
    return gt_jws_signer_create_ex(pool, key, NULL, why);
}

const char *gt_jws_signer_alg(const gt_jws_signer *signer)
{
    return signer->alg;
}

int gt_jws_signer_rekey(apr_pool_t *pool, gt_jws_signer *signer,
                        EVP_PKEY *key, OSSL_LIB_CTX *libctx, const char **why)
{
    EVP_PKEY *before = signer->public_key;
    const char *alg = gt_jws_alg_for_key(key, why);

    if (alg && strcmp(alg, signer->alg) != 0)
        *why = "the key opened again is of another kind";
    else if (alg && signer_use_key(pool, signer, key, libctx, why) == 0) {
        if (!before || EVP_PKEY_eq(before, signer->public_key) == 1)
            return 0;
        ERR_clear_error();
        *why = "the key opened again is not the key checked at start-up";
    }
    gt_jws_signer_disable(signer, *why);
    return -1;
}

void gt_jws_signer_serialise(gt_jws_signer *signer, apr_thread_mutex_t *lock)
{
    signer->lock = lock;
}

void gt_jws_signer_disable(gt_jws_signer *signer, const char *why)
{
    signer->unusable = why;
}

/* The signature over `input` in the form the alg's JWS carries, from
 * `pool`; NULL with *why. */
static const unsigned char *sign_input(apr_pool_t *pool,
                                       const gt_jws_signer *signer,
                                       EVP_MD_CTX *md, const char *input,
                                       size_t *sig_len, const char **why)
{
    unsigned char *sig, *raw;

    if (EVP_MD_CTX_copy_ex(md, signer->prepared) != 1) {
        /* a key whose context cannot be copied (an engine or provider
         * without a dup method): prepare this one afresh */
        ERR_clear_error();
        if (!sign_init(signer, md)) {
            *why = "the signing key refused to sign (EVP_DigestSignInit)";
            return NULL;
        }
    }
    *sig_len = signer->sig_max;
    sig = apr_palloc(pool, *sig_len);
    if (EVP_DigestSign(md, sig, sig_len, (const unsigned char *)input,
                       strlen(input)) != 1) {
        *why = "the signature failed (EVP_DigestSign)";
        return NULL;
    }
    if (strcmp(signer->alg, "ES256") != 0)
        return sig;
    raw = apr_palloc(pool, ES256_SIG_LEN);
    if (ecdsa_der_to_raw(sig, *sig_len, raw) != 0) {
        *why = "the ECDSA signature could not be converted to JWS form";
        return NULL;
    }
    *sig_len = ES256_SIG_LEN;
    return raw;
}

/* sign_input, one thread at a time where the provider needs it. */
static const unsigned char *sign_serialised(apr_pool_t *pool,
                                            const gt_jws_signer *signer,
                                            EVP_MD_CTX *md, const char *input,
                                            size_t *sig_len, const char **why)
{
    const unsigned char *sig;

    if (signer->lock && apr_thread_mutex_lock(signer->lock) != APR_SUCCESS) {
        *why = "the signing key's lock cannot be taken";
        return NULL;
    }
    sig = sign_input(pool, signer, md, input, sig_len, why);
    ERR_clear_error();
    if (signer->lock)
        apr_thread_mutex_unlock(signer->lock);
    return sig;
}

const char *gt_jws_sign(apr_pool_t *pool, const gt_jws_signer *signer,
                        const char *claims_json, const char **why)
{
    const char *input;
    EVP_MD_CTX *md;
    const unsigned char *sig;
    size_t sig_len = 0;

    if (signer->unusable) {
        *why = signer->unusable;
        return NULL;
    }
    input = apr_pstrcat(pool, signer->header_b64,
        gt_b64url_encode(pool, (const unsigned char *)claims_json,
                         strlen(claims_json)),
        NULL);
    if (!(md = EVP_MD_CTX_new())) {
        *why = "out of memory creating the signing context";
        return NULL;
    }
    sig = sign_serialised(pool, signer, md, input, &sig_len, why);
    EVP_MD_CTX_free(md);
    if (!sig)
        return NULL;
    return apr_pstrcat(pool, input, ".", gt_b64url_encode(pool, sig, sig_len),
                       NULL);
}

int gt_jws_signer_check(apr_pool_t *pool, const gt_jws_signer *signer,
                        const char **why)
{
    apr_array_header_t *keys = apr_array_make(pool, 1, sizeof(EVP_PKEY *));
    const char *token = gt_jws_sign(pool, signer, "{\"check\":\"start-up\"}",
                                    why);
    const char *payload;
    apr_size_t payload_len;

    if (!token)
        return -1;
    APR_ARRAY_PUSH(keys, EVP_PKEY *) = signer->public_key;
    if (gt_jws_verify(pool, token, strlen(token), keys, &payload,
                      &payload_len, why) != GT_JWS_VALID) {
        *why = "a signature made with the key does not verify with its "
               "public key";
        return -1;
    }
    return 0;
}

/* ES256: r||s (32 bytes each) to the DER ECDSA-Sig-Value OpenSSL verifies. */
static unsigned char *ecdsa_raw_to_der(apr_pool_t *pool, const unsigned char *raw,
                                       size_t *der_len)
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *s = BN_bin2bn(raw + 32, 32, NULL);
    unsigned char *der = NULL, *out = NULL;
    int n;

    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return NULL;
    }
    n = i2d_ECDSA_SIG(sig, &der);    /* sig owns r and s now */
    ECDSA_SIG_free(sig);
    if (n <= 0)
        return NULL;
    out = apr_pmemdup(pool, der, (apr_size_t)n);
    OPENSSL_free(der);
    *der_len = (size_t)n;
    return out;
}

static int verify_with_key(apr_pool_t *pool, EVP_PKEY *key, const char *alg,
                           const char *input, apr_size_t input_len,
                           const unsigned char *sig, apr_size_t sig_len)
{
    EVP_MD_CTX *md;
    const unsigned char *vsig = sig;
    size_t vlen = sig_len;
    int ok;

    if (strcmp(alg, "RS256") == 0) {
        if ((int)sig_len != EVP_PKEY_get_size(key))
            return 0;
    }
    else {
        if (sig_len != ES256_SIG_LEN || !es256_s_is_low(sig + 32)
            || !(vsig = ecdsa_raw_to_der(pool, sig, &vlen)))
            return 0;
    }
    md = EVP_MD_CTX_new();
    if (!md)
        return 0;
    ok = EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1
         && EVP_DigestVerify(md, vsig, vlen, (const unsigned char *)input,
                             input_len) == 1;
    EVP_MD_CTX_free(md);
    return ok;
}

/* The header: {"alg": RS256|ES256} plus optional "typ":"JWT" and "kid". */
static gt_jws_result check_header(apr_pool_t *pool, const unsigned char *hdr,
                                  apr_size_t len, const char **alg,
                                  const char **why)
{
    apr_array_header_t *obj = gt_json_parse_object(pool, (const char *)hdr,
                                                   len, 4, why);
    const gt_json_member *m;
    int i;

    if (!obj)
        return GT_JWS_MALFORMED;
    for (i = 0; i < obj->nelts; i++) {
        m = &APR_ARRAY_IDX(obj, i, gt_json_member);
        if (strcmp(m->name, "alg") && strcmp(m->name, "typ")
            && strcmp(m->name, "kid")) {
            *why = "the JWS header has a member other than alg, typ and kid";
            return GT_JWS_MALFORMED;
        }
        if (m->type != GT_JSON_STRING) {
            *why = "a JWS header member is not a string";
            return GT_JWS_MALFORMED;
        }
    }
    m = gt_json_get(obj, "typ");
    if (m && strcmp(m->str, "JWT") != 0) {
        *why = "the JWS header's typ is not JWT";
        return GT_JWS_MALFORMED;
    }
    m = gt_json_get(obj, "alg");
    if (!m) {
        *why = "the JWS header has no alg";
        return GT_JWS_MALFORMED;
    }
    if (strcmp(m->str, "RS256") != 0 && strcmp(m->str, "ES256") != 0) {
        *why = "the JWS alg is not RS256 or ES256 (none, HS* and others "
               "are refused)";
        return GT_JWS_ALG_REFUSED;
    }
    *alg = m->str;
    return GT_JWS_VALID;
}

/* The three parts of a compact JWS, decoded. */
typedef struct {
    unsigned char *header, *payload, *sig;
    apr_size_t header_len, payload_len, sig_len;
    apr_size_t signed_len;      /* header.payload, what the signature covers */
} jws_parts;

static gt_jws_result split_token(apr_pool_t *pool, const char *token,
                                 apr_size_t len, jws_parts *parts,
                                 const char **why)
{
    const char *dot1, *dot2;
    apr_size_t h64, p64, s64;

    if (len == 0 || len > GT_JWS_MAX_TOKEN) {
        *why = "the token is empty or longer than any pairing token";
        return GT_JWS_MALFORMED;
    }
    dot1 = memchr(token, '.', len);
    dot2 = dot1 ? memchr(dot1 + 1, '.', len - (apr_size_t)(dot1 + 1 - token))
                : NULL;
    if (!dot2 || memchr(dot2 + 1, '.', len - (apr_size_t)(dot2 + 1 - token))) {
        *why = "the token is not a compact JWS (three dot-separated parts)";
        return GT_JWS_MALFORMED;
    }
    h64 = (apr_size_t)(dot1 - token);
    p64 = (apr_size_t)(dot2 - dot1 - 1);
    s64 = len - (apr_size_t)(dot2 + 1 - token);
    if (h64 == 0 || p64 == 0 || s64 == 0
        || h64 > GT_JWS_MAX_HEADER * 4 / 3 + 4
        || p64 > GT_JWS_MAX_PAYLOAD * 4 / 3 + 4) {
        *why = "a JWS part is empty or too long";
        return GT_JWS_MALFORMED;
    }
    if (gt_b64url_decode(pool, token, h64, &parts->header,
                         &parts->header_len) != 0
        || gt_b64url_decode(pool, dot1 + 1, p64, &parts->payload,
                            &parts->payload_len) != 0
        || gt_b64url_decode(pool, dot2 + 1, s64, &parts->sig,
                            &parts->sig_len) != 0) {
        *why = "a JWS part is not strict base64url";
        return GT_JWS_MALFORMED;
    }
    parts->signed_len = (apr_size_t)(dot2 - token);
    return GT_JWS_VALID;
}

gt_jws_result gt_jws_verify(apr_pool_t *pool, const char *token,
                            apr_size_t len, const apr_array_header_t *keys,
                            const char **payload, apr_size_t *payload_len,
                            const char **why)
{
    const char *alg = NULL;
    jws_parts parts;
    gt_jws_result res;
    int i, tried = 0;

    if ((res = split_token(pool, token, len, &parts, why)) != GT_JWS_VALID
        || (res = check_header(pool, parts.header, parts.header_len, &alg,
                               why)) != GT_JWS_VALID)
        return res;
    if (strcmp(alg, "ES256") == 0 && parts.sig_len == ES256_SIG_LEN
        && !es256_s_is_low(parts.sig + 32)) {
        *why = "the ES256 signature is not low-s (s > n/2: the twin of "
               "another valid signature)";
        return GT_JWS_BAD_SIGNATURE;
    }
    for (i = 0; keys && i < keys->nelts; i++) {
        EVP_PKEY *key = APR_ARRAY_IDX(keys, i, EVP_PKEY *);
        const char *key_why = NULL;
        const char *key_alg = gt_jws_alg_for_key(key, &key_why);

        if (!key_alg || strcmp(key_alg, alg) != 0)
            continue;
        tried++;
        if (verify_with_key(pool, key, alg, token, parts.signed_len,
                            parts.sig, parts.sig_len)) {
            ERR_clear_error();
            parts.payload[parts.payload_len] = '\0'; /* the decoder left room */
            *payload = (const char *)parts.payload;
            *payload_len = parts.payload_len;
            return GT_JWS_VALID;
        }
    }
    ERR_clear_error();
    if (!tried) {
        *why = apr_psprintf(pool, "no trusted key can verify %s", alg);
        return GT_JWS_NO_KEY;
    }
    *why = "no trusted key verifies the signature (untrusted issuer or "
           "altered token)";
    return GT_JWS_BAD_SIGNATURE;
}
