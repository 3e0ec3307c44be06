/* test_http.c: the HTTP server over real sockets on 127.0.0.1. */
#include <ifaddrs.h>
#include <signal.h>
#include <stdatomic.h>
#include <event2/event.h>
#include "httputil.h"
#include "ctx_internal.h"   /* test_cause_task_timer_first reaches a context's timer */

static test_srv TS;

/* What handlers saw, for the test thread (atomics: another thread wrote). */
static _Atomic int seen_cause, seen_err, handler_started;
static _Atomic uint64_t seen_at_ns, handler_deadline_ns;

typedef struct wait_st {
    int rc;
} wait_st;

/* Parks until its context ends; records how and when. */
static atomic_int state_misaligned;

static int h_wait(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    wait_st *s = sl_http_req_state(req);
    SL_BEGIN(t);
    if ((uintptr_t)s % _Alignof(max_align_t))   /* issue 19: aligned for any type */
        atomic_store(&state_misaligned, 1);
    atomic_store(&handler_deadline_ns, sl_ctx_deadline(sl_http_req_ctx(req)));
    atomic_store(&handler_started, 1);
    SL_AWAIT(t, s->rc, sl_sleep(t, 30 * SL_NS_PER_S));
    atomic_store(&seen_at_ns, sl_now_ns());
    atomic_store(&seen_err, s->rc);
    atomic_store(&seen_cause, (int)sl_ctx_cause(sl_http_req_ctx(req), NULL));
    SL_RETURN(t, s->rc);
    SL_END(t);
}

/* /wait, with the context's timer pushed a second late first, so the
 * task's own deadline timer runs first (issue 20: the order that left the
 * handler reading no cause). The deadline's owner is the nearest context
 * with a timer; it is armed at the end of the turn that made it. */
static _Atomic int late_pushed;

static int h_wait_late(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    wait_st *s = sl_http_req_state(req);
    SL_BEGIN(t);
    SL_YIELD(t);
    {
        sl_ctx *c = sl_http_req_ctx(req);
        while (c && !c->timer)
            c = c->parent;
        bool armed = c && event_pending(c->timer, EV_TIMEOUT, NULL);
        if (armed) {
            event_del(c->timer);
            evtimer_add(c->timer, &(struct timeval){ .tv_sec = 1 });
        }
        atomic_store(&late_pushed, armed ? 1 : -1);
    }
    SL_AWAIT(t, s->rc, sl_sleep(t, 30 * SL_NS_PER_S));
    atomic_store(&seen_err, s->rc);
    atomic_store(&seen_cause, (int)sl_ctx_cause(sl_http_req_ctx(req), NULL));
    SL_RETURN(t, s->rc);
    SL_END(t);
}

/* Sleeps ?ms=N then answers N. */
static int h_sleep(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    wait_st *s = sl_http_req_state(req);
    size_t ql;
    const char *q = sl_http_req_query(req, &ql);
    int ms = ql > 3 && !strncmp(q, "ms=", 3) ? atoi(q + 3) : 0;
    SL_BEGIN(t);
    atomic_store(&handler_started, 1);
    SL_AWAIT(t, s->rc, sl_sleep(t, (uint64_t)ms * SL_NS_PER_MS));
    if (s->rc < 0)
        SL_RETURN(t, s->rc);
    char body[32];
    int n = snprintf(body, sizeof body, "slept %d", ms);
    sl_http_reply(req, 200, "text/plain", body, (size_t)n);
    SL_END(t);
}

static int h_echo(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    json_t *j;
    (void)t;
    if (sl_http_req_json(req, &j) < 0)
        return 0;   /* answered 400 already */
    return sl_http_reply_json(req, 200, j);
}


/* Answers "<a.b.c.d>:<port> <loopback>" as the server saw the client. */
static int h_peer(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    uint16_t port;
    uint32_t a = sl_http_req_peer(req, &port);
    char body[64];
    int n = snprintf(body, sizeof body, "%u.%u.%u.%u:%u %d", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
                     a & 255, port, sl_http_req_from_loopback(req));
    (void)t;
    return sl_http_reply(req, 200, "text/plain", body, (size_t)n);
}

/* sl_http_req_reset: ?now resets at once, ?replied after answering, ?gone
 * once the client left; the result goes to reset_rc. */
static _Atomic int reset_rc = 1;

static int h_reset(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    wait_st *s = sl_http_req_state(req);
    size_t ql;
    const char *q = sl_http_req_query(req, &ql);
    SL_BEGIN(t);
    if (!strncmp(q, "replied", ql)) {
        sl_http_reply(req, 200, "text/plain", "r", 1);
    } else if (!strncmp(q, "gone", ql)) {
        atomic_store(&handler_started, 1);
        SL_AWAIT(t, s->rc, sl_sleep(t, 30 * SL_NS_PER_S));   /* until the client goes */
    }
    atomic_store(&reset_rc, sl_http_req_reset(req));
    assert_int_equal(sl_http_req_reset(req), -EALREADY);
    assert_int_equal(sl_http_reply(req, 200, "text/plain", "x", 1), -EALREADY);
    SL_END(t);
}

static int h_silent(sl_task *t, void *arg)
{
    (void)t;
    (void)arg;
    return 0;   /* ends without answering: the server says 500 */
}

/* The relay API's rules, noted for the test (issue 20): what
 * sl_http_reply_cause and sl_http_req_cause return, then a 500 that
 * carries the relayed cause. */
static atomic_int relay_rc[7];

static int h_relay(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    sl_cause_info ci, got;
    (void)t;
    atomic_store(&relay_rc[0], sl_http_req_cause(req, 200, &got));                 /* -ENOENT */
    atomic_store(&relay_rc[1], sl_http_reply_cause(req, NULL));                    /* -EINVAL */
    ci = (sl_cause_info){ .cause = SL_WC_UPSTREAM, .hop = "Far", .left_ms = -1 };
    atomic_store(&relay_rc[2], sl_http_reply_cause(req, &ci));                     /* -EINVAL: upper case */
    ci = (sl_cause_info){ .cause = SL_WC_UPSTREAM, .hop = "far", .left_ms = 12 };
    atomic_store(&relay_rc[3], sl_http_reply_cause(req, &ci));                     /* 0 */
    atomic_store(&relay_rc[4], sl_http_reply_cause(req, &ci));                     /* -EALREADY: one cause */
    atomic_store(&relay_rc[5], sl_http_req_cause(req, 200, &got) == 0 && !strcmp(got.hop, "far") ? 0 : -1);
    sl_http_reply_error(req, 500, "relayed", "relayed");
    atomic_store(&relay_rc[6], sl_http_reply_cause(req, &ci));                     /* -EALREADY: answered */
    return 0;
}

/* Answers with the status in the path. */
static int h_status(sl_task *t, void *arg)
{
    size_t len;
    const char *code = sl_http_req_param(arg, "code", &len);
    (void)t;
    return sl_http_reply(arg, atoi(code), "text/plain", "s", 1);
}

