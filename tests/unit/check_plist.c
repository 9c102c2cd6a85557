/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * Hostile plists built byte by byte: each must be refused before libplist
 * parses it (libplist 2.2 aborts on some, copies others once per
 * reference), and what passes must stay within its bounds once parsed.
 */
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

/* ---- a binary plist writer that writes whatever it is told ------------ */

#define MAX_BP_OBJECTS 32

typedef struct {
    unsigned char *b;
    apr_size_t len, cap;
    apr_size_t offsets[MAX_BP_OBJECTS];
    unsigned n, ref_size;
} bp;

static bp *bp_new(apr_size_t cap, unsigned ref_size)
{
    bp *w = apr_pcalloc(pool, sizeof(*w));
    w->cap = cap + 8 + 4 * MAX_BP_OBJECTS + 32;
    w->b = apr_pcalloc(pool, w->cap);
    memcpy(w->b, "bplist00", 8);
    w->len = 8;
    w->ref_size = ref_size;
    return w;
}

static void bp_put(bp *w, const void *bytes, apr_size_t n)
{
    ck_assert_uint_le(w->len + n, w->cap);
    memcpy(w->b + w->len, bytes, n);
    w->len += n;
}

static void bp_byte(bp *w, unsigned char c) { bp_put(w, &c, 1); }

static void bp_be(bp *w, apr_uint64_t v, unsigned width)
{
    while (width--)
        bp_byte(w, (unsigned char)(v >> (8 * width)));
}

/* Starts object number w->n: a marker of `type` holding `count`. */
static unsigned bp_begin(bp *w, unsigned type, apr_uint64_t count)
{
    ck_assert_uint_lt(w->n, MAX_BP_OBJECTS);
    w->offsets[w->n] = w->len;
    if (count < 15)
        bp_byte(w, (unsigned char)(type << 4 | count));
    else {
        bp_byte(w, (unsigned char)(type << 4 | 0xf));
        bp_byte(w, 0x13);              /* an 8-byte int follows */
        bp_be(w, count, 8);
    }
    return w->n++;
}

static unsigned bp_ascii(bp *w, const char *s, apr_size_t n)
{
    unsigned id = bp_begin(w, 0x5, n);
    bp_put(w, s, n);
    return id;
}

static unsigned bp_str(bp *w, const char *s) { return bp_ascii(w, s, strlen(s)); }

static unsigned bp_utf16(bp *w, const apr_uint16_t *units, apr_size_t n)
{
    unsigned id = bp_begin(w, 0x6, n);
    apr_size_t i;
    for (i = 0; i < n; i++)
        bp_be(w, units[i], 2);
    return id;
}

/* An object of raw bytes (marker included). */
static unsigned bp_raw(bp *w, const char *bytes, apr_size_t n)
{
    ck_assert_uint_lt(w->n, MAX_BP_OBJECTS);
    w->offsets[w->n] = w->len;
    bp_put(w, bytes, n);
    return w->n++;
}

/* An array (type 0xa) or dict (0xd: keys then values) of `n` references,
 * all to `ref` when refs is NULL. */
static unsigned bp_container(bp *w, unsigned type, const unsigned *refs,
                             apr_size_t n, unsigned ref)
{
    unsigned id = bp_begin(w, type, type == 0xd ? n / 2 : n);
    apr_size_t i;
    for (i = 0; i < n; i++)
        bp_be(w, refs ? refs[i] : ref, w->ref_size);
    return id;
}

static const char *bp_finish(bp *w, unsigned top, apr_size_t *len)
{
    apr_size_t table = w->len;
    unsigned i;
    for (i = 0; i < w->n; i++)
        bp_be(w, w->offsets[i], 4);
    bp_be(w, 0, 6);
    bp_byte(w, 4);
    bp_byte(w, (unsigned char)w->ref_size);
    bp_be(w, w->n, 8);
    bp_be(w, top, 8);
    bp_be(w, table, 8);
    *len = w->len;
    return (const char *)w->b;
}

/* A GetToken whose TokenParameters holds one key and one value, written
 * by the callbacks (objects 9 and 10, after the message's own 9). */
