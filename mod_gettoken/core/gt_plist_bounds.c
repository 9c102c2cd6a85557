/*
 * gt_plist_bounds.c - iterative structure checks run before libplist.
 */
#include "gt_plist_bounds.h"

#include <stdint.h>
#include <string.h>

const char *gt_bounds_reason(gt_bounds_result res)
{
    switch (res) {
    case GT_BOUNDS_OK:        return "ok";
    case GT_BOUNDS_TOO_DEEP:  return "plist nests deeper than the limit";
    case GT_BOUNDS_TOO_MANY:  return "plist holds more objects than the limit";
    case GT_BOUNDS_MALFORMED: return "plist is malformed";
    }
    return "plist is malformed";
}

/* ---- binary plists ---------------------------------------------------- */

#define BPLIST_HEADER_LEN  8
#define BPLIST_TRAILER_LEN 32

typedef struct {
    const unsigned char *buf;
    uint64_t table_off;     /* objects live in [8, table_off) */
    uint64_t num_objects;
    unsigned offset_size, ref_size;
} bplist_doc;

typedef struct {
    uint64_t ref;
    unsigned depth;
} bplist_pending;

static uint64_t read_be(const unsigned char *p, unsigned n)
{
    uint64_t v = 0;
    while (n--)
        v = (v << 8) | *p++;
    return v;
}

/* Reads the element count of a variable-length object starting at *pos;
 * advances *pos past the marker and count. 0 on success. */
static int bplist_count(const bplist_doc *d, uint64_t *pos, uint64_t *count)
{
    unsigned info = d->buf[*pos] & 0x0f;
    (*pos)++;
    if (info != 0x0f) {
        *count = info;
        return 0;
    }
    if (*pos >= d->table_off || (d->buf[*pos] & 0xf0) != 0x10)
        return -1;
    {
        unsigned width = 1u << (d->buf[*pos] & 0x0f);
        if (width > 8 || *pos + 1 + width > d->table_off)
            return -1;
        *count = read_be(d->buf + *pos + 1, width);
        *pos += 1 + width;
    }
    return 0;
}

