/*
 * gt_plist_bounds.h - structural limits checked before libplist parses.
 *
 * libplist 2.2's XML and binary parsers recurse once per nesting level and
 * expand shared binary references; every check-in byte is attacker-chosen.
 * These scanners walk the raw bytes iteratively and refuse a document that
 * nests deeper or holds more objects than the limits, so libplist only ever
 * sees documents of bounded depth and size.
 */
#ifndef GT_PLIST_BOUNDS_H
#define GT_PLIST_BOUNDS_H

#include <stddef.h>
#include "apr_pools.h"

typedef struct gt_plist_limits {
    unsigned max_depth;     /* containers inside containers, top level = 1 */
    unsigned max_objects;   /* values (and keys) in the whole document */
} gt_plist_limits;

/* Limits that hold every real check-in message with a wide margin. */
#define GT_PLIST_MAX_DEPTH   16
#define GT_PLIST_MAX_OBJECTS 4096

typedef enum {
    GT_BOUNDS_OK = 0,
    GT_BOUNDS_TOO_DEEP,
    GT_BOUNDS_TOO_MANY,
    GT_BOUNDS_MALFORMED
} gt_bounds_result;

/* Binary plist ("bplist00"): checks the trailer, the offset table, and walks
 * the object graph from the top object with an explicit stack. */
gt_bounds_result gt_bplist_check(apr_pool_t *pool,
                                 const unsigned char *buf, size_t len,
                                 const gt_plist_limits *lim);

/* XML plist: counts element nesting and elements, skipping comments,
 * processing instructions, DOCTYPE and CDATA. */
gt_bounds_result gt_xmlplist_check(const char *buf, size_t len,
                                   const gt_plist_limits *lim);

const char *gt_bounds_reason(gt_bounds_result res);

#endif