typedef unsigned (*bp_writer)(bp *w);

static const char *gettoken_with(bp_writer key, bp_writer value, apr_size_t *len)
{
    bp *w = bp_new(512, 1);
    unsigned refs[8] = { 1, 3, 5, 7, 2, 4, 6, 8 }, params[2] = { 9, 10 };

    bp_container(w, 0xd, refs, 8, 0);           /* 0: the message */
    bp_str(w, "MessageType");                   /* 1 */
    bp_str(w, "GetToken");                      /* 2 */
    bp_str(w, "TokenServiceType");              /* 3 */
    bp_str(w, "com.apple.maid");                /* 4 */
    bp_str(w, "UDID");                          /* 5 */
    bp_str(w, "0000-UDID");                     /* 6 */
    bp_str(w, "TokenParameters");               /* 7 */
    bp_container(w, 0xd, params, 2, 0);         /* 8 */
    ck_assert_uint_eq(key(w), 9);
    ck_assert_uint_eq(value(w), 10);
    return bp_finish(w, 0, len);
}

static unsigned utf16_nul_key(bp *w)
{
    static const apr_uint16_t units[] = { 'a', 0 };
    return bp_utf16(w, units, 2);
}
static unsigned ascii_nul_key(bp *w) { return bp_ascii(w, "a\0b", 3); }
static unsigned plain_key(bp *w) { return bp_str(w, "k"); }
static unsigned plain_value(bp *w) { return bp_str(w, "v"); }
static unsigned ascii_nul_value(bp *w) { return bp_ascii(w, "v\0", 2); }
static unsigned utf16_nul_value(bp *w)
{
    static const apr_uint16_t units[] = { 0, 'v' };
    return bp_utf16(w, units, 2);
}
static unsigned data_key(bp *w) { return bp_raw(w, "\x41k", 2); }
static unsigned lone_surrogate_value(bp *w)
{
    static const apr_uint16_t units[] = { 'v', 0xd800 };
    return bp_utf16(w, units, 2);
}

/* The pre-check's verdict on a bplist, then gt_checkin_parse's: the result
 * and a word of its reason. */
static void assert_bplist_refused(const char *b, apr_size_t len,
                                  gt_bounds_result bounds,
                                  gt_checkin_result result, const char *why_has)
{
    gt_checkin msg;
    const char *why = NULL;

    ck_assert_int_eq(gt_bplist_check(pool, (const unsigned char *)b, len, &limits),
                     bounds);
    ck_assert_int_eq(gt_checkin_parse(pool, b, len, &limits, &msg, &why), result);
    ck_assert_ptr_nonnull(strstr(why, why_has));
}

/* ---- NULs and what libplist asserts on -------------------------------- */

START_TEST(utf16_nul_key_gettoken_is_invalid_not_an_abort)
{
    apr_size_t len;
    const char *b = gettoken_with(utf16_nul_key, plain_value, &len);

    /* libplist would abort on this key: the 400 comes from the pre-check */
    assert_bplist_refused(b, len, GT_BOUNDS_NUL, GT_CHECKIN_INVALID, "NUL");
}
END_TEST

START_TEST(nul_in_any_bplist_key_or_string_is_invalid)
{
    static const struct { bp_writer key, value; } cases[] = {
        { ascii_nul_key, plain_value }, { plain_key, ascii_nul_value },
        { plain_key, utf16_nul_value },
    };
    apr_size_t len, i;
    gt_checkin msg;
    const char *why = NULL;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *b = gettoken_with(cases[i].key, cases[i].value, &len);
        ck_assert_int_eq(gt_checkin_parse(pool, b, len, &limits, &msg, &why),
                         GT_CHECKIN_INVALID);
        ck_assert_ptr_nonnull(strstr(why, "NUL"));
    }
    /* the same message with a plain key and value is a GetToken */
    {
        const char *b = gettoken_with(plain_key, plain_value, &len);
        ck_assert_int_eq(gt_checkin_parse(pool, b, len, &limits, &msg, &why),
                         GT_CHECKIN_GETTOKEN);
        ck_assert_str_eq(apr_table_get(msg.token_parameters, "k"), "v");
    }
}
END_TEST

