/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_identity.c - Mdm-Signature (CMS over the body) and proxy-forwarded
 * client certificates, decoded with OpenSSL.  See gt_identity.h.
 */
#include "gt_identity.h"
#include "gt_cms.h"
#include "gt_cert.h"

#include <limits.h>
#include <string.h>

#include "apr_strings.h"

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/objects.h>

/* ---- helpers ------------------------------------------------------------ */

/* value without surrounding spaces/tabs; *len its length */
static const char *trim(const char *value, apr_size_t *len)
{
    const char *end;

    while (*value == ' ' || *value == '\t')
        value++;
    end = value + strlen(value);
    while (end > value && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *len = (apr_size_t)(end - value);
    return value;
}

/* The reason OpenSSL gave for the last failure, then forgotten. */
static const char *openssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *reason = e ? ERR_reason_error_string(e) : NULL;

    ERR_clear_error();
    return reason ? reason : "no reason given";
}

static int cert_der(apr_pool_t *pool, X509 *cert, const unsigned char **der,
                    apr_size_t *der_len)
{
    unsigned char *buf = NULL;
    int n = i2d_X509(cert, &buf);

    if (n <= 0) {
        ERR_clear_error();
        return -1;
    }
    *der = apr_pmemdup(pool, buf, (apr_size_t)n);
    *der_len = (apr_size_t)n;
    OPENSSL_free(buf);
    return 0;
}

/* A certificate from DER that must be exactly one certificate. */
static X509 *cert_from_der(apr_pool_t *pool, const unsigned char *buf,
                           apr_size_t len, const unsigned char **der,
                           apr_size_t *der_len, const char **why)
{
    const unsigned char *p = buf;
    X509 *cert;

    if (len == 0 || len > LONG_MAX) {
        *why = "the certificate is empty";
        return NULL;
    }
    cert = d2i_X509(NULL, &p, (long)len);
    if (!cert) {
        *why = apr_psprintf(pool, "not a DER X.509 certificate (%s)",
                            openssl_reason());
        return NULL;
    }
    if (p != buf + len) {
        X509_free(cert);
        *why = "bytes follow the DER certificate";
        return NULL;
    }
    if (cert_der(pool, cert, der, der_len) != 0) {
        X509_free(cert);
        *why = "the certificate could not be re-encoded";
        return NULL;
    }
    return cert;
}

/* ---- Mdm-Signature ------------------------------------------------------ */

int gt_cms_digest_accepted(CMS_SignerInfo *si, const char **name)
{
    X509_ALGOR *dig = NULL;
    const ASN1_OBJECT *obj = NULL;
    int nid;

    CMS_SignerInfo_get0_algs(si, NULL, NULL, &dig, NULL);
    if (!dig)
        return 0;
    X509_ALGOR_get0(&obj, NULL, NULL, dig);
    nid = obj ? OBJ_obj2nid(obj) : NID_undef;
    *name = nid != NID_undef ? OBJ_nid2sn(nid) : "unknown";
    return nid == NID_sha1 || nid == NID_sha224 || nid == NID_sha256
           || nid == NID_sha384 || nid == NID_sha512;
}

/* Checks the structure: SignedData, detached, exactly one signer with an
 * accepted digest.  NULL when it is fine, else why not. */
static const char *cms_shape(apr_pool_t *pool, CMS_ContentInfo *cms)
{
    STACK_OF(CMS_SignerInfo) *sis;
    const char *digest = NULL;
    int n;

    if (OBJ_obj2nid(CMS_get0_type(cms)) != NID_pkcs7_signed)
        return "the CMS structure is not SignedData";
    sis = CMS_get0_SignerInfos(cms);
    n = sis ? sk_CMS_SignerInfo_num(sis) : 0;
    if (n <= 0)
        return "the signature has no signer";
    if (n > 1)
        return apr_psprintf(pool, "the signature has %d signers (one "
                            "expected)", n);
    if (CMS_is_detached(cms) != 1)
        return "the signature is not detached (it carries content of its "
               "own, not the body's)";
    if (!gt_cms_digest_accepted(sk_CMS_SignerInfo_value(sis, 0), &digest))
        return apr_psprintf(pool, "the signature's digest algorithm %s is "
                            "not accepted (SHA-1 or SHA-2)", digest);
    return NULL;
}

/*
 * The body as CMS_verify's detached content.  Given a memory BIO, OpenSSL 3.0
 * copies it into a BIO of its own and leaks that copy when verification stops
 * early (an unknown digest algorithm in the SignedData), once per request; a
 * buffering filter in front keeps it from making the copy.
 */
