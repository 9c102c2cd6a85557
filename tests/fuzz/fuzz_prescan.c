/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * fuzz_prescan.c - the pre-scan against the full parser, differentially.
 *
 * gt_checkin_may_be_gettoken lets the module hand a body on without parsing
 * it.  The promise: it never says "cannot be a GetToken" for a body that the
 * module's parse (gt_checkin_parse: pre-check, libplist, validation) answers
 * as a GetToken or refuses as a malformed one.  Checked on every input the
 * pre-scan clears, with two oracles: gt_checkin_parse's result, and the
 * MessageType string of the tree libplist builds through the module's
 * bounded parse, read here directly (as a C string and with its length, so a
 * string cut at a NUL counts too).
 *
 * Random bytes rarely spell GetToken in a new way inside a well-formed
 * plist, so the first input byte says what the rest (X) is.  Its low three
 * bits: 0 the whole body; otherwise MessageType's value in an otherwise
 * valid GetToken, as the text of an XML <string> (1: X, 2: X inserted into
 * "GetToken" before letter k, 3: X in place of letter k), as a binary
 * plist's UTF-16 string object (4: X's units, 5: X inserted before the
 * unit of letter k, 7: X in place of it) or ASCII one (6: X).  k is the
 * byte's upper five bits modulo 8.  So the fuzzer only has to find some
 * bytes that the parser turns into nothing (a comment, an empty CDATA, a
 * lone surrogate) or into one letter (a character reference).  The body
 * checked is the composed one.
 */
#include "fuzz_common.h"

#include <plist/plist.h>

#include "core/gt_checkin.h"
#include "core/gt_plist.h"
#include "core/gt_prescan.h"

/* the module's limits (gettoken_handler.c) */
static const gt_plist_limits limits = {
    GT_PLIST_MAX_DEPTH, GT_PLIST_MAX_OBJECTS, GT_PLIST_MAX_EXPANDED
};

static int message_type_is_gettoken(apr_pool_t *pool, const uint8_t *data,
                                    size_t len)
{
    plist_t root = NULL, node;
    const char *s;
    uint64_t n = 0;

    if (gt_plist_parse_bounded(pool, (const char *)data, len, &limits, &root)
        != GT_BOUNDS_OK || !root || plist_get_node_type(root) != PLIST_DICT)
        return 0;
    node = plist_dict_get_item(root, "MessageType");
    if (!node || plist_get_node_type(node) != PLIST_STRING)
        return 0;
    s = plist_get_string_ptr(node, &n);
    /* "GetToken", or "GetToken" and a NUL with more after it */
    return s && n >= 8 && memcmp(s, GT_MESSAGE_GETTOKEN, 8) == 0
           && (n == 8 || s[8] == '\0');
}

#define XML_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<plist version=\"1.0\">" \
    "<dict><key>TokenServiceType</key><string>com.apple.maid</string>" \
    "<key>UDID</key><string>x</string><key>MessageType</key><string>"
#define XML_TAIL "</string></dict></plist>\n"

static uint8_t *xml_with_type(const uint8_t *text, size_t n, size_t *len)
{
    size_t head = sizeof(XML_HEAD) - 1, tail = sizeof(XML_TAIL) - 1;
    uint8_t *b = malloc(head + n + tail);

    FUZZ_ASSERT(b != NULL, "out of memory");
    memcpy(b, XML_HEAD, head);
    memcpy(b + head, text, n);
    memcpy(b + head + n, XML_TAIL, tail);
    *len = head + n + tail;
    return b;
}

static uint8_t *put_string(uint8_t *p, uint8_t marker, const void *s, size_t count,
                           size_t bytes)
{
    if (count < 15)
        *p++ = (uint8_t)(marker | count);
    else {
        *p++ = (uint8_t)(marker | 0x0f);
        *p++ = 0x11;                       /* a 2-byte int: the count */
        *p++ = (uint8_t)(count >> 8);
        *p++ = (uint8_t)count;
    }
    memcpy(p, s, bytes);
    return p + bytes;
}

/* bplist00 {TokenServiceType: "com.apple.maid", UDID: "x", MessageType: <n
 * bytes as a UTF-16 (utf16) or ASCII string object>}; n < 65536. */