START_TEST(nul_in_xml_in_every_form_is_refused)
{
    static const char *const docs[] = {
        "<plist><dict><key>a&#0;b</key><string>x</string></dict></plist>",
        "<plist><dict><key>ab</key><string>x&#x0;y</string></dict></plist>",
        "<plist><dict><key>ab</key><string>x&#X0000;y</string></dict></plist>",
        "<plist><dict><key>ab</key><string>x&#000;y</string></dict></plist>",
    };
    static const char literal_key[] =
        "<plist><dict><key>a\0b</key><string>GetToken</string></dict></plist>";
    static const char literal_cdata[] =
        "<plist><dict><key>ab</key><string><![CDATA[x\0y]]></string></dict></plist>";
    gt_checkin msg;
    const char *why = NULL;
    apr_size_t i;

    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
        ck_assert_int_eq(gt_xmlplist_check(docs[i], strlen(docs[i]), &limits),
                         GT_BOUNDS_NUL);
    ck_assert_int_eq(gt_xmlplist_check(literal_key, sizeof(literal_key) - 1, &limits),
                     GT_BOUNDS_NUL);
    ck_assert_int_eq(gt_xmlplist_check(literal_cdata, sizeof(literal_cdata) - 1,
                                       &limits), GT_BOUNDS_NUL);
    /* a GetToken that holds one is answered 400 */
    ck_assert_int_eq(gt_checkin_parse(pool, literal_key, sizeof(literal_key) - 1,
                                      &limits, &msg, &why), GT_CHECKIN_INVALID);
    /* &#10; and &#x100; are not NULs */
    {
        static const char fine[] = "<plist><string>&#10;&#x100;</string></plist>";
        ck_assert_int_eq(gt_xmlplist_check(fine, sizeof(fine) - 1, &limits), GT_BOUNDS_OK);
    }
}
END_TEST

START_TEST(bplist_objects_libplist_refuses_or_leaks_are_malformed)
{
    static const struct { bp_writer key, value; } cases[] = {
        { data_key, plain_value },              /* key that is not a string */
        { plain_key, lone_surrogate_value },    /* lead surrogate, no trail */
    };
    static const char *const values[] = {
        "\x60",                     /* empty UTF-16 string */
        "\x00", "\x0f",             /* null, fill */
        "\x20\x01",                 /* one-byte real */
        "\x32\x00\x00\x00\x00",     /* four-byte date */
        "\x15" "0123456789abcdef0123456789abcdef", /* 32-byte int */
        "\x61\xdc\x00",             /* trail surrogate alone */
    };
    static const apr_size_t value_len[] = { 1, 1, 1, 2, 5, 33, 3 };
    apr_size_t len, i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *b = gettoken_with(cases[i].key, cases[i].value, &len);
        ck_assert_int_eq(gt_bplist_check(pool, (const unsigned char *)b, len, &limits),
                         GT_BOUNDS_MALFORMED);
    }
    for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        bp *w = bp_new(64, 1);
        const char *b;
        bp_container(w, 0xa, NULL, 1, 1);
        bp_raw(w, values[i], value_len[i]);
        b = bp_finish(w, 0, &len);
        ck_assert_msg(gt_bplist_check(pool, (const unsigned char *)b, len, &limits)
                      == GT_BOUNDS_MALFORMED, "value %u passed", (unsigned)i);
    }
}
END_TEST

/* ---- expansion -------------------------------------------------------- */

/* The attack of the issue: one long string, referenced 4095 times from an
 * array, in a body under 64 KiB; libplist would copy it every time. */
START_TEST(one_string_referenced_4095_times_is_refused)
{
    apr_size_t len, n = 56000;
    bp *w = bp_new(8 + 4095 * 2 + n + 32, 2);
    char *s = apr_palloc(pool, n);
    const char *b;

    memset(s, 'A', n);
    bp_container(w, 0xa, NULL, 4095, 1);
    bp_ascii(w, s, n);
    b = bp_finish(w, 0, &len);
    ck_assert_uint_le(len, 65536);
    assert_bplist_refused(b, len, GT_BOUNDS_TOO_BIG, GT_CHECKIN_NOT_OURS, "expands");
}
END_TEST

