/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_json.h - a strict parser for the flat JSON objects of JWS headers and
 * JWT claim sets (RFC 8259 subset), and the escaping of strings written
 * into claims.
 *
 * Accepted: one object whose values are strings, integers, true, false or
 * null.  Refused: nested objects and arrays, fractions and exponents,
 * integers outside int64, invalid UTF-8, NUL characters (raw or \u0000),
 * lone surrogates, duplicate member names (compared after unescaping), more
 * than max_members members, and anything after the object but whitespace.
 * Every byte is attacker-chosen: nothing recurses, everything is bounded by
 * the input length.
 */
#ifndef GT_JSON_H
#define GT_JSON_H

#include "apr_pools.h"
#include "apr_tables.h"

typedef enum {
    GT_JSON_STRING,
    GT_JSON_INT,
    GT_JSON_TRUE,
    GT_JSON_FALSE,
    GT_JSON_NULL
} gt_json_type;

typedef struct gt_json_member {
    const char *name;       /* unescaped, NUL-terminated */
    gt_json_type type;
    const char *str;        /* GT_JSON_STRING: unescaped, NUL-terminated */
    apr_size_t str_len;
    apr_int64_t num;        /* GT_JSON_INT */
} gt_json_member;

/* An array of gt_json_member from `pool`, or NULL with *why (static text,
 * never input bytes). */
apr_array_header_t *gt_json_parse_object(apr_pool_t *pool, const char *buf,
                                         apr_size_t len, int max_members,
                                         const char **why);

/* `s` as a JSON string literal, quotes included: claims are built as
 * text, and every value a client chose goes through this. */
const char *gt_json_string(apr_pool_t *pool, const char *s);

/* The member called `name`, or NULL. */
const gt_json_member *gt_json_get(const apr_array_header_t *obj,
                                  const char *name);

#endif
