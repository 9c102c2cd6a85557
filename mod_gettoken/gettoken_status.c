/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_status.c - what mod_gettoken did, for mod_status: tokens issued
 * (per service type), GetTokens refused (per HTTP status), check-ins passed
 * through, watches admitted and refused at the enrollment gate, security
 * tokens recorded for watches, and the mean time a token took to sign.
 *
 * The counters live in one anonymous shared-memory segment that the parent
 * creates at its first start-up and keeps in the process pool, which lives
 * as long as the parent: children fork with it mapped, and a graceful
 * restart (which reloads this module and runs post_config again) finds it
 * there, so the numbers are server-wide and survive restarts.  Updates are
 * lock-free apr_atomic operations (APR 1.7's 64-bit ones compile to CPU
 * atomics on Linux, which work across processes in shared memory).
 */
#include "gettoken_private.h"
#include "gettoken_status.h"

#include "apr_atomic.h"
#include "apr_shm.h"
#include "apr_strings.h"
#include "ap_mpm.h"
#include "http_protocol.h"
#include "mod_status.h"

/* Where the parent keeps the segment between restarts. */
#define SHM_USERDATA_KEY "gettoken_status_shm"

enum {
    C_ISSUED, C_REFUSED, C_PASSED_THROUGH, C_WATCH_ADMITTED,
    C_ISSUED_MAID, C_ISSUED_WATCH_PAIRING, C_ISSUED_OTHER,
    C_REFUSED_400, C_REFUSED_401, C_REFUSED_403, C_REFUSED_500,
    C_REFUSED_503, C_REFUSED_OTHER,
    C_SIGNED, C_SIGNING_USEC,
    C_WATCH_REFUSED, C_WATCH_SECURITY_TOKENS,
    C_COUNT
};

/* "GetToken<name>: N" in ?auto; the order of the lines. */
static const char *const counter_names[C_COUNT] = {
    "Issued", "Refused", "PassedThrough", "WatchAdmitted",
    "IssuedMaid", "IssuedWatchPairing", "IssuedOther",
    "Refused400", "Refused401", "Refused403", "Refused500",
    "Refused503", "RefusedOther",
    "Signed", "SigningMicrosecondsTotal",
    "WatchRefused", "WatchSecurityTokens"
};

typedef struct {
    volatile apr_uint64_t n[C_COUNT];
    /* generation + 1 of the last child that ran the start-up checks */
    volatile apr_uint32_t checked_generation;
} gettoken_counters;

/* NULL when the segment could not be made: counting is then skipped. */
static gettoken_counters *counters;

int gettoken_status_init(apr_pool_t *pconf, server_rec *s)
{
    apr_pool_t *proc = s->process->pool;
    apr_shm_t *shm = NULL;
    apr_status_t rv;

    (void)pconf;
    apr_pool_userdata_get((void **)&shm, SHM_USERDATA_KEY, proc);
    if (!shm) {
        rv = apr_shm_create(&shm, sizeof(gettoken_counters), NULL, proc);
        if (rv != APR_SUCCESS) {
            counters = NULL;
            ap_log_error(APLOG_MARK, APLOG_ERR, rv, s, GTLOGNO(00701)
                         "no shared memory for the server-status counters: "
                         "they stay empty");
            return OK;      /* counting is not worth refusing to start */
        }
        memset(apr_shm_baseaddr_get(shm), 0, sizeof(gettoken_counters));
        apr_pool_userdata_set(shm, SHM_USERDATA_KEY, apr_pool_cleanup_null,
                              proc);
    }
    counters = apr_shm_baseaddr_get(shm);
    return OK;
}

static int refused_index(int http_status)
{
    switch (http_status) {
    case HTTP_BAD_REQUEST:          return C_REFUSED_400;
    case HTTP_UNAUTHORIZED:         return C_REFUSED_401;
    case HTTP_FORBIDDEN:            return C_REFUSED_403;
    case HTTP_INTERNAL_SERVER_ERROR: return C_REFUSED_500;
    case HTTP_SERVICE_UNAVAILABLE:  return C_REFUSED_503;
    default:                        return C_REFUSED_OTHER;
    }
}

static int issued_index(const char *service_type)
{
    if (service_type && !strcmp(service_type, GETTOKEN_SERVICE_MAID))
        return C_ISSUED_MAID;
    if (service_type && !strcmp(service_type, GETTOKEN_SERVICE_WATCH_PAIRING))
        return C_ISSUED_WATCH_PAIRING;
    return C_ISSUED_OTHER;
}

