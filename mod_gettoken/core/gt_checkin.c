/*
 * gt_checkin.c - GetToken check-in parsing and validation (libplist 2.2).
 */
#include "gt_checkin.h"

#include <stdlib.h>
#include <string.h>

#include "apr_base64.h"
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

const char *gt_plist_string(apr_pool_t *pool, plist_t node)
{
    const char *s;
    uint64_t n = 0;

    if (!node || plist_get_node_type(node) != PLIST_STRING)
        return NULL;
    s = plist_get_string_ptr(node, &n);
    if (!s || memchr(s, '\0', (size_t)n))
        return NULL;
    return apr_pstrmemdup(pool, s, (apr_size_t)n);
}

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

static gt_checkin_result validate(apr_pool_t *pool, plist_t root,
                                  const gt_plist_limits *lim,
                                  gt_checkin *msg, const char **why)
{
    plist_t node;
    const char *message_type;
    gt_bounds_result bounds;
    apr_size_t i;

    if (plist_get_node_type(root) != PLIST_DICT) {
        *why = "body is a plist but not a dict";
        return GT_CHECKIN_NOT_OURS;
    }
    message_type = gt_plist_string(pool, plist_dict_get_item(root, "MessageType"));
    if (!message_type || strcmp(message_type, "GetToken") != 0) {
        *why = "MessageType is not GetToken";
        return GT_CHECKIN_NOT_OURS;
    }
    /* Before any key is read: every string and key of a GetToken is short
     * and NUL-free. */
    bounds = gt_plist_tree_check(pool, root, lim, GT_CHECKIN_MAX_STRING);
    if (bounds != GT_BOUNDS_OK) {
        *why = bounds == GT_BOUNDS_TOO_LONG
               ? "a key or string is over 1 KiB" : gt_bounds_reason(bounds);
        return GT_CHECKIN_INVALID;
    }

    node = plist_dict_get_item(root, "TokenServiceType");
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

    node = plist_dict_get_item(root, "TokenParameters");
    if (node) {
        if (plist_get_node_type(node) != PLIST_DICT) {
            *why = "TokenParameters is not a dict";
            return GT_CHECKIN_INVALID;
        }
        return read_token_parameters(pool, node, msg, why);
    }
    return GT_CHECKIN_GETTOKEN;
}

static int mentions_gettoken(const char *buf, apr_size_t len)
{
    return len >= 8 && memmem(buf, len, "GetToken", 8) != NULL;
}

gt_checkin_result gt_checkin_parse(apr_pool_t *pool, const char *buf,
                                   apr_size_t len, const gt_plist_limits *lim,
                                   gt_checkin *msg, const char **why)
{
    plist_t root = NULL;
    gt_bounds_result bounds;

    memset(msg, 0, sizeof(*msg));
    bounds = gt_plist_parse_bounded(pool, buf, len, lim, &root);
    if (bounds != GT_BOUNDS_OK) {
        *why = gt_bounds_reason(bounds);
        /* Unsafe to parse: whether it is a GetToken can only be guessed.
         * One that says so gets its 400, anything else is the MDM's
         * business. */
        return (bounds != GT_BOUNDS_MALFORMED && mentions_gettoken(buf, len))
               ? GT_CHECKIN_INVALID : GT_CHECKIN_NOT_OURS;
    }
    if (!root) {
        *why = "body is not a well-formed plist";
        return GT_CHECKIN_NOT_OURS;
    }
    return validate(pool, root, lim, msg, why);
}

const char *gt_checkin_enrollment(const gt_checkin *msg)
{
    return msg->udid ? msg->udid : msg->enrollment_id;
}

#define RESPONSE_HEAD \
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
    "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" " \
    "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n" \
    "<plist version=\"1.0\">\n<dict>\n\t<key>TokenData</key>\n\t<data>"
#define RESPONSE_TAIL "</data>\n</dict>\n</plist>\n"

const char *gt_checkin_response_xml(apr_pool_t *pool, const char *data,
                                    apr_size_t len, apr_size_t *out_len)
{
    apr_size_t head = sizeof(RESPONSE_HEAD) - 1, tail = sizeof(RESPONSE_TAIL) - 1;
    /* apr_base64_encode_len counts the terminating NUL */
    apr_size_t b64 = (apr_size_t)apr_base64_encode_len((int)len);
    char *out = apr_palloc(pool, head + b64 + tail);
    apr_size_t n;

    memcpy(out, RESPONSE_HEAD, head);
    n = (apr_size_t)apr_base64_encode(out + head, data, (int)len);
    /* apr_base64_encode returns the length including the NUL */
    if (n > 0 && out[head + n - 1] == '\0')
        n--;
    memcpy(out + head + n, RESPONSE_TAIL, tail + 1);
    *out_len = head + n + tail;
    return out;
}
