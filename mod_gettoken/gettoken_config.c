/*
 * gettoken_config.c - directives, configuration merging, and the start-up
 * checks that turn every misconfiguration into a refusal to start.
 */
#include "gettoken_private.h"

#include "apr_strings.h"
#include "http_core.h"

#include "core/gt_keys.h"
#include "core/gt_pairing.h"
#include "jose/gt_jose.h"

APLOG_USE_MODULE(gettoken);

void *gettoken_create_server_conf(apr_pool_t *p, server_rec *s)
{
    gettoken_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->server = s;
    conf->enrollment_sql = GT_DEFAULT_ENROLLMENT_SQL;
    conf->pairing_lifetime = GT_DEFAULT_PAIRING_LIFETIME;
    conf->max_body = GT_DEFAULT_MAX_BODY;
    conf->pairing_trust_files = apr_array_make(p, 2,
                                               sizeof(gettoken_trust_file));
    conf->organizations = apr_array_make(p, 2, sizeof(gettoken_organization));

    conf->watch_enrollment = gettoken_watch_enrollment_create(p);
    return conf;
}

#define MERGE_PTR(field) conf->field = add->field ? add->field : base->field

void *gettoken_merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    gettoken_server_conf *base = basev, *add = addv;
    gettoken_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->server = add->server;
    MERGE_PTR(server_uuid);
    MERGE_PTR(signing.where);
    MERGE_PTR(signing_cert);
    MERGE_PTR(identity);
    MERGE_PTR(trusted_proxies);
    MERGE_PTR(pairing.where);
    MERGE_PTR(audit_sql);
    conf->enrollment_sql = add->enrollment_sql_set ? add->enrollment_sql
                                                   : base->enrollment_sql;
    conf->enrollment_sql_set = add->enrollment_sql_set || base->enrollment_sql_set;
    conf->pairing_trust_files = add->pairing_trust_files->nelts
                                ? add->pairing_trust_files
                                : base->pairing_trust_files;
    conf->pairing_lifetime = add->pairing_lifetime_set ? add->pairing_lifetime
                                                       : base->pairing_lifetime;
    conf->pairing_lifetime_set = add->pairing_lifetime_set
                                 || base->pairing_lifetime_set;
    conf->max_body = add->max_body_set ? add->max_body : base->max_body;
    conf->max_body_set = add->max_body_set || base->max_body_set;
    conf->in_use = add->in_use || base->in_use;
    /* a vhost's organisations replace the main server's, never add to them */
    conf->organizations = add->organizations->nelts ? add->organizations
                                                    : base->organizations;
    MERGE_PTR(organization_sql);

    conf->watch_enrollment = gettoken_watch_enrollment_merge(
        p, base->watch_enrollment, add->watch_enrollment);
    return conf;
}

void *gettoken_create_dir_conf(apr_pool_t *p, char *dir)
{
    gettoken_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));

    (void)dir;
    conf->enabled = -1;
    conf->watch_enrollment = -1;
    return conf;
}

void *gettoken_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    gettoken_dir_conf *base = basev, *add = addv;
    gettoken_dir_conf *conf = apr_pcalloc(p, sizeof(*conf));
    conf->enabled = add->enabled != -1 ? add->enabled : base->enabled;
    conf->services = add->services ? add->services : base->services;

    conf->watch_enrollment = add->watch_enrollment != -1 ? add->watch_enrollment
                                                         : base->watch_enrollment;
    return conf;
}

/* ---- directive handlers ---------------------------------------------- */

static gettoken_server_conf *cmd_conf(cmd_parms *cmd)
{
    return gettoken_server_config(cmd->server);
}

static const char *set_enabled(cmd_parms *cmd, void *dirv, int on)
{
    gettoken_dir_conf *dir = dirv;
    dir->enabled = on;
    if (on)
        cmd_conf(cmd)->in_use = 1;
    return NULL;
}

