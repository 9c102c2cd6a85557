/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* gt_pairing: com.apple.watch.pairing claims, trust per issuer, and the
 * verify endpoint's plist request and answer. */
#include <string.h>

#include "apr_pools.h"
#include "apr_strings.h"
#include "apr_tables.h"

#include <openssl/evp.h>

#include "unit.h"
#include "core/gt_pairing.h"
#include "jose/gt_jose.h"
#include "unit_keys.h"

static apr_pool_t *pool;

#define NOW 1700000000
#define WATCH "00008006-0009AABBCCDD001E"
#define PHONE "00008110-000A1B2C3D4E5F60"
#define SECRET "watch-security-token"
#define ISS "3f2b8c1e-1111-4222-8333-444455556666"

static void setup(void) { ck_assert_int_eq(apr_pool_create(&pool, NULL), APR_SUCCESS); }
static void teardown(void) { apr_pool_destroy(pool); }

/* ---- pairing claims ----------------------------------------------------- */

static gt_pairing_result check_at(const char *tok, apr_int64_t now,
                                  const char *watch, const char *secret,
                                  gt_pairing_claims *c)
{
    const char *p = NULL, *why = NULL;
    apr_size_t n = 0;
    gt_pairing_result res;

    ck_assert_int_eq(gt_jws_verify(pool, tok, strlen(tok),
                                   unit_key_list(pool, unit_rsa2048, unit_p256),
                                   &p, &n, &why), GT_JWS_VALID);
    res = gt_pairing_check(pool, p, strlen(p), now, watch, secret, c, &why);
    if (res != GT_PAIRING_OK)
        ck_assert_ptr_nonnull(why);
    return res;
}

static const char *issue(EVP_PKEY *key, const char *alg, apr_int64_t now,
                         apr_int64_t lifetime, char jti[GT_UUID_SIZE])
{
    const char *why = NULL;
    const char *t = gt_pairing_token(pool, unit_signer(pool, key, alg), ISS, now, lifetime, PHONE,
                                     WATCH, SECRET, jti, &why);
    ck_assert_msg(t != NULL, "%s", why);
    return t;
}

START_TEST(pairing_round_trip)
{
    char jti[GT_UUID_SIZE], jti2[GT_UUID_SIZE];
    gt_pairing_claims c;
    const char *t = issue(unit_rsa2048, "RS256", NOW, 300, jti);
    const char *e = issue(unit_p256, "ES256", NOW, 300, jti2);

    ck_assert_int_eq(check_at(t, NOW + 5, WATCH, SECRET, &c), GT_PAIRING_OK);
    ck_assert_str_eq(c.iss, ISS);
    ck_assert_str_eq(c.jti, jti);
    ck_assert_str_eq(c.phone_udid, PHONE);
    ck_assert_str_eq(c.watch_udid, WATCH);
    ck_assert_str_eq(c.sth, gt_pairing_sth(pool, SECRET));
    ck_assert_int_eq(strlen(c.sth), 43);
    ck_assert_int_eq(c.iat, NOW);
    ck_assert_int_eq(c.exp, NOW + 300);
    ck_assert(gt_is_uuid(jti));
    ck_assert_str_ne(jti, jti2);
    ck_assert_int_eq(check_at(e, NOW, WATCH, SECRET, &c), GT_PAIRING_OK);
    /* within the clock skew on both ends */
    ck_assert_int_eq(check_at(t, NOW - GT_PAIRING_SKEW, WATCH, SECRET, &c),
                     GT_PAIRING_OK);
    ck_assert_int_eq(check_at(t, NOW + 300 + GT_PAIRING_SKEW, WATCH, SECRET, &c),
                     GT_PAIRING_OK);
}
END_TEST

