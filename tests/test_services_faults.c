/* test_services_faults.c: the safe chain under injected faults (hang,
 * errors, delay, reset), its drain on SIGTERM, and the invariant after a
 * burst with a fault in the middle. */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "sl_wire.h"
#include "svcutil.h"

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* How long a poll below waits for what must happen before it says it did
 * not. A bound, not an expectation: each returns as soon as it sees the
 * value (tens of milliseconds here), and 3 s was short for an ASan build
 * on a loaded CI machine. */
#define SETTLE_MS 30000

/* Polls until stock_of(item) == want; fails after the bound. */
static void stock_settles(const chain *c, const char *item, long want)
{
    long n;
    uint64_t end = svc_now_ms() + SETTLE_MS;
    while ((n = stock_of(c->inv.port, item)) != want && svc_now_ms() < end)
        poll(NULL, 0, 10);
    if (n != want)
        fail_msg("stock of %s is %ld, want %ld (%d s after the order ended)", item, n, want, SETTLE_MS / 1000);
}

/* Polls until f(port) reaches at least `want` (at most SETTLE_MS); returns
 * the last value. */
static double reaches(double (*f)(int), int port, double want)
{
    double v;
    uint64_t end = svc_now_ms() + SETTLE_MS;
    while ((v = f(port)) < want && svc_now_ms() < end)
        poll(NULL, 0, 10);
    return v;
}

/* Inventory's /reserve requests that ended, by cancellation of their
 * context or by a 504 of their own: with the budget passed down less a
 * margin at each hop, the innermost callee's deadline fires first, and a
 * caller whose call was cut answers 504 just before its own deadline. */
static double reserve_cut(int port)
{
    return svc_ctx_cancelled(port) +
           svc_metric(port, "sluice_http_requests_total", "route=\"/reserve\",status=\"504\"", NULL);
}

/* Status mismatches of failed orders are collected and reported at the end
 * of the test, so that the checks of state after them still run. */
static char deferred[2048];

static void defer_status(const hresp *r, int status, const char *code)
{
    char got[64] = "";
    jstr(r, "error", got, sizeof got);
    if (r->status == status && !strcmp(got, code))
        return;
    size_t n = strlen(deferred);
    snprintf(deferred + n, sizeof deferred - n, "\n  %d %s, want %d %s", r->status, got, status, code);
}

static void deferred_check(void)
{
    if (deferred[0])
        fail_msg("failed orders answered with the wrong status:%s", deferred);
}

/* An order that fails with `status`/`code`, after which the services agree
 * it FAILED and the stock is back. */
static void expect_failed_order(const chain *c, int status, const char *code, long stock, hresp *r)
{
    char id[64];
    order_post(c->order.port, "sku-1", 1, 400, id, r);
    if (!id[0])
        fail_msg("failed order without an order_id: %d %.200s", r->status, r->body);
    assert_false(order_check(c, id, 400));   /* the state first: it matters most */
    stock_settles(c, "sku-1", stock);
    defer_status(r, status, code);
}

static void expect_paid(const chain *c, long amount)
{
    hresp r;
    char id[64];
    order_post(c->order.port, "sku-1", 1, amount, id, &r);
    expect_status(&r, 201, NULL);
    assert_true(order_check(c, id, amount));
}

/* ---- 4. payment hangs: 504 within the budget, everything cancelled and given back ---- */

/* The 504 says why and where (issue 20): a well-formed sluice-cause naming
 * one of the three hops, a deadline as the cause (the caller's when every
 * hop was called with a grpc-timeout), and the message says the same.
 * Which hop's timer fires first is the machine's business (the budget
 * shrinks by a 5 ms margin per hop): the deterministic case is test_client's. */
