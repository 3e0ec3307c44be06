/* test_services.c: the demo chain in safe mode, its errors and its command
 * line: the programs themselves, started on free ports (svcutil.h), checked
 * against docs/services.md from outside. */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "svcutil.h"

#define DEFAULT_STOCK 1000000

/* A successful order: 201 PAID, and the three services agree. */
static void expect_paid(const chain *c, const char *item, int qty, long amount, char id[64])
{
    hresp r;
    order_post(c->order.port, item, qty, amount, id, &r);
    expect_status(&r, 201, NULL);
    char st[16];
    assert_true(jstr(&r, "status", st, sizeof st));
    assert_string_equal(st, "PAID");
    assert_true(id[0]);
    assert_true(order_check(c, id, amount));
}

/* ---- 1. safe mode --------------------------------------------------------------------- */

/* Order ids begin with the time in seconds (6 hex digits, mod 2^24), so
 * that each service's rows of consecutive orders sit on the same B-tree
 * page (issue 14: one page per group commit, not one random leaf per
 * order). Before: 16 random hex digits, whose first 6 are the clock's
 * in one run of 2^24. */
/* The seconds of order-svc's clock (new_id: CLOCK_REALTIME). Not time():
 * it reads the kernel's coarse clock, which lags by up to a tick, so just
 * after a second began it named the one before, and an id made a moment
 * earlier looked made "after now" (make check, 2026-12-06; a loop of
 * clock_gettime then time() saw it in 0.2% of reads). */
static uint64_t realtime_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec;
}

static void order_ids_sort_by_time(void **state)
{
    (void)state;
    chain c;
    chain_start(&c, &(chain_opts){ 0 });
    uint64_t t0 = realtime_s() & 0xffffff, prev = t0;
    for (int i = 0; i < 8; i++) {
        char id[64], pre[7];
        expect_paid(&c, "sku-1", 1, 100, id);
        assert_int_equal(strlen(id), 16);
        assert_int_equal(strspn(id, "0123456789abcdef"), 16);
        memcpy(pre, id, 6);
        pre[6] = 0;
        uint64_t t = strtoull(pre, NULL, 16), now = realtime_s() & 0xffffff;
        /* modulo 2^24: made at or after the previous one, not after now */
        assert_true(((t - prev) & 0xffffff) <= ((now - prev) & 0xffffff));
        prev = t;
    }
    chain_stop(&c);
}

