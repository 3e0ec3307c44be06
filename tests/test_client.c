/* test_client.c: upstream calls against a server in the same runtime. */
#include <signal.h>
#include <stdatomic.h>
#include "httputil.h"
#include "rendezvous.h"
#include "sl_client.h"
#include "client_int.h"

static sl_runtime *rt;
static capture cap;
static sl_http_server *srv;
static int port;

/* ---- the server side -------------------------------------------------------------- */

static int seen_cause = -1;
static uint64_t seen_budget_ms;
static char seen_trace[33];
static int calls_served;
static int waits_ended;   /* GET /wait handlers that ended */

static int h_ok(sl_task *t, void *arg)
{
    (void)t;
    calls_served++;
    return sl_http_reply(arg, 200, "text/plain", "ok", 2);
}

static int h_budget(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    (void)t;
    calls_served++;
    seen_budget_ms = (uint64_t)sl_ctx_remaining_ms(sl_http_req_ctx(req));
    sl_trace_id_hex(sl_http_req_trace(req), seen_trace);
    return sl_http_reply(req, 200, "text/plain", "b", 1);
}

typedef struct wst { int rc; } wst;

static int h_wait(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    wst *s = sl_http_req_state(req);
    SL_BEGIN(t);
    calls_served++;
    SL_AWAIT(t, s->rc, sl_sleep(t, 30 * SL_NS_PER_S));
    seen_cause = (int)sl_ctx_cause(sl_http_req_ctx(req), NULL);
    waits_ended++;
    SL_END(t);
}

static int h_status(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    size_t n;
    (void)t;
    const char *code = sl_http_req_param(req, "code", &n);
    calls_served++;
    return sl_http_reply_error(req, atoi(code), "as_asked", "status %d as asked", atoi(code));
}

/* Sleeps ?ms=N, then answers 200. */
static int h_slow(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    wst *s = sl_http_req_state(req);
    size_t ql;
    const char *q = sl_http_req_query(req, &ql);
    SL_BEGIN(t);
    calls_served++;
    SL_AWAIT(t, s->rc, sl_sleep(t, (uint64_t)(ql > 3 ? atoi(q + 3) : 0) * SL_NS_PER_MS));
    if (s->rc < 0)
        SL_RETURN(t, s->rc);
    sl_http_reply(req, 200, "text/plain", "slow", 4);
    SL_END(t);
}

/* The server, its routes added, not started (serve_start). */
/* Sleeps ?ms=N, then resets the connection instead of answering. */
static int h_reset(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    wst *s = sl_http_req_state(req);
    size_t ql;
    const char *q = sl_http_req_query(req, &ql);
    SL_BEGIN(t);
    calls_served++;
    SL_AWAIT(t, s->rc, sl_sleep(t, (uint64_t)(ql > 3 ? atoi(q + 3) : 0) * SL_NS_PER_MS));
    sl_http_req_reset(req);
    SL_END(t);
}

static void serve_new(void)
{
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);
    assert_int_equal(sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(srv, "GET", "/ok", h_ok, 0, NULL), 0);
    assert_int_equal(sl_http_route(srv, "GET", "/budget", h_budget, 0, NULL), 0);
    assert_int_equal(sl_http_route(srv, "GET", "/wait", h_wait, sizeof(wst), NULL), 0);
    assert_int_equal(sl_http_route(srv, "POST", "/status/{code}", h_status, 0, NULL), 0);
    assert_int_equal(sl_http_route(srv, "GET", "/reset", h_reset, sizeof(wst), NULL), 0);
    assert_int_equal(sl_http_route(srv, "POST", "/ok", h_ok, 0, NULL), 0);
    assert_int_equal(sl_http_route(srv, "POST", "/reset", h_reset, sizeof(wst), NULL), 0);
    assert_int_equal(sl_http_route(srv, "GET", "/slow", h_slow, sizeof(wst), NULL), 0);
}

static void serve_start(void)
{
    assert_int_equal(sl_http_server_start(srv), 0);
    port = sl_http_server_port(srv);
    seen_cause = -1;
    calls_served = 0;
    waits_ended = 0;
}

static void serve(void)
{
    serve_new();
    serve_start();
}

static void done(int expect_leaks)
{
    sl_http_server_free(srv);
    (void)expect_leaks;
}

/* ---- calls ------------------------------------------------------------------------------ */

typedef struct cst {
    sl_http_upstream *up, *up2, *dead, *tight, *self;
    sl_http_resp r, r2, held[2];
    sl_ctx *ctx;
    int rc, rc2, rc3, polls;   /* polls: a bounded wait's count */
    sl_task *caller;
} cst;

static cst C;

static int basic_main(sl_task *t, void *arg)
{
    (void)arg;
    char url[64];
    sl_http_upstream_stats st;
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, NULL), 0);
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "GET", "/ok", NULL, 0));
    assert_int_equal(C.rc, 0);
    assert_int_equal(C.r.status, 200);
    assert_string_equal(C.r.body, "ok");
    size_t n;
    assert_non_null(sl_http_resp_header(&C.r, "content-type", &n));
    sl_http_call_end(&C.r);
    /* keep-alive: the second call reuses the connection */
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "POST", "/status/409", "{}", 2));
    assert_int_equal(C.rc, 0);
    assert_int_equal(C.r.status, 409);                       /* a status, not an error */
    assert_non_null(strstr(C.r.body, "\"error\":\"as_asked\""));
    sl_http_call_end(&C.r);
    sl_http_call_end(&C.r);                                  /* idempotent */
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.reused, 1);
    assert_int_equal(st.ok, 2);
    assert_int_equal(st.idle, 1);
    /* bad arguments */
    assert_int_equal(sl_http_call(t, &C.r, C.up, "get", "/ok", NULL, 0), -EINVAL);
    assert_int_equal(sl_http_call(t, &C.r, C.up, "GET", "ok", NULL, 0), -EINVAL);
    assert_int_equal(sl_http_call(t, &C.r, C.up, "GET", "/a b", NULL, 0), -EINVAL);
    sl_http_call_end(&C.r);
    /* nobody listening: refused */
    assert_int_equal(sl_http_upstream_new(&C.dead, rt, "http://127.0.0.1:1", NULL), 0);
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.dead, "GET", "/ok", NULL, 0));
    assert_int_equal(C.rc, -ECONNREFUSED);
    sl_http_call_end(&C.r);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_calls(void **s)
{
    (void)s;
    serve();
    memset(&C, 0, sizeof C);
    assert_int_equal(rt_run_keep(rt, basic_main, NULL), 0);
    sl_http_upstream_free(C.up);
    sl_http_upstream_free(C.dead);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- an idle connection past its time is not used again ------------------------------ */

/* With idle_timeout_ms 50: a call right after another reuses its
 * connection only while it has been idle less than that; one idle longer
 * is closed and the call takes a new one (a server's own idle timeout may
 * be closing it: a POST written on it would be lost). */
static int expiry_main(sl_task *t, void *arg)
{
    (void)arg;
    char url[64];
    sl_http_upstream_stats st;
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, &(sl_http_upstream_opts){ .idle_timeout_ms = 50 }), 0);
    assert_int_equal(sl_http_upstream_new(&C.up2, rt, url, NULL), 0);   /* (url lives until the first wait) */
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "POST", "/ok", "{}", 2));
    assert_int_equal(C.rc, 0);
    assert_int_equal(C.r.status, 200);
    sl_http_call_end(&C.r);
    /* idle at least 50 ms by this reactor's own clock (the test's claim is
     * what the pool does with a connection that old, not how fast it got
     * there) */
    SL_AWAIT(t, C.rc, sl_sleep(t, 60 * SL_NS_PER_MS));
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "POST", "/ok", "{}", 2));
    assert_int_equal(C.rc, 0);
    assert_int_equal(C.r.status, 200);
    sl_http_call_end(&C.r);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.connects, 2);
    assert_int_equal(st.reused, 0);
    assert_int_equal(st.expired, 1);
    assert_int_equal(st.idle, 1);      /* the old one is gone, the new one idle */
    /* the default (30 s) keeps a connection idle for a moment */
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up2, "GET", "/ok", NULL, 0));
    sl_http_call_end(&C.r);
    SL_AWAIT(t, C.rc, sl_sleep(t, 60 * SL_NS_PER_MS));
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up2, "GET", "/ok", NULL, 0));
    assert_int_equal(C.rc, 0);
    sl_http_call_end(&C.r);
    sl_http_upstream_stats_get(C.up2, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.reused, 1);
    assert_int_equal(st.expired, 0);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_idle_connection_expires(void **s)
{
    (void)s;
    serve();
    memset(&C, 0, sizeof C);
    assert_int_equal(rt_run_keep(rt, expiry_main, NULL), 0);
    sl_http_upstream_free(C.up);
    sl_http_upstream_free(C.up2);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- a request larger than the socket takes at once ---------------------------------- */

/* Answers the body's length and a sum of its bytes. */
static int h_len(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    (void)t;
    size_t n;
    const unsigned char *b = (const unsigned char *)sl_http_req_body(req, &n);
    unsigned long sum = 0;
    for (size_t i = 0; i < n; i++)
        sum = sum * 31 + b[i];
    calls_served++;
    char out[64];
    int len = snprintf(out, sizeof out, "%zu %lu", n, sum);
    return sl_http_reply(req, 200, "text/plain", out, (size_t)len);
}

#define BIG_BODY (8u << 20)

static char *big;
static char big_expect[64];

static int big_main(sl_task *t, void *arg)
{
    (void)arg;
    char url[64];
    sl_http_upstream_stats st;
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, NULL), 0);
    /* the first call connects: the bufferevent writes it */
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "POST", "/len", "x", 1));
    assert_int_equal(C.rc, 0);
    assert_string_equal(C.r.body, "1 120");
    sl_http_call_end(&C.r);
    /* on the idle connection now: written at once, and 8 MiB is more than
     * a loopback socket takes, so the rest goes through the bufferevent */
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "POST", "/len", big, BIG_BODY));
    assert_int_equal(C.rc, 0);
    assert_int_equal(C.r.status, 200);
    assert_string_equal(C.r.body, big_expect);
    sl_http_call_end(&C.r);
    /* and a small one after it, whole in one send */
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "POST", "/len", "ab", 2));
    assert_int_equal(C.rc, 0);
    assert_string_equal(C.r.body, "2 3105");
    sl_http_call_end(&C.r);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.connects, 1);
    assert_int_equal(st.reused, 2);
    assert_int_equal(st.ok, 3);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_large_request_written_in_parts(void **s)
{
    (void)s;
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);
    assert_int_equal(sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0",
                                                                          .max_body = 2 * BIG_BODY }), 0);
    assert_int_equal(sl_http_route(srv, "POST", "/len", h_len, 0, NULL), 0);
    serve_start();
    big = malloc(BIG_BODY);
    assert_non_null(big);
    unsigned long sum = 0;
    for (size_t i = 0; i < BIG_BODY; i++) {
        big[i] = (char)('a' + (i * 7 + i / 4096) % 26);
        sum = sum * 31 + (unsigned char)big[i];
    }
    snprintf(big_expect, sizeof big_expect, "%u %lu", BIG_BODY, sum);
    memset(&C, 0, sizeof C);
    assert_int_equal(rt_run_keep(rt, big_main, NULL), 0);
    assert_int_equal(calls_served, 3);
    sl_http_upstream_free(C.up);
    free(big);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- budgets and traces --------------------------------------------------------------- */

