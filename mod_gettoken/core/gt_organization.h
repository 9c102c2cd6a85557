/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_organization.h - what an organisation (an Apple Business/School
 * Manager MDM server: a server UUID and its key) needs outside httpd:
 * which names are acceptable, and how its key is shown to operators.
 */
#ifndef GT_ORGANIZATION_H
#define GT_ORGANIZATION_H

#include "apr_pools.h"
#include <openssl/evp.h>

/* The name under which a vhost's GetTokenServerUUID / GetTokenSigningKey
 * appear in logs; no GetTokenOrganization may take it. */
#define GT_ORGANIZATION_DEFAULT  "default"
/* Names are compared byte for byte with what the database returns and end
 * up in log lines: short, and without control characters. */
#define GT_ORGANIZATION_MAX_NAME 128

/* 1 when `name` is 1..GT_ORGANIZATION_MAX_NAME bytes without control
 * characters (so a log line stays one line), else 0. */
int gt_organization_name_ok(const char *name);

/*
 * Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo of `key`'s public
 * half (what `openssl pkey -pubout -outform DER | sha256sum` prints), from
 * `pool`; NULL when the key cannot be encoded.  Works for keys held in an
 * HSM too: only the public half is read.
 */
const char *gt_public_key_fingerprint(apr_pool_t *pool, EVP_PKEY *key);

#endif
