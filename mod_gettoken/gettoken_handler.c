/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_handler.c - answering a GetToken check-in.
 *
 * Runs before the location's own handler.  A PUT/POST body that is not a
 * GetToken (or not a plist, or too large to be one) is put back and the
 * request declined, so the MDM behind the location sees it untouched.
 * A GetToken is validated, its device identity established and bound to
 * the enrollment, and the token services asked through the public hook.
 */
#include "gettoken_private.h"
#include "gettoken_body.h"
#include "gettoken_status.h"

#include "apr_strings.h"
#include "http_protocol.h"
#include "http_request.h"

APR_HOOK_STRUCT(
    APR_HOOK_LINK(generate_token)
)

APR_IMPLEMENT_EXTERNAL_HOOK_RUN_FIRST(gettoken, GETTOKEN, int, generate_token,
                                      (const gettoken_request *req,
                                       gettoken_token *tok),
                                      (req, tok), DECLINED)

static const gt_plist_limits checkin_limits = {
    GT_PLIST_MAX_DEPTH, GT_PLIST_MAX_OBJECTS, GT_PLIST_MAX_EXPANDED
};

const char *gettoken_set_enabled(cmd_parms *cmd, void *dirv, int on)
{
    gettoken_dir_conf *dir = dirv;

    dir->enabled = on;
    if (on)
        gettoken_server_config(cmd->server)->in_use = 1;
    return NULL;
}

const char *gettoken_set_max_body(cmd_parms *cmd, void *dirv, const char *arg)
{
    gettoken_server_conf *conf = gettoken_server_config(cmd->server);
    apr_int64_t v = 0;
    /* libplist takes 32-bit lengths; a check-in is a few kilobytes */
    const char *err = gettoken_parse_number(cmd, arg, 16 * 1024 * 1024, &v);

    (void)dirv;
    conf->max_body = (apr_size_t)v;
    conf->max_body_set = 1;
    return err;
}

static int is_checkin_method(const request_rec *r)
{
    return r->method_number == M_PUT || r->method_number == M_POST;
}

static int send_token(request_rec *r, const gettoken_token *tok)
{
    apr_size_t len;
    const char *xml = gt_checkin_response_xml(r->pool, tok->data, tok->len, &len);

    return gettoken_send_answer(r, "application/xml", xml, len);
}

static void fill_request(request_rec *r, const gt_checkin *msg,
                         gettoken_request *req)
{
    req->r = r;
    req->service_type = msg->service_type;
    req->udid = msg->udid;
    req->enrollment_id = gt_checkin_enrollment(msg);
    req->user_enrollment_id = msg->enrollment_id;
    req->enrollment_user_id = msg->enrollment_user_id;
    req->user_short_name = msg->user_short_name;
    req->user_id = msg->user_id;
    req->user_long_name = msg->user_long_name;
    req->token_parameters = msg->token_parameters;
}

/*
 * A GETTOKEN_* variable for mod_log_config, from a message that passed
 * validation.  Only a value within the GetToken string bound and free of
 * control characters is set: an access-log line stays short whatever was
 * sent, and the value is safe wherever the variable goes (log formats,
 * headers, a CGI's environment).  mod_log_config escapes it once itself.
 */
static void set_log_env(request_rec *r, const char *name, const char *value)
{
    const unsigned char *p;

    if (!value)
        return;
    for (p = (const unsigned char *)value; *p; p++)
        if (*p < 0x20 || *p == 0x7f
            || p - (const unsigned char *)value >= GT_ENV_VALUE_MAX)
            return;
    apr_table_setn(r->subprocess_env, name, value);
}

