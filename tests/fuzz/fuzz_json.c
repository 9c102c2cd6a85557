/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * fuzz_json.c - the flat-JSON parser (gt_json_parse_object) and the pairing
 * claims check behind the JWS signature (gt_pairing_check), reached here
 * without a signature so the fuzzer is not stopped by one.
 *
 * Checks what gt_json.h promises of an accepted object: at most
 * max_members members, names unique, strings NUL-terminated at str_len
 * with no NUL inside.
 */
#include "fuzz_common.h"

#include "apr_tables.h"

#include "core/gt_pairing.h"
#include "jose/gt_json.h"

#define SEED_NOW        1767225600
#define SEED_WATCH      "FUZZ-WATCH-UDID-0001"
#define SEED_SECRET     "fuzz-security-token"
#define MAX_MEMBERS     32

static void check_object(const apr_array_header_t *obj)
{
    int i, j;

    FUZZ_ASSERT(obj->nelts <= MAX_MEMBERS, "more members than allowed");
    for (i = 0; i < obj->nelts; i++) {
        const gt_json_member *m = &APR_ARRAY_IDX(obj, i, gt_json_member);

        FUZZ_ASSERT(m->name != NULL, "a member without a name");
        for (j = 0; j < i; j++)
            FUZZ_ASSERT(strcmp(APR_ARRAY_IDX(obj, j, gt_json_member).name,
                               m->name) != 0,
                        "a duplicate member name was accepted");
        if (m->type == GT_JSON_STRING)
            FUZZ_ASSERT(m->str && m->str[m->str_len] == '\0'
                        && strlen(m->str) == m->str_len,
                        "a string with a NUL inside or a wrong length");
        FUZZ_ASSERT(gt_json_get(obj, m->name) == m,
                    "gt_json_get does not find a member by its name");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    apr_pool_t *pool = fuzz_pool();
    const char *why = NULL;
    gt_pairing_claims claims;
    apr_array_header_t *obj;
    /* gt_json_parse_object takes a length; no NUL after it */
    obj = gt_json_parse_object(pool, (const char *)data, len, MAX_MEMBERS, &why);
    if (obj)
        check_object(obj);
    else
        FUZZ_ASSERT(why != NULL, "a refused object without a reason");
    if (gt_pairing_check(pool, (const char *)data, len, SEED_NOW, SEED_WATCH,
                         SEED_SECRET, &claims, &why) != GT_PAIRING_OK)
        FUZZ_ASSERT(why != NULL, "refused claims without a reason");
    apr_pool_destroy(pool);
    return 0;
}
