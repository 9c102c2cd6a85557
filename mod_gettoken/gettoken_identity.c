/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
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

typedef enum {
    SOURCE_FOUND,      /* certificate in *der */
    SOURCE_ABSENT,     /* this source has nothing: try the next */
    SOURCE_REFUSED     /* this source presented something invalid: 401 */
} source_result;

/* What a source needs to look: the request, its body, the source's
 * argument. */
typedef struct {
    request_rec *r;
    const gettoken_server_conf *conf;
    const char *body;
    apr_size_t body_len;
    const char *arg;
} source_input;

/* One source of GetTokenIdentity: its kind and argument. */
typedef struct {
    const struct gettoken_identity_kind *kind;
    const char *arg;            /* the source's argument (a header name) */
} gettoken_identity_source;

/* The identity part of a vhost's configuration. */
struct gettoken_identity_conf {
    apr_array_header_t *sources;          /* gettoken_identity_source */
    apr_array_header_t *trusted_proxies;  /* apr_ipsubnet_t *, or NULL */
};

/* One kind of identity source (one word of GetTokenIdentity). */
struct gettoken_identity_kind {
    const char *name;
    const char *arg_hint;       /* NULL: takes no argument */
    int (*arg_ok)(const char *arg);     /* NULL: any argument */
    const char *arg_is;         /* what arg_ok wants, for the log */
    /* Start-up: NULL, or why the vhost cannot use this source. */
    const char *(*check)(apr_pool_t *p, const gettoken_server_conf *conf,
                         const char *arg);
    source_result (*find)(const source_input *in, gettoken_request *req,
                          const char **why);
};

