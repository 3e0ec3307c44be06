/* test_drain.c: the shutdown an orchestrator can use (issue 21 item 4):
 * readiness fails first while everything is still served (the preStop
 * window), then the drain refuses new work with 503 + Connection: close
 * but serves what continues or undoes work in flight, then closes. */
#include <stdatomic.h>
#include <time.h>
#include "httputil.h"

static test_srv TS;
static _Atomic int gate_open, gate_started, srv_done;

/* Parks until the test opens the gate (polled every 2 ms on the reactor):
 * a request whose end the test decides. */
static int h_gate(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    int *rc = sl_http_req_state(req);
    SL_BEGIN(t);
    atomic_fetch_add(&gate_started, 1);
    while (!atomic_load(&gate_open)) {
        SL_AWAIT(t, *rc, sl_sleep(t, 2 * SL_NS_PER_MS));
        if (*rc < 0)
            SL_RETURN(t, *rc);
    }
    sl_http_reply(req, 200, "text/plain", "gate", 4);
    SL_END(t);
}

static int h_ok(sl_task *t, void *arg)
{
    (void)t;
    return sl_http_reply(arg, 200, "text/plain", "ok", 2);
}

static void *run_thread(void *arg)
{
    test_srv *ts = arg;
    sl_runtime_run(ts->rt);
    atomic_store(&srv_done, 1);
    return NULL;
}

static void start(uint32_t prestop_ms, uint32_t grace_ms)
{
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(2, &TS.cap);
    sl_http_server_opts o = { .listen = "127.0.0.1:0", .prestop_ms = prestop_ms, .grace_ms = grace_ms };
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &o), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/gate", h_gate, sizeof(int), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/new", h_ok, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/callback", h_ok, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/undo", h_ok, 0, NULL), 0);
    assert_int_equal(sl_http_route_set(TS.srv, "POST", "/callback", &(sl_http_route_opts){ .lane = SL_HTTP_LANE_CONTINUE }), 0);
    assert_int_equal(sl_http_route_set(TS.srv, "POST", "/undo", &(sl_http_route_opts){ .lane = SL_HTTP_LANE_UNDO }), 0);
    atomic_store(&gate_open, 0);
    atomic_store(&gate_started, 0);
    atomic_store(&srv_done, 0);
    assert_int_equal(sl_http_server_start(TS.srv), 0);
    TS.port = sl_http_server_port(TS.srv);
    assert_int_equal(pthread_create(&TS.th, NULL, run_thread, &TS), 0);
}

/* The runtime stopped by itself (the drain ended) within bound_ms. */
static void wait_done(int bound_ms)
{
    for (int i = 0; i < bound_ms / 2 && !atomic_load(&srv_done); i++)
        usleep(2000);
    assert_int_equal(atomic_load(&srv_done), 1);
    pthread_join(TS.th, NULL);
    sl_http_server_free(TS.srv);
    assert_int_equal(sl_runtime_free(TS.rt), 0);
}

static int post(int fd, const char *path, resp *r)
{
    char req[256];
    snprintf(req, sizeof req, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}", path);
    cli_send(fd, req);
    return cli_read(fd, r, 5000);
}

static void wait_gates(int n)
{
    for (int i = 0; i < 5000 && atomic_load(&gate_started) < n; i++)
        usleep(2000);   /* polls for the event, up to 10 s */
    assert_int_equal(atomic_load(&gate_started), n);
}

