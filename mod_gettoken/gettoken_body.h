/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_body.h - reading a request body once and handing it on intact
 * (gettoken_body.c).
 */
#ifndef GETTOKEN_BODY_H
#define GETTOKEN_BODY_H

#include "httpd.h"
#include "util_filter.h"

#include "gettoken_private.h"

typedef enum {
    GT_BODY_COMPLETE,   /* the whole body is in buf/len */
    GT_BODY_TOO_LARGE   /* more than the cap: not read in full */
} gettoken_body_state;
/* The input filter that puts the kept bytes back (registered as
 * GETTOKEN_REPLAY_FILTER by gettoken_register_hooks). */
#define GETTOKEN_REPLAY_FILTER "GETTOKEN_REPLAY"
extern ap_filter_rec_t *gettoken_body_replay_filter_handle;
apr_status_t gettoken_body_replay_filter(ap_filter_t *f,
                                        apr_bucket_brigade *bb,
                                        ap_input_mode_t mode,
                                        apr_read_type_e block,
                                        apr_off_t readbytes);
/* Reads at most max_body (+ one read) bytes, keeping what it read for the
 * handler that comes next.  Returns OK or an HTTP status for a broken read. */
int gettoken_body_read(request_rec *r, apr_size_t max_body,
                       gettoken_body_state *state, const char **buf,
                       apr_size_t *len);
/* The Content-Length the client announced, or -1 (chunked, absent, or
 * not a number). */
apr_off_t gettoken_body_announced(request_rec *r);
/* The whole body, kept for a replay: OK with *buf and *len; 413 when it is
 * announced or found to be over `cap` bytes (logged as a refusal of
 * `what` with the caller's `id`); or a broken read's status. */
int gettoken_body_read_whole(request_rec *r, apr_size_t cap,
                             gettoken_refused what, const char *id,
                             const char **buf, apr_size_t *len);
/* 1 when this request's body (or that of the request it was redirected
 * from) was read here already: it must not be read again. */
int gettoken_body_was_read(request_rec *r);
/* Puts the bytes read back in front of the rest of the body. */
void gettoken_body_replay(request_rec *r);
/* insert_filter hook: internal redirects keep the replay. */
void gettoken_body_insert_filter(request_rec *r);

#endif
