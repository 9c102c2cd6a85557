/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * fuzz_cert_der.c - PEM to DER (gt_pem_cert_to_der) and the DER validity
 * walker (gt_cert_validity).
 *
 * The input goes to the PEM reader as a string, and to the walker both as
 * raw DER and as whatever DER the PEM reader found.  Whenever OpenSSL also
 * decodes the input as exactly one certificate and reads both dates, the
 * walker's dates must be OpenSSL's (an independent decoder as the oracle).
 */
#include "fuzz_common.h"

#include <time.h>

#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/x509.h>

#include "core/gt_cert.h"

static int openssl_time(const ASN1_TIME *t, apr_int64_t *out)
{
    struct tm tm;

    memset(&tm, 0, sizeof(tm));
    if (!t || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    *out = (apr_int64_t)timegm(&tm);
    return 0;
}

static void check_against_openssl(const unsigned char *der, size_t len)
{
    apr_int64_t nb = 0, na = 0, onb = 0, ona = 0;
    const unsigned char *p = der;
    X509 *cert;

    if (gt_cert_validity(der, len, &nb, &na) != 0)
        return;
    cert = d2i_X509(NULL, &p, (long)len);
    if (cert && p == der + len
        && openssl_time(X509_get0_notBefore(cert), &onb) == 0
        && openssl_time(X509_get0_notAfter(cert), &ona) == 0)
        FUZZ_ASSERT(nb == onb && na == ona,
                    "validity dates differ from OpenSSL's");
    X509_free(cert);
    ERR_clear_error();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    char *pem = fuzz_cstring(data, len);
    apr_pool_t *pool = fuzz_pool();
    const unsigned char *der = NULL;
    apr_size_t der_len = 0;

    if (gt_pem_cert_to_der(pool, pem, &der, &der_len) == 0) {
        FUZZ_ASSERT(der != NULL && der_len > 0, "an empty DER from PEM");
        check_against_openssl(der, der_len);
    }
    check_against_openssl(data, len);
    apr_pool_destroy(pool);
    free(pem);
    return 0;
}