/* Before a shutdown both probes say yes; the probes are in the control lane. */
static void test_probes(void **s)
{
    (void)s;
    resp r;
    start(SL_HTTP_PRESTOP_OFF, 0);
    assert_int_equal(get(TS.port, "/readyz", &r), 200);
    assert_string_equal(r.body, "{\"status\":\"ready\"}");
    assert_int_equal(get(TS.port, "/livez", &r), 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
    assert_int_equal(get(TS.port, "/healthz", &r), 200);   /* kept: the same as /livez */
    sl_http_route_opts o = { .lane = SL_HTTP_LANE_NORMAL };
    assert_int_equal(sl_http_route_set(TS.srv, "GET", "/readyz", &o), -EBUSY);
    sl_http_server_shutdown(TS.srv);
    wait_done(10000);
}

/* The preStop window: /readyz fails at once, new work is still served
 * as before (keep-alive, no Connection: close), liveness holds. */
static void test_prestop_window_serves(void **s)
{
    (void)s;
    resp r;
    start(60000, 0);   /* a window that outlasts the test: it is stopped by hand */
    int fd = cli_connect(TS.port);
    assert_int_equal(post(fd, "/new", &r), 200);
    sl_http_server_shutdown(TS.srv);   /* not_ready is set before it returns */
    assert_int_equal(get(TS.port, "/readyz", &r), 503);
    assert_string_equal(r.body, "{\"status\":\"draining\"}");
    assert_int_equal(get(TS.port, "/livez", &r), 200);
    assert_int_equal(post(fd, "/new", &r), 200);   /* the same keep-alive connection */
    assert_false(r.closed_after);
    int fd2 = cli_connect(TS.port);                  /* and new clients */
    assert_int_equal(post(fd2, "/new", &r), 200);
    assert_false(r.closed_after);
    close(fd);
    close(fd2);
    srv_stop(&TS);   /* frees the pending window timer */
}

/* The drain: new work 503 + close; a callback, an undo and the probes are
 * served, on an old keep-alive connection and on new ones; the request in
 * flight finishes; then idle connections and the listener close. */
static void test_drain_serves_work_in_flight(void **s)
{
    (void)s;
    resp r;
    start(SL_HTTP_PRESTOP_OFF, 20000);
    int idle = cli_connect(TS.port);
    assert_int_equal(post(idle, "/new", &r), 200);   /* keep-alive, then idle */
    int busy = cli_connect(TS.port);
    cli_send(busy, "GET /gate HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_gates(1);
    sl_http_server_shutdown(TS.srv);
    sl_http_server_shutdown(TS.srv);   /* idempotent */
    /* new work on a new connection: accepted, then refused with 503 (the
     * drain starts on a message to each reactor: poll for it) */
    int st = 0;
    for (int i = 0; i < 500 && st != 503; i++) {
        int fd = cli_connect(TS.port);
        st = post(fd, "/new", &r);
        close(fd);
        if (st == 200)
            usleep(2000);
    }
    assert_int_equal(st, 503);
    assert_non_null(strstr(r.body, "shutting_down"));
    assert_true(r.closed_after);
    /* the idle keep-alive connection was not closed under its client: a
     * callback for work in flight is served on it, and closes it */
    assert_int_equal(post(idle, "/callback", &r), 200);
    assert_true(r.closed_after);
    assert_true(cli_closed(idle, 5000));
    close(idle);
    int fd = cli_connect(TS.port);
    assert_int_equal(post(fd, "/undo", &r), 200);
    assert_true(r.closed_after);
    close(fd);
    fd = cli_connect(TS.port);
    assert_int_equal(post(fd, "/callback", &r), 200);
    close(fd);
    assert_int_equal(get(TS.port, "/readyz", &r), 503);
    assert_int_equal(get(TS.port, "/livez", &r), 200);
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    /* the one request refused above counts as a refusal while draining */
    assert_non_null(strstr(r.body, "sluice_http_admission_shed_total{reason=\"draining\"} 1\n"));
    int later = cli_connect(TS.port);   /* idle: closed when the work is done */
    atomic_store(&gate_open, 1);
    assert_int_equal(cli_read(busy, &r, 10000), 200);
    assert_string_equal(r.body, "gate");
    assert_true(r.closed_after);
    assert_true(cli_closed(later, 10000));
    close(later);
    close(busy);
    wait_done(10000);
    /* the listener is closed: refused, not accepted and reset */
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)TS.port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(c, (struct sockaddr *)&sa, sizeof sa), -1);
    assert_int_equal(errno, ECONNREFUSED);
    close(c);
}

/* The bound: a request that outlasts the grace period is cancelled (its
 * client gets 503), a client that sends half a head is dropped, and the
 * runtime ends, no sooner than window + grace. */
static void test_drain_bounded(void **s)
{
    (void)s;
    resp r;
    start(100, 200);
    int busy = cli_connect(TS.port);
    cli_send(busy, "GET /gate HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_gates(1);
    int half = cli_connect(TS.port);
    cli_send(half, "GET /gate HTTP/1.1\r\nHo");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    sl_http_server_shutdown(TS.srv);
    assert_int_equal(cli_read(busy, &r, 10000), 503);   /* cancelled at the grace's end */
    assert_non_null(strstr(r.body, "shutting_down"));
    assert_true(cli_closed(half, 10000));
    wait_done(10000);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    assert_true(ms >= 300);   /* a lower bound only: the window and the grace were kept */
    close(busy);
    close(half);
}

static void test_bad_prestop(void **s)
{
    (void)s;
    sl_runtime *rt = rt_new(1, NULL);
    sl_http_server *srv;
    assert_int_equal(sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0", .prestop_ms = 600001 }),
                     -EINVAL);
    assert_int_equal(sl_http_server_new(&srv, rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0", .prestop_ms = 600000 }), 0);
    sl_http_server_free(srv);
    assert_int_equal(sl_runtime_free(rt), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_probes),
        cmocka_unit_test(test_prestop_window_serves),
        cmocka_unit_test(test_drain_serves_work_in_flight),
        cmocka_unit_test(test_drain_bounded),
        cmocka_unit_test(test_bad_prestop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
