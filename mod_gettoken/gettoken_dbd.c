/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_dbd.c - mod_dbd as every database feature of the module uses
 * it: its optional functions, statements prepared under labels of our
 * own, the pooled connection of a request, the one recovery for
 * statements that went stale on a connection, and the one way rows are
 * read.  As in mod_authn_dbd, a statement is handed to mod_dbd at
 * start-up and prepared by mod_dbd on every pooled connection.
 */
#include "gettoken_private.h"
#include "gettoken_dbd.h"

#include "apr_atomic.h"
#include "apr_dbd.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "mod_dbd.h"

/* SQLite's result code for a statement prepared before a schema change */
#define SQLITE_SCHEMA_CODE 17

static APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *dbd_prepare;
static APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *dbd_acquire;

void gettoken_dbd_retrieve_fns(void)
{
    dbd_prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    dbd_acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
}

int gettoken_dbd_loaded(void)
{
    return dbd_prepare && dbd_acquire;
}

const char *gettoken_dbd_label(apr_pool_t *p, const char *purpose)
{
    /* labels are global in mod_dbd: one per statement and vhost */
    static unsigned label_num = 0;

    return apr_psprintf(p, "gettoken_%s_%u", purpose, label_num++);
}

const char *gettoken_dbd_prepare(server_rec *s, apr_pool_t *p,
                                 const char *sql, const char *purpose)
{
    const char *label;

    if (!gettoken_dbd_loaded())
        return NULL;
    label = gettoken_dbd_label(p, purpose);
    dbd_prepare(s, sql, label);
    return label;
}

int gettoken_dbd_placeholders(const char *sql)
{
    int n = 0;

    /* apr_dbd_prepare's reading: % and a letter is a parameter, %% is % */
    for (; *sql; sql++)
        if (sql[0] == '%') {
            if (apr_isalpha(sql[1]))
                n++;
            else if (sql[1] == '%')
                sql++;
        }
    return n;
}

int gettoken_dbd_require(server_rec *s, apr_pool_t *p, const char *directive,
                         const char *why, const char *otherwise)
{
    if (gettoken_dbd_loaded())
        return OK;
    ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, GTLOGNO(00501)
                 "%s in %s needs mod_dbd%s: load it (LoadModule dbd_module) "
                 "and set DBDriver/DBDParams%s", directive,
                 gettoken_vhost_name(s, p), why, otherwise);
    return !OK;
}

int gettoken_dbd_startup_statement(server_rec *s, apr_pool_t *p, int in_use,
                                   const char *directive,
                                   const char *otherwise, const char *sql,
                                   const char *purpose, const char **label)
{
    if (!in_use || !sql)
        return OK;
    if (gettoken_dbd_require(s, p, directive, "", otherwise) != OK)
        return !OK;
    *label = gettoken_dbd_prepare(s, p, sql, purpose);
    return OK;
}

ap_dbd_t *gettoken_dbd_acquire(request_rec *r)
{
    return dbd_acquire ? dbd_acquire(r) : NULL;
}

/* apr_dbd_mysql reports the connection's message (mysql_error), but a
 * prepared statement's own failures are recorded on the statement: for
 * those the code is all there is.  These codes say the statement or its
 * connection is gone (preparing it again on the re-opened connection
 * helps); any other is the query's own failure. */
static const struct {
    int code;
    const char *text;
} mysql_stale[] = {
    { 1053, "the server is shutting down" },
    { 1243, "unknown prepared statement handler" },
    { 1615, "the prepared statement needs to be prepared again" },
    { 1927, "the connection was killed" },
    { 2006, "the server has gone away" },
    { 2013, "lost connection to the server during the query" },
    { 2030, "the statement is not prepared (its connection was re-opened)" },
    { 2055, "lost connection to the server" },
    { 2057, "the statement's result columns changed" },
    { 4031, "the server closed the connection (inactivity)" },
};

static int is_mysql(const ap_dbd_t *dbd)
{
    const char *name = apr_dbd_name(dbd->driver);

    return name && strcmp(name, "mysql") == 0;
}

static const char *mysql_stale_text(int rv)
{
    apr_size_t i;

    for (i = 0; i < sizeof(mysql_stale) / sizeof(mysql_stale[0]); i++)
        if (mysql_stale[i].code == rv)
            return mysql_stale[i].text;
    return NULL;
}