START_TEST(pairing_time_and_binding)
{
    char jti[GT_UUID_SIZE];
    gt_pairing_claims c;
    const char *t = issue(unit_rsa2048, "RS256", NOW, 300, jti);

    ck_assert_int_eq(check_at(t, NOW + 300 + GT_PAIRING_SKEW + 1, WATCH, SECRET, &c),
                     GT_PAIRING_EXPIRED);
    ck_assert_str_eq(gt_pairing_reason(GT_PAIRING_EXPIRED), "expired");
    ck_assert_int_eq(check_at(t, NOW - GT_PAIRING_SKEW - 1, WATCH, SECRET, &c),
                     GT_PAIRING_NOT_YET_VALID);
    ck_assert_int_eq(check_at(t, NOW, "00008006-0009AABBCCDD001F", SECRET, &c),
                     GT_PAIRING_WATCH_MISMATCH);
    ck_assert_int_eq(check_at(t, NOW, WATCH "X", SECRET, &c),
                     GT_PAIRING_WATCH_MISMATCH);
    ck_assert_int_eq(check_at(t, NOW, WATCH, SECRET "x", &c),
                     GT_PAIRING_STH_MISMATCH);
    ck_assert_int_eq(check_at(t, NOW, WATCH, "", &c), GT_PAIRING_STH_MISMATCH);
    ck_assert_int_eq(check_at(issue(unit_rsa2048, "RS256", NOW, 86401, jti), NOW,
                              WATCH, SECRET, &c), GT_PAIRING_BAD_LIFETIME);
    ck_assert_int_eq(check_at(issue(unit_rsa2048, "RS256", NOW, 0, jti), NOW,
                              WATCH, SECRET, &c), GT_PAIRING_BAD_LIFETIME);
}
END_TEST

/* Claims signed as they are: only the claim checks can refuse them. */
static gt_pairing_result check_claims(const char *claims)
{
    gt_pairing_claims c;
    return check_at(unit_sign(pool, unit_rsa2048, "RS256", claims), NOW, WATCH, SECRET, &c);
}

#define GOOD_TAIL ",\"phone_udid\":\"" PHONE "\",\"watch_udid\":\"" WATCH "\""

START_TEST(pairing_claim_refusals)
{
    const char *sth = gt_pairing_sth(pool, SECRET);
    const char *jti = "\"jti\":\"0f0e0d0c-0b0a-4908-8706-050403020100\"";
    const char *ok = apr_pstrcat(pool, "{\"iss\":\"" ISS "\",\"iat\":1700000000,"
                                 "\"exp\":1700000300,", jti, ",\"service_type\":"
                                 "\"com.apple.watch.pairing\"" GOOD_TAIL
                                 ",\"sth\":\"", sth, "\",\"extra\":[1]}", NULL);

    /* nested value: malformed (the strict parser refuses arrays) */
    ck_assert_int_eq(check_claims(ok), GT_PAIRING_MALFORMED);
    ok = apr_pstrcat(pool, "{\"iss\":\"" ISS "\",\"iat\":1700000000,"
                     "\"exp\":1700000300,", jti, ",\"service_type\":"
                     "\"com.apple.watch.pairing\"" GOOD_TAIL ",\"sth\":\"", sth,
                     "\",\"aud\":\"x\"}", NULL);
    ck_assert_int_eq(check_claims(ok), GT_PAIRING_OK);   /* unknown: ignored */
    ck_assert_int_eq(check_claims(apr_pstrcat(pool, "{\"iss\":\"" ISS "\","
        "\"iat\":1700000000,\"exp\":1700000300,", jti, ",\"service_type\":"
        "\"com.apple.maid\"" GOOD_TAIL ",\"sth\":\"", sth, "\"}", NULL)),
        GT_PAIRING_WRONG_SERVICE);
    ck_assert_int_eq(check_claims(apr_pstrcat(pool, "{\"iss\":\"" ISS "\","
        "\"iat\":\"1700000000\",\"exp\":1700000300,", jti, ",\"service_type\":"
        "\"com.apple.watch.pairing\"" GOOD_TAIL ",\"sth\":\"", sth, "\"}", NULL)),
        GT_PAIRING_MALFORMED);
    ck_assert_int_eq(check_claims(apr_pstrcat(pool, "{\"iss\":\"" ISS "\","
        "\"iat\":1700000000,\"exp\":1700000300,\"jti\":\"not-a-uuid\","
        "\"service_type\":\"com.apple.watch.pairing\"" GOOD_TAIL ",\"sth\":\"",
        sth, "\"}", NULL)), GT_PAIRING_MALFORMED);
    ck_assert_int_eq(check_claims(apr_pstrcat(pool, "{\"iss\":\"" ISS "\","
        "\"iat\":1700000000,\"exp\":1700000300,", jti, ",\"service_type\":"
        "\"com.apple.watch.pairing\"" GOOD_TAIL "}", NULL)),
        GT_PAIRING_MALFORMED);                          /* no sth */
    ck_assert_int_eq(check_claims(apr_pstrcat(pool, "{\"iss\":\"\","
        "\"iat\":1700000000,\"exp\":1700000300,", jti, ",\"service_type\":"
        "\"com.apple.watch.pairing\"" GOOD_TAIL ",\"sth\":\"", sth, "\"}", NULL)),
        GT_PAIRING_MALFORMED);                          /* empty iss */
    ck_assert_int_eq(check_claims(apr_pstrcat(pool, "{\"iss\":\"" ISS "\","
        "\"iat\":1700000000,\"exp\":1699999999,", jti, ",\"service_type\":"
        "\"com.apple.watch.pairing\"" GOOD_TAIL ",\"sth\":\"", sth, "\"}", NULL)),
        GT_PAIRING_BAD_LIFETIME);
    ck_assert_int_eq(check_claims("{\"iss\":\"" ISS "\"}"), GT_PAIRING_MALFORMED);
}
END_TEST

