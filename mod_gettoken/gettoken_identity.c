/*
 * gettoken_identity.c - where the device identity certificate comes from
 * (GetTokenIdentity): mod_ssl's client certificate, the Mdm-Signature
 * header, or a header set by a TLS-terminating proxy.  Sources are tried
 * in the configured order; the first that presents a certificate wins.
 */
#include "gettoken_private.h"

#include "apr_strings.h"
#include "http_ssl.h"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "core/gt_keys.h"

APLOG_USE_MODULE(gettoken);

typedef enum {
    SOURCE_FOUND,      /* certificate in *der */
    SOURCE_ABSENT,     /* this source has nothing: try the next */
    SOURCE_REFUSED     /* this source presented something invalid: 401 */
} source_result;

/* PEM text to DER bytes in the request pool. */
static int pem_to_der(request_rec *r, const char *pem, const unsigned char **der,
                      apr_size_t *der_len, X509 **cert_out)
{
    BIO *bio = BIO_new_mem_buf(pem, -1);
    X509 *cert;
    unsigned char *buf = NULL;
    int n;

    if (!bio)
        return -1;
    cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    if (!cert) {
        ERR_clear_error();
        return -1;
    }
    n = i2d_X509(cert, &buf);
    if (n <= 0) {
        X509_free(cert);
        ERR_clear_error();
        return -1;
    }
    *der = apr_pmemdup(r->pool, buf, (apr_size_t)n);
    *der_len = (apr_size_t)n;
    OPENSSL_free(buf);
    *cert_out = cert;
    return 0;
}

static source_result from_ssl(request_rec *r, const gettoken_server_conf *conf,
                              gettoken_request *req, X509 **cert,
                              const char **why)
{
    const char *pem;

    if (!ap_ssl_conn_is_ssl(r->connection)) {
        *why = "the connection is not TLS";
        return SOURCE_ABSENT;
    }
    pem = ap_ssl_var_lookup(r->pool, r->server, r->connection, r,
                            "SSL_CLIENT_CERT");
    if (!pem || !*pem) {
        *why = "no TLS client certificate was presented";
        return SOURCE_ABSENT;
    }
    if (!conf->enrollment_sql) {
        /* Without the enrollment binding only a chain that mod_ssl
         * verified against the configured CA proves anything. */
        const char *verify = ap_ssl_var_lookup(r->pool, r->server,
                                               r->connection, r,
                                               "SSL_CLIENT_VERIFY");
        if (!verify || strcmp(verify, "SUCCESS") != 0) {
            *why = "GetTokenEnrollmentSQL is none and mod_ssl did not verify "
                   "the client certificate (SSL_CLIENT_VERIFY is not SUCCESS)";
            return SOURCE_REFUSED;
        }
    }
    if (pem_to_der(r, pem, &req->identity_der, &req->identity_der_len, cert) != 0) {
        *why = "the TLS client certificate could not be decoded";
        return SOURCE_REFUSED;
    }
    return SOURCE_FOUND;
}

static source_result from_mdm_signature(request_rec *r,
                                        const gettoken_server_conf *conf,
                                        const char *body, apr_size_t body_len,
                                        gettoken_request *req, X509 **cert,
                                        const char **why)
{
    *why = "GetTokenIdentity mdm-signature is not available in this build";
    return SOURCE_ABSENT;
}

static source_result from_header(request_rec *r, const char *header,
                                 gettoken_request *req, X509 **cert,
                                 const char **why)
{
    *why = "GetTokenIdentity header is not available in this build";
    return SOURCE_ABSENT;
}

static const char *source_name(gettoken_identity_type type)
{
    switch (type) {
    case GT_IDENTITY_SSL:           return "ssl";
    case GT_IDENTITY_MDM_SIGNATURE: return "mdm-signature";
    case GT_IDENTITY_HEADER:        return "header";
    }
    return "?";
}

int gettoken_identity_find(request_rec *r, const gettoken_server_conf *conf,
                           const char *body, apr_size_t body_len,
                           gettoken_request *req)
{
    static const gettoken_identity_source ssl_only = { GT_IDENTITY_SSL, NULL };
    const gettoken_identity_source *sources = &ssl_only;
    int count = 1, i;
    const char *why = "no identity source is configured";

    if (conf->identity) {
        sources = (const gettoken_identity_source *)conf->identity->elts;
        count = conf->identity->nelts;
    }
    for (i = 0; i < count; i++) {
        X509 *cert = NULL;
        source_result res;

        switch (sources[i].type) {
        case GT_IDENTITY_SSL:
            res = from_ssl(r, conf, req, &cert, &why);
            break;
        case GT_IDENTITY_MDM_SIGNATURE:
            res = from_mdm_signature(r, conf, body, body_len, req, &cert, &why);
            break;
        default:
            res = from_header(r, sources[i].header, req, &cert, &why);
            break;
        }
        if (res == SOURCE_ABSENT)
            continue;
        if (res == SOURCE_FOUND) {
            int expired = X509_cmp_current_time(X509_get0_notAfter(cert)) < 0;
            int early = X509_cmp_current_time(X509_get0_notBefore(cert)) > 0;
            X509_free(cert);
            if (expired || early) {
                why = expired ? "the identity certificate has expired"
                              : "the identity certificate is not valid yet";
            }
            else {
                req->identity_source = source_name(sources[i].type);
                req->identity_sha256 = gt_sha256_hex(r->pool, req->identity_der,
                                                     req->identity_der_len);
                if (req->identity_sha256)
                    return OK;
                why = "hashing the identity certificate failed";
            }
        }
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                      "GetToken refused (401): identity source %s: %s",
                      source_name(sources[i].type), why);
        return HTTP_UNAUTHORIZED;
    }
    ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                  "GetToken refused (401): no device identity presented (%s)",
                  why);
    return HTTP_UNAUTHORIZED;
}