static void start(sl_http_server_opts o)
{
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(1, &TS.cap);
    if (!o.listen)
        o.listen = "127.0.0.1:0";
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &o), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/wait", h_wait, sizeof(wait_st), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/wait-late", h_wait_late, sizeof(wait_st), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/sleep", h_sleep, sizeof(wait_st), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/echo", h_echo, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/items/{id}", h_item, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/silent", h_silent, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/peer", h_peer, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/reset", h_reset, sizeof(wait_st), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/status/{code}", h_status, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/relay", h_relay, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/wait", h_wait, 0, NULL), -EEXIST);
    atomic_store(&seen_cause, -1);
    atomic_store(&seen_err, 1);
    atomic_store(&handler_started, 0);
    srv_run(&TS);
}

static void wait_started(void)
{
    for (int i = 0; i < 5000 && !atomic_load(&handler_started); i++)
        usleep(2000);   /* polls for the event, up to 10 s: not a fixed wait */
    assert_int_equal(atomic_load(&handler_started), 1);
}

/* ---- basics ------------------------------------------------------------------------ */

static void test_routes_and_keepalive(void **s)
{
    (void)s;
    resp r;
    start((sl_http_server_opts){ 0 });
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /items/a-17 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 200);
    assert_string_equal(r.body, "a-17");
    assert_false(r.closed_after);
    cli_send(fd, "GET /nope HTTP/1.1\r\nHost: t\r\n\r\n");          /* same connection */
    assert_int_equal(cli_read(fd, &r, 5000), 404);
    assert_non_null(strstr(r.body, "\"error\":\"not_found\""));
    cli_send(fd, "DELETE /items/1 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 405);
    assert_non_null(strstr(r.head, "Allow: GET"));
    cli_send(fd, "HEAD /items/xyz HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_no_body = true;
    assert_int_equal(cli_read(fd, &r, 5000), 200);                /* HEAD: length, no body */
    cli_no_body = false;
    assert_non_null(strstr(r.head, "Content-Length: 3"));
    cli_send(fd, "GET /peer HTTP/1.1\r\nHost: t\r\n\r\n");          /* who the server saw */
    assert_int_equal(cli_read(fd, &r, 5000), 200);
    struct sockaddr_in me;
    socklen_t ml = sizeof me;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&me, &ml), 0);
    char want[64];
    snprintf(want, sizeof want, "127.0.0.1:%u 1", ntohs(me.sin_port));
    assert_string_equal(r.body, want);
    cli_send(fd, "GET /silent HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 500);
    assert_non_null(strstr(r.body, "ended without an answer"));
    cli_send(fd, "GET /healthz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 200);
    assert_true(r.closed_after);
    assert_true(cli_closed(fd, 2000));
    close(fd);
    srv_stop(&TS);
}

/* Status lines come pre-formatted for the codes we name and by class for
 * the others; the Date line is an IMF-fixdate. */
static void test_status_lines(void **s)
{
    (void)s;
    static const struct { int code; const char *line; } cases[] = {
        { 200, "HTTP/1.1 200 OK\r\n" },
        { 201, "HTTP/1.1 201 Created\r\n" },
        { 431, "HTTP/1.1 431 Request Header Fields Too Large\r\n" },
        { 508, "HTTP/1.1 508 Loop Detected\r\n" },
        { 299, "HTTP/1.1 299 Success\r\n" },
        { 399, "HTTP/1.1 399 Redirection\r\n" },
        { 418, "HTTP/1.1 418 Client Error\r\n" },
        { 599, "HTTP/1.1 599 Server Error\r\n" },
    };
    start((sl_http_server_opts){ 0 });
    int fd = cli_connect(TS.port);
    resp r;
    char req[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(req, sizeof req, "GET /status/%d HTTP/1.1\r\nHost: x\r\n\r\n", cases[i].code);
        cli_send(fd, req);
        assert_int_equal(cli_read(fd, &r, 5000), cases[i].code);
        assert_memory_equal(r.head, cases[i].line, strlen(cases[i].line));
        const char *date = strstr(r.head, "\r\nDate: ");
        assert_non_null(date);
        struct tm tm;
        const char *end = strptime(date + 8, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        assert_non_null(end);
        assert_memory_equal(end, "\r\n", 2);
        assert_int_equal(end - (date + 8), 29);
        assert_string_equal(r.body, "s");
    }
    close(fd);
    srv_stop(&TS);
}

static void test_pipelined_in_order(void **s)
{
    (void)s;
    start((sl_http_server_opts){ 0 });
    int fd = cli_connect(TS.port);
    /* the first is slow, the others fast: answers still come in order */
    cli_send(fd, "GET /sleep?ms=40 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /items/second HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /sleep?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n"
                 "GET /items/fourth HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_expect(fd, 200, "slept 40");
    cli_expect(fd, 200, "second");
    cli_expect(fd, 200, "slept 1");
    cli_expect(fd, 200, "fourth");
    close(fd);
    srv_stop(&TS);
}

static void test_json_body(void **s)
{
    (void)s;
    resp r;
    start((sl_http_server_opts){ 0 });
    int fd = cli_connect(TS.port);
    cli_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 13\r\n\r\n{\"item\":\"a\"}\n");
    assert_int_equal(cli_read(fd, &r, 5000), 200);
    assert_string_equal(r.body, "{\"item\":\"a\"}");
    cli_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 200);
    assert_string_equal(r.body, "{\"a\":1}");
    cli_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n{bad}");
    assert_int_equal(cli_read(fd, &r, 5000), 400);
    assert_non_null(strstr(r.body, "\"error\":\"bad_request\""));
    assert_non_null(strstr(r.body, "invalid JSON"));
    cli_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\n[1]");
    assert_int_equal(cli_read(fd, &r, 5000), 400);
    assert_non_null(strstr(r.body, "must be a JSON object"));
    /* Expect: 100-continue gets its interim answer before the body is sent */
    cli_send(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    char buf[64] = { 0 };
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    assert_true(poll(&pfd, 1, 5000) == 1);
    assert_true(read(fd, buf, 25) == 25);
    assert_string_equal(buf, "HTTP/1.1 100 Continue\r\n\r\n");
    cli_send(fd, "{}");
    assert_int_equal(cli_read(fd, &r, 5000), 200);
    assert_string_equal(r.body, "{}");
    close(fd);
    srv_stop(&TS);
}

/* ---- bad input: answered, connection closed, server still serving --------------------- */

static void test_malformed_and_limits(void **s)
{
    (void)s;
    resp r;
    start((sl_http_server_opts){ .max_body = 1000, .max_head = 2048 });
    /* malformed framing closes the connection; a bad header value in a well
     * framed request (the last case) does not need to */
    static const struct { const char *req; int status; } bad[] = {
        { "GARBAGE / HTTP/1.1\r\nHost: t\r\n\r\n", 501 },                          /* unknown method */
        { "GET / HTTP/1.1\r\nHost: t\r\nno colon here\r\n\r\n", 400 },
        { "GET / HTTP/2.0\r\nHost: t\r\n\r\n", 505 },
        { "GET /items/x HTTP/1.1\r\n\r\n", 400 },                                   /* no Host */
        { "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400 },
        { "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n", 400 },
        { "GET /items/x HTTP/1.1\r\nHost: t\r\nX: a\x01b\r\n\r\n", 400 },
        /* too large a body: answered from Content-Length, the body never sent */
        { "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 10000000\r\n\r\n", 413 },
        { "GET /items/x?h=v HTTP/1.1\r\nHost: t\r\nGrpc-Timeout: soon\r\n\r\n", 400 },
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int fd = cli_connect(TS.port);
        cli_send(fd, bad[i].req);
        if (cli_read(fd, &r, 5000) != bad[i].status)
            fail_msg("case %zu: expected %d, got %d (%s)", i, bad[i].status, r.status, r.body);
        assert_non_null(strstr(r.body, "\"error\":"));
        if (i + 1 < sizeof bad / sizeof *bad)
            assert_true(cli_closed(fd, 2000));
        else
            assert_false(r.closed_after);
        close(fd);
    }
    /* a head larger than max_head: 431 */
    char big[4096];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\0';
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET / HTTP/1.1\r\nHost: t\r\nX-Big: ");
    cli_send(fd, big);
    cli_send(fd, "\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 431);
    close(fd);
    /* and the server still serves */
    assert_int_equal(get(TS.port, "/items/ok", &r), 200);
    srv_stop(&TS);
}

static void test_slow_header_408(void **s)
{
    (void)s;
    resp r;
    start((sl_http_server_opts){ .header_timeout_ms = 100 });
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /items/x HTTP/1.1\r\nHo");   /* ... and nothing more */
    uint64_t t0 = sl_now_ns();
    assert_int_equal(cli_read(fd, &r, 5000), 408);
    assert_true(sl_now_ns() - t0 >= 90 * SL_NS_PER_MS);
    assert_true(r.closed_after);
    assert_true(cli_closed(fd, 2000));
    close(fd);
    assert_int_equal(get(TS.port, "/items/ok", &r), 200);
    srv_stop(&TS);
}

/* ---- contexts: disconnect, budget ------------------------------------------------------ */

static void test_disconnect_cancels_context(void **s)
{
    (void)s;
    uint64_t after[5];
    start((sl_http_server_opts){ 0 });
    for (int i = 0; i < 5; i++) {
        atomic_store(&seen_cause, -1);
        atomic_store(&handler_started, 0);
        int fd = cli_connect(TS.port);
        cli_send(fd, "GET /wait HTTP/1.1\r\nHost: t\r\n\r\n");
        wait_started();
        uint64_t closed_at = sl_now_ns();
        close(fd);
        for (int k = 0; k < 2000 && atomic_load(&seen_cause) < 0; k++)
            usleep(1000);
        assert_int_equal(atomic_load(&seen_cause), SL_CAUSE_DISCONNECT);
        assert_int_equal(atomic_load(&seen_err), -ECANCELED);
        after[i] = atomic_load(&seen_at_ns) - closed_at;
    }
    uint64_t m = median_u64(after, 5);
    print_message("disconnect seen after %.3f ms (median of 5)\n", (double)m / 1e6);
    assert_true(m < 50 * SL_NS_PER_MS);
    srv_stop(&TS);
}

/* The sluice-cause value of a response head ("" when it has none). */
static const char *cause_of(const resp *r, char *buf, size_t n)
{
    const char *h = strstr(r->head, "\r\nsluice-cause: ");
    buf[0] = '\0';
    if (h) {
        h += strlen("\r\nsluice-cause: ");
        size_t l = strcspn(h, "\r");
        snprintf(buf, n, "%.*s", (int)l, h);
    }
    return buf;
}

static void test_grpc_timeout_504(void **s)
{
    (void)s;
    resp r;
    uint64_t late[5], took[5];
    start((sl_http_server_opts){ .timeout_ms = 5000 });
    for (int i = 0; i < 5; i++) {
        atomic_store(&seen_err, 1);
        int fd = cli_connect(TS.port);
        uint64_t t0 = sl_now_ns();
        cli_send(fd, "GET /wait HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 100m\r\n"
                     "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n");
        assert_int_equal(cli_read(fd, &r, 5000), 504);
        took[i] = sl_now_ns() - t0;
        assert_non_null(strstr(r.body, "deadline_exceeded"));
        assert_int_equal(atomic_load(&seen_err), -ETIMEDOUT);
        /* the budget that ran out was the caller's (100 ms, below our 5 s):
         * the handler's context says so, and so does the answer (issue 20) */
        assert_int_equal(atomic_load(&seen_cause), SL_CAUSE_CALLER_DEADLINE);
        assert_int_equal(atomic_load(&state_misaligned), 0);
        char want[128], got[128];
        snprintf(want, sizeof want, "v1;cause=caller-deadline;hop=127.0.0.1:%d;left-ms=100", TS.port);
        assert_string_equal(cause_of(&r, got, sizeof got), want);
        snprintf(want, sizeof want, "(cause: caller-deadline at 127.0.0.1:%d (called with 100 ms))", TS.port);
        assert_non_null(strstr(r.body, want));
        /* the caller's 100 ms, counted from when the server read the head
         * (after t0), not the server's 5 s */
        uint64_t budget = atomic_load(&handler_deadline_ns) - t0;
        assert_true(budget >= 100 * SL_NS_PER_MS && budget < SL_NS_PER_S);
        int64_t l = (int64_t)atomic_load(&seen_at_ns) - (int64_t)atomic_load(&handler_deadline_ns);
        assert_true(l >= 0);   /* never early */
        late[i] = (uint64_t)l;
        assert_true(took[i] >= 100 * SL_NS_PER_MS && took[i] < 5 * SL_NS_PER_S);
        close(fd);
    }
    /* on time: the median wait ends well before anything but the deadline
     * could have ended it (the server's 5 s budget). The bound is loose on
     * purpose: at load average 20 the ASan build saw 18 ms; how late timers
     * are is a benchmark figure (make bench), not a unit test's. */
    uint64_t ml = median_u64(late, 5), mt = median_u64(took, 5);
    print_message("504 after %.1f ms (median); the wait ended %.2f ms after the deadline\n",
                  (double)mt / 1e6, (double)ml / 1e6);
    assert_true(ml < 500 * SL_NS_PER_MS);
    srv_stop(&TS);
}

/* Our own budget below the caller's: "deadline", with our name; the
 * causes a status implies; none on other answers; a bad name refused. */
/* The handler's task woken by its deadline before its context's timer ran
 * (forced: the timer pushed late): its context has ended all the same, with
 * the caller's deadline, and the answer says so (issue 20). */
static void test_cause_task_timer_first(void **s)
{
    (void)s;
    resp r;
    char got[128], want[128];
    start((sl_http_server_opts){ .timeout_ms = 5000 });
    atomic_store(&late_pushed, 0);
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /wait-late HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 100m\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 504);
    assert_int_equal(atomic_load(&late_pushed), 1);
    assert_int_equal(atomic_load(&seen_err), -ETIMEDOUT);
    assert_int_equal(atomic_load(&seen_cause), SL_CAUSE_CALLER_DEADLINE);
    snprintf(want, sizeof want, "v1;cause=caller-deadline;hop=127.0.0.1:%d;left-ms=100", TS.port);
    assert_string_equal(cause_of(&r, got, sizeof got), want);
    close(fd);
    srv_stop(&TS);
}

static void test_cause_own(void **s)
{
    (void)s;
    resp r;
    char got[128];
    start((sl_http_server_opts){ .timeout_ms = 100, .name = "edge-1" });
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /wait HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 10S\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 504);
    assert_int_equal(atomic_load(&seen_cause), SL_CAUSE_DEADLINE);
    assert_string_equal(cause_of(&r, got, sizeof got), "v1;cause=deadline;hop=edge-1;left-ms=100");
    assert_non_null(strstr(r.body, "(cause: deadline at edge-1 (called with 100 ms))"));
    static const struct { int status; const char *cause; } by_status[] = {
        { 502, "v1;cause=upstream;hop=edge-1;left-ms=100" }, { 503, "v1;cause=overloaded;hop=edge-1;left-ms=100" },
        { 504, "v1;cause=deadline;hop=edge-1;left-ms=100" }, { 508, "v1;cause=loop;hop=edge-1;left-ms=100" },
        { 500, "" }, { 200, "" }, { 404, "" },
    };
    for (size_t i = 0; i < sizeof by_status / sizeof *by_status; i++) {
        char req[96];
        snprintf(req, sizeof req, "GET /status/%d HTTP/1.1\r\nHost: t\r\n\r\n", by_status[i].status);
        cli_send(fd, req);
        assert_int_equal(cli_read(fd, &r, 5000), by_status[i].status);
        if (strcmp(cause_of(&r, got, sizeof got), by_status[i].cause))
            fail_msg("%d: sluice-cause '%s', want '%s'", by_status[i].status, got, by_status[i].cause);
    }
    /* a relayed cause goes out whatever the status, once */
    for (int i = 0; i < 7; i++)
        atomic_store(&relay_rc[i], 1);   /* not yet */
    cli_send(fd, "GET /relay HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 500);
    assert_string_equal(cause_of(&r, got, sizeof got), "v1;cause=upstream;hop=far;left-ms=12");
    assert_non_null(strstr(r.body, "relayed (cause: upstream at far (called with 12 ms))"));
    /* the handler notes its last step after the answer has gone: wait for it */
    for (int k = 0; k < 10000 && atomic_load(&relay_rc[6]) == 1; k++)
        usleep(1000);
    static const int want_rc[7] = { -ENOENT, -EINVAL, -EINVAL, 0, -EALREADY, 0, -EALREADY };
    for (int i = 0; i < 7; i++)
        if (atomic_load(&relay_rc[i]) != want_rc[i])
            fail_msg("relay step %d: %d, want %d", i, atomic_load(&relay_rc[i]), want_rc[i]);
    close(fd);
    srv_stop(&TS);
    sl_runtime *rt = rt_new(1, NULL);
    sl_http_server *srv = NULL;
    static const char *bad[] = { "", "Edge", "a b", "a;b", "a=b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0", .name = bad[i] }) != -EINVAL)
            fail_msg("took the name '%s'", bad[i]);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- admission ------------------------------------------------------------------------ */

static void wait_metric(const char *line) { wait_metric_on(TS.port, line); }

static void test_shedding_503(void **s)
{
    (void)s;
    resp r;
    /* the fixed bounds (adaptive admission's CoDel would refuse the queued
     * one after a while: tests/test_admission.c) */
    start((sl_http_server_opts){ .max_inflight = 1, .max_queue = 1, .retry_after_s = 3,
                                 .admission = SL_HTTP_ADMISSION_FIXED });
    int running = cli_connect(TS.port), queued = cli_connect(TS.port);
    /* (the running one's budget only has to outlast the scene: its close
     * ends it; 2 s did not under load, so neither a bound on the 503's time) */
    cli_send(running, "GET /wait HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 60S\r\n\r\n");
    wait_started();
    cli_send(queued, "GET /items/q HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_metric("sluice_http_queued{reactor=\"0\"} 1");   /* queued, not merely sent */
    /* refused, while the slot and the queue are full (what it took is not
     * asked: over 1 s once, at load 22) */
    assert_int_equal(get(TS.port, "/items/shed", &r), 503);
    assert_non_null(strstr(r.head, "Retry-After: 3"));
    assert_non_null(strstr(r.body, "\"error\":\"overloaded\""));
    close(running);                                                /* frees the slot */
    assert_int_equal(cli_read(queued, &r, 5000), 200);            /* the queued one runs */
    assert_string_equal(r.body, "q");
    close(queued);
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    assert_non_null(strstr(r.body, "sluice_http_shed_total{reactor=\"0\"} 1"));
    assert_non_null(strstr(r.body, "cause=\"client_disconnected\"} 1"));
    srv_stop(&TS);
}

static void start_lanes(void)
{
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(1, &TS.cap);
    sl_http_server_opts o = { .listen = "127.0.0.1:0", .max_inflight = 1, .max_queue = 1, .max_undo = 1,
                              .admission = SL_HTTP_ADMISSION_FIXED };   /* a queued one stays */
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &o), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/wait", h_wait, sizeof(wait_st), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/items/{id}", h_item, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/undo/wait", h_wait, sizeof(wait_st), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/undo/{id}", h_item, 0, NULL), 0);
    sl_http_route_opts undo = { .lane = SL_HTTP_LANE_UNDO };
    assert_int_equal(sl_http_route_set(TS.srv, "GET", "/undo/wait", &undo), 0);
    assert_int_equal(sl_http_route_set(TS.srv, "GET", "/undo/{id}", &undo), 0);
    atomic_store(&handler_started, 0);
    srv_run(&TS);
}

/* Fills the one running slot and the one queue place with normal requests. */
static void fill_admission(int *running, int *queued)
{
    *running = cli_connect(TS.port);
    *queued = cli_connect(TS.port);
    cli_send(*running, "GET /wait HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 5S\r\n\r\n");
    wait_started();
    cli_send(*queued, "GET /items/q HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_metric("sluice_http_queued{reactor=\"0\"} 1");
}

/* Probes and scrapes are answered while normal requests are shed. */
static void test_control_lane_never_shed(void **s)
{
    (void)s;
    resp r;
    int running, queued;
    start_lanes();
    fill_admission(&running, &queued);
    assert_int_equal(get(TS.port, "/items/shed", &r), 503);
    assert_int_equal(get(TS.port, "/healthz", &r), 200);
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    assert_non_null(strstr(r.body, "sluice_http_shed_total{reactor=\"0\"} 1"));
    close(running);
    assert_int_equal(cli_read(queued, &r, 5000), 200);
    close(queued);
    srv_stop(&TS);
}

/* A compensation starts past a full admission, up to max_undo at once;
 * beyond that bound it meets the normal admission (here: shed). */
static void test_undo_lane_bounded(void **s)
{
    (void)s;
    resp r;
    int running, queued;
    start_lanes();
    fill_admission(&running, &queued);
    assert_int_equal(get(TS.port, "/undo/a", &r), 200);            /* past the full queue */
    assert_string_equal(r.body, "a");
    int undo = cli_connect(TS.port);
    cli_send(undo, "GET /undo/wait HTTP/1.1\r\nHost: t\r\ngrpc-timeout: 5S\r\n\r\n");
    wait_metric("sluice_http_undo_running{reactor=\"0\"} 1");
    assert_int_equal(get(TS.port, "/undo/b", &r), 503);            /* the lane is full */
    assert_non_null(strstr(r.body, "\"error\":\"overloaded\""));
    close(undo);
    wait_metric("sluice_http_undo_running{reactor=\"0\"} 0");
    assert_int_equal(get(TS.port, "/undo/c", &r), 200);            /* a slot again */
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    assert_non_null(strstr(r.body, "sluice_http_undo_started_total{reactor=\"0\"} 3"));
    close(running);
    assert_int_equal(cli_read(queued, &r, 5000), 200);
    close(queued);
    srv_stop(&TS);
}

static void test_route_set_errors(void **s)
{
    (void)s;
    sl_runtime *rt = rt_new(1, NULL);
    sl_http_server *srv;
    assert_int_equal(sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(srv, "GET", "/x/{id}", h_item, 0, NULL), 0);
    sl_http_route_opts o = { .lane = SL_HTTP_LANE_UNDO };
    assert_int_equal(sl_http_route_set(srv, "GET", "/x/{id}", &o), 0);
    assert_int_equal(sl_http_route_set(srv, "POST", "/x/{id}", &o), -ENOENT);
    assert_int_equal(sl_http_route_set(srv, "GET", "/x/{name}", &o), -ENOENT);
    assert_int_equal(sl_http_route_set(srv, "GET", "/x/{id}", NULL), -EINVAL);
    assert_int_equal(sl_http_route_set(NULL, "GET", "/x/{id}", &o), -EINVAL);
    assert_int_equal(sl_http_route_set(srv, NULL, "/x/{id}", &o), -EINVAL);
    o.lane = SL_HTTP_LANE_CONTINUE + 1;
    assert_int_equal(sl_http_route_set(srv, "GET", "/x/{id}", &o), -EINVAL);
    o.lane = -1;
    assert_int_equal(sl_http_route_set(srv, "GET", "/x/{id}", &o), -EINVAL);
    o.lane = SL_HTTP_LANE_CONTROL;
    assert_int_equal(sl_http_route_set(srv, "GET", "/healthz", &o), 0);   /* built-in routes too */
    assert_int_equal(sl_http_server_start(srv), 0);
    assert_int_equal(sl_http_route_set(srv, "GET", "/x/{id}", &o), -EBUSY);
    sl_http_server_free(srv);
    assert_int_equal(sl_runtime_free(rt), 0);
}

/* ---- graceful shutdown --------------------------------------------------------------------- */

static void test_graceful_drain(void **s)
{
    (void)s;
    resp r;
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(2, &TS.cap);
    /* no preStop window: the drain at once (test_drain.c tests the window) */
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0",
                                                                                .prestop_ms = SL_HTTP_PRESTOP_OFF }), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/sleep", h_sleep, sizeof(wait_st), NULL), 0);
    srv_run(&TS);
    int fd = cli_connect(TS.port);
    atomic_store(&handler_started, 0);
    cli_send(fd, "GET /sleep?ms=200 HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_started();                   /* in flight, not merely sent */
    sl_http_server_shutdown(TS.srv);
    sl_http_server_shutdown(TS.srv);   /* idempotent */
    assert_int_equal(cli_read(fd, &r, 5000), 200);   /* in flight: finished */
    assert_string_equal(r.body, "slept 200");
    assert_true(r.closed_after);
    close(fd);
    pthread_join(TS.th, NULL);        /* the runtime stopped by itself */
    sl_http_server_free(TS.srv);
    assert_int_equal(sl_runtime_free(TS.rt), 0);
}

/* ---- /debug/deadlocks, and requests in the timeline trace --------------------------------- */

typedef struct dl2 {
    sl_chan *c1, *c2;
    int v1, v2, rc1, rc2;
} dl2;

static dl2 D2;

static int dl_a(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, D2.rc1, sl_chan_send(t, D2.c1, &D2.v1));
    SL_AWAIT(t, D2.rc1, sl_chan_recv(t, D2.c2, &D2.v1));
    SL_END(t);
}

