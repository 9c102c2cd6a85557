/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_plist.h - every way a client's plist is read or an answer written.
 *
 * Bounds: structural limits checked before libplist parses.
 * libplist 2.2's XML and binary parsers recurse once per nesting level,
 * copy a binary-plist object once per reference to it, and assert (abort
 * the process) on a key holding a NUL; every check-in byte is
 * attacker-chosen.  These scanners walk the raw bytes iteratively and
 * refuse a document that nests deeper, holds more objects, or expands to
 * more bytes than the limits, or that holds anything libplist would abort
 * on, so libplist only ever sees documents of bounded depth and size.
 */
#ifndef GT_PLIST_H
#define GT_PLIST_H

#include <stddef.h>
#include "apr_pools.h"

#include <plist/plist.h>

typedef struct gt_plist_limits {
    unsigned max_depth;     /* containers inside containers, top level = 1 */
    unsigned max_objects;   /* values (and keys) in the expanded document:
                             * a binary object counts once per reference */
    apr_size_t max_expanded; /* expanded size in bytes (see below) */
} gt_plist_limits;

/* Limits that hold every real check-in message with a wide margin. */
#define GT_PLIST_MAX_DEPTH    16
#define GT_PLIST_MAX_OBJECTS  4096
#define GT_PLIST_MAX_EXPANDED (1024 * 1024)

/*
 * Expanded size: what libplist allocates for the parsed tree.  Every node
 * (a binary object once per reference to it, containers recursively; an
 * XML element) costs GT_PLIST_NODE_COST, plus the bytes of its string or
 * data (a UTF-16 string at 3 bytes per unit, its longest UTF-8 form).
 */
#define GT_PLIST_NODE_COST 32

typedef enum {
    GT_BOUNDS_OK = 0,
    GT_BOUNDS_TOO_DEEP,
    GT_BOUNDS_TOO_MANY,
    GT_BOUNDS_MALFORMED,
    GT_BOUNDS_TOO_BIG,      /* expanded size over the limit */
    GT_BOUNDS_NUL,          /* a key or string holds a NUL */
    GT_BOUNDS_TOO_LONG      /* a key or string is over the length limit */
} gt_bounds_result;

/* Binary plist ("bplist00"): checks the trailer, the offset table, every
 * object libplist would read (sizes, NUL-free text, valid UTF-16, string
 * keys), and walks the object graph from the top object with an explicit
 * stack, once per reference, so shared objects count each time. */
gt_bounds_result gt_bplist_check(apr_pool_t *pool,
                                 const unsigned char *buf, size_t len,
                                 const gt_plist_limits *lim);

/* XML plist: counts element nesting and elements, skipping comments,
 * processing instructions, DOCTYPE and CDATA; refuses NUL bytes, &#0;,
 * internal DTD subsets, and quoted '<' or '>' inside markup (where
 * libplist and this scanner could disagree on where a tag ends). */
gt_bounds_result gt_xmlplist_check(const char *buf, size_t len,
                                   const gt_plist_limits *lim);

/*
 * The one way a client's bytes reach libplist: the check above for the
 * encoding, then plist_from_bin / plist_from_xml.  *root is NULL when the
 * result is not GT_BOUNDS_OK or libplist refused the document; otherwise
 * it is freed with `pool`.  A body that is neither binary nor starts like
 * XML is GT_BOUNDS_MALFORMED.
 */
gt_bounds_result gt_plist_parse_bounded(apr_pool_t *pool, const char *buf,
                                        apr_size_t len,
                                        const gt_plist_limits *lim,
                                        plist_t *root);

/*
 * Walks a parsed tree iteratively (its stack from `pool`) and checks it
 * against `lim` (depth, nodes, expanded size as defined above) and, when
 * max_string > 0, that no key or string is longer than max_string bytes;
 * strings must be NUL-free.
 * Keys are read with plist_get_key_val, which aborts on a key holding a
 * NUL: only call this on a tree whose document passed the checks above.
 */
gt_bounds_result gt_plist_tree_check(apr_pool_t *pool, plist_t root,
                                     const gt_plist_limits *lim,
                                     apr_size_t max_string);

/*
 * For fuzzing: true when a tree parsed from a document that passed
 * gt_bplist_check / gt_xmlplist_check with `lim` stays within `lim` inside
 * libplist.  False means the pre-check let through something it should
 * not have (a bug to report), never merely hostile input.
 */
int gt_plist_within_bounds(apr_pool_t *pool, plist_t root,
                           const gt_plist_limits *lim);

const char *gt_bounds_reason(gt_bounds_result res);

/*
 * gt_plist_parse_bounded for a body that must be a dict: GT_BOUNDS_OK with
 * *root a dict, or another result with *why; GT_BOUNDS_MALFORMED also when
 * libplist refused the document or its top object is not a dict.
 */
gt_bounds_result gt_plist_parse_dict(apr_pool_t *pool, const char *buf,
                                     apr_size_t len,
                                     const gt_plist_limits *lim,
                                     plist_t *root, const char **why);

/* Copies a string node into the pool; NULL when it is not a string or holds
 * a NUL byte (which no identifier may). */
const char *gt_plist_string(apr_pool_t *pool, plist_t node);

/* Text held as <data> (NUL-free, 1..max_len bytes) or <string>, copied into
 * the pool; NULL otherwise.  Tokens travel as either. */
const char *gt_plist_text(apr_pool_t *pool, plist_t node, apr_size_t max_len);

/* One entry of an answer dict: a <string> when `string` is set, else
 * `data_len` bytes of `data` as base64 <data>. */
typedef struct gt_plist_xml_entry {
    const char *key;
    const char *string;
    const char *data;
    apr_size_t data_len;
} gt_plist_xml_entry;

/* An XML plist document holding one dict of `n` entries, from `pool`, with
 * its length in *out_len.  Strings are escaped. */
const char *gt_plist_xml_dict(apr_pool_t *pool,
                              const gt_plist_xml_entry *entries, apr_size_t n,
                              apr_size_t *out_len);

#endif
