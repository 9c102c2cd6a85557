/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* gt_uuid: random version 4 UUIDs and the UUID shape check. */

#include <string.h>

#include "apr_pools.h"

#include "jose/gt_uuid.h"
#include "unit.h"

static apr_pool_t *pool;

static void setup(void) { ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS); }
static void teardown(void) { apr_pool_destroy(pool); }

START_TEST(uuids_are_random_v4)
{
    char a[37], b[37];
    ck_assert_int_eq(gt_uuid_v4(a), 0);
    ck_assert_int_eq(gt_uuid_v4(b), 0);
    ck_assert(gt_is_uuid(a));
    ck_assert_int_eq(a[14], '4');
    ck_assert(strchr("89ab", a[19]) != NULL);
    ck_assert_str_ne(a, b);
    ck_assert(!gt_is_uuid("3f2b6c1e-8d4a-4b7e-9c2f-1a5d3e7b9f0"));
    ck_assert(!gt_is_uuid("3f2b6c1e-8d4a-4b7e-9c2f-1a5d3e7b9f000"));
    ck_assert(!gt_is_uuid("3f2b6c1e_8d4a-4b7e-9c2f-1a5d3e7b9f00"));
    ck_assert(gt_is_uuid("3F2B6C1E-8D4A-4B7E-9C2F-1A5D3E7B9F00"));
}
END_TEST

Suite *uuid_suite(void)
{
    UNIT_SUITE("uuid", setup, teardown, 0,
               uuids_are_random_v4);
}
