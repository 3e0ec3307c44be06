/* test_load_unit: sluice-load's pieces without a network: body
 * placeholders, option parsing (and every usage error), per-second stats,
 * the JSON output schema, the HTML report and the open loop's timer. */
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>
#include "opts.h"
#include "report.h"
#include "stats.h"
#include "tick.h"
#include "tmpl.h"

/* ---- placeholders ------------------------------------------------------- */

static void tmpl_expands(void **st)
{
    (void)st;
    tmpl t;
    char err[256], out[256];
    const char *src = "{\"id\":{{seq}},\"qty\":{{rand:3-5}},\"x\":\"{{rand:7-7}}\"}";
    assert_int_equal(tmpl_parse(&t, src, strlen(src), err, sizeof err), 0);
    assert_false(t.constant);
    uint64_t rng = 1;
    bool seen[6] = { 0 };
    for (uint64_t seq = 0; seq < 300; seq++) {
        size_t n = tmpl_expand(&t, seq, &rng, out);
        assert_true(n <= t.max_len);
        out[n] = '\0';
        unsigned long id, qty;
        char x[8];
        assert_int_equal(sscanf(out, "{\"id\":%lu,\"qty\":%lu,\"x\":\"%7[0-9]\"}", &id, &qty, x), 3);
        assert_int_equal(id, seq);
        assert_true(qty >= 3 && qty <= 5);
        seen[qty] = true;
        assert_string_equal(x, "7");
    }
    assert_true(seen[3] && seen[4] && seen[5]);
    tmpl_free(&t);
    assert_int_equal(tmpl_parse(&t, "plain {}", 8, err, sizeof err), 0);
    assert_true(t.constant);
    assert_int_equal(tmpl_expand(&t, 5, &rng, out), 8);
    assert_memory_equal(out, "plain {}", 8);
    tmpl_free(&t);
}

static void tmpl_rejects(void **st)
{
    (void)st;
    static const char *bad[] = { "{{nope}}", "{{seq", "x{{", "{{rand:5-3}}", "{{rand:a-3}}",
                                 "{{rand:1}}", "{{rand:-1-3}}", "{{rand:1-99999999999999999999}}",
                                 "{{}}", "{{SEQ}}" };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tmpl t;
        char err[256] = "";
        if (tmpl_parse(&t, bad[i], strlen(bad[i]), err, sizeof err) != -EINVAL)
            fail_msg("accepted %s", bad[i]);
        assert_true(strlen(err) > 0);
    }
}

/* ---- options ------------------------------------------------------------ */

static int parse(load_opts *o, char *err, const char *const *args)
{
    char *argv[32] = { "sluice-load" };
    int n = 1;
    for (; args[n - 1]; n++)
        argv[n] = (char *)args[n - 1];
    return load_opts_parse(o, n, argv, err, 256);
}

static void opts_defaults(void **st)
{
    (void)st;
    load_opts o;
    char err[256];
    assert_int_equal(parse(&o, err, (const char *[]){ "http://localhost:8081/orders", NULL }), 0);
    assert_true(o.rate == 0 && o.connections == LOAD_CLOSED_CONNS && o.threads == 1);
    assert_true(o.duration_s == 10 && o.timeout_ms == 2000 && o.deadline_header);
    assert_string_equal(o.method, "GET");
    assert_string_equal(o.path, "/orders");
    assert_string_equal(o.host, "localhost:8081");
    load_opts_free(&o);
    assert_int_equal(parse(&o, err, (const char *[]){ "--rate", "50", "--body", "{}", "--header",
        "Content-Type: text/plain", "http://127.0.0.1", "--no-deadline-header", NULL }), 0);
    assert_true(o.rate == 50 && o.connections == LOAD_OPEN_CAP && !o.deadline_header);
    assert_string_equal(o.method, "POST");
    assert_string_equal(o.path, "/");
    assert_string_equal(o.host, "127.0.0.1:80");
    assert_true(o.user_ctype && o.nheaders == 1);
    load_opts_free(&o);
    /* what a header may hold: tchar names, HTAB and 8-bit (obs-text) in values */
    assert_int_equal(parse(&o, err, (const char *[]){ "http://127.0.0.1:8080/", "--header",
        "X-A!#$%&'*+-.^_`|~9: a\tb \xc3\xa9", NULL }), 0);
    assert_int_equal(o.nheaders, 1);
    assert_string_equal(o.headers[0], "X-A!#$%&'*+-.^_`|~9: a\tb \xc3\xa9");
    load_opts_free(&o);
}

