/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gt_pairing.c - com.apple.watch.pairing claims (see gt_pairing.h).
 */
#include "gt_pairing.h"

#include <string.h>
#include <strings.h>

#include "apr_strings.h"

#include <openssl/crypto.h>
#include <plist/plist.h>

#include "../jose/gt_jose.h"

const char *gt_pairing_sth(apr_pool_t *pool, const char *security_token)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;

    if (EVP_Digest(security_token, strlen(security_token), md, &md_len,
                   EVP_sha256(), NULL) != 1 || md_len != 32)
        return NULL;
    return gt_b64url_encode(pool, md, md_len);
}

int gt_pairing_id_ok(const char *s)
{
    apr_size_t n = 0;

    if (!s)
        return 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f
            || n >= GT_PAIRING_MAX_ID)
            return 0;
    return n > 0;
}

const char *gt_pairing_token(apr_pool_t *pool, const gt_jws_signer *signer,
                             const char *iss, apr_int64_t now,
                             apr_int64_t lifetime, const char *phone_udid,
                             const char *watch_udid,
                             const char *security_token, char jti_out[GT_UUID_SIZE],
                             const char **why)
{
    const char *sth = gt_pairing_sth(pool, security_token), *claims;

    if (!sth) {
        *why = "SHA-256 of the SecurityToken failed";
        return NULL;
    }
    if (gt_uuid_v4(jti_out) != 0) {
        *why = "the random number generator failed (jti)";
        return NULL;
    }
    claims = apr_psprintf(pool,
        "{\"iss\":%s,\"iat\":%" APR_INT64_T_FMT ",\"exp\":%" APR_INT64_T_FMT
        ",\"jti\":\"%s\",\"service_type\":\"" GT_SERVICE_WATCH_PAIRING "\","
        "\"phone_udid\":%s,\"watch_udid\":%s,\"sth\":\"%s\"}",
        gt_json_string(pool, iss), now, now + lifetime, jti_out,
        gt_json_string(pool, phone_udid), gt_json_string(pool, watch_udid),
        sth);
    return gt_jws_sign(pool, signer, claims, why);
}

const apr_array_header_t *gt_pairing_trusted_keys(
    const apr_array_header_t *trust, const char *iss)
{
    int i;

    if (!trust || !iss)
        return NULL;
    for (i = 0; i < trust->nelts; i++) {
        const gt_pairing_trust *t = &APR_ARRAY_IDX(trust, i, gt_pairing_trust);
        if (strcasecmp(t->issuer, iss) == 0)
            return t->keys;
    }
    return NULL;
}

const char *gt_pairing_claimed_issuer(apr_pool_t *pool, const char *token,
                                      apr_size_t len, const char **why)
{
    const char *dot1, *dot2, *end = token + len;
    unsigned char *payload = NULL;
    apr_size_t payload_len = 0;
    apr_array_header_t *obj;
    const gt_json_member *iss;

    *why = "not a compact JWS (header.payload.signature)";
    if (len > GT_JWS_MAX_TOKEN
        || !(dot1 = memchr(token, '.', len))
        || !(dot2 = memchr(dot1 + 1, '.', (apr_size_t)(end - dot1 - 1))))
        return NULL;
    if ((apr_size_t)(dot2 - dot1 - 1) > (GT_JWS_MAX_PAYLOAD / 3 + 1) * 4
        || gt_b64url_decode(pool, dot1 + 1, (apr_size_t)(dot2 - dot1 - 1),
                            &payload, &payload_len) != 0)
        return NULL;
    obj = gt_json_parse_object(pool, (const char *)payload, payload_len,
                               GT_PAIRING_MAX_CLAIMS, why);
    if (!obj)
        return NULL;
    iss = gt_json_get(obj, "iss");
    if (!iss || iss->type != GT_JSON_STRING || !gt_pairing_id_ok(iss->str)) {
        *why = "the iss claim is missing, not a string or not a plausible "
               "value";
        return NULL;
    }
    return iss->str;
}

/* A required string claim; NULL (and *why) when missing or mistyped. */
static const char *claim_string(const apr_array_header_t *obj,
                                const char *name, const char **why)
{
    const gt_json_member *m = gt_json_get(obj, name);

    if (!m || m->type != GT_JSON_STRING || !gt_pairing_id_ok(m->str)) {
        *why = "a required claim (iss, jti, service_type, phone_udid, "
               "watch_udid, sth) is missing, not a string or not a "
               "plausible value";
        return NULL;
    }
    return m->str;
}

static int claim_int(const apr_array_header_t *obj, const char *name,
                     apr_int64_t *out, const char **why)
{
    const gt_json_member *m = gt_json_get(obj, name);

    if (!m || m->type != GT_JSON_INT || m->num < 0) {
        *why = "iat or exp is missing or not a whole number of seconds";
        return -1;
    }
    *out = m->num;
    return 0;
}

/* Both strings compared in time that does not depend on where they differ. */
static int same_string(const char *a, const char *b)
{
    apr_size_t n = strlen(a);
    return n == strlen(b) && CRYPTO_memcmp(a, b, n) == 0;
}

/* The claims every pairing token carries, strictly typed; unknown claims
 * are ignored (RFC 7519 §4). */
