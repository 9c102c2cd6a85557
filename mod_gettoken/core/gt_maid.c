/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_maid.c - com.apple.maid claims and signature.
 */
#include "gt_maid.h"

#include "apr_strings.h"

#include "../jose/gt_jose.h"
#include "gt_limits.h"

const char *gt_maid_token(apr_pool_t *pool, const gt_jws_signer *signer,
                          const char *server_uuid, apr_int64_t now,
                          char jti_out[GT_UUID_SIZE], const char **why)
{
    const char *claims;

    if (gt_uuid_v4(jti_out) != 0) {
        *why = "the random number generator failed (jti)";
        return NULL;
    }
    claims = apr_psprintf(pool,
                          "{\"iss\":%s,\"iat\":%" APR_INT64_T_FMT ","
                          "\"jti\":\"%s\",\"service_type\":\"" GT_SERVICE_MAID "\"}",
                          gt_json_string(pool, server_uuid), now, jti_out);
    return gt_jws_sign(pool, signer, claims, why);
}
