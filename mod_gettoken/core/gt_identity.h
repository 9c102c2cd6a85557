/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_identity.h - device identity certificates carried in HTTP headers,
 * decoded and checked without httpd:
 *
 *   Mdm-Signature   base64 of a CMS (PKCS#7) SignedData, detached, over
 *                   the exact bytes of the check-in body; one signer, whose
 *                   certificate is included.  The signer certificate is the
 *                   identity.  Its chain is NOT verified: device identities
 *                   chain to the MDM's own CA, and what authenticates them
 *                   is the enrollment binding in the database.  The
 *                   signature itself must verify.
 *   proxy header    a certificate forwarded by a TLS-terminating proxy:
 *                   RFC 9440 Client-Cert (":" base64 DER ":"), the
 *                   URL-escaped PEM that nginx ($ssl_client_escaped_cert)
 *                   and HAProxy send, plain PEM, or bare base64 DER.
 *
 * On success an X509 is returned that the caller frees (X509_free), and
 * *der / *der_len hold its DER encoding (from `pool`).  On failure NULL is
 * returned and *why says why in one line (static or from `pool`; never
 * any of the decoded bytes).
 */
#ifndef GT_IDENTITY_H
#define GT_IDENTITY_H

#include "apr_pools.h"
#include <openssl/cms.h>
#include <openssl/x509.h>

/* The most header text either form accepts (a device certificate and its
 * CMS wrapping are 1-4 KiB; httpd's default LimitRequestFieldSize is 8190). */
#define GT_IDENTITY_HEADER_MAX  (32 * 1024)

/* 1 when a CMS signer's digest is one accepted for device signatures (SHA-1
 * or SHA-2; devices sign with either); *name is its short name. */
int gt_cms_digest_accepted(CMS_SignerInfo *si, const char **name);

/* The signer certificate of an Mdm-Signature header value over body. */
X509 *gt_mdm_signature_verify(apr_pool_t *pool, const char *value,
                              const void *body, apr_size_t body_len,
                              const unsigned char **der, apr_size_t *der_len,
                              const char **why);

/* The certificate in a proxy header value (any of the forms above). */
X509 *gt_proxy_cert_parse(apr_pool_t *pool, const char *value,
                          const unsigned char **der, apr_size_t *der_len,
                          const char **why);

#endif
