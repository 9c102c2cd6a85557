/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* gt_checkin: recognising and validating GetToken check-ins. */
#include <stdlib.h>
#include <string.h>

#include "apr_pools.h"
#include "apr_strings.h"
#include <plist/plist.h>

#include "core/gt_checkin.h"
#include "unit.h"
#include "unit_cert.h"

static apr_pool_t *pool;
static const gt_plist_limits limits = {
    GT_PLIST_MAX_DEPTH, GT_PLIST_MAX_OBJECTS, GT_PLIST_MAX_EXPANDED
};

static void setup(void) { ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS); }
static void teardown(void) { apr_pool_destroy(pool); }

static plist_t base_message(void)
{
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "MessageType", plist_new_string("GetToken"));
    plist_dict_set_item(d, "TokenServiceType", plist_new_string("com.apple.maid"));
    plist_dict_set_item(d, "UDID", plist_new_string("0000-UDID"));
    return d;
}

/* Serialises and frees d; both formats are exercised by every test. */
static const char *serialise(plist_t d, int binary, apr_size_t *len)
{
    return unit_plist_bytes(pool, d, binary, len);
}

static gt_checkin_result parse(plist_t d, int binary, gt_checkin *msg, const char **why)
{
    apr_size_t len;
    const char *buf = serialise(d, binary, &len);
    return gt_checkin_parse(pool, buf, len, &limits, msg, why);
}

/* base_message() with key set to value, or removed when value is NULL. */
static plist_t base_with(const char *key, plist_t value)
{
    plist_t d = base_message();

    if (value)
        plist_dict_set_item(d, key, value);
    else
        plist_dict_remove_item(d, key);
    return d;
}

/* Parses d (freed): the result must be want and, when why_has is given,
 * the reason must name it. */
static void parse_is(plist_t d, int binary, gt_checkin_result want,
                     const char *why_has)
{
    gt_checkin msg;
    const char *why = NULL;

    ck_assert_int_eq(parse(d, binary, &msg, &why), want);
    if (why_has)
        ck_assert_msg(why && strstr(why, why_has),
                      "why '%s' lacks '%s'", why ? why : "(null)", why_has);
}

START_TEST(valid_device_enrollment)
{
    gt_checkin msg;
    const char *why = NULL;
    ck_assert_int_eq(parse(base_message(), _i, &msg, &why), GT_CHECKIN_GETTOKEN);
    ck_assert_str_eq(msg.service_type, "com.apple.maid");
    ck_assert_str_eq(msg.udid, "0000-UDID");
    ck_assert_str_eq(gt_checkin_enrollment(&msg), "0000-UDID");
    ck_assert_ptr_null(msg.token_parameters);
}
END_TEST

START_TEST(valid_user_enrollment_with_parameters)
{
    gt_checkin msg;
    const char *why = NULL;
    plist_t d = plist_new_dict(), params = plist_new_dict();
    plist_dict_set_item(d, "MessageType", plist_new_string("GetToken"));
    plist_dict_set_item(d, "TokenServiceType", plist_new_string("com.apple.watch.pairing"));
    plist_dict_set_item(d, "EnrollmentID", plist_new_string("ENR-1"));
    plist_dict_set_item(d, "EnrollmentUserID", plist_new_string("USER-1"));
    plist_dict_set_item(d, "UserShortName", plist_new_string("jo"));
    plist_dict_set_item(params, "SecurityToken", plist_new_string("s3cr3t"));
    plist_dict_set_item(params, "Count", plist_new_uint(3));   /* not listed */
    plist_dict_set_item(d, "TokenParameters", params);
    ck_assert_int_eq(parse(d, _i, &msg, &why), GT_CHECKIN_GETTOKEN);
    ck_assert_ptr_null(msg.udid);
    ck_assert_str_eq(gt_checkin_enrollment(&msg), "ENR-1");
    ck_assert_str_eq(msg.enrollment_user_id, "USER-1");
    ck_assert_str_eq(msg.user_short_name, "jo");
    ck_assert_ptr_nonnull(msg.token_parameters);
    ck_assert_str_eq(apr_table_get(msg.token_parameters, "SecurityToken"), "s3cr3t");
    ck_assert_ptr_null(apr_table_get(msg.token_parameters, "Count"));
}
END_TEST