static void opts_errors(void **st)
{
    (void)st;
    static const struct { const char *a[6]; int rc; const char *msg; } cases[] = {
        { { NULL }, 2, "missing URL" },
        { { "http://127.0.0.1/", "http://127.0.0.1/", NULL }, 2, "unexpected argument" },
        { { "http://127.0.0.1/", "--rate", "0", NULL }, 2, "--rate" },
        { { "http://127.0.0.1/", "--rate", "5x", NULL }, 2, "--rate" },
        { { "http://127.0.0.1/", "--connections", "0", NULL }, 2, "--connections" },
        { { "http://127.0.0.1/", "--duration", "-1", NULL }, 2, "--duration" },
        { { "http://127.0.0.1/", "--warmup", "nan", NULL }, 2, "--warmup" },
        { { "http://127.0.0.1/", "--threads", "0", NULL }, 2, "--threads" },
        { { "http://127.0.0.1/", "--threads", "4", "--connections", "2", NULL }, 2, "--threads" },
        { { "http://127.0.0.1/", "--timeout", "0", NULL }, 2, "--timeout" },
        { { "http://127.0.0.1/", "--method", "get", NULL }, 2, "--method" },
        { { "http://127.0.0.1/", "--header", "NoColon", NULL }, 2, "--header" },
        { { "http://127.0.0.1/", "--header", "Bad Name: x", NULL }, 2, "--header" },
        /* issue 22: names are tokens, values have no controls, ports digits only */
        { { "http://127.0.0.1/", "--header", "X\xc3\xa9: x", NULL }, 2, "not a token" },
        { { "http://127.0.0.1/", "--header", "X\x80: x", NULL }, 2, "not a token" },
        { { "http://127.0.0.1/", "--header", "{X}: x", NULL }, 2, "not a token" },
        { { "http://127.0.0.1/", "--header", "a@b: x", NULL }, 2, "not a token" },
        { { "http://127.0.0.1/", "--header", "a/b: x", NULL }, 2, "not a token" },
        { { "http://127.0.0.1/", "--header", "X: a\x01" "b", NULL }, 2, "control character" },
        { { "http://127.0.0.1/", "--header", "X: a\x7f", NULL }, 2, "control character" },
        { { "http://127.0.0.1/", "--header", "X: \x1b[0m", NULL }, 2, "control character" },
        { { "http://127.0.0.1: 80/", NULL }, 1, "URL" },
        { { "http://127.0.0.1:+80/", NULL }, 1, "URL" },
        { { "http://127.0.0.1:-0/", NULL }, 1, "URL" },
        { { "http://127.0.0.1/", "--threads", " 2", "--connections", "4", NULL }, 2, "--threads" },
        { { "http://127.0.0.1/", "--connections", "+4", NULL }, 2, "--connections" },
        { { "http://127.0.0.1/", "--body", "{{x}}", NULL }, 2, "--body" },
        { { "http://127.0.0.1/", "--body", "1", "--body", "2", NULL }, 2, "one body" },
        { { "http://127.0.0.1/", "--what", NULL }, 2, "unknown option" },
        { { "http://127.0.0.1/", "--rate", NULL }, 2, "needs a value" },
        { { "https://127.0.0.1/", NULL }, 1, "URL" },
        { { "http://example_com/", NULL }, 1, "URL: bad host" },
        { { "http://127.0.0.1:0/", NULL }, 1, "URL: bad port" },
        { { "http://127.0.0.1:70000/", NULL }, 1, "URL: bad port" },
        { { "http://:80/", NULL }, 1, "URL: bad host" },
        { { "http://::1:80/", NULL }, 1, "IPv6 address goes in brackets" },
        { { "http://[::1/", NULL }, 1, "URL: bad IPv6 address" },
        { { "http://127.0.0.1/a b", NULL }, 1, "URL: a space"  },
        { { "http://127.0.0.1/", "--body-file", "/nonexistent/f", NULL }, 1, "--body-file" },
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        load_opts o;
        char err[256] = "";
        int rc = parse(&o, err, cases[i].a);
        if (rc != cases[i].rc || !strstr(err, cases[i].msg))
            fail_msg("case %zu: rc %d (want %d), message '%s' (want '%s')", i, rc, cases[i].rc, err,
                     cases[i].msg);
    }
}

/* IPv6 and names (a hosts file of the test's own; a name not in it asks a
 * nameserver that never answers, bounded by its 0.2 s timeout). */
