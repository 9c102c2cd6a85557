/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_warnings.c - warnings at start-up for set-ups that pass the
 * config test and then fail requests or leak a key: a vhost relying on the
 * ssl identity where no SSLVerifyClient asks for a certificate, a database
 * statement where no DBDriver applies, a signing key file that others may
 * read, an SQLite database the httpd user cannot read or write, and a
 * server UUID that is nil or written in upper case.
 *
 * mod_ssl's and mod_dbd's configurations are private to them, so what they
 * were told is read from the parsed configuration tree (ap_conftree, as
 * mod_info shows it): a directive applies to a vhost when it appears in
 * that vhost's <VirtualHost> section (at any depth) or in the main server
 * outside every <VirtualHost>.  Permissions are judged from the owner,
 * group and mode bits against the User/Group httpd's children run as (an
 * ACL or a supplementary group may grant more: the warning says what the
 * mode bits say).
 */
#include "gettoken_private.h"
#include "gettoken_dbd.h"
#include "gettoken_status.h"

#include "apr_dbd.h"
#include "apr_strings.h"
#include "http_core.h"
#include "http_main.h"
#include "mod_dbd.h"
#include "unixd.h"

#include <sys/stat.h>
#include <unistd.h>

#include "core/gt_keys.h"

/* The last `name` directive in file order under node; <VirtualHost>
 * sections are skipped when skip_vhosts. */
static const ap_directive_t *find_directive(const ap_directive_t *node,
                                            const char *name, int skip_vhosts)
{
    const ap_directive_t *found = NULL, *d, *sub;

    for (d = node; d; d = d->next) {
        if (!strcasecmp(d->directive, name))
            found = d;
        if (d->first_child
            && !(skip_vhosts && !strcasecmp(d->directive, "<VirtualHost"))
            && (sub = find_directive(d->first_child, name, skip_vhosts)))
            found = sub;
    }
    return found;
}

/* The <VirtualHost> section that defined s, or NULL. */
static const ap_directive_t *vhost_section(const ap_directive_t *node,
                                           const server_rec *s)
{
    const ap_directive_t *d, *sub;

    for (d = node; d; d = d->next) {
        if (!strcasecmp(d->directive, "<VirtualHost")
            && (unsigned)d->line_num == s->defn_line_number && d->filename
            && s->defn_name && !strcmp(d->filename, s->defn_name))
            return d;
        if (d->first_child && (sub = vhost_section(d->first_child, s)))
            return sub;
    }
    return NULL;
}

/* The first argument of the `name` directive that applies to s, or NULL. */
static const char *directive_in_scope(server_rec *s, const char *name,
                                      apr_pool_t *p)
{
    const ap_directive_t *sec = s->is_virtual
                                ? vhost_section(ap_conftree, s) : NULL;
    const ap_directive_t *d = NULL;
    const char *args;

    if (sec && sec->first_child)
        d = find_directive(sec->first_child, name, 0);
    if (!d)
        d = find_directive(ap_conftree, name, 1);
    if (!d)
        return NULL;
    args = d->args ? d->args : "";
    return ap_getword_conf(p, &args);
}

static void warn_ssl_identity(server_rec *s, const gettoken_server_conf *conf,
                              apr_pool_t *p)
{
    const char *verify;

    if (!gettoken_identity_uses_ssl(conf))
        return;
    verify = directive_in_scope(s, "SSLVerifyClient", p);
    if (verify && strcasecmp(verify, "none"))
        return;
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, GTLOGNO(00801)
                 "GetTokenIdentity ssl in %s: %s, so mod_ssl never asks for "
                 "a client certificate and the ssl identity source finds "
                 "none (GetTokens get 401): add SSLVerifyClient "
                 "optional_no_ca (or require) to the vhost",
                 gettoken_vhost_name(s, p),
                 verify ? "SSLVerifyClient is none" : "no SSLVerifyClient applies");
}

