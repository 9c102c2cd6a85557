/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_private.h - what the parts of mod_gettoken share inside the
 * module.  Dependencies run one way: the module record (mod_gettoken.c)
 * drives the parts; the parts use the shared helpers (util, dbd, body,
 * refusal, status); everything uses core/ and jose/.  A part owns its
 * directives (their setters; gettoken_config.c has the table), its
 * configuration (GETTOKEN_PART_CONF below), its start-up step and its
 * request work.
 * The shared helpers with an interface of their own have their own
 * header: gettoken_dbd.h (mod_dbd), gettoken_body.h (reading a body and
 * handing it on), gettoken_status.h (the counters).
 */
#ifndef GETTOKEN_PRIVATE_H
#define GETTOKEN_PRIVATE_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_hash.h"

#include <openssl/evp.h>

#include "mod_gettoken.h"
#include "core/gt_checkin.h"

/* Every log line of the module starts "gettoken: GT01234: ": the prefix
 * operators grep for, and the line's own id (README lists each one, what
 * it means and what to do).  Like httpd's APLOGNO(), one number per call
 * site; the structure test keeps them unique. */
#define GTLOGNO(n) "gettoken: GT" #n ": "

#define GT_DEFAULT_MAX_BODY          65536
#define GT_DEFAULT_PAIRING_LIFETIME  300
#define GT_DEFAULT_ENROLLMENT_SQL \
    "SELECT 1 FROM cert_auth_associations WHERE id = %s AND sha256 = %s"
/* The longest value a GETTOKEN_* environment variable (and so an access-log
 * field) takes from a message: the 1 KiB string bound of a GetToken. */
#define GT_ENV_VALUE_MAX             GT_MAX_STRING
/* Seconds a client is asked to wait when the database is unreachable. */
#define GT_RETRY_AFTER               "30"

extern module AP_MODULE_DECLARE_DATA gettoken_module;
/* every file of the module logs as the module (LogLevel gettoken:...) */
APLOG_USE_MODULE(gettoken);

/* ==== configuration ===================================================== */

/* How a part owns its configuration: a struct of its own, made and merged
 * by the part, held by pointer in gettoken_server_conf.  The struct is
 * defined here only when another part reads it; else in the part's file. */
#define GETTOKEN_PART_CONF(part, type) \
    type *gettoken_##part##_create(apr_pool_t *p); \
    type *gettoken_##part##_merge(apr_pool_t *p, const type *base, \
                                  const type *add)

/* A signing key, as configured and as loaded at start-up. */
typedef struct {
    const char *where;          /* file path or URI (pkcs11:, handle:, ...) */
    EVP_PKEY *key;
    struct gt_jws_signer *signer;   /* alg + prepared signing context */
} gettoken_key;

/* gettoken_keys.c: the vhost's own (default) organisation and the key
 * that signs its pairing tokens. */
typedef struct {
    const char *server_uuid;
    gettoken_key signing;
    const char *signing_cert;
    gettoken_key pairing;              /* GetTokenWatchPairingKey */
    apr_array_header_t *providers;     /* GetTokenKeyProvider (main server) */
} gettoken_keys_conf;

/* gettoken_identity.c: where the device identity comes from. */
typedef struct gettoken_identity_conf gettoken_identity_conf;

/* gettoken_binding.c: GetTokenEnrollmentSQL. */
typedef struct {
    const char *sql;            /* NULL when "none" */
    int sql_set;
    const char *label;          /* mod_dbd label, set at start-up */
} gettoken_binding_conf;

/* gettoken_organization.c: the GetTokenOrganization ones. */
struct gettoken_organization;
typedef struct {
    apr_array_header_t *configured;    /* gettoken_organization */
    const char *sql;                   /* GetTokenOrganizationSQL */
    const char *label;                 /* its mod_dbd label, at start-up */
    apr_hash_t *by_name;               /* name -> gettoken_organization *,
                                          the default one included */
    const struct gettoken_organization *fallback;  /* the default, or NULL */
    /* GetTokenEnrollmentSQL and GetTokenOrganizationSQL as one statement
     * (gettoken_organization_query.c), or NULL; made at start-up */
    const char *joint_sql;
    const char *joint_label;           /* prepared on first use */
    int joint_org_params;              /* its parameters: the organisation */
    int joint_binding_params;          /* query's, then the binding's */
    apr_uint32_t *joint_state;         /* per child: untried/works/broken */
} gettoken_organizations_conf;

