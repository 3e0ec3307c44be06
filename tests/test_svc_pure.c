/* test_svc_pure: the pure parts of the demo services: the command line,
 * --stock, fault bodies, business bodies, keys, the hash and its table, and what order-svc
 * answers for inventory's failures. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include "failure.h"
#include "stock.h"
#include "svc.h"
#include "svc_body.h"
#include "svc_fault.h"
#include "svc_dbroute.h"
#include "svc_json.h"
#include "svc_map.h"
#include "svc_opts.h"
#include "svc_tracing.h"

static const svc_prog order_prog = { "order-svc", "127.0.0.1:8081", "--inventory", "http://127.0.0.1:8082", false };
static const svc_prog inv_prog = { "inventory-svc", "127.0.0.1:8082", "--payment", "http://127.0.0.1:8083", true };

static int parse(const svc_prog *p, svc_opts *o, char *err, ...)
{
    char *argv[32] = { (char *)p->name };
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) && argc < 31;)
        argv[argc++] = a;
    va_end(ap);
    return svc_opts_parse(o, p, argc, argv, err, 200);
}

static void test_opts_defaults(void **s)
{
    (void)s;
    svc_opts o;
    char err[200];
    assert_int_equal(parse(&order_prog, &o, err, NULL), 0);
    assert_string_equal(o.listen, "127.0.0.1:8081");
    assert_string_equal(o.upstream, "http://127.0.0.1:8082");
    assert_int_equal(o.mode, SVC_SAFE);
    assert_int_equal(o.threads, 0);
    assert_false(o.admin);
    assert_false(o.admission_off);
    assert_int_equal(svc_opts_timeout_ms(&o), 2000);
    assert_int_equal(o.grace_ms, 5000);
    assert_int_equal(o.max_pending, 0);   /* the default bound (SVC_UNDO_MAX) */
    assert_null(o.stock);
}

static void test_opts_all(void **s)
{
    (void)s;
    svc_opts o;
    char err[200];
    assert_int_equal(parse(&inv_prog, &o, err, "--listen", "127.0.0.1:0", "--threads", "3", "--timeout-ms", "250",
                           "--grace-ms", "150", "--max-pending", "7", "--mode", "guarded", "--admin", "--access-log", "--trace", "t.json", "--payment",
                           "http://127.0.0.1:1", "--stock", "a=1", NULL), 0);
    assert_string_equal(o.listen, "127.0.0.1:0");
    assert_int_equal(o.threads, 3);
    assert_int_equal(svc_opts_timeout_ms(&o), 250);
    assert_int_equal(o.grace_ms, 150);
    assert_int_equal(o.max_pending, 7);
    assert_int_equal(o.mode, SVC_GUARDED);
    assert_true(o.admin && o.access_log);
    assert_string_equal(o.trace, "t.json");
    assert_string_equal(o.upstream, "http://127.0.0.1:1");
    assert_string_equal(o.stock, "a=1");
    assert_string_equal(svc_mode_name(o.mode), "guarded");
    assert_int_equal(parse(&inv_prog, &o, err, "--admission", "off", NULL), 0);
    assert_true(o.admission_off);
    assert_int_equal(parse(&inv_prog, &o, err, "--admission", "on", NULL), 0);
    assert_false(o.admission_off);
    /* the store (issue 16): defaults, then given */
    assert_null(o.data);
    assert_false(o.sync_full);
    assert_int_equal(parse(&inv_prog, &o, err, "--data", "/var/lib/x", "--sync", "full", NULL), 0);
    assert_string_equal(o.data, "/var/lib/x");
    assert_true(o.sync_full);
    assert_int_equal(parse(&inv_prog, &o, err, "--data", ":memory:", "--sync", "normal", NULL), 0);
    assert_string_equal(o.data, ":memory:");
    assert_false(o.sync_full);
    /* the logs (issue 21): text and the sink's default buffer, then given */
    assert_false(o.log_json);
    assert_int_equal(o.log_buffer, 0);
    assert_int_equal(parse(&inv_prog, &o, err, "--log-format", "json", "--log-buffer", "4096", NULL), 0);
    assert_true(o.log_json);
    assert_int_equal(o.log_buffer, 4096);
    assert_int_equal(parse(&inv_prog, &o, err, "--log-format", "text", NULL), 0);
    assert_false(o.log_json);
    assert_int_equal(parse(&inv_prog, &o, err, "--log-format", "JSON", NULL), -EINVAL);
    assert_non_null(strstr(err, "--log-format wants text or json, not 'JSON'"));
    assert_int_equal(parse(&inv_prog, &o, err, "--log-buffer", "4095", NULL), -EINVAL);
    assert_int_equal(parse(&inv_prog, &o, err, "--log-buffer", "1073741825", NULL), -EINVAL);
    assert_int_equal(parse(&inv_prog, &o, err, "--log-buffer", "", NULL), -EINVAL);
}

static void test_opts_naive_budget(void **s)
{
    (void)s;
    svc_opts o;
    char err[200];
    assert_int_equal(parse(&order_prog, &o, err, "--mode", "naive", NULL), 0);
    assert_int_equal(svc_opts_timeout_ms(&o), 86400000);   /* only the client's timeout ends it */
    assert_int_equal(parse(&order_prog, &o, err, "--mode", "naive", "--timeout-ms", "7", NULL), 0);
    assert_int_equal(svc_opts_timeout_ms(&o), 7);
}

