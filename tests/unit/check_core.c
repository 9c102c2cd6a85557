/* Unit tests of the httpd-free core (Check). */
#include <stdlib.h>
#include "apr_general.h"
#include "unit.h"
#include "unit_keys.h"

static Suite *(*const suites[])(void) = {
    plist_bounds_suite, plist_suite, cert_suite, identity_suite, keys_suite,
    checkin_suite, maid_suite, pairing_suite, organization_suite,
    b64url_suite, json_suite, jws_suite, uuid_suite,
};

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