static gt_pairing_result read_claims(apr_pool_t *pool, const char *payload,
                                     apr_size_t len, gt_pairing_claims *out,
                                     const char **why)
{
    apr_array_header_t *obj;
    const char *service;

    obj = gt_json_parse_object(pool, payload, len, GT_PAIRING_MAX_CLAIMS, why);
    if (!obj)
        return GT_PAIRING_MALFORMED;
    if (!(out->iss = claim_string(obj, "iss", why))
        || !(out->jti = claim_string(obj, "jti", why))
        || !(service = claim_string(obj, "service_type", why))
        || !(out->phone_udid = claim_string(obj, "phone_udid", why))
        || !(out->watch_udid = claim_string(obj, "watch_udid", why))
        || !(out->sth = claim_string(obj, "sth", why))
        || claim_int(obj, "iat", &out->iat, why) != 0
        || claim_int(obj, "exp", &out->exp, why) != 0)
        return GT_PAIRING_MALFORMED;
    if (!gt_is_uuid(out->jti)) {
        *why = "jti is not a UUID";
        return GT_PAIRING_MALFORMED;
    }
    if (strcmp(service, GT_SERVICE_WATCH_PAIRING) != 0) {
        *why = "service_type is not " GT_SERVICE_WATCH_PAIRING;
        return GT_PAIRING_WRONG_SERVICE;
    }
    return GT_PAIRING_OK;
}

/* iat and exp against `now`, with the clock skew tolerated. */
static gt_pairing_result check_times(apr_pool_t *pool,
                                     const gt_pairing_claims *c,
                                     apr_int64_t now, const char **why)
{
    if (c->exp <= c->iat || c->exp - c->iat > GT_PAIRING_MAX_LIFETIME) {
        *why = apr_psprintf(pool, "exp - iat is %" APR_INT64_T_FMT " s, not "
                            "within 1..%d", c->exp - c->iat,
                            GT_PAIRING_MAX_LIFETIME);
        return GT_PAIRING_BAD_LIFETIME;
    }
    if (c->iat > now + GT_PAIRING_SKEW) {
        *why = apr_psprintf(pool, "issued %" APR_INT64_T_FMT " s in the "
                            "future", c->iat - now);
        return GT_PAIRING_NOT_YET_VALID;
    }
    if (now > c->exp + GT_PAIRING_SKEW) {
        *why = apr_psprintf(pool, "expired %" APR_INT64_T_FMT " s ago",
                            now - c->exp);
        return GT_PAIRING_EXPIRED;
    }
    return GT_PAIRING_OK;
}

gt_pairing_result gt_pairing_check(apr_pool_t *pool, const char *payload,
                                   apr_size_t len, apr_int64_t now,
                                   const char *watch_udid,
                                   const char *security_token,
                                   gt_pairing_claims *out, const char **why)
{
    gt_pairing_result res;
    const char *sth;

    memset(out, 0, sizeof(*out));
    if ((res = read_claims(pool, payload, len, out, why)) != GT_PAIRING_OK
        || (res = check_times(pool, out, now, why)) != GT_PAIRING_OK)
        return res;
    if (!same_string(out->watch_udid, watch_udid)) {
        *why = "the token's watch_udid is not the WatchUDID presented";
        return GT_PAIRING_WATCH_MISMATCH;
    }
    if (!security_token)
        return GT_PAIRING_OK;   /* the caller looks sth up itself */
    sth = gt_pairing_sth(pool, security_token);
    if (!sth || !same_string(out->sth, sth)) {
        *why = "the token's sth is not the SHA-256 of the SecurityToken "
               "presented";
        return GT_PAIRING_STH_MISMATCH;
    }
    return GT_PAIRING_OK;
}

const char *gt_pairing_reason(gt_pairing_result res)
{
    switch (res) {
    case GT_PAIRING_OK:             return "valid";
    case GT_PAIRING_MALFORMED:      return "malformed claims";
    case GT_PAIRING_WRONG_SERVICE:  return "wrong service_type";
    case GT_PAIRING_NOT_YET_VALID:  return "not yet valid";
    case GT_PAIRING_EXPIRED:        return "expired";
    case GT_PAIRING_BAD_LIFETIME:   return "implausible lifetime";
    case GT_PAIRING_WATCH_MISMATCH: return "UDID mismatch";
    case GT_PAIRING_STH_MISMATCH:   return "SecurityToken mismatch";
    }
    return "refused";
}

/* ---- the verify endpoint's request and answer ---------------------------- */

int gt_pairing_parse_verify_request(apr_pool_t *pool, const char *buf,
                                    apr_size_t len, const gt_plist_limits *lim,
                                    gt_pairing_verify_request *req,
                                    const char **why)
{
    plist_t root = NULL;

    if (gt_plist_parse_dict(pool, buf, len, lim, &root, why) != GT_BOUNDS_OK)
        return -1;
    req->token = gt_plist_text(pool, plist_dict_get_item(root, "TokenData"),
                               GT_JWS_MAX_TOKEN);
    req->watch_udid = gt_plist_string(pool,
                                      plist_dict_get_item(root, "WatchUDID"));
    req->security_token = gt_plist_string(pool, plist_dict_get_item(
                                              root, "SecurityToken"));
    if (!req->token || !*req->token || !req->watch_udid || !*req->watch_udid
        || !req->security_token || !*req->security_token) {
        *why = "TokenData (data or string), WatchUDID and SecurityToken "
               "(non-empty strings) are required";
        return -1;
    }
    return 0;
}

const char *gt_pairing_verify_response_xml(apr_pool_t *pool,
                                           const char *phone_udid,
                                           const char *issuer,
                                           apr_size_t *out_len)
{
    const gt_plist_xml_entry answer[] = {
        { "PhoneUDID", phone_udid, NULL, 0 },
        { "Issuer", issuer, NULL, 0 },
    };

    return gt_plist_xml_dict(pool, answer, 2, out_len);
}
