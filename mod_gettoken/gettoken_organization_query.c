/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_organization_query.c - the database's two questions of a
 * GetToken, asked in one statement when it can be: is the identity bound
 * to the enrollment (GetTokenEnrollmentSQL), and which organisation does
 * the enrollment belong to (GetTokenOrganizationSQL).
 *
 * Asked one after the other they cost two statements, and on SQLite two
 * read transactions (their file locks are most of a query's cost); on
 * PostgreSQL two round trips.  So at start-up the two are written into
 *
 *   SELECT o.* FROM (SELECT 1) one LEFT JOIN (<organisation SQL>) o
 *       ON 1 = 1 WHERE EXISTS (<enrollment SQL>)
 *
 * which returns no row when the identity is not bound, and otherwise the
 * organisation query's rows (a row of NULLs when it has none: the
 * default organisation).  Its parameters are the organisation query's,
 * then the enrollment query's, in the order apr_dbd numbers them.
 *
 * The statement is never handed to mod_dbd, which would fail every
 * connection if it did not prepare: it is prepared on first use on each
 * connection.  Any failure of it is answered by asking the two statements
 * one after the other, so every refusal is the one, and logged as, the
 * separate queries give.  A child in which it never worked while the two
 * separate statements do (SQL that cannot be written as a subquery) stops
 * trying, with one warning.
 */
#include "gettoken_private.h"
#include "gettoken_dbd.h"

#include "apr_atomic.h"
#include "apr_dbd.h"
#include "apr_lib.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "mod_dbd.h"

/* What a child knows of the combined statement. */
#define JOINT_UNTRIED 0
#define JOINT_WORKS   1
#define JOINT_BROKEN  2

/* The operator's statement as a subquery: without the trailing ';' and
 * blanks a statement of its own may have; on lines of its own, so that a
 * trailing "--" comment ends where it did. */
static const char *as_subquery(apr_pool_t *p, const char *sql)
{
    apr_size_t n = strlen(sql);

    while (n && (apr_isspace(sql[n - 1]) || sql[n - 1] == ';'))
        n--;
    return apr_pstrndup(p, sql, n);
}

void gettoken_organization_query_startup(apr_pool_t *pconf,
                                         gettoken_server_conf *conf)
{
    gettoken_organizations_conf *orgs = conf->orgs;
    int org_params, binding_params;

    if (!conf->in_use || !orgs->sql || !conf->binding->sql)
        return;
    org_params = gettoken_dbd_placeholders(orgs->sql);
    binding_params = gettoken_dbd_placeholders(conf->binding->sql);
    /* more parameters than the directives give: asked as they are */
    if (org_params > 1 || binding_params > 2)
        return;
    orgs->joint_org_params = org_params;
    orgs->joint_binding_params = binding_params;
    orgs->joint_sql = apr_pstrcat(pconf,
        "SELECT gettoken_organization.* FROM (SELECT 1) AS gettoken_one "
        "LEFT JOIN (\n", as_subquery(pconf, orgs->sql),
        "\n) AS gettoken_organization ON 1 = 1 WHERE EXISTS (\n",
        as_subquery(pconf, conf->binding->sql), "\n)", NULL);
    orgs->joint_label = gettoken_dbd_label(pconf, "enrollment_organization");
    orgs->joint_state = apr_pcalloc(pconf, sizeof(*orgs->joint_state));
}

struct organization_query {
    int nargs;
    const char *args[3];
    int rows;
    const char *name;        /* NULL: no row, or a NULL / empty column */
};

/* The first column of the first row that has one. */
static void first_name(request_rec *r, const ap_dbd_t *dbd, apr_dbd_row_t *row,
                       void *ctx)
{
    struct organization_query *q = ctx;
    const char *v = q->name ? NULL : apr_dbd_get_entry(dbd->driver, row, 0);

    q->rows++;
    if (v && *v)
        q->name = apr_pstrdup(r->pool, v);
}

static int organization_query(request_rec *r, ap_dbd_t *dbd,
                              apr_dbd_prepared_t *stmt, void *ctx)
{
    struct organization_query *q = ctx;

    q->rows = 0;
    q->name = NULL;
    return gettoken_dbd_select(r, dbd, stmt, q->nargs, q->args, first_name,
                               q);
}

