/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_uuid.c - random version 4 UUIDs (jti) and the UUID shape check.
 */
#include "gt_uuid.h"

#include "apr_general.h"
#include "apr_strings.h"

int gt_uuid_v4(char out[GT_UUID_SIZE])
{
    unsigned char b[16];

    /* the kernel's CSPRNG (getrandom): fork-safe, and a third of the cost
     * of OpenSSL's per-thread DRBG per call */
    if (apr_generate_random_bytes(b, sizeof(b)) != APR_SUCCESS)
        return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);   /* version 4 */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);   /* RFC 4122 variant */
    apr_snprintf(out, GT_UUID_SIZE,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
                 "%02x%02x%02x%02x%02x%02x",
                 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
                 b[10], b[11], b[12], b[13], b[14], b[15]);
    return 0;
}

int gt_is_uuid(const char *s)
{
    int i;

    for (i = 0; i < GT_UUID_LEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        }
        else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')
                   || (c >= 'A' && c <= 'F')))
            return 0;
    }
    return s[GT_UUID_LEN] == '\0';
}