/* The tracing flags: stored by the parser, checked with OTEL_* when the
 * tracer is made; a bad value is a one-line error naming it. */
static void test_opts_tracing(void **s)
{
    (void)s;
    svc_opts o;
    char err[300];
    sl_tracer *tr;
    static const char *vars[] = { "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_SERVICE_NAME", "OTEL_TRACES_SAMPLER",
                                  "OTEL_TRACES_SAMPLER_ARG" };
    for (int i = 0; i < 4; i++)
        unsetenv(vars[i]);
    assert_int_equal(parse(&order_prog, &o, err, "--otlp-endpoint", "http://127.0.0.1:4318", "--service-name", "orders",
                           "--traces-sampler", "traceidratio", "--traces-sampler-arg", "0.25", NULL), 0);
    assert_string_equal(o.otlp_endpoint, "http://127.0.0.1:4318");
    assert_string_equal(o.service_name, "orders");
    assert_string_equal(o.traces_sampler, "traceidratio");
    assert_string_equal(o.traces_sampler_arg, "0.25");
    assert_int_equal(svc_tracer_make(&o, "order-svc", &tr, err, sizeof err), 0);
    assert_non_null(tr);
    uint8_t id[16] = { 0 };
    id[15] = 2;   /* low bits 1 (after the shift): well under a quarter */
    assert_true(sl_tracer_sample(tr, NULL, id));
    memset(id + 8, 0xff, 8);
    assert_false(sl_tracer_sample(tr, NULL, id));
    sl_tracer_free(tr);
    /* nothing given: no tracer */
    assert_int_equal(parse(&order_prog, &o, err, NULL), 0);
    assert_int_equal(svc_tracer_make(&o, "order-svc", &tr, err, sizeof err), 0);
    assert_null(tr);
    /* a sampler alone: a tracer that samples but exports nothing */
    setenv("OTEL_TRACES_SAMPLER", "always_on", 1);
    assert_int_equal(svc_tracer_make(&o, "order-svc", &tr, err, sizeof err), 0);
    assert_non_null(tr);
    assert_true(sl_tracer_sample(tr, NULL, id));
    sl_tracer_free(tr);
    /* bad values, from flags and from the environment */
    static const struct { const char *flag, *val, *env, *says; } bad[] = {
        { "--traces-sampler", "sometimes", NULL, "--traces-sampler wants" },
        { "--traces-sampler-arg", "2", NULL, "--traces-sampler-arg wants" },
        { "--otlp-endpoint", "collector:4318", NULL, "--otlp-endpoint wants" },
        { NULL, "bogus", "OTEL_TRACES_SAMPLER", "OTEL_TRACES_SAMPLER=\"bogus\"" },
        { NULL, "x", "OTEL_TRACES_SAMPLER_ARG", "OTEL_TRACES_SAMPLER_ARG=\"x\"" },
        { NULL, "tcp://c:1", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT=\"tcp://c:1\"" },
    };
    unsetenv("OTEL_TRACES_SAMPLER");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (bad[i].flag)
            assert_int_equal(parse(&order_prog, &o, err, bad[i].flag, bad[i].val, NULL), 0);
        else
            assert_int_equal(parse(&order_prog, &o, err, NULL), 0), setenv(bad[i].env, bad[i].val, 1);
        err[0] = '\0';
        assert_int_equal(svc_tracer_make(&o, "order-svc", &tr, err, sizeof err), -EINVAL);
        assert_null(tr);
        if (!strstr(err, bad[i].says) || strncmp(err, "order-svc: ", 11))
            fail_msg("error for %s: %s", bad[i].val, err);
        if (bad[i].env)
            unsetenv(bad[i].env);
    }
}

