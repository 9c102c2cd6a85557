#ifndef UNIT_H
#define UNIT_H
#include <check.h>
Suite *checkin_suite(void);
Suite *bounds_suite(void);
Suite *plist_attacks_suite(void);
Suite *jose_suite(void);
Suite *pairing_suite(void);
Suite *cert_der_suite(void);
Suite *identity_suite(void);
Suite *machineinfo_suite(void);
Suite *keys_suite(void);
#endif
