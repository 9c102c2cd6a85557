/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_limits.h - the service names and limits shared by the core and the
 * httpd glue, so that each is written once.
 */
#ifndef GT_LIMITS_H
#define GT_LIMITS_H

/* The TokenServiceTypes the module answers itself (mod_gettoken.h names
 * them again for other modules, which cannot include the core). */
#define GT_SERVICE_MAID          "com.apple.maid"
#define GT_SERVICE_WATCH_PAIRING "com.apple.watch.pairing"

/* The MessageType of the check-in message the module answers. */
#define GT_MESSAGE_GETTOKEN      "GetToken"

/* A UUID in 8-4-4-4-12 form, and a buffer that holds one with its NUL. */
#define GT_UUID_LEN  36
#define GT_UUID_SIZE (GT_UUID_LEN + 1)

/* The longest string or key a GetToken may hold, and the longest
 * TokenServiceType GetTokenServices accepts, in bytes. */
#define GT_MAX_STRING 1024

#define GT_SECONDS_PER_DAY 86400

/* The longest a pairing token may live (exp - iat, and the maximum of
 * GetTokenWatchPairingLifetime): a watch pairs within minutes. */
#define GT_PAIRING_MAX_LIFETIME GT_SECONDS_PER_DAY

#endif
