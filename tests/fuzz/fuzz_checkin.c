/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * fuzz_checkin.c - the check-in parser, exactly the module's pipeline:
 * structural pre-check, libplist, GetToken validation (gt_checkin_parse).
 *
 * Besides crashes, sanitizer reports and leaks, it checks two promises:
 *  - whatever passes the pre-check stays within its bounds once libplist
 *    has built the tree (gt_plist_parse_bounded, the module's one path to
 *    libplist): gt_plist_within_bounds agrees, and so does an independent
 *    walk here: nesting depth, node count, no NUL in a key or string, and
 *    the string, key and data bytes libplist holds within the expanded
 *    size (which counts them at their longest UTF-8 form);
 *  - a message accepted as a GetToken holds only strings of at most 1 KiB
 *    and a refusal reason short enough to be static text.
 * The same bytes also go through watch-verify's request parser, which
 * shares the bounded parse with its own, tighter limits.
 * The tree is walked with an explicit stack: the walk must not be what
 * recurses.  A NUL inside a key makes libplist itself abort in
 * plist_dict_next_item, which is a finding too.
 */
#include "fuzz_common.h"

#include <plist/plist.h>

#include "apr_tables.h"

#include "core/gt_checkin.h"
#include "core/gt_pairing.h"
#include "core/gt_plist.h"

#define GETTOKEN_STR_MAX  1024
#define REASON_MAX        200

/* the module's limits (gettoken_handler.c) */
static const gt_plist_limits limits = {
    GT_PLIST_MAX_DEPTH, GT_PLIST_MAX_OBJECTS, GT_PLIST_MAX_EXPANDED
};

typedef struct {
    plist_t node;
    unsigned depth;
} pending;

static void check_tree(plist_t root)
{
    /* each node is pushed once, and the object bound caps the nodes */
    static pending stack[GT_PLIST_MAX_OBJECTS + 1];
    size_t sp = 0, nodes = 0, held = 0;

    stack[sp].node = root;
    stack[sp++].depth = 1;
    while (sp > 0) {
        pending cur = stack[--sp];
        plist_type type = plist_get_node_type(cur.node);
        uint64_t n = 0;
        const char *s;

        FUZZ_ASSERT(++nodes <= GT_PLIST_MAX_OBJECTS,
                    "a document within the object bound parsed into more nodes");
        switch (type) {
        case PLIST_STRING:
            s = plist_get_string_ptr(cur.node, &n);
            FUZZ_ASSERT(s != NULL, "string node without a value");
            FUZZ_ASSERT(memchr(s, '\0', (size_t)n) == NULL,
                        "a string holding NUL passed the pre-check");
            held += (size_t)n;
            break;
        case PLIST_DATA:
            plist_get_data_ptr(cur.node, &n);
            held += (size_t)n;
            break;
        case PLIST_DICT:
        case PLIST_ARRAY: {
            int dict = type == PLIST_DICT;
            uint32_t i, size = dict ? plist_dict_get_size(cur.node)
                                    : plist_array_get_size(cur.node);
            plist_dict_iter it = NULL;

            FUZZ_ASSERT(cur.depth <= GT_PLIST_MAX_DEPTH,
                        "a document within the depth bound parsed deeper");
            FUZZ_ASSERT(size <= GT_PLIST_MAX_OBJECTS - sp,
                        "a container larger than the object bound");
            if (dict) {
                plist_dict_new_iter(cur.node, &it);
                FUZZ_ASSERT(it != NULL, "plist_dict_new_iter failed");
            }
            for (i = 0; i < size; i++) {
                plist_t child = NULL;
                if (dict) {
                    char *key = NULL;
                    plist_dict_next_item(cur.node, it, &key, &child);
                    FUZZ_ASSERT(key != NULL, "a dict entry without a key");
                    held += strlen(key);
                    nodes++;
                    free(key);
                }
                else
                    child = plist_array_get_item(cur.node, i);
                FUZZ_ASSERT(child != NULL, "a container entry without a value");
                stack[sp].node = child;
                stack[sp++].depth = cur.depth + 1;
            }
            free(it);
            break;
        }
        default:
            break;
        }
        FUZZ_ASSERT(held <= GT_PLIST_MAX_EXPANDED,
                    "a document within the expanded-size bound made libplist "
                    "hold more than 1 MiB of text and data");
    }
}

/* The module's bounded parse; then, if the document passed, libplist's
 * tree checked against the bounds, by the core and independently. */
static void check_bounds_hold(apr_pool_t *pool, const uint8_t *data, size_t len)
{
    plist_t root = NULL;

    if (gt_plist_parse_bounded(pool, (const char *)data, len, &limits, &root)
        != GT_BOUNDS_OK || !root)
        return;
    FUZZ_ASSERT(gt_plist_within_bounds(pool, root, &limits),
                "gt_plist_within_bounds: a tree that passed the pre-check "
                "is out of bounds");
    check_tree(root);
}

/* gettoken_watch_verify.c's limits */
static const gt_plist_limits verify_limits = { 8, 256, GT_PLIST_MAX_EXPANDED };

static void check_verify_request(apr_pool_t *pool, const uint8_t *data,
                                 size_t len)
{
    gt_pairing_verify_request req = { NULL, NULL, NULL };
    const char *why = NULL;

    if (gt_pairing_parse_verify_request(pool, (const char *)data, len,
                                        &verify_limits, &req, &why) == 0)
        FUZZ_ASSERT(req.token && *req.token && req.watch_udid
                    && *req.watch_udid && req.security_token
                    && *req.security_token,
                    "a verify request accepted without its three values");
    else
        FUZZ_ASSERT(why && strlen(why) <= REASON_MAX,
                    "a refused verify request without a short reason");
}

static int short_enough(const char *s)
{
    return !s || strlen(s) <= GETTOKEN_STR_MAX;
}

static int table_entry_short(void *rec, const char *key, const char *value)
{
    (void)rec;
    FUZZ_ASSERT(strlen(key) <= GETTOKEN_STR_MAX && strlen(value) <= GETTOKEN_STR_MAX,
                "a GetToken accepted with a TokenParameters string over 1 KiB");
    return 1;
}

static void check_message(const gt_checkin *msg)
{
    FUZZ_ASSERT(msg->service_type && *msg->service_type,
                "a GetToken accepted without TokenServiceType");
    FUZZ_ASSERT(msg->udid || msg->enrollment_id,
                "a GetToken accepted without UDID or EnrollmentID");
    FUZZ_ASSERT(short_enough(msg->service_type) && short_enough(msg->udid)
                && short_enough(msg->enrollment_id)
                && short_enough(msg->enrollment_user_id)
                && short_enough(msg->user_short_name)
                && short_enough(msg->user_id)
                && short_enough(msg->user_long_name),
                "a GetToken accepted with a string over 1 KiB");
    if (msg->token_parameters)
        apr_table_do(table_entry_short, NULL, msg->token_parameters, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    apr_pool_t *pool = fuzz_pool();
    gt_checkin msg;
    const char *why = NULL;

    switch (gt_checkin_parse(pool, (const char *)data, len, &limits, &msg, &why)) {
    case GT_CHECKIN_GETTOKEN:
        check_message(&msg);
        break;
    case GT_CHECKIN_NOT_OURS:
    case GT_CHECKIN_INVALID:
        FUZZ_ASSERT(why && strlen(why) <= REASON_MAX,
                    "a refusal without a short reason");
        break;
    }
    apr_pool_clear(pool);
    check_bounds_hold(pool, data, len);
    apr_pool_clear(pool);
    check_verify_request(pool, data, len);
    apr_pool_destroy(pool);
    return 0;
}
