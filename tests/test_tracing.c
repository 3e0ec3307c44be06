/* test_tracing.c: W3C trace context across a sluice hop (tracestate,
 * flags, sampling) and spans exported over OTLP/HTTP JSON to a fake
 * collector started here.
 *
 * The chain: the test (a raw socket, its own span P) -> GET /hop (server
 * span S1) -> a call to GET /echo on the same server (client span C1) ->
 * /echo (server span S2), which answers the traceparent and tracestate it
 * received; /hop answers that. */
#include <math.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/wait.h>
#include "httputil.h"
#include "sl_client.h"
#include "sl_tracer.h"
#include "sl_tracestate.h"

/* ---- a fake collector --------------------------------------------------------------- */

enum { COL_OK, COL_SILENT };   /* answer 200, or read and never answer */

typedef struct collector {
    int lfd, port, mode;
    pthread_t th;
    _Atomic int stop;
    pthread_mutex_t mu;
    json_t *spans;               /* every span received */
    int posts;
    int bad_posts;               /* bodies that were not JSON */
    char bad_text[256];          /* why, and where */
    char path[128];              /* of the last POST */
    char ctype[128];
    int held[64];                /* COL_SILENT: connections left unanswered */
    int nheld;
} collector;

static collector COL;

/* Reads one request: head, then Content-Length bytes. */
static char *read_request(collector *c, int fd, size_t *blen)
{
    size_t cap = 1 << 16, have = 0;
    char *buf = malloc(cap + 1);
    uint64_t end = sl_now_ns() + 10 * SL_NS_PER_S;
    for (;;) {
        buf[have] = '\0';
        char *h = strstr(buf, "\r\n\r\n");
        if (h) {
            char *cl = strcasestr(buf, "Content-Length:");
            size_t hl = (size_t)(h + 4 - buf);
            size_t need = hl + (cl ? strtoul(cl + 15, NULL, 10) : 0);
            if (need > cap) {
                cap = need;
                buf = realloc(buf, cap + 1);
                h = buf + hl - 4;
            }
            if (have >= need) {
                pthread_mutex_lock(&c->mu);
                sscanf(buf, "POST %127s", c->path);
                char *ct = strcasestr(buf, "Content-Type:");
                if (ct)
                    sscanf(ct + 13, " %127[^\r]", c->ctype);
                pthread_mutex_unlock(&c->mu);
                *blen = need - hl;
                memmove(buf, buf + hl, *blen);
                buf[*blen] = '\0';
                return buf;
            }
        }
        if (have == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (sl_now_ns() > end || poll(&p, 1, 100) < 0)
            break;
        if (!p.revents)
            continue;
        ssize_t n = read(fd, buf + have, cap - have);
        if (n <= 0)
            break;
        have += (size_t)n;
    }
    free(buf);
    return NULL;
}

static void *collector_thread(void *arg)
{
    collector *c = arg;
    while (!atomic_load(&c->stop)) {
        struct pollfd p = { .fd = c->lfd, .events = POLLIN };
        if (poll(&p, 1, 20) <= 0)
            continue;
        int fd = accept(c->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        size_t blen;
        char *body = read_request(c, fd, &blen);
        json_error_t je;
        json_t *doc = body ? json_loadb(body, blen, 0, &je) : NULL;
        pthread_mutex_lock(&c->mu);
        c->posts++;
        if (!doc && c->bad_posts++ == 0)
            snprintf(c->bad_text, sizeof c->bad_text, "%s at %d: %.120s", body ? je.text : "no body",
                     body ? je.position : 0, body && (size_t)je.position < blen ? body + je.position : "");
        free(body);
        json_t *rs = json_object_get(doc, "resourceSpans");
        for (size_t i = 0; i < json_array_size(rs); i++) {
            json_t *r = json_array_get(rs, i);
            const char *svc = json_string_value(json_object_get(json_object_get(json_array_get(
                json_object_get(json_object_get(r, "resource"), "attributes"), 0), "value"), "stringValue"));
            json_t *ss = json_object_get(r, "scopeSpans");
            for (size_t k = 0; k < json_array_size(ss); k++) {
                json_t *sp = json_object_get(json_array_get(ss, k), "spans");
                for (size_t j = 0; j < json_array_size(sp); j++) {
                    json_t *one = json_array_get(sp, j);
                    json_object_set_new(one, "_service", json_string(svc ? svc : ""));
                    json_array_append(c->spans, one);
                }
            }
        }
        pthread_mutex_unlock(&c->mu);
        json_decref(doc);
        if (c->mode == COL_OK) {
            static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";
            ssize_t w = write(fd, ok, sizeof ok - 1);
            (void)w;
            close(fd);
        } else if (c->nheld < 64) {
            c->held[c->nheld++] = fd;   /* never answered while the test runs */
        } else {
            close(fd);
        }
    }
    return NULL;
}

static void collector_start(collector *c, int mode)
{
    memset(c, 0, sizeof *c);
    c->mode = mode;
    c->spans = json_array();
    pthread_mutex_init(&c->mu, NULL);
    c->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(c->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(c->lfd, 64), 0);
    socklen_t sl = sizeof sa;
    getsockname(c->lfd, (struct sockaddr *)&sa, &sl);
    c->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&c->th, NULL, collector_thread, c), 0);
}

