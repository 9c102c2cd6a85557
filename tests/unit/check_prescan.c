/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* gt_prescan: which bodies cannot be a GetToken, decided from the bytes.
 * Every form the pre-scan must catch is also shown to be a GetToken for
 * gt_checkin_parse, so a test fails if a form stops counting on either side. */
#include <stdlib.h>
#include <string.h>

#include "apr_pools.h"
#include "apr_strings.h"
#include <plist/plist.h>

#include "core/gt_checkin.h"
#include "core/gt_prescan.h"
#include "unit.h"
#include "unit_cert.h"

static apr_pool_t *pool;
static const gt_plist_limits limits = {
    GT_PLIST_MAX_DEPTH, GT_PLIST_MAX_OBJECTS, GT_PLIST_MAX_EXPANDED
};

static void setup(void) { ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS); }
static void teardown(void) { apr_pool_destroy(pool); }

static plist_t message(const char *type)
{
    plist_t d = plist_new_dict();
    plist_dict_set_item(d, "MessageType", plist_new_string(type));
    plist_dict_set_item(d, "TokenServiceType", plist_new_string("com.apple.maid"));
    plist_dict_set_item(d, "UDID", plist_new_string("00008030-001A2B3C4D5E6F70"));
    return d;
}

static gt_checkin_result parse(const char *buf, apr_size_t len)
{
    gt_checkin msg;
    const char *why = NULL;
    return gt_checkin_parse(pool, buf, len, &limits, &msg, &why);
}

static int may_be(const char *s)
{
    return gt_checkin_may_be_gettoken(s, strlen(s));
}

#define XML_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" " \
    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n<plist version=\"1.0\">\n<dict>\n"
#define XML_TAIL "<key>TokenServiceType</key><string>com.apple.maid</string>\n" \
    "<key>UDID</key><string>0000-UDID</string>\n</dict>\n</plist>\n"
#define XML_MESSAGE(type) XML_HEAD "<key>MessageType</key><string>" type "</string>\n" XML_TAIL

START_TEST(other_messages_are_not_parsed)
{
    static const char *const types[] = {
        "Authenticate", "TokenUpdate", "CheckOut", "UserAuthenticate",
        "DeclarativeManagement", "GetBootstrapToken", "gettoken", "Get Token",
    };
    size_t i;
    int binary;

    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        for (binary = 0; binary <= 1; binary++) {
            apr_size_t len;
            const char *b = unit_plist_bytes(pool, message(types[i]), binary, &len);
            ck_assert_msg(!gt_checkin_may_be_gettoken(b, len), "%s (%s)", types[i],
                          binary ? "binary" : "XML");
            ck_assert_int_eq(parse(b, len), GT_CHECKIN_NOT_OURS);
        }
}
END_TEST

START_TEST(a_gettoken_is_parsed)
{
    int binary;

    for (binary = 0; binary <= 1; binary++) {
        apr_size_t len;
        const char *b = unit_plist_bytes(pool, message("GetToken"), binary, &len);
        ck_assert(gt_checkin_may_be_gettoken(b, len));
        ck_assert_int_eq(parse(b, len), GT_CHECKIN_GETTOKEN);
    }
}
END_TEST

/* What the XML parser turns into "GetToken" without the eight bytes in a row:
 * each is a GetToken for gt_checkin_parse, and the pre-scan says "may be". */
START_TEST(xml_spellings_are_parsed)
{
    static const char *const spelled[] = {
        XML_MESSAGE("&#71;etToken"),
        XML_MESSAGE("GetT&#x6f;ken"),
        XML_MESSAGE("GetT&#X6F;ken"),
        XML_MESSAGE("GetToke&#110;"),
        XML_MESSAGE("Get<!-- a comment -->Token"),
        XML_MESSAGE("Get<![CDATA[Tok]]>en"),
        XML_MESSAGE("<![CDATA[GetToken]]>"),
    };
    size_t i;

    for (i = 0; i < sizeof(spelled) / sizeof(spelled[0]); i++) {
        ck_assert_msg(may_be(spelled[i]), "%s", spelled[i]);
        ck_assert_msg(parse(spelled[i], strlen(spelled[i])) == GT_CHECKIN_GETTOKEN,
                      "not a GetToken for the parser: %s", spelled[i]);
    }
}
END_TEST

