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
    bool om;                        /* OpenMetrics 1.0 rules */
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
    static const struct { const char *sfx, *types; } sfx[] = {
        { "_bucket", "histogram" }, { "_sum", "histogram summary" }, { "_count", "histogram summary" },
        { "_total", "counter" }, { "_created", "histogram summary counter" },
    };
    for (int i = 0; i < 5; i++) {
        size_t nl = strlen(name), sl = strlen(sfx[i].sfx);
        if (nl > sl && !strcmp(name + nl - sl, sfx[i].sfx)) {
            char base[128];
            snprintf(base, sizeof base, "%.*s", (int)(nl - sl), name);
            for (int f = 0; f < e->nfam; f++)
                if (!strcmp(e->families[f], base) && strstr(sfx[i].types, e->types[f]))
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
    const char *exemplar = NULL;
    if (ok && e->om && (exemplar = strstr(p, " # ")))   /* OpenMetrics: value # {labels} value */
        *(char *)exemplar = '\0';
    if (ok && strcmp(p, "+Inf") && strcmp(p, "-Inf") && strcmp(p, "NaN")) {
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
    size_t nlen = strlen(name);
    if (ok && e->om && !strcmp(e->types[f], "counter") && (nlen < 6 || strcmp(name + nlen - 6, "_total")))
        ok = bad(e, "an OpenMetrics counter's sample without _total", name);
    if (ok && e->om && !strcmp(e->types[f], "untyped"))
        ok = bad(e, "OpenMetrics has no untyped (a sample before its TYPE?)", name);
    if (ok && exemplar) {
        /* only on a histogram's bucket or a counter's _total; {labels} and a value */
        const char *x = exemplar + 3;
        bool where = (!strcmp(e->types[f], "histogram") && nlen > 7 && !strcmp(name + nlen - 7, "_bucket")) ||
                     (!strcmp(e->types[f], "counter"));
        const char *close = strchr(x, '}');
        char *vend = NULL;
        if (!where)
            ok = bad(e, "an exemplar on neither a bucket nor a counter", name);
        else if (*x != '{' || !close || close[1] != ' ' || close - x - 1 > 128)
            ok = bad(e, "bad exemplar labels", x);
        else if (strtod(close + 2, &vend), vend == close + 2 || (*vend && *vend != ' '))
            ok = bad(e, "bad exemplar value", close + 2);
        for (const char *q = x + 1; ok && q < close;) {   /* name="value"[,name="value"] */
            char ln[128];
            if (!parse_name(&q, ln, sizeof ln, false) || *q++ != '=' || *q++ != '"')
                ok = bad(e, "bad exemplar label", q);
            while (ok && *q != '"')
                q += *q == '\\' ? 2 : 1;
            q += ok;
            if (ok && *q == ',')
                q++;
        }
    }
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
            if (*p == '\\' && p[1] != '\\' && p[1] != 'n' && !(e->om && p[1] == '"'))
                return bad(e, "bad escape in HELP", p);
            else if (*p == '"' && e->om)
                return bad(e, "a raw quote in an OpenMetrics HELP", p);
            else if (*p == '\\')
                p++;
        return true;
    }
    if (*p++ != ' ')
        return bad(e, "expected a type", p);
    static const char *types[] = { "counter", "gauge", "histogram", "summary", "untyped", "unknown" };
    for (int i = 0; i < 6; i++)   /* OpenMetrics says unknown, 0.0.4 untyped */
        if (!strcmp(p, types[i]) && (i < 4 || i == 4 + e->om)) {
            int f = family_enter(e, name, true);
            if (f < 0)
                return bad(e, "TYPE after its samples or twice", name);
            snprintf(e->types[f], sizeof e->types[f], "%s", types[i]);
            return true;
        }
    return bad(e, "unknown type", p);
}

/* Parses the whole text; false with e->err on the first fault. */
static bool expo_parse_as(expo *e, const char *text, size_t len, bool om)
{
    memset(e, 0, sizeof *e);
    e->om = om;
    /* OpenMetrics: "# EOF" is the last line, and no line is empty */
    if (om && (len < 6 || strcmp(text + len - 6, "# EOF\n") || (len > 6 && text[len - 7] != '\n')))
        return bad(e, "OpenMetrics text not ending with # EOF", text);
    if (om)
        len -= 6;
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
        if (!line[0] && om)
            return bad(e, "an empty line in OpenMetrics", line);
        if (!line[0])
            continue;
        if (!(line[0] == '#' ? parse_comment(e, line) : parse_sample(e, line)))
            return false;
    }
    return true;
}

