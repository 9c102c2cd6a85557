/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* gt_b64url: the unpadded base64url of every JWS part, strict both ways. */

#include <string.h>

#include "apr_pools.h"

#include "jose/gt_b64url.h"
#include "unit.h"

static apr_pool_t *pool;

static void setup(void) { ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS); }
static void teardown(void) { apr_pool_destroy(pool); }

START_TEST(b64url_round_trip)
{
    unsigned char data[64], *out = NULL;
    apr_size_t n, out_len = 0;
    int i;

    for (i = 0; i < 64; i++)
        data[i] = (unsigned char)(i * 37 + 250);
    for (n = 0; n <= sizeof(data); n++) {
        const char *enc = gt_b64url_encode(pool, data, n);
        ck_assert_ptr_null(strpbrk(enc, "+/="));
        ck_assert_int_eq(gt_b64url_decode(pool, enc, strlen(enc), &out, &out_len), 0);
        ck_assert_uint_eq(out_len, n);
        ck_assert_mem_eq(out, data, n);
    }
    ck_assert_str_eq(gt_b64url_encode(pool, (const unsigned char *)"\xfb\xff", 2), "-_8");
}
END_TEST

START_TEST(b64url_decoder_is_strict)
{
    unsigned char *out;
    apr_size_t n;
    ck_assert_int_eq(gt_b64url_decode(pool, "YQ==", 4, &out, &n), -1);   /* padding */
    ck_assert_int_eq(gt_b64url_decode(pool, "a+b/", 4, &out, &n), -1);   /* base64, not url */
    ck_assert_int_eq(gt_b64url_decode(pool, "YR", 2, &out, &n), -1);     /* stray bits */
    ck_assert_int_eq(gt_b64url_decode(pool, "Y", 1, &out, &n), -1);      /* impossible length */
    ck_assert_int_eq(gt_b64url_decode(pool, "YQ", 2, &out, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_int_eq(out[0], 'a');
}
END_TEST

Suite *b64url_suite(void)
{
    UNIT_SUITE("b64url", setup, teardown, 0,
               b64url_round_trip, b64url_decoder_is_strict);
}