static void opts_urls(void **st)
{
    (void)st;
    load_opts o;
    char err[256] = "", dir[] = "/tmp/sl-load-XXXXXX", hosts[64], conf[64];
    assert_non_null(mkdtemp(dir));
    snprintf(hosts, sizeof hosts, "%s/hosts", dir);
    snprintf(conf, sizeof conf, "%s/resolv.conf", dir);
    FILE *f = fopen(hosts, "w");
    fputs("127.0.0.1 order.test\n::1 six.test\n", f);
    fclose(f);
    f = fopen(conf, "w");
    fputs("nameserver 127.0.0.1:1\noptions timeout:0.2 attempts:1\n", f);
    fclose(f);
    setenv("SLUICE_HOSTS", hosts, 1);
    setenv("SLUICE_RESOLV_CONF", conf, 1);
    assert_int_equal(parse(&o, err, (const char *[]){ "http://[::1]:8081/orders", NULL }), 0);
    assert_int_equal(o.addr.ss_family, AF_INET6);
    assert_string_equal(o.host, "[::1]:8081");
    load_opts_free(&o);
    assert_int_equal(parse(&o, err, (const char *[]){ "http://order.test:8081/orders", NULL }), 0);
    assert_int_equal(o.addr.ss_family, AF_INET);
    assert_int_equal(ntohs(((struct sockaddr_in *)&o.addr)->sin_port), 8081);
    assert_string_equal(o.host, "order.test:8081");   /* the name, as written */
    load_opts_free(&o);
    assert_int_equal(parse(&o, err, (const char *[]){ "http://six.test/", NULL }), 0);
    assert_int_equal(o.addr.ss_family, AF_INET6);
    assert_string_equal(o.host, "six.test:80");
    load_opts_free(&o);
    assert_int_equal(parse(&o, err, (const char *[]){ "http://nope.test:8081/", NULL }), 1);
    assert_non_null(strstr(err, "no answer from the resolver"));
    unsetenv("SLUICE_HOSTS");
    unsetenv("SLUICE_RESOLV_CONF");
    unlink(hosts);
    unlink(conf);
    rmdir(dir);
}

static void opts_body_file(void **st)
{
    (void)st;
    char path[] = "/tmp/test_load_bodyXXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "{\"n\":{{seq}}}", 13), 13);
    close(fd);
    load_opts o;
    char err[256];
    assert_int_equal(parse(&o, err, (const char *[]){ "http://127.0.0.1:1/x", "--body-file", path, NULL }), 0);
    assert_true(o.has_body && !o.body.constant && o.body.src_len == 13);
    load_opts_free(&o);
    unlink(path);
}

/* ---- stats, JSON, HTML -------------------------------------------------- */

/* Two "reactors" with 3 seconds of records, sealed and merged. */
static void make_result(load_result *r)
{
    load_stats a, b;
    assert_int_equal(load_stats_init(&a, 3), 0);
    assert_int_equal(load_stats_init(&b, 3), 0);
    for (int i = 0; i < 300; i++) {
        load_stats *s = i % 2 ? &a : &b;
        assert_int_equal(load_stats_record(s, (size_t)(i / 100), 1000000 + (uint64_t)i * 1000,
                                           i % 10 == 0 ? 503 : 200, -1), 0);
    }
    assert_int_equal(load_stats_record(&a, 1, 2000000000, -1, ERR_TIMEOUT), 0);
    assert_int_equal(load_stats_record(&b, 2, 5000, -1, ERR_RESET), 0);
    assert_int_equal(load_stats_record(&a, 9, 5000, -1, ERR_CONNECT), 0);  /* clamped to the last */
    for (size_t s = 0; s < 3; s++) {
        assert_int_equal(load_stats_seal(&a, s), 0);
        assert_int_equal(load_stats_seal(&b, s), 0);
    }
    /* a late record reopens a sealed second; sealing again keeps both */
    assert_int_equal(load_stats_record(&b, 0, 7000, 201, -1), 0);
    assert_int_equal(load_stats_seal(&b, 0), 0);
    load_stats *both[] = { &a, &b };
    assert_int_equal(load_result_merge(r, both, 2), 0);
    load_stats_free(&a);
    load_stats_free(&b);
    r->duration_s = 3;
}