static void test_opts_errors(void **s)
{
    (void)s;
    svc_opts o;
    char err[200];
    assert_int_equal(parse(&order_prog, &o, err, "--bogus", "1", NULL), -EINVAL);
    assert_non_null(strstr(err, "unknown option '--bogus'"));
    assert_int_equal(parse(&order_prog, &o, err, "--listen", NULL), -EINVAL);
    assert_non_null(strstr(err, "missing value"));
    assert_int_equal(parse(&order_prog, &o, err, "stray", "x", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--threads", "0", NULL), -EINVAL);
    assert_non_null(strstr(err, "--threads"));
    assert_int_equal(parse(&order_prog, &o, err, "--threads", "2x", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--threads", "1025", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--timeout-ms", "-1", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--timeout-ms", "86400001", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--grace-ms", "0", NULL), -EINVAL);
    assert_non_null(strstr(err, "--grace-ms"));
    assert_int_equal(parse(&order_prog, &o, err, "--grace-ms", "600001", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--grace-ms", "soon", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--max-pending", "0", NULL), -EINVAL);
    assert_non_null(strstr(err, "--max-pending"));
    assert_int_equal(parse(&order_prog, &o, err, "--max-pending", "10000001", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--max-pending", "many", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--mode", "careless", NULL), -EINVAL);
    assert_non_null(strstr(err, "careless"));
    /* issue 22: numbers and ports are digits only */
    static const char *bad_ports[] = { "127.0.0.1: 80", "127.0.0.1:+80", "127.0.0.1:-0", "127.0.0.1:",
                                       "127.0.0.1", "127.0.0.1:65536", "127.0.0.1:000080", "127.0.0.1:8x" };
    for (size_t i = 0; i < sizeof bad_ports / sizeof *bad_ports; i++) {
        if (parse(&order_prog, &o, err, "--listen", bad_ports[i], NULL) != -EINVAL)
            fail_msg("--listen '%s' accepted", bad_ports[i]);
        assert_non_null(strstr(err, "--listen"));
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:1,http://%s", bad_ports[i]);
        if (parse(&order_prog, &o, err, "--inventory", url, NULL) != -EINVAL)
            fail_msg("--inventory '%s' accepted", url);
        assert_non_null(strstr(err, "--inventory"));
    }
    assert_int_equal(parse(&order_prog, &o, err, "--threads", " 2", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--threads", "+2", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--timeout-ms", "-0", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--listen", "127.0.0.1:0", "--inventory",
                           "http://127.0.0.1:8082/,http://localhost:65535", NULL), 0);
    assert_int_equal(parse(&order_prog, &o, err, "--admission", "maybe", NULL), -EINVAL);
    assert_non_null(strstr(err, "--admission wants on or off"));
    assert_int_equal(parse(&order_prog, &o, err, "--sync", "always", NULL), -EINVAL);
    assert_non_null(strstr(err, "--sync wants normal or full"));
    assert_int_equal(parse(&order_prog, &o, err, "--data", "", NULL), -EINVAL);
    assert_non_null(strstr(err, "--data wants a directory"));
    assert_int_equal(parse(&order_prog, &o, err, "--data", NULL), -EINVAL);   /* no value */
    /* another program's flags are unknown here */
    assert_int_equal(parse(&order_prog, &o, err, "--payment", "http://x:1", NULL), -EINVAL);
    assert_int_equal(parse(&order_prog, &o, err, "--stock", "a=1", NULL), -EINVAL);
}

static void test_stock(void **s)
{
    (void)s;
    inv_item *it;
    size_t n;
    char err[200];
    assert_int_equal(inv_stock_parse(NULL, &it, &n, err, sizeof err), 0);
    assert_int_equal(n, 10);
    assert_string_equal(it[0].name, "sku-1");
    assert_string_equal(it[9].name, "sku-10");
    assert_int_equal(it[9].count, 1000000);
    free(it);
    assert_int_equal(inv_stock_parse("a=0,b.c:d_e-f=42", &it, &n, err, sizeof err), 0);
    assert_int_equal(n, 2);
    assert_int_equal(it[0].count, 0);
    assert_string_equal(it[1].name, "b.c:d_e-f");
    assert_int_equal(it[1].count, 42);
    free(it);
    static const char *bad[] = { "", "a", "a=", "=1", "a=-1", "a=1x", "a=1,", ",a=1", "a b=1", "a=1,a=2",
                                 "a=1000000000000001", "a=99999999999999999999" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(inv_stock_parse(bad[i], &it, &n, err, sizeof err), -EINVAL);
        assert_non_null(strstr(err, "--stock"));
    }
}

static void test_fault(void **s)
{
    (void)s;
    svc_fault f;
    char err[200];
    const char *body = "{\"delay_ms\":50,\"error_rate\":0.25,\"path\":\"/charge\"}";
    assert_int_equal(svc_fault_parse(body, strlen(body), &f, err, sizeof err), 0);
    assert_true(f.on);
    assert_int_equal(f.delay_ms, 50);
    assert_true(f.error_rate == 0.25);
    assert_false(f.hang || f.reset);
    assert_true(svc_fault_applies(&f, "/charge", 7, "/charge"));
    assert_false(svc_fault_applies(&f, "/void", 5, "/void"));
    body = "{\"hang\":true,\"path\":\"/orders/{id}/paid\"}";
    assert_int_equal(svc_fault_parse(body, strlen(body), &f, err, sizeof err), 0);
    assert_true(svc_fault_applies(&f, "/orders/x/paid", 14, "/orders/{id}/paid"));   /* by pattern */
    body = "{\"reset\":true}";
    assert_int_equal(svc_fault_parse(body, strlen(body), &f, err, sizeof err), 0);
    assert_true(svc_fault_applies(&f, "/anything", 9, NULL));
    json_t *j = svc_fault_json(&f);
    assert_true(json_is_true(json_object_get(j, "reset")));
    /* what GET /admin/fault shows can be posted back (found by
     * fuzz_svc_parse: "path":null was refused) */
    char *shown = json_dumps(j, JSON_COMPACT);
    svc_fault again;
    assert_int_equal(svc_fault_parse(shown, strlen(shown), &again, err, sizeof err), 0);
    assert_true(again.on && again.reset && !again.hang && again.path[0] == '\0');
    free(shown);
    json_decref(j);
    /* hold (parks until cleared): parsed, shown, and shown as postable */
    body = "{\"hold\":true,\"path\":\"/charge\"}";
    assert_int_equal(svc_fault_parse(body, strlen(body), &f, err, sizeof err), 0);
    assert_true(f.on && f.hold && !f.hang && !f.reset && f.delay_ms == 0);
    j = svc_fault_json(&f);
    assert_true(json_is_true(json_object_get(j, "hold")));
    shown = json_dumps(j, JSON_COMPACT);
    assert_int_equal(svc_fault_parse(shown, strlen(shown), &again, err, sizeof err), 0);
    assert_true(again.on && again.hold && !again.hang && !strcmp(again.path, "/charge"));
    free(shown);
    json_decref(j);
    body = "{\"hold\":false}";
    assert_int_equal(svc_fault_parse(body, strlen(body), &f, err, sizeof err), -EINVAL);   /* no fault */
    svc_fault off = { 0 };
    assert_false(svc_fault_applies(&off, "/charge", 7, "/charge"));
    j = svc_fault_json(&off);
    assert_true(json_is_null(j));
    json_decref(j);
    static const char *bad[] = { "", "[]", "{bad", "{}", "{\"delay_ms\":0}", "{\"delay_ms\":-1}",
                                 "{\"delay_ms\":600001}", "{\"delay_ms\":1.5}", "{\"hang\":1}", "{\"hold\":\"yes\"}",
                                 "{\"reset\":\"yes\"}", "{\"error_rate\":1.5}", "{\"error_rate\":-0.1}",
                                 "{\"error_rate\":\"x\"}", "{\"hang\":true,\"path\":\"charge\"}",
                                 "{\"hang\":true,\"path\":7}", "{\"hang\":true,\"nope\":1}",
                                 "{\"hang\":true,\"path\":\"/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}" };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(svc_fault_parse(bad[i], strlen(bad[i]), &f, err, sizeof err), -EINVAL);
        assert_true(err[0] != '\0');
    }
}

#define ORDER_NEED (SVC_BODY_ITEM | SVC_BODY_QTY | SVC_BODY_AMOUNT)
#define ID SVC_BODY_ORDER_ID

static int body(const char *b, unsigned need, unsigned allow, svc_body *out, char *err, size_t errlen)
{
    return svc_body_parse(b, strlen(b), need, allow, out, err, errlen);
}

static void test_body_ok(void **s)
{
    (void)s;
    svc_body b;
    char err[160] = "";
    assert_int_equal(body("{\"item\":\"sku-1\",\"qty\":2,\"amount_cents\":1250,\"note\":[1]}", ORDER_NEED, 0, &b, err,
                          sizeof err), 0);
    assert_string_equal(b.item, "sku-1");
    assert_int_equal(b.qty, 2);
    assert_int_equal(b.amount_cents, 1250);
    assert_string_equal(b.order_id, "");   /* not asked for */
    assert_int_equal(b.has, ORDER_NEED);
    /* an optional field absent, then present; a field neither needed nor
     * allowed is ignored, whatever its value */
    assert_int_equal(body("{\"order_id\":\"o-1\",\"item\":\"x\",\"qty\":1}", ID | SVC_BODY_ITEM | SVC_BODY_QTY,
                          SVC_BODY_AMOUNT, &b, err, sizeof err), 0);
    assert_int_equal(b.has, ID | SVC_BODY_ITEM | SVC_BODY_QTY);
    assert_int_equal(b.amount_cents, 0);
    assert_int_equal(body("{\"order_id\":\"o-1\",\"item\":\"x\",\"qty\":1,\"amount_cents\":0}",
                          ID | SVC_BODY_ITEM | SVC_BODY_QTY, SVC_BODY_AMOUNT, &b, err, sizeof err), 0);
    assert_true(b.has & SVC_BODY_AMOUNT);
    assert_int_equal(body("{\"order_id\":\"o-1\",\"qty\":-5,\"item\":7}", ID, 0, &b, err, sizeof err), 0);
    assert_string_equal(b.order_id, "o-1");
    assert_int_equal(b.has, ID);
    /* the longest keys, and the largest integers */
    assert_int_equal(body("{\"order_id\":\"aaaaaaaaaaaaaaaaaaaaaaa\",\"amount_cents\":9223372036854775807}",
                          ID | SVC_BODY_AMOUNT, 0, &b, err, sizeof err), 0);
    assert_int_equal(strlen(b.order_id), SVC_BODY_ID_MAX - 1);
    assert_true(b.amount_cents == INT64_MAX);
    /* NULL with length 0 is the empty body: not JSON, no crash */
    assert_int_equal(svc_body_parse(NULL, 0, ID, 0, &b, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "not JSON"));
}

static void test_body_errors(void **s)
{
    (void)s;
    static const struct {
        const char *body;
        unsigned need, allow;
        const char *reason;   /* a piece of the reason */
    } bad[] = {
        { "", ORDER_NEED, 0, "not JSON" },
        { "not json", ORDER_NEED, 0, "not JSON" },
        { "{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":1250", ORDER_NEED, 0, "not JSON" },
        { "{\"qty\":99999999999999999999}", ORDER_NEED, 0, "not JSON" },   /* beyond int64 */
        { "[1,2]", ORDER_NEED, 0, "JSON object" },
        { "\"x\"", ID, 0, "expected" },   /* jansson: "'[' or '{' expected" */
        { "{\"qty\":1,\"amount_cents\":1250}", ORDER_NEED, 0, "item: missing" },
        { "{\"item\":\"sku-1\",\"amount_cents\":1250}", ORDER_NEED, 0, "qty: missing" },
        { "{\"item\":\"sku-1\",\"qty\":1}", ORDER_NEED, 0, "amount_cents: missing" },
        { "{}", ID, SVC_BODY_ITEM, "order_id: missing" },
        { "{\"item\":5,\"qty\":1,\"amount_cents\":1250}", ORDER_NEED, 0, "item: want" },
        { "{\"item\":\"\",\"qty\":1,\"amount_cents\":1250}", ORDER_NEED, 0, "item: want" },
        { "{\"item\":\"a b\",\"qty\":1,\"amount_cents\":1250}", ORDER_NEED, 0, "item: want" },
        { "{\"item\":\"a\\u0000b\",\"qty\":1,\"amount_cents\":1250}", ORDER_NEED, 0, "without JSON_ALLOW_NUL" },
        { "{\"item\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\",\"qty\":1,\"amount_cents\":1}",
          ORDER_NEED, 0, "item: want" },   /* 64 bytes */
        { "{\"item\":\"sku-1\",\"qty\":\"1\",\"amount_cents\":1250}", ORDER_NEED, 0, "qty: want" },
        { "{\"item\":\"sku-1\",\"qty\":1.5,\"amount_cents\":1250}", ORDER_NEED, 0, "qty: want" },
        { "{\"item\":\"sku-1\",\"qty\":0,\"amount_cents\":1250}", ORDER_NEED, 0, "qty: want" },
        { "{\"item\":\"sku-1\",\"qty\":-2,\"amount_cents\":1250}", ORDER_NEED, 0, "qty: want" },
        { "{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":\"12\"}", ORDER_NEED, 0, "amount_cents: want" },
        { "{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":-1}", ORDER_NEED, 0, "amount_cents: want" },
        { "{\"item\":\"sku-1\",\"qty\":1,\"amount_cents\":null}", ORDER_NEED, 0, "amount_cents: want" },
        { "{\"order_id\":\"aaaaaaaaaaaaaaaaaaaaaaaa\"}", ID, 0, "order_id: want" },   /* 24 bytes */
        { "{\"order_id\":\"o/1\"}", ID, 0, "order_id: want" },
        { "{\"order_id\":\"o-1\",\"item\":false}", ID, SVC_BODY_ITEM, "item: want" },          /* optional, checked */
        { "{\"order_id\":\"o-1\",\"amount_cents\":-3}", ID, SVC_BODY_AMOUNT, "amount_cents: want" },
        { "{\"order_id\":\"o-1\",\"order_id\":\"o-2\"}", ID, 0, "not JSON" },                  /* a key twice */
        { "{\"item\":\"x\",\"qty\":1,\"amount_cents\":1,\"qty\":-1}", ORDER_NEED, 0, "not JSON" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        svc_body b;
        memset(&b, 0x55, sizeof b);
        char err[160] = "";
        int rc = body(bad[i].body, bad[i].need, bad[i].allow, &b, err, sizeof err);
        if (rc != -EINVAL || !strstr(err, bad[i].reason))
            fail_msg("%s -> %d '%s', want -EINVAL '%s'", bad[i].body, rc, err, bad[i].reason);
        /* nothing half-filled */
        assert_true(b.has == 0 && !b.order_id[0] && !b.item[0] && b.qty == 0 && b.amount_cents == 0);
    }
    /* the first broken field in the documented order is the one named */
    char err[160];
    svc_body b;
    assert_int_equal(body("{\"qty\":0}", ID | SVC_BODY_QTY, 0, &b, err, sizeof err), -EINVAL);
    assert_non_null(strstr(err, "order_id: missing"));
    /* a short err buffer is truncated, still terminated */
    char tiny[8];
    assert_int_equal(body("[]", ID, 0, &b, tiny, sizeof tiny), -EINVAL);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static void test_keys(void **s)
{
    (void)s;
    assert_true(svc_key_valid("sku-1", 5, 64));
    assert_true(svc_key_valid("A.b_c:d-9", 9, 64));
    assert_false(svc_key_valid("", 0, 64));
    assert_false(svc_key_valid(NULL, 3, 64));
    assert_false(svc_key_valid("a\"b", 3, 64));
    assert_false(svc_key_valid("a/b", 3, 64));
    assert_false(svc_key_valid("a b", 3, 64));
    assert_false(svc_key_valid("abcd", 4, 4));   /* needs room for its NUL */
    assert_true(svc_key_valid("abc", 3, 4));
    char k[4] = "xyz";
    assert_false(svc_key_copy("abcd", 4, k, sizeof k));   /* too long: untouched */
    assert_string_equal(k, "xyz");
    assert_false(svc_key_copy("a/", 2, k, sizeof k));
    assert_string_equal(k, "xyz");
    assert_true(svc_key_copy("ab?", 2, k, sizeof k));     /* only len bytes, NUL-terminated */
    assert_string_equal(k, "ab");
}

typedef struct rec { svc_node node; char key[16]; } rec;
static int freed;
static void rec_free(svc_node *n) { freed++; free(n); }

/* svc_map_each's visitor: marks record k<i> in the array `arg`. */
static void rec_mark(svc_node *n, void *arg)
{
    char *seen = arg;
    seen[atoi(((rec *)n)->key + 1)]++;
}

static void test_map(void **s)
{
    (void)s;
    /* FNV-1a test vectors */
    assert_true(svc_hash("", 0) == 0xcbf29ce484222325ULL);
    assert_true(svc_hash("a", 1) == 0xaf63dc4c8601ec8cULL);
    assert_int_equal(svc_shard_of("anything", 8, 1), 0);
    assert_int_equal(svc_shard_of("anything", 8, 0), 0);
    int seen[3] = { 0 };
    svc_map m;
    assert_int_equal(svc_map_init(&m, 4), 0);
    for (int i = 0; i < 1000; i++) {   /* grows past its first size many times */
        rec *r = calloc(1, sizeof *r);
        snprintf(r->key, sizeof r->key, "k%d", i);
        r->node.key = r->key;
        r->node.klen = strlen(r->key);
        assert_null(svc_map_find(&m, r->key, r->node.klen));
        svc_map_put(&m, &r->node);
        seen[svc_shard_of(r->key, r->node.klen, 3)]++;
    }
    assert_int_equal(m.count, 1000);
    for (int i = 0; i < 1000; i++) {
        char k[16];
        snprintf(k, sizeof k, "k%d", i);
        rec *r = (rec *)svc_map_find(&m, k, strlen(k));
        assert_non_null(r);
        assert_string_equal(r->key, k);
    }
    char *visited = calloc(1000, 1);
    assert_non_null(visited);
    svc_map_each(&m, rec_mark, visited);   /* every record exactly once */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(visited[i], 1);
    free(visited);
    assert_null(svc_map_find(&m, "k1000", 5));
    assert_null(svc_map_find(&m, "k1", 1));   /* a prefix is another key */
    for (int i = 0; i < 3; i++)   /* the shards share the keys */
        assert_true(seen[i] > 250);
    svc_map_free(&m, rec_free);
    assert_int_equal(freed, 1000);
    svc_map_each(&m, rec_mark, NULL);   /* freed: an empty table, nothing visited */
}

/* Only the contract's statuses reach order's client; all else is 502. */
static void test_order_failure(void **s)
{
    (void)s;
    static const struct { int status; const char *code; int want; const char *want_code; } cases[] = {
        { 409, "out_of_stock", 409, "out_of_stock" },
        { 409, "order_failed", 409, "order_failed" },
        { 409, "unknown_item", 409, "unknown_item" },
        { 404, "unknown_item", 409, "unknown_item" },   /* inventory's 404 is order's 409 */
        { 503, "overloaded", 503, "overloaded" },
        { 503, NULL, 503, "overloaded" },                 /* shed by the server: no body code */
        { 504, "deadline_exceeded", 504, "deadline_exceeded" },
        { 508, "loop_detected", 508, "loop_detected" },
        { 409, "in_progress", 502, "upstream_failed" },   /* not a conflict the client can act on */
        { 409, NULL, 502, "upstream_failed" },
        { 404, "not_found", 502, "upstream_failed" },
        { 404, NULL, 502, "upstream_failed" },
        { 400, "bad_request", 502, "upstream_failed" },   /* order's own bug */
        { 500, "injected_fault", 502, "upstream_failed" },
        { 502, "upstream_failed", 502, "upstream_failed" },
        { 418, "teapot", 502, "upstream_failed" },
        { 200, NULL, 502, "upstream_failed" },            /* not a failure: never asked, but total */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *code = "unset";
        int st = order_failure_map(cases[i].status, cases[i].code, &code);
        if (st != cases[i].want || strcmp(code, cases[i].want_code))
            fail_msg("%d %s -> %d %s, want %d %s", cases[i].status, cases[i].code ? cases[i].code : "(none)", st,
                     code, cases[i].want, cases[i].want_code);
    }
}

/* ---- svc_json: the builder writes what jansson writes ------------------------------ */

/* jansson's compact text of {"k":s} (s valid UTF-8), to compare with. */
static char *jansson_text(const char *s, size_t n)
{
    json_t *o = json_object();
    json_object_set_new(o, "k", json_stringn(s, n));
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

static void test_json_like_jansson(void **state)
{
    (void)state;
    static const char *const strs[] = {
        "", "plain", "a\"quote", "back\\slash", "nl\ncr\rtab\tbs\bff\f", "\x01\x1f\x7f", "slash/",
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "(cause: caller-deadline at payment-svc)",
    };
    for (size_t i = 0; i < sizeof strs / sizeof *strs; i++) {
        char buf[128];
        svc_json j;
        size_t len;
        svc_json_init(&j, buf, sizeof buf);
        svc_json_str(&j, "k", strs[i]);
        const char *text = svc_json_end(&j, &len);
        char *want = jansson_text(strs[i], strlen(strs[i]));
        assert_non_null(text);
        assert_non_null(want);
        assert_string_equal(text, want);
        assert_int_equal(len, strlen(want));
        free(want);
    }
    /* several members, integers at both ends of their range, a string
     * with a NUL inside (strn) */
    char buf[256];
    svc_json j;
    size_t len;
    svc_json_init(&j, buf, sizeof buf);
    svc_json_str(&j, "order_id", "0123abcd");
    svc_json_int(&j, "qty", 3);
    svc_json_int(&j, "min", INT64_MIN);
    svc_json_int(&j, "max", INT64_MAX);
    svc_json_int(&j, "zero", 0);
    svc_json_int(&j, "neg", -42);
    svc_json_int(&j, "ten", 10);
    svc_json_strn(&j, "nul", "a\0b", 3);
    assert_string_equal(svc_json_end(&j, &len), "{\"order_id\":\"0123abcd\",\"qty\":3,\"min\":-9223372036854775808,"
                                                 "\"max\":9223372036854775807,\"zero\":0,\"neg\":-42,\"ten\":10,"
                                                 "\"nul\":\"a\\u0000b\"}");
    assert_int_equal(len, strlen(buf));
    svc_json_init(&j, buf, sizeof buf);
    assert_string_equal(svc_json_end(&j, &len), "{}");
    assert_int_equal(len, 2);
}

/* Bytes that are not well-formed UTF-8 become U+FFFD, each on its own
 * (jansson refuses the string, so svc_reply_error used to answer nothing). */
static void test_json_bad_utf8(void **state)
{
    (void)state;
    static const struct { const char *in, *want; } cases[] = {
        { "\xff", "{\"k\":\"\\uFFFD\"}" },
        { "a\x80z", "{\"k\":\"a\\uFFFDz\"}" },                 /* a lone continuation byte */
        { "\xc3", "{\"k\":\"\\uFFFD\"}" },                      /* cut short at the end */
        { "\xc3(", "{\"k\":\"\\uFFFD(\"}" },                    /* cut short by ASCII */
        { "\xc0\xaf", "{\"k\":\"\\uFFFD\\uFFFD\"}" },           /* overlong '/' */
        { "\xe0\x80\xaf", "{\"k\":\"\\uFFFD\\uFFFD\\uFFFD\"}" },/* overlong, 3 bytes */
        { "\xed\xa0\x80", "{\"k\":\"\\uFFFD\\uFFFD\\uFFFD\"}" },/* a surrogate (U+D800) */
        { "\xf4\x90\x80\x80", "{\"k\":\"\\uFFFD\\uFFFD\\uFFFD\\uFFFD\"}" },   /* past U+10FFFF */
        { "\xf0\x9f\x98\x80", "{\"k\":\"\xf0\x9f\x98\x80\"}" }, /* U+1F600, kept */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char buf[64];
        svc_json j;
        size_t len;
        svc_json_init(&j, buf, sizeof buf);
        svc_json_str(&j, "k", cases[i].in);
        const char *text = svc_json_end(&j, &len);
        if (!text || strcmp(text, cases[i].want))
            fail_msg("case %zu: %s, want %s", i, text ? text : "(null)", cases[i].want);
        json_t *back = json_loads(text, 0, NULL);   /* and jansson reads it back */
        assert_non_null(back);
        json_decref(back);
    }
}

/* A member that does not fit leaves the text as it was; the end is NULL. */
static void test_json_full(void **state)
{
    (void)state;
    char buf[16];
    svc_json j;
    size_t len = 99;
    svc_json_init(&j, buf, sizeof buf);
    svc_json_str(&j, "a", "bc");                  /* {"a":"bc" : 9 bytes */
    assert_false(j.failed);
    svc_json_str(&j, "d", "\"\"\"");              /* ,"d":"\"\"\"" : 13 more: too long */
    assert_true(j.failed);
    assert_string_equal(buf, "{\"a\":\"bc\"");   /* as it was */
    svc_json_int(&j, "e", 1);                     /* fits, but the builder has failed */
    assert_string_equal(buf, "{\"a\":\"bc\"");
    assert_null(svc_json_end(&j, &len));
    assert_int_equal(len, 0);
    /* exactly full: "{}" and its NUL in 3 bytes; then the closing brace
     * that does not fit */
    char tiny[3];
    svc_json_init(&j, tiny, sizeof tiny);
    assert_string_equal(svc_json_end(&j, &len), "{}");
    char two[2] = "x";
    svc_json_init(&j, two, sizeof two);
    assert_null(svc_json_end(&j, &len));
    assert_string_equal(two, "");
    char nine[9];   /* {"a":"bc" fits in 10 with its NUL, not in 9 */
    svc_json_init(&j, nine, sizeof nine);
    svc_json_str(&j, "a", "bc");
    assert_true(j.failed);
    assert_string_equal(nine, "{");
    /* a closed builder takes nothing more */
    svc_json_init(&j, buf, sizeof buf);
    assert_non_null(svc_json_end(&j, &len));
    svc_json_int(&j, "x", 1);
    assert_string_equal(buf, "{}");
}

/* ---- svc_route_db: a table it cannot serve is refused before anything is made ---- */

typedef struct t_io {
    char id[24];
    int64_t n;
} t_io;

static int t_step_fn(svc_conn *c, void *io) { (void)c; (void)io; return 0; }
static int t_answer(svc_job *job, void *io, svc_json *j) { (void)job; (void)io; (void)j; return 404; }
static const svc_dbstep t_step = { .name = "t", .fn = t_step_fn };

static void test_dbroute_invalid(void **state)
{
    (void)state;
    const svc_dbroute ok = { .step = &t_step, SVC_DBROUTE_IO(t_io, id), .answer = t_answer, .noun = "order",
                             .missing = "not_found", .no_key = "no such order", .none = "no order %s" };
    assert_int_equal(ok.io_size, sizeof(t_io));
    assert_int_equal(ok.key_at, 0);
    assert_int_equal(ok.key_max, 24);
    svc s = { 0 };   /* never reached: every call below fails its checks first */
    assert_int_equal(svc_route_db(&s, "GET", "/x/{id}", NULL), -EINVAL);
    static const char *const bad_none[] = { "no order", "no order %d", "%s and %s", "100% %s", "%s 100%", "%" };
    for (size_t i = 0; i < sizeof bad_none / sizeof *bad_none; i++) {
        svc_dbroute r = ok;
        r.none = bad_none[i];
        if (svc_route_db(&s, "GET", "/x/{id}", &r) != -EINVAL)
            fail_msg("none '%s' was taken", bad_none[i]);
    }
    svc_dbroute r = ok;
    r.step = NULL;
    assert_int_equal(svc_route_db(&s, "GET", "/x/{id}", &r), -EINVAL);
    r = ok, r.answer = NULL;
    assert_int_equal(svc_route_db(&s, "GET", "/x/{id}", &r), -EINVAL);
    r = ok, r.noun = NULL;
    assert_int_equal(svc_route_db(&s, "GET", "/x/{id}", &r), -EINVAL);
    r = ok, r.missing = NULL;
    assert_int_equal(svc_route_db(&s, "GET", "/x/{id}", &r), -EINVAL);
    r = ok, r.none = NULL;
    assert_int_equal(svc_route_db(&s, "GET", "/x/{id}", &r), -EINVAL);
    r = ok, r.key_max = 0;
    assert_int_equal(svc_route_db(&s, "GET", "/x/{id}", &r), -EINVAL);
    r = ok, r.key_at = sizeof(t_io) - 8;   /* the key runs past io's end */
    assert_int_equal(svc_route_db(&s, "GET", "/x/{id}", &r), -EINVAL);
    r = ok, r.key_at = SIZE_MAX;           /* and does not wrap around */
    assert_int_equal(svc_route_db(&s, "GET", "/x/{id}", &r), -EINVAL);
    r = ok, r.no_key = NULL;               /* a capture key needs its 404 message */
    assert_int_equal(svc_route_db(&s, "GET", "/x/{id}", &r), -EINVAL);
    assert_int_equal(svc_route_db(&s, "GET", "/x", &ok), -EINVAL);   /* and a capture */
}

/* A failed call is ambiguous only if the callee may have seen it: one
 * that timed out before any byte left (here: never started, so the client
 * made no state for it) is as definite as -EBUSY, and the caller undoes
 * its own step at once instead of keeping the stock for the order's
 * release (issue 14: before, every -ETIMEDOUT was ambiguous). */
static void test_upstream_ambiguous(void **state)
{
    (void)state;
    sl_http_resp r;
    memset(&r, 0, sizeof r);
    assert_false(svc_upstream_ambiguous(-EBUSY, &r));
    assert_false(svc_upstream_ambiguous(-ECONNREFUSED, &r));
    assert_false(svc_upstream_ambiguous(-ETIMEDOUT, &r));   /* never left */
    assert_false(svc_upstream_ambiguous(-ECANCELED, &r));
    static const int definite[] = { 200, 404, 409, 503, 508 }, unknown[] = { 500, 502, 504 };
    for (size_t i = 0; i < sizeof definite / sizeof *definite; i++) {
        r.status = definite[i];
        assert_false(svc_upstream_ambiguous(0, &r));
    }
    for (size_t i = 0; i < sizeof unknown / sizeof *unknown; i++) {
        r.status = unknown[i];
        assert_true(svc_upstream_ambiguous(0, &r));
    }
    /* a call that left and then timed out: tests/test_client.c,
     * test_call_reached (sl_http_call_reached true) */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_defaults), cmocka_unit_test(test_opts_all),
        cmocka_unit_test(test_opts_naive_budget), cmocka_unit_test(test_opts_errors),
        cmocka_unit_test(test_opts_tracing),
        cmocka_unit_test(test_stock), cmocka_unit_test(test_fault),
        cmocka_unit_test(test_body_ok), cmocka_unit_test(test_body_errors),
        cmocka_unit_test(test_keys), cmocka_unit_test(test_map),
        cmocka_unit_test(test_order_failure),
        cmocka_unit_test(test_json_like_jansson), cmocka_unit_test(test_json_bad_utf8),
        cmocka_unit_test(test_json_full), cmocka_unit_test(test_dbroute_invalid),
        cmocka_unit_test(test_upstream_ambiguous),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