static void expect_cause_504(const hresp *r, bool callers_only)
{
    const char *h = strstr(r->head, "\r\nsluice-cause: ");   /* as sluice writes it */
    if (!h)
        fail_msg("a 504 without sluice-cause: %.400s", r->head);
    h += strlen("\r\nsluice-cause: ");
    sl_cause_info ci;
    assert_int_equal(sl_cause_hdr_parse(h, strcspn(h, "\r"), &ci), 0);
    if (ci.cause != SL_WC_CALLER_DEADLINE && (callers_only || ci.cause != SL_WC_DEADLINE))
        fail_msg("cause %s", sl_wire_cause_name(ci.cause));
    if (strcmp(ci.hop, "payment-svc") && strcmp(ci.hop, "inventory-svc") && strcmp(ci.hop, "order-svc"))
        fail_msg("hop %s", ci.hop);
    assert_true(ci.left_ms >= 0 && ci.left_ms <= 500);
    assert_non_null(strstr(r->body, "(cause: "));
}

static void hang_answers_504_within_budget(void **state)
{
    (void)state;
    /* MARGIN tells a budget that holds from one that does not, not how
     * punctual the machine is: inventory and payment run with budgets of
     * their own of 20 s (the client's timeout too), so with order's 500 ms
     * not passed down the hang lasts 20 s, and the only deadline that can
     * end it sooner is the one under test. The 504's cause (a deadline, the
     * caller's where one was sent) says which fired. At load average 20 the
     * ASan build took 569 ms once, at load 40 a median of 1,050-1,180 ms
     * beside four helpers' builds (MARGIN was 400). How late answers are is
     * measured by make bench, not here. */
    enum { BUDGET = 500, MARGIN = 4500, N = 3 };
    chain c;
    chain_start(&c, &(chain_opts){ .order_timeout_ms = BUDGET, .admin = true, .stock = "sku-1=50",
                                   .inv_args = { "--timeout-ms", "20000", NULL },
                                   .pay_args = { "--timeout-ms", "20000", NULL } });
    /* on /charge only: compensation (/void) and the checks (/charges) still work */
    assert_int_equal(fault_set(c.pay.port, "{\"hang\":true,\"path\":\"/charge\"}"), 200);
    uint64_t ms[N];
    for (int i = 0; i < N; i++) {
        double inv0 = reserve_cut(c.inv.port), pay0 = svc_ctx_cancelled(c.pay.port);
        assert_true(inv0 >= 0 && pay0 >= 0);
        hresp r;
        expect_failed_order(&c, 504, "deadline_exceeded", 50, &r);
        expect_cause_504(&r, false);
        ms[i] = r.ms;
        if (r.ms < BUDGET - 100)
            fail_msg("504 after %llu ms, before the budget of %d ms ran out", (unsigned long long)r.ms, BUDGET);
        /* payment's hanging request was cancelled (deadline or disconnect);
         * inventory's was cancelled or cut short with a 504 */
        double inv1 = reaches(reserve_cut, c.inv.port, inv0 + 1);
        double pay1 = reaches(svc_ctx_cancelled, c.pay.port, pay0 + 1);
        if (inv1 < inv0 + 1 || pay1 < pay0 + 1)
            fail_msg("requests cut: inventory %g -> %g, payment (cancelled contexts) %g -> %g; want +1 each", inv0,
                     inv1, pay0, pay1);
    }
    qsort(ms, N, sizeof *ms, cmp_u64);
    print_message("hang: 504 after %llu ms (median of %d, budget %d ms)\n", (unsigned long long)ms[N / 2], N, BUDGET);
    if (ms[N / 2] > BUDGET + MARGIN)
        fail_msg("504 after %llu ms (median of %d), want <= budget %d + %d ms", (unsigned long long)ms[N / 2], N,
                 BUDGET, MARGIN);
    /* a caller's grpc-timeout shortens the budget, and cannot lengthen it */
    for (int i = 0; i < N; i++) {
        hresp r;
        http_req(c.order.port, "POST", "/orders", "{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":1}",
                 "grpc-timeout: 200m\r\n", 20000, &r);
        expect_status(&r, 504, NULL);
        expect_cause_504(&r, true);
        ms[i] = r.ms;
    }
    qsort(ms, N, sizeof *ms, cmp_u64);
    print_message("hang: 504 after %llu ms with grpc-timeout 200m\n", (unsigned long long)ms[N / 2]);
    if (ms[N / 2] > 200 + MARGIN)
        fail_msg("504 after %llu ms (median of %d) with grpc-timeout 200m", (unsigned long long)ms[N / 2], N);
    hresp r;
    http_req(c.order.port, "POST", "/orders", "{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":1}",
             "grpc-timeout: 10S\r\n", 20000, &r);
    expect_status(&r, 504, NULL);
    if (r.ms >= 5000)   /* one sample: a loose bound, far below the 10 s asked */
        fail_msg("grpc-timeout 10S lengthened the 500 ms budget: 504 after %llu ms", (unsigned long long)r.ms);
    stock_settles(&c, "sku-1", 50);

    assert_int_equal(fault_clear(c.pay.port), 200);
    /* The fault cleared, an order is PAID. Its 500 ms budget is tight for
     * the whole chain on a loaded machine (the ASan build at load average
     * 30 answered a deadline's 504 once): such an order must end FAILED
     * with its stock back, like any, and the next is tried; 5 at most. */
    for (int i = 0;; i++) {
        char id[64];
        order_post(c.order.port, "sku-1", 1, 400, id, &r);
        if (r.status == 201) {
            assert_true(order_check(&c, id, 400));
            break;
        }
        expect_status(&r, 504, "deadline_exceeded");
        assert_false(order_check(&c, id, 400));
        stock_settles(&c, "sku-1", 50);
        if (i == 4)
            fail_msg("5 orders in a row ran out of their 500 ms budget with no fault");
    }
    stock_settles(&c, "sku-1", 49);
    chain_end(&c);
    deferred_check();
}