static const char *set_server_uuid(cmd_parms *cmd, void *dirv, const char *arg)
{
    (void)dirv;
    if (!gt_is_uuid(arg))
        return apr_psprintf(cmd->pool, "GetTokenServerUUID: '%s' is not a UUID "
                            "(the server_uuid of AccountDetail, "
                            "8-4-4-4-12 hex digits)", arg);
    cmd_conf(cmd)->server_uuid = arg;
    return NULL;
}

static const char *key_location(cmd_parms *cmd, const char *arg)
{
    return gt_key_is_pkcs11_uri(arg) ? arg : ap_server_root_relative(cmd->pool, arg);
}

static const char *set_signing_key(cmd_parms *cmd, void *dirv, const char *arg)
{
    (void)dirv;
    cmd_conf(cmd)->signing.where = key_location(cmd, arg);
    return NULL;
}

static const char *set_signing_cert(cmd_parms *cmd, void *dirv, const char *arg)
{
    (void)dirv;
    cmd_conf(cmd)->signing_cert = ap_server_root_relative(cmd->pool, arg);
    return NULL;
}

static const char *set_identity(cmd_parms *cmd, void *dirv, int argc,
                                char *const argv[])
{
    gettoken_server_conf *conf = cmd_conf(cmd);
    int i;

    (void)dirv;

    if (argc == 0)
        return "GetTokenIdentity needs one or more of: ssl, mdm-signature, "
               "header NAME";
    conf->identity = apr_array_make(cmd->pool, argc, sizeof(gettoken_identity_source));
    for (i = 0; i < argc; i++) {
        gettoken_identity_source *src = apr_array_push(conf->identity);
        src->header = NULL;
        if (!strcasecmp(argv[i], "ssl"))
            src->type = GT_IDENTITY_SSL;
        else if (!strcasecmp(argv[i], "mdm-signature"))
            src->type = GT_IDENTITY_MDM_SIGNATURE;
        else if (!strcasecmp(argv[i], "header")) {
            if (i + 1 >= argc)
                return "GetTokenIdentity: 'header' needs the header's name, "
                       "e.g. header Client-Cert";
            src->type = GT_IDENTITY_HEADER;
            src->header = argv[++i];
        }
        else
            return apr_psprintf(cmd->pool, "GetTokenIdentity: unknown source "
                                "'%s' (ssl, mdm-signature, header NAME)", argv[i]);
    }
    return NULL;
}

static const char *set_enrollment_sql(cmd_parms *cmd, void *dirv, const char *arg)
{
    gettoken_server_conf *conf = cmd_conf(cmd);

    (void)dirv;
    conf->enrollment_sql = strcasecmp(arg, "none") ? arg : NULL;
    conf->enrollment_sql_set = 1;
    return NULL;
}

static const char *set_pairing_key(cmd_parms *cmd, void *dirv, const char *arg)
{
    (void)dirv;
    cmd_conf(cmd)->pairing.where = key_location(cmd, arg);
    return NULL;
}

static const char *add_pairing_trust(cmd_parms *cmd, void *dirv,
                                     const char *issuer, const char *file)
{
    gettoken_trust_file *t;

    (void)dirv;
    /* the one-argument form trusted a key for every issuer */
    if (!file || !gt_is_uuid(issuer))
        return apr_psprintf(cmd->pool, "GetTokenWatchPairingTrust takes "
                            "<issuer-uuid> <file>: the server UUID of the "
                            "phone organisation, then the certificates or "
                            "public keys that sign its pairing tokens "
                            "('%s' is not a UUID)", issuer);
    t = apr_array_push(cmd_conf(cmd)->pairing_trust_files);
    t->issuer = issuer;
    t->file = ap_server_root_relative(cmd->pool, file);
    return NULL;
}

static const char *parse_positive(cmd_parms *cmd, const char *arg,
                                  apr_int64_t max, apr_int64_t *out)
{
    char *end = NULL;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);

    if (!end || *end || end == arg || v <= 0 || v > max)
        return apr_psprintf(cmd->pool, "%s: '%s' is not a whole number "
                            "from 1 to %" APR_INT64_T_FMT,
                            cmd->cmd->name, arg, max);
    *out = v;
    return NULL;
}

