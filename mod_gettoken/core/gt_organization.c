/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_organization.c - organisation names and public-key fingerprints.
 */
#include "gt_organization.h"
#include "gt_cert.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/x509.h>

int gt_organization_name_ok(const char *name)
{
    const unsigned char *p;
    apr_size_t n;

    if (!name)
        return 0;
    n = strlen(name);
    if (n == 0 || n > GT_ORGANIZATION_MAX_NAME)
        return 0;
    for (p = (const unsigned char *)name; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

const char *gt_public_key_fingerprint(apr_pool_t *pool, EVP_PKEY *key)
{
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    const char *out = NULL;
    int der_len;

    if (!key)
        return NULL;
    der_len = i2d_PUBKEY(key, &der);
    if (der_len <= 0)
        return NULL;
    if (EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL) == 1)
        out = gt_hex(pool, md, md_len);
    OPENSSL_free(der);
    return out;
}
