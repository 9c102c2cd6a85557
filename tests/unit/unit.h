/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
#ifndef UNIT_H
#define UNIT_H
#include <check.h>
/* One suite per core or jose source file. */
Suite *plist_bounds_suite(void);
Suite *plist_suite(void);
Suite *cert_suite(void);
Suite *identity_suite(void);
Suite *machineinfo_suite(void);
Suite *keys_suite(void);
Suite *checkin_suite(void);
Suite *prescan_suite(void);
Suite *maid_suite(void);
Suite *pairing_suite(void);
Suite *organization_suite(void);
Suite *b64url_suite(void);
Suite *json_suite(void);
Suite *jws_suite(void);
Suite *uuid_suite(void);

/* A suite of one test case called `name`: each test gets a fresh fixture
 * (setup and teardown may be NULL); timeout 0 keeps Check's default. */
Suite *unit_suite(const char *name, void (*setup)(void),
                  void (*teardown)(void), int timeout,
                  const TTest *const tests[], size_t n);
#define UNIT_SUITE(name, setup, teardown, timeout, ...) do { \
        const TTest *const unit_tests_[] = { __VA_ARGS__ }; \
        return unit_suite(name, setup, teardown, timeout, unit_tests_, \
                          sizeof(unit_tests_) / sizeof(unit_tests_[0])); \
    } while (0)
#endif