static int dl_b(sl_task *t, void *arg)
{
    (void)arg;
    SL_BEGIN(t);
    SL_AWAIT(t, D2.rc2, sl_chan_send(t, D2.c2, &D2.v2));
    SL_AWAIT(t, D2.rc2, sl_chan_recv(t, D2.c1, &D2.v2));
    SL_END(t);
}

/* Makes two tasks that wait for each other, and answers at once. */
static int h_make_deadlock(sl_task *t, void *arg)
{
    sl_task *a, *b;
    (void)t;
    sl_chan_new(&D2.c1, sizeof(int), 0, &(sl_chan_opts){ .name = "c1" });
    sl_chan_new(&D2.c2, sizeof(int), 0, &(sl_chan_opts){ .name = "c2" });
    sl_spawn(NULL, dl_a, NULL, &a, &(sl_spawn_opts){ .name = "stuck-a" });
    sl_spawn(NULL, dl_b, NULL, &b, &(sl_spawn_opts){ .name = "stuck-b" });
    sl_chan_attach(D2.c1, a, SL_CHAN_SENDER);
    sl_chan_attach(D2.c2, a, SL_CHAN_RECEIVER);
    sl_chan_attach(D2.c2, b, SL_CHAN_SENDER);
    sl_chan_attach(D2.c1, b, SL_CHAN_RECEIVER);
    return sl_http_reply(arg, 200, "text/plain", "made", 4);
}