/* service_phone_pairing.c: the phone's side. */
typedef struct gettoken_pairing_conf gettoken_pairing_conf;

/* gettoken_audit.c: GetTokenAuditSQL. */
typedef struct {
    const char *sql;                   /* or NULL */
    const char *label;                 /* its mod_dbd label, at start-up */
} gettoken_audit_conf;

/* Per virtual host: each one is its own organisation. */
typedef struct {
    server_rec *server;
    int in_use;                        /* GetToken On appears for this vhost */
    int ready;                         /* passed the start-up checks */
    apr_size_t max_body;               /* GetTokenMaxBodySize */
    int max_body_set;
    /* each part's own */
    gettoken_keys_conf *keys;
    gettoken_identity_conf *identity;
    gettoken_binding_conf *binding;
    gettoken_organizations_conf *orgs;
    gettoken_pairing_conf *pairing;
    gettoken_audit_conf *audit;
    struct gettoken_watch_verify *watch_verify;
    struct gettoken_watch_enrollment *watch_enrollment;
} gettoken_server_conf;

typedef struct {
    int enabled;                       /* -1: not set here */
    apr_array_header_t *services;      /* GetTokenServices; NULL: every type */
    int watch_enrollment;              /* GetTokenWatchEnrollment; -1: not set */
} gettoken_dir_conf;

static APR_INLINE gettoken_server_conf *gettoken_server_config(server_rec *s)
{
    return ap_get_module_config(s->module_config, &gettoken_module);
}

/* gettoken_config.c: the module's configuration records (each part's
 * made and merged by the part) and the table of every part's directives. */
extern const command_rec gettoken_directives[];
void *gettoken_create_server_conf(apr_pool_t *p, server_rec *s);
void *gettoken_merge_server_conf(apr_pool_t *p, void *basev, void *addv);
void *gettoken_create_dir_conf(apr_pool_t *p, char *dir);
void *gettoken_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);

/* What a part's start-up step gets. */
typedef struct {
    apr_pool_t *pconf;
    apr_pool_t *ptemp;
    apr_hash_t *loaded_keys;    /* location -> gettoken_key, across vhosts */
} gettoken_startup;

/* The shapes of what a part offers. */
/* Start-up, per vhost: checks and loads what the part's directives said;
 * logs and returns !OK on error. */
#define GETTOKEN_STARTUP_STEP(name) \
    int name(const gettoken_startup *st, server_rec *s, \
             gettoken_server_conf *conf)
/* Once every vhost started: a notice for the operator. */
#define GETTOKEN_NOTICE(name) \
    void name(apr_pool_t *p, server_rec *s, const gettoken_server_conf *conf)
/* A setting with its own "was set" flag (0 and NULL may be set values). */
#define GETTOKEN_MERGE_FLAGGED(conf, base, add, field, flag) \
    do { \
        (conf)->field = (add)->flag ? (add)->field : (base)->field; \
        (conf)->flag = (add)->flag || (base)->flag; \
    } while (0)
/* Directive setters. */
#define GETTOKEN_TAKE1(name) \
    const char *name(cmd_parms *cmd, void *dirv, const char *arg)
#define GETTOKEN_TAKE_ARGV(name) \
    const char *name(cmd_parms *cmd, void *dirv, int argc, char *const argv[])

/* ==== shared helpers ==================================================== */

/* gettoken_util.c */
/* "name:port (file:line)" of a vhost, for log lines. */
const char *gettoken_vhost_name(server_rec *s, apr_pool_t *p);
/* Asks the client to come back later: Retry-After, and the 503 to return
 * (the caller logs why). */
int gettoken_retry_later(request_rec *r);
/* Sends a whole answer of `len` bytes; the status is r->status. */
int gettoken_send_answer(request_rec *r, const char *content_type,
                         const char *data, apr_size_t len);
/* A directive's whole number from 1 to max, or the error to return. */
const char *gettoken_parse_number(cmd_parms *cmd, const char *arg,
                                  apr_int64_t max, apr_int64_t *out);
