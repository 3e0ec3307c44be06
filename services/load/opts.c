/* opts.c: sluice-load's options: strict parsing, one clear message per
 * mistake (exit 2), and the URL (exit 1 when it cannot be used). */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "addr.h"
#include "opts.h"
#include "resolve.h"

#define MAX_BODY_FILE (64u << 20)

void load_usage(FILE *f)
{
    fputs("usage: sluice-load URL [options]\n"
          "  URL                 http://HOST[:PORT][/path], HOST an IPv4 address, [IPv6] or a name\n"
          "  --rate R            open loop: R requests/s on a fixed schedule; latency is\n"
          "                      measured from each request's INTENDED send time, so a\n"
          "                      stalled server cannot hide its stall (coordinated omission)\n"
          "  --connections C     without --rate: closed loop, C connections each sending\n"
          "                      its next request when the answer comes (default 10);\n"
          "                      with --rate: at most C connections (default 256), opened\n"
          "                      when all are busy; beyond, requests wait (and the wait is\n"
          "                      in their latency)\n"
          "  --duration S        measured seconds (default 10)\n"
          "  --warmup S          seconds of load before measuring, not recorded (default 0)\n"
          "  --threads N         reactors (default 1)\n"
          "  --timeout MS        per request (default 2000). A request not answered in time\n"
          "                      is an error \"timeout\" and its connection is closed; its\n"
          "                      latency is recorded until the give-up, so it is >= MS\n"
          "  --no-deadline-header  do not send grpc-timeout (sent by default: the budget\n"
          "                      left, in ms)\n"
          "  --method M          default GET, or POST with a body\n"
          "  --header 'K: V'     extra request header (repeatable)\n"
          "  --body JSON         request body (application/json unless --header sets\n"
          "                      Content-Type); placeholders {{seq}} and {{rand:A-B}}\n"
          "  --body-file F       the body from a file (same placeholders)\n"
          "  --trace             a fresh W3C traceparent per request\n"
          "  --json              one JSON object on stdout (the summary goes to stderr)\n"
          "  --report F.html     a self-contained HTML report with charts\n"
          "  --quiet             no progress line, no summary on stderr\n"
          "Every option may also be given as an environment variable SLUICE_<OPTION>\n"
          "(upper case, '-' as '_': SLUICE_RATE=500, SLUICE_JSON=1); the command line\n"
          "wins over a variable; a bad value in one exits 2 naming it.\n"
          "Every request started in the measured window is followed to its end\n"
          "(answer, error or timeout). Exit: 0 the run completed (whatever the\n"
          "server answered), 2 bad usage, 1 cannot run.\n", f);
}