/* ---- 7. the admin endpoints and the other faults -------------------------------------- */

/* An order whose own budget ends while its own row is being written (a
 * slow disk: the store made slower than the budget) is answered 504 with
 * its id, like every failure of an order that may exist, and ends FAILED
 * (or never recorded): the server's generic 504 carried no id (seen under
 * ASan in CI, when the settle's commit outlasted the budget). No release
 * is posted for it: its reserve never left (the FAILED step posted one,
 * which inventory answered 404 and tombstoned: under overload, thousands
 * of them competed with the reserves for the pool, issue 14). */
static void budget_ends_in_own_step_keeps_id(void **state)
{
    (void)state;
    chain c;
    setenv("SVC_TEST_STORE_DELAY_MS", "400", 1);   /* every commit of the three takes 400 ms */
    chain_start(&c, &(chain_opts){ .order_timeout_ms = 150, .stock = "sku-1=5" });
    unsetenv("SVC_TEST_STORE_DELAY_MS");
    hresp r;
    char id[64];
    int base = svc_task_count(c.order.port);
    assert_true(base > 0);
    order_post(c.order.port, "sku-1", 1, 400, id, &r);
    expect_status(&r, 504, "deadline_exceeded");
    if (!id[0])
        fail_msg("504 without an order_id: %.200s", r.body);
    assert_false(order_check(&c, id, 400));   /* FAILED or never recorded, never PAID */
    /* the detached settle's task ends after it decided about the release */
    assert_true(svc_tasks_settle(c.order.port, base, 10000) <= base);
    assert_int_equal(svc_undo_counter(c.order.port, "posted"), 0);
    stock_settles(&c, "sku-1", 5);
    chain_end(&c);
}

static void admin_rejects_bad_faults(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "nope", "[1]", "{\"delay_ms\":\"10\"}", "{\"delay_ms\":-1}", "{\"hang\":1}",
        "{\"error_rate\":1.5}", "{\"error_rate\":-0.1}", "{\"error_rate\":\"all\"}", "{\"reset\":\"yes\"}",
        "{\"path\":5,\"hang\":true}",
    };
    chain c;
    chain_start(&c, &(chain_opts){ .admin = true });
    const svc *all[] = { &c.order, &c.inv, &c.pay };
    for (int s = 0; s < 3; s++)
        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
            hresp r;
            http_req(all[s]->port, "POST", "/admin/fault", bad[i], NULL, 3000, &r);
            if (r.status != 400)
                fail_msg("%s: POST /admin/fault %s: %d, want 400", all[s]->name, bad[i], r.status);
            expect_status(&r, 400, "bad_request");
        }
    expect_paid(&c, 1);   /* none of them took effect */
    chain_end(&c);
}

