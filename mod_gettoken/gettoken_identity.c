/*
 * gettoken_identity.c - where the device identity certificate comes from
 * (GetTokenIdentity): mod_ssl's client certificate, the Mdm-Signature
 * header, or a header set by a TLS-terminating proxy.  Sources are tried
 * in the configured order: one that has nothing (no client certificate,
 * no such header) passes to the next; the first that presents something
 * decides -- a certificate, or a 401 when what it presents is invalid.
 *
 * "header NAME" believes whoever sets that header.  Use it only behind a
 * trusted TLS-terminating proxy that verifies the client certificate,
 * sets NAME itself and strips NAME from what clients send, e.g.
 *   nginx:   proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
 *            (replaces what the client sent; not sent when empty)
 *   HAProxy: http-request del-header Client-Cert
 *            http-request set-header Client-Cert :%[ssl_c_der,base64]:
 *                if { ssl_c_used }
 * and let only the proxy reach httpd (Require ip / a private listener).
 * The header is believed only from the TCP peers GetTokenTrustedProxy
 * lists: the socket's own peer address, which mod_remoteip (even with the
 * PROXY protocol) never rewrites; from anyone else it is ignored.
 * mdm-signature and header need the enrollment binding
 * (GetTokenEnrollmentSQL): a certificate anyone can make proves nothing
 * until the database says it belongs to the enrollment.
 */
#include "gettoken_private.h"

#include "apr_lib.h"
#include "apr_network_io.h"
#include "apr_strings.h"
#include "http_core.h"
#include "http_ssl.h"

#include <openssl/x509.h>

#include "core/gt_cert.h"
#include "core/gt_identity.h"
#include "core/gt_keys.h"

APLOG_USE_MODULE(gettoken);

typedef enum {
    SOURCE_FOUND,      /* certificate in *der */
    SOURCE_ABSENT,     /* this source has nothing: try the next */
    SOURCE_REFUSED     /* this source presented something invalid: 401 */
} source_result;

static source_result from_ssl(request_rec *r, const gettoken_server_conf *conf,
                              gettoken_request *req, const char **why)
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
    if (gt_pem_cert_to_der(r->pool, pem, &req->identity_der,
                           &req->identity_der_len) != 0) {
        *why = "the TLS client certificate could not be decoded";
        return SOURCE_REFUSED;
    }
    return SOURCE_FOUND;
}

/* A header's value, or NULL when it is absent or blank. */
static const char *header_value(request_rec *r, const char *name)
{
    const char *v = apr_table_get(r->headers_in, name);

    if (!v)
        return NULL;
    while (*v == ' ' || *v == '\t')
        v++;
    return *v ? v : NULL;
}

/* Mdm-Signature: a CMS detached signature of the exact body bytes. */
static source_result from_mdm_signature(request_rec *r,
                                        const gettoken_server_conf *conf,
                                        const char *body, apr_size_t body_len,
                                        gettoken_request *req,
                                        const char **why)
{
    const char *value = header_value(r, "Mdm-Signature");
    X509 *cert;

    if (!value) {
        *why = "no Mdm-Signature header";
        return SOURCE_ABSENT;
    }
    if (!conf->enrollment_sql) {
        /* a self-signed certificate would do: only the binding counts */
        *why = "GetTokenEnrollmentSQL is none, so a signer certificate "
               "proves nothing";
        return SOURCE_REFUSED;
    }
    cert = gt_mdm_signature_verify(r->pool, value, body, body_len,
                                   &req->identity_der, &req->identity_der_len,
                                   why);
    if (!cert)
        return SOURCE_REFUSED;
    X509_free(cert);    /* what is needed is read from the DER */
    return SOURCE_FOUND;
}

