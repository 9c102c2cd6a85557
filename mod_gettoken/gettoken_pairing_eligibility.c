/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_pairing_eligibility.c - may this phone vouch for watches?
 *
 * The message-shape rules (a device-channel device enrollment asking for
 * its own UDID) cannot tell a supervised iPhone from a user enrollment
 * that sends its EnrollmentID as UDID, nor from an enrollment the MDM has
 * disabled.  GetTokenWatchPairingSQL asks the MDM's database, through
 * mod_dbd, the way the enrollment binding does: a row means yes.
 */
#include "gettoken_private.h"

#include "http_protocol.h"

APLOG_USE_MODULE(gettoken);

int gettoken_pairing_eligibility_startup(const gettoken_startup *st,
                                         server_rec *s,
                                         gettoken_server_conf *conf)
{
    gettoken_pairing_conf *pc = &conf->pairing;

    if (!conf->in_use || !pc->eligibility_sql)
        return OK;
    if (gettoken_dbd_require(s, st->pconf, "GetTokenWatchPairingSQL", "",
                             "") != OK)
        return !OK;
    pc->eligibility_label = gettoken_dbd_prepare(s, st->pconf,
                                                 pc->eligibility_sql,
                                                 "watch_pairing");
    return OK;
}

int gettoken_pairing_eligibility_check(const gettoken_request *req)
{
    request_rec *r = req->r;
    const gettoken_pairing_conf *pc = &gettoken_server_config(r->server)->pairing;
    const char *args[2];
    const char *err = NULL;
    int found = 0;

    if (!pc->eligibility_sql)
        return OK;      /* the message-shape rules stand alone */
    args[0] = req->udid;
    args[1] = req->identity_sha256 ? req->identity_sha256 : "";
    if (gettoken_dbd_exists(r, pc->eligibility_label, pc->eligibility_sql, 2,
                            args, &found, &err) != 0) {
        gettoken_log_refusal(r, HTTP_SERVICE_UNAVAILABLE,
                             GETTOKEN_SERVICE_WATCH_PAIRING
                             ": GetTokenWatchPairingSQL failed: %s", err);
        return gettoken_retry_later(r);
    }
    if (!found) {
        gettoken_log_refusal(r, HTTP_FORBIDDEN, GETTOKEN_SERVICE_WATCH_PAIRING
                             ": GetTokenWatchPairingSQL has no row for phone "
                             "%s with identity sha256 %s: this enrollment "
                             "may not vouch for watches",
                             ap_escape_logitem(r->pool, req->udid), args[1]);
        return HTTP_FORBIDDEN;
    }
    return OK;
}
