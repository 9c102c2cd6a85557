/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* gt_plist_bounds: hostile structure is refused before libplist parses. */
#include <stdlib.h>
#include <string.h>

#include "apr_pools.h"
#include "apr_strings.h"
#include <plist/plist.h>

#include "core/gt_checkin.h"
#include "core/gt_plist.h"
#include "unit.h"

static apr_pool_t *pool;
static const gt_plist_limits limits = {
    GT_PLIST_MAX_DEPTH, GT_PLIST_MAX_OBJECTS, GT_PLIST_MAX_EXPANDED
};

static void setup(void) { ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS); }
static void teardown(void) { apr_pool_destroy(pool); }

/* XML: `depth` nested arrays, innermost holding "GetToken" when asked. */
static const char *nested_xml(int depth, int mention, apr_size_t *len)
{
    static const char head[] = "<?xml version=\"1.0\"?><!-- <array> in a comment -->"
                               "<plist version=\"1.0\">";
    static const char mid[] = "<string>GetToken</string>";
    char *s = apr_palloc(pool, sizeof(head) + (apr_size_t)depth * 15 + sizeof(mid) + 16);
    char *p = s;
    int i;

    memcpy(p, head, sizeof(head) - 1); p += sizeof(head) - 1;
    for (i = 0; i < depth; i++) { memcpy(p, "<array>", 7); p += 7; }
    if (mention) { memcpy(p, mid, sizeof(mid) - 1); p += sizeof(mid) - 1; }
    for (i = 0; i < depth; i++) { memcpy(p, "</array>", 8); p += 8; }
    memcpy(p, "</plist>", 9);
    *len = strlen(s);
    return s;
}

/*
 * Binary: objects 0..n-1, object i an array holding object i+1 (the last
 * one empty, or -- with `cycle` -- holding object 0 again).  One-byte
 * offsets and refs, so n <= 120.
 */
static const unsigned char *nested_bplist(int n, int cycle, apr_size_t *len)
{
    apr_size_t size = 8 + (apr_size_t)n * 2 + (apr_size_t)n + 32, pos = 8, table;
    unsigned char *b = apr_pcalloc(pool, size);
    int i;

    memcpy(b, "bplist00", 8);
    for (i = 0; i < n; i++) {
        if (i == n - 1 && !cycle) {
            b[pos++] = 0xa0;           /* empty array */
            b[pos++] = 0x00;           /* padding byte (null object never referenced) */
        }
        else {
            b[pos++] = 0xa1;           /* array of one */
            b[pos++] = (unsigned char)(i == n - 1 ? 0 : i + 1);
        }
    }
    table = pos;
    for (i = 0; i < n; i++)
        b[pos++] = (unsigned char)(8 + i * 2);
    b[pos + 6] = 1;                    /* offset size */
    b[pos + 7] = 1;                    /* ref size */
    b[pos + 15] = (unsigned char)n;    /* number of objects */
    b[pos + 23] = 0;                   /* top object */
    b[pos + 31] = (unsigned char)table;
    *len = pos + 32;
    return b;
}

START_TEST(xml_depth_limit)
{
    apr_size_t len;
    const char *ok = nested_xml(GT_PLIST_MAX_DEPTH, 0, &len);
    ck_assert_int_eq(gt_xmlplist_check(ok, len, &limits), GT_BOUNDS_OK);
    ok = nested_xml(GT_PLIST_MAX_DEPTH + 1, 0, &len);
    ck_assert_int_eq(gt_xmlplist_check(ok, len, &limits), GT_BOUNDS_TOO_DEEP);
}
END_TEST

START_TEST(xml_deep_bomb_is_refused_before_libplist)
{
    apr_size_t len;
    const char *bomb = nested_xml(20000, 0, &len);
    gt_checkin msg;
    const char *why = NULL;
    ck_assert_int_eq(gt_checkin_parse(pool, bomb, len, &limits, &msg, &why),
                     GT_CHECKIN_NOT_OURS);
    ck_assert_ptr_nonnull(strstr(why, "deeper"));
    /* over the bounds, a body that says GetToken is not answered either:
     * it goes on to the MDM, unparsed */
    bomb = nested_xml(20000, 1, &len);
    ck_assert_int_eq(gt_checkin_parse(pool, bomb, len, &limits, &msg, &why),
                     GT_CHECKIN_NOT_OURS);
}
END_TEST

START_TEST(xml_object_count_limit)
{
    char *s = apr_pstrdup(pool, "<plist><dict>");
    int i;
    for (i = 0; i < GT_PLIST_MAX_OBJECTS; i++)
        s = apr_pstrcat(pool, s, "<key>k</key>", NULL);
    s = apr_pstrcat(pool, s, "</dict></plist>", NULL);
    ck_assert_int_eq(gt_xmlplist_check(s, strlen(s), &limits), GT_BOUNDS_TOO_MANY);
}
END_TEST

START_TEST(xml_unterminated_markup)
{
    static const char *bad[] = { "<plist><dict", "<!-- never closed", "<![CDATA[ x",
                                 "<?xml ", "</dict>" };
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(gt_xmlplist_check(bad[i], strlen(bad[i]), &limits),
                         GT_BOUNDS_MALFORMED);
}
END_TEST