const char *gettoken_dbd_error(apr_pool_t *p, const ap_dbd_t *dbd, int rv)
{
    const char *msg = apr_dbd_error(dbd->driver, dbd->handle, rv);
    const char *known;
    char *line, *c;
    apr_size_t n;

    if (!msg || !*msg) {
        if (rv && is_mysql(dbd) && (known = mysql_stale_text(rv)))
            return apr_psprintf(p, "MySQL error %d: %s", rv, known);
        if (rv)
            return apr_psprintf(p, "error %d, no message from the driver", rv);
        return "no message from the driver";
    }
    line = apr_pstrdup(p, msg);
    for (c = line; *c; c++)     /* libpq's messages span lines */
        if (*c == '\n' || *c == '\r' || *c == '\t')
            *c = ' ';
    n = strlen(line);
    while (n && line[n - 1] == ' ')
        line[--n] = '\0';
    if (rv > 0 && is_mysql(dbd))
        return apr_psprintf(p, "MySQL error %d: %s", rv, line);
    return line;
}

/*
 * Whether a failure says the statement is stale or gone on this connection
 * (so preparing it again helps), as opposed to a failure of the query
 * itself (a duplicate key, a timeout, a missing table), which would only
 * repeat.  SQLite keeps statements prepared before a schema change; libpq
 * and MySQL lose them when mod_dbd re-opens a connection in place
 * (apr_dbd_check_conn; MySQL's client library reconnects by itself, and
 * its statements then fail with "not prepared" even where mod_dbd's check
 * of the connection succeeded), and PostgreSQL on DEALLOCATE.  A PostgreSQL
 * message of any other severity than ERROR (FATAL, or libpq's own without
 * one) is the connection's failure: the session ended.
 */
static int statement_is_stale(const ap_dbd_t *dbd, int rv, const char *msg)
{
    const char *name = apr_dbd_name(dbd->driver);

    if (!name)
        return 0;
    if (strncmp(name, "sqlite", 6) == 0)
        return rv == SQLITE_SCHEMA_CODE || ap_strcasestr(msg, "schema") != NULL;
    if (strcmp(name, "pgsql") == 0)
        return (ap_strstr_c(msg, "prepared statement")
                && ap_strstr_c(msg, "does not exist"))
               || strncmp(msg, "ERROR:", 6) != 0;
    if (strcmp(name, "mysql") == 0)
        return mysql_stale_text(rv) != NULL;
    return 0;
}

/* Prepares `sql` on this connection under `label`, in a subpool of the
 * connection's pool (freed at once if preparing fails).  The statement it
 * replaces stays allocated with the connection: this happens once per
 * schema change or re-opening, not per request. */
static apr_dbd_prepared_t *prepare_again(request_rec *r, ap_dbd_t *dbd,
                                         const char *label, const char *sql,
                                         const char **err)
{
    apr_pool_t *sub = NULL;
    apr_dbd_prepared_t *stmt = NULL;
    int rv;

    if (apr_pool_create(&sub, dbd->pool) != APR_SUCCESS) {
        *err = "out of memory preparing the statement again";
        return NULL;
    }
    rv = apr_dbd_prepare(dbd->driver, sub, dbd->handle, sql, label, &stmt);
    if (rv != 0 || !stmt) {
        *err = apr_pstrcat(r->pool, "preparing it: ",
                           gettoken_dbd_error(r->pool, dbd, rv), NULL);
        apr_pool_destroy(sub);
        return NULL;
    }
    /* the label lives in pconf, as long as the connection's hash */
    apr_hash_set(dbd->prepared, label, APR_HASH_KEY_STRING, stmt);
    return stmt;
}

static int run(request_rec *r, ap_dbd_t *dbd, const char *label,
               const char *sql, gettoken_dbd_query query, void *ctx,
               const char **err, int registered)
{
    apr_dbd_prepared_t *stmt = apr_hash_get(dbd->prepared, label,
                                            APR_HASH_KEY_STRING);
    const char *first;
    int stmt_was_there = stmt != NULL;
    int rv;

    if (stmt) {
        rv = query(r, dbd, stmt, ctx);
        if (rv == 0)
            return 0;
        first = gettoken_dbd_error(r->pool, dbd, rv);
        if (!statement_is_stale(dbd, rv, first)) {
            *err = first;
            return rv;
        }
        /* a dropped connection: libpq knows now, and this re-opens it */
        if (apr_dbd_check_conn(dbd->driver, r->pool, dbd->handle)
            != APR_SUCCESS) {
            *err = apr_pstrcat(r->pool, first, "; the connection cannot be "
                               "re-opened: ",
                               gettoken_dbd_error(r->pool, dbd, 0), NULL);
            return rv;
        }
    }
    else
        first = "it was not prepared on this connection";
    stmt = prepare_again(r, dbd, label, sql, err);
    if (!stmt) {
        /* the stale statement would fail on, with another message (SQLite:
         * "not an error"): the next request prepares afresh instead */
        apr_hash_set(dbd->prepared, label, APR_HASH_KEY_STRING, NULL);
        *err = apr_pstrcat(r->pool, first, "; ", *err, NULL);
        return -1;
    }
    rv = query(r, dbd, stmt, ctx);
    if (rv != 0) {
        *err = apr_pstrcat(r->pool, first, "; prepared again, then: ",
                           gettoken_dbd_error(r->pool, dbd, rv), NULL);
        return rv;
    }
    if (registered || stmt_was_there)
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, GTLOGNO(00502)
                      "statement %s prepared again on its database "
                      "connection (%s)", label, first);
    return 0;
}

