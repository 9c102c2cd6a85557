/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_uuid.h - random UUIDs for jti, and the check of a UUID's shape.
 */
#ifndef GT_UUID_H
#define GT_UUID_H

#include "../core/gt_limits.h"

/* A random (RFC 4122 version 4) UUID, lowercase, from the system's CSPRNG
 * (apr_generate_random_bytes: getrandom on Linux).  Returns 0, or -1 when
 * it fails. */
int gt_uuid_v4(char out[GT_UUID_SIZE]);

/* 1 when `s` is a UUID in 8-4-4-4-12 hex form (either case). */
int gt_is_uuid(const char *s);

#endif
