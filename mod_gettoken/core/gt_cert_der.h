/*
 * gt_cert_der.h - what the module needs of an identity certificate, read
 * straight from its DER: the DER inside a PEM block, and the validity
 * period.  No X509 decode: in OpenSSL 3 decoding a certificate decodes its
 * public key through the provider machinery, which costs most of an
 * RSA-2048 signature per request, while the module only needs the DER's
 * SHA-256 and two dates.
 */
#ifndef GT_CERT_DER_H
#define GT_CERT_DER_H

#include "apr_pools.h"

/*
 * The DER of the first "-----BEGIN CERTIFICATE-----" block in `pem`
 * (strict base64, whitespace ignored).  Returns 0 and *der (from pool) /
 * *der_len, or -1.
 */
int gt_pem_cert_to_der(apr_pool_t *pool, const char *pem,
                       const unsigned char **der, apr_size_t *der_len);

/*
 * notBefore / notAfter of a DER X.509 certificate, in seconds since the
 * epoch, found by walking Certificate -> tbsCertificate -> Validity.
 * Times are UTCTime (years 1950-2049) or GeneralizedTime; besides RFC
 * 5280's "...SSZ" forms, seconds may be missing, GeneralizedTime may have
 * a fraction and either may end in a +hhmm / -hhmm offset, as OpenSSL
 * accepts.  Returns 0, or -1 when the DER does not have a certificate's
 * shape up to the Validity field or a time is malformed.
 */
int gt_cert_validity(const unsigned char *der, apr_size_t der_len,
                     apr_int64_t *not_before, apr_int64_t *not_after);

#endif
