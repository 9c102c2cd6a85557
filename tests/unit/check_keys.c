/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* Unit tests: loading signing keys and certificates, which keys can sign,
 * and that no form of pkcs11: URI lets a PIN into a log line. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "apr_pools.h"
#include "apr_strings.h"
#include "apr_tables.h"
#include "apr_thread_mutex.h"

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "unit.h"
#include "unit_cert.h"
#include "unit_keys.h"
#include "core/gt_keys.h"
#include "jose/gt_jose.h"

static apr_pool_t *pool;
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

static void setup(void)
{
    apr_pool_create(&pool, NULL);
    ck_assert_ptr_nonnull(mkdtemp(dir));
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
    EVP_PKEY *loaded = gt_private_key_load(pool, NULL, path, why);

    unlink(path);
    ck_assert_msg(loaded != NULL, "%s did not load: %s", name, *why);
    ck_assert_int_eq(EVP_PKEY_eq(loaded, key), 1);
    return gt_jws_alg_for_key(loaded, why);
}

/* Which keys may sign: the alg, or NULL and a word of the refusal. */
static const struct {
    const char *name;
    EVP_PKEY **key;
    const char *alg;
    const char *why;
} key_kinds[] = {
    { "rsa2048.pem", &unit_rsa2048, "RS256", NULL },
    { "rsa1024.pem", &unit_rsa1024, NULL, "2048" },
    { "p256.pem", &unit_p256, "ES256", NULL },
    { "p384.pem", &unit_p384, NULL, "P-256" },
    { "ed25519.pem", &unit_ed25519, NULL, "RSA" },
};

START_TEST(key_kind_loads_and_signs_or_is_refused)
{
    const char *why = NULL;
    const char *alg = load_and_alg(key_kinds[_i].name, *key_kinds[_i].key, &why);

    if (key_kinds[_i].alg) {
        ck_assert_ptr_nonnull(alg);
        ck_assert_str_eq(alg, key_kinds[_i].alg);
    }
    else {
        ck_assert_ptr_null(alg);
        ck_assert_msg(why && strstr(why, key_kinds[_i].why), "%s: %s",
                      key_kinds[_i].name, why);
    }
}
END_TEST

START_TEST(unreadable_or_empty_file_refused)
{
    const char *why = NULL;
    const char *empty = apr_pstrcat(pool, dir, "/empty.pem", NULL);
    FILE *f;

    ck_assert_ptr_null(gt_private_key_load(pool, NULL, "/nonexistent/key.pem", &why));
    ck_assert_ptr_nonnull(strstr(why, "cannot be read"));
    f = fopen(empty, "w");
    ck_assert_ptr_nonnull(f);
    fputs("not a key\n", f);
    fclose(f);
    why = NULL;
    ck_assert_ptr_null(gt_private_key_load(pool, NULL, empty, &why));
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
    X509 *mine = unit_cert(unit_rsa2048, "abm", NULL, NULL, 0);
    const char *path = write_cert("abm.pem", mine);
    X509 *loaded = gt_certificate_load(pool, path, &why);

    unlink(path);
    ck_assert_msg(loaded != NULL, "%s", why);
    ck_assert_int_eq(gt_certificate_matches_key(loaded, unit_rsa2048), 1);
    ck_assert_int_eq(gt_certificate_matches_key(loaded, unit_p256), 0);
    ck_assert_int_eq(gt_certificate_matches_key(loaded, unit_rsa1024), 0);
    X509_free(mine);
}
END_TEST

START_TEST(public_keys_from_certificates_and_keys)
{
    const char *why = NULL;
    const char *path = apr_pstrcat(pool, dir, "/trust.pem", NULL);
    apr_array_header_t *keys = apr_array_make(pool, 2, sizeof(EVP_PKEY *));
    X509 *cert = unit_cert(unit_rsa2048, "org-a", NULL, NULL, 0);
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_X509(f, cert), 1);
    ck_assert_int_eq(PEM_write_PUBKEY(f, unit_p256), 1);
    fclose(f);
    ck_assert_int_eq(gt_public_keys_load(pool, path, keys, &why), 2);
    ck_assert_int_eq(EVP_PKEY_eq(APR_ARRAY_IDX(keys, 0, EVP_PKEY *), unit_rsa2048), 1);
    ck_assert_int_eq(EVP_PKEY_eq(APR_ARRAY_IDX(keys, 1, EVP_PKEY *), unit_p256), 1);
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
    EVP_PKEY *k = gt_private_key_load(pool, NULL, uris_with_pin[_i], &why);

    ck_assert_ptr_null(k);
    ck_assert_ptr_nonnull(why);
    ck_assert_ptr_null(strstr(why, PIN));
}
END_TEST


