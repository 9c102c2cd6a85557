/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * fuzz_proxy_cert.c - the header-certificate decoder (gt_proxy_cert_parse):
 * RFC 9440 Client-Cert (":base64 DER:"), URL-escaped PEM, PEM, bare base64
 * DER; then, on success, the validity walker over the DER, as the module
 * does.  The value is a NUL-terminated string, as httpd hands it over.
 */
#include "fuzz_common.h"

#include <openssl/err.h>
#include <openssl/x509.h>

#include "core/gt_cert.h"
#include "core/gt_identity.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *value = fuzz_cstring(data, len);
    apr_pool_t *pool = fuzz_pool();
    const unsigned char *der = NULL;
    apr_size_t der_len = 0;
    const char *why = NULL;
    X509 *cert = gt_proxy_cert_parse(pool, value, &der, &der_len, &why);

    if (cert) {
        apr_int64_t not_before = 0, not_after = 0;
        const unsigned char *p = der;
        X509 *again = d2i_X509(NULL, &p, (long)der_len);

        /* the DER handed back is one whole certificate */
        FUZZ_ASSERT(again != NULL && p == der + der_len,
                    "the DER handed back is not one certificate");
        X509_free(again);
        (void)gt_cert_validity(der, der_len, &not_before, &not_after);
        X509_free(cert);
    }
    else
        FUZZ_ASSERT(why != NULL, "a refusal without a reason");
    fuzz_end_openssl(pool);
    free(value);
    return 0;
}