static const char *set_pairing_lifetime(cmd_parms *cmd, void *dirv, const char *arg)
{
    gettoken_server_conf *conf = cmd_conf(cmd);
    const char *err = parse_positive(cmd, arg, GT_PAIRING_MAX_LIFETIME,
                                     &conf->pairing_lifetime);

    (void)dirv;
    conf->pairing_lifetime_set = 1;
    return err;
}

static const char *set_max_body(cmd_parms *cmd, void *dirv, const char *arg)
{
    gettoken_server_conf *conf = cmd_conf(cmd);
    apr_int64_t v = 0;
    /* libplist takes 32-bit lengths; a check-in is a few kilobytes */
    const char *err = parse_positive(cmd, arg, 16 * 1024 * 1024, &v);

    (void)dirv;
    conf->max_body = (apr_size_t)v;
    conf->max_body_set = 1;
    return err;
}

const command_rec gettoken_directives[] = {
    /* ACCESS_CONF only: never .htaccess, which is read per request, after
     * the start-up checks that load keys and prepare statements */
    AP_INIT_FLAG("GetToken", set_enabled, NULL, ACCESS_CONF,
                 "On to answer GetToken check-in messages here; every other "
                 "message passes through (default Off)"),
    AP_INIT_TAKE1("GetTokenServerUUID", set_server_uuid, NULL, RSRC_CONF,
                  "server_uuid from AccountDetail: the iss of com.apple.maid tokens"),
    AP_INIT_TAKE1("GetTokenSigningKey", set_signing_key, NULL, RSRC_CONF,
                  "private key (file or pkcs11: URI) signing com.apple.maid tokens"),
    AP_INIT_TAKE1("GetTokenSigningCertificate", set_signing_cert, NULL, RSRC_CONF,
                  "certificate registered with Apple Business/School Manager; "
                  "must match GetTokenSigningKey"),
    AP_INIT_TAKE_ARGV("GetTokenIdentity", set_identity, NULL, RSRC_CONF,
                      "device identity sources, tried in order: ssl, "
                      "mdm-signature, header NAME (default ssl)"),
    AP_INIT_ITERATE("GetTokenTrustedProxy", gettoken_add_trusted_proxy, NULL,
                    RSRC_CONF, "addresses or networks (addr[/bits]) of the "
                    "TLS-terminating proxies whose header identity is believed"),
    AP_INIT_TAKE1("GetTokenEnrollmentSQL", set_enrollment_sql, NULL, RSRC_CONF,
                  "SQL binding (enrollment id, certificate sha256) to an "
                  "enrollment, or none"),
    AP_INIT_TAKE1("GetTokenWatchPairingKey", set_pairing_key, NULL, RSRC_CONF,
                  "private key (file or pkcs11: URI) signing "
                  GETTOKEN_SERVICE_WATCH_PAIRING " tokens (default: the signing key)"),
    AP_INIT_TAKE12("GetTokenWatchPairingTrust", add_pairing_trust, NULL,
                   RSRC_CONF, "issuer UUID and the file of certificates or "
                   "public keys that sign its pairing tokens (repeatable)"),
    AP_INIT_TAKE1("GetTokenWatchPairingLifetime", set_pairing_lifetime, NULL,
                  RSRC_CONF, "seconds a pairing token is valid (default 300)"),
    AP_INIT_TAKE1("GetTokenMaxBodySize", set_max_body, NULL, RSRC_CONF,
                  "bytes read to look for a GetToken (default 65536)"),
    AP_INIT_TAKE_ARGV("GetTokenOrganization", gettoken_cmd_organization, NULL,
                      RSRC_CONF, "<name> <server-uuid> <key> [<certificate>]: "
                      "one more ABM/ASM organisation of this vhost"),
    AP_INIT_TAKE1("GetTokenOrganizationSQL", gettoken_cmd_organization_sql,
                  NULL, RSRC_CONF, "SQL naming the organisation of an "
                  "enrollment id (first column of the first row)"),
    AP_INIT_TAKE_ARGV("GetTokenServices", gettoken_cmd_services, NULL,
                      ACCESS_CONF, "TokenServiceTypes answered here; other "
                      "GetTokens pass through (default: every type)"),
    AP_INIT_TAKE1("GetTokenAuditSQL", gettoken_set_audit_sql, NULL, RSRC_CONF,
                  "SQL run after every answered GetToken (enrollment id, "
                  "organisation, service type, jti, status, identity sha256)"),

    /* the watch enrollment gate (gettoken_watch_enrollment.c) */
    AP_INIT_FLAG("GetTokenWatchEnrollment", gettoken_set_watch_enrollment, NULL,
                 ACCESS_CONF, "On at the watch enrollment profile URL: a watch "
                 "must bring a valid pairing token (default Off)"),
    AP_INIT_TAKE1("GetTokenWatchEnrollmentCA", gettoken_set_watch_enrollment_ca,
                  NULL, RSRC_CONF, "CA certificate(s) the signer of a signed "
                  "MachineInfo must chain to"),
    AP_INIT_TAKE1("GetTokenWatchSecurityTokenLifetime",
                  gettoken_set_watch_security_token_lifetime, NULL, RSRC_CONF,
                  "seconds a security token handed to a watch stays usable "
                  "(default 600)"),
    { NULL }
};

