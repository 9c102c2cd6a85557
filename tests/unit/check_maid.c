/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* gt_maid: the com.apple.maid token's claims and signature. */

#include "apr_pools.h"
#include "apr_strings.h"

#include "core/gt_maid.h"
#include "unit.h"
#include "unit_keys.h"

static apr_pool_t *pool;

static void setup(void) { ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS); }
static void teardown(void) { apr_pool_destroy(pool); }

START_TEST(maid_token_claims)
{
    const char *why = NULL;
    char jti[GT_UUID_SIZE];
    EVP_PKEY *rsa = unit_rsa2048;
    const char *uuid = "3f2b6c1e-8d4a-4b7e-9c2f-1a5d3e7b9f00";
    const char *t = gt_maid_token(pool, unit_signer(pool, rsa, "RS256"), uuid, 1700000000, jti, &why);
    char *want;

    ck_assert_ptr_nonnull(t);
    ck_assert(gt_is_uuid(jti));
    want = apr_psprintf(pool, "{\"iss\":\"%s\",\"iat\":1700000000,\"jti\":\"%s\","
                        "\"service_type\":\"com.apple.maid\"}", uuid, jti);
    unit_verify_compact(pool, t, rsa, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}", want);
}
END_TEST

Suite *maid_suite(void)
{
    UNIT_SUITE("maid", setup, teardown, 0,
               maid_token_claims);
}