START_TEST(bplist_from_libplist_passes)
{
    plist_t d = plist_new_dict(), a = plist_new_array();
    char *out = NULL;
    uint32_t n = 0;
    plist_dict_set_item(d, "MessageType", plist_new_string("GetToken"));
    plist_dict_set_item(d, "Blob", plist_new_data("\0\1\2", 3));
    plist_array_append_item(a, plist_new_uint(1ULL << 40));
    plist_array_append_item(a, plist_new_real(1.5));
    plist_array_append_item(a, plist_new_bool(1));
    plist_array_append_item(a, plist_new_date(100, 0));
    plist_dict_set_item(d, "List", a);
    plist_to_bin(d, &out, &n);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(gt_bplist_check(pool, (unsigned char *)out, n, &limits), GT_BOUNDS_OK);
    free(out);
    plist_free(d);
}
END_TEST

START_TEST(bplist_depth_limit)
{
    apr_size_t len;
    const unsigned char *b = nested_bplist(GT_PLIST_MAX_DEPTH, 0, &len);
    ck_assert_int_eq(gt_bplist_check(pool, b, len, &limits), GT_BOUNDS_OK);
    b = nested_bplist(GT_PLIST_MAX_DEPTH + 1, 0, &len);
    ck_assert_int_eq(gt_bplist_check(pool, b, len, &limits), GT_BOUNDS_TOO_DEEP);
    b = nested_bplist(120, 0, &len);
    ck_assert_int_eq(gt_bplist_check(pool, b, len, &limits), GT_BOUNDS_TOO_DEEP);
}
END_TEST

START_TEST(bplist_reference_cycle)
{
    apr_size_t len;
    const unsigned char *b = nested_bplist(3, 1, &len);
    gt_checkin msg;
    const char *why = NULL;
    ck_assert_int_ne(gt_bplist_check(pool, b, len, &limits), GT_BOUNDS_OK);
    ck_assert_int_eq(gt_checkin_parse(pool, (const char *)b, len, &limits, &msg, &why),
                     GT_CHECKIN_NOT_OURS);
}
END_TEST

START_TEST(bplist_shared_references_are_counted_per_visit)
{
    /* object 0: array of 255 refs, all to object 1, an array of 255 refs to
     * object 2 (a string): few objects, 65k visits -- an expansion bomb */
    apr_size_t size = 8 + 3 + 255 + 3 + 255 + 2 + 6 + 32, pos = 8, o0, o1, o2, table;
    unsigned char *b = apr_pcalloc(pool, size);
    int i;
    memcpy(b, "bplist00", 8);
    o0 = pos; b[pos++] = 0xaf; b[pos++] = 0x10; b[pos++] = 255;
    for (i = 0; i < 255; i++) b[pos++] = 1;
    o1 = pos; b[pos++] = 0xaf; b[pos++] = 0x10; b[pos++] = 255;
    for (i = 0; i < 255; i++) b[pos++] = 2;
    o2 = pos; b[pos++] = 0x51; b[pos++] = 'x';
    table = pos;                       /* two-byte offsets */
    b[pos++] = (unsigned char)(o0 >> 8); b[pos++] = (unsigned char)o0;
    b[pos++] = (unsigned char)(o1 >> 8); b[pos++] = (unsigned char)o1;
    b[pos++] = (unsigned char)(o2 >> 8); b[pos++] = (unsigned char)o2;
    b[pos + 6] = 2; b[pos + 7] = 1; b[pos + 15] = 3; b[pos + 23] = 0;
    b[pos + 30] = (unsigned char)(table >> 8); b[pos + 31] = (unsigned char)table;
    /* a valid document as far as structure goes... */
    ck_assert_uint_eq(pos + 32, size);
    /* ...whose expansion is refused */
    ck_assert_int_eq(gt_bplist_check(pool, b, pos + 32, &limits), GT_BOUNDS_TOO_MANY);
}
END_TEST

START_TEST(bplist_bad_trailers)
{
    apr_size_t len;
    unsigned char *b = (unsigned char *)nested_bplist(3, 0, &len);
    unsigned char *t = b + len - 32;
    unsigned char saved;

    saved = t[6]; t[6] = 0;           /* offset size 0 */
    ck_assert_int_eq(gt_bplist_check(pool, b, len, &limits), GT_BOUNDS_MALFORMED);
    t[6] = saved;
    saved = t[23]; t[23] = 9;         /* top object out of range */
    ck_assert_int_eq(gt_bplist_check(pool, b, len, &limits), GT_BOUNDS_MALFORMED);
    t[23] = saved;
    saved = t[31]; t[31] = 0xff;      /* offset table past the end */
    ck_assert_int_eq(gt_bplist_check(pool, b, len, &limits), GT_BOUNDS_MALFORMED);
    t[31] = saved;
    t[8] = 0x7f;                      /* absurd object count */
    ck_assert_int_eq(gt_bplist_check(pool, b, len, &limits), GT_BOUNDS_TOO_MANY);
    ck_assert_int_eq(gt_bplist_check(pool, b, 20, &limits), GT_BOUNDS_MALFORMED);
}
END_TEST

Suite *plist_bounds_suite(void)
{
    UNIT_SUITE("plist_bounds", setup, teardown, 0,
               xml_depth_limit, xml_deep_bomb_is_refused_before_libplist,
               xml_object_count_limit, xml_unterminated_markup,
               bplist_from_libplist_passes, bplist_depth_limit,
               bplist_reference_cycle,
               bplist_shared_references_are_counted_per_visit,
               bplist_bad_trailers);
}