static int budget_call(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "GET", "/budget", NULL, 0));
    sl_http_call_end(&C.r);
    /* narrowed below the margin: fails before sending anything */
    C.rc2 = calls_served;
    sl_task_set_deadline(t, sl_now_ns() + 2 * SL_NS_PER_MS);
    C.rc = sl_http_call(t, &C.r, C.up, "GET", "/ok", NULL, 0);
    assert_int_equal(C.rc, -ETIMEDOUT);
    assert_int_equal(calls_served, C.rc2);
    sl_http_call_end(&C.r);
    sl_runtime_stop(rt);
    SL_END(t);
}

static int budget_main(sl_task *t, void *arg)
{
    char url[64];
    static const char tp[] = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    static sl_traceparent trace;
    (void)t;
    (void)arg;
    snprintf(url, sizeof url, "http://localhost:%d", port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, &(sl_http_upstream_opts){ .margin_ms = 20 }), 0);
    /* a caller's context: 300 ms and a trace, as a server's request would have */
    sl_ctx *vals;
    assert_int_equal(sl_traceparent_parse(tp, strlen(tp), &trace), 0);
    assert_int_equal(sl_ctx_with_trace(&vals, sl_ctx_background(), &trace), 0);
    assert_int_equal(sl_ctx_with_timeout(&C.ctx, vals, 300), 0);
    sl_ctx_unref(vals);
    assert_int_equal(sl_go(C.ctx, budget_call, NULL, NULL, NULL), 0);
    sl_ctx_unref(C.ctx);
    return 0;
}

static void test_budget_and_trace_forwarded(void **s)
{
    (void)s;
    serve();
    memset(&C, 0, sizeof C);
    assert_int_equal(rt_run_keep(rt, budget_main, NULL), 0);
    assert_int_equal(C.rc, -ETIMEDOUT);
    /* the callee's context got the caller's remaining budget minus the margin */
    print_message("callee budget %llu ms\n", (unsigned long long)seen_budget_ms);
    assert_true(seen_budget_ms <= 280 && seen_budget_ms >= 50);   /* 300 - 20 ms margin - time spent */
    assert_string_equal(seen_trace, "4bf92f3577b34da6a3ce929d0e0e4736");
    sl_http_upstream_free(C.up);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- the caller gives up: the callee is cancelled ---------------------------------------- */

static int aborting_call(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "GET", "/wait", NULL, 0));
    sl_http_call_end(&C.r);
    SL_END(t);
}

static int abort_main(sl_task *t, void *arg)
{
    char url[64];
    (void)arg;
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, NULL), 0);
    assert_int_equal(sl_ctx_with_cancel(&C.ctx, sl_ctx_background()), 0);
    assert_int_equal(sl_go(C.ctx, aborting_call, NULL, &C.caller, NULL), 0);
    while (calls_served == 0)
        SL_AWAIT(t, C.rc2, sl_sleep(t, SL_NS_PER_MS));
    /* diagnostics say what the caller waits for */
    sl_task_info info;
    sl_task_info_get(C.caller, &info);
    assert_int_equal(info.wait, SL_WAIT_EXTERNAL);
    assert_string_equal(info.wait_name, "HTTP GET /wait");
    sl_ctx_cancel(C.ctx, SL_CAUSE_UPSTREAM);
    while (seen_cause < 0)
        SL_AWAIT(t, C.rc2, sl_sleep(t, SL_NS_PER_MS));
    sl_ctx_unref(C.ctx);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_caller_abort_cancels_callee(void **s)
{
    (void)s;
    serve();
    memset(&C, 0, sizeof C);
    assert_int_equal(rt_run_keep(rt, abort_main, NULL), 0);
    assert_int_equal(C.rc, -ECANCELED);                  /* the context's error */
    assert_int_equal(seen_cause, SL_CAUSE_DISCONNECT);   /* the callee saw the caller go */
    sl_http_upstream_free(C.up);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- pool exhausted: -EBUSY at once ------------------------------------------------------- */

static int busy_main(sl_task *t, void *arg)
{
    char url[64];
    (void)arg;
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(sl_http_upstream_new(&C.tight, rt, url, &(sl_http_upstream_opts){ .max_conns = 1, .no_wait = true }), 0);
    C.up = C.tight;
    assert_int_equal(sl_ctx_with_cancel(&C.ctx, sl_ctx_background()), 0);
    assert_int_equal(sl_go(C.ctx, aborting_call, NULL, &C.caller, NULL), 0);   /* holds the only connection */
    while (calls_served == 0)
        SL_AWAIT(t, C.rc2, sl_sleep(t, SL_NS_PER_MS));
    uint64_t t0 = sl_now_ns();
    C.rc2 = sl_http_call(t, &C.r2, C.tight, "GET", "/ok", NULL, 0);
    assert_int_equal(C.rc2, -EBUSY);
    assert_true(sl_now_ns() - t0 < 100 * SL_NS_PER_MS);   /* at once: nothing waits */
    sl_http_call_end(&C.r2);
    sl_http_upstream_stats st;
    sl_http_upstream_stats_get(C.tight, &st);
    assert_int_equal(st.busy, 1);
    sl_ctx_cancel(C.ctx, SL_CAUSE_CANCELED);
    while (seen_cause < 0)
        SL_AWAIT(t, C.rc2, sl_sleep(t, SL_NS_PER_MS));
    sl_ctx_unref(C.ctx);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_pool_exhausted_busy(void **s)
{
    (void)s;
    serve();
    memset(&C, 0, sizeof C);
    assert_int_equal(rt_run_keep(rt, busy_main, NULL), 0);
    sl_http_upstream_free(C.tight);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- whether a call may have reached its callee (sl_http_call_reached) ---------------------- */

static int reached_main(sl_task *t, void *arg)
{
    char url[64];
    (void)arg;
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, NULL), 0);
    assert_int_equal(sl_http_upstream_new(&C.tight, rt, url, &(sl_http_upstream_opts){ .max_conns = 1 }), 0);
    assert_int_equal(sl_http_upstream_new(&C.dead, rt, "http://127.0.0.1:1", NULL), 0);
    assert_false(sl_http_call_reached(NULL));
    /* answered: reached, even with an error status */
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "POST", "/status/503", NULL, 0));
    assert_int_equal(C.rc, 0);
    assert_true(sl_http_call_reached(&C.r));
    sl_http_call_end(&C.r);
    assert_false(sl_http_call_reached(&C.r));   /* cleared */
    /* refused while connecting: nothing left */
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.dead, "POST", "/ok", "{}", 2));
    assert_int_equal(C.rc, -ECONNREFUSED);
    assert_false(sl_http_call_reached(&C.r));
    sl_http_call_end(&C.r);
    /* no budget left to send: refused at once */
    sl_task_set_deadline(t, sl_now_ns() + 2 * SL_NS_PER_MS);   /* below the 5 ms margin */
    C.rc = sl_http_call(t, &C.r, C.up, "POST", "/ok", "{}", 2);
    assert_int_equal(C.rc, -ETIMEDOUT);
    assert_false(sl_http_call_reached(&C.r));
    sl_http_call_end(&C.r);
    sl_task_set_deadline(t, 0);
    /* the only connection busy: a call that runs out of time waiting for
     * it never left; one that runs out of time on its connection did */
    assert_int_equal(sl_ctx_with_cancel(&C.ctx, sl_ctx_background()), 0);
    C.up2 = C.up;
    C.up = C.tight;   /* aborting_call's; it uses C.r and C.rc, so this task uses C.r2 and C.rc2 from here */
    C.rc = 1;   /* aborting_call's result, when it ends */
    assert_int_equal(sl_go(C.ctx, aborting_call, NULL, &C.caller, NULL), 0);   /* holds it (GET /wait) */
    TASK_POLL(t, C.rc3, C.polls, 10000, calls_served >= 2);   /* up to 10 s */
    assert_int_equal(calls_served, 2);
    sl_task_set_deadline(t, sl_now_ns() + 100 * SL_NS_PER_MS);
    SL_AWAIT(t, C.rc2, sl_http_call(t, &C.r2, C.tight, "POST", "/ok", "{}", 2));
    assert_int_equal(C.rc2, -ETIMEDOUT);
    assert_false(sl_http_call_reached(&C.r2));
    sl_http_call_end(&C.r2);
    assert_int_equal(calls_served, 2);
    sl_task_set_deadline(t, sl_now_ns() + 100 * SL_NS_PER_MS);
    SL_AWAIT(t, C.rc2, sl_http_call(t, &C.r2, C.up2, "GET", "/wait", NULL, 0));
    /* the callee's own budget (ours less the margin) may end first: 504 */
    assert_true(C.rc2 == -ETIMEDOUT || (C.rc2 == 0 && C.r2.status == 504));
    assert_true(sl_http_call_reached(&C.r2));
    sl_http_call_end(&C.r2);
    sl_task_set_deadline(t, 0);
    sl_ctx_cancel(C.ctx, SL_CAUSE_CANCELED);
    /* both GET /wait handlers saw their callers go, and the holder ended
     * its call: waited for, up to 10 s */
    TASK_POLL(t, C.rc3, C.polls, 10000, waits_ended >= 2 && C.rc != 1);
    assert_true(waits_ended >= 2);
    assert_int_equal(C.rc, -ECANCELED);
    sl_ctx_unref(C.ctx);
    C.ctx = NULL;
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_call_reached(void **s)
{
    (void)s;
    serve();
    memset(&C, 0, sizeof C);
    assert_int_equal(rt_run_keep(rt, reached_main, NULL), 0);
    sl_http_upstream_free(C.tight);
    sl_http_upstream_free(C.up2);
    sl_http_upstream_free(C.dead);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- fail-fast: refused here, no connection, no bytes --------------------------------------- */

static struct {
    sl_http_upstream *off, *fresh;
    int i, answered, refused, served;
    uint64_t t0;
    sl_metrics *m;
    sl_metric *ff;
} F;

/* sluice_upstream_failfast_total{upstream=name,reason=why} in F.m */
static double failfast_count(const char *name, const char *why)
{
    sl_series *s;
    assert_int_equal(sl_metric_series(F.ff, (const char *[]){ name, why }, &s), 0);
    return sl_series_value(s);
}

static int failfast_main(sl_task *t, void *arg)
{
    char url[64];
    sl_http_upstream_stats st;
    (void)arg;
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, NULL), 0);
    assert_int_equal(sl_http_upstream_new(&F.off, rt, url, &(sl_http_upstream_opts){ .no_fail_fast = true }), 0);
    assert_int_equal(sl_http_upstream_new(&F.fresh, rt, url, NULL), 0);
    /* counted by reason as a server counts them (sl_http_server_add_upstream;
     * no call has been made yet) */
    sl__up_metrics um = { .failfast = F.ff, .name = "up" };
    sl__upstream_set_metrics(C.up, &um);
    strcpy(um.name, "fresh");
    sl__upstream_set_metrics(F.fresh, &um);
    /* 1. an upstream that keeps refusing: once 16 answers are in, most
     * calls are turned away here, and those send nothing */
    for (F.i = 0; F.i < 200; F.i++) {
        SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "POST", "/status/503", NULL, 0));
        if (C.rc == -EBUSY) {
            F.refused++;
        } else {
            assert_int_equal(C.rc, 0);
            assert_int_equal(C.r.status, 503);
            F.answered++;
        }
        sl_http_call_end(&C.r);
    }
    assert_int_equal(calls_served, F.answered);   /* a refused call reached nobody */
    assert_true(F.answered >= 16);
    assert_true(F.refused >= 100);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.failfast, F.refused);
    assert_int_equal(st.busy, F.refused);
    assert_true(failfast_count("up", "throttle") == F.refused);
    assert_true(failfast_count("up", "latency") == 0);
    assert_int_equal(st.connects, 1);
    /* a compensation goes out all the same (its callee admits it on the
     * undo lane), and its 503s teach the throttle nothing */
    F.served = calls_served;
    for (F.i = 0; F.i < 20; F.i++) {
        SL_AWAIT(t, C.rc, sl_http_call_flags(t, &C.r, C.up, "POST", "/status/503", NULL, 0, "k", 1,
                                             SL_HTTP_CALL_UNDO));
        assert_int_equal(C.rc, 0);
        assert_int_equal(C.r.status, 503);
        sl_http_call_end(&C.r);
    }
    assert_int_equal(calls_served, F.served + 20);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.failfast, F.refused);
    assert_int_equal(sl_http_call_flags(t, &C.r, C.up, "POST", "/x", NULL, 0, NULL, 0, 2), -EINVAL);
    sl_http_call_end(&C.r);
    /* with fail-fast off, every call goes out */
    F.served = calls_served;
    for (F.i = 0; F.i < 50; F.i++) {
        SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, F.off, "POST", "/status/503", NULL, 0));
        assert_int_equal(C.rc, 0);
        assert_int_equal(C.r.status, 503);
        sl_http_call_end(&C.r);
    }
    assert_int_equal(calls_served, F.served + 50);
    /* 2. the upstream serves again: a call gets through (the throttle lets
     * some through and forgets; 10 s is far more than it needs) */
    F.t0 = sl_now_ns();
    for (;;) {
        SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "GET", "/ok", NULL, 0));
        F.i = C.rc == 0 && C.r.status == 200;
        sl_http_call_end(&C.r);
        if (F.i)
            break;
        assert_int_equal(C.rc, -EBUSY);
        assert_true(sl_now_ns() - F.t0 < 10 * SL_NS_PER_S);
        SL_AWAIT(t, C.rc2, sl_sleep(t, 10 * SL_NS_PER_MS));
    }
    /* once the upstream answered nothing but what it accepted for a
     * window (500 ms), no call is refused here any more, however many it
     * refused before (at a low call rate the counts alone would keep most
     * calls away for seconds) */
    SL_AWAIT(t, C.rc2, sl_sleep(t, 600 * SL_NS_PER_MS));
    for (F.i = 0; F.i < 20; F.i++) {
        SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "GET", "/ok", NULL, 0));
        assert_int_equal(C.rc, 0);
        assert_int_equal(C.r.status, 200);
        sl_http_call_end(&C.r);
    }
    /* 3. a budget below the upstream's median time: refused at once. 16
     * calls of 20 ms teach a fresh pool its median; a call with 22 ms left
     * (margin 5 ms) would not make it (and 22 ms leaves room enough, on a
     * slow machine, not to be refused for having no budget at all) */
    for (F.i = 0; F.i < 16; F.i++) {
        SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, F.fresh, "GET", "/slow?ms=20", NULL, 0));
        assert_int_equal(C.rc, 0);
        assert_int_equal(C.r.status, 200);
        sl_http_call_end(&C.r);
    }
    F.served = calls_served;
    sl_task_set_deadline(t, sl_now_ns() + 22 * SL_NS_PER_MS);
    C.rc = sl_http_call(t, &C.r, F.fresh, "GET", "/slow?ms=20", NULL, 0);
    assert_int_equal(C.rc, -EBUSY);
    sl_http_call_end(&C.r);
    assert_int_equal(calls_served, F.served);
    sl_http_upstream_stats_get(F.fresh, &st);
    assert_int_equal(st.failfast, 1);
    assert_true(failfast_count("fresh", "latency") == 1);
    assert_true(failfast_count("fresh", "throttle") == 0);
    /* without fail-fast the same call goes out (and runs out of time, or
     * the server, which learned the route's median too, refuses it) */
    sl_http_upstream_stats_get(F.off, &st);
    F.served = (int)(st.connects + st.reused);
    sl_task_set_deadline(t, sl_now_ns() + 22 * SL_NS_PER_MS);
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, F.off, "GET", "/slow?ms=20", NULL, 0));
    assert_true(C.rc == -ETIMEDOUT || (C.rc == 0 && (C.r.status == 504 || C.r.status == 503)));
    sl_http_call_end(&C.r);
    sl_http_upstream_stats_get(F.off, &st);
    assert_int_equal(st.connects + st.reused, F.served + 1);   /* it took a connection */
    assert_int_equal(st.failfast, 0);
    /* with time enough, it goes out and is served */
    sl_task_set_deadline(t, 0);
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, F.fresh, "GET", "/slow?ms=20", NULL, 0));
    assert_int_equal(C.rc, 0);
    assert_int_equal(C.r.status, 200);
    sl_http_call_end(&C.r);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_fail_fast(void **s)
{
    (void)s;
    serve();
    memset(&C, 0, sizeof C);
    memset(&F, 0, sizeof F);
    static const char *const by[] = { "upstream", "reason", NULL };
    assert_int_equal(sl_metrics_new(&F.m, rt), 0);
    assert_int_equal(sl_metric_new(F.m, &F.ff, SL_METRIC_COUNTER, "ff_total", &(sl_metric_opts){ .labels = by }), 0);
    assert_int_equal(rt_run_keep(rt, failfast_main, NULL), 0);
    sl_http_upstream_free(C.up);
    sl_http_upstream_free(F.off);
    sl_http_upstream_free(F.fresh);
    sl_metrics_free(F.m);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- /metrics counts upstream calls ------------------------------------------------------ */

/* The value of the first line of `text` that starts with `series`, or -1. */
static long long metric(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, series, n) && p[n] == ' ')
            return atoll(p + n + 1);
    return -1;
}