static bool expo_parse(expo *e, const char *text, size_t len) { return expo_parse_as(e, text, len, false); }

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
    static const char *bad_om[] = {
        "# TYPE m counter\nm_total 1\n",                           /* no # EOF */
        "# TYPE m counter\nm_total 1\n# EOF\nm_total 2\n",        /* text after it */
        "# TYPE m counter\nm 1\n# EOF\n",                         /* a counter's sample without _total */
        "# HELP m say \"hi\"\n# TYPE m gauge\nm 1\n# EOF\n",       /* a raw quote in HELP */
        "# TYPE m gauge\nm 1 # {trace_id=\"ab\"} 1\n# EOF\n",     /* an exemplar on a gauge */
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1 # {trace_id=ab} 1\nh_sum 1\nh_count 1\n# EOF\n",
        "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1 # {a=\"b\"}\nh_sum 1\nh_count 1\n# EOF\n",
        "# TYPE m untyped\nm 1\n# EOF\n",                         /* untyped is 0.0.4's */
        "# TYPE m gauge\nm 1\n\n# EOF\n",                          /* an empty line */
    };
    for (size_t i = 0; i < sizeof bad_om / sizeof *bad_om; i++) {
        bool ok = expo_parse_as(&e, bad_om[i], strlen(bad_om[i]), true);
        expo_free(&e);
        if (ok)
            fail_msg("the parser accepted bad OpenMetrics %zu: %s", i, bad_om[i]);
    }
    static const char good_om[] = "# HELP m A \\\" quote.\n# TYPE m counter\nm_total{a=\"1\"} 1 # {trace_id=\"ab\"} 0.5\n"
                                  "# TYPE s summary\ns_sum 1\ns_count 2\n# TYPE u unknown\nu 1\n"
                                  "# TYPE h histogram\nh_bucket{le=\"1\"} 1 # {trace_id=\"ab\"} 0.5\n"
                                  "h_bucket{le=\"+Inf\"} 1\nh_sum 0.5\nh_count 1\n# EOF\n";
    if (!expo_parse_as(&e, good_om, strlen(good_om), true))
        fail_msg("the parser refused good OpenMetrics: %s", e.err);
    assert_int_equal(e.nfam, 4);
    expo_free(&e);
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


/* The reference parser: prometheus_client's (the Prometheus project's
 * Python client; Debian's python3-prometheus-client, which ./bootstrap
 * installs). It checks what a syntax check does not: a histogram's
 * buckets cumulative and its _count equal to +Inf's, samples of one
 * series grouped, exemplars only where they may be, counters never
 * negative, no family name clashing with another's samples. Returns 1
 * when it accepted the text, 0 when it is not installed (skipped, said
 * so); fails the test when it refused it. */
static const char refparse_py[] =
    "import sys\n"
    "try:\n"
    "    from prometheus_client.parser import text_string_to_metric_families as text\n"
    "    from prometheus_client.openmetrics.parser import text_string_to_metric_families as om\n"
    "except ImportError:\n"
    "    sys.exit(77)\n"
    "data = open(sys.argv[2], encoding='utf-8').read()\n"
    "try:\n"
    "    fams = list((om if sys.argv[1] == 'om' else text)(data))\n"
    "except Exception as e:\n"
    "    sys.exit('prometheus_client refused it: %r' % e)\n"
    "print(len(fams))\n";

