/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * fuzz_mdm_signature.c - the Mdm-Signature decoder: trim, strict base64,
 * DER CMS, shape checks, CMS_verify over the body, signer certificate.
 *
 * Input: the header value, a newline, then the body it signs (base64 has
 * no newline, so the split is unambiguous).  The value is handed over as
 * httpd does: a NUL-terminated string.  On success the DER handed back
 * must be exactly what the returned certificate encodes to.
 */
#include "fuzz_common.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "core/gt_cert.h"
#include "core/gt_identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    const uint8_t *nl = memchr(data, '\n', len);
    size_t value_len = nl ? (size_t)(nl - data) : len;
    size_t body_len = nl ? len - value_len - 1 : 0;
    char *value = fuzz_cstring(data, value_len);
    char *body = malloc(body_len ? body_len : 1);
    apr_pool_t *pool = fuzz_pool();
    const unsigned char *der = NULL;
    apr_size_t der_len = 0;
    const char *why = NULL;
    X509 *cert;

    if (!body)
        abort();
    memcpy(body, nl ? nl + 1 : data, body_len);
    cert = gt_mdm_signature_verify(pool, value, body, body_len, &der, &der_len, &why);
    if (cert) {
        unsigned char *again = NULL;
        int n = i2d_X509(cert, &again);

        FUZZ_ASSERT(der && n > 0 && (size_t)n == der_len
                    && memcmp(again, der, der_len) == 0,
                    "the DER handed back is not the signer certificate's");
        OPENSSL_free(again);
        X509_free(cert);
    }
    else
        FUZZ_ASSERT(why != NULL, "a refusal without a reason");
    fuzz_end_openssl(pool);
    free(body);
    free(value);
    return 0;
}