/* The directive that makes the vhost use the database, or NULL. */
static const char *database_user(const gettoken_server_conf *conf)
{
    if (conf->in_use && conf->binding->sql)
        return "GetTokenEnrollmentSQL";
    if (conf->in_use && conf->audit->sql)
        return "GetTokenAuditSQL";
    if (gettoken_watch_verify_ready(conf))
        return "GetTokenWatchPairingTrust";
    return NULL;
}

/* The tables the httpd user writes in this vhost, or NULL. */
static const char *tables_written(const gettoken_server_conf *conf)
{
    int audit = conf->in_use && conf->audit->sql;

    if (gettoken_watch_verify_ready(conf) && audit)
        return "gettoken_pairing_jti and the GetTokenAuditSQL table";
    if (gettoken_watch_verify_ready(conf))
        return "gettoken_pairing_jti";
    if (audit)
        return "the GetTokenAuditSQL table";
    return NULL;
}

/* Can the user httpd's children run as do `want` (bits of S_IRWXO) to a
 * file with this owner, group and mode? */
static int child_user_may(const struct stat *st, unsigned want)
{
    uid_t uid = ap_unixd_config.user_id;
    gid_t gid = ap_unixd_config.group_id;

    if (uid == 0)
        return 1;
    if (st->st_uid == uid)
        return ((st->st_mode >> 6) & want) == want;
    if (st->st_gid == gid)
        return ((st->st_mode >> 3) & want) == want;
    return (st->st_mode & want) == want;
}

static void warn_sqlite_access(server_rec *s, const gettoken_server_conf *conf,
                               const char *path, apr_pool_t *p)
{
    const char *writes = tables_written(conf);
    char *dir = apr_pstrdup(p, path), *slash = strrchr(dir, '/');
    struct stat st, dst;
    const char *problem = NULL;

    if (slash)
        *(slash == dir ? slash + 1 : slash) = '\0';
    else
        dir = ".";
    if (stat(path, &st) != 0)
        problem = "does not exist (a typo in DBDParams? SQLite would create "
                  "an empty database without the tables: GetTokens get 503)";
    else if (!child_user_may(&st, S_IROTH))
        problem = "cannot be read by the httpd user (GetTokens get 503)";
    else if (writes && !child_user_may(&st, S_IWOTH))
        problem = apr_psprintf(p, "cannot be written by the httpd user, who "
                               "writes %s (requests that write get 503)",
                               writes);
    else if (writes && (stat(dir, &dst) != 0
                        || !child_user_may(&dst, S_IWOTH | S_IXOTH)))
        problem = apr_psprintf(p, "is in a directory (%s) the httpd user "
                               "cannot write, and SQLite must create its "
                               "journal there to write %s (requests that "
                               "write get 503)", dir, writes);
    if (problem)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, GTLOGNO(00802)
                     "%s in %s: the SQLite database %s %s",
                     database_user(conf), gettoken_vhost_name(s, p), path,
                     problem);
}

static void warn_database(server_rec *s, const gettoken_server_conf *conf,
                          apr_pool_t *p)
{
    const char *user = database_user(conf), *driver, *params;

    if (!user || !gettoken_dbd_loaded())
        return;      /* without mod_dbd the config test stopped already */
    driver = directive_in_scope(s, "DBDriver", p);
    if (!driver) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, GTLOGNO(00803)
                     "%s in %s: no DBDriver applies to this vhost, so mod_dbd "
                     "has no connection to give (GetTokens get 503): add "
                     "DBDriver and DBDParams to the vhost",
                     user, gettoken_vhost_name(s, p));
        return;
    }
    params = directive_in_scope(s, "DBDParams", p);
    if (!strcasecmp(driver, "sqlite3") && params && *params)
        warn_sqlite_access(s, conf, params, p);
}

