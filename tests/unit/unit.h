#ifndef UNIT_H
#define UNIT_H
#include <check.h>
/* One suite per core or jose source file. */
Suite *plist_bounds_suite(void);
Suite *plist_suite(void);
Suite *cert_suite(void);
Suite *identity_suite(void);
Suite *keys_suite(void);
Suite *checkin_suite(void);
Suite *maid_suite(void);
Suite *pairing_suite(void);
Suite *organization_suite(void);
Suite *b64url_suite(void);
Suite *json_suite(void);
Suite *jws_suite(void);
Suite *uuid_suite(void);
#endif
