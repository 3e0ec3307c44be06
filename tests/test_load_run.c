/* test_load_run: sluice-load end to end against a sluice server in this
 * test: the achieved rate, exact counts of a known status mix and of
 * timeouts, headers sent, and the exit codes of bad runs. */
#include <stdatomic.h>
#include "load_testsrv.h"

static atomic_long n_req, n_trace, n_deadline, n_xtest;

static int ok(sl_task *t, void *arg)
{
    size_t len;
    (void)t;
    atomic_fetch_add(&n_req, 1);
    if (sl_http_req_header(arg, "traceparent", &len) && len == 55)
        atomic_fetch_add(&n_trace, 1);
    if (sl_http_req_header(arg, "grpc-timeout", &len))
        atomic_fetch_add(&n_deadline, 1);
    const char *x = sl_http_req_header(arg, "x-test", &len);
    if (x && len == 3 && !memcmp(x, "yes", 3))
        atomic_fetch_add(&n_xtest, 1);
    return sl_http_reply(arg, 200, "application/json", "{}", 2);
}

/* The answer depends on the body's seq: of every 10 requests, 6 get 200,
 * 2 get 404, 1 gets 503 and 1 is never answered (the handler sleeps
 * until the client gives up and its context is cancelled). */
static int mix(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    int rc;
    SL_BEGIN(t);
    json_t *j;
    if (sl_http_req_json(req, &j) < 0)
        SL_RETURN(t, 0);
    long seq = (long)json_integer_value(json_object_get(j, "seq"));
    json_decref(j);
    switch (seq % 10) {
    case 6: case 7:
        SL_RETURN(t, sl_http_reply_error(req, 404, "not_found", "no"));
    case 8:
        SL_RETURN(t, sl_http_reply_error(req, 503, "busy", "no"));
    case 9:
        break;
    default:
        SL_RETURN(t, sl_http_reply(req, 200, "application/json", "{}", 2));
    }
    SL_AWAIT(t, rc, sl_sleep(t, 20 * SL_NS_PER_S));
    (void)rc;
    SL_END(t);
}

static void routes(sl_http_server *s)
{
    assert_int_equal(sl_http_route(s, "GET", "/ok", ok, 0, NULL), 0);
    assert_int_equal(sl_http_route(s, "POST", "/mix", mix, 0, NULL), 0);
}

static test_srv TS;

static int setup(void **st)
{
    (void)st;
    lsrv_start(&TS, routes);
    return 0;
}

static int teardown(void **st)
{
    (void)st;
    lsrv_stop(&TS);
    return 0;
}

static json_t *series_sum_check(json_t *j)
{
    json_t *s = json_object_get(j, "series"), *e;
    size_t i;
    double sum = 0;
    assert_true(json_is_array(s));
    json_array_foreach(s, i, e) {
        assert_int_equal(jnum(e, "t"), (double)(i + 1));
        sum += jnum(e, "requests");
    }
    assert_true(sum == jnum(j, "requests"));
    return s;
}

/* Open loop at 400/s for 5 s: every scheduled request is sent and counted
 * (the schedule's 2000, less the few whose intended time falls past the
 * window's end), and the rate reported is the requests over the window -
 * or over a longer one when the generator sent its last requests late,
 * which a loaded machine makes it do (the rate achieved then is below the
 * one asked: "within 2 %" failed so at load 15; how well the generator
 * keeps time is a benchmark's figure, not this test's). */
static void rate_is_kept(void **st)
{
    (void)st;
    /* a timeout no answer reaches: the default 2 s timed some out under
     * TSan at load 32, and the claim is the rate */
    json_t *j = load_json(TS.port, "/ok",
                          (char *[]){ "--rate", "400", "--duration", "5", "--timeout", "60000", NULL });
    double rps = jnum(j, "rps"), secs = jnum(j, "duration_s"), n = jnum(j, "requests");
    assert_true(n >= 1990 && n <= 2000);
    assert_true(secs >= 5 - 1e-6);
    assert_true(rps - n / secs < 1e-6 * rps && n / secs - rps < 1e-6 * rps);
    assert_true(rps <= 400 * 1.02);
    assert_true(jnum2(j, "status", "200") == jnum(j, "requests"));
    assert_true(json_array_size(series_sum_check(j)) == 5);
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "open");
    assert_true(jnum(j, "rate") == 400);
    json_decref(j);
}

/* 400 requests (200/s for 2 s) against the mix: the counts are exact, and
 * the unanswered ones are timeouts (not a status), recorded at >= the
 * timeout. 5 s of it: with 1 s, answers that a loaded machine made later
 * counted as timeouts too (TSan at load 24: not 240 200s) */