static bool parse_double(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || !isfinite(v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* Digits only: strtol alone would take " 80", "+80" and "-0". */
static bool parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    if ((unsigned)(*s - '0') > 9u)
        return false;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

int load_url_parse(load_opts *o, const char *url)
{
    static const char scheme[] = "http://";
    o->url_why = "not http://HOST[:PORT][/path]";
    if (strncmp(url, scheme, sizeof scheme - 1))
        return -EINVAL;
    const char *h = url + sizeof scheme - 1, *slash = strchr(h, '/');
    const char *hend = slash ? slash : h + strlen(h);
    /* HOST[:PORT] (addr.h: IPv4, [IPv6], localhost or a name), port 80 if none */
    char hostport[SL_HOST_MAX + 16];
    size_t hlen = (size_t)(hend - h);
    const char *close = memchr(h, ']', hlen);
    bool has_port = memrchr(close ? close : h, ':', (size_t)(hend - (close ? close : h))) != NULL;
    if (hlen + 4 >= sizeof hostport)
        return -EINVAL;
    snprintf(hostport, sizeof hostport, "%.*s%s", (int)hlen, h, has_port ? "" : ":80");
    sl_hostport hp;
    if (sl__hostport_parse(&hp, hostport, strlen(hostport), false, &o->url_why) < 0)
        return -EINVAL;
    for (const char *p = slash; p && *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
            o->url_why = "a space or a control character in the path";
            return -EINVAL;    /* a request-target has no spaces or controls */
        }
    if (hp.is_name) {   /* looked up once, at start: the first address */
        sl_addrs *as = malloc(sizeof *as);
        int rc = as ? sl__resolve_now(hp.host, hp.port, NULL, NULL, as) : -ENOMEM;
        if (rc == 0) {
            memcpy(&o->addr, &as->a[0], as->len[0]);
            o->addr_len = as->len[0];
        }
        free(as);
        if (rc < 0) {
            o->url_why = sl__resolve_strerror(rc);
            return rc;
        }
    } else {
        o->addr = hp.sa;
        o->addr_len = hp.salen;
    }
    snprintf(o->host, sizeof o->host, "%s", hostport);   /* as written */
    o->url_why = NULL;
    free(o->path);
    o->path = strdup(slash ? slash : "/");
    return o->path ? 0 : -ENOMEM;
}

/* A tchar of RFC 9110 5.6.2: what a field name is made of. */
static bool tchar(unsigned char c)
{
    return (c >= '0' && c <= '9') || ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The name must be a token and the value hold no control character but
 * HTAB (RFC 9110 5.5): the server would answer every request 400. */
static int add_header(load_opts *o, const char *kv, char *err, size_t errlen)
{
    const char *colon = strchr(kv, ':');
    if (!colon || colon == kv || strpbrk(kv, "\r\n")) {
        snprintf(err, errlen, "--header '%s': expected 'Name: value'", kv);
        return 2;
    }
    for (const char *p = kv; p < colon; p++)
        if (!tchar((unsigned char)*p)) {
            snprintf(err, errlen, "--header '%s': the name is not a token", kv);
            return 2;
        }
    for (const unsigned char *p = (const unsigned char *)colon + 1; *p; p++)
        if ((*p < ' ' && *p != '\t') || *p == 0x7f) {
            snprintf(err, errlen, "--header '%s': a control character in the value", kv);
            return 2;
        }
    char **nh = realloc(o->headers, (o->nheaders + 1) * sizeof *nh);
    if (!nh)
        return 1;
    o->headers = nh;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (asprintf(&o->headers[o->nheaders], "%.*s: %s", (int)(colon - kv), kv, v) < 0)
        return 1;
    o->nheaders++;
    if ((size_t)(colon - kv) == 12 && !strncasecmp(kv, "content-type", 12))
        o->user_ctype = true;
    return 0;
}

static int read_file(const char *path, char **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "--body-file %s: %s", path, strerror(errno));
        return 1;
    }
    char *buf = malloc(MAX_BODY_FILE);
    size_t n = buf ? fread(buf, 1, MAX_BODY_FILE, f) : 0;
    int bad = !buf || ferror(f) || !feof(f);
    fclose(f);
    if (bad) {
        free(buf);
        snprintf(err, errlen, "--body-file %s: unreadable or larger than %u bytes", path, MAX_BODY_FILE);
        return 1;
    }
    *out = buf, *len = n;
    return 0;
}

static int set_body(load_opts *o, const char *src, size_t len, const char *what, char *err,
                    size_t errlen)
{
    char msg[256];
    if (o->has_body) {
        snprintf(err, errlen, "--body and --body-file: give one body");
        return 2;
    }
    int rc = tmpl_parse(&o->body, src, len, msg, sizeof msg);
    if (rc == -ENOMEM)
        return 1;
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", what, msg);
        return 2;
    }
    o->has_body = true;
    return 0;
}

enum { O_RATE = 256, O_CONNS, O_DURATION, O_WARMUP, O_THREADS, O_TIMEOUT, O_NODL, O_METHOD,
       O_HEADER, O_BODY, O_BODYFILE, O_TRACE, O_JSON, O_REPORT, O_QUIET, O_HELP };

static const struct option longopts[] = {
    { "rate", required_argument, NULL, O_RATE },
    { "connections", required_argument, NULL, O_CONNS },
    { "duration", required_argument, NULL, O_DURATION },
    { "warmup", required_argument, NULL, O_WARMUP },
    { "threads", required_argument, NULL, O_THREADS },
    { "timeout", required_argument, NULL, O_TIMEOUT },
    { "no-deadline-header", no_argument, NULL, O_NODL },
    { "method", required_argument, NULL, O_METHOD },
    { "header", required_argument, NULL, O_HEADER },
    { "body", required_argument, NULL, O_BODY },
    { "body-file", required_argument, NULL, O_BODYFILE },
    { "trace", no_argument, NULL, O_TRACE },
    { "json", no_argument, NULL, O_JSON },
    { "report", required_argument, NULL, O_REPORT },
    { "quiet", no_argument, NULL, O_QUIET },
    { "help", no_argument, NULL, O_HELP },
    { NULL, 0, NULL, 0 },
};

#define BAD(...) do { snprintf(err, errlen, __VA_ARGS__); return 2; } while (0)

static bool method_ok(const char *m)
{
    if (!*m)
        return false;
    for (const char *p = m; *p; p++)
        if (*p < 'A' || *p > 'Z')
            return false;
    return true;
}