static void stats_merge(void **st)
{
    (void)st;
    load_result r;
    make_result(&r);
    assert_int_equal(r.requests, 304);
    assert_int_equal(r.status[200], 270);
    assert_int_equal(r.status[503], 30);
    assert_int_equal(r.status[201], 1);
    assert_int_equal(r.err[ERR_TIMEOUT], 1);
    assert_int_equal(r.npoints, 3);
    assert_int_equal(r.points[0].requests, 101);
    assert_int_equal(r.points[1].requests, 101);
    assert_int_equal(r.points[2].requests, 102);
    assert_int_equal(r.points[1].err[ERR_TIMEOUT], 1);
    assert_true(r.points[1].max == 2000000000);
    assert_true(r.points[0].p50 > 1000000 && r.points[0].p50 < 1100000);
    load_result_free(&r);
}

static void json_schema(void **st)
{
    (void)st;
    load_opts o;
    char err[256];
    assert_int_equal(parse(&o, err, (const char *[]){ "http://127.0.0.1:9/p", "--rate", "100", NULL }), 0);
    load_result r;
    make_result(&r);
    json_t *j = report_json(&o, &r);
    assert_non_null(j);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    json_error_t e;
    j = json_loads(text, 0, &e);
    free(text);
    assert_non_null(j);
    const char *keys[] = { "url", "method", "mode", "rate", "connections", "threads", "timeout_ms",
                           "requests", "duration_s", "rps", "latency_ms", "latency_2xx_ms", "status",
                           "errors", "behind_schedule", "series" };
    assert_int_equal(json_object_size(j), sizeof keys / sizeof *keys);
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        assert_non_null(json_object_get(j, keys[i]));
    assert_string_equal(json_string_value(json_object_get(j, "mode")), "open");
    assert_true(json_number_value(json_object_get(j, "rps")) > 101.3 &&
                json_number_value(json_object_get(j, "rps")) < 101.4);
    const char *lat[] = { "min", "p50", "p90", "p99", "p999", "p9999", "max", "mean", "stdev" };
    for (size_t i = 0; i < sizeof lat / sizeof *lat; i++)
        assert_true(json_is_real(json_object_get(json_object_get(j, "latency_ms"), lat[i])));
    assert_true(json_real_value(json_object_get(json_object_get(j, "latency_ms"), "max")) == 2000.0);
    /* 2xx only: the timeout (2 s) and the 503s are not in it; the 201 of
     * 7 us is (its min), the slowest 200 (1.299 ms) is its max */
    json_t *ok = json_object_get(j, "latency_2xx_ms");
    assert_true(json_real_value(json_object_get(ok, "max")) < 1.31);
    assert_true(json_real_value(json_object_get(ok, "min")) < 0.01);
    json_t *errs = json_object_get(j, "errors");
    assert_int_equal(json_object_size(errs), 4);
    assert_int_equal(json_integer_value(json_object_get(errs, "timeout")), 1);
    assert_int_equal(json_integer_value(json_object_get(errs, "protocol")), 0);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "status"), "503")), 30);
    json_t *series = json_object_get(j, "series"), *p;
    size_t i;
    assert_int_equal(json_array_size(series), 3);
    json_array_foreach(series, i, p) {
        assert_int_equal(json_integer_value(json_object_get(p, "t")), (json_int_t)i + 1);
        assert_true(json_is_integer(json_object_get(p, "requests")));
        assert_true(json_is_number(json_object_get(p, "rps")));
        assert_true(json_is_object(json_object_get(p, "status")));
        assert_int_equal(json_object_size(json_object_get(p, "errors")), 4);
        json_t *pl = json_object_get(p, "latency_ms");
        assert_true(json_is_real(json_object_get(pl, "p50")) && json_is_real(json_object_get(pl, "p99")) &&
                    json_is_real(json_object_get(pl, "max")));
    }
    json_decref(j);
    load_result_free(&r);
    load_opts_free(&o);
}

static void html_report(void **st)
{
    (void)st;
    load_opts o;
    char err[256], path[] = "/tmp/test_load_htmlXXXXXX";
    assert_int_equal(parse(&o, err, (const char *[]){ "http://127.0.0.1:9/<p>", NULL }), 0);
    load_result r;
    make_result(&r);
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(report_html(path, &o, &r), 0);
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 1 << 20);
    size_t n = fread(buf, 1, (1 << 20) - 1, f);
    fclose(f);
    assert_true(n > 1000);
    int svgs = 0;
    for (const char *s = buf; (s = strstr(s, "<svg")); s++)
        svgs++;
    assert_int_equal(svgs, 3);
    assert_non_null(strstr(buf, "&lt;p&gt;"));           /* escaped */
    assert_null(strstr(buf, "<script"));
    assert_null(strstr(buf, "http://www.w3.org/1999")); /* nothing fetched */
    assert_null(strstr(buf, "nan"));
    free(buf);
    unlink(path);
    assert_int_equal(report_html("/nonexistent/dir/r.html", &o, &r), -ENOENT);
    load_result_free(&r);
    load_opts_free(&o);
}

