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

#include "apr_buckets.h"
#include "apr_strings.h"
#include "http_protocol.h"
#include "http_request.h"

APLOG_USE_MODULE(gettoken);

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

static int is_checkin_method(const request_rec *r)
{
    return r->method_number == M_PUT || r->method_number == M_POST;
}

/* The Content-Length the client announced, or -1 (chunked, or absent). */
static apr_off_t announced_length(request_rec *r)
{
    const char *cl = apr_table_get(r->headers_in, "Content-Length");
    apr_off_t n;

    if (!cl || apr_table_get(r->headers_in, "Transfer-Encoding"))
        return -1;
    if (apr_strtoff(&n, cl, NULL, 10) != APR_SUCCESS || n < 0)
        return -1;
    return n;
}

static int send_token(request_rec *r, const gettoken_token *tok)
{
    apr_size_t len;
    const char *xml = gt_checkin_response_xml(r->pool, tok->data, tok->len, &len);
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);

    ap_set_content_type(r, "application/xml");
    ap_set_content_length(r, (apr_off_t)len);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(xml, len,
                                                           bb->bucket_alloc));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_eos_create(bb->bucket_alloc));
    if (ap_pass_brigade(r->output_filters, bb) != APR_SUCCESS)
        r->connection->aborted = 1;   /* the client went away; nothing to add */
    return OK;
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

static int answer_gettoken(request_rec *r, const gettoken_server_conf *conf,
                           const gt_checkin *msg, const char *body,
                           apr_size_t body_len)
{
    gettoken_request req;
    gettoken_token tok;
    int status;

    memset(&req, 0, sizeof(req));
    memset(&tok, 0, sizeof(tok));
    fill_request(r, msg, &req);
    apr_table_setn(r->subprocess_env, "GETTOKEN_SERVICE",
                   ap_escape_logitem(r->pool, req.service_type));
    apr_table_setn(r->subprocess_env, "GETTOKEN_ENROLLMENT",
                   ap_escape_logitem(r->pool, req.enrollment_id));

    status = gettoken_identity_find(r, conf, body, body_len, &req);
    if (status != OK)
        return status;
    status = gettoken_binding_check(r, conf, &req);
    if (status != OK)
        return status;

    status = gettoken_run_generate_token(&req, &tok);
    if (status == DECLINED) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                      "GetToken refused (400): no token service recognises "
                      "TokenServiceType '%s'",
                      ap_escape_logitem(r->pool, req.service_type));
        return HTTP_BAD_REQUEST;
    }
    if (status != OK)
        return status;   /* the service logged why */
    if (!tok.data) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                      "GetToken failed (500): the service for '%s' returned "
                      "OK without a token",
                      ap_escape_logitem(r->pool, req.service_type));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    if (tok.jti)
        apr_table_setn(r->subprocess_env, "GETTOKEN_JTI", tok.jti);
    return send_token(r, &tok);
}

int gettoken_handler(request_rec *r)
{
    const gettoken_dir_conf *dir;
    const gettoken_server_conf *conf;
    gettoken_body_state state;
    const char *body = NULL, *why = NULL;
    apr_size_t len = 0;
    apr_off_t announced;
    gt_checkin msg;
    int status;

    if (r->main || !is_checkin_method(r))
        return DECLINED;
    dir = ap_get_module_config(r->per_dir_config, &gettoken_module);
    if (!dir || dir->enabled != 1)
        return DECLINED;
    if (ap_get_module_config(r->request_config, &gettoken_module))
        return DECLINED;    /* looked at already (body kept for replay) */
    conf = gettoken_server_config(r->server);

    announced = announced_length(r);
    if (announced > (apr_off_t)conf->max_body) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, GT_LOG_PREFIX
                      "Content-Length %" APR_OFF_T_FMT " is over "
                      "GetTokenMaxBodySize: not a GetToken, passed on unread",
                      announced);
        return DECLINED;
    }

    status = gettoken_body_read(r, conf->max_body, &state, &body, &len);
    if (status != OK)
        return status;
    if (state == GT_BODY_TOO_LARGE) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, GT_LOG_PREFIX
                      "body is over GetTokenMaxBodySize: not a GetToken, "
                      "passed on whole");
        gettoken_body_replay(r);
        return DECLINED;
    }

    switch (gt_checkin_parse(r->pool, body, len, &checkin_limits, &msg, &why)) {
    case GT_CHECKIN_NOT_OURS:
        ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, GT_LOG_PREFIX
                      "not a GetToken (%s): passed on", why);
        gettoken_body_replay(r);
        return DECLINED;
    case GT_CHECKIN_INVALID:
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, GT_LOG_PREFIX
                      "GetToken refused (400): %s", why);
        return HTTP_BAD_REQUEST;
    case GT_CHECKIN_GETTOKEN:
        break;
    }
    return answer_gettoken(r, conf, &msg, body, len);
}