/* A call to the monitoring server's /wait, held until C.ctx ends. */
static int held_call(sl_task *t, void *arg)
{
    sl_http_resp *r = arg;
    static int rc;
    SL_BEGIN(t);
    SL_AWAIT(t, rc, sl_http_call(t, r, C.self, "GET", "/wait", NULL, 0));
    assert_int_equal(rc, -ECANCELED);   /* held until cancelled */
    sl_http_call_end(r);
    SL_END(t);
}

static int metrics_main(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "GET", "/ok", NULL, 0));
    assert_int_equal(C.rc, 0);
    sl_http_call_end(&C.r);
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "GET", "/ok", NULL, 0));
    sl_http_call_end(&C.r);
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.dead, "GET", "/ok", NULL, 0));
    assert_int_equal(C.rc, -ECONNREFUSED);
    sl_http_call_end(&C.r);
    /* two requests held open, then the peak is at least 3 (with /metrics) */
    assert_int_equal(sl_ctx_with_cancel(&C.ctx, sl_ctx_background()), 0);
    assert_int_equal(sl_go(C.ctx, held_call, &C.held[0], NULL, NULL), 0);
    assert_int_equal(sl_go(C.ctx, held_call, &C.held[1], NULL, NULL), 0);
    while (calls_served < 4)
        SL_AWAIT(t, C.rc2, sl_sleep(t, SL_NS_PER_MS));
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r2, C.self, "GET", "/metrics", NULL, 0));
    assert_int_equal(C.rc, 0);
    const char *m = C.r2.body;
    assert_int_equal(metric(m, "sluice_upstream_calls_total{upstream=\"inventory\",result=\"ok\"}"), 2);
    assert_int_equal(metric(m, "sluice_upstream_connections{upstream=\"inventory\",state=\"idle\"}"), 1);
    assert_int_equal(metric(m, "sluice_upstream_connections{upstream=\"inventory\",state=\"active\"}"), 0);
    assert_int_equal(metric(m, "sluice_upstream_calls_total{upstream=\"payment.v2\",result=\"refused\"}"), 1);
    assert_int_equal(metric(m, "sluice_upstream_calls_total{upstream=\"payment.v2\",result=\"ok\"}"), 0);
    assert_int_equal(metric(m, "sluice_upstream_events_total{upstream=\"payment.v2\",event=\"retried\"}"), 0);
    assert_int_equal(metric(m, "sluice_upstream_events_total{upstream=\"payment.v2\",event=\"ejected\"}"), 0);
    /* two calls to inventory: one connection made, then kept alive */
    assert_int_equal(metric(m, "sluice_upstream_events_total{upstream=\"inventory\",event=\"connected\"}"), 1);
    assert_int_equal(metric(m, "sluice_upstream_events_total{upstream=\"inventory\",event=\"reused\"}"), 1);
    assert_int_equal(metric(m, "sluice_upstream_events_total{upstream=\"inventory\",event=\"expired\"}"), 0);
    assert_int_equal(metric(m, "sluice_upstream_calls_total{upstream=\"self\",result=\"ok\"}"), -1);   /* not added */
    assert_null(strstr(m, "sluice_upstream_calls_total{upstream=\"payment.v2\",result=\"retried\"}"));
    /* each attempt by upstream and replica: its result, its time */
    char series[256];
    snprintf(series, sizeof series, "sluice_upstream_attempts_total{upstream=\"inventory\",replica=\"127.0.0.1:%d\","
             "result=\"ok\"}", port);
    assert_int_equal(metric(m, series), 2);
    assert_int_equal(metric(m, "sluice_upstream_attempts_total{upstream=\"payment.v2\",replica=\"127.0.0.1:1\","
                               "result=\"refused\"}"), 1);
    snprintf(series, sizeof series, "sluice_upstream_request_duration_seconds_count{upstream=\"inventory\","
             "replica=\"127.0.0.1:%d\"}", port);
    assert_int_equal(metric(m, series), 2);
    snprintf(series, sizeof series, "sluice_upstream_request_duration_seconds_bucket{upstream=\"inventory\","
             "replica=\"127.0.0.1:%d\",le=\"10\"}", port);
    assert_int_equal(metric(m, series), 2);
    assert_null(strstr(m, "upstream=\"self\""));   /* calls to an upstream not added are not counted */
    assert_int_equal(metric(m, "sluice_http_inflight{reactor=\"0\"}"), 3);
    assert_int_equal(metric(m, "sluice_http_inflight_peak{reactor=\"0\"}"), 3);
    sl_http_call_end(&C.r2);
    /* the held calls end: in-flight falls, the peak stays */
    sl_ctx_cancel(C.ctx, SL_CAUSE_CANCELED);
    sl_ctx_unref(C.ctx);
    while (seen_cause < 0)
        SL_AWAIT(t, C.rc2, sl_sleep(t, SL_NS_PER_MS));
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r2, C.self, "GET", "/metrics", NULL, 0));
    assert_int_equal(C.rc, 0);
    m = C.r2.body;
    assert_int_equal(metric(m, "sluice_upstream_calls_total{upstream=\"inventory\",result=\"ok\"}"), 2);
    assert_int_equal(metric(m, "sluice_http_inflight_peak{reactor=\"0\"}"), 3);
    assert_true(metric(m, "sluice_http_inflight{reactor=\"0\"}") <= 2);   /* the held ones may still be ending */
    sl_http_call_end(&C.r2);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_upstream_metrics(void **s)
{
    (void)s;
    char url[64];
    memset(&C, 0, sizeof C);
    serve();   /* the upstream called */
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, NULL), 0);
    assert_int_equal(sl_http_upstream_new(&C.dead, rt, "http://127.0.0.1:1", NULL), 0);
    /* the server whose /metrics reports them */
    sl_http_server *mon;
    assert_int_equal(sl_http_server_new(&mon, rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(mon, "GET", "/wait", h_wait, sizeof(wst), NULL), 0);
    assert_int_equal(sl_http_server_add_upstream(mon, "payment.v2", C.dead), 0);
    assert_int_equal(sl_http_server_add_upstream(mon, "payment.v2", C.up), -EEXIST);
    assert_int_equal(sl_http_server_add_upstream(mon, "inventory", C.up), 0);
    static const char *bad[] = { "", "a\"b", "a b", "x{y}", "new\nline",
                                 "0123456789012345678901234567890123456789012345678901234567890123" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(sl_http_server_add_upstream(mon, bad[i], C.dead), -EINVAL);
    assert_int_equal(sl_http_server_add_upstream(mon, NULL, C.dead), -EINVAL);
    assert_int_equal(sl_http_server_add_upstream(mon, "x", NULL), -EINVAL);
    sl_runtime *other = rt_new(1, NULL);
    sl_http_upstream *foreign;
    assert_int_equal(sl_http_upstream_new(&foreign, other, "http://127.0.0.1:1", NULL), 0);
    assert_int_equal(sl_http_server_add_upstream(mon, "foreign", foreign), -EXDEV);
    sl_http_upstream_free(foreign);
    sl_runtime_free(other);
    assert_int_equal(sl_http_server_start(mon), 0);
    assert_int_equal(sl_http_server_add_upstream(mon, "late", C.dead), -EBUSY);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sl_http_server_port(mon));
    assert_int_equal(sl_http_upstream_new(&C.self, rt, url, NULL), 0);
    assert_int_equal(rt_run_keep(rt, metrics_main, NULL), 0);
    sl_http_server_free(mon);
    sl_http_upstream_free(C.up);
    sl_http_upstream_free(C.self);
    sl_http_upstream_free(C.dead);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- outlier ejection and retries -------------------------------------------------------- */

/* A port that refuses connections (bound, never listening) and that a
 * server can take over later (SO_REUSEPORT). */
static int refusing_port(int *fd)
{
    struct sockaddr_in sa = { .sin_family = AF_INET };
    socklen_t sl = sizeof sa;
    int one = 1;
    *fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    setsockopt(*fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(*fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(bind(*fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(*fd, (struct sockaddr *)&sa, &sl), 0);
    return ntohs(sa.sin_port);
}

static int refusing_fd, refusing;
static sl_http_server *revived;    /* serves the refusing port later */
static int revived_served;

static int h_revived(sl_task *t, void *arg)
{
    (void)t;
    revived_served++;
    return sl_http_reply(arg, 200, "text/plain", "revived", 7);
}

/* n sequential GET /ok on C.up; counts results in C.rc (ok) and C.rc2 (refused). */
typedef struct loop_st { int i, n, rc; } loop_st;
static loop_st L;

#define CALL_LOOP(t, up_, method_, count)                                                 \
    for (L.i = 0, L.n = (count); L.i < L.n; L.i++) {                                      \
        SL_AWAIT(t, L.rc, sl_http_call(t, &C.r, up_, method_, "/ok", NULL, 0));           \
        sl_http_call_end(&C.r);                                                          \
        if (L.rc == 0)                                                                   \
            C.rc++;                                                                      \
        else if (L.rc == -ECONNREFUSED)                                                  \
            C.rc2++;                                                                     \
        else                                                                             \
            fail_msg("call: %s", strerror(-L.rc));                                       \
    }

static uint64_t probe_at;

static int eject_main(sl_task *t, void *arg)
{
    static char url[96];   /* a task's locals do not survive its waits */
    sl_http_upstream_stats st;
    (void)arg;
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://127.0.0.1:%d,http://127.0.0.1:%d", refusing, port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, &(sl_http_upstream_opts){ .eject_ms = 400 }), 0);
    /* the refusing replica fails 5 times in a row and is taken out: every
     * other call goes to the live one */
    probe_at = sl_now_ns();
    CALL_LOOP(t, C.up, "GET", 20);
    assert_int_equal(C.rc + C.rc2, 20);
    assert_int_equal(calls_served, C.rc);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.out, 1);
    if (sl_now_ns() - probe_at < 400 * SL_NS_PER_MS) {   /* no probe yet */
        assert_int_equal(C.rc2, 5);
        assert_int_equal(st.ejected, 1);
    }
    /* after 400 ms one call probes it: refused, out again for 800 ms. What
     * follows holds whatever the scheduler does; the claims that need the
     * 800 ms window still open are made only when it was (a test thread
     * descheduled for most of a second must not fail the test). */
    SL_AWAIT(t, L.rc, sl_sleep(t, 450 * SL_NS_PER_MS));
    C.rc = C.rc2 = 0;
    probe_at = sl_now_ns();   /* the probe is at or after this */
    CALL_LOOP(t, C.up, "GET", 5);
    assert_int_equal(C.rc + C.rc2, 5);
    assert_true(C.rc2 >= 1);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.out, 1);
    if (sl_now_ns() - probe_at < 800 * SL_NS_PER_MS) {
        assert_int_equal(C.rc2, 1);
        assert_int_equal(st.ejected, 2);
    }
    /* it comes alive; while the 800 ms last it is still out */
    char listen[32];
    snprintf(listen, sizeof listen, "127.0.0.1:%d", refusing);
    assert_int_equal(sl_http_server_new(&revived, rt, &(sl_http_server_opts){ .listen = listen }), 0);
    assert_int_equal(sl_http_route(revived, "GET", "/ok", h_revived, 0, NULL), 0);
    assert_int_equal(sl_http_server_start(revived), 0);
    C.rc = C.rc2 = 0;
    CALL_LOOP(t, C.up, "GET", 3);
    assert_int_equal(C.rc, 3);
    if (sl_now_ns() - probe_at < 800 * SL_NS_PER_MS)
        assert_int_equal(revived_served, 0);
    /* once the window ran out, a probe finds it alive: back in rotation,
     * never before the 800 ms (waited for, with a generous bound) */
    for (L.i = 0; L.i < 200 && revived_served == 0; L.i++) {
        SL_AWAIT(t, L.rc, sl_sleep(t, 50 * SL_NS_PER_MS));
        SL_AWAIT(t, L.rc, sl_http_call(t, &C.r, C.up, "GET", "/ok", NULL, 0));
        sl_http_call_end(&C.r);
        assert_int_equal(L.rc, 0);
    }
    assert_true(revived_served >= 1);
    assert_true(sl_now_ns() - probe_at >= 800 * SL_NS_PER_MS);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.out, 0);
    assert_true(st.ejected >= 2);
    revived_served = 0;
    CALL_LOOP(t, C.up, "GET", 10);
    assert_true(revived_served >= 4);   /* shared again (alternating: 5) */
    sl_http_upstream_free(C.up);
    C.up = NULL;
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_outlier_ejected_and_probed_back(void **s)
{
    (void)s;
    memset(&C, 0, sizeof C);
    revived_served = 0;
    refusing = refusing_port(&refusing_fd);
    serve();
    assert_int_equal(rt_run_keep(rt, eject_main, NULL), 0);
    sl_http_server_free(revived);
    close(refusing_fd);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

static int budget_retry_main(sl_task *t, void *arg)
{
    static char url[96];   /* a task's locals do not survive its waits */
    sl_http_upstream_stats st;
    (void)arg;
    SL_BEGIN(t);
    /* one replica that refuses: never taken out (the last in rotation);
     * GETs are tried again while the budget lasts: 10 saved up, then 1 in 10 */
    snprintf(url, sizeof url, "http://127.0.0.1:%d", refusing);
    assert_int_equal(sl_http_upstream_new(&C.dead, rt, url, &(sl_http_upstream_opts){ .retries = 2 }), 0);
    CALL_LOOP(t, C.dead, "GET", 1000);
    sl_http_upstream_stats_get(C.dead, &st);
    print_message("1000 refused calls: %llu retries\n", (unsigned long long)st.retried);
    assert_int_equal(st.calls, 1000);
    assert_true(st.retried >= 100 && st.retried <= 111);
    assert_int_equal(st.refused, 1000 + st.retried);
    assert_int_equal(C.rc2, 1000);
    assert_int_equal(st.ejected, 0);
    assert_int_equal(st.out, 0);
    sl_http_upstream_free(C.dead);
    /* a refused POST is tried again like a GET: nothing was sent (the
     * bucket is full again and holds both) */
    assert_int_equal(sl_http_upstream_new(&C.dead, rt, url, &(sl_http_upstream_opts){ .retries = 3 }), 0);
    SL_AWAIT(t, L.rc, sl_http_call(t, &C.r, C.dead, "POST", "/ok", "{}", 2));
    assert_int_equal(L.rc, -ECONNREFUSED);
    sl_http_call_end(&C.r);
    sl_http_upstream_stats_get(C.dead, &st);
    assert_int_equal(st.retried, 3);
    assert_int_equal(st.refused, 4);
    SL_AWAIT(t, L.rc, sl_http_call(t, &C.r, C.dead, "GET", "/ok", NULL, 0));
    assert_int_equal(L.rc, -ECONNREFUSED);
    sl_http_call_end(&C.r);
    sl_http_upstream_stats_get(C.dead, &st);
    assert_int_equal(st.retried, 6);
    assert_int_equal(st.refused, 8);
    sl_http_upstream_free(C.dead);
    /* retries go to another replica: behind a refusing one, every call
     * ends well */
    snprintf(url, sizeof url, "http://127.0.0.1:%d,http://127.0.0.1:%d", refusing, port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, &(sl_http_upstream_opts){ .retries = 1, .no_eject = true }), 0);
    C.rc = C.rc2 = 0;
    CALL_LOOP(t, C.up, "GET", 10);
    assert_int_equal(C.rc, 10);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.retried, st.refused);
    assert_true(st.retried >= 4 && st.retried <= 6);   /* the calls alternate */
    assert_int_equal(st.ejected, 0);
    sl_http_upstream_free(C.up);
    C.up = C.dead = NULL;
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_retry_budget_and_methods(void **s)
{
    (void)s;
    memset(&C, 0, sizeof C);
    refusing = refusing_port(&refusing_fd);
    serve();
    assert_int_equal(rt_run_keep(rt, budget_retry_main, NULL), 0);
    close(refusing_fd);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* A reset before any byte is tried again while the budget has room;
 * with less than margin + 1 ms left, it is not. */
static int reset_call(sl_task *t, void *arg)
{
    const char *path = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "GET", path, NULL, 0));
    sl_http_call_end(&C.r);
    SL_END(t);
}

static int reset_main(sl_task *t, void *arg)
{
    char url[64];
    sl_http_upstream_stats st;
    (void)arg;
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, &(sl_http_upstream_opts){ .retries = 1, .margin_ms = 200 }), 0);
    /* 2 s of budget: reset at once, tried once more, reset again */
    C.rc = 1;
    assert_int_equal(sl_ctx_with_timeout(&C.ctx, sl_ctx_background(), 2000), 0);
    assert_int_equal(sl_go(C.ctx, reset_call, "/reset?ms=0", NULL, NULL), 0);
    sl_ctx_unref(C.ctx);
    while (C.rc == 1)
        SL_AWAIT(t, L.rc, sl_sleep(t, SL_NS_PER_MS));
    assert_int_equal(C.rc, -ECONNRESET);
    assert_int_equal(calls_served, 2);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.retried, 1);
    assert_int_equal(st.reset, 2);
    /* 300 ms: the callee gets 100 (300 less the 200 margin) and resets when
     * they run out, so about 200 ms are left: below margin + 1, no retry */
    C.rc = 1;
    assert_int_equal(sl_ctx_with_timeout(&C.ctx, sl_ctx_background(), 300), 0);
    assert_int_equal(sl_go(C.ctx, reset_call, "/reset?ms=30000", NULL, NULL), 0);
    sl_ctx_unref(C.ctx);
    while (C.rc == 1)
        SL_AWAIT(t, L.rc, sl_sleep(t, SL_NS_PER_MS));
    assert_int_equal(C.rc, -ECONNRESET);
    assert_int_equal(calls_served, 3);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.retried, 1);
    sl_http_upstream_free(C.up);
    C.up = NULL;
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_retry_of_reset_within_deadline(void **s)
{
    (void)s;
    memset(&C, 0, sizeof C);
    serve();
    assert_int_equal(rt_run_keep(rt, reset_main, NULL), 0);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* POSTs behind a killed replica (its port refuses): each one refused is
 * sent to the live replica, and no caller sees an error. */
static int post_killed_main(sl_task *t, void *arg)
{
    static char url[96];
    sl_http_upstream_stats st;
    (void)arg;
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://127.0.0.1:%d,http://127.0.0.1:%d", refusing, port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, &(sl_http_upstream_opts){ .retries = 1 }), 0);
    C.rc = C.rc2 = 0;
    CALL_LOOP(t, C.up, "POST", 20);
    assert_int_equal(C.rc, 20);   /* no caller saw the dead replica */
    assert_int_equal(C.rc2, 0);
    assert_int_equal(calls_served, 20);
    sl_http_upstream_stats_get(C.up, &st);
    assert_true(st.refused >= 1);
    assert_int_equal(st.retried, st.refused);
    sl_http_upstream_free(C.up);
    /* a POST whose request was written and then reset is not sent again
     * (the callee may have acted on it); a GET is */
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, &(sl_http_upstream_opts){ .retries = 2 }), 0);
    calls_served = 0;
    SL_AWAIT(t, L.rc, sl_http_call(t, &C.r, C.up, "POST", "/reset", "{}", 2));
    assert_int_equal(L.rc, -ECONNRESET);
    sl_http_call_end(&C.r);
    assert_int_equal(calls_served, 1);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.retried, 0);
    SL_AWAIT(t, L.rc, sl_http_call(t, &C.r, C.up, "GET", "/reset", NULL, 0));
    assert_int_equal(L.rc, -ECONNRESET);
    sl_http_call_end(&C.r);
    assert_int_equal(calls_served, 4);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.retried, 2);
    sl_http_upstream_free(C.up);
    C.up = NULL;
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_post_retried_when_refused(void **s)
{
    (void)s;
    memset(&C, 0, sizeof C);
    refusing = refusing_port(&refusing_fd);
    serve();
    assert_int_equal(rt_run_keep(rt, post_killed_main, NULL), 0);
    close(refusing_fd);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* Reset before a byte of the request was written: a listener that never
 * accepts is closed by another task of the same turn, after the call
 * connected and before the reactor polls again (so before it writes); the
 * kernel resets the connection waiting in its queue. The POST is sent
 * again (and then refused: the port is closed now). */
static int listen_fd = -1;

static int close_listener(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    close(listen_fd);
    listen_fd = -1;
    return 0;
}

static int reset_before_main(sl_task *t, void *arg)
{
    static char url[64];
    sl_http_upstream_stats st;
    (void)arg;
    SL_BEGIN(t);
    {
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t sl = sizeof sa;
        listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        assert_int_equal(bind(listen_fd, (struct sockaddr *)&sa, sizeof sa), 0);
        assert_int_equal(listen(listen_fd, 8), 0);
        assert_int_equal(getsockname(listen_fd, (struct sockaddr *)&sa, &sl), 0);
        snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(sa.sin_port));
    }
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, &(sl_http_upstream_opts){ .retries = 1 }), 0);
    assert_int_equal(sl_spawn(NULL, close_listener, NULL, NULL, NULL), 0);
    SL_AWAIT(t, L.rc, sl_http_call(t, &C.r, C.up, "POST", "/ok", "{}", 2));
    sl_http_call_end(&C.r);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.reset, 1);      /* the first attempt: reset ... */
    assert_int_equal(st.retried, 1);    /* ... before the request: sent again */
    assert_int_equal(st.refused, 1);
    assert_int_equal(L.rc, -ECONNREFUSED);
    sl_http_upstream_free(C.up);
    C.up = NULL;
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_post_retried_when_reset_before_request(void **s)
{
    (void)s;
    memset(&C, 0, sizeof C);
    serve();
    assert_int_equal(rt_run_keep(rt, reset_before_main, NULL), 0);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- key affinity ------------------------------------------------------------------------ */

/* Replica A (the test's server) and B (first a refusing port, later a
 * server on it); each handler notes who answered. */
static char answered_by;
static int h_key_a(sl_task *t, void *arg)
{
    (void)t;
    answered_by = 'A';
    return sl_http_reply(arg, 200, "text/plain", "A", 1);
}

static int h_key_b(sl_task *t, void *arg)
{
    (void)t;
    answered_by = 'B';
    return sl_http_reply(arg, 200, "text/plain", "B", 1);
}

#define NKEYS 40
static char key_owner[NKEYS];    /* 'A' or 'B', by rendezvous over both addresses */
static char key_seen[NKEYS];     /* who answered the key's calls, 0 before */
static int key_moves;            /* a call of a key answered by another than the last one */
static struct { int i, k, rc; char key[16]; } K;

/* Three rounds of keyed calls over all keys, noting who answered each; every call
 * must succeed. */
#define KEY_ROUND(t, up_)                                                                       \
    for (K.i = 0; K.i < 3 * NKEYS; K.i++) {                                                    \
        K.k = K.i % NKEYS;                                                                      \
        snprintf(K.key, sizeof K.key, "order-%d", K.k);                                        \
        answered_by = 0;                                                                        \
        SL_AWAIT(t, K.rc, sl_http_call_key(t, &C.r, up_, "POST", "/k", "{}", 2, K.key, strlen(K.key))); \
        sl_http_call_end(&C.r);                                                                \
        if (K.rc != 0)                                                                         \
            fail_msg("key %s: %s", K.key, strerror(-K.rc));                                    \
        key_moves += key_seen[K.k] && key_seen[K.k] != answered_by;                             \
        key_seen[K.k] = answered_by;                                                            \
    }

/* A keyed call of its own (for the queueing case below). */
typedef struct kcall { char key[16]; const char *method, *path; sl_http_resp r; int rc; char by; } kcall;

static int kcall_task(sl_task *t, void *arg)
{
    kcall *kc = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, kc->rc, sl_http_call_key(t, &kc->r, C.tight, kc->method, kc->path, NULL, 0, kc->key, strlen(kc->key)));
    kc->by = answered_by;
    sl_http_call_end(&kc->r);
    SL_END(t);
}

