/* Unit tests: strict JSON, JWS verification, com.apple.watch.pairing claims
 * and the verify endpoint's plist request/answer. */
#include <string.h>

#include "apr_pools.h"
#include "apr_strings.h"
#include "apr_tables.h"

#include <openssl/evp.h>

#include "unit.h"
#include "core/gt_pairing.h"
#include "jose/gt_jose.h"
#include "jose/gt_json.h"

static apr_pool_t *pool;
static EVP_PKEY *rsa_key, *rsa_key2, *ec_key;

#define NOW 1700000000
#define WATCH "00008006-0009AABBCCDD001E"
#define PHONE "00008110-000A1B2C3D4E5F60"
#define SECRET "watch-security-token"
#define ISS "3f2b8c1e-1111-4222-8333-444455556666"

/* once, in the parent: the forked tests inherit the keys */
static void keygen(void)
{
    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa_key2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

static void setup(void)
{
    apr_pool_create(&pool, NULL);
    ck_assert_ptr_nonnull(rsa_key);
    ck_assert_ptr_nonnull(rsa_key2);
    ck_assert_ptr_nonnull(ec_key);
}

static void teardown(void)
{
    apr_pool_destroy(pool);
}

static apr_array_header_t *keys(EVP_PKEY *a, EVP_PKEY *b)
{
    apr_array_header_t *k = apr_array_make(pool, 2, sizeof(EVP_PKEY *));
    if (a) APR_ARRAY_PUSH(k, EVP_PKEY *) = a;
    if (b) APR_ARRAY_PUSH(k, EVP_PKEY *) = b;
    return k;
}

static const char *json_why;
static apr_array_header_t *json(const char *s)
{
    json_why = NULL;
    return gt_json_parse_object(pool, s, strlen(s), 16, &json_why);
}

/* ---- JSON --------------------------------------------------------------- */

START_TEST(json_flat_object)
{
    apr_array_header_t *o = json(" {\"a\":\"x\\u00e9\\n\\ud83d\\ude00\", \"b\":-12,"
                                 "\"c\":true,\"d\":false,\"e\":null,\"f\":0} ");
    const gt_json_member *m;

    ck_assert_ptr_nonnull(o);
    ck_assert_int_eq(o->nelts, 6);
    m = gt_json_get(o, "a");
    ck_assert_int_eq(m->type, GT_JSON_STRING);
    ck_assert_str_eq(m->str, "x\xc3\xa9\n\xf0\x9f\x98\x80");
    ck_assert_int_eq(gt_json_get(o, "b")->num, -12);
    ck_assert_int_eq(gt_json_get(o, "c")->type, GT_JSON_TRUE);
    ck_assert_int_eq(gt_json_get(o, "e")->type, GT_JSON_NULL);
    ck_assert_ptr_null(gt_json_get(o, "z"));
    ck_assert_ptr_nonnull(json("{}"));
    ck_assert_int_eq(json("{\"n\":9223372036854775807}")->nelts, 1);
}
END_TEST

START_TEST(json_refusals)
{
    static const char *const bad[] = {
        "", "[]", "\"s\"", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}",
        "{\"a\":1 \"b\":2}", "{a:1}", "{\"a\":1}x", "{\"a\":1}{}",
        "{\"a\":{\"b\":1}}", "{\"a\":[1]}", "{\"a\":1.0}", "{\"a\":1e3}",
        "{\"a\":01}", "{\"a\":-}", "{\"a\":9223372036854775808}",
        "{\"a\":tru}", "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\udc00x\"}", "{\"a\":\"\\x\"}", "{\"a\":\"\x01\"}",
        "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xff\"}",
        "{\"a\":\"abc", "{\"a\":1,\"a\":2}", "{\"iss\":1,\"i\\u0073s\":2}",
        "{\"a\":+1}",
    };
    size_t i;

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_msg(json(bad[i]) == NULL, "accepted: %s", bad[i]);
        ck_assert_ptr_nonnull(json_why);
    }
    /* embedded NUL in the raw bytes */
    ck_assert_ptr_null(gt_json_parse_object(pool, "{\"a\":\"x\0y\"}", 11, 4,
                                            &json_why));
    /* member cap */
    ck_assert_ptr_null(gt_json_parse_object(pool, "{\"a\":1,\"b\":2,\"c\":3}",
                                            19, 2, &json_why));
}
END_TEST

/* ---- JWS ---------------------------------------------------------------- */

static gt_jws_result verify(const char *tok, apr_array_header_t *k,
                            const char **payload)
{
    const char *why = NULL, *p = NULL;
    apr_size_t n = 0;
    gt_jws_result res = gt_jws_verify(pool, tok, strlen(tok), k, &p, &n, &why);
    if (res != GT_JWS_VALID)
        ck_assert_ptr_nonnull(why);
    if (payload)
        *payload = p;
    return res;
}

/* `alg` is what the key's type implies; the signer picks it itself. */
static const gt_jws_signer *signer_for(EVP_PKEY *key, const char *alg)
{
    const char *why = NULL;
    gt_jws_signer *s = gt_jws_signer_create(pool, key, &why);
    ck_assert_msg(s != NULL, "%s", why);
    ck_assert_str_eq(gt_jws_signer_alg(s), alg);
    return s;
}