static void test_debug_deadlocks_and_trace(void **s)
{
    (void)s;
    resp r;
    char path[] = "/tmp/sluice-http-trace-XXXXXX";
    int tfd = mkstemp(path);
    close(tfd);
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(1, &TS.cap);
    assert_int_equal(sl_trace_start(TS.rt, path, 0), 0);
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/deadlock", h_make_deadlock, 0, NULL), 0);
    srv_run(&TS);
    assert_int_equal(get(TS.port, "/debug/deadlocks", &r), 200);
    assert_non_null(strstr(r.body, "\"total\":0"));
    int fd = cli_connect(TS.port);
    cli_send(fd, "POST /deadlock HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 200);
    close(fd);
    /* the wait-for check runs every 250 ms: the report is there within a second */
    for (int i = 0; i < 300; i++) {
        assert_int_equal(get(TS.port, "/debug/deadlocks", &r), 200);
        if (!strstr(r.body, "\"total\":0"))
            break;
        usleep(10000);
    }
    assert_non_null(strstr(r.body, "\"total\":1"));
    assert_non_null(strstr(r.body, "task 'stuck-a'"));
    assert_non_null(strstr(r.body, "task 'stuck-b'"));
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    assert_non_null(strstr(r.body, "sluice_deadlocks_total{reactor=\"0\"} 1"));
    sl_runtime_stop(TS.rt);
    pthread_join(TS.th, NULL);
    sl_http_server_free(TS.srv);
    assert_int_equal(sl_runtime_free(TS.rt), 4);   /* the two stuck tasks and their channels */
    /* every request is an async slice keyed by its trace in the timeline */
    json_error_t err;
    json_t *doc = json_load_file(path, 0, &err);
    if (!doc)
        fail_msg("trace: %s (line %d)", err.text, err.line);
    size_t i, begins = 0, ends = 0;
    json_t *e;
    json_array_foreach(json_object_get(doc, "traceEvents"), i, e) {
        const char *ph = json_string_value(json_object_get(e, "ph"));
        const char *cat = json_string_value(json_object_get(e, "cat"));
        if (cat && !strcmp(cat, "http")) {
            begins += !strcmp(ph, "b");
            ends += !strcmp(ph, "e");
        }
    }
    assert_true(begins >= 3);
    assert_int_equal(begins, ends);
    json_decref(doc);
    unlink(path);
}

/* ---- backpressure: a full channel stops the server reading the connection ------------------- */

static sl_chan *feed_ch;   /* lives on the server's reactor; no consumer but /drain */

static int h_feed(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    int v = 1;
    if (!feed_ch) {
        assert_int_equal(sl_chan_new(&feed_ch, sizeof(int), 100, &(sl_chan_opts){ .name = "feed" }), 0);
        assert_int_equal(sl_chan_give(feed_ch, t, NULL), 0);
    }
    assert_int_equal(sl_http_req_throttle(req, feed_ch, 4, 1), 0);
    assert_int_equal(sl_chan_try_send(t, feed_ch, &v), 0);
    return sl_http_reply(req, 200, "text/plain", "fed", 3);
}

static int h_drain(sl_task *t, void *arg)
{
    int v, n = 0;
    while (sl_chan_try_recv(t, feed_ch, &v) == 0)
        n++;
    char body[16];
    int len = snprintf(body, sizeof body, "%d", n);
    return sl_http_reply(arg, 200, "text/plain", body, (size_t)len);
}

static void test_backpressure_pauses_reading(void **s)
{
    (void)s;
    resp r;
    feed_ch = NULL;
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(1, &TS.cap);
    /* one request in flight per connection, so what is "not read" is exact
     * (with pipelining, up to max_pipeline parsed requests still run) */
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0", .max_pipeline = 1 }), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/feed", h_feed, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/drain", h_drain, 0, NULL), 0);
    srv_run(&TS);
    int fd = cli_connect(TS.port);
    for (int i = 0; i < 10; i++)   /* ten pipelined requests that each feed one element */
        cli_send(fd, "POST /feed HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    for (int i = 0; i < 4; i++)
        assert_int_equal(cli_read(fd, &r, 5000), 200);
    /* the channel is at its high watermark: nothing more is read or answered */
    assert_int_equal(cli_read(fd, &r, 300), -1);
    /* a consumer drains it below the low watermark: reading resumes */
    assert_int_equal(get(TS.port, "/drain", &r), 200);
    assert_string_equal(r.body, "4");
    for (int i = 0; i < 4; i++)   /* four more fill it again, then the pause */
        assert_int_equal(cli_read(fd, &r, 5000), 200);
    assert_int_equal(cli_read(fd, &r, 300), -1);
    assert_int_equal(get(TS.port, "/drain", &r), 200);
    assert_string_equal(r.body, "4");
    for (int i = 0; i < 2; i++)   /* the last two */
        assert_int_equal(cli_read(fd, &r, 5000), 200);
    close(fd);
    sl_runtime_stop(TS.rt);
    pthread_join(TS.th, NULL);
    sl_http_server_free(TS.srv);
    assert_int_equal(sl_runtime_free(TS.rt), 1);   /* feed_ch, left to the runtime on purpose */
}

/* The runtime stopped (not drained) with a handler still parked: freeing
 * the server, then the runtime, frees everything; the handler is reported. */
static void test_free_with_handler_alive(void **s)
{
    (void)s;
    start((sl_http_server_opts){ 0 });
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /wait HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_started();
    sl_runtime_stop(TS.rt);
    pthread_join(TS.th, NULL);
    sl_http_server_free(TS.srv);
    assert_int_equal(sl_runtime_free(TS.rt), 1);
    assert_non_null(strstr(TS.cap.text, "sluice: leak: task 'http request of a freed server'"));
    close(fd);
}

/* ---- expired elements and "why is it not ready", live (issue 20) ------------------------------ */

static sl_chan *why_ch;
static int why_got;

static int why_waiter(sl_task *t, void *arg)
{
    (void)arg;
    int rc;
    SL_BEGIN(t);
    sl_task_set_deadline(t, sl_deadline_ms(60000));
    SL_AWAIT(t, rc, sl_chan_recv(t, why_ch, &why_got));
    assert_int_equal(rc, 0);
    SL_END(t);
}

/* A channel with one element expired in it, and a task waiting on it. */
static int h_why(sl_task *t, void *arg)
{
    int v = 5, rc;
    uint64_t soon;
    SL_BEGIN(t);
    assert_int_equal(sl_chan_new(&why_ch, sizeof(int), 2, &(sl_chan_opts){ .name = "why-chan", .expiring = true }), 0);
    assert_int_equal(sl_chan_give(why_ch, t, NULL), 0);
    soon = sl_deadline_ms(1);
    assert_int_equal(sl_chan_send_until(t, why_ch, &v, soon), 0);
    SL_AWAIT(t, rc, sl_sleep_until(t, soon));
    assert_int_equal(rc, 0);
    assert_int_equal(sl_chan_try_recv(t, why_ch, &v), -EAGAIN);   /* expired: dropped */
    assert_int_equal(sl_spawn(NULL, why_waiter, NULL, NULL, &(sl_spawn_opts){ .name = "why-waiter" }), 0);
    sl_http_reply(arg, 200, "text/plain", "ok", 2);
    SL_END(t);
}

static int h_why_end(sl_task *t, void *arg)
{
    int v = 6;
    assert_int_equal(sl_chan_try_send(t, why_ch, &v), 0);   /* to the waiter */
    assert_int_equal(sl_chan_free(NULL, why_ch), 0);
    return sl_http_reply(arg, 200, "text/plain", "ok", 2);
}

static void test_live_why_and_expired(void **s)
{
    (void)s;
    static resp r;
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(1, &TS.cap);
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/why", h_why, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/why-end", h_why_end, 0, NULL), 0);
    srv_run(&TS);
    assert_int_equal(get(TS.port, "/why", &r), 200);
    /* the waiter parks right after the answer: wait for it (bounded) */
    bool seen = false;
    for (int i = 0; i < 2500 && !seen; i++) {
        assert_int_equal(get(TS.port, "/debug/tasks", &r), 200);
        seen = strstr(r.body, "\"why-waiter\"") && strstr(r.body, "\"why\"");
        if (!seen)
            usleep(2000);   /* polls for the event, up to 5 s */
    }
    if (!seen)
        fail_msg("/debug/tasks: %s", r.body);
    json_error_t je;
    json_t *doc = json_loads(r.body, 0, &je), *task = NULL;
    assert_non_null(doc);
    json_t *rs = json_object_get(doc, "reactors");
    for (size_t i = 0; i < json_array_size(rs); i++) {
        json_t *ts = json_object_get(json_array_get(rs, i), "tasks");
        for (size_t k = 0; k < json_array_size(ts); k++)
            if (!strcmp(json_string_value(json_object_get(json_array_get(ts, k), "name")), "why-waiter"))
                task = json_array_get(ts, k);
    }
    if (!task)
        fail_msg("no why-waiter in %s", r.body);
    json_t *w = json_array_get(json_object_get(task, "why"), 0);
    assert_non_null(w);
    assert_string_equal(json_string_value(json_object_get(w, "channel")), "why-chan");
    assert_string_equal(json_string_value(json_object_get(w, "op")), "recv");
    assert_string_equal(json_string_value(json_object_get(w, "reason")), "empty");
    assert_int_equal(json_integer_value(json_object_get(w, "len")), 0);
    assert_int_equal(json_integer_value(json_object_get(w, "cap")), 2);
    assert_null(json_object_get(w, "peers"));   /* no ends declared */
    json_decref(doc);
    /* the expired element, counted */
    assert_int_equal(get(TS.port, "/debug/channels", &r), 200);
    const char *c = strstr(r.body, "\"name\":\"why-chan\"");
    assert_non_null(c);
    const char *end = strchr(c, '}');
    const char *x = strstr(c, "\"expired\":1");
    assert_true(x && end && x < end);
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    assert_non_null(strstr(r.body, "sluice_channel_expired_total{reactor=\"0\",channel=\"why-chan\",channel_id=\"0\"} 1\n"));
    assert_int_equal(get(TS.port, "/why-end", &r), 200);
    sl_runtime_stop(TS.rt);
    pthread_join(TS.th, NULL);
    sl_http_server_free(TS.srv);
    assert_int_equal(sl_runtime_free(TS.rt), 0);
    assert_int_equal(why_got, 6);
}