START_TEST(pairing_ids)
{
    char many[GT_PAIRING_MAX_ID + 2];

    ck_assert(gt_pairing_id_ok(PHONE));
    ck_assert(!gt_pairing_id_ok(""));
    ck_assert(!gt_pairing_id_ok(NULL));
    ck_assert(!gt_pairing_id_ok("a b"));
    ck_assert(!gt_pairing_id_ok("a\nb"));
    memset(many, 'a', sizeof(many) - 1);
    many[sizeof(many) - 1] = '\0';
    ck_assert(!gt_pairing_id_ok(many));
    many[GT_PAIRING_MAX_ID] = '\0';
    ck_assert(gt_pairing_id_ok(many));
}
END_TEST

/* ---- verify endpoint plists --------------------------------------------- */

#define PL_HEAD "<?xml version=\"1.0\" encoding=\"UTF-8\"?><plist version=\"1.0\"><dict>"
#define PL_TAIL "</dict></plist>"

static int parse_req(const char *body, const char **tok)
{
    const char *why = NULL;
    gt_pairing_verify_request req = { NULL, NULL, NULL };
    gt_plist_limits lim = { 8, 256, GT_PLIST_MAX_EXPANDED };
    int rc = gt_pairing_parse_verify_request(pool, body, strlen(body), &lim,
                                             &req, &why);
    *tok = req.token;
    if (rc == 0) {
        ck_assert_str_eq(req.watch_udid, WATCH);
        ck_assert_str_eq(req.security_token, SECRET);
    }
    else
        ck_assert_ptr_nonnull(why);
    return rc;
}