gt_bounds_result gt_bplist_check(apr_pool_t *pool,
                                 const unsigned char *buf, size_t len,
                                 const gt_plist_limits *lim)
{
    bplist_doc d;
    const unsigned char *trailer;
    uint64_t top, visited = 0;
    bplist_pending *stack;
    size_t sp = 0;
    gt_bounds_result res = GT_BOUNDS_OK;

    if (len < BPLIST_HEADER_LEN + BPLIST_TRAILER_LEN + 1
        || memcmp(buf, "bplist00", BPLIST_HEADER_LEN) != 0)
        return GT_BOUNDS_MALFORMED;
    trailer = buf + len - BPLIST_TRAILER_LEN;
    d.buf = buf;
    d.offset_size = trailer[6];
    d.ref_size = trailer[7];
    d.num_objects = read_be(trailer + 8, 8);
    top = read_be(trailer + 16, 8);
    d.table_off = read_be(trailer + 24, 8);

    if (d.offset_size < 1 || d.offset_size > 8 || d.ref_size < 1
        || d.ref_size > 8)
        return GT_BOUNDS_MALFORMED;
    if (d.num_objects == 0 || top >= d.num_objects)
        return GT_BOUNDS_MALFORMED;
    if (d.num_objects > lim->max_objects)
        return GT_BOUNDS_TOO_MANY;
    if (d.table_off < BPLIST_HEADER_LEN
        || d.table_off > len - BPLIST_TRAILER_LEN
        || d.num_objects * d.offset_size > len - BPLIST_TRAILER_LEN - d.table_off)
        return GT_BOUNDS_MALFORMED;

    stack = apr_palloc(pool, sizeof(*stack) * (lim->max_objects + 1));
    stack[sp].ref = top;
    stack[sp].depth = 1;
    sp++;

    while (sp > 0 && res == GT_BOUNDS_OK) {
        bplist_pending cur = stack[--sp];
        uint64_t pos, count = 0, width, i;
        unsigned type;

        if (++visited > lim->max_objects) {
            res = GT_BOUNDS_TOO_MANY;
            break;
        }
        if (cur.ref >= d.num_objects) {
            res = GT_BOUNDS_MALFORMED;
            break;
        }
        pos = read_be(buf + d.table_off + cur.ref * d.offset_size, d.offset_size);
        if (pos < BPLIST_HEADER_LEN || pos >= d.table_off) {
            res = GT_BOUNDS_MALFORMED;
            break;
        }
        type = buf[pos] >> 4;
        switch (type) {
        case 0x0:                         /* null, bool, fill */
            break;
        case 0x1: case 0x2:               /* int, real: 2^n bytes */
            width = 1u << (buf[pos] & 0x0f);
            if (width > 16 || pos + 1 + width > d.table_off)
                res = GT_BOUNDS_MALFORMED;
            break;
        case 0x3:                         /* date */
            if (pos + 9 > d.table_off)
                res = GT_BOUNDS_MALFORMED;
            break;
        case 0x8:                         /* uid: n+1 bytes */
            if (pos + 2 + (buf[pos] & 0x0f) > d.table_off)
                res = GT_BOUNDS_MALFORMED;
            break;
        case 0x4: case 0x5: case 0x6:     /* data, ASCII, UTF-16 */
            if (bplist_count(&d, &pos, &count) != 0
                || count > d.table_off
                || pos + count * (type == 0x6 ? 2 : 1) > d.table_off)
                res = GT_BOUNDS_MALFORMED;
            break;
        case 0xa: case 0xc: case 0xd:     /* array, set, dict */
            if (cur.depth > lim->max_depth) {
                res = GT_BOUNDS_TOO_DEEP;
                break;
            }
            if (bplist_count(&d, &pos, &count) != 0) {
                res = GT_BOUNDS_MALFORMED;
                break;
            }
            if (type == 0xd) {
                if (count > lim->max_objects) {
                    res = GT_BOUNDS_TOO_MANY;
                    break;
                }
                count *= 2;
            }
            if (count > lim->max_objects
                || visited + sp + count > lim->max_objects) {
                res = GT_BOUNDS_TOO_MANY;
                break;
            }
            if (pos + count * d.ref_size > d.table_off) {
                res = GT_BOUNDS_MALFORMED;
                break;
            }
            for (i = 0; i < count; i++) {
                stack[sp].ref = read_be(buf + pos + i * d.ref_size, d.ref_size);
                stack[sp].depth = cur.depth + 1;
                sp++;
            }
            break;
        default:
            res = GT_BOUNDS_MALFORMED;
        }
    }
    return res;
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

gt_bounds_result gt_xmlplist_check(const char *buf, size_t len,
                                   const gt_plist_limits *lim)
{
    const char *p = buf, *stop = buf + len;
    unsigned depth = 0, objects = 0;

    while ((p = memchr(p, '<', (size_t)(stop - p))) != NULL) {
        const char *name, *gt;
        size_t n;

        if (starts_with(p, stop, "<!--"))
            p = skip_past(p + 4, stop, "-->");
        else if (starts_with(p, stop, "<![CDATA["))
            p = skip_past(p + 9, stop, "]]>");
        else if (starts_with(p, stop, "<?"))
            p = skip_past(p + 2, stop, "?>");
        else if (starts_with(p, stop, "<!"))
            p = skip_past(p + 2, stop, ">");
        else if (starts_with(p, stop, "</")) {
            name = p + 2;
            gt = memchr(name, '>', (size_t)(stop - name));
            if (!gt)
                return GT_BOUNDS_MALFORMED;
            n = (size_t)(gt - name);
            while (n > 0 && (name[n - 1] == ' ' || name[n - 1] == '\t'
                             || name[n - 1] == '\r' || name[n - 1] == '\n'))
                n--;
            if (is_container(name, n)) {
                if (depth == 0)
                    return GT_BOUNDS_MALFORMED;
                depth--;
            }
            p = gt + 1;
        }
        else {
            name = p + 1;
            gt = memchr(name, '>', (size_t)(stop - name));
            if (!gt)
                return GT_BOUNDS_MALFORMED;
            for (n = 0; name + n < gt; n++) {
                char c = name[n];
                if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '/')
                    break;
            }
            if (!(n == 5 && memcmp(name, "plist", 5) == 0)) {
                if (++objects > lim->max_objects)
                    return GT_BOUNDS_TOO_MANY;
                if (is_container(name, n) && gt[-1] != '/') {
                    if (++depth > lim->max_depth)
                        return GT_BOUNDS_TOO_DEEP;
                }
            }
            p = gt + 1;
        }
        if (!p)
            return GT_BOUNDS_MALFORMED;
    }
    return GT_BOUNDS_OK;
}
