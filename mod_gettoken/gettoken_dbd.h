/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_dbd.h - the parts' way to mod_dbd (gettoken_dbd.c): its
 * optional functions (retrieved at start-up; gettoken_dbd_loaded() says
 * whether mod_dbd is there), statements prepared under labels of our own,
 * the request's pooled connection (NULL when none can be had), and
 * queries that survive a statement gone stale on a connection.
 */
#ifndef GETTOKEN_DBD_H
#define GETTOKEN_DBD_H

#include "httpd.h"
#include "apr_dbd.h"
#include "mod_dbd.h"

void gettoken_dbd_retrieve_fns(void);
int gettoken_dbd_loaded(void);
/* OK when mod_dbd is there; else logs that `directive` needs it (`why`:
 * what for, or ""; `otherwise`: the way out, or "") and returns !OK. */
int gettoken_dbd_require(server_rec *s, apr_pool_t *p, const char *directive,
                         const char *why, const char *otherwise);
/* Prepared under a fresh label "gettoken_<purpose>_<n>" (NULL without
 * mod_dbd). */
const char *gettoken_dbd_prepare(server_rec *s, apr_pool_t *p,
                                 const char *sql, const char *purpose);
/* The start-up step of a vhost's optional SQL directive: nothing unless
 * the vhost uses GetToken (`in_use`) and sets `sql`; else mod_dbd must be
 * there (gettoken_dbd_require(), with `otherwise`) and `sql` is prepared
 * into *label as gettoken_dbd_prepare() does.  OK or !OK. */
int gettoken_dbd_startup_statement(server_rec *s, apr_pool_t *p, int in_use,
                                   const char *directive,
                                   const char *otherwise, const char *sql,
                                   const char *purpose, const char **label);
/* A label of our own, for a statement prepared on first use. */
const char *gettoken_dbd_label(apr_pool_t *p, const char *purpose);
/* How many parameters apr_dbd_prepare() finds in `sql`. */
int gettoken_dbd_placeholders(const char *sql);
ap_dbd_t *gettoken_dbd_acquire(request_rec *r);
/* What a request logs when gettoken_dbd_acquire() gives nothing. */
#define GETTOKEN_DBD_NO_CONNECTION "no database connection"
#define GETTOKEN_DBD_CHECK_SETUP "(mod_dbd: check DBDriver/DBDParams and " \
                                 "that the database is up)"
/* One query with a prepared statement: the driver's rv (0 = done). */
typedef int (*gettoken_dbd_query)(request_rec *r, ap_dbd_t *dbd,
                                  apr_dbd_prepared_t *stmt, void *ctx);
/* Runs `query` with the statement `label` of this connection; when the
 * statement is stale or gone on it (schema change, re-opened connection),
 * prepares `sql` again there and runs `query` once more.  Never closes the
 * connection.  0, or the driver's rv with *err (one line). */
int gettoken_dbd_run(request_rec *r, ap_dbd_t *dbd, const char *label,
                     const char *sql, gettoken_dbd_query query, void *ctx,
                     const char **err);
/* The same for a statement never handed to mod_dbd (one that may not
 * prepare at all, which would fail every connection mod_dbd opens): it is
 * prepared on its first use on each connection, without a log line. */
int gettoken_dbd_run_unregistered(request_rec *r, ap_dbd_t *dbd,
                                  const char *label, const char *sql,
                                  gettoken_dbd_query query, void *ctx,
                                  const char **err);
/* A select with `nargs` parameters, every row handed to `row` (which may
 * be NULL) and read, so the connection is clean for the next request: 0
 * or the driver's rv.  Random access (synchronous): with apr_dbd_pgsql's
 * sequential mode a failed query looks like an empty result. */
typedef void (*gettoken_dbd_row_fn)(request_rec *r, const ap_dbd_t *dbd,
                                    apr_dbd_row_t *row, void *ctx);
int gettoken_dbd_select(request_rec *r, ap_dbd_t *dbd,
                        apr_dbd_prepared_t *stmt, int nargs,
                        const char **args, gettoken_dbd_row_fn row, void *ctx);
/* gettoken_dbd_run() on the request's pooled connection: 0, or non-zero
 * with *err (no connection, or the driver's error). */
int gettoken_dbd_ask(request_rec *r, const char *label, const char *sql,
                     gettoken_dbd_query query, void *ctx, const char **err);
/* Whether `sql` (prepared under `label`) returns a row for `args`, on the
 * request's pooled connection: 0 with *found, or non-zero with *err (no
 * connection, or the driver's error). */
int gettoken_dbd_exists(request_rec *r, const char *label, const char *sql,
                        int nargs, const char **args, int *found,
                        const char **err);
/* A statement that changes rows: 0 or the driver's rv; *nrows. */
int gettoken_dbd_change(request_rec *r, ap_dbd_t *dbd,
                        apr_dbd_prepared_t *stmt, int nargs,
                        const char **args, int *nrows);
/* The driver's message for rv on one line. */
const char *gettoken_dbd_error(apr_pool_t *p, const ap_dbd_t *dbd, int rv);
/* Seconds between purges of expired rows, per process and vhost. */
#define GETTOKEN_PURGE_INTERVAL 60
/* Runs the purge statement `label` (`sql`, one parameter: now) at most
 * once per GETTOKEN_PURGE_INTERVAL; *next_purge is the caller's schedule.
 * A failure is logged, never the request's. */
void gettoken_dbd_purge_maybe(request_rec *r, ap_dbd_t *dbd, const char *label,
                              const char *sql, apr_uint32_t *next_purge,
                              apr_int64_t now, const char *table);

#endif