static const char *sign(EVP_PKEY *key, const char *alg, const char *claims)
{
    const char *why = NULL;
    const char *t = gt_jws_sign(pool, signer_for(key, alg), claims, &why);
    ck_assert_ptr_nonnull(t);
    return t;
}

/* A token with `header` (JSON) over the parts of `tok` after its header. */
static const char *with_header(const char *tok, const char *header)
{
    return apr_pstrcat(pool, gt_b64url_encode(pool, (const unsigned char *)header,
                                              strlen(header)),
                       strchr(tok, '.'), NULL);
}

START_TEST(jws_round_trip)
{
    const char *p = NULL;
    const char *rs = sign(rsa_key, "RS256", "{\"x\":1}");
    const char *es = sign(ec_key, "ES256", "{\"y\":2}");

    ck_assert_int_eq(verify(rs, keys(rsa_key, NULL), &p), GT_JWS_VALID);
    ck_assert_str_eq(p, "{\"x\":1}");
    ck_assert_int_eq(verify(es, keys(rsa_key, ec_key), &p), GT_JWS_VALID);
    ck_assert_str_eq(p, "{\"y\":2}");
    /* the second trusted key of the same type is tried too */
    ck_assert_int_eq(verify(rs, keys(rsa_key2, rsa_key), NULL), GT_JWS_VALID);
}
END_TEST

START_TEST(jws_untrusted_and_tampered)
{
    const char *rs = sign(rsa_key, "RS256", "{\"x\":1}");
    const char *es = sign(ec_key, "ES256", "{\"y\":2}");
    char *t;
    size_t i, n;

    /* another organisation's key */
    ck_assert_int_eq(verify(rs, keys(rsa_key2, NULL), NULL), GT_JWS_BAD_SIGNATURE);
    /* no key of the alg's type */
    ck_assert_int_eq(verify(es, keys(rsa_key, NULL), NULL), GT_JWS_NO_KEY);
    ck_assert_int_eq(verify(rs, keys(NULL, NULL), NULL), GT_JWS_NO_KEY);
    /* the header says RS256 on an ES256 signature */
    ck_assert_int_ne(verify(with_header(es, "{\"alg\":\"RS256\",\"typ\":\"JWT\"}"),
                            keys(rsa_key, ec_key), NULL), GT_JWS_VALID);
    /* a changed payload, same signature */
    t = apr_pstrdup(pool, rs);
    {
        const char *other = gt_b64url_encode(pool, (const unsigned char *)"{\"x\":2}", 7);
        char *d1 = strchr(t, '.'), *d2 = strchr(d1 + 1, '.');
        t = apr_pstrcat(pool, apr_pstrndup(pool, t, (apr_size_t)(d1 - t + 1)),
                        other, d2, NULL);
    }
    ck_assert_int_eq(verify(t, keys(rsa_key, NULL), NULL), GT_JWS_BAD_SIGNATURE);
    /* every byte of the signature, altered in turn (ES256: all 86 chars) */
    n = strlen(es);
    for (i = (size_t)(strrchr(es, '.') - es) + 1; i < n; i++) {
        t = apr_pstrdup(pool, es);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        ck_assert_msg(verify(t, keys(ec_key, NULL), NULL) != GT_JWS_VALID,
                      "altered signature char %zu accepted", i);
    }
    /* truncated anywhere */
    for (i = 0; i < n; i += 7)
        ck_assert_int_ne(verify(apr_pstrndup(pool, rs, i), keys(rsa_key, NULL),
                                NULL), GT_JWS_VALID);
    ck_assert_int_ne(verify(apr_pstrndup(pool, rs, strlen(rs) - 1),
                            keys(rsa_key, NULL), NULL), GT_JWS_VALID);
}
END_TEST

START_TEST(jws_header_refusals)
{
    const char *rs = sign(rsa_key, "RS256", "{\"x\":1}");
    apr_array_header_t *k = keys(rsa_key, ec_key);

    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"none\"}"), k, NULL),
                     GT_JWS_ALG_REFUSED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"),
                            k, NULL), GT_JWS_ALG_REFUSED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"PS256\"}"), k, NULL),
                     GT_JWS_ALG_REFUSED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"rs256\"}"), k, NULL),
                     GT_JWS_ALG_REFUSED);
    ck_assert_int_eq(verify(with_header(rs, "{\"typ\":\"JWT\"}"), k, NULL),
                     GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"RS256\",\"crit\":\"b64\"}"),
                            k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"RS256\",\"jku\":\"http://x\"}"),
                            k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"RS256\",\"typ\":\"JOSE\"}"),
                            k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"RS256\",\"alg\":\"none\"}"),
                            k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":256}"), k, NULL),
                     GT_JWS_MALFORMED);
    /* a kid is allowed, but the signature covers the original header */
    ck_assert_int_eq(verify(with_header(rs, "{\"alg\":\"RS256\",\"kid\":\"1\"}"),
                            k, NULL), GT_JWS_BAD_SIGNATURE);
    /* "none" with an empty signature */
    ck_assert_int_ne(verify(apr_pstrcat(pool, "eyJhbGciOiJub25lIn0.",
                                        "eyJ4IjoxfQ.", NULL), k, NULL),
                     GT_JWS_VALID);
}
END_TEST

