/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_service_filter.c - GetTokenServices: which TokenServiceTypes a
 * location answers.  An MDM behind the location that answers some types
 * itself (e.g. com.apple.maid) keeps them: GetTokens of unlisted types go
 * on to it untouched, like every other check-in.
 */
#include "gettoken_private.h"

#include "apr_strings.h"

const char *gettoken_cmd_services(cmd_parms *cmd, void *dirv, int argc,
                                  char *const argv[])
{
    gettoken_dir_conf *dir = dirv;
    int i;

    if (argc == 0)
        return "GetTokenServices needs one or more TokenServiceTypes, e.g. "
               GETTOKEN_SERVICE_WATCH_PAIRING;
    dir->services = apr_array_make(cmd->pool, argc, sizeof(const char *));
    for (i = 0; i < argc; i++) {
        if (!*argv[i] || strlen(argv[i]) > GT_MAX_STRING)
            return "GetTokenServices: a TokenServiceType is 1 to "
                   APR_STRINGIFY(GT_MAX_STRING) " bytes";
        APR_ARRAY_PUSH(dir->services, const char *) = argv[i];
    }
    return NULL;
}

int gettoken_service_answered_here(const gettoken_dir_conf *dir,
                                   const char *service_type)
{
    int i;

    if (!dir->services)
        return 1;
    for (i = 0; i < dir->services->nelts; i++)
        if (!strcmp(APR_ARRAY_IDX(dir->services, i, const char *),
                    service_type))
            return 1;
    return 0;
}
