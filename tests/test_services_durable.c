/* test_services_durable: the demo chain's state on disk (issue 16).
 *
 *  1. a data directory that cannot be used (a file where the directory
 *     should be, a path under a regular file, a corrupt database) is one
 *     line on stderr and exit 1, for each service;
 *  2. an order left PENDING by a crash of order-svc is FAILED and released
 *     at the restart, and the three services agree;
 *  3. a release decided but not acknowledged when order-svc crashed (its
 *     outbox row) is resumed at the restart;
 *  4. kill -9 of each service in turn in the middle of a stream of
 *     orders, a restart on the same port and data directory, and the
 *     ledger walk finds every order's three records agreeing and the stock
 *     conserved exactly;
 *  5. a paid order costs order-svc two transactions, not three: the settle
 *     is skipped when the callback on the same reactor committed PAID.
 * No fixed waits: every wait polls for its event within a bound. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "svcutil.h"

/* ---- 1. a data directory that cannot be used ---------------------------------------------- */

static void one_line_exit_1(const char *prog, const char *data, const char *want)
{
    char err[1024];
    const char *args[] = { "--listen", "127.0.0.1:0", "--data", data, NULL };
    int code = svc_run_usage(prog, args, err, sizeof err);
    if (code != 1 || !strstr(err, want) || strchr(err, '\n') != err + strlen(err) - 1)
        fail_msg("%s --data %s: exit %d, stderr \"%s\" (want exit 1 and one line with \"%s\")", prog, data, code, err,
                 want);
}

