/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * mod_gettoken.h - public interface of mod_gettoken.
 *
 * mod_gettoken answers the MDM check-in message "GetToken".  It parses and
 * validates the check-in, establishes the device identity and its binding to
 * the enrollment, then asks the token services, through the RUN_FIRST hook
 * gettoken_generate_token, to produce the token.  The built-in services
 * (com.apple.maid, com.apple.watch.pairing) are ordinary implementations of
 * this hook; another module adds a service type the same way:
 *
 *   static int echo_generate(const gettoken_request *req, gettoken_token *tok)
 *   {
 *       if (strcmp(req->service_type, "com.example.echo"))
 *           return DECLINED;                 // not ours: let others try
 *       tok->data = apr_pstrcat(req->r->pool, "echo:", req->enrollment_id, NULL);
 *       tok->len = strlen(tok->data);
 *       return OK;
 *   }
 *   static void register_hooks(apr_pool_t *p)
 *   {
 *       gettoken_hook_generate_token(echo_generate, NULL, NULL, APR_HOOK_MIDDLE);
 *   }
 *
 * Return values of a hook function:
 *   OK        the token is in *tok; mod_gettoken answers 200 with it.
 *   DECLINED  the service type is not this function's; the next one runs.
 *             When every function declines, the answer is 400.
 *   an HTTP status (400..599): the request ends with that status.  Log one
 *             error line saying why before returning it.
 *
 * Load the module defining the hook function after mod_gettoken (LoadModule
 * order), so that gettoken_hook_generate_token resolves.
 */
#ifndef MOD_GETTOKEN_H
#define MOD_GETTOKEN_H

#include "httpd.h"
#include "apr_hooks.h"
#include "apr_optional.h"
#include "apr_tables.h"

#ifdef __cplusplus
extern "C" {
#endif

#if !defined(WIN32)
#define GETTOKEN_DECLARE(type)        type
#define GETTOKEN_DECLARE_NONSTD(type) type
#define GETTOKEN_DECLARE_DATA
#elif defined(GETTOKEN_DECLARE_STATIC)
#define GETTOKEN_DECLARE(type)        type __stdcall
#define GETTOKEN_DECLARE_NONSTD(type) type
#define GETTOKEN_DECLARE_DATA
#elif defined(GETTOKEN_DECLARE_EXPORT)
#define GETTOKEN_DECLARE(type)        __declspec(dllexport) type __stdcall
#define GETTOKEN_DECLARE_NONSTD(type) __declspec(dllexport) type
#define GETTOKEN_DECLARE_DATA         __declspec(dllexport)
#else
#define GETTOKEN_DECLARE(type)        __declspec(dllimport) type __stdcall
#define GETTOKEN_DECLARE_NONSTD(type) __declspec(dllimport) type
#define GETTOKEN_DECLARE_DATA         __declspec(dllimport)
#endif

/* The service types mod_gettoken implements itself. */
#define GETTOKEN_SERVICE_MAID          "com.apple.maid"
#define GETTOKEN_SERVICE_WATCH_PAIRING "com.apple.watch.pairing"

/*
 * A validated GetToken check-in.  Every string is NUL-terminated UTF-8 from
 * the request pool; optional keys absent from the message are NULL.  The
 * message has been authenticated: the identity certificate was presented
 * and (unless GetTokenEnrollmentSQL is "none") bound to enrollment_id.
 */
typedef struct gettoken_request {
    request_rec *r;
    const char *service_type;        /* TokenServiceType */
    const char *udid;                /* UDID (device enrollments) */
    const char *enrollment_id;       /* the device-channel enrollment: UDID,
                                        else EnrollmentID */
    const char *user_enrollment_id;  /* EnrollmentID (user enrollments) */
    const char *enrollment_user_id;  /* EnrollmentUserID */
    const char *user_short_name;     /* UserShortName */
    const char *user_id;             /* UserID */
    const char *user_long_name;      /* UserLongName */
    /* TokenParameters: its string values by key (other value types are not
     * listed); NULL when the message has no TokenParameters. */
    apr_table_t *token_parameters;
    /* The identity certificate (DER) and its SHA-256, lowercase hex. */
    const unsigned char *identity_der;
    apr_size_t identity_der_len;
    const char *identity_sha256;
    /* Where the identity came from: "ssl", "mdm-signature" or "header". */
    const char *identity_source;
    /* The organisation (Apple Business/School Manager MDM server) the
     * device belongs to, whose key signs the built-in tokens: the name
     * GetTokenOrganizationSQL returned, or "default" for the vhost's own
     * GetTokenServerUUID / GetTokenSigningKey; and its server UUID (the iss
     * of the built-in tokens).  Never NULL when a hook runs.  Appended last
     * so that modules built against an older header keep working. */
    const char *organization;
    const char *organization_server_uuid;
} gettoken_request;

/* What a service fills in when it returns OK. */
typedef struct gettoken_token {
    const char *data;   /* the token bytes (UTF-8 for string tokens) */
    apr_size_t len;
    const char *jti;    /* optional: the token's unique id, for GETTOKEN_JTI */
} gettoken_token;

APR_DECLARE_EXTERNAL_HOOK(gettoken, GETTOKEN, int, generate_token,
                          (const gettoken_request *req, gettoken_token *tok))

/*
 * Watch-pairing verification, the watch MDM server's side.
 * Checks a com.apple.watch.pairing token against the trust of r->server:
 * signature by a GetTokenWatchPairingTrust key, service_type, iat/exp,
 * watch_udid, sth (SHA-256 of security_token) and single use of the jti.
 * Returns OK and sets *phone_udid and *issuer (from r->pool), or an HTTP
 * status: HTTP_FORBIDDEN for any token that must not be accepted,
 * HTTP_SERVICE_UNAVAILABLE when the replay store cannot be reached.
 *
 *   APR_OPTIONAL_FN_TYPE(gettoken_watch_verify) *verify =
 *       APR_RETRIEVE_OPTIONAL_FN(gettoken_watch_verify);
 */
APR_DECLARE_OPTIONAL_FN(int, gettoken_watch_verify,
                        (request_rec *r, const char *token,
                         const char *watch_udid, const char *security_token,
                         const char **phone_udid, const char **issuer));

#ifdef __cplusplus
}
#endif

#endif /* MOD_GETTOKEN_H */