static void exact_mix(void **st)
{
    (void)st;
    json_t *j = load_json(TS.port, "/mix", (char *[]){ "--rate", "200", "--duration", "2",
        "--timeout", "5000", "--no-deadline-header", "--body", "{\"seq\":{{seq}}}", NULL });
    assert_true(jnum(j, "requests") == 400);
    json_t *status = json_object_get(j, "status");
    assert_int_equal(json_object_size(status), 3);
    assert_true(jnum2(j, "status", "200") == 240);
    assert_true(jnum2(j, "status", "404") == 80);
    assert_true(jnum2(j, "status", "503") == 40);
    assert_true(jnum2(j, "errors", "timeout") == 40);
    assert_true(jnum2(j, "errors", "connect") == 0);
    assert_true(jnum2(j, "errors", "reset") == 0);
    assert_true(jnum2(j, "errors", "protocol") == 0);
    assert_true(jnum2(j, "latency_ms", "max") >= 5000);
    assert_string_equal(json_string_value(json_object_get(j, "method")), "POST");
    series_sum_check(j);
    json_decref(j);
}

/* Closed loop with --trace and --header: every request carries them, and
 * grpc-timeout by default. A run is 0.5 s: one that ended with nothing
 * answered (a loaded machine: the client's process and its connects took
 * the window, seen once beside two CPU hogs) is run again, at most 20
 * times: the claim is about the requests, and needs one. */
static void headers_sent(void **st)
{
    (void)st;
    json_t *j = NULL;
    int run = 0;
    for (; run < 20 && (!j || jnum(j, "requests") == 0); run++) {
        json_decref(j);
        atomic_store(&n_req, 0), atomic_store(&n_trace, 0);
        atomic_store(&n_deadline, 0), atomic_store(&n_xtest, 0);
        j = load_json(TS.port, "/ok", (char *[]){ "--connections", "2", "--duration", "0.5",
            "--trace", "--header", "X-Test: yes", NULL });
    }
    if (run > 1)
        print_message("headers_sent: %d runs of 0.5 s, for one with an answered request\n", run);
    long n = atomic_load(&n_req);
    assert_true(n > 0 && jnum(j, "requests") > 0);
    assert_true(jnum(j, "requests") <= n);
    assert_int_equal(atomic_load(&n_trace), n);
    assert_int_equal(atomic_load(&n_deadline), n);
    assert_int_equal(atomic_load(&n_xtest), n);
    assert_true(json_is_null(json_object_get(j, "rate")));
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "closed");
    json_decref(j);
}

/* A refused connection is an error of kind connect, and the run still
 * completes (exit 0). */
static void refused_is_counted(void **st)
{
    (void)st;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t sl = sizeof sa;
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &sl), 0);
    /* bound, never listening: connections to it are refused */
    json_t *j = load_json(ntohs(sa.sin_port), "/", (char *[]){ "--rate", "100", "--duration", "0.5", NULL });
    close(fd);
    assert_true(jnum(j, "requests") == 50);
    assert_true(jnum2(j, "errors", "connect") == 50);
    assert_int_equal(json_object_size(json_object_get(j, "status")), 0);
    json_decref(j);
}

static void exit_codes(void **st)
{
    (void)st;
    assert_int_equal(load_exec((char *[]){ NULL }, NULL), 2);
    assert_int_equal(load_exec((char *[]){ "http://127.0.0.1:1/", "--rate", "x", NULL }, NULL), 2);
    assert_int_equal(load_exec((char *[]){ "http://127.0.0.1:1/", "--bogus", NULL }, NULL), 2);
    assert_int_equal(load_exec((char *[]){ "http://127.0.0.1:1/", "--body", "{{nope}}", NULL }, NULL), 2);
    assert_int_equal(load_exec((char *[]){ "http://example.com/", NULL }, NULL), 1);
    assert_int_equal(load_exec((char *[]){ "ftp://127.0.0.1/", NULL }, NULL), 1);
    assert_int_equal(load_exec((char *[]){ "http://127.0.0.1:1/", "--body-file", "/nonexistent/x", NULL }, NULL), 1);
    assert_int_equal(load_exec((char *[]){ "--help", NULL }, NULL), 0);
}

int main(void)
{
    if (getenv("TEST_FILTER"))   /* one test: TEST_FILTER=headers_sent tests/test_load_run */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rate_is_kept),
        cmocka_unit_test(exact_mix),
        cmocka_unit_test(headers_sent),
        cmocka_unit_test(refused_is_counted),
        cmocka_unit_test(exit_codes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