static kcall KC[3];

static void key_of(char *key, char who, int nth)
{
    for (int k = 0; k < NKEYS; k++)
        if (key_owner[k] == who && nth-- == 0) {
            snprintf(key, 16, "order-%d", k);
            return;
        }
    fail_msg("no key of %c", who);
}

static int affinity_main(sl_task *t, void *arg)
{
    static char url[96];
    sl_http_upstream_stats st;
    (void)arg;
    SL_BEGIN(t);
    {
        char a[32], b[32];
        snprintf(a, sizeof a, "127.0.0.1:%d", port);
        snprintf(b, sizeof b, "127.0.0.1:%d", refusing);
        uint64_t ids[2] = { sl__hash_bytes(a, strlen(a)), sl__hash_bytes(b, strlen(b)) };
        int owned_by_b = 0;
        for (int k = 0; k < NKEYS; k++) {
            char key[16];
            snprintf(key, sizeof key, "order-%d", k);
            key_owner[k] = sl__rendezvous_pick(sl__hash_bytes(key, strlen(key)), ids, 2, NULL, NULL) ? 'B' : 'A';
            owned_by_b += key_owner[k] == 'B';
        }
        assert_in_range(owned_by_b, 8, NKEYS - 8);   /* both own some */
        snprintf(url, sizeof url, "http://%s,http://%s", a, b);
    }
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url,
                                          &(sl_http_upstream_opts){ .retries = 1, .eject_ms = 300 }), 0);
    /* B is down: its keys are refused there, sent again to their second
     * choice (A), and once B is ejected go to A directly; no caller sees
     * an error, and every key stays where it went first */
    KEY_ROUND(t, C.up);
    for (int k = 0; k < NKEYS; k++)
        assert_int_equal(key_seen[k], 'A');
    assert_int_equal(key_moves, 0);
    sl_http_upstream_stats_get(C.up, &st);
    /* B's first five keys, then out; a round slower than eject_ms (a
     * loaded machine, a sanitizer build) probes B again once per expiry,
     * and each probe is refused and retried like the first five */
    assert_true(st.refused >= 5);
    assert_int_equal(st.retried, st.refused);
    assert_int_equal(st.out, 1);
    /* B comes up; once its ejection ran out, the first of its keys probes
     * it and brings it back, and from then every key is at its owner */
    {
        char listen[32];
        snprintf(listen, sizeof listen, "127.0.0.1:%d", refusing);
        assert_int_equal(sl_http_server_new(&revived, rt, &(sl_http_server_opts){ .listen = listen }), 0);
        assert_int_equal(sl_http_route(revived, "POST", "/k", h_key_b, 0, NULL), 0);
        assert_int_equal(sl_http_server_start(revived), 0);
    }
    SL_AWAIT(t, K.rc, sl_sleep(t, 350 * SL_NS_PER_MS));
    key_moves = 0;
    KEY_ROUND(t, C.up);
    for (int k = 0; k < NKEYS; k++)
        if (key_seen[k] != key_owner[k])
            fail_msg("order-%d at %c, owner %c", k, key_seen[k], key_owner[k]);
    /* the keys that moved are B's, each once (back to it), none of A's */
    for (int k = 0; k < NKEYS; k++)
        key_moves -= key_owner[k] == 'B';
    assert_int_equal(key_moves, 0);
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.out, 0);
    /* one connection per replica: A's is held by a call of one of its
     * keys; another key of A waits, and B's connection, free again after
     * a call of B's key, is not given to it: it waits for A's */
    assert_int_equal(sl_http_upstream_new(&C.tight, rt, url, &(sl_http_upstream_opts){ .max_conns = 1 }), 0);
    key_of(KC[0].key, 'A', 0);
    key_of(KC[1].key, 'A', 1);
    key_of(KC[2].key, 'B', 0);
    KC[0].method = "GET", KC[0].path = "/wait";
    KC[1].method = KC[2].method = "POST", KC[1].path = KC[2].path = "/k";
    for (int i = 0; i < 3; i++)
        KC[i].rc = 1;
    assert_int_equal(sl_ctx_with_timeout(&C.ctx, sl_ctx_background(), 300), 0);
    assert_int_equal(sl_go(C.ctx, kcall_task, &KC[0], NULL, NULL), 0);
    sl_ctx_unref(C.ctx);
    for (;;) {   /* until A's connection is taken */
        sl_http_upstream_stats_get(C.tight, &st);
        if (st.active == 1)
            break;
        SL_AWAIT(t, K.rc, sl_sleep(t, SL_NS_PER_MS));
    }
    assert_int_equal(sl_spawn(NULL, kcall_task, &KC[1], NULL, NULL), 0);
    assert_int_equal(sl_spawn(NULL, kcall_task, &KC[2], NULL, NULL), 0);
    while (KC[0].rc == 1 || KC[1].rc == 1 || KC[2].rc == 1)
        SL_AWAIT(t, K.rc, sl_sleep(t, SL_NS_PER_MS));
    /* the callee's context ends first: it answers 504 (or the caller's
     * own deadline ends the call) */
    assert_true(KC[0].rc == 0 || KC[0].rc == -ETIMEDOUT);
    assert_int_equal(KC[2].rc, 0);
    assert_int_equal(KC[2].by, 'B');
    assert_int_equal(KC[1].rc, 0);
    assert_int_equal(KC[1].by, 'A');   /* not B's free connection */
    sl_http_upstream_free(C.tight);
    C.tight = NULL;
    /* key NULL is a plain call; a length without a key is refused */
    assert_int_equal(sl_http_call_key(t, &C.r, C.up, "POST", "/k", NULL, 0, NULL, 3), -EINVAL);
    sl_http_call_end(&C.r);
    sl_http_upstream_free(C.up);
    C.up = NULL;
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_key_affinity(void **s)
{
    (void)s;
    memset(&C, 0, sizeof C);
    memset(key_seen, 0, sizeof key_seen);
    key_moves = 0;
    refusing = refusing_port(&refusing_fd);
    serve_new();
    assert_int_equal(sl_http_route(srv, "POST", "/k", h_key_a, 0, NULL), 0);
    serve_start();
    assert_int_equal(rt_run_keep(rt, affinity_main, NULL), 0);
    sl_http_server_free(revived);
    close(refusing_fd);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- one given replica (issue 21): sl_http_upstream_replicas, sl_http_call_to ----------- */

/* A (the test's server), B (a second server), C (a refusing port): every
 * call to a named replica reaches that one, whatever the key would say,
 * with no failover or retry even while it is ejected. */
static char to_addr[3][SL_HTTP_REPLICA_MAX];

static int call_to_main(sl_task *t, void *arg)
{
    static sl_http_replica list[3];
    sl_http_upstream_stats st;
    (void)arg;
    SL_BEGIN(t);
    {
        char url[3 * SL_HTTP_REPLICA_MAX + 32];
        snprintf(url, sizeof url, "http://%s,http://%s,http://%s", to_addr[0], to_addr[1], to_addr[2]);
        assert_int_equal(sl_http_upstream_new(&C.up, rt, url,
                                              &(sl_http_upstream_opts){ .retries = 2, .eject_after = 1 }),
                         0);
    }
    /* the list: all three, in the order written; a short array gets the
     * first ones and the count of all */
    assert_int_equal(sl_http_upstream_replicas(C.up, NULL, 0), 3);
    memset(list, 0, sizeof list);
    assert_int_equal(sl_http_upstream_replicas(C.up, list, 2), 3);
    assert_string_equal(list[0].addr, to_addr[0]);
    assert_string_equal(list[1].addr, to_addr[1]);
    assert_string_equal(list[2].addr, "");
    assert_int_equal(sl_http_upstream_replicas(C.up, list, 3), 3);
    assert_string_equal(list[2].addr, to_addr[2]);
    /* each call reaches the replica it names, the same key or not */
    for (C.rc2 = 0; C.rc2 < 6; C.rc2++) {
        answered_by = 0;
        SL_AWAIT(t, C.rc, sl_http_call_to(t, &C.r, C.up, list[C.rc2 % 2].addr, "POST", "/k", "{}", 2,
                                          C.rc2 & 1 ? 0 : SL_HTTP_CALL_UNDO));
        assert_int_equal(C.rc, 0);
        assert_int_equal(C.r.status, 200);
        assert_int_equal(answered_by, C.rc2 % 2 ? 'B' : 'A');
        sl_http_call_end(&C.r);
    }
    /* C refuses: the error comes back, not an answer from A or B, and
     * nothing is retried elsewhere; C is ejected, and still called */
    for (C.rc2 = 0; C.rc2 < 2; C.rc2++) {
        answered_by = 0;
        SL_AWAIT(t, C.rc, sl_http_call_to(t, &C.r, C.up, list[2].addr, "POST", "/k", "{}", 2, SL_HTTP_CALL_UNDO));
        assert_int_equal(C.rc, -ECONNREFUSED);
        assert_int_equal(answered_by, 0);
        sl_http_call_end(&C.r);
    }
    sl_http_upstream_stats_get(C.up, &st);
    assert_int_equal(st.retried, 0);
    assert_int_equal(st.out, 1);
    assert_int_equal(st.refused, 2);
    /* errors */
    assert_int_equal(sl_http_call_to(t, &C.r, C.up, NULL, "POST", "/k", NULL, 0, 0), -EINVAL);
    sl_http_call_end(&C.r);
    assert_int_equal(sl_http_call_to(t, &C.r, C.up, "127.0.0.1:1", "POST", "/k", NULL, 0, 0), -ENOENT);
    sl_http_call_end(&C.r);
    assert_int_equal(sl_http_call_to(t, &C.r, C.up, "", "POST", "/k", NULL, 0, 0), -ENOENT);
    sl_http_call_end(&C.r);
    assert_int_equal(sl_http_call_to(t, &C.r, C.up, list[0].addr, "POST", "/k", NULL, 0, 4u), -EINVAL);
    sl_http_call_end(&C.r);
    assert_int_equal(sl_http_call_to(t, &C.r, C.up, list[0].addr, "POST", "no-slash", NULL, 0, 0), -EINVAL);
    sl_http_call_end(&C.r);
    assert_int_equal(sl_http_call_to(t, &C.r, NULL, list[0].addr, "POST", "/k", NULL, 0, 0), -EINVAL);
    sl_http_call_end(&C.r);
    assert_int_equal(sl_http_upstream_replicas(NULL, list, 3), -EINVAL);
    assert_int_equal(sl_http_upstream_replicas(C.up, NULL, 1), -EINVAL);
    sl_http_upstream_free(C.up);
    C.up = NULL;
    sl_runtime_stop(rt);
    SL_END(t);
}

static void test_call_to_one_replica(void **s)
{
    (void)s;
    memset(&C, 0, sizeof C);
    refusing = refusing_port(&refusing_fd);
    serve_new();
    assert_int_equal(sl_http_route(srv, "POST", "/k", h_key_a, 0, NULL), 0);
    serve_start();
    assert_int_equal(sl_http_server_new(&revived, rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(revived, "POST", "/k", h_key_b, 0, NULL), 0);
    assert_int_equal(sl_http_server_start(revived), 0);
    snprintf(to_addr[0], sizeof to_addr[0], "127.0.0.1:%d", port);
    snprintf(to_addr[1], sizeof to_addr[1], "127.0.0.1:%d", sl_http_server_port(revived));
    snprintf(to_addr[2], sizeof to_addr[2], "127.0.0.1:%d", refusing);
    {   /* not on a reactor: each reactor has its own view */
        sl_http_upstream *up;
        sl_http_replica one;
        assert_int_equal(sl_http_upstream_new(&up, rt, "http://127.0.0.1:80", NULL), 0);
        assert_int_equal(sl_http_upstream_replicas(up, &one, 1), -EPERM);
        sl_http_upstream_free(up);
    }
    assert_int_equal(rt_run_keep(rt, call_to_main, NULL), 0);
    sl_http_server_free(revived);
    revived = NULL;
    close(refusing_fd);
    done(0);
    assert_int_equal(sl_runtime_free(rt), 0);
}

static void test_bad_upstreams(void **s)
{
    (void)s;
    sl_runtime *r = rt_new(1, NULL);
    sl_http_upstream *up;
    static const char *bad[] = { "", "127.0.0.1:80", "http://127.0.0.1", "http://127.0.0.1:0", "http://no_host:80",
                                 "http://127.0.0.1:80,", "http://127.0.0.1:80/path", "https://127.0.0.1:80",
                                 "http://127.0.0.1:99999", "http://::1:80", "http://[::1]", "http://[::g]:80",
                                 "http://10.0.0.300:80", "http://127.0.0.1: 80", "http://127.0.0.1:+80",
                                 "http://127.0.0.1:-80", "http://127.0.0.1:80 ", "http://127.0.0.1:0x50",
                                 "http://[::1]:+80", "http://127.0.0.1:80, http://127.0.0.1:+81" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (sl_http_upstream_new(&up, r, bad[i], NULL) != -EINVAL)
            fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(sl_http_upstream_new(&up, r, "http://127.0.0.1:80", NULL), 0);
    assert_string_equal(sl_http_upstream_last_error(), "");
    sl_http_upstream_free(up);
    assert_int_equal(sl_http_upstream_new(&up, r, "http://127.0.0.1:80,http://127.0.0.1:99999", NULL), -EINVAL);
    assert_string_equal(sl_http_upstream_last_error(), "'http://127.0.0.1:99999': bad port");
    assert_int_equal(sl_http_upstream_new(&up, r, "http://127.0.0.1:80,http://localhost:81/,http://[::1]:82", NULL), 0);
    sl_http_upstream_free(up);
    sl_runtime_free(r);
}

/* ---- the cause crosses the wire (issue 20): three hops -------------------------------------- */

/* hop-a -> hop-b -> hop-c, three servers in one runtime, each call with a
 * HOP_GAP_MS margin: the innermost deadline (HOP_LAST_MS after the start)
 * passes first, by far. hop-c waits until its context ends; a and b relay a
 * failure with its cause. The gap between two hops' deadlines is how late
 * the one thread may run and still see hop-c's answer before hop-b's own
 * deadline: it was 200 ms, and a process starved for longer on a loaded
 * machine read "hop-b" as the hop that ran out (its deadline fired in the
 * same loop pass as hop-c's, before hop-c's answer was read). */
#define HOP_LAST_MS 1000
#define HOP_GAP_MS 20000
static sl_http_server *hops[3];
static sl_http_upstream *hop_up[3];   /* [0]: the test's to hop-a; [i]: hop i-1's to hop i */
static int hop_end_cause = -1;
static char hop_reply[3][SL_CAUSE_HDR_MAX + 256];
static uint64_t hop_t0, hop_c_at;   /* before the first call's budget is set; when hop-c is called */

typedef struct hop_st {
    sl_http_resp r;
    int rc;
} hop_st;

static int h_hop_relay(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    hop_st *s = sl_http_req_state(req);
    SL_BEGIN(t);
    SL_AWAIT(t, s->rc, sl_http_call(t, &s->r, *(sl_http_upstream **)sl_http_req_arg(req), "GET", "/next", NULL, 0));
    if (s->rc == 0) {
        sl_cause_info ci;
        if (s->r.status >= 500 && sl_http_resp_cause(&s->r, &ci) == 0)
            assert_int_equal(sl_http_reply_cause(req, &ci), 0);
        sl_http_reply_error(req, s->r.status, "relayed", "the next hop answered %d", s->r.status);
    }
    sl_http_call_end(&s->r);
    SL_RETURN(t, s->rc);
    SL_END(t);
}

static int h_hop_end(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    hop_st *s = sl_http_req_state(req);
    SL_BEGIN(t);
    hop_c_at = sl_now_ns();
    SL_AWAIT(t, s->rc, sl_sleep(t, 10 * SL_NS_PER_S));   /* until the context ends */
    hop_end_cause = (int)sl_ctx_cause(sl_http_req_ctx(req), NULL);
    SL_RETURN(t, s->rc);
    SL_END(t);
}

static int hops_call(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, hop_up[0], "GET", "/next", NULL, 0));
    C.rc2 = C.r.status;
    size_t len;
    const char *v = sl_http_resp_header(&C.r, SL_CAUSE_HDR, &len);
    snprintf(hop_reply[0], sizeof hop_reply[0], "%.*s", v ? (int)len : 0, v ? v : "");
    snprintf(hop_reply[1], sizeof hop_reply[1], "%s", C.r.body ? C.r.body : "");
    sl_http_call_end(&C.r);
    for (int i = 0; i < 3; i++)
        sl_http_upstream_free(hop_up[i]);
    sl_runtime_stop(rt);
    SL_END(t);
}

static int hops_main(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    for (int i = 0; i < 3; i++) {
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%d", sl_http_server_port(hops[i]));
        assert_int_equal(sl_http_upstream_new(&hop_up[i], rt, url, &(sl_http_upstream_opts){ .margin_ms = HOP_GAP_MS }), 0);
    }
    hop_t0 = sl_now_ns();
    assert_int_equal(sl_ctx_with_timeout(&C.ctx, sl_ctx_background(), HOP_LAST_MS + 3 * HOP_GAP_MS), 0);
    assert_int_equal(sl_go(C.ctx, hops_call, NULL, NULL, NULL), 0);
    sl_ctx_unref(C.ctx);
    return 0;
}

static void test_cause_over_two_hops(void **s)
{
    (void)s;
    memset(&C, 0, sizeof C);
    memset(&cap, 0, sizeof cap);
    rt = rt_new(1, &cap);
    static const char *names[3] = { "hop-a", "hop-b", "hop-c" };
    for (int i = 0; i < 3; i++) {
        /* a server budget above every hop's: the callers' budgets rule */
        assert_int_equal(sl_http_server_new(&hops[i], rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0",
                                                                                    .name = names[i],
                                                                                    .timeout_ms = 4 * HOP_GAP_MS }), 0);
        if (i < 2)
            assert_int_equal(sl_http_route(hops[i], "GET", "/next", h_hop_relay, sizeof(hop_st), &hop_up[i + 1]), 0);
        else
            assert_int_equal(sl_http_route(hops[i], "GET", "/next", h_hop_end, sizeof(hop_st), NULL), 0);
        assert_int_equal(sl_http_server_start(hops[i]), 0);
    }
    hop_end_cause = -1;
    assert_int_equal(rt_run_keep(rt, hops_main, NULL), 0);
    /* down: the last callee learns that its caller's budget ended it */
    assert_int_equal(hop_end_cause, SL_CAUSE_CALLER_DEADLINE);
    /* up: the caller two hops above learns which hop ran out, and with what
     * budget it was called (HOP_LAST_MS, less the time spent before; a few
     * ms for each hop's rounding down) */
    assert_int_equal(C.rc, 0);
    assert_int_equal(C.rc2, 504);
    print_message("sluice-cause: %s\n", hop_reply[0]);
    sl_cause_info ci;
    assert_int_equal(sl_cause_hdr_parse(hop_reply[0], strlen(hop_reply[0]), &ci), 0);
    assert_int_equal(ci.cause, SL_WC_CALLER_DEADLINE);
    assert_string_equal(ci.hop, "hop-c");
    int64_t spent_ms = (int64_t)((hop_c_at - hop_t0) / SL_NS_PER_MS);
    if (ci.left_ms > HOP_LAST_MS || ci.left_ms < HOP_LAST_MS - spent_ms - 5)
        fail_msg("hop-c called with %lld ms; %lld ms after a start with %d ms for it", (long long)ci.left_ms,
                 (long long)spent_ms, HOP_LAST_MS);
    char text[SL_CAUSE_HDR_MAX + 64], want[SL_CAUSE_HDR_MAX + 80];
    snprintf(want, sizeof want, "(cause: %s)", sl_cause_info_text(&ci, text, sizeof text));
    assert_non_null(strstr(hop_reply[1], want));   /* and the message says it */
    for (int i = 0; i < 3; i++)
        sl_http_server_free(hops[i]);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- a 504 answered before the context's timer ran (issue 20) -------------------------- */

/* A handler's task has its context's deadline, in the core's timer heap; the
 * context ends by a libevent timer of its own. The two are due at the same
 * instant, and on a loaded machine either may run first: when the task's
 * did, the handler answered its 504 while its context had no cause yet, and
 * the cause came from the status alone, "deadline", though the budget was
 * the caller's (test_services_faults hang_answers_504_within_budget, once in
 * CI). A task woken by its deadline now finds its context ended
 * (tests/test_ctx.c test_deadline_task_timer_first); a handler that answers
 * past its deadline without having been woken by it still answers before
 * the context's timer runs. Here the handler's step runs past the request's deadline on the
 * clock, on the reactor's own thread, so no timer can run before it answers:
 * the order that went wrong, every time. It answers as the services do: a
 * call that the budget refuses at once, then sl_http_reply_error (/call);
 * or -ETIMEDOUT, which the server answers itself (/ret); or a 502 of its
 * own (/bad): past the deadline, the deadline is its cause, as it is when
 * the context's timer runs first. And /short: no spin, a budget below the
 * call's margin, a 504 before the deadline (the caller's, all the same). */
#define LATE_SRV_MS 300   /* the server's own budget */
#define LATE_CALLER_MS 100   /* the caller's, below it: the caller's deadline */
#define LATE_N 5
static sl_http_server *late_srv;
static sl_http_upstream *late_up;
static int late_cause_seen[LATE_N];   /* the context's cause as each handler answered */
static int late_cause_after[LATE_N];  /* and once its answer was made (/call, /bad) */
static int late_n;
static bool late_short_on_time;   /* /short answered before its deadline (as it is but on a starved machine) */
static struct {
    int rc[LATE_N], status[LATE_N];
    char cause[LATE_N][SL_CAUSE_HDR_MAX + 8], body[LATE_N][512];
    int metrics_rc;
    char ends[2][96];   /* sluice_ctx_ends_total's lines for the two deadline causes */
} LT;

static int h_late(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    hop_st *s = sl_http_req_state(req);
    int how = *(const int *)sl_http_req_arg(req);   /* 0 /ret, 1 /call, 2 /bad, 3 /short */
    SL_BEGIN(t);
    {
        uint64_t dl = sl_ctx_deadline(sl_http_req_ctx(req));
        while (how != 3 && dl && sl_now_ns() < dl) {   /* bounded: the request's budget */
        }
        if (late_n < LATE_N)
            late_cause_seen[late_n++] = (int)sl_ctx_cause(sl_http_req_ctx(req), NULL);
    }
    if (how == 0)
        SL_RETURN(t, -ETIMEDOUT);
    if (how == 2) {
        sl_http_reply_error(req, 502, "upstream_failed", "the upstream said no");
        late_cause_after[late_n - 1] = (int)sl_ctx_cause(sl_http_req_ctx(req), NULL);
        SL_RETURN(t, 0);
    }
    SL_AWAIT(t, s->rc, sl_http_call(t, &s->r, late_up, "GET", "/ret", NULL, 0));
    sl_http_call_end(&s->r);
    if (s->rc == -ETIMEDOUT)
        sl_http_reply_error(req, 504, "deadline_exceeded", "the budget ran out");
    else
        sl_http_reply_error(req, 500, "unexpected", "the call said %d", s->rc);
    /* the context ended with the answer, as its timer would have */
    late_cause_after[late_n - 1] = (int)sl_ctx_cause(sl_http_req_ctx(req), NULL);
    if (how == 3)   /* still before the deadline after the answer: so it was within */
        late_short_on_time = sl_now_ns() < sl_ctx_deadline(sl_http_req_ctx(req));
    SL_END(t);
}

static int late_calls(sl_task *t, void *arg)
{
    static const char *const path[LATE_N] = { "/call", "/ret", "/call", "/bad", "/short" };
    static int i;
    (void)arg;
    SL_BEGIN(t);
    for (i = 0; i < LATE_N; i++) {
        /* with the caller's budget (the margin is the upstream's, so the
         * server is given LATE_CALLER_MS), but the third: without one, the
         * server's own */
        sl_task_set_deadline(t, i != 2 ? sl_now_ns() + (uint64_t)(HOP_GAP_MS + LATE_CALLER_MS) * SL_NS_PER_MS : 0);
        SL_AWAIT(t, LT.rc[i], sl_http_call(t, &C.r, late_up, "GET", path[i], NULL, 0));
        LT.status[i] = C.r.status;
        size_t len;
        const char *v = LT.rc[i] == 0 ? sl_http_resp_header(&C.r, SL_CAUSE_HDR, &len) : NULL;
        snprintf(LT.cause[i], sizeof LT.cause[i], "%.*s", v ? (int)len : 0, v ? v : "");
        snprintf(LT.body[i], sizeof LT.body[i], "%s", LT.rc[i] == 0 && C.r.body ? C.r.body : "");
        sl_http_call_end(&C.r);
    }
    /* how the three contexts ended, as /metrics counts them (a request's
     * is counted as its task ends, after its answer) */
    sl_task_set_deadline(t, 0);
    SL_AWAIT(t, LT.metrics_rc, sl_http_call(t, &C.r, late_up, "GET", "/metrics", NULL, 0));
    for (int k = 0; k < 2 && LT.metrics_rc == 0 && C.r.body; k++) {
        const char *l = strstr(C.r.body, k ? "sluice_ctx_ends_total{reactor=\"0\",cause=\"deadline_exceeded\"}"
                                           : "sluice_ctx_ends_total{reactor=\"0\",cause=\"caller_deadline\"}");
        snprintf(LT.ends[k], sizeof LT.ends[k], "%.*s", l ? (int)strcspn(l, "\n") : 0, l ? l : "");
    }
    sl_http_call_end(&C.r);
    sl_http_upstream_free(late_up);
    sl_runtime_stop(rt);
    SL_END(t);
}

static int late_main(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", sl_http_server_port(late_srv));
    assert_int_equal(sl_http_upstream_new(&late_up, rt, url, &(sl_http_upstream_opts){ .margin_ms = HOP_GAP_MS }), 0);
    assert_int_equal(sl_go(sl_ctx_background(), late_calls, NULL, NULL, NULL), 0);
    return 0;
}

static void test_cause_504_before_ctx_timer(void **s)
{
    (void)s;
    static const int ret = 0, call = 1, bad = 2, shrt = 3;
    memset(&C, 0, sizeof C);
    memset(&LT, 0, sizeof LT);
    memset(&cap, 0, sizeof cap);
    late_n = 0;
    late_short_on_time = false;
    for (int i = 0; i < LATE_N; i++)
        late_cause_after[i] = -1;
    rt = rt_new(1, &cap);
    assert_int_equal(sl_http_server_new(&late_srv, rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0",
                                                                                .name = "late-svc",
                                                                                .timeout_ms = LATE_SRV_MS }), 0);
    assert_int_equal(sl_http_route(late_srv, "GET", "/call", h_late, sizeof(hop_st), (void *)&call), 0);
    assert_int_equal(sl_http_route(late_srv, "GET", "/ret", h_late, sizeof(hop_st), (void *)&ret), 0);
    assert_int_equal(sl_http_route(late_srv, "GET", "/bad", h_late, sizeof(hop_st), (void *)&bad), 0);
    assert_int_equal(sl_http_route(late_srv, "GET", "/short", h_late, sizeof(hop_st), (void *)&shrt), 0);
    assert_int_equal(sl_http_server_start(late_srv), 0);
    assert_int_equal(rt_run_keep(rt, late_main, NULL), 0);
    /* the interleaving: each answer was made before its context ended */
    assert_int_equal(late_n, LATE_N);
    for (int i = 0; i < LATE_N; i++)
        assert_int_equal(late_cause_seen[i], SL_CAUSE_NONE);
    assert_int_equal(late_cause_after[0], SL_CAUSE_CALLER_DEADLINE);
    assert_int_equal(late_cause_after[2], SL_CAUSE_DEADLINE);
    assert_int_equal(late_cause_after[3], SL_CAUSE_CALLER_DEADLINE);
    /* /short, before its deadline: its context goes on (ended by its timer
     * after the request, or with it: not counted by a deadline). A thread
     * starved past the 100 ms made it a late answer like the others. */
    assert_int_equal(late_cause_after[4], late_short_on_time ? SL_CAUSE_NONE : SL_CAUSE_CALLER_DEADLINE);
    /* not "completed": three by the caller's deadline, one by the server's own */
    assert_int_equal(LT.metrics_rc, 0);
    print_message("%s\n%s\n", LT.ends[0], LT.ends[1]);
    assert_string_equal(LT.ends[0], late_short_on_time ? "sluice_ctx_ends_total{reactor=\"0\",cause=\"caller_deadline\"} 3"
                                                       : "sluice_ctx_ends_total{reactor=\"0\",cause=\"caller_deadline\"} 4");
    assert_string_equal(LT.ends[1], "sluice_ctx_ends_total{reactor=\"0\",cause=\"deadline_exceeded\"} 1");
    static const sl_wire_cause want[LATE_N] = { SL_WC_CALLER_DEADLINE, SL_WC_CALLER_DEADLINE, SL_WC_DEADLINE,
                                                SL_WC_CALLER_DEADLINE, SL_WC_CALLER_DEADLINE };
    for (int i = 0; i < LATE_N; i++) {
        print_message("%d: %d sluice-cause: %s\n", i, LT.status[i], LT.cause[i]);
        assert_int_equal(LT.rc[i], 0);
        assert_int_equal(LT.status[i], i == 3 ? 502 : 504);
        sl_cause_info ci;
        assert_int_equal(sl_cause_hdr_parse(LT.cause[i], strlen(LT.cause[i]), &ci), 0);
        if (ci.cause != want[i])
            fail_msg("answer %d: cause %s, want %s", i, sl_wire_cause_name(ci.cause), sl_wire_cause_name(want[i]));
        assert_string_equal(ci.hop, "late-svc");
        char text[SL_CAUSE_HDR_MAX + 64], msg[SL_CAUSE_HDR_MAX + 80];
        snprintf(msg, sizeof msg, "(cause: %s)", sl_cause_info_text(&ci, text, sizeof text));
        assert_non_null(strstr(LT.body[i], msg));   /* and the message says the same */
    }
    sl_http_server_free(late_srv);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- a scripted upstream on raw sockets (issue 22) ----------------------------------- */

/* Answers each request head it reads with the next reply of its script,
 * on one connection or, after the client closed one, on the next; then
 * waits for the client to close. Every wait is bounded (10 s). */
typedef struct raw_up {
    int lfd, port;
    const char *const *replies;
    size_t n;
    pthread_t th;
} raw_up;

static bool raw_wait(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    return poll(&pfd, 1, 10000) == 1;
}

/* Reads one request head; false when the client closed first. */
static bool raw_read_head(int fd)
{
    char buf[4096];
    size_t have = 0;
    while (have < sizeof buf - 1 && raw_wait(fd)) {
        ssize_t r = read(fd, buf + have, sizeof buf - 1 - have);
        if (r <= 0)
            return false;
        have += (size_t)r;
        buf[have] = 0;
        if (strstr(buf, "\r\n\r\n"))
            return true;
    }
    return false;
}

static void *raw_thread(void *arg)
{
    raw_up *u = arg;
    int fd = -1;
    for (size_t i = 0; i < u->n;) {
        if (fd < 0) {
            if (!raw_wait(u->lfd))
                break;
            fd = accept(u->lfd, NULL, NULL);
        }
        if (!raw_read_head(fd)) {
            close(fd);
            fd = -1;
            continue;
        }
        const char *r = u->replies[i++];
        if (write(fd, r, strlen(r)) != (ssize_t)strlen(r))
            break;
    }
    if (fd >= 0) {
        char b[256];
        while (raw_wait(fd) && read(fd, b, sizeof b) > 0)
            ;
        close(fd);
    }
    return NULL;
}

static void raw_start(raw_up *u, const char *const *replies, size_t n)
{
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    u->replies = replies, u->n = n;
    u->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(u->lfd >= 0);
    assert_int_equal(bind(u->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(u->lfd, 8), 0);
    assert_int_equal(getsockname(u->lfd, (struct sockaddr *)&sa, &sl), 0);
    u->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&u->th, NULL, raw_thread, u), 0);
}