/* ---- start-up -------------------------------------------------------- */

const char *gettoken_vhost_name(server_rec *s, apr_pool_t *p)
{
    /* a vhost's port is in its address unless ServerName gives one */
    unsigned port = s->port ? s->port : s->addrs ? s->addrs->host_port : 0;

    return apr_psprintf(p, "%s:%u (%s:%u)",
                        s->server_hostname ? s->server_hostname : "*",
                        port, s->defn_name ? s->defn_name : "?",
                        s->defn_line_number);
}

/* Loads one key (once per distinct location: vhosts that inherit a key
 * share the EVP_PKEY). */
int gettoken_key_load(apr_pool_t *pconf, server_rec *s, apr_hash_t *loaded,
                      const char *directive, gettoken_key *k)
{
    const char *why = NULL;
    gettoken_key *seen = apr_hash_get(loaded, k->where, APR_HASH_KEY_STRING);

    if (seen) {
        *k = *seen;
        return OK;
    }
    k->key = gt_private_key_load(pconf, k->where, &why);
    if (k->key)
        k->signer = gt_jws_signer_create(pconf, k->key, &why);
    if (!k->key || !k->signer) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                     "%s %s in %s: %s", directive,
                     gt_key_location_for_log(pconf, k->where),
                     gettoken_vhost_name(s, pconf), why);
        return !OK;
    }
    apr_hash_set(loaded, k->where, APR_HASH_KEY_STRING,
                 apr_pmemdup(pconf, k, sizeof(*k)));
    return OK;
}

int gettoken_certificate_check(apr_pool_t *pconf, server_rec *s,
                               const char *directive, const char *cert_path,
                               EVP_PKEY *key)
{
    const char *why = NULL;
    X509 *cert = gt_certificate_load(pconf, cert_path, &why);

    if (cert && gt_certificate_matches_key(cert, key))
        return OK;
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                 "%s %s in %s: %s", directive, cert_path,
                 gettoken_vhost_name(s, pconf),
                 cert ? "the certificate does not match its key" : why);
    return !OK;
}

/* GetTokenWatchPairingTrust: each issuer's keys, from its file(s). */
static int load_pairing_trust(apr_pool_t *pconf, server_rec *s,
                              gettoken_server_conf *conf)
{
    const char *why = NULL;
    int i;

    conf->pairing_trust = apr_array_make(pconf, 2, sizeof(gt_pairing_trust));
    for (i = 0; i < conf->pairing_trust_files->nelts; i++) {
        const gettoken_trust_file *f = &APR_ARRAY_IDX(conf->pairing_trust_files,
                                                      i, gettoken_trust_file);
        apr_array_header_t *keys = (apr_array_header_t *)
            gt_pairing_trusted_keys(conf->pairing_trust, f->issuer);

        if (!keys) {
            gt_pairing_trust *t = apr_array_push(conf->pairing_trust);
            t->issuer = f->issuer;
            t->keys = keys = apr_array_make(pconf, 2, sizeof(EVP_PKEY *));
        }
        if (gt_public_keys_load(pconf, f->file, keys, &why) < 0) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                         "GetTokenWatchPairingTrust %s %s in %s: %s",
                         f->issuer, f->file, gettoken_vhost_name(s, pconf), why);
            return !OK;
        }
    }
    return OK;
}