static void bad_data_dir_is_one_line_and_exit_1(void **state)
{
    (void)state;
    char dir[256], file[300], under[320], db[320];
    svc_tmpdir(dir, sizeof dir, "durable-bad");
    snprintf(file, sizeof file, "%s/a-file", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fputs("not a directory\n", f);
    fclose(f);
    snprintf(under, sizeof under, "%s/sub", file);   /* root ignores permissions, not ENOTDIR */
    const char *progs[] = { "order", "inventory", "payment" };
    const char *dbs[] = { "order-svc.db", "inventory-svc.db", "payment-svc.db" };
    for (int i = 0; i < 3; i++) {
        one_line_exit_1(progs[i], file, "not a directory");
        one_line_exit_1(progs[i], under, "cannot create");
        /* a corrupt database: a file of garbage where the database is */
        snprintf(db, sizeof db, "%s/%s", dir, dbs[i]);
        f = fopen(db, "w");
        assert_non_null(f);
        for (int k = 0; k < 512; k++)
            fputs("garbage, not SQLite ", f);
        fclose(f);
        one_line_exit_1(progs[i], dir, "not a database");
    }
    svc_rm_rf(dir);
}

/* A data directory a running service holds: a second process refuses it
 * in one line and exit 1 (after the store's busy timeout, 5 s), and the
 * first goes on serving with its books intact. The store takes the
 * database for its process alone (svc_walvfs.h, issue 14: no fcntl lock
 * per transaction); before, a second order-svc on the same directory
 * started and both wrote one database. */
static void data_dir_in_use_is_refused(void **state)
{
    (void)state;
    char od[256];
    svc_tmpdir(od, sizeof od, "durable-inuse");
    chain c;
    /* budgets of 20 s: the claim is the directory's lock (the default 2 s
     * ran out at load 34: 504 waiting for payment) */
    chain_opts o = { .stock = "sku-1=1000", .order_args = { "--data", od, NULL }, .order_timeout_ms = 20000,
                     .inv_args = { "--timeout-ms", "20000", NULL }, .pay_args = { "--timeout-ms", "20000", NULL } };
    chain_start(&c, &o);
    char id[64];
    hresp r;
    order_post(c.order.port, "sku-1", 1, 100, id, &r);
    expect_status(&r, 201, NULL);
    one_line_exit_1("order", od, "database is locked: another process has it open");
    order_post(c.order.port, "sku-1", 1, 100, id, &r);
    expect_status(&r, 201, NULL);
    assert_true(order_check(&c, id, 100));
    chain_stop(&c);
    svc_rm_rf(od);
}

/* ---- 2. an order left PENDING by a crash ---------------------------------------------------- */

static void pending_order_is_resolved_at_restart(void **state)
{
    (void)state;
    char od[256], id[64], s[16];
    long amount = -1;
    svc_tmpdir(od, sizeof od, "durable-pending");
    chain_opts o = { .admin = true, .stock = "sku-1=1000", .order_args = { "--data", od, NULL } };
    chain c;
    chain_start(&c, &o);
    /* the charge hangs: the order is PENDING, its stock RESERVED */
    assert_int_equal(fault_set(c.pay.port, "{\"hang\":true,\"path\":\"/charge\"}"), 200);
    pthread_t th;
    bg_order *b = order_post_bg(c.order.port, 5, 250, &th);
    hresp *r = malloc(sizeof *r);
    assert_non_null(r);
    id[0] = '\0';
    for (uint64_t end = svc_now_ms() + 5000; !id[0] && svc_now_ms() < end; poll(NULL, 0, 10))
        if (http_req(c.order.port, "GET", "/orders?status=PENDING", NULL, NULL, 3000, r) == 200) {
            json_t *doc = json_loadb(r->body, r->len, 0, NULL);
            json_t *first = json_array_get(json_object_get(doc, "orders"), 0);
            if (first)
                snprintf(id, sizeof id, "%s", json_string_value(json_object_get(first, "order_id")));
            json_decref(doc);
        }
    assert_true(id[0] != '\0');
    for (uint64_t end = svc_now_ms() + 5000; svc_now_ms() < end; poll(NULL, 0, 10)) {
        resv_status(c.inv.port, id, s, sizeof s);
        if (!strcmp(s, "RESERVED"))
            break;
    }
    assert_string_equal(s, "RESERVED");
    assert_int_equal(stock_of(c.inv.port, "sku-1"), 1000 - 5);
    svc_kill9(&c.order);   /* the crash, the order PENDING on disk */
    pthread_join(th, NULL);
    assert_true(b->r.status != 201);
    free(b);
    assert_int_equal(fault_clear(c.pay.port), 200);
    chain_restart(&c, &c.order, &o);
    /* at start: FAILED, and its release posted (the stock comes back) */
    order_status(c.order.port, id, s, sizeof s);
    assert_string_equal(s, "FAILED");
    svc_undo_settles(c.order.port, "order", 15000);
    svc_undo_settles(c.inv.port, "inventory", 15000);
    resv_status(c.inv.port, id, s, sizeof s);
    assert_string_equal(s, "RELEASED");
    assert_int_equal(stock_of(c.inv.port, "sku-1"), 1000);
    /* the hung charge, released by the fault's end, is voided or refused */
    for (uint64_t end = svc_now_ms() + 10000; svc_now_ms() < end; poll(NULL, 0, 20)) {
        charge_status(c.pay.port, id, s, sizeof s, &amount);
        if (strcmp(s, "CHARGED") != 0)
            break;
    }
    assert_string_not_equal(s, "CHARGED");
    free(r);
    chain_stop(&c);
    svc_rm_rf(od);
}

/* ---- 3. the outbox resumed after a crash ------------------------------------------------------ */

static void outbox_is_resumed_after_restart(void **state)
{
    (void)state;
    char od[256], id[64], s[16];
    svc_tmpdir(od, sizeof od, "durable-outbox");
    chain_opts o = { .admin = true, .stock = "sku-1=1000", .order_args = { "--data", od, NULL } };
    chain c;
    chain_start(&c, &o);
    /* the charge fails (the order FAILED, a release posted), and every
     * release is refused: it stays in order's outbox */
    assert_int_equal(fault_set(c.pay.port, "{\"error_rate\":1,\"path\":\"/charge\"}"), 200);
    assert_int_equal(fault_set(c.inv.port, "{\"error_rate\":1,\"path\":\"/release\"}"), 200);
    hresp *r = malloc(sizeof *r);
    assert_non_null(r);
    order_post(c.order.port, "sku-1", 3, 100, id, r);
    assert_true(r->status == 502 && id[0]);
    order_status(c.order.port, id, s, sizeof s);
    assert_string_equal(s, "FAILED");
    long attempts = 0;
    for (uint64_t end = svc_now_ms() + 5000; attempts < 1 && svc_now_ms() < end; poll(NULL, 0, 10))
        attempts = svc_undo_counter(c.order.port, "attempts");
    assert_true(attempts >= 1);   /* tried, refused, pending */
    assert_int_equal(svc_undo_counter(c.order.port, "pending"), 1);
    svc_kill9(&c.order);
    assert_int_equal(fault_clear(c.inv.port), 200);
    assert_int_equal(fault_clear(c.pay.port), 200);
    chain_restart(&c, &c.order, &o);
    svc_undo_settles(c.order.port, "order", 15000);
    assert_int_equal(svc_undo_counter(c.order.port, "completed"), 1);   /* the row, posted again */
    /* inventory had given the stock back itself when the charge failed;
     * the resumed release was acknowledged: nothing is left anywhere */
    svc_undo_settles(c.inv.port, "inventory", 15000);
    resv_status(c.inv.port, id, s, sizeof s);
    assert_string_equal(s, "RELEASED");
    assert_int_equal(stock_of(c.inv.port, "sku-1"), 1000);
    /* a clean stop and start: nothing left to resume */
    svc_stop(&c.order);
    chain_restart(&c, &c.order, &o);
    assert_int_equal(svc_undo_counter(c.order.port, "posted"), 0);
    free(r);
    chain_stop(&c);
    svc_rm_rf(od);
}

/* ---- 4. kill -9 of each service in the middle of a stream --------------------------------- */

enum { CLIENTS = 4, ITEMS = 3 };

typedef struct stream {
    int port;
    atomic_bool stop;
    atomic_int made, ok;      /* orders answered, 201s */
    char (*paid)[24];         /* the 201s' ids */
    atomic_int npaid;
    int cap;
} stream;

static void *client(void *arg)
{
    stream *s = arg;
    hresp *r = malloc(sizeof *r);
    assert_non_null(r);
    for (int i = 0; !atomic_load(&s->stop); i++) {
        char id[64];
        order_post(s->port, i % 2 ? "sku-1" : i % 3 ? "sku-2" : "sku-3", 1 + i % 3, 100 + i % 50, id, r);
        atomic_fetch_add(&s->made, 1);
        if (r->status == 201) {
            int k = atomic_fetch_add(&s->npaid, 1);
            if (k < s->cap)
                snprintf(s->paid[k], sizeof s->paid[k], "%.23s", id);
            atomic_fetch_add(&s->ok, 1);
        } else if (r->status <= 0) {   /* refused while order-svc restarts: not a busy loop */
            poll(NULL, 0, 5);
        }
    }
    free(r);
    return NULL;
}

/* Waits until `n` more orders were answered 201 (the chain works). */
static void more_paid(stream *s, int n, const char *when)
{
    int want = atomic_load(&s->ok) + n;
    uint64_t end = svc_now_ms() + 20000;
    while (atomic_load(&s->ok) < want && svc_now_ms() < end)
        poll(NULL, 0, 5);
    if (atomic_load(&s->ok) < want)
        fail_msg("%s: fewer than %d orders paid within 20 s", when, n);
}

static void kill9_each_service_keeps_the_books(void **state)
{
    (void)state;
    char od[256], id_[256], pd[256];
    svc_tmpdir(od, sizeof od, "durable-k9-order");
    svc_tmpdir(id_, sizeof id_, "durable-k9-inv");
    svc_tmpdir(pd, sizeof pd, "durable-k9-pay");
    chain_opts o = { .stock = "sku-1=100000,sku-2=100000,sku-3=100000", .order_args = { "--data", od, NULL },
                     .inv_args = { "--data", id_, NULL }, .pay_args = { "--data", pd, NULL } };
    chain c;
    chain_start(&c, &o);
    stream s = { .port = c.order.port, .cap = 100000 };
    s.paid = calloc((size_t)s.cap, sizeof *s.paid);
    assert_non_null(s.paid);
    pthread_t th[CLIENTS];
    for (int i = 0; i < CLIENTS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, client, &s), 0);
    svc *victims[3] = { &c.pay, &c.inv, &c.order };
    const char *names[3] = { "payment", "inventory", "order" };
    for (int v = 0; v < 3; v++) {
        more_paid(&s, 100, names[v]);   /* in the middle of the stream */
        svc_kill9(victims[v]);
        chain_restart(&c, victims[v], &o);
        print_message("%s killed and restarted after %d orders\n", names[v], atomic_load(&s.made));
    }
    more_paid(&s, 100, "after the last restart");
    atomic_store(&s.stop, true);
    for (int i = 0; i < CLIENTS; i++)
        pthread_join(th[i], NULL);
    svc_undo_settles(c.order.port, "order", 30000);
    svc_undo_settles(c.inv.port, "inventory", 30000);
    long taken[ITEMS + 1] = { 0 };
    int orders = 0, bad = ledger_walk(&c, taken, ITEMS, &orders);
    print_message("ledger: %d orders walked, %d answered, %d paid, %d disagreements\n", orders,
                  atomic_load(&s.made), atomic_load(&s.ok), bad);
    assert_int_equal(bad, 0);
    int npaid = atomic_load(&s.npaid) < s.cap ? atomic_load(&s.npaid) : s.cap;
    for (int i = 0; i < npaid; i++) {   /* a 201 is a PAID order, after every crash */
        char st[16];
        order_status(c.order.port, s.paid[i], st, sizeof st);
        if (strcmp(st, "PAID") != 0)
            fail_msg("order %s was answered 201 but is %s", s.paid[i], st);
    }
    for (int k = 1; k <= ITEMS; k++) {   /* stock conserved exactly */
        char item[8];
        snprintf(item, sizeof item, "sku-%d", k);
        assert_int_equal(stock_of(c.inv.port, item), 100000 - taken[k]);
    }
    free(s.paid);
    chain_stop(&c);
    svc_rm_rf(od);
    svc_rm_rf(id_);
    svc_rm_rf(pd);
}

