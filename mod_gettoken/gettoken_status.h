/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_status.h - server-wide counters for mod_status, in shared
 * memory: every child's, kept over graceful restarts (gettoken_status.c).
 */
#ifndef GETTOKEN_STATUS_H
#define GETTOKEN_STATUS_H

#include "httpd.h"

typedef enum {
    GT_STAT_ISSUED,            /* a 200 with a token */
    GT_STAT_REFUSED,           /* a GetToken answered with an error */
    GT_STAT_PASSED_THROUGH,    /* a check-in handed on to the location */
    GT_STAT_WATCH_ADMITTED,    /* a watch pairing token accepted */
    GT_STAT_WATCH_REFUSED,     /* the watch enrollment gate refused */
    GT_STAT_WATCH_SECURITY_TOKEN /* a security token recorded for a watch */
} gettoken_stat_event;
/* mod_status's status_hook: the counters on the server-status page. */
int gettoken_status_hook(request_rec *r, int flags);
int gettoken_status_init(apr_pool_t *pconf, server_rec *s);
/* service_type: for GT_STAT_ISSUED; http_status: for GT_STAT_REFUSED. */
void gettoken_status_count(gettoken_stat_event ev, const char *service_type,
                           int http_status);
/* The time one token took to generate (sign), for the mean. */
void gettoken_status_signing_time(apr_interval_time_t t);
/* 1 for the first child of a generation (start-up, graceful restart) to
 * ask, 0 for every other: checks that must run as the httpd user, once. */
int gettoken_status_first_child(void);

#endif
