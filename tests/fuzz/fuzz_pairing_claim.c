/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * fuzz_pairing_claim.c - the claimed issuer of a pairing token, read before
 * its signature is checked (gt_pairing_claimed_issuer): the watch enrollment
 * gate and the verify handler call it on every PAIRING_TOKEN / TokenData a
 * client sends, to pick the keys that may verify it.
 *
 * Promises: a result is a plausible identifier (gt_pairing_id_ok), shorter
 * than the token, from a token that has two dots; no result comes with a
 * reason.
 */
#include "fuzz_common.h"

#include "core/gt_pairing.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    apr_pool_t *pool = fuzz_pool();
    /* exactly len bytes, no terminator: the reader must keep to len */
    char *token = malloc(len ? len : 1);
    const char *why = NULL, *iss;
    const char *dot1;

    if (!token)
        abort();
    memcpy(token, data, len);
    iss = gt_pairing_claimed_issuer(pool, token, len, &why);
    if (iss) {
        FUZZ_ASSERT(gt_pairing_id_ok(iss), "an implausible issuer returned");
        FUZZ_ASSERT(strlen(iss) < len, "an issuer longer than the token");
        dot1 = memchr(token, '.', len);
        FUZZ_ASSERT(dot1 && memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)),
                    "an issuer from a token without two dots");
    }
    else
        FUZZ_ASSERT(why && *why, "no issuer and no reason");
    free(token);
    fuzz_end_openssl(pool);
    return 0;
}
