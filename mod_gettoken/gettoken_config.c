/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_config.c - the module's configuration records: creating and
 * merging them (each part makes and merges its own), and the directive
 * table, made of every part's directives.  Nothing here acts on a
 * setting: the parts check and load what they were told at start-up.
 */
#include "gettoken_private.h"

void *gettoken_create_server_conf(apr_pool_t *p, server_rec *s)
{
    gettoken_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->server = s;
    conf->max_body = GT_DEFAULT_MAX_BODY;
    conf->keys = gettoken_keys_create(p);
    conf->identity = gettoken_identity_create(p);
    conf->binding = gettoken_binding_create(p);
    conf->orgs = gettoken_organizations_create(p);
    conf->pairing = gettoken_pairing_create(p);
    conf->audit = gettoken_audit_create(p);
    conf->watch_verify = gettoken_watch_verify_create(p);
    conf->watch_enrollment = gettoken_watch_enrollment_create(p);
    return conf;
}

void *gettoken_merge_server_conf(apr_pool_t *p, void *basev, void *addv)
{
    gettoken_server_conf *base = basev, *add = addv;
    gettoken_server_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->server = add->server;
    conf->in_use = add->in_use || base->in_use;
    conf->ready = 0;            /* decided at start-up, per vhost */
    GETTOKEN_MERGE_FLAGGED(conf, base, add, max_body, max_body_set);
    conf->keys = gettoken_keys_merge(p, base->keys, add->keys);
    conf->identity = gettoken_identity_merge(p, base->identity, add->identity);
    conf->binding = gettoken_binding_merge(p, base->binding, add->binding);
    conf->orgs = gettoken_organizations_merge(p, base->orgs, add->orgs);
    conf->pairing = gettoken_pairing_merge(p, base->pairing, add->pairing);
    conf->audit = gettoken_audit_merge(p, base->audit, add->audit);
    conf->watch_verify = gettoken_watch_verify_merge(p, base->watch_verify,
                                                     add->watch_verify);
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

/* Every directive, by the part that owns it (the setters are in the
 * parts). */
const command_rec gettoken_directives[] = {
    /* gettoken_handler.c: GetToken On, the body cap.  ACCESS_CONF only:
     * never .htaccess, which is read per request, after the start-up
     * checks that load keys and prepare statements */
    AP_INIT_FLAG("GetToken", gettoken_set_enabled, NULL, ACCESS_CONF,
                 "On to answer GetToken check-in messages here; every "
                 "other message passes through (default Off)"),
    AP_INIT_TAKE1("GetTokenMaxBodySize", gettoken_set_max_body, NULL,
                  RSRC_CONF, "bytes read to look for a GetToken (default "
                  "65536)"),
    /* gettoken_keys.c: the default organisation and the keys */
    AP_INIT_TAKE1("GetTokenServerUUID", gettoken_set_server_uuid, NULL,
                  RSRC_CONF, "server_uuid from AccountDetail: the iss of "
                  "com.apple.maid tokens"),
    AP_INIT_TAKE1("GetTokenSigningKey", gettoken_set_key,
                  (void *)APR_OFFSETOF(gettoken_keys_conf, signing),
                  RSRC_CONF, "private key (file, pkcs11: URI or a provider's "
                  "URI such as handle:0x81000001) signing com.apple.maid "
                  "tokens"),
    AP_INIT_TAKE1("GetTokenKeyProvider", gettoken_add_key_provider, NULL,
                  RSRC_CONF, "OpenSSL 3 provider to load for key locations "
                  "(e.g. tpm2, pkcs11); repeatable, main server only"),
    AP_INIT_TAKE1("GetTokenSigningCertificate", gettoken_set_signing_cert,
                  NULL, RSRC_CONF, "certificate registered with Apple "
                  "Business/School Manager; must match GetTokenSigningKey"),
    AP_INIT_TAKE1("GetTokenWatchPairingKey", gettoken_set_key,
                  (void *)APR_OFFSETOF(gettoken_keys_conf, pairing),
                  RSRC_CONF, "private key (file or URI) signing "
                  GETTOKEN_SERVICE_WATCH_PAIRING " tokens (default: the "
                  "signing key)"),
    /* gettoken_identity.c: where the device identity comes from */
    AP_INIT_TAKE_ARGV("GetTokenIdentity", gettoken_set_identity, NULL,
                      RSRC_CONF, "device identity sources, tried in order: "
                      "ssl, mdm-signature, header NAME (default ssl)"),
    AP_INIT_ITERATE("GetTokenTrustedProxy", gettoken_add_trusted_proxy,
                    NULL, RSRC_CONF, "addresses or networks (addr[/bits]) "
                    "of the TLS-terminating proxies whose header identity "
                    "is believed"),
    /* gettoken_binding.c: identity certificate <-> enrollment */
    AP_INIT_TAKE1("GetTokenEnrollmentSQL", gettoken_set_enrollment_sql,
                  NULL, RSRC_CONF, "SQL binding (enrollment id, certificate "
                  "sha256) to an enrollment, or none"),
    /* service_phone_pairing.c: com.apple.watch.pairing, the phone's side */
    AP_INIT_TAKE1("GetTokenWatchPairingLifetime",
                  gettoken_set_pairing_lifetime, NULL, RSRC_CONF,
                  "seconds a pairing token is valid (default 300)"),
    AP_INIT_TAKE1("GetTokenWatchPairingSQL", gettoken_set_pairing_sql, NULL,
                  RSRC_CONF, "SQL saying whether an enrollment may vouch "
                  "for watches (phone UDID, identity sha256)"),
    /* gettoken_watch_verify.c: the watch's side, the pairing token */
    AP_INIT_TAKE12("GetTokenWatchPairingTrust", gettoken_add_pairing_trust,
                   NULL, RSRC_CONF, "issuer UUID and the file of "
                   "certificates or public keys that sign its pairing "
                   "tokens (repeatable)"),
    /* gettoken_organization.c: more ABM/ASM organisations */
    AP_INIT_TAKE_ARGV("GetTokenOrganization", gettoken_cmd_organization,
                      NULL, RSRC_CONF, "<name> <server-uuid> <key> "
                      "[<certificate>]: one more ABM/ASM organisation of "
                      "this vhost"),
    AP_INIT_TAKE1("GetTokenOrganizationSQL", gettoken_set_organization_sql,
                  NULL, RSRC_CONF, "SQL naming the organisation of an "
                  "enrollment id (first column of the first row)"),
    /* gettoken_service_filter.c: the services answered here */
    AP_INIT_TAKE_ARGV("GetTokenServices", gettoken_cmd_services, NULL,
                      ACCESS_CONF, "TokenServiceTypes answered here; other "
                      "GetTokens pass through (default: every type)"),
    /* gettoken_audit.c */
    AP_INIT_TAKE1("GetTokenAuditSQL", gettoken_set_audit_sql, NULL,
                  RSRC_CONF, "SQL run after every answered GetToken "
                  "(enrollment id, organisation, service type, jti, "
                  "status, identity sha256)"),
    /* gettoken_watch_enrollment.c: the watch's enrollment gate */
    AP_INIT_FLAG("GetTokenWatchEnrollment", gettoken_set_watch_enrollment,
                 NULL, ACCESS_CONF, "On at the watch enrollment profile "
                 "URL: a watch must bring a valid pairing token (default "
                 "Off)"),
    AP_INIT_TAKE1("GetTokenWatchEnrollmentCA",
                  gettoken_set_watch_enrollment_ca, NULL, RSRC_CONF,
                  "CA certificate(s) the signer of a signed MachineInfo "
                  "must chain to"),
    AP_INIT_TAKE1("GetTokenWatchSecurityTokenLifetime",
                  gettoken_set_watch_security_token_lifetime, NULL,
                  RSRC_CONF, "seconds a security token handed to a watch "
                  "stays usable (default 600)"),
    { NULL }
};