static void collector_stop(collector *c)
{
    atomic_store(&c->stop, 1);
    pthread_join(c->th, NULL);
    for (int i = 0; i < c->nheld; i++)
        close(c->held[i]);
    close(c->lfd);
    json_decref(c->spans);
    pthread_mutex_destroy(&c->mu);
}

static size_t collector_count(collector *c)
{
    pthread_mutex_lock(&c->mu);
    size_t n = json_array_size(c->spans);
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* ---- the server ------------------------------------------------------------------------- */

static test_srv TS;
static sl_http_upstream *UP;
static sl_tracer *TR;

typedef struct hop_st {
    sl_http_resp r;
    int rc;
} hop_st;

static int h_hop(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    hop_st *s = sl_http_req_state(req);
    SL_BEGIN(t);
    /* /hop?anything calls /busy, which fails with a sluice-cause */
    size_t ql = 0;
    sl_http_req_query(req, &ql);
    SL_AWAIT(t, s->rc, sl_http_call(t, &s->r, UP, "GET", ql ? "/busy" : "/echo", NULL, 0));
    if (s->rc == 0)
        sl_http_reply(req, s->r.status, "text/plain", s->r.body, s->r.body_len);
    else
        sl_http_reply_error(req, 502, "upstream", "%s", strerror(-s->rc));
    sl_http_call_end(&s->r);
    SL_END(t);
}

/* Answers "tp=<traceparent>\nts=<tracestate>" as received ("-": none). */
static int h_echo(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    size_t tl = 0, sl = 0;
    const char *tp = sl_http_req_header(req, "traceparent", &tl);
    const char *ts = sl_http_req_header(req, "tracestate", &sl);
    char body[1024];
    int n = snprintf(body, sizeof body, "tp=%.*s\nts=%.*s", tp ? (int)tl : 1, tp ? tp : "-",
                     ts ? (int)sl : 1, ts ? ts : "-");
    (void)t;
    return sl_http_reply(req, 200, "text/plain", body, (size_t)n);
}

/* Fails as a far hop that shed the request would. */
static int h_busy(sl_task *t, void *arg)
{
    (void)t;
    sl_http_req *req = arg;
    sl_cause_info ci = { .cause = SL_WC_OVERLOADED, .hop = "far-svc", .left_ms = 7 };
    assert_int_equal(sl_http_reply_cause(req, &ci), 0);
    return sl_http_reply_error(req, 503, "overloaded", "busy");
}

/* A server with /hop and /echo, its upstream to itself, both using TR. */
static void start(void)
{
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(1, &TS.cap);
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0",
                                                                                 .tracer = TR }), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/hop", h_hop, sizeof(hop_st), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/echo", h_echo, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/busy", h_busy, 0, NULL), 0);
    assert_int_equal(sl_http_server_start(TS.srv), 0);
    TS.port = sl_http_server_port(TS.srv);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", TS.port);
    assert_int_equal(sl_http_upstream_new(&UP, TS.rt, url, &(sl_http_upstream_opts){ .tracer = TR }), 0);
    assert_int_equal(pthread_create(&TS.th, NULL, srv_thread, &TS), 0);
}

static void stop(void)
{
    sl_runtime_stop(TS.rt);
    pthread_join(TS.th, NULL);
    sl_http_server_free(TS.srv);
    sl_http_upstream_free(UP);
    assert_int_equal(sl_runtime_free(TS.rt), 0);
    sl_tracer_free(TR);
    TR = NULL;
}

/* GET /hop with the given extra header lines; returns the status, the
 * echoed traceparent in tp (56 bytes) and tracestate in ts. */
static int hop(int fd, const char *headers, char *tp, char *ts, size_t ts_cap)
{
    static resp r;
    char req[2048];
    snprintf(req, sizeof req, "GET /hop HTTP/1.1\r\nHost: t\r\n%s\r\n", headers);
    cli_send(fd, req);
    int st = cli_read(fd, &r, 5000);
    if (st == 200) {
        assert_int_equal(sscanf(r.body, "tp=%55s", tp), 1);
        const char *s = strstr(r.body, "\nts=");
        assert_non_null(s);
        snprintf(ts, ts_cap, "%s", s + 4);
    }
    return st;
}

/* ---- tracestate and flags ---------------------------------------------------------------- */

