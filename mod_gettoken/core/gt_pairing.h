/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_pairing.h - the com.apple.watch.pairing token, free of
 * httpd: building and signing the claims on the phone MDM's side; on the
 * watch MDM's side, checking the claims of a token whose signature
 * gt_jws_verify accepted, and the verify endpoint's request and answer.
 *
 * Claims: iss, iat, exp, jti (random UUID v4), service_type
 * ("com.apple.watch.pairing"), phone_udid, watch_udid and sth, the
 * unpadded base64url SHA-256 of the SecurityToken, so that the token binds
 * the watch's secret without carrying it.
 */
#ifndef GT_PAIRING_H
#define GT_PAIRING_H

#include "apr_pools.h"
#include <openssl/evp.h>

#include "../jose/gt_jose.h"

#include "gt_limits.h"
#include "gt_plist.h"

/* Clock difference tolerated between the phone's and the watch's MDM. */
#define GT_PAIRING_SKEW         60
/* Members a claim set may hold: the eight claims and room to ignore some
 * unknown ones, while the parse stays bounded. */
#define GT_PAIRING_MAX_CLAIMS   32
/* Longest PhoneUDID / WatchUDID / iss accepted (real UDIDs have 25-40). */
#define GT_PAIRING_MAX_ID       128
/* Longest SecurityToken accepted. */
#define GT_PAIRING_MAX_SECRET   4096

typedef struct gt_pairing_claims {
    apr_int64_t iat;
    apr_int64_t exp;
    const char *iss;
    const char *jti;
    const char *phone_udid;
    const char *watch_udid;
    const char *sth;            /* base64url SHA-256 of the SecurityToken */
} gt_pairing_claims;

/* One GetTokenWatchPairingTrust issuer: the only keys that may sign its
 * tokens. */
typedef struct gt_pairing_trust {
    const char *issuer;         /* a server UUID */
    apr_array_header_t *keys;   /* EVP_PKEY * */
} gt_pairing_trust;

/* The keys trusted for `iss` in `trust` (gt_pairing_trust; UUIDs compared
 * regardless of case), or NULL when the issuer is not listed. */
const apr_array_header_t *gt_pairing_trusted_keys(
    const apr_array_header_t *trust, const char *iss);

/*
 * The iss claim of a compact JWS, read before its signature is checked and
 * used only to choose the keys that check it (gt_pairing_check reads the
 * verified claims again).  NULL with *why when there is none to read.
 */
const char *gt_pairing_claimed_issuer(apr_pool_t *pool, const char *token,
                                      apr_size_t len, const char **why);

/* base64url(SHA-256(security_token)), 43 characters; NULL on failure. */
const char *gt_pairing_sth(apr_pool_t *pool, const char *security_token);

/* 1 when `s` is a usable identifier: 1..GT_PAIRING_MAX_ID bytes, printable
 * ASCII without spaces. */
int gt_pairing_id_ok(const char *s);

/*
 * Signs a pairing token issued by `iss` at `now`, valid `lifetime`
 * seconds, with a fresh jti (returned in jti_out).  NULL with *why.
 */
const char *gt_pairing_token(apr_pool_t *pool, const gt_jws_signer *signer,
                             const char *iss, apr_int64_t now,
                             apr_int64_t lifetime, const char *phone_udid,
                             const char *watch_udid,
                             const char *security_token, char jti_out[GT_UUID_SIZE],
                             const char **why);

typedef enum {
    GT_PAIRING_OK = 0,
    GT_PAIRING_MALFORMED,       /* claims missing, mistyped, not JSON */
    GT_PAIRING_WRONG_SERVICE,   /* service_type is not ours */
    GT_PAIRING_NOT_YET_VALID,   /* iat in the future beyond the skew */
    GT_PAIRING_EXPIRED,         /* exp passed beyond the skew */
    GT_PAIRING_BAD_LIFETIME,    /* exp <= iat, or exp - iat absurd */
    GT_PAIRING_WATCH_MISMATCH,  /* watch_udid is not the WatchUDID given */
    GT_PAIRING_STH_MISMATCH     /* sth is not the given SecurityToken's */
} gt_pairing_result;

/*
 * Checks the verified payload of a pairing token at `now` against the
 * WatchUDID and SecurityToken the watch presented.  Fills *out as far as
 * it got (for logging) and sets *why (no secret or token in it).
 * With security_token NULL, sth is left to the caller (the watch
 * enrollment gate finds the security token by it).
 */
gt_pairing_result gt_pairing_check(apr_pool_t *pool, const char *payload,
                                   apr_size_t len, apr_int64_t now,
                                   const char *watch_udid,
                                   const char *security_token,
                                   gt_pairing_claims *out, const char **why);

/* Short word for a result, for log lines: "expired", "UDID mismatch"... */
const char *gt_pairing_reason(gt_pairing_result res);

/*
 * The body of a verify request: a plist dict with TokenData (<data> or
 * <string>), WatchUDID and SecurityToken (strings).  Structural limits are
 * checked before libplist parses.  Returns 0, or -1 with *why.
 */
typedef struct {
    const char *token;              /* TokenData */
    const char *watch_udid;         /* WatchUDID */
    const char *security_token;     /* SecurityToken */
} gt_pairing_verify_request;
int gt_pairing_parse_verify_request(apr_pool_t *pool, const char *buf,
                                    apr_size_t len, const gt_plist_limits *lim,
                                    gt_pairing_verify_request *req,
                                    const char **why);

/* The verify answer: an XML plist dict {PhoneUDID, Issuer}. */
const char *gt_pairing_verify_response_xml(apr_pool_t *pool,
                                           const char *phone_udid,
                                           const char *issuer,
                                           apr_size_t *out_len);

#endif