/* Array of 16 refs to an array of 16 refs to a 5000-byte string: 273
 * nodes (well under the count) but 1.28 MB once expanded. */
START_TEST(nested_reference_blowup_is_refused)
{
    apr_size_t len, n = 5000;
    bp *w = bp_new(64 + n, 1);
    char *s = apr_palloc(pool, n);
    const char *b;

    memset(s, 'A', n);
    bp_container(w, 0xa, NULL, 16, 1);
    bp_container(w, 0xa, NULL, 16, 2);
    bp_ascii(w, s, n);
    b = bp_finish(w, 0, &len);
    ck_assert_int_eq(gt_bplist_check(pool, (const unsigned char *)b, len, &limits),
                     GT_BOUNDS_TOO_BIG);
}
END_TEST

/* The definition, exactly: every node GT_PLIST_NODE_COST, plus its text
 * once per reference (UTF-16 at 3 bytes per unit). */
START_TEST(expanded_size_counts_every_reference)
{
    static const apr_uint16_t units[] = { 'a', 0xe9, 'b' };
    gt_plist_limits lim = limits;
    apr_size_t len, size;
    bp *w = bp_new(64, 1);
    unsigned refs[4] = { 1, 1, 2, 2 };
    const char *b;

    bp_container(w, 0xa, refs, 4, 0);
    bp_str(w, "0123456789");
    bp_utf16(w, units, 3);
    b = bp_finish(w, 0, &len);
    size = 5 * GT_PLIST_NODE_COST + 2 * 10 + 2 * 9;
    lim.max_expanded = size;
    ck_assert_int_eq(gt_bplist_check(pool, (const unsigned char *)b, len, &lim),
                     GT_BOUNDS_OK);
    lim.max_expanded = size - 1;
    ck_assert_int_eq(gt_bplist_check(pool, (const unsigned char *)b, len, &lim),
                     GT_BOUNDS_TOO_BIG);
}
END_TEST

START_TEST(xml_expanded_size_is_bounded)
{
    apr_size_t n = GT_PLIST_MAX_EXPANDED;
    char *doc = apr_palloc(pool, n + 64);
    gt_plist_limits lim = limits;
    apr_size_t len;

    len = (apr_size_t)apr_snprintf(doc, 32, "<plist><string>");
    memset(doc + len, 'A', n);
    len += n;
    memcpy(doc + len, "</string></plist>", 17);
    len += 17;
    ck_assert_int_eq(gt_xmlplist_check(doc, len, &lim), GT_BOUNDS_TOO_BIG);
    lim.max_expanded = len + GT_PLIST_NODE_COST;
    ck_assert_int_eq(gt_xmlplist_check(doc, len, &lim), GT_BOUNDS_OK);
}
END_TEST

/* ---- XML markup where libplist and a naive scanner disagree ----------- */

START_TEST(xml_markup_that_could_hide_nesting_is_refused)
{
    static const char *const docs[] = {
        /* libplist skips quoted text: these closers are not closers */
        "<plist><array a=\"</array>\"><array a=\"</array>\"><array/></array></array></plist>",
        "<plist v=\"a>b\"><array/></plist>",
        "<plist><array a=\"></array>\"><array/></array></plist>",
        /* a processing instruction ends at "?>" only */
        "<plist><array><?x > </array> ?><array/></array></plist>",
        "<?xml v=\"?>\"?><plist/>",
        "<plist><array x='<'/></plist>",
        /* and skips an internal DTD subset whole */
        "<!DOCTYPE plist [ <!ELEMENT a ANY> ]><plist><array/></plist>",
        "<plist><array><!DOCTYPE x [ </array> ]><array/></array></plist>",
    };
    static const char apple[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE plist PUBLIC "
        "\"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
        "<plist version=\"1.0\"><dict><key>a</key><array/></dict></plist>";
    apr_size_t i;

    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++)
        ck_assert_msg(gt_xmlplist_check(docs[i], strlen(docs[i]), &limits)
                      == GT_BOUNDS_MALFORMED, "doc %u passed", (unsigned)i);
    ck_assert_int_eq(gt_xmlplist_check(apple, sizeof(apple) - 1, &limits), GT_BOUNDS_OK);
}
END_TEST