#define P_TRACE "4bf92f3577b34da6a3ce929d0e0e4736"
#define P_SPAN "00f067aa0ba902b7"

static void test_tracestate_round_trip(void **s)
{
    (void)s;
    char tp[56], ts[1024];
    start();   /* no tracer: forwarding only */
    int fd = cli_connect(TS.port);
    /* valid: sent on verbatim, optional spaces and empty members included */
    assert_int_equal(hop(fd, "traceparent: 00-" P_TRACE "-" P_SPAN "-01\r\n"
                             "tracestate: rojo=00f067aa0ba902b7 ,, congo=t61rcWkgMzE,acme@sys=a b\r\n", tp, ts, sizeof ts), 200);
    assert_string_equal(ts, "rojo=00f067aa0ba902b7 ,, congo=t61rcWkgMzE,acme@sys=a b");
    assert_memory_equal(tp, "00-" P_TRACE "-", 36);   /* the same trace */
    assert_memory_not_equal(tp + 36, P_SPAN, 16);     /* our own span as the parent */
    /* two headers are one list */
    assert_int_equal(hop(fd, "traceparent: 00-" P_TRACE "-" P_SPAN "-01\r\n"
                             "tracestate: a=1\r\ntracestate: b=2\r\n", tp, ts, sizeof ts), 200);
    assert_string_equal(ts, "a=1,b=2");
    /* malformed: dropped */
    static const char *bad[] = { "Upper=1", "a=1,a=2", "a=", "a=x,=y", "a=b=c", "a=\x01" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char h[256];
        snprintf(h, sizeof h, "traceparent: 00-" P_TRACE "-" P_SPAN "-01\r\ntracestate: %s\r\n", bad[i]);
        int st = hop(fd, h, tp, ts, sizeof ts);
        if (st == 400) {   /* a control byte: the server refused the head */
            close(fd);
            fd = cli_connect(TS.port);
            continue;
        }
        assert_int_equal(st, 200);
        if (strcmp(ts, "-"))
            fail_msg("tracestate \"%s\" was forwarded as \"%s\"", bad[i], ts);
    }
    /* without a valid traceparent, tracestate is not even read */
    assert_int_equal(hop(fd, "traceparent: 00-" P_TRACE "-" P_SPAN "\r\ntracestate: a=1\r\n", tp, ts, sizeof ts), 200);
    assert_string_equal(ts, "-");
    assert_memory_not_equal(tp + 3, P_TRACE, 32);   /* a fresh trace */
    close(fd);
    stop();
}

static void test_tracestate_bounds(void **s)
{
    (void)s;
    char out[SL_TRACESTATE_MAX + 1], in[4096];
    /* 33 members: more than 32 */
    size_t n = 0;
    for (int i = 0; i < 33; i++)
        n += (size_t)snprintf(in + n, sizeof in - n, "%sk%d=v", i ? "," : "", i);
    assert_int_equal(sl_tracestate_parse(in, n, out), -EINVAL);
    assert_string_equal(out, "");
    /* 32 are fine */
    n = (size_t)(strrchr(in, ',') - in);
    assert_int_equal(sl_tracestate_parse(in, n, out), (int)n);
    /* too long: the member over 128 bytes goes first, then from the end */
    char big[200], mid[121];
    memset(big, 'x', sizeof big);
    memcpy(big, "big=", 4);
    big[150] = '\0';
    n = (size_t)snprintf(in, sizeof in, "first=1,%s", big);
    for (int i = 0; i < 4; i++) {
        memset(mid, 'm', sizeof mid);
        mid[0] = (char)('a' + i);
        mid[1] = '=';
        mid[120] = '\0';
        n += (size_t)snprintf(in + n, sizeof in - n, ",%s", mid);
    }
    /* first=1 (7) + 4 x 120 + separators = 490 after dropping big: fits */
    int got = sl_tracestate_parse(in, n, out);
    assert_int_equal(got, 7 + 4 * 121);
    assert_null(strstr(out, "big="));
    assert_memory_equal(out, "first=1,a=mmm", 13);
    /* another 120: then the last one goes */
    n += (size_t)snprintf(in + n, sizeof in - n, ",e=%.118s", mid + 2);
    got = sl_tracestate_parse(in, n, out);
    assert_true(got > 0 && got <= SL_TRACESTATE_MAX);
    assert_null(strstr(out, ",e="));
    assert_non_null(strstr(out, ",d=m"));
    /* keys: multi-tenant limits */
    assert_true(sl_tracestate_parse("t@s=1", 5, out) == 5);
    assert_int_equal(sl_tracestate_parse("t@1s=1", 6, out), -EINVAL);
    assert_int_equal(sl_tracestate_parse("t@abcdefghijklmno=1", 19, out), -EINVAL);   /* system > 14 */
    assert_int_equal(sl_tracestate_parse("1a=1", 4, out), -EINVAL);
    assert_int_equal(sl_tracestate_parse("", 0, out), 0);
    assert_int_equal(sl_tracestate_parse(" , ", 3, out), 0);
    assert_int_equal(sl_tracestate_parse(NULL, 0, out), -EINVAL);
    /* what a context carries goes into headers: no CR or LF gets in */
    sl_ctx *c = NULL;
    sl_traceparent tp = { .trace_id = { 1 }, .span_id = { 1 } };
    assert_int_equal(sl_ctx_with_trace_state_deadline(&c, sl_ctx_background(), &tp, "a=1\r\nx: y", 10, 0), -EINVAL);
    assert_int_equal(sl_ctx_with_trace_state_deadline(&c, sl_ctx_background(), &tp, NULL, 3, 0), -EINVAL);
    assert_int_equal(sl_ctx_with_trace_state_deadline(&c, sl_ctx_background(), &tp, in, SL_TRACESTATE_MAX + 1, 0),
                     -EINVAL);
    assert_null(c);
}

