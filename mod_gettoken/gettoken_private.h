/*
 * gettoken_private.h - what the parts of mod_gettoken share inside the
 * module: configuration, and the steps of answering a GetToken.
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

/* Where a device identity certificate may come from (GetTokenIdentity). */
typedef enum {
    GT_IDENTITY_SSL,            /* mod_ssl's client certificate */
    GT_IDENTITY_MDM_SIGNATURE,  /* Mdm-Signature: CMS over the body */
    GT_IDENTITY_HEADER          /* a header set by a trusted TLS proxy */
} gettoken_identity_type;

typedef struct {
    gettoken_identity_type type;
    const char *header;         /* GT_IDENTITY_HEADER: the header's name */
} gettoken_identity_source;

/* A signing key, as configured and as loaded at start-up. */
typedef struct {
    const char *where;          /* file path or pkcs11: URI */
    EVP_PKEY *key;
    struct gt_jws_signer *signer;   /* alg + prepared signing context */
} gettoken_key;

/* GetTokenWatchPairingTrust <issuer-uuid> <file>, as configured. */
typedef struct {
    const char *issuer;
    const char *file;
} gettoken_trust_file;

/* Per virtual host: each one is its own organisation. */
typedef struct {
    server_rec *server;
    const char *server_uuid;
    gettoken_key signing;
    const char *signing_cert;
    apr_array_header_t *identity;      /* gettoken_identity_source */
    apr_array_header_t *trusted_proxies;  /* apr_ipsubnet_t *, or NULL */
    const char *enrollment_sql;        /* NULL when "none" */
    int enrollment_sql_set;
    const char *enrollment_label;      /* mod_dbd label, set at start-up */
    gettoken_key pairing;              /* GetTokenWatchPairingKey */
    apr_array_header_t *pairing_trust_files;  /* gettoken_trust_file */
    apr_array_header_t *pairing_trust;  /* gt_pairing_trust, at start-up */
    struct gettoken_pairing_store *pairing_store;  /* watch_verify.c */
    apr_int64_t pairing_lifetime;
    int pairing_lifetime_set;
    apr_size_t max_body;
    int max_body_set;
    const char *audit_sql;             /* GetTokenAuditSQL, or NULL */
    const char *audit_label;           /* its mod_dbd label, at start-up */
    int in_use;                        /* GetToken On appears for this vhost */
    int ready;                         /* passed the start-up checks */
    /* organisations (gettoken_organization.c) */
    apr_array_header_t *organizations;     /* gettoken_organization, configured */
    const char *organization_sql;          /* GetTokenOrganizationSQL */
    const char *organization_label;        /* its mod_dbd label, at start-up */
    apr_hash_t *organization_by_name;      /* name -> gettoken_organization *,
                                              the default one included */
    const struct gettoken_organization *default_organization;  /* or NULL */

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

/* gettoken_config.c: directives and per-server / per-dir configuration. */
extern const command_rec gettoken_directives[];
void *gettoken_create_server_conf(apr_pool_t *p, server_rec *s);
void *gettoken_merge_server_conf(apr_pool_t *p, void *basev, void *addv);
void *gettoken_create_dir_conf(apr_pool_t *p, char *dir);
void *gettoken_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
/* Loads keys and prepares statements; logs and returns !OK on any error. */
int gettoken_config_finish(apr_pool_t *pconf, apr_pool_t *ptemp,
                           server_rec *s);
/* Warnings for a working but weaker set-up, into the opened error log. */
void gettoken_config_warn(apr_pool_t *pconf, server_rec *s);
/* "name:port (file:line)" of a vhost, for start-up messages. */
const char *gettoken_vhost_name(server_rec *s, apr_pool_t *p);

/* gettoken_body.c: reading the check-in and handing it on intact. */
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
/* Puts the bytes read back in front of the rest of the body. */
void gettoken_body_replay(request_rec *r);
/* insert_filter hook: internal redirects keep the replay. */
void gettoken_body_insert_filter(request_rec *r);

/* gettoken_identity.c: the device identity certificate. */
/* Fills req->identity_*; returns OK or HTTP_UNAUTHORIZED (logged). */
int gettoken_identity_find(request_rec *r, const gettoken_server_conf *conf,
                           const char *body, apr_size_t body_len,
                           gettoken_request *req);
/* GetTokenTrustedProxy: one address or network more. */
const char *gettoken_add_trusted_proxy(cmd_parms *cmd, void *dirv,
                                       const char *arg);
/* Start-up checks of GetTokenIdentity; logs and returns !OK on error. */
int gettoken_identity_check_config(server_rec *s,
                                   const gettoken_server_conf *conf,
                                   apr_pool_t *p);

/* gettoken_dbd.c: mod_dbd's optional functions (retrieved at start-up;
 * gettoken_dbd_loaded() says whether mod_dbd is there), statements prepared under a fresh label
 * "gettoken_<purpose>_<n>" (NULL without mod_dbd), and the request's
 * pooled connection (NULL when none can be had). */
void gettoken_dbd_retrieve_fns(void);
int gettoken_dbd_loaded(void);
const char *gettoken_dbd_prepare(server_rec *s, apr_pool_t *p,
                                 const char *sql, const char *purpose);
ap_dbd_t *gettoken_dbd_acquire(request_rec *r);
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

/* gettoken_binding.c: identity certificate <-> enrollment, via mod_dbd. */
int gettoken_binding_prepare(server_rec *s, gettoken_server_conf *conf,
                             apr_pool_t *p);
/* OK, HTTP_FORBIDDEN or HTTP_SERVICE_UNAVAILABLE (each logged). */
int gettoken_binding_check(request_rec *r, const gettoken_server_conf *conf,
                           const gettoken_request *req);

/* gettoken_handler.c */
int gettoken_handler(request_rec *r);

/* service_maid.c: com.apple.maid, an implementation of the public hook. */
int gettoken_maid_generate(const gettoken_request *req, gettoken_token *tok);

/* service_watch_pairing.c: com.apple.watch.pairing, the phone's side. */
int gettoken_watch_pairing_generate(const gettoken_request *req,
                                    gettoken_token *tok);

/* watch_verify.c: the watch's side, optional function and handler. */
void gettoken_watch_register(void);
/* Checks the trust keys, prepares the replay store's statements. */
int gettoken_watch_prepare(server_rec *s, gettoken_server_conf *conf,
                           apr_pool_t *p);
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
const char *gettoken_set_watch_enrollment_ca(cmd_parms *cmd, void *dirv,
                                             const char *arg);
const char *gettoken_set_watch_security_token_lifetime(cmd_parms *cmd,
                                                       void *dirv,
                                                       const char *arg);
/* Start-up: the CA, the statements; logs and returns !OK on error. */
int gettoken_watch_enrollment_finish(apr_pool_t *pconf, server_rec *s,
                                     gettoken_server_conf *conf);
void gettoken_watch_enrollment_register(void);

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
const char *gettoken_cmd_organization(cmd_parms *cmd, void *dirv, int argc,
                                      char *const argv[]);
const char *gettoken_cmd_organization_sql(cmd_parms *cmd, void *dirv,
                                          const char *arg);
/* After the vhost's own keys are loaded: loads each organisation's key,
 * checks certificates, prepares the SQL.  Logs and returns !OK on error. */
int gettoken_organizations_prepare(apr_pool_t *pconf, server_rec *s,
                                   gettoken_server_conf *conf,
                                   apr_hash_t *loaded);
/* One notice line per organisation of every vhost answering GetToken. */
void gettoken_organizations_announce(apr_pool_t *pconf, server_rec *s);
/* Sets req->organization*, GETTOKEN_ORGANIZATION; OK, or 403/500/503
 * (logged). */
int gettoken_organization_choose(request_rec *r,
                                 const gettoken_server_conf *conf,
                                 gettoken_request *req);
/* The organisation gettoken_organization_choose() chose, or NULL. */
const gettoken_organization *gettoken_organization_of(
    const gettoken_request *req);

/* gettoken_config.c: a key, loaded once per location (`loaded`). */
int gettoken_key_load(apr_pool_t *pconf, server_rec *s, apr_hash_t *loaded,
                      const char *directive, gettoken_key *k);
/* OK when `cert_path` loads and matches `key`; else logs naming the
 * directive and the vhost and returns !OK. */
int gettoken_certificate_check(apr_pool_t *pconf, server_rec *s,
                               const char *directive, const char *cert_path,
                               EVP_PKEY *key);

/* gettoken_services.c: GetTokenServices (directory scope). */
const char *gettoken_cmd_services(cmd_parms *cmd, void *dirv, int argc,
                                  char *const argv[]);
/* 1 when GetTokens of `service_type` are answered in this directory. */
int gettoken_service_answered_here(const gettoken_dir_conf *dir,
                                   const char *service_type);

/* gettoken_status.c: server-wide counters for mod_status, in shared
 * memory (every child, kept over graceful restarts). */
typedef enum {
    GT_STAT_ISSUED,            /* a 200 with a token */
    GT_STAT_REFUSED,           /* a GetToken answered with an error */
    GT_STAT_PASSED_THROUGH,    /* a check-in handed on to the location */
    GT_STAT_WATCH_ADMITTED     /* a watch pairing token accepted */
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

/* gettoken_audit.c: GetTokenAuditSQL, and what follows every answer. */
const char *gettoken_set_audit_sql(cmd_parms *cmd, void *dirv,
                                   const char *arg);
int gettoken_audit_prepare(server_rec *s, gettoken_server_conf *conf,
                           apr_pool_t *p);
/* After a parsed GetToken was answered with status (OK for a token):
 * counts it and runs the audit statement; never changes the answer. */
void gettoken_answered(request_rec *r, const gettoken_server_conf *conf,
                       const gt_checkin *msg, int status);
/* r->notes key: the identity's SHA-256, once a source presented one. */
#define GT_NOTE_IDENTITY "gettoken-identity-sha256"
/* r->notes key, set once the identity is bound to the enrollment: until
 * then the message's enrollment id is only claimed. */
#define GT_NOTE_BOUND "gettoken-enrollment-bound"

/* gettoken_refusal.c: the one log line of a refused request, naming the
 * vhost and the claimed enrollment; repeats from one client within a
 * short window go to LogLevel info and are counted on the next line. */
void gettoken_log_refusal(request_rec *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void gettoken_refusal_child_init(apr_pool_t *p, server_rec *s);

/* gettoken_warnings.c: start-up warnings for what the config test cannot
 * see (file permissions, databases, mod_ssl settings). */
void gettoken_warnings_log(apr_pool_t *pconf, apr_pool_t *ptemp,
                           server_rec *s);
/* The same for databases, as the httpd user, in the first child. */
void gettoken_warnings_child_init(apr_pool_t *p, server_rec *s);

#endif
