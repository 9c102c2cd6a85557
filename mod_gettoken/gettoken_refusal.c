/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * gettoken_refusal.c - the log line of every refused request: a GetToken,
 * a watch at the enrollment profile URL, a pairing token to verify.
 *
 * One line per refusal, in one format, naming what was refused, the
 * status, the vhost and why, and for a GetToken the enrollment the message
 * speaks for -- "claimed" until the identity was bound to it.  A refusal
 * is mostly a device's problem (4xx: warn) and only sometimes the
 * server's (5xx: error).  A stale device retries the same request for
 * ever, so a refusal that repeats one already logged for the same client,
 * vhost and reason within REPEAT_WINDOW goes to LogLevel info, and the
 * next full line says how many there were.  The memory of what was logged
 * is a small fixed table per child: bounded whatever the clients do; a
 * slot taken over by another refusal only means one more full line.
 */
#include "gettoken_private.h"
#include "gettoken_dbd.h"
#include "gettoken_status.h"

#include "apr_strings.h"
#include "apr_thread_mutex.h"
#include "http_protocol.h"

#define REPEAT_WINDOW_SEC 60
#define REPEAT_SLOTS      256

typedef struct {
    apr_uint64_t key;       /* hash of client, vhost, status and reason */
    apr_time_t since;       /* when it was last logged in full */
    apr_uint32_t repeats;   /* logged at info since then */
} repeat_slot;

static repeat_slot slots[REPEAT_SLOTS];
/* NULL (no child_init yet, or no mutex): every refusal is logged in full */
static apr_thread_mutex_t *slots_lock;

void gettoken_refusal_child_init(apr_pool_t *p, server_rec *s)
{
    apr_status_t rv = apr_thread_mutex_create(&slots_lock,
                                              APR_THREAD_MUTEX_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        slots_lock = NULL;
        ap_log_error(APLOG_MARK, APLOG_WARNING, rv, s, GTLOGNO(00401)
                     "no mutex for grouping repeated refusals: each one is "
                     "logged in full");
    }
}

/* FNV-1a over a string and its terminating NUL (so "a","bc" != "ab","c"). */
static apr_uint64_t hash_add(apr_uint64_t h, const char *s)
{
    do {
        h ^= (unsigned char)*s;
        h *= APR_UINT64_C(1099511628211);
    } while (*s++);
    return h;
}

/* How many refusals like this one were logged at info since the last full
 * line; -1 when this one is itself such a repeat. */
static long note_refusal(request_rec *r, const char *id, int status,
                         const char *reason)
{
    apr_uint64_t key = APR_UINT64_C(14695981039346656037);
    apr_time_t now = apr_time_now();
    repeat_slot *slot;
    long earlier = 0;

    if (!slots_lock)
        return 0;
    key = hash_add(key, r->useragent_ip ? r->useragent_ip : "");
    key = hash_add(key, r->server->defn_name ? r->server->defn_name : "");
    key = hash_add(key, apr_itoa(r->pool, (int)r->server->defn_line_number));
    key = hash_add(key, apr_itoa(r->pool, status));
    key = hash_add(key, id);
    key = hash_add(key, reason);
    slot = &slots[key % REPEAT_SLOTS];
    if (apr_thread_mutex_lock(slots_lock) != APR_SUCCESS)
        return 0;
    if (slot->key == key
        && now - slot->since < apr_time_from_sec(REPEAT_WINDOW_SEC)) {
        slot->repeats++;
        earlier = -1;
    }
    else {
        earlier = slot->key == key ? (long)slot->repeats : 0;
        slot->key = key;
        slot->since = now;
        slot->repeats = 0;
    }
    apr_thread_mutex_unlock(slots_lock);
    return earlier;
}

/* ", claimed enrollment X" / ", enrollment X", or "" before parsing. */
static const char *enrollment_part(request_rec *r)
{
    const char *id = apr_table_get(r->subprocess_env, "GETTOKEN_ENROLLMENT");

    if (!id)
        return "";
    return apr_pstrcat(r->pool,
                       apr_table_get(r->notes, GT_NOTE_BOUND)
                       ? ", enrollment " : ", claimed enrollment ",
                       ap_escape_logitem(r->pool, id), NULL);
}

static const char *const refused_what[] = {
    "GetToken",                 /* GT_REFUSED_GETTOKEN */
    "watch enrollment",         /* GT_REFUSED_WATCH_ENROLLMENT */
    "pairing verify"            /* GT_REFUSED_PAIRING_VERIFY */
};

static void log_refusal(request_rec *r, gettoken_refused what, int status,
                        const char *id, const char *reason)
{
    const char *where, *name = refused_what[what];
    long earlier;

    where = apr_pstrcat(r->pool, gettoken_vhost_name(r->server, r->pool),
                        enrollment_part(r), NULL);
    earlier = note_refusal(r, id, status, reason);
    /* the id is the caller's: "%s" first is GTLOGNO() of the call site */
    if (earlier < 0) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "%s%s refused (%d): %s; "
                      "vhost %s; repeated within %d s", id, name, status,
                      reason, where, REPEAT_WINDOW_SEC);
        return;
    }
    ap_log_rerror(APLOG_MARK, status >= 500 ? APLOG_ERR : APLOG_WARNING, 0, r,
                  "%s%s refused (%d): %s; vhost %s%s", id, name, status,
                  reason, where,
                  earlier > 0
                  ? apr_psprintf(r->pool, "; %ld more like it since the last "
                                 "such line, logged at info", earlier)
                  : "");
}

int gettoken_refuse(request_rec *r, gettoken_refused what, int status,
                    const char *id, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_refusal(r, what, status, id, apr_pvsprintf(r->pool, fmt, ap));
    va_end(ap);
    if (what == GT_REFUSED_WATCH_ENROLLMENT)
        gettoken_status_count(GT_STAT_WATCH_REFUSED, NULL, status);
    return status == HTTP_SERVICE_UNAVAILABLE ? gettoken_retry_later(r)
                                              : status;
}

int gettoken_no_connection(request_rec *r, gettoken_refused what,
                           const char *id, const char *purpose)
{
    return gettoken_refuse(r, what, HTTP_SERVICE_UNAVAILABLE, id,
                           GETTOKEN_DBD_NO_CONNECTION " for %s "
                           GETTOKEN_DBD_CHECK_SETUP, purpose);
}