static void test_flags_zeroed(void **s)
{
    (void)s;
    char tp[56], ts[64];
    start();
    int fd = cli_connect(TS.port);
    /* sampled plus unknown bits: only sampled goes on */
    assert_int_equal(hop(fd, "traceparent: 00-" P_TRACE "-" P_SPAN "-ff\r\n", tp, ts, sizeof ts), 200);
    assert_string_equal(tp + 53, "01");
    /* unknown bits, not sampled: all zero */
    assert_int_equal(hop(fd, "traceparent: 00-" P_TRACE "-" P_SPAN "-fe\r\n", tp, ts, sizeof ts), 200);
    assert_string_equal(tp + 53, "00");
    /* a later version with more fields: we answer version 00, flags cleaned */
    assert_int_equal(hop(fd, "traceparent: 01-" P_TRACE "-" P_SPAN "-03-extra\r\n", tp, ts, sizeof ts), 200);
    assert_memory_equal(tp, "00-" P_TRACE, 35);
    assert_string_equal(tp + 53, "01");
    /* a trace sluice starts (no tracer, so no sampler): not sampled */
    assert_int_equal(hop(fd, "", tp, ts, sizeof ts), 200);
    assert_string_equal(tp + 53, "00");
    close(fd);
    stop();
}

/* ---- sampling ------------------------------------------------------------------------------ */

static uint64_t seed_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void id_from(uint64_t *seed, uint8_t id[16])
{
    for (int i = 0; i < 2; i++) {
        uint64_t r = seed_next(seed);
        memcpy(id + 8 * i, &r, 8);
    }
    id[0] |= 1;   /* never all zero */
}

static void test_sampler_decisions(void **s)
{
    (void)s;
    sl_tracer *tr;
    sl_traceparent on = { .flags = 1 }, off = { .flags = 0 };
    uint8_t id[16] = { 1 };
    struct { int sampler; bool root, parent_on, parent_off; } want[] = {
        { SL_SAMPLER_ALWAYS_ON, true, true, true },
        { SL_SAMPLER_ALWAYS_OFF, false, false, false },
        { SL_SAMPLER_PARENT_ALWAYS_ON, true, true, false },
        { SL_SAMPLER_PARENT_ALWAYS_OFF, false, true, false },
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        assert_int_equal(sl_tracer_new(&tr, &(sl_tracer_opts){ .sampler = want[i].sampler }), 0);
        assert_int_equal(sl_tracer_sample(tr, NULL, id), want[i].root);
        assert_int_equal(sl_tracer_sample(tr, &on, id), want[i].parent_on);
        assert_int_equal(sl_tracer_sample(tr, &off, id), want[i].parent_off);
        assert_int_equal(sl_tracer_flush(tr, 10), -ENOTCONN);   /* no endpoint: nothing to send */
        sl_tracer_free(tr);
    }
    /* no tracer: the parent's flag; a root is not sampled */
    assert_false(sl_tracer_sample(NULL, NULL, id));
    assert_true(sl_tracer_sample(NULL, &on, id));
    assert_false(sl_tracer_sample(NULL, &off, id));
    /* ratio: 0 and 1 are none and all; the same id, the same answer; the
     * share within a binomial bound (seeded ids: the count is repeatable) */
    assert_int_equal(sl_tracer_new(&tr, &(sl_tracer_opts){ .sampler = SL_SAMPLER_RATIO, .ratio = 0.0 }), 0);
    uint64_t seed = 42;
    for (int i = 0; i < 1000; i++) {
        id_from(&seed, id);
        assert_false(sl_tracer_sample(tr, &on, id));
    }
    sl_tracer_free(tr);
    assert_int_equal(sl_tracer_new(&tr, &(sl_tracer_opts){ .sampler = SL_SAMPLER_RATIO, .ratio = 1.0 }), 0);
    for (int i = 0; i < 1000; i++) {
        id_from(&seed, id);
        assert_true(sl_tracer_sample(tr, &off, id));
    }
    sl_tracer_free(tr);
    static const double ratios[] = { 0.01, 0.25, 0.5 };
    for (size_t k = 0; k < 3; k++) {
        sl_tracer *a, *pb;
        assert_int_equal(sl_tracer_new(&a, &(sl_tracer_opts){ .sampler = SL_SAMPLER_RATIO, .ratio = ratios[k] }), 0);
        assert_int_equal(sl_tracer_new(&pb, &(sl_tracer_opts){ .sampler = SL_SAMPLER_PARENT_RATIO,
                                                             .ratio = ratios[k] }), 0);
        const int n = 20000;
        int hits = 0;
        for (int i = 0; i < n; i++) {
            id_from(&seed, id);
            bool x = sl_tracer_sample(a, &off, id);   /* traceidratio ignores the parent */
            assert_int_equal(x, sl_tracer_sample(a, NULL, id));
            assert_int_equal(x, sl_tracer_sample(pb, NULL, id));   /* a root: the ratio */
            assert_true(sl_tracer_sample(pb, &on, id));           /* a parent: its flag */
            assert_false(sl_tracer_sample(pb, &off, id));
            hits += x;
        }
        double mean = n * ratios[k], sd = sqrt(n * ratios[k] * (1 - ratios[k]));
        print_message("ratio %.2f: %d of %d sampled (expected %.0f +- %.1f)\n", ratios[k], hits, n, mean, sd);
        assert_true(fabs(hits - mean) < 5 * sd);
        sl_tracer_free(a);
        sl_tracer_free(pb);
    }
}

