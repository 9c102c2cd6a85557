/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_machineinfo.h - the MachineInfo an Apple Watch sends to its MDM's
 * enrollment profile URL, recognised and checked without httpd.
 *
 * The body is either a DER CMS SignedData whose attached content is the
 * MachineInfo plist (Content-Type application/pkcs7-signature) or the plist
 * itself (XML or binary).  Keys: UDID, SERIAL, PRODUCT ("Watch..." on a
 * watch), VERSION, optional PAIRING_TOKEN (data: a com.apple.watch.pairing
 * token).  The gate lets an iPhone's, iPad's or Mac's MachineInfo pass
 * and decides on a watch's; a body that cannot be read as a MachineInfo
 * cannot be shown not to be a watch's, so it is refused.
 */
#ifndef GT_MACHINEINFO_H
#define GT_MACHINEINFO_H

#include "apr_pools.h"
#include "gt_limits.h"
#include <openssl/x509_vfy.h>

/* Structural limits of a MachineInfo plist (it holds about ten keys). */
#define GT_MI_MAX_DEPTH    4
#define GT_MI_MAX_OBJECTS  128
/* What libplist may build from it (see gt_plist.h): 256 KiB. */
#define GT_MI_MAX_EXPANDED (256 * 1024)
/* Longest PAIRING_TOKEN accepted (a pairing token is under 1 KiB). */
#define GT_MI_MAX_TOKEN    4096

typedef struct gt_machineinfo {
    const char *udid;
    const char *serial;          /* NULL when absent */
    const char *product;
    const char *version;         /* NULL when absent */
    const char *pairing_token;   /* NUL-terminated; NULL when absent */
    int is_signed;               /* it came inside a CMS SignedData */
} gt_machineinfo;

typedef enum {
    GT_MI_NOT_WATCH = 0,   /* a MachineInfo, not a watch's: pass it on */
    GT_MI_WATCH,           /* a watch's MachineInfo, signature good if any */
    GT_MI_REFUSED,         /* a watch's MachineInfo that fails (403) */
    GT_MI_INVALID          /* not a MachineInfo the gate can read (400) */
} gt_machineinfo_result;

/* Longest UDID accepted. */
#define GT_MI_MAX_UDID 128

/*
 * Examines `len` bytes and fails closed: only a body read whole as a
 * MachineInfo that is not a watch's is GT_MI_NOT_WATCH.  That is an XML or
 * binary plist dict within the limits above, bare or as the attached id-data
 * content of a DER CMS SignedData with nothing after it (gt_cms.h), with
 * a PRODUCT string of printable ASCII without "watch" in any case, a
 * UDID that gt_machineinfo_udid_ok accepts, no two keys that differ in
 * case only and no MachineInfo key in another case.  Deciding that needs
 * no signature check and no certificate decoded.  Any other body is
 * GT_MI_INVALID.
 *
 * A watch's MachineInfo in a SignedData must verify (OpenSSL decodes it
 * then, and must read the same content; every key in it bounded first,
 * see gt_cms_keys_bounded).  `ca`, when not NULL, is the store the signer
 * must chain to; with it an unsigned watch's MachineInfo is refused too.
 * Without it the signature is checked for integrity only.  *why (static or
 * from pool, never message bytes or tokens) says what was seen or what
 * failed.
 */
gt_machineinfo_result gt_machineinfo_parse(apr_pool_t *pool, const char *buf,
                                           apr_size_t len, X509_STORE *ca,
                                           gt_machineinfo *mi,
                                           const char **why);

/* 1 when a UDID is 1..GT_MI_MAX_UDID bytes of valid UTF-8 (shortest
 * forms, no surrogates) without control characters (C0, DEL, C1). */
int gt_machineinfo_udid_ok(const char *udid);

/*
 * The security token of a watch for one time window and slot: a UUID v4
 * made of HMAC-SHA256(secret, udid NUL window slot), so that a watch asking
 * again within a window gets the same token instead of a new row, and no
 * one without the secret can tell it in advance.  0, or -1.
 */
int gt_machineinfo_security_token(const unsigned char *secret,
                                  apr_size_t secret_len, const char *udid,
                                  apr_int64_t window, int slot,
                                  char out[GT_UUID_SIZE]);

/* Loads every certificate of a PEM file into a new store (freed with the
 * pool).  NULL with *why when the file holds none or cannot be read. */
X509_STORE *gt_machineinfo_ca_load(apr_pool_t *pool, const char *file,
                                   const char **why);

/* The 403 answer that hands a watch its security token, as JSON
 * {"code":"com.apple.watch.pairing.token.missing","details":{"security-token":...}}
 * or, with as_plist, the same document as an XML plist. */
#define GT_MI_TOKEN_MISSING_CODE "com.apple.watch.pairing.token.missing"
const char *gt_machineinfo_token_missing(apr_pool_t *pool,
                                         const char *security_token,
                                         int as_plist, apr_size_t *out_len);

/* 1 when an Accept header value prefers a plist (application/x-apple-plist,
 * application/xml, text/xml) over JSON: its first media range names one. */
int gt_machineinfo_wants_plist(const char *accept);

#endif
