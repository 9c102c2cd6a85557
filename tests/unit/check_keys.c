/* Unit tests: loading signing keys and certificates, which keys can sign,
 * and that no form of pkcs11: URI lets a PIN into a log line. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "apr_pools.h"
#include "apr_strings.h"
#include "apr_tables.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "unit.h"
#include "unit_cert.h"
#include "core/gt_keys.h"
#include "jose/gt_jose.h"

static apr_pool_t *pool;
static EVP_PKEY *rsa2048, *rsa1024, *p256, *p384, *ed25519;
static char dir[] = "/tmp/gt-check-keys-XXXXXX";

static const char *write_key(const char *name, EVP_PKEY *key)
{
    const char *path = apr_pstrcat(pool, dir, "/", name, NULL);
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), 1);
    fclose(f);
    return path;
}

static const char *write_cert(const char *name, X509 *cert)
{
    const char *path = apr_pstrcat(pool, dir, "/", name, NULL);
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_X509(f, cert), 1);
    fclose(f);
    return path;
}

/* once, in the parent: the forked tests inherit the keys */
static void keygen(void)
{
    rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
    ed25519 = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
}

static void setup(void)
{
    apr_pool_create(&pool, NULL);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    ck_assert_ptr_nonnull(rsa2048);
    ck_assert_ptr_nonnull(rsa1024);
    ck_assert_ptr_nonnull(p256);
    ck_assert_ptr_nonnull(p384);
    ck_assert_ptr_nonnull(ed25519);
}

static void teardown(void)
{
    rmdir(dir);
    apr_pool_destroy(pool);
}

/* Loads the key back from its file, as start-up does; returns the alg. */
static const char *load_and_alg(const char *name, EVP_PKEY *key,
                                const char **why)
{
    const char *path = write_key(name, key);
    EVP_PKEY *loaded = gt_private_key_load(pool, path, why);

    unlink(path);
    ck_assert_msg(loaded != NULL, "%s did not load: %s", name, *why);
    ck_assert_int_eq(EVP_PKEY_eq(loaded, key), 1);
    return gt_jws_alg_for_key(loaded, why);
}

START_TEST(rsa_2048_signs_rs256)
{
    const char *why = NULL;
    ck_assert_str_eq(load_and_alg("rsa2048.pem", rsa2048, &why), "RS256");
}
END_TEST

START_TEST(rsa_1024_refused)
{
    const char *why = NULL;
    ck_assert_ptr_null(load_and_alg("rsa1024.pem", rsa1024, &why));
    ck_assert_ptr_nonnull(strstr(why, "2048"));
}
END_TEST

START_TEST(p256_signs_es256)
{
    const char *why = NULL;
    ck_assert_str_eq(load_and_alg("p256.pem", p256, &why), "ES256");
}
END_TEST