/* Bad values: a clear error naming the variable, from the environment and
 * from the options. */
static void test_bad_config(void **s)
{
    (void)s;
    sl_tracer_opts o;
    char err[256];
    static const char *vars[] = { "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER",
                                  "OTEL_TRACES_SAMPLER_ARG" };
    for (int i = 0; i < 4; i++)
        unsetenv(vars[i]);
    assert_int_equal(sl_tracer_opts_env(&o, err, sizeof err), 0);
    assert_null(o.endpoint);
    assert_int_equal(o.sampler, SL_SAMPLER_PARENT_ALWAYS_ON);
    assert_true(o.ratio == 1.0);
    static const struct { const char *var, *val; } bad[] = {
        { "OTEL_TRACES_SAMPLER", "sometimes" }, { "OTEL_TRACES_SAMPLER", "ALWAYS_ON" },
        { "OTEL_TRACES_SAMPLER_ARG", "1.5" }, { "OTEL_TRACES_SAMPLER_ARG", "-0.1" },
        { "OTEL_TRACES_SAMPLER_ARG", "half" }, { "OTEL_TRACES_SAMPLER_ARG", "nan" },
        { "OTEL_TRACES_SAMPLER_ARG", "1e-2" }, { "OTEL_TRACES_SAMPLER_ARG", "0.5x" },
        { "OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318" }, { "OTEL_EXPORTER_OTLP_ENDPOINT", "https://c:4318" },
        { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c" }, { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:0" },
        { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:99999" }, { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://:4318" },
        { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:43x8" }, { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:+4318" },
        { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c: 4318" }, { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:-4318" },
        { "OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1:4318" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        setenv(bad[i].var, bad[i].val, 1);
        err[0] = '\0';
        assert_int_equal(sl_tracer_opts_env(&o, err, sizeof err), -EINVAL);
        if (!strstr(err, bad[i].var) || !strstr(err, bad[i].val))
            fail_msg("the error for %s=%s does not name them: %s", bad[i].var, bad[i].val, err);
        unsetenv(bad[i].var);
    }
    setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://[::1]:4318/base/", 1);
    setenv("OTEL_SERVICE_NAME", "order", 1);
    setenv("OTEL_TRACES_SAMPLER", "parentbased_traceidratio", 1);
    setenv("OTEL_TRACES_SAMPLER_ARG", "0.01", 1);
    assert_int_equal(sl_tracer_opts_env(&o, err, sizeof err), 0);
    assert_string_equal(o.endpoint, "http://[::1]:4318/base/");
    assert_string_equal(o.service_name, "order");
    assert_int_equal(o.sampler, SL_SAMPLER_PARENT_RATIO);
    assert_true(o.ratio == 0.01);
    for (int i = 0; i < 4; i++)
        unsetenv(vars[i]);
    /* the options themselves */
    sl_tracer *tr;
    assert_int_equal(sl_tracer_new(&tr, &(sl_tracer_opts){ .sampler = 99 }), -EINVAL);
    assert_int_equal(sl_tracer_new(&tr, &(sl_tracer_opts){ .sampler = SL_SAMPLER_RATIO, .ratio = 2 }), -EINVAL);
    assert_int_equal(sl_tracer_new(&tr, &(sl_tracer_opts){ .ratio = 0.0 / 0.0 }), -EINVAL);
    assert_int_equal(sl_tracer_new(&tr, &(sl_tracer_opts){ .endpoint = "ftp://x:1" }), -EINVAL);
    assert_int_equal(sl_tracer_new(&tr, &(sl_tracer_opts){ .endpoint = "http://x:1", .queue_max = 4,
                                                           .batch_max = 8 }), -EINVAL);
    assert_int_equal(sl_tracer_new(NULL, &(sl_tracer_opts){ 0 }), -EINVAL);
    assert_int_equal(sl_tracer_new(&tr, NULL), -EINVAL);
    int smp;
    assert_int_equal(sl_tracer_sampler_parse("traceidratio", &smp), 0);
    assert_int_equal(smp, SL_SAMPLER_RATIO);
    assert_int_equal(sl_tracer_sampler_parse("", &smp), -EINVAL);
    assert_int_equal(sl_tracer_sampler_parse(NULL, &smp), -EINVAL);
}

/* ---- export ---------------------------------------------------------------------------------- */

/* Waits (bounded) until the collector holds n spans. The server records a
 * span just after it sent the answer, so a flush alone could come first. */
static void wait_spans(size_t n)
{
    for (int i = 0; i < 500 && collector_count(&COL) < n; i++) {
        sl_tracer_flush(TR, 1000);
        if (collector_count(&COL) < n)
            usleep(2000);
    }
    if (COL.bad_posts)
        fail_msg("the collector got %d bodies that are not JSON: %s", COL.bad_posts, COL.bad_text);
    assert_int_equal(collector_count(&COL), n);
}

typedef struct span_v {
    const char *trace, *span, *parent, *name, *ts;
    int kind;
    long long status;
} span_v;

static span_v span_at(size_t i)
{
    json_t *s = json_array_get(COL.spans, i);
    span_v v = { json_string_value(json_object_get(s, "traceId")), json_string_value(json_object_get(s, "spanId")),
                 json_string_value(json_object_get(s, "parentSpanId")), json_string_value(json_object_get(s, "name")),
                 json_string_value(json_object_get(s, "traceState")),
                 (int)json_integer_value(json_object_get(s, "kind")), 0 };
    json_t *a = json_object_get(s, "attributes");
    for (size_t k = 0; k < json_array_size(a); k++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(a, k), "key")), "http.response.status_code"))
            v.status = atoll(json_string_value(json_object_get(json_object_get(json_array_get(a, k), "value"),
                                                               "intValue")));
    return v;
}