/* ---- the parsed tree -------------------------------------------------- */

START_TEST(parsed_tree_within_bounds)
{
    gt_plist_limits lim = limits;
    plist_t root = plist_new_dict(), inner = plist_new_array(), a;
    char *big = apr_palloc(pool, 2000);
    int i;

    plist_dict_set_item(root, "k", plist_new_string("v"));
    plist_dict_set_item(root, "list", inner);
    plist_array_append_item(inner, plist_new_data("\0\1", 2));
    ck_assert(gt_plist_within_bounds(pool, root, &lim));
    ck_assert_int_eq(gt_plist_tree_check(pool, root, &lim, 0), GT_BOUNDS_OK);
    /* 6 nodes: dict, 2 keys, string, array, data */
    lim.max_expanded = 6 * GT_PLIST_NODE_COST + 1 + 1 + 4 + 2;
    ck_assert(gt_plist_within_bounds(pool, root, &lim));
    lim.max_expanded--;
    ck_assert(!gt_plist_within_bounds(pool, root, &lim));
    lim = limits;
    lim.max_objects = 5;
    ck_assert_int_eq(gt_plist_tree_check(pool, root, &lim, 0), GT_BOUNDS_TOO_MANY);

    memset(big, 'x', 1999);
    big[1999] = '\0';
    plist_array_append_item(inner, plist_new_string(big));
    ck_assert_int_eq(gt_plist_tree_check(pool, root, &limits, 1024), GT_BOUNDS_TOO_LONG);
    ck_assert(gt_plist_within_bounds(pool, root, &limits));
    plist_free(root);

    root = a = plist_new_array();
    for (i = 1; i < GT_PLIST_MAX_DEPTH + 1; i++) {
        plist_t next = plist_new_array();
        plist_array_append_item(a, next);
        a = next;
    }
    ck_assert_int_eq(gt_plist_tree_check(pool, root, &limits, 0), GT_BOUNDS_TOO_DEEP);
    plist_free(root);
}
END_TEST

/* Whatever the pre-check lets through stays within bounds once parsed. */
START_TEST(what_passes_the_pre_check_stays_within_bounds)
{
    static const apr_uint16_t units[] = { 0x4e2d, 0xd83d, 0xde00, 0x4e2d };
    gt_plist_limits lim = limits;
    apr_size_t len;
    bp *w = bp_new(256, 1);
    unsigned refs[6] = { 1, 2, 1, 2, 1, 3 };
    const char *b;
    plist_t root = NULL;

    bp_container(w, 0xa, refs, 6, 0);
    bp_utf16(w, units, 4);
    bp_str(w, "x");
    bp_container(w, 0xd, (unsigned[]){ 2, 1 }, 2, 0);
    b = bp_finish(w, 0, &len);
    /* the tightest limit the pre-check accepts... */
    lim.max_expanded = 9 * GT_PLIST_NODE_COST + 4 * 12 + 3;
    ck_assert_int_eq(gt_plist_parse_bounded(pool, b, len, &lim, &root), GT_BOUNDS_OK);
    ck_assert_ptr_nonnull(root);
    /* ...holds inside libplist too */
    ck_assert(gt_plist_within_bounds(pool, root, &lim));
}
END_TEST

Suite *plist_suite(void)
{
    UNIT_SUITE("plist", setup, teardown, 0,
               utf16_nul_key_gettoken_is_invalid_not_an_abort,
               nul_in_any_bplist_key_or_string_is_invalid,
               nul_in_xml_in_every_form_is_refused,
               bplist_objects_libplist_refuses_or_leaks_are_malformed,
               one_string_referenced_4095_times_is_refused,
               nested_reference_blowup_is_refused,
               expanded_size_counts_every_reference,
               xml_expanded_size_is_bounded,
               xml_markup_that_could_hide_nesting_is_refused,
               parsed_tree_within_bounds,
               what_passes_the_pre_check_stays_within_bounds);
}