/* ---- 5. a paid order: two transactions at order-svc ------------------------------------------ */

/* order-svc dies right after it committed PAID, before payment hears the
 * 200 (SVC_TEST_EXIT_AFTER_PAID: the worst moment, every time). Payment
 * and inventory see a reset: ambiguous, so neither undoes its step, and
 * after the restart the order is PAID, its stock RESERVED and its charge
 * CHARGED. Before, payment voided and inventory released on any failure,
 * and the books disagreed (seen as a flaky kill -9 test). */
static void order_dies_after_paid_keeps_the_books(void **state)
{
    (void)state;
    char od[256], id_[256], pd[256];
    svc_tmpdir(od, sizeof od, "durable-ap-order");
    svc_tmpdir(id_, sizeof id_, "durable-ap-inv");
    svc_tmpdir(pd, sizeof pd, "durable-ap-pay");
    chain_opts o = { .stock = "sku-1=10", .order_args = { "--data", od, NULL }, .inv_args = { "--data", id_, NULL },
                     .pay_args = { "--data", pd, NULL } };
    chain c;
    setenv("SVC_TEST_EXIT_AFTER_PAID", "1", 1);   /* read by order-svc only */
    chain_start(&c, &o);
    unsetenv("SVC_TEST_EXIT_AFTER_PAID");
    char id[64];
    hresp r;
    order_post(c.order.port, "sku-1", 2, 300, id, &r);
    assert_true(r.status != 201);   /* order died before answering */
    svc_kill9(&c.order);            /* reaps it (it is gone already) */
    chain_restart(&c, &c.order, &o);
    svc_undo_settles(c.order.port, "order", 30000);
    svc_undo_settles(c.inv.port, "inventory", 30000);
    long taken[ITEMS + 1] = { 0 };
    int orders = 0;
    assert_int_equal(ledger_walk(&c, taken, ITEMS, &orders), 0);
    assert_int_equal(orders, 1);
    assert_int_equal(taken[1], 2);   /* the order is PAID, and its three records agree */
    assert_int_equal(stock_of(c.inv.port, "sku-1"), 8);
    chain_stop(&c);
    svc_rm_rf(od);
    svc_rm_rf(id_);
    svc_rm_rf(pd);
}

