/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/* Unit tests of the httpd-free core (Check). */
#include <stdlib.h>
#include "apr_general.h"
#include "unit.h"
#include "unit_keys.h"

static Suite *(*const suites[])(void) = {
    plist_bounds_suite, plist_suite, cert_suite, identity_suite, keys_suite,
    checkin_suite, prescan_suite, maid_suite, pairing_suite, organization_suite,
    machineinfo_suite, b64url_suite, json_suite, jws_suite, uuid_suite,
};

Suite *unit_suite(const char *name, void (*setup)(void),
                  void (*teardown)(void), int timeout,
                  const TTest *const tests[], size_t n)
{
    Suite *s = suite_create(name);
    TCase *tc = tcase_create(name);
    size_t i;

    if (setup || teardown)
        tcase_add_checked_fixture(tc, setup, teardown);
    if (timeout > 0)
        tcase_set_timeout(tc, timeout);
    for (i = 0; i < n; i++)
        tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr;
    size_t i;
    int failed;

    if (apr_initialize() != APR_SUCCESS)
        return EXIT_FAILURE;
    /* before the tests fork, so that each inherits the keys */
    if (unit_keys_make() != 0)
        return EXIT_FAILURE;
    sr = srunner_create(suites[0]());
    for (i = 1; i < sizeof(suites) / sizeof(suites[0]); i++)
        srunner_add_suite(sr, suites[i]());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