static void safe_order_is_paid(void **state)
{
    (void)state;
    chain c;
    chain_start(&c, &(chain_opts){ 0 });
    assert_int_equal(stock_of(c.inv.port, "sku-1"), DEFAULT_STOCK);   /* the documented default */
    assert_int_equal(stock_of(c.inv.port, "sku-10"), DEFAULT_STOCK);

    char id[64], id2[64], s[64];
    expect_paid(&c, "sku-1", 3, 1250, id);
    assert_int_equal(stock_of(c.inv.port, "sku-1"), DEFAULT_STOCK - 3);

    hresp r;
    char path[128];
    snprintf(path, sizeof path, "/orders/%s", id);
    expect_status((http_req(c.order.port, "GET", path, NULL, NULL, 3000, &r), &r), 200, NULL);
    assert_true(jstr(&r, "order_id", s, sizeof s));
    assert_string_equal(s, id);
    assert_true(jstr(&r, "item", s, sizeof s));
    assert_string_equal(s, "sku-1");
    assert_int_equal(jint(&r, "qty", -1), 3);
    assert_int_equal(jint(&r, "amount_cents", -1), 1250);
    assert_true(jstr(&r, "status", s, sizeof s));
    assert_string_equal(s, "PAID");

    /* Replays are idempotent: no second decrement, no second charge. */
    char body[256];
    snprintf(body, sizeof body, "{\"order_id\":\"%s\",\"item\":\"sku-1\",\"qty\":3,\"amount_cents\":1250}", id);
    http_req(c.inv.port, "POST", "/reserve", body, NULL, 3000, &r);
    expect_status(&r, 200, NULL);
    assert_true(jstr(&r, "status", s, sizeof s));
    assert_string_equal(s, "RESERVED");
    assert_int_equal(stock_of(c.inv.port, "sku-1"), DEFAULT_STOCK - 3);
    snprintf(body, sizeof body, "{\"order_id\":\"%s\",\"amount_cents\":1250}", id);
    http_req(c.pay.port, "POST", "/charge", body, NULL, 3000, &r);
    expect_status(&r, 200, NULL);
    assert_true(jstr(&r, "status", s, sizeof s));
    assert_string_equal(s, "CHARGED");
    assert_int_equal(jint(&r, "amount_cents", -1), 1250);
    snprintf(path, sizeof path, "/orders/%s/paid", id);
    http_req(c.order.port, "POST", path, NULL, NULL, 3000, &r);
    expect_status(&r, 200, NULL);
    assert_true(jstr(&r, "status", s, sizeof s));
    assert_string_equal(s, "PAID");
    assert_true(order_check(&c, id, 1250));

    /* A charge whose callback fails (order unknown) is voided and the status passed on. */
    http_req(c.pay.port, "POST", "/charge", "{\"order_id\":\"ghost\",\"amount_cents\":5}", NULL, 3000, &r);
    expect_status(&r, 404, "not_found");
    charge_status(c.pay.port, "ghost", s, sizeof s, &(long){ 0 });
    assert_string_equal(s, "VOIDED");
    for (int i = 0; i < 2; i++) {   /* /void is idempotent */
        http_req(c.pay.port, "POST", "/void", "{\"order_id\":\"ghost\"}", NULL, 3000, &r);
        expect_status(&r, 200, NULL);
        assert_true(jstr(&r, "status", s, sizeof s));
        assert_string_equal(s, "VOIDED");
        assert_int_equal(jint(&r, "amount_cents", -1), 5);
    }

    expect_paid(&c, "sku-2", 1, 99, id2);
    assert_string_not_equal(id, id2);
    assert_int_equal(stock_of(c.inv.port, "sku-1"), DEFAULT_STOCK - 3);
    assert_int_equal(stock_of(c.inv.port, "sku-2"), DEFAULT_STOCK - 1);
    expect_paid(&c, "sku-3", 2, 0, id2);    /* amount 0 is valid */

    expect_status((http_req(c.order.port, "GET", "/healthz", NULL, NULL, 3000, &r), &r), 200, NULL);
    expect_status((http_req(c.inv.port, "GET", "/healthz", NULL, NULL, 3000, &r), &r), 200, NULL);
    expect_status((http_req(c.pay.port, "GET", "/healthz", NULL, NULL, 3000, &r), &r), 200, NULL);
    chain_end(&c);
}

/* ---- 5. out of stock ------------------------------------------------------------------ */

