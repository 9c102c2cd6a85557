/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * service_phone_pairing.c - com.apple.watch.pairing, the phone MDM's side:
 * the phone asks for a token proving that the watch it is paired with
 * belongs to a phone enrolled here (spec: "Support Apple Watch pairing").
 * An ordinary implementation of the public gettoken_generate_token hook;
 * the token format is in core/gt_pairing.c, the watch MDM's side in
 * gettoken_watch_verify.c and gettoken_watch_enrollment.c.
 *
 * Which phones may vouch for watches: the message-shape rules (a
 * device-channel device enrollment asking for its own UDID) cannot tell a
 * supervised iPhone from a user enrollment that sends its EnrollmentID as
 * UDID, nor from an enrollment the MDM has disabled.
 * GetTokenWatchPairingSQL asks the MDM's database, through mod_dbd, the
 * way the enrollment binding does: a row means yes.
 */
#include "gettoken_private.h"
#include "gettoken_dbd.h"

#include "apr_strings.h"
#include "apr_time.h"
#include "http_protocol.h"

#include "core/gt_keys.h"
#include "core/gt_pairing.h"

/* How this service's refusals start, after "GetToken refused (<status>): " */
#define SERVICE GETTOKEN_SERVICE_WATCH_PAIRING ": "

/* The phone side's part of a vhost's configuration. */
struct gettoken_pairing_conf {
    apr_int64_t lifetime;              /* GetTokenWatchPairingLifetime */
    int lifetime_set;
    const char *eligibility_sql;       /* GetTokenWatchPairingSQL, or NULL */
    const char *eligibility_label;     /* its mod_dbd label, at start-up */
};

gettoken_pairing_conf *gettoken_pairing_create(apr_pool_t *p)
{
    gettoken_pairing_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->lifetime = GT_DEFAULT_PAIRING_LIFETIME;
    return conf;
}

gettoken_pairing_conf *gettoken_pairing_merge(apr_pool_t *p,
                                              const gettoken_pairing_conf *base,
                                              const gettoken_pairing_conf *add)
{
    gettoken_pairing_conf *conf = apr_pcalloc(p, sizeof(*conf));

    GETTOKEN_MERGE_FLAGGED(conf, base, add, lifetime, lifetime_set);
    conf->eligibility_sql = add->eligibility_sql ? add->eligibility_sql
                                                 : base->eligibility_sql;
    conf->eligibility_label = NULL;     /* prepared at start-up, per vhost */
    return conf;
}

const char *gettoken_set_pairing_sql(cmd_parms *cmd, void *dirv,
                                     const char *arg)
{
    gettoken_pairing_conf *conf = gettoken_server_config(cmd->server)->pairing;

    (void)dirv;
    return gettoken_parse_sql(cmd, arg, &conf->eligibility_sql);
}

const char *gettoken_set_pairing_lifetime(cmd_parms *cmd, void *dirv,
                                          const char *arg)
{
    gettoken_pairing_conf *conf = gettoken_server_config(cmd->server)->pairing;
    const char *err = gettoken_parse_number(cmd, arg, GT_PAIRING_MAX_LIFETIME,
                                            &conf->lifetime);

    (void)dirv;
    conf->lifetime_set = 1;
    return err;
}

int gettoken_pairing_eligibility_startup(const gettoken_startup *st,
                                         server_rec *s,
                                         gettoken_server_conf *conf)
{
    gettoken_pairing_conf *pc = conf->pairing;

    return gettoken_dbd_startup_statement(s, st->pconf, conf->in_use,
                                          "GetTokenWatchPairingSQL", "",
                                          pc->eligibility_sql, "watch_pairing",
                                          &pc->eligibility_label);
}

static int eligibility_check(const gettoken_request *req)
{
    request_rec *r = req->r;
    const gettoken_pairing_conf *pc =
        gettoken_server_config(r->server)->pairing;
    const char *args[2];
    const char *err = NULL;
    int found = 0;

    if (!pc->eligibility_sql)
        return OK;      /* the message-shape rules stand alone */
    args[0] = req->udid;
    args[1] = req->identity_sha256 ? req->identity_sha256 : "";
    if (gettoken_dbd_exists(r, pc->eligibility_label, pc->eligibility_sql, 2,
                            args, &found, &err) != 0)
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_SERVICE_UNAVAILABLE,
                               GTLOGNO(01701),
                               SERVICE "GetTokenWatchPairingSQL failed: %s",
                               err);
    if (!found)
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_FORBIDDEN,
                               GTLOGNO(01702),
                               SERVICE "GetTokenWatchPairingSQL has no row for "
                               "phone %s with identity sha256 %s: this "
                               "enrollment may not vouch for watches",
                               ap_escape_logitem(r->pool, req->udid), args[1]);
    return OK;
}