const char *gettoken_add_trusted_proxy(cmd_parms *cmd, void *dirv,
                                       const char *arg)
{
    gettoken_server_conf *conf = gettoken_server_config(cmd->server);
    char *addr = apr_pstrdup(cmd->pool, arg);
    char *bits = strchr(addr, '/');
    apr_ipsubnet_t *net = NULL;
    apr_status_t rv;

    (void)dirv;
    if (bits)
        *bits++ = '\0';
    rv = apr_ipsubnet_create(&net, addr, bits, cmd->pool);
    if (rv != APR_SUCCESS)
        return apr_psprintf(cmd->pool, "GetTokenTrustedProxy: '%s' is not an "
                            "IP address or network (addr[/bits])", arg);
    if (!conf->trusted_proxies)
        conf->trusted_proxies = apr_array_make(cmd->pool, 2,
                                               sizeof(apr_ipsubnet_t *));
    APR_ARRAY_PUSH(conf->trusted_proxies, apr_ipsubnet_t *) = net;
    return NULL;
}

/* The TCP peer of the connection, as the socket has it: c->client_addr
 * and c->client_ip may have been rewritten (mod_remoteip's PROXY protocol
 * support does), the socket's remote address cannot be.  NULL: unknown. */
static apr_sockaddr_t *socket_peer(conn_rec *c)
{
    apr_socket_t *sock = ap_get_conn_socket(c);
    apr_sockaddr_t *sa = NULL;

    if (!sock || apr_socket_addr_get(&sa, APR_REMOTE, sock) != APR_SUCCESS)
        return NULL;
    return sa;
}

/* Is the TCP peer one of GetTokenTrustedProxy?  *peer: its address, for
 * the log. */
static int peer_is_trusted(request_rec *r, const gettoken_server_conf *conf,
                           const char **peer)
{
    apr_sockaddr_t *sa = socket_peer(r->connection);
    char *ip = NULL;
    int i;

    *peer = "unknown";
    if (!sa)
        return 0;
    if (apr_sockaddr_ip_get(&ip, sa) == APR_SUCCESS && ip)
        *peer = ip;
    if (!conf->trusted_proxies)
        return 0;
    for (i = 0; i < conf->trusted_proxies->nelts; i++)
        if (apr_ipsubnet_test(APR_ARRAY_IDX(conf->trusted_proxies, i,
                                            apr_ipsubnet_t *), sa))
            return 1;
    return 0;
}

/* A header set by a trusted TLS-terminating proxy (RFC 9440 Client-Cert,
 * nginx's $ssl_client_escaped_cert, HAProxy). */
static source_result from_header(request_rec *r,
                                 const gettoken_server_conf *conf,
                                 const char *header, gettoken_request *req,
                                 const char **why)
{
    const char *value = header_value(r, header);
    const char *peer;
    X509 *cert;

    if (!value) {
        *why = apr_psprintf(r->pool, "no %s header", header);
        return SOURCE_ABSENT;
    }
    if (!peer_is_trusted(r, conf, &peer)) {
        /* anyone may send the header; only the proxy's counts */
        *why = apr_psprintf(r->pool, "the %s header was ignored: the peer %s "
                            "is not a GetTokenTrustedProxy", header, peer);
        return SOURCE_ABSENT;
    }
    if (!conf->enrollment_sql) {
        *why = "GetTokenEnrollmentSQL is none, so a forwarded certificate "
               "proves nothing";
        return SOURCE_REFUSED;
    }
    cert = gt_proxy_cert_parse(r->pool, value, &req->identity_der,
                               &req->identity_der_len, why);
    if (!cert) {
        *why = apr_psprintf(r->pool, "%s: %s", header, *why);
        return SOURCE_REFUSED;
    }
    X509_free(cert);    /* what is needed is read from the DER */
    return SOURCE_FOUND;
}

/* The certificate a source found (req->identity_der): in its validity
 * period and hashed for the binding; 0, or -1 with *why. */
