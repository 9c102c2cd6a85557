/* SPDX-License-Identifier: Apache-2.0
 * Copyright 2026 The mod_gettoken Authors */
/*
 * loadgen -- a small HTTPS load generator for bench/run.
 *
 * What ab(1) cannot do: present many distinct device client certificates
 * (one per simulated device, with the matching UDID in the request body),
 * open a fresh TLS connection with a full handshake for every request, and
 * report latency percentiles in microseconds.
 *
 * Every run is bounded both in request count (-n) and in wall time (-t).
 *
 * Build:  cc -O2 -pthread -o loadgen loadgen.c -lssl -lcrypto
 *
 * Usage:  loadgen -p PORT [-H 127.0.0.1] [-m GET|PUT|POST] [-u /path]
 *                 [-b body-template] [-i identities] [-C ca.pem]
 *                 [-c concurrency] [-n requests] [-t seconds] [-k]
 *                 [-e expected-substring] [-V 1.2|1.3] [-w warmup-requests]
 *                 [-B raw-body] [-s expected-status]
 *
 *   -i FILE   lines "UDID CERT.pem KEY.pem"; the client presents CERT/KEY.
 *             New-connection mode takes the next identity for every
 *             connection (round robin over all of them); keep-alive mode
 *             takes one per connection.
 *   -b FILE   request body; every "@UDID@" is replaced by the identity's UDID.
 *   -k        keep-alive: reuse each connection for all its requests.
 *             Without -k every request opens a new TCP+TLS connection
 *             (full handshake, session resumption disabled).
 *   -e STR    a 200 answer whose body lacks STR is counted as "badbody".
 *   -B FILE   request body sent byte for byte (binary plists: no @UDID@).
 *   -s CODE   every answer whose status is not CODE counts as "unexpected".
 *
 * Prints one JSON object on stdout.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct identity {
    char udid[128];
    char *certpath, *keypath;
    pthread_mutex_t mu;       /* loaded lazily, on first use */
    atomic_int loaded;
    X509 *cert;
    EVP_PKEY *key;
    char *req;      /* the full HTTP request for this identity */
    size_t reqlen;
};

static struct {
    const char *host;
    int port;
    const char *method;
    const char *path;
    char *body_tmpl;
    char *body_raw;
    size_t body_raw_len;
    int want_status;
    const char *expect;
    int conc;
    long total;
    double max_secs;
    int keepalive;
    int tls_version;
    long warmup;
} opt = { "127.0.0.1", 0, "GET", "/", NULL, NULL, 0, 0, NULL, 8, 1000, 30.0, 0, 0, 0 };

static struct identity *ids;
static int nids;
static SSL_CTX *ctx;
static struct sockaddr_in addr;

static atomic_long next_req;      /* request slots handed out */
static atomic_long next_id;       /* round robin over identities */
static atomic_long n_ok, n_non200, n_badbody, n_errors, n_conns, n_done, n_unexpected;
static atomic_long status_hist[6];  /* 1xx..5xx, [0] = other */
static uint32_t *lat_us;          /* latency of request i (slot index) */
static atomic_long n_lat;
static double t_start, t_deadline;
static atomic_int first_error_printed;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *m)
{
    fprintf(stderr, "loadgen: %s\n", m);
    ERR_print_errors_fp(stderr);
    exit(2);
}

static char *slurp(const char *fn, size_t *len)
{
    FILE *f = fopen(fn, "rb");
    if (!f) { perror(fn); exit(2); }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc(n + 1);
    if (fread(b, 1, n, f) != (size_t)n) { perror(fn); exit(2); }
    b[n] = 0;
    fclose(f);
    if (len) *len = n;
    return b;
}

/* body with every @UDID@ replaced */
static char *subst(const char *tmpl, const char *udid, size_t *outlen)
{
    size_t tl = strlen(tmpl), ul = strlen(udid), cap = tl + 1;
    const char *p = tmpl;
    while ((p = strstr(p, "@UDID@"))) { cap += ul; p += 6; }
    char *o = malloc(cap), *w = o;
    p = tmpl;
    for (;;) {
        const char *q = strstr(p, "@UDID@");
        if (!q) { strcpy(w, p); w += strlen(p); break; }
        memcpy(w, p, q - p); w += q - p;
        memcpy(w, udid, ul); w += ul;
        p = q + 6;
    }
    *outlen = w - o;
    return o;
}