static int refparse(const char *text, size_t len, bool om, int *families)
{
    /* Debian's python3 first: a python3 earlier in PATH may lack the module */
    const char *py = access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
    char path[] = "/tmp/sluice-metrics-XXXXXX", script[] = "/tmp/sluice-refparse-XXXXXX";
    int fd = mkstemp(path), sfd = mkstemp(script);
    assert_true(fd >= 0 && sfd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(write(sfd, refparse_py, sizeof refparse_py - 1), (ssize_t)(sizeof refparse_py - 1));
    close(fd);
    close(sfd);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "%s %s %s %s", py, script, om ? "om" : "text", path);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    int n = -1;
    if (fscanf(f, "%d", &n) != 1)
        n = -1;
    int rc = pclose(f);
    unlink(path);
    unlink(script);
    assert_true(WIFEXITED(rc));
    if (WEXITSTATUS(rc) == 77) {
        print_message("prometheus_client not installed (Debian: apt-get install python3-prometheus-client): "
                      "the reference parser's check is skipped, the strict parser's stands\n");
        return 0;
    }
    if (WEXITSTATUS(rc) != 0)
        fail_msg("the reference parser refused the %s exposition (its reason above)", om ? "OpenMetrics" : "text");
    *families = n;
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
    int nf;
    refparse(r.body, r.body_len, false, &nf);
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
    if (!expo_parse_as(&e, r.body, r.body_len, true))
        fail_msg("/metrics (OpenMetrics) does not parse: %s", e.err);
    expo_free(&e);
    int nf;
    refparse(r.body, r.body_len, true, &nf);   /* the exemplar where the reference allows it */
    close(fd);
    srv_stop(&TS);
}


/* ---- the families filled by collectors, from a live /metrics ----------------------- */

/* Every family docs/metrics.md lists as filled at scrape, with its type
 * and label names in order. */
static const struct { const char *name, *type, *labels; } moved[] = {
    { "sluice_http_inflight", "gauge", "reactor" },
    { "sluice_http_inflight_peak", "gauge", "reactor" },
    { "sluice_http_queued", "gauge", "reactor" },
    { "sluice_http_connections", "gauge", "reactor" },
    { "sluice_http_buffered_input_bytes", "gauge", "reactor" },
    { "sluice_http_buffered_output_bytes", "gauge", "reactor" },
    { "sluice_http_connection_buffered_max_bytes", "gauge", "reactor" },
    { "sluice_http_shed_total", "counter", "reactor" },
    { "sluice_http_admission_limit", "gauge", "reactor" },
    { "sluice_http_admission_overloaded", "gauge", "reactor" },
    { "sluice_http_admission_flooded", "gauge", "reactor" },
    { "sluice_http_admission_retry_storm", "gauge", "reactor" },
    { "sluice_http_flood_batch_naps_total", "counter", "reactor" },
    { "sluice_http_admission_drain_per_second", "gauge", "reactor" },
    { "sluice_http_admission_max_wait_seconds", "gauge", "reactor" },
    { "sluice_http_expired_total", "counter", "reactor" },
    { "sluice_http_queue_delay_seconds", "gauge", "reactor" },
    { "sluice_http_admission_shed_total", "counter", "reason" },
    { "sluice_http_undo_started_total", "counter", "reactor" },
    { "sluice_http_undo_running", "gauge", "reactor" },
    { "sluice_http_parse_errors_total", "counter", "reactor" },
    { "sluice_deadlocks_total", "counter", "reactor" },
    { "sluice_stalls_total", "counter", "reactor" },
    { "sluice_reactor_messages_total", "counter", "reactor" },
    { "sluice_reactor_wakeups_total", "counter", "reactor" },
    { "sluice_reactor_spins_total", "counter", "reactor" },
    { "sluice_reactor_spin_hits_total", "counter", "reactor" },
    { "sluice_reactor_spin_runs_total", "counter", "reactor" },
    { "sluice_reactor_spin_bounds_total", "counter", "reactor" },
    { "sluice_reactor_spin_yields_total", "counter", "reactor" },
    { "sluice_reactor_spin_misses_total", "counter", "reactor" },
    { "sluice_reactor_spin_skips_total", "counter", "reactor" },
    { "sluice_reactor_spin_empty_skips_total", "counter", "reactor" },
    { "sluice_reactor_spin_empty_wakes_total", "counter", "reactor" },
    { "sluice_reactor_fd_wakeups_total", "counter", "reactor" },
    { "sluice_reactor_brief_polls_total", "counter", "reactor" },
    { "sluice_reactor_brief_poll_hits_total", "counter", "reactor" },
    { "sluice_reactor_brief_poll_empty_seconds_total", "counter", "reactor" },
    { "sluice_ctx_ends_total", "counter", "reactor,cause" },
    { "sluice_tasks", "gauge", "reactor,state" },
    { "sluice_channel_length", "gauge", "reactor,channel,channel_id,capacity" },
    { "sluice_channel_expired_total", "counter", "reactor,channel,channel_id" },
    { "sluice_upstream_calls_total", "counter", "upstream,result" },
    { "sluice_upstream_events_total", "counter", "upstream,event" },
    { "sluice_upstream_connections", "gauge", "upstream,state" },
    { "sluice_offload_queue_depth", "gauge", "" },
    { "sluice_offload_queue_capacity", "gauge", "" },
    { "sluice_offload_running", "gauge", "" },
    { "sluice_offload_threads", "gauge", "state" },
    { "sluice_offload_calls_total", "counter", "result" },
    { "sluice_offload_wait_seconds", "summary", "" },
    { "sluice_offload_wait_seconds_max", "gauge", "" },
    { "sluice_offload_run_seconds", "summary", "" },
    { "sluice_offload_run_seconds_max", "gauge", "" },
    { "sluice_log_dropped_total", "counter", "" },
    { "sluice_watchdog_wakeups_total", "counter", "" },
    { "sluice_watchdog_parks_total", "counter", "" },
    { "sluice_trace_spans_total", "counter", "result" },
    { "sluice_trace_queue_spans", "gauge", "" },
    { "process_cpu_seconds_total", "counter", "" },
    { "process_resident_memory_bytes", "gauge", "" },
    { "process_virtual_memory_bytes", "gauge", "" },
    { "process_open_fds", "gauge", "" },
    { "process_max_fds", "gauge", "" },
    { "sluice_metrics_collector_errors_total", "counter", "collector" },
};