static void tracer_to_collector(int sampler, double ratio, uint32_t queue_max, uint32_t timeout_ms)
{
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d/", COL.port);
    assert_int_equal(sl_tracer_new(&TR, &(sl_tracer_opts){ .endpoint = ep, .service_name = "svc \"one\"",
                                                           .sampler = sampler, .ratio = ratio,
                                                           .queue_max = queue_max, .delay_ms = 20,
                                                           .timeout_ms = timeout_ms }), 0);
}

static void test_two_hop_export(void **s)
{
    (void)s;
    char tp[56], ts[256];
    collector_start(&COL, COL_OK);
    tracer_to_collector(SL_SAMPLER_PARENT_ALWAYS_OFF, 1.0, 0, 5000);
    start();
    int fd = cli_connect(TS.port);
    assert_int_equal(hop(fd, "traceparent: 00-" P_TRACE "-" P_SPAN "-01\r\ntracestate: k=v\r\n", tp, ts,
                         sizeof ts), 200);
    assert_string_equal(tp + 53, "01");
    /* not sampled by the caller, and parentbased_always_off for roots: nothing */
    assert_int_equal(hop(fd, "traceparent: 00-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-" P_SPAN "-00\r\n", tp, ts,
                         sizeof ts), 200);
    assert_int_equal(hop(fd, "", tp, ts, sizeof ts), 200);
    assert_string_equal(tp + 53, "00");
    close(fd);
    wait_spans(3);
    /* S1 (/hop, server) <- C1 (client) <- S2 (/echo, server), all one trace */
    span_v s1 = { 0 }, c1 = { 0 }, s2 = { 0 };
    for (size_t i = 0; i < 3; i++) {
        span_v v = span_at(i);
        assert_string_equal(v.trace, P_TRACE);
        if (v.kind == 3)
            c1 = v;
        else if (!strcmp(v.name, "GET /hop"))
            s1 = v;
        else
            s2 = v;
        assert_non_null(v.ts);
        assert_string_equal(v.ts, "k=v");
    }
    assert_non_null(s1.name);
    assert_non_null(c1.name);
    assert_non_null(s2.name);
    assert_string_equal(s1.parent, P_SPAN);           /* the caller's span */
    assert_string_equal(c1.parent, s1.span);          /* the call is made under /hop */
    assert_string_equal(s2.parent, c1.span);          /* the callee links to the call */
    assert_string_equal(c1.name, "GET /echo");
    assert_string_equal(s2.name, "GET /echo");
    assert_int_equal(s1.kind, 2);
    assert_int_equal(s2.kind, 2);
    assert_int_equal(s1.status, 200);
    assert_int_equal(c1.status, 200);
    /* the POST itself */
    assert_string_equal(COL.path, "/v1/traces");
    assert_string_equal(COL.ctype, "application/json");
    assert_string_equal(json_string_value(json_object_get(json_array_get(COL.spans, 0), "_service")), "svc \"one\"");
    sl_tracer_stats st;
    sl_tracer_stats_get(TR, &st);
    assert_int_equal(st.exported, 3);
    assert_int_equal(st.dropped + st.failed, 0);
    /* and /metrics says so */
    static resp r;
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    assert_non_null(strstr(r.body, "sluice_trace_spans_total{result=\"exported\"} 3\n"));
    stop();
    collector_stop(&COL);
}