static void out_of_stock_is_409(void **state)
{
    (void)state;
    chain c;
    chain_start(&c, &(chain_opts){ .stock = "sku-1=1,sku-2=3,sku-3=2" });
    assert_int_equal(stock_of(c.inv.port, "sku-1"), 1);
    hresp r;
    expect_status((http_req(c.inv.port, "GET", "/stock/sku-4", NULL, NULL, 3000, &r), &r), 404, "unknown_item");

    char id[64];
    expect_paid(&c, "sku-1", 1, 100, id);
    order_post(c.order.port, "sku-1", 1, 100, id, &r);
    expect_status(&r, 409, "out_of_stock");
    assert_true(id[0]);                      /* an id was assigned: the order can be checked */
    assert_false(order_check(&c, id, 100));
    assert_int_equal(stock_of(c.inv.port, "sku-1"), 0);

    /* A late callback for a FAILED order: 409, and a charge for it is voided. */
    char path[128], s[32];
    snprintf(path, sizeof path, "/orders/%s/paid", id);
    http_req(c.order.port, "POST", path, NULL, NULL, 3000, &r);
    expect_status(&r, 409, "order_failed");
    char body[160];
    snprintf(body, sizeof body, "{\"order_id\":\"%s\",\"amount_cents\":100}", id);
    http_req(c.pay.port, "POST", "/charge", body, NULL, 3000, &r);
    expect_status(&r, 409, "order_failed");
    charge_status(c.pay.port, id, s, sizeof s, &(long){ 0 });
    assert_string_equal(s, "VOIDED");
    assert_false(order_check(&c, id, 100));
    snprintf(body, sizeof body, "{\"order_id\":\"%s\"}", id);   /* never reserved: nothing to release */
    http_req(c.inv.port, "POST", "/release", body, NULL, 3000, &r);
    expect_status(&r, 404, "not_found");

    order_post(c.order.port, "sku-2", 4, 100, id, &r);   /* more than there is */
    expect_status(&r, 409, "out_of_stock");
    assert_false(order_check(&c, id, 100));
    assert_int_equal(stock_of(c.inv.port, "sku-2"), 3);
    expect_paid(&c, "sku-2", 3, 100, id);                /* exactly what there is */
    assert_int_equal(stock_of(c.inv.port, "sku-2"), 0);
    /* the services' own families (svc_metrics.h): orders by outcome, stock */
    assert_true(svc_metric(c.order.port, "sluice_svc_answers_total", "route=\"/orders\",outcome=\"ok\"", NULL) == 2);
    assert_true(svc_metric(c.order.port, "sluice_svc_answers_total", "route=\"/orders\",outcome=\"out_of_stock\"",
                           NULL) == 2);
    assert_true(svc_metric(c.inv.port, "sluice_svc_answers_total", "route=\"/reserve\",outcome=\"out_of_stock\"",
                           NULL) == 2);
    assert_true(svc_metric(c.inv.port, "sluice_svc_stock_available", "item=\"sku-1\"", NULL) == 0);
    assert_true(svc_metric(c.inv.port, "sluice_svc_stock_available", "item=\"sku-2\"", NULL) == 0);
    assert_true(svc_metric(c.inv.port, "sluice_svc_stock_available", "item=\"sku-3\"", NULL) == 2);
    assert_true(svc_metric(c.order.port, "sluice_svc_compensations_pending", NULL, NULL) >= 0);   /* present */


    /* Concurrent orders for the last two: exactly two win, stock ends at 0. */
    hjob *jobs = calloc(6, sizeof *jobs);   /* answers are large: not on the stack */
    assert_non_null(jobs);
    for (int i = 0; i < 6; i++) {
        jobs[i] = (hjob){ .port = c.order.port, .method = "POST", .path = "/orders", .timeout_ms = 5000 };
        snprintf(jobs[i].body, sizeof jobs[i].body, "{\"item\":\"sku-3\",\"qty\":1,\"amount_cents\":7}");
    }
    http_parallel(jobs, 6);
    int won = 0;
    for (int i = 0; i < 6; i++) {
        char oid[64];
        if (jobs[i].r.status == 201)
            won++;
        else
            expect_status(&jobs[i].r, 409, "out_of_stock");
        assert_true(jstr(&jobs[i].r, "order_id", oid, sizeof oid));
        assert_int_equal(order_check(&c, oid, 7), jobs[i].r.status == 201);
    }
    free(jobs);
    assert_int_equal(won, 2);
    assert_int_equal(stock_of(c.inv.port, "sku-3"), 0);
    assert_int_equal(stock_of(c.inv.port, "sku-1"), 0);

    order_post(c.order.port, "sku-99", 1, 100, id, &r);  /* inventory's 404 becomes order's 409 */
    expect_status(&r, 409, "unknown_item");
    assert_false(order_check(&c, id, 100));
    chain_end(&c);
}

/* ---- 13. the lists the demo's invariant check walks ------------------------------------ */

/* GET /orders[?status=...] as JSON; asserts 200 and the shape. */
static json_t *list_orders(int port, const char *query)
{
    hresp *r = malloc(sizeof *r);   /* answers are large: not on the stack */
    char path[64];
    assert_non_null(r);
    snprintf(path, sizeof path, "/orders%s", query);
    http_req(port, "GET", path, NULL, NULL, 5000, r);
    if (r->status != 200)
        fail_msg("GET %s: %d %.200s", path, r->status, r->body);
    json_t *doc = json_loadb(r->body, r->len, 0, NULL);
    free(r);
    assert_non_null(doc);
    assert_true(json_is_array(json_object_get(doc, "orders")));
    return doc;
}

/* The entry for order `id` in a list, or NULL. */
static json_t *entry(json_t *doc, const char *id)
{
    json_t *o;
    size_t i;
    json_array_foreach(json_object_get(doc, "orders"), i, o) {
        const char *oid = json_string_value(json_object_get(o, "order_id"));
        if (oid && !strcmp(oid, id))
            return o;
    }
    return NULL;
}

static void expect_entry(json_t *doc, const char *id, const char *item, int qty, long amount, const char *status)
{
    json_t *o = entry(doc, id);
    if (!o)
        fail_msg("order %s is not in the list", id);
    assert_string_equal(json_string_value(json_object_get(o, "item")), item);
    assert_int_equal(json_integer_value(json_object_get(o, "qty")), qty);
    assert_int_equal(json_integer_value(json_object_get(o, "amount_cents")), amount);
    assert_string_equal(json_string_value(json_object_get(o, "status")), status);
}