/* A key file anyone but root may read (or change) is a key that leaked. */
static void warn_key_file(server_rec *s, const char *directive,
                          const char *path, apr_hash_t *seen, apr_pool_t *p)
{
    struct stat st;
    int foreign_owner;

    if (!path || gt_key_is_uri(path)
        || apr_hash_get(seen, path, APR_HASH_KEY_STRING))
        return;
    apr_hash_set(seen, path, APR_HASH_KEY_STRING, path);
    if (stat(path, &st) != 0)
        return;     /* loading it failed and said so */
    foreign_owner = geteuid() == 0 && st.st_uid != 0;
    if (!foreign_owner && !(st.st_mode & (S_IRWXG | S_IRWXO)))
        return;
    ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, GTLOGNO(00804)
                 "%s %s in %s: the key file is %s (mode %04o, owner uid %ld): "
                 "make it root's, mode 0600 or 0400 (httpd reads it as root "
                 "at start-up)", directive, path, gettoken_vhost_name(s, p),
                 foreign_owner ? "not owned by root" : "open to group or others",
                 (unsigned)(st.st_mode & 07777), (long)st.st_uid);
}

static void warn_uuid(server_rec *s, const char *directive, const char *uuid,
                      apr_pool_t *p)
{
    const char *c;
    int upper = 0, nonzero = 0;

    if (!uuid)
        return;
    for (c = uuid; *c; c++) {
        upper |= (*c >= 'A' && *c <= 'F');
        nonzero |= (*c != '0' && *c != '-');
    }
    if (!nonzero)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, GTLOGNO(00805)
                     "%s %s in %s is the nil UUID, never a server's: use the "
                     "server_uuid of AccountDetail", directive, uuid,
                     gettoken_vhost_name(s, p));
    else if (upper)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, GTLOGNO(00806)
                     "%s %s in %s has upper-case letters and goes into iss as "
                     "written: copy the server_uuid of AccountDetail exactly",
                     directive, uuid, gettoken_vhost_name(s, p));
}

void gettoken_warnings_log(apr_pool_t *pconf, apr_pool_t *ptemp, server_rec *s)
{
    apr_hash_t *seen_keys = apr_hash_make(ptemp);
    server_rec *vs;

    (void)pconf;
    /* start-up reads the configuration twice: warn on the run that stays */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG)
        return;
    for (vs = s; vs; vs = vs->next) {
        gettoken_server_conf *conf = gettoken_server_config(vs);

        if (gettoken_watch_verify_ready(conf) && !conf->in_use)
            warn_database(vs, conf, ptemp);   /* a watch MDM's verify vhost */
        if (!conf->in_use)
            continue;
        warn_uuid(vs, "GetTokenServerUUID", conf->keys->server_uuid, ptemp);
        warn_key_file(vs, "GetTokenSigningKey", conf->keys->signing.where,
                      seen_keys, ptemp);
        warn_key_file(vs, "GetTokenWatchPairingKey", conf->keys->pairing.where,
                      seen_keys, ptemp);
        warn_ssl_identity(vs, conf, ptemp);
        warn_database(vs, conf, ptemp);
    }
}

/* ---- as the httpd user, in the first child ------------------------------ */

/*
 * One write the httpd user must be allowed, tried inside a transaction
 * that is rolled back: with the database's own permission system (GRANT)
 * only a real write tells.  stmt: a prepared statement run with args, or
 * NULL to run sql as it is.  Drivers without transactions are not tried.
 */