/* An exporter with nothing queued sleeps: over 300 ms with delay_ms 20 it
 * woke at most once (a spurious wake-up), where it woke every 20 ms, 15
 * times, before. The first span after that idle still goes out within
 * its delay, without a flush (at most 5 s here): the push wakes it. */
static void test_idle_exporter_sleeps(void **s)
{
    (void)s;
    char tp[56], ts[64];
    collector_start(&COL, COL_OK);
    tracer_to_collector(SL_SAMPLER_ALWAYS_ON, 1.0, 0, 5000);
    start();
    sl_tracer_stats a, b;
    sl_tracer_stats_get(TR, &a);
    usleep(300 * 1000);
    sl_tracer_stats_get(TR, &b);
    if (b.wakeups - a.wakeups > 1)
        fail_msg("the idle exporter woke %llu times in 300 ms", (unsigned long long)(b.wakeups - a.wakeups));
    int fd = cli_connect(TS.port);
    assert_int_equal(hop(fd, "", tp, ts, sizeof ts), 200);
    close(fd);
    for (int i = 0; i < 2500 && collector_count(&COL) < 3; i++)
        usleep(2000);
    assert_int_equal(collector_count(&COL), 3);   /* /hop, its call and /echo */
    stop();
    collector_stop(&COL);
}

/* The value of attribute `key` of span i, or NULL. */
static const char *span_attr(size_t i, const char *key)
{
    json_t *a = json_object_get(json_array_get(COL.spans, i), "attributes");
    for (size_t k = 0; k < json_array_size(a); k++)
        if (!strcmp(json_string_value(json_object_get(json_array_get(a, k), "key")), key))
            return json_string_value(json_object_get(json_object_get(json_array_get(a, k), "value"), "stringValue"));
    return NULL;
}

/* The upstream's sluice-cause reaches the caller's client span as well as
 * the callee's server span (issue 20). */
