/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * fuzz_machineinfo.c - the watch enrollment gate's MachineInfo reader
 * (gt_machineinfo_parse): a DER CMS SignedData with the plist attached, or
 * the plist itself, XML or binary.  No CA store: the signature is checked
 * for integrity only, as without GetTokenWatchEnrollmentCA.
 *
 * Checks what gt_machineinfo.h promises of a watch's MachineInfo: a UDID and
 * a PRODUCT naming a watch, a pairing token within its bound, and a reason
 * for every refusal.
 */
#include "fuzz_common.h"

#include "core/gt_machineinfo.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    apr_pool_t *pool = fuzz_pool();
    const char *why = NULL;
    gt_machineinfo mi;

    memset(&mi, 0, sizeof(mi));
    switch (gt_machineinfo_parse(pool, (const char *)data, len, NULL, &mi,
                                 &why)) {
    case GT_MI_WATCH:
        FUZZ_ASSERT(mi.udid && *mi.udid, "a watch admitted without a UDID");
        FUZZ_ASSERT(mi.product && strcasestr(mi.product, "watch"),
                    "a MachineInfo taken as a watch's without a PRODUCT naming one");
        FUZZ_ASSERT(gt_machineinfo_udid_ok(mi.udid), "a watch with an invalid UDID");
        FUZZ_ASSERT(!mi.pairing_token
                    || strlen(mi.pairing_token) <= GT_MI_MAX_TOKEN,
                    "a pairing token over its bound");
        break;
    case GT_MI_REFUSED:
    case GT_MI_INVALID:
        FUZZ_ASSERT(why != NULL && *why, "a refusal without a reason");
        break;
    case GT_MI_NOT_WATCH:
        break;
    }
    fuzz_end_openssl(pool);
    return 0;
}