/* The module's own library context: a file key loads into it, is held by
 * OpenSSL's default provider (inherited by children as it is), and signs
 * with the signature fetched from there. */
START_TEST(key_store_loads_file_keys)
{
    const char *why = NULL;
    gt_key_store *store = gt_key_store_create(pool, &why);
    const char *path = write_key("store.pem", unit_p256);
    EVP_PKEY *loaded;
    gt_jws_signer *signer;

    ck_assert_msg(store != NULL, "%s", why);
    loaded = gt_private_key_load(pool, store, path, &why);
    unlink(path);
    ck_assert_msg(loaded != NULL, "%s", why);
    ck_assert_int_eq(EVP_PKEY_eq(loaded, unit_p256), 1);
    ck_assert_str_eq(gt_key_holder(loaded), "default");
    ck_assert_int_eq(gt_key_is_external(loaded), 0);
    signer = gt_jws_signer_create_ex(pool, loaded, gt_key_store_libctx(store),
                                     &why);
    ck_assert_msg(signer != NULL, "%s", why);
    ck_assert_str_eq(gt_jws_signer_alg(signer), "ES256");
    ck_assert_msg(gt_jws_signer_check(pool, signer, &why) == 0, "%s", why);
}
END_TEST

START_TEST(unknown_provider_named)
{
    const char *why = NULL;
    gt_key_store *store = gt_key_store_create(pool, &why);

    ck_assert_msg(store != NULL, "%s", why);
    ck_assert_int_eq(gt_key_store_add_provider(store, "no-such-provider-x",
                                               &why), -1);
    ck_assert_ptr_nonnull(strstr(why, "'no-such-provider-x'"));
}
END_TEST

START_TEST(uri_or_path)
{
    ck_assert_int_eq(gt_key_is_uri("handle:0x81000001"), 1);
    ck_assert_int_eq(gt_key_is_uri("pkcs11:token=t;object=k"), 1);
    ck_assert_int_eq(gt_key_is_uri("file:/etc/k.pem"), 1);
    ck_assert_int_eq(gt_key_is_uri("/etc/keys/a:b.pem"), 0);
    ck_assert_int_eq(gt_key_is_uri("keys/a:b.pem"), 0);
    ck_assert_int_eq(gt_key_is_uri("abm.pem"), 0);
    ck_assert_int_eq(gt_key_is_uri("c:key.pem"), 0);
}
END_TEST

/* A scheme that no loaded provider's key store opens is refused naming
 * the scheme and the directive that loads one; without the ENGINE API
 * (OpenSSL 4, or the deprecated API off) that includes pkcs11:. */
START_TEST(scheme_without_provider_refused)
{
    const char *why = NULL;
    gt_key_store *store = gt_key_store_create(pool, &why);

    ck_assert_msg(store != NULL, "%s", why);
    ck_assert_ptr_null(gt_private_key_load(pool, store, "handle:0x81000001",
                                           &why));
    ck_assert_msg(strstr(why, "handle:") && strstr(why, "GetTokenKeyProvider"),
                  "%s", why);
    why = NULL;
    ck_assert_ptr_null(gt_private_key_load(pool, store,
        "pkcs11:token=t;object=k;pin-value=" PIN, &why));
    ck_assert_ptr_nonnull(why);
    ck_assert_ptr_null(strstr(why, PIN));
#if !GT_HAVE_ENGINE
    ck_assert_msg(strstr(why, "pkcs11:") && strstr(why, "GetTokenKeyProvider"),
                  "%s", why);
#endif
}
END_TEST

/* An encrypted key is refused at once: the key store never prompts. */
START_TEST(encrypted_key_refused_without_prompt)
{
    const char *why = NULL;
    const char *path = apr_pstrcat(pool, dir, "/enc.pem", NULL);
    FILE *f = fopen(path, "w");

    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(PEM_write_PrivateKey(f, unit_rsa2048, EVP_aes_128_cbc(),
                                          (unsigned char *)"secret", 6, NULL,
                                          NULL), 1);
    fclose(f);
    ck_assert_ptr_null(gt_private_key_load(pool, NULL, path, &why));
    unlink(path);
    ck_assert_ptr_nonnull(strstr(why, "no unencrypted private key"));
}
END_TEST