static void test_cause_on_client_span(void **s)
{
    (void)s;
    collector_start(&COL, COL_OK);
    tracer_to_collector(SL_SAMPLER_ALWAYS_ON, 1.0, 0, 5000);
    start();
    int fd = cli_connect(TS.port);
    static resp r;
    cli_send(fd, "GET /hop?busy HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 503);   /* passed on by /hop */
    close(fd);
    wait_spans(3);
    const char *want = "v1;cause=overloaded;hop=far-svc;left-ms=7";
    int client = 0, callee = 0;
    for (size_t i = 0; i < 3; i++) {
        span_v v = span_at(i);
        const char *c = span_attr(i, "sluice.cause");
        if (v.kind == 3) {
            client++;
            assert_string_equal(v.name, "GET /busy");
            assert_non_null(c);
            assert_string_equal(c, want);
        } else if (!strcmp(v.name, "GET /busy")) {
            callee++;
            assert_non_null(c);
            assert_string_equal(c, want);
        }
    }
    assert_int_equal(client, 1);
    assert_int_equal(callee, 1);
    stop();
    collector_stop(&COL);
}

/* traceidratio at 0.3: the flag sent downstream and what is exported
 * follow the trace-id, whatever the caller's flag. */
static void test_ratio_end_to_end(void **s)
{
    (void)s;
    char tp[56], ts[64];
    collector_start(&COL, COL_OK);
    tracer_to_collector(SL_SAMPLER_RATIO, 0.3, 4096, 5000);
    start();
    int fd = cli_connect(TS.port);
    uint64_t seed = 7;
    const int n = 300;
    static char sampled_ids[300][33];
    int hits = 0;
    for (int i = 0; i < n; i++) {
        uint8_t id[16];
        char hdr[160], hex[33];
        id_from(&seed, id);
        for (int k = 0; k < 16; k++)
            snprintf(hex + 2 * k, 3, "%02x", id[k]);
        snprintf(hdr, sizeof hdr, "traceparent: 00-%s-" P_SPAN "-%s\r\n", hex, i % 2 ? "01" : "00");
        assert_int_equal(hop(fd, hdr, tp, ts, sizeof ts), 200);
        bool want = sl_tracer_sample(TR, NULL, id);
        assert_string_equal(tp + 53, want ? "01" : "00");
        if (want)
            memcpy(sampled_ids[hits++], hex, 33);
    }
    close(fd);
    double mean = n * 0.3, sd = sqrt(n * 0.3 * 0.7);
    print_message("traceidratio 0.3: %d of %d traces sampled (expected %.0f +- %.1f)\n", hits, n, mean, sd);
    assert_true(fabs(hits - mean) < 5 * sd);
    wait_spans((size_t)hits * 3);
    for (size_t i = 0; i < (size_t)hits * 3; i++) {
        span_v v = span_at(i);
        bool found = false;
        for (int k = 0; k < hits && !found; k++)
            found = !strcmp(v.trace, sampled_ids[k]);
        assert_true(found);
    }
    stop();
    collector_stop(&COL);
}

/* A collector that takes the POST and never answers, then one that is not
 * there at all: requests go on, spans are dropped and counted. */
static void test_slow_and_down_collector(void **s)
{
    (void)s;
    char tp[56], ts[64];
    static resp r;
    collector_start(&COL, COL_SILENT);
    tracer_to_collector(SL_SAMPLER_ALWAYS_ON, 1.0, 8, 60000);   /* one POST hangs for the whole test */
    start();
    int fd = cli_connect(TS.port);
    for (int i = 0; i < 100; i++)   /* 300 spans for a queue of 8, and no one answers */
        assert_int_equal(hop(fd, "", tp, ts, sizeof ts), 200);
    close(fd);
    sl_tracer_stats st;
    for (int i = 0; i < 2500; i++) {   /* the last /hop's span comes just after its answer */
        sl_tracer_stats_get(TR, &st);
        if (st.spans >= 300)
            break;
        usleep(2000);
    }
    assert_int_equal(st.spans, 300);
    assert_int_equal(st.exported, 0);
    print_message("slow collector: %llu spans, %llu dropped, %u queued\n", (unsigned long long)st.spans,
                  (unsigned long long)st.dropped, st.queued);
    assert_true(st.dropped >= 300 - 16);   /* at most a queue and a batch were taken */
    assert_true(st.queued <= 16);
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    assert_null(strstr(r.body, "sluice_trace_spans_total{result=\"dropped\"} 0\n"));
    assert_non_null(strstr(r.body, "sluice_trace_spans_total{result=\"dropped\"} "));
    /* stop: the exporter is stuck in its POST until the collector goes */
    sl_runtime_stop(TS.rt);
    pthread_join(TS.th, NULL);
    sl_http_server_free(TS.srv);
    sl_http_upstream_free(UP);
    assert_int_equal(sl_runtime_free(TS.rt), 0);
    collector_stop(&COL);   /* closes the held connection: the POST fails */
    sl_tracer_free(TR);
    TR = NULL;

    /* down: a port nobody listens on */
    collector_start(&COL, COL_OK);
    int dead = COL.port;
    collector_stop(&COL);
    char ep[64];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", dead);
    assert_int_equal(sl_tracer_new(&TR, &(sl_tracer_opts){ .endpoint = ep, .sampler = SL_SAMPLER_ALWAYS_ON,
                                                           .delay_ms = 10, .timeout_ms = 1000 }), 0);
    start();
    fd = cli_connect(TS.port);
    for (int i = 0; i < 10; i++)
        assert_int_equal(hop(fd, "", tp, ts, sizeof ts), 200);
    close(fd);
    for (int i = 0; i < 2500; i++) {   /* each batch fails at once (refused) */
        sl_tracer_flush(TR, 1000);
        sl_tracer_stats_get(TR, &st);
        if (st.failed == 30)
            break;
        usleep(2000);
    }
    assert_int_equal(st.failed, 30);
    assert_int_equal(st.exported, 0);
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    assert_non_null(strstr(r.body, "sluice_trace_spans_total{result=\"failed\"} 30\n"));
    stop();
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tracestate_bounds),
        cmocka_unit_test(test_tracestate_round_trip),
        cmocka_unit_test(test_flags_zeroed),
        cmocka_unit_test(test_sampler_decisions),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_two_hop_export),
        cmocka_unit_test(test_idle_exporter_sleeps),
        cmocka_unit_test(test_cause_on_client_span),
        cmocka_unit_test(test_ratio_end_to_end),
        cmocka_unit_test(test_slow_and_down_collector),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
