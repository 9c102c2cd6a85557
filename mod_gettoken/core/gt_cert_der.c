/*
 * gt_cert_der.c - PEM to DER and the validity period of a DER certificate,
 * without decoding an X509 (see gt_cert_der.h for why).
 */
#include "gt_cert_der.h"
#include "gt_identity.h"

#include <string.h>

#define TAG_SEQUENCE        0x30
#define TAG_INTEGER         0x02
#define TAG_VERSION         0xa0     /* [0] EXPLICIT Version */
#define TAG_UTCTIME         0x17
#define TAG_GENERALIZEDTIME 0x18

int gt_pem_cert_to_der(apr_pool_t *pool, const char *pem,
                       const unsigned char **der, apr_size_t *der_len)
{
    static const char begin[] = "-----BEGIN CERTIFICATE-----";
    const char *b = strstr(pem, begin), *e;
    unsigned char *out;
    apr_size_t len;

    if (!b)
        return -1;
    b += sizeof(begin) - 1;
    e = strstr(b, "-----END CERTIFICATE-----");
    if (!e || gt_base64_decode(pool, b, (apr_size_t)(e - b), 1, &out, &len) != 0
        || len == 0)
        return -1;
    *der = out;
    *der_len = len;
    return 0;
}

/*
 * One DER element at *p: its tag (low tag numbers only: every field up to
 * Validity has one) and its content.  Definite lengths only, and never
 * past `end`.  Moves *p past the element.  0, or -1.
 */
static int der_next(const unsigned char **p, const unsigned char *end,
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
    *out = days_from_civil(year, mon, day) * 86400 + hour * 3600 + min * 60
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
    if (der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_SEQUENCE)
        return -1;
    p = c;
    end = c + n;
    if (der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_SEQUENCE)
        return -1;
    p = c;
    end = c + n;
    /* [0] version (optional), serialNumber INTEGER */
    if (der_next(&p, end, &tag, &c, &n) != 0)
        return -1;
    if (tag == TAG_VERSION && der_next(&p, end, &tag, &c, &n) != 0)
        return -1;
    if (tag != TAG_INTEGER)
        return -1;
    /* signature AlgorithmIdentifier, issuer Name, validity: SEQUENCEs */
    for (i = 0; i < 3; i++)
        if (der_next(&p, end, &tag, &c, &n) != 0 || tag != TAG_SEQUENCE)
            return -1;
    p = c;
    end = c + n;
    if (der_next(&p, end, &tag, &c, &n) != 0 || der_time(tag, c, n, not_before) != 0
        || der_next(&p, end, &tag, &c, &n) != 0 || der_time(tag, c, n, not_after) != 0
        || p != end)
        return -1;
    return 0;
}