/* ---- the open loop's timer (tick.h) ------------------------------------- */

/* Walks one worker's share of a schedule as the worker does (request j
 * due at t_begin + j x period, truncated; armed again from j when the
 * timer as armed would not wake it in time) and returns how many times
 * the timer was armed. Every request's tick is at or after its due time
 * and within the slack. */
static uint64_t walk_schedule(double rate, int n, int id, uint64_t requests)
{
    double period = 1e9 / rate;
    uint64_t t_begin = 5000000000u, arms = 0;
    load_tick k = { 0, 0, 0 };
    for (uint64_t m = 0; m < requests; m++) {
        uint64_t j = (uint64_t)id + m * (uint64_t)n;
        uint64_t due = t_begin + (uint64_t)((double)j * period);
        if (!load_tick_keeps(&k, j, n, due, LOAD_TICK_SLACK_NS)) {
            k = (load_tick){ due, j, load_tick_interval(period, n) };
            arms++;
        }
        uint64_t at = k.tick0 + (j - k.j0) / (uint64_t)n * k.iv;
        assert_true(at >= due);
        assert_true(at - due <= LOAD_TICK_SLACK_NS);
    }
    return arms;
}

/* A one-shot timer armed for each request cost a timerfd_settime per
 * request (~17 % of the client's CPU at 30,000/s); the periodic one is
 * armed again only when rounding has moved it by the slack. */
static void tick_armed_once_a_phase(void **st)
{
    (void)st;
    uint64_t a = walk_schedule(30000, 1, 0, 1000000);   /* 33,333.3 ns apart */
    assert_true(a >= 1 && a <= 1000000 / 10000);
    a = walk_schedule(7000, 3, 2, 300000);              /* three workers, the third's share */
    assert_true(a >= 1 && a <= 300000 / 10000);
    a = walk_schedule(5000, 2, 1, 100000);              /* a period of whole ns: never again */
    assert_int_equal(a, 1);
    assert_int_equal(load_tick_interval(1e9 / 30000, 1), 33334);
    assert_int_equal(load_tick_interval(0.25, 1), 1);   /* 4 G/s: not 0 */
}

/* Not armed, a request before the phase's first, no workers, a tick
 * earlier than the due time or later than the slack: armed again. */
static void tick_rearms(void **st)
{
    (void)st;
    load_tick k = { 0, 0, 0 };
    assert_false(load_tick_keeps(&k, 0, 1, 100, LOAD_TICK_SLACK_NS));
    k = (load_tick){ 1000000, 10, 1000 };
    assert_true(load_tick_keeps(&k, 10, 1, 1000000, LOAD_TICK_SLACK_NS));
    assert_true(load_tick_keeps(&k, 12, 1, 1002000, LOAD_TICK_SLACK_NS));
    assert_false(load_tick_keeps(&k, 9, 1, 999000, LOAD_TICK_SLACK_NS));    /* before j0 */
    assert_false(load_tick_keeps(&k, 12, 0, 1002000, LOAD_TICK_SLACK_NS));  /* n < 1 */
    assert_false(load_tick_keeps(&k, 12, 1, 1002001, LOAD_TICK_SLACK_NS));  /* would wake 1 ns early */
    assert_true(load_tick_keeps(&k, 12, 1, 1002000 - LOAD_TICK_SLACK_NS, LOAD_TICK_SLACK_NS));
    assert_false(load_tick_keeps(&k, 12, 1, 1002000 - LOAD_TICK_SLACK_NS - 1, LOAD_TICK_SLACK_NS));
    k = (load_tick){ 1000000, 1, 3000 };                                     /* three workers */
    assert_true(load_tick_keeps(&k, 7, 3, 1006000, LOAD_TICK_SLACK_NS));    /* two ticks on */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tmpl_expands),
        cmocka_unit_test(tmpl_rejects),
        cmocka_unit_test(opts_defaults),
        cmocka_unit_test(opts_errors),
        cmocka_unit_test(opts_urls),
        cmocka_unit_test(opts_body_file),
        cmocka_unit_test(stats_merge),
        cmocka_unit_test(json_schema),
        cmocka_unit_test(html_report),
        cmocka_unit_test(tick_armed_once_a_phase),
        cmocka_unit_test(tick_rearms),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
