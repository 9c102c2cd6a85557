/*
 * gt_plist_tree.c - the parse that follows the checks, and the check of
 * the tree libplist built from a document that passed them.
 *
 * The tree is read only through accessors that cannot assert on what the
 * pre-check let through (see gt_plist_bounds.h).
 */
#include "gt_plist_bounds.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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
