/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_private.h - what the parts of mod_gettoken share inside the
 * module.  Dependencies run one way: the module record (mod_gettoken.c)
 * drives the parts; the parts use the shared helpers (util, dbd, body,
 * refusal); everything uses core/ and jose/.  A part owns its directives
 * (a GETTOKEN_*_DIRECTIVES macro that gettoken_config.c puts in the
 * table), its configuration sub-struct and merge rule, its start-up step
 * and its request work.
 */
#ifndef GETTOKEN_PRIVATE_H
#define GETTOKEN_PRIVATE_H

#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_hash.h"
#include "apr_dbd.h"
#include "mod_dbd.h"

#include <openssl/evp.h>

#include "mod_gettoken.h"
#include "core/gt_checkin.h"

/* Every log line of the module starts with this, so operators can grep. */
#define GT_LOG_PREFIX "gettoken: "

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

/* ==== configuration ===================================================== */

/* A signing key, as configured and as loaded at start-up. */
typedef struct {
    const char *where;          /* file path or pkcs11: URI */
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
} gettoken_keys_conf;

/* gettoken_identity.c: where the device identity comes from. */
struct gettoken_identity_kind;
typedef struct {
    const struct gettoken_identity_kind *kind;
    const char *arg;            /* the source's argument (a header name) */
} gettoken_identity_source;
typedef struct {
    apr_array_header_t *sources;          /* gettoken_identity_source */
    apr_array_header_t *trusted_proxies;  /* apr_ipsubnet_t *, or NULL */
} gettoken_identity_conf;

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
typedef struct {
    apr_int64_t lifetime;              /* GetTokenWatchPairingLifetime */
    int lifetime_set;
    const char *eligibility_sql;       /* GetTokenWatchPairingSQL, or NULL */
    const char *eligibility_label;     /* its mod_dbd label, at start-up */
} gettoken_pairing_conf;

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
    gettoken_keys_conf keys;
    gettoken_identity_conf identity;
    gettoken_binding_conf binding;
    gettoken_organizations_conf orgs;
    gettoken_pairing_conf pairing;
    gettoken_audit_conf audit;
    struct gettoken_watch_verify *watch_verify;          /* its own file */
    struct gettoken_watch_enrollment *watch_enrollment;  /* its own file */
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

/* gettoken_config.c: the module's configuration records and the table
 * of every part's directives. */
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
/* Merges the part's sub-struct of a vhost over the main server's. */
#define GETTOKEN_MERGE(name, type) \
    void name(type *conf, const type *base, const type *add)
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

/* gettoken_refusal.c: the one log line of a refused request, naming the
 * vhost and the claimed enrollment; repeats from one client within a
 * short window go to LogLevel info and are counted on the next line. */
