/* Unit tests of the httpd-free core (Check). */
#include <stdlib.h>
#include "apr_general.h"
#include "unit.h"

int main(void)
{
    SRunner *sr;
    int failed;

    if (apr_initialize() != APR_SUCCESS)
        return EXIT_FAILURE;
    sr = srunner_create(checkin_suite());
    srunner_add_suite(sr, bounds_suite());
    srunner_add_suite(sr, plist_attacks_suite());
    srunner_add_suite(sr, jose_suite());
    srunner_add_suite(sr, pairing_suite());
    srunner_add_suite(sr, cert_der_suite());
    srunner_add_suite(sr, identity_suite());
    srunner_add_suite(sr, machineinfo_suite());
    srunner_add_suite(sr, keys_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    apr_terminate();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
