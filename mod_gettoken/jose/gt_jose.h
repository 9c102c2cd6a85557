/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_jose.h - the JOSE pieces mod_gettoken needs, for callers that use
 * several: base64url, flat JSON, compact JWS, random UUIDs.  Knows nothing
 * of httpd; APR and OpenSSL 3.
 */
#ifndef GT_JOSE_H
#define GT_JOSE_H

#include "gt_b64url.h"
#include "gt_json.h"
#include "gt_jws.h"
#include "gt_uuid.h"

#endif
