/* test_http_life.c: the edges of a connection's and a request's life
 * (docs/net.md, "Connection and request states"), one rule per test, over
 * real sockets on 127.0.0.1. */
#include <stdatomic.h>
#include "httputil.h"

static test_srv TS;

/* /hold: runs until the test releases it (or its context ends), then
 * answers "held". What the test waits on: held_started, held_cause. */
static atomic_int release_hold, held_started, held_cause, marked;

typedef struct hold_st {
    int rc;
} hold_st;

static int h_hold(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    hold_st *s = sl_http_req_state(req);
    SL_BEGIN(t);
    atomic_store(&held_started, 1);
    while (!atomic_load(&release_hold)) {
        SL_AWAIT(t, s->rc, sl_sleep(t, SL_NS_PER_MS));
        if (s->rc < 0) {
            atomic_store(&held_cause, (int)sl_ctx_cause(sl_http_req_ctx(req), NULL));
            SL_RETURN(t, s->rc);
        }
    }
    sl_http_reply(req, 200, "text/plain", "held", 4);
    SL_END(t);
}

/* /mark: answers "marked", then tells the test it has. */
static int h_mark(sl_task *t, void *arg)
{
    (void)t;
    int rc = sl_http_reply(arg, 200, "text/plain", "marked", 6);
    atomic_fetch_add(&marked, 1);
    return rc;
}

/* /big: 16 MiB, more than the socket buffers of both ends hold. */
#define BIG (16u << 20)

static int h_big(sl_task *t, void *arg)
{
    (void)t;
    char *body = calloc(1, BIG);
    if (!body)
        return -ENOMEM;
    int rc = sl_http_reply(arg, 200, "application/octet-stream", body, BIG);
    free(body);
    return rc;
}

static int h_echo_len(sl_task *t, void *arg)
{
    size_t n;
    char out[32];
    (void)t;
    sl_http_req_body(arg, &n);
    int len = snprintf(out, sizeof out, "%zu", n);
    return sl_http_reply(arg, 200, "text/plain", out, (size_t)len);
}

static void start(sl_http_server_opts o)
{
    memset(&TS.cap, 0, sizeof TS.cap);
    TS.rt = rt_new(1, &TS.cap);
    o.listen = "127.0.0.1:0";
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &o), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/hold", h_hold, sizeof(hold_st), NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/mark", h_mark, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/big", h_big, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/len", h_echo_len, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/items/{id}", h_item, 0, NULL), 0);
    atomic_store(&release_hold, 0);
    atomic_store(&held_started, 0);
    atomic_store(&held_cause, -1);
    atomic_store(&marked, 0);
    srv_run(&TS);
}

/* Polls (up to 10 s) for an atomic to reach `want`: waits for the event. */
static void wait_for(atomic_int *v, int want)
{
    for (int i = 0; i < 5000 && atomic_load(v) != want; i++)
        usleep(2000);
    assert_int_equal(atomic_load(v), want);
}

/* No byte is waiting on fd now. */
static void nothing_readable(int fd)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 0), 0);
}

/* Only the scrape's own connection is left open on reactor 0. */
static void conns_back_to_one(void)
{
    wait_metric_on(TS.port, "sluice_http_connections{reactor=\"0\"} 1\n");
}

/* A request answered behind one that still runs waits for it: its answer
 * is not written before the first one's. */
static void test_answer_waits_for_running_first(void **s)
{
    (void)s;
    start((sl_http_server_opts){ 0 });
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\nGET /mark HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_for(&marked, 1);          /* the second has answered (written at once if it were first) */
    nothing_readable(fd);
    atomic_store(&release_hold, 1);
    cli_expect(fd, 200, "held");
    cli_expect(fd, 200, "marked");
    close(fd);
    srv_stop(&TS);
}

/* The client leaves while the first of its pipelined requests runs: the
 * handler is cancelled as "client disconnected", and the connection and
 * both requests (one running, one answered and never written) go. */
static void test_client_gone_while_running_ends_all(void **s)
{
    (void)s;
    start((sl_http_server_opts){ 0 });
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\nGET /mark HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_for(&held_started, 1);
    wait_for(&marked, 1);
    close(fd);
    wait_for(&held_cause, SL_CAUSE_DISCONNECT);
    conns_back_to_one();
    srv_stop(&TS);   /* ASan: nothing of the connection leaked */
}