/* The organisation query alone: OK with *name (NULL: none), or 503. */
static int ask_alone(request_rec *r, const gettoken_server_conf *conf,
                     const gettoken_request *req, const char **name)
{
    struct organization_query q = { 1, { req->enrollment_id }, 0, NULL };
    const char *err = NULL;

    if (gettoken_dbd_ask(r, conf->orgs->label, conf->orgs->sql,
                         organization_query, &q, &err) == 0) {
        *name = q.name;
        return OK;
    }
    return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_SERVICE_UNAVAILABLE,
                           GTLOGNO(01101), "GetTokenOrganizationSQL failed: "
                           "%s", err);
}

/* Both questions in one statement: OK (bound, *name), 403 or 503 (logged),
 * or DECLINED when the statement failed (*err) and the two are to be
 * asked one after the other. */
static int ask_jointly(request_rec *r, const gettoken_server_conf *conf,
                       const gettoken_request *req, const char **name,
                       const char **err)
{
    const gettoken_organizations_conf *orgs = conf->orgs;
    struct organization_query q = { 0, { NULL }, 0, NULL };
    ap_dbd_t *dbd = gettoken_dbd_acquire(r);
    int i;

    if (!dbd)   /* asking again would only wait for the database again */
        return gettoken_binding_unavailable(r, GTLOGNO(01102),
                                            GETTOKEN_DBD_NO_CONNECTION " "
                                            GETTOKEN_DBD_CHECK_SETUP);
    for (i = 0; i < orgs->joint_org_params; i++)
        q.args[q.nargs++] = req->enrollment_id;
    if (orgs->joint_binding_params > 0)
        q.args[q.nargs++] = req->enrollment_id;
    if (orgs->joint_binding_params > 1)
        q.args[q.nargs++] = req->identity_sha256;
    if (gettoken_dbd_run_unregistered(r, dbd, orgs->joint_label,
                                      orgs->joint_sql, organization_query, &q,
                                      err) != 0)
        return DECLINED;
    if (apr_atomic_read32(orgs->joint_state) == JOINT_UNTRIED)
        apr_atomic_set32(orgs->joint_state, JOINT_WORKS);
    if (!q.rows)
        return gettoken_binding_refuse(r, GTLOGNO(01103), req);
    gettoken_binding_bound(r);
    *name = q.name;
    return OK;
}

/* The two statements work on their own where the combined one never did
 * in this child: stop trying it (once, whichever thread sees it first). */
static void give_up_joint(request_rec *r, const gettoken_organizations_conf *orgs,
                          const char *err)
{
    if (apr_atomic_cas32(orgs->joint_state, JOINT_BROKEN, JOINT_UNTRIED)
        != JOINT_UNTRIED)
        return;
    ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, GTLOGNO(01104)
                  "GetTokenEnrollmentSQL and GetTokenOrganizationSQL of %s do "
                  "not combine into one statement (%s): this child asks them "
                  "one after the other, one more query per GetToken; write "
                  "each as a plain SELECT to have them asked together",
                  gettoken_vhost_name(r->server, r->pool), err);
}

int gettoken_organization_ask(request_rec *r, const gettoken_server_conf *conf,
                              const gettoken_request *req, const char **name)
{
    const gettoken_organizations_conf *orgs = conf->orgs;
    const char *joint_err = NULL;
    int status;

    *name = NULL;
    if (!orgs->sql)
        return gettoken_binding_check(r, conf, req);
    if (orgs->joint_sql
        && apr_atomic_read32(orgs->joint_state) != JOINT_BROKEN) {
        status = ask_jointly(r, conf, req, name, &joint_err);
        if (status != DECLINED)
            return status;
        /* trace: the separate query that fails too logs the refusal */
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, GTLOGNO(01105)
                      "the combined enrollment and organisation statement "
                      "failed (%s): asking them one after the other",
                      joint_err);
    }
    status = gettoken_binding_check(r, conf, req);
    if (status != OK)
        return status;
    status = ask_alone(r, conf, req, name);
    if (status == OK && joint_err)
        give_up_joint(r, orgs, joint_err);
    return status;
}
