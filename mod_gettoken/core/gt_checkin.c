/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_checkin.c - GetToken check-in parsing and validation (libplist 2.2).
 */
#include "gt_checkin.h"

#include <stdlib.h>
#include <string.h>

#include "apr_strings.h"

#include <plist/plist.h>

/* Optional string keys of the message, with where each one lands. */
typedef struct {
    const char *key;
    apr_size_t offset;
} string_key;

static const string_key optional_strings[] = {
    { "UDID",             APR_OFFSETOF(gt_checkin, udid) },
    { "EnrollmentID",     APR_OFFSETOF(gt_checkin, enrollment_id) },
    { "EnrollmentUserID", APR_OFFSETOF(gt_checkin, enrollment_user_id) },
    { "UserShortName",    APR_OFFSETOF(gt_checkin, user_short_name) },
    { "UserID",           APR_OFFSETOF(gt_checkin, user_id) },
    { "UserLongName",     APR_OFFSETOF(gt_checkin, user_long_name) },
};

/* TokenParameters keys that the spec types as <string>. */
static const char *const string_parameters[] = {
    "SecurityToken", "PhoneUDID", "WatchUDID",
};

static int is_token_parameter_string_key(const char *key)
{
    apr_size_t i;
    for (i = 0; i < sizeof(string_parameters) / sizeof(string_parameters[0]); i++)
        if (strcmp(key, string_parameters[i]) == 0)
            return 1;
    return 0;
}

static gt_checkin_result read_token_parameters(apr_pool_t *pool, plist_t dict,
                                               gt_checkin *msg,
                                               const char **why)
{
    plist_dict_iter it = NULL;
    plist_t value = NULL;
    char *key = NULL;

    msg->token_parameters = apr_table_make(pool, 4);
    /* plist_dict_next_item asserts on a key holding a NUL: every key here
     * passed gt_plist_tree_check, after the pre-check refused NULs. */
    plist_dict_new_iter(dict, &it);
    if (!it) {
        *why = "TokenParameters could not be read";
        return GT_CHECKIN_INVALID;
    }
    for (;;) {
        const char *s;

        key = NULL;
        value = NULL;
        plist_dict_next_item(dict, it, &key, &value);
        if (!key)
            break;
        s = gt_plist_string(pool, value);
        if (s)
            apr_table_setn(msg->token_parameters, apr_pstrdup(pool, key), s);
        else if (is_token_parameter_string_key(key)) {
            free(key);
            free(it);
            *why = "a TokenParameters value the spec types as a string "
                   "(SecurityToken, PhoneUDID, WatchUDID) is not a string";
            return GT_CHECKIN_INVALID;
        }
        free(key);
    }
    free(it);
    return GT_CHECKIN_GETTOKEN;
}

/* Every string and key of a GetToken is short and NUL-free: checked
 * before any key is read. */
static gt_checkin_result check_tree(apr_pool_t *pool, plist_t root,
                                    const gt_plist_limits *lim,
                                    const char **why)
{
    gt_bounds_result bounds = gt_plist_tree_check(pool, root, lim,
                                                  GT_MAX_STRING);

    if (bounds == GT_BOUNDS_OK)
        return GT_CHECKIN_GETTOKEN;
    *why = bounds == GT_BOUNDS_TOO_LONG
           ? "a key or string is over 1 KiB" : gt_bounds_reason(bounds);
    return GT_CHECKIN_INVALID;
}

static gt_checkin_result read_strings(apr_pool_t *pool, plist_t root,
                                      gt_checkin *msg, const char **why)
{
    plist_t node = plist_dict_get_item(root, "TokenServiceType");
    apr_size_t i;

    if (!node) {
        *why = "required key TokenServiceType is missing";
        return GT_CHECKIN_INVALID;
    }
    msg->service_type = gt_plist_string(pool, node);
    if (!msg->service_type || !*msg->service_type) {
        *why = "TokenServiceType is not a non-empty string";
        return GT_CHECKIN_INVALID;
    }
    for (i = 0; i < sizeof(optional_strings) / sizeof(optional_strings[0]); i++) {
        const char **slot = (const char **)((char *)msg + optional_strings[i].offset);
        node = plist_dict_get_item(root, optional_strings[i].key);
        if (!node)
            continue;
        *slot = gt_plist_string(pool, node);
        if (!*slot || !**slot) {
            *why = apr_psprintf(pool, "%s is not a non-empty string",
                                optional_strings[i].key);
            return GT_CHECKIN_INVALID;
        }
    }
    if (!msg->udid && !msg->enrollment_id) {
        *why = "neither UDID nor EnrollmentID is present";
        return GT_CHECKIN_INVALID;
    }
    return GT_CHECKIN_GETTOKEN;
}

static gt_checkin_result validate(apr_pool_t *pool, plist_t root,
                                  const gt_plist_limits *lim,
                                  gt_checkin *msg, const char **why)
{
    const char *message_type = gt_plist_string(pool,
        plist_dict_get_item(root, "MessageType"));
    plist_t node;
    gt_checkin_result res;

    if (!message_type || strcmp(message_type, GT_MESSAGE_GETTOKEN) != 0) {
        *why = "MessageType is not " GT_MESSAGE_GETTOKEN;
        return GT_CHECKIN_NOT_OURS;
    }
    if ((res = check_tree(pool, root, lim, why)) != GT_CHECKIN_GETTOKEN
        || (res = read_strings(pool, root, msg, why)) != GT_CHECKIN_GETTOKEN)
        return res;
    node = plist_dict_get_item(root, "TokenParameters");
    if (!node)
        return GT_CHECKIN_GETTOKEN;
    if (plist_get_node_type(node) != PLIST_DICT) {
        *why = "TokenParameters is not a dict";
        return GT_CHECKIN_INVALID;
    }
    return read_token_parameters(pool, node, msg, why);
}

static int mentions_gettoken(const char *buf, apr_size_t len)
{
    static const apr_size_t n = sizeof(GT_MESSAGE_GETTOKEN) - 1;

    return len >= n && memmem(buf, len, GT_MESSAGE_GETTOKEN, n) != NULL;
}

gt_checkin_result gt_checkin_parse(apr_pool_t *pool, const char *buf,
                                   apr_size_t len, const gt_plist_limits *lim,
                                   gt_checkin *msg, const char **why)
{
    plist_t root = NULL;
    gt_bounds_result bounds;

    memset(msg, 0, sizeof(*msg));
    bounds = gt_plist_parse_dict(pool, buf, len, lim, &root, why);
    if (bounds == GT_BOUNDS_OK)
        return validate(pool, root, lim, msg, why);
    /* Unsafe to parse, so whether it is a GetToken can only be guessed.  A
     * body over the structural bounds (depth, count, expanded size) is not a
     * GetToken the module answers: the MDM behind gets it.  A NUL or an
     * over-long string, where the body says GetToken, is the 400 of a
     * malformed GetToken. */
    return ((bounds == GT_BOUNDS_NUL || bounds == GT_BOUNDS_TOO_LONG)
            && mentions_gettoken(buf, len))
           ? GT_CHECKIN_INVALID : GT_CHECKIN_NOT_OURS;
}

const char *gt_checkin_enrollment(const gt_checkin *msg)
{
    return msg->udid ? msg->udid : msg->enrollment_id;
}

const char *gt_checkin_response_xml(apr_pool_t *pool, const char *data,
                                    apr_size_t len, apr_size_t *out_len)
{
    gt_plist_xml_entry token = { "TokenData", NULL, data, len };

    return gt_plist_xml_dict(pool, &token, 1, out_len);
}