static BIO *body_bio(const char *body, apr_size_t body_len)
{
    BIO *mem = BIO_new_mem_buf(body_len ? body : "", (int)body_len);
    BIO *buffered = mem ? BIO_new(BIO_f_buffer()) : NULL;

    if (!buffered) {
        BIO_free(mem);
        return NULL;
    }
    return BIO_push(buffered, mem);
}

/* The CMS structure in an Mdm-Signature header value: base64 of exactly
 * one DER ContentInfo.  NULL with *why. */
static CMS_ContentInfo *cms_from_header(apr_pool_t *pool, const char *value,
                                        const char **why)
{
    unsigned char *raw = NULL;
    const unsigned char *p;
    apr_size_t len = 0, raw_len = 0;
    CMS_ContentInfo *cms;

    value = trim(value, &len);
    if (len > GT_IDENTITY_HEADER_MAX) {
        *why = apr_psprintf(pool, "the Mdm-Signature header is %" APR_SIZE_T_FMT
                            " bytes, over the %d accepted", len,
                            GT_IDENTITY_HEADER_MAX);
        return NULL;
    }
    if (len == 0 || gt_base64_decode(pool, value, len, 0, &raw, &raw_len) != 0
        || raw_len == 0) {
        *why = "the Mdm-Signature header is not base64";
        return NULL;
    }
    p = raw;
    cms = d2i_CMS_ContentInfo(NULL, &p, (long)raw_len);
    if (!cms) {
        *why = apr_psprintf(pool, "the Mdm-Signature header is not a DER "
                            "CMS structure (%s)", openssl_reason());
        return NULL;
    }
    if (p != raw + raw_len) {
        CMS_ContentInfo_free(cms);
        *why = "bytes follow the CMS structure in the Mdm-Signature header";
        return NULL;
    }
    return cms;
}

/* Keys that would cost milliseconds to verify with are refused first.
 * NULL when every key is bounded. */
static const char *signer_keys_bounded(apr_pool_t *pool, CMS_ContentInfo *cms)
{
    const char *why = NULL;

    if (gt_cms_keys_bounded(pool, cms, &why) != 0)
        return apr_pstrcat(pool, "the Mdm-Signature holds ", why, NULL);
    return NULL;
}

/* The signature over the body.  CMS_BINARY: the digest is over the exact
 * body bytes (no MIME canonicalisation).  CMS_NO_SIGNER_CERT_VERIFY: the
 * device certificate chains to the MDM's CA, unknown here; the enrollment
 * binding is what authenticates it.  The signature itself is verified.
 * NULL when it verifies, else why not. */
static const char *cms_verify_body(apr_pool_t *pool, CMS_ContentInfo *cms,
                                   const void *body, apr_size_t body_len)
{
    BIO *content = body_bio(body, body_len);
    int ok;

    if (!content)
        return "out of memory";
    ok = CMS_verify(cms, NULL, NULL, content, NULL,
                    CMS_BINARY | CMS_NO_SIGNER_CERT_VERIFY) == 1;
    BIO_free_all(content);
    if (!ok)
        return apr_psprintf(pool, "the Mdm-Signature does not verify over "
                            "the body (%s)", openssl_reason());
    return NULL;
}

/* The one signer's certificate, with a reference of its own and its DER.
 * NULL with *why. */
static X509 *cms_signer_cert(apr_pool_t *pool, CMS_ContentInfo *cms,
                             const unsigned char **der, apr_size_t *der_len,
                             const char **why)
{
    STACK_OF(X509) *signers = CMS_get0_signers(cms);
    X509 *cert;

    if (!signers || sk_X509_num(signers) != 1) {
        sk_X509_free(signers);
        *why = "the Mdm-Signature signer certificate is missing";
        return NULL;
    }
    cert = sk_X509_value(signers, 0);
    sk_X509_free(signers);
    if (!cert || X509_up_ref(cert) != 1) {
        *why = "the Mdm-Signature signer certificate could not be kept";
        return NULL;
    }
    if (cert_der(pool, cert, der, der_len) != 0) {
        X509_free(cert);
        *why = "the Mdm-Signature signer certificate could not be encoded";
        return NULL;
    }
    return cert;
}

X509 *gt_mdm_signature_verify(apr_pool_t *pool, const char *value,
                              const void *body, apr_size_t body_len,
                              const unsigned char **der, apr_size_t *der_len,
                              const char **why)
{
    CMS_ContentInfo *cms;
    X509 *cert = NULL;

    if (body_len > INT_MAX) {
        *why = "the body is too large to verify";
        return NULL;
    }
    cms = cms_from_header(pool, value, why);
    if (!cms)
        return NULL;
    if ((*why = cms_shape(pool, cms)) == NULL
        && (*why = signer_keys_bounded(pool, cms)) == NULL
        && (*why = cms_verify_body(pool, cms, body, body_len)) == NULL)
        cert = cms_signer_cert(pool, cms, der, der_len, why);
    CMS_ContentInfo_free(cms);
    ERR_clear_error();
    return cert;
}