/* An SQL directive's statement, into *sql; or the error to return. */
const char *gettoken_parse_sql(cmd_parms *cmd, const char *arg,
                               const char **sql);

/* gettoken_refusal.c: the one log line of every refused request, "<id>
 * <what> refused (<status>): <why>; vhost <vhost>[, enrollment]": 4xx at
 * warn, 5xx at error; repeats from one client within a short window go to
 * LogLevel info and are counted on the next line.  `id` is the call
 * site's GTLOGNO(). */
typedef enum {
    GT_REFUSED_GETTOKEN,            /* a GetToken check-in message */
    GT_REFUSED_WATCH_ENROLLMENT,    /* a watch at the enrollment profile URL */
    GT_REFUSED_PAIRING_VERIFY       /* a pairing token to verify */
} gettoken_refused;
/* Logs the refusal and returns `status`; a 503 also asks the client to
 * come back later (Retry-After). */
int gettoken_refuse(request_rec *r, gettoken_refused what, int status,
                    const char *id, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* The 503 of a request that got no pooled database connection for
 * `purpose` (what it needed the database for). */
int gettoken_no_connection(request_rec *r, gettoken_refused what,
                           const char *id, const char *purpose);
void gettoken_refusal_child_init(apr_pool_t *p, server_rec *s);

/* ==== the parts ========================================================= */

/* gettoken_keys.c */
GETTOKEN_PART_CONF(keys, gettoken_keys_conf);
GETTOKEN_TAKE1(gettoken_set_server_uuid);
GETTOKEN_TAKE1(gettoken_set_signing_cert);
/* GetTokenSigningKey, GetTokenWatchPairingKey: cmd->info is the offset of
 * the key in gettoken_keys_conf. */
GETTOKEN_TAKE1(gettoken_set_key);
GETTOKEN_TAKE1(gettoken_add_key_provider);
/* Where a key directive's argument points (a URI stays as it is). */
const char *gettoken_key_location(apr_pool_t *p, const char *arg);
/* Before any key loads: the key store with GetTokenKeyProvider's
 * providers; logs naming the directive and returns !OK on error. */
int gettoken_keys_store_startup(apr_pool_t *pconf, server_rec *s);
/* Opens again in the child the keys that cannot cross fork() and checks
 * that every key signs. */
void gettoken_keys_child_init(apr_pool_t *pchild, server_rec *s);
/* Loads a key, once per location across vhosts; logs naming the
 * directive and the vhost and returns !OK on error. */
int gettoken_key_load(const gettoken_startup *st, server_rec *s,
                      const char *directive, gettoken_key *k);
/* OK when `cert_path` loads and matches `key`; else logs naming the
 * directive and the vhost and returns !OK. */
int gettoken_certificate_check(apr_pool_t *pconf, server_rec *s,
                               const char *directive, const char *cert_path,
                               EVP_PKEY *key);
GETTOKEN_STARTUP_STEP(gettoken_keys_startup);
/* The end of a token service's work: `token`, signed with `key`, becomes
 * the answer with its `jti`; when signing failed (`token` NULL, `why`
 * says why) the 500 refusal "<signing> with <key> failed: <why>". */
int gettoken_signed_answer(request_rec *r, gettoken_token *tok,
                           const char *token, const char *jti,
                           const gettoken_key *key, const char *id,
                           const char *signing, const char *why);

/* gettoken_organization.c: the ABM/ASM organisations of a vhost (its
 * default, GetTokenServerUUID + GetTokenSigningKey, and each
 * GetTokenOrganization) and the choice of one per GetToken. */
typedef struct gettoken_organization {
    const char *name;
    const char *server_uuid;           /* iss of its tokens */
    gettoken_key signing;              /* signs com.apple.maid */
    const char *cert;                  /* optional certificate, checked */
    gettoken_key pairing;              /* signs com.apple.watch.pairing */
} gettoken_organization;
GETTOKEN_PART_CONF(organizations, gettoken_organizations_conf);
GETTOKEN_TAKE_ARGV(gettoken_cmd_organization);
GETTOKEN_TAKE1(gettoken_set_organization_sql);
/* After the vhost's own keys are loaded: loads each organisation's key,
 * checks certificates, prepares the SQL.  Logs and returns !OK on error. */
GETTOKEN_STARTUP_STEP(gettoken_organizations_startup);
/* One notice line per organisation of a vhost answering GetToken. */
GETTOKEN_NOTICE(gettoken_organizations_announce);
/* Binds the identity to the enrollment (gettoken_binding.c) and chooses
 * the organisation: sets req->organization*, GETTOKEN_ORGANIZATION; OK, or
 * 403/500/503 (logged). */
int gettoken_organization_choose(request_rec *r,
                                 const gettoken_server_conf *conf,
                                 gettoken_request *req);
/* gettoken_organization_query.c: the binding and organisation queries,
 * in one statement when they can be.  The start-up step writes it. */
void gettoken_organization_query_startup(apr_pool_t *pconf,
                                         gettoken_server_conf *conf);
/* OK when the identity is bound, with *name from GetTokenOrganizationSQL
 * (NULL: no row, or none configured); else 403/503 (logged). */
int gettoken_organization_ask(request_rec *r, const gettoken_server_conf *conf,
                              const gettoken_request *req, const char **name);
/* The organisation gettoken_organization_choose() chose, or NULL. */
const gettoken_organization *gettoken_organization_of(
    const gettoken_request *req);

/* gettoken_identity.c: the device identity certificate. */
GETTOKEN_PART_CONF(identity, gettoken_identity_conf);
GETTOKEN_TAKE_ARGV(gettoken_set_identity);
GETTOKEN_TAKE1(gettoken_add_trusted_proxy);
/* Start-up checks of GetTokenIdentity; logs and returns !OK on error. */
GETTOKEN_STARTUP_STEP(gettoken_identity_startup);
/* 1 when the vhost may take its identity from mod_ssl's certificate. */
int gettoken_identity_uses_ssl(const gettoken_server_conf *conf);
/* Fills req->identity_*; returns OK or HTTP_UNAUTHORIZED (logged). */
int gettoken_identity_find(request_rec *r, const gettoken_server_conf *conf,
                           const char *body, apr_size_t body_len,
                           gettoken_request *req);

/* gettoken_binding.c: identity certificate <-> enrollment, via mod_dbd. */
GETTOKEN_PART_CONF(binding, gettoken_binding_conf);
GETTOKEN_TAKE1(gettoken_set_enrollment_sql);
GETTOKEN_STARTUP_STEP(gettoken_binding_startup);
/* The warning of a vhost whose identities are not bound. */
GETTOKEN_NOTICE(gettoken_binding_warn);
/* OK (the enrollment is bound: noted for the logs), HTTP_FORBIDDEN or
 * HTTP_SERVICE_UNAVAILABLE (each logged). */
int gettoken_binding_check(request_rec *r, const gettoken_server_conf *conf,
                           const gettoken_request *req);
/* For a query that answered the binding question with another one: the
 * enrollment is bound; it is not (logged, 403); the query failed (logged,
 * 503 with Retry-After). */
void gettoken_binding_bound(request_rec *r);
int gettoken_binding_refuse(request_rec *r, const char *id,
                            const gettoken_request *req);
int gettoken_binding_unavailable(request_rec *r, const char *id,
                                 const char *detail);

/* gettoken_handler.c: GetToken On, the request flow, the public hook. */
const char *gettoken_set_enabled(cmd_parms *cmd, void *dirv, int on);
GETTOKEN_TAKE1(gettoken_set_max_body);
/* ACCESS_CONF only: never .htaccess, which is read per request, after
 * the start-up checks that load keys and prepare statements */
int gettoken_handler(request_rec *r);

/* gettoken_service_filter.c: GetTokenServices (directory scope). */
GETTOKEN_TAKE_ARGV(gettoken_cmd_services);
/* 1 when GetTokens of `service_type` are answered in this directory. */
int gettoken_service_answered_here(const gettoken_dir_conf *dir,
                                   const char *service_type);

/* service_maid.c: com.apple.maid, an implementation of the public hook. */
int gettoken_maid_generate(const gettoken_request *req, gettoken_token *tok);

/* service_phone_pairing.c: com.apple.watch.pairing, the phone's side. */
GETTOKEN_PART_CONF(pairing, gettoken_pairing_conf);
GETTOKEN_TAKE1(gettoken_set_pairing_lifetime);
GETTOKEN_TAKE1(gettoken_set_pairing_sql);
int gettoken_watch_pairing_generate(const gettoken_request *req,
                                    gettoken_token *tok);
/* GetTokenWatchPairingSQL: prepares the statement that says whether the
 * MDM's database lets a phone vouch for watches. */
GETTOKEN_STARTUP_STEP(gettoken_pairing_eligibility_startup);

/* gettoken_watch_verify.c: the watch's side, optional function and handler. */
GETTOKEN_PART_CONF(watch_verify, struct gettoken_watch_verify);
const char *gettoken_add_pairing_trust(cmd_parms *cmd, void *dirv,
                                       const char *issuer, const char *file);
/* The optional function gettoken_watch_verify (mod_gettoken.h), its
 * retrieval for the handler, and the handler gettoken-watch-verify. */
int gettoken_watch_verify(request_rec *r, const char *token,
                          const char *watch_udid, const char *security_token,
                          const char **phone_udid, const char **issuer);
void gettoken_watch_verify_retrieve(void);
int gettoken_watch_verify_handler(request_rec *r);
/* 1 when GetTokenWatchPairingTrust is configured for the vhost. */
int gettoken_watch_trust_configured(const gettoken_server_conf *conf);
/* 1 once the vhost's replay store is prepared (pairing tokens verify). */
int gettoken_watch_verify_ready(const gettoken_server_conf *conf);
/* Loads the trust keys, prepares the replay store's statements. */
GETTOKEN_STARTUP_STEP(gettoken_watch_verify_startup);
struct gt_pairing_claims;
/* A pairing token's signature (by a GetTokenWatchPairingTrust key) and
 * claims, without side effects; security_token NULL leaves sth to the
 * caller.  OK, or 403 with one log line. */
int gettoken_watch_check_token(request_rec *r, gettoken_refused what,
                               const char *token,
                               const char *watch_udid,
                               const char *security_token,
                               struct gt_pairing_claims *claims);
/* Single use of a checked token's jti: OK, 403 replayed, 503 (logged). */
int gettoken_watch_use_jti(request_rec *r, gettoken_refused what,
                           const struct gt_pairing_claims *claims);

/* gettoken_watch_enrollment.c: the watch MDM's gate at the enrollment
 * profile URL (GetTokenWatchEnrollment*). */
GETTOKEN_PART_CONF(watch_enrollment, struct gettoken_watch_enrollment);
const char *gettoken_set_watch_enrollment(cmd_parms *cmd, void *dirv, int on);
GETTOKEN_TAKE1(gettoken_set_watch_enrollment_ca);
GETTOKEN_TAKE1(gettoken_set_watch_security_token_lifetime);
/* Start-up: the CA, the statements; logs and returns !OK on error. */
GETTOKEN_STARTUP_STEP(gettoken_watch_enrollment_startup);
/* header_parser: takes the headers the gate sets away from the client. */
int gettoken_watch_enrollment_strip_headers(request_rec *r);
/* The gate: DECLINED (passed on, body intact) or the refusal's status. */
int gettoken_watch_enrollment_handler(request_rec *r);

/* gettoken_audit.c: GetTokenAuditSQL, and what follows every answer. */
GETTOKEN_PART_CONF(audit, gettoken_audit_conf);
GETTOKEN_TAKE1(gettoken_set_audit_sql);
GETTOKEN_STARTUP_STEP(gettoken_audit_startup);
/* After a parsed GetToken was answered with status (OK for a token):
 * counts it and runs the audit statement; never changes the answer. */
void gettoken_answered(request_rec *r, const gettoken_server_conf *conf,
                       const gt_checkin *msg, int status);
/* r->notes key: the identity's SHA-256, once a source presented one. */
#define GT_NOTE_IDENTITY "gettoken-identity-sha256"
/* r->notes key, set once the identity is bound to the enrollment: until
 * then the message's enrollment id is only claimed. */
#define GT_NOTE_BOUND "gettoken-enrollment-bound"

/* gettoken_warnings.c: start-up warnings for what the config test cannot
 * see (file permissions, databases, mod_ssl settings). */
void gettoken_warnings_log(apr_pool_t *pconf, apr_pool_t *ptemp,
                           server_rec *s);
/* The same for databases, as the httpd user, in the first child. */
void gettoken_warnings_child_init(apr_pool_t *p, server_rec *s);

#endif
