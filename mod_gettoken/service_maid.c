/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * service_maid.c - com.apple.maid: the token Apple's identity service asks
 * for when a Managed Apple Account signs in, proving the device belongs to
 * the organisation of this MDM (spec: "Support access management for
 * Managed Apple Accounts").  An ordinary implementation of the public
 * gettoken_generate_token hook.
 */
#include "gettoken_private.h"

#include "apr_strings.h"
#include "apr_time.h"
#include "http_protocol.h"

#include "core/gt_keys.h"
#include "core/gt_maid.h"

int gettoken_maid_generate(const gettoken_request *req, gettoken_token *tok)
{
    request_rec *r = req->r;
    const gettoken_organization *org;
    char *jti;
    const char *token, *why = NULL;

    if (strcmp(req->service_type, GETTOKEN_SERVICE_MAID) != 0)
        return DECLINED;
    /* the device's organisation: its key signs, its server UUID is iss */
    org = gettoken_organization_of(req);
    if (!org)
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN,
                               HTTP_INTERNAL_SERVER_ERROR, GTLOGNO(01601),
                               "no organisation was chosen");
    jti = apr_palloc(r->pool, GT_UUID_SIZE);
    token = gt_maid_token(r->pool, org->signing.signer,
                          org->server_uuid, apr_time_sec(apr_time_now()),
                          jti, &why);
    return gettoken_signed_answer(r, tok, token, jti, &org->signing,
                                  GTLOGNO(01602),
                                  "signing the com.apple.maid token", why);
}
