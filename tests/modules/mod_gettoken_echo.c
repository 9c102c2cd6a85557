/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * mod_gettoken_echo.c - a third-party token service for the tests.
 *
 * Adds TokenServiceType "com.example.echo" through mod_gettoken's public
 * hook, without touching mod_gettoken: TokenData is
 * "echo:<enrollment id>:<TokenParameters Message>".  TokenParameters
 * Status = "<http status>" makes it end the request with that status, to
 * exercise the hook's status path.  TokenServiceType
 * "com.example.organization" answers "<organization> <server UUID>": what
 * the public request says about the device's organisation.
 */
#include "httpd.h"
#include "http_config.h"
#include "http_log.h"
#include "apr_strings.h"

#include "mod_gettoken.h"

module AP_MODULE_DECLARE_DATA gettoken_echo_module;

static int echo_generate(const gettoken_request *req, gettoken_token *tok)
{
    const char *message = NULL, *status;

    if (strcmp(req->service_type, "com.example.organization") == 0) {
        tok->data = apr_pstrcat(req->r->pool, req->organization, " ",
                                req->organization_server_uuid, NULL);
        tok->len = strlen(tok->data);
        return OK;
    }
    if (strcmp(req->service_type, "com.example.echo") != 0)
        return DECLINED;
    if (req->token_parameters) {
        status = apr_table_get(req->token_parameters, "Status");
        if (status) {
            int code = atoi(status);
            if (code >= 400 && code <= 599) {
                ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, req->r,
                              "gettoken_echo: refusing with status %d as asked",
                              code);
                return code;
            }
        }
        message = apr_table_get(req->token_parameters, "Message");
    }
    tok->data = apr_pstrcat(req->r->pool, "echo:", req->enrollment_id, ":",
                            message ? message : "", NULL);
    tok->len = strlen(tok->data);
    return OK;
}

static void echo_register_hooks(apr_pool_t *p)
{
    (void)p;
    gettoken_hook_generate_token(echo_generate, NULL, NULL, APR_HOOK_MIDDLE);
}

AP_DECLARE_MODULE(gettoken_echo) = {
    STANDARD20_MODULE_STUFF,
    NULL, NULL, NULL, NULL, NULL,
    echo_register_hooks,
    AP_MODULE_FLAG_NONE
};