START_TEST(udid_wins_over_enrollment_id)
{
    gt_checkin msg;
    const char *why = NULL;
    plist_t d = base_with("EnrollmentID", plist_new_string("ENR-1"));

    ck_assert_int_eq(parse(d, _i, &msg, &why), GT_CHECKIN_GETTOKEN);
    ck_assert_str_eq(gt_checkin_enrollment(&msg), "0000-UDID");
}
END_TEST

START_TEST(other_message_types_are_not_ours)
{
    plist_t not_a_dict = plist_new_array();

    plist_array_append_item(not_a_dict, plist_new_string("GetToken"));
    parse_is(base_with("MessageType", plist_new_string("TokenUpdate")), _i,
             GT_CHECKIN_NOT_OURS, NULL);
    parse_is(base_with("MessageType", NULL), _i, GT_CHECKIN_NOT_OURS, NULL);
    parse_is(base_with("MessageType", plist_new_uint(1)), _i,
             GT_CHECKIN_NOT_OURS, NULL);
    parse_is(not_a_dict, _i, GT_CHECKIN_NOT_OURS, NULL);
}
END_TEST

START_TEST(non_plists_are_not_ours)
{
    gt_checkin msg;
    const char *why = NULL;
    static const char *bodies[] = {
        "", "hello", "{\"MessageType\":\"GetToken\"}", "<html><body>x</body></html>",
        "<?xml version=\"1.0\"?><plist><dict><key>MessageType</key>",
        "bplist00\x01\x02",
    };
    size_t i;
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++)
        ck_assert_int_eq(gt_checkin_parse(pool, bodies[i], strlen(bodies[i]) + (i == 5 ? 2 : 0),
                                          &limits, &msg, &why), GT_CHECKIN_NOT_OURS);
}
END_TEST

/* Each case: a key set to a wrong value (or removed) -> 400, the reason
 * naming it where given. */
START_TEST(invalid_messages)
{
    plist_t watch_udid_not_string = plist_new_dict();
    size_t i;

    plist_dict_set_item(watch_udid_not_string, "WatchUDID", plist_new_uint(5));
    {
        const struct {
            const char *key;
            plist_t value;
            const char *why;
        } cases[] = {
            { "TokenServiceType", NULL, "TokenServiceType" },
            { "TokenServiceType", plist_new_uint(7), "TokenServiceType" },
            { "TokenServiceType", plist_new_string(""), NULL },
            { "UDID", NULL, "UDID" },
            { "UDID", plist_new_data("abc", 3), "UDID" },
            { "UserLongName", plist_new_bool(1), "UserLongName" },
            { "TokenParameters", plist_new_string("x"), "TokenParameters" },
            { "TokenParameters", watch_udid_not_string, NULL },
        };

        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
            parse_is(base_with(cases[i].key, cases[i].value), _i,
                     GT_CHECKIN_INVALID, cases[i].why);
    }
}
END_TEST

/* A string of n 'a's, from the pool. */
static char *string_of(apr_size_t n)
{
    char *s = apr_palloc(pool, n + 1);
    memset(s, 'a', n);
    s[n] = '\0';
    return s;
}

START_TEST(strings_up_to_1_kib_are_accepted)
{
    gt_checkin msg;
    const char *why = NULL;
    plist_t d = base_message(), params = plist_new_dict();
    const char *kib = string_of(GT_MAX_STRING);

    plist_dict_set_item(d, "UDID", plist_new_string(kib));
    plist_dict_set_item(params, kib, plist_new_string(kib));
    plist_dict_set_item(d, "TokenParameters", params);
    ck_assert_int_eq(parse(d, _i, &msg, &why), GT_CHECKIN_GETTOKEN);
    ck_assert_str_eq(msg.udid, kib);
    ck_assert_str_eq(apr_table_get(msg.token_parameters, kib), kib);
}
END_TEST