START_TEST(jws_shape_refusals)
{
    const char *rs = sign(rsa_key, "RS256", "{\"x\":1}");
    apr_array_header_t *k = keys(rsa_key, NULL);
    char *big = apr_palloc(pool, GT_JWS_MAX_TOKEN + 2);

    ck_assert_int_eq(verify("", k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify("a.b", k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify("a.b.c.d", k, NULL), GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(apr_pstrcat(pool, rs, ".", NULL), k, NULL),
                     GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(apr_pstrcat(pool, rs, "=", NULL), k, NULL),
                     GT_JWS_MALFORMED);
    ck_assert_int_eq(verify(apr_pstrcat(pool, " ", rs, NULL), k, NULL),
                     GT_JWS_MALFORMED);
    memset(big, 'A', GT_JWS_MAX_TOKEN + 1);
    big[GT_JWS_MAX_TOKEN + 1] = '\0';
    big[10] = '.';
    big[20] = '.';
    ck_assert_int_eq(verify(big, k, NULL), GT_JWS_MALFORMED);
}
END_TEST

/* ---- pairing claims ----------------------------------------------------- */

static gt_pairing_result check_at(const char *tok, apr_int64_t now,
                                  const char *watch, const char *secret,
                                  gt_pairing_claims *c)
{
    const char *p = NULL, *why = NULL;
    gt_pairing_result res;

    ck_assert_int_eq(verify(tok, keys(rsa_key, ec_key), &p), GT_JWS_VALID);
    res = gt_pairing_check(pool, p, strlen(p), now, watch, secret, c, &why);
    if (res != GT_PAIRING_OK)
        ck_assert_ptr_nonnull(why);
    return res;
}

static const char *issue(EVP_PKEY *key, const char *alg, apr_int64_t now,
                         apr_int64_t lifetime, char jti[37])
{
    const char *why = NULL;
    const char *t = gt_pairing_token(pool, signer_for(key, alg), ISS, now, lifetime, PHONE,
                                     WATCH, SECRET, jti, &why);
    ck_assert_msg(t != NULL, "%s", why);
    return t;
}

START_TEST(pairing_round_trip)
{
    char jti[37], jti2[37];
    gt_pairing_claims c;
    const char *t = issue(rsa_key, "RS256", NOW, 300, jti);
    const char *e = issue(ec_key, "ES256", NOW, 300, jti2);

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
    char jti[37];
    gt_pairing_claims c;
    const char *t = issue(rsa_key, "RS256", NOW, 300, jti);

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
    ck_assert_int_eq(check_at(issue(rsa_key, "RS256", NOW, 86401, jti), NOW,
                              WATCH, SECRET, &c), GT_PAIRING_BAD_LIFETIME);
    ck_assert_int_eq(check_at(issue(rsa_key, "RS256", NOW, 0, jti), NOW,
                              WATCH, SECRET, &c), GT_PAIRING_BAD_LIFETIME);
}
END_TEST

/* Claims signed as they are: only the claim checks can refuse them. */
static gt_pairing_result check_claims(const char *claims)
{
    gt_pairing_claims c;
    return check_at(sign(rsa_key, "RS256", claims), NOW, WATCH, SECRET, &c);
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
    const char *w = NULL, *s = NULL, *why = NULL;
    gt_plist_limits lim = { 8, 256, GT_PLIST_MAX_EXPANDED };
    int rc = gt_pairing_parse_verify_request(pool, body, strlen(body), &lim,
                                             tok, &w, &s, &why);
    if (rc == 0) {
        ck_assert_str_eq(w, WATCH);
        ck_assert_str_eq(s, SECRET);
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
    gt_jws_signer *signer = gt_jws_signer_create(pool, ec_key, &why);
    char jti[37];

    a->issuer = ISS;
    a->keys = keys(ec_key, NULL);
    b->issuer = "0b0b0b0b-1111-4222-8333-444455556666";
    b->keys = keys(rsa_key, NULL);
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
    Suite *s = suite_create("pairing");
    TCase *tc = tcase_create("pairing");

    tcase_add_unchecked_fixture(tc, keygen, NULL);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, json_flat_object);
    tcase_add_test(tc, json_refusals);
    tcase_add_test(tc, jws_round_trip);
    tcase_add_test(tc, jws_untrusted_and_tampered);
    tcase_add_test(tc, jws_header_refusals);
    tcase_add_test(tc, jws_shape_refusals);
    tcase_add_test(tc, pairing_round_trip);
    tcase_add_test(tc, pairing_time_and_binding);
    tcase_add_test(tc, pairing_claim_refusals);
    tcase_add_test(tc, pairing_ids);
    tcase_add_test(tc, verify_request_plist);
    tcase_add_test(tc, verify_response_xml);
    tcase_add_test(tc, pairing_trust_per_issuer);
    suite_add_tcase(s, tc);
    return s;
}