static void build_request(struct identity *id)
{
    size_t blen = 0;
    char *body = opt.body_tmpl ? subst(opt.body_tmpl, id->udid, &blen) : NULL;
    if (opt.body_raw) {
        blen = opt.body_raw_len;
        body = malloc(blen);
        memcpy(body, opt.body_raw, blen);
    }
    size_t cap = 512 + strlen(opt.path) + blen;
    id->req = malloc(cap);
    int n = snprintf(id->req, cap,
                     "%s %s HTTP/1.1\r\nHost: %s:%d\r\nUser-Agent: gettoken-bench\r\n"
                     "%s%s",
                     opt.method, opt.path, opt.host, opt.port,
                     opt.keepalive ? "" : "Connection: close\r\n",
                     body ? "Content-Type: application/x-apple-aspen-mdm-checkin\r\n" : "");
    if (body)
        n += snprintf(id->req + n, cap - n, "Content-Length: %zu\r\n\r\n", blen);
    else
        n += snprintf(id->req + n, cap - n, "\r\n");
    if (body) { memcpy(id->req + n, body, blen); n += blen; free(body); }
    id->reqlen = n;
}

static void load_identities(const char *fn)
{
    FILE *f = fopen(fn, "r");
    if (!f) { perror(fn); exit(2); }
    int cap = 64;
    ids = calloc(cap, sizeof *ids);
    char line[4096], c[2048], k[2048];
    while (fgets(line, sizeof line, f)) {
        struct identity id = {0};
        if (line[0] == '#' || sscanf(line, "%127s %2047s %2047s", id.udid, c, k) != 3)
            continue;
        id.certpath = strdup(c);
        id.keypath = strdup(k);
        if (nids == cap) { cap *= 2; ids = realloc(ids, cap * sizeof *ids); }
        ids[nids++] = id;
    }
    fclose(f);
    for (int i = 0; i < nids; i++) pthread_mutex_init(&ids[i].mu, NULL);
}

/* Parsing a certificate and key costs ~0.5 ms with OpenSSL 3.0: done the
 * first time an identity is used, outside the timed part of a request, so
 * start-up is instant however many identities there are. */
static void identity_load(struct identity *id)
{
    if (atomic_load(&id->loaded)) return;
    pthread_mutex_lock(&id->mu);
    if (!atomic_load(&id->loaded)) {
        FILE *cf = fopen(id->certpath, "r"), *kf = fopen(id->keypath, "r");
        if (!cf || !kf) { perror(id->certpath); exit(2); }
        id->cert = PEM_read_X509(cf, NULL, NULL, NULL);
        id->key = PEM_read_PrivateKey(kf, NULL, NULL, NULL);
        fclose(cf); fclose(kf);
        if (!id->cert || !id->key) die("cannot read identity certificate/key");
        build_request(id);
        atomic_store(&id->loaded, 1);
    }
    pthread_mutex_unlock(&id->mu);
}

/* --- one connection ---------------------------------------------------- */

struct conn {
    int fd;
    SSL *ssl;
    struct identity *id;
    char buf[65536];
    size_t have;
};

static void conn_close(struct conn *c)
{
    if (c->ssl) {
        SSL_set_quiet_shutdown(c->ssl, 1);  /* devices just go away */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->have = 0;
}

static void report_error(const char *what)
{
    if (atomic_fetch_add(&first_error_printed, 1) < 3) {
        fprintf(stderr, "loadgen: %s (errno %d %s)\n", what, errno, strerror(errno));
        ERR_print_errors_fp(stderr);
    }
    ERR_clear_error();
}

static int conn_open(struct conn *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) { report_error("socket"); return -1; }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = { 10, 0 };
    setsockopt(c->fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        report_error("connect");
        conn_close(c);
        return -1;
    }
    c->ssl = SSL_new(ctx);
    if (nids) {
        if (SSL_use_certificate(c->ssl, c->id->cert) != 1 ||
            SSL_use_PrivateKey(c->ssl, c->id->key) != 1)
            die("SSL_use_certificate");
    }
    SSL_set_fd(c->ssl, c->fd);
    if (SSL_connect(c->ssl) != 1) {
        report_error("TLS handshake");
        conn_close(c);
        return -1;
    }
    atomic_fetch_add(&n_conns, 1);
    c->have = 0;
    return 0;
}

static int fill(struct conn *c)
{
    if (c->have >= sizeof c->buf - 1) return -1;
    int r = SSL_read(c->ssl, c->buf + c->have, (int)(sizeof c->buf - 1 - c->have));
    if (r <= 0) return -1;
    c->have += r;
    c->buf[c->have] = 0;
    return r;
}

/* Reads one response. Returns status (>0), -1 on transport error.
 * *closing is set when the server announced/did close. */