/* 1 KiB + 1 anywhere in a GetToken: a value, a TokenParameters key or
 * value, a string nested deeper, a key of the message itself -> 400. */
START_TEST(strings_over_1_kib_are_invalid)
{
    gt_checkin msg;
    const char *why = NULL;
    const char *long_one = string_of(GT_MAX_STRING + 1);
    plist_t d, params, list;
    int where;

    for (where = 0; where < 5; where++) {
        d = base_message();
        params = plist_new_dict();
        list = plist_new_array();
        plist_array_append_item(list, plist_new_string(where == 3 ? long_one : "x"));
        plist_dict_set_item(params, "List", list);
        plist_dict_set_item(params, where == 1 ? long_one : "k",
                            plist_new_string(where == 2 ? long_one : "v"));
        plist_dict_set_item(d, "TokenParameters", params);
        if (where == 0)
            plist_dict_set_item(d, "UDID", plist_new_string(long_one));
        if (where == 4)
            plist_dict_set_item(d, long_one, plist_new_bool(1));
        ck_assert_int_eq(parse(d, _i, &msg, &why), GT_CHECKIN_INVALID);
        ck_assert_ptr_nonnull(strstr(why, "1 KiB"));
    }
}
END_TEST

/* The 1 KiB rule is the GetToken's: other messages still pass on. */
START_TEST(long_strings_in_other_messages_are_not_ours)
{
    gt_checkin msg;
    const char *why = NULL;
    plist_t d = base_message();
    plist_dict_set_item(d, "MessageType", plist_new_string("Authenticate"));
    plist_dict_set_item(d, "Topic", plist_new_string(string_of(20000)));
    ck_assert_int_eq(parse(d, _i, &msg, &why), GT_CHECKIN_NOT_OURS);
    ck_assert_str_eq(why, "MessageType is not GetToken");
}
END_TEST

START_TEST(response_is_a_tokendata_plist)
{
    apr_size_t len = 0;
    const char *xml = gt_checkin_response_xml(pool, "a.b.c", 5, &len);
    plist_t root = NULL, data;
    char *bytes = NULL;
    uint64_t n = 0;

    ck_assert_uint_eq(strlen(xml), len);
    plist_from_xml(xml, (uint32_t)len, &root);
    ck_assert_ptr_nonnull(root);
    ck_assert_int_eq(plist_get_node_type(root), PLIST_DICT);
    ck_assert_uint_eq(plist_dict_get_size(root), 1);
    data = plist_dict_get_item(root, "TokenData");
    ck_assert_ptr_nonnull(data);
    ck_assert_int_eq(plist_get_node_type(data), PLIST_DATA);
    plist_get_data_val(data, &bytes, &n);
    ck_assert_uint_eq(n, 5);
    ck_assert_mem_eq(bytes, "a.b.c", 5);
    free(bytes);
    plist_free(root);
}
END_TEST

Suite *checkin_suite(void)
{
    Suite *s = suite_create("checkin");
    TCase *tc = tcase_create("parse");

    tcase_add_checked_fixture(tc, setup, teardown);
    /* _i = 0: XML, 1: binary */
    tcase_add_loop_test(tc, valid_device_enrollment, 0, 2);
    tcase_add_loop_test(tc, valid_user_enrollment_with_parameters, 0, 2);
    tcase_add_loop_test(tc, udid_wins_over_enrollment_id, 0, 2);
    tcase_add_loop_test(tc, other_message_types_are_not_ours, 0, 2);
    tcase_add_test(tc, non_plists_are_not_ours);
    tcase_add_loop_test(tc, invalid_messages, 0, 2);
    tcase_add_loop_test(tc, strings_up_to_1_kib_are_accepted, 0, 2);
    tcase_add_loop_test(tc, strings_over_1_kib_are_invalid, 0, 2);
    tcase_add_loop_test(tc, long_strings_in_other_messages_are_not_ours, 0, 2);
    tcase_add_test(tc, response_is_a_tokendata_plist);
    suite_add_tcase(s, tc);
    return s;
}