void gettoken_status_count(gettoken_stat_event ev, const char *service_type,
                           int http_status)
{
    if (!counters)
        return;
    switch (ev) {
    case GT_STAT_ISSUED:
        apr_atomic_inc64(&counters->n[C_ISSUED]);
        apr_atomic_inc64(&counters->n[issued_index(service_type)]);
        break;
    case GT_STAT_REFUSED:
        apr_atomic_inc64(&counters->n[C_REFUSED]);
        apr_atomic_inc64(&counters->n[refused_index(http_status)]);
        break;
    case GT_STAT_PASSED_THROUGH:
        apr_atomic_inc64(&counters->n[C_PASSED_THROUGH]);
        break;
    case GT_STAT_WATCH_ADMITTED:
        apr_atomic_inc64(&counters->n[C_WATCH_ADMITTED]);
        break;
    case GT_STAT_WATCH_REFUSED:
        apr_atomic_inc64(&counters->n[C_WATCH_REFUSED]);
        break;
    case GT_STAT_WATCH_SECURITY_TOKEN:
        apr_atomic_inc64(&counters->n[C_WATCH_SECURITY_TOKENS]);
        break;
    }
}

void gettoken_status_signing_time(apr_interval_time_t t)
{
    if (!counters || t < 0)
        return;
    apr_atomic_inc64(&counters->n[C_SIGNED]);
    apr_atomic_add64(&counters->n[C_SIGNING_USEC], (apr_uint64_t)t);
}

int gettoken_status_first_child(void)
{
    int gen = 0;
    apr_uint32_t mine;

    if (!counters || ap_mpm_query(AP_MPMQ_GENERATION, &gen) != APR_SUCCESS)
        return 0;
    mine = (apr_uint32_t)gen + 1;
    return apr_atomic_xchg32(&counters->checked_generation, mine) != mine;
}

int gettoken_status_hook(request_rec *r, int flags)
{
    apr_uint64_t v[C_COUNT], mean;
    int i;

    if (!counters)
        return OK;
    for (i = 0; i < C_COUNT; i++)
        v[i] = apr_atomic_read64(&counters->n[i]);
    mean = v[C_SIGNED] ? v[C_SIGNING_USEC] / v[C_SIGNED] : 0;

    if (flags & AP_STATUS_SHORT) {
        for (i = 0; i < C_COUNT; i++)
            ap_rprintf(r, "GetToken%s: %" APR_UINT64_T_FMT "\n",
                       counter_names[i], v[i]);
        ap_rprintf(r, "GetTokenSigningMicrosecondsMean: %" APR_UINT64_T_FMT
                   "\n", mean);
        return OK;
    }
    ap_rputs("<hr />\n<h2><a name=\"gettoken\">GetToken</a></h2>\n", r);
    ap_rprintf(r, "<p>Tokens issued: %" APR_UINT64_T_FMT
               " (com.apple.maid %" APR_UINT64_T_FMT
               ", com.apple.watch.pairing %" APR_UINT64_T_FMT
               ", other %" APR_UINT64_T_FMT "), mean signing time %"
               APR_UINT64_T_FMT " &micro;s</p>\n",
               v[C_ISSUED], v[C_ISSUED_MAID], v[C_ISSUED_WATCH_PAIRING],
               v[C_ISSUED_OTHER], mean);
    ap_rprintf(r, "<p>GetTokens refused: %" APR_UINT64_T_FMT
               " (400: %" APR_UINT64_T_FMT ", 401: %" APR_UINT64_T_FMT
               ", 403: %" APR_UINT64_T_FMT ", 500: %" APR_UINT64_T_FMT
               ", 503: %" APR_UINT64_T_FMT ", other: %" APR_UINT64_T_FMT
               ")</p>\n", v[C_REFUSED], v[C_REFUSED_400], v[C_REFUSED_401],
               v[C_REFUSED_403], v[C_REFUSED_500], v[C_REFUSED_503],
               v[C_REFUSED_OTHER]);
    ap_rprintf(r, "<p>Check-ins passed through: %" APR_UINT64_T_FMT
               "; watches admitted: %" APR_UINT64_T_FMT ", refused at the "
               "enrollment gate: %" APR_UINT64_T_FMT ", security tokens "
               "recorded: %" APR_UINT64_T_FMT "</p>\n",
               v[C_PASSED_THROUGH], v[C_WATCH_ADMITTED], v[C_WATCH_REFUSED],
               v[C_WATCH_SECURITY_TOKENS]);
    return OK;
}