static void injected_errors_fail_cleanly(void **state)
{
    (void)state;
    chain c;
    /* budgets of 20 s: the claim is the statuses, not the time (the
     * default 2 s ran out at load 35: 504 where 502 upstream_failed) */
    chain_start(&c, &(chain_opts){ .admin = true, .stock = "sku-1=20", .order_timeout_ms = 20000,
                                   .inv_args = { "--timeout-ms", "20000", NULL },
                                   .pay_args = { "--timeout-ms", "20000", NULL } });
    hresp r;

    /* payment answers 500 injected_fault everywhere but admin, health, metrics, debug */
    assert_int_equal(fault_set(c.pay.port, "{\"error_rate\":1.0}"), 200);
    http_req(c.pay.port, "POST", "/charge", "{\"order_id\":\"x1\",\"amount_cents\":1}", NULL, 3000, &r);
    expect_status(&r, 500, "injected_fault");
    http_req(c.pay.port, "GET", "/charges/x1", NULL, NULL, 3000, &r);
    expect_status(&r, 500, "injected_fault");
    expect_status((http_req(c.pay.port, "GET", "/healthz", NULL, NULL, 3000, &r), &r), 200, NULL);
    assert_true(svc_metric(c.pay.port, "sluice_tasks", NULL, NULL) > 0);   /* metrics exempt too */
    assert_true(svc_task_count(c.pay.port) > 0);                            /* and debug */
    assert_int_equal(fault_clear(c.pay.port), 200);

    /* the same on /charge only, so that the checks can read payment: the order fails cleanly */
    assert_int_equal(fault_set(c.pay.port, "{\"error_rate\":1.0,\"path\":\"/charge\"}"), 200);
    expect_failed_order(&c, 502, "upstream_failed", 20, &r);
    char id[64], body[160];
    assert_true(jstr(&r, "order_id", id, sizeof id));
    snprintf(body, sizeof body, "{\"order_id\":\"%s\"}", id);
    for (int i = 0; i < 2; i++) {   /* given back already; releasing again changes nothing */
        hresp rr;
        http_req(c.inv.port, "POST", "/release", body, NULL, 3000, &rr);
        expect_status(&rr, 200, NULL);
        stock_settles(&c, "sku-1", 20);
    }
    assert_int_equal(fault_clear(c.pay.port), 200);
    expect_paid(&c, 10);

    /* inventory fails /reserve: nothing was reserved; the 502 says who said what */
    assert_int_equal(fault_set(c.inv.port, "{\"error_rate\":1.0,\"path\":\"/reserve\"}"), 200);
    expect_failed_order(&c, 502, "upstream_failed", 19, &r);
    char msg[256] = "";
    jstr(&r, "message", msg, sizeof msg);
    if (!strstr(msg, "inventory answered 500 injected_fault"))
        fail_msg("the 502's message does not name inventory's 500 injected_fault: \"%s\"", msg);
    assert_int_equal(fault_clear(c.inv.port), 200);

    /* limited to one path: /void failing does not touch /charge */
    assert_int_equal(fault_set(c.pay.port, "{\"error_rate\":1.0,\"path\":\"/void\"}"), 200);
    expect_paid(&c, 11);
    assert_int_equal(fault_clear(c.pay.port), 200);

    /* reset: inventory sees its connection to payment reset; order answers 502 */
    assert_int_equal(fault_set(c.pay.port, "{\"reset\":true,\"path\":\"/charge\"}"), 200);
    http_req(c.pay.port, "POST", "/charge", "{\"order_id\":\"x2\",\"amount_cents\":1}", NULL, 3000, &r);
    assert_int_equal(r.status, HTTP_CLOSED);
    expect_failed_order(&c, 502, "upstream_failed", 18, &r);
    jstr(&r, "message", msg, sizeof msg);   /* inventory's 502 for payment's reset, named */
    if (!strstr(msg, "inventory answered 502 upstream_failed") || !strstr(msg, "payment"))
        fail_msg("the 502's message does not say inventory's 502 and payment's reset: \"%s\"", msg);
    assert_true(svc_metric(c.inv.port, "sluice_upstream_calls_total", "upstream=\"payment\",result=\"reset\"", NULL) >= 1);
    assert_int_equal(fault_clear(c.pay.port), 200);
    expect_paid(&c, 12);
    assert_int_equal(stock_of(c.inv.port, "sku-1"), 17);
    chain_end(&c);
    deferred_check();
}

