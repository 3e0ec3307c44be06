/* test_load_stall: coordinated omission, shown and corrected.
 *
 * The server answers at once, except that 2 s after the run's first
 * request it stalls for 1 s: every request that arrives in that second is
 * held until the second ends.
 *
 * Open loop, 1,000 requests/s for 5 s: about 1,000 of the 5,000 requests
 * were due during the stall, and each waited from its due time until the
 * stall ended: latencies spread evenly from ~1 s down to ~0, so 20% of
 * the requests are slow and p99 is close to 1 s. We assert p99 >= 500 ms.
 *
 * Closed loop, 10 connections for 5 s: during the stall the 10
 * connections each wait for one answer and send nothing else, so only 10
 * requests (a handful out of thousands) see the stall. p99 hides it (it
 * stays far below 500 ms: we assert < 250 ms) and only max shows it
 * (>= 500 ms). That is the coordinated omission a closed-loop tool makes:
 * the server's bad second is nearly invisible in its percentiles. */
#include <stdatomic.h>
#include "load_testsrv.h"

#define STALL_AFTER_NS (2 * SL_NS_PER_S)
#define STALL_NS (1 * SL_NS_PER_S)

static _Atomic uint64_t first_req;

static int stall(sl_task *t, void *arg)
{
    int rc;
    SL_BEGIN(t);
    uint64_t now = sl_now_ns(), zero = 0;
    atomic_compare_exchange_strong(&first_req, &zero, now);
    uint64_t from = atomic_load(&first_req) + STALL_AFTER_NS;
    if (now >= from && now < from + STALL_NS) {
        SL_AWAIT(t, rc, sl_sleep_until(t, atomic_load(&first_req) + STALL_AFTER_NS + STALL_NS));
        (void)rc;
    }
    SL_RETURN(t, sl_http_reply(arg, 200, "application/json", "{}", 2));
    SL_END(t);
}

static void routes(sl_http_server *s)
{
    assert_int_equal(sl_http_route(s, "GET", "/stall", stall, 0, NULL), 0);
}

/* args, then a per-request timeout no answer reaches: the held requests
 * wait up to the stall's second, and a loaded machine adds to that (the
 * default 2 s timed some out at load 22, under TSan and without) */
static json_t *run(char *const *args)
{
    test_srv ts;
    atomic_store(&first_req, 0);
    lsrv_start(&ts, routes);
    json_t *j = load_json(ts.port, "/stall", args);
    lsrv_stop(&ts);
    assert_true(jnum2(j, "errors", "timeout") == 0);
    assert_true(jnum2(j, "status", "200") == jnum(j, "requests"));
    return j;
}

static void open_loop_sees_the_stall(void **st)
{
    (void)st;
    json_t *j = run((char *[]){ "--rate", "1000", "--duration", "5", "--timeout", "60000", NULL });
    double p99 = jnum2(j, "latency_ms", "p99"), p90 = jnum2(j, "latency_ms", "p90");
    /* the schedule's count, on any machine: sluice-load sends every request
     * due before the end, late if it must (before, the requests whose
     * timer had not fired when the run's end woke first were never sent:
     * fewer than 5,000 on a loaded machine) */
    assert_true(jnum(j, "requests") == 5000);
    assert_true(p99 >= 500);
    assert_true(p90 >= 100);     /* 20% of the requests were due in the stall */
    assert_true(jnum2(j, "latency_ms", "max") >= 900);
    /* the requests held by the stall waited for connections: reported */
    assert_true(jnum(j, "behind_schedule") > 0);
    json_decref(j);
}

static void closed_loop_hides_it(void **st)
{
    (void)st;
    json_t *j = run((char *[]){ "--connections", "10", "--duration", "5", "--timeout", "60000", NULL });
    double p99 = jnum2(j, "latency_ms", "p99");
    /* at most 10 requests (one a connection) see the stall: p99 hides them
     * once over 1,000 were made. A machine too loaded for 2,000 in the
     * 5 s (TSan at load 35) leaves p99 unasked */
    if (jnum(j, "requests") > 2000)
        assert_true(p99 < 250);
    else
        print_message("closed loop: %.0f requests, p99 %.0f ms: a loaded machine\n", jnum(j, "requests"), p99);
    assert_true(jnum2(j, "latency_ms", "max") >= 500);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(open_loop_sees_the_stall),
        cmocka_unit_test(closed_loop_hides_it),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
