/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_json.c - strict flat JSON objects (see gt_json.h).
 */
#include "gt_json.h"

#include <string.h>

#include "apr_strings.h"

typedef struct {
    const unsigned char *p, *end;
} cursor;

static void skip_ws(cursor *c)
{
    while (c->p < c->end
           && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hex4(const unsigned char *p, unsigned *out)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        unsigned char h = p[i];
        v <<= 4;
        if (h >= '0' && h <= '9') v |= (unsigned)(h - '0');
        else if (h >= 'a' && h <= 'f') v |= (unsigned)(h - 'a' + 10);
        else if (h >= 'A' && h <= 'F') v |= (unsigned)(h - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static char *put_utf8(char *o, unsigned cp)
{
    if (cp < 0x80)
        *o++ = (char)cp;
    else if (cp < 0x800) {
        *o++ = (char)(0xc0 | (cp >> 6));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    else if (cp < 0x10000) {
        *o++ = (char)(0xe0 | (cp >> 12));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    else {
        *o++ = (char)(0xf0 | (cp >> 18));
        *o++ = (char)(0x80 | ((cp >> 12) & 0x3f));
        *o++ = (char)(0x80 | ((cp >> 6) & 0x3f));
        *o++ = (char)(0x80 | (cp & 0x3f));
    }
    return o;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs,
 * no surrogates, nothing above U+10FFFF), or 0. */
static apr_size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    apr_size_t n, i;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) { n = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { n = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { n = 4; cp = c & 0x07; }
    else return 0;
    if ((apr_size_t)(end - p) < n)
        return 0;
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return n;
}

/* The code point of a \u escape at c->p, joining a surrogate pair; NUL and
 * lone surrogates refused.  0, or -1 with *why. */
static int parse_code_point(cursor *c, unsigned *cp, const char **why)
{
    unsigned lo;

    if (c->end - c->p < 6 || hex4(c->p + 2, cp) != 0) {
        *why = "invalid \\u escape in a JSON string";
        return -1;
    }
    c->p += 6;
    if (*cp >= 0xd800 && *cp <= 0xdbff) {
        if (c->end - c->p < 6 || c->p[0] != '\\' || c->p[1] != 'u'
            || hex4(c->p + 2, &lo) != 0 || lo < 0xdc00 || lo > 0xdfff) {
            *why = "lone surrogate in a JSON string";
            return -1;
        }
        c->p += 6;
        *cp = 0x10000 + ((*cp - 0xd800) << 10) + (lo - 0xdc00);
    }
    else if (*cp >= 0xdc00 && *cp <= 0xdfff) {
        *why = "lone surrogate in a JSON string";
        return -1;
    }
    if (*cp == 0) {
        *why = "NUL character in a JSON string";
        return -1;
    }
    return 0;
}

/* The escape at c->p (a backslash), written unescaped at *o.  0, or -1. */
static int parse_escape(cursor *c, char **o, const char **why)
{
    static const char named[] = "\"\\/bfnrt", value[] = "\"\\/\b\f\n\r\t";
    const char *hit;
    unsigned cp;

    if (c->end - c->p < 2) {
        *why = "unterminated JSON string";
        return -1;
    }
    if (c->p[1] != 'u') {
        hit = c->p[1] ? strchr(named, c->p[1]) : NULL;
        if (!hit) {
            *why = "invalid escape in a JSON string";
            return -1;
        }
        *(*o)++ = value[hit - named];
        c->p += 2;
        return 0;
    }
    if (parse_code_point(c, &cp, why) != 0)
        return -1;
    *o = put_utf8(*o, cp);
    return 0;
}

/* A string starting at the opening quote. */
static int parse_string(apr_pool_t *pool, cursor *c, const char **out,
                        apr_size_t *out_len, const char **why)
{
    char *buf, *o;

    c->p++;   /* the opening quote */
    /* unescaped output is never longer than the input */
    buf = o = apr_palloc(pool, (apr_size_t)(c->end - c->p) + 1);
    while (c->p < c->end && *c->p != '"') {
        apr_size_t n;

        if (*c->p < 0x20) {
            *why = "control character in a JSON string";
            return -1;
        }
        if (*c->p == '\\') {
            if (parse_escape(c, &o, why) != 0)
                return -1;
            continue;
        }
        n = utf8_len(c->p, c->end);
        if (n == 0) {
            *why = "invalid UTF-8 in a JSON string";
            return -1;
        }
        memcpy(o, c->p, n);
        o += n;
        c->p += n;
    }
    if (c->p >= c->end) {
        *why = "unterminated JSON string";
        return -1;
    }
    c->p++;   /* the closing quote */
    *o = '\0';
    *out = buf;
    *out_len = (apr_size_t)(o - buf);
    return 0;
}

static int parse_int(cursor *c, apr_int64_t *out, const char **why)
{
    int neg = 0;
    apr_uint64_t v = 0, limit;
    const unsigned char *digits;

    if (*c->p == '-') {
        neg = 1;
        c->p++;
    }
    digits = c->p;
    limit = neg ? (apr_uint64_t)APR_INT64_MAX + 1 : (apr_uint64_t)APR_INT64_MAX;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p - '0');
        if (v > (limit - d) / 10) {
            *why = "JSON number out of range";
            return -1;
        }
        v = v * 10 + d;
        c->p++;
    }
    if (c->p == digits || (*digits == '0' && c->p - digits > 1)) {
        *why = "malformed JSON number";
        return -1;
    }
    if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E')) {
        *why = "JSON number is not an integer";
        return -1;
    }
    *out = neg ? (apr_int64_t)(0 - v) : (apr_int64_t)v;
    return 0;
}

static int parse_literal(cursor *c, const char *word, apr_size_t n)
{
    if ((apr_size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return -1;
    c->p += n;
    return 0;
}

static int parse_value(apr_pool_t *pool, cursor *c, gt_json_member *m,
                       const char **why)
{
    if (c->p >= c->end) {
        *why = "truncated JSON object";
        return -1;
    }
    switch (*c->p) {
    case '"':
        m->type = GT_JSON_STRING;
        return parse_string(pool, c, &m->str, &m->str_len, why);
    case 't':
        m->type = GT_JSON_TRUE;
        break;
    case 'f':
        m->type = GT_JSON_FALSE;
        break;
    case 'n':
        m->type = GT_JSON_NULL;
        break;
    case '{':
    case '[':
        *why = "nested JSON objects and arrays are not accepted";
        return -1;
    default:
        m->type = GT_JSON_INT;
        return parse_int(c, &m->num, why);
    }
    if ((m->type == GT_JSON_TRUE && parse_literal(c, "true", 4) == 0)
        || (m->type == GT_JSON_FALSE && parse_literal(c, "false", 5) == 0)
        || (m->type == GT_JSON_NULL && parse_literal(c, "null", 4) == 0))
        return 0;
    *why = "invalid JSON literal";
    return -1;
}

/* One "name": value member, appended to obj.  0, or -1 with *why. */
static int parse_member(apr_pool_t *pool, cursor *c, apr_array_header_t *obj,
                        int max_members, const char **why)
{
    gt_json_member m;
    apr_size_t name_len;

    memset(&m, 0, sizeof(m));
    if (obj->nelts >= max_members) {
        *why = "too many JSON members";
        return -1;
    }
    if (c->p >= c->end || *c->p != '"') {
        *why = "a JSON member name is not a string";
        return -1;
    }
    if (parse_string(pool, c, &m.name, &name_len, why) != 0)
        return -1;
    if (gt_json_get(obj, m.name)) {
        *why = "duplicate JSON member name";
        return -1;
    }
    skip_ws(c);
    if (c->p >= c->end || *c->p != ':') {
        *why = "missing ':' in a JSON object";
        return -1;
    }
    c->p++;
    skip_ws(c);
    if (parse_value(pool, c, &m, why) != 0)
        return -1;
    *(gt_json_member *)apr_array_push(obj) = m;
    skip_ws(c);
    return 0;
}

/* Whether another member follows (0), the object ends (1), or neither (-1),
 * past the ',' or '}'. */
static int member_separator(cursor *c)
{
    if (c->p < c->end && (*c->p == ',' || *c->p == '}'))
        return *c->p++ == '}';
    return -1;
}

apr_array_header_t *gt_json_parse_object(apr_pool_t *pool, const char *buf,
                                         apr_size_t len, int max_members,
                                         const char **why)
{
    cursor c;
    apr_array_header_t *obj = apr_array_make(pool, 8, sizeof(gt_json_member));
    int sep = 0;

    c.p = (const unsigned char *)buf;
    c.end = c.p + len;
    skip_ws(&c);
    if (c.p >= c.end || *c.p != '{') {
        *why = "not a JSON object";
        return NULL;
    }
    c.p++;
    skip_ws(&c);
    if (c.p < c.end && *c.p == '}') {
        c.p++;
        sep = 1;
    }
    while (sep == 0) {
        if (parse_member(pool, &c, obj, max_members, why) != 0)
            return NULL;
        sep = member_separator(&c);
        skip_ws(&c);
    }
    if (sep < 0) {
        *why = "missing ',' or '}' in a JSON object";
        return NULL;
    }
    skip_ws(&c);
    if (c.p != c.end) {
        *why = "trailing bytes after the JSON object";
        return NULL;
    }
    return obj;
}

const gt_json_member *gt_json_get(const apr_array_header_t *obj,
                                  const char *name)
{
    int i;

    for (i = 0; i < obj->nelts; i++) {
        const gt_json_member *m = &APR_ARRAY_IDX(obj, i, gt_json_member);
        if (strcmp(m->name, name) == 0)
            return m;
    }
    return NULL;
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