/* Expect: 100-continue on a request the server refuses at its head (no
 * route): no interim 100, the refusal is the first answer. */
static void test_continue_refused_sends_no_100(void **s)
{
    (void)s;
    resp r;
    start((sl_http_server_opts){ 0 });
    int fd = cli_connect(TS.port);
    cli_send(fd, "POST /nowhere HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello"
                 "GET /items/next HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 404);
    cli_expect(fd, 200, "next");   /* the body was read past, not parsed as a request */
    close(fd);
    srv_stop(&TS);
}

/* Expect: 100-continue on a request behind another in the pipeline: a 100
 * must not overtake the earlier answer, so none is sent; the request is
 * served once its body comes. */
static void test_continue_not_first_sends_no_100(void **s)
{
    (void)s;
    start((sl_http_server_opts){ 0 });
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n"
                 "POST /len HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    wait_for(&held_started, 1);
    cli_send(fd, "abc");
    atomic_store(&release_hold, 1);
    cli_expect(fd, 200, "held");
    cli_expect(fd, 200, "3");
    close(fd);
    srv_stop(&TS);
}

static void release_now(void *arg)
{
    (void)arg;
    atomic_store(&release_hold, 1);
}

/* A request waiting in the admission queue when the drain begins was
 * admitted before it: it runs when a slot frees, and its answer closes
 * its connection. */
static void test_drain_serves_queued(void **s)
{
    (void)s;
    resp r;
    start((sl_http_server_opts){ .admission = SL_HTTP_ADMISSION_FIXED, .max_inflight = 1,
                                 .prestop_ms = SL_HTTP_PRESTOP_OFF });
    int a = cli_connect(TS.port), b = cli_connect(TS.port);
    cli_send(a, "GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_for(&held_started, 1);
    cli_send(b, "GET /items/queued HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_metric_on(TS.port, "sluice_http_queued{reactor=\"0\"} 1\n");
    sl_http_server_shutdown(TS.srv);
    /* the hold ends by a message to reactor 0 posted after the drain's own
     * (prestop off: sl_http_server_shutdown posts it at once) from this
     * same thread, so the reactor begins the drain first: its queue is FIFO
     * per sender. Storing release_hold here raced the drain's message (the
     * TSan build answered the queued request before the drain began, with
     * no Connection: close). */
    static sl_msg release;
    assert_int_equal(sl_reactor_post_mem(sl_runtime_reactor(TS.rt, 0), &release, release_now, NULL), 0);
    assert_int_equal(cli_read(a, &r, 5000), 200);
    assert_int_equal(cli_read(b, &r, 5000), 200);
    assert_string_equal(r.body, "queued");
    assert_true(r.closed_after);
    close(a);
    close(b);
    pthread_join(TS.th, NULL);   /* the runtime stopped by itself: nothing was left */
    sl_http_server_free(TS.srv);
    assert_int_equal(sl_runtime_free(TS.rt), 0);
}

/* The client resets the connection while most of a response is still to
 * be written: the connection and its request go, and the server serves
 * the next client. */
static void test_reset_mid_response_frees_conn(void **s)
{
    (void)s;
    start((sl_http_server_opts){ 0 });
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);   /* before connect: the window */
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)TS.port),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    cli_send(fd, "GET /big HTTP/1.1\r\nHost: t\r\n\r\n");
    char buf[16];
    struct pollfd pfd = { .fd = fd, .events = POLLIN };
    assert_int_equal(poll(&pfd, 1, 10000), 1);                /* the response has begun */
    assert_true(read(fd, buf, sizeof buf) > 0);
    assert_memory_equal(buf, "HTTP/1.1 200", 12);
    struct linger lg = { .l_onoff = 1, .l_linger = 0 };
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);                                                /* RST, megabytes unsent */
    conns_back_to_one();
    resp r;
    assert_int_equal(get(TS.port, "/items/after", &r), 200);
    assert_string_equal(r.body, "after");
    srv_stop(&TS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_answer_waits_for_running_first),
        cmocka_unit_test(test_client_gone_while_running_ends_all),
        cmocka_unit_test(test_continue_refused_sends_no_100),
        cmocka_unit_test(test_continue_not_first_sends_no_100),
        cmocka_unit_test(test_drain_serves_queued),
        cmocka_unit_test(test_reset_mid_response_frees_conn),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