/* Every entry of a filtered list has that status; returns how many. */
static size_t all_have(json_t *doc, const char *status)
{
    json_t *o;
    size_t i;
    json_array_foreach(json_object_get(doc, "orders"), i, o)
        assert_string_equal(json_string_value(json_object_get(o, "status")), status);
    return json_array_size(json_object_get(doc, "orders"));
}

/* GET /reservations/{id}: asserts the status (and, for 200, the fields). */
static void expect_reservation(int port, const char *id, int status, const char *item, int qty, const char *state)
{
    hresp r;
    char path[128], s[32];
    snprintf(path, sizeof path, "/reservations/%s", id);
    http_req(port, "GET", path, NULL, NULL, 3000, &r);
    expect_status(&r, status, status == 200 ? NULL : "not_found");
    if (status != 200)
        return;
    assert_true(jstr(&r, "order_id", s, sizeof s));
    assert_string_equal(s, id);
    assert_true(jstr(&r, "item", s, sizeof s));
    assert_string_equal(s, item);
    assert_int_equal(jint(&r, "qty", -1), qty);
    assert_true(jstr(&r, "status", s, sizeof s));
    assert_string_equal(s, state);
}

static void lists_of_orders_and_reservations(void **state)
{
    (void)state;
    /* two reactors: the lists gather from both. Budgets of 10 s: the lists
     * are the claim, not the time (an order ran out of the default 2 s
     * waiting for inventory at load 30, 504 where 201 was wanted) */
    chain c;
    chain_start(&c, &(chain_opts){ .threads = 2, .admin = true, .stock = "sku-1=10,sku-2=0", .order_timeout_ms = 10000,
                                   .inv_args = { "--timeout-ms", "10000", NULL },
                                   .pay_args = { "--timeout-ms", "10000", NULL } });
    json_t *doc = list_orders(c.order.port, "");
    assert_int_equal(json_array_size(json_object_get(doc, "orders")), 0);
    json_decref(doc);

    enum { NPAID = 4 };
    char paid[NPAID][64], oos[64], unknown[64], charge_failed[64];
    hresp r;
    for (int i = 0; i < NPAID; i++)
        expect_paid(&c, "sku-1", 1, 100 + i, paid[i]);
    order_post(c.order.port, "sku-2", 1, 7, oos, &r);
    expect_status(&r, 409, "out_of_stock");
    order_post(c.order.port, "sku-77", 1, 8, unknown, &r);
    expect_status(&r, 409, "unknown_item");
    assert_int_equal(fault_set(c.pay.port, "{\"error_rate\":1.0,\"path\":\"/charge\"}"), 200);
    order_post(c.order.port, "sku-1", 3, 9, charge_failed, &r);
    expect_status(&r, 502, "upstream_failed");
    assert_int_equal(fault_clear(c.pay.port), 200);
    assert_false(order_check(&c, charge_failed, 9));   /* and its release is done */

    doc = list_orders(c.order.port, "");
    assert_int_equal(json_array_size(json_object_get(doc, "orders")), NPAID + 3);
    for (int i = 0; i < NPAID; i++)
        expect_entry(doc, paid[i], "sku-1", 1, 100 + i, "PAID");
    expect_entry(doc, oos, "sku-2", 1, 7, "FAILED");
    expect_entry(doc, unknown, "sku-77", 1, 8, "FAILED");
    expect_entry(doc, charge_failed, "sku-1", 3, 9, "FAILED");
    json_decref(doc);

    doc = list_orders(c.order.port, "?status=PAID");
    assert_int_equal(all_have(doc, "PAID"), NPAID);
    json_decref(doc);
    doc = list_orders(c.order.port, "?status=FAILED");
    assert_int_equal(all_have(doc, "FAILED"), 3);
    assert_non_null(entry(doc, oos));
    json_decref(doc);
    doc = list_orders(c.order.port, "?status=PENDING");
    assert_int_equal(all_have(doc, "PENDING"), 0);
    json_decref(doc);

    for (int i = 0; i < NPAID; i++)
        expect_reservation(c.inv.port, paid[i], 200, "sku-1", 1, "RESERVED");
    expect_reservation(c.inv.port, charge_failed, 200, "sku-1", 3, "RELEASED");
    expect_reservation(c.inv.port, oos, 404, NULL, 0, NULL);       /* never reserved */
    expect_reservation(c.inv.port, unknown, 404, NULL, 0, NULL);

    /* An order under way (its charge held up at payment) is PENDING, and its
     * stock is taken: RESERVED. */
    assert_int_equal(fault_set(c.pay.port, "{\"delay_ms\":1500,\"path\":\"/charge\"}"), 200);
    pthread_t th;
    bg_order *b = order_post_bg(c.order.port, 2, 33, &th);
    size_t pending = 0;
    char pid[64] = "";
    for (uint64_t end = svc_now_ms() + 3000; !pending && svc_now_ms() < end;) {
        doc = list_orders(c.order.port, "?status=PENDING");
        if ((pending = all_have(doc, "PENDING")) > 0)
            snprintf(pid, sizeof pid, "%s",
                     json_string_value(json_object_get(json_array_get(json_object_get(doc, "orders"), 0), "order_id")));
        json_decref(doc);
        if (!pending)
            poll(NULL, 0, 10);
    }
    assert_int_equal(pending, 1);
    /* PENDING from the moment order-svc made it: its reserve may still be
     * on the way to inventory (a 404 until it arrives; seen under load) */
    char rpath[128];
    snprintf(rpath, sizeof rpath, "/reservations/%s", pid);
    for (uint64_t end = svc_now_ms() + 5000; svc_now_ms() < end; poll(NULL, 0, 10)) {
        hresp rr;
        http_req(c.inv.port, "GET", rpath, NULL, NULL, 3000, &rr);
        if (rr.status != 404)
            break;
    }
    expect_reservation(c.inv.port, pid, 200, "sku-1", 2, "RESERVED");
    pthread_join(th, NULL);
    expect_status(&b->r, 201, NULL);
    assert_string_equal(b->id, pid);
    assert_true(order_check(&c, pid, 33));
    free(b);
    assert_int_equal(fault_clear(c.pay.port), 200);
    doc = list_orders(c.order.port, "?status=PAID");
    assert_int_equal(all_have(doc, "PAID"), NPAID + 1);
    json_decref(doc);
    chain_end(&c);
}