static void raw_stop(raw_up *u)
{
    pthread_join(u->th, NULL);
    close(u->lfd);
}

static raw_up RU;
typedef struct raw_st { int rc[6], status[6], cause_rc[6]; char body[6][16], hop[6][SL_CAUSE_HOP_MAX]; } raw_st;
static raw_st RS;

/* Calls GET / `n` times on one upstream, noting each result. */
static int raw_main(sl_task *t, void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    char url[64];
    SL_BEGIN(t);
    snprintf(url, sizeof url, "http://127.0.0.1:%d", RU.port);
    assert_int_equal(sl_http_upstream_new(&C.up, rt, url, NULL), 0);
    for (C.rc2 = 0; (size_t)C.rc2 < n; C.rc2++) {
        SL_AWAIT(t, C.rc, sl_http_call(t, &C.r, C.up, "GET", "/", NULL, 0));
        RS.rc[C.rc2] = C.rc;
        RS.status[C.rc2] = C.r.status;
        snprintf(RS.body[C.rc2], sizeof RS.body[0], "%s", C.r.body ? C.r.body : "");
        sl_cause_info ci;
        RS.cause_rc[C.rc2] = sl_http_resp_cause(&C.r, &ci);
        if (RS.cause_rc[C.rc2] == 0)
            snprintf(RS.hop[C.rc2], sizeof RS.hop[0], "%s", ci.hop);
        sl_http_call_end(&C.r);
    }
    sl_http_upstream_free(C.up);
    sl_runtime_stop(rt);
    SL_END(t);
}

