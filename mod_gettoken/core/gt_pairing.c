/*
 * gt_pairing.c - com.apple.watch.pairing claims (see gt_pairing.h).
 */
#include "gt_pairing.h"
#include "gt_checkin.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "apr_strings.h"

#include <openssl/crypto.h>
#include <plist/plist.h>

#include "../jose/gt_jose.h"
#include "../jose/gt_json.h"

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
                             const char *security_token, char jti_out[37],
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
        ",\"jti\":\"%s\",\"service_type\":\"" GT_PAIRING_SERVICE "\","
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
    obj = gt_json_parse_object(pool, (const char *)payload, payload_len, 32,
                               why);
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

gt_pairing_result gt_pairing_check(apr_pool_t *pool, const char *payload,
                                   apr_size_t len, apr_int64_t now,
                                   const char *watch_udid,
                                   const char *security_token,
                                   gt_pairing_claims *out, const char **why)
{
    apr_array_header_t *obj;
    const char *service, *sth;

    memset(out, 0, sizeof(*out));
    obj = gt_json_parse_object(pool, payload, len, 32, why);
    if (!obj)
        return GT_PAIRING_MALFORMED;
    /* unknown claims are ignored (RFC 7519 §4); the known ones are strict */
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
    if (strcmp(service, GT_PAIRING_SERVICE) != 0) {
        *why = "service_type is not " GT_PAIRING_SERVICE;
        return GT_PAIRING_WRONG_SERVICE;
    }
    if (out->exp <= out->iat || out->exp - out->iat > GT_PAIRING_MAX_LIFETIME) {
        *why = apr_psprintf(pool, "exp - iat is %" APR_INT64_T_FMT " s, not "
                            "within 1..%d", out->exp - out->iat,
                            GT_PAIRING_MAX_LIFETIME);
        return GT_PAIRING_BAD_LIFETIME;
    }
    if (out->iat > now + GT_PAIRING_SKEW) {
        *why = apr_psprintf(pool, "issued %" APR_INT64_T_FMT " s in the "
                            "future", out->iat - now);
        return GT_PAIRING_NOT_YET_VALID;
    }
    if (now > out->exp + GT_PAIRING_SKEW) {
        *why = apr_psprintf(pool, "expired %" APR_INT64_T_FMT " s ago",
                            now - out->exp);
        return GT_PAIRING_EXPIRED;
    }
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

/* TokenData: <data> (the token's UTF-8 bytes, as GetToken answers it) or
 * <string>. */
static const char *plist_token(apr_pool_t *pool, plist_t node)
{
    const char *d;
    uint64_t n = 0;

    if (node && plist_get_node_type(node) == PLIST_DATA) {
        d = plist_get_data_ptr(node, &n);
        if (!d || n == 0 || n > GT_JWS_MAX_TOKEN || memchr(d, '\0', (size_t)n))
            return NULL;
        return apr_pstrmemdup(pool, d, (apr_size_t)n);
    }
    return gt_plist_string(pool, node);
}

int gt_pairing_parse_verify_request(apr_pool_t *pool, const char *buf,
                                    apr_size_t len,
                                    const gt_plist_limits *lim,
                                    const char **token,
                                    const char **watch_udid,
                                    const char **security_token,
                                    const char **why)
{
    plist_t root = NULL;
    gt_bounds_result bounds;

    bounds = gt_plist_parse_bounded(pool, buf, len, lim, &root);
    if (bounds != GT_BOUNDS_OK) {
        *why = gt_bounds_reason(bounds);
        return -1;
    }
    if (!root) {
        *why = "the body is not a well-formed plist";
        return -1;
    }
    if (plist_get_node_type(root) != PLIST_DICT) {
        *why = "the body is not a plist dict";
        return -1;
    }
    *token = plist_token(pool, plist_dict_get_item(root, "TokenData"));
    *watch_udid = gt_plist_string(pool, plist_dict_get_item(root, "WatchUDID"));
    *security_token = gt_plist_string(pool, plist_dict_get_item(root,
                                                             "SecurityToken"));
    if (!*token || !**token || !*watch_udid || !**watch_udid
        || !*security_token || !**security_token) {
        *why = "TokenData (data or string), WatchUDID and SecurityToken "
               "(non-empty strings) are required";
        return -1;
    }
    return 0;
}

static const char *xml_escape(apr_pool_t *pool, const char *s)
{
    apr_size_t n = 0, i;
    char *out, *o;

    for (i = 0; s[i]; i++)
        n += s[i] == '&' ? 5 : (s[i] == '<' || s[i] == '>') ? 4 : 1;
    out = o = apr_palloc(pool, n + 1);
    for (i = 0; s[i]; i++) {
        if (s[i] == '&') { memcpy(o, "&amp;", 5); o += 5; }
        else if (s[i] == '<') { memcpy(o, "&lt;", 4); o += 4; }
        else if (s[i] == '>') { memcpy(o, "&gt;", 4); o += 4; }
        else *o++ = s[i];
    }
    *o = '\0';
    return out;
}

const char *gt_pairing_verify_response_xml(apr_pool_t *pool,
                                           const char *phone_udid,
                                           const char *issuer,
                                           apr_size_t *out_len)
{
    const char *xml = apr_pstrcat(pool,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" "
        "\"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n"
        "<plist version=\"1.0\">\n<dict>\n"
        "\t<key>PhoneUDID</key>\n\t<string>", xml_escape(pool, phone_udid),
        "</string>\n\t<key>Issuer</key>\n\t<string>", xml_escape(pool, issuer),
        "</string>\n</dict>\n</plist>\n", NULL);
    *out_len = strlen(xml);
    return xml;
}