/* The family's TYPE line is there, once, and its first sample has the
 * label names `labels` in that order. */
static void expect_family(const char *t, const char *name, const char *type, const char *labels, bool om)
{
    char fam[128], want[192], sname[160];
    size_t n = strlen(name);
    bool counter = !strcmp(type, "counter");
    snprintf(fam, sizeof fam, "%.*s", (int)(om && counter ? n - 6 : n), name);   /* OpenMetrics: no _total */
    snprintf(want, sizeof want, "\n# TYPE %s %s\n", fam, type);
    const char *at = strstr(t, want);
    if (!at)
        fail_msg("no \"# TYPE %s %s\" (%s)", fam, type, om ? "OpenMetrics" : "text");
    assert_null(strstr(at + 1, want));
    snprintf(sname, sizeof sname, "%s%s", name, !strcmp(type, "summary") ? "_sum" : "");
    const char *line = strstr(at, "\n") + 1;
    line = strstr(line, "\n") + 1;   /* past the TYPE line */
    if (strncmp(line, sname, strlen(sname)) || (line[strlen(sname)] != '{' && line[strlen(sname)] != ' '))
        fail_msg("%s: the sample after TYPE is %.80s", name, line);
    char got[256] = "";
    const char *p = line + strlen(sname);
    if (*p == '{')
        for (p++; *p != '}';) {
            const char *eq = strchr(p, '=');
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%.*s", *got ? "," : "", (int)(eq - p), p);
            p = eq + 2;
            while (*p != '"')
                p += *p == '\\' ? 2 : 1;
            p += 1 + (p[1] == ',');
        }
    if (strcmp(got, labels))
        fail_msg("%s: labels %s, docs/metrics.md says %s", name, got, labels);
}

static sl_metric *app_many;

/* An application's collectors: one reports more series than its family
 * holds, one fails on every call. */