static void delay_adds_latency(void **state)
{
    (void)state;
    enum { DELAY = 300 };
    chain c;
    chain_start(&c, &(chain_opts){ .admin = true });
    hresp r;
    char id[64];
    assert_int_equal(fault_set(c.inv.port, "{\"delay_ms\":300}"), 200);
    order_post(c.order.port, "sku-1", 1, 5, id, &r);
    expect_status(&r, 201, NULL);
    if (r.ms < DELAY)
        fail_msg("order with a %d ms delay at inventory answered after %llu ms", DELAY, (unsigned long long)r.ms);
    assert_true(order_check(&c, id, 5));
    /* admin and health are never delayed: answered well before the delay */
    http_req(c.inv.port, "GET", "/healthz", NULL, NULL, DELAY - 50, &r);
    expect_status(&r, 200, NULL);
    assert_int_equal(fault_clear(c.inv.port), 200);
    chain_end(&c);
}

/* ---- 7c. no inventory at all: 502 naming it, and the order FAILED ------------------- */

static void refused_upstream_is_502(void **state)
{
    (void)state;
    int rfd, port = svc_port_reserve(&rfd);   /* bound, never listening: connections are refused */
    char url[64], id[64], msg[256] = "", path[96], st[16];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    const char *args[] = { "--listen", "127.0.0.1:0", "--threads", "1", "--inventory", url, NULL };
    svc order;
    assert_int_equal(svc_start(&order, "order", args), 0);
    hresp r;
    order_post(order.port, "sku-1", 1, 5, id, &r);
    expect_status(&r, 502, "upstream_failed");
    assert_true(id[0]);
    jstr(&r, "message", msg, sizeof msg);
    if (!strstr(msg, "inventory") || !strstr(msg, "refused"))
        fail_msg("the 502 does not say that inventory refused the connection: \"%s\"", msg);
    order_status(order.port, id, st, sizeof st);
    assert_string_equal(st, "FAILED");
    snprintf(path, sizeof path, "/orders/%s", id);   /* still serving */
    expect_status((http_req(order.port, "GET", path, NULL, NULL, 3000, &r), &r), 200, NULL);
    /* no byte of the reserve left: inventory never saw it, so no release
     * is posted (one would be retried until an inventory answered it 404:
     * wasted work at the worst time, issue 14). Posted before the answer. */
    long posted = svc_undo_counter(order.port, "posted");
    if (posted != 0)
        fail_msg("order-svc posted %ld releases for a reserve that never left it", posted);
    svc_stop(&order);
    close(rfd);
}

/* ---- 9. SIGTERM drains ---------------------------------------------------------------- */

static void sigterm_drains_in_flight(void **state)
{
    (void)state;
    chain c;
    chain_start(&c, &(chain_opts){ .admin = true });
    assert_int_equal(fault_set(c.pay.port, "{\"delay_ms\":800,\"path\":\"/charge\"}"), 200);
    pthread_t th;
    bg_order *b = order_post_bg(c.order.port, 1, 77, &th);
    /* In flight at inventory (the order's /reserve, and this /metrics
     * request itself). Inventory, not order, is stopped: the chain's
     * callback needs a new connection to order, which a draining order
     * no longer accepts. */
    svc_wait_inflight(c.inv.port, "inventory", 2, 10000);
    uint64_t t0 = svc_now_ms();
    int st = svc_stop_status(&c.inv, SVC_STOP_MS);
    uint64_t stop_ms = svc_now_ms() - t0;
    pthread_join(th, NULL);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    print_message("drain: inventory exited %llu ms after SIGTERM\n", (unsigned long long)stop_ms);
    assert_true(order_check(&c, b->id, 77));
    expect_status(&b->r, 201, NULL);   /* answered before inventory exited */
    free(b);
    /* and a new connection is not served any more */
    hresp r;
    assert_true(http_req(c.inv.port, "GET", "/healthz", NULL, NULL, 1000, &r) <= 0);
    svc_stop(&c.order);
    svc_stop(&c.pay);
}