static source_result from_ssl(const source_input *in, gettoken_request *req,
                              const char **why)
{
    request_rec *r = in->r;
    const gettoken_server_conf *conf = in->conf;
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
    if (!conf->binding->sql) {
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
static source_result from_mdm_signature(const source_input *in,
                                        gettoken_request *req,
                                        const char **why)
{
    request_rec *r = in->r;
    const char *value = header_value(r, "Mdm-Signature");
    X509 *cert;

    if (!value) {
        *why = "no Mdm-Signature header";
        return SOURCE_ABSENT;
    }
    if (!in->conf->binding->sql) {
        /* a self-signed certificate would do: only the binding counts */
        *why = "GetTokenEnrollmentSQL is none, so a signer certificate "
               "proves nothing";
        return SOURCE_REFUSED;
    }
    cert = gt_mdm_signature_verify(r->pool, value, in->body, in->body_len,
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
    gettoken_identity_conf *conf =
        gettoken_server_config(cmd->server)->identity;
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
    if (!conf->identity->trusted_proxies)
        return 0;
    for (i = 0; i < conf->identity->trusted_proxies->nelts; i++)
        if (apr_ipsubnet_test(APR_ARRAY_IDX(conf->identity->trusted_proxies, i,
                                            apr_ipsubnet_t *), sa))
            return 1;
    return 0;
}

/* A header set by a trusted TLS-terminating proxy (RFC 9440 Client-Cert,
 * nginx's $ssl_client_escaped_cert, HAProxy). */
static source_result from_header(const source_input *in,
                                 gettoken_request *req, const char **why)
{
    request_rec *r = in->r;
    const gettoken_server_conf *conf = in->conf;
    const char *header = in->arg;
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
    if (!conf->binding->sql) {
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
    return src->arg ? apr_pstrcat(p, src->kind->name, " ", src->arg, NULL)
                    : src->kind->name;
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

/* Anyone can make a certificate and sign with it: without the binding
 * only a chain mod_ssl verified means anything. */
static const char *check_bound(apr_pool_t *p, const gettoken_server_conf *conf,
                               const char *arg)
{
    (void)p;
    (void)arg;
    if (conf->in_use && !conf->binding->sql)
        return "needs the enrollment binding, but GetTokenEnrollmentSQL is none";
    return NULL;
}

static const char *check_header(apr_pool_t *p, const gettoken_server_conf *conf,
                                const char *arg)
{
    const char *why = check_bound(p, conf, arg);

    if (why)
        return why;
    if (conf->in_use && !conf->identity->trusted_proxies)
        return "needs GetTokenTrustedProxy (the addresses of the "
               "TLS-terminating proxies that set the header)";
    return NULL;
}

/* The sources GetTokenIdentity knows: a new one is a row and a function. */
static const struct gettoken_identity_kind identity_kinds[] = {
    { "ssl", NULL, NULL, NULL, NULL, from_ssl },
    { "mdm-signature", NULL, NULL, NULL, check_bound, from_mdm_signature },
    { "header", "the header's name, e.g. header Client-Cert", is_header_name,
      "a header name", check_header, from_header },
};
#define IDENTITY_KINDS (sizeof(identity_kinds) / sizeof(identity_kinds[0]))
#define IDENTITY_WORDS "ssl, mdm-signature, header NAME"

static const struct gettoken_identity_kind *kind_named(const char *name)
{
    apr_size_t i;

    for (i = 0; i < IDENTITY_KINDS; i++)
        if (!strcasecmp(name, identity_kinds[i].name))
            return &identity_kinds[i];
    return NULL;
}

gettoken_identity_conf *gettoken_identity_create(apr_pool_t *p)
{
    return apr_pcalloc(p, sizeof(gettoken_identity_conf));
}

gettoken_identity_conf *gettoken_identity_merge(
    apr_pool_t *p, const gettoken_identity_conf *base,
    const gettoken_identity_conf *add)
{
    gettoken_identity_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->sources = add->sources ? add->sources : base->sources;
    conf->trusted_proxies = add->trusted_proxies ? add->trusted_proxies
                                                 : base->trusted_proxies;
    return conf;
}

const char *gettoken_set_identity(cmd_parms *cmd, void *dirv, int argc,
                                  char *const argv[])
{
    gettoken_identity_conf *conf =
        gettoken_server_config(cmd->server)->identity;
    int i;

    (void)dirv;
    if (argc == 0)
        return "GetTokenIdentity needs one or more of: " IDENTITY_WORDS;
    conf->sources = apr_array_make(cmd->pool, argc,
                                   sizeof(gettoken_identity_source));
    for (i = 0; i < argc; i++) {
        gettoken_identity_source *src = apr_array_push(conf->sources);

        src->kind = kind_named(argv[i]);
        src->arg = NULL;
        if (!src->kind)
            return apr_psprintf(cmd->pool, "GetTokenIdentity: unknown source "
                                "'%s' (" IDENTITY_WORDS ")", argv[i]);
        if (!src->kind->arg_hint)
            continue;
        if (i + 1 >= argc)
            return apr_psprintf(cmd->pool, "GetTokenIdentity: '%s' needs %s",
                                src->kind->name, src->kind->arg_hint);
        src->arg = argv[++i];
    }
    return NULL;
}

int gettoken_identity_startup(const gettoken_startup *st, server_rec *s,
                              gettoken_server_conf *conf)
{
    const gettoken_identity_source *src;
    apr_pool_t *p = st->pconf;
    int i;

    if (!conf->identity->sources)
        return OK;
    src = (const gettoken_identity_source *)conf->identity->sources->elts;
    for (i = 0; i < conf->identity->sources->nelts; i++) {
        const struct gettoken_identity_kind *kind = src[i].kind;
        const char *why;

        if (kind->arg_ok && !kind->arg_ok(src[i].arg)) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(01201)
                         "GetTokenIdentity %s '%s' in %s: not %s", kind->name,
                         src[i].arg, gettoken_vhost_name(s, p), kind->arg_is);
            return !OK;
        }
        why = src[i].kind->check ? src[i].kind->check(p, conf, src[i].arg)
                                 : NULL;
        if (why) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(01202)
                         "GetTokenIdentity %s in %s %s",
                         source_name(p, &src[i]), gettoken_vhost_name(s, p),
                         why);
            return !OK;
        }
    }
    return OK;
}

/* The one source of a vhost without GetTokenIdentity. */
static const gettoken_identity_source default_source = { &identity_kinds[0],
                                                         NULL };

int gettoken_identity_uses_ssl(const gettoken_server_conf *conf)
{
    int i;

    if (!conf->identity->sources)
        return 1;
    for (i = 0; i < conf->identity->sources->nelts; i++)
        if (APR_ARRAY_IDX(conf->identity->sources, i,
                          gettoken_identity_source).kind == default_source.kind)
            return 1;
    return 0;
}

int gettoken_identity_find(request_rec *r, const gettoken_server_conf *conf,
                           const char *body, apr_size_t body_len,
                           gettoken_request *req)
{
    const gettoken_identity_source *sources = &default_source;
    int count = 1, i;
    const char *why = "no identity source is configured";
    source_input in;

    if (conf->identity->sources) {
        sources = (const gettoken_identity_source *)
                  conf->identity->sources->elts;
        count = conf->identity->sources->nelts;
    }
    in.r = r;
    in.conf = conf;
    in.body = body;
    in.body_len = body_len;
    for (i = 0; i < count; i++) {
        source_result res;

        in.arg = sources[i].arg;
        res = sources[i].kind->find(&in, req, &why);
        if (res == SOURCE_ABSENT)
            continue;
        if (res == SOURCE_FOUND && accept_der(r, req, &why) == 0) {
            req->identity_source = source_name(r->pool, &sources[i]);
            return OK;
        }
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_UNAUTHORIZED,
                               GTLOGNO(01203), "identity source %s: %s",
                               source_name(r->pool, &sources[i]), why);
    }
    return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_UNAUTHORIZED,
                           GTLOGNO(01204), "no device identity presented (%s)",
                           why);
}