/* ---- proxy header ------------------------------------------------------- */

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* %XX decoding only ('+' stays '+': it is a base64 character). */
static char *url_unescape(apr_pool_t *pool, const char *in, apr_size_t len,
                          apr_size_t *out_len)
{
    char *out = apr_palloc(pool, len + 1);
    apr_size_t i, n = 0;

    for (i = 0; i < len; i++) {
        if (in[i] == '%') {
            int hi, lo;
            if (i + 2 >= len)
                return NULL;
            hi = hex_value((unsigned char)in[i + 1]);
            lo = hex_value((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return NULL;
            out[n++] = (char)(hi << 4 | lo);
            i += 2;
        }
        else
            out[n++] = in[i];
    }
    out[n] = '\0';
    *out_len = n;
    return out;
}

static int only_ws(const char *s, const char *end)
{
    for (; s < end; s++)
        if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
            return 0;
    return 1;
}

/* One PEM certificate, tolerant of how proxies fold it: newlines kept,
 * turned into spaces or tabs, or removed; nothing else around it. */
static X509 *cert_from_pem(apr_pool_t *pool, const char *pem, apr_size_t len,
                           const unsigned char **der, apr_size_t *der_len,
                           const char **why)
{
    const char *end = pem + len;
    unsigned char *raw = NULL;
    apr_size_t raw_len = 0;
    gt_pem_block block;

    if ((gt_pem_cert_find(pem, len, &block) != 0 && !block.begin)
        || !only_ws(pem, block.begin)) {
        *why = "the PEM text does not start with -----BEGIN CERTIFICATE-----";
        return NULL;
    }
    if (!block.body_end) {
        *why = "the PEM certificate has no END line";
        return NULL;
    }
    if (!only_ws(block.after, end)) {
        *why = memmem(block.body_end, (apr_size_t)(end - block.body_end),
                      GT_PEM_CERT_BEGIN, sizeof(GT_PEM_CERT_BEGIN) - 1)
               ? "the header holds more than one certificate"
               : "text follows the PEM certificate";
        return NULL;
    }
    if (gt_base64_decode(pool, block.body,
                         (apr_size_t)(block.body_end - block.body), 1, &raw,
                         &raw_len) != 0) {
        *why = "the PEM certificate's body is not base64";
        return NULL;
    }
    return cert_from_der(pool, raw, raw_len, der, der_len, why);
}

X509 *gt_proxy_cert_parse(apr_pool_t *pool, const char *value,
                          const unsigned char **der, apr_size_t *der_len,
                          const char **why)
{
    apr_size_t len = 0, raw_len = 0;
    unsigned char *raw = NULL;

    value = trim(value, &len);
    if (len > GT_IDENTITY_HEADER_MAX) {
        *why = apr_psprintf(pool, "the header is %" APR_SIZE_T_FMT " bytes, "
                            "over the %d accepted", len,
                            GT_IDENTITY_HEADER_MAX);
        return NULL;
    }
    if (len == 0) {
        *why = "the header is empty";
        return NULL;
    }
    if (value[0] == ':') {
        /* RFC 9440: a structured-field byte sequence, base64 DER */
        if (len < 3 || value[len - 1] != ':'
            || gt_base64_decode(pool, value + 1, len - 2, 0, &raw,
                                &raw_len) != 0) {
            *why = "not an RFC 9440 byte sequence (:base64 DER:)";
            return NULL;
        }
        return cert_from_der(pool, raw, raw_len, der, der_len, why);
    }
    if (memchr(value, '%', len)) {
        /* nginx $ssl_client_escaped_cert, HAProxy: URL-escaped PEM */
        apr_size_t plen = 0;
        char *pem = url_unescape(pool, value, len, &plen);
        if (!pem) {
            *why = "a broken %-escape in the URL-escaped certificate";
            return NULL;
        }
        return cert_from_pem(pool, pem, plen, der, der_len, why);
    }
    if (len >= 5 && memcmp(value, "-----", 5) == 0)
        return cert_from_pem(pool, apr_pstrmemdup(pool, value, len), len,
                             der, der_len, why);
    /* HAProxy %[ssl_c_der,base64]: bare base64 DER */
    if (gt_base64_decode(pool, value, len, 0, &raw, &raw_len) != 0) {
        *why = "neither RFC 9440 (:base64:), URL-escaped PEM, PEM nor "
               "base64 DER";
        return NULL;
    }
    return cert_from_der(pool, raw, raw_len, der, der_len, why);
}
