/*
 * gt_organization.c - organisation names and public-key fingerprints.
 */
#include "gt_organization.h"

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
    static const char hex[] = "0123456789abcdef";
    unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0, i;
    char *out = NULL;
    int der_len;

    if (!key)
        return NULL;
    der_len = i2d_PUBKEY(key, &der);
    if (der_len <= 0)
        return NULL;
    if (EVP_Digest(der, (size_t)der_len, md, &md_len, EVP_sha256(), NULL) == 1) {
        out = apr_palloc(pool, md_len * 2 + 1);
        for (i = 0; i < md_len; i++) {
            out[2 * i] = hex[md[i] >> 4];
            out[2 * i + 1] = hex[md[i] & 0x0f];
        }
        out[2 * md_len] = '\0';
    }
    OPENSSL_free(der);
    return out;
}
