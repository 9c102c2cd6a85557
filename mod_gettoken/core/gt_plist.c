/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_plist.c - the parse that follows the bounds checks, the check of the
 * tree libplist built from a document that passed them, reading strings
 * out of that tree, and writing XML answers.
 *
 * The tree is read only through accessors that cannot assert on what the
 * pre-check let through (see gt_plist.h).
 */
#include "gt_plist.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apr_base64.h"
#include "apr_strings.h"

static apr_status_t plist_cleanup(void *data)
{
    plist_free((plist_t)data);
    return APR_SUCCESS;
}

gt_bounds_result gt_plist_parse_bounded(apr_pool_t *pool, const char *buf,
                                        apr_size_t len,
                                        const gt_plist_limits *lim,
                                        plist_t *root)
{
    gt_bounds_result res;
    int binary;

    *root = NULL;
    if (len < 8 || len > UINT32_MAX)
        return GT_BOUNDS_MALFORMED;
    binary = plist_is_binary(buf, (uint32_t)len);
    if (binary)
        res = gt_bplist_check(pool, (const unsigned char *)buf, len, lim);
    else if (memchr(buf, '<', len < 512 ? len : 512))
        res = gt_xmlplist_check(buf, len, lim);
    else
        res = GT_BOUNDS_MALFORMED;
    if (res != GT_BOUNDS_OK)
        return res;
    if (binary)
        plist_from_bin(buf, (uint32_t)len, root);
    else
        plist_from_xml(buf, (uint32_t)len, root);
    if (*root)
        apr_pool_cleanup_register(pool, *root, plist_cleanup,
                                  apr_pool_cleanup_null);
    return GT_BOUNDS_OK;
}

typedef struct {
    plist_t node;
    unsigned depth;
} tree_pending;

typedef struct {
    tree_pending *stack;
    size_t sp;
    uint64_t visited;
    const gt_plist_limits *lim;
} tree_walk;

static gt_bounds_result tree_push(tree_walk *w, plist_t node, unsigned depth)
{
    if (!node)
        return GT_BOUNDS_MALFORMED;
    if (w->visited + w->sp + 1 > w->lim->max_objects)
        return GT_BOUNDS_TOO_MANY;
    w->stack[w->sp].node = node;
    w->stack[w->sp].depth = depth;
    w->sp++;
    return GT_BOUNDS_OK;
}

static gt_bounds_result tree_push_children(tree_walk *w, plist_t node,
                                           unsigned depth)
{
    gt_bounds_result res = GT_BOUNDS_OK;

    if (depth > w->lim->max_depth)
        return GT_BOUNDS_TOO_DEEP;
    if (plist_get_node_type(node) == PLIST_ARRAY) {
        uint32_t i, n = plist_array_get_size(node);
        for (i = 0; i < n && res == GT_BOUNDS_OK; i++)
            res = tree_push(w, plist_array_get_item(node, i), depth + 1);
    }
    else {
        plist_dict_iter it = NULL;
        plist_t val = NULL;
        plist_dict_new_iter(node, &it);
        if (!it)
            return GT_BOUNDS_MALFORMED;
        /* no key asked of the iterator: reading one may assert */
        for (;;) {
            plist_dict_next_item(node, it, NULL, &val);
            if (!val || res != GT_BOUNDS_OK)
                break;
            res = tree_push(w, plist_dict_item_get_key(val), depth + 1);
            if (res == GT_BOUNDS_OK)
                res = tree_push(w, val, depth + 1);
        }
        free(it);
    }
    return res;
}

/* Bytes a string, key or data node holds; checks text for NUL and length. */
static gt_bounds_result tree_payload(plist_t node, apr_size_t max_string,
                                     uint64_t *bytes)
{
    plist_type type = plist_get_node_type(node);
    uint64_t n = 0;

    *bytes = 0;
    if (type == PLIST_DATA) {
        plist_get_data_ptr(node, bytes);
        return GT_BOUNDS_OK;
    }
    if (type == PLIST_STRING) {
        const char *s = plist_get_string_ptr(node, &n);
        if (!s)
            return GT_BOUNDS_MALFORMED;
        if (memchr(s, '\0', (size_t)n))
            return GT_BOUNDS_NUL;
    }
    else if (type == PLIST_KEY) {
        char *key = NULL;
        plist_get_key_val(node, &key);
        if (!key)
            return GT_BOUNDS_MALFORMED;
        n = strlen(key);
        free(key);
    }
    else
        return GT_BOUNDS_OK;
    *bytes = n;
    return max_string && n > max_string ? GT_BOUNDS_TOO_LONG : GT_BOUNDS_OK;
}

gt_bounds_result gt_plist_tree_check(apr_pool_t *pool, plist_t root,
                                     const gt_plist_limits *lim,
                                     apr_size_t max_string)
{
    tree_walk w;
    uint64_t expanded = 0, bytes;
    gt_bounds_result res;

    w.stack = apr_palloc(pool, sizeof(*w.stack) * ((size_t)lim->max_objects + 1));
    w.sp = 0;
    w.visited = 0;
    w.lim = lim;
    if ((res = tree_push(&w, root, 1)) != GT_BOUNDS_OK)
        return res;
    while (w.sp > 0) {
        tree_pending cur = w.stack[--w.sp];
        plist_type type = plist_get_node_type(cur.node);

        if (++w.visited > lim->max_objects)
            return GT_BOUNDS_TOO_MANY;
        if ((res = tree_payload(cur.node, max_string, &bytes)) != GT_BOUNDS_OK)
            return res;
        /* expanded never passes the limit, so the subtraction is safe */
        if (GT_PLIST_NODE_COST + bytes > lim->max_expanded - expanded)
            return GT_BOUNDS_TOO_BIG;
        expanded += GT_PLIST_NODE_COST + bytes;
        if ((type == PLIST_ARRAY || type == PLIST_DICT)
            && (res = tree_push_children(&w, cur.node, cur.depth)) != GT_BOUNDS_OK)
            return res;
    }
    return GT_BOUNDS_OK;
}