static int read_response(struct conn *c, int *closing, int *badbody)
{
    char *eoh;
    *closing = 0;
    *badbody = 0;
    while (!(eoh = memmem(c->buf, c->have, "\r\n\r\n", 4)))
        if (fill(c) < 0) return -1;
    size_t hlen = eoh + 4 - c->buf;
    int status = 0;
    if (sscanf(c->buf, "HTTP/%*d.%*d %d", &status) != 1) return -1;
    long clen = -1;
    int chunked = 0;
    for (char *l = strstr(c->buf, "\r\n") + 2; l < eoh; l = strstr(l, "\r\n") + 2) {
        if (!strncasecmp(l, "Content-Length:", 15)) clen = strtol(l + 15, NULL, 10);
        else if (!strncasecmp(l, "Transfer-Encoding:", 18) && strcasestr(l, "chunked") &&
                 strcasestr(l, "chunked") < strstr(l, "\r\n"))
            chunked = 1;
        else if (!strncasecmp(l, "Connection:", 11) && strcasestr(l, "close") &&
                 strcasestr(l, "close") < strstr(l, "\r\n"))
            *closing = 1;
    }
    /* body: collect decoded body in place after the header */
    size_t body_start = hlen, consumed;
    char *body = NULL;
    size_t blen = 0;
    if (chunked) {
        size_t pos = hlen, out = hlen;
        for (;;) {
            char *eol;
            while (!(eol = memmem(c->buf + pos, c->have - pos, "\r\n", 2)))
                if (fill(c) < 0) return -1;
            long sz = strtol(c->buf + pos, NULL, 16);
            size_t dstart = eol + 2 - c->buf;
            if (sz < 0) return -1;
            if (sz == 0) {
                /* optional trailer lines, then an empty line */
                for (;;) {
                    char *e;
                    while (!(e = memmem(c->buf + dstart, c->have - dstart, "\r\n", 2)))
                        if (fill(c) < 0) return -1;
                    size_t l = e - (c->buf + dstart);
                    dstart = e + 2 - c->buf;
                    if (l == 0) break;
                }
                consumed = dstart;
                break;
            }
            while (c->have < dstart + sz + 2)
                if (fill(c) < 0) return -1;
            memmove(c->buf + out, c->buf + dstart, sz);   /* decode in place */
            out += sz;
            pos = dstart + sz + 2;
        }
        body = c->buf + body_start;
        blen = out - body_start;
    } else if (clen >= 0) {
        while (c->have < hlen + clen)
            if (fill(c) < 0) return -1;
        body = c->buf + hlen;
        blen = clen;
        consumed = hlen + clen;
    } else {
        /* read to EOF */
        while (fill(c) > 0) ;
        body = c->buf + hlen;
        blen = c->have - hlen;
        consumed = c->have;
        *closing = 1;
    }
    if (opt.expect && status == 200) {
        char save = body[blen];
        body[blen] = 0;
        if (!strstr(body, opt.expect)) *badbody = 1;
        body[blen] = save;
    }
    /* drop the response from the buffer (no pipelining, normally empty) */
    memmove(c->buf, c->buf + consumed, c->have - consumed);
    c->have -= consumed;
    return status;
}