static long store_counter(int port, const char *key)
{
    hresp *r = malloc(sizeof *r);
    assert_non_null(r);
    long v = http_req(port, "GET", "/debug/store", NULL, NULL, 3000, r) == 200 ? (long)jint(r, key, -1) : -1;
    free(r);
    return v;
}

/* Makes n orders of 1 x sku-1 on order-svc (each answered 201 and read back
 * PAID: the 201 is durable) and returns how many store steps order-svc
 * made meanwhile. */
static long paid_orders_steps(chain *c, int n, hresp *r)
{
    char id[64], s[16];
    long before = store_counter(c->order.port, "steps");
    assert_true(before >= 0);
    for (int i = 0; i < n; i++) {
        assert_int_equal(order_post(c->order.port, "sku-1", 1, 1250, id, r), 201);
        order_status(c->order.port, id, s, sizeof s);
        assert_string_equal(s, "PAID");
    }
    return store_counter(c->order.port, "steps") - before;
}

static void paid_order_skips_the_settle(void **state)
{
    (void)state;
    char od[256], id[64], s[16];
    svc_tmpdir(od, sizeof od, "durable-settle");
    chain_opts o = { .stock = "sku-1=1000", .order_args = { "--data", od, NULL } };
    chain c;
    chain_start(&c, &o);
    hresp *r = malloc(sizeof *r);
    assert_non_null(r);
    enum { N = 20 };
    /* the record and the callback's PAID: no settle transaction */
    assert_int_equal(paid_orders_steps(&c, N, r), 2 * N);
    assert_int_equal(stock_of(c.inv.port, "sku-1"), 1000 - N);
    /* a failed order still settles: the record, FAILED with the release's
     * outbox row, and that row's delete once inventory acknowledged it */
    long before = store_counter(c.order.port, "steps");
    assert_int_equal(order_post(c.order.port, "sku-1", 5000, 1250, id, r), 409);
    order_status(c.order.port, id, s, sizeof s);
    assert_string_equal(s, "FAILED");
    long d = 0;
    for (uint64_t end = svc_now_ms() + 10000; (d = store_counter(c.order.port, "steps") - before) < 3 &&
                                               svc_now_ms() < end;)
        poll(NULL, 0, 10);
    assert_int_equal(d, 3);
    free(r);
    chain_end(&c);
    svc_rm_rf(od);
}