void gettoken_log_refusal(request_rec *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gettoken_refusal_child_init(apr_pool_t *p, server_rec *s);

/* gettoken_dbd.c: mod_dbd's optional functions (retrieved at start-up;
 * gettoken_dbd_loaded() says whether mod_dbd is there), statements prepared under a fresh label
 * "gettoken_<purpose>_<n>" (NULL without mod_dbd), and the request's
 * pooled connection (NULL when none can be had). */
void gettoken_dbd_retrieve_fns(void);
int gettoken_dbd_loaded(void);
/* OK when mod_dbd is there; else logs that `directive` needs it (`why`:
 * what for, or ""; `otherwise`: the way out, or "") and returns !OK. */
int gettoken_dbd_require(server_rec *s, apr_pool_t *p, const char *directive,
                         const char *why, const char *otherwise);
/* The optional SQL directives: the directive's cmd->info is where in
 * gettoken_server_conf its statement goes. */
GETTOKEN_TAKE1(gettoken_set_statement);
#define GETTOKEN_STATEMENT(member) \
    (void *)APR_OFFSETOF(gettoken_server_conf, member)
const char *gettoken_dbd_prepare(server_rec *s, apr_pool_t *p,
                                 const char *sql, const char *purpose);
/* A label of our own, for a statement prepared on first use. */
const char *gettoken_dbd_label(apr_pool_t *p, const char *purpose);
/* How many parameters apr_dbd_prepare() finds in `sql`. */
int gettoken_dbd_placeholders(const char *sql);
ap_dbd_t *gettoken_dbd_acquire(request_rec *r);
/* What a request logs when gettoken_dbd_acquire() gives nothing. */
#define GETTOKEN_DBD_NO_CONNECTION "no database connection"
#define GETTOKEN_DBD_CHECK_SETUP "(mod_dbd: check DBDriver/DBDParams and " \
                                 "that the database is up)"
/* One query with a prepared statement: the driver's rv (0 = done). */
typedef int (*gettoken_dbd_query)(request_rec *r, ap_dbd_t *dbd,
                                  apr_dbd_prepared_t *stmt, void *ctx);
/* Runs `query` with the statement `label` of this connection; when the
 * statement is stale or gone on it (schema change, re-opened connection),
 * prepares `sql` again there and runs `query` once more.  Never closes the
 * connection.  0, or the driver's rv with *err (one line). */
int gettoken_dbd_run(request_rec *r, ap_dbd_t *dbd, const char *label,
                     const char *sql, gettoken_dbd_query query, void *ctx,
                     const char **err);
/* The same for a statement never handed to mod_dbd (one that may not
 * prepare at all, which would fail every connection mod_dbd opens): it is
 * prepared on its first use on each connection, without a log line. */
int gettoken_dbd_run_unregistered(request_rec *r, ap_dbd_t *dbd,
                                  const char *label, const char *sql,
                                  gettoken_dbd_query query, void *ctx,
                                  const char **err);
/* A select with `nargs` parameters, every row handed to `row` (which may
 * be NULL) and read, so the connection is clean for the next request: 0
 * or the driver's rv.  Random access (synchronous): with apr_dbd_pgsql's
 * sequential mode a failed query looks like an empty result. */
typedef void (*gettoken_dbd_row_fn)(request_rec *r, const ap_dbd_t *dbd,
                                    apr_dbd_row_t *row, void *ctx);
int gettoken_dbd_select(request_rec *r, ap_dbd_t *dbd,
                        apr_dbd_prepared_t *stmt, int nargs,
                        const char **args, gettoken_dbd_row_fn row, void *ctx);
/* gettoken_dbd_run() on the request's pooled connection: 0, or non-zero
 * with *err (no connection, or the driver's error). */
int gettoken_dbd_ask(request_rec *r, const char *label, const char *sql,
                     gettoken_dbd_query query, void *ctx, const char **err);
/* Whether `sql` (prepared under `label`) returns a row for `args`, on the
 * request's pooled connection: 0 with *found, or non-zero with *err (no
 * connection, or the driver's error). */
int gettoken_dbd_exists(request_rec *r, const char *label, const char *sql,
                        int nargs, const char **args, int *found,
                        const char **err);
/* A statement that changes rows: 0 or the driver's rv; *nrows. */
int gettoken_dbd_change(request_rec *r, ap_dbd_t *dbd,
                        apr_dbd_prepared_t *stmt, int nargs,
                        const char **args, int *nrows);
/* The driver's message for rv on one line. */
const char *gettoken_dbd_error(apr_pool_t *p, const ap_dbd_t *dbd, int rv);
/* Seconds between purges of expired rows, per process and vhost. */
#define GETTOKEN_PURGE_INTERVAL 60
/* Runs the purge statement `label` (`sql`, one parameter: now) at most
 * once per GETTOKEN_PURGE_INTERVAL; *next_purge is the caller's schedule.
 * A failure is logged, never the request's. */
void gettoken_dbd_purge_maybe(request_rec *r, ap_dbd_t *dbd, const char *label,
                              const char *sql, apr_uint32_t *next_purge,
                              apr_int64_t now, const char *table);

/* gettoken_body.c: reading a body once and handing it on intact. */
typedef enum {
    GT_BODY_COMPLETE,   /* the whole body is in buf/len */
    GT_BODY_TOO_LARGE   /* more than the cap: not read in full */
} gettoken_body_state;
void gettoken_body_register(void);
/* Reads at most max_body (+ one read) bytes, keeping what it read for the
 * handler that comes next.  Returns OK or an HTTP status for a broken read. */
int gettoken_body_read(request_rec *r, apr_size_t max_body,
                       gettoken_body_state *state, const char **buf,
                       apr_size_t *len);
/* 1 when this request's body (or that of the request it was redirected
 * from) was read here already: it must not be read again. */
int gettoken_body_was_read(request_rec *r);
/* Puts the bytes read back in front of the rest of the body. */
void gettoken_body_replay(request_rec *r);
/* insert_filter hook: internal redirects keep the replay. */
void gettoken_body_insert_filter(request_rec *r);

/* gettoken_status.c: server-wide counters for mod_status, in shared
 * memory (every child, kept over graceful restarts). */
typedef enum {
    GT_STAT_ISSUED,            /* a 200 with a token */
    GT_STAT_REFUSED,           /* a GetToken answered with an error */
    GT_STAT_PASSED_THROUGH,    /* a check-in handed on to the location */
    GT_STAT_WATCH_ADMITTED,    /* a watch pairing token accepted */
    GT_STAT_WATCH_REFUSED,     /* the watch enrollment gate refused */
    GT_STAT_WATCH_SECURITY_TOKEN /* a security token recorded for a watch */
} gettoken_stat_event;
void gettoken_status_register(void);
int gettoken_status_init(apr_pool_t *pconf, server_rec *s);
/* service_type: for GT_STAT_ISSUED; http_status: for GT_STAT_REFUSED. */
void gettoken_status_count(gettoken_stat_event ev, const char *service_type,
                           int http_status);
/* The time one token took to generate (sign), for the mean. */
void gettoken_status_signing_time(apr_interval_time_t t);
/* 1 for the first child of a generation (start-up, graceful restart) to
 * ask, 0 for every other: checks that must run as the httpd user, once. */
int gettoken_status_first_child(void);

/* ==== the parts ========================================================= */

/* gettoken_keys.c */
GETTOKEN_MERGE(gettoken_keys_merge, gettoken_keys_conf);
GETTOKEN_TAKE1(gettoken_set_server_uuid);
GETTOKEN_TAKE1(gettoken_set_signing_cert);
/* GetTokenSigningKey, GetTokenWatchPairingKey: cmd->info is the offset of
 * the key in gettoken_keys_conf. */
GETTOKEN_TAKE1(gettoken_set_key);
#define GETTOKEN_KEYS_DIRECTIVES \
    AP_INIT_TAKE1("GetTokenServerUUID", gettoken_set_server_uuid, NULL, \
                  RSRC_CONF, "server_uuid from AccountDetail: the iss of " \
                  "com.apple.maid tokens"), \
    AP_INIT_TAKE1("GetTokenSigningKey", gettoken_set_key, \
                  (void *)APR_OFFSETOF(gettoken_keys_conf, signing), \
                  RSRC_CONF, "private key (file or pkcs11: URI) signing " \
                  "com.apple.maid tokens"), \
    AP_INIT_TAKE1("GetTokenSigningCertificate", gettoken_set_signing_cert, \
                  NULL, RSRC_CONF, "certificate registered with Apple " \
                  "Business/School Manager; must match GetTokenSigningKey"), \
    AP_INIT_TAKE1("GetTokenWatchPairingKey", gettoken_set_key, \
                  (void *)APR_OFFSETOF(gettoken_keys_conf, pairing), \
                  RSRC_CONF, "private key (file or pkcs11: URI) signing " \
                  GETTOKEN_SERVICE_WATCH_PAIRING " tokens (default: the " \
                  "signing key)")
/* Where a key directive's argument points (a pkcs11: URI stays as it is). */
const char *gettoken_key_location(apr_pool_t *p, const char *arg);
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
void gettoken_organizations_init(apr_pool_t *p,
                                 gettoken_organizations_conf *conf);
GETTOKEN_MERGE(gettoken_organizations_merge, gettoken_organizations_conf);
GETTOKEN_TAKE_ARGV(gettoken_cmd_organization);
#define GETTOKEN_ORGANIZATION_DIRECTIVES \
    AP_INIT_TAKE_ARGV("GetTokenOrganization", gettoken_cmd_organization, \
                      NULL, RSRC_CONF, "<name> <server-uuid> <key> " \
                      "[<certificate>]: one more ABM/ASM organisation of " \
                      "this vhost"), \
    AP_INIT_TAKE1("GetTokenOrganizationSQL", gettoken_set_statement, \
                  GETTOKEN_STATEMENT(orgs.sql), RSRC_CONF, "SQL naming the organisation of an " \
                  "enrollment id (first column of the first row)")
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
GETTOKEN_MERGE(gettoken_identity_merge, gettoken_identity_conf);
GETTOKEN_TAKE_ARGV(gettoken_set_identity);
GETTOKEN_TAKE1(gettoken_add_trusted_proxy);
#define GETTOKEN_IDENTITY_DIRECTIVES \
    AP_INIT_TAKE_ARGV("GetTokenIdentity", gettoken_set_identity, NULL, \
                      RSRC_CONF, "device identity sources, tried in order: " \
                      "ssl, mdm-signature, header NAME (default ssl)"), \
    AP_INIT_ITERATE("GetTokenTrustedProxy", gettoken_add_trusted_proxy, \
                    NULL, RSRC_CONF, "addresses or networks (addr[/bits]) " \
                    "of the TLS-terminating proxies whose header identity " \
                    "is believed")
/* Start-up checks of GetTokenIdentity; logs and returns !OK on error. */
GETTOKEN_STARTUP_STEP(gettoken_identity_startup);
/* 1 when the vhost may take its identity from mod_ssl's certificate. */
int gettoken_identity_uses_ssl(const gettoken_server_conf *conf);
/* Fills req->identity_*; returns OK or HTTP_UNAUTHORIZED (logged). */
int gettoken_identity_find(request_rec *r, const gettoken_server_conf *conf,
                           const char *body, apr_size_t body_len,
                           gettoken_request *req);

/* gettoken_binding.c: identity certificate <-> enrollment, via mod_dbd. */
GETTOKEN_MERGE(gettoken_binding_merge, gettoken_binding_conf);
GETTOKEN_TAKE1(gettoken_set_enrollment_sql);
#define GETTOKEN_BINDING_DIRECTIVES \
    AP_INIT_TAKE1("GetTokenEnrollmentSQL", gettoken_set_enrollment_sql, \
                  NULL, RSRC_CONF, "SQL binding (enrollment id, certificate " \
                  "sha256) to an enrollment, or none")
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
int gettoken_binding_refuse(request_rec *r, const gettoken_request *req);
int gettoken_binding_unavailable(request_rec *r, const char *detail);

/* gettoken_handler.c: GetToken On, the request flow, the public hook. */
const char *gettoken_set_enabled(cmd_parms *cmd, void *dirv, int on);
GETTOKEN_TAKE1(gettoken_set_max_body);
/* ACCESS_CONF only: never .htaccess, which is read per request, after
 * the start-up checks that load keys and prepare statements */
#define GETTOKEN_HANDLER_DIRECTIVES \
    AP_INIT_FLAG("GetToken", gettoken_set_enabled, NULL, ACCESS_CONF, \
                 "On to answer GetToken check-in messages here; every " \
                 "other message passes through (default Off)"), \
    AP_INIT_TAKE1("GetTokenMaxBodySize", gettoken_set_max_body, NULL, \
                  RSRC_CONF, "bytes read to look for a GetToken (default " \
                  "65536)")
int gettoken_handler(request_rec *r);

/* gettoken_service_filter.c: GetTokenServices (directory scope). */
GETTOKEN_TAKE_ARGV(gettoken_cmd_services);
#define GETTOKEN_SERVICES_DIRECTIVES \
    AP_INIT_TAKE_ARGV("GetTokenServices", gettoken_cmd_services, NULL, \
                      ACCESS_CONF, "TokenServiceTypes answered here; other " \
                      "GetTokens pass through (default: every type)")
/* 1 when GetTokens of `service_type` are answered in this directory. */
int gettoken_service_answered_here(const gettoken_dir_conf *dir,
                                   const char *service_type);

/* service_maid.c: com.apple.maid, an implementation of the public hook. */
int gettoken_maid_generate(const gettoken_request *req, gettoken_token *tok);

/* service_phone_pairing.c: com.apple.watch.pairing, the phone's side. */
GETTOKEN_MERGE(gettoken_pairing_merge, gettoken_pairing_conf);
GETTOKEN_TAKE1(gettoken_set_pairing_lifetime);
#define GETTOKEN_PAIRING_DIRECTIVES \
    AP_INIT_TAKE1("GetTokenWatchPairingLifetime", \
                  gettoken_set_pairing_lifetime, NULL, RSRC_CONF, \
                  "seconds a pairing token is valid (default 300)"), \
    AP_INIT_TAKE1("GetTokenWatchPairingSQL", gettoken_set_statement, \
                  GETTOKEN_STATEMENT(pairing.eligibility_sql), RSRC_CONF, "SQL saying whether an enrollment may " \
                  "vouch for watches (phone UDID, identity sha256)")
int gettoken_watch_pairing_generate(const gettoken_request *req,
                                    gettoken_token *tok);
/* GetTokenWatchPairingSQL: prepares the statement that says whether the
 * MDM's database lets a phone vouch for watches. */
GETTOKEN_STARTUP_STEP(gettoken_pairing_eligibility_startup);

/* gettoken_watch_verify.c: the watch's side, optional function and handler. */
struct gettoken_watch_verify *gettoken_watch_verify_create(apr_pool_t *p);
struct gettoken_watch_verify *gettoken_watch_verify_merge(
    apr_pool_t *p, const struct gettoken_watch_verify *base,
    const struct gettoken_watch_verify *add);
const char *gettoken_add_pairing_trust(cmd_parms *cmd, void *dirv,
                                       const char *issuer, const char *file);
#define GETTOKEN_WATCH_VERIFY_DIRECTIVES \
    AP_INIT_TAKE12("GetTokenWatchPairingTrust", gettoken_add_pairing_trust, \
                   NULL, RSRC_CONF, "issuer UUID and the file of " \
                   "certificates or public keys that sign its pairing " \
                   "tokens (repeatable)")
void gettoken_watch_register(void);
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
int gettoken_watch_check_token(request_rec *r, const char *token,
                               const char *watch_udid,
                               const char *security_token,
                               struct gt_pairing_claims *claims);
/* Single use of a checked token's jti: OK, 403 replayed, 503 (logged). */
int gettoken_watch_use_jti(request_rec *r,
                           const struct gt_pairing_claims *claims);

/* gettoken_watch_enrollment.c: the watch MDM's gate at the enrollment
 * profile URL (GetTokenWatchEnrollment*). */
struct gettoken_watch_enrollment *gettoken_watch_enrollment_create(apr_pool_t *p);
struct gettoken_watch_enrollment *gettoken_watch_enrollment_merge(
    apr_pool_t *p, const struct gettoken_watch_enrollment *base,
    const struct gettoken_watch_enrollment *add);
const char *gettoken_set_watch_enrollment(cmd_parms *cmd, void *dirv, int on);
GETTOKEN_TAKE1(gettoken_set_watch_enrollment_ca);
GETTOKEN_TAKE1(gettoken_set_watch_security_token_lifetime);
#define GETTOKEN_WATCH_ENROLLMENT_DIRECTIVES \
    AP_INIT_FLAG("GetTokenWatchEnrollment", gettoken_set_watch_enrollment, \
                 NULL, ACCESS_CONF, "On at the watch enrollment profile " \
                 "URL: a watch must bring a valid pairing token (default " \
                 "Off)"), \
    AP_INIT_TAKE1("GetTokenWatchEnrollmentCA", \
                  gettoken_set_watch_enrollment_ca, NULL, RSRC_CONF, \
                  "CA certificate(s) the signer of a signed MachineInfo " \
                  "must chain to"), \
    AP_INIT_TAKE1("GetTokenWatchSecurityTokenLifetime", \
                  gettoken_set_watch_security_token_lifetime, NULL, \
                  RSRC_CONF, "seconds a security token handed to a watch " \
                  "stays usable (default 600)")
/* Start-up: the CA, the statements; logs and returns !OK on error. */
GETTOKEN_STARTUP_STEP(gettoken_watch_enrollment_startup);
void gettoken_watch_enrollment_register(void);

/* gettoken_audit.c: GetTokenAuditSQL, and what follows every answer. */
GETTOKEN_MERGE(gettoken_audit_merge, gettoken_audit_conf);
#define GETTOKEN_AUDIT_DIRECTIVES \
    AP_INIT_TAKE1("GetTokenAuditSQL", gettoken_set_statement, \
                  GETTOKEN_STATEMENT(audit.sql), RSRC_CONF, "SQL run after every answered GetToken " \
                  "(enrollment id, organisation, service type, jti, " \
                  "status, identity sha256)")
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
