/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * fuzz_jws.c - the JWS verifier (gt_jws_verify) with the trusted keys a
 * watch-verify server holds (one RSA-2048, one EC P-256), then the pairing
 * claims check on the verified payload, as watch-verify does.
 *
 * The keys are read at start-up from GT_FUZZ_KEY_DIR (written by
 * make_seeds.py next to the seed tokens it signs), so seeds get past the
 * signature and the fuzzer explores the claims behind it.
 */
#include "fuzz_common.h"

#include <openssl/err.h>
#include <openssl/pem.h>

#include "apr_tables.h"

#include "core/gt_pairing.h"
#include "jose/gt_jose.h"

/* What make_seeds.py puts in the pairing tokens it signs. */
#define SEED_NOW        1767225600
#define SEED_WATCH      "FUZZ-WATCH-UDID-0001"
#define SEED_SECRET     "fuzz-security-token"

static apr_array_header_t *keys;
static apr_pool_t *key_pool;

static void load_key(const char *dir, const char *name)
{
    char path[4096];
    FILE *f;
    EVP_PKEY *key;

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "fuzz_jws: %s missing: seeds will not verify\n", path);
        return;
    }
    key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
    fclose(f);
    if (!key) {
        fprintf(stderr, "fuzz_jws: %s is not a public key\n", path);
        abort();
    }
    APR_ARRAY_PUSH(keys, EVP_PKEY *) = key;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *dir = getenv("GT_FUZZ_KEY_DIR");

    (void)argc; (void)argv;
    key_pool = fuzz_pool();
    keys = apr_array_make(key_pool, 2, sizeof(EVP_PKEY *));
    if (!dir)
        dir = GT_FUZZ_DEFAULT_KEY_DIR;
    load_key(dir, "rsa.pub.pem");
    load_key(dir, "ec.pub.pem");
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    /* watch-verify reads the token as a string (strlen) */
    char *token = fuzz_cstring(data, len);
    apr_pool_t *pool = fuzz_pool();
    const char *payload = NULL, *why = NULL;
    apr_size_t payload_len = 0;
    gt_jws_result res;

    res = gt_jws_verify(pool, token, strlen(token), keys, &payload,
                        &payload_len, &why);
    if (res == GT_JWS_VALID) {
        gt_pairing_claims claims;

        FUZZ_ASSERT(payload && payload_len <= GT_JWS_MAX_PAYLOAD
                    && payload[payload_len] == '\0',
                    "a verified payload out of its bounds");
        if (gt_pairing_check(pool, payload, payload_len, SEED_NOW, SEED_WATCH,
                             SEED_SECRET, &claims, &why) != GT_PAIRING_OK)
            FUZZ_ASSERT(why != NULL, "a refused claim set without a reason");
    }
    else
        FUZZ_ASSERT(why != NULL, "a refused token without a reason");
    fuzz_end_openssl(pool);
    free(token);
    return 0;
}
