/* test_services_drain.c: SIGTERM on a service with work in flight
 * (issue 21 item 4). The figure: SIGTERM on order with 60 orders
 * in flight failed all 60 (order closed its idle connections and stopped
 * accepting, so payment's callbacks for those very orders could not get
 * in). Now each of them ends PAID and the books agree. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "svcutil.h"

enum { N = 60, STOCK = 1000 };

typedef struct burst {
    hjob *jobs;
} burst;

static void *run_burst(void *arg)
{
    burst *b = arg;
    http_parallel(b->jobs, N);
    return NULL;
}

static void sigterm_on_order_keeps_orders_in_flight(void **state)
{
    (void)state;
    setenv("SLUICE_PRESTOP_MS", "2000", 1);   /* the default: the harness turns it off */
    chain c;
    /* fixed admission and long budgets: all N run at once everywhere, and
     * nothing but the SIGTERM can fail them */
    chain_start(&c, &(chain_opts){ .threads = 2, .admin = true, .stock = "sku-1=1000", .order_timeout_ms = 15000,
                                   .order_args = { "--admission", "off" },
                                   .inv_args = { "--admission", "off", "--timeout-ms", "15000" },
                                   .pay_args = { "--admission", "off", "--timeout-ms", "15000" } });
    /* payment holds each charge until the test clears the fault, so all N
     * are in flight at once however slowly the burst arrives (a fixed
     * 1000 ms delay ran out before a burst at load 25 was all in) */
    assert_int_equal(fault_set(c.pay.port, "{\"hold\":true,\"path\":\"/charge\"}"), 200);
    hjob *jobs = calloc(N, sizeof *jobs);
    assert_non_null(jobs);
    for (int i = 0; i < N; i++) {
        jobs[i] = (hjob){ .port = c.order.port, .method = "POST", .path = "/orders", .timeout_ms = 20000 };
        snprintf(jobs[i].body, sizeof jobs[i].body, "{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":%d}", 100 + i);
    }
    burst b = { jobs };
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_burst, &b), 0);
    /* wait for the event: N orders in flight at order (held at payment) */
    svc_wait_inflight(c.order.port, "order", N + 1, 15000);   /* and this /metrics */
    hresp r;
    assert_int_equal(http_req(c.order.port, "GET", "/readyz", NULL, NULL, 3000, &r), 200);
    uint64_t t0 = svc_now_ms();
    kill(c.order.pid, SIGTERM);
    /* readiness fails at once; liveness holds */
    int st = 0;
    for (uint64_t end = svc_now_ms() + 5000; st != 503 && svc_now_ms() < end; poll(NULL, 0, 5))
        st = http_req(c.order.port, "GET", "/readyz", NULL, NULL, 3000, &r);
    assert_int_equal(st, 503);
    /* the held charges go on now, and their callbacks must still get in */
    assert_int_equal(fault_clear(c.pay.port), 200);
    int stst = svc_stop_status(&c.order, SVC_STOP_MS);   /* SIGTERM again: idempotent */
    uint64_t stop_ms = svc_now_ms() - t0;
    pthread_join(th, NULL);
    assert_true(WIFEXITED(stst) && WEXITSTATUS(stst) == 0);
    int paid = 0, failed = 0;
    for (int i = 0; i < N; i++) {
        if (jobs[i].r.status == 201)
            paid++;
        else
            failed++;
    }
    print_message("SIGTERM on order with %d orders in flight: %d paid, %d failed; exited %llu ms after SIGTERM\n",
                  N, paid, failed, (unsigned long long)stop_ms);
    assert_int_equal(failed, 0);
    /* order is gone; its books are read from the others: every charge
     * CHARGED, the stock taken exactly once per order */
    for (int i = 0; i < N; i++) {
        char id[64], cs[32];
        long amount = 0;
        assert_true(jstr(&jobs[i].r, "order_id", id, sizeof id));
        charge_status(c.pay.port, id, cs, sizeof cs, &amount);
        assert_string_equal(cs, "CHARGED");
        assert_int_equal(amount, 100 + i);
    }
    assert_int_equal(stock_of(c.inv.port, "sku-1"), STOCK - N);
    free(jobs);
    svc_stop(&c.inv);
    svc_stop(&c.pay);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(sigterm_on_order_keeps_orders_in_flight, svc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
