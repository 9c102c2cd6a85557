/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_checkin.h - recognise and validate a GetToken check-in message.
 *
 * Knows nothing of httpd: bytes in, a validated message (or the reason it
 * is not one) out.  Used by the module and by the unit tests.
 */
#ifndef GT_CHECKIN_H
#define GT_CHECKIN_H

#include "apr_pools.h"
#include "apr_tables.h"

#include "gt_limits.h"
#include "gt_plist.h"

#include <plist/plist.h>

typedef enum {
    GT_CHECKIN_GETTOKEN = 0, /* a valid GetToken: *msg is filled in */
    GT_CHECKIN_NOT_OURS,     /* not a plist dict, or another MessageType */
    GT_CHECKIN_INVALID       /* a GetToken with missing or mistyped keys,
                              * a string or key over GT_MAX_STRING
                              * bytes, or a NUL in one */
} gt_checkin_result;

typedef struct gt_checkin {
    const char *service_type;        /* TokenServiceType (required) */
    const char *udid;                /* UDID */
    const char *enrollment_id;       /* EnrollmentID */
    const char *enrollment_user_id;  /* EnrollmentUserID */
    const char *user_short_name;     /* UserShortName */
    const char *user_id;             /* UserID */
    const char *user_long_name;      /* UserLongName */
    /* TokenParameters' string values; NULL when absent.  Other value types
     * are left out, except for the keys the spec types as strings
     * (SecurityToken, PhoneUDID, WatchUDID), which must be strings. */
    apr_table_t *token_parameters;
} gt_checkin;

/*
 * Parses `len` bytes (XML or binary plist).  Structural limits and NULs
 * are checked before libplist runs (gt_plist_parse_bounded); a document
 * over the limits or holding a NUL is answered as INVALID when it names
 * GetToken anywhere, else NOT_OURS.  *why (static text) explains NOT_OURS
 * and INVALID results; it never contains message values.
 */
gt_checkin_result gt_checkin_parse(apr_pool_t *pool, const char *buf,
                                   apr_size_t len, const gt_plist_limits *lim,
                                   gt_checkin *msg, const char **why);

/* The device-channel enrollment a message speaks for: UDID, else
 * EnrollmentID (also for user-channel messages). */
const char *gt_checkin_enrollment(const gt_checkin *msg);

/*
 * The success body: an XML plist dict whose one key TokenData holds `len`
 * bytes of `data` as <data>.  From `pool`; *out_len is set.
 */
const char *gt_checkin_response_xml(apr_pool_t *pool, const char *data,
                                    apr_size_t len, apr_size_t *out_len);

#endif
