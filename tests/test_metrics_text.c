/* test_metrics_text.c: /metrics parsed whole by a strict parser of the
 * text exposition format (version 0.0.4), with names that need escaping:
 * quotes, backslashes, newlines and bytes that are not UTF-8, in channel
 * names and route patterns; two channels of one name must be two series.
 * When `promtool` is installed (Debian's prometheus package) the same
 * exposition goes through `promtool check metrics` too. Then the families
 * of docs/metrics.md from a live two-reactor server (requests by method,
 * route and status; latency; process_*; build info; an application's own
 * family; OpenMetrics with an exemplar), and a scrape cancelled once every
 * reactor's snapshot has arrived (it used to leak). */
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/wait.h>
#include <time.h>
#include <event2/event.h>
#include "config.h"
#include "httputil.h"

/* ---- a strict exposition parser --------------------------------------------------- */

#define MAX_SERIES 4096
#define MAX_FAMILIES 256

typedef struct expo {
    char *series[MAX_SERIES];       /* "name{sorted labels}", to find duplicates */
    int nseries;
    char families[MAX_FAMILIES][128];   /* in the order they began */
    char types[MAX_FAMILIES][16];
    int nfam;
    char err[512];
    int line;
} expo;

static bool name_start(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool name_char(int c) { return name_start(c) || (c >= '0' && c <= '9'); }

/* Valid UTF-8 (no overlong forms, no surrogates, nothing past U+10FFFF). */
static bool utf8_ok(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t k = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        if (!k || i + k > n)
            return false;
        uint32_t cp = k == 1 ? c : k == 2 ? c & 0x1f : k == 3 ? c & 0x0f : c & 0x07;
        for (size_t j = 1; j < k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (p[i + j] & 0x3f);
        }
        static const uint32_t least[5] = { 0, 0, 0x80, 0x800, 0x10000 };
        if (cp < least[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k;
    }
    return true;
}

static bool bad(expo *e, const char *what, const char *at)
{
    snprintf(e->err, sizeof e->err, "line %d: %s at \"%.60s\"", e->line, what, at);
    return false;
}

/* A metric name at *p; copies it to out. */
static bool parse_name(const char **p, char *out, size_t cap, bool colon)
{
    const char *s = *p;
    size_t n = 0;
    if (!name_start(*s) && !(colon && *s == ':'))
        return false;
    while (name_char(*s) || (colon && *s == ':')) {
        if (n + 1 >= cap)
            return false;
        out[n++] = *s++;
    }
    out[n] = '\0';
    *p = s;
    return true;
}

/* The family a sample belongs to: a histogram's _bucket, _sum and _count
 * lines are its family's. */
static void family_of(expo *e, const char *name, char *fam, size_t cap)
{
    snprintf(fam, cap, "%s", name);
    static const char *sfx[] = { "_bucket", "_sum", "_count" };
    for (int i = 0; i < 3; i++) {
        size_t nl = strlen(name), sl = strlen(sfx[i]);
        if (nl > sl && !strcmp(name + nl - sl, sfx[i])) {
            char base[128];
            snprintf(base, sizeof base, "%.*s", (int)(nl - sl), name);
            for (int f = 0; f < e->nfam; f++)
                if (!strcmp(e->families[f], base) && !strcmp(e->types[f], "histogram"))
                    snprintf(fam, cap, "%s", base);
        }
    }
}

/* Enters family `fam` (from a TYPE line or a sample): a family that began
 * before must be the current one; families are contiguous. */
static int family_enter(expo *e, const char *fam, bool from_type)
{
    for (int f = 0; f < e->nfam; f++)
        if (!strcmp(e->families[f], fam)) {
            if (f != e->nfam - 1 || from_type)
                return -1;
            return f;
        }
    if (e->nfam == MAX_FAMILIES)
        return -1;
    snprintf(e->families[e->nfam], sizeof e->families[0], "%s", fam);
    snprintf(e->types[e->nfam], sizeof e->types[0], "untyped");
    return e->nfam++;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool parse_sample(expo *e, const char *s)
{
    char name[128], fam[128];
    const char *p = s;
    if (!parse_name(&p, name, sizeof name, true))
        return bad(e, "bad metric name", s);
    static char lbuf[32][1200];   /* no allocation: a refused line leaks nothing */
    char *labels[32];
    int nl = 0;
    bool has_le = false;
    if (*p == '{') {
        p++;
        while (*p != '}') {
            char ln[128];
            if (!parse_name(&p, ln, sizeof ln, false))
                return bad(e, "bad label name", p);
            if (*p++ != '=' || *p++ != '"')
                return bad(e, "expected =\"", p);
            char val[1024];
            size_t vn = 0;
            while (*p != '"') {
                if (!*p || *p == '\n')
                    return bad(e, "unterminated label value", p);
                if (*p == '\\') {
                    p++;
                    if (*p != '\\' && *p != '"' && *p != 'n')
                        return bad(e, "bad escape in label value", p);
                }
                if (vn + 1 >= sizeof val)
                    return bad(e, "label value too long", p);
                val[vn++] = *p++;
            }
            val[vn] = '\0';
            p++;
            if (!utf8_ok((const unsigned char *)val, vn))
                return bad(e, "label value is not UTF-8", val);
            if (nl == 32)
                return bad(e, "too many labels", p);
            for (int k = 0; k < nl; k++) {
                size_t len = strlen(ln);
                if (!strncmp(labels[k], ln, len) && labels[k][len] == '=')
                    return bad(e, "duplicate label", ln);
            }
            has_le |= !strcmp(ln, "le");
            labels[nl] = lbuf[nl];
            snprintf(labels[nl++], sizeof lbuf[0], "%s=\"%s\"", ln, val);
            if (*p == ',')
                p++;
            else if (*p != '}')
                return bad(e, "expected , or }", p);
        }
        p++;
    }
    bool ok = true;
    if (*p++ != ' ')
        ok = bad(e, "expected a space before the value", p - 1);
    char *end = NULL;
    if (ok && strncmp(p, "+Inf", 4) && strncmp(p, "-Inf", 4) && strncmp(p, "NaN", 3)) {
        strtod(p, &end);
        if (end == p || (*end && *end != ' '))
            ok = bad(e, "bad value", p);
        else if (*end == ' ') {   /* a timestamp: an integer */
            const char *ts = end + 1;
            long long v = strtoll(ts, &end, 10);
            (void)v;
            if (end == ts || *end)
                ok = bad(e, "bad timestamp", ts);
        }
    }
    family_of(e, name, fam, sizeof fam);
    int f = ok ? family_enter(e, fam, false) : -1;
    if (ok && f < 0)
        ok = bad(e, "family not contiguous", fam);
    if (ok && !strcmp(e->types[f], "histogram") && strlen(name) > 7 &&
        !strcmp(name + strlen(name) - 7, "_bucket") && !has_le)
        ok = bad(e, "bucket without le", name);
    qsort(labels, (size_t)nl, sizeof *labels, cmp_str);
    size_t klen = strlen(name) + 3;
    for (int k = 0; k < nl; k++)
        klen += strlen(labels[k]) + 1;
    char *key = malloc(klen);
    size_t at = (size_t)snprintf(key, klen, "%s{", name);
    for (int k = 0; k < nl; k++) {
        at += (size_t)snprintf(key + at, klen - at, "%s,", labels[k]);
    }
    snprintf(key + at, klen - at, "}");
    for (int k = 0; ok && k < e->nseries; k++)
        if (!strcmp(e->series[k], key))
            ok = bad(e, "duplicate series", key);
    if (ok && e->nseries < MAX_SERIES)
        e->series[e->nseries++] = key;
    else
        free(key);
    return ok;
}

static bool parse_comment(expo *e, const char *s)
{
    const char *p = s + 1;
    if (strncmp(p, " HELP ", 6) && strncmp(p, " TYPE ", 6))
        return true;   /* any other comment */
    bool help = p[1] == 'H';
    p += 6;
    char name[128];
    if (!parse_name(&p, name, sizeof name, true))
        return bad(e, "bad name in HELP/TYPE", s);
    if (help) {
        if (*p && *p != ' ')
            return bad(e, "expected a space after the HELP name", p);
        for (p += *p == ' '; *p; p++)
            if (*p == '\\' && p[1] != '\\' && p[1] != 'n')
                return bad(e, "bad escape in HELP", p);
            else if (*p == '\\')
                p++;
        return true;
    }
    if (*p++ != ' ')
        return bad(e, "expected a type", p);
    static const char *types[] = { "counter", "gauge", "histogram", "summary", "untyped" };
    for (int i = 0; i < 5; i++)
        if (!strcmp(p, types[i])) {
            int f = family_enter(e, name, true);
            if (f < 0)
                return bad(e, "TYPE after its samples or twice", name);
            snprintf(e->types[f], sizeof e->types[f], "%s", types[i]);
            return true;
        }
    return bad(e, "unknown type", p);
}

/* Parses the whole text; false with e->err on the first fault. */
static bool expo_parse(expo *e, const char *text, size_t len)
{
    memset(e, 0, sizeof *e);
    if (!len || text[len - 1] != '\n')
        return bad(e, "the text does not end with a newline", text);
    if (!utf8_ok((const unsigned char *)text, len))
        return bad(e, "the text is not UTF-8", text);
    const char *p = text;
    while (p < text + len) {
        const char *nl = memchr(p, '\n', (size_t)(text + len - p));
        char line[2048];
        e->line++;
        if ((size_t)(nl - p) >= sizeof line)
            return bad(e, "line too long", p);
        memcpy(line, p, (size_t)(nl - p));
        line[nl - p] = '\0';
        p = nl + 1;
        if (memchr(line, '\0', strlen(line) + 1) != line + strlen(line))
            return bad(e, "NUL byte", line);
        if (!line[0])
            continue;
        if (!(line[0] == '#' ? parse_comment(e, line) : parse_sample(e, line)))
            return false;
    }
    return true;
}

static void expo_free(expo *e)
{
    for (int i = 0; i < e->nseries; i++)
        free(e->series[i]);
    e->nseries = 0;
}

/* The parser itself: it must refuse what Prometheus refuses, or passing it
 * proves nothing. */
static void test_parser_refuses(void **s)
{
    (void)s;
    static expo e;
    static const char *bad[] = {
        "m{a=\"say \"hi\"\"} 1\n",              /* raw quote */
        "m{a=\"x\ny\"} 1\n",                     /* raw newline */
        "m{a=\"x\\y\"} 1\n",                     /* unknown escape */
        "m{a=\"\xff\"} 1\n",                     /* not UTF-8 */
        "m{a=\"\xc0\xaf\"} 1\n",                 /* overlong */
        "m{a=\"1\"} 1\nm{a=\"1\"} 2\n",          /* duplicate series */
        "m 1\nn 1\nm 2\n",                       /* family not contiguous */
        "m 1\n# TYPE m counter\n",               /* TYPE after samples */
        "m{a=\"1\",a=\"2\"} 1\n",                /* duplicate label */
        "m one\n",                               /* bad value */
        "1m 1\n",                                /* bad name */
        "m 1",                                   /* no final newline */
        "# TYPE h histogram\nh_bucket 1\n",      /* bucket without le */
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        bool ok = expo_parse(&e, bad[i], strlen(bad[i]));
        expo_free(&e);
        if (ok)
            fail_msg("the parser accepted bad input %zu: %s", i, bad[i]);
    }
    static const char good[] = "# HELP m A \\\\ help\\n text.\n# TYPE m counter\n"
                               "m{a=\"say \\\"hi\\\" \\\\ \\n \xe2\x82\xac\"} 1\nm{a=\"2\",} 2.5e3\n"
                               "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n";
    assert_true(expo_parse(&e, good, strlen(good)));
    assert_int_equal(e.nseries, 5);
    expo_free(&e);
}

/* ---- the server ------------------------------------------------------------------ */

static test_srv TS;

/* Names that need everything: quotes, a backslash, a newline, a byte that
 * is not UTF-8, a truncated multi-byte sequence, and a valid one. */
static const char *const chan_names[] = {
    "say \"hi\"", "back\\slash", "new\nline", "bad \xff byte", "cut \xe2\x82", "euro \xe2\x82\xac",
    "twin", "twin",
};
#define NCH (sizeof chan_names / sizeof *chan_names)
static sl_chan *chans[NCH];

static int h_make(sl_task *t, void *arg)
{
    for (size_t i = 0; i < NCH; i++)
        if (sl_chan_new(&chans[i], sizeof(int), 4, &(sl_chan_opts){ .name = chan_names[i] }) < 0 ||
            sl_chan_give(chans[i], t, NULL) < 0)   /* owned by no task: /free frees them */
            return sl_http_reply(arg, 500, "text/plain", "no", 2);
    return sl_http_reply(arg, 200, "text/plain", "ok", 2);
}

static int h_free(sl_task *t, void *arg)
{
    (void)t;
    for (size_t i = 0; i < NCH; i++)
        if (sl_chan_free(NULL, chans[i]) < 0)
            return sl_http_reply(arg, 500, "text/plain", "no", 2);
    return sl_http_reply(arg, 200, "text/plain", "ok", 2);
}

static int h_ok(sl_task *t, void *arg)
{
    (void)t;
    return sl_http_reply(arg, 200, "text/plain", "ok", 2);
}

/* Runs promtool on the text if it is installed; 1 passed, 0 skipped. */
static int promtool_check(const char *text, size_t len)
{
    if (system("command -v promtool >/dev/null 2>&1") != 0) {
        print_message("promtool not installed (Debian: apt-get install prometheus): "
                      "its check is skipped, the strict parser's stands\n");
        return 0;
    }
    char path[] = "/tmp/sluice-metrics-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "promtool check metrics < %s", path);
    int rc = system(cmd);
    unlink(path);
    assert_true(WIFEXITED(rc));
    assert_int_equal(WEXITSTATUS(rc), 0);
    return 1;
}

static void test_exposition_escaped(void **s)
{
    (void)s;
    static resp r;
    static expo e;
    TS.rt = rt_new(1, &TS.cap);
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/make", h_make, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/free", h_free, 0, NULL), 0);
    /* a route pattern with a quote and a backslash (a byte that is not UTF-8
     * never gets past the request-line check: the channels cover that) */
    assert_int_equal(sl_http_route(TS.srv, "GET", "/q\"uote\\d", h_ok, 0, NULL), 0);
    srv_run(&TS);
    int fd = cli_connect(TS.port);
    cli_send(fd, "POST /make HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    cli_expect(fd, 200, "ok");
    cli_send(fd, "GET /q\"uote\\d HTTP/1.1\r\nHost: t\r\n\r\n");
    cli_expect(fd, 200, "ok");
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    cli_send(fd, "POST /free HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    cli_expect(fd, 200, "ok");
    close(fd);
    srv_stop(&TS);

    if (!expo_parse(&e, r.body, r.body_len))
        fail_msg("/metrics does not parse: %s", e.err);
    expo_free(&e);
    /* every name is there, escaped, and the twins are two series */
    assert_non_null(strstr(r.body, "channel=\"say \\\"hi\\\"\",channel_id=\"0\""));
    assert_non_null(strstr(r.body, "channel=\"back\\\\slash\""));
    assert_non_null(strstr(r.body, "channel=\"new\\nline\""));
    assert_non_null(strstr(r.body, "channel=\"bad \xef\xbf\xbd byte\""));
    assert_non_null(strstr(r.body, "channel=\"cut \xef\xbf\xbd\xef\xbf\xbd\""));
    assert_non_null(strstr(r.body, "channel=\"euro \xe2\x82\xac\""));
    assert_non_null(strstr(r.body, "channel=\"twin\",channel_id=\"0\""));
    assert_non_null(strstr(r.body, "channel=\"twin\",channel_id=\"1\""));
    assert_non_null(strstr(r.body, "route=\"/q\\\"uote\\\\d\",status=\"200\""));
    promtool_check(r.body, r.body_len);
}

/* ---- the families, from a live /metrics --------------------------------------------- */

/* The value of the one sample whose line starts with `head` (name and
 * labels, as printed); -1 if there is none. */
static double sample(const char *text, const char *head)
{
    size_t n = strlen(head);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, head, n) && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

static sl_metric *app_items;

static int h_sampled(sl_task *t, void *arg)
{
    (void)t;
    size_t n;
    const char *id = sl_http_req_param(arg, "id", &n);
    sl_metric_add(app_items, (const char *[]){ n == 1 && *id == '7' ? "seven" : "other" }, 1);
    return sl_http_reply(arg, 201, "text/plain", "made", 4);
}

#define NREQ 40

static void test_families_live(void **s)
{
    (void)s;
    static resp r;
    static expo e;
    TS.rt = rt_new(2, &TS.cap);   /* two reactors: every family sums both */
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/ok", h_ok, 0, NULL), 0);
    assert_int_equal(sl_http_route(TS.srv, "POST", "/items/{id}", h_sampled, 0, NULL), 0);
    /* the application's own family, beside the built-in ones (whose names are taken) */
    sl_metrics *m = sl_http_server_metrics(TS.srv);
    sl_metric *f;
    static const char *const by_kind[] = { "kind", NULL };
    assert_int_equal(sl_metric_new(m, &app_items, SL_METRIC_COUNTER, "app_items_made_total",
                                   &(sl_metric_opts){ .help = "Items made.", .labels = by_kind }), 0);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_COUNTER, "sluice_http_requests_total", NULL), -EEXIST);
    assert_int_equal(sl_metric_new(m, &f, SL_METRIC_GAUGE, "process_open_fds", NULL), -EEXIST);
    srv_run(&TS);
    /* connections of their own, so both reactors take some */
    for (int i = 0; i < NREQ; i++)
        assert_int_equal(get(TS.port, "/ok", &r), 200);
    int fd = cli_connect(TS.port);
    for (int i = 0; i < 3; i++) {   /* unmatched paths, each different: one series */
        char req[128];
        snprintf(req, sizeof req, "GET /no/such/path/%d HTTP/1.1\r\nHost: t\r\n\r\n", i);
        cli_send(fd, req);
        assert_int_equal(cli_read(fd, &r, 5000), 404);
    }
    cli_send(fd, "BREW /ok HTTP/1.1\r\nHost: t\r\n\r\n");   /* a method nobody defined */
    assert_true(cli_read(fd, &r, 5000) >= 400);
    close(fd);   /* it may close after that */
    fd = cli_connect(TS.port);
    cli_send(fd, "POST /items/7 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n"
                 "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 201);
    cli_send(fd, "POST /items/8 HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 201);

    /* the text format */
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    if (!expo_parse(&e, r.body, r.body_len))
        fail_msg("/metrics does not parse: %s", e.err);
    expo_free(&e);
    const char *t = r.body;
    assert_true(sample(t, "sluice_http_requests_total{method=\"get\",route=\"/ok\",status=\"200\"}") == NREQ);
    assert_true(sample(t, "sluice_http_requests_total{method=\"get\",route=\"unmatched\",status=\"404\"}") == 3);
    assert_null(strstr(t, "/no/such"));   /* never the raw path */
    assert_non_null(strstr(t, "sluice_http_requests_total{method=\"other\","));
    assert_true(sample(t, "sluice_http_requests_total{method=\"post\",route=\"/items/{id}\",status=\"201\"}") == 2);
    assert_true(sample(t, "sluice_http_request_duration_seconds_count{method=\"get\",route=\"/ok\"}") == NREQ);
    assert_true(sample(t, "sluice_http_request_duration_seconds_bucket{method=\"get\",route=\"/ok\",le=\"+Inf\"}") == NREQ);
    assert_true(sample(t, "sluice_http_request_duration_seconds_bucket{method=\"get\",route=\"/ok\",le=\"2.5e-05\"}") >= 0);
    assert_true(sample(t, "sluice_http_request_duration_seconds_sum{method=\"get\",route=\"/ok\"}") > 0);
    assert_true(sample(t, "sluice_http_request_duration_seconds_count{method=\"post\",route=\"/items/{id}\"}") == 2);
    assert_null(strstr(t, "trace_id"));   /* no exemplars in the text format */
    assert_true(sample(t, "process_open_fds") > 3);
    assert_true(sample(t, "process_max_fds") >= sample(t, "process_open_fds"));
    assert_true(sample(t, "process_resident_memory_bytes") > 1 << 20);
    assert_true(sample(t, "process_virtual_memory_bytes") >= sample(t, "process_resident_memory_bytes"));
    assert_true(sample(t, "process_cpu_seconds_total") >= 0);
    double now = (double)time(NULL), start = sample(t, "process_start_time_seconds");
    assert_true(start <= now + 1 && start > now - 86400);
    assert_true(sample(t, "sluice_build_info{version=\"" PACKAGE_VERSION "\"}") == 1);
    assert_true(sample(t, "app_items_made_total{kind=\"seven\"}") == 1);
    assert_true(sample(t, "app_items_made_total{kind=\"other\"}") == 1);
    promtool_check(r.body, r.body_len);

    /* OpenMetrics, when asked for: counters' families without _total, an
     * exemplar carrying the sampled request's trace id, # EOF at the end */
    cli_send(fd, "GET /metrics HTTP/1.1\r\nHost: t\r\n"
                 "Accept: application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5\r\n\r\n");
    assert_int_equal(cli_read(fd, &r, 5000), 200);
    assert_non_null(strstr(r.head, "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"));
    assert_true(r.body_len > 6 && !strcmp(r.body + r.body_len - 6, "# EOF\n"));
    assert_non_null(strstr(r.body, "\n# TYPE sluice_http_requests counter\n"));
    assert_null(strstr(r.body, "_total counter\n"));
    static const char exh[] = " # {trace_id=\"4bf92f3577b34da6a3ce929d0e0e4736\"} ";
    const char *ex = strstr(r.body, exh);
    assert_non_null(ex);
    const char *line = ex;
    while (line > r.body && line[-1] != '\n')
        line--;
    assert_int_equal(strncmp(line, "sluice_http_request_duration_seconds_bucket{method=\"post\",route=\"/items/{id}\",le=\"",
                             82), 0);
    char *end;
    double v = strtod(ex + sizeof exh - 1, &end);
    assert_true(v > 0 && *end == '\n');   /* the exemplar's value: the request's duration */
    double le = strtod(strstr(line, "le=\"") + 4, NULL);
    assert_true(v <= le);   /* on the bucket it falls in */
    assert_null(strstr(ex + sizeof exh - 1, "trace_id"));   /* one sampled request, one exemplar */
    close(fd);
    srv_stop(&TS);
}

/* ---- a scrape cancelled once every snapshot has arrived --------------------------- */

/* Three reactors; /spin and a scrape pipelined on one connection land on
 * the same one, X. In its first turn /spin posts a ping to the two other
 * reactors and yields; the scrape asks every reactor for a snapshot (X's
 * own request is queued at once, the two others' behind the pings when the
 * turn ends). A ping holds its reactor until /spin holds X, and sets a
 * zero timer first, which fires after the callback that ran the ping and
 * the snapshot request, so after that callback published its snapshot to
 * X. /spin holds X (it never parks) until both other reactors have
 * answered and the second timer to fire has posted X a message that
 * cancels the scrape's task. When /spin lets go, X runs the snapshots,
 * then the cancel, before the scrape runs again: the scrape is cancelled
 * with every snapshot in and nothing left pending. It used to mark the
 * gather "abandoned" for a last answer that had already come, and the
 * gather and its channel leaked (issue 23): the runtime then counts a
 * leaked channel at srv_stop, and ASan reports the memory. */
static sl_msg spin_msg[2], cancel_msg;
static _Atomic int spin_seen, scrape_cancelled, x_spinning;
static sl_reactor *spin_home;

static int cancel_scrape(sl_task *t, void *arg)
{
    (void)arg;
    if (!strcmp(sl_task_name(t), "/metrics") && sl_task_cancel(t, -ECANCELED) == 0)
        atomic_fetch_add(&scrape_cancelled, 1);
    return 0;
}

static void cancel_on_home(void *arg)
{
    (void)arg;
    sl_reactor_foreach_task(spin_home, cancel_scrape, NULL);
}

static void spin_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    if (atomic_fetch_add(&spin_seen, 1) == 1) {   /* the second: both have answered */
        sl_reactor_post_mem(spin_home, &cancel_msg, cancel_on_home, NULL);
        atomic_fetch_add(&spin_seen, 1);
    }
}

static void spin_pong(void *arg)
{
    static const struct timeval zero;
    (void)arg;
    if (event_base_once(sl_reactor_base(sl_reactor_current()), -1, EV_TIMEOUT, spin_timer, NULL, &zero) < 0)
        atomic_fetch_sub(&spin_seen, 100);   /* the test sees it */
    uint64_t give_up = sl_now_ns() + 10 * 1000000000ull;
    while (!atomic_load(&x_spinning) && sl_now_ns() < give_up)
        ;
}

static int h_spin(sl_task *t, void *arg)
{
    sl_http_req *req = arg;
    SL_BEGIN(t);
    spin_home = sl_task_reactor(t);
    for (int i = 0, k = 0; i < 3; i++)
        if (sl_runtime_reactor(TS.rt, i) != spin_home)
            sl_reactor_post_mem(sl_runtime_reactor(TS.rt, i), &spin_msg[k++], spin_pong, NULL);
    SL_YIELD(t);
    atomic_store(&x_spinning, 1);
    uint64_t give_up = sl_now_ns() + 10 * 1000000000ull;
    while (atomic_load(&spin_seen) < 3 && sl_now_ns() < give_up)
        ;
    sl_http_reply(req, 200, "text/plain", "ok", 2);
    SL_END(t);
}

static void test_scrape_cancelled_after_all_parts(void **s)
{
    (void)s;
    TS.rt = rt_new(3, &TS.cap);
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0" }), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/spin", h_spin, 0, NULL), 0);
    srv_run(&TS);
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /spin HTTP/1.1\r\nHost: t\r\n\r\nGET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
    static char buf[1 << 16];
    size_t got = 0;
    /* /spin's answer, then the scrape's (an error: it was cancelled) */
    while (!strstr(buf, "\r\n\r\nok") || !strstr(strstr(buf, "\r\n\r\nok"), "\r\n\r\n{")) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        assert_int_equal(poll(&p, 1, 10000), 1);
        ssize_t n = read(fd, buf + got, sizeof buf - 1 - got);
        assert_true(n > 0);
        got += (size_t)n;
        buf[got] = '\0';
    }
    assert_int_equal(atomic_load(&spin_seen), 3);
    assert_int_equal(atomic_load(&scrape_cancelled), 1);
    assert_null(strstr(buf, "version=0.0.4"));   /* the scrape did not answer */
    close(fd);
    srv_stop(&TS);   /* asserts that the runtime found no channel or task left behind */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parser_refuses),
        cmocka_unit_test(test_exposition_escaped),
        cmocka_unit_test(test_families_live),
        cmocka_unit_test(test_scrape_cancelled_after_all_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