/* ---- 12. the invariant after a burst with a fault in the middle ----------------------- */

static void burst_keeps_the_invariant(void **state)
{
    (void)state;
    enum { N = 50, ITEMS = 3, STOCK = 1000 };
    chain c;
    /* budgets of 10 s: the claim is that an injected error fails its order
     * with 502, not the time (at load 30 two ran out of the default 2 s
     * first: 504) */
    chain_start(&c, &(chain_opts){ .threads = 2, .admin = true, .stock = "sku-1=1000,sku-2=1000,sku-3=1000",
                                   .order_timeout_ms = 10000, .inv_args = { "--timeout-ms", "10000", NULL },
                                   .pay_args = { "--timeout-ms", "10000", NULL } });
    hjob *jobs = calloc(N, sizeof *jobs);
    assert_non_null(jobs);
    for (int i = 0; i < N; i++) {
        jobs[i] = (hjob){ .port = c.order.port, .method = "POST", .path = "/orders", .timeout_ms = 20000 };
        snprintf(jobs[i].body, sizeof jobs[i].body, "{\"item\":\"sku-%d\",\"qty\":%d,\"amount_cents\":%d}",
                 1 + i % ITEMS, 1 + i % 4, 100 + i);
    }
    /* the first half runs while the fault is set, the second after it is cleared */
    assert_int_equal(fault_set(c.pay.port, "{\"error_rate\":0.5,\"path\":\"/charge\"}"), 200);
    http_parallel(jobs, N / 2);
    assert_int_equal(fault_clear(c.pay.port), 200);
    http_parallel(jobs + N / 2, N - N / 2);
    long taken[ITEMS + 1] = { 0 };
    int paid = 0, failed = 0;
    for (int i = 0; i < N; i++) {   /* the invariant first; the statuses below */
        char id[64];
        if (!jstr(&jobs[i].r, "order_id", id, sizeof id))
            fail_msg("order %d: %d without an order_id: %.200s", i, jobs[i].r.status, jobs[i].r.body);
        bool ok = order_check(&c, id, 100 + i);
        assert_int_equal(ok, jobs[i].r.status == 201);
        if (ok) {
            taken[1 + i % ITEMS] += 1 + i % 4;
            paid++;
        } else {
            failed++;
        }
    }
    print_message("burst: %d paid, %d failed\n", paid, failed);
    assert_true(paid >= N / 2);   /* the whole second half */
    for (int k = 1; k <= ITEMS; k++) {
        char item[8];
        snprintf(item, sizeof item, "sku-%d", k);
        stock_settles(&c, item, STOCK - taken[k]);
    }
    for (int i = 0; i < N; i++)
        if (jobs[i].r.status != 201)
            defer_status(&jobs[i].r, 502, "upstream_failed");   /* the injected 500 at payment */
    free(jobs);
    chain_end(&c);
    deferred_check();
}

static int setup(void **state)
{
    (void)state;
    deferred[0] = '\0';
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(hang_answers_504_within_budget, setup, svc_teardown),
        cmocka_unit_test_setup_teardown(budget_ends_in_own_step_keeps_id, setup, svc_teardown),
        cmocka_unit_test_setup_teardown(admin_rejects_bad_faults, setup, svc_teardown),
        cmocka_unit_test_setup_teardown(injected_errors_fail_cleanly, setup, svc_teardown),
        cmocka_unit_test_setup_teardown(delay_adds_latency, setup, svc_teardown),
        cmocka_unit_test_setup_teardown(refused_upstream_is_502, setup, svc_teardown),
        cmocka_unit_test_setup_teardown(sigterm_drains_in_flight, setup, svc_teardown),
        cmocka_unit_test_setup_teardown(burst_keeps_the_invariant, setup, svc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
