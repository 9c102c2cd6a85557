/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_cert.c - base64, PEM to DER, the validity period of a DER certificate
 * without decoding an X509 (see gt_cert.h for why), and SHA-256.
 */
#include "gt_cert.h"

#include <string.h>

#include <openssl/evp.h>

#define TAG_SEQUENCE        0x30
#define TAG_INTEGER         0x02
#define TAG_VERSION         0xa0     /* [0] EXPLICIT Version */
#define TAG_UTCTIME         0x17
#define TAG_GENERALIZEDTIME 0x18

/* ---- base64 ------------------------------------------------------------ */

/* Value + 1 of each base64 character; 0 for everything else.  A table:
 * certificates are decoded on every request. */
static const unsigned char b64_plus1[256] = {
    ['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6,
    ['G'] = 7, ['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12,
    ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18,
    ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
    ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30,
    ['e'] = 31, ['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36,
    ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42,
    ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
    ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54,
    ['2'] = 55, ['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60,
    ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64
};

static int b64_value(unsigned char c)
{
    return (int)b64_plus1[c] - 1;
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* The bytes the last 0-3 sextets hold, checked against the padding and
 * for stray bits (one encoding only).  0, or -1. */
static int b64_finish(unsigned char *buf, apr_size_t *n, apr_size_t sextets,
                      apr_size_t pad, unsigned long acc)
{
    switch (sextets % 4) {
    case 0:
        return pad ? -1 : 0;
    case 1:
        return -1;                   /* 6 bits cannot end a byte */
    case 2:
        if ((pad && pad != 2) || (acc & 0x0f))
            return -1;
        buf[(*n)++] = (unsigned char)(acc >> 4);
        return 0;
    default:
        if ((pad && pad != 1) || (acc & 0x03))
            return -1;
        buf[(*n)++] = (unsigned char)(acc >> 10);
        buf[(*n)++] = (unsigned char)(acc >> 2);
        return 0;
    }
}

int gt_base64_decode(apr_pool_t *pool, const char *in, apr_size_t len,
                     int skip_ws, unsigned char **out, apr_size_t *out_len)
{
    unsigned char *buf = apr_palloc(pool, len / 4 * 3 + 4);
    apr_size_t n = 0, i, sextets = 0, pad = 0;
    unsigned long acc = 0;

    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        int v;

        if (skip_ws && is_ws(c))
            continue;
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad)
            return -1;               /* data after padding */
        v = b64_value(c);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned long)v;
        if (++sextets % 4 == 0) {
            buf[n++] = (unsigned char)(acc >> 16);
            buf[n++] = (unsigned char)(acc >> 8);
            buf[n++] = (unsigned char)acc;
            acc = 0;
        }
    }
    if (b64_finish(buf, &n, sextets, pad, acc) != 0)
        return -1;
    buf[n] = '\0';
    *out = buf;
    *out_len = n;
    return 0;
}

/* ---- PEM ---------------------------------------------------------------- */


int gt_pem_cert_find(const char *pem, apr_size_t len, gt_pem_block *block)
{
    const char *end = pem + len;

    memset(block, 0, sizeof(*block));
    block->begin = memmem(pem, len, GT_PEM_CERT_BEGIN, sizeof(GT_PEM_CERT_BEGIN) - 1);
    if (!block->begin)
        return -1;
    block->body = block->begin + sizeof(GT_PEM_CERT_BEGIN) - 1;
    block->body_end = memmem(block->body, (apr_size_t)(end - block->body),
                             GT_PEM_CERT_END, sizeof(GT_PEM_CERT_END) - 1);
    if (!block->body_end)
        return -1;
    block->after = block->body_end + sizeof(GT_PEM_CERT_END) - 1;
    return 0;
}

int gt_pem_cert_to_der(apr_pool_t *pool, const char *pem,
                       const unsigned char **der, apr_size_t *der_len)
{
    gt_pem_block block;
    unsigned char *out;
    apr_size_t len;

    if (gt_pem_cert_find(pem, strlen(pem), &block) != 0
        || gt_base64_decode(pool, block.body,
                            (apr_size_t)(block.body_end - block.body), 1,
                            &out, &len) != 0
        || len == 0)
        return -1;
    *der = out;
    *der_len = len;
    return 0;
}

/* ---- DER ---------------------------------------------------------------- */

int gt_der_next(const unsigned char **p, const unsigned char *end,
                unsigned char *tag, const unsigned char **content,
                apr_size_t *len)
{
    const unsigned char *q = *p;
    apr_size_t n;

    if (end - q < 2)
        return -1;
    *tag = *q++;
    if ((*tag & 0x1f) == 0x1f)
        return -1;
    n = *q++;
    if (n & 0x80) {
        int k = (int)(n & 0x7f);
        if (k == 0 || k > 4 || end - q < k)   /* indefinite, or absurd */
            return -1;
        for (n = 0; k > 0; k--)
            n = (n << 8) | *q++;
    }
    if (n > (apr_size_t)(end - q))
        return -1;
    *content = q;
    *len = n;
    *p = q + n;
    return 0;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's
 * days_from_civil). */
static apr_int64_t days_from_civil(apr_int64_t y, int m, int d)
{
    apr_int64_t era, yoe, doy, doe;

    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const unsigned char *s, apr_size_t n, apr_size_t at,
                  int count, int *out)
{
    int v = 0;

    if (at + (apr_size_t)count > n)
        return -1;
    for (; count > 0; count--, at++) {
        if (s[at] < '0' || s[at] > '9')
            return -1;
        v = v * 10 + (s[at] - '0');
    }
    *out = v;
    return 0;
}

static int leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* A UTCTime / GeneralizedTime value as seconds since the epoch. */
static int der_time(unsigned char tag, const unsigned char *s, apr_size_t n,
                    apr_int64_t *out)
{
    static const int mdays[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int year, mon, day, hour, min, sec = 0, oh = 0, om = 0, sign = 0;
    apr_size_t i;

    if (tag == TAG_UTCTIME) {
        if (digits(s, n, 0, 2, &year) != 0)
            return -1;
        year += year < 50 ? 2000 : 1900;      /* RFC 5280 4.1.2.5.1 */
        i = 2;
    }
    else if (tag == TAG_GENERALIZEDTIME) {
        if (digits(s, n, 0, 4, &year) != 0)
            return -1;
        i = 4;
    }
    else
        return -1;
    if (digits(s, n, i, 2, &mon) != 0 || digits(s, n, i + 2, 2, &day) != 0
        || digits(s, n, i + 4, 2, &hour) != 0
        || digits(s, n, i + 6, 2, &min) != 0)
        return -1;
    i += 8;
    if (i + 2 <= n && digits(s, n, i, 2, &sec) == 0)
        i += 2;
    if (tag == TAG_GENERALIZEDTIME && i < n && s[i] == '.') {
        apr_size_t f = ++i;
        while (i < n && s[i] >= '0' && s[i] <= '9')
            i++;
        if (i == f)
            return -1;
    }
    if (i + 1 == n && s[i] == 'Z')
        sign = 0;
    else if (i + 5 == n && (s[i] == '+' || s[i] == '-')
             && digits(s, n, i + 1, 2, &oh) == 0
             && digits(s, n, i + 3, 2, &om) == 0 && oh <= 23 && om <= 59)
        sign = s[i] == '+' ? 1 : -1;
    else
        return -1;
    if (mon < 1 || mon > 12 || day < 1
        || day > mdays[mon - 1] + (mon == 2 && leap(year))
        || hour > 23 || min > 59 || sec > 60)
        return -1;
    /* local time = UTC + offset */
    *out = days_from_civil(year, mon, day) * GT_SECONDS_PER_DAY + hour * 3600 + min * 60
           + sec - (apr_int64_t)sign * (oh * 3600 + om * 60);
    return 0;
}

int gt_cert_validity(const unsigned char *der, apr_size_t der_len,
                     apr_int64_t *not_before, apr_int64_t *not_after)
{
    const unsigned char *p = der, *end = der + der_len, *c;
    apr_size_t n;
    unsigned char tag;
    int i;

    /* Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { ... */
    if (gt_der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_SEQUENCE)
        return -1;
    p = c;
    end = c + n;
    if (gt_der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_SEQUENCE)
        return -1;
    p = c;
    end = c + n;
    /* [0] version (optional), serialNumber INTEGER */
    if (gt_der_next(&p, end, &tag, &c, &n) != 0)
        return -1;
    if (tag == TAG_VERSION && gt_der_next(&p, end, &tag, &c, &n) != 0)
        return -1;
    if (tag != TAG_INTEGER)
        return -1;
    /* signature AlgorithmIdentifier, issuer Name, validity: SEQUENCEs */
    for (i = 0; i < 3; i++)
        if (gt_der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_SEQUENCE)
            return -1;
    p = c;
    end = c + n;
    if (gt_der_next(&p, end, &tag, &c, &n) != 0 || der_time(tag, c, n, not_before) != 0
        || gt_der_next(&p, end, &tag, &c, &n) != 0 || der_time(tag, c, n, not_after) != 0
        || p != end)
        return -1;
    return 0;
}

/* ---- SHA-256 ------------------------------------------------------------ */

const char *gt_hex(apr_pool_t *pool, const unsigned char *data,
                   apr_size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char *out = apr_palloc(pool, len * 2 + 1);
    apr_size_t i;

    for (i = 0; i < len; i++) {
        out[2 * i] = hex[data[i] >> 4];
        out[2 * i + 1] = hex[data[i] & 0x0f];
    }
    out[2 * len] = '\0';
    return out;
}

/* SHA-256 fetched once (gt_digests_init); EVP_sha256() makes OpenSSL 3
 * look the implementation up again on every call, under a lock. */
static EVP_MD *sha256_fetched;

static apr_status_t digests_cleanup(void *unused)
{
    (void)unused;
    EVP_MD_free(sha256_fetched);
    sha256_fetched = NULL;
    return APR_SUCCESS;
}

int gt_digests_init(apr_pool_t *pool)
{
    if (sha256_fetched)
        return 0;
    sha256_fetched = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (!sha256_fetched)
        return -1;
    apr_pool_cleanup_register(pool, NULL, digests_cleanup,
                              apr_pool_cleanup_null);
    return 0;
}

const char *gt_sha256_hex(apr_pool_t *pool, const unsigned char *data,
                          apr_size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (EVP_Digest(data, len, md, &md_len,
                   sha256_fetched ? sha256_fetched : EVP_sha256(), NULL) != 1)
        return NULL;
    return gt_hex(pool, md, md_len);
}