/* The same with two reactors per service (issue 17): an order lives on
 * the reactor that made it, and payment's callback lands on either
 * reactor (the kernel picks one per connection), so about half the
 * callbacks commit PAID on the other reactor. Their note (order.c,
 * paid_note) reaches the creator on any reactor, before inventory's
 * answer does, so the settle is skipped every time (at first the creator
 * was not told and ran it: about 2.5 steps an order, not 2; then a
 * message told it, which could come after inventory's answer: 0-1 of
 * 40). And a callback on the other reactor crosses no reactor: no hop to
 * the order's reactor for its lock (free in safe mode) and no message to
 * tell it, so order-svc's cross-reactor messages are its store's replies
 * (one per write step and per read of an order, the orders being one at
 * a time) and the /metrics scrapes' own; with the hop and the message it
 * was about 2 more per order. */
static void paid_order_skips_the_settle_on_two_reactors(void **state)
{
    (void)state;
    char od[256];
    svc_tmpdir(od, sizeof od, "durable-settle2");
    chain_opts o = { .threads = 2, .stock = "sku-1=1000", .order_args = { "--data", od, NULL } };
    chain c;
    chain_start(&c, &o);
    hresp *r = malloc(sizeof *r);
    assert_non_null(r);
    enum { N = 40 };
    double m0 = svc_metric(c.order.port, "sluice_reactor_messages_total", NULL, NULL);
    assert_true(m0 >= 0);
    /* a connection each: the orders are made on both reactors */
    long settles = paid_orders_steps(&c, N, r) - 2 * N;
    double msgs = svc_metric(c.order.port, "sluice_reactor_messages_total", NULL, NULL) - m0;
    print_message("%d orders on two reactors: %ld settle transactions, %.0f cross-reactor messages\n", N,
                  settles, msgs);
    assert_int_equal(settles, 0);
    /* per order: the record's and PAID's replies, the read of the order's
     * status; the three scrapes (two reactors, there and back): a few */
    assert_true(msgs <= 3 * N + 16);
    assert_int_equal(stock_of(c.inv.port, "sku-1"), 1000 - N);
    free(r);
    chain_end(&c);
    svc_rm_rf(od);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(bad_data_dir_is_one_line_and_exit_1, svc_teardown),
        cmocka_unit_test_teardown(data_dir_in_use_is_refused, svc_teardown),
        cmocka_unit_test_teardown(pending_order_is_resolved_at_restart, svc_teardown),
        cmocka_unit_test_teardown(outbox_is_resumed_after_restart, svc_teardown),
        cmocka_unit_test_teardown(kill9_each_service_keeps_the_books, svc_teardown),
        cmocka_unit_test_teardown(paid_order_skips_the_settle, svc_teardown),
        cmocka_unit_test_teardown(paid_order_skips_the_settle_on_two_reactors, svc_teardown),
        cmocka_unit_test_teardown(order_dies_after_paid_keeps_the_books, svc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
