/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_binding.c - is this identity certificate the one enrolled for
 * the enrollment the message speaks for?  Asked of the MDM's database
 * through mod_dbd's connection pool with one prepared statement
 * (GetTokenEnrollmentSQL), the way mod_authn_dbd asks for passwords.
 */
#include "gettoken_private.h"
#include "gettoken_dbd.h"

#include "apr_dbd.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "mod_dbd.h"

gettoken_binding_conf *gettoken_binding_create(apr_pool_t *p)
{
    gettoken_binding_conf *conf = apr_pcalloc(p, sizeof(*conf));

    conf->sql = GT_DEFAULT_ENROLLMENT_SQL;
    return conf;
}

gettoken_binding_conf *gettoken_binding_merge(apr_pool_t *p,
                                              const gettoken_binding_conf *base,
                                              const gettoken_binding_conf *add)
{
    gettoken_binding_conf *conf = apr_pcalloc(p, sizeof(*conf));

    /* "none" is a setting of its own: NULL may override a statement */
    GETTOKEN_MERGE_FLAGGED(conf, base, add, sql, sql_set);
    conf->label = NULL;         /* prepared at start-up, per vhost */
    return conf;
}

const char *gettoken_set_enrollment_sql(cmd_parms *cmd, void *dirv,
                                        const char *arg)
{
    gettoken_binding_conf *conf = gettoken_server_config(cmd->server)->binding;

    (void)dirv;
    conf->sql = strcasecmp(arg, "none") ? arg : NULL;
    conf->sql_set = 1;
    return NULL;
}

int gettoken_binding_startup(const gettoken_startup *st, server_rec *s,
                             gettoken_server_conf *conf)
{
    /* one label per vhost: vhosts may use different SQL or databases */
    return gettoken_dbd_startup_statement(s, st->pconf, conf->in_use,
                                          "GetTokenEnrollmentSQL",
                                          ", or set GetTokenEnrollmentSQL none",
                                          conf->binding->sql, "enrollment",
                                          &conf->binding->label);
}

void gettoken_binding_warn(apr_pool_t *p, server_rec *s,
                           const gettoken_server_conf *conf)
{
    if (conf->in_use && !conf->binding->sql)
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, GTLOGNO(01301)
                     "GetTokenEnrollmentSQL none in %s: identities are not "
                     "bound to enrollments; only client certificates that "
                     "mod_ssl verified against SSLCACertificateFile count",
                     gettoken_vhost_name(s, p));
}

int gettoken_binding_unavailable(request_rec *r, const char *id,
                                 const char *detail)
{
    return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_SERVICE_UNAVAILABLE,
                           id, "GetTokenEnrollmentSQL failed%s%s",
                           detail ? ": " : "", detail ? detail : "");
}

int gettoken_binding_refuse(request_rec *r, const char *id,
                            const gettoken_request *req)
{
    return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_FORBIDDEN, id,
                           "the identity certificate (sha256 %s, from %s) is "
                           "not bound to the enrollment",
                           req->identity_sha256, req->identity_source);
}

void gettoken_binding_bound(request_rec *r)
{
    apr_table_setn(r->notes, GT_NOTE_BOUND, "1");
}

int gettoken_binding_check(request_rec *r, const gettoken_server_conf *conf,
                           const gettoken_request *req)
{
    const char *args[2];
    const char *err = NULL;
    int found = 0;

    if (!conf->binding->sql) {
        /* "none": mod_ssl's chain verification stands alone */
        gettoken_binding_bound(r);
        return OK;
    }

    /* mod_dbd blocks while the pool (DBDMax) is exhausted, until a request
     * gives a connection back; a database that is down fails at once (or
     * after connect_timeout in DBDParams) */
    args[0] = req->enrollment_id;
    args[1] = req->identity_sha256;
    if (gettoken_dbd_exists(r, conf->binding->label, conf->binding->sql, 2, args,
                            &found, &err) != 0)
        return gettoken_binding_unavailable(r, GTLOGNO(01302), err);
    if (!found)
        return gettoken_binding_refuse(r, GTLOGNO(01303), req);
    gettoken_binding_bound(r);
    return OK;
}