int gt_plist_within_bounds(apr_pool_t *pool, plist_t root,
                           const gt_plist_limits *lim)
{
    return gt_plist_tree_check(pool, root, lim, 0) == GT_BOUNDS_OK;
}

gt_bounds_result gt_plist_parse_dict(apr_pool_t *pool, const char *buf,
                                     apr_size_t len,
                                     const gt_plist_limits *lim,
                                     plist_t *root, const char **why)
{
    gt_bounds_result bounds = gt_plist_parse_bounded(pool, buf, len, lim,
                                                     root);

    if (bounds != GT_BOUNDS_OK) {
        *why = gt_bounds_reason(bounds);
        return bounds;
    }
    if (!*root) {
        *why = "the body is not a well-formed plist";
        return GT_BOUNDS_MALFORMED;
    }
    if (plist_get_node_type(*root) != PLIST_DICT) {
        *why = "the body is a plist but not a dict";
        return GT_BOUNDS_MALFORMED;
    }
    return GT_BOUNDS_OK;
}

const char *gt_plist_string(apr_pool_t *pool, plist_t node)
{
    const char *s;
    uint64_t n = 0;

    if (!node || plist_get_node_type(node) != PLIST_STRING)
        return NULL;
    s = plist_get_string_ptr(node, &n);
    if (!s || memchr(s, '\0', (size_t)n))
        return NULL;
    return apr_pstrmemdup(pool, s, (apr_size_t)n);
}

const char *gt_plist_text(apr_pool_t *pool, plist_t node, apr_size_t max_len)
{
    const char *d;
    uint64_t n = 0;

    if (node && plist_get_node_type(node) == PLIST_DATA) {
        d = plist_get_data_ptr(node, &n);
        if (!d || n == 0 || n > max_len || memchr(d, '\0', (size_t)n))
            return NULL;
        return apr_pstrmemdup(pool, d, (apr_size_t)n);
    }
    return gt_plist_string(pool, node);
}

/* ---- XML answers ------------------------------------------------------ */

#define XML_HEAD \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" " \
    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n" \
    "<plist version=\"1.0\">\n<dict>\n"
#define XML_TAIL "</dict>\n</plist>\n"

static const char *xml_escape(apr_pool_t *pool, const char *s)
{
    apr_size_t n = 0, i;
    char *out, *o;

    for (i = 0; s[i]; i++)
        n += s[i] == '&' ? 5 : (s[i] == '<' || s[i] == '>') ? 4 : 1;
    if (n == i)
        return s;
    out = o = apr_palloc(pool, n + 1);
    for (i = 0; s[i]; i++) {
        if (s[i] == '&') { memcpy(o, "&amp;", 5); o += 5; }
        else if (s[i] == '<') { memcpy(o, "&lt;", 4); o += 4; }
        else if (s[i] == '>') { memcpy(o, "&gt;", 4); o += 4; }
        else *o++ = s[i];
    }
    *o = '\0';
    return out;
}

static const char *xml_base64(apr_pool_t *pool, const char *data,
                              apr_size_t len)
{
    /* apr_base64_encode_len counts the terminating NUL */
    char *out = apr_palloc(pool, (apr_size_t)apr_base64_encode_len((int)len));

    apr_base64_encode(out, data, (int)len);
    return out;
}

static void iov_put(struct iovec *v, apr_size_t *nv, const char *s)
{
    v[*nv].iov_base = (void *)s;
    v[*nv].iov_len = strlen(s);
    (*nv)++;
}

/* Pieces a dict entry is written with. */
#define XML_ENTRY_PIECES 5

const char *gt_plist_xml_dict(apr_pool_t *pool,
                              const gt_plist_xml_entry *entries, apr_size_t n,
                              apr_size_t *out_len)
{
    struct iovec *v = apr_palloc(pool, sizeof(*v) * (n * XML_ENTRY_PIECES + 2));
    apr_size_t nv = 0, i;

    iov_put(v, &nv, XML_HEAD);
    for (i = 0; i < n; i++) {
        const gt_plist_xml_entry *e = &entries[i];
        int is_string = e->string != NULL;

        iov_put(v, &nv, "\t<key>");
        iov_put(v, &nv, xml_escape(pool, e->key));
        iov_put(v, &nv, is_string ? "</key>\n\t<string>" : "</key>\n\t<data>");
        iov_put(v, &nv, is_string ? xml_escape(pool, e->string)
                                  : xml_base64(pool, e->data, e->data_len));
        iov_put(v, &nv, is_string ? "</string>\n" : "</data>\n");
    }
    iov_put(v, &nv, XML_TAIL);
    return apr_pstrcatv(pool, v, nv, out_len);
}