static int app_collect_many(sl_metrics_scrape *sc, int reactor, void *arg)
{
    (void)arg;
    for (int i = 0; i < 6; i++) {
        char v[16];
        snprintf(v, sizeof v, "r%d-%d", reactor, i);
        int rc = sl_scrape_add(sc, app_many, (const char *[]){ v }, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int app_collect_fails(sl_metrics_scrape *sc, int reactor, void *arg)
{
    (void)arg;
    (void)reactor;
    sl_scrape_add(sc, app_many, (const char *[]){ "from-a-failed-call" }, 1000);   /* left out */
    return -EIO;
}

static void test_collected_families_live(void **s)
{
    (void)s;
    static resp r, ro;
    static expo e;
    sl_tracer *tr;
    sl_http_upstream *up;
    assert_int_equal(sl_tracer_new(&tr, &(sl_tracer_opts){ 0 }), 0);
    TS.rt = rt_new(2, &TS.cap);
    assert_int_equal(sl_http_server_new(&TS.srv, TS.rt, &(sl_http_server_opts){ .listen = "127.0.0.1:0", .tracer = tr }), 0);
    assert_int_equal(sl_http_route(TS.srv, "GET", "/ok", h_ok, 0, NULL), 0);
    assert_int_equal(sl_http_upstream_new(&up, TS.rt, "http://127.0.0.1:1", NULL), 0);
    assert_int_equal(sl_http_server_add_upstream(TS.srv, "pay\"ment", up), -EINVAL);   /* names are plain */
    assert_int_equal(sl_http_server_add_upstream(TS.srv, "payment", up), 0);
    sl_metrics *m = sl_http_server_metrics(TS.srv);
    static const char *const by_key[] = { "key", NULL };
    assert_int_equal(sl_metric_new(m, &app_many, SL_METRIC_GAUGE, "app_keys",
                                   &(sl_metric_opts){ .help = "Keys.", .labels = by_key, .max_series = 8 }), 0);
    assert_int_equal(sl_metrics_collector(m, "app_many", app_collect_many, NULL), 0);
    assert_int_equal(sl_metrics_collector(m, "app_fails", app_collect_fails, NULL), 0);
    assert_int_equal(sl_metrics_collector(m, "app_many", app_collect_fails, NULL), -EEXIST);
    assert_int_equal(sl_metrics_collector(m, "sluice_server", app_collect_fails, NULL), -EEXIST);   /* built in */
    assert_int_equal(sl_metric_new(m, &app_items, SL_METRIC_GAUGE, "sluice_channel_length", NULL), -EEXIST);
    srv_run(&TS);
    assert_int_equal(get(TS.port, "/ok", &r), 200);
    assert_int_equal(get(TS.port, "/metrics", &r), 200);
    int fd = cli_connect(TS.port);
    cli_send(fd, "GET /metrics HTTP/1.1\r\nHost: t\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n");
    assert_int_equal(cli_read(fd, &ro, 5000), 200);
    close(fd);
    srv_stop(&TS);
    sl_http_upstream_free(up);
    sl_tracer_free(tr);

    const struct { resp *r; bool om; } both[] = { { &r, false }, { &ro, true } };
    for (int k = 0; k < 2; k++) {
        const char *t = both[k].r->body;
        if (!expo_parse_as(&e, t, both[k].r->body_len, both[k].om))
            fail_msg("/metrics (%s) does not parse: %s", both[k].om ? "OpenMetrics" : "text", e.err);
        int nfam = e.nfam, ref;
        expo_free(&e);
        if (refparse(t, both[k].r->body_len, both[k].om, &ref))
            assert_int_equal(ref, nfam);   /* the two parsers see the same families */
        for (size_t i = 0; i < sizeof moved / sizeof *moved; i++)
            expect_family(t, moved[i].name, moved[i].type, moved[i].labels, both[k].om);
        /* the figures: per reactor, summed over reactors, the process's once */
        assert_non_null(strstr(t, "sluice_http_connections{reactor=\"1\"} "));
        assert_non_null(strstr(t, both[k].om ? "sluice_ctx_ends_total{reactor=\"0\",cause=\"client_disconnected\"} "
                                             : "sluice_ctx_ends_total{reactor=\"0\",cause=\"client_disconnected\"} "));
        assert_non_null(strstr(t, "sluice_upstream_calls_total{upstream=\"payment\",result=\"ok\"} 0\n"));
        assert_true(sample(t, "sluice_offload_threads{state=\"max\"}") > 0);
        assert_true(sample(t, "sluice_trace_spans_total{result=\"dropped\"}") == 0);
        assert_true(sample(t, "process_open_fds") > 3);
        /* 12 keys reported, 8 fit, the overflow series has the rest */
        int keys = 0;
        for (const char *p = strstr(t, "\napp_keys{"); p; p = strstr(p + 1, "\napp_keys{"))
            keys++;
        assert_int_equal(keys, 9);
        assert_true(sample(t, "app_keys{key=\"overflow\"}") == 4);
        assert_null(strstr(t, "from-a-failed-call"));
        /* one failure per reactor per scrape */
        assert_true(sample(t, "sluice_metrics_collector_errors_total{collector=\"app_fails\"}") == 2 * (k + 1));
        assert_true(sample(t, "sluice_metrics_collector_errors_total{collector=\"sluice_server\"}") == 0);
    }
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
        cmocka_unit_test(test_collected_families_live),
        cmocka_unit_test(test_scrape_cancelled_after_all_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