/* ---- who may see /debug/ ------------------------------------------------------------------- */

/* This machine's first IPv4 address that is not loopback, or false. */
static bool outside_addr(char *out, size_t size)
{
    struct ifaddrs *ifs, *i;
    bool found = false;
    if (getifaddrs(&ifs) < 0)
        return false;
    for (i = ifs; i && !found; i = i->ifa_next)
        if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
            (ntohl(((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr) >> 24) != 127)
            found = inet_ntop(AF_INET, &((struct sockaddr_in *)i->ifa_addr)->sin_addr, out, (socklen_t)size);
    freeifaddrs(ifs);
    return found;
}

static void test_debug_policy(void **s)
{
    (void)s;
    resp r;
    char outside[INET_ADDRSTRLEN];
    bool have_outside = outside_addr(outside, sizeof outside);
    if (!have_outside)
        print_message("no IPv4 address but loopback here: the non-loopback cases are not run\n");
    /* on: anyone */
    start((sl_http_server_opts){ .listen = "0.0.0.0:0", .debug = SL_HTTP_DEBUG_ON });
    assert_int_equal(get(TS.port, "/debug/tasks", &r), 200);
    if (have_outside)
        assert_int_equal(get_from(outside, TS.port, "/debug/tasks", &r), 200);
    srv_stop(&TS);
    /* the default (issue 22): loopback only */
    start((sl_http_server_opts){ .listen = "0.0.0.0:0" });
    assert_int_equal(get(TS.port, "/debug/tasks", &r), 200);
    if (have_outside) {
        assert_int_equal(get_from(outside, TS.port, "/debug/tasks", &r), 403);
        assert_int_equal(get_from(outside, TS.port, "/healthz", &r), 200);
    }
    srv_stop(&TS);
    /* loopback: 403 for others, also for a method the route lacks (no 405
     * that would tell the route exists); /metrics and /healthz stay open */
    start((sl_http_server_opts){ .listen = "0.0.0.0:0", .debug = SL_HTTP_DEBUG_LOOPBACK });
    assert_int_equal(get(TS.port, "/debug/channels", &r), 200);
    assert_non_null(strstr(r.body, "\"reactors\""));
    if (have_outside) {
        assert_int_equal(get_from(outside, TS.port, "/debug/channels", &r), 403);
        assert_non_null(strstr(r.body, "\"error\":\"forbidden\""));
        assert_int_equal(get_from(outside, TS.port, "/debug/nothing-here", &r), 403);
        int fd = cli_connect_to(outside, TS.port);
        cli_send(fd, "POST /debug/tasks HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
        assert_int_equal(cli_read(fd, &r, 5000), 403);
        close(fd);
        assert_int_equal(get_from(outside, TS.port, "/metrics", &r), 200);
        assert_int_equal(get_from(outside, TS.port, "/healthz", &r), 200);
        assert_int_equal(get_from(outside, TS.port, "/peer", &r), 200);
        assert_non_null(strstr(r.body, " 0"));   /* not loopback, as the server saw it */
    }
    srv_stop(&TS);
    /* off: 404 for everyone, loopback included, whatever the method */
    start((sl_http_server_opts){ .listen = "0.0.0.0:0", .debug = SL_HTTP_DEBUG_OFF });
    assert_int_equal(get(TS.port, "/debug/tasks", &r), 404);
    assert_non_null(strstr(r.body, "\"error\":\"not_found\""));
    assert_int_equal(get(TS.port, "/debug/deadlocks", &r), 404);
    int fd = cli_connect(TS.port);
    cli_send(fd, "DELETE /debug/channels HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 404);
    close(fd);
    if (have_outside)
        assert_int_equal(get_from(outside, TS.port, "/debug/tasks", &r), 404);
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    assert_int_equal(get(TS.port, "/debugger", &r), 404);   /* plain 404: no route */
    srv_stop(&TS);
}

/* ---- fault injection: a reset instead of an answer ------------------------------------- */

static void test_reset(void **s)
{
    (void)s;
    resp r;
    char buf[256];
    start((sl_http_server_opts){ 0 });
    /* the client sees ECONNRESET, not an answer or a clean EOF; what was
     * pipelined behind the reset request is dropped */
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /reset?now HTTP/1.1\r\nHost: t\r\n\r\nGET /healthz HTTP/1.1\r\nHost: t\r\n\r\n");
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 5000), 1);
    errno = 0;
    assert_int_equal(read(fd, buf, sizeof buf), -1);
    assert_int_equal(errno, ECONNRESET);
    close(fd);
    /* the handler stores its result after the RST has left: wait for it */
    for (int i = 0; i < 2000 && atomic_load(&reset_rc) == 1; i++)
        usleep(1000);
    assert_int_equal(atomic_load(&reset_rc), 0);
    /* the server goes on serving */
    assert_int_equal(get(TS.port, "/items/after-reset", &r), 200);
    assert_string_equal(r.body, "after-reset");
    /* answered already: -EALREADY, and the answer arrives whole */
    atomic_store(&reset_rc, 1);
    fd = cli_connect(TS.port);
    cli_send(fd, "GET /reset?replied HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 200);
    assert_string_equal(r.body, "r");
    close(fd);
    for (int i = 0; i < 2000 && atomic_load(&reset_rc) == 1; i++)
        usleep(1000);
    assert_int_equal(atomic_load(&reset_rc), -EALREADY);
    /* the client left first: -EPIPE */
    atomic_store(&reset_rc, 1);
    atomic_store(&handler_started, 0);
    fd = cli_connect(TS.port);
    cli_send(fd, "GET /reset?gone HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_started();
    close(fd);
    for (int i = 0; i < 2000 && atomic_load(&reset_rc) == 1; i++)
        usleep(1000);
    assert_int_equal(atomic_load(&reset_rc), -EPIPE);
    /* counted as 444 (closed without an answer) */
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    assert_non_null(strstr(r.body, "route=\"/reset\",status=\"444\"} 1"));
    srv_stop(&TS);
}

static void test_bad_options(void **s)
{
    (void)s;
    sl_runtime *rt = rt_new(1, NULL);
    sl_http_server *srv;
    assert_int_equal(sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = "nohost" }), -EINVAL);
    assert_int_equal(sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = "1.2.3:80" }), -EINVAL);
    assert_int_equal(sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = "127.0.0.1:99999" }), -EINVAL);
    assert_int_equal(sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = "127.0.0.1:x" }), -EINVAL);
    /* a port is digits only: no sign, no blank, no hex (issue 22) */
    static const char *bad_ports[] = { "127.0.0.1: 80", "127.0.0.1:+80", "127.0.0.1:-0", "127.0.0.1:80 ",
                                       "127.0.0.1:0x50", "127.0.0.1:\t80", "[::1]:+80", "127.0.0.1:" };
    for (size_t i = 0; i < sizeof bad_ports / sizeof *bad_ports; i++)
        if (sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = bad_ports[i] }) != -EINVAL)
            fail_msg("listens on '%s'", bad_ports[i]);
    assert_int_equal(sl_http_server_new(NULL, rt, NULL), -EINVAL);
    assert_int_equal(sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .debug = 3 }), -EINVAL);
    assert_int_equal(sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .debug = -1 }), -EINVAL);
    assert_int_equal(sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = "localhost:0" }), 0);
    assert_int_equal(sl_http_route(srv, "GET", "bad", h_item, 0, NULL), -EINVAL);
    assert_int_equal(sl_http_route(srv, "GET", "/x", NULL, 0, NULL), -EINVAL);
    /* SIGPIPE: ignored once serving, unless the program handles it */
    struct sigaction pipe_sa;
    signal(SIGPIPE, SIG_DFL);
    assert_int_equal(sl_http_server_start(srv), 0);
    assert_int_equal(sigaction(SIGPIPE, NULL, &pipe_sa), 0);
    assert_true(pipe_sa.sa_handler == SIG_IGN);
    assert_int_equal(sl_http_server_start(srv), -EALREADY);
    assert_int_equal(sl_http_route(srv, "GET", "/late", h_item, 0, NULL), -EBUSY);
    /* a port taken by a socket that does not share it: -EADDRINUSE */
    int taken = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(taken, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(taken, 1), 0);
    getsockname(taken, (struct sockaddr *)&sa, &sl);
    sl_http_server *other;
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));
    assert_int_equal(sl_http_server_new(&other, rt, &(sl_http_server_opts){ .listen = addr }), 0);
    assert_int_equal(sl_http_server_start(other), -EADDRINUSE);
    sl_http_server_free(other);
    close(taken);
    /* nor one another server (process) listens on, though its sockets share
     * among its reactors (SO_REUSEPORT): no silent split (issue 21) */
    snprintf(addr, sizeof addr, "127.0.0.1:%d", sl_http_server_port(srv));
    assert_int_equal(sl_http_server_new(&other, rt, &(sl_http_server_opts){ .listen = addr }), 0);
    assert_int_equal(sl_http_server_start(other), -EADDRINUSE);
    sl_http_server_free(other);
    sl_http_server_free(srv);
    sl_runtime_free(rt);
}

