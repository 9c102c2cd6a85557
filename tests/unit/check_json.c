/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* gt_json: the strict flat objects of JWS headers and claims, and the
 * escaping of strings written into claims. */

#include <string.h>

#include "apr_pools.h"
#include "apr_tables.h"

#include "jose/gt_json.h"
#include "unit.h"

static apr_pool_t *pool;

static void setup(void) { ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS); }
static void teardown(void) { apr_pool_destroy(pool); }

static const char *json_why;
static apr_array_header_t *json(const char *s)
{
    json_why = NULL;
    return gt_json_parse_object(pool, s, strlen(s), 16, &json_why);
}

START_TEST(json_strings_are_escaped)
{
    ck_assert_str_eq(gt_json_string(pool, "plain"), "\"plain\"");
    ck_assert_str_eq(gt_json_string(pool, "a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\u000a\\u0001\"");
}
END_TEST

START_TEST(json_flat_object)
{
    apr_array_header_t *o = json(" {\"a\":\"x\\u00e9\\n\\ud83d\\ude00\", \"b\":-12,"
                                 "\"c\":true,\"d\":false,\"e\":null,\"f\":0} ");
    const gt_json_member *m;

    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->nelts, 6);
    m = gt_json_get(o, "a");
    ck_assert_int_eq(m->type, GT_JSON_STRING);
    ck_assert_str_eq(m->str, "x\xc3\xa9\n\xf0\x9f\x98\x80");
    ck_assert_int_eq(gt_json_get(o, "b")->num, -12);
    ck_assert_int_eq(gt_json_get(o, "c")->type, GT_JSON_TRUE);
    ck_assert_int_eq(gt_json_get(o, "e")->type, GT_JSON_NULL);
    ck_assert_ptr_null(gt_json_get(o, "z"));
    ck_assert_ptr_nonnull(json("{}"));
    ck_assert_int_eq(json("{\"n\":9223372036854775807}")->nelts, 1);
}
END_TEST

START_TEST(json_refusals)
{
    static const char *const bad[] = {
        "", "[]", "\"s\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
        "{\"a\":1 \"b\":2}", "{a:1}", "{\"a\":1}x", "{\"a\":1}{}",
        "{\"a\":{\"b\":1}}", "{\"a\":[1]}", "{\"a\":1.0}", "{\"a\":1e3}",
        "{\"a\":01}", "{\"a\":-}", "{\"a\":9223372036854775808}",
        "{\"a\":tru}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\udc00x\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\x01\"}",
        "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xff\"}",
        "{\"a\":\"abc", "{\"a\":1,\"a\":2}", "{\"iss\":1,\"i\\u0073s\":2}",
        "{\"a\":+1}",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(json(bad[i]) == NULL, "accepted: %s", bad[i]);
        ck_assert_ptr_nonnull(json_why);
    }
    /* embedded NUL in the raw bytes */
    ck_assert_ptr_null(gt_json_parse_object(pool, "{\"a\":\"x\0y\"}", 11, 4,
                                            &json_why));
    /* member cap */
    ck_assert_ptr_null(gt_json_parse_object(pool, "{\"a\":1,\"b\":2,\"c\":3}",
                                            19, 2, &json_why));
}
END_TEST

Suite *json_suite(void)
{
    UNIT_SUITE("json", setup, teardown, 0,
               json_strings_are_escaped, json_flat_object, json_refusals);
}