START_TEST(verify_request_plist)
{
    const char *tok = NULL;
    const char *tail = "<key>WatchUDID</key><string>" WATCH "</string>"
                       "<key>SecurityToken</key><string>" SECRET "</string>" PL_TAIL;

    /* TokenData as <data>: base64 of "a.b.c" */
    ck_assert_int_eq(parse_req(apr_pstrcat(pool, PL_HEAD "<key>TokenData</key>"
                                           "<data>YS5iLmM=</data>", tail, NULL),
                               &tok), 0);
    ck_assert_str_eq(tok, "a.b.c");
    ck_assert_int_eq(parse_req(apr_pstrcat(pool, PL_HEAD "<key>TokenData</key>"
                                           "<string>x.y.z</string>", tail, NULL),
                               &tok), 0);
    ck_assert_str_eq(tok, "x.y.z");
    ck_assert_int_eq(parse_req(apr_pstrcat(pool, PL_HEAD, tail, NULL), &tok), -1);
    ck_assert_int_eq(parse_req(apr_pstrcat(pool, PL_HEAD "<key>TokenData</key>"
                                           "<integer>1</integer>", tail, NULL),
                               &tok), -1);
    ck_assert_int_eq(parse_req(PL_HEAD "<key>TokenData</key><string>a</string>"
                               "<key>WatchUDID</key><string>" WATCH "</string>"
                               PL_TAIL, &tok), -1);
    ck_assert_int_eq(parse_req("<?xml version=\"1.0\"?><plist><array/></plist>",
                               &tok), -1);
    ck_assert_int_eq(parse_req("TokenData=a.b.c&WatchUDID=x", &tok), -1);
    ck_assert_int_eq(parse_req("", &tok), -1);
}
END_TEST

START_TEST(verify_response_xml)
{
    apr_size_t n = 0;
    const char *x = gt_pairing_verify_response_xml(pool, "P<&>", ISS, &n);

    ck_assert_int_eq(n, strlen(x));
    ck_assert_ptr_nonnull(strstr(x, "<key>PhoneUDID</key>\n\t<string>P&lt;&amp;&gt;</string>"));
    ck_assert_ptr_nonnull(strstr(x, "<key>Issuer</key>\n\t<string>" ISS "</string>"));
}
END_TEST

/* Each issuer has its own keys; the iss is read before the signature only
 * to choose them. */
START_TEST(pairing_trust_per_issuer)
{
    const char *why = NULL, *tok;
    apr_array_header_t *trust = apr_array_make(pool, 2, sizeof(gt_pairing_trust));
    gt_pairing_trust *a = apr_array_push(trust), *b = apr_array_push(trust);
    gt_jws_signer *signer = gt_jws_signer_create(pool, unit_p256, &why);
    char jti[GT_UUID_SIZE];

    a->issuer = ISS;
    a->keys = unit_key_list(pool, unit_p256, NULL);
    b->issuer = "0b0b0b0b-1111-4222-8333-444455556666";
    b->keys = unit_key_list(pool, unit_rsa2048, NULL);
    ck_assert_ptr_eq(gt_pairing_trusted_keys(trust, ISS), a->keys);
    ck_assert_ptr_eq(gt_pairing_trusted_keys(trust,
                     "3F2B8C1E-1111-4222-8333-444455556666"), a->keys);
    ck_assert_ptr_eq(gt_pairing_trusted_keys(trust, b->issuer), b->keys);
    ck_assert_ptr_null(gt_pairing_trusted_keys(trust,
                       "3f2b8c1e-1111-4222-8333-444455556667"));

    ck_assert_ptr_nonnull(signer);
    tok = gt_pairing_token(pool, signer, ISS, NOW, 300, PHONE, WATCH, SECRET,
                           jti, &why);
    ck_assert_ptr_nonnull(tok);
    ck_assert_str_eq(gt_pairing_claimed_issuer(pool, tok, strlen(tok), &why), ISS);
    ck_assert_ptr_null(gt_pairing_claimed_issuer(pool, "abc", 3, &why));
    ck_assert_ptr_null(gt_pairing_claimed_issuer(pool, "a.!!.c", 6, &why));
    /* {"iss":5} and {} */
    ck_assert_ptr_null(gt_pairing_claimed_issuer(pool, "e30.eyJpc3MiOjV9.x", 18, &why));
    ck_assert_ptr_null(gt_pairing_claimed_issuer(pool, "e30.e30.x", 9, &why));
}
END_TEST

Suite *pairing_suite(void)
{
    UNIT_SUITE("pairing", setup, teardown, 60,
               pairing_round_trip, pairing_time_and_binding,
               pairing_claim_refusals, pairing_ids, verify_request_plist,
               verify_response_xml, pairing_trust_per_issuer);
}