static void try_write(server_rec *s, ap_dbd_t *dbd, apr_pool_t *p,
                      const char *directive, const char *table, const char *sql,
                      apr_dbd_prepared_t *stmt)
{
    apr_dbd_transaction_t *trans = NULL;
    const char *err = NULL;
    int nrows = 0, rv;

    if (apr_dbd_transaction_start(dbd->driver, p, dbd->handle, &trans) != 0
        || !trans)
        return;
    if (stmt)
        rv = apr_dbd_pvquery(dbd->driver, p, dbd->handle, &nrows, stmt,
                             "gettoken-start-up-check", "", "", "", "0", "",
                             NULL);
    else
        rv = apr_dbd_query(dbd->driver, dbd->handle, &nrows, sql);
    if (rv != 0)
        err = gettoken_dbd_error(p, dbd, rv);
    apr_dbd_transaction_mode_set(dbd->driver, trans,
                                 APR_DBD_TRANSACTION_ROLLBACK);
    apr_dbd_transaction_end(dbd->driver, p, trans);
    if (err)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, GTLOGNO(00807)
                     "%s in %s: a test write (rolled back) to %s failed at "
                     "start-up: %s", directive, gettoken_vhost_name(s, p),
                     table, err);
    else
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s, GTLOGNO(00808)
                     "%s in %s: a test write (rolled back) to %s succeeded",
                     directive, gettoken_vhost_name(s, p), table);
}

static void check_writes(server_rec *s, const gettoken_server_conf *conf,
                         ap_dbd_t *dbd, apr_pool_t *p)
{
    apr_dbd_prepared_t *stmt = NULL;
    int rv;

    if (gettoken_watch_verify_ready(conf))
        try_write(s, dbd, p, "GetTokenWatchPairingTrust",
                  "gettoken_pairing_jti",
                  "INSERT INTO gettoken_pairing_jti (jti, expires_at) "
                  "VALUES ('gettoken-start-up-check', 0)", NULL);
    if (!conf->in_use || !conf->audit->sql)
        return;
    rv = apr_dbd_prepare(dbd->driver, p, dbd->handle, conf->audit->sql, NULL,
                         &stmt);
    if (rv == 0 && stmt)
        try_write(s, dbd, p, "GetTokenAuditSQL", "its table", NULL, stmt);
    else    /* MySQL checks the privilege when preparing */
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, GTLOGNO(00810)
                     "GetTokenAuditSQL in %s: the statement does not prepare "
                     "as the httpd user at start-up (no audit rows): %s",
                     gettoken_vhost_name(s, p),
                     gettoken_dbd_error(p, dbd, rv));
}

/*
 * Databases other than SQLite (whose files the parent judged by their mode
 * bits), from the first child of a generation: it runs as the User
 * the requests will run as, which is what a database that authenticates
 * by the OS user (PostgreSQL's peer) sees, and through mod_dbd's own pool.
 */
void gettoken_warnings_child_init(apr_pool_t *p, server_rec *s)
{
    APR_OPTIONAL_FN_TYPE(ap_dbd_open) *dbd_open;
    APR_OPTIONAL_FN_TYPE(ap_dbd_close) *dbd_close;
    server_rec *vs;

    dbd_open = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_open);
    dbd_close = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_close);
    if (!dbd_open || !dbd_close || !gettoken_status_first_child())
        return;
    for (vs = s; vs; vs = vs->next) {
        const gettoken_server_conf *conf = gettoken_server_config(vs);
        apr_pool_t *tmp = NULL;
        const char *driver;
        ap_dbd_t *dbd;

        if (!tables_written(conf) || apr_pool_create(&tmp, p) != APR_SUCCESS)
            continue;
        driver = directive_in_scope(vs, "DBDriver", tmp);
        if (!driver || !strcasecmp(driver, "sqlite3")) {
            apr_pool_destroy(tmp);      /* judged in the parent already */
            continue;
        }
        dbd = dbd_open(tmp, vs);
        if (!dbd)
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, vs, GTLOGNO(00809)
                         "%s in %s: no database connection at start-up "
                         "(database down, DBDParams wrong, or a statement "
                         "that does not prepare: are the tables of "
                         "conf/schema/ there?); requests get 503 until it "
                         "comes", database_user(conf),
                         gettoken_vhost_name(vs, tmp));
        else {
            check_writes(vs, conf, dbd, tmp);
            dbd_close(vs, dbd);
        }
        apr_pool_destroy(tmp);
    }
}