START_TEST(other_curves_refused)
{
    const char *why = NULL;
    ck_assert_ptr_null(load_and_alg("p384.pem", p384, &why));
    ck_assert_ptr_nonnull(strstr(why, "P-256"));
    why = NULL;
    ck_assert_ptr_null(load_and_alg("ed25519.pem", ed25519, &why));
    ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(unreadable_or_empty_file_refused)
{
    const char *why = NULL;
    const char *empty = apr_pstrcat(pool, dir, "/empty.pem", NULL);
    FILE *f;

    ck_assert_ptr_null(gt_private_key_load(pool, "/nonexistent/key.pem", &why));
    ck_assert_ptr_nonnull(strstr(why, "cannot be read"));
    f = fopen(empty, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a key\n", f);
    fclose(f);
    why = NULL;
    ck_assert_ptr_null(gt_private_key_load(pool, empty, &why));
    ck_assert_ptr_nonnull(strstr(why, "no unencrypted private key"));
    why = NULL;
    ck_assert_ptr_null(gt_certificate_load(pool, "/nonexistent/c.pem", &why));
    ck_assert_ptr_nonnull(why);
    unlink(empty);
}
END_TEST

START_TEST(key_and_certificate_match)
{
    const char *why = NULL;
    X509 *mine = unit_cert(rsa2048, "abm", NULL, NULL, 0);
    const char *path = write_cert("abm.pem", mine);
    X509 *loaded = gt_certificate_load(pool, path, &why);

    unlink(path);
    ck_assert_msg(loaded != NULL, "%s", why);
    ck_assert_int_eq(gt_certificate_matches_key(loaded, rsa2048), 1);
    ck_assert_int_eq(gt_certificate_matches_key(loaded, p256), 0);
    ck_assert_int_eq(gt_certificate_matches_key(loaded, rsa1024), 0);
    X509_free(mine);
}
END_TEST

START_TEST(public_keys_from_certificates_and_keys)
{
    const char *why = NULL;
    const char *path = apr_pstrcat(pool, dir, "/trust.pem", NULL);
    apr_array_header_t *keys = apr_array_make(pool, 2, sizeof(EVP_PKEY *));
    X509 *cert = unit_cert(rsa2048, "org-a", NULL, NULL, 0);
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_X509(f, cert), 1);
    ck_assert_int_eq(PEM_write_PUBKEY(f, p256), 1);
    fclose(f);
    ck_assert_int_eq(gt_public_keys_load(pool, path, keys, &why), 2);
    ck_assert_int_eq(EVP_PKEY_eq(APR_ARRAY_IDX(keys, 0, EVP_PKEY *), rsa2048), 1);
    ck_assert_int_eq(EVP_PKEY_eq(APR_ARRAY_IDX(keys, 1, EVP_PKEY *), p256), 1);
    ck_assert_int_eq(gt_public_keys_load(pool, "/nonexistent", keys, &why), -1);
    unlink(path);
    X509_free(cert);
}
END_TEST

/* ---- PINs never in a log line --------------------------------------------- */

#define PIN "SECRET123"

static const char *const uris_with_pin[] = {
    "pkcs11:token=t;object=k;pin-value=" PIN,
    "pkcs11:token=t;pin-value=" PIN ";object=k",
    "pkcs11:pin-value=" PIN,
    "pkcs11:token=t;object=k?pin-value=" PIN,
    "pkcs11:token=t;object=k?module-path=/usr/lib/x.so&pin-value=" PIN,
    "pkcs11:token=t;object=k?pin-value=" PIN "&module-path=/usr/lib/x.so",
    "pkcs11:token=t;object=k;pin-source=file:/etc/" PIN,
    "pkcs11:token=t;object=k?pin-source=|/bin/echo%20" PIN,
    "pkcs11:token=t;object=k;PIN-VALUE=" PIN,
    "PKCS11:token=t;object=k;Pin-Value=" PIN,
    "pkcs11:token=t;object=k?PIN-Source=" PIN,
    "pkcs11:token=t;object=k;pin%2Dvalue=" PIN,
    "pkcs11:token=t;object=k?%70%69%6E-value=" PIN,
    "pkcs11:token=t;object=k;pin%2dvalue=" PIN,
    "pkcs11:token=t;object=k;pin-value%3D" PIN,
    "pkcs11:token=t;object=k;pin-value=" PIN "?pin-value=" PIN
        "&pin-source=" PIN,
    "pkcs11:token=t;object=k;pin-value=%53%45%43%52%45%54%31%32%33",
    "pkcs11:token=t;object=k;pin-value=" PIN ";pin-value=" PIN,
    "pkcs11:token=t;object=k;pin-value=" PIN "&x=1",
};

START_TEST(pin_hidden_in_every_uri_form)
{
    const char *uri = uris_with_pin[_i];
    const char *shown = gt_key_location_for_log(pool, uri);

    ck_assert_ptr_nonnull(shown);
    ck_assert_msg(strstr(shown, PIN) == NULL && strstr(shown, "%53%45") == NULL,
                  "PIN shown: %s", shown);
    ck_assert_msg(strstr(shown, "(hidden)") != NULL, "no mark: %s", shown);
    /* the rest stays, so the line still says which key */
    ck_assert_msg(strstr(shown, "token=t") != NULL || _i == 2,
                  "token lost: %s", shown);
}
END_TEST

START_TEST(uri_without_pin_and_files_unchanged)
{
    ck_assert_str_eq(gt_key_location_for_log(pool, "/etc/keys/abm.pem"),
                     "/etc/keys/abm.pem");
    ck_assert_str_eq(gt_key_location_for_log(pool,
                         "pkcs11:token=t;object=k?module-path=/usr/lib/x.so"),
                     "pkcs11:token=t;object=k?module-path=/usr/lib/x.so");
    ck_assert_str_eq(gt_key_location_for_log(pool,
                         "pkcs11:token=t;object=k;pin-value=1234?a=b"),
                     "pkcs11:token=t;object=k;pin-value=(hidden)?a=b");
}
END_TEST

/* A failed pkcs11 load says why without the PIN, whatever the URI form. */
START_TEST(failed_pkcs11_load_never_quotes_the_pin)
{
    const char *why = NULL;
    EVP_PKEY *k = gt_private_key_load(pool, uris_with_pin[_i], &why);

    ck_assert_ptr_null(k);
    ck_assert_ptr_nonnull(why);
    ck_assert_ptr_null(strstr(why, PIN));
}
END_TEST

Suite *keys_suite(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("load");
    TCase *pins = tcase_create("pins");
    int n = (int)(sizeof(uris_with_pin) / sizeof(uris_with_pin[0]));

    keygen();
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, rsa_2048_signs_rs256);
    tcase_add_test(tc, rsa_1024_refused);
    tcase_add_test(tc, p256_signs_es256);
    tcase_add_test(tc, other_curves_refused);
    tcase_add_test(tc, unreadable_or_empty_file_refused);
    tcase_add_test(tc, key_and_certificate_match);
    tcase_add_test(tc, public_keys_from_certificates_and_keys);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(pins, setup, teardown);
    tcase_set_timeout(pins, 30);
    tcase_add_loop_test(pins, pin_hidden_in_every_uri_form, 0, n);
    tcase_add_test(pins, uri_without_pin_and_files_unchanged);
    tcase_add_loop_test(pins, failed_pkcs11_load_never_quotes_the_pin, 0, 3);
    suite_add_tcase(s, pins);
    return s;
}
