/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_b64url.h - base64url without padding (RFC 7515 §2), the encoding of
 * every JWS part.
 */
#ifndef GT_B64URL_H
#define GT_B64URL_H

#include "apr_pools.h"

const char *gt_b64url_encode(apr_pool_t *pool, const unsigned char *data,
                             apr_size_t len);

/* Strict decoder: only the base64url alphabet, no padding, no stray bits,
 * so that a token has one encoding only.  Returns 0 and a pool buffer with
 * room for one more byte after *out_len, or -1. */
int gt_b64url_decode(apr_pool_t *pool, const char *in, apr_size_t in_len,
                     unsigned char **out, apr_size_t *out_len);

#endif