static int finish_vhost(apr_pool_t *pconf, server_rec *s,
                        gettoken_server_conf *conf, apr_hash_t *loaded)
{
    /* with organisations, the default one is optional (checked there) */
    if (conf->in_use && !conf->organizations->nelts && !conf->signing.where) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                     "GetToken On in %s needs GetTokenSigningKey",
                     gettoken_vhost_name(s, pconf));
        return !OK;
    }
    if (conf->in_use && !conf->organizations->nelts && !conf->server_uuid) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GT_LOG_PREFIX
                     "GetToken On in %s needs GetTokenServerUUID (the "
                     "server_uuid of AccountDetail)", gettoken_vhost_name(s, pconf));
        return !OK;
    }
    if (conf->signing.where
        && gettoken_key_load(pconf, s, loaded, "GetTokenSigningKey", &conf->signing) != OK)
        return !OK;
    if (conf->signing.key && conf->signing_cert
        && gettoken_certificate_check(pconf, s, "GetTokenSigningCertificate",
                                      conf->signing_cert,
                                      conf->signing.key) != OK)
        return !OK;
    if (conf->pairing.where) {
        if (gettoken_key_load(pconf, s, loaded, "GetTokenWatchPairingKey",
                              &conf->pairing) != OK)
            return !OK;
    }
    else
        conf->pairing = conf->signing;   /* the contract's default */
    if (gettoken_organizations_prepare(pconf, s, conf, loaded) != OK)
        return !OK;

    if (conf->in_use && conf->enrollment_sql
        && gettoken_binding_prepare(s, conf, pconf) != OK)
        return !OK;
    if (conf->in_use && conf->audit_sql
        && gettoken_audit_prepare(s, conf, pconf) != OK)
        return !OK;
    if (gettoken_identity_check_config(s, conf, pconf) != OK)
        return !OK;

    if (load_pairing_trust(pconf, s, conf) != OK)
        return !OK;
    if (conf->pairing_trust->nelts
        && gettoken_watch_prepare(s, conf, pconf) != OK)
        return !OK;
    /* requests here may now use the keys and statements (the handler
     * declines on a vhost that never got this far) */
    conf->ready = conf->in_use;
    return OK;
}

int gettoken_config_finish(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    apr_hash_t *loaded = apr_hash_make(ptemp);
    server_rec *vs;

    for (vs = s; vs; vs = vs->next) {
        gettoken_server_conf *conf = gettoken_server_config(vs);
        conf->server = vs;
        if ((conf->in_use || conf->signing.where || conf->pairing.where
             || conf->pairing_trust_files->nelts
             || conf->organizations->nelts)
            && finish_vhost(pconf, vs, conf, loaded) != OK)
            return HTTP_INTERNAL_SERVER_ERROR;
        if (gettoken_watch_enrollment_finish(pconf, vs, conf) != OK)
            return HTTP_INTERNAL_SERVER_ERROR;
    }
    return OK;
}

void gettoken_config_warn(apr_pool_t *pconf, server_rec *s)
{
    server_rec *vs;

    for (vs = s; vs; vs = vs->next) {
        gettoken_server_conf *conf = gettoken_server_config(vs);
        if (conf->in_use && !conf->enrollment_sql)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, vs, GT_LOG_PREFIX
                         "GetTokenEnrollmentSQL none in %s: identities are not "
                         "bound to enrollments; only client certificates that "
                         "mod_ssl verified against SSLCACertificateFile count",
                         gettoken_vhost_name(vs, pconf));
    }
}