/* After fork() a signer takes the key opened again: the same key signs
 * on; another key is refused and the signer stops signing. */
START_TEST(signer_rekey_same_key_only)
{
    const char *why = NULL;
    gt_jws_signer *signer = gt_jws_signer_create(pool, unit_rsa2048, &why);
    apr_thread_mutex_t *lock;

    ck_assert_msg(signer != NULL, "%s", why);
    ck_assert_int_eq(apr_thread_mutex_create(&lock, APR_THREAD_MUTEX_DEFAULT,
                                             pool), APR_SUCCESS);
    ck_assert_int_eq(gt_jws_signer_rekey(pool, signer, unit_rsa2048, NULL,
                                         &why), 0);
    gt_jws_signer_serialise(signer, lock);
    ck_assert_msg(gt_jws_signer_check(pool, signer, &why) == 0, "%s", why);
    ck_assert_int_eq(gt_jws_signer_rekey(pool, signer, unit_rsa2048_b, NULL,
                                         &why), -1);
    ck_assert_ptr_nonnull(strstr(why, "not the key"));
    why = NULL;
    ck_assert_ptr_null(gt_jws_sign(pool, signer, "{}", &why));
    ck_assert_ptr_nonnull(strstr(why, "not the key"));
    ck_assert_int_eq(gt_jws_signer_check(pool, signer, &why), -1);
}
END_TEST

/* A key file's bytes decode to the same key in another store (what a
 * child does with a provider's key file); an oversized file is refused. */
START_TEST(key_from_file_bytes)
{
    const char *why = NULL;
    const char *path = write_key("bytes.pem", unit_rsa2048);
    gt_key_store *store = gt_key_store_create(pool, &why);
    apr_size_t len = 0;
    const char *data = gt_key_file_copy(pool, path, &len, &why);
    EVP_PKEY *key;
    FILE *f;
    char zeros[1024] = { 0 };
    int i;

    ck_assert_msg(store && data, "%s", why);
    ck_assert_uint_gt(len, 100);
    key = gt_private_key_from_bytes(pool, store, data, len, &why);
    ck_assert_msg(key != NULL, "%s", why);
    ck_assert_int_eq(EVP_PKEY_eq(key, unit_rsa2048), 1);
    ck_assert_ptr_null(gt_private_key_from_bytes(pool, store, "junk", 4, &why));
    f = fopen(path, "a");
    ck_assert_ptr_nonnull(f);
    for (i = 0; i < GT_KEY_FILE_MAX / (int)sizeof(zeros) + 1; i++)
        fwrite(zeros, 1, sizeof(zeros), f);
    fclose(f);
    ck_assert_ptr_null(gt_key_file_copy(pool, path, &len, &why));
    ck_assert_ptr_nonnull(strstr(why, "64 KiB"));
    unlink(path);
}
END_TEST

Suite *keys_suite(void)
{
    Suite *s = suite_create("keys");
    TCase *tc = tcase_create("load");
    TCase *pins = tcase_create("pins");
    int n = (int)(sizeof(uris_with_pin) / sizeof(uris_with_pin[0]));

    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_loop_test(tc, key_kind_loads_and_signs_or_is_refused, 0,
                        (int)(sizeof(key_kinds) / sizeof(key_kinds[0])));
    tcase_add_test(tc, unreadable_or_empty_file_refused);
    tcase_add_test(tc, key_and_certificate_match);
    tcase_add_test(tc, public_keys_from_certificates_and_keys);
    tcase_add_test(tc, key_store_loads_file_keys);
    tcase_add_test(tc, unknown_provider_named);
    tcase_add_test(tc, uri_or_path);
    tcase_add_test(tc, scheme_without_provider_refused);
    tcase_add_test(tc, encrypted_key_refused_without_prompt);
    tcase_add_test(tc, signer_rekey_same_key_only);
    tcase_add_test(tc, key_from_file_bytes);
    suite_add_tcase(s, tc);

    tcase_add_checked_fixture(pins, setup, teardown);
    tcase_set_timeout(pins, 30);
    tcase_add_loop_test(pins, pin_hidden_in_every_uri_form, 0, n);
    tcase_add_test(pins, uri_without_pin_and_files_unchanged);
    tcase_add_loop_test(pins, failed_pkcs11_load_never_quotes_the_pin, 0, 3);
    suite_add_tcase(s, pins);
    return s;
}
