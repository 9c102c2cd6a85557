/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_maid.h - the com.apple.maid token: a JWT whose claims
 * are exactly iss, iat, jti and service_type.
 */
#ifndef GT_MAID_H
#define GT_MAID_H

#include "apr_pools.h"
#include "../jose/gt_jose.h"
#include "gt_limits.h"

/* Signs a maid token issued by `server_uuid` at `now` (seconds) with a
 * fresh random jti, returned in jti_out.  NULL with *why on failure. */
const char *gt_maid_token(apr_pool_t *pool, const gt_jws_signer *signer,
                          const char *server_uuid, apr_int64_t now,
                          char jti_out[GT_UUID_SIZE], const char **why);

#endif