static uint8_t *bplist_with_type(const uint8_t *s, size_t n, int utf16, size_t *len)
{
    static const char *const ascii[] = { "MessageType", "TokenServiceType", "UDID",
                                         "com.apple.maid", "x" };
    uint8_t *b = malloc(n + 256), *p = b;
    uint32_t offsets[7];
    size_t i, table;

    FUZZ_ASSERT(b != NULL, "out of memory");
    memcpy(p, "bplist00", 8);
    p += 8;
    offsets[0] = (uint32_t)(p - b);           /* the dict: keys 1-3, values 4-6 */
    memcpy(p, "\xd3\x01\x02\x03\x04\x05\x06", 7);
    p += 7;
    for (i = 0; i < 5; i++) {                 /* objects 1, 2, 3, 5, 6 */
        offsets[i < 3 ? i + 1 : i + 2] = (uint32_t)(p - b);
        p = put_string(p, 0x50, ascii[i], strlen(ascii[i]), strlen(ascii[i]));
    }
    offsets[4] = (uint32_t)(p - b);
    p = utf16 ? put_string(p, 0x60, s, n / 2, n / 2 * 2)
              : put_string(p, 0x50, s, n, n);
    table = (size_t)(p - b);
    for (i = 0; i < 7; i++) {
        *p++ = (uint8_t)(offsets[i] >> 24);
        *p++ = (uint8_t)(offsets[i] >> 16);
        *p++ = (uint8_t)(offsets[i] >> 8);
        *p++ = (uint8_t)offsets[i];
    }
    memset(p, 0, 32);                         /* the trailer */
    p[6] = 4;                                 /* offset size */
    p[7] = 1;                                 /* reference size */
    p[15] = 7;                                /* objects; the top one is 0 */
    p[28] = (uint8_t)(table >> 24);
    p[29] = (uint8_t)(table >> 16);
    p[30] = (uint8_t)(table >> 8);
    p[31] = (uint8_t)table;
    *len = (size_t)(p + 32 - b);
    return b;
}

static void check_body(const uint8_t *data, size_t len)
{
    apr_pool_t *pool = fuzz_pool();
    gt_checkin msg;
    const char *why = NULL;
    /* parsed whatever the pre-scan says: the parser's coverage guides the
     * fuzzer towards GetTokens, spelled in ways the pre-scan may miss */
    gt_checkin_result res = gt_checkin_parse(pool, (const char *)data, len,
                                             &limits, &msg, &why);

    if (gt_checkin_may_be_gettoken((const char *)data, len)) {
        apr_pool_destroy(pool);
        return;     /* parsed as before: nothing to compare */
    }
    FUZZ_ASSERT(res != GT_CHECKIN_GETTOKEN,
                "the pre-scan cleared a body gt_checkin_parse reads as a GetToken");
    FUZZ_ASSERT(res != GT_CHECKIN_INVALID,
                "the pre-scan cleared a body gt_checkin_parse refuses as a "
                "malformed GetToken");
    apr_pool_clear(pool);
    FUZZ_ASSERT(!message_type_is_gettoken(pool, data, len),
                "the pre-scan cleared a body whose MessageType libplist reads "
                "as GetToken");
    apr_pool_destroy(pool);
}

/* The templates hold a valid GetToken when MessageType is spelled plainly:
 * else the fuzzer would explore bodies the parser refuses for other reasons. */
static void check_templates(void)
{
    static const char units[] = "\0G\0e\0t\0T\0o\0k\0e\0n";
    uint8_t *forms[3];
    size_t lens[3], i;

    forms[0] = xml_with_type((const uint8_t *)"GetToken", 8, &lens[0]);
    forms[1] = bplist_with_type((const uint8_t *)units, 16, 1, &lens[1]);
    forms[2] = bplist_with_type((const uint8_t *)"GetToken", 8, 0, &lens[2]);
    for (i = 0; i < 3; i++) {
        apr_pool_t *pool = fuzz_pool();
        gt_checkin msg;
        const char *why = NULL;

        FUZZ_ASSERT(gt_checkin_parse(pool, (const char *)forms[i], lens[i], &limits,
                                     &msg, &why) == GT_CHECKIN_GETTOKEN,
                    "a template does not make a GetToken");
        apr_pool_destroy(pool);
        free(forms[i]);
    }
}

/* "GetToken" in `unit`-byte characters (1: ASCII, 2: UTF-16BE) with x put
 * before letter k, or in place of it (replace); from malloc, in *n. */
static uint8_t *spliced_word(const uint8_t *x, size_t xn, unsigned k, int unit,
                             int replace, size_t *n)
{
    static const char word[] = GT_MESSAGE_GETTOKEN;
    uint8_t *b = malloc(16 + xn), *p = b;
    unsigned i;

    FUZZ_ASSERT(b != NULL, "out of memory");
    for (i = 0; i < 8; i++) {
        if (i == k) {
            memcpy(p, x, xn);
            p += xn;
            if (replace)
                continue;
        }
        if (unit == 2)
            *p++ = 0;
        *p++ = (uint8_t)word[i];
    }
    *n = (size_t)(p - b);
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    static int templates_checked;
    uint8_t *value = NULL, *body;
    const uint8_t *x = data + 1;
    size_t n = 0, vn, xn = len - 1;
    unsigned mode, k;

    if (!templates_checked) {
        check_templates();
        templates_checked = 1;
    }
    if (len == 0 || len > 65535)
        return 0;
    mode = data[0] & 7;
    k = (unsigned)(data[0] >> 3) % 8;
    if (mode == 0) {
        check_body(x, xn);
        return 0;
    }
    if (mode == 2 || mode == 3 || mode == 5 || mode == 7)
        value = spliced_word(x, xn, k, mode >= 5 ? 2 : 1, mode == 3 || mode == 7, &vn);
    else
        vn = xn;
    if (mode <= 3)
        body = xml_with_type(value ? value : x, vn, &n);
    else
        body = bplist_with_type(value ? value : x, vn, mode != 6, &n);
    check_body(body, n);
    free(body);
    free(value);
    return 0;
}