int gettoken_dbd_run(request_rec *r, ap_dbd_t *dbd, const char *label,
                     const char *sql, gettoken_dbd_query query, void *ctx,
                     const char **err)
{
    return run(r, dbd, label, sql, query, ctx, err, 1);
}

int gettoken_dbd_run_unregistered(request_rec *r, ap_dbd_t *dbd,
                                  const char *label, const char *sql,
                                  gettoken_dbd_query query, void *ctx,
                                  const char **err)
{
    return run(r, dbd, label, sql, query, ctx, err, 0);
}

int gettoken_dbd_select(request_rec *r, ap_dbd_t *dbd,
                        apr_dbd_prepared_t *stmt, int nargs,
                        const char **args, gettoken_dbd_row_fn row, void *ctx)
{
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *got = NULL;
    int rv = apr_dbd_pselect(dbd->driver, r->pool, dbd->handle, &res, stmt, 1,
                             nargs, args);
    int rownum;

    if (rv != 0)
        return rv;
    /* Rows by number, from 1: with random access, "the next row" (-1) is
     * what apr_dbd_pgsql and apr_dbd_sqlite3 read, but apr_dbd_mysql
     * answers it with "no row" at once -- every select would be empty. */
    for (rownum = 1;
         (rv = apr_dbd_get_row(dbd->driver, r->pool, res, &got, rownum)) == 0;
         rownum++)
        if (row)
            row(r, dbd, got, ctx);
    return rv == -1 ? 0 : rv;
}

struct exists_query {
    int nargs;
    const char **args;
    int found;
};

static void note_row(request_rec *r, const ap_dbd_t *dbd, apr_dbd_row_t *row,
                     void *found)
{
    (void)r;
    (void)dbd;
    (void)row;
    *(int *)found = 1;
}

static int exists_query(request_rec *r, ap_dbd_t *dbd,
                        apr_dbd_prepared_t *stmt, void *ctx)
{
    struct exists_query *q = ctx;

    q->found = 0;
    return gettoken_dbd_select(r, dbd, stmt, q->nargs, q->args, note_row,
                               &q->found);
}

int gettoken_dbd_ask(request_rec *r, const char *label, const char *sql,
                     gettoken_dbd_query query, void *ctx, const char **err)
{
    ap_dbd_t *dbd = gettoken_dbd_acquire(r);

    if (!dbd) {
        *err = GETTOKEN_DBD_NO_CONNECTION " " GETTOKEN_DBD_CHECK_SETUP;
        return -1;
    }
    return gettoken_dbd_run(r, dbd, label, sql, query, ctx, err);
}

int gettoken_dbd_exists(request_rec *r, const char *label, const char *sql,
                        int nargs, const char **args, int *found,
                        const char **err)
{
    struct exists_query q = { nargs, args, 0 };
    int rv = gettoken_dbd_ask(r, label, sql, exists_query, &q, err);

    *found = q.found;
    return rv;
}

int gettoken_dbd_change(request_rec *r, ap_dbd_t *dbd,
                        apr_dbd_prepared_t *stmt, int nargs,
                        const char **args, int *nrows)
{
    *nrows = 0;
    return apr_dbd_pquery(dbd->driver, r->pool, dbd->handle, nrows, stmt,
                          nargs, args);
}

struct purge_query {
    const char *now;
    int nrows;
};

static int purge_query(request_rec *r, ap_dbd_t *dbd, apr_dbd_prepared_t *stmt,
                       void *ctx)
{
    struct purge_query *q = ctx;

    return gettoken_dbd_change(r, dbd, stmt, 1, &q->now, &q->nrows);
}

void gettoken_dbd_purge_maybe(request_rec *r, ap_dbd_t *dbd, const char *label,
                              const char *sql, apr_uint32_t *next_purge,
                              apr_int64_t now, const char *table)
{
    apr_uint32_t due = apr_atomic_read32(next_purge);
    struct purge_query q = { NULL, 0 };
    const char *err = NULL;

    if ((apr_uint32_t)now < due
        || apr_atomic_cas32(next_purge,
                            (apr_uint32_t)now + GETTOKEN_PURGE_INTERVAL,
                            due) != due)
        return;     /* not yet, or another thread does it */
    q.now = apr_psprintf(r->pool, "%" APR_INT64_T_FMT, now);
    if (gettoken_dbd_run(r, dbd, label, sql, purge_query, &q, &err) != 0)
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, GTLOGNO(00503)
                      "purging expired rows of %s failed: %s", table, err);
    else if (q.nrows > 0)
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, GTLOGNO(00504)
                      "purged %d expired rows of %s", q.nrows, table);
}