/* ---- a context derived from a request outlives it ------------------------------- */

static char kept_trace[33];
static _Atomic int kept_done;

/* Runs after the request is answered and freed, under a context derived
 * from the request's: its trace must still be there (it is a copy). */
static int h_kept_later(sl_task *t, void *arg)
{
    int *rc = arg;
    SL_BEGIN(t);
    SL_AWAIT(t, *rc, sl_sleep(t, 50 * SL_NS_PER_MS));
    const sl_traceparent *tp = sl_ctx_trace(sl_task_ctx(t));
    if (tp)
        sl_trace_id_hex(tp, kept_trace);
    atomic_store(&kept_done, 1);
    SL_END(t);
}

static int h_keep(sl_task *t, void *arg)
{
    static int rc;
    sl_http_req *req = arg;
    sl_ctx *kept;
    (void)t;
    if (sl_ctx_without_cancel(&kept, sl_http_req_ctx(req)) < 0)
        return -ENOMEM;
    int r = sl_go(kept, h_kept_later, &rc, NULL, &(sl_spawn_opts){ .name = "kept" });
    sl_ctx_unref(kept);
    return r < 0 ? r : sl_http_reply(req, 200, "text/plain", "ok", 2);
}

static void test_derived_ctx_outlives_request(void **s)
{
    (void)s;
    resp r;
    atomic_store(&kept_done, 0);
    kept_trace[0] = '\0';
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(1, &TS.cap);
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/keep", h_keep, 0, NULL), 0);
    srv_run(&TS);
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /keep HTTP/1.1\r\nHost: t\r\nConnection: close\r\n"
                 "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 200);
    close(fd);   /* the request and its connection are gone; the task is not */
    for (int i = 0; i < 500 && !atomic_load(&kept_done); i++)
        usleep(2000);
    assert_int_equal(atomic_load(&kept_done), 1);
    assert_string_equal(kept_trace, "4bf92f3577b34da6a3ce929d0e0e4736");
    srv_stop(&TS);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_routes_and_keepalive),
        cmocka_unit_test(test_status_lines),
        cmocka_unit_test(test_pipelined_in_order),
        cmocka_unit_test(test_json_body),
        cmocka_unit_test(test_malformed_and_limits),
        cmocka_unit_test(test_slow_header_408),
        cmocka_unit_test(test_disconnect_cancels_context),
        cmocka_unit_test(test_grpc_timeout_504),
        cmocka_unit_test(test_cause_task_timer_first),
        cmocka_unit_test(test_cause_own),
        cmocka_unit_test(test_shedding_503),
        cmocka_unit_test(test_control_lane_never_shed),
        cmocka_unit_test(test_undo_lane_bounded),
        cmocka_unit_test(test_route_set_errors),
        cmocka_unit_test(test_graceful_drain),
        cmocka_unit_test(test_backpressure_pauses_reading),
        cmocka_unit_test(test_free_with_handler_alive),
        cmocka_unit_test(test_debug_deadlocks_and_trace),
        cmocka_unit_test(test_reset),
        cmocka_unit_test(test_debug_policy),
        cmocka_unit_test(test_live_why_and_expired),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_derived_ctx_outlives_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
