/*
 * gt_jose.c - base64url, JSON strings, JWS signing, UUIDs.
 */
#include "gt_jose.h"

#include <string.h>

#include "apr_strings.h"

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/rand.h>

static const char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const char *gt_b64url_encode(apr_pool_t *pool, const unsigned char *data,
                             apr_size_t len)
{
    char *out = apr_palloc(pool, (len + 2) / 3 * 4 + 1), *p = out;
    apr_size_t i;

    for (i = 0; i + 2 < len; i += 3) {
        *p++ = b64url_alphabet[data[i] >> 2];
        *p++ = b64url_alphabet[((data[i] & 0x03) << 4) | (data[i + 1] >> 4)];
        *p++ = b64url_alphabet[((data[i + 1] & 0x0f) << 2) | (data[i + 2] >> 6)];
        *p++ = b64url_alphabet[data[i + 2] & 0x3f];
    }
    if (i < len) {
        *p++ = b64url_alphabet[data[i] >> 2];
        if (i + 1 < len) {
            *p++ = b64url_alphabet[((data[i] & 0x03) << 4) | (data[i + 1] >> 4)];
            *p++ = b64url_alphabet[(data[i + 1] & 0x0f) << 2];
        }
        else
            *p++ = b64url_alphabet[(data[i] & 0x03) << 4];
    }
    *p = '\0';
    return out;
}

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

int gt_b64url_decode(apr_pool_t *pool, const char *in, apr_size_t in_len,
                     unsigned char **out, apr_size_t *out_len)
{
    unsigned char *buf, *p;
    apr_size_t i;
    unsigned acc = 0;
    int bits = 0;

    if (in_len % 4 == 1)
        return -1;
    buf = p = apr_palloc(pool, in_len * 3 / 4 + 1);
    for (i = 0; i < in_len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *p++ = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)           /* leftover bits must be zero: one encoding only */
        return -1;
    *out = buf;
    *out_len = (apr_size_t)(p - buf);
    return 0;
}

const char *gt_json_string(apr_pool_t *pool, const char *s)
{
    apr_size_t n = strlen(s), i;
    char *out = apr_palloc(pool, n * 6 + 3), *p = out;

    *p++ = '"';
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        }
        else if (c < 0x20) {
            static const char hex[] = "0123456789abcdef";
            memcpy(p, "\\u00", 4);
            p[4] = hex[c >> 4];
            p[5] = hex[c & 0x0f];
            p += 6;
        }
        else
            *p++ = (char)c;
    }
    *p++ = '"';
    *p = '\0';
    return out;
}

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
static int ecdsa_der_to_raw(const unsigned char *der, size_t der_len,
                            unsigned char raw[64])
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
    return ok ? 0 : -1;
}

const char *gt_jws_sign(apr_pool_t *pool, EVP_PKEY *key, const char *alg,
                        const char *claims_json, const char **why)
{
    const char *header = apr_pstrcat(pool, "{\"alg\":\"", alg,
                                     "\",\"typ\":\"JWT\"}", NULL);
    const char *input = apr_pstrcat(pool,
        gt_b64url_encode(pool, (const unsigned char *)header, strlen(header)),
        ".",
        gt_b64url_encode(pool, (const unsigned char *)claims_json,
                         strlen(claims_json)),
        NULL);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char *sig = NULL, raw[64];
    const unsigned char *out_sig;
    size_t sig_len = 0, out_len;
    const char *token = NULL;

    if (!md) {
        *why = "out of memory creating the signing context";
        return NULL;
    }
    if (EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1
        || EVP_DigestSign(md, NULL, &sig_len, (const unsigned char *)input,
                          strlen(input)) != 1) {
        *why = "the signing key refused to sign (EVP_DigestSignInit)";
        goto done;
    }
    sig = apr_palloc(pool, sig_len);
    if (EVP_DigestSign(md, sig, &sig_len, (const unsigned char *)input,
                       strlen(input)) != 1) {
        *why = "the signature failed (EVP_DigestSign)";
        goto done;
    }
    out_sig = sig;
    out_len = sig_len;
    if (strcmp(alg, "ES256") == 0) {
        if (ecdsa_der_to_raw(sig, sig_len, raw) != 0) {
            *why = "the ECDSA signature could not be converted to JWS form";
            goto done;
        }
        out_sig = raw;
        out_len = sizeof(raw);
    }
    token = apr_pstrcat(pool, input, ".",
                        gt_b64url_encode(pool, out_sig, out_len), NULL);
done:
    EVP_MD_CTX_free(md);
    return token;
}

int gt_uuid_v4(char out[37])
{
    unsigned char b[16];

    if (RAND_bytes(b, sizeof(b)) != 1)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    apr_snprintf(out, 37,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                 b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

int gt_is_uuid(const char *s)
{
    int i;

    for (i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        }
        else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
                   || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return s[36] == '\0';
}