/* One option; returns 0, 1, 2 or -1 (help). */
static int one_opt(load_opts *o, int c, const char *arg, char *err, size_t errlen)
{
    long n;
    switch (c) {
    case O_RATE:
        if (!parse_double(arg, 1e-3, 1e7, &o->rate))
            BAD("--rate %s: expected requests/s, 0.001 to 10000000", arg);
        return 0;
    case O_CONNS:
        if (!parse_int(arg, 1, 100000, &n))
            BAD("--connections %s: expected 1 to 100000", arg);
        o->connections = (int)n;
        return 0;
    case O_DURATION:
        if (!parse_double(arg, 0.01, 86400, &o->duration_s))
            BAD("--duration %s: expected seconds, 0.01 to 86400", arg);
        return 0;
    case O_WARMUP:
        if (!parse_double(arg, 0, 3600, &o->warmup_s))
            BAD("--warmup %s: expected seconds, 0 to 3600", arg);
        return 0;
    case O_THREADS:
        if (!parse_int(arg, 1, 256, &n))
            BAD("--threads %s: expected 1 to 256", arg);
        o->threads = (int)n;
        return 0;
    case O_TIMEOUT:
        if (!parse_int(arg, 1, 3600000, &n))
            BAD("--timeout %s: expected milliseconds, 1 to 3600000", arg);
        o->timeout_ms = (uint32_t)n;
        return 0;
    case O_NODL: o->deadline_header = false; return 0;
    case O_METHOD:
        if (!method_ok(arg))
            BAD("--method %s: expected an upper-case token such as GET or POST", arg);
        o->method = arg;
        return 0;
    case O_HEADER: return add_header(o, arg, err, errlen);
    case O_BODY: return set_body(o, arg, strlen(arg), "--body", err, errlen);
    case O_BODYFILE: {
        char *buf;
        size_t len;
        int rc = read_file(arg, &buf, &len, err, errlen);
        if (rc)
            return rc;
        rc = set_body(o, buf, len, "--body-file", err, errlen);
        free(buf);
        return rc;
    }
    case O_TRACE: o->trace = true; return 0;
    case O_JSON: o->json = true; return 0;
    case O_REPORT: o->report = arg; return 0;
    case O_QUIET: o->quiet = true; return 0;
    case O_HELP: return -1;
    }
    return 2;
}

static int check(load_opts *o, char *err, size_t errlen)
{
    if (!o->connections)
        o->connections = o->rate > 0 ? LOAD_OPEN_CAP : LOAD_CLOSED_CONNS;
    if (o->threads > o->connections)
        BAD("--threads %d > --connections %d: each thread needs a connection", o->threads,
            o->connections);
    if (!o->method)
        o->method = o->has_body ? "POST" : "GET";
    if (load_url_parse(o, o->url) < 0) {
        snprintf(err, errlen, "%s: not a usable URL: %s (http://HOST[:PORT][/path], HOST an IPv4 address, [IPv6] or a name)",
                 o->url, o->url_why ? o->url_why : "out of memory");
        return 1;
    }
    return 0;
}

static int parse(load_opts *o, int argc, char **argv, char *err, size_t errlen)
{
    int c, rc;
    optind = 0;     /* glibc: start over (tests parse more than once) */
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        if (c == 'h')
            return -1;
        if (c == '?')
            BAD("unknown option %s (see --help)", argv[optind - 1]);
        if (c == ':')
            BAD("option %s needs a value", argv[optind - 1]);
        if ((rc = one_opt(o, c, optarg, err, errlen)))
            return rc;
    }
    if (optind >= argc)
        BAD("missing URL (see --help)");
    if (optind + 1 < argc)
        BAD("unexpected argument '%s' after the URL", argv[optind + 1]);
    o->url = argv[optind];
    return check(o, err, errlen);
}

int load_opts_parse(load_opts *o, int argc, char **argv, char *err, size_t errlen)
{
    memset(o, 0, sizeof *o);
    o->threads = 1;
    o->duration_s = 10;
    o->timeout_ms = 2000;
    o->deadline_header = true;
    int rc = parse(o, argc, argv, err, errlen);
    if (rc == -1)
        load_usage(stdout);
    if (rc)
        load_opts_free(o);
    return rc;
}

void load_opts_free(load_opts *o)
{
    for (size_t i = 0; i < o->nheaders; i++)
        free(o->headers[i]);
    free(o->headers);
    free(o->path);
    tmpl_free(&o->body);
    o->headers = NULL, o->path = NULL, o->nheaders = 0;
}

char *load_request_prefix(const load_opts *o, size_t *len)
{
    size_t cap = strlen(o->method) + strlen(o->path) + strlen(o->host) + 80;
    for (size_t i = 0; i < o->nheaders; i++)
        cap += strlen(o->headers[i]) + 2;
    char *buf = malloc(cap), *p = buf;
    if (!buf)
        return NULL;
    p += sprintf(p, "%s %s HTTP/1.1\r\nHost: %s\r\n", o->method, o->path, o->host);
    for (size_t i = 0; i < o->nheaders; i++)
        p += sprintf(p, "%s\r\n", o->headers[i]);
    if (o->has_body && !o->user_ctype)
        p += sprintf(p, "Content-Type: application/json\r\n");
    *len = (size_t)(p - buf);
    return buf;
}