/* Why this message may not ask for a pairing token, or NULL.  Apple's
 * phone asks on the device channel of a device enrollment: a user
 * enrollment (EnrollmentID) or a user-channel message (UserID,
 * UserShortName, EnrollmentUserID) does not speak for the phone. */
static const char *not_a_phone(const gettoken_request *req)
{
    if (!req->udid)
        return "not a device enrollment (no UDID)";
    if (req->user_enrollment_id)
        return "not a device enrollment (EnrollmentID present)";
    if (req->user_id || req->user_short_name || req->enrollment_user_id)
        return "not the device channel (UserID, UserShortName or "
               "EnrollmentUserID present)";
    return NULL;
}

/* TokenParameters and the message: may this phone ask, for this watch?
 * OK with the three values, or the refusal (logged). */
static int check_parameters(const gettoken_request *req,
                            const char **security_token, const char **phone,
                            const char **watch)
{
    request_rec *r = req->r;
    const char *why;

    *security_token = *phone = *watch = NULL;
    if (req->token_parameters) {
        *security_token = apr_table_get(req->token_parameters, "SecurityToken");
        *phone = apr_table_get(req->token_parameters, "PhoneUDID");
        *watch = apr_table_get(req->token_parameters, "WatchUDID");
    }
    if (!*security_token || !**security_token || !*phone || !**phone
        || !*watch || !**watch)
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_BAD_REQUEST,
                               GTLOGNO(01703), SERVICE "TokenParameters must "
                               "hold SecurityToken, PhoneUDID and WatchUDID");
    if (strlen(*security_token) > GT_PAIRING_MAX_SECRET)
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_BAD_REQUEST,
                               GTLOGNO(01704), SERVICE "SecurityToken is too "
                               "long");
    if (!gt_pairing_id_ok(*phone) || !gt_pairing_id_ok(*watch))
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_BAD_REQUEST,
                               GTLOGNO(01705), SERVICE "PhoneUDID or WatchUDID "
                               "is not a plausible device identifier");
    why = not_a_phone(req);
    if (why)
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_FORBIDDEN,
                               GTLOGNO(01706), SERVICE "only a phone's device "
                               "channel may ask: %s (enrollment %s)", why,
                               ap_escape_logitem(r->pool, req->enrollment_id));
    /* the phone vouches only for itself: the authenticated enrollment */
    if (strcmp(*phone, req->udid) != 0)
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_FORBIDDEN,
                               GTLOGNO(01707), SERVICE "UDID mismatch: "
                               "PhoneUDID %s is not the UDID of the "
                               "authenticated enrollment %s",
                               ap_escape_logitem(r->pool, *phone),
                               ap_escape_logitem(r->pool, req->enrollment_id));
    return OK;
}

int gettoken_watch_pairing_generate(const gettoken_request *req,
                                    gettoken_token *tok)
{
    request_rec *r = req->r;
    const gettoken_server_conf *conf;
    const gettoken_organization *org;
    const char *security_token = NULL, *phone = NULL, *watch = NULL;
    const char *token, *why = NULL;
    char *jti;
    int status;

    if (strcmp(req->service_type, GETTOKEN_SERVICE_WATCH_PAIRING) != 0)
        return DECLINED;
    conf = gettoken_server_config(r->server);
    status = check_parameters(req, &security_token, &phone, &watch);
    if (status == OK)
        status = eligibility_check(req);
    if (status != OK)
        return status;
    /* the device's organisation signs (GetTokenWatchPairingKey replaces
     * the default organisation's key only) */
    org = gettoken_organization_of(req);
    if (!org || !org->pairing.signer)
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN,
                               HTTP_INTERNAL_SERVER_ERROR, GTLOGNO(01708),
                               SERVICE "no pairing key for the device's "
                               "organisation");

    jti = apr_palloc(r->pool, GT_UUID_SIZE);
    token = gt_pairing_token(r->pool, org->pairing.signer,
                             org->server_uuid, apr_time_sec(apr_time_now()),
                             conf->pairing->lifetime, phone, watch,
                             security_token, jti, &why);
    return gettoken_signed_answer(r, tok, token, jti, &org->pairing,
                                  GTLOGNO(01709), SERVICE "signing the token",
                                  why);
}