static void raw_calls(const char *const *replies, size_t n)
{
    memset(&C, 0, sizeof C);
    memset(&RS, 0, sizeof RS);
    raw_start(&RU, replies, n);
    rt = rt_new(1, &cap);
    assert_int_equal(rt_run_keep(rt, raw_main, (void *)(uintptr_t)n), 0);
    assert_int_equal(sl_runtime_free(rt), 0);
    raw_stop(&RU);
}

/* Interim 1xx responses are skipped: each call gets its own answer, on the
 * same connection, whether the 1xx comes with the answer or alone. */
static void test_interim_responses(void **s)
{
    (void)s;
    static const char *const replies[] = {
        "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\n"
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfirst",
        "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
        "HTTP/1.1 201 Created\r\nContent-Length: 6\r\n\r\nsecond",
        "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nthird",
    };
    raw_calls(replies, 3);
    static const char *want[] = { "first", "second", "third" };
    for (int i = 0; i < 3; i++) {
        assert_int_equal(RS.rc[i], 0);
        assert_string_equal(RS.body[i], want[i]);
    }
    assert_int_equal(RS.status[0], 200);
    assert_int_equal(RS.status[1], 201);
}

/* An upstream's sluice-cause: read when well-formed, ignored (-EINVAL)
 * when malformed or oversized, -ENOENT when absent. */