static int accept_der(request_rec *r, gettoken_request *req, const char **why)
{
    apr_int64_t not_before, not_after, now = apr_time_sec(r->request_time);

    if (gt_cert_validity(req->identity_der, req->identity_der_len,
                         &not_before, &not_after) != 0) {
        *why = "the identity certificate could not be decoded";
        return -1;
    }
    if (now > not_after) {
        *why = "the identity certificate has expired";
        return -1;
    }
    if (now < not_before) {
        *why = "the identity certificate is not valid yet";
        return -1;
    }
    req->identity_sha256 = gt_sha256_hex(r->pool, req->identity_der,
                                         req->identity_der_len);
    if (!req->identity_sha256) {
        *why = "hashing the identity certificate failed";
        return -1;
    }
    return 0;
}

static const char *source_name(apr_pool_t *p,
                               const gettoken_identity_source *src)
{
    switch (src->type) {
    case GT_IDENTITY_SSL:           return "ssl";
    case GT_IDENTITY_MDM_SIGNATURE: return "mdm-signature";
    case GT_IDENTITY_HEADER:        return apr_pstrcat(p, "header ",
                                                       src->header, NULL);
    }
    return "?";
}

/* RFC 9110 token characters: what a header name may be made of. */
static int is_header_name(const char *s)
{
    if (!*s)
        return 0;
    for (; *s; s++)
        if (!apr_isalnum(*s) && !strchr("!#$%&'*+-.^_`|~", *s))
            return 0;
    return 1;
}

int gettoken_identity_check_config(server_rec *s,
                                   const gettoken_server_conf *conf,
                                   apr_pool_t *p)
{
    const gettoken_identity_source *src;
    int i;

    if (!conf->identity)
        return OK;
    src = (const gettoken_identity_source *)conf->identity->elts;
    for (i = 0; i < conf->identity->nelts; i++) {
        if (src[i].type == GT_IDENTITY_HEADER && !is_header_name(src[i].header)) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                         "GetTokenIdentity header '%s' in %s: not a header "
                         "name", src[i].header, gettoken_vhost_name(s, p));
            return !OK;
        }
        if (src[i].type != GT_IDENTITY_SSL && conf->in_use
            && !conf->enrollment_sql) {
            /* anyone can make a certificate and sign with it: without the
             * binding only a chain mod_ssl verified means anything */
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                         "GetTokenIdentity %s in %s needs the enrollment "
                         "binding, but GetTokenEnrollmentSQL is none",
                         source_name(p, &src[i]), gettoken_vhost_name(s, p));
            return !OK;
        }
        if (src[i].type == GT_IDENTITY_HEADER && conf->in_use
            && !conf->trusted_proxies) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                         "GetTokenIdentity %s in %s needs GetTokenTrustedProxy "
                         "(the addresses of the TLS-terminating proxies that "
                         "set the header)", source_name(p, &src[i]),
                         gettoken_vhost_name(s, p));
            return !OK;
        }
    }
    return OK;
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
        source_result res;

        switch (sources[i].type) {
        case GT_IDENTITY_SSL:
            res = from_ssl(r, conf, req, &why);
            break;
        case GT_IDENTITY_MDM_SIGNATURE:
            res = from_mdm_signature(r, conf, body, body_len, req, &why);
            break;
        default:
            res = from_header(r, conf, sources[i].header, req, &why);
            break;
        }
        if (res == SOURCE_ABSENT)
            continue;
        if (res == SOURCE_FOUND && accept_der(r, req, &why) == 0) {
            req->identity_source = source_name(r->pool, &sources[i]);
            return OK;
        }
        gettoken_log_refusal(r, HTTP_UNAUTHORIZED, "identity source %s: %s",
                             source_name(r->pool, &sources[i]), why);
        return HTTP_UNAUTHORIZED;
    }
    gettoken_log_refusal(r, HTTP_UNAUTHORIZED,
                         "no device identity presented (%s)", why);
    return HTTP_UNAUTHORIZED;
}