static int answer_gettoken(request_rec *r, const gettoken_server_conf *conf,
                           const gt_checkin *msg, const char *body,
                           apr_size_t body_len)
{
    gettoken_request req;
    gettoken_token tok;
    apr_time_t signing_start;
    int status;

    memset(&req, 0, sizeof(req));
    memset(&tok, 0, sizeof(tok));
    fill_request(r, msg, &req);
    set_log_env(r, "GETTOKEN_SERVICE", req.service_type);
    set_log_env(r, "GETTOKEN_ENROLLMENT", req.enrollment_id);

    status = gettoken_identity_find(r, conf, body, body_len, &req);
    if (status != OK)
        return status;
    apr_table_setn(r->notes, GT_NOTE_IDENTITY, req.identity_sha256);
    /* the binding, then the organisation: one query when both are SQL */
    status = gettoken_organization_choose(r, conf, &req);
    if (status != OK)
        return status;

    signing_start = apr_time_now();
    status = gettoken_run_generate_token(&req, &tok);
    if (status == OK)
        gettoken_status_signing_time(apr_time_now() - signing_start);
    if (status == DECLINED)
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_BAD_REQUEST,
                               GTLOGNO(01401), "no token service "
                               "recognises TokenServiceType '%s'",
                               ap_escape_logitem(r->pool, req.service_type));
    if (status != OK)
        return status;   /* the service logged why */
    if (!tok.data)
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN,
                               HTTP_INTERNAL_SERVER_ERROR, GTLOGNO(01402),
                               "the service for '%s' returned OK without a "
                               "token",
                               ap_escape_logitem(r->pool, req.service_type));
    if (tok.jti)
        set_log_env(r, "GETTOKEN_JTI", tok.jti);
    return send_token(r, &tok);
}

/* A check-in this handler will not answer goes on to the location. */
static int pass_on(request_rec *r, int replay)
{
    if (replay)
        gettoken_body_replay(r);
    gettoken_status_count(GT_STAT_PASSED_THROUGH, NULL, 0);
    return DECLINED;
}

/* The vhost's configuration when this request is one to look at, or
 * NULL to decline. */
static const gettoken_server_conf *conf_to_answer(request_rec *r,
                                                  const gettoken_dir_conf **dir)
{
    const gettoken_server_conf *conf;

    if (r->main || !is_checkin_method(r))
        return NULL;
    *dir = ap_get_module_config(r->per_dir_config, &gettoken_module);
    if (!*dir || (*dir)->enabled != 1 || gettoken_body_was_read(r))
        return NULL;
    conf = gettoken_server_config(r->server);
    if (!conf || !conf->ready) {
        /* GetToken On reached a vhost whose keys and statements were
         * never set up: leave the request to the location's handler */
        ap_log_rerror(APLOG_MARK, APLOG_WARNING, 0, r, GTLOGNO(01403)
                      "GetToken On in %s, which did not pass the start-up "
                      "checks: request passed on",
                      gettoken_vhost_name(r->server, r->pool));
        return NULL;
    }
    return conf;
}

int gettoken_handler(request_rec *r)
{
    const gettoken_dir_conf *dir = NULL;
    const gettoken_server_conf *conf = conf_to_answer(r, &dir);
    gettoken_body_state state;
    const char *body = NULL, *why = NULL;
    apr_size_t len = 0;
    apr_off_t announced;
    gt_checkin msg;
    int status;

    if (!conf)
        return DECLINED;
    announced = gettoken_body_announced(r);
    if (announced > (apr_off_t)conf->max_body) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, GTLOGNO(01404)
                      "Content-Length %" APR_OFF_T_FMT " is over "
                      "GetTokenMaxBodySize: not a GetToken, passed on unread",
                      announced);
        return pass_on(r, 0);
    }
    status = gettoken_body_read(r, conf->max_body, &state, &body, &len);
    if (status != OK)
        return status;
    if (state == GT_BODY_TOO_LARGE) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, GTLOGNO(01405)
                      "body is over GetTokenMaxBodySize: not a GetToken, "
                      "passed on whole");
        return pass_on(r, 1);
    }

    switch (gt_checkin_parse(r->pool, body, len, &checkin_limits, &msg, &why)) {
    case GT_CHECKIN_NOT_OURS:
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, GTLOGNO(01406)
                      "not a GetToken (%s): passed on", why);
        return pass_on(r, 1);
    case GT_CHECKIN_INVALID:
        gettoken_status_count(GT_STAT_REFUSED, NULL, HTTP_BAD_REQUEST);
        return gettoken_refuse(r, GT_REFUSED_GETTOKEN, HTTP_BAD_REQUEST,
                               GTLOGNO(01407), "%s", why);
    case GT_CHECKIN_GETTOKEN:
        if (gettoken_service_answered_here(dir, msg.service_type))
            break;
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, GTLOGNO(01408)
                      "GetToken of a type not in GetTokenServices: passed on");
        return pass_on(r, 1);
    }
    status = answer_gettoken(r, conf, &msg, body, len);
    gettoken_answered(r, conf, &msg, status);
    return status;
}