START_TEST(xml_entities_that_spell_no_letter_are_not_parsed)
{
    /* the five named entities give punctuation; DOCTYPE is no comment */
    const char *s = XML_MESSAGE("Get&amp;Token &lt;&gt;&apos;&quot;");

    ck_assert(!may_be(s));
    ck_assert_int_eq(parse(s, strlen(s)), GT_CHECKIN_NOT_OURS);
    ck_assert(!may_be(XML_HEAD "<key>MessageType</key><string>Authenticate</string>"
                      "<!DOCTYPE x><!ELEMENT y> &am p; & #71;</dict></plist>"));
    ck_assert(may_be("<plist>&#</plist>"));
    ck_assert(may_be("<plist><!--</plist>"));
    ck_assert(may_be("<plist><![</plist>"));
    ck_assert(!may_be("<plist><!-</plist>"));
}
END_TEST

/*
 * A binary plist whose MessageType is a UTF-16 string: libplist writes a
 * string as UTF-16 only when it holds a non-ASCII character, so one is
 * written with "GetToke\u00f1" and its last unit turned into 'n'.
 */
static char *utf16_message(apr_size_t *len)
{
    apr_size_t n;
    const char *b = unit_plist_bytes(pool, message("GetToke\xc3\xb1"), 1, &n);
    char *copy = apr_pmemdup(pool, b, n);
    static const char units[] = "\0G\0e\0t\0T\0o\0k\0e\0\xf1";
    char *at = memmem(copy, n, units, sizeof(units) - 1);

    ck_assert_ptr_nonnull(at);
    at[15] = 'n';
    *len = n;
    return copy;
}

START_TEST(binary_utf16_gettoken_is_parsed)
{
    apr_size_t len;
    char *b = utf16_message(&len);

    ck_assert_ptr_null(memmem(b, len, "GetToken", 8));
    ck_assert_int_eq(parse(b, len), GT_CHECKIN_GETTOKEN);
    ck_assert(gt_checkin_may_be_gettoken(b, len));
    /* one letter off: not the word */
    ((char *)memmem(b, len, "\0T\0o", 4))[3] = 'a';
    ck_assert(!gt_checkin_may_be_gettoken(b, len));
    ck_assert_int_eq(parse(b, len), GT_CHECKIN_NOT_OURS);
}
END_TEST

START_TEST(binary_utf16_lone_surrogates_count_as_nothing)
{
    /* libplist drops a lone surrogate: G e t <D800> T o k <DC00> e n */
    static const char units[] = "bplist00\x6a\0G\0e\0t\xd8\0\0T\0o\0k\xdc\0\0e\0n";
    static const char other[] = "bplist00\x6a\0G\0e\0t\xd8\0\0X\0o\0k\xdc\0\0e\0n";
    static const char cut[] = "bplist00\x6a\0G\0e\0t\0T\0o\0k\0e";

    ck_assert(gt_checkin_may_be_gettoken(units, sizeof(units) - 1));
    ck_assert(!gt_checkin_may_be_gettoken(other, sizeof(other) - 1));
    /* the word cut at the end of the body: nothing read past it */
    ck_assert(!gt_checkin_may_be_gettoken(cut, sizeof(cut) - 1));
    ck_assert(!gt_checkin_may_be_gettoken(cut, sizeof(cut)));   /* half a unit */
}
END_TEST

START_TEST(binary_ignores_xml_forms)
{
    static const char b[] = "bplist00 &#71; <!-- --> <![CDATA[ ]]>";

    ck_assert(!gt_checkin_may_be_gettoken(b, sizeof(b) - 1));
    ck_assert(may_be(b + 8));   /* the same bytes read as XML may spell it */
}
END_TEST

START_TEST(the_word_anywhere_is_parsed)
{
    const char *s = XML_HEAD "<key>MessageType</key><string>Acknowledged</string>"
                    "<key>Note</key><string>about GetToken</string></dict></plist>";

    ck_assert(may_be(s));
    ck_assert_int_eq(parse(s, strlen(s)), GT_CHECKIN_NOT_OURS);
    ck_assert(!gt_checkin_may_be_gettoken("", 0));
    ck_assert(!gt_checkin_may_be_gettoken("GetToke", 7));
    ck_assert(may_be("GetToken"));
}
END_TEST

Suite *prescan_suite(void)
{
    UNIT_SUITE("prescan", setup, teardown, 0,
               other_messages_are_not_parsed, a_gettoken_is_parsed,
               xml_spellings_are_parsed,
               xml_entities_that_spell_no_letter_are_not_parsed,
               binary_utf16_gettoken_is_parsed,
               binary_utf16_lone_surrogates_count_as_nothing,
               binary_ignores_xml_forms, the_word_anywhere_is_parsed);
}
