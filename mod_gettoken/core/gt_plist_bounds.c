/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_plist_bounds.c - iterative structure checks run before libplist.
 *
 * What libplist 2.2 does with a hostile binary plist, and so what is
 * refused here: it parses an object again for every reference to it (the
 * expansion that the expanded size bounds); it asserts when a dict key
 * holds a NUL (UTF-16 U+0000 keeps the NUL inside the key's length); it
 * leaks the key node of a dict whose key is not a string; it refuses null
 * and fill objects, empty UTF-16 strings, integers over 16 bytes, reals
 * other than 4 or 8 bytes and dates other than 8.
 */
#include "gt_plist.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

const char *gt_bounds_reason(gt_bounds_result res)
{
    switch (res) {
    case GT_BOUNDS_OK:        return "ok";
    case GT_BOUNDS_TOO_DEEP:  return "plist nests deeper than the limit";
    case GT_BOUNDS_TOO_MANY:  return "plist holds more objects than the limit";
    case GT_BOUNDS_MALFORMED: return "plist is malformed";
    case GT_BOUNDS_TOO_BIG:   return "plist expands past the size limit";
    case GT_BOUNDS_NUL:       return "a plist key or string holds a NUL";
    case GT_BOUNDS_TOO_LONG:  return "a plist key or string is over the "
                                     "length limit";
    }
    return "plist is malformed";
}

/* Adds one node's cost to *total; false once the total passes `limit`. */
static int add_cost(uint64_t *total, uint64_t cost, uint64_t limit)
{
    if (*total > limit || cost > limit - *total)
        return 0;
    *total += cost;
    return 1;
}

/* ---- binary plists ---------------------------------------------------- */

#define BPLIST_HEADER_LEN  8
#define BPLIST_TRAILER_LEN 32

enum {
    BPLIST_SIMPLE = 0x0, BPLIST_INT = 0x1, BPLIST_REAL = 0x2,
    BPLIST_DATE = 0x3, BPLIST_DATA = 0x4, BPLIST_ASCII = 0x5,
    BPLIST_UTF16 = 0x6, BPLIST_UID = 0x8, BPLIST_ARRAY = 0xa,
    BPLIST_SET = 0xc, BPLIST_DICT = 0xd
};

/* One object as libplist would read it; filled on its first visit. */
typedef struct {
    unsigned char described;
    unsigned char type;
    uint64_t refs;          /* containers: where the references start */
    uint64_t count;         /* containers: references (dict: keys+values) */
    uint64_t payload;       /* string or data bytes libplist stores */
} bplist_object;

typedef struct {
    const unsigned char *buf;
    uint64_t table_off;     /* objects live in [8, table_off) */
    uint64_t num_objects;
    uint64_t top;
    unsigned offset_size, ref_size;
    bplist_object *objects;
} bplist_doc;

typedef struct {
    uint64_t ref;
    unsigned depth;
    int is_key;
} bplist_pending;

static uint64_t read_be(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    while (n--)
        v = (v << 8) | *p++;
    return v;
}

static gt_bounds_result bplist_read_trailer(bplist_doc *d,
                                            const unsigned char *buf,
                                            size_t len,
                                            const gt_plist_limits *lim)
{
    const unsigned char *trailer;

    if (len < BPLIST_HEADER_LEN + BPLIST_TRAILER_LEN + 1
        || memcmp(buf, "bplist00", BPLIST_HEADER_LEN) != 0)
        return GT_BOUNDS_MALFORMED;
    trailer = buf + len - BPLIST_TRAILER_LEN;
    d->buf = buf;
    d->offset_size = trailer[6];
    d->ref_size = trailer[7];
    d->num_objects = read_be(trailer + 8, 8);
    d->top = read_be(trailer + 16, 8);
    d->table_off = read_be(trailer + 24, 8);

    if (d->offset_size < 1 || d->offset_size > 8 || d->ref_size < 1
        || d->ref_size > 8)
        return GT_BOUNDS_MALFORMED;
    if (d->num_objects == 0 || d->top >= d->num_objects)
        return GT_BOUNDS_MALFORMED;
    if (d->num_objects > lim->max_objects)
        return GT_BOUNDS_TOO_MANY;
    if (d->table_off < BPLIST_HEADER_LEN
        || d->table_off > len - BPLIST_TRAILER_LEN
        || d->num_objects * d->offset_size
           > len - BPLIST_TRAILER_LEN - d->table_off)
        return GT_BOUNDS_MALFORMED;
    return GT_BOUNDS_OK;
}

/* Reads the element count of a variable-length object starting at *pos;
 * advances *pos past the marker and count. 0 on success. */
static int bplist_count(const bplist_doc *d, uint64_t *pos, uint64_t *count)
{
    unsigned info = d->buf[*pos] & 0x0f, width;

    (*pos)++;
    if (info != 0x0f) {
        *count = info;
        return 0;
    }
    if (*pos >= d->table_off || (d->buf[*pos] & 0xf0) != 0x10)
        return -1;
    width = 1u << (d->buf[*pos] & 0x0f);
    if (width > 8 || *pos + 1 + width > d->table_off)
        return -1;
    *count = read_be(d->buf + *pos + 1, width);
    *pos += 1 + width;
    return 0;
}

/* A scalar of `width` bytes after its marker; width 0: a size libplist
 * refuses. */
static gt_bounds_result bplist_fixed(const bplist_doc *d, uint64_t pos,
                                     unsigned width)
{
    return width && pos + 1 + width <= d->table_off
           ? GT_BOUNDS_OK : GT_BOUNDS_MALFORMED;
}

/* `units` big-endian UTF-16 units: no U+0000, surrogates in pairs. */
static gt_bounds_result check_utf16(const unsigned char *p, uint64_t units)
{
    uint64_t i;

    if (units == 0)
        return GT_BOUNDS_MALFORMED;     /* libplist refuses it */
    for (i = 0; i < units; i++) {
        unsigned u = (unsigned)read_be(p + 2 * i, 2);
        if (u == 0)
            return GT_BOUNDS_NUL;
        if (u >= 0xdc00 && u <= 0xdfff)
            return GT_BOUNDS_MALFORMED; /* trail without a lead */
        if (u >= 0xd800 && u <= 0xdbff) {
            unsigned next = i + 1 < units ? (unsigned)read_be(p + 2 * i + 2, 2) : 0;
            if (next < 0xdc00 || next > 0xdfff)
                return GT_BOUNDS_MALFORMED;
            i++;
        }
    }
    return GT_BOUNDS_OK;
}

static gt_bounds_result bplist_text(const bplist_doc *d, uint64_t pos,
                                    bplist_object *o)
{
    uint64_t count = 0, unit = o->type == BPLIST_UTF16 ? 2 : 1;

    if (bplist_count(d, &pos, &count) != 0 || count > d->table_off
        || pos + count * unit > d->table_off)
        return GT_BOUNDS_MALFORMED;
    o->payload = count * (o->type == BPLIST_UTF16 ? 3 : 1);
    if (o->type == BPLIST_UTF16)
        return check_utf16(d->buf + pos, count);
    if (o->type == BPLIST_ASCII && memchr(d->buf + pos, '\0', (size_t)count))
        return GT_BOUNDS_NUL;
    return GT_BOUNDS_OK;
}

static gt_bounds_result bplist_container(const bplist_doc *d, uint64_t pos,
                                         bplist_object *o)
{
    uint64_t count = 0;

    if (bplist_count(d, &pos, &count) != 0 || count > d->table_off)
        return GT_BOUNDS_MALFORMED;
    if (o->type == BPLIST_DICT)
        count *= 2;
    if (pos + count * d->ref_size > d->table_off)
        return GT_BOUNDS_MALFORMED;
    o->refs = pos;
    o->count = count;
    return GT_BOUNDS_OK;
}

/* Reads object `ref` the way libplist would and refuses what it would
 * abort on, refuse, or read out of range. */
static gt_bounds_result bplist_describe(const bplist_doc *d, uint64_t ref,
                                        bplist_object *o)
{
    uint64_t pos;
    unsigned info;

    pos = read_be(d->buf + d->table_off + ref * d->offset_size, d->offset_size);
    if (pos < BPLIST_HEADER_LEN || pos >= d->table_off)
        return GT_BOUNDS_MALFORMED;
    o->described = 1;
    o->type = d->buf[pos] >> 4;
    info = d->buf[pos] & 0x0f;
    switch (o->type) {
    case BPLIST_SIMPLE:                 /* false, true; not null or fill */
        return info == 0x8 || info == 0x9 ? GT_BOUNDS_OK : GT_BOUNDS_MALFORMED;
    case BPLIST_INT:
        return bplist_fixed(d, pos, info <= 4 ? 1u << info : 0);
    case BPLIST_REAL:
        return bplist_fixed(d, pos, info == 2 || info == 3 ? 1u << info : 0);
    case BPLIST_DATE:
        return bplist_fixed(d, pos, info == 3 ? 8 : 0);
    case BPLIST_UID:
        return bplist_fixed(d, pos, info < 8 ? info + 1 : 0);
    case BPLIST_DATA: case BPLIST_ASCII: case BPLIST_UTF16:
        return bplist_text(d, pos, o);
    case BPLIST_ARRAY: case BPLIST_SET: case BPLIST_DICT:
        return bplist_container(d, pos, o);
    }
    return GT_BOUNDS_MALFORMED;
}

static int is_container_type(unsigned type)
{
    return type == BPLIST_ARRAY || type == BPLIST_SET || type == BPLIST_DICT;
}

/* Pushes a container's references; a dict's first half are its keys. */
static gt_bounds_result bplist_push_children(const bplist_doc *d,
                                             const bplist_object *o,
                                             unsigned depth, uint64_t visited,
                                             bplist_pending *stack, size_t *sp,
                                             const gt_plist_limits *lim)
{
    uint64_t i;

    if (depth > lim->max_depth)
        return GT_BOUNDS_TOO_DEEP;
    if (o->count > lim->max_objects
        || visited + *sp + o->count > lim->max_objects)
        return GT_BOUNDS_TOO_MANY;
    for (i = 0; i < o->count; i++) {
        bplist_pending *next = &stack[(*sp)++];
        next->ref = read_be(d->buf + o->refs + i * d->ref_size, d->ref_size);
        next->depth = depth + 1;
        next->is_key = o->type == BPLIST_DICT && i < o->count / 2;
    }
    return GT_BOUNDS_OK;
}

/* Visits every object once per reference from the top object, so the
 * count, depth and expanded size are those of the tree libplist builds. */
static gt_bounds_result bplist_walk(apr_pool_t *pool, bplist_doc *d,
                                    const gt_plist_limits *lim)
{
    bplist_pending *stack = apr_palloc(pool, sizeof(*stack)
                                             * ((size_t)lim->max_objects + 1));
    uint64_t visited = 0, expanded = 0;
    size_t sp = 0;
    gt_bounds_result res;

    stack[sp].ref = d->top;
    stack[sp].depth = 1;
    stack[sp].is_key = 0;
    sp++;
    while (sp > 0) {
        bplist_pending cur = stack[--sp];
        bplist_object *o;

        if (++visited > lim->max_objects)
            return GT_BOUNDS_TOO_MANY;
        if (cur.ref >= d->num_objects)
            return GT_BOUNDS_MALFORMED;
        o = &d->objects[cur.ref];
        if (!o->described && (res = bplist_describe(d, cur.ref, o)) != GT_BOUNDS_OK)
            return res;
        if (cur.is_key && o->type != BPLIST_ASCII && o->type != BPLIST_UTF16)
            return GT_BOUNDS_MALFORMED;
        if (!add_cost(&expanded, GT_PLIST_NODE_COST + o->payload,
                      lim->max_expanded))
            return GT_BOUNDS_TOO_BIG;
        if (is_container_type(o->type)
            && (res = bplist_push_children(d, o, cur.depth, visited, stack,
                                           &sp, lim)) != GT_BOUNDS_OK)
            return res;
    }
    return GT_BOUNDS_OK;
}

gt_bounds_result gt_bplist_check(apr_pool_t *pool,
                                 const unsigned char *buf, size_t len,
                                 const gt_plist_limits *lim)
{
    bplist_doc d;
    gt_bounds_result res = bplist_read_trailer(&d, buf, len, lim);

    if (res != GT_BOUNDS_OK)
        return res;
    d.objects = apr_pcalloc(pool, sizeof(*d.objects) * (size_t)d.num_objects);
    return bplist_walk(pool, &d, lim);
}

/* ---- XML plists ------------------------------------------------------- */

/* Returns the position just after `end` at or after p, or NULL. */
static const char *skip_past(const char *p, const char *stop, const char *end)
{
    size_t n = strlen(end);
    while (p + n <= stop) {
        const char *hit = memchr(p, end[0], (size_t)(stop - p));
        if (!hit || hit + n > stop)
            return NULL;
        if (memcmp(hit, end, n) == 0)
            return hit + n;
        p = hit + 1;
    }
    return NULL;
}

static int starts_with(const char *p, const char *stop, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(stop - p) >= n && memcmp(p, lit, n) == 0;
}

static int is_container(const char *name, size_t n)
{
    return (n == 4 && memcmp(name, "dict", 4) == 0)
        || (n == 5 && memcmp(name, "array", 5) == 0);
}

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * The '>' that ends the markup starting after p, or NULL.  libplist skips
 * quoted text inside markup and this scanner does not read attributes, so
 * markup whose quotes hold '<' or '>' (where the two could see different
 * tags), or holds a '<' or '[' at all, is refused.
 */
static const char *markup_end(const char *p, const char *stop)
{
    char quote = 0;

    for (; p < stop; p++) {
        if (*p == '<' || (!quote && *p == '['))
            return NULL;
        if (quote) {
            if (*p == '>')
                return NULL;
            if (*p == quote)
                quote = 0;
        }
        else if (*p == '"' || *p == '\'')
            quote = *p;
        else if (*p == '>')
            return p;
    }
    return NULL;
}

/* "&#0;", "&#x000;" and the like: the only way to write a NUL in XML. */
static int has_nul_reference(const char *buf, size_t len)
{
    const char *p = buf, *stop = buf + len;

    while ((p = skip_past(p, stop, "&#")) != NULL) {
        const char *digits;
        if (p < stop && (*p == 'x' || *p == 'X'))
            p++;
        digits = p;
        while (p < stop && *p == '0')
            p++;
        if (p > digits && p < stop && *p == ';')
            return 1;
    }
    return 0;
}

typedef struct {
    unsigned depth, objects;
} xml_counts;

static gt_bounds_result xml_end_tag(const char *name, const char *gt,
                                    xml_counts *c)
{
    size_t n = (size_t)(gt - name);

    while (n > 0 && is_space(name[n - 1]))
        n--;
    if (is_container(name, n)) {
        if (c->depth == 0)
            return GT_BOUNDS_MALFORMED;
        c->depth--;
    }
    return GT_BOUNDS_OK;
}

static gt_bounds_result xml_start_tag(const char *name, const char *gt,
                                      xml_counts *c, const gt_plist_limits *lim)
{
    size_t n;

    for (n = 0; name + n < gt && !is_space(name[n]) && name[n] != '/'; n++)
        ;
    if (n == 5 && memcmp(name, "plist", 5) == 0)
        return GT_BOUNDS_OK;
    if (++c->objects > lim->max_objects)
        return GT_BOUNDS_TOO_MANY;
    if (is_container(name, n) && gt[-1] != '/' && ++c->depth > lim->max_depth)
        return GT_BOUNDS_TOO_DEEP;
    return GT_BOUNDS_OK;
}

/* One markup construct at p ('<'); *next is set past it (NULL: unended). */
static gt_bounds_result xml_markup(const char *p, const char *stop,
                                   const char **next, xml_counts *c,
                                   const gt_plist_limits *lim)
{
    const char *gt;

    if (starts_with(p, stop, "<!--")) {
        *next = skip_past(p + 4, stop, "-->");
        return GT_BOUNDS_OK;
    }
    if (starts_with(p, stop, "<![CDATA[")) {
        *next = skip_past(p + 9, stop, "]]>");
        return GT_BOUNDS_OK;
    }
    gt = markup_end(p + 1, stop);
    *next = gt ? gt + 1 : NULL;
    /* a processing instruction ends at "?>", and there only */
    if (gt && p[1] == '?' && (gt - p < 3 || gt[-1] != '?'))
        return GT_BOUNDS_MALFORMED;
    if (!gt || p[1] == '?' || p[1] == '!')
        return GT_BOUNDS_OK;
    if (p[1] == '/')
        return xml_end_tag(p + 2, gt, c);
    return xml_start_tag(p + 1, gt, c, lim);
}

gt_bounds_result gt_xmlplist_check(const char *buf, size_t len,
                                   const gt_plist_limits *lim)
{
    const char *p = buf, *stop = buf + len;
    xml_counts c = { 0, 0 };
    uint64_t expanded = 0;

    if (memchr(buf, '\0', len) || has_nul_reference(buf, len))
        return GT_BOUNDS_NUL;
    while ((p = memchr(p, '<', (size_t)(stop - p))) != NULL) {
        gt_bounds_result res = xml_markup(p, stop, &p, &c, lim);
        if (res != GT_BOUNDS_OK)
            return res;
        if (!p)
            return GT_BOUNDS_MALFORMED;
    }
    /* Text never grows when parsed (entities and base64 shrink), so the
     * document's length bounds every string and data together. */
    if (!add_cost(&expanded, (uint64_t)c.objects * GT_PLIST_NODE_COST,
                  lim->max_expanded)
        || !add_cost(&expanded, len, lim->max_expanded))
        return GT_BOUNDS_TOO_BIG;
    return GT_BOUNDS_OK;
}