static void test_resp_cause(void **s)
{
    (void)s;
    static const char *const replies[] = {
        "HTTP/1.1 504 Gateway Timeout\r\nsluice-cause: v1;cause=deadline;hop=far;left-ms=7\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 504 Gateway Timeout\r\nsluice-cause: v2;cause=deadline;hop=far\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 504 Gateway Timeout\r\nsluice-cause: v1;cause=deadline;hop=far;pad=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 503 Service Unavailable\r\nSLUICE-CAUSE: v1;cause=OVERLOADED;hop=far\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 502 Bad Gateway\r\nsluice-cause: v1;cause=upstream;hop=near\r\nContent-Length: 0\r\n\r\n",
    };
    raw_calls(replies, 6);
    static const int want[] = { 0, -ENOENT, -EINVAL, -EINVAL, -EINVAL, 0 };
    for (int i = 0; i < 6; i++) {
        assert_int_equal(RS.rc[i], 0);
        if (RS.cause_rc[i] != want[i])
            fail_msg("reply %d: sl_http_resp_cause %d, want %d", i, RS.cause_rc[i], want[i]);
    }
    assert_string_equal(RS.hop[0], "far");
    assert_string_equal(RS.hop[5], "near");
    assert_int_equal(sl_http_resp_cause(NULL, NULL), -EINVAL);
}

