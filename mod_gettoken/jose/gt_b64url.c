/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_b64url.c - base64url without padding (RFC 7515 §2), strict both ways.
 */
#include "gt_b64url.h"

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