static void *worker(void *arg)
{
    (void)arg;
    struct conn *c = calloc(1, sizeof *c);
    c->fd = -1;
    for (;;) {
        long slot = atomic_fetch_add(&next_req, 1);
        if (slot >= opt.total + opt.warmup) break;
        if (c->fd < 0 && nids) {
            c->id = &ids[atomic_fetch_add(&next_id, 1) % nids];
            identity_load(c->id);
        }
        double t0 = now();
        if (t0 > t_deadline) break;
        if (c->fd < 0 && conn_open(c) < 0) {
            atomic_fetch_add(&n_errors, 1);
            continue;
        }
        struct identity *id = nids ? c->id : &ids[0];
        int closing, badbody, st;
        if (SSL_write(c->ssl, id->req, (int)id->reqlen) != (int)id->reqlen) {
            st = -1;
        } else {
            st = read_response(c, &closing, &badbody);
        }
        double t1 = now();
        if (st < 0) {
            report_error("request failed");
            atomic_fetch_add(&n_errors, 1);
            conn_close(c);
            continue;
        }
        if (slot >= opt.warmup) {
            long li = atomic_fetch_add(&n_lat, 1);
            lat_us[li] = (uint32_t)((t1 - t0) * 1e6);
            atomic_fetch_add(&n_done, 1);
            if (st == 200 && !badbody) atomic_fetch_add(&n_ok, 1);
            else if (st == 200) atomic_fetch_add(&n_badbody, 1);
            else atomic_fetch_add(&n_non200, 1);
            int h = st / 100;
            atomic_fetch_add(&status_hist[(h >= 1 && h <= 5) ? h : 0], 1);
            if (opt.want_status && (st != opt.want_status || badbody))
                atomic_fetch_add(&n_unexpected, 1);
        }
        if (!opt.keepalive || closing) conn_close(c);
    }
    conn_close(c);
    free(c);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t pct(uint32_t *v, long n, double p)
{
    if (n <= 0) return 0;
    long i = (long)(p * n);
    if (i >= n) i = n - 1;
    return v[i];
}

int main(int argc, char **argv)
{
    const char *idfile = NULL, *bodyfile = NULL, *cafile = NULL;
    int ch;
    while ((ch = getopt(argc, argv, "H:p:m:u:b:B:i:C:c:n:t:ke:s:V:w:")) != -1) {
        switch (ch) {
        case 'H': opt.host = optarg; break;
        case 'p': opt.port = atoi(optarg); break;
        case 'm': opt.method = optarg; break;
        case 'u': opt.path = optarg; break;
        case 'b': bodyfile = optarg; break;
        case 'B': opt.body_raw = slurp(optarg, &opt.body_raw_len); break;
        case 's': opt.want_status = atoi(optarg); break;
        case 'i': idfile = optarg; break;
        case 'C': cafile = optarg; break;
        case 'c': opt.conc = atoi(optarg); break;
        case 'n': opt.total = atol(optarg); break;
        case 't': opt.max_secs = atof(optarg); break;
        case 'k': opt.keepalive = 1; break;
        case 'e': opt.expect = optarg; break;
        case 'V': opt.tls_version = !strcmp(optarg, "1.2") ? TLS1_2_VERSION : TLS1_3_VERSION; break;
        case 'w': opt.warmup = atol(optarg); break;
        default:
            fprintf(stderr, "usage: see the comment at the top of loadgen.c\n");
            return 2;
        }
    }
    if (!opt.port || opt.conc < 1 || opt.total < 1 || opt.max_secs <= 0) {
        fprintf(stderr, "loadgen: -p PORT required; -c, -n, -t must be positive\n");
        return 2;
    }
    if (opt.conc > 1024) opt.conc = 1024;
    signal(SIGPIPE, SIG_IGN);

    if (bodyfile) opt.body_tmpl = slurp(bodyfile, NULL);
    if (idfile) load_identities(idfile);
    if (!nids) {
        /* no identities: one anonymous request */
        ids = calloc(1, sizeof *ids);
        strcpy(ids[0].udid, "none");
        build_request(&ids[0]);
    } else {
        ;   /* requests are built when an identity is first used */
    }

    ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) die("SSL_CTX_new");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (opt.tls_version) {
        SSL_CTX_set_min_proto_version(ctx, opt.tls_version);
        SSL_CTX_set_max_proto_version(ctx, opt.tls_version);
    }
    if (cafile) {
        if (SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) die("CA file");
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }

    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons(opt.port);
    if (inet_pton(AF_INET, opt.host, &addr.sin_addr) != 1) die("bad -H address");

    lat_us = calloc(opt.total, sizeof *lat_us);
    t_start = now();
    t_deadline = t_start + opt.max_secs;
    pthread_t *th = calloc(opt.conc, sizeof *th);
    for (int i = 0; i < opt.conc; i++) pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < opt.conc; i++) pthread_join(th[i], NULL);
    double elapsed = now() - t_start;

    long n = atomic_load(&n_lat);
    qsort(lat_us, n, sizeof *lat_us, cmp_u32);
    double mean = 0;
    for (long i = 0; i < n; i++) mean += lat_us[i];
    mean = n ? mean / n : 0;
    long done = atomic_load(&n_done);
    printf("{\"requests\": %ld, \"ok\": %ld, \"non200\": %ld, \"badbody\": %ld, "
           "\"errors\": %ld, \"connections\": %ld, \"elapsed_s\": %.3f, \"rps\": %.1f, "
           "\"p50_us\": %u, \"p90_us\": %u, \"p99_us\": %u, \"max_us\": %u, \"mean_us\": %.0f, "
           "\"status\": {\"2xx\": %ld, \"3xx\": %ld, \"4xx\": %ld, \"5xx\": %ld, \"other\": %ld}, "
           "\"identities\": %d, \"concurrency\": %d, \"keepalive\": %s, \"timed_out\": %s, "
           "\"unexpected\": %ld}\n",
           done, atomic_load(&n_ok), atomic_load(&n_non200), atomic_load(&n_badbody),
           atomic_load(&n_errors), atomic_load(&n_conns), elapsed,
           elapsed > 0 ? done / elapsed : 0.0,
           pct(lat_us, n, 0.50), pct(lat_us, n, 0.90), pct(lat_us, n, 0.99),
           n ? lat_us[n - 1] : 0, mean,
           status_hist[2], status_hist[3], status_hist[4], status_hist[5],
           status_hist[0] + status_hist[1], nids, opt.conc,
           opt.keepalive ? "true" : "false",
           now() > t_deadline ? "true" : "false", atomic_load(&n_unexpected));
    return 0;
}