/* A status line the client cannot trust, and a 101 nobody asked for, end
 * the call with -EPROTO at once (not status 0, not a wait). */
static void test_bad_status_lines(void **s)
{
    (void)s;
    static const char *const replies[] = {
        "HTTP/1.1 1 OK\r\nContent-Length: 0\r\n\r\n",
        "HTTP/1.1 000000000204 No Content\r\n\r\n",
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\nConnection: upgrade\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    };
    raw_calls(replies, 4);
    for (int i = 0; i < 3; i++)
        if (RS.rc[i] != -EPROTO)
            fail_msg("reply %d: rc %d status %d, want -EPROTO", i, RS.rc[i], RS.status[i]);
    assert_int_equal(RS.rc[3], 0);
    assert_string_equal(RS.body[3], "ok");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calls),
        cmocka_unit_test(test_idle_connection_expires),
        cmocka_unit_test(test_large_request_written_in_parts),
        cmocka_unit_test(test_budget_and_trace_forwarded),
        cmocka_unit_test(test_caller_abort_cancels_callee),
        cmocka_unit_test(test_pool_exhausted_busy),
        cmocka_unit_test(test_call_reached),
        cmocka_unit_test(test_fail_fast),
        cmocka_unit_test(test_upstream_metrics),
        cmocka_unit_test(test_outlier_ejected_and_probed_back),
        cmocka_unit_test(test_retry_budget_and_methods),
        cmocka_unit_test(test_retry_of_reset_within_deadline),
        cmocka_unit_test(test_post_retried_when_refused),
        cmocka_unit_test(test_post_retried_when_reset_before_request),
        cmocka_unit_test(test_key_affinity),
        cmocka_unit_test(test_call_to_one_replica),
        cmocka_unit_test(test_bad_upstreams),
        cmocka_unit_test(test_interim_responses),
        cmocka_unit_test(test_resp_cause),
        cmocka_unit_test(test_cause_over_two_hops),
        cmocka_unit_test(test_cause_504_before_ctx_timer),
        cmocka_unit_test(test_bad_status_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