/* ---- 6. bad requests ------------------------------------------------------------------ */

typedef struct bad { const char *method, *path, *body; int status; const char *code; } bad;

static void expect_all(int port, const bad *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        hresp r;
        http_req(port, b[i].method, b[i].path, b[i].body, NULL, 3000, &r);
        if (r.status != b[i].status)
            fail_msg("%s %s %s: %d, want %d; body %.200s", b[i].method, b[i].path, b[i].body ? b[i].body : "",
                     r.status, b[i].status, r.body);
        if (b[i].code)
            expect_status(&r, b[i].status, b[i].code);
    }
}

static const bad order_bad[] = {
    { "POST", "/orders", "", 400, "bad_request" },
    { "POST", "/orders", "not json", 400, "bad_request" },
    { "POST", "/orders", "{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":1250", 400, "bad_request" },
    { "POST", "/orders", "[1,2]", 400, "bad_request" },
    { "POST", "/orders", "{\"qty\":1,\"amount_cents\":1250}", 400, "bad_request" },
    { "POST", "/orders", "{\"item\":\"sku-1\",\"amount_cents\":1250}", 400, "bad_request" },
    { "POST", "/orders", "{\"item\":\"sku-1\",\"qty\":1}", 400, "bad_request" },
    { "POST", "/orders", "{\"item\":5,\"qty\":1,\"amount_cents\":1250}", 400, "bad_request" },
    { "POST", "/orders", "{\"item\":\"sku-1\",\"qty\":\"1\",\"amount_cents\":1250}", 400, "bad_request" },
    { "POST", "/orders", "{\"item\":\"sku-1\",\"qty\":1.5,\"amount_cents\":1250}", 400, "bad_request" },
    { "POST", "/orders", "{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":\"12\"}", 400, "bad_request" },
    { "POST", "/orders", "{\"item\":\"sku-1\",\"qty\":0,\"amount_cents\":1250}", 400, "bad_request" },
    { "POST", "/orders", "{\"item\":\"sku-1\",\"qty\":-2,\"amount_cents\":1250}", 400, "bad_request" },
    { "POST", "/orders", "{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":-1}", 400, "bad_request" },
    { "POST", "/orders", "{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":1,\"qty\":-1}", 400, "bad_request" },
    { "GET", "/orders/no-such-order", NULL, 404, "not_found" },
    { "POST", "/orders/no-such-order/paid", NULL, 404, "not_found" },
    { "GET", "/orders/bad%20id", NULL, 404, "not_found" },           /* not a usable key */
    { "POST", "/orders/bad%20id/paid", NULL, 404, "not_found" },
    { "GET", "/no-such-route", NULL, 404, NULL },
    { "GET", "/orders?status=paid", NULL, 400, "bad_request" },    /* the filter is upper case */
    { "GET", "/orders?status=", NULL, 400, "bad_request" },
    { "GET", "/orders?status=SHIPPED", NULL, 400, "bad_request" },
    { "GET", "/orders?state=PAID", NULL, 400, "bad_request" },
    { "GET", "/orders?status=PAID&x=1", NULL, 400, "bad_request" },
    { "PUT", "/orders", "{}", 405, NULL },
    { "DELETE", "/orders/x", NULL, 405, NULL },
    { "GET", "/admin/fault", NULL, 404, NULL },    /* no --admin */
    { "POST", "/admin/fault", "{\"hang\":true}", 404, NULL },
};

static const bad inv_bad[] = {
    { "POST", "/reserve", "nope", 400, "bad_request" },
    { "POST", "/reserve", "{}", 400, "bad_request" },
    { "POST", "/reserve", "{\"order_id\":\"o1\",\"item\":\"sku-1\"}", 400, "bad_request" },
    { "POST", "/reserve", "{\"order_id\":\"o1\",\"item\":\"sku-1\",\"qty\":\"1\",\"amount_cents\":1}", 400,
      "bad_request" },
    { "POST", "/reserve", "{\"order_id\":\"o1\",\"item\":\"sku-1\",\"qty\":0,\"amount_cents\":1}", 400, "bad_request" },
    { "POST", "/reserve", "{\"order_id\":7,\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":1}", 400, "bad_request" },
    { "POST", "/reserve", "{\"order_id\":\"o1\",\"item\":\"sku-404\",\"qty\":1,\"amount_cents\":1}", 404,
      "unknown_item" },
    { "POST", "/release", "nope", 400, "bad_request" },
    { "POST", "/release", "{}", 400, "bad_request" },
    { "POST", "/release", "{\"order_id\":5}", 400, "bad_request" },
    { "POST", "/release", "{\"order_id\":\"never-reserved\"}", 404, "not_found" },
    { "GET", "/stock/sku-404", NULL, 404, "unknown_item" },
    { "GET", "/stock/bad%20item", NULL, 404, "unknown_item" },
    { "GET", "/reservations/never-reserved", NULL, 404, "not_found" },
    { "GET", "/reservations/bad%20id", NULL, 404, "not_found" },
    { "GET", "/reservations/0123456789abcdef0123456789", NULL, 404, "not_found" },   /* too long for an id */
    { "POST", "/reservations/x", NULL, 405, NULL },
    { "GET", "/reserve", NULL, 405, NULL },
    { "PUT", "/stock/sku-1", "{}", 405, NULL },
    { "GET", "/nothing/here", NULL, 404, NULL },
    { "DELETE", "/admin/fault", NULL, 404, NULL },
};

static const bad pay_bad[] = {
    { "POST", "/charge", "nope", 400, "bad_request" },
    { "POST", "/charge", "{}", 400, "bad_request" },
    { "POST", "/charge", "{\"order_id\":\"o1\"}", 400, "bad_request" },
    { "POST", "/charge", "{\"order_id\":\"o1\",\"amount_cents\":\"5\"}", 400, "bad_request" },
    { "POST", "/charge", "{\"order_id\":5,\"amount_cents\":5}", 400, "bad_request" },
    { "POST", "/charge", "{\"order_id\":\"o1\",\"amount_cents\":-5}", 400, "bad_request" },
    { "POST", "/void", "nope", 400, "bad_request" },
    { "POST", "/void", "{}", 400, "bad_request" },
    { "POST", "/void", "{\"order_id\":\"never-charged\"}", 404, "not_found" },
    { "GET", "/charges/bad%20id", NULL, 404, "not_found" },
    { "GET", "/charges/never-charged", NULL, 404, "not_found" },
    { "GET", "/charge", NULL, 405, NULL },
    { "GET", "/nothing/here", NULL, 404, NULL },
    { "POST", "/admin/fault", "{\"error_rate\":1.0}", 404, NULL },
};

static void bad_requests_are_refused(void **state)
{
    (void)state;
    chain c;
    chain_start(&c, &(chain_opts){ 0 });
    expect_all(c.order.port, order_bad, sizeof order_bad / sizeof *order_bad);
    expect_all(c.inv.port, inv_bad, sizeof inv_bad / sizeof *inv_bad);
    expect_all(c.pay.port, pay_bad, sizeof pay_bad / sizeof *pay_bad);
    assert_int_equal(stock_of(c.inv.port, "sku-1"), DEFAULT_STOCK);   /* nothing was reserved */

    /* A request body that is not even HTTP-framed right, then still serving. */
    hresp r;
    http_req(c.order.port, "POST", "/orders", "{\"item\":\"sku-1\"}", "Content-Length: x\r\n", 3000, &r);
    assert_true(r.status == 400 || r.status == HTTP_CLOSED);

    char id[64];
    expect_paid(&c, "sku-1", 1, 500, id);    /* the services keep serving */
    assert_int_equal(stock_of(c.inv.port, "sku-1"), DEFAULT_STOCK - 1);
    chain_end(&c);
}

/* ---- 10. several reactors ------------------------------------------------------------- */

static void two_threads_keep_the_invariant(void **state)
{
    (void)state;
    chain c;
    chain_start(&c, &(chain_opts){ .threads = 2, .stock = "sku-1=100,sku-2=100,sku-3=100,sku-4=100" });
    enum { SEQ = 12, PAR = 24 };
    long taken[5] = { 0 };
    char id[64];
    for (int i = 0; i < SEQ; i++) {   /* many ids: some orders live on the other reactor */
        char item[8];
        snprintf(item, sizeof item, "sku-%d", 1 + i % 4);
        expect_paid(&c, item, 1 + i % 3, 100 + i, id);
        taken[1 + i % 4] += 1 + i % 3;
    }
    hjob *jobs = calloc(PAR, sizeof *jobs);
    assert_non_null(jobs);
    for (int i = 0; i < PAR; i++) {
        jobs[i] = (hjob){ .port = c.order.port, .method = "POST", .path = "/orders", .timeout_ms = 5000 };
        snprintf(jobs[i].body, sizeof jobs[i].body, "{\"item\":\"sku-%d\",\"qty\":2,\"amount_cents\":%d}",
                 1 + i % 4, 1000 + i);
    }
    http_parallel(jobs, PAR);
    for (int i = 0; i < PAR; i++) {
        expect_status(&jobs[i].r, 201, NULL);
        assert_true(jstr(&jobs[i].r, "order_id", id, sizeof id));
        assert_true(order_check(&c, id, 1000 + i));
        taken[1 + i % 4] += 2;
    }
    free(jobs);
    for (int k = 1; k <= 4; k++) {
        char item[8];
        snprintf(item, sizeof item, "sku-%d", k);
        assert_int_equal(stock_of(c.inv.port, item), 100 - taken[k]);
    }
    chain_end(&c);
}

/* ---- 11. bad command lines ------------------------------------------------------------ */

/* One bad command line; the runs go in parallel (each start costs a few
 * ms, more under ASan). */
typedef struct usage_run {
    const char *prog;
    const char *args[3];
    int code;
    char err[1024];
} usage_run;

static void *usage_thread(void *arg)
{
    usage_run *u = arg;
    u->code = svc_run_usage(u->prog, u->args, u->err, sizeof u->err);
    return NULL;
}

static void bad_usage_exits_2(void **state)
{
    (void)state;
    static const char *const common[][3] = {
        { "--no-such-option", NULL }, { "--mode", "reckless", NULL }, { "--listen", "nonsense", NULL },
        { "--listen", "127.0.0.1:99999", NULL }, { "--listen", "127.0.0.1:", NULL },
        { "--threads", "abc", NULL }, { "--threads", "0", NULL }, { "--timeout-ms", "soon", NULL },
        { "--grace-ms", "0", NULL }, { "--max-pending", "0", NULL },
        { "stray-argument", NULL },
    };
    static const usage_run own[] = {
        { .prog = "order", .args = { "--inventory", "ftp://somewhere" } },
        { .prog = "inventory", .args = { "--payment", "not-a-url" } },
        { .prog = "payment", .args = { "--order", "http://" } },
        { .prog = "inventory", .args = { "--stock", "sku-1" } },
        { .prog = "inventory", .args = { "--stock", "sku-1=-3" } },
        { .prog = "inventory", .args = { "--stock", "=5" } },
    };
    static const char *const progs[] = { "order", "inventory", "payment" };
    enum { NC = sizeof common / sizeof *common, NO = sizeof own / sizeof *own, N = 3 * NC + NO };
    usage_run *u = calloc(N, sizeof *u);
    pthread_t th[N];
    assert_non_null(u);
    for (int i = 0; i < N; i++) {
        if (i < 3 * NC) {
            u[i].prog = progs[i / NC];
            memcpy(u[i].args, common[i % NC], sizeof u[i].args);
        } else {
            u[i] = own[i - 3 * NC];
        }
        assert_int_equal(pthread_create(&th[i], NULL, usage_thread, &u[i]), 0);
    }
    for (int i = 0; i < N; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < N; i++) {
        const char *a1 = u[i].args[1] ? u[i].args[1] : "";
        if (u[i].code != 2)
            fail_msg("%s %s %s: exit code %d, want 2; stderr: %.300s", u[i].prog, u[i].args[0], a1, u[i].code,
                     u[i].err);
        char *nl = strchr(u[i].err, '\n');
        if (!nl || nl == u[i].err || nl[1])
            fail_msg("%s %s %s: want a one-line message on stderr, got \"%s\"", u[i].prog, u[i].args[0], a1,
                     u[i].err);
    }
    free(u);
}

/* The chain with its peers addressed by name (a hosts file of the test's
 * own, through SLUICE_HOSTS, which the services inherit); a name that does
 * not resolve at start is an exit 1 that says so. */
static void chain_by_name(void **state)
{
    (void)state;
    char dir[] = "/tmp/sl-chain-XXXXXX", hosts[64], conf[64], id[64], err[512];
    assert_non_null(mkdtemp(dir));
    snprintf(hosts, sizeof hosts, "%s/hosts", dir);
    snprintf(conf, sizeof conf, "%s/resolv.conf", dir);
    FILE *f = fopen(hosts, "w");
    fputs("127.0.0.1 chain.test\n", f);
    fclose(f);
    f = fopen(conf, "w");   /* a nameserver that never answers, for 0.2 s */
    fputs("nameserver 127.0.0.1:1\noptions timeout:0.2 attempts:1\n", f);
    fclose(f);
    setenv("SLUICE_HOSTS", hosts, 1);
    setenv("SLUICE_RESOLV_CONF", conf, 1);
    chain c;
    /* budgets of 20 s: the claim is the names, not the time (the default
     * 2 s ran out at load 24: 504 waiting for inventory) */
    chain_start(&c, &(chain_opts){ .host = "chain.test", .order_timeout_ms = 20000,
                                   .inv_args = { "--timeout-ms", "20000", NULL },
                                   .pay_args = { "--timeout-ms", "20000", NULL } });
    expect_paid(&c, "sku-1", 2, 500, id);
    assert_int_equal(stock_of(c.inv.port, "sku-1"), DEFAULT_STOCK - 2);
    chain_end(&c);
    const char *args[] = { "--inventory", "http://nope.test:1", NULL };
    assert_int_equal(svc_run_usage("order", args, err, sizeof err), 1);
    if (!strstr(err, "order-svc: cannot use --inventory: nope.test: no answer from the resolver"))
        fail_msg("stderr: %s", err);
    unsetenv("SLUICE_HOSTS");
    unsetenv("SLUICE_RESOLV_CONF");
    unlink(hosts);
    unlink(conf);
    rmdir(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(safe_order_is_paid, svc_teardown),
        cmocka_unit_test_teardown(order_ids_sort_by_time, svc_teardown),
        cmocka_unit_test_teardown(out_of_stock_is_409, svc_teardown),
        cmocka_unit_test_teardown(bad_requests_are_refused, svc_teardown),
        cmocka_unit_test_teardown(two_threads_keep_the_invariant, svc_teardown),
        cmocka_unit_test_teardown(lists_of_orders_and_reservations, svc_teardown),
        cmocka_unit_test_teardown(bad_usage_exits_2, svc_teardown),
        cmocka_unit_test_teardown(chain_by_name, svc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
